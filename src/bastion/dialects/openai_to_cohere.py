"""OpenAI-dialect requests → Cohere v2 (``/v2/chat``, ``/v2/embed``, ``/v2/rerank``). Pure.

Cohere v2 chat is close to OpenAI's: the same roles, OpenAI-shaped ``tools`` and
``tool_calls``. It differs in names (``p``, ``k``, ``stop_sequences``), in
``tool_choice`` (only REQUIRED or NONE: a named function is expressed by offering
only that tool, with REQUIRED) and in having no ``n``.
"""

from __future__ import annotations

from typing import Any

import orjson

from bastion.core.errors import InvalidRequestError
from bastion.dialects.translate_common import (
    Target,
    function_tools,
    stop_sequences,
    text_inputs,
    text_of,
)

_RENAMED = {
    "temperature": "temperature",
    "top_p": "p",
    "top_k": "k",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "logprobs": "logprobs",
    "documents": "documents",
    "citation_options": "citation_options",
    "safety_mode": "safety_mode",
    "strict_tools": "strict_tools",
}
_IGNORED = frozenset(
    {
        "model",
        "stream_options",
        "user",
        "metadata",
        "store",
        "parallel_tool_calls",
        "prompt_cache_key",
        "safety_identifier",
    }
)
_HANDLED = frozenset(
    {
        "messages",
        "stream",
        "tools",
        "tool_choice",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "n",
        "response_format",
        "thinking",
        "reasoning_effort",
    }
)
_THINKING_BUDGET = {"minimal": 512, "low": 1024, "medium": 2048, "high": 4096}
_EMBED_FIELDS = frozenset(
    {"model", "input", "dimensions", "encoding_format", "user", "input_type", "truncate"}
)


def cohere_chat_request(
    body: dict[str, Any], model: str, target: Target, *, stream: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "messages": _messages(body["messages"])}
    for name, value in body.items():
        if name in _IGNORED or name in _HANDLED or value is None:
            continue
        if name in _RENAMED:
            out[_RENAMED[name]] = value
        else:
            target.unsupported(name)
    if stream:
        out["stream"] = True
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    if body.get("stop") is not None:
        out["stop_sequences"] = stop_sequences(body["stop"])
    if body.get("n") not in (None, 1):
        target.unsupported("n", "more than one choice")
    functions = function_tools(body.get("tools"), target)
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        chosen = choice.get("function") or {}
        wanted = chosen.get("name") if isinstance(chosen, dict) else None
        functions = [f for f in functions if f["name"] == wanted]
        if not functions:
            raise InvalidRequestError(
                f"tool_choice names '{wanted}', which is not in 'tools'", param="tool_choice"
            )
        out["tool_choice"] = "REQUIRED"
    elif choice == "required":
        out["tool_choice"] = "REQUIRED"
    elif choice == "none":
        out["tool_choice"] = "NONE"
    elif choice not in (None, "auto"):
        raise InvalidRequestError(
            "'tool_choice' must be auto, none, required or a function", param="tool_choice"
        )
    if functions:
        out["tools"] = [{"type": "function", "function": f} for f in functions]
    _response_format(body.get("response_format"), out, target)
    _thinking(body, out)
    return out


def _messages(messages: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            out.append({"role": "system", "content": text_of(content, where)})
        elif role == "user":
            out.append({"role": "user", "content": _user_content(content, where)})
        elif role == "assistant":
            out.append(_assistant(message, where))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise InvalidRequestError(
                    f"{where}.tool_call_id is required", param=f"{where}.tool_call_id"
                )
            text = text_of(content, where)
            out.append({"role": "tool", "tool_call_id": call_id, "content": text})
        else:
            raise InvalidRequestError(
                f"{where}.role '{role}' is not one of system, developer, user, assistant, tool",
                param=f"{where}.role",
            )
    return out


def _user_content(content: Any, where: str) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError(
            f"{where}.content must be a string or a list of parts", param=f"{where}.content"
        )
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(part.get("text") or "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise InvalidRequestError(
                    f"{where}.content[{index}].image_url.url is required",
                    param=f"{where}.content",
                )
            spec: dict[str, Any] = {"url": url}
            if isinstance(image, dict) and image.get("detail"):
                spec["detail"] = image["detail"]
            parts.append({"type": "image_url", "image_url": spec})
        else:
            raise InvalidRequestError(
                f"{where}.content[{index}] has type '{kind}', which Cohere cannot take "
                "(use text or image_url)",
                param=f"{where}.content",
            )
    return parts


def _assistant(message: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant"}
    text = text_of(message.get("content"), where)
    calls = message.get("tool_calls") or []
    if calls:
        tool_calls = []
        for index, call in enumerate(calls):
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise InvalidRequestError(
                    f"{where}.tool_calls[{index}].function.name is required",
                    param=f"{where}.tool_calls",
                )
            arguments = function.get("arguments")
            if not isinstance(arguments, str):
                arguments = orjson.dumps(arguments or {}).decode()
            tool_calls.append(
                {
                    "id": str(call.get("id") or f"call_{index}"),
                    "type": "function",
                    "function": {"name": function["name"], "arguments": arguments},
                }
            )
        out["tool_calls"] = tool_calls
        # Cohere wants the plan that led to the calls; the assistant's text is that plan.
        if text:
            out["tool_plan"] = text
    else:
        out["content"] = text
    return out


def _response_format(value: Any, out: dict[str, Any], target: Target) -> None:
    if value is None:
        return
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
        return
    if kind == "json_schema":
        spec = value.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        out["response_format"] = {"type": "json_object"}
        if isinstance(schema, dict):
            out["response_format"]["json_schema"] = schema
        return
    target.unsupported("response_format", f"type '{kind}'")


def _thinking(body: dict[str, Any], out: dict[str, Any]) -> None:
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        if thinking.get("type") == "disabled":
            out["thinking"] = {"type": "disabled"}
            return
        spec: dict[str, Any] = {"type": "enabled"}
        if isinstance(thinking.get("budget_tokens"), int):
            spec["token_budget"] = thinking["budget_tokens"]
        out["thinking"] = spec
        return
    effort = body.get("reasoning_effort")
    if effort is None:
        return
    if effort == "none":
        out["thinking"] = {"type": "disabled"}
    elif effort in _THINKING_BUDGET:
        out["thinking"] = {"type": "enabled", "token_budget": _THINKING_BUDGET[effort]}
    else:
        raise InvalidRequestError(
            "'reasoning_effort' must be none, minimal, low, medium or high",
            param="reasoning_effort",
        )


def cohere_embed_request(
    body: dict[str, Any], model: str, target: Target, *, default_input_type: str
) -> dict[str, Any]:
    """``/v2/embed``: texts, input_type (search_document unless told), embedding_types."""
    for name in body:
        if name not in _EMBED_FIELDS:
            target.unsupported(name)
    input_type = body.get("input_type") or default_input_type
    out: dict[str, Any] = {
        "model": model,
        "texts": text_inputs(body.get("input")),
        "input_type": input_type,
        "embedding_types": ["base64" if body.get("encoding_format") == "base64" else "float"],
    }
    if body.get("dimensions") is not None:
        out["output_dimension"] = body["dimensions"]
    if body.get("truncate") is not None:
        out["truncate"] = body["truncate"]
    return out


def rerank_document_text(document: Any) -> str:
    """Cohere v2 ranks strings: a ``{"text": …}`` object gives its text, others their JSON."""
    if isinstance(document, str):
        return document
    if isinstance(document, dict) and isinstance(document.get("text"), str) and len(document) == 1:
        return str(document["text"])
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode()


def cohere_rerank_request(body: dict[str, Any], model: str, *, version: int = 2) -> dict[str, Any]:
    """``/v2/rerank`` (documents as strings) or ``/v1/rerank`` (documents as given)."""
    documents = body["documents"]
    out: dict[str, Any] = {"model": model, "query": body["query"]}
    if version == 2:
        out["documents"] = [rerank_document_text(d) for d in documents]
    else:
        out["documents"] = documents
        if body.get("return_documents") is not None:
            out["return_documents"] = body["return_documents"]
        if body.get("rank_fields") is not None:
            out["rank_fields"] = body["rank_fields"]
    if body.get("top_n") is not None:
        out["top_n"] = body["top_n"]
    extra = "max_tokens_per_doc" if version == 2 else "max_chunks_per_doc"
    if body.get(extra) is not None:
        out[extra] = body[extra]
    return out
