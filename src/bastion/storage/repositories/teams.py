"""Teams and their members (role admin|user, an optional budget inside the team)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bastion.core.errors import InvalidRequestError
from bastion.policy.durations import next_reset, parse_duration
from bastion.storage.errors import DuplicateError, MissingReferenceError, NotFoundError
from bastion.storage.models import MEMBER_ROLES, Organization, Team, TeamMembership, User
from bastion.storage.repositories.base import Context, CrudRepository, Page, paginate

_MEMBER_FIELDS = frozenset(
    {
        "role",
        "max_budget_in_team",
        "budget_duration",
        "budget_reset_at",
        "spend",
        "tpm_limit",
        "rpm_limit",
    }
)


class TeamRepository(CrudRepository[Team]):
    model = Team
    entity = "team"
    id_field = "team_id"
    references = {"organization_id": Organization}

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.members = MembershipRepository(ctx)

    async def find_by_alias(self, alias: str) -> Team | None:
        row: Team | None = await self.session.scalar(
            sa.select(Team).where(Team.team_alias == alias)
        )
        return row

    async def add_models(self, team_id: str, models: Iterable[str]) -> Team:
        team = await self.get(team_id)
        merged = list(team.models) + [m for m in models if m not in team.models]
        return await self.update(team_id, {"models": merged})

    async def remove_models(self, team_id: str, models: Iterable[str]) -> Team:
        team = await self.get(team_id)
        drop = set(models)
        return await self.update(team_id, {"models": [m for m in team.models if m not in drop]})

    async def teams_of_user(self, user_id: str) -> list[Team]:
        rows = await self.session.scalars(
            sa.select(Team)
            .join(TeamMembership, TeamMembership.team_id == Team.team_id)
            .where(TeamMembership.user_id == user_id)
            .order_by(Team.created_at, Team.team_id)
        )
        return list(rows)


class MembershipRepository:
    """Rows of ``team_memberships``, keyed by (team_id, user_id)."""

    entity = "team member"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.session = ctx.session

    async def find(self, team_id: str, user_id: str) -> TeamMembership | None:
        row: TeamMembership | None = await self.session.get(TeamMembership, (team_id, user_id))
        return row

    async def get(self, team_id: str, user_id: str) -> TeamMembership:
        row = await self.find(team_id, user_id)
        if row is None:
            raise NotFoundError(self.entity, f"{user_id} in team {team_id}", field="user_id")
        return row

    async def add(
        self,
        team_id: str,
        user_id: str,
        role: str = "user",
        *,
        max_budget_in_team: Decimal | None = None,
        budget_duration: str | None = None,
        tpm_limit: int | None = None,
        rpm_limit: int | None = None,
    ) -> TeamMembership:
        _check_member_role(role)
        if await self.session.get(Team, team_id) is None:
            raise MissingReferenceError("team_id", team_id)
        if await self.session.get(User, user_id) is None:
            raise MissingReferenceError("user_id", user_id)
        if await self.find(team_id, user_id) is not None:
            raise DuplicateError(self.entity, "user_id", user_id)
        now = self.ctx.clock()
        row = TeamMembership(
            team_id=team_id,
            user_id=user_id,
            role=role,
            max_budget_in_team=_non_negative(max_budget_in_team, "max_budget_in_team"),
            budget_duration=budget_duration,
            budget_reset_at=self._reset_at(budget_duration),
            spend=Decimal(0),
            tpm_limit=tpm_limit,
            rpm_limit=rpm_limit,
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        try:
            await self.session.flush()
        except IntegrityError:
            raise DuplicateError(self.entity, "user_id", user_id) from None
        return row

    async def update(
        self, team_id: str, user_id: str, changes: Mapping[str, Any]
    ) -> TeamMembership:
        row = await self.get(team_id, user_id)
        for name, value in changes.items():
            if name not in _MEMBER_FIELDS:
                raise InvalidRequestError(f"unknown field {name!r} for team member", param=name)
            if name == "role":
                _check_member_role(value)
            if name == "max_budget_in_team":
                _non_negative(value, name)
            setattr(row, name, value)
        if "budget_duration" in changes and "budget_reset_at" not in changes:
            row.budget_reset_at = self._reset_at(row.budget_duration)
        row.updated_at = self.ctx.clock()
        await self.session.flush()
        return row

    async def remove(self, team_id: str, user_id: str) -> TeamMembership:
        row = await self.get(team_id, user_id)
        await self.session.delete(row)
        await self.session.flush()
        return row

    async def list(
        self,
        *,
        team_id: str | None = None,
        user_id: str | None = None,
        role: str | None = None,
        page: int = 1,
        size: int = 100,
    ) -> Page[TeamMembership]:
        query = sa.select(TeamMembership)
        if team_id is not None:
            query = query.where(TeamMembership.team_id == team_id)
        if user_id is not None:
            query = query.where(TeamMembership.user_id == user_id)
        if role is not None:
            query = query.where(TeamMembership.role == role)
        query = query.order_by(TeamMembership.created_at, TeamMembership.user_id)
        return await paginate(self.session, query, page, size)

    def _reset_at(self, duration: str | None) -> Any:
        if not duration:
            return None
        return next_reset(parse_duration(duration), self.ctx.clock(), self.ctx.budget_tz)


def _check_member_role(role: object) -> None:
    if role not in MEMBER_ROLES:
        raise InvalidRequestError(
            f"invalid team member role {role!r}: use 'admin' or 'user'", param="role"
        )


def _non_negative(value: Decimal | None, field: str) -> Decimal | None:
    if value is not None and Decimal(str(value)) < 0:
        raise InvalidRequestError(f"{field} must not be negative", param=field)
    return value
