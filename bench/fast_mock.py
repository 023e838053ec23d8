"""A very fast mock LLM upstream (OpenAI and Anthropic shapes) for the benchmark.

Raw asyncio Protocol on uvloop, httptools for parsing, keep-alive and pipelining, every
response precomputed as bytes at start-up: the mock must never be the bottleneck.

Routes:
  POST /v1/chat/completions   chat.completion JSON with usage; if the body contains
                              ``"stream": true`` an SSE stream of chat.completion.chunk
                              events, a usage chunk and ``data: [DONE]`` (chunked encoding)
  POST /v1/messages           Anthropic message JSON; Anthropic SSE events when streaming
  GET  /v1/models             a one-model list
  GET  /health                ``{"status":"ok"}``
  GET  /stats                 ``{"requests": N}``: LLM requests answered so far

Run: ``python bench/fast_mock.py --port 9001``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import signal
from collections.abc import Iterable
from typing import Any, cast

import httptools
import uvloop

MODEL = "bench-model"
CREATED = 1_700_000_000
WORDS = ["Hello", "!", " I'm", " a", " mock", " model", ",", " happy", " to", " help", "."]
PROMPT_TOKENS = 21
COMPLETION_TOKENS = len(WORDS)
_STREAM_TRUE = re.compile(rb'"stream"\s*:\s*true')


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _openai_usage() -> dict[str, Any]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_completion() -> bytes:
    return _dumps(
        {
            "id": "chatcmpl-bench0000000000000000000000",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "".join(WORDS),
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _openai_usage(),
            "service_tier": "default",
            "system_fingerprint": "fp_bench",
        }
    )


def openai_stream_events() -> list[bytes]:
    base = {
        "id": "chatcmpl-bench0000000000000000000000",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_bench",
    }

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice], "usage": None}

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    chunks += [chunk({"content": word}, None) for word in WORDS[:-1]]
    chunks.append(chunk({"content": WORDS[-1]}, "stop"))
    chunks.append({**base, "choices": [], "usage": _openai_usage()})
    return [b"data: " + _dumps(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]


def anthropic_message() -> bytes:
    return _dumps(
        {
            "id": "msg_bench000000000000000000",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": "".join(WORDS)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": PROMPT_TOKENS,
                "output_tokens": COMPLETION_TOKENS,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
    )


def anthropic_stream_events() -> list[bytes]:
    def event(name: str, data: dict[str, Any]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + _dumps({"type": name, **data}) + b"\n\n"

    start: dict[str, Any] = {
        "id": "msg_bench000000000000000000",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1},
    }
    events = [
        event("message_start", {"message": start}),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        event("ping", {}),
    ]
    events += [
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": w}})
        for w in WORDS
    ]
    events += [
        event("content_block_stop", {"index": 0}),
        event(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": COMPLETION_TOKENS},
            },
        ),
        event("message_stop", {}),
    ]
    return events


def http_response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 " + status.encode() + b"\r\ncontent-type: " + content_type + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def http_chunked(events: Iterable[bytes]) -> bytes:
    """One SSE event per HTTP chunk, then the terminating zero-length chunk."""
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
        b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    body = b"".join(b"%x\r\n%b\r\n" % (len(e), e) for e in events)
    return head + body + b"0\r\n\r\n"


class Responses:
    """Every response the mock can send, as ready-to-write bytes."""

    def __init__(self) -> None:
        self.chat = http_response("200 OK", openai_completion())
        self.chat_stream = http_chunked(openai_stream_events())
        self.messages = http_response("200 OK", anthropic_message())
        self.messages_stream = http_chunked(anthropic_stream_events())
        self.health = http_response("200 OK", b'{"status":"ok"}')
        models = {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "me"}]}
        self.models = http_response("200 OK", _dumps(models))
        err = {"error": {"message": "not found", "type": "invalid_request_error"}}
        self.not_found = http_response("404 Not Found", _dumps(err))
        self.bad_request = http_response("400 Bad Request", b'{"error":"bad request"}')
        self.llm_requests = 0

    def is_llm(self, response: bytes) -> bool:
        return response in (self.chat, self.chat_stream, self.messages, self.messages_stream)

    def route(self, method: bytes, path: bytes, body: bytes) -> bytes:
        path = path.split(b"?", 1)[0]
        if method == b"POST":
            if path in (b"/v1/chat/completions", b"/chat/completions"):
                self.llm_requests += 1
                return self.chat_stream if _STREAM_TRUE.search(body) else self.chat
            if path in (b"/v1/messages", b"/messages"):
                self.llm_requests += 1
                return self.messages_stream if _STREAM_TRUE.search(body) else self.messages
        elif method == b"GET":
            if path in (b"/health", b"/health/liveliness"):
                return self.health
            if path in (b"/v1/models", b"/models"):
                return self.models
            if path == b"/stats":
                return http_response("200 OK", _dumps({"requests": self.llm_requests}))
        return self.not_found


class MockProtocol(asyncio.Protocol):
    """One connection: feed bytes to httptools, answer each complete request."""

    __slots__ = ("_body", "_delay", "_jitter", "_parser", "_responses", "_transport", "_url")

    def __init__(self, responses: Responses, delay_s: float = 0.0, jitter_s: float = 0.0) -> None:
        self._responses = responses
        self._delay = delay_s
        self._jitter = jitter_s
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport implements asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.write(self._responses.bad_request)
                self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._body.clear()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        transport = self._transport
        if transport is None:
            return
        body = b"".join(self._body) if self._body else b""
        response = self._responses.route(self._parser.get_method(), self._url, body)
        keep_alive = self._parser.should_keep_alive()
        if (self._delay or self._jitter) and self._responses.is_llm(response):
            # A provider's time to answer (--delay-ms, plus up to --jitter-ms at random: real
            # answers do not all take the same time), without blocking other connections.
            wait = self._delay + random.uniform(0, self._jitter)
            asyncio.get_running_loop().call_later(
                wait, self._answer, transport, response, keep_alive
            )
            return
        self._answer(transport, response, keep_alive)

    @staticmethod
    def _answer(transport: asyncio.Transport, response: bytes, keep_alive: bool) -> None:
        if transport.is_closing():
            return
        transport.write(response)
        if not keep_alive:
            transport.close()


async def serve(host: str, port: int, delay_s: float = 0.0, jitter_s: float = 0.0) -> None:
    loop = asyncio.get_running_loop()
    responses = Responses()
    server = await loop.create_server(
        lambda: MockProtocol(responses, delay_s, jitter_s),
        host,
        port,
        backlog=4096,
        reuse_address=True,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"fast_mock listening on http://{host}:{port}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument(
        "--delay-ms", type=float, default=0.0, help="answer LLM requests after this long"
    )
    parser.add_argument(
        "--jitter-ms", type=float, default=0.0, help="plus up to this long, at random"
    )
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.delay_ms / 1000, args.jitter_ms / 1000))


if __name__ == "__main__":
    main()
