"""OpenAI chat-completions request → Bedrock Converse request. Pure functions.

Converse takes ``system`` blocks apart from ``messages``, strictly alternating
user/assistant turns whose content is a list of blocks (``text``, ``image``,
``document``, ``toolUse``, ``toolResult``, ``cachePoint``), ``inferenceConfig``
(maxTokens, temperature, topP, stopSequences) and ``toolConfig`` (toolSpec with
``inputSchema.json``, toolChoice auto/any/tool). So: system and developer messages
move to ``system``; tool messages become ``toolResult`` blocks of a user turn; turns
of the same role are merged; images must be ``data:`` URLs (their base64 goes into
the JSON as Bedrock's ``bytes``) or ``s3://`` locations. An OpenAI ``cache_control``
on a part, a system part or a tool adds a ``cachePoint`` after it.

A field Converse cannot express is a 400 naming it, unless ``drop_params`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from bastion.core.errors import InvalidRequestError
from bastion.dialects.openai_params import GATEWAY_FIELDS

# Converse fields a client may send as they are (camelCase, Bedrock's names).
PASSTHROUGH = frozenset(
    {
        "additionalModelRequestFields",
        "additionalModelResponseFieldPaths",
        "guardrailConfig",
        "performanceConfig",
        "promptVariables",
        "requestMetadata",
    }
)
# OpenAI fields that steer nothing on Bedrock and are left out silently.
IGNORED = frozenset(
    {
        "model",
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "service_tier",
        "parallel_tool_calls",
        "prompt_cache_key",
        "safety_identifier",
    }
)
# Fields that are harmless at their neutral value and a 400 otherwise.
_NEUTRAL: dict[str, Any] = {
    "n": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "logprobs": False,
    "logit_bias": None,
}
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
# reasoning_effort → Claude's extended-thinking budget (LiteLLM's values).
_THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}
_CACHE_POINT: dict[str, Any] = {"cachePoint": {"type": "default"}}


@dataclass(frozen=True, slots=True)
class ConverseTarget:
    """The deployment a request is translated for: named in errors, and its quirks."""

    label: str
    drop_params: bool = False
    claude: bool = False

    def unsupported(self, name: str, what: str = "") -> None:
        if self.drop_params:
            return
        detail = f" ({what})" if what else ""
        raise InvalidRequestError(
            f"'{name}'{detail} is not supported by {self.label}; remove it, or set "
            "drop_params: true to drop it",
            param=name,
        )


def converse_request(body: dict[str, Any], target: ConverseTarget) -> dict[str, Any]:
    """The Converse body for an OpenAI chat body (gateway fields already removed or not)."""
    system, messages = _messages(body.get("messages"), target)
    out: dict[str, Any] = {"messages": messages}
    if system:
        out["system"] = system
    inference: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in body.items():
        if name in IGNORED or name in GATEWAY_FIELDS or name == "messages" or value is None:
            continue
        if name in ("max_tokens", "max_completion_tokens"):
            inference["maxTokens"] = _int(value, name)
        elif name == "temperature":
            inference["temperature"] = _number(value, name)
        elif name == "top_p":
            inference["topP"] = _number(value, name)
        elif name == "stop":
            stops = [value] if isinstance(value, str) else value
            if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
                raise InvalidRequestError(
                    "'stop' must be a string or a list of strings", param="stop"
                )
            if stops:
                inference["stopSequences"] = stops
        elif name in ("tools", "tool_choice"):
            continue  # below, together
        elif name in PASSTHROUGH:
            if name == "additionalModelRequestFields" and isinstance(value, dict):
                extra.update(value)
            else:
                out[name] = value
        elif name == "reasoning_effort" and target.claude:
            if value not in _THINKING_BUDGETS:
                raise InvalidRequestError(
                    "'reasoning_effort' must be one of minimal, low, medium, high",
                    param="reasoning_effort",
                )
            extra["thinking"] = {"type": "enabled", "budget_tokens": _THINKING_BUDGETS[value]}
        elif name in ("thinking", "top_k") and target.claude:
            extra[name] = value
        elif not _neutral(name, value):
            target.unsupported(name)
    if inference:
        out["inferenceConfig"] = inference
    if extra:
        out["additionalModelRequestFields"] = extra
    tool_config = _tool_config(body.get("tools"), body.get("tool_choice"), messages, target)
    if tool_config:
        out["toolConfig"] = tool_config
    return out


def _messages(
    raw: Any, target: ConverseTarget
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not isinstance(raw, list):
        raise InvalidRequestError("'messages' must be a list", param="messages")
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidRequestError(f"{where} must be an object", param=where)
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(_system_blocks(content, where))
            continue
        if role == "user":
            blocks = _content_blocks(content, where, target)
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
        elif role == "tool":
            blocks = [_tool_result(message, where, target)]
            role = "user"
        else:
            raise InvalidRequestError(
                f"{where}.role '{role}' is not supported here (system, developer, user, "
                "assistant or tool)",
                param=f"{where}.role",
            )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _system_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequestError(f"{where}.content must be a string or a list", param=where)
    blocks: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise InvalidRequestError(
                f"{where}.content[{index}]: system messages take text parts only",
                param=f"{where}.content",
            )
        if part.get("text"):
            blocks.append({"text": str(part["text"])})
        if part.get("cache_control"):
            blocks.append(dict(_CACHE_POINT))
    return blocks


def _content_blocks(content: Any, where: str, target: ConverseTarget) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequestError(f"{where}.content must be a string or a list", param=where)
    blocks: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        part_where = f"{where}.content[{index}]"
        if not isinstance(part, dict):
            raise InvalidRequestError(f"{part_where} must be an object", param=part_where)
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": str(part["text"])})
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url"), part_where))
        elif kind == "file":
            blocks.append(_document_block(part.get("file"), part_where, len(blocks)))
        else:
            target.unsupported(f"{part_where}.type", f"content parts of type '{kind}'")
            continue
        if part.get("cache_control"):
            blocks.append(dict(_CACHE_POINT))
    return blocks


def _image_block(image: Any, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequestError(f"{where}.image_url.url is required", param=where)
    if url.startswith("s3://"):
        s3_format = _IMAGE_FORMATS.get(_mime_from_name(url), "png")
        return {"image": {"format": s3_format, "source": {"s3Location": {"uri": url}}}}
    mime, data = _data_url(url, where)
    fmt = _IMAGE_FORMATS.get(mime.lower())
    if fmt is None:
        raise InvalidRequestError(
            f"{where}: image type '{mime}' is not supported by Bedrock (png, jpeg, gif, webp)",
            param=where,
        )
    return {"image": {"format": fmt, "source": {"bytes": data}}}


def _document_block(file: Any, where: str, position: int) -> dict[str, Any]:
    if not isinstance(file, dict) or not isinstance(file.get("file_data"), str):
        raise InvalidRequestError(
            f"{where}: file parts need file.file_data (a data: URL); file_id is not "
            "supported by Bedrock",
            param=where,
        )
    mime, data = _data_url(file["file_data"], where)
    fmt = _DOCUMENT_FORMATS.get(mime.lower())
    if fmt is None:
        raise InvalidRequestError(
            f"{where}: document type '{mime}' is not supported by Bedrock", param=where
        )
    name = _document_name(str(file.get("filename") or f"document-{position + 1}"))
    return {"document": {"format": fmt, "name": name, "source": {"bytes": data}}}


def _document_name(filename: str) -> str:
    # Bedrock allows letters, digits, single spaces, hyphens, parentheses and brackets.
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    kept = "".join(c if c.isalnum() or c in "-()[] " else "-" for c in stem)
    return " ".join(kept.split())[:200] or "document"


def _data_url(url: str, where: str) -> tuple[str, str]:
    if not url.startswith("data:"):
        raise InvalidRequestError(
            f"{where}: Bedrock takes images and files inline: use a data: URL "
            "(data:<type>;base64,<data>) or an s3:// location, not a web URL",
            param=where,
        )
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64") or not data:
        raise InvalidRequestError(
            f"{where}: data URLs must look like data:<type>;base64,<data>", param=where
        )
    return header[: -len(";base64")], data


def _mime_from_name(url: str) -> str:
    extension = url.rsplit(".", 1)[-1].lower()
    return f"image/{'jpeg' if extension == 'jpg' else extension}"


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        if content:
            blocks.append({"text": content})
    elif isinstance(content, list):
        for index, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                raise InvalidRequestError(
                    f"{where}.content[{index}]: assistant messages take text parts only",
                    param=f"{where}.content",
                )
            text = part.get("text") or part.get("refusal")
            if text:
                blocks.append({"text": str(text)})
    elif content is not None:
        raise InvalidRequestError(f"{where}.content must be a string or a list", param=where)
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise InvalidRequestError(f"{where}.tool_calls must be a list", param=where)
    for index, call in enumerate(calls):
        call_where = f"{where}.tool_calls[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise InvalidRequestError(
                f"{call_where} needs an id and a function with a name", param=call_where
            )
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": call["id"],
                    "name": str(function.get("name") or ""),
                    "input": _arguments(function.get("arguments"), call_where),
                }
            }
        )
    return blocks


def _arguments(raw: Any, where: str) -> Any:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        raise InvalidRequestError(
            f"{where}.function.arguments must be a JSON object in a string", param=where
        ) from None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{where}.function.arguments must be a JSON object", param=where)
    return value


def _tool_result(message: dict[str, Any], where: str, target: ConverseTarget) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequestError(f"{where}.tool_call_id is required", param=where)
    content = message.get("content")
    if isinstance(content, list):
        blocks = [b for b in _content_blocks(content, where, target) if "cachePoint" not in b]
    else:
        blocks = [{"text": "" if content is None else str(content)}]
    return {"toolResult": {"toolUseId": call_id, "content": blocks or [{"text": ""}]}}


def _tool_config(
    tools: Any, choice: Any, messages: list[dict[str, Any]], target: ConverseTarget
) -> dict[str, Any] | None:
    if not tools:
        return None
    if not isinstance(tools, list):
        raise InvalidRequestError("'tools' must be a list", param="tools")
    specs: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            target.unsupported(where, f"tools of type '{kind}'")
            continue
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequestError(f"{where}.function.name is required", param=where)
        spec: dict[str, Any] = {
            "name": function["name"],
            "inputSchema": {"json": function.get("parameters") or {"type": "object"}},
        }
        if function.get("description"):
            spec["description"] = str(function["description"])
        specs.append({"toolSpec": spec})
        if tool.get("cache_control"):
            specs.append(dict(_CACHE_POINT))
    if not specs:
        return None
    config: dict[str, Any] = {"tools": specs}
    if choice is None or choice == "auto":
        return config
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "none":
        # Converse has no "none": without tool blocks in the conversation the tools are
        # left out; with them Bedrock needs the tool list, so the model keeps the choice.
        if not any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"]):
            return None
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        config["toolChoice"] = {"tool": {"name": str(choice["function"].get("name") or "")}}
    else:
        raise InvalidRequestError(
            "'tool_choice' must be auto, none, required or {type: function, function: {name}}",
            param="tool_choice",
        )
    return config


def _neutral(name: str, value: Any) -> bool:
    """A field at a value that asks for nothing Converse lacks (``n: 1``, text output)."""
    if name == "response_format":
        return isinstance(value, dict) and value.get("type") == "text"
    if name == "modalities":
        return bool(value == ["text"])
    return name in _NEUTRAL and bool(value == _NEUTRAL[name])


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(f"'{name}' must be a positive integer", param=name)
    return value


def _number(value: Any, name: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(f"'{name}' must be a number", param=name)
    return value
