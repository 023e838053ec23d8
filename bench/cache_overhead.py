"""What the response cache costs and saves per request (issue 5, item 5).

Micro-benchmark (one event loop, no HTTP):

- ``plan``: a request's cache controls parsed and its key computed (canonical JSON
  with sorted keys + sha256), for a small chat body, a ~4 KB one and a ~40 KB one;
- ``lookup (local)``: a hit in the in-process store (get + entry decode);
- ``lookup (redis)``: a hit in Redis on 127.0.0.1:6379 (one GET round trip + decode),
  skipped when Redis is not there.

With caching off there is no cache object at all: the request path pays one
``is not None`` test and computes nothing.

End to end (``--e2e``): the fast mock upstream and ``bastion serve`` with
``cache: true`` (local, then Redis), sequential requests over one keep-alive
connection: the upstream directly, the gateway on a miss (``cache: {no-cache: true}``,
so every call goes upstream) and the gateway on a hit. Prints p50/p90 in ms.

Run: ``.venv/bin/python bench/cache_overhead.py [--loops 20000] [--e2e]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bastion.cache.memory import MemoryStore
from bastion.cache.redis_store import RedisStore
from bastion.cache.service import CacheStore, ResponseCache
from bastion.cache.settings import CacheSettings
from bastion.config.redis_settings import RedisSettings
from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.providers.base import ProviderResponse
from bastion.providers.fake import FakeProvider
from bastion.routing.model_table import ModelTable
from bastion.storage.redis_link import RedisLink

BENCH_DIR = Path(__file__).resolve().parent
ANSWER = (
    b'{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":'
    b'{"role":"assistant","content":"' + b"word " * 60 + b'"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":30,"completion_tokens":60,"total_tokens":90}}'
)


def body(chars: int) -> dict[str, Any]:
    return {
        "model": "g",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "x" * chars},
        ],
        "temperature": 0.2,
        "max_tokens": 200,
        "user": "someone",
    }


def deployment() -> Deployment:
    return Deployment(
        id="d1", model_name="g", provider_name="fake", upstream_model="g", provider=FakeProvider()
    )


def make_cache(store: CacheStore, kind: str) -> ResponseCache:
    return ResponseCache(CacheSettings(type=kind), store, ModelTable([deployment()]))


def timed_sync(fn: Callable[[], object], loops: int) -> float:
    for _ in range(min(loops, 1000)):
        fn()
    start = time.perf_counter_ns()
    for _ in range(loops):
        fn()
    return (time.perf_counter_ns() - start) / loops / 1000


async def timed_async(fn: Callable[[], Awaitable[object]], loops: int) -> list[float]:
    for _ in range(min(loops, 500)):
        await fn()
    samples = []
    for _ in range(loops):
        start = time.perf_counter_ns()
        await fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


async def micro(loops: int) -> None:
    cache = make_cache(MemoryStore(1 << 26, 1 << 22), "local")
    print(f"{'step':<34}{'mean us':>10}")
    for label, chars in (
        ("plan, small body", 40),
        ("plan, ~4 KB body", 4000),
        ("plan, ~40 KB body", 40_000),
    ):
        request = body(chars)
        mean = timed_sync(
            lambda r=request: cache.plan(Operation.CHAT, Dialect.OPENAI, r, False), loops
        )
        print(f"{label:<34}{mean:>10.2f}")
    plan = cache.plan(Operation.CHAT, Dialect.OPENAI, body(40), False)
    assert plan is not None
    cache.keep_answer(plan, deployment(), ProviderResponse(200, ANSWER))
    samples = await timed_async(lambda: cache.lookup(plan), loops)
    print(f"{'lookup hit (local)':<34}{statistics.fmean(samples):>10.2f}")
    try:
        link = RedisLink(RedisSettings("bench", host="127.0.0.1", port=6379))
        await link.client.ping()
    except Exception as exc:
        print(f"lookup hit (redis): skipped ({type(exc).__name__}: {exc})")
        return
    redis_cache = make_cache(RedisStore(link), "redis")
    request = body(40)
    request["cache"] = {"namespace": f"bench-cache-{uuid.uuid4().hex[:8]}"}
    redis_plan = redis_cache.plan(Operation.CHAT, Dialect.OPENAI, request, False)
    assert redis_plan is not None
    redis_cache.keep_answer(redis_plan, deployment(), ProviderResponse(200, ANSWER))
    await asyncio.sleep(0.1)
    samples = await timed_async(lambda: redis_cache.lookup(redis_plan), min(loops, 5000))
    samples.sort()
    print(
        f"{'lookup hit (redis), p50 / p99':<34}{samples[len(samples) // 2]:>10.2f}"
        f" / {samples[int(len(samples) * 0.99)]:.2f}"
    )
    await link.client.delete(redis_plan.key)
    await link.stop()


GATEWAY_CONFIG = """
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: os.environ/BENCH_MOCK_BASE
      api_key: sk-mock
litellm_settings:
  cache: true
  cache_params: {cache_params}
general_settings:
  master_key: sk-bench-master
"""


def e2e(requests: int) -> None:
    import subprocess

    import httpx

    sys.path.insert(0, str(BENCH_DIR))
    from processes import free_port, spawn, wait_ready

    work = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    mock_port = free_port()
    mock = spawn(
        "fast_mock",
        [sys.executable, str(BENCH_DIR / "fast_mock.py"), "--port", str(mock_port)],
        mock_port,
        work / "mock.log",
    )
    try:
        wait_ready(mock, "/health", 10)
    except RuntimeError:
        time.sleep(0.5)
    payload = {
        "model": "bench-model",
        "messages": [{"role": "user", "content": "hello " * 50}],
        "max_tokens": 100,
    }
    headers = {"Authorization": "Bearer sk-bench-master"}

    def series(client: httpx.Client, url: str, extra: dict[str, Any]) -> list[float]:
        out = []
        for i in range(requests + 50):
            start = time.perf_counter()
            response = client.post(url, json={**payload, **extra}, headers=headers)
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 200, response.text
            if i >= 50:
                out.append(elapsed)
        return sorted(out)

    def show(label: str, samples: list[float]) -> None:
        p50 = samples[len(samples) // 2]
        p90 = samples[int(len(samples) * 0.9)]
        print(f"{label:<52}{p50:>8.3f}{p90:>8.3f}")

    print(f"{'sequential requests, ms':<52}{'p50':>8}{'p90':>8}")
    with httpx.Client() as client:
        show(
            "upstream directly",
            series(client, f"http://127.0.0.1:{mock_port}/v1/chat/completions", {}),
        )
    for kind, params in (
        ("local", "{type: local}"),
        (
            "redis",
            "{type: redis, host: 127.0.0.1, port: 6379, namespace: bench-cache-"
            + uuid.uuid4().hex[:8]
            + "}",
        ),
    ):
        config = work / f"gateway-{kind}.yaml"
        config.write_text(GATEWAY_CONFIG.format(cache_params=params))
        port = free_port()
        env = {
            **os.environ,
            "BENCH_MOCK_BASE": f"http://127.0.0.1:{mock_port}/v1",
            "BASTION_DB_PATH": str(work / f"{kind}.db"),
            "BASTION_SPEND_SPILL_PATH": str(work / f"{kind}-spill.jsonl"),
            "BASTION_LOG_LEVEL": "warning",
        }
        gateway = spawn(
            f"gateway-{kind}",
            [
                sys.executable,
                "-m",
                "bastion",
                "serve",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            port,
            work / f"gateway-{kind}.log",
            env=env,
        )
        try:
            wait_ready(gateway, "/health/liveliness", 30)
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            with httpx.Client() as client:
                show(
                    f"gateway {kind}, miss (no-cache: every call upstream)",
                    series(client, url, {"cache": {"no-cache": True}}),
                )
                show(f"gateway {kind}, hit", series(client, url, {}))
        finally:
            gateway.stop()
    mock.stop()
    subprocess.run(["rm", "-rf", str(work)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=20_000)
    parser.add_argument("--e2e", action="store_true", help="also run gateway end to end")
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(micro(args.loops))
    if args.e2e:
        print()
        e2e(args.requests)


if __name__ == "__main__":
    main()
