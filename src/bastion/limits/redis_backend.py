"""Counters on Redis: one Lua script checks and counts every counter at once.

Keys (``prefix`` defaults to ``bastion:rl:``):

- ``{prefix}rpm:{scope}:{window}`` / ``{prefix}tpm:{scope}:{window}``: integers
  that expire two windows after they start;
- ``{prefix}par:{scope}``: a sorted set of the requests in flight, scored by
  when their slot lapses (now + :data:`LEASE_S`). A worker that dies holding
  slots cannot leak them for longer than the lease.

Admission is one ``EVALSHA`` (redis-py loads the script again after a Redis
restart). Settling after the call is a second script, sent in the background.
Every key the scripts touch is passed in KEYS, so Redis-compatible servers that
insist on declared keys (Dragonfly) run them unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from bastion.limits.backend import Decision
from bastion.limits.counters import WINDOW_S, Counter, Kind, window_of

DEFAULT_PREFIX = "bastion:rl:"
LEASE_S = 600
KEY_TTL_S = 2 * WINDOW_S

# KEYS[i]: counter i. ARGV: now, request id, lease, ttl, tokens, then per counter
# its kind (r, t, p) and limit. Returns {1, v1..vn} or {0, i, v_i}.
ACQUIRE_LUA = """
local now = tonumber(ARGV[1])
local rid = ARGV[2]
local lease = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local tokens = tonumber(ARGV[5])
local values = {}
for i = 1, #KEYS do
  local kind = ARGV[4 + 2 * i]
  local limit = tonumber(ARGV[5 + 2 * i])
  local used
  if kind == 'p' then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    used = redis.call('ZCARD', KEYS[i])
  else
    used = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  if used >= limit then
    return {0, i, used}
  end
  values[i] = used
end
local out = {1}
for i = 1, #KEYS do
  local kind = ARGV[4 + 2 * i]
  if kind == 'r' then
    out[i + 1] = redis.call('INCR', KEYS[i])
    redis.call('EXPIRE', KEYS[i], ttl)
  elseif kind == 't' then
    out[i + 1] = redis.call('INCRBY', KEYS[i], tokens)
    redis.call('EXPIRE', KEYS[i], ttl)
  else
    redis.call('ZADD', KEYS[i], now + lease, rid)
    redis.call('EXPIRE', KEYS[i], lease)
    out[i + 1] = values[i] + 1
  end
end
return out
"""

# KEYS: the tpm keys, then the parallel keys. ARGV: number of tpm keys, delta, request id.
SETTLE_LUA = """
local ntpm = tonumber(ARGV[1])
local delta = tonumber(ARGV[2])
for i = 1, ntpm do
  if delta ~= 0 and redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCRBY', KEYS[i], delta)
  end
end
for i = ntpm + 1, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[3])
end
return 1
"""

_KIND_CODE = {Kind.RPM: "r", Kind.TPM: "t", Kind.PARALLEL: "p"}


class RedisBackend:
    name = "redis"

    def __init__(self, client: Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._settle = client.register_script(SETTLE_LUA)

    def key_of(self, counter: Counter, window: int) -> str:
        if counter.kind is Kind.PARALLEL:
            return f"{self.prefix}par:{counter.scope}"
        return f"{self.prefix}{counter.kind.value}:{counter.scope}:{window}"

    async def acquire(
        self, counters: Sequence[Counter], tokens: int, request_id: str, now: float
    ) -> Decision:
        window = window_of(now)
        keys = [self.key_of(c, window) for c in counters]
        args: list[Any] = [repr(now), request_id, LEASE_S, KEY_TTL_S, tokens]
        for counter in counters:
            args.append(_KIND_CODE[counter.kind])
            args.append(counter.limit)
        reply = await self._acquire(keys=keys, args=args)
        if int(reply[0]) == 1:
            return Decision(True, window, [int(v) for v in reply[1:]])
        refused = int(reply[1]) - 1
        values = [0] * len(counters)
        values[refused] = int(reply[2])
        return Decision(False, window, values, refused)

    async def settle(
        self, counters: Sequence[Counter], window: int, token_delta: int, request_id: str
    ) -> None:
        tpm = (
            [self.key_of(c, window) for c in counters if c.kind is Kind.TPM] if token_delta else []
        )
        parallel = [self.key_of(c, window) for c in counters if c.kind is Kind.PARALLEL]
        if not tpm and not parallel:
            return
        await self._settle(keys=[*tpm, *parallel], args=[len(tpm), token_delta, request_id])
