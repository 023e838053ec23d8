"""Routing through the real gateway: weights, retries, fallbacks, cooldowns, timeouts.

One gateway serves every group; each group has its own mock upstreams, so the cooldown
state one test leaves behind cannot touch another. A deployment with ``weight: 0`` is
never picked first while a weighted sibling is available, which makes "the first attempt
fails, the retry goes to the healthy one" deterministic.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.helpers import (
    MASTER_KEY,
    USER_MSG,
    MockPool,
    assert_openai_error,
    auth,
    running,
    sync_client,
)
from tests.mocks.openai_upstream import (
    MockOpenAIUpstream,
    delay,
    reset_mid_stream,
    slow_first_byte,
    status,
)
from tests.support.gateway import GatewayProcess

NO_FALLBACK: dict[str, Any] = {"num_retries": 0, "disable_fallbacks": True}


@dataclass
class Env:
    gw: GatewayProcess
    up: dict[str, MockOpenAIUpstream]
    client: openai.OpenAI
    http: httpx.Client


def _entry(group: str, up: MockOpenAIUpstream, ident: str, **params: Any) -> dict[str, Any]:
    return {
        "model_name": group,
        "litellm_params": {
            "model": "openai/gpt-4o",
            "api_base": up.openai_base,
            "api_key": "sk-upstream",
            **params,
        },
        "model_info": {"id": ident},
    }


@pytest.fixture(scope="module")
def env(mocks: MockPool) -> Iterator[Env]:
    names = [
        "w9",
        "w1",
        "retry-bad",
        "retry-good",
        "primary",
        "backup",
        "orphan",
        "cool-bad",
        "cool-good",
        "slow",
        "slowpair-bad",
        "slowpair-good",
        "slowstream",
        "flaky",
    ]
    up = {name: mocks.new(name=name) for name in names}
    model_list = [
        _entry("weighted", up["w9"], "w9", weight=9),
        _entry("weighted", up["w1"], "w1", weight=1),
        _entry("retry", up["retry-bad"], "retry-bad", weight=1),
        _entry("retry", up["retry-good"], "retry-good", weight=0),
        _entry("primary", up["primary"], "primary"),
        _entry("backup", up["backup"], "backup"),
        _entry("orphan", up["orphan"], "orphan"),
        _entry("cool", up["cool-bad"], "cool-bad", weight=1),
        _entry("cool", up["cool-good"], "cool-good", weight=0),
        _entry("slow", up["slow"], "slow", timeout=0.5),
        _entry("slowpair", up["slowpair-bad"], "slowpair-bad", weight=1, timeout=0.5),
        _entry("slowpair", up["slowpair-good"], "slowpair-good", weight=0, timeout=0.5),
        _entry("slowstream", up["slowstream"], "slowstream", stream_timeout=0.5),
        _entry("flaky", up["flaky"], "flaky"),
    ]
    config = {
        "model_list": model_list,
        "router_settings": {
            "num_retries": 1,
            "allowed_fails": 1,
            "cooldown_time": 30,
            "fallbacks": [{"primary": ["backup"]}],
            "default_fallbacks": ["backup"],
        },
        "general_settings": {"master_key": MASTER_KEY},
    }
    with running(config) as gw, httpx.Client(base_url=gw.url, headers=auth()) as http:
        yield Env(gw, up, sync_client(gw), http)


def _chat(env: Env, model: str, **extra: Any) -> httpx.Response:
    return env.http.post(
        "/v1/chat/completions", json={"model": model, "messages": USER_MSG, **extra}
    )


def test_weighted_shuffle_spreads_traffic(env: Env) -> None:
    served = {"w9": 0, "w1": 0}
    for _ in range(100):
        resp = _chat(env, "weighted")
        assert resp.status_code == 200
        served[resp.headers["x-litellm-model-id"]] += 1
    assert env.up["w9"].count() == served["w9"]
    assert env.up["w1"].count() == served["w1"]
    # Expected 90:10; the bounds are five standard deviations wide.
    assert 75 <= served["w9"] <= 99, served
    assert served["w1"] >= 1, served


def test_upstream_500_is_retried_on_the_other_deployment(env: Env) -> None:
    env.up["retry-bad"].set_default(status(500))
    raw = env.client.chat.completions.with_raw_response.create(model="retry", messages=USER_MSG)
    assert raw.parse().choices[0].message.content == "[retry-good] Mock reply to: hello there"
    assert raw.headers["x-litellm-attempted-retries"] == "1"
    assert raw.headers["x-litellm-attempted-fallbacks"] == "0"
    assert raw.headers["x-litellm-model-id"] == "retry-good"
    assert env.up["retry-bad"].count() == 1
    assert env.up["retry-good"].count() == 1


def test_fallback_answers_when_primary_fails(env: Env) -> None:
    env.up["primary"].set_default(status(500))
    raw = env.client.chat.completions.with_raw_response.create(
        model="primary", messages=USER_MSG, extra_body={"num_retries": 0}
    )
    assert raw.parse().choices[0].message.content == "[backup] Mock reply to: hello there"
    assert raw.headers["x-litellm-attempted-fallbacks"] == "1"
    assert raw.headers["x-litellm-attempted-retries"] == "0"
    assert raw.headers["x-litellm-model-id"] == "backup"
    assert env.up["primary"].count() == 1
    assert env.up["backup"].count() == 1


def test_fallback_streams_too(env: Env) -> None:
    env.up["primary"].set_default(status(503))
    stream = env.client.chat.completions.create(
        model="primary", messages=USER_MSG, stream=True, extra_body={"num_retries": 0}
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "[backup] Mock reply to: hello there"
    assert len(env.up["backup"].streams) == 1


def test_when_fallbacks_fail_too_the_client_sees_the_last_error(env: Env) -> None:
    env.up["primary"].set_default(status(500))
    env.up["backup"].enqueue(status(503, message="backup is down too"))
    resp = _chat(env, "primary", num_retries=0)
    error = assert_openai_error(resp, 503)
    assert "backup is down too" in error["message"]


def test_default_fallbacks(env: Env) -> None:
    env.up["orphan"].set_default(status(500))
    raw = env.client.chat.completions.with_raw_response.create(
        model="orphan", messages=USER_MSG, extra_body={"num_retries": 0}
    )
    assert raw.parse().choices[0].message.content == "[backup] Mock reply to: hello there"
    assert raw.headers["x-litellm-attempted-fallbacks"] == "1"
    assert raw.headers["x-litellm-model-id"] == "backup"
    assert env.up["orphan"].count() == 1


def test_failing_deployment_is_cooled_down(env: Env) -> None:
    bad, good = env.up["cool-bad"], env.up["cool-good"]
    bad.set_default(status(500))
    retries = []
    for _ in range(12):
        resp = _chat(env, "cool")
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-litellm-model-id"] == "cool-good"
        retries.append(resp.headers["x-litellm-attempted-retries"])
    # allowed_fails: 1 -> the second failure within a minute starts a 30 s cooldown,
    # after which the failing deployment gets no traffic at all.
    assert bad.count() == 2
    assert good.count() == 12
    assert retries[:2] == ["1", "1"]
    assert set(retries[2:]) == {"0"}
    for _ in range(5):
        assert _chat(env, "cool").status_code == 200
    assert bad.count() == 2


def test_timeout_is_408(env: Env) -> None:
    env.up["slow"].set_default(delay(2))
    started = time.monotonic()
    resp = _chat(env, "slow", **NO_FALLBACK)
    elapsed = time.monotonic() - started
    error = assert_openai_error(resp, 408)
    assert error["type"] == "timeout"
    assert elapsed < 1.8, elapsed  # gave up at timeout: 0.5, did not wait for the 2 s answer


def test_timeout_is_retried_on_a_healthy_deployment(env: Env) -> None:
    env.up["slowpair-bad"].set_default(delay(2))
    started = time.monotonic()
    resp = _chat(env, "slowpair")
    elapsed = time.monotonic() - started
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-litellm-model-id"] == "slowpair-good"
    assert resp.headers["x-litellm-attempted-retries"] == "1"
    assert elapsed < 1.8, elapsed


def test_stream_timeout_on_slow_first_byte(env: Env) -> None:
    env.up["slowstream"].set_default(slow_first_byte(2))
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        stream = env.client.chat.completions.create(
            model="slowstream", messages=USER_MSG, stream=True, extra_body=NO_FALLBACK
        )
        list(stream)
    assert caught.value.status_code == 408
    assert time.monotonic() - started < 1.8


def test_reset_mid_stream_breaks_the_client_stream_and_gateway_keeps_serving(env: Env) -> None:
    flaky = env.up["flaky"]
    flaky.enqueue(reset_mid_stream(after_chunks=3))
    stream = env.client.chat.completions.create(model="flaky", messages=USER_MSG, stream=True)
    received = []
    with pytest.raises((openai.APIError, httpx.HTTPError)):
        for chunk in stream:
            received.append(chunk)
    assert received, "the first chunks should arrive before the reset"
    assert flaky.wait_until(lambda: flaky.reset_streams == 1, timeout=3)
    # The gateway is fine afterwards, streaming and not.
    text = "".join(
        c.choices[0].delta.content or ""
        for c in env.client.chat.completions.create(model="flaky", messages=USER_MSG, stream=True)
        if c.choices
    )
    assert text == "[flaky] Mock reply to: hello there"
    assert _chat(env, "flaky").status_code == 200
