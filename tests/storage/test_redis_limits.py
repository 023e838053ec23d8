"""The Redis counter backend and the link's outage handling, against the real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from bastion.config.redis_settings import RedisSettings
from bastion.core.deployment import Deployment
from bastion.core.errors import RateLimitError
from bastion.limits.counters import Counter, Kind, window_of
from bastion.limits.limiter import LimitsUnavailableError, RateLimiter
from bastion.limits.redis_backend import RedisBackend
from bastion.storage.redis_link import RedisLink
from bastion.storage.resp_client import RespClient
from tests.support.gateway import free_port
from tests.support.tcp_relay import TcpRelay

RPM = Counter(Kind.RPM, "key:k", 5, "key k", "rpm_limit")
TPM = Counter(Kind.TPM, "key:k", 100, "key k", "tpm_limit")
PAR = Counter(Kind.PARALLEL, "key:k", 2, "key k", "max_parallel_requests")
DEPLOYMENT = Deployment(
    id="d", model_name="gpt", provider_name="openai", upstream_model="gpt", provider=None  # type: ignore[arg-type]
)  # fmt: skip


@contextlib.asynccontextmanager
async def client(url: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(url)
    try:
        yield redis
    finally:
        await redis.aclose()


async def test_every_counter_is_checked_and_counted_at_once(
    redis_url: str,
    redis_prefix: str,
) -> None:
    async with client(redis_url) as redis:
        backend = RedisBackend(RespClient.like(redis), redis_prefix)
        now = time.time()
        first = await backend.acquire([RPM, TPM, PAR], 30, "r1", now)
        assert first.allowed and first.values == [1, 30, 1]
        assert first.window == window_of(now)
        second = await backend.acquire([RPM, TPM, PAR], 30, "r2", now)
        assert second.values == [2, 60, 2]
        refused = await backend.acquire([RPM, TPM, PAR], 30, "r3", now)
        assert not refused.allowed and refused.refused == 2 and refused.values[2] == 2
        # The refusal counted nothing; settling r1 frees a slot and gives back tokens.
        await backend.settle([RPM, TPM, PAR], first.window, -20, "r1")
        third = await backend.acquire([RPM, TPM, PAR], 30, "r3", now)
        assert third.values == [3, 70, 2]
        ttl = await redis.ttl(backend.key_of(RPM, first.window))
        assert 0 < ttl <= 120


async def test_concurrent_admissions_from_many_clients_stop_at_the_limit(
    redis_url: str,
    redis_prefix: str,
) -> None:
    counter = Counter(Kind.RPM, "key:burst", 60, "key burst", "rpm_limit")
    clients = [Redis.from_url(redis_url) for _ in range(4)]
    try:
        backends = [RedisBackend(RespClient.like(c), redis_prefix) for c in clients]
        now = time.time()
        results = await asyncio.gather(
            *(backends[i % 4].acquire([counter], 0, f"r{i}", now) for i in range(200))
        )
        assert sum(r.allowed for r in results) == 60
        assert sorted(r.values[0] for r in results if r.allowed) == list(range(1, 61))
    finally:
        for c in clients:
            await c.aclose()


async def test_a_parallel_slot_lapses_after_its_lease(
    redis_url: str,
    redis_prefix: str,
) -> None:
    one = Counter(Kind.PARALLEL, "key:lease", 1, "key lease", "max_parallel_requests")
    async with client(redis_url) as redis:
        backend = RedisBackend(RespClient.like(redis), redis_prefix)
        now = time.time()
        assert (await backend.acquire([one], 0, "crashed-worker", now)).allowed
        assert not (await backend.acquire([one], 0, "r2", now + 10)).allowed
        # A worker that died never releases; its slot lapses after the lease.
        assert (await backend.acquire([one], 0, "r3", now + 601)).allowed


async def test_a_tpm_settle_after_the_window_expired_creates_nothing(
    redis_url: str,
    redis_prefix: str,
) -> None:
    async with client(redis_url) as redis:
        backend = RedisBackend(RespClient.like(redis), redis_prefix)
        await backend.settle([TPM], 12345, -50, "r1")
        assert await redis.exists(backend.key_of(TPM, 12345)) == 0


def key_counters(limit: int) -> list[Counter]:
    return [Counter(Kind.RPM, "key:outage", limit, "key outage", "rpm_limit")]


async def test_an_outage_falls_back_to_local_counters_and_recovers_by_itself(
    redis_url: str,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    relay = TcpRelay(6379)
    await relay.start()
    settings = RedisSettings("test", host="127.0.0.1", port=relay.port)
    link = RedisLink(settings, first_retry=0.05, max_retry=0.2)
    limiter = RateLimiter(shared=RedisBackend(link.resp, redis_prefix), link=link)
    caplog.set_level(logging.INFO, logger="bastion.redis")
    try:
        await limiter.start()
        assert limiter.status()["backend"] == "redis"
        ticket = limiter.ticket("r1", key_counters(100), lambda: 0)
        assert ticket is not None
        await ticket.admit(DEPLOYMENT)
        ticket.finish()

        await relay.stop()
        for i in range(5):  # served on local counters; the outage is logged once
            ticket = limiter.ticket(f"down{i}", key_counters(100), lambda: 0)
            assert ticket is not None
            await ticket.admit(DEPLOYMENT)
            ticket.finish()
        status = limiter.status()
        assert status["backend"] == "memory"
        assert status["redis"]["status"] == "unreachable" and status["redis"]["error"]
        assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1

        await relay.start()  # Redis is back
        for _ in range(100):
            if link.up:
                break
            await asyncio.sleep(0.05)
        assert link.up and limiter.status()["backend"] == "redis"
        assert any("reachable again" in r.getMessage() for r in caplog.records)
        ticket = limiter.ticket("r2", key_counters(100), lambda: 0)
        assert ticket is not None
        await ticket.admit(DEPLOYMENT)
        # Back on the shared counter: r1 and r2 (the outage's requests were local).
        assert dict(ticket.headers())[b"x-ratelimit-remaining-requests"] == b"98"
        ticket.finish()
    finally:
        await limiter.stop()
        await relay.stop()


async def test_fail_closed_refuses_with_503_while_redis_is_away(redis_prefix: str) -> None:
    settings = RedisSettings("test", host="127.0.0.1", port=free_port())  # nothing listens
    link = RedisLink(settings, first_retry=10, max_retry=10)
    limiter = RateLimiter(shared=RedisBackend(link.resp, redis_prefix), link=link, fail_closed=True)
    try:
        await limiter.start()
        assert not link.up
        ticket = limiter.ticket("r1", key_counters(1), lambda: 0)
        assert ticket is not None
        with pytest.raises(LimitsUnavailableError) as caught:
            await ticket.admit(DEPLOYMENT)
        assert caught.value.status == 503 and "rate_limit_fail_closed" in caught.value.message
        assert limiter.status()["on_redis_failure"] == "refuse"
    finally:
        await limiter.stop()


async def test_fail_open_counts_locally_while_redis_is_away(redis_prefix: str) -> None:
    settings = RedisSettings("test", host="127.0.0.1", port=free_port())
    link = RedisLink(settings, first_retry=10, max_retry=10)
    limiter = RateLimiter(shared=RedisBackend(link.resp, redis_prefix), link=link)
    try:
        await limiter.start()
        first = limiter.ticket("r1", key_counters(1), lambda: 0)
        assert first is not None
        await first.admit(DEPLOYMENT)
        second = limiter.ticket("r2", key_counters(1), lambda: 0)
        assert second is not None
        with pytest.raises(RateLimitError):
            await second.admit(DEPLOYMENT)
    finally:
        await limiter.stop()


async def test_many_settlements_go_in_one_call(redis_url: str, redis_prefix: str) -> None:
    async with client(redis_url) as redis:
        backend = RedisBackend(RespClient.like(redis), redis_prefix)
        now = time.time()
        held = [await backend.acquire([TPM, PAR], 10, f"r{i}", now) for i in range(2)]
        assert [d.values for d in held] == [[10, 1], [20, 2]]
        reply: asyncio.Future[asyncio.Future[Any]] = asyncio.get_running_loop().create_future()
        calls = backend.queue_settlements(
            [([TPM, PAR], held[0].window, -7, "r0"), ([TPM, PAR], held[1].window, 5, "r1")],
            reply.set_result,
        )
        assert calls == 1
        assert (await reply).result() == 1
        after = await backend.acquire([TPM, PAR], 0, "r2", now)
        assert after.values == [18, 1]  # 10-7 + 10+5; both slots freed, r2 holds one
