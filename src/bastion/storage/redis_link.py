"""One Redis client per process, and whether Redis is reachable right now.

Users of the link (the rate limiter, shared budgets, the response cache, the
routing state store) call Redis directly: per-request calls and writes through
:attr:`RedisLink.resp` (one lean pipelined connection, storage/resp_client.py),
periodic work through redis-py's :attr:`RedisLink.client`. They report a failure
with :meth:`RedisLink.failed`. The link then counts as down:
users fall back (local counters) without waiting on Redis again, the outage is
logged once, and a background task pings Redis with a growing pause (0.5 s up to
30 s) until it answers; then the link is up again and that is logged once too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bastion.config.redis_settings import RedisSettings
from bastion.storage.resp_client import RespClient

logger = logging.getLogger("bastion.redis")

# Errors that mean "Redis is not there" (anything else is a bug or a bad script).
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)

CONNECT_TIMEOUT_S = 0.5
COMMAND_TIMEOUT_S = 1.0
FIRST_RETRY_S = 0.5
MAX_RETRY_S = 30.0


def make_client(settings: RedisSettings) -> Redis:
    options: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_timeout": COMMAND_TIMEOUT_S,
        "health_check_interval": 30,
        # Fail fast: an outage is handled by the link (local counters), not by retrying.
        "retry": Retry(NoBackoff(), 0),
    }
    if settings.url:
        return Redis.from_url(settings.url, **options)
    return Redis(
        host=settings.host,
        port=settings.port,
        password=settings.password,
        username=settings.username,
        db=settings.db,
        ssl=settings.ssl,
        **options,
    )


class RedisLink:
    def __init__(
        self,
        settings: RedisSettings,
        client: Redis | None = None,
        *,
        first_retry: float = FIRST_RETRY_S,
        max_retry: float = MAX_RETRY_S,
    ) -> None:
        self.settings = settings
        self.client = client if client is not None else make_client(settings)
        # The per-request calls (admission, settling, spend, cache) go over one lean
        # pipelined connection to the same server (storage/resp_client.py).
        self.resp = RespClient.like(self.client)
        self.up = True
        self.down_since: float | None = None
        self.last_error: str | None = None
        self._first_retry = first_retry
        self._max_retry = max_retry
        self._reconnect: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Ping once; an unreachable Redis is reported, not fatal."""
        try:
            await self.client.ping()
        except UNREACHABLE as exc:
            self.failed(exc)
            return
        logger.info("Redis at %s (%s) is reachable", self.settings.display, self.settings.source)

    async def stop(self) -> None:
        if self._reconnect is not None:
            self._reconnect.cancel()
            await asyncio.gather(self._reconnect, return_exceptions=True)
            self._reconnect = None
        with contextlib.suppress(Exception):  # closing a broken connection may fail
            await self.resp.close()
        with contextlib.suppress(Exception):
            await self.client.aclose()

    def failed(self, exc: BaseException) -> None:
        """Note that a call to Redis failed for want of Redis: log once, retry in the background."""
        self.last_error = f"{type(exc).__name__}: {exc}"
        if not self.up:
            return
        self.up = False
        self.down_since = time.time()
        logger.error(
            "Redis at %s is unreachable (%s): serving on local counters until it returns",
            self.settings.display,
            self.last_error,
        )
        if self._reconnect is None or self._reconnect.done():
            try:
                self._reconnect = asyncio.get_running_loop().create_task(self._wait_for_redis())
            except RuntimeError:  # no loop (a synchronous test): nothing will reconnect
                self._reconnect = None

    def status(self) -> dict[str, Any]:
        """For readiness details: where Redis is and whether it answers."""
        details: dict[str, Any] = {
            "url": self.settings.display,
            "configured_by": self.settings.source,
            "status": "connected" if self.up else "unreachable",
        }
        if not self.up:
            details["down_since"] = self.down_since
            details["error"] = self.last_error
        return details

    async def _wait_for_redis(self) -> None:
        pause = self._first_retry
        while True:
            await asyncio.sleep(pause)
            try:
                await self.client.ping()
            except UNREACHABLE as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                pause = min(pause * 2, self._max_retry)
                continue
            except Exception as exc:  # e.g. an auth error: keep trying, say why
                self.last_error = f"{type(exc).__name__}: {exc}"
                pause = min(pause * 2, self._max_retry)
                continue
            outage = time.time() - (self.down_since or time.time())
            self.up = True
            self.down_since = None
            self.last_error = None
            logger.warning(
                "Redis at %s is reachable again after %.1fs: back on shared counters",
                self.settings.display,
                outage,
            )
            return
