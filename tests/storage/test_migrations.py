"""Migrations from an empty database on SQLite and PostgreSQL, URL handling, the CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from bastion.interfaces.cli.main import main
from bastion.storage import create_engine, migrate
from bastion.storage.migrator import MIGRATIONS_DIR, current_revision, head_revision, schema_drift
from bastion.storage.models import Base
from bastion.storage.urls import DatabaseURLError, normalize_database_url, resolve_database_url


async def test_upgrade_from_empty_creates_every_table_and_matches_the_models(
    fresh_database_url: str,
) -> None:
    assert await migrate(fresh_database_url) == head_revision()
    engine = create_engine(fresh_database_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert set(Base.metadata.tables) <= tables
        assert "alembic_version" in tables
        # `alembic check`: the migrations produce exactly what the models describe.
        assert await schema_drift(engine) == []
        assert await current_revision(engine) == head_revision()
        # Running again is a no-op.
        assert await migrate(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_replicas_migrating_at_once_do_not_collide(fresh_database_url: str) -> None:
    if not fresh_database_url.startswith("postgresql"):
        pytest.skip("several replicas share PostgreSQL; SQLite is one process's file")
    runs = asyncio.gather(*(migrate(fresh_database_url) for _ in range(3)))
    results = await asyncio.wait_for(runs, timeout=60)  # fail, never hang the suite
    assert results == [head_revision()] * 3


async def test_drift_is_detected(fresh_database_url: str) -> None:
    await migrate(fresh_database_url)
    engine = create_engine(fresh_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP INDEX ix_spend_logs_model_start_time"))
        diffs = await schema_drift(engine)
        assert any("ix_spend_logs_model_start_time" in repr(d) for d in diffs)
    finally:
        await engine.dispose()


def test_migration_files_ship_inside_the_package() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert list((MIGRATIONS_DIR / "versions").glob("r0001_*.py"))
    assert "bastion" in MIGRATIONS_DIR.parts and "storage" in MIGRATIONS_DIR.parts


def test_cli_db_upgrade(
    fresh_database_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"general_settings:\n  database_url: {fresh_database_url}\n")
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"is at revision {head_revision()}" in out


def test_cli_db_upgrade_reports_an_unreachable_database(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "postgresql://bastion:s3cret-pw@127.0.0.1:1/nowhere"
    assert main(["db", "upgrade", "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert "database upgrade failed for postgresql+asyncpg://bastion:***@127.0.0.1:1/nowhere" in err
    assert "s3cret-pw" not in err


def test_cli_db_upgrade_uses_database_url_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert main(["db", "upgrade"]) == 0
    assert (tmp_path / "env.db").is_file()
    assert "env.db is at revision" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:***@h:5432/db"),
        ("postgres://u:p@h/db", "postgresql+asyncpg://u:***@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql+asyncpg://u@h/db?ssl=require"),
        ("postgresql://u@h/db?connection_limit=5&pool_timeout=3", "postgresql+asyncpg://u@h/db"),
        ("sqlite:////var/lib/bastion.db", "sqlite+aiosqlite:////var/lib/bastion.db"),
        ("sqlite:///rel.db", "sqlite+aiosqlite:///rel.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_urls_are_normalised_to_async_drivers(raw: str, expected: str) -> None:
    assert normalize_database_url(raw).redacted() == expected


def test_prisma_schema_parameter_becomes_search_path() -> None:
    target = normalize_database_url("postgresql://u@h/db?schema=tenant1&connect_timeout=7")
    assert target.connect_args == {"server_settings": {"search_path": "tenant1"}, "timeout": 7.0}
    assert target.redacted() == "postgresql+asyncpg://u@h/db"


@pytest.mark.parametrize("raw", ["mysql://u@h/db", "not a url", "mssql+pyodbc://h/db"])
def test_unsupported_urls_say_what_works(raw: str) -> None:
    with pytest.raises(DatabaseURLError, match=r"postgresql://.*sqlite:///"):
        normalize_database_url(raw)


def test_resolution_order(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql://env/db", "BASTION_DB_PATH": str(tmp_path / "b.db")}
    assert resolve_database_url("postgresql://config/db", env) == "postgresql://config/db"
    assert resolve_database_url(None, env) == "postgresql://env/db"
    assert resolve_database_url("", {"BASTION_DB_PATH": str(tmp_path / "b.db")}) == (
        f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    )
    default = resolve_database_url(None, {})
    assert default.startswith("sqlite+aiosqlite:///") and default.endswith("/bastion.db")
