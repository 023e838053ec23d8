"""An OpenAI chat-completions request → an Anthropic Messages request. Pure functions.

Every OpenAI parameter is either translated, ignored because it is the gateway's or
has its neutral value (``n: 1``, ``logprobs: false``…), or — when Anthropic cannot
express it — refused with a 400 naming it and the deployment, unless ``drop_params``
drops it. Fields OpenAI does not define (``top_k``, ``thinking``, ``mcp_servers``…) go
to Anthropic as they are, as LiteLLM sends provider-specific parameters.

``response_format`` uses the technique LiteLLM uses: a ``json_tool_call`` tool whose
input schema is the wanted schema, forced with ``tool_choice`` (not forced when
extended thinking is on, which forbids forcing); the answer's tool input is then
returned as the message text (``AnthropicRequest.json_mode``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bastion.core.errors import InvalidRequestError
from bastion.dialects.openai_params import CHAT_PARAMS, GATEWAY_FIELDS, PROVIDER_EXTRA_PARAMS
from bastion.dialects.openai_to_anthropic_messages import Target, convert_messages

DEFAULT_MAX_TOKENS = 4096
JSON_TOOL_NAME = "json_tool_call"
# LiteLLM's budgets for reasoning_effort (Anthropic's minimum budget is 1024).
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}
MIN_THINKING_BUDGET = 1024
# web_search_options.search_context_size → the web search tool's max_uses, as LiteLLM does.
_SEARCH_MAX_USES = {"low": 1, "medium": 5, "high": 10}
_WEB_SEARCH_TOOL = "web_search_20250305"

# Handled below, or the gateway's: never copied as they are.
_TRANSLATED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "temperature",
        "top_p",
        "tools",
        "functions",
        "tool_choice",
        "function_call",
        "parallel_tool_calls",
        "user",
        "reasoning_effort",
        "response_format",
        "n",
        "stream",
        "stream_options",
        "metadata",  # the gateway's (LiteLLM's) request metadata, not Anthropic's
        "web_search_options",
        "thinking",
    }
)
# OpenAI parameters with no Anthropic equivalent, and the value that means "off".
_NEUTRAL: dict[str, Any] = {
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "logit_bias": None,
    "logprobs": False,
    "top_logprobs": None,
    "seed": None,
    "audio": None,
    "modalities": ["text"],
    "prediction": None,
    "store": False,
    "verbosity": None,
    "prompt_cache_key": None,
    "safety_identifier": None,
    "service_tier": "auto",
}
# Fields OpenAI-compatible servers know that Anthropic takes under the same name.
_ANTHROPIC_NATIVE = frozenset({"top_k", "thinking"})


@dataclass(slots=True)
class AnthropicRequest:
    body: dict[str, Any]
    json_mode: bool = False  # the answer is the input of the JSON_TOOL_NAME tool


def openai_to_anthropic(
    body: dict[str, Any],
    *,
    model: str,
    stream: bool,
    label: str,
    drop_params: bool = False,
    also_drop: frozenset[str] = frozenset(),
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
) -> AnthropicRequest:
    """The Anthropic Messages body for an OpenAI chat body; 400s name what cannot be said.

    Fields named in ``also_drop`` (a request's ``additional_drop_params``) are ignored.
    """
    target = Target(label, drop_params=drop_params)
    if also_drop and not also_drop.isdisjoint(body):
        body = {k: v for k, v in body.items() if k not in also_drop}
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise InvalidRequestError("'messages' must be a list", param="messages")
    system, converted = convert_messages(messages, target)
    out: dict[str, Any] = {"model": model, "messages": converted}
    if system:
        out["system"] = system
    explicit_max = _max_tokens(body)
    out["max_tokens"] = explicit_max or default_max_tokens
    _copy_passthrough(body, out, target)
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = list(stop)
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    user = body.get("user")
    if isinstance(user, str) and user and "@" not in user:  # Anthropic refuses e-mail ids
        out["metadata"] = {"user_id": user}
    n = body.get("n")
    if n is not None and n != 1:
        target.unsupported("n", f"n={n} (more than one choice per request)")
    if stream:
        out["stream"] = True
    _thinking(body, out, explicit_max is not None, default_max_tokens)
    tools = _tools(body, target)
    json_mode = _response_format(body, out, tools)
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body, out, json_mode)
        if choice is not None:
            out["tool_choice"] = choice
    _web_search(body, out)
    return AnthropicRequest(out, json_mode)


def _max_tokens(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequestError(f"'{name}' must be a positive integer", param=name)
        return value
    return None


def _copy_passthrough(body: dict[str, Any], out: dict[str, Any], target: Target) -> None:
    refused: list[str] = []
    for name, value in body.items():
        if name in _TRANSLATED or name in GATEWAY_FIELDS:
            continue
        if name in _NEUTRAL:
            if value is not None and value != _NEUTRAL[name]:
                refused.append(name)
            continue
        if name in _ANTHROPIC_NATIVE:
            out[name] = value
        elif name in CHAT_PARAMS or name in PROVIDER_EXTRA_PARAMS:
            refused.append(name)
        elif not target.drop_params:
            out[name] = value  # provider-specific (mcp_servers, container…): Anthropic's call
    if refused and not target.drop_params:
        names = ", ".join(f"'{n}'" for n in sorted(refused))
        raise InvalidRequestError(
            f"{names} {'is' if len(refused) == 1 else 'are'} not supported by {target.label} "
            "(Anthropic has no equivalent); remove "
            f"{'it' if len(refused) == 1 else 'them'} or set drop_params: true to drop "
            f"{'it' if len(refused) == 1 else 'them'}",
            param=refused[0] if len(refused) == 1 else None,
        )


def _thinking(
    body: dict[str, Any], out: dict[str, Any], explicit_max: bool, default_max: int
) -> None:
    thinking = body.get("thinking")
    effort = body.get("reasoning_effort")
    if thinking is None and effort is not None and effort != "none":
        if effort not in THINKING_BUDGETS:
            allowed = ", ".join([*THINKING_BUDGETS, "none"])
            raise InvalidRequestError(
                f"'reasoning_effort' must be one of {allowed}", param="reasoning_effort"
            )
        thinking = {"type": "enabled", "budget_tokens": THINKING_BUDGETS[effort]}
    if thinking is None:
        return
    out["thinking"] = thinking
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    if not isinstance(budget, int) or budget < out["max_tokens"]:
        return
    # Anthropic requires max_tokens > budget_tokens.
    if not explicit_max:
        out["max_tokens"] = budget + default_max
    elif out["max_tokens"] - 1 >= MIN_THINKING_BUDGET:
        out["thinking"] = {**thinking, "budget_tokens": out["max_tokens"] - 1}
    else:
        raise InvalidRequestError(
            f"max_tokens ({out['max_tokens']}) must be larger than the thinking budget; "
            f"extended thinking needs at least {MIN_THINKING_BUDGET + 1}",
            param="max_tokens",
        )


def _tools(body: dict[str, Any], target: Target) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    raw_tools = body.get("tools")
    if raw_tools is not None and not isinstance(raw_tools, list):
        raise InvalidRequestError("'tools' must be a list", param="tools")
    for index, tool in enumerate(raw_tools or []):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise InvalidRequestError(f"{where} must be an object", param=where)
        kind = tool.get("type")
        if kind == "function":
            converted = _function_tool(tool.get("function"), where)
            if "cache_control" in tool:
                converted["cache_control"] = tool["cache_control"]
            tools.append(converted)
        elif isinstance(tool.get("name"), str) and "function" not in tool:
            tools.append(tool)  # an Anthropic tool as it is (web_search_…, bash_…, computer_…)
        else:
            target.unsupported(where, f"a tool of type '{kind}'")
    functions = body.get("functions")
    if isinstance(functions, list):
        for index, function in enumerate(functions):
            tools.append(_function_tool(function, f"functions[{index}]"))
    return tools


def _function_tool(function: Any, where: str) -> dict[str, Any]:
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequestError(f"{where} needs a function with a name", param=where)
    schema = function.get("parameters")
    if not isinstance(schema, dict):
        schema = {"type": "object", "properties": {}}
    tool: dict[str, Any] = {"name": function["name"], "input_schema": schema}
    if isinstance(function.get("description"), str):
        tool["description"] = function["description"]
    return tool


def _tool_choice(body: dict[str, Any], out: dict[str, Any], json_mode: bool) -> Any:
    if json_mode and "tool_choice" in out:
        choice: dict[str, Any] | None = out["tool_choice"]
    else:
        choice = _map_tool_choice(body.get("tool_choice", body.get("function_call")))
    if body.get("parallel_tool_calls") is False:
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if choice["type"] == "none":
            choice.pop("disable_parallel_tool_use")
    return choice


def _map_tool_choice(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if value == "auto":
        return {"type": "auto"}
    if value == "required":
        return {"type": "any"}
    if value == "none":
        return {"type": "none"}
    if isinstance(value, dict):
        function = value.get("function") if value.get("type") == "function" else value
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return {"type": "tool", "name": name}
    raise InvalidRequestError(
        '\'tool_choice\' must be auto, required, none or {"type": "function", '
        '"function": {"name": …}}',
        param="tool_choice",
    )


def _response_format(
    body: dict[str, Any], out: dict[str, Any], tools: list[dict[str, Any]]
) -> bool:
    value = body.get("response_format")
    if value is None:
        return False
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return False
    if kind == "json_object":
        schema: dict[str, Any] = {"type": "object", "additionalProperties": True, "properties": {}}
    elif kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None  # type: ignore[assignment]
        if not isinstance(schema, dict):
            raise InvalidRequestError(
                "response_format.json_schema.schema must be a JSON schema object",
                param="response_format",
            )
    else:
        raise InvalidRequestError(
            "response_format.type must be text, json_object or json_schema",
            param="response_format",
        )
    tools.append(
        {
            "name": JSON_TOOL_NAME,
            "description": "Respond with a JSON object in exactly this format.",
            "input_schema": schema,
        }
    )
    thinking = out.get("thinking")
    if not (isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")):
        out["tool_choice"] = {"type": "tool", "name": JSON_TOOL_NAME}
    return True


def _web_search(body: dict[str, Any], out: dict[str, Any]) -> None:
    options = body.get("web_search_options")
    if not isinstance(options, dict):
        return
    tool: dict[str, Any] = {"type": _WEB_SEARCH_TOOL, "name": "web_search"}
    size = options.get("search_context_size")
    if size in _SEARCH_MAX_USES:
        tool["max_uses"] = _SEARCH_MAX_USES[size]
    location = options.get("user_location")
    approximate = location.get("approximate") if isinstance(location, dict) else None
    if isinstance(approximate, dict):
        tool["user_location"] = {"type": "approximate", **approximate}
    out.setdefault("tools", []).append(tool)
