"""Bedrock payloads for the mock upstream: request checks, answers and stream events.

Pure functions over JSON. ``check_converse`` / ``check_invoke`` reject what Bedrock
rejects (extraneous keys, turns that do not alternate, malformed blocks, undecodable
image bytes) with ``WireError`` (a ValidationException). Answers are deterministic:
``[<name>] Mock reply to: <last user text>``, a tool call when tools are offered and
the last user turn carries no tool result, and ``[<name>] Tool said: <result>`` after.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

CONVERSE_KEYS = frozenset(
    {
        "messages",
        "system",
        "inferenceConfig",
        "toolConfig",
        "guardrailConfig",
        "additionalModelRequestFields",
        "additionalModelResponseFieldPaths",
        "performanceConfig",
        "promptVariables",
        "requestMetadata",
    }
)
BLOCK_KEYS = frozenset(
    {"text", "image", "document", "toolUse", "toolResult", "cachePoint", "reasoningContent"}
)
INFERENCE_KEYS = frozenset({"maxTokens", "temperature", "topP", "stopSequences"})
IMAGE_MAGIC = {
    "png": b"\x89PNG",
    "jpeg": b"\xff\xd8\xff",
    "gif": b"GIF8",
    "webp": b"RIFF",
}
BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
# Flags only Anthropic's own API knows: Bedrock answers them with "invalid beta flag".
ANTHROPIC_ONLY_BETAS = ("claude-code-", "oauth-", "files-api-", "mcp-client-")


class WireError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Plan:
    """What the mock answers: text and/or one tool call, a stop reason, token counts."""

    text: str
    tool: JSON | None = None  # {"id", "name", "input"}
    stop_reason: str = "end_turn"
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    cache_write: int = 0
    extra: JSON = field(default_factory=dict)


def words(text: str) -> int:
    return max(1, len(text.split()))


# ---------------------------------------------------------------------------------------------
# Converse


def check_converse(body: Any) -> None:
    if not isinstance(body, dict):
        raise WireError("Malformed input request, please reformat your input and try again.")
    for key in body:
        if key not in CONVERSE_KEYS:
            raise WireError(f"Malformed input request: #: extraneous key [{key}] is not permitted")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise WireError("The messages field is required and must not be empty.")
    for index, message in enumerate(messages):
        expected = "user" if index % 2 == 0 else "assistant"
        if message.get("role") != expected:
            raise WireError(
                "A conversation must alternate between user and assistant roles. "
                f"messages.{index}.role should be {expected}."
            )
        content = message.get("content")
        if not isinstance(content, list) or not content:
            raise WireError(f"messages.{index}.content must be a non-empty list")
        for block in content:
            _check_block(block, f"messages.{index}")
    for block in body.get("system") or []:
        if set(block) - {"text", "cachePoint", "guardContent"}:
            raise WireError(f"system block has unknown keys {sorted(block)}")
    inference = body.get("inferenceConfig") or {}
    if set(inference) - INFERENCE_KEYS:
        raise WireError(
            f"inferenceConfig has unknown keys {sorted(set(inference) - INFERENCE_KEYS)}"
        )
    tool_config = body.get("toolConfig")
    if tool_config is not None:
        for tool in tool_config.get("tools") or []:
            spec = tool.get("toolSpec")
            if spec is None and "cachePoint" in tool:
                continue
            if not isinstance(spec, dict) or not spec.get("name"):
                raise WireError("toolSpec.name is required")
            if not isinstance((spec.get("inputSchema") or {}).get("json"), dict):
                raise WireError("toolSpec.inputSchema.json is required")
    uses_tools = any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])
    if uses_tools and not tool_config:
        raise WireError(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )


def _check_block(block: Any, where: str) -> None:
    if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in BLOCK_KEYS:
        raise WireError(f"{where}: a content block must have exactly one known member: {block}")
    if "text" in block and (not isinstance(block["text"], str) or not block["text"].strip()):
        raise WireError(f"{where}: The text field in the ContentBlock object is blank.")
    if "image" in block:
        image = block["image"]
        fmt = image.get("format")
        data = _b64(image.get("source", {}).get("bytes"), where)
        if fmt not in IMAGE_MAGIC or not data.startswith(IMAGE_MAGIC[fmt]):
            raise WireError(f"{where}: the image bytes are not a valid {fmt} image")
    if "toolUse" in block:
        use = block["toolUse"]
        if (
            not use.get("toolUseId")
            or not use.get("name")
            or not isinstance(use.get("input"), dict)
        ):
            raise WireError(f"{where}: toolUse needs toolUseId, name and an input object")
    if "toolResult" in block:
        result = block["toolResult"]
        if not result.get("toolUseId") or not isinstance(result.get("content"), list):
            raise WireError(f"{where}: toolResult needs toolUseId and content")


def _b64(value: Any, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise WireError(f"{where}: image source bytes are not valid base64") from None


def plan_converse(body: JSON, name: str, cache_read: int, cache_write: int) -> Plan:
    messages = body["messages"]
    last = messages[-1]["content"]
    results = [b["toolResult"] for b in last if "toolResult" in b]
    texts = [b["text"] for b in last if "text" in b]
    images = [b["image"] for b in last if "image" in b]
    prompt_words = sum(
        words(b["text"]) for m in messages for b in m["content"] if "text" in b
    ) + sum(words(b["text"]) for b in body.get("system") or [] if "text" in b)
    input_tokens = prompt_words + 85 * sum(
        1 for m in messages for b in m["content"] if "image" in b
    )
    tools = [
        t["toolSpec"] for t in (body.get("toolConfig") or {}).get("tools", []) if "toolSpec" in t
    ]
    if results:
        said = " ".join(c.get("text", json.dumps(c.get("json"))) for c in results[0]["content"])
        text = f"[{name}] Tool said: {said}"
    else:
        text = f"[{name}] Mock reply to: {' '.join(texts)}"
        if images:
            sizes = ", ".join(
                f"{i['format']} {len(base64.b64decode(i['source']['bytes']))} bytes" for i in images
            )
            text += f" (images: {sizes})"
    plan = Plan(text, input_tokens=input_tokens, cache_read=cache_read, cache_write=cache_write)
    choice = (body.get("toolConfig") or {}).get("toolChoice") or {}
    if tools and not results:
        spec = tools[0]
        if "tool" in choice:
            spec = next(t for t in tools if t["name"] == choice["tool"]["name"])
        plan.text = "Let me check." if "any" not in choice and "tool" not in choice else ""
        plan.tool = {
            "id": "tooluse_" + secrets.token_hex(8),
            "name": spec["name"],
            "input": tool_input(spec["inputSchema"]["json"]),
        }
        plan.stop_reason = "tool_use"
    max_tokens = (body.get("inferenceConfig") or {}).get("maxTokens")
    out_words = plan.text.split()
    if max_tokens is not None and len(out_words) > max_tokens and plan.tool is None:
        plan.text = " ".join(out_words[:max_tokens])
        plan.stop_reason = "max_tokens"
    plan.output_tokens = words(plan.text) + (10 if plan.tool else 0)
    return plan


def tool_input(schema: JSON) -> JSON:
    """Arguments for a tool call that fit its schema (strings, numbers, booleans)."""
    out: JSON = {}
    properties = schema.get("properties") or {}
    for key in schema.get("required") or list(properties)[:1]:
        kind = (properties.get(key) or {}).get("type")
        if key == "city":
            out[key] = "Paris"
        elif kind in ("number", "integer"):
            out[key] = 1
        elif kind == "boolean":
            out[key] = True
        else:
            out[key] = "test"
    return out


def converse_usage(plan: Plan) -> JSON:
    usage = {
        "inputTokens": plan.input_tokens,
        "outputTokens": plan.output_tokens,
        "totalTokens": plan.input_tokens + plan.output_tokens + plan.cache_read + plan.cache_write,
    }
    if plan.cache_read or plan.cache_write:
        usage["cacheReadInputTokens"] = plan.cache_read
        usage["cacheWriteInputTokens"] = plan.cache_write
    return usage


def converse_response(plan: Plan) -> JSON:
    content: list[JSON] = []
    if plan.text:
        content.append({"text": plan.text})
    if plan.tool:
        content.append(
            {
                "toolUse": {
                    "toolUseId": plan.tool["id"],
                    "name": plan.tool["name"],
                    "input": plan.tool["input"],
                }
            }
        )
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": plan.stop_reason,
        "usage": converse_usage(plan),
        "metrics": {"latencyMs": 42},
    }


def pieces(text: str) -> list[str]:
    """Text in stream-sized pieces: each word with the space before it."""
    parts = text.split(" ")
    return [parts[0]] + [" " + p for p in parts[1:]] if text else []


def fragments(data: str, size: int = 7) -> list[str]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def converse_events(plan: Plan) -> list[tuple[str, JSON]]:
    events: list[tuple[str, JSON]] = [("messageStart", {"role": "assistant"})]
    index = 0
    if plan.text:
        for piece in pieces(plan.text):
            events.append(("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}))
        events.append(("contentBlockStop", {"contentBlockIndex": 0}))
        index = 1
    if plan.tool:
        start = {"toolUse": {"toolUseId": plan.tool["id"], "name": plan.tool["name"]}}
        events.append(("contentBlockStart", {"contentBlockIndex": index, "start": start}))
        for fragment in fragments(json.dumps(plan.tool["input"])):
            delta = {"toolUse": {"input": fragment}}
            events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
    events.append(("messageStop", {"stopReason": plan.stop_reason}))
    events.append(("metadata", {"usage": converse_usage(plan), "metrics": {"latencyMs": 42}}))
    return events


# ---------------------------------------------------------------------------------------------
# InvokeModel with an Anthropic Messages body


def check_invoke(body: Any) -> None:
    if not isinstance(body, dict):
        raise WireError("Malformed input request, please reformat your input and try again.")
    for key in ("model", "stream"):
        if key in body:
            raise WireError(f"Malformed input request: #: extraneous key [{key}] is not permitted")
    if body.get("anthropic_version") != BEDROCK_ANTHROPIC_VERSION:
        raise WireError("Malformed input request: #: required key [anthropic_version] not found")
    if not isinstance(body.get("max_tokens"), int):
        raise WireError("Malformed input request: #: required key [max_tokens] not found")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise WireError("Malformed input request: #: required key [messages] not found")
    betas = body.get("anthropic_beta")
    if betas is not None and (
        not isinstance(betas, list) or not all(isinstance(b, str) for b in betas)
    ):
        raise WireError("Malformed input request: anthropic_beta must be a list of strings")
    for beta in betas or []:
        if beta.startswith(ANTHROPIC_ONLY_BETAS):
            raise WireError("invalid beta flag")


def count_tokens_body(body: JSON) -> JSON:
    """The InvokeModel body inside a CountTokens request (``input.invokeModel.body``)."""
    try:
        raw = body["input"]["invokeModel"]["body"]
        return dict(json.loads(base64.b64decode(raw, validate=True)))
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise WireError("input.invokeModel.body must be a base64 InvokeModel body") from None


def plan_invoke(body: JSON, name: str, cache_read: int, cache_write: int) -> Plan:
    last = body["messages"][-1].get("content")
    blocks = [{"type": "text", "text": last}] if isinstance(last, str) else list(last or [])
    results = [b for b in blocks if b.get("type") == "tool_result"]
    texts = [b.get("text", "") for b in blocks if b.get("type") == "text"]
    prompt_words = sum(
        words(m["content"]) if isinstance(m.get("content"), str) else 3 for m in body["messages"]
    )
    plan = Plan(
        f"[{name}] Mock reply to: {' '.join(texts)}",
        input_tokens=prompt_words,
        cache_read=cache_read,
        cache_write=cache_write,
    )
    if results:
        content = results[0].get("content")
        said = content if isinstance(content, str) else " ".join(c.get("text", "") for c in content)
        plan.text = f"[{name}] Tool said: {said}"
    elif body.get("tools"):
        tool = body["tools"][0]
        plan.text = "Let me check."
        plan.tool = {
            "id": "toolu_bdrk_" + secrets.token_hex(8),
            "name": tool["name"],
            "input": tool_input(tool.get("input_schema") or {}),
        }
        plan.stop_reason = "tool_use"
    plan.output_tokens = words(plan.text) + (10 if plan.tool else 0)
    return plan


def anthropic_usage(plan: Plan) -> JSON:
    return {
        "input_tokens": plan.input_tokens,
        "cache_creation_input_tokens": plan.cache_write,
        "cache_read_input_tokens": plan.cache_read,
        "output_tokens": plan.output_tokens,
    }


def anthropic_message(plan: Plan, model: str, message_id: str) -> JSON:
    content: list[JSON] = []
    if plan.text:
        content.append({"type": "text", "text": plan.text})
    if plan.tool:
        content.append(
            {
                "type": "tool_use",
                "id": plan.tool["id"],
                "name": plan.tool["name"],
                "input": plan.tool["input"],
            }
        )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": plan.stop_reason,
        "stop_sequence": None,
        "usage": anthropic_usage(plan),
    }


def anthropic_events(plan: Plan, model: str, message_id: str) -> list[JSON]:
    start = anthropic_message(plan, model, message_id)
    start.update(content=[], stop_reason=None)
    start["usage"] = {**anthropic_usage(plan), "output_tokens": 1}
    events: list[JSON] = [{"type": "message_start", "message": start}]
    index = 0
    if plan.text:
        events.append(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        )
        events.append({"type": "ping"})
        for piece in pieces(plan.text):
            delta = {"type": "text_delta", "text": piece}
            events.append({"type": "content_block_delta", "index": 0, "delta": delta})
        events.append({"type": "content_block_stop", "index": 0})
        index = 1
    if plan.tool:
        block = {"type": "tool_use", "id": plan.tool["id"], "name": plan.tool["name"], "input": {}}
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        for fragment in fragments(json.dumps(plan.tool["input"])):
            delta = {"type": "input_json_delta", "partial_json": fragment}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": plan.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": plan.output_tokens},
        }
    )
    metrics = {
        "inputTokenCount": plan.input_tokens,
        "outputTokenCount": plan.output_tokens,
        "invocationLatency": 42,
        "firstByteLatency": 7,
    }
    events.append({"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics})
    return events
