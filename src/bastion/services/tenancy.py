"""The database side of the gateway at run time: the engine and the in-memory key cache."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from bastion.policy.auth_cache import AuthCache
from bastion.storage.crypto import Cipher
from bastion.storage.database import Database
from bastion.storage.migrator import migrate
from bastion.storage.snapshot import AuthSnapshot, load_auth_snapshot
from bastion.storage.urls import DatabaseTarget, normalize_database_url, resolve_database_url

logger = logging.getLogger("bastion.storage")

DB_CHECK_TIMEOUT_S = 2.0


def database_target(configured_url: str | None) -> DatabaseTarget:
    """general_settings.database_url, else DATABASE_URL, else the SQLite file."""
    return normalize_database_url(resolve_database_url(configured_url))


async def migrate_database(target: DatabaseTarget) -> str:
    """Bring the schema to the newest revision (run once, before workers start)."""
    return await migrate(target)


@dataclass
class Tenancy:
    database: Database
    keys: AuthCache

    @classmethod
    def create(cls, target: DatabaseTarget, master_key: str | None) -> Tenancy:
        database = Database.connect(target, cipher=Cipher.from_environment(master_key))

        async def load(now: datetime) -> AuthSnapshot:
            return await load_auth_snapshot(database.engine, now)

        return cls(database=database, keys=AuthCache(load))

    async def start(self) -> None:
        try:
            await self.keys.start()
        except Exception as exc:
            # Serve what needs no database (the master key); keys arrive when it returns.
            logger.error("could not load virtual keys from the database: %s", exc)
            self.keys.start_polling()

    async def stop(self) -> None:
        await self.keys.stop()
        await self.database.dispose()

    async def database_reachable(self) -> bool:
        try:
            async with asyncio.timeout(DB_CHECK_TIMEOUT_S), self.database.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except Exception:
            return False
        return True
