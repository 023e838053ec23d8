"""Background work run every few seconds for the life of the process (reloading a
snapshot, a retention pass, a budget reset): a failure is logged and the work is
simply tried again at the next tick, so a database that is away costs a log line,
never the task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


class Periodic:
    def __init__(
        self,
        work: Callable[[], Awaitable[object]],
        interval: float | Callable[[], float],
        *,
        failure: str,
        logger: logging.Logger,
    ) -> None:
        """``interval``: seconds (or a callable read before each wait, for settings that
        tests change); ``failure``: the log message's start when a run fails."""
        self._work = work
        self._interval = interval
        self._failure = failure
        self._logger = logger
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        """Start ticking (the first run is one interval from now); idempotent."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            interval = self._interval() if callable(self._interval) else self._interval
            await asyncio.sleep(interval)
            try:
                await self._work()
            except Exception as exc:
                self._logger.warning("%s: %s", self._failure, exc)
