"""What the Anthropic -> OpenAI bridge costs: /v1/messages served by an OpenAI deployment.

Issue 3 asks for at most 50 us per request and 10 us per stream chunk of translation.
Two measurements, printed side by side:

1. ``translation`` (always): the pure functions in a timing loop, on realistic bodies:
   a short chat, a tool-use turn with history, and a Claude Code-sized request (a 20 kB
   system prompt, 24 tools, a few turns); the answer back; and one streamed chunk at a
   time (SSE parsing included) for text deltas and tool-call argument fragments.
2. ``--e2e``: the real gateway (``bastion serve``, one worker) in front of the fast mock
   upstream; sequential keep-alive requests to ``/v1/chat/completions`` and, with the
   same conversation in Anthropic's shape, to ``/v1/messages``, interleaved so both see
   the same machine state. The difference of the medians is what the bridge adds.

Run: ``.venv/bin/python bench/anthropic_bridge.py [--e2e] [--requests 2000]``
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bastion.dialects.anthropic_to_openai import anthropic_to_openai_request
from bastion.dialects.openai_response_to_anthropic import openai_to_anthropic_response
from bastion.dialects.openai_stream_to_anthropic import AnthropicStreamTranslator
from processes import free_port, spawn, wait_ready

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
MASTER_KEY = "sk-bench-master"


# -- bodies -----------------------------------------------------------------------------------


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


SHORT_CHAT: dict[str, Any] = {
    "model": "bench-model",
    "max_tokens": 1024,
    "system": "You are a helpful assistant.",
    "messages": [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"},
    ],
}
TOOL_TURN: dict[str, Any] = {
    "model": "bench-model",
    "max_tokens": 1024,
    "tools": [tool(i) for i in range(3)],
    "messages": [
        {"role": "user", "content": "Run Tool0 with arg_0=x"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Running it."},
                {"type": "tool_use", "id": "toolu_1", "name": "Tool0", "input": {"arg_0": "x"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok " * 50}],
        },
    ],
}
CLAUDE_CODE_SIZED: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 32000,
    "stream": True,
    "metadata": {"user_id": '{"device_id":"d","session_id":"s"}'},
    "thinking": {"type": "adaptive"},
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2"},
        {
            "type": "text",
            "text": "You are Claude Code. " * 1000,
            "cache_control": {"type": "ephemeral"},
        },
    ],
    "tools": [tool(i) for i in range(24)],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>context</system-reminder>"},
                {
                    "type": "text",
                    "text": "Fix the bug in main.py",
                    "cache_control": {"type": "ephemeral"},
                },
            ],
        },
        {"role": "system", "content": "Available agent types: general-purpose"},
        *TOOL_TURN["messages"][1:],
    ],
}
COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The capital of Italy is Rome."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 30, "completion_tokens": 8, "total_tokens": 38},
    }
)


def chunk(delta: dict[str, Any]) -> bytes:
    payload = {
        "id": "chatcmpl-abc",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_abc",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
    }
    return b"data: " + orjson.dumps(payload) + b"\n\n"


TEXT_CHUNK = chunk({"content": " word"})
TOOL_CHUNK = chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"arg_0": "va'}}]})


# -- timing -----------------------------------------------------------------------------------


def per_call_us(fn: Callable[[], object], seconds: float = 0.5) -> float:
    """Best of five runs of the mean time per call, in microseconds."""
    calls = 1
    while True:  # calibrate
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


def stream_chunk_us(first: bytes, each: bytes, n: int = 20000) -> float:
    def run() -> None:
        translator = AnthropicStreamTranslator(SHORT_CHAT)
        translator.feed(first)
        for _ in range(n):
            translator.feed(each)

    return per_call_us(run, seconds=1.0) / n


def translation() -> list[tuple[str, float, str]]:
    rows = []
    for name, body in (
        ("request: short chat", SHORT_CHAT),
        ("request: tool turn (3 tools)", TOOL_TURN),
        ("request: Claude Code-sized (24 tools, 20 kB system)", CLAUDE_CODE_SIZED),
    ):
        size = len(orjson.dumps(body))
        us = per_call_us(functools.partial(anthropic_to_openai_request, body))
        rows.append((f"{name}, {size / 1024:.1f} kB", us, "per request"))
    us = per_call_us(lambda: openai_to_anthropic_response(COMPLETION, SHORT_CHAT))
    rows.append(("response: chat completion -> message", us, "per response"))
    first_tool = chunk(
        {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "T", "arguments": ""}}]}
    )
    rows.append(("stream: text delta chunk", stream_chunk_us(TEXT_CHUNK, TEXT_CHUNK), "per chunk"))
    rows.append(
        ("stream: tool argument chunk", stream_chunk_us(first_tool, TOOL_CHUNK), "per chunk")
    )
    return rows


# -- end to end -------------------------------------------------------------------------------


def request_us(conn: http.client.HTTPConnection, path: str, body: bytes) -> float:
    headers = {"content-type": "application/json", "x-api-key": MASTER_KEY}
    start = time.perf_counter()
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    elapsed = (time.perf_counter() - start) * 1e6
    if response.status != 200:
        raise RuntimeError(f"{path}: HTTP {response.status}: {data[:300]!r}")
    return elapsed


def end_to_end(requests: int) -> list[tuple[str, float, float]]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-anthropic-"))
    mock_port, gw_port = free_port(), free_port()
    py = sys.executable
    mock = spawn(
        "mock",
        [py, str(BENCH_DIR / "fast_mock.py"), "--port", str(mock_port)],
        mock_port,
        workdir / "mock.log",
    )
    env = {**os.environ, "BENCH_MOCK_BASE": f"http://127.0.0.1:{mock_port}/v1"}
    gateway = spawn(
        "bastion",
        [py, "-m", "bastion", "serve", "--config", str(BENCH_DIR / "gateway.yaml"),
         "--host", "127.0.0.1", "--port", str(gw_port), "--workers", "1"],
        gw_port, workdir / "gateway.log", env=env,
    )  # fmt: skip
    rows = []
    try:
        wait_ready(mock, "/health", 15)
        wait_ready(gateway, "/health/liveliness", 30)
        conn = http.client.HTTPConnection("127.0.0.1", gw_port, timeout=30)
        openai_messages = [
            {"role": "system", "content": SHORT_CHAT["system"]},
            *SHORT_CHAT["messages"],
        ]
        for stream in (False, True):
            chat = {"model": "bench-model", "messages": openai_messages, "max_tokens": 1024}
            messages = {**SHORT_CHAT, "model": "bench-model"}
            if stream:
                chat |= {"stream": True, "stream_options": {"include_usage": True}}
                messages["stream"] = True
            pair = (orjson.dumps(chat), orjson.dumps(messages))
            for _ in range(200):  # warm up
                request_us(conn, "/v1/chat/completions", pair[0])
                request_us(conn, "/v1/messages", pair[1])
            openai_us, anthropic_us = [], []
            for _ in range(requests):
                openai_us.append(request_us(conn, "/v1/chat/completions", pair[0]))
                anthropic_us.append(request_us(conn, "/v1/messages", pair[1]))
            kind = "stream" if stream else "non-stream"
            rows.append((kind, statistics.median(openai_us), statistics.median(anthropic_us)))
        conn.close()
    finally:
        gateway.stop()
        mock.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--e2e", action="store_true", help="also measure through bastion serve")
    parser.add_argument("--requests", type=int, default=2000, help="e2e requests per endpoint")
    args = parser.parse_args()
    print("translation (pure functions, best of 5)")
    for name, us, unit in translation():
        print(f"  {name:<58} {us:8.2f} us {unit}")
    if args.e2e:
        print(f"\nend to end, median of {args.requests} sequential requests each (1 worker)")
        print(f"  {'':<12} {'chat/completions':>18} {'messages':>12} {'added':>10}")
        for kind, openai_us, anthropic_us in end_to_end(args.requests):
            added = anthropic_us - openai_us
            print(f"  {kind:<12} {openai_us:15.0f} us {anthropic_us:9.0f} us {added:7.0f} us")
    print(json.dumps({"python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
