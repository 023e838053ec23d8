"""Where the database is: resolve and normalise the URL to an async driver.

LiteLLM users write ``postgresql://user:pass@host/db`` (sometimes with Prisma's
``?schema=…`` or libpq's ``?sslmode=…``) and ``DATABASE_URL``. Bastion talks to
PostgreSQL through asyncpg and to SQLite through aiosqlite, so plain URLs are
rewritten; the embedded default is a SQLite file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DATABASE_URL_ENV = "DATABASE_URL"
DB_PATH_ENV = "BASTION_DB_PATH"
DEFAULT_DB_PATH = "bastion.db"

# libpq / Prisma query parameters asyncpg does not take as connect() arguments.
_PG_DROPPED_PARAMS = frozenset({"connection_limit", "pool_timeout", "pgbouncer", "socket_timeout"})


class DatabaseURLError(ValueError):
    """A database URL Bastion cannot use; the message says what would work."""


@dataclass(frozen=True)
class DatabaseTarget:
    """A normalised URL plus the driver arguments that cannot live in it."""

    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    def redacted(self) -> str:
        """The URL with any password hidden, safe for logs and messages."""
        return self.url.render_as_string(hide_password=True)


def resolve_database_url(
    configured: str | None = None, env: Mapping[str, str] | None = None
) -> str:
    """``general_settings.database_url``, else ``DATABASE_URL``, else a SQLite file
    (``BASTION_DB_PATH``, default ``./bastion.db``)."""
    environ = os.environ if env is None else env
    url = (configured or "").strip() or environ.get(DATABASE_URL_ENV, "").strip()
    if url:
        return url
    path = Path(environ.get(DB_PATH_ENV, "").strip() or DEFAULT_DB_PATH).expanduser()
    return f"sqlite+aiosqlite:///{path.resolve()}"


def normalize_database_url(raw: str) -> DatabaseTarget:
    """Rewrite ``raw`` to the async driver Bastion uses (asyncpg or aiosqlite)."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise DatabaseURLError(
            "invalid database URL: expected postgresql://user:password@host:5432/dbname "
            "or sqlite:///path/to/file.db"
        ) from None
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return _postgres(url)
    if backend == "sqlite":
        return DatabaseTarget(url.set(drivername="sqlite+aiosqlite"))
    raise DatabaseURLError(
        f"unsupported database {backend!r}: Bastion stores its state in PostgreSQL "
        "(postgresql://…) or SQLite (sqlite:///path.db)"
    )


def _postgres(url: URL) -> DatabaseTarget:
    query = dict(url.query)
    connect_args: dict[str, Any] = {}
    schema = query.pop("schema", None) or query.pop("currentSchema", None)
    if isinstance(schema, str) and schema and schema != "public":
        connect_args["server_settings"] = {"search_path": schema}
    sslmode = query.pop("sslmode", None)
    if isinstance(sslmode, str) and sslmode and "ssl" not in query:
        query["ssl"] = sslmode
    connect_timeout = query.pop("connect_timeout", None)
    if isinstance(connect_timeout, str) and connect_timeout:
        connect_args["timeout"] = float(connect_timeout)
    for name in _PG_DROPPED_PARAMS:
        query.pop(name, None)
    return DatabaseTarget(
        url.set(drivername="postgresql+asyncpg", query=query), connect_args=connect_args
    )
