"""A provider that answers locally: canned or echoed text, no network, no key.

Used by the embedded default config, by tests, and for LiteLLM's ``mock_response``
(a request field or a ``litellm_params`` entry). A ``mock_response`` naming an
error, such as ``litellm.RateLimitError``, raises that error instead.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson

from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.core.errors import UpstreamError, UpstreamStatusError, UpstreamTimeoutError
from bastion.dialects.rerank import local_rerank
from bastion.providers.base import ProviderCall, ProviderResponse, ProviderStream
from bastion.providers.fake_media import MEDIA_OPERATIONS, media_response

_MOCK_ERRORS: dict[str, tuple[int, str]] = {
    "RateLimitError": (429, "rate_limit_error"),
    "InternalServerError": (500, "api_error"),
    "ServiceUnavailableError": (503, "api_error"),
    "APIConnectionError": (502, "api_connection_error"),
    "APIError": (500, "api_error"),
    "BadRequestError": (400, "invalid_request_error"),
    "ContextWindowExceededError": (400, "invalid_request_error"),
    "ContentPolicyViolationError": (400, "invalid_request_error"),
    "AuthenticationError": (401, "authentication_error"),
    "NotFoundError": (404, "not_found_error"),
    "Timeout": (408, "timeout"),
}

# The provider error codes OpenAI sends for these, so routing classifies them alike.
_MOCK_ERROR_CODES = {
    "ContextWindowExceededError": "context_length_exceeded",
    "ContentPolicyViolationError": "content_policy_violation",
}

EMBEDDING_DIMENSIONS = 16


class FakeProvider:
    name = "fake"
    dialects = frozenset({Dialect.OPENAI})

    def configure(self, deployment: Deployment) -> None:
        deployment.api_base = deployment.api_base or "fake://local"
        deployment.request_headers = {}

    def supports(self, operation: Operation) -> bool:
        return True

    async def send(self, deployment: Deployment, call: ProviderCall) -> ProviderResponse:
        mock = _mock_for(deployment, call)
        _raise_if_error(mock)
        if call.operation is Operation.EMBEDDING:
            return ProviderResponse(200, orjson.dumps(_embedding(call.body)))
        if call.operation is Operation.RERANK:
            return ProviderResponse(200, orjson.dumps(local_rerank(call.body)))
        text = _answer_text(mock, call)
        if call.operation in MEDIA_OPERATIONS:
            return media_response(call, text)
        if call.operation is Operation.COMPLETION:
            return ProviderResponse(200, orjson.dumps(_completion(call.body, text)))
        return ProviderResponse(200, orjson.dumps(_chat(call.body, text)))

    async def open_stream(self, deployment: Deployment, call: ProviderCall) -> ProviderStream:
        mock = _mock_for(deployment, call)
        _raise_if_error(mock)
        return FakeStream(call, _answer_text(mock, call))


class FakeStream:
    content_type = b"text/event-stream"

    def __init__(self, call: ProviderCall, text: str) -> None:
        self._call = call
        self._text = text

    async def __aiter__(self) -> AsyncIterator[bytes]:
        body = self._call.body
        created = int(time.time())
        call_id = _id("chatcmpl" if self._call.operation is Operation.CHAT else "cmpl")
        model = str(body.get("model", "fake"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        words = _split_words(self._text)
        if self._call.operation is Operation.COMPLETION:
            for word in words:
                yield _sse(_text_chunk(call_id, created, model, word, None))
            yield _sse(_text_chunk(call_id, created, model, "", "stop"))
        else:
            yield _sse(_chat_chunk(call_id, created, model, {"role": "assistant", "content": ""}))
            for word in words:
                yield _sse(_chat_chunk(call_id, created, model, {"content": word}))
            yield _sse(_chat_chunk(call_id, created, model, {}, finish_reason="stop"))
        if include_usage:
            usage_chunk = _chat_chunk(call_id, created, model, None)
            usage_chunk["usage"] = _usage(body, self._text)
            yield _sse(usage_chunk)
        yield b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        return None


def _mock_for(deployment: Deployment, call: ProviderCall) -> Any:
    if "mock_response" in call.body:
        return call.body["mock_response"]
    return deployment.mock_response


def _raise_if_error(mock: Any) -> None:
    if not isinstance(mock, str) or not mock.startswith("litellm."):
        return
    name = mock.removeprefix("litellm.").split(":", 1)[0].strip()
    if name not in _MOCK_ERRORS:
        return
    status, error_type = _MOCK_ERRORS[name]
    message = f"fake provider: mock_response asked for {name}"
    if status == 408:
        raise UpstreamTimeoutError(message, provider="fake")
    error: UpstreamError = UpstreamStatusError(
        message,
        status=status,
        provider="fake",
        error_type=error_type,
        retry_after=1 if status == 429 else None,
        code=_MOCK_ERROR_CODES.get(name),
    )
    raise error


def _answer_text(mock: Any, call: ProviderCall) -> str:
    if isinstance(mock, str):
        return mock
    if mock is not None:
        return orjson.dumps(mock).decode()
    prompt = _last_user_text(call.body)
    return (
        f"Hello from Bastion's fake provider. You said: {prompt}"
        if prompt
        else ("Hello from Bastion's fake provider.")
    )


def _last_user_text(body: dict[str, Any]) -> str:
    if isinstance(body.get("prompt"), str):
        return str(body["prompt"])
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    str(p.get("text", ""))
                    for p in content
                    if isinstance(p, dict) and p.get("type") == "text"
                )
    return ""


def _usage(body: dict[str, Any], text: str) -> dict[str, Any]:
    prompt_tokens = max(1, len(orjson.dumps(body.get("messages") or body.get("prompt") or "")) // 4)
    completion_tokens = max(1, len(text) // 4)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _chat(body: dict[str, Any], text: str) -> dict[str, Any]:
    requested = body.get("n")
    n = requested if isinstance(requested, int) and requested > 0 else 1
    return {
        "id": _id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(body.get("model", "fake")),
        "system_fingerprint": "fp_bastion_fake",
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
            for i in range(n)
        ],
        "usage": _usage(body, text),
    }


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": _id("cmpl"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": str(body.get("model", "fake")),
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
        "usage": _usage(body, text),
    }


def _embedding(body: dict[str, Any]) -> dict[str, Any]:
    raw_input = body.get("input")
    inputs = raw_input if isinstance(raw_input, list) else [raw_input]
    if inputs and all(isinstance(t, int) for t in inputs):
        inputs = [inputs]
    dims = body.get("dimensions")
    size = dims if isinstance(dims, int) and 0 < dims <= 4096 else EMBEDDING_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(inputs):
        vector = _vector(orjson.dumps(item), size)
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{size}f", *vector)).decode() if as_base64 else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = max(1, len(orjson.dumps(raw_input)) // 4)
    return {
        "object": "list",
        "data": data,
        "model": str(body.get("model", "fake")),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _vector(seed: bytes, size: int) -> list[float]:
    values: list[float] = []
    block = hashlib.sha256(seed).digest()
    while len(values) < size:
        for byte in block:
            values.append(round(byte / 127.5 - 1.0, 6))
        block = hashlib.sha256(block).digest()
    return values[:size]


def _split_words(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)] if text else []


def _chat_chunk(
    call_id: str,
    created: int,
    model: str,
    delta: dict[str, Any] | None,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    return {
        "id": call_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_bastion_fake",
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def _text_chunk(
    call_id: str, created: int, model: str, text: str, finish_reason: str | None
) -> dict[str, Any]:
    return {
        "id": call_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"
