"""Spend reports in LiteLLM's shapes: ``/spend/logs`` and ``/global/spend/*``.

Totals per key, team and model come from the daily aggregates; the per-team and
per-customer report needs the key of each request as well, so it is grouped by the
database from the request ledger (one row per day, team or customer, model and key).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from bastion.core.errors import InvalidRequestError
from bastion.services.admin.budgets import plain
from bastion.storage.models import SpendLog, Team, VirtualKey
from bastion.storage.repositories import Store, hash_key

LOG_CAP = 10_000  # LiteLLM's cap on /spend/logs rows
LAST_DAYS = 30  # the window of /global/spend/teams|keys|models


def parse_day(value: str | None, field: str) -> date | None:
    """A ``YYYY-MM-DD`` query parameter; anything else is a 400 naming the field."""
    if value is None:
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError(
            f"{field} must be a date as YYYY-MM-DD, got {value!r}", param=field
        ) from None


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def key_hash(api_key: str) -> str:
    """``/spend/logs?api_key=`` takes the raw key (``sk-…``) or its sha256 hash."""
    return hash_key(api_key) if api_key.startswith("sk-") else api_key


def log_dict(row: SpendLog) -> dict[str, Any]:
    """A ``LiteLLM_SpendLogs`` row (camelCase times, as LiteLLM's Prisma model)."""
    return {
        "request_id": row.request_id,
        "call_type": row.call_type,
        "api_key": row.api_key or "",
        "spend": plain(row.spend),
        "total_tokens": row.total_tokens,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "startTime": plain(row.start_time),
        "endTime": plain(row.end_time),
        "completionStartTime": plain(row.completion_start_time),
        "model": row.model or "",
        "model_id": row.model_id or "",
        "model_group": row.model_group or "",
        "custom_llm_provider": row.custom_llm_provider or "",
        "api_base": row.api_base or "",
        "user": row.user or "",
        "metadata": row.metadata_,
        "cache_hit": str(row.cache_hit),
        "request_tags": row.request_tags,
        "team_id": row.team_id,
        "organization_id": row.organization_id,
        "end_user": row.end_user,
        "messages": row.messages if row.messages is not None else {},
        "response": row.response if row.response is not None else {},
        "status": row.status,
    }


async def spend_logs(
    store: Store,
    *,
    api_key: str | None,
    user_id: str | None,
    request_id: str | None,
    start: date | None,
    end: date | None,
    summarize: bool,
) -> list[dict[str, Any]]:
    """Rows newest first; with both dates and ``summarize`` (the default), one summary
    per day as LiteLLM gives: ``{<key hash>: spend…, startTime, spend, users, models}``."""
    hashed = key_hash(api_key) if api_key is not None else None
    ranged = start is not None and end is not None
    page = await store.spend.logs(
        api_key=hashed,
        user_id=user_id,
        request_id=request_id,
        start=day_start(start) if ranged and start else None,
        end=day_start(end) + timedelta(days=1) if ranged and end else None,
        size=1000,
    )
    rows = list(page.items)
    number = 1
    while len(rows) < min(page.total, LOG_CAP):
        number += 1
        more = await store.spend.logs(
            api_key=hashed,
            user_id=user_id,
            request_id=request_id,
            start=day_start(start) if ranged and start else None,
            end=day_start(end) + timedelta(days=1) if ranged and end else None,
            page=number,
            size=1000,
        )
        rows += more.items
    if not (ranged and summarize):
        return [log_dict(r) for r in rows[:LOG_CAP]]
    assert start is not None and end is not None
    return daily_summary(rows, start, end)


def daily_summary(rows: Iterable[SpendLog], start: date, end: date) -> list[dict[str, Any]]:
    days: dict[date, list[SpendLog]] = defaultdict(list)
    for row in rows:
        days[row.start_time.astimezone(UTC).date()].append(row)
    out: list[dict[str, Any]] = []
    for day in sorted(days):
        by_key: dict[str, Decimal] = defaultdict(Decimal)
        users: dict[str, Decimal] = defaultdict(Decimal)
        models: dict[str, Decimal] = defaultdict(Decimal)
        for r in days[day]:
            if r.api_key:
                by_key[r.api_key] += r.spend
            users[r.user or ""] += r.spend
            models[r.model or ""] += r.spend
        out.append(
            {
                **{k: float(v) for k, v in by_key.items()},
                "startTime": day.isoformat(),
                "spend": float(sum((r.spend for r in days[day]), Decimal(0))),
                "users": {k: float(v) for k, v in users.items()},
                "models": {k: float(v) for k, v in models.items()},
            }
        )
    last = max(days) if days else None
    if last is not None:  # LiteLLM pads the days after the last one with spend
        for offset in range(1, (end - last).days + 1):
            padded = last + timedelta(days=offset)
            out.append({"startTime": padded.isoformat(), "spend": 0, "users": {}, "models": {}})
    return out


async def _team_aliases(store: Store, team_ids: Iterable[str]) -> dict[str, str | None]:
    teams = await store.teams.get_many(list({t for t in team_ids if t}))
    return {t.team_id: t.team_alias for t in teams if isinstance(t, Team)}


def _utc_day(dialect: str) -> Any:
    """The UTC calendar day of a request, computed by the database so the report groups
    rows there: TIMESTAMPTZ on PostgreSQL, naive UTC text ("YYYY-MM-DD HH:MM:SS") on
    SQLite."""
    if dialect == "postgresql":
        return sa.cast(sa.func.timezone("UTC", SpendLog.start_time), sa.Date)
    return sa.func.substr(sa.type_coerce(SpendLog.start_time, sa.String), 1, 10)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


async def spend_report(
    store: Store,
    group_by: str,
    start: date,
    end: date,
    *,
    team_id: str | None = None,
    api_key: str | None = None,
    internal_user_id: str | None = None,
) -> list[dict[str, Any]]:
    """``/global/spend/report``: per day and team (or customer), each with the spend per
    model and key; or per key with the spend per model (also what LiteLLM answers for
    one ``api_key`` or ``internal_user_id``, whatever ``group_by`` says)."""
    if end < start:
        raise InvalidRequestError("end_date is before start_date", param="end_date")
    if api_key is not None:
        return await _report_by_key(store, start, end, api_key=key_hash(api_key))
    if internal_user_id is not None:
        return await _report_by_key(store, start, end, user_id=internal_user_id)
    if group_by == "api_key":
        return await _report_by_key(store, start, end)
    column = SpendLog.team_id if group_by == "team" else SpendLog.end_user
    day = _utc_day(store.session.get_bind().dialect.name)
    query = (
        sa.select(
            day.label("day"),
            column.label("entity"),
            SpendLog.model,
            SpendLog.api_key,
            sa.func.sum(SpendLog.spend).label("spend"),
            sa.func.sum(SpendLog.total_tokens).label("total_tokens"),
        )
        .where(
            SpendLog.start_time >= day_start(start),
            SpendLog.start_time < day_start(end) + timedelta(days=1),
        )
        .group_by(day, column, SpendLog.model, SpendLog.api_key)
    )
    if team_id is not None:
        query = query.where(SpendLog.team_id == team_id)
    cells: dict[date, dict[Any, dict[tuple[str, str], list[Any]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: [Decimal(0), 0]))
    )
    for row in await store.session.execute(query):
        cell = cells[_as_date(row.day)][row.entity][(row.model or "", row.api_key or "")]
        cell[0] += row.spend or Decimal(0)
        cell[1] += int(row.total_tokens or 0)
    aliases = await _team_aliases(store, (e for d in cells.values() for e in d if e))
    name_field, list_field = (
        ("team_name", "teams") if group_by == "team" else ("customer", "customers")
    )
    out = []
    for day in sorted(cells):
        groups = []
        for entity, parts in sorted(cells[day].items(), key=lambda kv: str(kv[0])):
            if group_by == "team":
                name = aliases.get(entity) if entity else None
                name = name or "Unassigned Team"
            else:
                name = entity
            groups.append(
                {
                    name_field: name,
                    "total_spend": float(sum((p[0] for p in parts.values()), Decimal(0))),
                    "metadata": [
                        {"model": m, "api_key": k, "spend": float(p[0]), "total_tokens": p[1]}
                        for (m, k), p in sorted(parts.items())
                    ],
                }
            )
        out.append({"group_by_day": day_start(day).isoformat(), list_field: groups})
    return out


async def _key_model_rows(
    store: Store, start: date, end: date, api_key: str | None, user_id: str | None
) -> list[tuple[str, str, Decimal, int, int]]:
    """(key, model, spend, prompt tokens, completion tokens): from the daily aggregates,
    or grouped from the ledger when only one user's requests count."""
    if user_id is None:
        return [
            (r.entity_id, r.model, r.totals.spend, r.totals.prompt_tokens,
             r.totals.completion_tokens)
            for r in await store.spend.breakdown("key", start, end, entity_id=api_key)
        ]  # fmt: skip
    query = (
        sa.select(
            SpendLog.api_key,
            SpendLog.model,
            sa.func.sum(SpendLog.spend).label("spend"),
            sa.func.sum(SpendLog.prompt_tokens).label("prompt_tokens"),
            sa.func.sum(SpendLog.completion_tokens).label("completion_tokens"),
        )
        .where(
            SpendLog.user == user_id,
            SpendLog.start_time >= day_start(start),
            SpendLog.start_time < day_start(end) + timedelta(days=1),
        )
        .group_by(SpendLog.api_key, SpendLog.model)
    )
    return [
        (r.api_key or "", r.model or "", r.spend or Decimal(0), int(r.prompt_tokens or 0),
         int(r.completion_tokens or 0))
        for r in await store.session.execute(query)
    ]  # fmt: skip


async def _report_by_key(
    store: Store,
    start: date,
    end: date,
    *,
    api_key: str | None = None,
    user_id: str | None = None,
) -> list[dict[str, Any]]:
    per_key: dict[str, dict[str, Any]] = {}
    for key, model_name, spend, prompt, completion in await _key_model_rows(
        store, start, end, api_key, user_id
    ):
        entry = per_key.setdefault(key, {})
        model = entry.setdefault(model_name, [Decimal(0), 0, 0])
        model[0] += spend
        model[1] += prompt
        model[2] += completion
    out = []
    for api_key, models in per_key.items():
        out.append(
            {
                "api_key": api_key,
                "total_cost": float(sum((m[0] for m in models.values()), Decimal(0))),
                "total_input_tokens": sum(m[1] for m in models.values()),
                "total_output_tokens": sum(m[2] for m in models.values()),
                "model_details": [
                    {
                        "model": name,
                        "total_cost": float(m[0]),
                        "total_input_tokens": m[1],
                        "total_output_tokens": m[2],
                    }
                    for name, m in sorted(models.items())
                ],
            }
        )
    out.sort(key=lambda r: (-r["total_cost"], r["api_key"]))
    return out


def _window(today: date) -> tuple[date, date]:
    return today - timedelta(days=LAST_DAYS), today


async def spend_per_team(store: Store, today: date) -> dict[str, Any]:
    """``/global/spend/teams``: daily spend per team alias over the last 30 days."""
    start, end = _window(today)
    by_day: dict[str, dict[str, float]] = {}
    totals: dict[str, Decimal] = defaultdict(Decimal)
    rows = await store.spend.breakdown("team", start, end)
    aliases = await _team_aliases(store, (r.entity_id for r in rows))
    per_day: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        alias = aliases.get(row.entity_id) or row.entity_id
        per_day[(row.date, alias)] += row.totals.spend
        totals[alias] += row.totals.spend
    for (day, alias), amount in sorted(per_day.items()):
        by_day.setdefault(day.isoformat(), {})[alias] = float(amount)
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    return {
        "daily_spend": [{"date": day, **teams} for day, teams in by_day.items()],
        "teams": sorted(totals),
        "total_spend_per_team": [{"team_id": t, "total_spend": float(s)} for t, s in ranked],
    }


async def spend_per_key(
    store: Store, today: date, limit: int | None, user_id: str | None = None
) -> list[dict[str, Any]]:
    """``/global/spend/keys``: top keys by spend over the last 30 days; for an internal
    user, only the keys they own."""
    start, end = _window(today)
    entity_ids = None
    if user_id is not None:
        owned = await store.session.scalars(
            sa.select(VirtualKey.token).where(VirtualKey.user_id == user_id)
        )
        entity_ids = list(owned)
    rows = await store.spend.by_entity("key", start, end, entity_ids=entity_ids, limit=limit)
    keys = {
        k.token: k
        for k in await store.session.scalars(
            sa.select(VirtualKey).where(VirtualKey.token.in_([r.entity_id for r in rows]))
        )
    }
    return [
        {
            "api_key": r.entity_id,
            "key_alias": keys[r.entity_id].key_alias if r.entity_id in keys else None,
            "key_name": keys[r.entity_id].key_name if r.entity_id in keys else None,
            "total_spend": float(r.totals.spend),
        }
        for r in rows
    ]


async def spend_per_model(
    store: Store, today: date, limit: int, user_id: str | None = None
) -> list[dict[str, Any]]:
    """``/global/spend/models``: top models by spend over the last 30 days; for an
    internal user, their own spend per model."""
    start, end = _window(today)
    if user_id is None:
        rows = await store.spend.by_entity("model", start, end, limit=limit)
        return [{"model": r.entity_id, "total_spend": float(r.totals.spend)} for r in rows]
    spent = await store.spend.model_spend("user", user_id, start, end)
    ranked = sorted(spent.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [{"model": m, "total_spend": float(s)} for m, s in ranked]
