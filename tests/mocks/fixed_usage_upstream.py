"""One loopback server speaking OpenAI chat, Anthropic Messages and Gemini, whose answers
report a FIXED usage per model (set by the test), streamed or not: for ledger tests
whose expected costs are computed by hand.

    usage = {
        "gpt-ledger": {"prompt_tokens": 1000, "completion_tokens": 500, ...},  # OpenAI shape
        "claude-ledger": {"input_tokens": 100, "cache_read_input_tokens": 2000, ...},
        "gemini-ledger": {"promptTokenCount": 800, "thoughtsTokenCount": 250, ...},
    }
    with FixedUsageUpstream(usage) as up:
        # openai/gpt-ledger       api_base: up.base_url + "/v1"
        # anthropic/claude-ledger api_base: up.base_url
        # gemini/gemini-ledger    api_base: up.base_url

Routes: ``POST /v1/chat/completions`` (a usage chunk only with
``stream_options.include_usage``, as OpenAI), ``POST /v1/messages`` (input usage in
``message_start``, output tokens in ``message_delta``), ``POST
/v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse`` (a
partial ``usageMetadata`` first, the full one last: Gemini's is cumulative). Every
answer's text is ``ANSWER``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

from .mock_server import Handler, MockServer

ANSWER = "Hello from the ledger"
_PIECES = ("Hello", " from", " the", " ledger")


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


class FixedUsageUpstream(MockServer):
    kind = "fixed-usage"

    def __init__(self, usage: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.usage = usage

    def build_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/v1/chat/completions", self._openai),
            ("POST", "/v1/messages", self._anthropic),
            ("POST", "/v1beta/models/{call}", self._gemini),
        ]

    def _usage_of(self, model: str) -> dict[str, Any]:
        if model not in self.usage:
            raise web.HTTPNotFound(text=f"no fixed usage for model {model!r}")
        return dict(self.usage[model])

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        body = await self.read(request)
        usage = self._usage_of(body["model"])
        call_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        base = {"id": call_id, "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            return web.json_response(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": ANSWER},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )
        chunk = {**base, "object": "chat.completion.chunk"}
        events = [
            _sse({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant"}}]}),
            *(
                _sse({**chunk, "choices": [{"index": 0, "delta": {"content": piece}}]})
                for piece in _PIECES
            ),
            _sse({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        ]
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(_sse({**chunk, "choices": [], "usage": usage}))
        events.append(b"data: [DONE]\n\n")
        return await self.send_sse(request, events)

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        body = await self.read(request)
        usage = self._usage_of(body["model"])
        message = {
            "id": f"msg_{uuid.uuid4().hex[:12]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "stop_reason": "end_turn",
            "stop_sequence": None,
        }
        if not body.get("stream"):
            content = [{"type": "text", "text": ANSWER}]
            return web.json_response({**message, "content": content, "usage": usage})
        opening = {**usage, "output_tokens": 1}
        start = {**message, "content": [], "stop_reason": None, "usage": opening}
        events = [
            _sse({"type": "message_start", "message": start}, "message_start"),
            _sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            ),
            *(
                _sse(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                    "content_block_delta",
                )
                for piece in _PIECES
            ),
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]},
                },
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ]
        return await self.send_sse(request, events)

    async def _gemini(self, request: web.Request) -> web.StreamResponse:
        await self.read(request)
        model, _, method = request.match_info["call"].partition(":")
        usage = self._usage_of(model)

        def answer(text: str, metadata: dict[str, Any], finish: str | None) -> dict[str, Any]:
            candidate: dict[str, Any] = {
                "content": {"role": "model", "parts": [{"text": text}]},
                "index": 0,
            }
            if finish:
                candidate["finishReason"] = finish
            return {"candidates": [candidate], "usageMetadata": metadata, "modelVersion": model}

        if method == "generateContent":
            return web.json_response(answer(ANSWER, usage, "STOP"))
        partial = {"promptTokenCount": usage.get("promptTokenCount", 0)}
        events = [
            _sse(answer(piece, partial, None)).replace(b"\n", b"\r\n") for piece in _PIECES[:-1]
        ]
        events.append(_sse(answer(_PIECES[-1], usage, "STOP")).replace(b"\n", b"\r\n"))
        return await self.send_sse(request, events)
