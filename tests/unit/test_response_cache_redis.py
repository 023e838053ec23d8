"""The Redis store against the real Redis, reached through a TCP relay this test can
cut: a hit is read back, an outage bypasses the cache (no error, logged once), and the
cache returns by itself when Redis is reachable again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from bastion.cache.redis_store import RedisStore
from bastion.cache.service import ResponseCache
from bastion.cache.settings import CacheSettings
from bastion.config.redis_settings import RedisSettings
from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.providers.base import ProviderResponse
from bastion.providers.fake import FakeProvider
from bastion.routing.model_table import ModelTable
from bastion.storage.redis_link import RedisLink
from tests.support.tcp_relay import TcpRelay


def _deployment() -> Deployment:
    return Deployment(
        id="d1", model_name="gpt", provider_name="fake", upstream_model="m", provider=FakeProvider()
    )


async def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_redis_outage_bypasses_the_cache_and_it_comes_back(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    target = urlsplit(redis_url)

    async def scenario() -> None:
        relay = TcpRelay(target.port or 6379, target.hostname or "127.0.0.1")
        await relay.start()
        link = RedisLink(RedisSettings("test", port=relay.port), first_retry=0.05, max_retry=0.2)
        cache = ResponseCache(
            CacheSettings(type="redis", namespace=redis_prefix[:-1]),
            RedisStore(link),
            ModelTable([_deployment()]),
        )
        await cache.start()
        body = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
        plan = cache.plan(Operation.CHAT, Dialect.OPENAI, body, False)
        assert plan is not None and plan.key.startswith(redis_prefix)
        assert await cache.lookup(plan) is None
        cache.keep_answer(plan, _deployment(), ProviderResponse(200, b'{"id":"a"}'))
        await _wait(lambda: cache.counters.stores == 1)
        await asyncio.sleep(0.1)  # the SET is in the background
        hit = await cache.lookup(plan)
        assert hit is not None and hit.body == b'{"id":"a"}'

        await relay.stop()
        for _ in range(3):  # never an error: a miss, then bypassed without waiting
            assert await cache.lookup(plan) is None
        assert not cache.store.usable() and cache.counters.bypassed >= 2
        assert cache.status()["redis"]["status"] == "unreachable"
        bypass_logs = [r for r in caplog.records if "response cache bypassed" in r.message]
        assert len(bypass_logs) == 1
        assert "password" not in bypass_logs[0].message

        await relay.start()  # Redis is back on the same address
        await _wait(cache.store.usable)
        again = await cache.lookup(plan)
        assert again is not None and again.body == b'{"id":"a"}'
        await cache.stop()
        await relay.stop()

    with caplog.at_level(logging.WARNING, logger="bastion.cache"):
        asyncio.run(scenario())
