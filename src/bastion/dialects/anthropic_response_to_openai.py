"""An Anthropic Messages answer → an OpenAI chat completion. Pure functions.

Text blocks are joined into ``content``; ``tool_use`` blocks become ``tool_calls`` (the
input re-encoded as the arguments string); thinking becomes ``reasoning_content`` plus
``thinking_blocks`` (with signatures, so a client can send them back, as LiteLLM
returns them). The usage counts cache reads and writes into ``prompt_tokens`` and also
carries LiteLLM's flat ``cache_read_input_tokens`` / ``cache_creation_input_tokens``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from bastion.core.errors import UpstreamStatusError
from bastion.dialects.openai_to_anthropic import JSON_TOOL_NAME
from bastion.dialects.usage import openai_usage_dict, usage_from_anthropic

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# Anthropic error types → the HTTP status an OpenAI-dialect client gets. Overloaded
# (Anthropic's 529) becomes 503: retryable, and a status OpenAI clients know.
ERROR_STATUSES = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 503,
}


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def openai_usage(raw: Any) -> dict[str, Any]:
    """OpenAI's usage object for an Anthropic one, with LiteLLM's flat cache fields."""
    usage = usage_from_anthropic(raw)
    out = openai_usage_dict(usage)
    out["cache_read_input_tokens"] = usage.cached_input_tokens
    out["cache_creation_input_tokens"] = usage.cache_creation_input_tokens
    return out


def error_from_event(data: Any, provider: str) -> UpstreamStatusError:
    """The error an Anthropic ``error`` object (a body or a stream event) stands for."""
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    kind = str(error.get("type") or "api_error")
    message = str(error.get("message") or "")
    return UpstreamStatusError(
        f"{provider} error: {message or kind}",
        status=ERROR_STATUSES.get(kind, 500),
        provider=provider,
        error_type=kind,
    )


def anthropic_to_openai_response(
    body: bytes, *, json_mode: bool = False, created: int | None = None, provider: str = "anthropic"
) -> bytes:
    """The OpenAI ``chat.completion`` bytes for an Anthropic ``message`` body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        if isinstance(data, dict) and data.get("type") == "error":
            raise error_from_event(data, provider)
        raise UpstreamStatusError(
            f"{provider} answered 200 with a body that is not a Messages API message",
            status=502,
            provider=provider,
        )
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    answered_in_json = False
    for block in data["content"]:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and not answered_in_json:
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            if json_mode and block.get("name") == JSON_TOOL_NAME:
                texts = [arguments]  # the answer is the JSON, not the words around it
                answered_in_json = True
                continue
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": arguments},
                }
            )
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking") or ""))
            thinking_blocks.append(
                {
                    "type": "thinking",
                    "thinking": block.get("thinking") or "",
                    "signature": block.get("signature") or "",
                }
            )
        elif kind == "redacted_thinking":
            thinking_blocks.append({"type": "redacted_thinking", "data": block.get("data")})
    text = "".join(texts)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not tool_calls else None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if thinking_blocks:
        message["thinking_blocks"] = thinking_blocks
    finish = finish_reason(data.get("stop_reason"))
    if answered_in_json and not tool_calls and finish == "tool_calls":
        finish = "stop"
    completion = {
        "id": data.get("id") or "chatcmpl-anthropic",
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": data.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": openai_usage(data.get("usage")),
    }
    return orjson.dumps(completion)
