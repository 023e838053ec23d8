"""What the native Anthropic provider costs, per request and per stream chunk.

Issue 3 asks that same-dialect pass-through adds no parse-and-rebuild of the body, and
that translation adds at most 50 us per request and 10 us per stream chunk. Measured on
the pure functions, in a timing loop (best of five):

- ``/v1/messages`` pass-through: splicing the upstream model into the raw body
  (``dialects/splice.py``) for a short chat and a Claude Code-sized request (20 kB
  system prompt, 24 tools), compact as SDKs send it (with and without a nested
  ``"model"`` key) and pretty-printed, next to re-encoding the parsed body;
- ``/v1/chat/completions`` → Anthropic: the request translation, the answer back, and
  one SSE event at a time (SSE parsing included) for text deltas and tool-call argument
  fragments.

Run: ``.venv/bin/python bench/anthropic_provider.py``
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from bastion.dialects.anthropic_response_to_openai import anthropic_to_openai_response
from bastion.dialects.anthropic_stream_to_openai import (
    AnthropicStreamTranslator,
    openai_stream_from_anthropic,
)
from bastion.dialects.openai_to_anthropic import openai_to_anthropic
from bastion.dialects.splice import passthrough_body


def tool(i: int) -> dict[str, Any]:
    props = {
        f"arg_{j}": {"type": "string", "description": f"Argument {j} of tool {i}, " * 3}
        for j in range(6)
    }
    return {
        "name": f"Tool{i}",
        "description": f"Tool number {i}. " * 40,
        "input_schema": {"type": "object", "properties": props, "required": ["arg_0"]},
    }


SHORT_MESSAGES = {
    "model": "claude",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
}
CLAUDE_CODE: dict[str, Any] = {
    "model": "claude",
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Fix the bug in main.py " * 20}]},
    ],
    "system": [
        {
            "type": "text",
            "text": "You are Claude Code. " * 1000,
            "cache_control": {"type": "ephemeral"},
        }
    ],
    "tools": [tool(i) for i in range(24)],
    "metadata": {"user_id": "user_abc"},
    "max_tokens": 32000,
    "thinking": {"type": "adaptive"},
    "stream": True,
}
NESTED_MODEL = {
    **CLAUDE_CODE,
    "tools": [
        *CLAUDE_CODE["tools"],
        {
            **tool(99),
            "input_schema": {"type": "object", "properties": {"model": {"type": "string"}}},
        },
    ],
}
OPENAI_TOOL_TURN: dict[str, Any] = {
    "model": "claude",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Run Tool0 with arg_0=x"},
        {
            "role": "assistant",
            "content": "Running it.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "Tool0", "arguments": '{"arg_0": "x"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "ok " * 50},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": t["name"],
                "description": t["description"],
                "parameters": t["input_schema"],
            },
        }
        for t in (tool(i) for i in range(3))
    ],
    "temperature": 0.2,
    "stream": True,
    "stream_options": {"include_usage": True},
}
MESSAGE = orjson.dumps(
    {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "text", "text": "Running it."},
            {"type": "tool_use", "id": "toolu_2", "name": "Tool0", "input": {"arg_0": "y"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 30, "cache_read_input_tokens": 900, "output_tokens": 8},
    }
)


def event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


START = event(
    "message_start",
    {
        "type": "message_start",
        "message": {"id": "msg_01", "model": "claude-sonnet-4-5", "usage": {"input_tokens": 3}},
    },
) + event(
    "content_block_start",
    {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "tool_use", "id": "toolu_3", "name": "Tool0", "input": {}},
    },
)
TEXT_EVENT = event(
    "content_block_delta",
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " word"}},
)
TOOL_EVENT = event(
    "content_block_delta",
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "input_json_delta", "partial_json": '"arg_0": "va'},
    },
)


def per_call_us(fn: Callable[[], object], seconds: float = 0.5) -> float:
    """Best of five runs of the mean time per call, in microseconds."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - start > seconds / 5:
            break
        calls *= 2
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def stream_event_us(each: bytes, n: int = 20000) -> float:
    """Per upstream read of one event, through the SSE parser and the translator."""

    async def run() -> float:
        async def upstream() -> AsyncIterator[bytes]:
            yield START
            for _ in range(n):
                yield each

        translator = AnthropicStreamTranslator(include_usage=True)
        started = time.perf_counter()
        try:
            async for _ in openai_stream_from_anthropic(upstream(), translator):
                pass
        except Exception:
            pass
        return (time.perf_counter() - started) / n * 1e6

    return min(asyncio.run(run()) for _ in range(5))


def main() -> None:
    rows: list[tuple[str, float]] = []
    for name, document in (
        ("short chat", SHORT_MESSAGES),
        ("Claude Code-sized", CLAUDE_CODE),
        ("Claude Code-sized, nested model key", NESTED_MODEL),
        ("Claude Code-sized, pretty-printed", CLAUDE_CODE),
    ):
        option = orjson.OPT_INDENT_2 if "pretty" in name else 0
        raw = orjson.dumps(document, option=option)
        body = orjson.loads(raw)  # the handler parses every body once, whatever happens next
        rows.append(
            (
                f"pass-through splice, {name} ({len(raw) // 1024} kB)",
                per_call_us(lambda raw=raw, body=body: passthrough_body(raw, body, "claude-4")),
            )
        )
        rows.append(
            (
                "  (re-encoding the parsed body instead)",
                per_call_us(lambda body=body: orjson.dumps({**body, "model": "claude-4"})),
            )
        )
    rows.append(
        (
            "OpenAI → Anthropic request, tool turn",
            per_call_us(
                lambda: openai_to_anthropic(OPENAI_TOOL_TURN, model="m", stream=True, label="d")
            ),
        )
    )
    rows.append(
        (
            "Anthropic → OpenAI answer, tool use",
            per_call_us(lambda: anthropic_to_openai_response(MESSAGE, created=0)),
        )
    )
    rows.append(("stream: one text_delta event", stream_event_us(TEXT_EVENT)))
    rows.append(("stream: one input_json_delta event", stream_event_us(TOOL_EVENT)))
    width = max(len(name) for name, _ in rows)
    for name, micros in rows:
        print(f"{name:<{width}}  {micros:8.2f} us")


if __name__ == "__main__":
    main()
