"""Small pure helpers shared by the OpenAI → native-provider translations (Gemini, Cohere)."""

from __future__ import annotations

import base64
import mimetypes
import struct
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from bastion.core.errors import InvalidRequestError

IdFactory = Callable[[], str]


class Target:
    """Who a translated request is for, to name it in errors; and whether to drop extras."""

    __slots__ = ("drop_params", "label")

    def __init__(self, label: str, *, drop_params: bool = False) -> None:
        self.label = label
        self.drop_params = drop_params

    def unsupported(self, name: str, what: str = "") -> None:
        """Raise a 400 for a feature this target cannot express, unless drop_params is set."""
        if self.drop_params:
            return
        detail = f" ({what})" if what else ""
        raise InvalidRequestError(
            f"'{name}'{detail} is not supported by {self.label}; remove it, or set "
            "drop_params: true to drop it",
            param=name,
        )


def text_of(content: Any, where: str) -> str:
    """The text of a message content: a string, or a list of text parts joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for index, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type") == "text":
                texts.append(str(part.get("text") or ""))
            else:
                raise InvalidRequestError(
                    f"{where}.content[{index}] must be a text part here",
                    param=f"{where}.content",
                )
        return "".join(texts)
    raise InvalidRequestError(f"{where}.content must be a string or a list of parts", param=where)


def parse_data_url(url: str) -> tuple[str, str] | None:
    """``data:<mime>;base64,<data>`` → (mime, base64 data); None for any other URL."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise InvalidRequestError(
            "image data URLs must look like data:<mime type>;base64,<data>", param="messages"
        )
    mime = header[: -len(";base64")] or "application/octet-stream"
    return mime, data


def guess_mime(url: str, default: str = "image/jpeg") -> str:
    path = url.split("?", 1)[0]
    guessed, _ = mimetypes.guess_type(path)
    return guessed or default


def tool_arguments(arguments: Any, where: str) -> dict[str, Any]:
    """An OpenAI tool call's ``arguments`` (a JSON string) as an object."""
    if isinstance(arguments, dict):
        return arguments
    if arguments in (None, ""):
        return {}
    if not isinstance(arguments, str):
        raise InvalidRequestError(f"{where} must be a JSON string", param=where)
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise InvalidRequestError(f"{where} is not valid JSON", param=where) from None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{where} must be a JSON object", param=where)
    return value


def stop_sequences(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidRequestError("'stop' must be a string or a list of strings", param="stop")


def text_inputs(value: Any) -> list[str]:
    """An embeddings ``input`` as a list of strings (token arrays cannot be translated)."""
    items: Iterable[Any] = [value] if isinstance(value, str) else value
    texts = list(items)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise InvalidRequestError(
            "'input' must be a string or a list of strings for this model "
            "(token arrays are not supported)",
            param="input",
        )
    return texts


def float_base64(values: list[float]) -> str:
    """Floats as OpenAI's ``encoding_format: base64`` sends them: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def function_tools(tools: Any, target: Target) -> list[dict[str, Any]]:
    """The ``function`` objects of OpenAI ``tools``; other tool types are refused or dropped."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequestError("'tools' must be a list", param="tools")
    out = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequestError(f"tools[{index}] must be an object", param="tools")
        if tool.get("type", "function") != "function":
            target.unsupported("tools", f"tool type '{tool.get('type')}'")
            continue
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequestError(
                f"tools[{index}].function.name is required", param=f"tools[{index}].function"
            )
        out.append(function)
    return out
