"""Spend-log settings without a database: bounded message bodies, stream transcripts and
the cost in a stream's final usage (include_cost_in_streaming_usage)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
import pytest

from bastion.config.loader import load_config_text
from bastion.core.dialect import Dialect
from bastion.core.errors import ConfigError
from bastion.core.usage import Usage
from bastion.services.metered_stream import MeteredStream
from bastion.services.spend_bodies import SpendBodies, StreamTranscript, TranscribedStream


class ChunkStream:
    content_type = b"text/event-stream"

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk

    async def aclose(self) -> None:
        return None


def sse(payload: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


def events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for event in raw.split(b"\n\n"):
        for line in event.split(b"\n"):
            if line.startswith(b"data: ") and line != b"data: [DONE]":
                out.append(orjson.loads(line[6:]))
    return out


async def relay(stream: Any) -> bytes:
    out = b""
    async for chunk in stream:
        out += chunk
    await stream.aclose()
    return out


def price(usage: Usage) -> Decimal:
    """$1 per input token, $0.5 per cached one, $2 per output token."""
    return (
        Decimal(usage.input_tokens)
        + Decimal("0.5") * usage.cached_input_tokens
        + 2 * Decimal(usage.output_tokens)
    )


OPENAI_CHUNKS = [
    sse({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}),
    sse({"choices": [{"index": 0, "delta": {"content": "lo"}}]}),
    sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    sse(
        {
            "choices": [],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 3,
                "prompt_tokens_details": {"cached_tokens": 4},
            },
        }
    ),
    b"data: [DONE]\n\n",
]


async def test_openai_final_usage_carries_the_cost_only_when_asked() -> None:
    seen: list[Usage | None] = []
    plain = await relay(MeteredStream(ChunkStream(OPENAI_CHUNKS), Dialect.OPENAI, seen.append))
    assert plain == b"".join(OPENAI_CHUNKS)  # default: bytes untouched

    costed = await relay(
        MeteredStream(ChunkStream(OPENAI_CHUNKS), Dialect.OPENAI, seen.append, cost_of=price)
    )
    usage = events(costed)[-1]["usage"]
    assert usage["cost"] == pytest.approx(6 + 2 + 6)  # 6 input, 4 cached, 3 output
    assert usage["prompt_tokens"] == 10
    assert costed.endswith(b"data: [DONE]\n\n")
    assert seen[0] == seen[1]  # the charge reads the same usage either way

    # A usage chunk the client did not ask for is still removed, cost or not.
    stripped = await relay(
        MeteredStream(
            ChunkStream(OPENAI_CHUNKS),
            Dialect.OPENAI,
            seen.append,
            strip_usage_chunk=True,
            cost_of=price,
        )
    )
    assert all("usage" not in e for e in events(stripped))


async def test_anthropic_message_delta_carries_the_cost_of_the_whole_call() -> None:
    chunks = [
        sse(
            {
                "type": "message_start",
                "message": {"usage": {"input_tokens": 5, "cache_read_input_tokens": 2}},
            },
            "message_start",
        ),
        sse(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hi"},
            },
            "content_block_delta",
        ),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 7},
            },
            "message_delta",
        ),
        sse({"type": "message_stop"}, "message_stop"),
    ]
    seen: list[Usage | None] = []
    out = await relay(
        MeteredStream(ChunkStream(chunks), Dialect.ANTHROPIC, seen.append, cost_of=price)
    )
    assert b"event: message_delta\ndata: " in out
    delta = next(e for e in events(out) if e["type"] == "message_delta")
    assert delta["usage"] == {"output_tokens": 7, "cost": pytest.approx(5 + 1 + 14)}
    start = next(e for e in events(out) if e["type"] == "message_start")
    assert "cost" not in start["message"]["usage"]
    assert seen == [Usage(input_tokens=5, output_tokens=7, cached_input_tokens=2)]


async def test_stream_transcripts_assemble_the_answer_text() -> None:
    transcript = StreamTranscript(Dialect.OPENAI)
    stream = TranscribedStream(ChunkStream(OPENAI_CHUNKS), transcript)
    assert await relay(stream) == b"".join(OPENAI_CHUNKS)
    assert transcript.text() == "Hello"

    anthropic = StreamTranscript(Dialect.ANTHROPIC)
    anthropic.feed(
        sse({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Bon"}})
        + sse({"type": "content_block_delta", "delta": {"type": "thinking_delta", "thinking": "x"}})
        + sse({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "jour"}})
    )
    assert anthropic.text() == "Bonjour"


def test_bodies_keep_the_request_and_answer_within_bounds() -> None:
    bodies = SpendBodies(max_string=100, max_bytes=2000)
    messages = [{"role": "user", "content": "hi"}]
    assert bodies.request({"model": "m", "messages": messages}, Dialect.OPENAI) == messages
    assert bodies.request(
        {"model": "m", "system": "be brief", "messages": messages}, Dialect.ANTHROPIC
    ) == [{"role": "system", "content": "be brief"}, *messages]
    assert bodies.request({"model": "e", "input": ["a", "b"]}, Dialect.OPENAI) == ["a", "b"]

    long = "a" * 60 + "b" * 500 + "c" * 40
    cut = bodies.request({"messages": [{"role": "user", "content": long}]}, Dialect.OPENAI)
    text = cut[0]["content"]
    assert text.startswith("a" * 60 + "b" * 20) and text.endswith("c" * 20)
    assert "…[500 characters truncated by bastion]…" in text

    answer = {"choices": [{"message": {"content": "ok"}}], "usage": {"prompt_tokens": 1}}
    assert bodies.answer(orjson.dumps(answer)) == answer
    huge = bodies.answer(orjson.dumps({"data": [{"embedding": [0.5] * 5000}]}))
    assert huge["bastion_truncated"] is True and len(huge["head"]) == 2000
    assert huge["bytes"] > 2000
    assert bodies.streamed("Hello") == {"stream": True, "content": "Hello"}


def test_max_string_length_comes_from_litellms_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_STRING_LENGTH_PROMPT_IN_DB", "5000")
    assert SpendBodies.from_environment().max_string == 5000
    monkeypatch.setenv("MAX_STRING_LENGTH_PROMPT_IN_DB", "lots")
    assert SpendBodies.from_environment().max_string == 2048


def test_settings_are_modelled_and_bad_durations_refused() -> None:
    loaded = load_config_text(
        "general_settings:\n"
        "  store_prompts_in_spend_logs: true\n"
        "  maximum_spend_logs_retention_period: 30d\n"
        "  maximum_spend_logs_retention_interval: 6h\n"
        "litellm_settings:\n"
        "  include_cost_in_streaming_usage: true\n"
        "  turn_off_message_logging: true\n"
    )
    assert loaded.warnings == []  # acted on: no "not acted on" warning
    general = loaded.config.general_settings
    assert (
        general.store_prompts_in_spend_logs and general.maximum_spend_logs_retention_period == "30d"
    )
    defaults = load_config_text("").config
    assert not defaults.general_settings.store_prompts_in_spend_logs
    assert not defaults.litellm_settings.include_cost_in_streaming_usage
    with pytest.raises(ConfigError, match="maximum_spend_logs_retention_period"):
        load_config_text("general_settings:\n  maximum_spend_logs_retention_period: 30x\n")
