"""Anthropic-dialect clients on an OpenAI deployment, end to end.

The official ``anthropic`` SDK -> bastion serve (/v1/messages) -> the mock OpenAI upstream:
the request is translated to chat completions and the answer, streamed or not, back into
Anthropic's Messages format.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import pytest

from tests.e2e.helpers import MASTER_KEY, MockPool, running
from tests.mocks.openai_upstream import MockOpenAIUpstream, reset_mid_stream, status
from tests.support.gateway import GatewayProcess

PROVIDER_KEY = "sk-e2e-provider-bridge-7c2d"
MODEL = "claude-bridge"
WEATHER: Any = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}
HELLO: Any = [{"role": "user", "content": "hello"}]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image bytes").decode()


@dataclass
class Env:
    gw: GatewayProcess
    up: MockOpenAIUpstream
    client: anthropic.Anthropic

    def post(self, path: str, body: Any, key: str = MASTER_KEY) -> httpx.Response:
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        return httpx.post(self.gw.url + path, json=body, headers=headers, timeout=20)


@pytest.fixture(scope="module")
def env(mocks: MockPool) -> Iterator[Env]:
    up = mocks.new(api_key=PROVIDER_KEY, name="bridge")
    params = {"model": "openai/gpt-4o", "api_base": up.openai_base, "api_key": PROVIDER_KEY}
    config = {
        "model_list": [{"model_name": MODEL, "litellm_params": params}],
        "router_settings": {"num_retries": 0},
        "general_settings": {"master_key": MASTER_KEY},
    }
    with running(config) as gw:
        client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0, timeout=20)
        yield Env(gw, up, client)


def sent(env: Env) -> dict[str, Any]:
    """The chat-completions body the mock upstream received last."""
    body = env.up.last_request.json
    assert env.up.last_request.path == "/v1/chat/completions"
    assert isinstance(body, dict)
    return body


def test_non_streaming_with_system_blocks(env: Env) -> None:
    message = env.client.messages.create(
        model=MODEL,
        max_tokens=200,
        system=[
            {"type": "text", "text": "You are terse."},
            {"type": "text", "text": "Answer in English.", "cache_control": {"type": "ephemeral"}},
        ],
        messages=HELLO,
        stop_sequences=["END"],
        extra_body={"temperature": 0.3},  # this SDK version no longer has the parameter
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "[bridge] Mock reply to: hello"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    # The mock counts a token per word: 7 in (system and user text), 5 out.
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 5)
    body = sent(env)
    assert body["model"] == "gpt-4o"
    assert body["messages"] == [
        {"role": "system", "content": "You are terse.\n\nAnswer in English."},
        {"role": "user", "content": "hello"},
    ]
    assert (body["max_tokens"], body["temperature"], body["stop"]) == (200, 0.3, ["END"])
    assert "stream" not in body


def test_streaming_text_with_the_stream_helper(env: Env) -> None:
    with env.client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "[bridge] Mock reply to: hello"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 5 and final.usage.input_tokens == 1
    body = sent(env)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_streaming_raw_events_are_in_anthropics_order(env: Env) -> None:
    events = list(
        env.client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, stream=True)
    )
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    start = events[0]
    assert start.type == "message_start" and start.message.model == MODEL
    delta = events[-2]
    assert delta.type == "message_delta" and delta.delta.stop_reason == "end_turn"


def test_raw_stream_bytes_name_every_event(env: Env) -> None:
    body = {"model": MODEL, "max_tokens": 50, "messages": HELLO, "stream": True}
    with httpx.stream(
        "POST",
        env.gw.url + "/v1/messages",
        json=body,
        headers={"x-api-key": MASTER_KEY},
        timeout=20,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    frames = [f for f in raw.split("\n\n") if f]
    assert frames[0].startswith('event: message_start\ndata: {"type":"message_start"')
    assert frames[1] == 'event: ping\ndata: {"type":"ping"}'
    assert frames[-1] == 'event: message_stop\ndata: {"type":"message_stop"}'
    assert all(f.startswith("event: ") for f in frames)


def test_tool_use_round_trip(env: Env) -> None:
    first = env.client.messages.create(
        model=MODEL,
        max_tokens=200,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    assert first.stop_reason == "tool_use"
    (call,) = first.content
    assert call.type == "tool_use"
    assert (call.name, call.input) == ("get_weather", {"city": "mock", "unit": "celsius"})
    body = sent(env)
    assert body["tool_choice"] == "required"
    assert body["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]

    history: Any = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [c.model_dump() for c in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}],
        },
    ]
    second = env.client.messages.create(
        model=MODEL, max_tokens=200, tools=[WEATHER], messages=history
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "Mock reply to tool result: 18C"  # type: ignore[union-attr]
    messages = sent(env)["messages"]
    assert messages[1]["tool_calls"][0]["id"] == call.id
    assert messages[2] == {"role": "tool", "tool_call_id": call.id, "content": "18C"}


def test_streamed_tool_input_reassembles(env: Env) -> None:
    with env.client.messages.stream(
        model=MODEL,
        max_tokens=200,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Weather?"}],
    ) as stream:
        partials = [e.partial_json for e in stream if e.type == "input_json"]
        final = stream.get_final_message()
    assert len(partials) > 1  # the mock splits the arguments over several chunks
    assert final.stop_reason == "tool_use"
    (block,) = final.content
    assert block.type == "tool_use"
    assert block.input == {"city": "mock", "unit": "celsius"}


def test_images_reach_the_upstream_as_image_url_parts(env: Env) -> None:
    message = env.client.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/a.png"},
                    },
                    {"type": "text", "text": "what is this"},
                ],
            }
        ],
    )
    assert message.usage.input_tokens == 3 + 2 * 85  # the mock's 85 tokens an image
    (user,) = sent(env)["messages"]
    assert user["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "text", "text": "what is this"},
    ]


def test_beta_query_string_is_ignored(env: Env) -> None:
    message = env.client.beta.messages.create(model=MODEL, max_tokens=50, messages=HELLO)
    assert message.content[0].text == "[bridge] Mock reply to: hello"  # type: ignore[union-attr]
    assert env.up.count("/chat/completions") == 1


def test_count_tokens(env: Env) -> None:
    counted = env.client.messages.count_tokens(
        model=MODEL, system="s" * 40, messages=[{"role": "user", "content": "x" * 400}]
    )
    assert counted.input_tokens == 10 + 100 + 3
    beta = env.client.beta.messages.count_tokens(model=MODEL, messages=HELLO, tools=[WEATHER])
    assert beta.input_tokens > 346
    assert env.up.count() == 0  # estimated locally: an OpenAI upstream cannot count
    response = env.post("/messages/count_tokens", {"model": MODEL, "messages": HELLO})
    assert response.status_code == 200 and response.json()["input_tokens"] > 0


def assert_anthropic_error(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == kind, body
    return str(body["error"]["message"])


def test_bad_key_is_an_anthropic_authentication_error(env: Env) -> None:
    bad = anthropic.Anthropic(base_url=env.gw.url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as error:
        bad.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert error.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    response = env.post("/v1/messages/count_tokens", {"model": MODEL, "messages": HELLO}, "sk-no")
    message = assert_anthropic_error(response, 401, "authentication_error")
    assert "sk-no" not in message


def test_unknown_model_is_not_found(env: Env) -> None:
    with pytest.raises(anthropic.NotFoundError) as error:
        env.client.messages.create(model="no-such-model", max_tokens=10, messages=HELLO)
    assert error.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    response = env.post("/v1/messages/count_tokens", {"model": "nope", "messages": HELLO})
    assert_anthropic_error(response, 404, "not_found_error")


def test_missing_max_tokens_and_bad_bodies_are_invalid_request_errors(env: Env) -> None:
    response = env.post("/v1/messages", {"model": MODEL, "messages": HELLO})
    assert "max_tokens" in assert_anthropic_error(response, 400, "invalid_request_error")
    response = env.post("/v1/messages/count_tokens", {"model": MODEL})
    assert "messages" in assert_anthropic_error(response, 400, "invalid_request_error")
    response = env.post(
        "/v1/messages",
        {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": 5}]},
    )
    assert_anthropic_error(response, 400, "invalid_request_error")
    assert env.up.count() == 0


def test_a_server_tool_is_a_400_naming_it_and_the_deployment(env: Env) -> None:
    tools = [{"type": "web_search_20250305", "name": "web_search"}]
    body = {"model": MODEL, "max_tokens": 5, "messages": HELLO, "tools": tools}
    message = assert_anthropic_error(env.post("/v1/messages", body), 400, "invalid_request_error")
    assert "web_search_20250305" in message and f"deployment '{MODEL}'" in message
    assert env.up.count() == 0
    ok = env.post("/v1/messages", {**body, "drop_params": True})
    assert ok.status_code == 200, ok.text
    assert "tools" not in sent(env)


def test_upstream_errors_come_back_in_anthropic_shape(env: Env) -> None:
    env.up.enqueue(status(429, retry_after=1))
    with pytest.raises(anthropic.RateLimitError) as error:
        env.client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert error.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert PROVIDER_KEY not in str(error.value.body)


def test_a_stream_cut_mid_way_ends_with_an_error_event(env: Env) -> None:
    env.up.enqueue(reset_mid_stream(after_chunks=3))
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as error:
        for event in env.client.messages.create(
            model=MODEL, max_tokens=100, messages=HELLO, stream=True
        ):
            received.append(event.type)
    assert received[0] == "message_start" and "content_block_delta" in received
    assert "message_stop" not in received
    assert error.value.body["error"]["type"] == "api_error"  # type: ignore[index]
