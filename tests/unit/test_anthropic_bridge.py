"""Edge cases of the Anthropic ⇄ OpenAI bridge, and its wiring in the gateway service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from bastion.app import build_runtime
from bastion.config.loader import load_config_mapping
from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.core.errors import InvalidRequestError, UpstreamStatusError
from bastion.dialects.anthropic_to_openai import anthropic_to_openai_request
from bastion.dialects.openai_response_to_anthropic import openai_to_anthropic_response
from bastion.dialects.openai_stream_to_anthropic import AnthropicStreamTranslator
from bastion.providers.base import ProviderCall, ProviderResponse

USER = [{"role": "user", "content": "hi"}]
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 10, "messages": USER, **extra}


# -- request ----------------------------------------------------------------------------------


def test_system_messages_inside_messages_stay_in_order_as_system_messages() -> None:
    out = anthropic_to_openai_request(
        body(
            system="top",
            messages=[
                {"role": "user", "content": "a"},
                {"role": "system", "content": [{"type": "text", "text": "mid"}]},
                {"role": "assistant", "content": "b"},
                {"role": "system", "content": "late"},
            ],
        )
    )
    assert [(m["role"], m["content"]) for m in out["messages"]] == [
        ("system", "top"),
        ("user", "a"),
        ("system", "mid"),
        ("assistant", "b"),
        ("system", "late"),
    ]


def test_tool_result_blocks_become_tool_messages_before_the_rest_of_the_turn() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
    out = anthropic_to_openai_request(
        body(
            messages=[
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [{"type": "text", "text": "r1"}, image],
                            "is_error": True,
                        },
                        {"type": "text", "text": "go on"},
                    ],
                },
            ]
        )
    )
    assistant, tool, user = out["messages"]
    assert assistant["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a":1}'}
    assert tool == {"role": "tool", "tool_call_id": "t1", "content": "Error: r1"}
    assert user == {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            {"type": "text", "text": "go on"},
        ],
    }


def test_base64_image_becomes_a_data_url() -> None:
    source = {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}
    out = anthropic_to_openai_request(
        body(messages=[{"role": "user", "content": [{"type": "image", "source": source}]}])
    )
    (part,) = out["messages"][0]["content"]
    assert part == {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}}


def test_server_tool_is_a_400_naming_the_tool_type_and_the_deployment() -> None:
    with pytest.raises(InvalidRequestError) as error:
        anthropic_to_openai_request(
            body(tools=[{"name": "ok", "input_schema": {"type": "object"}}, WEB_SEARCH]),
            target="deployment 'gpt' (openai)",
        )
    assert error.value.param == "tools.1"
    assert "web_search_20250305" in error.value.message
    assert "deployment 'gpt' (openai)" in error.value.message
    assert "drop_params" in error.value.message


def test_drop_unsupported_drops_server_tools_and_keeps_the_rest() -> None:
    out = anthropic_to_openai_request(
        body(tools=[WEB_SEARCH, {"name": "ok", "input_schema": {"type": "object"}}]),
        drop_unsupported=True,
    )
    assert [t["function"]["name"] for t in out["tools"]] == ["ok"]


def test_only_server_tools_dropped_leaves_no_tools_and_no_tool_choice() -> None:
    out = anthropic_to_openai_request(
        body(tools=[WEB_SEARCH], tool_choice={"type": "any"}), drop_unsupported=True
    )
    assert "tools" not in out and "tool_choice" not in out


@pytest.mark.parametrize(
    "extra, param",
    [
        ({"mcp_servers": [{"type": "url", "url": "https://m", "name": "m"}]}, "mcp_servers"),
        ({"container": "container_1"}, "container"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ]
            },
            "messages.0.content.0.source",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "search_result", "x": 1}]}]},
            "messages.0.content.0",
        ),
    ],
)
def test_what_openai_cannot_express_is_a_400_unless_dropped(
    extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequestError) as error:
        anthropic_to_openai_request(body(**extra))
    assert error.value.param == param
    anthropic_to_openai_request(body(**extra), drop_unsupported=True)


@pytest.mark.parametrize(
    "messages, param",
    [
        ([{"role": "tool", "content": "x"}], "messages.0.role"),
        ([{"role": "user", "content": 3}], "messages.0.content"),
        ([{"role": "user", "content": [{"text": "no type"}]}], "messages.0.content.0"),
        ([{"role": "user", "content": [{"type": "text"}]}], "messages.0.content.0.text"),
        (
            [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b"}]}],
            "messages.0.content.0",
        ),
        (
            [{"role": "assistant", "content": [{"type": "tool_use", "name": "b", "input": {}}]}],
            "messages.0.content.0.id",
        ),
        ([{"role": "system", "content": [{"type": "image"}]}], "messages.0.content.0"),
    ],
)
def test_malformed_messages_are_400s_naming_the_field(messages: list[Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as error:
        anthropic_to_openai_request(body(messages=messages), drop_unsupported=True)
    assert error.value.param == param


def test_bad_tool_choice_and_stop_sequences_are_400s() -> None:
    tools = [{"name": "t", "input_schema": {"type": "object"}}]
    with pytest.raises(InvalidRequestError, match="tool_choice"):
        anthropic_to_openai_request(body(tools=tools, tool_choice={"type": "sometimes"}))
    with pytest.raises(InvalidRequestError, match="stop_sequences"):
        anthropic_to_openai_request(body(stop_sequences="END"))


def test_the_client_body_is_not_modified() -> None:
    original = body(system=[{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}])
    snapshot = orjson.dumps(original)
    anthropic_to_openai_request(original)
    assert orjson.dumps(original) == snapshot


# -- response and stream ----------------------------------------------------------------------


def test_a_completion_without_choices_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamStatusError) as error:
        openai_to_anthropic_response(b'{"object": "chat.completion"}', body())
    assert error.value.status == 502
    with pytest.raises(UpstreamStatusError):
        openai_to_anthropic_response(b"not json", body())


def test_tool_calls_without_ids_get_toolu_ids() -> None:
    completion = {
        "choices": [
            {
                "message": {"tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
                "finish_reason": "tool_calls",
            }
        ]
    }
    message = orjson.loads(openai_to_anthropic_response(orjson.dumps(completion), body()))
    (block,) = message["content"]
    assert block["id"].startswith("toolu_") and block["input"] == {}
    assert message["id"].startswith("msg_")


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-x",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def test_text_delta_bytes_are_exactly_anthropics_framing() -> None:
    translator = AnthropicStreamTranslator(body())
    translator.feed(chunk({"role": "assistant", "content": ""}))
    assert translator.feed(chunk({"content": 'He said "hi"\n'})) == (
        b"event: content_block_start\n"
        b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'
        b"\n\n"
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
        b'"text":"He said \\"hi\\"\\n"}}\n\n'
    )


def test_a_late_fragment_for_a_closed_tool_block_goes_to_that_blocks_index() -> None:
    translator = AnthropicStreamTranslator(body())
    first = {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}
    second = {"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}
    late = {"index": 0, "function": {"arguments": "}"}}
    translator.feed(chunk({"tool_calls": [first]}) + chunk({"tool_calls": [second]}))
    out = translator.feed(chunk({"tool_calls": [late]}))
    assert b'"index":0,"delta":{"type":"input_json_delta","partial_json":"}"}' in out


def test_output_after_message_stop_is_ignored() -> None:
    translator = AnthropicStreamTranslator(body())
    out = translator.feed(chunk({"content": "x"}, "stop") + b"data: [DONE]\n\n")
    assert out.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert translator.done
    assert translator.feed(chunk({"content": "more"})) == b""
    assert translator.close() == b""


async def test_an_upstream_error_event_is_raised_after_what_came_before_it() -> None:
    from bastion.dialects.openai_stream_to_anthropic import anthropic_stream_from_openai

    async def upstream() -> AsyncIterator[bytes]:
        yield chunk({"content": "partial"}) + b'data: {"error": {"message": "boom"}}\n\n'

    seen = b""
    with pytest.raises(UpstreamStatusError, match="boom"):
        async for out in anthropic_stream_from_openai(upstream(), body()):
            seen += out
    assert b'"text":"partial"' in seen


# -- gateway wiring ---------------------------------------------------------------------------

COMPLETION = {
    "id": "chatcmpl-1",
    "choices": [{"index": 0, "message": {"content": "pong"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
}


class OpenAIRecorder:
    name = "openai"
    dialects = frozenset({Dialect.OPENAI})

    def __init__(self) -> None:
        self.calls: list[ProviderCall] = []

    def supports(self, operation: Operation) -> bool:
        return True

    async def send(self, deployment: Deployment, call: ProviderCall) -> ProviderResponse:
        self.calls.append(call)
        return ProviderResponse(200, orjson.dumps(COMPLETION))


def runtime_for(litellm_params: dict[str, Any]) -> tuple[Any, OpenAIRecorder]:
    config = {
        "model_list": [
            {
                "model_name": "gpt",
                "litellm_params": {"model": "openai/gpt-4o", "api_key": "k", **litellm_params},
            }
        ]
    }
    runtime = build_runtime(load_config_mapping(config))
    recorder = OpenAIRecorder()
    for deployment in runtime.deployments:
        deployment.provider = recorder  # type: ignore[assignment]
    return runtime, recorder


async def test_gateway_translates_both_ways_for_an_openai_deployment() -> None:
    runtime, recorder = runtime_for({})
    request = {"model": "gpt", "max_tokens": 5, "messages": USER, "system": "s"}
    outcome = await runtime.gateway.call(Operation.CHAT, request, False, Dialect.ANTHROPIC)
    (call,) = recorder.calls
    assert call.dialect is Dialect.OPENAI and call.raw is None
    assert call.body["messages"] == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "hi"},
    ]
    assert outcome.response is not None
    message = orjson.loads(outcome.response.body)
    assert message["model"] == "gpt" and message["content"] == [{"type": "text", "text": "pong"}]


async def test_gateway_names_the_deployment_for_an_unsupported_tool() -> None:
    runtime, recorder = runtime_for({})
    request = {"model": "gpt", "max_tokens": 5, "messages": USER, "tools": [WEB_SEARCH]}
    with pytest.raises(InvalidRequestError) as error:
        await runtime.gateway.call(Operation.CHAT, request, False, Dialect.ANTHROPIC)
    assert "deployment 'gpt' (openai)" in error.value.message
    assert not recorder.calls


@pytest.mark.parametrize(
    "deployment_params, request_extra",
    [({"drop_params": True}, {}), ({}, {"drop_params": True})],
)
async def test_drop_params_from_the_deployment_or_the_request_drops_server_tools(
    deployment_params: dict[str, Any], request_extra: dict[str, Any]
) -> None:
    runtime, recorder = runtime_for(deployment_params)
    tools = [WEB_SEARCH, {"name": "f", "input_schema": {"type": "object"}}]
    request = {"model": "gpt", "max_tokens": 5, "messages": USER, "tools": tools, **request_extra}
    await runtime.gateway.call(Operation.CHAT, request, False, Dialect.ANTHROPIC)
    (call,) = recorder.calls
    assert [t["function"]["name"] for t in call.body["tools"]] == ["f"]


# -- SSE reader -------------------------------------------------------------------------------


def read_all(pieces: list[bytes]) -> list[tuple[str | None, bytes]]:
    from bastion.dialects.sse_reader import SSEReader

    reader = SSEReader()
    items = [item for piece in pieces for item in reader.feed(piece)]
    return items + list(reader.close())


RAW_SSE = (
    b': comment\n\ndata: one\n\nevent: error\ndata: {"x":\ndata: 1}\n\n\ndata:two\n\ndata: tail'
)
EXPECTED_SSE = [(None, b"one"), ("error", b'{"x":\n1}'), (None, b"two"), (None, b"tail")]


@pytest.mark.parametrize("size", [1, 2, 5, len(RAW_SSE)])
def test_sse_reader_matches_the_sse_rules_however_split(size: int) -> None:
    pieces = [RAW_SSE[i : i + size] for i in range(0, len(RAW_SSE), size)]
    assert read_all(pieces) == EXPECTED_SSE


def test_sse_reader_hands_a_stream_with_cr_to_the_full_parser_midway() -> None:
    crlf = RAW_SSE.replace(b"\n", b"\r\n")
    half = len(RAW_SSE) // 2
    assert read_all([RAW_SSE[:half], crlf[half + RAW_SSE[:half].count(b"\n") :]]) == EXPECTED_SSE
