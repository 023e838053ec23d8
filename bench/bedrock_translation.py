"""What a Bedrock call costs the gateway: translation, SigV4 signing and event-stream decoding.

Issue 3 asks for at most 50 us per request and 10 us per stream chunk of translation.
The pure functions run in a timing loop on fixture-pair bodies (a plain chat and a tool
turn with history), the signer on those payloads, and one ConverseStream frame at a
time through the decoder and the chunk translator; JSON encoding is counted too. The
Anthropic path (InvokeModel) is measured on a Claude Code-sized body (about 60 KB):
re-enveloping it, and signing it (the body's SHA-256 dominates).

Run: ``.venv/bin/python bench/bedrock_translation.py [--loops 20000]``
"""

from __future__ import annotations

import argparse
import json
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from botocore.credentials import Credentials

from bastion.dialects.anthropic_bedrock import invoke_body
from bastion.dialects.bedrock_to_openai import ConverseStreamState, chat_completion
from bastion.dialects.openai_to_bedrock import ConverseTarget, converse_request
from bastion.providers.bedrock_eventstream import EventStreamDecoder, encode_event
from bastion.providers.bedrock_sigv4 import SigV4Signer

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "openai_bedrock"
FRAME = encode_event(
    "contentBlockDelta",
    b'{"contentBlockIndex":0,"delta":{"text":"Hello there "},"p":"abcdefghijklmnop"}',
)


def fixture(kind: str, name: str) -> Any:
    return json.loads((FIXTURES / kind / f"{name}.json").read_text())


def microseconds(function: Callable[[], object], loops: int) -> float:
    return min(timeit.repeat(function, number=loops, repeat=3)) / loops * 1e6


def claude_code_body() -> dict[str, Any]:
    tool = {
        "name": "tool",
        "description": "x" * 2000,
        "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}},
    }
    return {
        "model": "claude",
        "max_tokens": 32000,
        "stream": True,
        "system": [{"type": "text", "text": "You are Claude Code. " * 400}],
        "tools": [dict(tool, name=f"tool_{i}") for i in range(20)],
        "messages": [{"role": "user", "content": "Fix the failing test."}],
        "metadata": {"user_id": "u"},
    }


def cases() -> list[tuple[str, Callable[[], object]]]:
    basic = fixture("requests", "basic_text_and_sampling")
    tools = fixture("requests", "tool_loop_merged_results")
    answer = orjson.dumps(fixture("responses", "tool_use_with_text")["converse"])
    target = ConverseTarget("bench", claude=True)
    signer = SigV4Signer(
        "us-east-1",
        "bedrock-runtime.us-east-1.amazonaws.com",
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
        {"Content-Type": "application/json", "Accept": "application/json"},
    )
    frozen = Credentials("AKIDBENCH", "secret", "token").get_frozen_credentials()
    payload = orjson.dumps(converse_request(tools["openai"], target))
    state = ConverseStreamState(model="m", completion_id="c", created=1, include_usage=True)
    decoder = EventStreamDecoder()
    big = claude_code_body()
    big_payload = orjson.dumps(invoke_body(big, {"anthropic-beta": "claude-code-20250219"}))

    def chunk() -> None:
        for message in decoder.feed(FRAME):
            state.event(message.header(":event-type"), orjson.loads(message.payload))

    return [
        ("converse request, chat", lambda: orjson.dumps(converse_request(basic["openai"], target))),
        (
            "converse request, tool turn",
            lambda: orjson.dumps(converse_request(tools["openai"], target)),
        ),
        ("sigv4 signature, tool turn", lambda: signer.sign(frozen, payload)),
        (
            "converse answer, tool calls",
            lambda: orjson.dumps(
                chat_completion(orjson.loads(answer), model="m", completion_id="c", created=1)
            ),
        ),
        ("converse stream chunk", chunk),
        (
            f"invoke body, {len(big_payload) // 1024} KB",
            lambda: orjson.dumps(invoke_body(big, {"anthropic-beta": "claude-code-20250219"})),
        ),
        (
            f"sigv4 signature, {len(big_payload) // 1024} KB",
            lambda: signer.sign(frozen, big_payload),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--loops", type=int, default=20000)
    args = parser.parse_args()
    for name, function in cases():
        print(f"{name:34s} {microseconds(function, args.loops):7.1f} us")


if __name__ == "__main__":
    main()
