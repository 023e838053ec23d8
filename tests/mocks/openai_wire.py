"""Pure builders for OpenAI / Azure OpenAI wire payloads, used by ``openai_upstream``.

Nothing here does I/O. Every function takes a parsed request body (``dict``) and returns
JSON-ready dicts shaped exactly like OpenAI's responses.

Token accounting is deterministic: a "token" is a run of up to 8 non-space characters
together with the whitespace before it (see ``split_pieces``). So ``"Mock reply to: hi"``
is 4 tokens, and a streamed text completion emits exactly one content chunk per token.
``prompt_tokens`` = tokens of all text parts of all messages (+85 per image part);
token-array prompts count one token per array element.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import secrets
import string
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

IMAGE_TOKENS = 85
_ALNUM = string.ascii_letters + string.digits
_PIECE_RE = re.compile(r"\s*\S{1,8}|\s+")


class WireError(Exception):
    """A request the real API would reject with 400 invalid_request_error."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def new_id(prefix: str, length: int = 29) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def dumps(obj: Any) -> str:
    """Compact JSON, the way OpenAI serialises SSE chunks."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def split_pieces(text: str) -> list[str]:
    """Split text into stream pieces ("tokens"); ``"".join(split_pieces(t)) == t``."""
    return _PIECE_RE.findall(text)


def count_tokens(text: str) -> int:
    return len(split_pieces(text))


def fingerprint(name: str) -> str:
    return "fp_" + hashlib.sha256(name.encode()).hexdigest()[:10]


# ---------------------------------------------------------------------------------------------
# Request inspection


def content_text(content: Any) -> tuple[str, int]:
    """Text of a message ``content`` (string or list of parts) and its number of image parts."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    if isinstance(content, list):
        texts: list[str] = []
        images = 0
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                ptype = part.get("type")
                if ptype in ("text", "input_text") and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif ptype in ("image_url", "input_image", "input_audio", "file"):
                    images += 1
                elif ptype is None:
                    raise WireError("Missing required parameter: 'messages[].content[].type'.")
            else:
                raise WireError("Invalid type for 'messages[].content[]'.", "messages")
        return " ".join(texts), images
    raise WireError("Invalid type for 'messages[].content'.", "messages")


def require_model(body: JSON) -> None:
    model = body.get("model")
    if model is None:
        raise WireError("you must provide a model parameter", "model")
    if not isinstance(model, str) or not model:
        raise WireError(f"Invalid type for 'model': expected a string, got {model!r}.", "model")


def validate_chat(body: JSON) -> list[JSON]:
    require_model(body)
    messages = body.get("messages")
    if messages is None:
        raise WireError(
            "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
        )
    if not isinstance(messages, list) or not messages:
        raise WireError(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            "messages",
            "empty_array",
        )
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg:
            raise WireError(
                f"Missing required parameter: 'messages[{i}].role'.",
                f"messages[{i}].role",
                "missing_required_parameter",
            )
        content_text(msg.get("content"))
    n = body.get("n", 1)
    if n is not None and (not isinstance(n, int) or n < 1 or n > 128):
        raise WireError(f"Invalid 'n': {n!r}. Expected a value between 1 and 128.", "n")
    return messages


def prompt_tokens_of_messages(messages: Sequence[JSON]) -> int:
    total = 0
    for msg in messages:
        text, images = content_text(msg.get("content"))
        total += count_tokens(text) + IMAGE_TOKENS * images
        for call in msg.get("tool_calls") or []:
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                total += count_tokens(str(call["function"].get("arguments", "")))
    return total


def last_text(messages: Sequence[JSON], role: str = "user") -> str:
    for msg in reversed(messages):
        if msg.get("role") == role:
            return content_text(msg.get("content"))[0]
    return ""


def _tool_name(tool: Any) -> str | None:
    if not isinstance(tool, dict):
        return None
    fn = tool.get("function")
    if isinstance(fn, dict) and isinstance(fn.get("name"), str):
        return str(fn["name"])
    name = tool.get("name")
    return name if isinstance(name, str) else None


def example_from_schema(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """A deterministic value that validates against a (simple) JSON schema."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 8:
        return "mock"
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/") and isinstance(root, dict):
        target: Any = root
        for key in ref[2:].split("/"):
            target = target.get(key, {}) if isinstance(target, dict) else {}
        return example_from_schema(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return example_from_schema((non_null or options)[0], root, depth + 1)
    stype = schema.get("type")
    if isinstance(stype, list):
        stype = next((t for t in stype if t != "null"), "null")
    if stype == "object" or (stype is None and "properties" in schema):
        props = schema.get("properties") or {}
        return {k: example_from_schema(v, root, depth + 1) for k, v in props.items()}
    if stype == "array":
        items = schema.get("items")
        return [example_from_schema(items, root, depth + 1)] if isinstance(items, dict) else []
    if stype == "integer":
        return 1
    if stype == "number":
        return 1.5
    if stype == "boolean":
        return True
    if stype == "null":
        return None
    return "mock"


def empty_usage_details() -> tuple[JSON, JSON]:
    return (
        {"cached_tokens": 0, "audio_tokens": 0},
        {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    )


def chat_usage(prompt: int, completion: int) -> JSON:
    prompt_details, completion_details = empty_usage_details()
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": completion_details,
    }


# ---------------------------------------------------------------------------------------------
# Chat completions


@dataclass
class ToolCallPlan:
    id: str
    name: str
    arguments: str


@dataclass
class ChatPlan:
    """What the mock model "decided" to answer: text or one tool call per choice."""

    model: str
    n: int
    content: str | None
    tool_calls: list[ToolCallPlan] = field(default_factory=list)  # one per choice
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _truncate(text: str, limit: Any) -> tuple[str, bool]:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        return text, False
    pieces = split_pieces(text)
    if len(pieces) <= limit:
        return text, False
    return "".join(pieces[:limit]), True


def plan_chat(
    body: JSON, *, model: str, reply: str | None, name: str | None, content_override: str | None
) -> ChatPlan:
    messages = validate_chat(body)
    n = int(body.get("n") or 1)
    prompt_tokens = prompt_tokens_of_messages(messages)
    tools = body.get("tools") or []
    tool_choice = body.get("tool_choice", "auto")
    forced = _tool_name(tool_choice) if isinstance(tool_choice, dict) else None
    last_role = messages[-1].get("role") if messages else None
    wants_tool = (
        content_override is None
        and isinstance(tools, list)
        and bool(tools)
        and tool_choice != "none"
        # After a tool result, answer in text unless a tool call is forced (ends agent loops).
        and (
            last_role not in ("tool", "function") or forced is not None or tool_choice == "required"
        )
    )
    if wants_tool:
        tool = next((t for t in tools if _tool_name(t) == forced), tools[0]) if forced else tools[0]
        tool_name = forced or _tool_name(tool) or "function"
        fn = tool.get("function", tool) if isinstance(tool, dict) else {}
        params = fn.get("parameters") if isinstance(fn, dict) else None
        args = example_from_schema(params) if isinstance(params, dict) else {}
        arguments = dumps(args if isinstance(args, dict) else {"value": args})
        calls = [ToolCallPlan(new_id("call_", 24), tool_name, arguments) for _ in range(n)]
        return ChatPlan(
            model=model,
            n=n,
            content=None,
            tool_calls=calls,
            finish_reason="tool_calls",
            prompt_tokens=prompt_tokens,
            completion_tokens=n * (count_tokens(arguments) + 1),
        )

    if content_override is not None:
        text = content_override
    elif reply is not None:
        text = reply
    elif last_role in ("tool", "function"):
        text = f"Mock reply to tool result: {last_text(messages, str(last_role))}"
    else:
        text = f"Mock reply to: {last_text(messages)}"
        if name:
            text = f"[{name}] {text}"
    finish = "stop"
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        text = dumps({"reply": text})
    elif isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        text = dumps(example_from_schema(schema) if isinstance(schema, dict) else {})
    else:
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        text, truncated = _truncate(text, limit)
        if truncated:
            finish = "length"
    return ChatPlan(
        model=model,
        n=n,
        content=text,
        finish_reason=finish,
        prompt_tokens=prompt_tokens,
        completion_tokens=n * count_tokens(text),
    )


def content_filter_results() -> JSON:
    safe = {"filtered": False, "severity": "safe"}
    return {"hate": safe, "self_harm": safe, "sexual": safe, "violence": safe}


def prompt_filter_results() -> list[JSON]:
    return [{"prompt_index": 0, "content_filter_results": content_filter_results()}]


def chat_completion(plan: ChatPlan, *, system_fingerprint: str, azure: bool) -> JSON:
    choices: list[JSON] = []
    for i in range(plan.n):
        message: JSON = {"role": "assistant", "content": plan.content, "refusal": None}
        if plan.tool_calls:
            call = plan.tool_calls[i]
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
            ]
        message["annotations"] = []
        choice: JSON = {
            "index": i,
            "message": message,
            "logprobs": None,
            "finish_reason": plan.finish_reason,
        }
        if azure:
            choice["content_filter_results"] = content_filter_results()
        choices.append(choice)
    out: JSON = {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": plan.model,
        "choices": choices,
        "usage": chat_usage(plan.prompt_tokens, plan.completion_tokens),
        "service_tier": "default",
        "system_fingerprint": system_fingerprint,
    }
    if azure:
        out["prompt_filter_results"] = prompt_filter_results()
    return out


def chat_chunks(
    plan: ChatPlan, *, system_fingerprint: str, include_usage: bool, azure: bool
) -> list[JSON]:
    """The ordered ``chat.completion.chunk`` objects of a streamed answer."""
    cid = new_id("chatcmpl-")
    created = int(time.time())

    def chunk(choices: list[JSON], usage: JSON | None = None) -> JSON:
        out: JSON = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": plan.model,
            "service_tier": "default",
            "system_fingerprint": system_fingerprint,
            "choices": choices,
        }
        if include_usage:
            out["usage"] = usage
        return out

    def choice(index: int, delta: JSON, finish: str | None = None) -> JSON:
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

    chunks: list[JSON] = []
    if azure:
        # Azure sends the prompt filter verdict first, with no choices and an empty model.
        first = chunk([])
        first["model"] = ""
        first["prompt_filter_results"] = prompt_filter_results()
        chunks.append(first)
    per_choice: list[list[JSON]] = []
    for i in range(plan.n):
        seq: list[JSON] = []
        if plan.tool_calls:
            call = plan.tool_calls[i]
            head = {
                "index": 0,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            seq.append(
                choice(
                    i,
                    {"role": "assistant", "content": None, "tool_calls": [head], "refusal": None},
                )
            )
            for frag in split_pieces(call.arguments):
                seq.append(
                    choice(i, {"tool_calls": [{"index": 0, "function": {"arguments": frag}}]})
                )
        else:
            seq.append(choice(i, {"role": "assistant", "content": "", "refusal": None}))
            for piece in split_pieces(plan.content or ""):
                seq.append(choice(i, {"content": piece}))
        per_choice.append(seq)
    # Interleave choices round-robin, as OpenAI does for n > 1.
    longest = max((len(s) for s in per_choice), default=0)
    for step in range(longest):
        for seq in per_choice:
            if step < len(seq):
                chunks.append(chunk([seq[step]]))
    for i in range(plan.n):
        chunks.append(chunk([choice(i, {}, plan.finish_reason)]))
    if include_usage:
        chunks.append(chunk([], chat_usage(plan.prompt_tokens, plan.completion_tokens)))
    return chunks


# ---------------------------------------------------------------------------------------------
# Legacy completions


@dataclass
class CompletionPlan:
    model: str
    texts: list[str]  # one per choice, in choice-index order
    finish_reasons: list[str]
    prompt_tokens: int
    completion_tokens: int


def _prompts(prompt: Any) -> list[tuple[str, int]]:
    """(text, tokens) per prompt; accepts str, [str], [int] and [[int]]."""
    if isinstance(prompt, str):
        return [(prompt, count_tokens(prompt))]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
            return [(" ".join(str(p) for p in prompt), len(prompt))]
        out: list[tuple[str, int]] = []
        for p in prompt:
            if isinstance(p, str):
                out.append((p, count_tokens(p)))
            elif isinstance(p, list) and all(isinstance(t, int) for t in p):
                out.append((" ".join(str(t) for t in p), len(p)))
            else:
                raise WireError("Invalid type for 'prompt'.", "prompt")
        return out
    raise WireError("Invalid type for 'prompt'.", "prompt")


def plan_completion(
    body: JSON, *, model: str, reply: str | None, name: str | None, content_override: str | None
) -> CompletionPlan:
    require_model(body)
    if "prompt" not in body:
        raise WireError(
            "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"
        )
    prompts = _prompts(body["prompt"])
    n = body.get("n", 1) or 1
    if not isinstance(n, int) or n < 1 or n > 128:
        raise WireError(f"Invalid 'n': {n!r}. Expected a value between 1 and 128.", "n")
    texts: list[str] = []
    finishes: list[str] = []
    for text_in, _ in prompts:
        if content_override is not None:
            text = content_override
        elif reply is not None:
            text = reply
        else:
            text = f" Mock completion of: {text_in}"
            if name:
                text = f" [{name}]{text}"
        text, truncated = _truncate(text, body.get("max_tokens"))
        if body.get("echo"):
            text = text_in + text
        for _ in range(n):
            texts.append(text)
            finishes.append("length" if truncated else "stop")
    return CompletionPlan(
        model=model,
        texts=texts,
        finish_reasons=finishes,
        prompt_tokens=sum(t for _, t in prompts),
        completion_tokens=sum(count_tokens(t) for t in texts),
    )


def completion_usage(plan: CompletionPlan) -> JSON:
    return chat_usage(plan.prompt_tokens, plan.completion_tokens)


def completion(plan: CompletionPlan, *, system_fingerprint: str) -> JSON:
    return {
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": plan.model,
        "system_fingerprint": system_fingerprint,
        "choices": [
            {"text": text, "index": i, "logprobs": None, "finish_reason": finish}
            for i, (text, finish) in enumerate(zip(plan.texts, plan.finish_reasons, strict=True))
        ],
        "usage": completion_usage(plan),
    }


def completion_chunks(
    plan: CompletionPlan, *, system_fingerprint: str, include_usage: bool
) -> list[JSON]:
    cid = new_id("cmpl-")
    created = int(time.time())

    def chunk(choices: list[JSON], usage: JSON | None = None) -> JSON:
        out: JSON = {
            "id": cid,
            "object": "text_completion",
            "created": created,
            "model": plan.model,
            "system_fingerprint": system_fingerprint,
            "choices": choices,
        }
        if include_usage:
            out["usage"] = usage
        return out

    chunks: list[JSON] = []
    for i, text in enumerate(plan.texts):
        for piece in split_pieces(text):
            chunks.append(
                chunk([{"text": piece, "index": i, "logprobs": None, "finish_reason": None}])
            )
    for i, finish in enumerate(plan.finish_reasons):
        chunks.append(chunk([{"text": "", "index": i, "logprobs": None, "finish_reason": finish}]))
    if include_usage:
        chunks.append(chunk([], completion_usage(plan)))
    return chunks


# ---------------------------------------------------------------------------------------------
# Embeddings


def _embedding_inputs(value: Any) -> list[tuple[str, int]]:
    """(seed text, tokens) per input; accepts str, [str], [int] and [[int]]."""
    if isinstance(value, str):
        if not value:
            raise WireError("'$.input' is invalid. Please check the API reference.", "input")
        return [(value, count_tokens(value))]
    if isinstance(value, list) and value:
        if all(isinstance(t, int) and not isinstance(t, bool) for t in value):
            return [("tokens:" + ",".join(str(t) for t in value), len(value))]
        out: list[tuple[str, int]] = []
        for item in value:
            if isinstance(item, str) and item:
                out.append((item, count_tokens(item)))
            elif isinstance(item, list) and item and all(isinstance(t, int) for t in item):
                out.append(("tokens:" + ",".join(str(t) for t in item), len(item)))
            else:
                raise WireError("'$.input' is invalid. Please check the API reference.", "input")
        return out
    raise WireError("'$.input' is invalid. Please check the API reference.", "input")


def embedding_vector(seed_text: str, dim: int) -> list[float]:
    """Deterministic unit vector; a shorter ``dim`` is a renormalised prefix of a longer one."""
    seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    raw = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]


def embeddings(body: JSON, *, model: str, default_dim: int) -> JSON:
    require_model(body)
    if "input" not in body:
        raise WireError(
            "Missing required parameter: 'input'.", "input", "missing_required_parameter"
        )
    inputs = _embedding_inputs(body["input"])
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise WireError(
            f"Invalid value for 'encoding_format': {fmt!r}. Expected 'float' or 'base64'.",
            "encoding_format",
        )
    dim = body.get("dimensions")
    if dim is None:
        dim = default_dim
    elif not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise WireError(
            f"Invalid 'dimensions': {dim!r}. Expected a positive integer.", "dimensions"
        )
    data: list[JSON] = []
    for i, (seed_text, _) in enumerate(inputs):
        vec = embedding_vector(seed_text, dim)
        value: Any = vec
        if fmt == "base64":
            value = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode("ascii")
        data.append({"object": "embedding", "index": i, "embedding": value})
    tokens = sum(t for _, t in inputs)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def model_object(model_id: str, owned_by: str = "system") -> JSON:
    return {"id": model_id, "object": "model", "created": 1_700_000_000, "owned_by": owned_by}
