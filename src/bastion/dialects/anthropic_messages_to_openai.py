"""Anthropic ``messages`` (and ``system``) → OpenAI chat ``messages``. Pure functions.

Part of the request translation of ``anthropic_to_openai`` (see its docstring for the
mapping); ``TranslationContext`` carries what one translation needs to report, or
drop, what OpenAI's API cannot express.
"""

from __future__ import annotations

from typing import Any

import orjson

from bastion.core.errors import InvalidRequestError

JSON = dict[str, Any]


class TranslationContext:
    """What one translation needs to know to report (or drop) the untranslatable."""

    __slots__ = ("drop", "target")

    def __init__(self, drop: bool, target: str) -> None:
        self.drop = drop
        self.target = target

    def unsupported(self, what: str, param: str) -> None:
        """Raises unless dropping is allowed (then the caller leaves the item out)."""
        if not self.drop:
            raise InvalidRequestError(
                f"{param}: {what} cannot be sent to {self.target}, which speaks OpenAI's "
                "chat completions API; remove it, or set drop_params: true (in the request or "
                "the deployment's litellm_params) to drop it",
                param=param,
            )


def system_message(system: Any) -> JSON | None:
    """The ``system`` message for Anthropic's top-level ``system`` (None when empty)."""
    text = text_of(system, "system")
    return {"role": "system", "content": text} if text else None


def translate_message(message: JSON, param: str, out: list[JSON], ctx: TranslationContext) -> None:
    """Appends the OpenAI message(s) for one Anthropic message (``param``: its path)."""
    role = message.get("role")
    content = message.get("content")
    if role == "system":
        out.append({"role": "system", "content": text_of(content, f"{param}.content")})
        return
    if role not in ("user", "assistant"):
        raise InvalidRequestError(
            f"{param}.role: must be 'user', 'assistant' or 'system', not {role!r}",
            param=f"{param}.role",
        )
    if isinstance(content, str):
        out.append({"role": role, "content": content})
        return
    if not isinstance(content, list):
        raise InvalidRequestError(
            f"{param}.content: must be a string or a list of content blocks",
            param=f"{param}.content",
        )
    if role == "assistant":
        out.append(_assistant_message(content, f"{param}.content", ctx))
    else:
        _user_messages(content, f"{param}.content", out, ctx)


def _block_type(block: Any, param: str) -> str:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise InvalidRequestError(
            f"{param}: each content block must be an object with a 'type'", param=param
        )
    return str(block["type"])


def _assistant_message(blocks: list[Any], param: str, ctx: TranslationContext) -> JSON:
    texts: list[str] = []
    calls: list[JSON] = []
    for index, block in enumerate(blocks):
        # Text first and without building the field path: this loop is on the hot path.
        kind = block.get("type") if type(block) is dict else None
        if kind == "text":
            text = block.get("text")
            if type(text) is not str:
                raise missing_field(f"{param}.{index}", "text")
            texts.append(text)
            continue
        where = f"{param}.{index}"
        kind = _block_type(block, where)
        if kind == "tool_use":
            calls.append(_tool_call(block, where))
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            ctx.unsupported(f"a '{kind}' content block", where)
    message: JSON = {"role": "assistant", "content": "\n\n".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    return message


def _tool_call(block: JSON, param: str) -> JSON:
    tool_input = block.get("input", {})
    if not isinstance(tool_input, dict):
        raise InvalidRequestError(f"{param}.input: must be an object", param=f"{param}.input")
    return {
        "id": string_field(block, "id", param),
        "type": "function",
        "function": {
            "name": string_field(block, "name", param),
            "arguments": orjson.dumps(tool_input).decode(),
        },
    }


def _user_messages(blocks: list[Any], param: str, out: list[JSON], ctx: TranslationContext) -> None:
    """Tool results first (OpenAI wants them right after the assistant's calls), then the rest."""
    parts: list[JSON] = []
    results = 0
    for index, block in enumerate(blocks):
        kind = block.get("type") if type(block) is dict else None
        if kind == "text":
            text = block.get("text")
            if type(text) is not str:
                raise missing_field(f"{param}.{index}", "text")
            parts.append({"type": "text", "text": text})
            continue
        where = f"{param}.{index}"
        kind = _block_type(block, where)
        if kind == "tool_result":
            results += 1
            text, images = _tool_result(block, where, ctx)
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": string_field(block, "tool_use_id", where),
                    "content": text,
                }
            )
            parts.extend(images)
        elif kind == "tool_use":
            raise InvalidRequestError(
                f"{where}: tool_use blocks belong in assistant messages", param=where
            )
        else:
            part = _user_part(block, kind, where, ctx)
            if part is not None:
                parts.append(part)
    if not parts:
        if not results:
            out.append({"role": "user", "content": ""})
        return
    if all(p["type"] == "text" for p in parts):
        out.append({"role": "user", "content": "\n\n".join(p["text"] for p in parts)})
    else:
        out.append({"role": "user", "content": parts})


def _user_part(block: JSON, kind: str, param: str, ctx: TranslationContext) -> JSON | None:
    if kind == "text":
        return {"type": "text", "text": string_field(block, "text", param)}
    if kind == "image":
        return _image_part(block, param, ctx)
    if kind == "document":
        return _document_part(block, param, ctx)
    if kind in ("thinking", "redacted_thinking"):
        return None
    ctx.unsupported(f"a '{kind}' content block", param)
    return None


def _image_part(block: JSON, param: str, ctx: TranslationContext) -> JSON | None:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict):
        media = string_field(source, "media_type", f"{param}.source")
        data = string_field(source, "data", f"{param}.source")
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if kind == "url" and isinstance(source, dict):
        return {
            "type": "image_url",
            "image_url": {"url": string_field(source, "url", f"{param}.source")},
        }
    if kind is None:
        raise InvalidRequestError(
            f"{param}.source: an image needs a source object with a 'type'",
            param=f"{param}.source",
        )
    ctx.unsupported(f"an image with a '{kind}' source", f"{param}.source")
    return None


def _document_part(block: JSON, param: str, ctx: TranslationContext) -> JSON | None:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    where = f"{param}.source"
    if isinstance(source, dict) and kind == "base64":
        media = string_field(source, "media_type", where)
        data = string_field(source, "data", where)
        title = block.get("title")
        filename = title if isinstance(title, str) and title else "document.pdf"
        return {
            "type": "file",
            "file": {"filename": filename, "file_data": f"data:{media};base64,{data}"},
        }
    if isinstance(source, dict) and kind == "text":
        return {"type": "text", "text": string_field(source, "data", where)}
    if isinstance(source, dict) and kind == "content":
        return {"type": "text", "text": text_of(source.get("content"), f"{where}.content")}
    if kind is None:
        raise InvalidRequestError(
            f"{where}: a document needs a source object with a 'type'", param=where
        )
    ctx.unsupported(f"a document with a '{kind}' source", where)
    return None


def _tool_result(block: JSON, param: str, ctx: TranslationContext) -> tuple[str, list[JSON]]:
    """The tool message's text, and the images of the result (OpenAI's tool role has none)."""
    content = block.get("content")
    texts: list[str] = []
    images: list[JSON] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for index, item in enumerate(content):
            where = f"{param}.content.{index}"
            kind = _block_type(item, where)
            if kind == "text":
                texts.append(string_field(item, "text", where))
            elif kind == "image":
                image = _image_part(item, where, ctx)
                if image is not None:
                    images.append(image)
            elif kind == "document":
                part = _document_part(item, where, ctx)
                if part is not None:
                    if part["type"] == "text":
                        texts.append(part["text"])
                    else:
                        images.append(part)
            else:
                ctx.unsupported(f"a '{kind}' block in a tool result", where)
    elif content is not None:
        raise InvalidRequestError(
            f"{param}.content: must be a string or a list of content blocks",
            param=f"{param}.content",
        )
    text = "\n\n".join(texts)
    if block.get("is_error") is True:
        text = f"Error: {text}" if text else "Error"
    return text, images


def string_field(obj: JSON, name: str, param: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise missing_field(param, name)
    return value


def missing_field(param: str, name: str) -> InvalidRequestError:
    return InvalidRequestError(f"{param}.{name}: a string is required", param=f"{param}.{name}")


def text_of(content: Any, param: str) -> str:
    """A string, or the text of a list of text blocks (system prompts, system messages)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError(
            f"{param}: must be a string or a list of text blocks", param=param
        )
    texts = []
    for index, block in enumerate(content):
        where = f"{param}.{index}"
        if _block_type(block, where) != "text":
            raise InvalidRequestError(f"{where}: only text blocks are allowed here", param=where)
        texts.append(string_field(block, "text", where))
    return "\n\n".join(texts)
