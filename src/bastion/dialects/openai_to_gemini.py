"""OpenAI chat completions request → Gemini ``generateContent`` request. Pure functions.

Gemini has two roles, ``user`` and ``model``; system and developer messages become
``systemInstruction``; a tool result is a ``functionResponse`` part in a user turn,
matched to its call by the function's name (found from the assistant's tool call id);
consecutive turns of one role are merged, as Gemini wants strict alternation.
The answer's translation back is in ``gemini_to_openai``.
"""

from __future__ import annotations

from typing import Any

import orjson

from bastion.core.errors import InvalidRequestError
from bastion.dialects.gemini_schema import clean_schema
from bastion.dialects.translate_common import (
    Target,
    function_tools,
    guess_mime,
    parse_data_url,
    stop_sequences,
    text_of,
    tool_arguments,
)

# OpenAI fields the translation reads (or that need no counterpart upstream).
_HANDLED = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "parallel_tool_calls",
        "prompt_cache_key",
        "safety_identifier",
        "tools",
        "tool_choice",
        "functions",
        "function_call",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "n",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
        "top_logprobs",
        "response_format",
        "reasoning_effort",
        "thinking",
        "safety_settings",
        "cached_content",
        "labels",
    }
)
_TOOL_CHOICE = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
# reasoning_effort → thinkingBudget tokens.
_THINKING_BUDGET = {"none": 0, "minimal": 128, "low": 1024, "medium": 2048, "high": 4096}
# Tools given as Gemini's own objects ({"googleSearch": {}}) are passed as they are.
_NATIVE_TOOLS = frozenset(
    {"googleSearch", "google_search", "codeExecution", "code_execution", "urlContext"}
)


def gemini_request(body: dict[str, Any], target: Target) -> dict[str, Any]:
    """The ``generateContent`` body for an OpenAI chat body (model and stream are in the URL)."""
    for name in body:
        if name not in _HANDLED:
            target.unsupported(name)
    system, contents = _contents(body["messages"])
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools = _tools(body, target)
    if tools:
        out["tools"] = tools
    tool_config = _tool_config(body.get("tool_choice", body.get("function_call")))
    if tool_config:
        out["toolConfig"] = tool_config
    config = _generation_config(body, target)
    if config:
        out["generationConfig"] = config
    if body.get("safety_settings") is not None:
        out["safetySettings"] = body["safety_settings"]
    if body.get("cached_content") is not None:
        out["cachedContent"] = body["cached_content"]
    if body.get("labels") is not None:
        out["labels"] = body["labels"]
    return out


def _contents(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            text = text_of(content, where)
            if text:
                system.append({"text": text})
            continue
        if role == "user":
            _append(contents, "user", _user_parts(content, where))
        elif role == "assistant":
            parts = _assistant_parts(message, where, call_names)
            if parts:
                _append(contents, "model", parts)
        elif role in ("tool", "function"):
            _append(contents, "user", [_function_response(message, where, call_names)])
        else:
            raise InvalidRequestError(
                f"{where}.role '{role}' is not one of system, developer, user, assistant, tool",
                param=f"{where}.role",
            )
    if not contents:
        raise InvalidRequestError(
            "'messages' needs at least one user or assistant message for this model",
            param="messages",
        )
    return system, contents


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list) or not content:
        raise InvalidRequestError(
            f"{where}.content must be a string or a non-empty list of parts",
            param=f"{where}.content",
        )
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"text": str(part.get("text") or "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise InvalidRequestError(
                    f"{where}.content[{index}].image_url.url is required",
                    param=f"{where}.content",
                )
            parts.append(_media_part(url, image if isinstance(image, dict) else {}))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            fmt = str(audio.get("format") or "wav")
            parts.append({"inlineData": {"mimeType": f"audio/{fmt}", "data": audio.get("data")}})
        elif kind == "file":
            file = part.get("file") or {}
            data = file.get("file_data") or file.get("file_id")
            if not isinstance(data, str) or not data:
                raise InvalidRequestError(
                    f"{where}.content[{index}].file needs file_data or file_id",
                    param=f"{where}.content",
                )
            parts.append(_media_part(data, file))
        else:
            raise InvalidRequestError(
                f"{where}.content[{index}] has type '{kind}', which this model cannot take "
                "(use text, image_url, input_audio or file)",
                param=f"{where}.content",
            )
    return parts


def _media_part(url: str, spec: dict[str, Any]) -> dict[str, Any]:
    inline = parse_data_url(url)
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    mime = spec.get("format") or spec.get("mime_type") or guess_mime(url)
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _assistant_parts(
    message: dict[str, Any], where: str, call_names: dict[str, str]
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    text = text_of(message.get("content"), where)
    if text:
        parts.append({"text": text})
    calls = message.get("tool_calls") or []
    legacy = message.get("function_call")
    if legacy:
        calls = [*calls, {"id": "", "type": "function", "function": legacy}]
    for index, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequestError(
                f"{where}.tool_calls[{index}].function.name is required",
                param=f"{where}.tool_calls",
            )
        name = function["name"]
        if call.get("id"):
            call_names[str(call["id"])] = name
        args = tool_arguments(
            function.get("arguments"), f"{where}.tool_calls[{index}].function.arguments"
        )
        parts.append({"functionCall": {"name": name, "args": args}})
    return parts


def _function_response(
    message: dict[str, Any], where: str, call_names: dict[str, str]
) -> dict[str, Any]:
    name = message.get("name")
    call_id = message.get("tool_call_id")
    if call_id is not None:
        name = call_names.get(str(call_id), name)
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(
            f"{where}.tool_call_id does not match a tool call of an earlier assistant message",
            param=f"{where}.tool_call_id",
        )
    text = text_of(message.get("content"), where)
    try:
        parsed = orjson.loads(text) if text[:1] == "{" else None
    except orjson.JSONDecodeError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"content": text}
    return {"functionResponse": {"name": name, "response": response}}


def _tools(body: dict[str, Any], target: Target) -> list[dict[str, Any]]:
    raw_tools = body.get("tools")
    native: list[dict[str, Any]] = []
    if isinstance(raw_tools, list):
        native = [t for t in raw_tools if isinstance(t, dict) and _NATIVE_TOOLS & set(t)]
        raw_tools = [t for t in raw_tools if not (isinstance(t, dict) and _NATIVE_TOOLS & set(t))]
    functions = function_tools(raw_tools, target)
    legacy = body.get("functions")
    if isinstance(legacy, list):
        functions += [f for f in legacy if isinstance(f, dict) and isinstance(f.get("name"), str)]
    declarations = []
    for function in functions:
        declaration: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        parameters = clean_schema(function.get("parameters"))
        if isinstance(parameters, dict) and (
            parameters.get("properties") or parameters.get("type") not in (None, "object")
        ):
            declaration["parameters"] = parameters
        declarations.append(declaration)
    tools: list[dict[str, Any]] = []
    if declarations:
        tools.append({"functionDeclarations": declarations})
    return tools + native


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        mode = _TOOL_CHOICE.get(choice)
        if mode is None:
            raise InvalidRequestError(
                "'tool_choice' must be auto, none, required or a function", param="tool_choice"
            )
        return {"functionCallingConfig": {"mode": mode}}
    if isinstance(choice, dict):
        function = choice.get("function") if "function" in choice else choice
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    raise InvalidRequestError(
        "'tool_choice' must be auto, none, required or a function", param="tool_choice"
    )


def _generation_config(body: dict[str, Any], target: Target) -> dict[str, Any]:
    config: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("top_logprobs", "logprobs"),
    ):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    if body.get("logprobs"):
        config["responseLogprobs"] = True
    if body.get("stop") is not None:
        config["stopSequences"] = stop_sequences(body["stop"])
    if body.get("n") is not None and body["n"] != 1:
        config["candidateCount"] = body["n"]
    _response_format(body.get("response_format"), config, target)
    thinking = _thinking(body)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    return config


def _response_format(value: Any, config: dict[str, Any], target: Target) -> None:
    if value is None:
        return
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
        return
    if kind == "json_schema":
        spec = value.get("json_schema") or {}
        config["responseMimeType"] = "application/json"
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            config["responseSchema"] = clean_schema(schema)
        return
    target.unsupported("response_format", f"type '{kind}'")


def _thinking(body: dict[str, Any]) -> dict[str, Any] | None:
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        if thinking.get("type") == "disabled":
            return {"thinkingBudget": 0}
        budget = thinking.get("budget_tokens")
        out: dict[str, Any] = {"includeThoughts": True}
        if isinstance(budget, int):
            out["thinkingBudget"] = budget
        return out
    effort = body.get("reasoning_effort")
    if effort is None:
        return None
    if effort not in _THINKING_BUDGET:
        raise InvalidRequestError(
            "'reasoning_effort' must be none, minimal, low, medium or high",
            param="reasoning_effort",
        )
    budget = _THINKING_BUDGET[effort]
    if budget == 0:
        return {"thinkingBudget": 0}
    return {"thinkingBudget": budget, "includeThoughts": True}
