"""Every JSON fixture under tests/fixtures/openai_bedrock/, run through the translation.

- ``requests/*.json``: an OpenAI chat body, the deployment it targets (Claude or not,
  drop_params) and the Converse body it becomes, or the 400 it gets (``error``).
  Fixtures with ``drop_params`` must be a 400 without it.
- ``responses/*.json``: a Converse answer and the OpenAI chat completion it becomes.
- ``streams/*.json``: ConverseStream messages (events and exceptions), encoded into
  event-stream frames, and the OpenAI chunks that come out (``[DONE]`` included), or
  the error that ends the stream. Each transcript is fed whole, byte by byte and in
  odd-sized pieces: the output must not depend on how the bytes were split.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bastion.core.errors import InvalidRequestError, UpstreamError
from bastion.dialects.bedrock_to_openai import ConverseStreamState, chat_completion
from bastion.dialects.openai_to_bedrock import ConverseTarget, converse_request
from bastion.dialects.sse import SSEParser
from bastion.providers.bedrock_eventstream import encode_event, encode_exception
from bastion.providers.bedrock_stream import BedrockEventStream, ConverseTranslator

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openai_bedrock"
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"


def load(kind: str) -> list[Any]:
    files = sorted((FIXTURES / kind).glob("*.json"))
    assert files, f"no fixtures in {kind}/"
    return [pytest.param(json.loads(f.read_text()), id=f.stem) for f in files]


def target(spec: dict[str, Any], *, drop: bool | None = None) -> ConverseTarget:
    return ConverseTarget(
        "deployment 'test' (bedrock)",
        drop_params=spec["drop_params"] if drop is None else drop,
        claude=spec["claude"],
    )


@pytest.mark.parametrize("fixture", load("requests"))
def test_request_translation(fixture: dict[str, Any]) -> None:
    spec = fixture["target"]
    if "error" in fixture:
        with pytest.raises(InvalidRequestError) as caught:
            converse_request(fixture["openai"], target(spec))
        assert fixture["error"]["contains"] in caught.value.message
        assert caught.value.param == fixture["error"]["param"]
        return
    assert converse_request(fixture["openai"], target(spec)) == fixture["converse"]
    if spec["drop_params"]:
        with pytest.raises(InvalidRequestError, match="drop_params"):
            converse_request(fixture["openai"], target(spec, drop=False))


def test_request_translation_does_not_modify_the_body() -> None:
    fixture = json.loads((FIXTURES / "requests" / "tool_loop_merged_results.json").read_text())
    before = json.dumps(fixture["openai"], sort_keys=True)
    converse_request(fixture["openai"], target(fixture["target"]))
    assert json.dumps(fixture["openai"], sort_keys=True) == before


@pytest.mark.parametrize("fixture", load("responses"))
def test_response_translation(fixture: dict[str, Any]) -> None:
    out = chat_completion(
        fixture["converse"], model=MODEL, completion_id="chatcmpl-test", created=1700000000
    )
    assert out == fixture["openai"]


def frames(fixture: dict[str, Any]) -> bytes:
    out = []
    for frame in fixture["frames"]:
        payload = orjson.dumps(frame["data"])
        if "exception" in frame:
            out.append(encode_exception(frame["exception"], payload))
        else:
            out.append(encode_event(frame["event"], payload))
    return b"".join(out)


class Upstream:
    """A raw upstream stream yielding the given pieces."""

    content_type = b"application/vnd.amazon.eventstream"

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece

    async def aclose(self) -> None:
        self.closed = True


def splits(data: bytes) -> dict[str, list[bytes]]:
    odd = [data[i : i + 7] for i in range(0, len(data), 7)]
    return {
        "whole": [data],
        "bytewise": [data[i : i + 1] for i in range(len(data))],
        "odd": odd,
    }


async def run(fixture: dict[str, Any], pieces: list[bytes]) -> tuple[bytes, UpstreamError | None]:
    state = ConverseStreamState(
        model=MODEL,
        completion_id="chatcmpl-test",
        created=1700000000,
        include_usage=fixture["include_usage"],
    )
    stream = BedrockEventStream(Upstream(pieces), ConverseTranslator(state))
    out = []
    error = None
    try:
        async for chunk in stream:
            out.append(chunk)
    except UpstreamError as exc:
        error = exc
    return b"".join(out), error


def parse(sse: bytes) -> list[Any]:
    items: list[Any] = []
    for event in SSEParser().feed(sse):
        assert event.event is None
        if event.data == "[DONE]":
            items.append("[DONE]")
            continue
        chunk = json.loads(event.data)
        assert chunk.pop("id") == "chatcmpl-test"
        assert chunk.pop("object") == "chat.completion.chunk"
        assert chunk.pop("created") == 1700000000
        assert chunk.pop("model") == MODEL
        items.append(chunk)
    return items


@pytest.mark.parametrize("fixture", load("streams"))
async def test_stream_translation(fixture: dict[str, Any]) -> None:
    data = frames(fixture)
    results = {name: await run(fixture, pieces) for name, pieces in splits(data).items()}
    whole, error = results["whole"]
    assert parse(whole) == fixture["sse"]
    for name, (out, other_error) in results.items():
        assert out == whole, f"{name}: output depends on how the bytes were split"
        assert repr(other_error) == repr(error), name
    expected = fixture.get("error")
    if expected is None:
        assert error is None
        return
    assert error is not None
    assert error.status == expected["status"]
    assert error.code == expected["code"]
    assert error.type == expected["type"]
    assert expected["contains"] in error.message
