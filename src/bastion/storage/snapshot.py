"""Everything the request path needs to authorise a call, read in one go.

The gateway keeps an :class:`AuthSnapshot` in memory and swaps it on a change or a
timer; no request reads the database. One SELECT per table (eight in all, no
joins, so no team or user is repeated per key); the cache links rows by id.

Every key is returned, blocked and expired ones included, so the gateway can tell
a caller *why* a key is refused; deleted keys are simply absent. Old hashes of
regenerated keys appear in ``previous_tokens`` only while their grace period lasts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.storage.models import (
    Budget,
    EndUser,
    Organization,
    PreviousToken,
    Team,
    TeamMembership,
    User,
    VirtualKey,
)
from bastion.storage.models.base import table_of


@dataclass(frozen=True, slots=True)
class BudgetFields:
    max_budget: Decimal | None
    soft_budget: Decimal | None
    budget_duration: str | None
    budget_reset_at: datetime | None
    spend: Decimal
    tpm_limit: int | None
    rpm_limit: int | None
    max_parallel_requests: int | None


@dataclass(frozen=True, slots=True)
class KeyAuth:
    token: str
    key_name: str | None
    key_alias: str | None
    team_id: str | None
    user_id: str | None
    organization_id: str | None
    models: list[str]
    aliases: dict[str, Any]
    budget: BudgetFields
    model_rpm_limit: dict[str, Any]
    model_tpm_limit: dict[str, Any]
    model_max_budget: dict[str, Any]
    metadata: dict[str, Any]
    tags: list[str]
    blocked: bool
    expires: datetime | None


@dataclass(frozen=True, slots=True)
class TeamAuth:
    team_id: str
    team_alias: str | None
    organization_id: str | None
    models: list[str]
    budget: BudgetFields
    team_member_budget: Decimal | None
    model_aliases: dict[str, Any]
    metadata: dict[str, Any]
    blocked: bool


@dataclass(frozen=True, slots=True)
class UserAuth:
    user_id: str
    user_email: str | None
    user_role: str
    models: list[str]
    budget: BudgetFields
    blocked: bool


@dataclass(frozen=True, slots=True)
class OrganizationAuth:
    organization_id: str
    organization_alias: str | None
    budget_id: str | None
    models: list[str]
    budget: BudgetFields
    blocked: bool


@dataclass(frozen=True, slots=True)
class MembershipAuth:
    team_id: str
    user_id: str
    role: str
    max_budget_in_team: Decimal | None
    budget_reset_at: datetime | None
    spend: Decimal
    tpm_limit: int | None
    rpm_limit: int | None


@dataclass(frozen=True, slots=True)
class EndUserAuth:
    user_id: str
    budget_id: str | None
    blocked: bool
    spend: Decimal
    allowed_model_region: str | None
    default_model: str | None


@dataclass(frozen=True, slots=True)
class BudgetAuth:
    budget_id: str
    budget: BudgetFields


@dataclass(frozen=True, slots=True)
class PreviousTokenAuth:
    token: str
    key_token: str
    valid_until: datetime


@dataclass(frozen=True)
class AuthSnapshot:
    loaded_at: datetime
    keys: dict[str, KeyAuth]
    previous_tokens: dict[str, PreviousTokenAuth]
    teams: dict[str, TeamAuth]
    users: dict[str, UserAuth]
    organizations: dict[str, OrganizationAuth]
    memberships: dict[tuple[str, str], MembershipAuth]
    end_users: dict[str, EndUserAuth]
    budgets: dict[str, BudgetAuth]


def _budget(row: Any, spend: Decimal | None = None) -> BudgetFields:
    return BudgetFields(
        max_budget=row.max_budget,
        soft_budget=row.soft_budget,
        budget_duration=row.budget_duration,
        budget_reset_at=row.budget_reset_at,
        spend=row.spend if spend is None else spend,
        tpm_limit=row.tpm_limit,
        rpm_limit=row.rpm_limit,
        max_parallel_requests=row.max_parallel_requests,
    )


async def load_auth_snapshot(engine: AsyncEngine, now: datetime) -> AuthSnapshot:
    """Read keys, teams, users, organizations, memberships, end users, budgets and
    live previous tokens in one read transaction (a consistent view on PostgreSQL)."""
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        keys_t, teams_t, users_t = table_of(VirtualKey), table_of(Team), table_of(User)
        keys = {
            r.token: KeyAuth(
                token=r.token,
                key_name=r.key_name,
                key_alias=r.key_alias,
                team_id=r.team_id,
                user_id=r.user_id,
                organization_id=r.organization_id,
                models=list(r.models or []),
                aliases=dict(r.aliases or {}),
                budget=_budget(r),
                model_rpm_limit=dict(r.model_rpm_limit or {}),
                model_tpm_limit=dict(r.model_tpm_limit or {}),
                model_max_budget=dict(r.model_max_budget or {}),
                metadata=dict(r.metadata or {}),
                tags=list(r.tags or []),
                blocked=bool(r.blocked),
                expires=r.expires,
            )
            for r in await conn.execute(sa.select(keys_t))
        }
        prev_t = table_of(PreviousToken)
        previous = {
            r.token: PreviousTokenAuth(r.token, r.key_token, r.valid_until)
            for r in await conn.execute(sa.select(prev_t).where(prev_t.c.valid_until > now))
        }
        teams = {
            r.team_id: TeamAuth(
                team_id=r.team_id,
                team_alias=r.team_alias,
                organization_id=r.organization_id,
                models=list(r.models or []),
                budget=_budget(r),
                team_member_budget=r.team_member_budget,
                model_aliases=dict(r.model_aliases or {}),
                metadata=dict(r.metadata or {}),
                blocked=bool(r.blocked),
            )
            for r in await conn.execute(sa.select(teams_t))
        }
        users = {
            r.user_id: UserAuth(
                user_id=r.user_id,
                user_email=r.user_email,
                user_role=r.user_role,
                models=list(r.models or []),
                budget=_budget(r),
                blocked=bool(r.blocked),
            )
            for r in await conn.execute(sa.select(users_t))
        }
        orgs = {
            r.organization_id: OrganizationAuth(
                organization_id=r.organization_id,
                organization_alias=r.organization_alias,
                budget_id=r.budget_id,
                models=list(r.models or []),
                budget=_budget(r),
                blocked=bool(r.blocked),
            )
            for r in await conn.execute(sa.select(table_of(Organization)))
        }
        memberships = {
            (r.team_id, r.user_id): MembershipAuth(
                team_id=r.team_id,
                user_id=r.user_id,
                role=r.role,
                max_budget_in_team=r.max_budget_in_team,
                budget_reset_at=r.budget_reset_at,
                spend=r.spend,
                tpm_limit=r.tpm_limit,
                rpm_limit=r.rpm_limit,
            )
            for r in await conn.execute(sa.select(table_of(TeamMembership)))
        }
        end_users = {
            r.user_id: EndUserAuth(
                user_id=r.user_id,
                budget_id=r.budget_id,
                blocked=bool(r.blocked),
                spend=r.spend,
                allowed_model_region=r.allowed_model_region,
                default_model=r.default_model,
            )
            for r in await conn.execute(sa.select(table_of(EndUser)))
        }
        budgets = {
            r.budget_id: BudgetAuth(r.budget_id, _budget(r, spend=Decimal(0)))
            for r in await conn.execute(sa.select(table_of(Budget)))
        }
        await conn.rollback()
    return AuthSnapshot(
        loaded_at=now,
        keys=keys,
        previous_tokens=previous,
        teams=teams,
        users=users,
        organizations=orgs,
        memberships=memberships,
        end_users=end_users,
        budgets=budgets,
    )
