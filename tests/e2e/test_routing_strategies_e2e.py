"""Routing strategies and special fallbacks through a running gateway, two mock deployments each.

Each test starts its own gateway (``routing_strategy`` is one per gateway) in front of
two mock upstreams, and reads which deployment answered from ``x-litellm-model-id``.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import MASTER_KEY, MockPool, assert_openai_error, auth, running
from tests.mocks.openai_upstream import (
    MockOpenAIUpstream,
    delay,
    slow_first_byte,
    slow_stream,
    status,
)

CONTEXT_OVERFLOW = status(
    400,
    message="This model's maximum context length is 8192 tokens. However, your messages "
    "resulted in 9001 tokens. Please reduce the length of the messages.",
    error_type="invalid_request_error",
    error_code="context_length_exceeded",
    param="messages",
)
CONTENT_FILTERED = status(
    400,
    message="The response was filtered due to the prompt triggering Azure OpenAI's content "
    "management policy.",
    error_code="content_filter",
)


def _entry(group: str, up: MockOpenAIUpstream, ident: str, **params: Any) -> dict[str, Any]:
    info = params.pop("model_info", {})
    return {
        "model_name": group,
        "litellm_params": {
            "model": "openai/gpt-4o",
            "api_base": up.openai_base,
            "api_key": "sk-upstream",
            **params,
        },
        "model_info": {"id": ident, **info},
    }


def _config(model_list: list[dict[str, Any]], **router: Any) -> dict[str, Any]:
    return {
        "model_list": model_list,
        "router_settings": {"num_retries": 1, **router},
        "general_settings": {"master_key": MASTER_KEY},
    }


Pair = tuple[MockOpenAIUpstream, MockOpenAIUpstream]


@pytest.fixture
def pair(mocks: MockPool) -> Pair:
    return mocks.new(name="dep-a"), mocks.new(name="dep-b")


@pytest.fixture
def gateway_http() -> Iterator[Any]:
    """``open(model_list, **router_settings)`` starts a gateway; an HTTP client for it."""
    stack: list[Any] = []

    def open_(model_list: list[dict[str, Any]], **router: Any) -> httpx.Client:
        cm = running(_config(model_list, **router))
        gw = cm.__enter__()
        stack.append(cm)
        client = httpx.Client(base_url=gw.url, headers=auth(), timeout=30)
        stack.append(client)
        return client

    yield open_
    for item in reversed(stack):
        item.__exit__(None, None, None)


def _chat(
    http: httpx.Client, model: str, content: str = "hello there", **extra: Any
) -> httpx.Response:
    return http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": content}], **extra},
    )


def _served(resp: httpx.Response) -> str:
    assert resp.status_code == 200, resp.text
    return resp.headers["x-litellm-model-id"]


def _served_many(http: httpx.Client, times: int, model: str = "g") -> list[str]:
    """Which deployment answered each of ``times`` chat calls in a row."""
    return [_served(_chat(http, model)) for _ in range(times)]


def _away_from_minute_end() -> None:
    """Per-minute usage starts again on the minute: keep a test inside one minute."""
    second = time.time() % 60
    if second > 45:
        time.sleep(60 - second + 0.5)


def test_least_busy_sends_the_next_request_to_the_idle_deployment(
    pair: Pair, gateway_http: Any
) -> None:
    a, b = pair
    http = gateway_http([_entry("g", a, "a"), _entry("g", b, "b")], routing_strategy="least-busy")
    for _ in range(3):
        a.clear()
        b.clear()
        # Whichever deployment takes the first request holds it for a while.
        a.enqueue(delay(1.5))
        b.enqueue(delay(1.5))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = pool.submit(_chat, http, "g")
            deadline = time.monotonic() + 10
            while a.count() + b.count() == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            busy = "a" if a.count() else "b"
            idle = "b" if busy == "a" else "a"
            (a if idle == "a" else b).clear_faults()
            assert _served(_chat(http, "g")) == idle
            assert _served(slow.result()) == busy


def test_latency_based_routing_prefers_the_faster_deployment(pair: Pair, gateway_http: Any) -> None:
    a, b = pair
    a.set_default(delay(0.4))
    http = gateway_http(
        [_entry("g", a, "slow"), _entry("g", b, "fast")],
        routing_strategy="latency-based-routing",
        routing_strategy_args={"ttl": 3600},
    )
    served = _served_many(http, 8)
    # Unmeasured deployments are tried first; once both are measured, the fast one wins.
    assert set(served[:2]) == {"slow", "fast"}
    assert served[2:] == ["fast"] * 6
    assert a.count() == 1


def test_usage_based_routing_balances_tokens_and_respects_rpm(
    pair: Pair, gateway_http: Any
) -> None:
    a, b = pair
    http = gateway_http(
        [_entry("g", a, "a", rpm=3), _entry("g", b, "b", rpm=3)],
        routing_strategy="usage-based-routing-v2",
    )
    _away_from_minute_end()
    served = _served_many(http, 6)
    # Each answer's tokens count against its deployment, so the next request goes to the
    # other one: every pair of requests is split across both.
    for first, second in zip(served[::2], served[1::2], strict=True):
        assert {first, second} == {"a", "b"}, served
    # Both have used their 3 requests this minute.
    refused = _chat(http, "g", num_retries=0)
    error = assert_openai_error(refused, 429)
    assert "rpm/tpm capacity" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert a.count() == b.count() == 3


def test_cost_based_routing_picks_the_cheaper_deployment(pair: Pair, gateway_http: Any) -> None:
    a, b = pair
    http = gateway_http(
        [
            _entry("g", a, "dear", input_cost_per_token=3e-5, output_cost_per_token=6e-5),
            _entry("g", b, "cheap", input_cost_per_token=1e-7, output_cost_per_token=4e-7),
        ],
        routing_strategy="cost-based-routing",
    )
    assert _served_many(http, 5) == ["cheap"] * 5
    # When the cheap one fails, the retry goes to the other.
    b.enqueue(status(500))
    resp = _chat(http, "g")
    assert _served(resp) == "dear"
    assert resp.headers["x-litellm-attempted-retries"] == "1"


def test_context_window_error_falls_back_to_the_larger_model(pair: Pair, gateway_http: Any) -> None:
    small, big = pair
    small.set_default(CONTEXT_OVERFLOW)
    http = gateway_http(
        [_entry("small", small, "small"), _entry("big", big, "big")],
        context_window_fallbacks=[{"small": ["big"]}],
    )
    resp = _chat(http, "small")
    assert _served(resp) == "big"
    assert resp.headers["x-litellm-attempted-fallbacks"] == "1"
    assert resp.headers["x-litellm-attempted-retries"] == "0"  # an overflow is not retried
    assert small.count() == 1 and big.count() == 1
    # Without a rule, the client gets the provider's 400 at once.
    error = assert_openai_error(_chat(http, "small", disable_fallbacks=True), 400)
    assert "maximum context length" in error["message"]


def test_content_policy_error_falls_back(pair: Pair, gateway_http: Any) -> None:
    strict, lenient = pair
    strict.set_default(CONTENT_FILTERED)
    http = gateway_http(
        [_entry("strict", strict, "strict"), _entry("lenient", lenient, "lenient")],
        content_policy_fallbacks=[{"strict": ["lenient"]}],
    )
    assert _served(_chat(http, "strict")) == "lenient"


def test_pre_call_checks_skip_a_deployment_the_prompt_does_not_fit(
    pair: Pair, gateway_http: Any
) -> None:
    small, big = pair
    http = gateway_http(
        [
            _entry("small", small, "small", model_info={"max_input_tokens": 50}),
            _entry("big", big, "big"),
        ],
        enable_pre_call_checks=True,
        context_window_fallbacks=[{"small": ["big"]}],
    )
    assert _served(_chat(http, "small", "short")) == "small"
    resp = _chat(http, "small", "word " * 400)  # ~500 tokens: over small's 50
    assert _served(resp) == "big"
    assert small.count() == 1  # the long prompt was never sent to it
    error = assert_openai_error(_chat(http, "small", "word " * 400, disable_fallbacks=True), 400)
    assert error["code"] == "context_length_exceeded"
    assert "context window" in error["message"]


def test_least_busy_counts_a_stream_in_flight_until_it_ends(pair: Pair, gateway_http: Any) -> None:
    a, b = pair
    http = gateway_http([_entry("g", a, "a"), _entry("g", b, "b")], routing_strategy="least-busy")
    a.set_default(slow_stream(interval_s=0.05, chunks=1200))  # a minute of chunks
    b.set_default(slow_stream(interval_s=0.05, chunks=1200))
    body = {"model": "g", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body) as streaming:
        assert streaming.status_code == 200
        busy = streaming.headers["x-litellm-model-id"]
        chunks = streaming.iter_bytes()  # kept: dropping it would close the stream
        next(chunks)  # the stream is open and sending
        a.clear_faults()
        b.clear_faults()
        # The open stream keeps its deployment busy: the next calls go to the other one.
        seq = _served_many(http, 3)
        assert set(seq) == {"b" if busy == "a" else "a"}, (busy, seq)
    # The client left, so the stream ended: both are idle again and both get traffic.
    assert set(_served_many(http, 12)) == {"a", "b"}


def test_a_providers_retry_after_cools_the_deployment_that_long(
    pair: Pair, gateway_http: Any
) -> None:
    limited, spare = pair
    http = gateway_http(
        [_entry("g", limited, "limited", weight=1), _entry("g", spare, "spare", weight=0)],
        cooldown_time=0.5,
    )
    limited.enqueue(status(429, retry_after=30))
    first = _chat(http, "g")
    assert _served(first) == "spare"
    assert first.headers["x-litellm-attempted-retries"] == "1"
    time.sleep(1.0)  # past cooldown_time, well within the provider's 30 s
    assert _served_many(http, 3) == ["spare"] * 3
    assert limited.count() == 1


def test_retry_policy_per_error_kind(pair: Pair, gateway_http: Any) -> None:
    a, _ = pair
    http = gateway_http(
        [_entry("g", a, "a")],
        num_retries=3,
        retry_policy={"RateLimitErrorRetries": 0, "BadRequestErrorRetries": 1},
    )
    a.enqueue(status(429, retry_after=0))
    assert_openai_error(_chat(http, "g"), 429)
    assert a.count() == 1  # not retried, although num_retries is 3
    a.clear()
    a.enqueue(status(400, message="transient validation glitch"))
    resp = _chat(http, "g")
    assert _served(resp) == "a"
    assert resp.headers["x-litellm-attempted-retries"] == "1"
    assert a.count() == 2


def test_latency_based_routing_uses_time_to_first_token_for_streams(
    pair: Pair, gateway_http: Any
) -> None:
    early, late = pair
    # "early" starts streaming at once but takes ~1 s in all; "late" starts after
    # 0.4 s and is then done.
    early.set_default(slow_stream(interval_s=0.05, chunks=20))
    late.set_default(slow_first_byte(0.4))
    http = gateway_http(
        [_entry("g", early, "early"), _entry("g", late, "late")],
        routing_strategy="latency-based-routing",
    )
    body = {"model": "g", "messages": [{"role": "user", "content": "hi"}], "stream": True}

    def stream_served() -> str:
        with http.stream("POST", "/v1/chat/completions", json=body) as resp:
            assert resp.status_code == 200
            resp.read()
            return resp.headers["x-litellm-model-id"]

    # The first two measure both; then streams go to the one that starts sooner...
    assert {stream_served(), stream_served()} == {"early", "late"}
    assert [stream_served() for _ in range(3)] == ["early"] * 3
    # ...and whole answers to the one that finishes sooner.
    assert _served_many(http, 3) == ["late"] * 3
