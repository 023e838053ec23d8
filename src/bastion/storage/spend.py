"""Writing spend off the request path: one transaction per batch.

The gateway queues one :class:`SpendRecord` per finished request and a background
writer calls :func:`apply_spend_batch` every ``proxy_batch_write_at`` seconds. In
ONE transaction the batch

1. inserts its ``spend_logs`` rows with ``ON CONFLICT (request_id) DO NOTHING``
   and keeps only the rows actually inserted: a batch retried after a timeout or a
   crash adds nothing twice (idempotent per ``request_id``);
2. adds the spend of those rows to each key, team, user, team membership,
   organization (``UPDATE … SET spend = spend + :delta``, one statement per table)
   and end user (upserted: an end user is created on first spend, as LiteLLM does);
3. upserts ``daily_spend`` rows (``ON CONFLICT … DO UPDATE SET x = x + excluded.x``).

Increments are summed per entity before they are written, and rows are touched in
a fixed order (by table, then by id), so two writers on two replicas do not
deadlock; a deadlock or a busy SQLite file is retried with the whole transaction.

Idempotency needs the ledger row: with ``disable_spend_logs`` the writer should
still pass records (with no messages or metadata) and rely on retention.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bastion.storage.models import (
    DailySpend,
    EndUser,
    Organization,
    SpendLog,
    Team,
    TeamMembership,
    User,
    VirtualKey,
)
from bastion.storage.models.base import table_of, utc_now
from bastion.storage.types import Money, to_money

logger = logging.getLogger("bastion.storage.spend")

MAX_ATTEMPTS = 5
UNKNOWN_MODEL = "unknown"
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock, serialization failure
_TOKEN_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
)


@dataclass(frozen=True, slots=True)
class SpendRecord:
    """One finished request. ``api_key`` is the key's hash; ``spend`` is USD."""

    request_id: str
    spend: Decimal
    start_time: datetime
    end_time: datetime | None = None
    completion_start_time: datetime | None = None
    call_type: str = "completion"
    status: str = "success"
    api_key: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    organization_id: str | None = None
    end_user: str | None = None
    model: str | None = None
    model_id: str | None = None
    model_group: str | None = None
    api_base: str | None = None
    custom_llm_provider: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    cache_hit: bool = False
    request_tags: Sequence[str] = ()
    messages: Any = None
    response: Any = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def model_key(self) -> str:
        """The model spend is grouped under: the public model name the client used."""
        return self.model_group or self.model or UNKNOWN_MODEL

    def to_wire(self) -> list[Any]:
        """The record as a JSON-ready list in field order (the spend writer's pipe format)."""
        values = [getattr(self, name) for name in _FIELD_NAMES]
        values[_SPEND_AT] = str(values[_SPEND_AT])
        values[_TAGS_AT] = list(values[_TAGS_AT])
        return values

    @classmethod
    def from_wire(cls, values: list[Any]) -> SpendRecord:
        """The inverse of :meth:`to_wire` after a JSON round trip."""
        values[_SPEND_AT] = Decimal(values[_SPEND_AT])
        for index in _TIME_AT:
            if values[index] is not None:
                values[index] = datetime.fromisoformat(values[index])
        values[_TAGS_AT] = tuple(values[_TAGS_AT])
        return cls(*values)

    def log_row(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "call_type": self.call_type,
            "api_key": self.api_key,
            "spend": to_money(self.spend),
            "start_time": self.start_time,
            "end_time": self.end_time,
            "completion_start_time": self.completion_start_time,
            "model": self.model,
            "model_id": self.model_id,
            "model_group": self.model_group,
            "api_base": self.api_base,
            "custom_llm_provider": self.custom_llm_provider,
            "user": self.user_id,
            "end_user": self.end_user,
            "team_id": self.team_id,
            "organization_id": self.organization_id,
            "request_tags": list(self.request_tags),
            "cache_hit": self.cache_hit,
            "status": self.status,
            "messages": self.messages,
            "response": self.response,
            "metadata": dict(self.metadata),
            **{name: int(getattr(self, name)) for name in _TOKEN_FIELDS},
        }


_FIELD_NAMES = tuple(f.name for f in fields(SpendRecord))
_SPEND_AT = _FIELD_NAMES.index("spend")
_TAGS_AT = _FIELD_NAMES.index("request_tags")
_TIME_AT = tuple(
    _FIELD_NAMES.index(name) for name in ("start_time", "end_time", "completion_start_time")
)


@dataclass(frozen=True)
class SpendBatchResult:
    applied: int  # records written now
    duplicates: int  # records already written by an earlier batch
    spend: Decimal  # spend added by this call


@dataclass
class _Daily:
    spend: Decimal = Decimal(0)
    requests: int = 0
    successful_requests: int = 0
    failed_requests: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_TOKEN_FIELDS, 0))

    def add(self, record: SpendRecord) -> None:
        self.spend += to_money(record.spend)
        self.requests += 1
        if record.status == "success":
            self.successful_requests += 1
        else:
            self.failed_requests += 1
        for name in _TOKEN_FIELDS:
            self.tokens[name] += int(getattr(record, name))


async def apply_spend_batch(
    engine: AsyncEngine,
    batch: Iterable[SpendRecord],
    *,
    max_attempts: int = MAX_ATTEMPTS,
    write_logs: bool = True,
) -> SpendBatchResult:
    """Write ``batch`` in one transaction; records already written are skipped.

    With ``write_logs=False`` (``general_settings.disable_spend_logs``) no request-log
    row is written: spend still reaches the entities and the daily totals, but a
    retried batch is no longer recognised, so the caller must not retry one that may
    have committed.
    """
    unique: dict[str, SpendRecord] = {}
    for record in batch:
        unique.setdefault(record.request_id, record)
    records = [unique[k] for k in sorted(unique)]
    if not records:
        return SpendBatchResult(0, 0, Decimal(0))
    for attempt in range(1, max_attempts + 1):
        try:
            async with engine.begin() as conn:
                return await _apply(conn, records, write_logs)
        except DBAPIError as exc:
            if attempt == max_attempts or not _retryable(exc):
                raise
            logger.warning("spend batch conflict (attempt %d), retrying: %s", attempt, exc.orig)
            await asyncio.sleep(0.01 * attempt)
    raise AssertionError("unreachable")


async def _apply(
    conn: AsyncConnection, records: list[SpendRecord], write_logs: bool = True
) -> SpendBatchResult:
    dialect = conn.dialect.name
    if write_logs:
        inserted = await _insert_logs(conn, dialect, records)
    else:
        inserted = {r.request_id for r in records}
    new = [r for r in records if r.request_id in inserted]
    if new:
        await _increment_entities(conn, dialect, new)
        await _upsert_daily(conn, dialect, new)
    total = sum((to_money(r.spend) for r in new), Decimal(0))
    return SpendBatchResult(len(new), len(records) - len(new), total)


def _insert(dialect: str, table: sa.Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"spend batches support PostgreSQL and SQLite, not {dialect}")


# spend_logs columns whose record attribute has another name.
_ATTRIBUTE_OF_COLUMN = {"user": "user_id"}


@dataclass(frozen=True)
class _LogInsert:
    """The request-log INSERT compiled once per dialect, and how a record becomes its
    parameters: the record's attributes read in the statement's parameter order, then each
    column type's own bind processor (money, UTC time, JSON, boolean) where it has one.

    Rows go to the driver's executemany as plain tuples: SQLAlchemy's per-row parameter
    handling cost several times the database's own work for these rows.
    """

    sql: str
    read: Callable[[SpendRecord], tuple[Any, ...]]
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]

    def row(self, record: SpendRecord) -> tuple[Any, ...]:
        values = list(self.read(record))
        for index, process in self.processors:
            values[index] = process(values[index])
        return tuple(values)


# Per dialect instance: the bind processors carry the engine's JSON serializer.
_LOG_INSERTS: weakref.WeakKeyDictionary[Dialect, _LogInsert] = weakref.WeakKeyDictionary()


def _log_insert(dialect: Dialect) -> _LogInsert:
    cached = _LOG_INSERTS.get(dialect)
    if cached is not None:
        return cached
    table = table_of(SpendLog)
    by_key = {column.key: column for column in table.columns}
    compiled = sa.insert(table).compile(dialect=dialect, column_keys=list(by_key))
    order = tuple(compiled.positiontup or ())
    if sorted(order) != sorted(by_key):
        raise NotImplementedError(f"positional parameters needed, {dialect.name} has none")
    processors = []
    for index, name in enumerate(order):
        process = by_key[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((index, process))
    read = operator.attrgetter(*(_ATTRIBUTE_OF_COLUMN.get(name, name) for name in order))
    cached = _LogInsert(str(compiled), read, tuple(processors))
    _LOG_INSERTS[dialect] = cached
    return cached


async def _insert_logs(conn: AsyncConnection, dialect: str, records: list[SpendRecord]) -> set[str]:
    """Inserts the rows not written before; returns their request ids.

    The ids already present are read first, then a plain executemany inserts the
    rest: one compiled statement whatever the batch size. (INSERT … RETURNING over
    many rows is compiled anew for every batch length, which costs CPU on every
    flush and fills the statement cache.)
    """
    table = table_of(SpendLog)
    ids = [r.request_id for r in records]
    existing = set(
        (
            await conn.execute(
                sa.select(table.c.request_id).where(
                    table.c.request_id.in_(sa.bindparam("ids", expanding=True))
                ),
                {"ids": ids},
            )
        ).scalars()
    )
    fresh = [r for r in records if r.request_id not in existing]
    if fresh:
        insert = _log_insert(conn.dialect)
        await conn.exec_driver_sql(insert.sql, [insert.row(r) for r in fresh])
    return {r.request_id for r in fresh}


async def _increment_entities(
    conn: AsyncConnection, dialect: str, records: list[SpendRecord]
) -> None:
    keys: dict[str, tuple[Decimal, datetime]] = {}
    per: dict[str, dict[Any, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for r in records:
        amount = to_money(r.spend)
        seen = r.end_time or r.start_time
        if r.api_key:
            spent, last = keys.get(r.api_key, (Decimal(0), seen))
            keys[r.api_key] = (spent + amount, max(last, seen))
        for name, ident in (
            ("team", r.team_id),
            ("user", r.user_id),
            ("organization", r.organization_id),
            ("end_user", r.end_user),
        ):
            if ident:
                per[name][ident] += amount
        if r.team_id and r.user_id:
            per["membership"][(r.team_id, r.user_id)] += amount

    # Fixed order: keys, teams, users, memberships, organizations, end users.
    key_table = table_of(VirtualKey)
    if keys:
        last_seen = sa.bindparam("b_last", type_=key_table.c.last_active.type)
        await conn.execute(
            sa.update(key_table)
            .where(key_table.c.token == sa.bindparam("b_id"))
            .values(
                spend=key_table.c.spend + sa.bindparam("b_spend", type_=Money()),
                last_active=sa.case(
                    (
                        sa.or_(
                            key_table.c.last_active.is_(None), key_table.c.last_active < last_seen
                        ),
                        last_seen,
                    ),
                    else_=key_table.c.last_active,
                ),
            ),
            [{"b_id": k, "b_spend": s, "b_last": t} for k, (s, t) in sorted(keys.items())],
        )
    for name, model, pk in (
        ("team", Team, "team_id"),
        ("user", User, "user_id"),
        ("organization", Organization, "organization_id"),
    ):
        if per[name]:
            await _add_spend(conn, table_of(model), [pk], {(k,): v for k, v in per[name].items()})
    if per["membership"]:
        await _add_spend(conn, table_of(TeamMembership), ["team_id", "user_id"], per["membership"])
    if per["end_user"]:
        table = table_of(EndUser)
        now = utc_now()
        stmt = _insert(dialect, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.user_id],
            set_={"spend": table.c.spend + stmt.excluded.spend},
        )
        await conn.execute(
            stmt,
            [
                {"user_id": k, "spend": v, "created_at": now, "updated_at": now}
                for k, v in sorted(per["end_user"].items())
            ],
        )


async def _add_spend(
    conn: AsyncConnection, table: sa.Table, pk: list[str], deltas: Mapping[Any, Decimal]
) -> None:
    where = [table.c[col] == sa.bindparam(f"b_{col}") for col in pk]
    stmt = (
        sa.update(table)
        .where(*where)
        .values(spend=table.c.spend + sa.bindparam("b_spend", type_=Money()))
    )
    params = []
    for ident, amount in sorted(deltas.items()):
        parts = ident if isinstance(ident, tuple) else (ident,)
        params.append(
            {**{f"b_{col}": part for col, part in zip(pk, parts, strict=True)}, "b_spend": amount}
        )
    await conn.execute(stmt, params)


async def _upsert_daily(conn: AsyncConnection, dialect: str, records: list[SpendRecord]) -> None:
    groups: dict[tuple[date, str, str, str], _Daily] = defaultdict(_Daily)
    for r in records:
        day = r.start_time.astimezone(UTC).date()
        model = r.model_key
        for entity_type, ident in (
            ("key", r.api_key),
            ("team", r.team_id),
            ("user", r.user_id),
            ("end_user", r.end_user),
            ("organization", r.organization_id),
            ("model", model),
        ):
            if ident:
                groups[(day, entity_type, ident, model)].add(r)
    table = table_of(DailySpend)
    stmt = _insert(dialect, table)
    counters = ["spend", "requests", "successful_requests", "failed_requests", *_TOKEN_FIELDS]
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.date, table.c.entity_type, table.c.entity_id, table.c.model],
        set_={name: table.c[name] + getattr(stmt.excluded, name) for name in counters},
    )
    rows = [
        {
            "date": day,
            "entity_type": entity_type,
            "entity_id": ident,
            "model": model,
            "spend": agg.spend,
            "requests": agg.requests,
            "successful_requests": agg.successful_requests,
            "failed_requests": agg.failed_requests,
            **agg.tokens,
        }
        for (day, entity_type, ident, model), agg in sorted(groups.items())
    ]
    await conn.execute(stmt, rows)


def _retryable(exc: DBAPIError) -> bool:
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    if code in _RETRY_SQLSTATES:
        return True
    return "database is locked" in str(orig)


async def delete_spend_logs_older_than(
    engine: AsyncEngine, cutoff: datetime, *, chunk: int = 5000
) -> int:
    """Retention (``maximum_spend_logs_retention_period``): delete request rows that
    started before ``cutoff``, in chunks so no transaction holds locks for long.
    Daily aggregates are kept."""
    table = table_of(SpendLog)
    total = 0
    while True:
        victims = (
            sa.select(table.c.request_id)
            .where(table.c.start_time < cutoff)
            .limit(chunk)
            .scalar_subquery()
        )
        async with engine.begin() as conn:
            result = await conn.execute(sa.delete(table).where(table.c.request_id.in_(victims)))
        deleted = int(result.rowcount or 0)
        total += deleted
        if deleted < chunk:
            return total
