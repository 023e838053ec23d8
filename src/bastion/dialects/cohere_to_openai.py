"""Cohere v2 answers → OpenAI chat completions, embeddings and the rerank shape. Pure.

Cohere's stream is a series of typed SSE events (``message-start``,
``content-delta``, ``tool-plan-delta``, ``tool-call-start``/``-delta``/``-end``,
``message-end`` with the finish reason and usage); there is no ``[DONE]``.
A ``tool_plan`` (the model's reasoning before calling tools) is given as
``reasoning_content``.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from bastion.core.errors import UpstreamStatusError
from bastion.core.usage import Usage
from bastion.dialects.openai_to_cohere import rerank_document_text
from bastion.dialects.sse import SSEParser, encode_event
from bastion.dialects.usage import openai_usage_dict

_FINISH = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR_TOXIC": "content_filter",
}


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def usage_from_cohere(raw: Any) -> Usage:
    """Cohere's ``usage``: ``tokens`` (what the model saw) over ``billed_units``."""
    if not isinstance(raw, dict):
        return Usage()
    counts = raw.get("tokens") or raw.get("billed_units") or {}
    cached = _int(raw.get("cached_tokens"))
    return Usage(
        input_tokens=max(_int(counts.get("input_tokens")) - cached, 0),
        output_tokens=_int(counts.get("output_tokens")),
        cached_input_tokens=cached,
    )


def finish_reason(reason: Any, has_tool_calls: bool) -> str:
    if has_tool_calls and reason in (None, "COMPLETE", "TOOL_CALL"):
        return "tool_calls"
    return _FINISH.get(str(reason), "stop")


def chat_completion_from_cohere(
    data: dict[str, Any], *, model: str, created: int
) -> dict[str, Any]:
    message = data.get("message") or {}
    texts: list[str] = []
    thoughts: list[str] = []
    for part in message.get("content") or []:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "thinking":
            thoughts.append(str(part.get("thinking") or ""))
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
    if message.get("tool_plan"):
        thoughts.insert(0, str(message["tool_plan"]))
    calls = [_tool_call(call) for call in message.get("tool_calls") or []]
    out_message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
    }
    if thoughts:
        out_message["reasoning_content"] = "".join(thoughts)
    if calls:
        out_message["tool_calls"] = calls
    return {
        "id": str(data.get("id") or f"chatcmpl-{uuid.uuid4().hex}"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": out_message,
                "finish_reason": finish_reason(data.get("finish_reason"), bool(calls)),
            }
        ],
        "usage": openai_usage_dict(usage_from_cohere(data.get("usage"))),
    }


def _tool_call(call: Any) -> dict[str, Any]:
    call = call if isinstance(call, dict) else {}
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments or {}).decode()
    return {
        "id": str(call.get("id") or "call_" + uuid.uuid4().hex[:24]),
        "type": "function",
        "function": {"name": str(function.get("name") or ""), "arguments": arguments},
    }


class CohereStreamTranslator:
    """Cohere v2 chat SSE bytes in (split anywhere), OpenAI chunk SSE bytes out."""

    def __init__(self, *, model: str, created: int, include_usage: bool) -> None:
        self._model = model
        self._created = created
        self._include_usage = include_usage
        self._parser = SSEParser()
        self._id = f"chatcmpl-{uuid.uuid4().hex}"
        self._role_sent = False
        self._tool_index = -1
        self._finished = False
        self._usage: Any = None

    def feed(self, data: bytes) -> bytes:
        return b"".join(self._event(e.event, e.data) for e in self._parser.feed(data))

    def finish(self) -> bytes:
        out = [self._event(e.event, e.data) for e in self._parser.close()]
        if not self._finished:
            out.append(self._chunk({}, "tool_calls" if self._tool_index >= 0 else "stop"))
        if self._include_usage:
            usage = openai_usage_dict(usage_from_cohere(self._usage))
            out.append(self._encode([], usage))
        out.append(b"data: [DONE]\n\n")
        return b"".join(out)

    def _event(self, name: str | None, payload: str) -> bytes:
        if not payload.strip():
            return b""
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise UpstreamStatusError(
                "cohere sent a stream event that is not JSON", status=502, provider="cohere"
            ) from None
        if not isinstance(data, dict):
            return b""
        kind = data.get("type") or name
        delta = (data.get("delta") or {}).get("message") or {}
        if kind == "message-start":
            if data.get("id"):
                self._id = str(data["id"])
            return self._chunk({"content": ""})
        if kind == "content-delta":
            content = delta.get("content") or {}
            if isinstance(content.get("thinking"), str):
                return self._chunk({"reasoning_content": content["thinking"]})
            text = content.get("text")
            return self._chunk({"content": text}) if isinstance(text, str) else b""
        if kind == "tool-plan-delta":
            plan = delta.get("tool_plan")
            return self._chunk({"reasoning_content": plan}) if isinstance(plan, str) else b""
        if kind == "tool-call-start":
            self._tool_index += 1
            call = _tool_call(delta.get("tool_calls"))
            call["function"]["arguments"] = (
                (delta.get("tool_calls") or {}).get("function") or {}
            ).get("arguments") or ""
            return self._chunk({"tool_calls": [{"index": self._tool_index, **call}]})
        if kind == "tool-call-delta":
            function = (delta.get("tool_calls") or {}).get("function") or {}
            arguments = function.get("arguments")
            if not isinstance(arguments, str) or self._tool_index < 0:
                return b""
            return self._chunk(
                {"tool_calls": [{"index": self._tool_index, "function": {"arguments": arguments}}]}
            )
        if kind == "message-end":
            end = data.get("delta") or {}
            self._usage = end.get("usage")
            if end.get("error"):
                raise UpstreamStatusError(
                    f"cohere error: {end['error']}", status=500, provider="cohere"
                )
            self._finished = True
            reason = finish_reason(end.get("finish_reason"), self._tool_index >= 0)
            return self._chunk({}, reason)
        return b""

    def _chunk(self, delta: dict[str, Any], reason: str | None = None) -> bytes:
        if not self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent = True
        return self._encode([{"index": 0, "delta": delta, "finish_reason": reason}])

    def _encode(self, choices: list[dict[str, Any]], usage: Any = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return encode_event(orjson.dumps(chunk))


def embeddings_from_cohere(data: dict[str, Any], *, model: str) -> dict[str, Any]:
    embeddings = data.get("embeddings")
    vectors: list[Any]
    if isinstance(embeddings, dict):
        vectors = embeddings.get("float") or embeddings.get("base64") or []
    elif isinstance(embeddings, list):
        vectors = embeddings
    else:
        raise UpstreamStatusError(
            "cohere answered embeddings without 'embeddings'", status=502, provider="cohere"
        )
    tokens = _int(((data.get("meta") or {}).get("billed_units") or {}).get("input_tokens"))
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": vector}
            for index, vector in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def rerank_from_cohere(data: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """Cohere's rerank answer in the gateway's shape; documents added from the request."""
    documents = request.get("documents") or []
    want_documents = request.get("return_documents") is True
    results = []
    for item in data.get("results") or []:
        if not isinstance(item, dict):
            continue
        index = _int(item.get("index"))
        result: dict[str, Any] = {
            "index": index,
            "relevance_score": item.get("relevance_score"),
        }
        if want_documents:
            document = item.get("document")
            if document is None and 0 <= index < len(documents):
                document = {"text": rerank_document_text(documents[index])}
            result["document"] = document
        results.append(result)
    meta: dict[str, Any] = data["meta"] if isinstance(data.get("meta"), dict) else {}
    billed = dict(meta.get("billed_units") or {})
    billed.setdefault("search_units", 1)
    return {
        "id": str(data.get("id") or uuid.uuid4()),
        "results": results,
        "meta": {**meta, "billed_units": billed},
    }
