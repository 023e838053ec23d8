"""Counting calls sent without waiting for their replies (Redis writes queued behind
admissions, storage/resp_client.py), so that shutdown can wait for the last ones."""

from __future__ import annotations

import asyncio
from typing import Any


class Unanswered:
    """How many queued calls of one user are still waiting for their replies, and a way
    to wait until none are (draining at shutdown, tests)."""

    def __init__(self) -> None:
        self.count = 0
        self._none_left: asyncio.Event | None = None

    def sent(self, calls: int = 1) -> None:
        self.count += calls

    def answered(self, reply: asyncio.Future[Any]) -> BaseException | None:
        """Count a reply in; return its failure, if it failed (a cancelled call is no
        failure: its caller gave up)."""
        self.count -= 1
        if self.count == 0 and self._none_left is not None:
            self._none_left.set()
        return None if reply.cancelled() else reply.exception()

    async def wait(self) -> None:
        while self.count:
            self._none_left = asyncio.Event()
            await self._none_left.wait()
        self._none_left = None
