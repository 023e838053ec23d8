"""The Redis store: one GET per lookup; a SET with an expiry after the answer has
gone, queued with the other Redis writes of that turn of the event loop (never on
the client's latency path). Both go over the link's lean pipelined connection
(storage/resp_client.py). With the rate limiter on the same Redis, a lookup does
not even need its GET: the entry is read in the admission's round trip
(limits/limiter.py, ``LimitTicket.read_cache``).

Redis trouble never fails a request: while the link is down (storage/redis_link.py)
the cache is bypassed without waiting on Redis, the outage is logged once, and the
link's background ping brings the cache back when Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis.exceptions import RedisError

from bastion.core.unanswered import Unanswered
from bastion.storage.redis_link import UNREACHABLE, RedisLink

logger = logging.getLogger("bastion.cache")

MAX_PENDING_WRITES = 256


class RedisStore:
    name = "redis"

    def __init__(self, link: RedisLink, *, owns_link: bool = True) -> None:
        self.link = link
        self.owns_link = owns_link  # False when the rate limiter's link is shared
        self.errors = 0
        self.dropped_writes = 0
        self._writes = Unanswered()
        self._said_down = False

    async def start(self) -> None:
        if self.owns_link:
            await self.link.start()

    async def stop(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._writes.wait(), 2)
        if self.owns_link:
            await self.link.stop()

    def usable(self) -> bool:
        if self.link.up:
            self._said_down = False
            return True
        if not self._said_down:
            self._said_down = True
            logger.warning(
                "response cache bypassed: Redis at %s is unreachable (answers are neither "
                "read from nor written to the cache until it returns)",
                self.link.settings.display,
            )
        return False

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.link.resp.call("GET", key)
        except UNREACHABLE as exc:
            self._failed(exc)
            return None
        except RedisError as exc:
            self._error("read", exc)
            return None
        return value if isinstance(value, bytes) else None

    def put(self, key: str, value: bytes, ttl: float) -> bool:
        if self._writes.count >= MAX_PENDING_WRITES:
            self.dropped_writes += 1
            return False
        self._writes.sent()
        self.link.resp.queue("SET", key, value, "PX", max(1, int(ttl * 1000)), then=self._stored)
        return True

    def status(self) -> dict[str, Any]:
        return {
            "redis": self.link.status(),
            "errors": self.errors,
            "dropped_writes": self.dropped_writes,
        }

    def _stored(self, reply: asyncio.Future[Any]) -> None:
        exc = self._writes.answered(reply)
        if exc is None:
            return
        if isinstance(exc, UNREACHABLE):
            self._failed(exc)
        elif isinstance(exc, RedisError):
            self._error("write", exc)
        else:
            self.errors += 1
            logger.error("response cache write failed: %s", exc)

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        self.link.failed(exc)
        self.usable()  # logs the bypass once

    def _error(self, what: str, exc: RedisError) -> None:
        self.errors += 1
        if self.errors == 1 or self.errors % 1000 == 0:
            logger.warning(
                "response cache %s failed (%s: %s); the request was served without the cache "
                "(%d cache errors so far)",
                what,
                type(exc).__name__,
                exc,
                self.errors,
            )
