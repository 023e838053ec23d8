"""Gemini ``generateContent`` answers (whole or streamed) → OpenAI chat completions. Pure.

Gemini sends no tool call ids, so ids are generated (``new_id``); function call
arguments arrive as objects and leave as JSON strings. A streamed answer is a
series of ``data: {GenerateContentResponse}`` events whose text is incremental
and whose ``usageMetadata`` is cumulative: the last one counts.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from bastion.core.errors import UpstreamStatusError
from bastion.core.usage import Usage
from bastion.dialects.sse import SSEParser, encode_event
from bastion.dialects.translate_common import IdFactory
from bastion.dialects.usage import openai_usage_dict

_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "content_filter",
}


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def finish_reason(reason: Any, has_tool_calls: bool) -> str:
    if has_tool_calls and reason in (None, "STOP"):
        return "tool_calls"
    return _FINISH.get(str(reason), "stop")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from_gemini(raw: Any) -> Usage:
    """``usageMetadata``: prompt counts include cached content, candidates exclude thoughts."""
    if not isinstance(raw, dict):
        return Usage()
    prompt = _int(raw.get("promptTokenCount")) + _int(raw.get("toolUsePromptTokenCount"))
    cached = _int(raw.get("cachedContentTokenCount"))
    thoughts = _int(raw.get("thoughtsTokenCount"))
    audio_in = sum(
        _int(d.get("tokenCount"))
        for d in raw.get("promptTokensDetails") or []
        if isinstance(d, dict) and d.get("modality") == "AUDIO"
    )
    audio_out = sum(
        _int(d.get("tokenCount"))
        for d in raw.get("candidatesTokensDetails") or []
        if isinstance(d, dict) and d.get("modality") == "AUDIO"
    )
    return Usage(
        input_tokens=max(prompt - cached, 0),
        output_tokens=_int(raw.get("candidatesTokenCount")) + thoughts,
        cached_input_tokens=cached,
        reasoning_tokens=thoughts,
        audio_input_tokens=audio_in,
        audio_output_tokens=audio_out,
    )


def _message(parts: list[Any], new_id: IdFactory) -> tuple[dict[str, Any], bool]:
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        if "functionCall" in part:
            calls.append(_tool_call(part["functionCall"], new_id))
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else texts).append(part["text"])
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
    }
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    return message, bool(calls)


def _tool_call(call: Any, new_id: IdFactory) -> dict[str, Any]:
    call = call if isinstance(call, dict) else {}
    return {
        "id": str(call.get("id") or new_id()),
        "type": "function",
        "function": {
            "name": str(call.get("name") or ""),
            "arguments": orjson.dumps(call.get("args") or {}).decode(),
        },
    }


def chat_completion_from_gemini(
    data: dict[str, Any], *, model: str, created: int, new_id: IdFactory = new_call_id
) -> dict[str, Any]:
    """A whole ``GenerateContentResponse`` as an OpenAI ``chat.completion``."""
    choices = []
    for position, candidate in enumerate(data.get("candidates") or []):
        content = candidate.get("content") or {}
        message, has_calls = _message(content.get("parts") or [], new_id)
        choices.append(
            {
                "index": _int(candidate.get("index")) or position,
                "message": message,
                "finish_reason": finish_reason(candidate.get("finishReason"), has_calls),
            }
        )
    if not choices:
        # The prompt itself was blocked (promptFeedback.blockReason): nothing to answer.
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": None},
                "finish_reason": "content_filter",
            }
        )
    return {
        "id": _completion_id(data),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": openai_usage_dict(usage_from_gemini(data.get("usageMetadata"))),
    }


def _completion_id(data: dict[str, Any]) -> str:
    response_id = data.get("responseId")
    return f"chatcmpl-{response_id}" if response_id else f"chatcmpl-{uuid.uuid4().hex}"


def raise_if_error(data: Any, provider: str) -> None:
    """An ``{"error": {...}}`` object sent in place of an answer (mid-stream) → UpstreamError."""
    error = data.get("error") if isinstance(data, dict) else None
    if error is None:
        return
    error = error if isinstance(error, dict) else {"message": str(error)}
    status = _int(error.get("code")) or 500
    raise UpstreamStatusError(
        f"{provider} error: {error.get('message') or 'the stream reported an error'}",
        status=status if 400 <= status < 600 else 500,
        provider=provider,
    )


class GeminiStreamTranslator:
    """Gemini SSE bytes in (split anywhere), OpenAI ``chat.completion.chunk`` SSE bytes out."""

    def __init__(
        self,
        *,
        model: str,
        created: int,
        include_usage: bool,
        provider: str = "gemini",
        new_id: IdFactory = new_call_id,
    ) -> None:
        self._model = model
        self._created = created
        self._include_usage = include_usage
        self._provider = provider
        self._new_id = new_id
        self._parser = SSEParser()
        self._id: str | None = None
        self._started: set[int] = set()
        self._tool_calls: dict[int, int] = {}
        self._finished: set[int] = set()
        self._usage: Any = None

    def feed(self, data: bytes) -> bytes:
        return b"".join(self._event(event.data) for event in self._parser.feed(data))

    def finish(self) -> bytes:
        """What follows the last upstream byte: the usage chunk (if asked) and ``[DONE]``."""
        out = [self._event(event.data) for event in self._parser.close()]
        if self._include_usage:
            usage = openai_usage_dict(usage_from_gemini(self._usage))
            out.append(self._chunk([], usage=usage))
        out.append(b"data: [DONE]\n\n")
        return b"".join(out)

    def _event(self, payload: str) -> bytes:
        if not payload.strip() or payload.strip() == "[DONE]":
            return b""
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise UpstreamStatusError(
                f"{self._provider} sent a stream event that is not JSON",
                status=502,
                provider=self._provider,
            ) from None
        if isinstance(data, list):  # a JSON-array framed stream: one element per response
            return b"".join(self._response(item) for item in data if isinstance(item, dict))
        if not isinstance(data, dict):
            return b""
        return self._response(data)

    def _response(self, data: dict[str, Any]) -> bytes:
        raise_if_error(data, self._provider)
        if self._id is None:
            self._id = _completion_id(data)
        if data.get("usageMetadata") is not None:
            self._usage = data["usageMetadata"]
        out: list[bytes] = []
        candidates = data.get("candidates") or []
        if not candidates and (data.get("promptFeedback") or {}).get("blockReason"):
            out.append(self._chunk([self._choice(0, {"role": "assistant"}, "content_filter")]))
            self._finished.add(0)
        for position, candidate in enumerate(candidates):
            index = _int(candidate.get("index")) or position
            out.extend(self._candidate(index, candidate))
        return b"".join(out)

    def _candidate(self, index: int, candidate: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        first = index not in self._started
        content = candidate.get("content") or {}
        for part in content.get("parts") or []:
            if not isinstance(part, dict):
                continue
            delta: dict[str, Any]
            if "functionCall" in part:
                position = self._tool_calls.get(index, 0)
                self._tool_calls[index] = position + 1
                call = _tool_call(part["functionCall"], self._new_id)
                delta = {"tool_calls": [{"index": position, **call}]}
            elif isinstance(part.get("text"), str):
                key = "reasoning_content" if part.get("thought") else "content"
                delta = {key: part["text"]}
            else:
                continue
            if first:
                delta = {"role": "assistant", **delta}
                first = False
                self._started.add(index)
            out.append(self._chunk([self._choice(index, delta, None)]))
        reason = candidate.get("finishReason")
        if reason and index not in self._finished:
            self._finished.add(index)
            mapped = finish_reason(reason, index in self._tool_calls)
            delta = {"role": "assistant"} if first else {}
            self._started.add(index)
            out.append(self._chunk([self._choice(index, delta, mapped)]))
        return out

    @staticmethod
    def _choice(index: int, delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "finish_reason": reason}

    def _chunk(self, choices: list[dict[str, Any]], usage: Any = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id or f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return encode_event(orjson.dumps(chunk))
