"""What the mock Anthropic upstream refuses, as the real Messages API does (400s).

Unknown top-level fields, tool results that answer no tool use of the previous turn (or
leave one unanswered), results after other content, empty text blocks, bad image
sources, tool schemas that are not objects, a ``tool_choice`` naming no tool, a thinking
budget under 1024 or not below ``max_tokens``. ``count_tokens`` bodies have their own
field list (no ``max_tokens``, ``stream``, sampling…).
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

MESSAGES_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
        "output_format",
        "output_config",
    }
)
COUNT_TOKENS_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "mcp_servers",
        "context_management",
        "output_format",
        "output_config",
    }
)
BLOCK_TYPES = frozenset(
    {
        "text",
        "image",
        "document",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "web_search_tool_result",
        "search_result",
    }
)


class WireError(Exception):
    """A request the real API rejects with 400 invalid_request_error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def validate_messages(body: Any, *, count_only: bool = False) -> None:
    if not isinstance(body, dict):
        raise WireError("The request body is not valid JSON.")
    allowed = COUNT_TOKENS_FIELDS if count_only else MESSAGES_FIELDS
    for name in body:
        if name not in allowed:
            raise WireError(f"{name}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise WireError("model: Field required")
    max_tokens = body.get("max_tokens")
    if not count_only and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool)):
        raise WireError("max_tokens: Field required")
    if not count_only and max_tokens < 1:
        raise WireError("max_tokens: Input should be greater than or equal to 1")
    _validate_system(body.get("system"))
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise WireError("messages: at least one message is required")
    previous_tool_ids: set[str] = set()
    for index, message in enumerate(messages):
        previous_tool_ids = _validate_message(message, index, previous_tool_ids)
    temperature = body.get("temperature")
    if temperature is not None and not (0 <= temperature <= 1):
        raise WireError("temperature: Input should be less than or equal to 1")
    stop = body.get("stop_sequences")
    if stop is not None and (
        not isinstance(stop, list) or not all(isinstance(s, str) and s.strip() for s in stop)
    ):
        raise WireError("stop_sequences: each stop sequence must be a non-whitespace string")
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or set(metadata) - {"user_id"}):
        raise WireError("metadata: only user_id is permitted")
    tools = _validate_tools(body.get("tools"))
    _validate_tool_choice(body.get("tool_choice"), tools)
    _validate_thinking(body.get("thinking"), None if count_only else max_tokens)


def _validate_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise WireError("system: Input should be a valid string or list of text blocks")
    for index, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise WireError(f"system.{index}: Input tag does not match the expected tag 'text'")
        if not isinstance(block.get("text"), str) or not block["text"]:
            raise WireError(f"system.{index}.text: text content blocks must be non-empty")


def _validate_message(message: Any, index: int, open_tool_ids: set[str]) -> set[str]:
    """Checks one message; returns the tool_use ids it opens (to be answered next)."""
    where = f"messages.{index}"
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        raise WireError(f"{where}.role: Input should be 'user' or 'assistant'")
    extra = set(message) - {"role", "content"}
    if extra:
        raise WireError(f"{where}.{sorted(extra)[0]}: Extra inputs are not permitted")
    content = message.get("content")
    blocks: list[Any]
    if isinstance(content, str):
        blocks = []
    elif isinstance(content, list):
        blocks = content
    else:
        raise WireError(f"{where}.content: Input should be a valid string or list")
    results: list[str] = []
    opened: set[str] = set()
    seen_other = False
    for number, block in enumerate(blocks):
        bwhere = f"{where}.content.{number}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            raise WireError(f"{bwhere}.type: Input tag {kind!r} does not match any expected tag")
        if kind == "text" and (not isinstance(block.get("text"), str) or not block["text"]):
            raise WireError(f"{bwhere}.text: text content blocks must be non-empty")
        if kind == "image":
            _validate_source(block.get("source"), bwhere, document=False)
        if kind == "document":
            _validate_source(block.get("source"), bwhere, document=True)
        if kind == "tool_use":
            if message["role"] != "assistant":
                raise WireError(f"{bwhere}: tool_use blocks may only appear in assistant turns")
            if not isinstance(block.get("input"), dict) or not isinstance(block.get("id"), str):
                raise WireError(f"{bwhere}.input: Input should be a valid dictionary")
            opened.add(block["id"])
        if kind == "tool_result":
            if message["role"] != "user":
                raise WireError(f"{bwhere}: tool_result blocks may only appear in user turns")
            if seen_other:
                raise WireError(f"{where}: tool_result blocks must come before any other content")
            results.append(str(block.get("tool_use_id")))
        else:
            seen_other = True
    unknown = [r for r in results if r not in open_tool_ids]
    if unknown:
        raise WireError(
            f"{where}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
            f"{unknown[0]}. Each `tool_result` block must have a corresponding `tool_use` "
            "block in the previous message."
        )
    if open_tool_ids and set(results) != open_tool_ids:
        missing = sorted(open_tool_ids - set(results))
        raise WireError(
            f"{where}: `tool_use` ids were found without `tool_result` blocks immediately "
            f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
            "`tool_result` block in the next message."
        )
    return opened


def _validate_source(source: Any, where: str, *, document: bool) -> None:
    if not isinstance(source, dict):
        raise WireError(f"{where}.source: Field required")
    kind = source.get("type")
    if kind == "base64":
        media = source.get("media_type")
        allowed = (
            ("application/pdf",)
            if document
            else ("image/jpeg", "image/png", "image/gif", "image/webp")
        )
        if media not in allowed or not isinstance(source.get("data"), str):
            raise WireError(f"{where}.source.media_type: Input should be one of {allowed}")
    elif kind == "url":
        if not str(source.get("url", "")).startswith(("http://", "https://")):
            raise WireError(f"{where}.source.url: must be an http(s) URL")
    elif not (document and kind in ("text", "content")):
        raise WireError(f"{where}.source.type: unknown source type {kind!r}")


def _validate_tools(tools: Any) -> dict[str, JSON]:
    if tools is None:
        return {}
    if not isinstance(tools, list):
        raise WireError("tools: Input should be a valid list")
    out: dict[str, JSON] = {}
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise WireError(f"tools.{index}.name: Field required")
        if "type" in tool and tool["type"] != "custom":
            out[tool["name"]] = tool  # a server or client tool with its own schema
            continue
        extra = set(tool) - {"name", "description", "input_schema", "cache_control", "type"}
        if extra:
            raise WireError(f"tools.{index}.{sorted(extra)[0]}: Extra inputs are not permitted")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise WireError(f"tools.{index}.input_schema.type: Input should be 'object'")
        out[tool["name"]] = tool
    return out


def _validate_tool_choice(choice: Any, tools: dict[str, JSON]) -> None:
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in ("auto", "any", "tool", "none"):
        raise WireError("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if kind == "tool" and choice.get("name") not in tools:
        raise WireError(f"tool_choice.name: no tool named {choice.get('name')!r}")


def _validate_thinking(thinking: Any, max_tokens: int | None) -> None:
    if thinking is None:
        return
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind in ("disabled", "adaptive"):
        return
    if kind != "enabled":
        raise WireError("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        raise WireError(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        )
    if max_tokens is not None and budget >= max_tokens:
        raise WireError("`max_tokens` must be greater than `thinking.budget_tokens`")
