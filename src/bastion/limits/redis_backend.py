"""Counters on Redis: one Lua script checks and counts every counter at once.

Keys (``prefix`` defaults to ``bastion:rl:``):

- ``{prefix}rpm:{scope}:{window}`` / ``{prefix}tpm:{scope}:{window}``: integers
  that expire two windows after they start;
- ``{prefix}par:{scope}``: a sorted set of the requests in flight, scored by
  when their slot lapses (now + :data:`LEASE_S`). A worker that dies holding
  slots cannot leak them for longer than the lease.

Admission is one ``EVALSHA`` over the link's lean pipelined connection
(storage/resp_client.py, which loads the script again after a Redis restart):
each request has exactly one round trip and waits for no other. Settling after
the call is a second script, queued with whatever else leaves in the same turn of
the event loop, for many requests at once (see limits/limiter.py).
Keys named in ``reads`` (shared budget totals, policy/shared_spend.py; the response
cache's entry, cache/service.py) follow the counters in KEYS: the script returns
their values after the counters', so a budget check and a cache lookup ride on the
admission's round trip.
Every key the scripts touch is passed in KEYS, so Redis-compatible servers that
insist on declared keys (Dragonfly) run them unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bastion.limits.backend import DEFAULT_PREFIX, Decision
from bastion.limits.counters import WINDOW_S, Counter, Kind, window_of
from bastion.storage.resp_client import LuaScript, OnReply, RespClient

LEASE_S = 600
KEY_TTL_S = 2 * WINDOW_S

# KEYS[i]: counter i (i <= n), then keys only read. ARGV: now, request id, lease,
# ttl, tokens, then per counter its kind (r, t, p) and limit.
# Returns {1, v1..vn, read values} or {0, i, v_i}.
ACQUIRE_LUA = """
local now = tonumber(ARGV[1])
local rid = ARGV[2]
local lease = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local tokens = tonumber(ARGV[5])
local n = (#ARGV - 5) / 2
local values = {}
for i = 1, n do
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
for i = 1, n do
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
for i = n + 1, #KEYS do
  out[i + 1] = redis.call('GET', KEYS[i])
end
return out
"""

# Many requests' settlements at once. ARGV: per request, 4 values: its number of tpm
# keys, of parallel keys, the token correction and its id; KEYS: those keys in order.
SETTLE_LUA = """
local k = 1
local a = 1
while a <= #ARGV do
  local ntpm = tonumber(ARGV[a])
  local npar = tonumber(ARGV[a + 1])
  local delta = tonumber(ARGV[a + 2])
  local rid = ARGV[a + 3]
  a = a + 4
  for i = 1, ntpm do
    if delta ~= 0 and redis.call('EXISTS', KEYS[k]) == 1 then
      redis.call('INCRBY', KEYS[k], delta)
    end
    k = k + 1
  end
  for i = 1, npar do
    redis.call('ZREM', KEYS[k], rid)
    k = k + 1
  end
end
return 1
"""
# Settlements sent in one script call at most (a burst is split into several).
SETTLE_BATCH = 256

_KIND_CODE = {Kind.RPM: "r", Kind.TPM: "t", Kind.PARALLEL: "p"}

# counters, window, token correction, request id
Settlement = tuple[Sequence[Counter], int, int, str]


class RedisBackend:
    name = "redis"

    def __init__(self, resp: RespClient, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix
        self._resp = resp
        self._acquire_lua = LuaScript.of(ACQUIRE_LUA)
        self._settle_lua = LuaScript.of(SETTLE_LUA)

    def key_of(self, counter: Counter, window: int) -> str:
        if counter.kind is Kind.PARALLEL:
            return f"{self.prefix}par:{counter.scope}"
        return f"{self.prefix}{counter.kind.value}:{counter.scope}:{window}"

    async def acquire(
        self,
        counters: Sequence[Counter],
        tokens: int,
        request_id: str,
        now: float,
        reads: Sequence[str] = (),
    ) -> Decision:
        window = window_of(now)
        keys = [self.key_of(c, window) for c in counters]
        keys += reads
        args: list[Any] = [repr(now), request_id, LEASE_S, KEY_TTL_S, tokens]
        for counter in counters:
            args.append(_KIND_CODE[counter.kind])
            args.append(counter.limit)
        reply = await self._resp.evalsha(self._acquire_lua, keys, args)
        if int(reply[0]) == 1:
            count = len(counters) + 1
            return Decision(True, window, [int(v) for v in reply[1:count]], read=reply[count:])
        refused = int(reply[1]) - 1
        values = [0] * len(counters)
        values[refused] = int(reply[2])
        return Decision(False, window, values, refused)

    async def close(self) -> None:
        await self._resp.close()

    async def settle(
        self, counters: Sequence[Counter], window: int, token_delta: int, request_id: str
    ) -> None:
        for keys, args in self._settle_calls([(counters, window, token_delta, request_id)]):
            await self._resp.evalsha(self._settle_lua, keys, args)

    def queue_settlements(self, items: Sequence[Settlement], then: OnReply) -> int:
        """Queue several requests' settlements, sent with what else leaves in this turn of
        the event loop; ``then`` gets each script call's reply. Returns the calls queued."""
        calls = self._settle_calls(items)
        for keys, args in calls:
            self._resp.queue_script(self._settle_lua, keys, args, then)
        return len(calls)

    def _settle_calls(self, items: Sequence[Settlement]) -> list[tuple[list[str], list[Any]]]:
        """One script call's keys and arguments per :data:`SETTLE_BATCH` settlements."""
        calls = []
        for start in range(0, len(items), SETTLE_BATCH):
            keys: list[str] = []
            args: list[Any] = []
            for counters, window, token_delta, request_id in items[start : start + SETTLE_BATCH]:
                tpm = (
                    [self.key_of(c, window) for c in counters if c.kind is Kind.TPM]
                    if token_delta
                    else []
                )
                parallel = [self.key_of(c, window) for c in counters if c.kind is Kind.PARALLEL]
                if tpm or parallel:
                    keys += tpm
                    keys += parallel
                    args += [len(tpm), len(parallel), token_delta, request_id]
            if args:
                calls.append((keys, args))
        return calls
