"""The Anthropic mock upstream speaks the Messages API as the real one does, faults included.

Checked with the official ``anthropic`` SDK and raw httpx, without the gateway.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from tests.mocks.anthropic_upstream import (
    MockAnthropicUpstream,
    drop_connection,
    error_mid_stream,
    reset_mid_stream,
    slow_stream,
    status,
)

KEY = "sk-ant-mock-test"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def up() -> Iterator[MockAnthropicUpstream]:
    with MockAnthropicUpstream(api_key=KEY) as mock:
        yield mock


@pytest.fixture(autouse=True)
def _fresh(up: MockAnthropicUpstream) -> None:
    up.clear()
    up.clear_faults()


def client(up: MockAnthropicUpstream, key: str = KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=up.base_url, api_key=key, max_retries=0, timeout=10)


def post(
    up: MockAnthropicUpstream, body: object, headers: dict[str, str] = HEADERS
) -> httpx.Response:
    return httpx.post(f"{up.base_url}/v1/messages", json=body, headers=headers, timeout=10)


def test_message_and_stream_agree(up: MockAnthropicUpstream) -> None:
    message = client(up).messages.create(model="m", max_tokens=50, messages=HELLO)
    assert message.content[0].text.startswith("Hello from the mock")  # type: ignore[union-attr]
    with client(up).messages.stream(model="m", max_tokens=50, messages=HELLO) as stream:
        streamed = stream.get_final_message()
    assert streamed.content[0].text == message.content[0].text  # type: ignore[union-attr]
    assert streamed.usage == message.usage
    # The mock records a stream after its last write, which the client may see first.
    assert up.wait_until(lambda: len(up.stream_bytes) == 1)
    events = up.stream_bytes[-1].split(b"\n\n")
    assert events[0].startswith(b"event: message_start") and b"event: ping" in events[2]
    assert events[-2].startswith(b"event: message_stop")


def test_auth_version_and_validation_errors(up: MockAnthropicUpstream) -> None:
    with pytest.raises(anthropic.AuthenticationError):
        client(up, "wrong").messages.create(model="m", max_tokens=5, messages=HELLO)
    response = post(up, {"model": "m", "max_tokens": 5, "messages": HELLO}, {"x-api-key": KEY})
    assert response.status_code == 400 and "anthropic-version" in response.text
    bad = {"model": "m", "max_tokens": 5, "messages": HELLO, "n": 2}
    response = post(up, bad)
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "n: Extra inputs are not permitted",
    }
    orphan = [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]}]
    assert "tool_use_id" in post(up, {"model": "m", "max_tokens": 5, "messages": orphan}).text


def test_tools_thinking_and_cache(up: MockAnthropicUpstream) -> None:
    tool = {
        "name": "f",
        "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}}},
    }
    answer = client(up).messages.create(
        model="m",
        max_tokens=2000,
        messages=HELLO,
        tools=[tool],  # type: ignore[list-item]
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    assert [b.type for b in answer.content] == ["thinking", "text", "tool_use"]
    assert answer.content[2].input == {"a": 1}  # type: ignore[union-attr]
    assert answer.stop_reason == "tool_use"
    system = [
        {"type": "text", "text": "cached " * 29 + "cached", "cache_control": {"type": "ephemeral"}}
    ]
    usages = [
        client(up).messages.create(model="m", max_tokens=9, messages=HELLO, system=system).usage  # type: ignore[arg-type]
        for _ in range(2)
    ]
    assert (usages[0].cache_creation_input_tokens, usages[0].cache_read_input_tokens) == (30, 0)
    assert (usages[1].cache_creation_input_tokens, usages[1].cache_read_input_tokens) == (0, 30)
    assert usages[0].input_tokens == usages[1].input_tokens == 1
    counted = client(up).messages.count_tokens(model="m", messages=HELLO, system=system)  # type: ignore[arg-type]
    assert counted.input_tokens == 31


def test_status_faults(up: MockAnthropicUpstream) -> None:
    up.enqueue(status(429, retry_after=2))
    up.enqueue(status(529))
    with pytest.raises(anthropic.RateLimitError) as limited:
        client(up).messages.create(model="m", max_tokens=5, messages=HELLO)
    assert limited.value.response.headers["retry-after"] == "2"
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        client(up).messages.create(model="m", max_tokens=5, messages=HELLO)
    assert overloaded.value.status_code == 529
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_stream_faults(up: MockAnthropicUpstream) -> None:
    up.enqueue(error_mid_stream(after_events=3))
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        client(up).messages.stream(model="m", max_tokens=50, messages=HELLO) as stream,
    ):
        stream.get_final_message()
    up.enqueue(reset_mid_stream(after_events=3))
    body = {"model": "m", "max_tokens": 50, "messages": HELLO, "stream": True}
    received = b""
    with (
        pytest.raises(httpx.HTTPError),
        httpx.stream("POST", f"{up.base_url}/v1/messages", json=body, headers=HEADERS) as response,
    ):
        for chunk in response.iter_bytes():
            received += chunk
    assert received.count(b"event: ") == 3
    up.enqueue(drop_connection())
    with pytest.raises(anthropic.APIConnectionError):
        client(up).messages.create(model="m", max_tokens=5, messages=HELLO)
    up.enqueue(slow_stream(interval_s=0.01, chunks=5))
    started = time.monotonic()
    with client(up).messages.stream(model="m", max_tokens=50, messages=HELLO) as stream:
        text = stream.get_final_text()
    assert text == "tok0 tok1 tok2 tok3 tok4" and time.monotonic() - started > 0.05
    assert up.stream_outcomes == ["error", "reset", "completed"]
