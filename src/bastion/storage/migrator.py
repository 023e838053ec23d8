"""Run the packaged Alembic migrations programmatically (no alembic.ini).

``await migrate(url)`` brings a database to the latest schema; the server calls it
at startup and ``bastion db upgrade`` calls it alone. Both PostgreSQL and SQLite
are supported; SQLite migrations use Alembic's batch mode.

To write a new migration after changing the models (developers only)::

    python -m bastion.storage.migrator revision "add foo to teams"
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.storage.database import create_engine
from bastion.storage.models import Base
from bastion.storage.urls import DatabaseTarget

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_LOCK_KEY = 0x6261_7374_696F_6E  # "bastion": the advisory lock that serialises migrations


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def migrate(url: str | DatabaseTarget | AsyncEngine, revision: str = "head") -> str:
    """Upgrade the database to ``revision``; returns the revision it is now at."""
    engine = url if isinstance(url, AsyncEngine) else create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, revision)
        return await current_revision(engine) or "base"
    finally:
        if engine is not url:
            await engine.dispose()


def _upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        # Replicas starting together: one migrates, the others wait and find it done.
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def schema_drift(engine: AsyncEngine) -> list[Any]:
    """Differences between the models and the migrated database (empty when they
    match); what ``alembic check`` reports."""
    async with engine.connect() as conn:
        return await conn.run_sync(_compare)


def _compare(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _revision(message: str) -> None:  # pragma: no cover - developer tool
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/autogen.db"
        asyncio.run(migrate(url))
        engine = create_engine(url)

        async def run() -> None:
            async with engine.begin() as conn:
                await conn.run_sync(_autogenerate, message)
            await engine.dispose()

        asyncio.run(run())


def _autogenerate(connection: Connection, message: str) -> None:  # pragma: no cover
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.revision(cfg, message=message, autogenerate=True)


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) == 3 and sys.argv[1] == "revision":
        _revision(sys.argv[2])
    else:
        print('usage: python -m bastion.storage.migrator revision "message"', file=sys.stderr)
        sys.exit(2)
