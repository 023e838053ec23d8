"""Bad input and upstream failures: OpenAI-shaped 4xx errors, never a 500, never a secret."""

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
from tests.mocks.openai_upstream import MockOpenAIUpstream, status
from tests.support.gateway import GatewayProcess, free_port

PROVIDER_KEY = "sk-e2e-provider-errors-c0ffee11"
SECRETS = (MASTER_KEY, PROVIDER_KEY)


@dataclass
class Env:
    gw: GatewayProcess
    up: MockOpenAIUpstream
    http: httpx.Client


@pytest.fixture(scope="module")
def env(mocks: MockPool) -> Iterator[Env]:
    up = mocks.new(api_key=PROVIDER_KEY, name="err")
    params = {"api_base": up.openai_base, "api_key": PROVIDER_KEY}
    config = {
        "model_list": [
            {"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o", **params}},
            {
                "model_name": "embed",
                "litellm_params": {"model": "openai/text-embedding-3-small", **params},
                "model_info": {"mode": "embedding"},
            },
            {
                "model_name": "unreachable",
                "litellm_params": {
                    "model": "openai/gpt-4o",
                    "api_base": f"http://127.0.0.1:{free_port()}/v1",
                    "api_key": PROVIDER_KEY,
                },
            },
        ],
        "router_settings": {"num_retries": 0},
        "general_settings": {"master_key": MASTER_KEY, "max_request_size_mb": 0.01},
    }
    with running(config) as gw, httpx.Client(base_url=gw.url, headers=auth()) as http:
        yield Env(gw, up, http)


def _no_secrets(resp: httpx.Response) -> None:
    for secret in SECRETS:
        assert secret not in resp.text
        assert all(secret not in v for v in resp.headers.values())


def _post(env: Env, path: str, content: bytes | str) -> httpx.Response:
    return env.http.post(path, content=content, headers={"content-type": "application/json"})


# Every client mistake: (path, raw body, status, expected param or None, words in the message)
BAD_REQUESTS: dict[str, tuple[str, bytes, int, str | None, str]] = {
    "malformed-json": (
        "/v1/chat/completions",
        b'{"model": "gpt", "messages": [',
        400,
        None,
        "not valid JSON",
    ),
    "empty-body": ("/v1/chat/completions", b"", 400, None, "empty"),
    "body-is-a-list": ("/v1/chat/completions", b'[{"model": "gpt"}]', 400, None, "JSON object"),
    "body-is-a-string": ("/v1/chat/completions", b'"hello"', 400, None, "JSON object"),
    "missing-model": (
        "/v1/chat/completions",
        b'{"messages": [{"role": "user", "content": "hi"}]}',
        400,
        "model",
        "model",
    ),
    "model-not-a-string": (
        "/v1/chat/completions",
        b'{"model": 7, "messages": [{"role": "user", "content": "hi"}]}',
        400,
        "model",
        "model",
    ),
    "missing-messages": ("/v1/chat/completions", b'{"model": "gpt"}', 400, "messages", "messages"),
    "empty-messages": (
        "/v1/chat/completions",
        b'{"model": "gpt", "messages": []}',
        400,
        "messages",
        "messages",
    ),
    "message-without-role": (
        "/v1/chat/completions",
        b'{"model": "gpt", "messages": [{"content": "hi"}]}',
        400,
        "messages[0].role",
        "role",
    ),
    "stream-not-bool": (
        "/v1/chat/completions",
        b'{"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}',
        400,
        "stream",
        "stream",
    ),
    "n-zero": (
        "/v1/chat/completions",
        b'{"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "n": 0}',
        400,
        "n",
        "n",
    ),
    "completions-missing-prompt": ("/v1/completions", b'{"model": "gpt"}', 400, "prompt", "prompt"),
    "embeddings-missing-input": ("/v1/embeddings", b'{"model": "embed"}', 400, "input", "input"),
    "embeddings-stream": (
        "/v1/embeddings",
        b'{"model": "embed", "input": "x", "stream": true}',
        400,
        "stream",
        "stream",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_is_openai_shaped_400(env: Env, case: str) -> None:
    path, body, code, param, words = BAD_REQUESTS[case]
    resp = _post(env, path, body)
    error = assert_openai_error(resp, code)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert words.lower() in error["message"].lower()
    assert resp.headers.get("x-litellm-call-id")
    _no_secrets(resp)
    assert env.up.count() == 0


def test_unknown_model_is_404_model_not_found(env: Env) -> None:
    resp = env.http.post(
        "/v1/chat/completions", json={"model": "gpt-5-ultra", "messages": USER_MSG}
    )
    error = assert_openai_error(resp, 404)
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    assert "gpt-5-ultra" in error["message"]
    with pytest.raises(openai.NotFoundError):
        sync_client(env.gw).chat.completions.create(model="gpt-5-ultra", messages=USER_MSG)
    assert env.up.count() == 0


def test_oversized_body_is_413(env: Env) -> None:
    big = "x" * 20_000  # max_request_size_mb: 0.01 is about 10 KB
    resp = env.http.post(
        "/v1/chat/completions",
        json={"model": "gpt", "messages": [{"role": "user", "content": big}]},
    )
    error = assert_openai_error(resp, 413)
    assert "max_request_size_mb" in error["message"]

    def chunks() -> Iterator[bytes]:  # no content-length: the limit holds while reading
        yield b'{"model": "gpt", "messages": [{"role": "user", "content": "'
        for _ in range(20):
            yield b"y" * 1000
        yield b'"}]}'

    resp = env.http.post(
        "/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_openai_error(resp, 413)
    small = env.http.post("/v1/chat/completions", json={"model": "gpt", "messages": USER_MSG})
    assert small.status_code == 200
    assert env.up.count() == 1


def test_unknown_path_is_404_json(env: Env) -> None:
    for method, path in [("GET", "/nope"), ("POST", "/v1/chat/complete"), ("GET", "/v2/models")]:
        resp = env.http.request(method, path)
        error = assert_openai_error(resp, 404)
        assert path in error["message"]


def test_wrong_method_is_405(env: Env) -> None:
    for method, path in [
        ("GET", "/v1/chat/completions"),
        ("PUT", "/v1/embeddings"),
        ("POST", "/v1/models"),
        ("DELETE", "/health/liveliness"),
    ]:
        resp = env.http.request(method, path)
        error = assert_openai_error(resp, 405)
        assert method in error["message"]


def test_upstream_429_keeps_status_and_retry_after(env: Env) -> None:
    env.up.enqueue(status(429, retry_after=7))
    resp = env.http.post("/v1/chat/completions", json={"model": "gpt", "messages": USER_MSG})
    error = assert_openai_error(resp, 429)
    assert error["type"] == "rate_limit_error"
    assert resp.headers["retry-after"] == "7"
    assert env.up.count() == 1  # num_retries: 0 - one attempt
    with pytest.raises(openai.RateLimitError) as caught:
        env.up.enqueue(status(429, retry_after=3))
        sync_client(env.gw).chat.completions.create(model="gpt", messages=USER_MSG)
    assert caught.value.response.headers["retry-after"] == "3"


def test_upstream_400_keeps_status_and_message(env: Env) -> None:
    env.up.enqueue(status(400, message="Invalid 'temperature': must be <= 2.", param="temperature"))
    resp = env.http.post(
        "/v1/chat/completions", json={"model": "gpt", "messages": USER_MSG, "temperature": 9}
    )
    error = assert_openai_error(resp, 400)
    assert "Invalid 'temperature': must be <= 2." in error["message"]
    assert error["param"] == "temperature"
    assert env.up.count() == 1  # a rejected request is not retried


def test_upstream_400_on_stream_request(env: Env) -> None:
    env.up.enqueue(status(400, message="stream says no"))
    resp = env.http.post(
        "/v1/chat/completions", json={"model": "gpt", "messages": USER_MSG, "stream": True}
    )
    error = assert_openai_error(resp, 400)
    assert "stream says no" in error["message"]


def test_upstream_5xx_is_mapped_not_500_from_gateway(env: Env) -> None:
    env.up.enqueue(status(503))
    resp = env.http.post("/v1/chat/completions", json={"model": "gpt", "messages": USER_MSG})
    error = assert_openai_error(resp, 503)
    assert error["type"]


def test_unreachable_upstream_is_502(env: Env) -> None:
    started = time.monotonic()
    resp = env.http.post(
        "/v1/chat/completions", json={"model": "unreachable", "messages": USER_MSG}
    )
    error = assert_openai_error(resp, 502)
    assert error["type"] == "api_connection_error"
    assert time.monotonic() - started < 5
    _no_secrets(resp)


def test_provider_key_never_in_error_bodies(env: Env) -> None:
    # An upstream that echoes the key it was sent must not leak it through the gateway.
    for code in (401, 400, 429, 500):
        env.up.enqueue(status(code, message=f"bad key {PROVIDER_KEY} for this org"))
        resp = env.http.post("/v1/chat/completions", json={"model": "gpt", "messages": USER_MSG})
        assert resp.status_code == code
        assert_openai_error(resp, code)
        _no_secrets(resp)
    env.up.enqueue(status(401, message=f"bad key {PROVIDER_KEY}"))
    resp = env.http.post(
        "/v1/chat/completions", json={"model": "gpt", "messages": USER_MSG, "stream": True}
    )
    assert_openai_error(resp, 401)
    _no_secrets(resp)
    log = env.gw.log()
    assert PROVIDER_KEY not in log and MASTER_KEY not in log


def test_no_error_is_ever_a_500(env: Env) -> None:
    """A sweep of odd inputs: all 4xx with the OpenAI shape."""
    odd: list[tuple[str, Any]] = [
        ("/v1/chat/completions", {"model": "gpt", "messages": "hi"}),
        ("/v1/chat/completions", {"model": "gpt", "messages": [1, 2]}),
        ("/v1/chat/completions", {"model": "", "messages": USER_MSG}),
        ("/v1/chat/completions", {"model": "a\x00b", "messages": USER_MSG}),
        ("/v1/chat/completions", {"model": "gpt", "messages": USER_MSG, "stream_options": 3}),
        ("/v1/chat/completions", {"model": "gpt", "messages": USER_MSG, "num_retries": -1}),
        ("/v1/chat/completions", {"model": "gpt", "messages": USER_MSG, "fallbacks": "x"}),
        ("/v1/completions", {"model": "gpt", "prompt": 5}),
        ("/v1/embeddings", {"model": "embed", "input": []}),
        ("/openai/deployments/nope/chat/completions", {"messages": USER_MSG}),
    ]
    for path, body in odd:
        resp = env.http.post(path, json=body)
        assert 400 <= resp.status_code < 500, (path, body, resp.status_code, resp.text)
        assert_openai_error(resp, resp.status_code)
    resp = _post(env, "/v1/chat/completions", b"\xff\xfe not utf8")
    assert_openai_error(resp, 400)
    assert "Traceback" not in env.gw.log()
