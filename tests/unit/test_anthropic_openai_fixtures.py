"""Every JSON fixture pair under tests/fixtures/anthropic_openai/, run through the bridge.

- ``requests/*.json``: an Anthropic Messages body and the OpenAI body it becomes
  (``drop_unsupported`` says whether drop_params was on; when it is, the same body
  without it must be a 400).
- ``responses/*.json``: an OpenAI chat completion and the Anthropic message it becomes.
- ``streams/*.json``: OpenAI SSE (chunk objects, or raw text for comments, named events
  and [DONE]) and the Anthropic events that come out, an upstream error rendered as the
  HTTP layer renders it. Each transcript is fed whole, byte by byte and in odd-sized
  pieces: the output must not depend on how the bytes were split.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bastion.core.errors import InvalidRequestError, UpstreamError
from bastion.dialects.anthropic_bridge import AnthropicBridge
from bastion.dialects.sse import SSEParser
from bastion.interfaces.http.errors import anthropic_stream_error_event

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic_openai"
BRIDGE = AnthropicBridge()


def load(kind: str) -> list[Any]:
    files = sorted((FIXTURES / kind).glob("*.json"))
    assert files, f"no fixtures in {kind}/"
    return [pytest.param(json.loads(f.read_text()), id=f.stem) for f in files]


@pytest.mark.parametrize("fixture", load("requests"))
def test_request_translation(fixture: dict[str, Any]) -> None:
    drop = fixture["drop_unsupported"]
    translated = BRIDGE.request_to_openai(fixture["anthropic"], drop_unsupported=drop)
    assert translated == fixture["openai"]
    if drop:
        with pytest.raises(InvalidRequestError):
            BRIDGE.request_to_openai(fixture["anthropic"])


@pytest.mark.parametrize("fixture", load("responses"))
def test_response_translation(fixture: dict[str, Any]) -> None:
    out = BRIDGE.response_from_openai(orjson.dumps(fixture["openai"]), fixture["request"])
    assert orjson.loads(out) == fixture["anthropic"]


def sse_bytes(items: list[Any]) -> bytes:
    return b"".join(
        item.encode() if isinstance(item, str) else b"data: " + orjson.dumps(item) + b"\n\n"
        for item in items
    )


def splits(data: bytes) -> dict[str, list[bytes]]:
    return {
        "whole": [data],
        "bytes": [data[i : i + 1] for i in range(len(data))],
        "sevens": [data[i : i + 7] for i in range(0, len(data), 7)],
        "events": [part + b"\n\n" for part in data.split(b"\n\n") if part],
        "crlf": [data.replace(b"\n", b"\r\n")],
        "crlf-bytes": [bytes([b]) for b in data.replace(b"\n", b"\r\n")],
    }


async def relay(pieces: list[bytes], request: dict[str, Any]) -> bytes:
    """What the HTTP layer sends: the translated stream, an upstream error as an event."""

    async def upstream() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    out = b""
    try:
        async for chunk in BRIDGE.stream_from_openai(upstream(), request):
            out += chunk
    except UpstreamError as error:
        out += anthropic_stream_error_event(error)
    return out


@pytest.mark.parametrize("fixture", load("streams"))
async def test_stream_translation(fixture: dict[str, Any]) -> None:
    data = sse_bytes(fixture["openai_sse"])
    outputs = {}
    for how, pieces in splits(data).items():
        outputs[how] = await relay(pieces, fixture["request"])
    assert len(set(outputs.values())) == 1, "output depends on how the input was split"
    out = outputs["whole"]
    events = [{"event": e.event, "data": json.loads(e.data)} for e in SSEParser().feed(out)]
    assert events == fixture["anthropic_events"]
    # Anthropic's framing: every event is named, and named after its data's type.
    assert out.count(b"\n\n") == len(events)
    assert all(e["event"] == e["data"]["type"] for e in events)
