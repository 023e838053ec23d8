"""The database side of the gateway at run time: the engine and the in-memory key cache."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bastion.core.periodic import Periodic
from bastion.policy.auth_cache import AuthCache
from bastion.policy.budget_windows import WindowBudgets
from bastion.policy.ledger import SpendLedger
from bastion.services.spend_process import SpendProcess
from bastion.services.spend_retention import SpendLogRetention
from bastion.services.spend_writer import DEFAULT_INTERVAL_S, SpendWriter
from bastion.storage.crypto import Cipher
from bastion.storage.database import Database, create_engine
from bastion.storage.snapshot import AuthSnapshot, load_auth_snapshot
from bastion.storage.urls import DatabaseTarget, normalize_database_url, resolve_database_url

logger = logging.getLogger("bastion.storage")

DB_CHECK_TIMEOUT_S = 2.0


def database_target(configured_url: str | None) -> DatabaseTarget:
    """general_settings.database_url, else DATABASE_URL, else the SQLite file."""
    return normalize_database_url(resolve_database_url(configured_url))


# The newest migration in storage/migrations/versions (a unit test keeps them in step):
# a database already there is not handed to Alembic, which saves startup time.
LATEST_REVISION = "0002"


async def migrate_database(target: DatabaseTarget) -> str:
    """Bring the schema to the newest revision (run once, before workers start)."""
    if await current_revision(target) == LATEST_REVISION:
        return LATEST_REVISION
    from bastion.storage.migrator import migrate  # Alembic: only when migrating

    return await migrate(target)


async def current_revision(target: DatabaseTarget) -> str | None:
    engine = create_engine(target)
    try:
        async with engine.connect() as conn:
            result = await conn.exec_driver_sql("SELECT version_num FROM alembic_version")
            row = result.first()
            return str(row[0]) if row else None
    except Exception:  # no table yet, or no database: let Alembic do (and report) it
        return None
    finally:
        await engine.dispose()


BUDGET_RESET_INTERVAL_S = 60.0


@dataclass
class Tenancy:
    database: Database
    keys: AuthCache
    ledger: SpendLedger
    writer: SpendWriter
    spend_process: SpendProcess | None = None
    retention: SpendLogRetention | None = None
    _budget_resets: Periodic | None = None

    @classmethod
    def create(
        cls,
        target: DatabaseTarget,
        master_key: str | None,
        *,
        batch_interval: float = DEFAULT_INTERVAL_S,
        spill_path: Path | None = None,
        spend_logs: bool = True,
        retention_period: str | None = None,
        retention_interval: str | None = None,
        windows: WindowBudgets | None = None,
    ) -> Tenancy:
        database = Database.connect(target, cipher=Cipher.from_environment(master_key))
        ledger = SpendLedger()

        async def load(now: datetime) -> AuthSnapshot:
            snapshot = await load_auth_snapshot(database.engine, now)
            if windows is not None:  # the global and per-model budgets' window spend
                from bastion.storage.budget_windows import refresh_window_spend

                await refresh_window_spend(
                    database.engine, windows, snapshot, now, spend_logs=spend_logs
                )
            return snapshot

        spend_process = SpendProcess(target, write_logs=spend_logs)
        writer = SpendWriter(
            spend_process.apply, ledger, interval=batch_interval, spill_path=spill_path
        )
        keys = AuthCache(load, on_loaded=ledger.snapshot_loaded)
        return cls(
            database=database,
            keys=keys,
            ledger=ledger,
            writer=writer,
            spend_process=spend_process,
            retention=(
                SpendLogRetention(database.engine, retention_period, retention_interval)
                if retention_period
                else None
            ),
        )

    async def start(self) -> None:
        try:
            await self.keys.start()
        except Exception as exc:
            # Serve what needs no database (the master key); keys arrive when it returns.
            logger.error("could not load virtual keys from the database: %s", exc)
            self.keys.start_polling()
        await self.writer.start()
        if self.spend_process is not None:
            self.spend_process.start_soon()
        self._budget_resets = Periodic(
            self._reset_budgets,
            BUDGET_RESET_INTERVAL_S,
            failure="budget reset failed (retried)",
            logger=logger,
        )
        self._budget_resets.start()
        if self.retention is not None:
            self.retention.start()

    async def stop(self) -> None:
        if self._budget_resets is not None:
            await self._budget_resets.stop()
        if self.retention is not None:
            await self.retention.stop()
        await self.keys.stop()
        await self.writer.stop()
        if self.spend_process is not None:
            await self.spend_process.close()
        await self.database.dispose()

    async def _reset_budgets(self) -> None:
        """Zero the spend of budgets whose period ended (idempotent: every worker may)."""
        await self.database.reset_budgets()
        await self.keys.refresh()

    async def database_reachable(self) -> bool:
        try:
            async with asyncio.timeout(DB_CHECK_TIMEOUT_S), self.database.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except Exception:
            return False
        return True
