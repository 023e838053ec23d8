"""The routing state store on the real Redis: two replicas (two stores, two clients)
share cooldowns and the strategies' load and latency; with Redis away each routes
on its own state and publishes it again when Redis returns."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

from bastion.config.redis_settings import RedisSettings
from bastion.core.deployment import Deployment
from bastion.core.errors import UpstreamStatusError
from bastion.providers.fake import FakeProvider
from bastion.routing.cooldown import CooldownTracker
from bastion.routing.model_table import ModelTable
from bastion.routing.redis_state_store import RedisStateStore
from bastion.routing.router import Router, RouterPolicy
from bastion.routing.strategies import NO_HINTS, LeastBusy, LowestLatency, LowestUsage
from bastion.storage.redis_link import RedisLink
from tests.storage.test_redis_limits import TcpRelay

_FAKE = FakeProvider()


def dep(ident: str, group: str = "g") -> Deployment:
    return Deployment(
        id=ident, model_name=group, provider_name="fake", upstream_model=ident, provider=_FAKE
    )


class Clock:
    def __init__(self, now: float = 1_800_000_030.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def replicas(
    prefix: str, clock: Callable[[], float], port: int = 6379, n: int = 2
) -> AsyncIterator[list[RedisStateStore]]:
    """``n`` stores as separate replicas would have them (own client, own id); synced
    by hand (``sync()``) so each step is deterministic."""
    links = [
        RedisLink(RedisSettings("test", port=port), first_retry=0.05, max_retry=0.2)
        for _ in range(n)
    ]
    stores = [RedisStateStore(link, prefix, clock=clock) for link in links]
    try:
        yield stores
    finally:
        for link in links:
            await link.stop()


async def sync_all(stores: list[RedisStateStore]) -> None:
    for store in stores:  # publish, then read what everyone published
        await store.sync()
    for store in stores:
        await store.sync()


async def test_a_deployment_cooled_by_one_replica_is_skipped_by_the_other(
    redis_prefix: str,
) -> None:
    clock = Clock()
    async with replicas(redis_prefix, clock) as (a, b):
        group = [dep("d1"), dep("d2")]
        routers = [
            Router(ModelTable(group), RouterPolicy(num_retries=0), CooldownTracker(store=store))
            for store in (a, b)
        ]
        await sync_all([a, b])  # both have read the (empty) shared state once
        # Replica A: d1 answers 429 with retry-after 30 -> cooled for 30 s.
        error = UpstreamStatusError("slow down", status=429, provider="openai", retry_after=30)
        assert routers[0].cooldowns.record_failure("d1", error, group_size=2)
        assert a.cooling_until("d1") == clock.now + 30
        assert b.cooling_until("d1") == 0.0  # not yet synced

        await sync_all([a, b])
        assert b.cooling_until("d1") == clock.now + 30
        assert routers[1].cooldowns.is_cooling("d1")
        assert b.cooling_ids() == ["d1"]

        served: list[str] = []

        async def attempt(deployment: Deployment) -> str:
            served.append(deployment.id)
            return deployment.id

        for _ in range(20):  # replica B never picks d1 while the cooldown lasts
            await routers[1].route("g", attempt)
        assert set(served) == {"d2"}

        clock.now += 31  # the provider's retry-after has passed: d1 is back everywhere
        await sync_all([a, b])
        assert not routers[1].cooldowns.is_cooling("d1")
        assert b.cooling_ids() == [] and a.cooling_ids() == []


async def test_strategy_state_is_summed_across_replicas(redis_prefix: str) -> None:
    clock = Clock()
    async with replicas(redis_prefix, clock) as (a, b):
        d1, d2 = dep("d1"), dep("d2")
        # Routing asks (least-busy, usage, latency): from then on those parts are read.
        for store in (a, b):
            store.in_flight("d1")
            store.latency("d1", first_token=False, ttl=3600)
        for _ in range(3):
            a.request_started("d1")  # three calls in flight on replica A
        a.add_tokens("d1", 500)
        a.add_latency("d1", 2.0, first_token=False)
        b.add_latency("d1", 4.0, first_token=False)
        b.add_latency("d2", 1.0, first_token=False)
        await sync_all([a, b])

        assert b.in_flight("d1") == 3 and a.in_flight("d1") == 3
        assert b.minute_usage("d1") == (3, 500)
        assert b.latency("d1", first_token=False, ttl=3600) == 3.0  # (2 + 4) / 2
        assert a.latency("d1", first_token=False, ttl=3600) == 3.0
        # Replica B's least-busy strategy now avoids d1, which is busy on A only.
        for strategy in (LeastBusy(b), LowestUsage(b), LowestLatency(b)):
            picked = strategy.pick([d1, d2], random.Random(1), NO_HINTS)
            assert picked is d2, strategy.name

        for _ in range(3):
            a.request_ended("d1")
        await sync_all([a, b])
        assert b.in_flight("d1") == 0
        assert b.minute_usage("d1") == (3, 500)  # this minute's count stays
        clock.now += 60  # a new minute: usage starts again on every replica
        assert b.minute_usage("d1") == (0, 0)


async def test_a_replica_that_stops_syncing_no_longer_counts(redis_prefix: str) -> None:
    clock = Clock()
    async with replicas(redis_prefix, clock) as (a, b):
        b.in_flight("d1")
        a.request_started("d1")
        await sync_all([a, b])
        assert b.in_flight("d1") == 1
        clock.now += 20  # A is gone (no sync for longer than REPLICA_STALE_S)
        await b.sync()
        assert b.in_flight("d1") == 0


async def test_with_redis_away_each_replica_routes_on_its_own_state(
    redis_url: str, redis_prefix: str
) -> None:
    relay = TcpRelay(6379)
    await relay.start()
    clock = Clock()
    try:
        async with replicas(redis_prefix, clock, port=relay.port) as (a, b):
            b.in_flight("d1")
            a.request_started("d1")
            await sync_all([a, b])
            assert b.in_flight("d1") == 1

            await relay.stop()  # Redis unreachable: the first failed sync says so
            for store in (a, b):
                store.start()
            await wait_for(lambda: not a.link.up and not b.link.up)
            assert a.status()["backend"] == "memory"
            # The mirror is dropped: B sees only its own calls, A its own.
            await wait_for(lambda: b.in_flight("d1") == 0)
            assert a.in_flight("d1") == 1
            a.cool_down("d2", clock.now + 30)  # decided locally, it still holds here
            assert a.cooling_until("d2") == clock.now + 30
            assert b.cooling_until("d2") == 0.0

            await relay.start()  # Redis is back: everything local is published again
            await wait_for(lambda: a.link.up and b.link.up)
            await wait_for(lambda: b.in_flight("d1") == 1 and b.cooling_until("d2") > 0)
            assert a.status()["backend"] == "redis"
            for store in (a, b):
                await store.stop()
    finally:
        await relay.stop()


async def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")
