"""Periodic budget resets: zero ``spend`` and move ``budget_reset_at`` when it has passed.

Run by a background task (every minute or so, and once at startup). For each table
with inline budgets, rows with the same ``budget_duration`` share the same next
calendar boundary, so one UPDATE per (table, duration) resets them all, however
many rows there are. End users have no inline duration: their spend resets with
the reusable budget they point at.

A row with a duration but no ``budget_reset_at`` (e.g. written by an older
version) is scheduled without being zeroed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bastion.policy.durations import DurationError, next_reset, parse_duration
from bastion.storage.models import (
    Budget,
    EndUser,
    Organization,
    Team,
    TeamMembership,
    User,
    VirtualKey,
)
from bastion.storage.models.base import table_of

logger = logging.getLogger("bastion.storage.budget_reset")

_INLINE = (
    ("key", VirtualKey),
    ("team", Team),
    ("user", User),
    ("team_member", TeamMembership),
    ("organization", Organization),
)


@dataclass
class ResetResult:
    """How many rows were zeroed, per entity type (``end_user`` counts end users)."""

    reset: dict[str, int] = field(default_factory=dict)
    scheduled: int = 0

    @property
    def total(self) -> int:
        return sum(self.reset.values())


async def reset_budgets(engine: AsyncEngine, now: datetime, tz: tzinfo = UTC) -> ResetResult:
    """Reset every budget whose ``budget_reset_at`` is at or before ``now``."""
    result = ResetResult()
    async with engine.begin() as conn:
        for name, model in _INLINE:
            table = table_of(model)
            result.reset[name] = await _reset_table(conn, table, now, tz, result)
        result.reset["end_user"] = await _reset_budget_table(conn, now, tz, result)
    if result.total:
        logger.info("budgets reset: %s", {k: v for k, v in result.reset.items() if v})
    return result


async def _due_durations(conn: AsyncConnection, table: sa.Table, now: datetime) -> list[str]:
    rows = await conn.execute(
        sa.select(table.c.budget_duration)
        .where(
            table.c.budget_duration.is_not(None),
            sa.or_(table.c.budget_reset_at.is_(None), table.c.budget_reset_at <= now),
        )
        .distinct()
    )
    return sorted(d for (d,) in rows if d)


def _next(duration: str, now: datetime, tz: tzinfo, table: sa.Table) -> datetime | None:
    try:
        return next_reset(parse_duration(duration), now, tz)
    except DurationError:
        logger.warning("%s: ignoring invalid budget_duration %r", table.name, duration)
        return None


async def _reset_table(
    conn: AsyncConnection, table: sa.Table, now: datetime, tz: tzinfo, result: ResetResult
) -> int:
    count = 0
    for duration in await _due_durations(conn, table, now):
        upcoming = _next(duration, now, tz, table)
        if upcoming is None:
            continue
        same = table.c.budget_duration == duration
        zeroed = await conn.execute(
            sa.update(table)
            .where(same, table.c.budget_reset_at <= now)
            .values(spend=Decimal(0), budget_reset_at=upcoming)
        )
        count += int(zeroed.rowcount or 0)
        scheduled = await conn.execute(
            sa.update(table)
            .where(same, table.c.budget_reset_at.is_(None))
            .values(budget_reset_at=upcoming)
        )
        result.scheduled += int(scheduled.rowcount or 0)
    return count


async def _reset_budget_table(
    conn: AsyncConnection, now: datetime, tz: tzinfo, result: ResetResult
) -> int:
    budgets = table_of(Budget)
    end_users = table_of(EndUser)
    count = 0
    for duration in await _due_durations(conn, budgets, now):
        upcoming = _next(duration, now, tz, budgets)
        if upcoming is None:
            continue
        same = budgets.c.budget_duration == duration
        due = sa.select(budgets.c.budget_id).where(same, budgets.c.budget_reset_at <= now)
        zeroed = await conn.execute(
            sa.update(end_users)
            .where(end_users.c.budget_id.in_(due.scalar_subquery()))
            .values(spend=Decimal(0))
        )
        count += int(zeroed.rowcount or 0)
        await conn.execute(
            sa.update(budgets)
            .where(
                same, sa.or_(budgets.c.budget_reset_at <= now, budgets.c.budget_reset_at.is_(None))
            )
            .values(budget_reset_at=upcoming)
        )
    return count
