"""Budget spend totals on Redis (policy/shared_spend.py): additions sent after the answer.

Each call's additions are queued; those of one turn of the event loop leave as one
script call over the link's lean connection (many calls' additions together under
load), off the latency path. The script
adds the amount to each total and raises it to the sender's own view of the
spend when that is larger (re-seeding a total lost with a restart), then sets the
total to expire with its window. The new totals come back and refresh what this
worker has seen.

Keys (``prefix`` is ``general_settings.rate_limit_redis_prefix``, default
``bastion:rl:``): ``{prefix}spend:{entity kind}:{id}:{window}``, a decimal string.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from bastion.core.unanswered import Unanswered
from bastion.policy.shared_spend import Addition, SharedSpend
from bastion.storage.redis_link import UNREACHABLE, RedisLink
from bastion.storage.resp_client import LuaScript

logger = logging.getLogger("bastion.budgets")

# KEYS[i]: a total. ARGV: per key the amount, the floor and when it expires (unix s).
ADD_LUA = """
local out = {}
for i = 1, #KEYS do
  local a = 3 * i - 2
  local total = tonumber(redis.call('GET', KEYS[i]) or '0') + tonumber(ARGV[a])
  local floor = tonumber(ARGV[a + 1])
  if floor > total then total = floor end
  local text = string.format('%.12f', total)
  redis.call('SET', KEYS[i], text)
  redis.call('EXPIREAT', KEYS[i], ARGV[a + 2])
  out[i] = text
end
return out
"""
# Additions sent in one script call at most.
ADD_BATCH = 512


class RedisSpendSender:
    def __init__(self, link: RedisLink, shared: SharedSpend) -> None:
        self.link = link
        self.shared = shared
        self._add = LuaScript.of(ADD_LUA)
        self._queue: list[Addition] = []
        self._scheduled = False
        self._unanswered = Unanswered()
        self.lost = 0  # additions that could not be sent (Redis away)

    def send(self, additions: Sequence[Addition]) -> None:
        """Queue additions; those of one turn of the event loop leave together, written
        with the other Redis writes of that turn (storage/resp_client.py)."""
        self._queue.extend(additions)
        if not self._scheduled:
            try:
                asyncio.get_running_loop().call_soon(self._flush)
            except RuntimeError:  # no loop: nothing can be sent
                self._queue.clear()
                return
            self._scheduled = True

    def _flush(self) -> None:
        self._scheduled = False
        resp = self.link.resp
        forgotten = self.shared.take_forgotten()
        if forgotten:
            self._unanswered.sent()
            resp.queue("DEL", *forgotten, then=lambda reply: self._done(reply, 0))
        while self._queue:
            batch, self._queue = self._queue[:ADD_BATCH], self._queue[ADD_BATCH:]
            keys = [key for key, _, _, _ in batch]
            args: list[Any] = []
            for _, amount, floor, expires_at in batch:
                args += [str(amount), str(floor), expires_at]
            self._unanswered.sent()
            resp.queue_script(self._add, keys, args, functools.partial(self._added, keys))

    def _added(self, keys: list[str], reply: asyncio.Future[Any]) -> None:
        self._done(reply, len(keys), keys)

    def _done(self, reply: asyncio.Future[Any], count: int, keys: list[str] | None = None) -> None:
        exc = self._unanswered.answered(reply)
        if exc is None:
            if keys and not reply.cancelled():
                self.shared.seen(keys, reply.result())
            return
        if isinstance(exc, (*UNREACHABLE, RedisError)):
            self.link.failed(exc)
            self.shared.drop()
            self.lost += count
            return
        logger.error("could not add spend to %d shared budget totals: %s", count, exc)

    async def drain(self) -> None:
        """Wait until queued additions are sent and answered (shutdown, tests)."""
        while (
            self._queue
            or self._scheduled
            or self._unanswered.count
            or (self.shared.has_forgotten())
        ):
            if self._queue or self.shared.has_forgotten():
                self._flush()
            await self._unanswered.wait()
            await asyncio.sleep(0)  # a scheduled flush runs
