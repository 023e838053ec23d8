"""Shared helpers for the end-to-end tests (imported by the test modules and conftest)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai

from tests.mocks.openai_upstream import MockOpenAIUpstream, RecordedRequest
from tests.support.gateway import GatewayProcess

MASTER_KEY = "sk-e2e-master-4f9c1d7a2b"
USER_MSG: list[Any] = [{"role": "user", "content": "hello there"}]
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}


class MockPool:
    """Mock upstreams for one test module; stopped together at the module's end."""

    def __init__(self) -> None:
        self.mocks: list[MockOpenAIUpstream] = []

    def new(self, **kwargs: Any) -> MockOpenAIUpstream:
        mock = MockOpenAIUpstream(**kwargs).start()
        self.mocks.append(mock)
        return mock

    def reset(self) -> None:
        for mock in self.mocks:
            mock.clear_faults()
            mock.clear()

    def stop_all(self) -> None:
        for mock in self.mocks:
            mock.stop()


@contextlib.contextmanager
def running(
    config: dict[str, Any] | str | None,
    *,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
) -> Iterator[GatewayProcess]:
    with GatewayProcess(config, env=env, args=args) as gw:
        yield gw


def sync_client(gw: GatewayProcess, key: str = MASTER_KEY, *, v1: bool = True) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gw.url + ("/v1" if v1 else ""), api_key=key, max_retries=0, timeout=20
    )


def async_client(gw: GatewayProcess, key: str = MASTER_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=20)


def auth(key: str = MASTER_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def requests_for(mock: MockOpenAIUpstream, model: str) -> list[RecordedRequest]:
    return [r for r in mock.requests if r.model == model]


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an OpenAI-shaped error with this status; returns ``error``."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    return dict(error)


def wait_until_known(gw: GatewayProcess, key: str) -> None:
    """A gateway learns a key made elsewhere from its next snapshot (every 2 s)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        response = httpx.get(f"{gw.url}/v1/models", headers={"Authorization": f"Bearer {key}"})
        if response.status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"{gw.url} never learned the key")
