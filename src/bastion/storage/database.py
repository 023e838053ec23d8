"""The database handle: one async engine, and transactions that hand out repositories.

Usage::

    db = Database.connect(url, cipher=Cipher.from_environment(master_key))
    async with db.transaction() as store:
        team = await store.teams.create(Team(team_alias="search"))
        await store.audit.record(...)
    await db.dispose()

Everything inside one ``transaction()`` commits together or not at all. Spend
batches, budget resets and the auth snapshot work on the engine directly (see
:mod:`bastion.storage.spend`, :mod:`bastion.storage.budget_reset`,
:mod:`bastion.storage.snapshot`); the methods of the same names here call them
with this database's clock and budget timezone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from bastion.storage.crypto import Cipher

if TYPE_CHECKING:
    from bastion.storage.budget_reset import ResetResult
    from bastion.storage.repositories import Store
from bastion.storage.snapshot import AuthSnapshot, load_auth_snapshot
from bastion.storage.spend import (
    SpendBatchResult,
    SpendRecord,
    apply_spend_batch,
    delete_spend_logs_older_than,
)
from bastion.storage.urls import DatabaseTarget, normalize_database_url

Clock = Callable[[], datetime]
SQLITE_BUSY_TIMEOUT_MS = 10_000


def utc_clock() -> datetime:
    return datetime.now(UTC)


def create_engine(url: str | DatabaseTarget, **options: Any) -> AsyncEngine:
    """An async engine for ``url`` (normalised to asyncpg/aiosqlite).

    SQLite connections enforce foreign keys, use WAL (readers do not block the
    writer) and wait for a lock instead of failing at once.
    """
    target = url if isinstance(url, DatabaseTarget) else normalize_database_url(url)
    # A small statement cache: the gateway runs few distinct statements.
    kwargs: dict[str, Any] = {
        "pool_pre_ping": True,
        "query_cache_size": 100,
        "json_serializer": _json_text,
    }
    if target.connect_args:
        kwargs["connect_args"] = dict(target.connect_args)
    kwargs.update(options)
    engine = _create_async_engine(target.url, **kwargs)
    if target.dialect == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _json_text(value: Any) -> str:
    # orjson: the JSON columns of spend-log rows are encoded on every flush.
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    if _is_file_database(cursor):
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _is_file_database(cursor: Any) -> bool:
    cursor.execute("PRAGMA database_list")
    rows = cursor.fetchall()
    return bool(rows and rows[0][2])


class Database:
    """Owns the engine; created at startup by the composition root, disposed at shutdown."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        cipher: Cipher | None = None,
        clock: Clock = utc_clock,
        budget_tz: tzinfo = UTC,
    ) -> None:
        self.engine = engine
        self.cipher = cipher
        self.clock = clock
        self.budget_tz = budget_tz
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)

    @classmethod
    def connect(cls, url: str | DatabaseTarget, **kwargs: Any) -> Database:
        return cls(create_engine(url), **kwargs)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Store]:
        """Repositories sharing one transaction: committed on exit, rolled back on error."""
        async with self._sessions() as session, session.begin():
            from bastion.storage.repositories import Store  # the control plane's, not startup's

            yield Store(session, cipher=self.cipher, clock=self.clock, budget_tz=self.budget_tz)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    async def apply_spend_batch(
        self, batch: Iterable[SpendRecord], *, write_logs: bool = True
    ) -> SpendBatchResult:
        return await apply_spend_batch(self.engine, batch, write_logs=write_logs)

    async def reset_budgets(self) -> ResetResult:
        """Reset every budget due at the clock's now, in the configured timezone."""
        from bastion.storage.budget_reset import reset_budgets

        return await reset_budgets(self.engine, self.clock(), self.budget_tz)

    async def load_auth_snapshot(self) -> AuthSnapshot:
        return await load_auth_snapshot(self.engine, self.clock())

    async def delete_spend_logs_older_than(self, cutoff: datetime) -> int:
        return await delete_spend_logs_older_than(self.engine, cutoff)

    async def dispose(self) -> None:
        await self.engine.dispose()
