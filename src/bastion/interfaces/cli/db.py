"""``bastion db upgrade``: bring the database to the latest schema and exit.

The URL comes from ``--database-url``, else the config's
``general_settings.database_url``, else ``DATABASE_URL``, else the embedded SQLite
file (``BASTION_DB_PATH``, default ``./bastion.db``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from bastion.core.errors import ConfigError


def add_db_parser(sub: Any) -> None:
    """Register the ``db`` command on the CLI's subparsers."""
    db = sub.add_parser("db", help="database tools")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply database migrations (create or update)")
    upgrade.add_argument(
        "--config",
        "-c",
        default=os.environ.get("BASTION_CONFIG") or os.environ.get("CONFIG_FILE_PATH"),
        help="LiteLLM-format config whose general_settings.database_url to use",
    )
    upgrade.add_argument("--database-url", help="database URL (overrides config and env)")


def run_db_command(args: argparse.Namespace) -> int:
    if args.db_command == "upgrade":
        return _upgrade(args)
    return 2  # pragma: no cover - argparse requires a known subcommand


def _upgrade(args: argparse.Namespace) -> int:
    # Imported here: SQLAlchemy and Alembic load only for this command, not for every CLI start.
    from bastion.storage.migrator import migrate
    from bastion.storage.urls import DatabaseURLError, normalize_database_url, resolve_database_url

    try:
        configured = args.database_url or _configured_url(args.config)
        target = normalize_database_url(resolve_database_url(configured))
    except (ConfigError, DatabaseURLError) as exc:
        print(f"bastion: {exc}", file=sys.stderr)
        return 1
    try:
        revision = asyncio.run(migrate(target))
    except Exception as exc:  # a connection or migration failure: say where, not a traceback
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(
            f"bastion: database upgrade failed for {target.redacted()}: "
            f"{type(exc).__name__}: {detail}",
            file=sys.stderr,
        )
        return 1
    print(f"database {target.redacted()} is at revision {revision} (latest)")
    return 0


def _configured_url(config_path: str | None) -> str | None:
    if not config_path:
        return None
    from bastion.config.loader import load_config_file

    loaded = load_config_file(config_path)
    url = loaded.config.general_settings.database_url
    return url or None
