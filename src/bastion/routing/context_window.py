"""``enable_pre_call_checks``: will the prompt fit the deployment's context window? Pure.

The prompt is estimated offline, with no tokenizer: text at ``CHARS_PER_TOKEN``
characters a token plus a few tokens per message, images at a flat count (the
same rules as ``dialects/anthropic_tokens.py``). The estimate runs high for
English, which is the safe side: a deployment is skipped only when the estimate is
over its limit.

A deployment's limit is ``model_info.max_input_tokens``, else
``model_info.max_tokens`` (LiteLLM reads both), else the price table's context
window for the model when it has one; with none of these it is never skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from bastion.core.deployment import Deployment

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 3
IMAGE_TOKENS = 1600


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """A rough input token count for a chat, Messages, completion or embedding body."""
    total = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                total += MESSAGE_OVERHEAD + _content(message.get("content"))
                calls = message.get("tool_calls")
                if calls:
                    total += _json(calls)
    total += _content(body.get("system"))
    for field in ("prompt", "input"):
        value = body.get(field)
        if value is not None:
            total += _content(value)
    tools = body.get("tools") or body.get("functions")
    if tools:
        total += _json(tools)
    return max(total, 1)


def context_limit(
    deployment: Deployment, table_window: Callable[[Deployment], int | None] | None = None
) -> int | None:
    """The most input tokens the deployment takes, when anything says."""
    info = deployment.model_info
    for name in ("max_input_tokens", "max_tokens"):
        value = info.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return table_window(deployment) if table_window is not None else None


class ContextWindows:
    """Deployment limits; the price table is asked once per model, not per request."""

    def __init__(self, table_window: Callable[[Deployment], int | None] | None = None) -> None:
        self._table_window = table_window
        self._table: dict[tuple[str, str, str], int | None] = {}

    def limit(self, deployment: Deployment) -> int | None:
        return context_limit(deployment, self._cached_table_window)

    def _cached_table_window(self, deployment: Deployment) -> int | None:
        if self._table_window is None:
            return None
        base = deployment.model_info.get("base_model") or deployment.params.get("base_model")
        key = (deployment.provider_name, deployment.upstream_model, str(base or ""))
        if key not in self._table:
            if len(self._table) >= 4096:
                self._table.clear()
            self._table[key] = self._table_window(deployment)
        return self._table[key]


def _text(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def _json(value: Any) -> int:
    try:
        return _text(orjson.dumps(value).decode())
    except TypeError:
        return 0


def _content(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return _text(content)
    if isinstance(content, list):
        return sum(_part(part) for part in content)
    if isinstance(content, (int, float)):
        return 1
    return _json(content)


def _part(part: Any) -> int:
    if isinstance(part, str):
        return _text(part)
    if isinstance(part, int):  # a token id (completion prompt / embedding input)
        return 1
    if isinstance(part, list):  # a list of token ids
        return len(part)
    if not isinstance(part, dict):
        return 0
    kind = part.get("type")
    if kind in ("image_url", "image", "input_image"):
        return IMAGE_TOKENS
    if "text" in part and isinstance(part["text"], str):
        return _text(part["text"])
    if kind in ("tool_result", "tool_use"):
        return _content(part.get("content")) + _json(part.get("input") or {})
    return _json(part)
