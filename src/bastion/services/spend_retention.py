"""Spend-log retention: ``general_settings.maximum_spend_logs_retention_period``.

Every worker polls; the one that takes the ``spend_logs_retention`` lease
(storage/leases.py) deletes the ``spend_logs`` rows that started before
``now - period``, in chunks (storage.spend.delete_spend_logs_older_than). The lease
remembers when the job last ran, so it runs once per
``maximum_spend_logs_retention_interval`` (default ``1d``, as LiteLLM) across all
workers and replicas sharing the database. Daily aggregates are never deleted.
"""

from __future__ import annotations

import calendar
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bastion.core.periodic import Periodic
from bastion.policy.durations import Duration, parse_duration

logger = logging.getLogger("bastion.spend")

JOB = "spend_logs_retention"
DEFAULT_INTERVAL = "1d"
LEASE_TTL = timedelta(hours=1)  # a runner that dies frees the job after this long
MAX_POLL_S = 60.0


def retention_cutoff(now: datetime, period: Duration) -> datetime:
    """``now`` less ``period``; months are calendar months (the day clamped)."""
    fixed = period.fixed_length
    if fixed is not None:
        return now - fixed
    month_index = now.year * 12 + now.month - 1 - period.amount
    year, month = divmod(month_index, 12)
    day = min(now.day, calendar.monthrange(year, month + 1)[1])
    return now.replace(year=year, month=month + 1, day=day)


def _length(duration: Duration) -> timedelta:
    return duration.fixed_length or timedelta(days=30 * duration.amount)


class SpendLogRetention:
    def __init__(
        self,
        engine: AsyncEngine,
        period: str,
        interval: str | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        holder: str | None = None,
    ) -> None:
        self.engine = engine
        self.period = parse_duration(period, field="maximum_spend_logs_retention_period")
        self.interval = _length(
            parse_duration(
                interval or DEFAULT_INTERVAL, field="maximum_spend_logs_retention_interval"
            )
        )
        self.clock = clock
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.poll_s = min(self.interval.total_seconds(), MAX_POLL_S)
        self._poller = Periodic(
            self.run_once,
            lambda: self.poll_s,
            failure="spend-log retention failed (retried)",
            logger=logger,
        )

    async def run_once(self) -> int | None:
        """Delete old rows if this worker wins the job; the count deleted, or None when
        the job was not due or another worker holds it."""
        from bastion.storage.leases import release_lease, take_lease
        from bastion.storage.spend import delete_spend_logs_older_than

        now = self.clock()
        if not await take_lease(
            self.engine, JOB, self.holder, now, every=self.interval, ttl=LEASE_TTL
        ):
            return None
        try:
            deleted = await delete_spend_logs_older_than(
                self.engine, retention_cutoff(now, self.period)
            )
        except BaseException:
            await release_lease(self.engine, JOB, self.holder, ran_at=None)
            raise
        await release_lease(self.engine, JOB, self.holder, ran_at=now)
        logger.info("spend-log retention: deleted %d rows older than %s", deleted, self.period)
        return deleted

    def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()
