"""What the Gemini and Cohere translations cost, per request, per answer and per stream chunk.

Issue 3 asks for at most 50 us per request and 10 us per stream chunk of translation.
The pure functions run in a timing loop on the fixture-pair bodies (a plain chat, a
tool turn with history and a JSON schema to clean) and on one SSE event at a time
(parsing included); the JSON encoding of the result is counted too.

Run: ``.venv/bin/python bench/google_cohere_translation.py [--loops 20000]``
"""

from __future__ import annotations

import argparse
import json
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bastion.dialects.cohere_to_openai import CohereStreamTranslator, chat_completion_from_cohere
from bastion.dialects.gemini_to_openai import GeminiStreamTranslator, chat_completion_from_gemini
from bastion.dialects.openai_to_cohere import cohere_chat_request
from bastion.dialects.openai_to_gemini import gemini_request
from bastion.dialects.translate_common import Target

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
GEMINI_EVENT = (
    b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hello there "}]},'
    b'"index":0}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":2},'
    b'"responseId":"s1"}\r\n\r\n'
)
COHERE_EVENT = (
    b'event: content-delta\ndata: {"type":"content-delta","index":0,'
    b'"delta":{"message":{"content":{"text":"Hello "}}}}\n\n'
)


def fixture(directory: str, name: str) -> Any:
    return json.loads((FIXTURES / directory / f"{name}.json").read_text())["input"]


def microseconds(function: Callable[[], object], loops: int) -> float:
    return min(timeit.repeat(function, number=loops, repeat=3)) / loops * 1e6


def cases() -> list[tuple[str, Callable[[], object]]]:
    target = Target("bench")
    basic = fixture("openai_gemini", "request_basic")
    tools = fixture("openai_gemini", "request_tools")
    gemini_answer = orjson.dumps(fixture("openai_gemini", "response_text"))
    cohere_tools = fixture("openai_cohere", "request_tools")
    cohere_answer = orjson.dumps(fixture("openai_cohere", "response_text"))
    gemini_stream = GeminiStreamTranslator(model="m", created=1, include_usage=True)
    cohere_stream = CohereStreamTranslator(model="m", created=1, include_usage=True)
    return [
        ("gemini request, chat", lambda: orjson.dumps(gemini_request(basic, target))),
        ("gemini request, tools + schema", lambda: orjson.dumps(gemini_request(tools, target))),
        (
            "gemini answer",
            lambda: orjson.dumps(
                chat_completion_from_gemini(orjson.loads(gemini_answer), model="m", created=1)
            ),
        ),
        ("gemini stream chunk", lambda: gemini_stream.feed(GEMINI_EVENT)),
        (
            "cohere request, tools",
            lambda: orjson.dumps(cohere_chat_request(cohere_tools, "m", target, stream=True)),
        ),
        (
            "cohere answer",
            lambda: orjson.dumps(
                chat_completion_from_cohere(orjson.loads(cohere_answer), model="m", created=1)
            ),
        ),
        ("cohere stream chunk", lambda: cohere_stream.feed(COHERE_EVENT)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--loops", type=int, default=20000)
    args = parser.parse_args()
    for name, function in cases():
        print(f"{name:34s} {microseconds(function, args.loops):7.1f} us")


if __name__ == "__main__":
    main()
