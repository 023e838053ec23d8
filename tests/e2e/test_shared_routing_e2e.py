"""Routing state across two gateway processes sharing Redis: a deployment cooled by
one gateway (the provider's 429 with retry-after) is skipped by the other."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.helpers import MockPool
from tests.mocks.openai_upstream import MockOpenAIUpstream, status
from tests.support.gateway import GatewayProcess

MASTER = "sk-master-shared-routing"
MESSAGES: list[Any] = [{"role": "user", "content": "hello"}]


@pytest.fixture
def upstreams(mocks: MockPool) -> Iterator[tuple[MockOpenAIUpstream, MockOpenAIUpstream]]:
    limited, healthy = MockOpenAIUpstream(), MockOpenAIUpstream()
    for mock in (limited, healthy):
        mock.start()
        mocks.mocks.append(mock)
    yield limited, healthy


def deployment(upstream: MockOpenAIUpstream) -> dict[str, Any]:
    return {
        "model_name": "gpt",
        "litellm_params": {
            "model": "openai/gpt-4o-mini",
            "api_base": upstream.openai_base,
            "api_key": "sk-upstream",
        },
    }


def test_a_deployment_cooled_by_one_gateway_is_skipped_by_the_other(
    upstreams: tuple[MockOpenAIUpstream, MockOpenAIUpstream], redis_prefix: str, tmp_path: Path
) -> None:
    limited, healthy = upstreams
    config = {
        "model_list": [deployment(limited), deployment(healthy)],
        "router_settings": {"redis_host": "127.0.0.1", "redis_port": 6379},
        "general_settings": {
            "master_key": MASTER,
            "database_url": f"sqlite:///{tmp_path / 'shared.db'}",
            "rate_limit_redis_prefix": redis_prefix,
        },
    }
    with GatewayProcess(config) as first, GatewayProcess(config) as second:
        clients = [
            openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER, max_retries=0)
            for gw in (first, second)
        ]
        # Before any cooldown the second gateway uses both deployments.
        for _ in range(30):
            clients[1].chat.completions.create(model="gpt", messages=MESSAGES)
        assert limited.requests and healthy.requests

        limited.set_default(status(429, retry_after=60))  # the provider: wait a minute
        before = len(limited.requests)
        while len(limited.requests) == before:  # until the first gateway has met the 429
            clients[0].chat.completions.create(model="gpt", messages=MESSAGES)  # retried: ok
        hit = len(limited.requests)

        time.sleep(1.0)  # a few syncs (every 0.2 s, and at once after a cooldown)
        for _ in range(30):  # the second gateway never met the 429, yet skips the deployment
            clients[1].chat.completions.create(model="gpt", messages=MESSAGES)
        assert len(limited.requests) == hit

        # Readiness says where the routing state lives and that the replicas see each other.
        shared = httpx.get(f"{second.url}/health/readiness", timeout=5).json()["shared_state"]
        assert shared["budgets"] == "redis"
        assert shared["routing"]["backend"] == "redis"
        assert shared["routing"]["replicas_seen"] == 2
