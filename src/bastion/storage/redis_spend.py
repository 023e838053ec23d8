"""Budget spend totals on Redis (policy/shared_spend.py): additions sent after the answer.

Each call's additions are queued; one task sends the queue as one script call
(many calls' additions together under load), off the latency path. The script
adds the amount to each total and raises it to the sender's own view of the
spend when that is larger (re-seeding a total lost with a restart), then sets the
total to expire with its window. The new totals come back and refresh what this
worker has seen.

Keys (``prefix`` is ``general_settings.rate_limit_redis_prefix``, default
``bastion:rl:``): ``{prefix}spend:{entity kind}:{id}:{window}``, a decimal string.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from bastion.policy.shared_spend import Addition, SharedSpend
from bastion.storage.redis_link import UNREACHABLE, RedisLink

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
        self._add = link.client.register_script(ADD_LUA)
        self._queue: list[Addition] = []
        self._task: asyncio.Task[None] | None = None
        self.lost = 0  # additions that could not be sent (Redis away)

    def send(self, additions: Sequence[Addition]) -> None:
        self._queue.extend(additions)
        if self._task is None or self._task.done():
            try:
                self._task = asyncio.get_running_loop().create_task(self._flush())
            except RuntimeError:  # no loop: nothing can be sent
                self._queue.clear()

    async def _flush(self) -> None:
        while self._queue or self.shared.has_forgotten():
            batch, self._queue = self._queue[:ADD_BATCH], self._queue[ADD_BATCH:]
            try:
                forgotten = self.shared.take_forgotten()
                if forgotten:
                    await self.link.client.delete(*forgotten)
                if batch:
                    await self._send(batch)
            except (*UNREACHABLE, RedisError) as exc:
                self.link.failed(exc)
                self.shared.drop()
                self.lost += len(batch) + len(self._queue)
                self._queue.clear()
                return
            except Exception:
                logger.exception("could not add spend to %d shared budget totals", len(batch))

    async def _send(self, batch: Sequence[Addition]) -> None:
        keys = [key for key, _, _, _ in batch]
        args: list[Any] = []
        for _, amount, floor, expires_at in batch:
            args += [str(amount), str(floor), expires_at]
        totals = await self._add(keys=keys, args=args)
        self.shared.seen(keys, totals)

    async def drain(self) -> None:
        """Wait until queued additions are sent (shutdown, tests)."""
        while self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)
