"""``/v1/messages/count_tokens`` bodies: the checks they need, and a local estimate. Pure.

When the deployment's provider cannot count (only Anthropic's API can count
exactly for Claude), the gateway estimates offline, with no tokenizer download:

- text (system, message text, thinking, tool-use names and JSON inputs, tool
  results, tool definitions as JSON) at ``CHARS_PER_TOKEN`` characters a token,
  rounded up, per piece;
- ``MESSAGE_OVERHEAD`` tokens per message for the role and turn markers;
- ``IMAGE_TOKENS`` per image and per base64 document (Anthropic bills an image at
  about width * height / 750 tokens, at most ~1,600 before it is scaled down);
- ``TOOLS_OVERHEAD`` once when tools are given (the tool-use system prompt
  Anthropic documents, 346 tokens for ``auto``).

The estimate tends to run high for English prose and code (about 3.5 characters
per token in practice), which is the safe side for a client budgeting a context window.
"""

from __future__ import annotations

from typing import Any

import orjson

from bastion.core.errors import InvalidRequestError
from bastion.dialects.anthropic_validate import validate_model_and_messages

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 3
IMAGE_TOKENS = 1600
TOOLS_OVERHEAD = 346


def validate_count_tokens_request(body: dict[str, Any]) -> None:
    """Raises InvalidRequestError naming the field (``max_tokens`` is not needed here)."""
    validate_model_and_messages(body)
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise InvalidRequestError("tools: must be a list of tool definitions", param="tools")


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """A rough count of the input tokens of a Messages body (see the module docstring)."""
    total = _content_tokens(body.get("system"))
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            total += MESSAGE_OVERHEAD + _content_tokens(message.get("content"))
    tools = body.get("tools")
    if tools:
        total += TOOLS_OVERHEAD + sum(_json_tokens(tool) for tool in tools)
    return max(total, 1)


def _text_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def _json_tokens(value: Any) -> int:
    return _text_tokens(orjson.dumps(value).decode())


def _content_tokens(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return _text_tokens(content)
    if not isinstance(content, list):
        return _json_tokens(content)
    return sum(_block_tokens(block) for block in content)


def _block_tokens(block: Any) -> int:
    if not isinstance(block, dict):
        return _content_tokens(block)
    kind = block.get("type")
    if kind == "text":
        return _text_tokens(str(block.get("text", "")))
    if kind == "image":
        return IMAGE_TOKENS
    if kind == "document":
        source = block.get("source")
        if isinstance(source, dict) and source.get("type") == "text":
            return _text_tokens(str(source.get("data", "")))
        if isinstance(source, dict) and source.get("type") == "content":
            return _content_tokens(source.get("content"))
        return IMAGE_TOKENS
    if kind == "thinking":
        return _text_tokens(str(block.get("thinking", "")))
    if kind == "tool_use":
        return _text_tokens(str(block.get("name", ""))) + _json_tokens(block.get("input", {}))
    if kind == "tool_result":
        return _content_tokens(block.get("content"))
    return _json_tokens(block)
