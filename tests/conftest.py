"""Fixtures shared by every test directory: real databases.

``database_url`` is parametrized over SQLite (a temp file) and PostgreSQL at
127.0.0.1:5432 (``BASTION_TEST_POSTGRES_URL`` to point elsewhere). Each test
session gets its own uniquely named PostgreSQL database, dropped at the end.
When PostgreSQL is unreachable the PostgreSQL cases are skipped with the reason,
unless ``BASTION_REQUIRE_SERVICES=1`` (set by CI), where they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_service import redis_prefix, redis_url  # noqa: F401 (fixtures)

POSTGRES_ADMIN_URL = os.environ.get(
    "BASTION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
DATABASE_KINDS = ("sqlite", "postgresql")


def _require_services() -> bool:
    return os.environ.get("BASTION_REQUIRE_SERVICES", "") not in ("", "0", "false")


async def _pg_execute(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _with_database(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


class PostgresServer:
    """The reachable server; makes and drops throwaway databases."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def create_database(self) -> str:
        name = f"bastion_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        asyncio.run(_pg_execute(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return _with_database(POSTGRES_ADMIN_URL, name)

    def drop_database(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        name = make_url(url).database
        asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        asyncio.run(_pg_execute("SELECT 1"))
    except Exception as exc:
        reason = (
            f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL} ({type(exc).__name__}: {exc}); "
            "start it or set BASTION_TEST_POSTGRES_URL"
        )
        if _require_services():
            pytest.fail(f"{reason} [BASTION_REQUIRE_SERVICES=1]")
        pytest.skip(reason)
    server = PostgresServer()
    yield server
    for name in list(server.created):
        server.drop_database(_with_database(POSTGRES_ADMIN_URL, name))


@pytest.fixture(scope="session")
def postgresql_database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A PostgreSQL database of this test session's own, dropped afterwards."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(scope="session")
def sqlite_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "bastion.db"
    return f"sqlite:///{path}"


@pytest.fixture(scope="session", params=DATABASE_KINDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """One session database per kind (empty: not migrated)."""
    return str(request.getfixturevalue(f"{request.param}_database_url"))


@pytest.fixture(params=DATABASE_KINDS)
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database for one test (SQLite file or PostgreSQL database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(url)
