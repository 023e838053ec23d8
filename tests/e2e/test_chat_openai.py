"""The OpenAI data plane end to end: the official SDK -> bastion serve -> a mock OpenAI upstream."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.helpers import (
    MASTER_KEY,
    USER_MSG,
    WEATHER_TOOL,
    MockPool,
    async_client,
    auth,
    running,
    sync_client,
)
from tests.mocks.openai_upstream import MockOpenAIUpstream
from tests.support.gateway import GatewayProcess

PROVIDER_KEY = "sk-e2e-provider-openai-93b1e0"
FORCED_TOOL: Any = {"type": "function", "function": {"name": "get_weather"}}


def _model_list(up: MockOpenAIUpstream) -> list[dict[str, Any]]:
    params = {"api_base": up.openai_base, "api_key": PROVIDER_KEY}
    return [
        {"model_name": "gpt-main", "litellm_params": {"model": "openai/gpt-4o", **params}},
        {
            "model_name": "instruct",
            "litellm_params": {"model": "openai/gpt-3.5-turbo-instruct", **params},
            "model_info": {"mode": "completion"},
        },
        {
            "model_name": "embed",
            "litellm_params": {"model": "openai/text-embedding-3-small", **params},
            "model_info": {"mode": "embedding"},
        },
    ]


@dataclass
class Env:
    gw: GatewayProcess
    up: MockOpenAIUpstream
    client: openai.OpenAI


@pytest.fixture(scope="module")
def env(mocks: MockPool) -> Iterator[Env]:
    up = mocks.new(api_key=PROVIDER_KEY, name="oa")
    config = {"model_list": _model_list(up), "general_settings": {"master_key": MASTER_KEY}}
    with running(config) as gw:
        yield Env(gw, up, sync_client(gw))


@pytest.fixture(scope="module")
def dropping(mocks: MockPool) -> Iterator[Env]:
    up = mocks.new(api_key=PROVIDER_KEY, name="drop")
    config = {
        "model_list": _model_list(up),
        "litellm_settings": {"drop_params": True},
        "general_settings": {"master_key": MASTER_KEY},
    }
    with running(config) as gw:
        yield Env(gw, up, sync_client(gw))


# -- chat completions ----------------------------------------------------------------------------


def test_non_streaming_chat(env: Env) -> None:
    resp = env.client.chat.completions.create(model="gpt-main", messages=USER_MSG)
    assert resp.object == "chat.completion"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == "[oa] Mock reply to: hello there"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.total_tokens > 0
    assert env.up.count("/v1/chat/completions") == 1


def test_upstream_gets_deployment_key_and_upstream_model_name(env: Env) -> None:
    env.client.chat.completions.create(model="gpt-main", messages=USER_MSG)
    seen = env.up.last_request
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert seen.json["model"] == "gpt-4o"  # the "openai/" prefix is removed
    assert seen.json["messages"] == USER_MSG
    assert all(MASTER_KEY not in value for value in seen.headers.values())
    assert MASTER_KEY.encode() not in seen.body


def test_streaming_reassembles_and_include_usage_adds_final_usage_chunk(env: Env) -> None:
    stream = env.client.chat.completions.create(
        model="gpt-main",
        messages=USER_MSG,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[oa] Mock reply to: hello there"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert env.up.last_request.json["stream_options"] == {"include_usage": True}
    assert len(env.up.streams) == 1


def test_streaming_without_include_usage_has_no_usage(env: Env) -> None:
    chunks = list(
        env.client.chat.completions.create(model="gpt-main", messages=USER_MSG, stream=True)
    )
    assert chunks and all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_tool_call_comes_back(env: Env) -> None:
    resp = env.client.chat.completions.create(
        model="gpt-main", messages=USER_MSG, tools=[WEATHER_TOOL], tool_choice=FORCED_TOOL
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "mock", "unit": "celsius"}
    sent = env.up.last_request.json
    assert sent["tools"] == [WEATHER_TOOL]
    assert sent["tool_choice"] == FORCED_TOOL


def test_streamed_tool_call_fragments_reassemble_to_json(env: Env) -> None:
    stream = env.client.chat.completions.create(
        model="gpt-main",
        messages=USER_MSG,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        stream=True,
    )
    name, fragments, finish = "", [], None
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            if delta.function and delta.function.name:
                name += delta.function.name
            if delta.function and delta.function.arguments:
                fragments.append(delta.function.arguments)
    assert name == "get_weather"
    assert len(fragments) > 1  # really streamed in pieces
    assert json.loads("".join(fragments)) == {"city": "mock", "unit": "celsius"}
    assert finish == "tool_calls"


def test_image_content_parts_reach_upstream(env: Env) -> None:
    messages: Any = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is in this picture?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                },
            ],
        }
    ]
    resp = env.client.chat.completions.create(model="gpt-main", messages=messages)
    assert resp.choices[0].message.content == "[oa] Mock reply to: what is in this picture?"
    assert resp.usage is not None and resp.usage.prompt_tokens >= 85  # the image was counted
    assert env.up.last_request.json["messages"] == messages


def test_response_format_json_object(env: Env) -> None:
    resp = env.client.chat.completions.create(
        model="gpt-main", messages=USER_MSG, response_format={"type": "json_object"}
    )
    content = resp.choices[0].message.content
    assert content is not None
    assert json.loads(content) == {"reply": "[oa] Mock reply to: hello there"}
    assert env.up.last_request.json["response_format"] == {"type": "json_object"}


def test_n_2_returns_two_choices(env: Env) -> None:
    resp = env.client.chat.completions.create(model="gpt-main", messages=USER_MSG, n=2)
    assert sorted(c.index for c in resp.choices) == [0, 1]
    assert all(c.message.content for c in resp.choices)
    assert env.up.last_request.json["n"] == 2


def test_user_and_unknown_fields_pass_through_unchanged(env: Env) -> None:
    extra = {"my_vendor_knob": {"nested": [1, "two", None]}, "temperature": 0.25}
    env.client.chat.completions.create(
        model="gpt-main", messages=USER_MSG, user="end-user-42", extra_body=extra
    )
    sent = env.up.last_request.json
    assert sent["user"] == "end-user-42"
    assert sent["my_vendor_knob"] == {"nested": [1, "two", None]}
    assert sent["temperature"] == 0.25


def test_drop_params_drops_unknown_fields(dropping: Env) -> None:
    dropping.client.chat.completions.create(
        model="gpt-main",
        messages=USER_MSG,
        user="end-user-42",
        temperature=0.5,
        extra_body={"my_vendor_knob": 1},
    )
    sent = dropping.up.last_request.json
    assert "my_vendor_knob" not in sent
    assert sent["user"] == "end-user-42"
    assert sent["temperature"] == 0.5
    assert sent["model"] == "gpt-4o"


def test_mock_response_answers_without_calling_upstream(env: Env) -> None:
    resp = env.client.chat.completions.create(
        model="gpt-main", messages=USER_MSG, extra_body={"mock_response": "canned answer"}
    )
    assert resp.choices[0].message.content == "canned answer"
    stream = env.client.chat.completions.create(
        model="gpt-main",
        messages=USER_MSG,
        stream=True,
        extra_body={"mock_response": "canned stream answer"},
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "canned stream answer"
    assert env.up.count() == 0


async def test_async_client_streaming_and_concurrency(env: Env) -> None:
    client = async_client(env.gw)

    async def one(i: int) -> str:
        stream = await client.chat.completions.create(
            model="gpt-main",
            messages=[{"role": "user", "content": f"question {i}"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        parts, usage = [], None
        async for chunk in stream:
            if chunk.choices:
                parts.append(chunk.choices[0].delta.content or "")
            usage = chunk.usage or usage
        assert usage is not None and usage.total_tokens > 0
        return "".join(parts)

    try:
        texts = await asyncio.gather(*(one(i) for i in range(5)))
        assert texts == [f"[oa] Mock reply to: question {i}" for i in range(5)]
        resp = await client.chat.completions.create(model="gpt-main", messages=USER_MSG)
        assert resp.choices[0].message.content == "[oa] Mock reply to: hello there"
    finally:
        await client.close()
    assert len(env.up.streams) == 5


# -- other paths ---------------------------------------------------------------------------------


def test_chat_completions_without_v1_prefix(env: Env) -> None:
    client = sync_client(env.gw, v1=False)
    resp = client.chat.completions.create(model="gpt-main", messages=USER_MSG)
    assert resp.choices[0].message.content == "[oa] Mock reply to: hello there"
    assert env.up.last_request.json["model"] == "gpt-4o"


def test_azure_style_deployment_path_on_the_gateway(env: Env) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=env.gw.url, api_version="2024-10-21", api_key=MASTER_KEY, max_retries=0
    )
    resp = client.chat.completions.create(model="gpt-main", messages=USER_MSG)
    assert resp.choices[0].message.content == "[oa] Mock reply to: hello there"
    # The deployment name comes from the path; the upstream still gets the OpenAI request.
    assert env.up.last_request.path == "/v1/chat/completions"
    assert env.up.last_request.json["model"] == "gpt-4o"
    raw = httpx.post(
        f"{env.gw.url}/openai/deployments/gpt-main/chat/completions?api-version=2024-10-21",
        headers={"api-key": MASTER_KEY},
        json={"messages": USER_MSG, "stream": True},
    )
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.rstrip().endswith("data: [DONE]")


def test_legacy_completions(env: Env) -> None:
    resp = env.client.completions.create(model="instruct", prompt="Say hi", max_tokens=20)
    assert resp.object == "text_completion"
    assert resp.choices[0].text
    assert env.up.last_request.path == "/v1/completions"
    assert env.up.last_request.json["model"] == "gpt-3.5-turbo-instruct"
    assert env.up.last_request.json["prompt"] == "Say hi"

    stream = env.client.completions.create(
        model="instruct", prompt="Say hi", max_tokens=20, stream=True
    )
    streamed = "".join(c.choices[0].text for c in stream if c.choices)
    assert streamed == resp.choices[0].text
    assert len(env.up.streams) == 1


def test_embeddings_float_and_base64(env: Env) -> None:
    floats = env.client.embeddings.create(
        model="embed", input=["alpha", "beta"], encoding_format="float", dimensions=8
    )
    assert [d.index for d in floats.data] == [0, 1]
    assert all(len(d.embedding) == 8 for d in floats.data)
    assert all(isinstance(x, float) for x in floats.data[0].embedding)
    assert env.up.last_request.path == "/v1/embeddings"
    assert env.up.last_request.json["model"] == "text-embedding-3-small"
    assert env.up.last_request.json["encoding_format"] == "float"

    raw = httpx.post(
        f"{env.gw.url}/v1/embeddings",
        headers=auth(),
        json={
            "model": "embed",
            "input": ["alpha", "beta"],
            "encoding_format": "base64",
            "dimensions": 8,
        },
    )
    assert raw.status_code == 200, raw.text
    assert env.up.last_request.json["encoding_format"] == "base64"
    encoded = raw.json()["data"][0]["embedding"]
    assert isinstance(encoded, str)
    decoded = struct.unpack("<8f", base64.b64decode(encoded))
    assert decoded == pytest.approx(floats.data[0].embedding, abs=1e-6)


def test_models_lists_groups(env: Env) -> None:
    ids = {m.id for m in env.client.models.list()}
    assert ids == {"gpt-main", "instruct", "embed"}


def test_model_info_never_contains_api_keys(env: Env) -> None:
    resp = httpx.get(f"{env.gw.url}/v1/model/info", headers=auth())
    assert resp.status_code == 200
    assert PROVIDER_KEY not in resp.text
    assert MASTER_KEY not in resp.text
    data = resp.json()["data"]
    assert {d["model_name"] for d in data} == {"gpt-main", "instruct", "embed"}
    for entry in data:
        assert "api_key" not in entry["litellm_params"]
        assert entry["litellm_params"]["api_base"] == env.up.openai_base
    modes = {d["model_name"]: d["model_info"]["mode"] for d in data}
    assert modes == {"gpt-main": "chat", "instruct": "completion", "embed": "embedding"}


def test_litellm_response_headers(env: Env) -> None:
    info = httpx.get(f"{env.gw.url}/v1/model/info", headers=auth()).json()["data"]
    model_id = next(d["model_info"]["id"] for d in info if d["model_name"] == "gpt-main")

    raw = env.client.chat.completions.with_raw_response.create(model="gpt-main", messages=USER_MSG)
    assert raw.parse().choices[0].message.content
    _check_headers(raw.headers, model_id, env.up.openai_base)

    with env.client.chat.completions.with_streaming_response.create(
        model="gpt-main", messages=USER_MSG, stream=True
    ) as streamed:
        _check_headers(streamed.headers, model_id, env.up.openai_base)
        assert "".join(streamed.iter_lines()).endswith("data: [DONE]")


def _check_headers(headers: httpx.Headers, model_id: str, api_base: str) -> None:
    uuid.UUID(headers["x-litellm-call-id"])
    assert headers["x-litellm-model-id"] == model_id
    assert headers["x-litellm-model-api-base"] == api_base
    assert headers["x-litellm-attempted-retries"] == "0"
    assert headers["x-litellm-attempted-fallbacks"] == "0"
    assert float(headers["x-litellm-overhead-duration-ms"]) >= 0.0
    assert PROVIDER_KEY not in str(headers) and MASTER_KEY not in str(headers)
