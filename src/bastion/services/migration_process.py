"""Migrate the schema in a short-lived child process when the serving process would
otherwise keep Alembic loaded.

Alembic, Mako and the migration scripts stay in memory once imported (about 10 MB
resident), and a single-worker ``bastion serve`` serves from the very process that
migrated. So when the database needs migrating, a forked child does it and exits;
the parent only reads the current revision. Where ``fork`` is not available the
migration runs in-process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
from multiprocessing.connection import Connection

from bastion.services.tenancy import LATEST_REVISION, current_revision, migrate_database
from bastion.storage.urls import DatabaseTarget

MIGRATION_TIMEOUT_S = 600.0


class MigrationFailedError(RuntimeError):
    pass


def migrate_outside(target: DatabaseTarget) -> str:
    """Bring the schema up to date (from synchronous code, before any event loop runs)."""
    if asyncio.run(current_revision(target)) == LATEST_REVISION:
        return LATEST_REVISION
    if sys.platform != "linux":
        return asyncio.run(migrate_database(target))
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_migrate_child, args=(target, sender), name="bastion-migrate")
    child.start()
    sender.close()
    try:
        if not receiver.poll(MIGRATION_TIMEOUT_S):
            child.kill()
            raise MigrationFailedError(f"the migration took over {MIGRATION_TIMEOUT_S:g} s")
        outcome, detail = receiver.recv()
    except EOFError:
        raise MigrationFailedError(f"the migration process died (exit {child.exitcode})") from None
    finally:
        child.join(10)
        receiver.close()
    if outcome != "ok":
        raise MigrationFailedError(detail)
    return str(detail)


def _migrate_child(target: DatabaseTarget, sender: Connection) -> None:
    try:
        revision = asyncio.run(migrate_database(target))
    except Exception as exc:
        sender.send(("error", f"{type(exc).__name__}: {exc}"))
    else:
        sender.send(("ok", revision))
    finally:
        sender.close()
