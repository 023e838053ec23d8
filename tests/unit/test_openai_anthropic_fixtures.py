"""Every JSON fixture pair under tests/fixtures/openai_anthropic/, run through the translation
an OpenAI-dialect client gets from an Anthropic deployment.

- ``requests/*.json``: an OpenAI chat body, the options it is translated with, and the
  Anthropic Messages body it becomes (``json_mode``: response_format became the JSON
  tool) — or the 400 it must be (``error``: the param it names and the message).
- ``responses/*.json``: an Anthropic message and the OpenAI chat completion it becomes.
- ``streams/*.json``: an Anthropic SSE transcript (events, or raw text) and the OpenAI
  chunks that come out, then the error an ``event: error`` or a cut stream raises. Each
  transcript is fed whole, byte by byte and in odd-sized pieces: the output bytes must
  not depend on how the upstream split them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bastion.core.errors import InvalidRequestError, UpstreamError
from bastion.dialects.anthropic_response_to_openai import anthropic_to_openai_response
from bastion.dialects.anthropic_stream_to_openai import (
    AnthropicStreamTranslator,
    openai_stream_from_anthropic,
)
from bastion.dialects.openai_to_anthropic import openai_to_anthropic
from bastion.dialects.sse import SSEParser

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openai_anthropic"
LABEL = "deployment 'claude' (anthropic)"
CREATED = 1700000000


def load(kind: str) -> list[Any]:
    files = sorted((FIXTURES / kind).glob("*.json"))
    assert files, f"no fixtures in {kind}/"
    return [pytest.param(json.loads(f.read_text()), id=f.stem) for f in files]


@pytest.mark.parametrize("fixture", load("requests"))
def test_request_translation(fixture: dict[str, Any]) -> None:
    options = {**fixture["options"]}
    if "also_drop" in options:
        options["also_drop"] = frozenset(options["also_drop"])
    translate = lambda: openai_to_anthropic(  # noqa: E731
        fixture["openai"], model="claude-sonnet-4-5", label=LABEL, **options
    )
    if "error" in fixture:
        with pytest.raises(InvalidRequestError) as error:
            translate()
        assert error.value.status == fixture["error"]["status"]
        assert error.value.param == fixture["error"]["param"]
        assert error.value.message == fixture["error"]["message"]
        return
    request = translate()
    assert request.body == fixture["anthropic"]
    assert request.json_mode is fixture["json_mode"]
    if options["drop_params"]:
        with pytest.raises(InvalidRequestError):  # without drop_params the same body is a 400
            openai_to_anthropic(
                fixture["openai"],
                model="claude-sonnet-4-5",
                label=LABEL,
                **{**options, "drop_params": False},
            )


def test_request_translation_does_not_modify_the_client_body() -> None:
    fixture = json.loads((FIXTURES / "requests" / "tool_loop_merged_results.json").read_text())
    body = fixture["openai"]
    before = orjson.dumps(body)
    openai_to_anthropic(body, model="m", label=LABEL, stream=False)
    assert orjson.dumps(body) == before


@pytest.mark.parametrize("fixture", load("responses"))
def test_response_translation(fixture: dict[str, Any]) -> None:
    out = anthropic_to_openai_response(
        orjson.dumps(fixture["anthropic"]), json_mode=fixture["json_mode"], created=CREATED
    )
    assert orjson.loads(out) == fixture["openai"]


def sse_bytes(items: list[Any]) -> bytes:
    out = b""
    for item in items:
        if isinstance(item, str):
            out += item.encode()
        else:
            data = json.dumps(item["data"], ensure_ascii=False)
            out += f"event: {item['event']}\ndata: {data}\n\n".encode()
    return out


def splits(data: bytes) -> list[list[bytes]]:
    odd = [data[i : i + 7] for i in range(0, len(data), 7)]
    bytewise = [data[i : i + 1] for i in range(len(data))]
    crlf = [data.replace(b"\n", b"\r\n")]  # servers may end lines with CRLF
    return [[data], odd, bytewise, crlf]


async def translate_stream(
    fixture: dict[str, Any], pieces: list[bytes]
) -> tuple[bytes, UpstreamError | None]:
    translator = AnthropicStreamTranslator(
        include_usage=fixture["include_usage"], json_mode=fixture["json_mode"], created=CREATED
    )

    async def upstream() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    out = b""
    try:
        async for chunk in openai_stream_from_anthropic(upstream(), translator):
            assert chunk, "no empty writes"
            out += chunk
    except UpstreamError as error:
        return out, error
    return out, None


@pytest.mark.parametrize("fixture", load("streams"))
async def test_stream_translation(fixture: dict[str, Any]) -> None:
    outputs = set()
    for pieces in splits(sse_bytes(fixture["anthropic"])):
        out, error = await translate_stream(fixture, pieces)
        outputs.add(out)
        items = [
            event.data if event.data == "[DONE]" else json.loads(event.data)
            for event in SSEParser().feed(out)
        ]
        assert items == fixture["openai"]
        expected = fixture.get("error")
        if expected is None:
            assert error is None
        else:
            assert error is not None
            assert type(error).__name__ == expected["class"]
            assert (error.status, error.type, error.message) == (
                expected["status"],
                expected["type"],
                expected["message"],
            )
    assert len(outputs) == 1, "the output depends on how the upstream bytes were split"


async def test_streamed_tool_arguments_reassemble_to_the_non_streamed_answer() -> None:
    fixture = json.loads((FIXTURES / "streams" / "tool_calls_split_across_deltas.json").read_text())
    out, _ = await translate_stream(fixture, [sse_bytes(fixture["anthropic"])])
    calls: dict[int, dict[str, str]] = {}
    for event in SSEParser().feed(out):
        if event.data == "[DONE]":
            continue
        for call in json.loads(event.data)["choices"][0]["delta"].get("tool_calls", []):
            entry = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
            entry["id"] += call.get("id", "")
            entry["name"] += call.get("function", {}).get("name", "")
            entry["arguments"] += call["function"].get("arguments", "")
    assert calls == {
        0: {"id": "toolu_W", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        1: {"id": "toolu_T", "name": "get_time", "arguments": "{}"},
    }
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}


def test_a_200_error_body_or_garbage_is_an_upstream_error() -> None:
    error_body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    with pytest.raises(UpstreamError) as error:
        anthropic_to_openai_response(error_body)
    assert (error.value.status, error.value.type) == (503, "overloaded_error")
    with pytest.raises(UpstreamError) as error:
        anthropic_to_openai_response(b"<html>")
    assert error.value.status == 502
