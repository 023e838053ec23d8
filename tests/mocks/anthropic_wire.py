"""Pure builders for Anthropic Messages API payloads, used by ``anthropic_upstream``.

Nothing here does I/O. ``validate_messages`` (``anthropic_validation``) rejects what the
real API rejects with a ``WireError``; ``plan_message`` decides the answer;
``message_object`` and ``stream_events`` shape it exactly like the real API.

Token accounting is deterministic (``openai_wire.count_tokens``: a token is a run of up
to 8 non-space characters): input = text of system, messages (tool inputs and results
included) and tools (their JSON), +85 per image or document. With ``cache_control``
anywhere, the prefix up to the last marked block (tools → system → messages, Anthropic's
order) is written to the cache the first time it is seen and read from it afterwards.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .anthropic_validation import WireError, validate_messages
from .openai_wire import count_tokens, split_pieces

__all__ = ["WireError", "validate_messages"]

JSON = dict[str, Any]
IMAGE_TOKENS = 85
DEFAULT_REPLY = "Hello from the mock Anthropic upstream."
THINKING_TEXT = "Let me think step by step about this request."
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(24))


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# Token accounting


def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return count_tokens(block)
    if not isinstance(block, dict):
        return 0
    kind = block.get("type")
    if kind == "text":
        return count_tokens(str(block.get("text", "")))
    if kind in ("image", "document"):
        return IMAGE_TOKENS
    if kind == "tool_use":
        return count_tokens(block.get("name", "") + " " + dumps(block.get("input", {})))
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return sum(_block_tokens(b) for b in content)
        return count_tokens(str(content or ""))
    if kind == "thinking":
        return count_tokens(str(block.get("thinking", "")))
    return count_tokens(dumps(block))


def segments(body: JSON) -> list[tuple[JSON | str, int]]:
    """The prompt in cache order (tools, system, messages), each part with its tokens."""
    out: list[tuple[JSON | str, int]] = []
    for tool in body.get("tools") or []:
        out.append(
            (tool, count_tokens(dumps({k: v for k, v in tool.items() if k != "cache_control"})))
        )
    system = body.get("system")
    if isinstance(system, str):
        out.append((system, count_tokens(system)))
    elif isinstance(system, list):
        out.extend((block, _block_tokens(block)) for block in system)
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            out.append((content, count_tokens(content)))
        elif isinstance(content, list):
            out.extend((block, _block_tokens(block)) for block in content)
    return out


@dataclass
class PromptUsage:
    input_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


def prompt_usage(body: JSON, cache: set[str] | None) -> PromptUsage:
    """Input tokens split into uncached / cache write / cache read; ``cache`` is updated."""
    parts = segments(body)
    total = sum(tokens for _, tokens in parts)
    marked = [
        i
        for i, (part, _) in enumerate(parts)
        if isinstance(part, dict) and part.get("cache_control")
    ]
    if cache is None or not marked:
        return PromptUsage(total)
    end = marked[-1] + 1
    prefix_tokens = sum(tokens for _, tokens in parts[:end])
    key = hashlib.sha256(
        dumps([_without_cache_control(p) for p, _ in parts[:end]]).encode()
    ).hexdigest()
    if key in cache:
        return PromptUsage(total - prefix_tokens, cache_read_input_tokens=prefix_tokens)
    cache.add(key)
    return PromptUsage(total - prefix_tokens, cache_creation_input_tokens=prefix_tokens)


def _without_cache_control(part: Any) -> Any:
    if isinstance(part, dict):
        return {k: v for k, v in part.items() if k != "cache_control"}
    return part


# ---------------------------------------------------------------------------------------------
# Planning the answer


@dataclass
class Plan:
    id: str
    model: str
    blocks: list[JSON] = field(default_factory=list)
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    usage: PromptUsage = field(default_factory=lambda: PromptUsage(0))
    output_tokens: int = 0


def sample_input(schema: Any) -> Any:
    """A deterministic value matching a JSON schema (what the mock 'model' passes to a tool)."""
    if not isinstance(schema, dict):
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {
            name: sample_input(sub) if isinstance(sub, dict) and sub else f"sample {name}"
            for name, sub in props.items()
        }
    if kind == "array":
        return [sample_input(schema.get("items") or {"type": "string"})]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return 'sample "text" with unicode é and a newline\n'


def _last_user_text(body: JSON) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [
            b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
        ]
        return " ".join(texts)
    return ""


def _answers_tool_result(body: JSON) -> bool:
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    content = last.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


def plan_message(
    body: JSON, *, reply: str | None, cache: set[str] | None, text_override: str | None = None
) -> Plan:
    plan = Plan(id=new_id("msg_01"), model=str(body["model"]))
    plan.usage = prompt_usage(body, cache)
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        signature = "sig_" + hashlib.sha256(THINKING_TEXT.encode()).hexdigest()[:32]
        plan.blocks.append({"type": "thinking", "thinking": THINKING_TEXT, "signature": signature})
    tools = [t for t in body.get("tools") or [] if "input_schema" in t]
    choice = body.get("tool_choice") or {"type": "auto"}
    forced = choice.get("type") in ("any", "tool")
    if tools and choice.get("type") != "none" and (forced or not _answers_tool_result(body)):
        tool = tools[0]
        if choice.get("type") == "tool":
            tool = next(t for t in tools if t["name"] == choice["name"])
        if not forced:  # a forced tool use comes without words before it
            plan.blocks.append({"type": "text", "text": "I'll use a tool for that."})
        plan.blocks.append(
            {
                "type": "tool_use",
                "id": new_id("toolu_01"),
                "name": tool["name"],
                "input": sample_input(tool["input_schema"]),
            }
        )
        plan.stop_reason = "tool_use"
    else:
        text = (
            text_override
            or reply
            or (f"{DEFAULT_REPLY} You said: {_last_user_text(body)[:60]}".rstrip())
        )
        text = _apply_stops(plan, text, body.get("stop_sequences") or [])
        text = _apply_max_tokens(plan, text, int(body.get("max_tokens") or 1 << 30))
        plan.blocks.append({"type": "text", "text": text})
    plan.output_tokens = sum(_block_tokens(b) for b in plan.blocks)
    return plan


def _apply_stops(plan: Plan, text: str, stops: list[str]) -> str:
    cut = [(text.find(s), s) for s in stops if s in text]
    if not cut:
        return text
    position, stop = min(cut)
    plan.stop_reason, plan.stop_sequence = "stop_sequence", stop
    return text[:position] or "."


def _apply_max_tokens(plan: Plan, text: str, max_tokens: int) -> str:
    pieces = split_pieces(text)
    if len(pieces) <= max_tokens:
        return text
    plan.stop_reason = "max_tokens"
    return "".join(pieces[:max_tokens])


# ---------------------------------------------------------------------------------------------
# Shaping


def usage_object(plan: Plan, *, output_tokens: int | None = None) -> JSON:
    return {
        "input_tokens": plan.usage.input_tokens,
        "cache_creation_input_tokens": plan.usage.cache_creation_input_tokens,
        "cache_read_input_tokens": plan.usage.cache_read_input_tokens,
        "output_tokens": plan.output_tokens if output_tokens is None else output_tokens,
        "service_tier": "standard",
    }


def message_object(plan: Plan) -> JSON:
    return {
        "id": plan.id,
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": plan.blocks,
        "stop_reason": plan.stop_reason,
        "stop_sequence": plan.stop_sequence,
        "usage": usage_object(plan),
    }


def _fragments(text: str, size: int = 7) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def stream_events(
    plan: Plan, text_override_pieces: list[str] | None = None
) -> Iterator[tuple[str, JSON]]:
    """(event name, data) pairs of the SSE stream for a plan, as the real API sends them."""
    start = {**message_object(plan), "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = usage_object(plan, output_tokens=1)
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(plan.blocks):
        kind = block["type"]
        if kind == "text":
            opening: JSON = {"type": "text", "text": ""}
        elif kind == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
        else:
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        yield (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": opening},
        )
        if index == 0:
            yield "ping", {"type": "ping"}
        for delta in _deltas(block, text_override_pieces if kind == "text" else None):
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": plan.stop_reason, "stop_sequence": plan.stop_sequence},
            "usage": {"output_tokens": plan.output_tokens},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def _deltas(block: JSON, pieces: list[str] | None) -> Iterator[JSON]:
    kind = block["type"]
    if kind == "text":
        for piece in pieces or split_pieces(block["text"]):
            yield {"type": "text_delta", "text": piece}
    elif kind == "thinking":
        for piece in split_pieces(block["thinking"]):
            yield {"type": "thinking_delta", "thinking": piece}
        yield {"type": "signature_delta", "signature": block["signature"]}
    else:
        yield {"type": "input_json_delta", "partial_json": ""}  # the real API opens with one
        for fragment in _fragments(dumps(block["input"])):
            yield {"type": "input_json_delta", "partial_json": fragment}


def encode_event(name: str, data: JSON) -> bytes:
    return f"event: {name}\ndata: {dumps(data)}\n\n".encode()


def error_body(error_type: str, message: str) -> JSON:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": new_id("req_011"),
    }
