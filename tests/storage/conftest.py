"""A migrated database per kind for the session, emptied before each test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bastion.storage import Cipher, Database, migrate
from bastion.storage.models import Base

SALT = "test-salt-key-0123456789abcdef"


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(scope="session")
def migrated_url(database_url: str) -> str:
    asyncio.run(migrate(database_url))
    return database_url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 3, 12, 15, 30, tzinfo=UTC))  # a Wednesday


@pytest.fixture
async def db(migrated_url: str, clock: FakeClock) -> AsyncIterator[Database]:
    database = Database.connect(migrated_url, cipher=Cipher(SALT), clock=clock)
    await _empty(database)
    yield database
    await database.dispose()


async def _empty(database: Database) -> None:
    tables = list(reversed(Base.metadata.sorted_tables))
    async with database.engine.begin() as conn:
        if database.dialect == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            await conn.execute(sa.text(f"TRUNCATE {names} CASCADE"))
        else:
            for table in tables:
                await conn.execute(table.delete())
