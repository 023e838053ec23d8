"""Spend queries behind ``/spend/logs`` and ``/global/spend/*``.

Totals come from ``daily_spend`` (one row per UTC day, entity and model), so a
report over a year reads at most 366 rows per entity and model instead of every
request. Every request is counted once under each entity type, so totals over all
traffic use ``entity_type="model"`` (every request has a model row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from bastion.core.errors import InvalidRequestError
from bastion.storage.models import ENTITY_TYPES, DailySpend, SpendLog
from bastion.storage.repositories.base import Context, Page, paginate
from bastion.storage.types import to_money


@dataclass(frozen=True)
class SpendTotals:
    """Spend and counts of one group (an entity, a day, a model…)."""

    spend: Decimal
    requests: int
    successful_requests: int
    failed_requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int
    cache_creation_tokens: int
    reasoning_tokens: int


@dataclass(frozen=True)
class EntitySpend:
    entity_id: str
    totals: SpendTotals


@dataclass(frozen=True)
class DaySpend:
    date: date
    totals: SpendTotals


@dataclass(frozen=True)
class ReportRow:
    date: date
    entity_id: str
    model: str
    totals: SpendTotals


_COUNTERS = (
    "requests",
    "successful_requests",
    "failed_requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
)


def _sums() -> list[Any]:
    columns: list[Any] = [sa.func.sum(DailySpend.spend).label("spend")]
    columns += [sa.func.sum(getattr(DailySpend, name)).label(name) for name in _COUNTERS]
    return columns


def _totals(row: Any) -> SpendTotals:
    return SpendTotals(
        spend=to_money(row.spend if row.spend is not None else 0),
        **{name: int(getattr(row, name) or 0) for name in _COUNTERS},
    )


def _check_entity_type(entity_type: str) -> None:
    if entity_type not in ENTITY_TYPES:
        raise InvalidRequestError(
            f"unknown entity type {entity_type!r}: use one of {', '.join(ENTITY_TYPES)}",
            param="group_by",
        )


class SpendReports:
    def __init__(self, ctx: Context) -> None:
        self.session = ctx.session

    def _daily(self, entity_type: str, start: date, end: date) -> list[Any]:
        _check_entity_type(entity_type)
        if end < start:
            raise InvalidRequestError("end_date is before start_date", param="end_date")
        return [
            DailySpend.entity_type == entity_type,
            DailySpend.date >= start,
            DailySpend.date <= end,
        ]

    async def by_entity(
        self,
        entity_type: str,
        start: date,
        end: date,
        *,
        entity_ids: list[str] | None = None,
        limit: int | None = None,
    ) -> list[EntitySpend]:
        """Total per team/key/user/end user/model/organization between two UTC dates
        (inclusive), highest spend first."""
        where = self._daily(entity_type, start, end)
        if entity_ids is not None:
            where.append(DailySpend.entity_id.in_(entity_ids))
        query = (
            sa.select(DailySpend.entity_id, *_sums())
            .where(*where)
            .group_by(DailySpend.entity_id)
            .order_by(sa.func.sum(DailySpend.spend).desc(), DailySpend.entity_id)
        )
        if limit is not None:
            query = query.limit(limit)
        rows = await self.session.execute(query)
        return [EntitySpend(row.entity_id, _totals(row)) for row in rows]

    async def by_day(
        self, start: date, end: date, *, entity_type: str = "model", entity_id: str | None = None
    ) -> list[DaySpend]:
        """Total per day: of all traffic by default, or of one entity."""
        where = self._daily(entity_type, start, end)
        if entity_id is not None:
            where.append(DailySpend.entity_id == entity_id)
        query = (
            sa.select(DailySpend.date, *_sums())
            .where(*where)
            .group_by(DailySpend.date)
            .order_by(DailySpend.date)
        )
        rows = await self.session.execute(query)
        return [DaySpend(row.date, _totals(row)) for row in rows]

    async def breakdown(
        self, entity_type: str, start: date, end: date, *, entity_id: str | None = None
    ) -> list[ReportRow]:
        """Per day, entity and model (``/global/spend/report`` grouped by team, key…)."""
        where = self._daily(entity_type, start, end)
        if entity_id is not None:
            where.append(DailySpend.entity_id == entity_id)
        query = (
            sa.select(DailySpend.date, DailySpend.entity_id, DailySpend.model, *_sums())
            .where(*where)
            .group_by(DailySpend.date, DailySpend.entity_id, DailySpend.model)
            .order_by(DailySpend.date, DailySpend.entity_id, DailySpend.model)
        )
        rows = await self.session.execute(query)
        return [ReportRow(r.date, r.entity_id, r.model, _totals(r)) for r in rows]

    async def model_spend(
        self, entity_type: str, entity_id: str, start: date, end: date
    ) -> dict[str, Decimal]:
        """Spend per model of one entity (per-model budgets on keys)."""
        rows = await self.breakdown(entity_type, start, end, entity_id=entity_id)
        out: dict[str, Decimal] = {}
        for row in rows:
            out[row.model] = out.get(row.model, Decimal(0)) + row.totals.spend
        return out

    async def logs(
        self,
        *,
        api_key: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        end_user: str | None = None,
        request_id: str | None = None,
        model: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        page: int = 1,
        size: int = 50,
    ) -> Page[SpendLog]:
        """Request log rows, newest first; ``start`` inclusive, ``end`` exclusive."""
        query = sa.select(SpendLog)
        for column, value in (
            (SpendLog.api_key, api_key),
            (SpendLog.user, user_id),
            (SpendLog.team_id, team_id),
            (SpendLog.end_user, end_user),
            (SpendLog.request_id, request_id),
            (SpendLog.model, model),
        ):
            if value is not None:
                query = query.where(column == value)
        if start is not None:
            query = query.where(SpendLog.start_time >= start)
        if end is not None:
            query = query.where(SpendLog.start_time < end)
        query = query.order_by(SpendLog.start_time.desc(), SpendLog.request_id)
        return await paginate(self.session, query, page, size)

    async def get_log(self, request_id: str) -> SpendLog | None:
        row: SpendLog | None = await self.session.get(SpendLog, request_id)
        return row
