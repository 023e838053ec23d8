"""Teams: create, update, delete, block, read and list (LiteLLM's /team/* shapes).

Members and a team's models are in :mod:`bastion.services.admin.members`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bastion.policy.rbac import Actor, can_read_team, deny, require_admin
from bastion.services.admin import audit
from bastion.services.admin.shapes import members_with_roles, membership_dict, row_dict
from bastion.storage.models import Team
from bastion.storage.repositories import Store

TABLE = "teams"


class MemberIn(BaseModel):
    """One member as LiteLLM's ``Member``: a user id or email, and a role."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["admin", "user"] = "user"
    user_id: str | None = None
    user_email: str | None = None


class TeamFields(BaseModel):
    """Fields /team/new and /team/update share (only the ones sent are applied)."""

    model_config = ConfigDict(extra="ignore")

    team_alias: str | None = None
    organization_id: str | None = None
    models: list[str] | None = None
    max_budget: Decimal | None = None
    soft_budget: Decimal | None = None
    budget_duration: str | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None
    metadata: dict[str, Any] | None = None
    blocked: bool | None = None
    team_member_budget: Decimal | None = None
    model_aliases: dict[str, Any] | None = None


class NewTeam(TeamFields):
    team_id: str | None = Field(default=None, min_length=1)
    members_with_roles: list[MemberIn] = Field(default_factory=list)


class UpdateTeam(TeamFields):
    team_id: str = Field(min_length=1)


class DeleteTeams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    team_ids: list[str] = Field(min_length=1)


class TeamRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    team_id: str = Field(min_length=1)


async def team_dict(store: Store, team: Team) -> dict[str, Any]:
    """The team row plus ``members_with_roles``."""
    page = await store.members.list(team_id=team.team_id, size=1000)
    users = {u.user_id: u for u in await store.users.get_many([m.user_id for m in page.items])}
    shaped = row_dict(team)
    shaped["members_with_roles"] = members_with_roles(page.items, users)
    return shaped


async def create_team(store: Store, actor: Actor, request: NewTeam) -> dict[str, Any]:
    # Imported here: members imports this module for team_dict.
    from bastion.services.admin.members import add_member_rows

    require_admin(actor, "create teams")
    values = request.model_dump(exclude_unset=True, exclude={"members_with_roles"})
    values["metadata_"] = values.pop("metadata", None) or {}
    team = Team(**{k: v for k, v in values.items() if v is not None})
    await store.teams.create(team)
    await add_member_rows(store, actor, team, request.members_with_roles)
    await audit.record(store, actor, "created", TABLE, team.team_id, after=team)
    return await team_dict(store, team)


async def update_team(store: Store, actor: Actor, request: UpdateTeam) -> dict[str, Any]:
    require_admin(actor, "update teams")
    changes = request.model_dump(exclude_unset=True, exclude={"team_id"})
    if "models" in changes and changes["models"] is None:
        changes["models"] = []
    if "metadata" in changes and changes["metadata"] is None:
        changes["metadata"] = {}
    if "blocked" in changes and changes["blocked"] is None:
        changes["blocked"] = False
    before = audit.snapshot(await store.teams.get(request.team_id))
    team = await store.teams.update(request.team_id, changes)
    await audit.record(store, actor, "updated", TABLE, team.team_id, before=before, after=team)
    return {"team_id": team.team_id, "data": await team_dict(store, team)}


async def set_blocked(store: Store, actor: Actor, team_id: str, blocked: bool) -> dict[str, Any]:
    require_admin(actor, "block or unblock teams")
    before = audit.snapshot(await store.teams.get(team_id))
    team = await store.teams.update(team_id, {"blocked": blocked})
    await audit.record(store, actor, "updated", TABLE, team_id, before=before, after=team)
    return await team_dict(store, team)


async def delete_teams(store: Store, actor: Actor, team_ids: list[str]) -> dict[str, Any]:
    """Delete every team (all must exist); their memberships and keys go with them."""
    require_admin(actor, "delete teams")
    for team_id in team_ids:
        before = audit.snapshot(await store.teams.get(team_id))
        await store.teams.delete(team_id)
        await audit.record(store, actor, "deleted", TABLE, team_id, before=before)
    return {"deleted_teams": team_ids}


async def team_info(store: Store, actor: Actor, team_id: str) -> dict[str, Any]:
    team = await store.teams.get(team_id)
    if not can_read_team(actor, team_id):
        raise deny(f"read team {team_id!r}: you are not a member of it")
    keys = await store.keys.search(team_id=team_id, size=1000)
    memberships = await store.members.list(team_id=team_id, size=1000)
    return {
        "team_id": team_id,
        "team_info": await team_dict(store, team),
        "keys": [row_dict(k) for k in keys.items],
        "team_memberships": [membership_dict(m) for m in memberships.items],
    }


async def list_teams(
    store: Store, actor: Actor, *, user_id: str | None, organization_id: str | None
) -> list[dict[str, Any]]:
    """All teams for readers of everything; otherwise the caller's own teams."""
    if not actor.reads_all:
        if user_id is not None and user_id != actor.user_id:
            raise deny("list another user's teams")
        user_id = actor.user_id
        if user_id is None:
            return []
    if user_id is not None:
        teams = await store.teams.teams_of_user(user_id)
        if organization_id is not None:
            teams = [t for t in teams if t.organization_id == organization_id]
    else:
        teams = (await store.teams.list(organization_id=organization_id, size=1000)).items
    out = []
    for team in teams:
        shaped = await team_dict(store, team)
        memberships = await store.members.list(team_id=team.team_id, size=1000)
        shaped["team_memberships"] = [membership_dict(m) for m in memberships.items]
        keys = await store.keys.search(team_id=team.team_id, size=1000)
        shaped["keys"] = [row_dict(k) for k in keys.items]
        out.append(shaped)
    return out
