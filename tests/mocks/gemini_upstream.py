"""A mock of Google's Gemini API (AI Studio and Vertex AI), Vertex Claude, and Google's OAuth.

Routes (all real HTTP on loopback):

- AI Studio: ``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``,
  ``:batchEmbedContents``; the key must come in ``x-goog-api-key`` (or ``?key=``).
- Vertex: ``POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:…`` (the same
  methods plus ``:predict`` for embeddings) and ``…/publishers/anthropic/models/{model}:
  rawPredict`` / ``:streamRawPredict`` (Anthropic Messages, ``anthropic_version`` required);
  a ``Bearer`` token issued by this mock's token endpoint is required.
- ``POST /token``: the OAuth JWT-bearer grant. The assertion's RS256 signature is verified
  with the public half of the key ``service_account_info()`` generated.

Answers are deterministic: with function declarations (and mode not NONE) the model calls
the first allowed function with ``{"city": "Paris"}``; after a function response it says
what the tool said; otherwise it greets, counting the images it was sent.
"""

from __future__ import annotations

import base64
import itertools
import json
import struct
import time
from typing import Any

import google.auth.jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .mock_server import Handler, MockServer, ResetFault, words

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class MockGemini(MockServer):
    kind = "gemini"

    def __init__(
        self, *, api_key: str = "gm-test-key", token_ttl: int = 3600, reply: str | None = None
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.token_ttl = token_ttl
        self.reply = reply
        self._private_pem: bytes | None = None
        self._public_pem: bytes | None = None
        self._tokens: dict[str, float] = {}
        self._counter = itertools.count(1)
        self.token_requests = 0

    # -- credentials -------------------------------------------------------------------------

    def service_account_info(self, project: str = "mock-project") -> dict[str, Any]:
        """A fresh service-account key whose token_uri is this mock."""
        if self._private_pem is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self._private_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            self._public_pem = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        return {
            "type": "service_account",
            "project_id": project,
            "private_key_id": "mock-key-1",
            "private_key": self._private_pem.decode(),
            "client_email": f"gateway@{project}.iam.gserviceaccount.com",
            "client_id": "1234567890",
            "token_uri": f"{self.base_url}/token",
        }

    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    # -- routes ------------------------------------------------------------------------------

    def build_routes(self) -> list[tuple[str, str, Handler]]:
        vertex = (
            "/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{target}"
        )
        return [
            ("POST", "/token", self._token),
            ("POST", "/v1beta/models/{target}", self._studio),
            ("POST", vertex, self._vertex),
        ]

    def error_body(self, status: int, message: str) -> Any:
        return {
            "error": {
                "code": status,
                "message": message,
                "status": _STATUS_NAMES.get(status, "UNKNOWN"),
            }
        }

    async def _token(self, request: web.Request) -> web.StreamResponse:
        form = await self.read(request)
        with self._lock:
            self.token_requests += 1
        if not isinstance(form, dict) or form.get("grant_type") != (
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        ):
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            # google-auth signs for Google's own token endpoint, whatever token_uri says.
            claims = google.auth.jwt.decode(
                form.get("assertion", ""),
                certs=self._public_pem,
                audience=[GOOGLE_TOKEN_AUDIENCE, f"{self.base_url}/token"],
            )
        except ValueError as exc:
            return web.json_response(
                {"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"}, status=400
            )
        if "cloud-platform" not in str(claims.get("scope", "")):
            return web.json_response({"error": "invalid_scope"}, status=400)
        token = f"ya29.mock-{next(self._counter)}"
        with self._lock:
            self._tokens[token] = time.time() + self.token_ttl
        return web.json_response(
            {"access_token": token, "expires_in": self.token_ttl, "token_type": "Bearer"}
        )

    async def _studio(self, request: web.Request) -> web.StreamResponse:
        body = await self.read(request)
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if key != self.api_key:
            return self.error(
                400 if key else 403,
                "API key not valid. Please pass a valid API key."
                if key
                else "Method doesn't allow unregistered callers.",
            )
        model, _, method = request.match_info["target"].partition(":")
        return await self._gemini(request, body, model, method)

    async def _vertex(self, request: web.Request) -> web.StreamResponse:
        body = await self.read(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        with self._lock:
            expiry = self._tokens.get(token)
        if not auth.startswith("Bearer ") or expiry is None or expiry < time.time():
            return self.error(401, "Request had invalid authentication credentials.")
        model, _, method = request.match_info["target"].partition(":")
        if request.match_info["publisher"] == "anthropic":
            return await self._claude(request, body, model, method)
        return await self._gemini(request, body, model, method)

    # -- Gemini --------------------------------------------------------------------------------

    async def _gemini(
        self, request: web.Request, body: Any, model: str, method: str
    ) -> web.StreamResponse:
        if not isinstance(body, dict):
            return self.error(400, "Invalid JSON payload received.")
        early, fault = await self.apply_fault()
        if early is not None:
            return early
        if method in ("batchEmbedContents", "predict"):
            return web.json_response(_embeddings(body, method))
        if method not in ("generateContent", "streamGenerateContent"):
            return self.error(404, f"Method {method} not found.")
        problem = _check_generate(body)
        if problem:
            return self.error(400, problem)
        candidates = _plan(body, model, self.reply)
        usage = _usage(body, candidates)
        if method == "generateContent":
            return web.json_response(
                {
                    "candidates": [c.whole() for c in candidates],
                    "usageMetadata": usage,
                    "modelVersion": model,
                    "responseId": "mock-response-1",
                }
            )
        if request.query.get("alt") != "sse":
            return self.error(400, "this mock streams only with alt=sse")
        events = []
        for piece in _stream_pieces(candidates):
            chunk = {**piece, "usageMetadata": usage, "modelVersion": model}
            chunk["responseId"] = "mock-response-1"
            events.append(b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n")
        reset = fault if isinstance(fault, ResetFault) else None
        return await self.send_sse(request, events, reset)

    # -- Claude on Vertex ------------------------------------------------------------------------

    async def _claude(
        self, request: web.Request, body: Any, model: str, method: str
    ) -> web.StreamResponse:
        if not isinstance(body, dict):
            return self.error(400, "Invalid JSON payload received.")
        if body.get("anthropic_version") != "vertex-2023-10-16" or "model" in body:
            return web.json_response(
                {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "anthropic_version: vertex-2023-10-16 is required and "
                        "model: Extra inputs are not permitted",
                    },
                },
                status=400,
            )
        early, fault = await self.apply_fault()
        if early is not None:
            return early
        message = _claude_message(body, model)
        if method == "rawPredict":
            return web.json_response(message)
        if method != "streamRawPredict" or body.get("stream") is not True:
            return self.error(400, "streamRawPredict needs stream: true")
        events = _claude_events(message)
        reset = fault if isinstance(fault, ResetFault) else None
        return await self.send_sse(request, events, reset)


class _Candidate:
    def __init__(self, index: int, parts: list[dict[str, Any]], finish: str) -> None:
        self.index = index
        self.parts = parts
        self.finish = finish

    def whole(self) -> dict[str, Any]:
        return {
            "content": {"role": "model", "parts": self.parts},
            "finishReason": self.finish,
            "index": self.index,
        }


def _check_generate(body: dict[str, Any]) -> str | None:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for content in contents:
        if content.get("role") not in ("user", "model"):
            return f"Please use a valid role: user, model. Got {content.get('role')}"
    for tool in body.get("tools") or []:
        for declaration in tool.get("functionDeclarations") or []:
            text = json.dumps(declaration.get("parameters") or {})
            for banned in ('"additionalProperties"', '"$schema"', '"$ref"'):
                if banned in text:
                    return f"Invalid JSON payload received. Unknown name {banned} at 'tools'"
    return None


def _plan(body: dict[str, Any], model: str, reply: str | None) -> list[_Candidate]:
    config = body.get("generationConfig") or {}
    count = int(config.get("candidateCount") or 1)
    last = body["contents"][-1]
    functions = [
        d for tool in body.get("tools") or [] for d in tool.get("functionDeclarations") or []
    ]
    calling = ((body.get("toolConfig") or {}).get("functionCallingConfig")) or {}
    responses = [p["functionResponse"] for p in last.get("parts", []) if "functionResponse" in p]
    parts: list[dict[str, Any]] = []
    if (config.get("thinkingConfig") or {}).get("includeThoughts"):
        parts.append({"text": "Let me think about it.", "thought": True})
    finish = "STOP"
    if responses:
        parts.append({"text": "The tool said: " + json.dumps(responses[0].get("response"))})
    elif functions and calling.get("mode", "AUTO") != "NONE":
        allowed = calling.get("allowedFunctionNames") or [functions[0]["name"]]
        declaration = next(d for d in functions if d["name"] == allowed[0])
        properties = (declaration.get("parameters") or {}).get("properties") or {}
        args = {"city": "Paris"} if "city" in properties else {}
        parts.append({"functionCall": {"name": declaration["name"], "args": args}})
    elif config.get("responseMimeType") == "application/json":
        parts.append({"text": '{"answer": "hello"}'})
    else:
        images = sum(
            1
            for content in body["contents"]
            for part in content.get("parts", [])
            if "inlineData" in part or "fileData" in part
        )
        text = reply or f"Hello from {model}."
        if images:
            text += f" I see {images} image(s)."
        limit = config.get("maxOutputTokens")
        if isinstance(limit, int) and words(text) > limit:
            text = " ".join(text.split()[:limit])
            finish = "MAX_TOKENS"
        parts.append({"text": text})
    out = []
    for index in range(count):
        these = [dict(p) for p in parts]
        if index and these and "text" in these[-1]:
            these[-1]["text"] += f" (candidate {index})"
        out.append(_Candidate(index, these, finish))
    return out


def _usage(body: dict[str, Any], candidates: list[_Candidate]) -> dict[str, Any]:
    prompt = sum(
        words(str(part.get("text", "")))
        for content in [*body["contents"], body.get("systemInstruction") or {}]
        for part in content.get("parts", [])
    )
    out_words = sum(
        words(p["text"])
        for c in candidates
        for p in c.parts
        if "text" in p and not p.get("thought")
    )
    out_words += sum(1 for c in candidates for p in c.parts if "functionCall" in p) * 5
    thoughts = sum(words(p["text"]) for c in candidates for p in c.parts if p.get("thought"))
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": out_words,
        "totalTokenCount": prompt + out_words + thoughts,
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if body.get("cachedContent"):
        usage["cachedContentTokenCount"] = min(prompt, 3)
    return usage


def _stream_pieces(candidates: list[_Candidate]) -> list[dict[str, Any]]:
    """Text in two-word pieces, calls whole; the finish reason rides on the last piece."""
    pieces: list[dict[str, Any]] = []
    for candidate in candidates:
        for part in candidate.parts:
            if "text" in part:
                tokens = part["text"].split(" ")
                for start in range(0, len(tokens), 2):
                    text = " ".join(tokens[start : start + 2])
                    if start + 2 < len(tokens):
                        text += " "
                    piece = {**part, "text": text}
                    pieces.append(_piece(candidate.index, [piece]))
            else:
                pieces.append(_piece(candidate.index, [part]))
        pieces[-1]["candidates"][0]["finishReason"] = candidate.finish
    return pieces


def _piece(index: int, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "index": index}]}


def _vector(text: str, dim: int = 8) -> list[float]:
    seed = sum(ord(c) for c in text) or 1
    return [round(((seed * (i + 3)) % 97) / 97.0, 6) for i in range(dim)]


def _embeddings(body: dict[str, Any], method: str) -> dict[str, Any]:
    if method == "predict":
        predictions = []
        for instance in body.get("instances") or []:
            dim = (body.get("parameters") or {}).get("outputDimensionality") or 8
            values = _vector(instance.get("content", ""), dim)
            stats = {"token_count": words(instance.get("content", "")), "truncated": False}
            predictions.append({"embeddings": {"values": values, "statistics": stats}})
        return {"predictions": predictions}
    out = []
    for item in body.get("requests") or []:
        text = "".join(p.get("text", "") for p in item["content"]["parts"])
        out.append({"values": _vector(text, item.get("outputDimensionality") or 8)})
    return {"embeddings": out}


def vector_base64(text: str, dim: int = 8) -> str:
    values = _vector(text, dim)
    return base64.b64encode(struct.pack(f"<{dim}f", *values)).decode()


def _claude_message(body: dict[str, Any], model: str) -> dict[str, Any]:
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    content = last.get("content")
    blocks = content if isinstance(content, list) else []
    results = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
    tools = body.get("tools") or []
    out: list[dict[str, Any]]
    if results:
        out = [{"type": "text", "text": f"The tool said: {results[0].get('content')}"}]
        stop = "end_turn"
    elif tools:
        out = [
            {
                "type": "tool_use",
                "id": "toolu_vertex_1",
                "name": tools[0]["name"],
                "input": {"city": "Paris"},
            }
        ]
        stop = "tool_use"
    else:
        out = [{"type": "text", "text": f"Hello from {model} on Vertex."}]
        stop = "end_turn"
    prompt = sum(words(json.dumps(m.get("content"))) for m in messages)
    return {
        "id": "msg_vrtx_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": out,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": prompt, "output_tokens": 7, "cache_read_input_tokens": 0},
    }


def _claude_events(message: dict[str, Any]) -> list[bytes]:
    def event(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {**message["usage"], "output_tokens": 1}
    events = [event("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            empty = {"type": "text", "text": ""}
            events.append(
                event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": empty},
                )
            )
            for piece in block["text"].split(" "):
                delta = {"type": "text_delta", "text": piece + " "}
                events.append(
                    event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                )
        else:
            opened = {**block, "input": {}}
            events.append(
                event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": opened},
                )
            )
            text = json.dumps(block["input"])
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                delta = {"type": "input_json_delta", "partial_json": piece}
                events.append(
                    event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                )
        events.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": message["usage"]["output_tokens"]},
            },
        )
    )
    events.append(event("message_stop", {"type": "message_stop"}))
    return events
