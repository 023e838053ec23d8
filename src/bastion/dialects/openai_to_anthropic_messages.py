"""OpenAI chat ``messages`` → Anthropic ``system`` + ``messages``. Pure functions.

* ``system`` and ``developer`` messages, wherever they stand, become ``system`` text blocks.
* User and assistant content parts become content blocks: text; ``image_url`` with a
  ``data:`` URL → a base64 image source (a PDF → a document), an http(s) URL → a URL
  source; ``file`` parts with ``file_data`` → documents.
* Assistant ``tool_calls`` → ``tool_use`` blocks (arguments parsed; invalid JSON is a
  400); ``thinking_blocks`` (as LiteLLM returns them) go back first, so a tool-use turn
  with extended thinking can continue.
* ``role: tool`` messages → ``tool_result`` blocks of one user turn; consecutive tool
  results, and user content right after them, share that turn (Anthropic wants every
  result of an assistant turn in the next user turn, results first).
* ``cache_control`` on a content part is kept on its block; on a message it goes on the
  message's last block (prompt caching).
"""

from __future__ import annotations

from typing import Any

import orjson

from bastion.core.errors import InvalidRequestError

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_DOCUMENT_TYPES = frozenset({"application/pdf"})


class Target:
    """The deployment a request is translated for: names it in errors, knows drop_params."""

    __slots__ = ("drop_params", "label")

    def __init__(self, label: str, *, drop_params: bool = False) -> None:
        self.label = label
        self.drop_params = drop_params

    def unsupported(self, param: str, what: str) -> None:
        """A 400 for something Anthropic cannot express, unless drop_params drops it."""
        if self.drop_params:
            return
        raise InvalidRequestError(
            f"{what} is not supported by {self.label}; remove '{param}' or set "
            "drop_params: true to drop it",
            param=param,
        )


def convert_messages(
    messages: list[Any], target: Target
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, Anthropic messages) for an OpenAI ``messages`` list."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    open_tool_turn = False  # the last message is a user turn made of tool results
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidRequestError(f"{where} must be an object", param=where)
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_blocks(message, where, target, text_only=True))
            continue
        if role == "tool":
            block = _tool_result(message, where, target)
            if open_tool_turn:
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
                open_tool_turn = True
            continue
        if role == "user":
            if open_tool_turn:
                out[-1]["content"].extend(_blocks(message, where, target))
            else:
                out.append({"role": "user", "content": _user_content(message, where, target)})
        elif role == "assistant":
            content = _assistant_content(message, where, target)
            if content:
                out.append({"role": "assistant", "content": content})
        elif role == "function":
            raise InvalidRequestError(
                f"{where}: role 'function' (legacy function calling) is not supported by "
                f"{target.label}; send tool calls and role 'tool' results instead",
                param=f"{where}.role",
            )
        else:
            raise InvalidRequestError(
                f"{where}.role must be system, developer, user, assistant or tool",
                param=f"{where}.role",
            )
        open_tool_turn = False
    if not out:
        raise InvalidRequestError(
            f"messages: {target.label} needs at least one user or assistant message",
            param="messages",
        )
    return system, out


def _user_content(message: dict[str, Any], where: str, target: Target) -> Any:
    content = message.get("content")
    if isinstance(content, str) and "cache_control" not in message:
        return content  # the short form, as the client wrote it
    return _blocks(message, where, target)


def _blocks(
    message: dict[str, Any], where: str, target: Target, *, text_only: bool = False
) -> list[dict[str, Any]]:
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        for number, part in enumerate(content):
            block = _part(part, f"{where}.content[{number}]", target, text_only)
            if block is not None:
                blocks.append(block)
    elif content is not None:
        raise InvalidRequestError(
            f"{where}.content must be a string or a list of content parts",
            param=f"{where}.content",
        )
    cache_control = message.get("cache_control")
    if cache_control is not None and blocks and "cache_control" not in blocks[-1]:
        blocks[-1]["cache_control"] = cache_control
    return blocks


def _part(part: Any, where: str, target: Target, text_only: bool) -> dict[str, Any] | None:
    if isinstance(part, str):
        return {"type": "text", "text": part} if part else None
    if not isinstance(part, dict):
        raise InvalidRequestError(f"{where} must be a content part object", param=where)
    kind = part.get("type")
    block: dict[str, Any] | None
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequestError(f"{where}.text must be a string", param=f"{where}.text")
        if not text:
            return None  # Anthropic rejects empty text blocks
        block = {"type": "text", "text": text}
    elif kind == "refusal" and isinstance(part.get("refusal"), str):
        block = {"type": "text", "text": part["refusal"]}
    elif text_only:
        raise InvalidRequestError(
            f"{where}: a system message may hold only text parts", param=where
        )
    elif kind == "image_url":
        block = _image(part.get("image_url"), where)
    elif kind == "file":
        block = _file(part.get("file"), where, target)
    elif kind in ("image", "document"):
        block = dict(part)  # already an Anthropic block (LiteLLM clients send these)
    else:
        target.unsupported(where, f"a content part of type '{kind}'")
        return None
    if block is not None and "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _image(value: Any, where: str) -> dict[str, Any]:
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url:
        raise InvalidRequestError(
            f"{where}.image_url.url must be an http(s) or data: URL", param=f"{where}.image_url"
        )
    if url.startswith("data:"):
        media_type, data = _data_url(url, f"{where}.image_url.url")
        if media_type in _DOCUMENT_TYPES:
            return {
                "type": "document",
                "source": {"type": "base64", "media_type": media_type, "data": data},
            }
        if media_type not in _IMAGE_TYPES:
            raise InvalidRequestError(
                f"{where}.image_url: images must be JPEG, PNG, GIF or WebP (got {media_type})",
                param=f"{where}.image_url",
            )
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequestError(
        f"{where}.image_url.url must be an http(s) or data: URL", param=f"{where}.image_url"
    )


def _file(value: Any, where: str, target: Target) -> dict[str, Any] | None:
    data_url = value.get("file_data") if isinstance(value, dict) else None
    if not isinstance(data_url, str) or not data_url.startswith("data:"):
        target.unsupported(where, "a file part without inline file_data (a file_id)")
        return None
    media_type, data = _data_url(data_url, f"{where}.file.file_data")
    if media_type in _IMAGE_TYPES:
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if media_type not in _DOCUMENT_TYPES:
        target.unsupported(where, f"a file of type {media_type}")
        return None
    block: dict[str, Any] = {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }
    filename = value.get("filename") if isinstance(value, dict) else None
    if isinstance(filename, str) and filename:
        block["title"] = filename
    return block


def _data_url(url: str, where: str) -> tuple[str, str]:
    header, sep, data = url.partition(",")
    media_type, _, encoding = header[5:].partition(";")
    if not sep or encoding.lower() != "base64" or not media_type or not data:
        raise InvalidRequestError(
            f"{where} must be a base64 data URL (data:<media type>;base64,<data>)", param=where
        )
    return media_type.lower(), data


def _assistant_content(message: dict[str, Any], where: str, target: Target) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    thinking = message.get("thinking_blocks")
    if isinstance(thinking, list):
        blocks.extend(
            dict(b)
            for b in thinking
            if isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking")
        )
    blocks.extend(_blocks({**message, "cache_control": None}, where, target))
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if not isinstance(tool_calls, list):
            raise InvalidRequestError(
                f"{where}.tool_calls must be a list", param=f"{where}.tool_calls"
            )
        for number, call in enumerate(tool_calls):
            blocks.append(_tool_use(call, f"{where}.tool_calls[{number}]"))
    cache_control = message.get("cache_control")
    if cache_control is not None and blocks:
        blocks[-1]["cache_control"] = cache_control
    return blocks


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequestError(
            f"{where} must have a function with a name", param=f"{where}.function"
        )
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequestError(f"{where}.id is required", param=f"{where}.id")
    arguments = function.get("arguments")
    if arguments is None or arguments == "":
        tool_input: Any = {}
    elif isinstance(arguments, dict):
        tool_input = arguments
    else:
        try:
            tool_input = orjson.loads(arguments) if isinstance(arguments, str) else None
        except orjson.JSONDecodeError:
            tool_input = None
        if not isinstance(tool_input, dict):
            raise InvalidRequestError(
                f"{where}.function.arguments must be a JSON object encoded as a string",
                param=f"{where}.function.arguments",
            )
    block: dict[str, Any] = {
        "type": "tool_use",
        "id": call_id,
        "name": function["name"],
        "input": tool_input,
    }
    if "cache_control" in call:
        block["cache_control"] = call["cache_control"]
    return block


def _tool_result(message: dict[str, Any], where: str, target: Target) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequestError(
            f"{where}.tool_call_id is required for role 'tool'", param=f"{where}.tool_call_id"
        )
    content = message.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, str):
        result["content"] = content
    else:
        parts = _blocks({"content": content}, where, target)
        if parts:
            result["content"] = parts
    if message.get("cache_control") is not None:
        result["cache_control"] = message["cache_control"]
    return result
