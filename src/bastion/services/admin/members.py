"""A team's members and models: /team/member_add|member_delete|member_update and
/team/model/add|delete. Proxy admins and the team's own admins may use them (as in
LiteLLM); an unknown member is created as an internal user, as LiteLLM does."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bastion.core.errors import InvalidRequestError
from bastion.policy.rbac import Actor, can_manage_team, deny
from bastion.services.admin import audit
from bastion.services.admin.shapes import row_dict
from bastion.services.admin.teams import TABLE, MemberIn, team_dict
from bastion.storage.errors import DuplicateError, NotFoundError
from bastion.storage.models import Team, TeamMembership, User
from bastion.storage.repositories import Store

MEMBERS_TABLE = "team_memberships"


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="ignore")

    team_id: str = Field(min_length=1)
    member: MemberIn | list[MemberIn]
    max_budget_in_team: Decimal | None = None

    @property
    def members(self) -> list[MemberIn]:
        return self.member if isinstance(self.member, list) else [self.member]


class MemberRef(BaseModel):
    """Names one member by ``user_id`` or ``user_email``."""

    model_config = ConfigDict(extra="ignore")

    team_id: str = Field(min_length=1)
    user_id: str | None = None
    user_email: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> MemberRef:
        if self.user_id is None and self.user_email is None:
            raise ValueError("give user_id or user_email")
        return self


class MemberUpdate(MemberRef):
    role: Literal["admin", "user"] | None = None
    max_budget_in_team: Decimal | None = None


class TeamModels(BaseModel):
    model_config = ConfigDict(extra="ignore")

    team_id: str = Field(min_length=1)
    models: list[str] = Field(min_length=1)


async def _manageable_team(store: Store, actor: Actor, team_id: str, action: str) -> Team:
    team = await store.teams.get(team_id)
    if not can_manage_team(actor, team_id):
        raise deny(f"{action} of team {team_id!r}: only a proxy_admin or this team's admin may")
    return team


async def ensure_user(store: Store, actor: Actor, member: MemberIn) -> User:
    """The member's user, created (internal_user) when the id or email is unknown."""
    user: User | None = None
    if member.user_id is not None:
        user = await store.users.find(member.user_id)
    elif member.user_email is not None:
        user = await store.users.find_by_email(member.user_email)
    else:
        raise InvalidRequestError("member: give user_id or user_email", param="member")
    if user is None:
        user = User(
            user_id=member.user_id,
            user_email=member.user_email,
            user_role="internal_user",
            created_by=audit.changed_by(actor),
        )
        await store.users.create(user)
        await audit.record(store, actor, "created", "users", user.user_id, after=user)
    return user


async def add_member_rows(
    store: Store,
    actor: Actor,
    team: Team,
    members: list[MemberIn],
    max_budget_in_team: Decimal | None = None,
) -> tuple[list[User], list[TeamMembership]]:
    users: list[User] = []
    rows: list[TeamMembership] = []
    for member in members:
        user = await ensure_user(store, actor, member)
        try:
            row = await store.members.add(
                team.team_id,
                user.user_id,
                member.role,
                max_budget_in_team=max_budget_in_team,
            )
        except DuplicateError:
            # LiteLLM answers a member already in the team with a 400.
            raise InvalidRequestError(
                f"user {user.user_id!r} is already a member of team {team.team_id!r}",
                param="member",
            ) from None
        await audit.record(store, actor, "created", MEMBERS_TABLE, _member_id(row), after=row)
        users.append(user)
        rows.append(row)
    return users, rows


async def add_members(store: Store, actor: Actor, request: MemberAdd) -> dict[str, Any]:
    team = await _manageable_team(store, actor, request.team_id, "add members")
    users, rows = await add_member_rows(
        store, actor, team, request.members, request.max_budget_in_team
    )
    shaped = await team_dict(store, team)
    shaped["updated_users"] = [row_dict(u) for u in users]
    shaped["updated_team_memberships"] = [row_dict(m) for m in rows]
    return shaped


async def _member_user_id(store: Store, ref: MemberRef) -> str:
    if ref.user_id is not None:
        return ref.user_id
    assert ref.user_email is not None
    user = await store.users.find_by_email(ref.user_email)
    if user is None:
        raise NotFoundError("user", ref.user_email, field="user_email")
    return user.user_id


async def delete_member(store: Store, actor: Actor, request: MemberRef) -> dict[str, Any]:
    team = await _manageable_team(store, actor, request.team_id, "remove members")
    user_id = await _member_user_id(store, request)
    row = await store.members.get(team.team_id, user_id)
    before = audit.snapshot(row)
    await store.members.remove(team.team_id, user_id)
    await audit.record(store, actor, "deleted", MEMBERS_TABLE, _member_id(row), before=before)
    return await team_dict(store, team)


async def update_member(store: Store, actor: Actor, request: MemberUpdate) -> dict[str, Any]:
    team = await _manageable_team(store, actor, request.team_id, "update members")
    user_id = await _member_user_id(store, request)
    changes = request.model_dump(include={"role", "max_budget_in_team"}, exclude_unset=True)
    if changes.get("role", "") is None:
        del changes["role"]
    before = audit.snapshot(await store.members.get(team.team_id, user_id))
    row = await store.members.update(team.team_id, user_id, changes)
    await audit.record(
        store, actor, "updated", MEMBERS_TABLE, _member_id(row), before=before, after=row
    )
    return {
        "team_id": team.team_id,
        "user_id": user_id,
        "user_email": request.user_email,
        "role": row.role,
        "max_budget_in_team": row_dict(row)["max_budget_in_team"],
    }


async def change_models(
    store: Store, actor: Actor, request: TeamModels, *, add: bool
) -> dict[str, Any]:
    team = await _manageable_team(store, actor, request.team_id, "change the models")
    before = audit.snapshot(team)
    if add:
        team = await store.teams.add_models(team.team_id, request.models)
    else:
        team = await store.teams.remove_models(team.team_id, request.models)
    await audit.record(store, actor, "updated", TABLE, team.team_id, before=before, after=team)
    return await team_dict(store, team)


def _member_id(row: TeamMembership) -> str:
    return f"{row.team_id}:{row.user_id}"
