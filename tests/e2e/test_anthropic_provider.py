"""The native Anthropic provider end to end: SDK → ``bastion serve`` → the Anthropic mock.

- The ``openai`` SDK through ``/v1/chat/completions``: translated both ways (text, tools,
  images, streaming with usage, prompt caching numbers, errors and retries).
- The official ``anthropic`` SDK through ``/v1/messages``: passed through — the mock gets
  the client's bytes with only the model changed, the client gets the mock's bytes.
- Claude on Azure AI Foundry: an ``api_base`` on ``*.azure.com`` (reached here through
  the mock acting as an HTTP proxy) gets ``/anthropic/v1/messages`` and Foundry's auth.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.e2e.helpers import MASTER_KEY, USER_MSG, WEATHER_TOOL, auth, running, sync_client
from tests.mocks.anthropic_upstream import (
    MockAnthropicUpstream,
    error_mid_stream,
    reset_mid_stream,
    status,
)
from tests.mocks.anthropic_wire import prompt_usage, sample_input
from tests.support.gateway import GatewayProcess

KEY = "sk-ant-e2e-provider-key-93c1"
AZURE_KEY = "azure-foundry-key-5e2a"
AZURE_TOKEN = "eyJ-entra-token-for-tests"
AZURE_HOST = "http://res-e2e.services.ai.azure.com"
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E"
    "rkJggg=="
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockAnthropicUpstream]:
    with MockAnthropicUpstream(
        api_key=KEY, azure_api_key=AZURE_KEY, azure_ad_token=AZURE_TOKEN
    ) as up:
        yield up


@pytest.fixture(scope="module")
def flaky() -> Iterator[MockAnthropicUpstream]:
    """A second Anthropic upstream that is always overloaded (529)."""
    with MockAnthropicUpstream(api_key=KEY, name="flaky") as up:
        up.set_default(status(529))
        yield up


@pytest.fixture(autouse=True)
def _fresh(upstream: MockAnthropicUpstream) -> None:
    upstream.clear()
    upstream.clear_faults()


def claude(name: str, base: str, model: str = "claude-sonnet-4-5", **extra: Any) -> dict[str, Any]:
    params = {"model": f"anthropic/{model}", "api_base": base, "api_key": KEY, **extra}
    return {"model_name": name, "litellm_params": params}


@pytest.fixture(scope="module")
def gw(upstream: MockAnthropicUpstream, flaky: MockAnthropicUpstream) -> Iterator[GatewayProcess]:
    foundry = f"{AZURE_HOST}/anthropic"
    config = {
        "model_list": [
            claude("claude", upstream.base_url),
            {**claude("claude-big", upstream.base_url), "model_info": {"max_tokens": 64000}},
            claude("claude-flaky", flaky.base_url),
            claude("claude-azure", AZURE_HOST, "claude-haiku-4-5", api_key=AZURE_KEY),
            {
                "model_name": "claude-azure-entra",
                "litellm_params": {
                    "model": "anthropic/claude-opus-4-1",
                    "api_base": foundry,
                    "azure_ad_token": AZURE_TOKEN,
                },
            },
        ],
        "router_settings": {"fallbacks": [{"claude-flaky": ["claude"]}], "retry_after": 0},
        "general_settings": {"master_key": MASTER_KEY},
    }
    # Foundry hosts are reached through the mock, acting as a plain HTTP proxy.
    env = {"HTTP_PROXY": upstream.base_url, "NO_PROXY": "127.0.0.1,localhost"}
    with running(config, env=env) as gateway:
        yield gateway


def anthropic_client(gw: GatewayProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0, timeout=20)


# -- OpenAI SDK → Anthropic ------------------------------------------------------------------


def test_chat_completion_is_translated_both_ways(
    gw: GatewayProcess, upstream: MockAnthropicUpstream
) -> None:
    client = sync_client(gw)
    result = client.chat.completions.create(
        model="claude",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Ping"},
        ],
        temperature=0.5,
        stop=["NEVER"],
        user="team-7",
    )
    sent = upstream.last_request
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers and MASTER_KEY not in str(sent.headers)
    assert sent.json == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "Ping"}],
        "system": [{"type": "text", "text": "Be brief."}],
        "max_tokens": 4096,
        "stop_sequences": ["NEVER"],
        "temperature": 0.5,
        "metadata": {"user_id": "team-7"},
    }
    reply = upstream.replies[-1]
    assert result.choices[0].message.content == reply["content"][0]["text"]
    assert result.choices[0].finish_reason == "stop"
    assert result.model == "claude-sonnet-4-5"
    assert result.usage is not None
    assert result.usage.prompt_tokens == reply["usage"]["input_tokens"]
    assert result.usage.completion_tokens == reply["usage"]["output_tokens"]


def test_max_tokens_default_comes_from_model_info(
    gw: GatewayProcess, upstream: MockAnthropicUpstream
) -> None:
    sync_client(gw).chat.completions.create(
        model="claude-big", messages=[{"role": "user", "content": "hi"}]
    )
    assert upstream.last_request.json["max_tokens"] == 64000
    sync_client(gw).chat.completions.create(
        model="claude-big", messages=[{"role": "user", "content": "hi"}], max_completion_tokens=9
    )
    assert upstream.last_request.json["max_tokens"] == 9


def test_streaming_with_usage(gw: GatewayProcess, upstream: MockAnthropicUpstream) -> None:
    stream = sync_client(gw).chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert upstream.last_request.json["stream"] is True
    reply = upstream.replies[-1]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply["content"][0]["text"]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == reply["usage"]["input_tokens"]
    assert chunks[-1].usage.completion_tokens == reply["usage"]["output_tokens"]
    # Without include_usage there is no usage chunk.
    plain = list(
        sync_client(gw).chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert all(c.usage is None for c in plain) and plain[-1].choices[0].finish_reason == "stop"


def test_tool_call_round_trip(gw: GatewayProcess, upstream: MockAnthropicUpstream) -> None:
    client = sync_client(gw)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(
        model="claude", messages=messages, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    sent = upstream.last_request.json
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert sent["tool_choice"] == {"type": "auto"}
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    tool_use = upstream.replies[-1]["content"][1]
    assert call.id == tool_use["id"] and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == tool_use["input"]
    # The result goes back; the mock checks it answers that tool_use, then replies in text.
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    second = client.chat.completions.create(model="claude", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert upstream.last_request.json["messages"][-1] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C and sunny"}],
    }


def test_streamed_tool_arguments_reassemble(
    gw: GatewayProcess, upstream: MockAnthropicUpstream
) -> None:
    stream = sync_client(gw).chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    pieces: dict[int, list[str]] = {}
    ids, names, finish = {}, {}, None
    fragments = 0
    for chunk in stream:
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        for delta in chunk.choices[0].delta.tool_calls or []:
            if delta.id:
                ids[delta.index], names[delta.index] = delta.id, delta.function.name
            if delta.function and delta.function.arguments:
                fragments += 1
                pieces.setdefault(delta.index, []).append(delta.function.arguments)
    assert upstream.last_request.json["tool_choice"] == {"type": "tool", "name": "get_weather"}
    (tool_use,) = [b for b in upstream.replies[-1]["content"] if b["type"] == "tool_use"]
    assert finish == "tool_calls" and fragments > 3  # really split across chunks
    assert ids == {0: tool_use["id"]} and names == {0: "get_weather"}
    arguments = json.loads("".join(pieces[0]))
    assert arguments == tool_use["input"] == sample_input(WEATHER_TOOL["function"]["parameters"])


def test_images_are_sent_as_image_blocks(
    gw: GatewayProcess, upstream: MockAnthropicUpstream
) -> None:
    result = sync_client(gw).chat.completions.create(
        model="claude",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/b.webp"}},
                ],
            }
        ],
    )
    assert result.choices[0].message.content
    assert upstream.last_request.json["messages"][0]["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/b.webp"}},
    ]


def test_cached_token_usage_is_exact(gw: GatewayProcess, upstream: MockAnthropicUpstream) -> None:
    system = {
        "role": "system",
        "content": [
            {
                "type": "text",
                "text": "A long shared prefix worth caching. " * 20,
                "cache_control": {"type": "ephemeral"},
            }
        ],
    }
    client = sync_client(gw)
    usages = []
    for question in ("First question", "Second question"):
        result = client.chat.completions.create(
            model="claude", messages=[system, {"role": "user", "content": question}]
        )
        assert result.usage is not None
        usages.append((result.usage.model_dump(), upstream.replies[-1]["usage"]))
    assert upstream.requests[0].json["system"][0]["cache_control"] == {"type": "ephemeral"}
    (written, up_written), (read, up_read) = usages
    prefix = up_written["cache_creation_input_tokens"]
    assert prefix > 100 and up_read["cache_read_input_tokens"] == prefix
    assert written["prompt_tokens"] == up_written["input_tokens"] + prefix
    assert written["prompt_tokens_details"]["cached_tokens"] == 0
    assert written["cache_creation_input_tokens"] == prefix
    assert read["prompt_tokens"] == up_read["input_tokens"] + prefix
    assert read["prompt_tokens_details"]["cached_tokens"] == prefix
    assert read["cache_read_input_tokens"] == prefix and read["cache_creation_input_tokens"] == 0
    assert read["total_tokens"] == read["prompt_tokens"] + read["completion_tokens"]


def test_rate_limit_passes_through_with_retry_after(
    gw: GatewayProcess, upstream: MockAnthropicUpstream
) -> None:
    upstream.enqueue(status(429, retry_after=7))
    response = httpx.post(
        f"{gw.url}/v1/chat/completions",
        headers=auth(),
        json={"model": "claude", "messages": [{"role": "user", "content": "x"}], "num_retries": 0},
        timeout=20,
    )
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == "7"
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert "rate limit" in error["message"] and KEY not in response.text


def test_overloaded_is_retried(gw: GatewayProcess, upstream: MockAnthropicUpstream) -> None:
    upstream.enqueue(status(529))
    response = sync_client(gw).chat.completions.with_raw_response.create(
        model="claude", messages=[{"role": "user", "content": "x"}]
    )
    assert response.parse().choices[0].message.content
    assert response.headers["x-litellm-attempted-retries"] == "1"
    assert upstream.count() == 2


def test_overloaded_deployment_falls_back(
    gw: GatewayProcess, upstream: MockAnthropicUpstream, flaky: MockAnthropicUpstream
) -> None:
    response = sync_client(gw).chat.completions.with_raw_response.create(
        model="claude-flaky", messages=[{"role": "user", "content": "x"}]
    )
    assert response.parse().choices[0].message.content
    assert response.headers["x-litellm-attempted-fallbacks"] == "1"
    assert flaky.count() >= 1 and upstream.count() == 1
    # Without fallbacks the client sees the overload as a 503 in OpenAI's shape.
    with pytest.raises(openai.InternalServerError) as error:
        sync_client(gw).chat.completions.create(
            model="claude-flaky",
            messages=[{"role": "user", "content": "x"}],
            extra_body={"disable_fallbacks": True, "num_retries": 0},
        )
    assert error.value.status_code == 503
    assert "Overloaded" in str(error.value)


def test_error_mid_stream_reaches_the_openai_client(
    gw: GatewayProcess, upstream: MockAnthropicUpstream
) -> None:
    upstream.enqueue(error_mid_stream(after_events=4))
    stream = sync_client(gw).chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "x"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError, match="Overloaded"):
        for chunk in stream:
            received.append(chunk)
    assert received and received[0].choices[0].delta.role == "assistant"


def test_structured_output_through_the_json_tool(
    gw: GatewayProcess, upstream: MockAnthropicUpstream
) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    response_format: Any = {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": schema, "strict": True},
    }
    result = sync_client(gw).chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "A person, please"}],
        response_format=response_format,
    )
    sent = upstream.last_request.json
    assert sent["tool_choice"] == {"type": "tool", "name": "json_tool_call"}
    assert sent["tools"][0]["input_schema"] == schema
    choice = result.choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    assert json.loads(choice.message.content or "") == sample_input(schema)


def test_what_anthropic_cannot_express_is_a_400_naming_it(gw: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError) as error:
        sync_client(gw).chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "x"}], n=2
        )
    message = error.value.body["message"]  # type: ignore[index]
    assert "'n'" in message and "deployment 'claude' (anthropic)" in message
    result = sync_client(gw).chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "x"}],
        n=2,
        extra_body={"drop_params": True},
    )
    assert len(result.choices) == 1


# -- Anthropic SDK → Anthropic: pass-through ----------------------------------------------------


def post_messages(gw: GatewayProcess, raw: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gw.url}/v1/messages?beta=true",
        content=raw,
        headers={
            "x-api-key": MASTER_KEY,
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
            **headers,
        },
        timeout=20,
    )


def test_body_arrives_byte_identical_except_the_model(
    gw: GatewayProcess, upstream: MockAnthropicUpstream
) -> None:
    # Odd spacing, escapes, key order, thinking and cache_control: all kept.
    raw = (
        b'{ "max_tokens" : 3000,\n "thinking": {"type": "enabled", "budget_tokens": 1024},\n'
        b' "system": [{"type": "text", "text": "Cached \\u00e9 system", '
        b'"cache_control": {"type": "ephemeral", "ttl": "1h"}}],\n'
        b' "model":"claude",\n'
        b' "messages": [{"role": "user", "content": [{"type": "text", "text": "hi \\"there\\"",'
        b' "cache_control": {"type": "ephemeral"}}]}]}'
    )
    betas = "interleaved-thinking-2025-05-14,extended-cache-ttl-2025-04-11"
    response = post_messages(gw, raw, **{"anthropic-beta": betas})
    assert response.status_code == 200, response.text
    sent = upstream.last_request
    assert sent.body == raw.replace(b'"model":"claude"', b'"model":"claude-sonnet-4-5"')
    assert sent.headers["anthropic-beta"] == betas
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["x-api-key"] == KEY
    # The answer comes back as the upstream sent it: thinking block, signature, usage.
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == upstream.replies[-1]
    assert response.json()["content"][0]["type"] == "thinking"
    assert response.json()["usage"]["cache_creation_input_tokens"] > 0


def test_sdk_style_bodies_with_nested_model_keys_are_spliced_too(
    gw: GatewayProcess, upstream: MockAnthropicUpstream
) -> None:
    tools = [{"name": "pick", "input_schema": {"type": "object", "properties": {"model": {}}}}]
    compact = orjson.dumps(
        {"model": "claude", "max_tokens": 5, "tools": tools, "messages": USER_MSG}
    )
    assert post_messages(gw, compact).status_code == 200
    assert upstream.last_request.body == compact.replace(b'"claude"', b'"claude-sonnet-4-5"')
    # Pretty-printed with a nested "model": no proof of which is which, so re-encoded.
    pretty = orjson.dumps(orjson.loads(compact), option=orjson.OPT_INDENT_2)
    assert post_messages(gw, pretty).status_code == 200
    assert orjson.loads(upstream.last_request.body) == {
        **orjson.loads(compact),
        "model": "claude-sonnet-4-5",
    }


def test_anthropic_sdk_headers_and_answer(
    gw: GatewayProcess, upstream: MockAnthropicUpstream
) -> None:
    message = anthropic_client(gw).messages.create(
        model="claude",
        max_tokens=200,
        messages=[{"role": "user", "content": "Hello"}],
        tools=[{"name": "lookup", "input_schema": {"type": "object", "properties": {}}}],
        extra_headers={"anthropic-beta": "token-efficient-tools-2025-02-19"},
    )
    sent = upstream.last_request
    assert sent.headers["anthropic-beta"] == "token-efficient-tools-2025-02-19"
    assert sent.headers["anthropic-version"]  # the SDK's own version, forwarded
    assert sent.json["model"] == "claude-sonnet-4-5"
    reply = upstream.replies[-1]
    assert (message.id, message.stop_reason) == (reply["id"], "tool_use")
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[1].input == reply["content"][1]["input"]  # type: ignore[union-attr]
    assert message.usage.input_tokens == reply["usage"]["input_tokens"]


def test_stream_is_relayed_untouched(gw: GatewayProcess, upstream: MockAnthropicUpstream) -> None:
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/messages",
        headers={"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"},
        json={
            "model": "claude",
            "max_tokens": 2000,
            "stream": True,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "Stream to me"}],
        },
        timeout=20,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        received = b"".join(response.iter_bytes())
    # The mock records a stream after its last write, which may reach us first.
    assert upstream.wait_until(
        lambda: bool(upstream.stream_bytes) and upstream.stream_bytes[-1] == received
    )
    assert b"event: ping" in received and b"signature_delta" in received


def test_anthropic_sdk_streaming(gw: GatewayProcess, upstream: MockAnthropicUpstream) -> None:
    with anthropic_client(gw).messages.stream(
        model="claude",
        max_tokens=300,
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[
            {
                "name": "get_weather",
                "input_schema": WEATHER_TOOL["function"]["parameters"],
            }
        ],
    ) as stream:
        final = stream.get_final_message()
    tool_use = upstream.replies[-1]["content"][1]
    assert final.content[1].type == "tool_use"
    assert final.content[1].input == tool_use["input"]  # type: ignore[union-attr]
    assert final.usage.output_tokens == upstream.replies[-1]["usage"]["output_tokens"]


def test_anthropic_client_gets_anthropic_errors(
    gw: GatewayProcess, upstream: MockAnthropicUpstream
) -> None:
    upstream.enqueue(status(529))
    upstream.enqueue(status(429, retry_after=3))
    with pytest.raises(anthropic.RateLimitError) as error:
        anthropic_client(gw).messages.create(
            model="claude",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            extra_body={"num_retries": 1},
        )
    assert error.value.response.headers["retry-after"] == "3"
    assert error.value.body["type"] == "error"  # type: ignore[index]
    assert upstream.count() == 2
    # A bad body is Anthropic's 400, with its message, in Anthropic's shape.
    with pytest.raises(anthropic.BadRequestError) as bad:
        anthropic_client(gw).messages.create(
            model="claude",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            thinking={"type": "enabled", "budget_tokens": 2048},
        )
    assert "budget_tokens" in str(bad.value)


def test_count_tokens_asks_the_upstream(
    gw: GatewayProcess, upstream: MockAnthropicUpstream
) -> None:
    counted = anthropic_client(gw).messages.count_tokens(
        model="claude",
        system="You count.",
        messages=[{"role": "user", "content": "How many tokens is this?"}],
    )
    sent = upstream.last_request
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.json["model"] == "claude-sonnet-4-5"
    assert counted.input_tokens == prompt_usage(sent.json, None).total == 7


# -- Azure AI Foundry --------------------------------------------------------------------------


def test_azure_foundry_path_and_api_key(
    gw: GatewayProcess, upstream: MockAnthropicUpstream
) -> None:
    result = sync_client(gw).chat.completions.create(
        model="claude-azure", messages=[{"role": "user", "content": "hi"}]
    )
    assert result.choices[0].message.content
    sent = upstream.last_request
    assert sent.path == "/anthropic/v1/messages"
    assert sent.headers["host"] == "res-e2e.services.ai.azure.com"
    assert sent.headers["x-api-key"] == AZURE_KEY and sent.headers["api-key"] == AZURE_KEY
    assert sent.json["model"] == "claude-haiku-4-5"
    message = anthropic_client(gw).messages.create(
        model="claude-azure", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.model == "claude-haiku-4-5"
    assert upstream.last_request.path == "/anthropic/v1/messages"


def test_azure_foundry_entra_token(gw: GatewayProcess, upstream: MockAnthropicUpstream) -> None:
    stream = sync_client(gw).chat.completions.create(
        model="claude-azure-entra", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    sent = upstream.last_request
    assert sent.path == "/anthropic/v1/messages"
    assert sent.headers["authorization"] == f"Bearer {AZURE_TOKEN}"
    assert "x-api-key" not in sent.headers


def test_a_stream_cut_mid_way_is_an_error_not_a_silent_end(
    gw: GatewayProcess, upstream: MockAnthropicUpstream
) -> None:
    upstream.enqueue(reset_mid_stream(after_events=5))
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        headers=auth(),
        json={"model": "claude", "messages": [{"role": "user", "content": "x"}], "stream": True},
        timeout=20,
    ) as response:
        body = b"".join(response.iter_bytes())
    assert response.status_code == 200
    assert b'"role":"assistant"' in body
    assert b'"error"' in body and b"[DONE]" not in body
