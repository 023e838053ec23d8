"""Rate limits through running gateways: two processes sharing Redis keep one limit,
and a gateway whose Redis is away keeps serving on local counters.

Windows are fixed minutes: a test that counts requests per minute first waits out
the end of a minute if too little of it is left (at most ~20 s).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from aiohttp import web

from tests.e2e.helpers import MockPool, wait_until_known
from tests.mocks.openai_upstream import MockOpenAIUpstream, delay
from tests.support.gateway import GatewayProcess, free_port
from tests.support.redis_service import PrivateRedis

MASTER = "sk-master-ratelimits"
MESSAGES: list[Any] = [{"role": "user", "content": "hello"}]


class CountingUpstream(MockOpenAIUpstream):
    """The mock upstream, counting the calls it is serving at once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.in_flight = 0
        self.max_in_flight = 0

    async def _handle(self, request: web.Request, kind: Any) -> web.StreamResponse:
        self.in_flight += 1  # one event loop thread: no lock needed
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await super()._handle(request, kind)
        finally:
            self.in_flight -= 1


def gateway_config(
    upstream: MockOpenAIUpstream,
    *,
    database: Path,
    prefix: str,
    redis_port: int = 6379,
    deployment_rpm: int | None = None,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": "openai/gpt-4o-mini",
        "api_base": upstream.openai_base,
        "api_key": "sk-upstream",
    }
    if deployment_rpm is not None:
        params["rpm"] = deployment_rpm
    return {
        "model_list": [{"model_name": "gpt", "litellm_params": params}],
        "router_settings": {"redis_host": "127.0.0.1", "redis_port": redis_port},
        "general_settings": {
            "master_key": MASTER,
            "database_url": f"sqlite:///{database}",
            "rate_limit_redis_prefix": prefix,
        },
    }


def avoid_minute_edge(margin_s: float = 20.0) -> None:
    left = 60 - time.time() % 60
    if left < margin_s:
        time.sleep(left + 0.2)


def new_key(gw: GatewayProcess, **limits: Any) -> str:
    response = httpx.post(
        f"{gw.url}/key/generate",
        json={"models": ["gpt"], **limits},
        headers={"Authorization": f"Bearer {MASTER}"},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["key"])


async def hammer(gateways: list[GatewayProcess], key: str, count: int) -> list[Any]:
    clients = [
        openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0, timeout=30)
        for gw in gateways
    ]
    try:
        calls = [
            clients[i % len(clients)].chat.completions.with_raw_response.create(
                model="gpt", messages=MESSAGES
            )
            for i in range(count)
        ]
        return list(await asyncio.gather(*calls, return_exceptions=True))
    finally:
        for client in clients:
            await client.close()


@pytest.fixture(scope="module")
def upstream(mocks: MockPool) -> CountingUpstream:
    mock = CountingUpstream()
    mock.start()
    mocks.mocks.append(mock)
    return mock


@pytest.fixture
def two_gateways(
    upstream: CountingUpstream, redis_prefix: str, tmp_path: Path
) -> Iterator[list[GatewayProcess]]:
    config = gateway_config(upstream, database=tmp_path / "shared.db", prefix=redis_prefix)
    with GatewayProcess(config) as first, GatewayProcess(config) as second:
        yield [first, second]


def test_rpm_limit_holds_exactly_across_two_gateways(two_gateways: list[GatewayProcess]) -> None:
    first, second = two_gateways
    for gw in two_gateways:
        ready = httpx.get(f"{gw.url}/health/readiness").json()
        assert ready["rate_limits"]["backend"] == "redis", ready
        assert ready["rate_limits"]["redis"]["status"] == "connected"
    key = new_key(first, rpm_limit=60)
    wait_until_known(second, key)
    avoid_minute_edge()
    results = asyncio.run(hammer(two_gateways, key, 100))
    served = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(served) == 60, [r for r in results if isinstance(r, BaseException)][:3]
    assert len(refused) == 40
    error = refused[0]
    assert "rpm_limit 60 reached" in error.message
    assert error.body is not None and error.body["type"] == "rate_limit_error"  # type: ignore[index]
    headers = error.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-limit-requests"] == "60"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in served)
    assert remaining == list(range(60))  # each admission saw the shared count


def test_max_parallel_requests_never_lets_a_fourth_call_through(
    two_gateways: list[GatewayProcess], upstream: CountingUpstream
) -> None:
    first, second = two_gateways
    key = new_key(first, max_parallel_requests=3)
    wait_until_known(second, key)
    upstream.max_in_flight = 0
    upstream.set_default(delay(0.5))
    try:
        results = asyncio.run(hammer(two_gateways, key, 16))
    finally:
        upstream.set_default(None)
    served = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert upstream.max_in_flight <= 3
    assert len(served) >= 3 and len(served) + len(refused) == 16
    assert refused and "max_parallel_requests 3 reached" in refused[0].message
    assert refused[0].response.headers["retry-after"] == "1"
    # Every slot is freed when its call ends: three at once are served again.
    deadline = time.monotonic() + 10
    while True:
        again = asyncio.run(hammer(two_gateways, key, 3))
        if all(not isinstance(r, BaseException) for r in again):
            break
        assert time.monotonic() < deadline, again
        time.sleep(0.2)


def test_without_redis_the_gateway_serves_on_local_counters(
    upstream: CountingUpstream, redis_prefix: str, tmp_path: Path
) -> None:
    closed = free_port()
    config = gateway_config(
        upstream,
        database=tmp_path / "alone.db",
        prefix=redis_prefix,
        redis_port=closed,
        deployment_rpm=2,
    )
    with GatewayProcess(config) as gw:
        avoid_minute_edge()
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER, max_retries=0)
        for _ in range(2):
            client.chat.completions.create(model="gpt", messages=MESSAGES)
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="gpt", messages=MESSAGES)
        assert (
            "deployment gpt" in refused.value.message and "rpm 2 reached" in refused.value.message
        )

        # Anthropic clients get the refusal in their own dialect.
        claude = anthropic.Anthropic(base_url=gw.url, api_key=MASTER, max_retries=0)
        with pytest.raises(anthropic.RateLimitError) as denied:
            claude.messages.create(model="gpt", max_tokens=10, messages=MESSAGES)
        body = denied.value.response.json()
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        assert "rpm 2 reached" in body["error"]["message"]
        assert int(denied.value.response.headers["retry-after"]) >= 1
        assert denied.value.response.headers["x-ratelimit-limit-requests"] == "2"

        ready = httpx.get(f"{gw.url}/health/readiness").json()
        assert ready["rate_limits"]["backend"] == "memory"
        assert ready["rate_limits"]["redis"]["status"] == "unreachable"
        assert ready["rate_limits"]["redis"]["url"] == f"redis://127.0.0.1:{closed}/0"
        log = gw.log()
        assert log.count("is unreachable") == 1, log


def test_tpm_reserves_an_estimate_and_settles_with_the_real_usage(
    two_gateways: list[GatewayProcess],
) -> None:
    first, _ = two_gateways
    key = new_key(first, tpm_limit=100_000)
    avoid_minute_edge()
    client = openai.OpenAI(base_url=f"{first.url}/v1", api_key=key, max_retries=0)
    ask: dict[str, Any] = {"model": "gpt", "messages": MESSAGES, "max_tokens": 500}
    raw = client.chat.completions.with_raw_response.create(**ask)
    reserved = 100_000 - int(raw.headers["x-ratelimit-remaining-tokens"])
    assert reserved > 500  # max_tokens plus the prompt's estimate
    assert raw.headers["x-ratelimit-limit-tokens"] == "100000"
    usage = raw.parse().usage
    assert usage is not None and usage.total_tokens < reserved
    # A stream settles from its final usage chunk (asked for on the client's behalf).
    chunks = list(client.chat.completions.create(**ask, stream=True))
    assert chunks and all(c.usage is None for c in chunks)

    expected = 100_000 - 2 * usage.total_tokens - reserved
    deadline = time.monotonic() + 10
    while True:  # settling is sent after the answer: it lands a moment later
        probe = client.chat.completions.with_raw_response.create(**ask)
        remaining = int(probe.headers["x-ratelimit-remaining-tokens"])
        if remaining == expected:
            break
        assert time.monotonic() < deadline, (remaining, expected)
        expected -= usage.total_tokens  # this probe's own usage settles too
        time.sleep(0.1)


def _redis_backend(gw: GatewayProcess) -> str:
    return str(httpx.get(f"{gw.url}/health/readiness", timeout=5).json()["rate_limits"]["backend"])


def _wait_for_backend(gw: GatewayProcess, wanted: str, within_s: float = 40) -> None:
    deadline = time.monotonic() + within_s
    while _redis_backend(gw) != wanted:
        assert time.monotonic() < deadline, f"rate limits never went to {wanted}"
        time.sleep(0.2)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
def test_redis_stopped_and_restarted_under_load(
    upstream: CountingUpstream, redis_prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    server = PrivateRedis(port, tmp_path)
    server.start()
    config = gateway_config(
        upstream,
        database=tmp_path / "restart.db",
        prefix=redis_prefix,
        redis_port=port,
        deployment_rpm=1_000_000,  # a limit on every call, never reached
    )
    outcomes: list[int | str] = []
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                try:
                    response = client.post(
                        f"{url}/v1/chat/completions",
                        json={"model": "gpt", "messages": MESSAGES},
                        headers={"Authorization": f"Bearer {MASTER}"},
                    )
                    outcomes.append(response.status_code)
                except httpx.HTTPError as exc:
                    outcomes.append(type(exc).__name__)

    try:
        with GatewayProcess(config) as gw:
            _wait_for_backend(gw, "redis")
            workers = [threading.Thread(target=load, args=(gw.url,)) for _ in range(4)]
            for worker in workers:
                worker.start()
            try:
                time.sleep(1)
                served_on_redis = len(outcomes)
                server.stop()  # Redis goes away under load
                _wait_for_backend(gw, "memory")
                before_restart = len(outcomes)
                time.sleep(1)
                assert len(outcomes) > before_restart  # still serving, on local counters
                server.start()  # and comes back, empty
                _wait_for_backend(gw, "redis")
                after = len(outcomes)
                time.sleep(1)
                assert len(outcomes) > after
            finally:
                stop.set()
                for worker in workers:
                    worker.join(15)
            assert served_on_redis > 0
            assert set(outcomes) == {200}, sorted(set(map(str, outcomes)))
            # Counting resumed on the restarted server.
            keys = subprocess.run(
                ["redis-cli", "-p", str(port), "--scan", "--pattern", f"{redis_prefix}*"],
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            ).stdout.split()
            assert any(":rpm:" in k for k in keys), keys
            log = gw.log()
            assert log.count("is unreachable") == 1, log
    finally:
        server.stop()


async def _fresh_connections(url: str, count: int) -> list[int]:
    """``count`` concurrent calls, each on a new connection (so the kernel hands them
    to whichever worker accepts first); their status codes."""
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        calls = [
            client.post(
                "/v1/chat/completions",
                json={"model": "gpt", "messages": MESSAGES},
                headers={"Authorization": f"Bearer {MASTER}"},
            )
            for _ in range(count)
        ]
        return [r.status_code for r in await asyncio.gather(*calls)]


def test_workers_of_one_gateway_share_the_limits_on_redis(
    upstream: CountingUpstream, redis_prefix: str, tmp_path: Path
) -> None:
    """``bastion serve --workers 2`` with Redis: a limit holds exactly across the workers.
    The same gateway on local counters lets each worker count its own share, which shows
    the calls did reach both workers."""
    shared = gateway_config(
        upstream, database=tmp_path / "w.db", prefix=redis_prefix, deployment_rpm=20
    )
    local = gateway_config(
        upstream,
        database=tmp_path / "w-local.db",
        prefix=redis_prefix,
        redis_port=free_port(),  # nobody listens: each worker counts alone
        deployment_rpm=20,
    )
    for config, exact in ((shared, True), (local, False)):
        with GatewayProcess(config, args=["--workers", "2"]) as gw:
            deadline = time.monotonic() + 20
            while gw.log().count("Application startup complete") < 2:
                assert time.monotonic() < deadline, gw.log()
                time.sleep(0.1)
            avoid_minute_edge()
            statuses = asyncio.run(_fresh_connections(gw.url, 60))
            assert set(statuses) <= {200, 429}, statuses
            if exact:
                assert statuses.count(200) == 20
            else:
                assert 20 < statuses.count(200) <= 40
