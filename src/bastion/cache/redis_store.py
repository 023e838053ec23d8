"""The Redis store: one GET per lookup; a SET with an expiry after the answer has
gone, as a background task (never on the client's latency path).

Redis trouble never fails a request: while the link is down (storage/redis_link.py)
the cache is bypassed without waiting on Redis, the outage is logged once, and the
link's background ping brings the cache back when Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import RedisError

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
        self._pending: set[asyncio.Task[None]] = set()
        self._said_down = False

    async def start(self) -> None:
        if self.owns_link:
            await self.link.start()

    async def stop(self) -> None:
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=2)
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
            value = await self.link.client.get(key)
        except UNREACHABLE as exc:
            self._failed(exc)
            return None
        except RedisError as exc:
            self._error("read", exc)
            return None
        return value if isinstance(value, bytes) else None

    def put(self, key: str, value: bytes, ttl: float) -> bool:
        if len(self._pending) >= MAX_PENDING_WRITES:
            self.dropped_writes += 1
            return False
        task = asyncio.get_running_loop().create_task(self._write(key, value, ttl))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return True

    def status(self) -> dict[str, Any]:
        return {
            "redis": self.link.status(),
            "errors": self.errors,
            "dropped_writes": self.dropped_writes,
        }

    async def _write(self, key: str, value: bytes, ttl: float) -> None:
        try:
            await self.link.client.set(key, value, px=max(1, int(ttl * 1000)))
        except UNREACHABLE as exc:
            self._failed(exc)
        except RedisError as exc:
            self._error("write", exc)

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
