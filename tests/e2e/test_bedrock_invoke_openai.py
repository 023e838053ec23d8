"""OpenAI SDK → the real gateway → Bedrock InvokeModel, for ``bedrock/invoke/<claude>`` models.

LiteLLM's ``invoke/`` route asks for InvokeModel with the Anthropic Messages body, so the
mock (which checks SigV4 and refuses ``model``/``stream`` in an InvokeModel body) must
see an Anthropic body, and the client must get OpenAI's answer and chunks back.
Models without ``invoke/`` (and non-Claude models) keep using Converse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.bedrock_support import (
    NOVA,
    REGION,
    SONNET,
    SONNET_45,
    BedrockEnv,
    assert_streamed_weather_call,
    reset_mock,
    weather_tool_turn,
)
from tests.e2e.bedrock_support import deployment as bedrock_deployment
from tests.e2e.helpers import MASTER_KEY, USER_MSG, WEATHER_TOOL, running, sync_client
from tests.mocks.bedrock_upstream import MockBedrockUpstream

KEY, SECRET = "AKIDE2EINVOKE0000001", "e2e-invoke-secret/abcdefghijklmnop"


Env = BedrockEnv


def deployment(name: str, model: str, base: str, **params: Any) -> dict[str, Any]:
    return bedrock_deployment(
        name, model, base, aws_access_key_id=KEY, aws_secret_access_key=SECRET, **params
    )


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    mock = MockBedrockUpstream(credentials={KEY: SECRET}, region=REGION).start()
    base = mock.base_url
    config = {
        "model_list": [
            deployment("sonnet-invoke", f"invoke/{SONNET}", base),
            deployment("sonnet45-invoke", f"invoke/{SONNET_45}", base),
            deployment("sonnet-converse", SONNET, base),
            deployment("nova-invoke", f"invoke/{NOVA}", base),
            deployment("sonnet-invoke-drop", f"invoke/{SONNET}", base, drop_params=True),
        ],
        "router_settings": {"disable_cooldowns": True},
        "general_settings": {"master_key": MASTER_KEY},
    }
    try:
        with running(config, env={"AWS_EC2_METADATA_DISABLED": "true"}) as gw:
            yield Env(gw, mock, sync_client(gw))
    finally:
        mock.stop()


@pytest.fixture(autouse=True)
def _fresh(env: Env) -> None:
    reset_mock(env.mock)


def test_chat_goes_to_invoke_model_with_the_anthropic_body(env: Env) -> None:
    env.mock.cache_read_tokens, env.mock.cache_write_tokens = 7, 3
    resp = env.client.chat.completions.create(
        model="sonnet-invoke",
        messages=[{"role": "system", "content": "Be brief."}, *USER_MSG],
        max_tokens=50,
        temperature=0.3,
        stop=["END"],
        user="team-a",
    )
    choice = resp.choices[0]
    assert choice.message.content == "[bedrock] Mock reply to: hello there"
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert resp.object == "chat.completion"
    usage = resp.usage
    assert usage is not None
    assert usage.prompt_tokens == 2 + 7 + 3  # input words, cache reads and writes
    assert usage.completion_tokens == 6 and usage.total_tokens == 18
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens == 7
    seen = env.mock.last_request
    assert seen.authenticated and seen.access_key == KEY and seen.region == REGION
    assert seen.raw_path == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke"
    assert seen.json == {
        "messages": [{"role": "user", "content": "hello there"}],
        "system": [{"type": "text", "text": "Be brief."}],
        "max_tokens": 50,
        "temperature": 0.3,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "team-a"},
        "anthropic_version": "bedrock-2023-05-31",
    }
    assert MASTER_KEY.encode() not in seen.body and SECRET.encode() not in seen.body


def test_streaming_with_usage_through_invoke_with_response_stream(env: Env) -> None:
    stream = env.client.chat.completions.create(
        model="sonnet45-invoke",
        messages=USER_MSG,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[bedrock] Mock reply to: hello there"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 4
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 6
    assert chunks[-1].usage.prompt_tokens == 2 and chunks[-1].usage.total_tokens == 8
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    seen = env.mock.last_request
    assert seen.operation == "invoke-with-response-stream" and seen.authenticated
    assert seen.model_id == SONNET_45
    assert seen.headers["accept"] == "application/vnd.amazon.eventstream"
    assert seen.json["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in seen.json and "stream" not in seen.json
    assert "stream_options" not in seen.json
    assert [s.outcome for s in env.mock.streams] == ["completed"]


def test_streaming_without_include_usage_sends_no_usage_chunk(env: Env) -> None:
    chunks = list(
        env.client.chat.completions.create(model="sonnet-invoke", messages=USER_MSG, stream=True)
    )
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_streamed_tool_call_fragments_reassemble_then_tool_result(env: Env) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    stream = env.client.chat.completions.create(
        model="sonnet-invoke", messages=messages, tools=[WEATHER_TOOL], stream=True
    )
    chunks = list(stream)
    call_id = assert_streamed_weather_call(chunks)
    sent = env.mock.last_request.json
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": WEATHER_TOOL["function"]["description"],
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert env.mock.last_request.operation == "invoke-with-response-stream"

    messages += weather_tool_turn(call_id)
    resp = env.client.chat.completions.create(
        model="sonnet-invoke", messages=messages, tools=[WEATHER_TOOL]
    )
    assert resp.choices[0].message.content == "[bedrock] Tool said: 18C and sunny"
    sent = env.mock.last_request.json
    assert env.mock.last_request.operation == "invoke"
    use = sent["messages"][1]["content"][-1]
    assert use == {
        "type": "tool_use",
        "id": call_id,
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    result = sent["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == call_id


def test_non_streaming_tool_call(env: Env) -> None:
    resp = env.client.chat.completions.create(
        model="sonnet-invoke", messages=USER_MSG, tools=[WEATHER_TOOL], tool_choice="required"
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert env.mock.last_request.json["tool_choice"] == {"type": "any"}


def test_unsupported_field_is_a_400_in_openai_shape_or_dropped(env: Env) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        env.client.chat.completions.create(model="sonnet-invoke", messages=USER_MSG, n=2)
    assert "n" in str(info.value.message)
    assert env.mock.requests == []
    resp = env.client.chat.completions.create(
        model="sonnet-invoke-drop", messages=USER_MSG, n=2, frequency_penalty=0.5
    )
    assert resp.choices[0].message.content == "[bedrock] Mock reply to: hello there"
    assert "frequency_penalty" not in env.mock.last_request.json


def test_models_without_invoke_route_keep_using_converse(env: Env) -> None:
    env.client.chat.completions.create(model="sonnet-converse", messages=USER_MSG)
    assert env.mock.last_request.operation == "converse"
    env.client.chat.completions.create(model="nova-invoke", messages=USER_MSG)
    seen = env.mock.last_request
    assert seen.operation == "converse" and seen.model_id == NOVA


def test_anthropic_client_of_an_invoke_deployment_still_passes_through(env: Env) -> None:
    claude = anthropic.Anthropic(base_url=env.gw.url, api_key=MASTER_KEY, max_retries=0, timeout=20)
    message = claude.messages.create(
        model="sonnet-invoke", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.id.startswith("msg_bdrk_")
    assert env.mock.last_request.json == {
        "max_tokens": 20,
        "messages": [{"role": "user", "content": "hi"}],
        "anthropic_version": "bedrock-2023-05-31",
    }
