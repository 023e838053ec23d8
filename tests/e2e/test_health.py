"""Health endpoints: probes, per-deployment checks by mode, filters, background checks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import MASTER_KEY, MockPool, assert_openai_error, auth, running
from tests.mocks.openai_upstream import MockOpenAIUpstream
from tests.support.gateway import GatewayProcess, free_port

PROVIDER_KEY = "sk-e2e-provider-health-77aa01"


@dataclass
class Env:
    gw: GatewayProcess
    up: MockOpenAIUpstream
    dead_base: str


def _params(base: str, model: str = "openai/gpt-4o") -> dict[str, Any]:
    return {"model": model, "api_base": base, "api_key": PROVIDER_KEY}


@pytest.fixture(scope="module")
def env(mocks: MockPool) -> Iterator[Env]:
    up = mocks.new(api_key=PROVIDER_KEY, name="health")
    dead_base = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    config = {
        "model_list": [
            {"model_name": "chat-ok", "litellm_params": _params(up.openai_base)},
            {"model_name": "chat-dead", "litellm_params": _params(dead_base)},
            {
                "model_name": "embed-ok",
                "litellm_params": _params(up.openai_base, "openai/text-embedding-3-small"),
                "model_info": {"mode": "embedding"},
            },
            {
                "model_name": "not-checked",
                "litellm_params": _params(dead_base),
                "model_info": {"disable_background_health_check": True},
            },
            {
                "model_name": "realtime",
                "litellm_params": _params(dead_base, "openai/gpt-4o-realtime-preview"),
                "model_info": {"mode": "realtime"},
            },
        ],
        "general_settings": {"master_key": MASTER_KEY},
    }
    with running(config) as gw:
        yield Env(gw, up, dead_base)


def _health(env: Env, **params: str) -> dict[str, Any]:
    resp = httpx.get(f"{env.gw.url}/health", headers=auth(), params=params, timeout=30)
    assert resp.status_code == 200, resp.text
    assert PROVIDER_KEY not in resp.text and MASTER_KEY not in resp.text
    assert "api_key" not in resp.text
    body: dict[str, Any] = resp.json()
    return body


def _names(entries: list[dict[str, Any]]) -> list[str]:
    return sorted(e["model_name"] for e in entries)


@pytest.mark.parametrize("path", ["/health/liveliness", "/health/liveness"])
def test_liveness_probes(env: Env, path: str) -> None:
    resp = httpx.get(env.gw.url + path)
    assert resp.status_code == 200
    assert resp.json() == "I'm alive!"
    assert httpx.head(env.gw.url + path).status_code == 200


def test_the_root_says_what_this_is_without_a_key(env: Env) -> None:
    resp = httpx.get(env.gw.url + "/")
    assert resp.status_code == 200
    assert resp.json()["name"] == "Bastion" and resp.json()["openai_base_url"] == "/v1"
    head = httpx.head(env.gw.url + "/")  # Claude Code probes the base URL this way
    assert head.status_code == 200 and head.content == b""


def test_readiness(env: Env) -> None:
    resp = httpx.get(f"{env.gw.url}/health/readiness")
    assert resp.status_code == 200
    assert resp.json()["status"] == "healthy"


def test_health_needs_the_key(env: Env) -> None:
    assert_openai_error(httpx.get(f"{env.gw.url}/health"), 401)
    assert env.up.count() == 0


def test_health_checks_every_deployment_by_mode(env: Env) -> None:
    body = _health(env)
    assert _names(body["healthy_endpoints"]) == ["chat-ok", "embed-ok"]
    assert _names(body["unhealthy_endpoints"]) == ["chat-dead"]
    assert body["healthy_count"] == 2
    assert body["unhealthy_count"] == 1
    skipped = {e["model_name"]: e["reason"] for e in body["skipped_endpoints"]}
    assert set(skipped) == {"not-checked", "realtime"}
    assert "disable_background_health_check" in skipped["not-checked"]
    assert "realtime" in skipped["realtime"]
    dead = body["unhealthy_endpoints"][0]
    assert dead["api_base"] == env.dead_base
    assert dead["error"]
    # The chat deployment got a chat call, the embedding one an embeddings call.
    assert env.up.count("/v1/chat/completions", model="gpt-4o") == 1
    assert env.up.count("/v1/embeddings", model="text-embedding-3-small") == 1
    assert env.up.count() == 2
    assert all(r.headers["authorization"] == f"Bearer {PROVIDER_KEY}" for r in env.up.requests)


def test_health_model_filter(env: Env) -> None:
    body = _health(env, model="embed-ok")
    assert _names(body["healthy_endpoints"]) == ["embed-ok"]
    assert body["unhealthy_endpoints"] == []
    assert body["healthy_count"] == 1 and body["unhealthy_count"] == 0
    assert env.up.count("/v1/embeddings") == 1
    assert env.up.count("/v1/chat/completions") == 0

    body = _health(env, model="chat-dead")
    assert body["healthy_count"] == 0
    assert _names(body["unhealthy_endpoints"]) == ["chat-dead"]
    assert env.up.count() == 1


def test_background_health_checks_run_on_their_own(mocks: MockPool) -> None:
    up = mocks.new(api_key=PROVIDER_KEY, name="bg")
    config = {
        "model_list": [{"model_name": "chat-ok", "litellm_params": _params(up.openai_base)}],
        "general_settings": {
            "master_key": MASTER_KEY,
            "background_health_checks": True,
            "health_check_interval": 0.3,
        },
    }
    with running(config) as gw:
        # No /health call at all: the gateway checks its deployment by itself, repeatedly.
        assert up.wait_until(lambda: up.count("/v1/chat/completions") >= 2, timeout=5)
        seen = up.last_request
        assert seen.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
        assert seen.json["model"] == "gpt-4o"
        # /health answers from the latest background result.
        before = up.count()
        started = time.monotonic()
        resp = httpx.get(f"{gw.url}/health", headers=auth())
        assert time.monotonic() - started < 2
        assert resp.status_code == 200
        assert _names(resp.json()["healthy_endpoints"]) == ["chat-ok"]
        assert up.count() - before <= 1  # at most a background tick, not a fresh sweep
