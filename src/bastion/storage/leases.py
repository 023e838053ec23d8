"""One runner at a time for a periodic job, across workers and replicas.

A job has a row in ``job_leases``. :func:`take_lease` claims it with ONE conditional
UPDATE — only when no live lease is held and the job is due (its last run is at
least ``every`` old) — so of several workers polling at once exactly one sees a
row count of 1: PostgreSQL's row lock and SQLite's single writer make the UPDATE
atomic. :func:`release_lease` records the run (or not, after a failure, so another
worker retries soon). A holder that dies keeps the lease until ``lease_until``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.storage.models import JobLease
from bastion.storage.models.base import table_of


async def take_lease(
    engine: AsyncEngine,
    job: str,
    holder: str,
    now: datetime,
    *,
    every: timedelta,
    ttl: timedelta,
) -> bool:
    """Claim ``job`` for ``holder`` until ``now + ttl`` if it is due and free."""
    table = table_of(JobLease)
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    async with engine.begin() as conn:
        await conn.execute(
            insert(table).values(name=job).on_conflict_do_nothing(index_elements=[table.c.name])
        )
        result = await conn.execute(
            sa.update(table)
            .where(
                table.c.name == job,
                sa.or_(table.c.lease_until.is_(None), table.c.lease_until <= now),
                sa.or_(table.c.last_run_at.is_(None), table.c.last_run_at <= now - every),
            )
            .values(holder=holder, lease_until=now + ttl)
        )
    return int(result.rowcount or 0) == 1


async def release_lease(
    engine: AsyncEngine, job: str, holder: str, *, ran_at: datetime | None
) -> None:
    """Give the lease back; ``ran_at`` (when the run started) is recorded unless None."""
    table = table_of(JobLease)
    values: dict[str, object] = {"holder": None, "lease_until": None}
    if ran_at is not None:
        values["last_run_at"] = ran_at
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(table).where(table.c.name == job, table.c.holder == holder).values(**values)
        )
