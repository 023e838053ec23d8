"""A mock of Cohere's v2 API, and of Cohere models hosted on Azure AI Foundry.

Cohere (``Authorization: Bearer <key>``):
``POST /v2/chat`` (JSON, or typed SSE events with ``stream: true``: message-start,
content-start/-delta/-end, tool-plan-delta, tool-call-start/-delta/-end, message-end),
``POST /v2/embed`` (``input_type`` required, ``embedding_types`` float/base64),
``POST /v2/rerank`` (documents must be strings).

Azure AI (``api-key`` header or a bearer token): ``POST /v1/rerank`` (Cohere's v1 shape:
documents may be objects, ``return_documents``), ``POST /providers/cohere/v2/rerank``, and
OpenAI-shaped ``POST /models/embeddings`` / ``/embeddings`` with ``input_type``.

Chat is deterministic: with tools (and tool_choice not NONE) the model plans and calls the
first tool with ``{"city": "Paris"}``; after a tool result it repeats it; else it greets.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from aiohttp import web

from .mock_server import Handler, MockServer, ResetFault, words

V2_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering", "image")
AZURE_INPUT_TYPES = ("text", "query", "document")


def vector(text: str, dim: int = 8) -> list[float]:
    seed = sum(ord(c) for c in text) or 1
    return [round(((seed * (i + 5)) % 89) / 89.0, 6) for i in range(dim)]


def vector_base64(text: str, dim: int = 8) -> str:
    return base64.b64encode(struct.pack(f"<{dim}f", *vector(text, dim))).decode()


def score(query: str, document: str) -> float:
    wanted = set(query.lower().split())
    tokens = document.lower().split()
    return round(sum(1 for t in tokens if t in wanted) / (len(tokens) or 1), 6)


class MockCohere(MockServer):
    kind = "cohere"

    def __init__(self, *, api_key: str = "co-test-key", reply: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.reply = reply

    def build_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/v2/chat", self._chat),
            ("POST", "/v2/embed", self._embed),
            ("POST", "/v2/rerank", self._rerank_v2),
            ("POST", "/providers/cohere/v2/rerank", self._rerank_v2),
            ("POST", "/v1/rerank", self._rerank_v1),
            ("POST", "/models/embeddings", self._azure_embeddings),
            ("POST", "/embeddings", self._azure_embeddings),
        ]

    def error_body(self, status: int, message: str) -> Any:
        return {"id": "mock-error", "message": message}

    def _denied(self, request: web.Request, *, azure: bool) -> web.Response | None:
        bearer = request.headers.get("Authorization", "")
        if bearer == f"Bearer {self.api_key}":
            return None
        if azure and request.headers.get("api-key") == self.api_key:
            return None
        return self.error(401, "invalid api token")

    async def _prelude(
        self, request: web.Request, *, azure: bool = False
    ) -> tuple[Any, web.Response | None, Any]:
        body = await self.read(request)
        denied = self._denied(request, azure=azure)
        if denied is not None:
            return body, denied, None
        if not isinstance(body, dict):
            return body, self.error(400, "invalid request: body must be a JSON object"), None
        early, fault = await self.apply_fault()
        return body, early, fault

    # -- chat ----------------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body, early, fault = await self._prelude(request)
        if early is not None:
            return early
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not body.get("model"):
            return self.error(400, "invalid request: model and messages are required")
        for message in messages:
            if message.get("role") not in ("system", "user", "assistant", "tool"):
                return self.error(400, f"invalid request: unknown role {message.get('role')}")
        for name in ("top_p", "stop", "n", "max_completion_tokens"):
            if name in body:
                return self.error(400, f"invalid request: unknown field {name}")
        answer = self._answer(body)
        if body.get("stream"):
            events = _events(answer)
            return await self.send_sse(
                request, events, fault if isinstance(fault, ResetFault) else None
            )
        return web.json_response(answer)

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body["messages"]
        last = messages[-1]
        tools = body.get("tools") or []
        message: dict[str, Any] = {"role": "assistant"}
        finish = "COMPLETE"
        if last.get("role") == "tool":
            message["content"] = [{"type": "text", "text": f"The tool said: {last['content']}"}]
        elif tools and body.get("tool_choice") != "NONE":
            function = tools[0]["function"]
            message["tool_plan"] = f"I will call {function['name']}."
            message["tool_calls"] = [
                {
                    "id": "get_weather_mock01",
                    "type": "function",
                    "function": {"name": function["name"], "arguments": '{"city": "Paris"}'},
                }
            ]
            finish = "TOOL_CALL"
        else:
            images = sum(
                1
                for m in messages
                if isinstance(m.get("content"), list)
                for part in m["content"]
                if part.get("type") == "image_url"
            )
            text = self.reply or f"Hello from {body['model']}."
            if images:
                text += f" I see {images} image(s)."
            limit = body.get("max_tokens")
            if isinstance(limit, int) and words(text) > limit:
                text = " ".join(text.split()[:limit])
                finish = "MAX_TOKENS"
            message["content"] = [{"type": "text", "text": text}]
        prompt = sum(words(json.dumps(m.get("content") or "")) for m in messages)
        output = sum(words(c["text"]) for c in message.get("content", [])) + (
            5 if "tool_calls" in message else 0
        )
        return {
            "id": "cohere-chat-mock-1",
            "finish_reason": finish,
            "message": message,
            "usage": {
                "billed_units": {"input_tokens": prompt, "output_tokens": output},
                "tokens": {"input_tokens": prompt + 60, "output_tokens": output},
                "cached_tokens": 0,
            },
        }

    # -- embeddings ------------------------------------------------------------------------------

    async def _embed(self, request: web.Request) -> web.StreamResponse:
        body, early, _ = await self._prelude(request)
        if early is not None:
            return early
        texts = body.get("texts")
        if not isinstance(texts, list) or not texts:
            return self.error(400, "invalid request: texts must be a non-empty list")
        if body.get("input_type") not in V2_INPUT_TYPES:
            return self.error(
                400, "invalid request: valid input_type must be provided with the provided model"
            )
        kinds = body.get("embedding_types") or ["float"]
        dim = int(body.get("output_dimension") or 8)
        embeddings: dict[str, Any] = {}
        for kind in kinds:
            if kind == "float":
                embeddings["float"] = [vector(t, dim) for t in texts]
            elif kind == "base64":
                embeddings["base64"] = [vector_base64(t, dim) for t in texts]
            else:
                return self.error(400, f"invalid request: embedding type {kind} not supported")
        tokens = sum(words(t) for t in texts)
        return web.json_response(
            {
                "id": "cohere-embed-mock-1",
                "embeddings": embeddings,
                "texts": texts,
                "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
                "response_type": "embeddings_by_type",
            }
        )

    async def _azure_embeddings(self, request: web.Request) -> web.StreamResponse:
        body, early, _ = await self._prelude(request, azure=True)
        if early is not None:
            return early
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list) or not inputs:
            return self.error(400, "input is required")
        input_type = body.get("input_type")
        if input_type is not None and input_type not in AZURE_INPUT_TYPES:
            return self.error(400, f"input_type must be one of {', '.join(AZURE_INPUT_TYPES)}")
        tokens = sum(words(t) for t in inputs)
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": vector(t)}
                    for i, t in enumerate(inputs)
                ],
                "model": body.get("model") or "embed-v-4-0",
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    # -- rerank ----------------------------------------------------------------------------------

    async def _rerank_v2(self, request: web.Request) -> web.StreamResponse:
        body, early, _ = await self._prelude(request, azure=request.path.startswith("/providers"))
        if early is not None:
            return early
        documents = body.get("documents")
        if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
            return self.error(400, "invalid request: documents must be a list of strings")
        if "return_documents" in body:
            return self.error(400, "invalid request: unknown field return_documents")
        return web.json_response(_ranked(body, documents, with_documents=False))

    async def _rerank_v1(self, request: web.Request) -> web.StreamResponse:
        body, early, _ = await self._prelude(request, azure=True)
        if early is not None:
            return early
        documents = body.get("documents")
        if not isinstance(documents, list) or not documents:
            return self.error(400, "invalid request: documents is required")
        texts = [d if isinstance(d, str) else str(d.get("text", "")) for d in documents]
        return web.json_response(
            _ranked(body, texts, with_documents=body.get("return_documents") is True)
        )


def _ranked(body: dict[str, Any], texts: list[str], *, with_documents: bool) -> dict[str, Any]:
    query = str(body.get("query") or "")
    order = sorted(range(len(texts)), key=lambda i: (-score(query, texts[i]), i))
    top_n = body.get("top_n") or len(texts)
    results = []
    for index in order[:top_n]:
        result: dict[str, Any] = {"index": index, "relevance_score": score(query, texts[index])}
        if with_documents:
            result["document"] = {"text": texts[index]}
        results.append(result)
    return {
        "id": "cohere-rerank-mock-1",
        "results": results,
        "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
    }


def _events(answer: dict[str, Any]) -> list[bytes]:
    def event(kind: str, data: dict[str, Any]) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    message = answer["message"]
    start = {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": []}}
    out = [event("message-start", {"id": answer["id"], "delta": start})]
    if message.get("tool_plan"):
        plan = message["tool_plan"].split(" ")
        for index, piece in enumerate(plan):
            text = piece + (" " if index < len(plan) - 1 else "")
            out.append(event("tool-plan-delta", {"delta": {"message": {"tool_plan": text}}}))
    for index, call in enumerate(message.get("tool_calls") or []):
        opened = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
        out.append(
            event("tool-call-start", {"index": index, "delta": {"message": {"tool_calls": opened}}})
        )
        arguments = call["function"]["arguments"]
        for piece in (arguments[:5], arguments[5:]):
            delta = {"message": {"tool_calls": {"function": {"arguments": piece}}}}
            out.append(event("tool-call-delta", {"index": index, "delta": delta}))
        out.append(event("tool-call-end", {"index": index}))
    for index, part in enumerate(message.get("content") or []):
        empty = {"message": {"content": {"type": "text", "text": ""}}}
        out.append(event("content-start", {"index": index, "delta": empty}))
        pieces = part["text"].split(" ")
        for position, piece in enumerate(pieces):
            text = piece + (" " if position < len(pieces) - 1 else "")
            delta = {"message": {"content": {"text": text}}}
            out.append(event("content-delta", {"index": index, "delta": delta}))
        out.append(event("content-end", {"index": index}))
    end = {"finish_reason": answer["finish_reason"], "usage": answer["usage"]}
    out.append(event("message-end", {"delta": end}))
    return out
