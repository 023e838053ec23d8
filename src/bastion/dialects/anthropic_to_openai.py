"""An Anthropic Messages request, rewritten as an OpenAI chat-completions request. Pure.

What maps, and how:

- ``system`` (a string or text blocks) becomes the first ``system`` message; a
  ``role: system`` message inside ``messages`` (Claude Code sends them) stays a
  ``system`` message at its place. ``cache_control`` is dropped everywhere.
- User blocks: text, image (base64 or url source → ``image_url`` part), document
  (base64 PDF → ``file`` part; plain-text or content sources → text), tool_result
  (→ ``role: tool`` messages, placed before the rest of the turn as OpenAI
  requires; ``is_error`` prefixes the text with ``Error:``; images in a result
  follow in a user message).
- Assistant blocks: text → ``content``, tool_use → ``tool_calls`` (arguments as a
  JSON string); thinking and redacted_thinking are dropped.
- ``tools`` with an ``input_schema`` → functions; ``tool_choice`` auto/any/tool/none
  → auto/required/named function/none (``disable_parallel_tool_use`` →
  ``parallel_tool_calls: false``); ``stop_sequences`` → ``stop``;
  ``metadata.user_id`` → ``user``; ``top_k`` passes as a provider extra;
  ``output_config.format`` / ``output_format`` (JSON schema) → ``response_format``;
  ``stream`` adds ``stream_options.include_usage`` so the final usage is known.

What cannot be said to an OpenAI-compatible deployment: Anthropic's server and
built-in tools (web_search, bash, text_editor, computer, code_execution…), MCP
servers, containers, file-id sources and server-tool blocks in the history. Each
is an InvalidRequestError naming it and the deployment, unless ``drop_unsupported``
(the request's or the deployment's ``drop_params``) says to leave it out.

Hints an OpenAI model has no use for are left out silently: ``thinking``,
``output_config.effort``, ``context_management``, ``service_tier``. Other fields
go through only when OpenAI's chat API or a known provider extra defines them.
"""

from __future__ import annotations

from typing import Any

import orjson

from bastion.core.errors import InvalidRequestError
from bastion.dialects.openai_params import CHAT_PARAMS, GATEWAY_FIELDS, PROVIDER_EXTRA_PARAMS

JSON = dict[str, Any]

# Anthropic fields translated below, or knowingly left out (hints OpenAI cannot act on).
_HANDLED = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "output_config",
        "output_format",
        "context_management",
        "service_tier",
        "cache_control",
        "mcp_servers",
        "container",
    }
)
# Anthropic features with no OpenAI counterpart: a 400 unless dropping is allowed.
_UNSUPPORTED_FIELDS = ("mcp_servers", "container")
# One choice is translated back, and stream_options follows ``stream``.
_PASS_THROUGH = (
    (CHAT_PARAMS | PROVIDER_EXTRA_PARAMS | GATEWAY_FIELDS)
    - _HANDLED
    - {
        "n",
        "stream_options",
    }
)
_EMPTY_OBJECT_SCHEMA: JSON = {"type": "object", "properties": {}}


class _Context:
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


def anthropic_to_openai_request(
    body: JSON, *, drop_unsupported: bool = False, target: str = "this deployment"
) -> JSON:
    """The OpenAI chat-completions body for an Anthropic Messages body.

    ``target`` names the deployment in error messages. The body is assumed to have
    passed ``validate_messages_request`` (model, messages, max_tokens are present).
    """
    ctx = _Context(drop_unsupported, target)
    for name in _UNSUPPORTED_FIELDS:
        if body.get(name):
            ctx.unsupported(f"'{name}'", name)
    messages: list[JSON] = []
    system = body.get("system")
    if system is not None:
        text = _text_of(system, "system")
        if text:
            messages.append({"role": "system", "content": text})
    for index, message in enumerate(body["messages"]):
        _translate_message(message, f"messages.{index}", messages, ctx)

    out: JSON = {"model": body["model"], "messages": messages, "max_tokens": body["max_tokens"]}
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            out[name] = body[name]
    stop = body.get("stop_sequences")
    if stop:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise InvalidRequestError(
                "stop_sequences: must be a list of strings", param="stop_sequences"
            )
        out["stop"] = stop
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    tools = body.get("tools")
    if tools:
        functions = _translate_tools(tools, ctx)
        if functions:
            out["tools"] = functions
    choice = body.get("tool_choice")
    if choice is not None and "tools" in out:
        _translate_tool_choice(choice, out)
    response_format = _response_format(body)
    if response_format is not None:
        out["response_format"] = response_format
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    for name, value in body.items():
        if name in _PASS_THROUGH:
            out[name] = value
    return out


# -- messages --------------------------------------------------------------------------------


def _translate_message(message: JSON, param: str, out: list[JSON], ctx: _Context) -> None:
    role = message.get("role")
    content = message.get("content")
    if role == "system":
        out.append({"role": "system", "content": _text_of(content, f"{param}.content")})
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


def _assistant_message(blocks: list[Any], param: str, ctx: _Context) -> JSON:
    texts: list[str] = []
    calls: list[JSON] = []
    for index, block in enumerate(blocks):
        # Text first and without building the field path: this loop is on the hot path.
        kind = block.get("type") if type(block) is dict else None
        if kind == "text":
            text = block.get("text")
            if type(text) is not str:
                raise _missing(f"{param}.{index}", "text")
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
        "id": _string(block, "id", param),
        "type": "function",
        "function": {
            "name": _string(block, "name", param),
            "arguments": orjson.dumps(tool_input).decode(),
        },
    }


def _user_messages(blocks: list[Any], param: str, out: list[JSON], ctx: _Context) -> None:
    """Tool results first (OpenAI wants them right after the assistant's calls), then the rest."""
    parts: list[JSON] = []
    results = 0
    for index, block in enumerate(blocks):
        kind = block.get("type") if type(block) is dict else None
        if kind == "text":
            text = block.get("text")
            if type(text) is not str:
                raise _missing(f"{param}.{index}", "text")
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
                    "tool_call_id": _string(block, "tool_use_id", where),
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


def _user_part(block: JSON, kind: str, param: str, ctx: _Context) -> JSON | None:
    if kind == "text":
        return {"type": "text", "text": _string(block, "text", param)}
    if kind == "image":
        return _image_part(block, param, ctx)
    if kind == "document":
        return _document_part(block, param, ctx)
    if kind in ("thinking", "redacted_thinking"):
        return None
    ctx.unsupported(f"a '{kind}' content block", param)
    return None


def _image_part(block: JSON, param: str, ctx: _Context) -> JSON | None:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict):
        media = _string(source, "media_type", f"{param}.source")
        data = _string(source, "data", f"{param}.source")
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if kind == "url" and isinstance(source, dict):
        return {
            "type": "image_url",
            "image_url": {"url": _string(source, "url", f"{param}.source")},
        }
    if kind is None:
        raise InvalidRequestError(
            f"{param}.source: an image needs a source object with a 'type'",
            param=f"{param}.source",
        )
    ctx.unsupported(f"an image with a '{kind}' source", f"{param}.source")
    return None


def _document_part(block: JSON, param: str, ctx: _Context) -> JSON | None:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    where = f"{param}.source"
    if isinstance(source, dict) and kind == "base64":
        media = _string(source, "media_type", where)
        data = _string(source, "data", where)
        title = block.get("title")
        filename = title if isinstance(title, str) and title else "document.pdf"
        return {
            "type": "file",
            "file": {"filename": filename, "file_data": f"data:{media};base64,{data}"},
        }
    if isinstance(source, dict) and kind == "text":
        return {"type": "text", "text": _string(source, "data", where)}
    if isinstance(source, dict) and kind == "content":
        return {"type": "text", "text": _text_of(source.get("content"), f"{where}.content")}
    if kind is None:
        raise InvalidRequestError(
            f"{where}: a document needs a source object with a 'type'", param=where
        )
    ctx.unsupported(f"a document with a '{kind}' source", where)
    return None


def _tool_result(block: JSON, param: str, ctx: _Context) -> tuple[str, list[JSON]]:
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
                texts.append(_string(item, "text", where))
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


# -- tools -----------------------------------------------------------------------------------


def _translate_tools(tools: Any, ctx: _Context) -> list[JSON]:
    if not isinstance(tools, list):
        raise InvalidRequestError("tools: must be a list of tool definitions", param="tools")
    functions: list[JSON] = []
    for index, tool in enumerate(tools):
        if type(tool) is not dict:
            raise InvalidRequestError(f"tools.{index}: must be an object", param=f"tools.{index}")
        kind = tool.get("type")
        if kind is not None and kind != "custom":
            what = f"tool type '{kind}' (an Anthropic server or built-in tool)"
            ctx.unsupported(what, f"tools.{index}")
            continue
        name = tool.get("name")
        if type(name) is not str:
            raise _missing(f"tools.{index}", "name")
        schema = tool.get("input_schema", _EMPTY_OBJECT_SCHEMA)
        if type(schema) is not dict:
            raise InvalidRequestError(
                f"tools.{index}.input_schema: must be a JSON schema object",
                param=f"tools.{index}.input_schema",
            )
        description = tool.get("description")
        if type(description) is str and description:
            function: JSON = {"name": name, "description": description, "parameters": schema}
        else:
            function = {"name": name, "parameters": schema}
        if tool.get("strict") is True:
            function["strict"] = True
        functions.append({"type": "function", "function": function})
    return functions


def _translate_tool_choice(choice: Any, out: JSON) -> None:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice, dict):
        name = _string(choice, "name", "tool_choice")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        raise InvalidRequestError(
            "tool_choice: 'type' must be one of auto, any, tool, none", param="tool_choice"
        )
    if isinstance(choice, dict) and choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False


def _response_format(body: JSON) -> JSON | None:
    config = body.get("output_config")
    spec = config.get("format") if isinstance(config, dict) else None
    if spec is None:
        spec = body.get("output_format")
    if not isinstance(spec, dict) or spec.get("type") != "json_schema":
        return None
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequestError(
            "output_config.format.schema: must be a JSON schema object",
            param="output_config.format.schema",
        )
    return {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema, "strict": True},
    }


# -- helpers ---------------------------------------------------------------------------------


def _string(obj: JSON, name: str, param: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise _missing(param, name)
    return value


def _missing(param: str, name: str) -> InvalidRequestError:
    return InvalidRequestError(f"{param}.{name}: a string is required", param=f"{param}.{name}")


def _text_of(content: Any, param: str) -> str:
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
        texts.append(_string(block, "text", where))
    return "\n\n".join(texts)
