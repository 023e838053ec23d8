"""An OpenAI chat completion, rewritten as an Anthropic Messages answer. Pure.

The message keeps the model name the client asked for. Its id is ``msg_`` plus
the completion's id (without ``chatcmpl-``); tool calls keep their ids, so the
client's tool results find their way back. ``reasoning_content`` (DeepSeek, vLLM,
Ollama…) becomes a thinking block with an empty signature.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from bastion.core.errors import UpstreamStatusError
from bastion.dialects.usage import anthropic_usage_dict, usage_from_openai

JSON = dict[str, Any]

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def message_id(openai_id: Any) -> str:
    if isinstance(openai_id, str) and openai_id:
        return "msg_" + openai_id.removeprefix("chatcmpl-")
    return "msg_" + uuid.uuid4().hex


def tool_use_id(openai_id: Any) -> str:
    if isinstance(openai_id, str) and openai_id:
        return openai_id
    return "toolu_" + uuid.uuid4().hex


def stop_reason(
    finish_reason: Any, choice: JSON, request: JSON, used_tools: bool
) -> tuple[str, str | None]:
    """Anthropic's (stop_reason, stop_sequence) for an OpenAI choice's finish_reason.

    OpenAI does not say which stop string matched; vLLM and SGLang do (``stop_reason``
    / ``matched_stop`` on the choice), and then the answer says ``stop_sequence``.
    """
    if finish_reason in ("stop", None) and used_tools:
        return "tool_use", None
    if finish_reason == "stop":
        matched = choice.get("stop_reason", choice.get("matched_stop"))
        stops = request.get("stop_sequences")
        if isinstance(matched, str) and isinstance(stops, list) and matched in stops:
            return "stop_sequence", matched
    if finish_reason is None:
        return "end_turn", None
    return STOP_REASONS.get(str(finish_reason), "end_turn"), None


def tool_input(arguments: Any) -> JSON:
    """A tool call's parsed arguments; text that is not a JSON object is kept, not lost."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": arguments}


def reasoning_of(message: JSON) -> str | None:
    value = message.get("reasoning_content")
    if value is None:
        value = message.get("reasoning")
    return value if isinstance(value, str) and value else None


def openai_to_anthropic_response(body: bytes, request: JSON) -> bytes:
    """The Anthropic message for an OpenAI chat completion body."""
    try:
        completion = orjson.loads(body)
    except orjson.JSONDecodeError:
        completion = None
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not isinstance(completion, dict) or not isinstance(choices, list) or not choices:
        raise UpstreamStatusError(
            "the upstream answered 200 without a chat completion (no 'choices')",
            status=502,
            error_type="api_error",
        )
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message")
    if not isinstance(message, dict):
        message = {}
    content: list[JSON] = []
    reasoning = reasoning_of(message)
    if reasoning is not None:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append({"type": "text", "text": refusal})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        content.append(
            {
                "type": "tool_use",
                "id": tool_use_id(call.get("id")),
                "name": str(function.get("name") or ""),
                "input": tool_input(function.get("arguments")),
            }
        )
    used_tools = any(block["type"] == "tool_use" for block in content)
    reason, sequence = stop_reason(choice.get("finish_reason"), choice, request, used_tools)
    if isinstance(refusal, str) and refusal:
        reason = "refusal"
    answer = {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": request.get("model"),
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": anthropic_usage_dict(usage_from_openai(completion.get("usage"))),
    }
    return orjson.dumps(answer)
