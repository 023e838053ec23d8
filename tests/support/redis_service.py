"""The real Redis for tests (127.0.0.1:6379, or BASTION_TEST_REDIS_URL).

Skipped with the reason when unreachable, unless ``BASTION_REQUIRE_SERVICES=1``
(CI), where that fails instead. Every test writes under its own key prefix and
deletes only keys under it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest

REDIS_URL = os.environ.get("BASTION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _ping(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def delete_prefix(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        asyncio.run(_ping(REDIS_URL))
    except Exception as exc:
        reason = (
            f"Redis not reachable at {REDIS_URL} ({type(exc).__name__}: {exc}); "
            "start it or set BASTION_TEST_REDIS_URL"
        )
        if os.environ.get("BASTION_REQUIRE_SERVICES", "") not in ("", "0", "false"):
            pytest.fail(f"{reason} [BASTION_REQUIRE_SERVICES=1]")
        pytest.skip(reason)
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"bastion-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    asyncio.run(delete_prefix(redis_url, prefix))
