"""The background runner shared by snapshot reloads, retention and budget resets."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bastion.core.periodic import Periodic


async def test_a_failed_run_is_logged_and_retried_at_the_next_tick(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []
    third = asyncio.Event()

    async def work() -> None:
        runs.append(len(runs))
        if len(runs) == 3:
            third.set()
        if len(runs) == 1:
            raise RuntimeError("database away")

    periodic = Periodic(work, 0.01, failure="reload failed", logger=logging.getLogger("t"))
    periodic.start()
    periodic.start()  # idempotent: one task
    await asyncio.wait_for(third.wait(), 2)
    await periodic.stop()
    assert not periodic.running
    stopped_at = len(runs)
    await asyncio.sleep(0.05)
    assert len(runs) == stopped_at  # nothing runs after stop
    assert "reload failed: database away" in caplog.text


async def test_the_interval_is_read_before_each_wait() -> None:
    interval = [10.0]
    runs: list[None] = []

    async def work() -> None:
        runs.append(None)
        interval[0] = 10.0

    periodic = Periodic(work, lambda: interval[0], failure="x", logger=logging.getLogger("t"))
    interval[0] = 0.01
    periodic.start()
    await asyncio.sleep(0.1)
    await periodic.stop()
    assert len(runs) == 1  # the second wait read the new, long interval
