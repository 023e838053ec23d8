"""The deployment state store shared across workers and replicas through Redis.

Routing reads its state on every request, so reads never wait on Redis: each
process keeps its own state in an ``InMemoryStateStore`` (exact, immediate) and a
mirror of what the other processes published, refreshed by one pipelined sync
every ``interval`` seconds (0.2 s by default, and at once after a cooldown). A
read is this process's value plus the others' (load, tokens, latency samples),
or the later of the two cooldown ends.

What each sync does, in one round trip:

- publishes this process's state of the deployments it touched since the last
  sync, as absolute values under its own replica id (idempotent: a lost sync is
  repaired by the next): requests in flight, this minute's requests and tokens,
  its last latency samples;
- publishes cooldowns it decided (``until`` times, shared by every replica);
- reads the other replicas' state (only the parts routing has asked for), and
  when each replica last synced: one that has not synced for
  :data:`REPLICA_STALE_S` seconds (stopped, crashed) no longer counts, and its
  fields are deleted after :data:`REPLICA_FORGET_S`.

Failure counts toward ``allowed_fails`` stay per process; the cooldown they lead
to, and a provider's ``retry-after`` cooldown, hold on every replica.

When Redis is unreachable (storage/redis_link.py) the mirror is dropped and
routing runs on this process's state alone; when Redis returns, the whole local
state is published again.

Hashes (``prefix`` is ``general_settings.rate_limit_redis_prefix``): ``route:busy``,
``route:use``, ``route:lat`` (fields ``{replica}|{deployment}``, latency fields with
``|c``/``|f``), ``route:cool`` (deployment -> until), ``route:seen`` (replica -> last
sync). Each expires a day after the last sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson
from redis.exceptions import RedisError

from bastion.routing.state_store import (
    LATENCY_SAMPLES,
    MINUTE_S,
    InMemoryStateStore,
)
from bastion.storage.redis_link import UNREACHABLE, RedisLink

logger = logging.getLogger("bastion.routing")

DEFAULT_SYNC_INTERVAL_S = 0.2
REPLICA_STALE_S = 15.0
REPLICA_FORGET_S = 600.0
HASH_TTL_S = 86_400

_Samples = list[tuple[float, float]]


class RedisStateStore:
    """A ``DeploymentStateStore``: local state, plus the other replicas' from Redis."""

    def __init__(
        self,
        link: RedisLink,
        prefix: str,
        *,
        interval: float = DEFAULT_SYNC_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        replica: str | None = None,
    ) -> None:
        self.link = link
        self.local = InMemoryStateStore(clock)
        self.interval = interval
        self.replica = replica or uuid.uuid4().hex[:12]
        self._clock = clock
        p = prefix + "route:"
        self._busy_key, self._use_key, self._lat_key = p + "busy", p + "use", p + "lat"
        self._cool_key, self._seen_key = p + "cool", p + "seen"
        # The others' state, as of the last sync.
        self._busy: dict[str, int] = {}
        self._usage: dict[str, tuple[int, int, int]] = {}  # id -> (minute, requests, tokens)
        self._latency: dict[tuple[str, bool], _Samples] = {}
        self._cool: dict[str, float] = {}
        # What to publish next.
        self._dirty: set[str] = set()
        self._cool_out: dict[str, float] = {}
        self._republish = True
        self._forget: dict[str, list[str]] = {}  # hash -> fields to delete
        # What routing has asked for (only that is read back).
        self._wants_load = False
        self._wants_latency = False
        self._peers: dict[str, float] = {}  # live replicas -> last sync
        self._known: set[str] = set()  # every replica in the seen hash
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.syncs = 0

    # -- the port ---------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    def request_started(self, deployment_id: str) -> None:
        self.local.request_started(deployment_id)
        self._dirty.add(deployment_id)

    def request_ended(self, deployment_id: str) -> None:
        self.local.request_ended(deployment_id)
        self._dirty.add(deployment_id)

    def add_tokens(self, deployment_id: str, tokens: int) -> None:
        self.local.add_tokens(deployment_id, tokens)
        self._dirty.add(deployment_id)

    def in_flight(self, deployment_id: str) -> int:
        self._wants_load = True
        return self.local.in_flight(deployment_id) + self._busy.get(deployment_id, 0)

    def minute_usage(self, deployment_id: str) -> tuple[int, int]:
        self._wants_load = True
        requests, tokens = self.local.minute_usage(deployment_id)
        other = self._usage.get(deployment_id)
        if other is not None and other[0] == int(self._clock() // MINUTE_S):
            requests += other[1]
            tokens += other[2]
        return requests, tokens

    def add_latency(self, deployment_id: str, seconds: float, *, first_token: bool) -> None:
        self.local.add_latency(deployment_id, seconds, first_token=first_token)
        self._dirty.add(deployment_id)

    def latency(self, deployment_id: str, *, first_token: bool, ttl: float) -> float | None:
        self._wants_latency = True
        others = self._latency.get((deployment_id, first_token))
        if not others:
            return self.local.latency(deployment_id, first_token=first_token, ttl=ttl)
        own = self.local.own_state(deployment_id)
        samples = sorted([*(own.first_tokens if first_token else own.latencies), *others])
        oldest = self._clock() - ttl
        recent = [value for at, value in samples[-LATENCY_SAMPLES:] if at >= oldest]
        return sum(recent) / len(recent) if recent else None

    def count_failure(self, deployment_id: str, window: float) -> int:
        return self.local.count_failure(deployment_id, window)

    def cool_down(self, deployment_id: str, until: float) -> None:
        self.local.cool_down(deployment_id, until)
        self._cool_out[deployment_id] = until
        self._wake.set()  # other replicas should hear of it now, not at the next tick

    def cooling_until(self, deployment_id: str) -> float:
        own = self.local.cooling_until(deployment_id)
        if not self._cool:  # the common case: nothing is cooling anywhere
            return own
        return max(own, self._cool.get(deployment_id, 0.0))

    def cooling_ids(self) -> list[str]:
        now = self._clock()
        shared = {i for i, until in self._cool.items() if until > now}
        return sorted(shared.union(self.local.cooling_ids()))

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def status(self) -> dict[str, Any]:
        return {
            "backend": "redis" if self.link.up else "memory",
            "replica": self.replica,
            "replicas_seen": len(self._peers) + 1 if self.link.up else 1,
        }

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            if not self.link.up:
                self._drop_mirror()
                continue
            try:
                await self.sync()
            except (*UNREACHABLE, RedisError) as exc:
                self.link.failed(exc)
                self._drop_mirror()
            except Exception:
                logger.exception("could not share routing state through Redis")

    def _drop_mirror(self) -> None:
        self._busy, self._usage, self._latency, self._cool = {}, {}, {}, {}
        self._republish = True

    # -- one sync -----------------------------------------------------------------

    async def sync(self) -> None:
        """Publish this process's changes and read the others' state (one round trip)."""
        now = self._clock()
        republish, self._republish = self._republish, False
        ids = self.local.deployment_ids() if republish else list(self._dirty)
        self._dirty = set()
        cool_out, self._cool_out = self._cool_out, {}
        busy: dict[Any, Any] = {}
        use: dict[Any, Any] = {}
        lat: dict[Any, Any] = {}
        cool: dict[Any, Any] = dict(cool_out)
        if republish:  # after an outage (or at start): the cooldowns decided locally too
            for deployment_id in self.local.cooling_ids():
                cool.setdefault(deployment_id, self.local.cooling_until(deployment_id))
        me = self.replica
        for deployment_id in ids:
            state = self.local.own_state(deployment_id)
            field = f"{me}|{deployment_id}"
            busy[field] = state.in_flight
            use[field] = f"{state.minute}:{state.requests}:{state.tokens}"
            if state.latencies:
                lat[field + "|c"] = orjson.dumps(state.latencies)
            if state.first_tokens:
                lat[field + "|f"] = orjson.dumps(state.first_tokens)
        pipe = self.link.client.pipeline(transaction=False)
        for key, mapping in (
            (self._busy_key, busy),
            (self._use_key, use),
            (self._lat_key, lat),
            (self._cool_key, cool),
        ):
            if mapping:
                pipe.hset(key, mapping=mapping)
        for key, fields in self._forget.items():
            pipe.hdel(key, *fields)
        self._forget = {}
        pipe.hset(self._seen_key, me, repr(now))
        pipe.hgetall(self._seen_key)
        pipe.hgetall(self._cool_key)
        if self._wants_load:
            pipe.hgetall(self._busy_key)
            pipe.hgetall(self._use_key)
        if self._wants_latency:
            pipe.hgetall(self._lat_key)
        for key in (self._busy_key, self._use_key, self._lat_key, self._cool_key, self._seen_key):
            pipe.expire(key, HASH_TTL_S)
        replies = await pipe.execute()
        reads = replies[-(5 + 2 + self._wants_load * 2 + self._wants_latency) : -5]
        self._read(now, reads)
        self.syncs += 1

    def _read(self, now: float, reads: list[Any]) -> None:
        seen, cool, *rest = reads
        peers: dict[str, float] = {}
        self._known = {_text(replica) for replica in seen}
        for replica, at in seen.items():
            name, when = _text(replica), float(at)
            if name == self.replica:
                continue
            if now - when > REPLICA_FORGET_S:
                self._forget.setdefault(self._seen_key, []).append(name)
            elif now - when <= REPLICA_STALE_S:
                peers[name] = when
        self._peers = peers
        shared_cool: dict[str, float] = {}
        for deployment_id, until in cool.items():
            value = float(until)
            if value > now:
                shared_cool[_text(deployment_id)] = value
            else:
                self._forget.setdefault(self._cool_key, []).append(_text(deployment_id))
        self._cool = shared_cool
        if self._wants_load:
            busy, use, *rest = rest
            self._busy = self._sum_busy(busy)
            self._usage = self._sum_usage(use)
        if self._wants_latency:
            self._latency = self._merge_latency(rest[0])

    def _peer_of(self, field: Any, key: str) -> tuple[str, str] | None:
        """``(replica, rest)`` of a field published by a live peer (None: skip it)."""
        text = _text(field)
        replica, _, rest = text.partition("|")
        if replica == self.replica or not rest:
            return None
        if replica not in self._peers:
            if replica not in self._known:  # forgotten: its fields go too
                self._forget.setdefault(key, []).append(text)
            return None
        return replica, rest

    def _sum_busy(self, busy: dict[Any, Any]) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for field, value in busy.items():
            peer = self._peer_of(field, self._busy_key)
            if peer is not None:
                out[peer[1]] += int(value)
        return dict(out)

    def _sum_usage(self, use: dict[Any, Any]) -> dict[str, tuple[int, int, int]]:
        minute = int(self._clock() // MINUTE_S)
        out: dict[str, tuple[int, int, int]] = {}
        for field, value in use.items():
            peer = self._peer_of(field, self._use_key)
            if peer is None:
                continue
            at, requests, tokens = (int(part) for part in _text(value).split(":"))
            if at != minute:
                continue
            _, r, t = out.get(peer[1], (minute, 0, 0))
            out[peer[1]] = (minute, r + requests, t + tokens)
        return out

    def _merge_latency(self, lat: dict[Any, Any]) -> dict[tuple[str, bool], _Samples]:
        out: dict[tuple[str, bool], _Samples] = defaultdict(list)
        for field, value in lat.items():
            peer = self._peer_of(field, self._lat_key)
            if peer is None:
                continue
            deployment_id, _, kind = peer[1].rpartition("|")
            out[(deployment_id, kind == "f")].extend(
                (float(at), float(seconds)) for at, seconds in orjson.loads(value)
            )
        return dict(out)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
