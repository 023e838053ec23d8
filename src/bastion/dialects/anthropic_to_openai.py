"""An Anthropic Messages request, rewritten as an OpenAI chat-completions request. Pure.

What maps, and how (messages and their blocks are in ``anthropic_messages_to_openai``):

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

from bastion.core.errors import InvalidRequestError
from bastion.dialects.anthropic_messages_to_openai import (
    TranslationContext,
    missing_field,
    string_field,
    system_message,
    translate_message,
)
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


def anthropic_to_openai_request(
    body: JSON, *, drop_unsupported: bool = False, target: str = "this deployment"
) -> JSON:
    """The OpenAI chat-completions body for an Anthropic Messages body.

    ``target`` names the deployment in error messages. The body is assumed to have
    passed ``validate_messages_request`` (model, messages, max_tokens are present).
    """
    ctx = TranslationContext(drop_unsupported, target)
    for name in _UNSUPPORTED_FIELDS:
        if body.get(name):
            ctx.unsupported(f"'{name}'", name)
    messages: list[JSON] = []
    system = body.get("system")
    if system is not None:
        first = system_message(system)
        if first is not None:
            messages.append(first)
    for index, message in enumerate(body["messages"]):
        translate_message(message, f"messages.{index}", messages, ctx)

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


# -- tools -----------------------------------------------------------------------------------


def _translate_tools(tools: Any, ctx: TranslationContext) -> list[JSON]:
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
            raise missing_field(f"tools.{index}", "name")
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
        name = string_field(choice, "name", "tool_choice")
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
