"""Bedrock Converse answers → OpenAI chat completions, whole or streamed. Pure.

``output.message.content`` blocks become the message's text, ``tool_calls``
(``toolUse``: id, name, input serialised as the arguments string) and
``reasoning_content`` (``reasoningContent`` blocks, as LiteLLM names it);
``stopReason`` becomes ``finish_reason``; ``usage`` becomes OpenAI's usage, with the
cache read and write counts that Converse reports apart from ``inputTokens``.

A stream arrives as ConverseStream events (already decoded from their event-stream
frames): ``messageStart``, ``contentBlockStart`` (a tool call's id and name),
``contentBlockDelta`` (text, tool input JSON fragments, reasoning text),
``contentBlockStop``, ``messageStop`` (the stop reason), ``metadata`` (usage).
``ConverseStreamState`` turns each into the ``chat.completion.chunk`` SSE events an
OpenAI client expects: a finish chunk at ``messageStop``, a usage chunk (when the
client asked with ``stream_options.include_usage``) at ``metadata``, then ``[DONE]``.
"""

from __future__ import annotations

from typing import Any

import orjson

from bastion.core.usage import Usage
from bastion.dialects.usage import openai_usage_dict

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
DONE = b"data: [DONE]\n\n"


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(str(stop_reason), "stop")


def usage_from_converse(raw: Any) -> Usage:
    """Converse ``usage``: ``inputTokens`` excludes the cache reads and writes."""
    if not isinstance(raw, dict):
        return Usage()
    return Usage(
        input_tokens=_int(raw.get("inputTokens")),
        output_tokens=_int(raw.get("outputTokens")),
        cached_input_tokens=_int(raw.get("cacheReadInputTokens")),
        cache_creation_input_tokens=_int(raw.get("cacheWriteInputTokens")),
    )


def openai_usage(usage: Usage) -> dict[str, Any]:
    """OpenAI's usage, plus the flat cache fields LiteLLM adds for Anthropic-family models."""
    out = openai_usage_dict(usage)
    out["cache_read_input_tokens"] = usage.cached_input_tokens
    out["cache_creation_input_tokens"] = usage.cache_creation_input_tokens
    return out


def chat_completion(
    answer: dict[str, Any], *, model: str, completion_id: str, created: int
) -> dict[str, Any]:
    """The OpenAI chat completion for a Converse answer."""
    output = answer.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        if "text" in block:
            texts.append(str(block["text"]))
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            calls.append(
                {
                    "id": str(use.get("toolUseId") or ""),
                    "type": "function",
                    "function": {
                        "name": str(use.get("name") or ""),
                        "arguments": orjson.dumps(use.get("input", {})).decode(),
                    },
                }
            )
        elif isinstance(block.get("reasoningContent"), dict):
            text = (block["reasoningContent"].get("reasoningText") or {}).get("text")
            if text:
                reasoning.append(str(text))
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
    }
    if calls:
        reply["tool_calls"] = calls
    if reasoning:
        reply["reasoning_content"] = "".join(reasoning)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": finish_reason(answer.get("stopReason")),
                "logprobs": None,
            }
        ],
        "usage": openai_usage(usage_from_converse(answer.get("usage"))),
    }


class ConverseStreamState:
    """ConverseStream events in, OpenAI ``chat.completion.chunk`` SSE bytes out."""

    __slots__ = (
        "_head",
        "_include_usage",
        "_tool_index",
        "finished",
        "usage",
    )

    def __init__(
        self, *, model: str, completion_id: str, created: int, include_usage: bool
    ) -> None:
        # Every chunk starts the same way: serialise that prefix once.
        self._head = (
            b'data: {"id":'
            + orjson.dumps(completion_id)
            + b',"object":"chat.completion.chunk","created":'
            + str(created).encode()
            + b',"model":'
            + orjson.dumps(model)
            + b',"choices":'
        )
        self._include_usage = include_usage
        self._tool_index: dict[int, int] = {}  # content block index → tool_calls index
        self.finished = False  # messageStop seen
        self.usage: Usage | None = None

    def event(self, event_type: str, data: dict[str, Any]) -> bytes:
        """SSE bytes for one decoded event (often one chunk, sometimes none)."""
        if event_type == "contentBlockDelta":
            delta = data.get("delta")
            if not isinstance(delta, dict):
                return b""
            if "text" in delta:
                text = delta["text"]
                return self._delta({"content": text}) if text else b""
            use = delta.get("toolUse")
            if isinstance(use, dict):
                index = self._tool_for(data.get("contentBlockIndex"))
                fragment = {"index": index, "function": {"arguments": str(use.get("input", ""))}}
                return self._delta({"tool_calls": [fragment]})
            reasoning = delta.get("reasoningContent")
            if isinstance(reasoning, dict) and reasoning.get("text"):
                return self._delta({"reasoning_content": reasoning["text"]})
            return b""
        if event_type == "contentBlockStart":
            start = data.get("start")
            use = start.get("toolUse") if isinstance(start, dict) else None
            if not isinstance(use, dict):
                return b""
            block = data.get("contentBlockIndex")
            index = self._tool_index.setdefault(_int(block), len(self._tool_index))
            call = {
                "index": index,
                "id": str(use.get("toolUseId") or ""),
                "type": "function",
                "function": {"name": str(use.get("name") or ""), "arguments": ""},
            }
            return self._delta({"tool_calls": [call]})
        if event_type == "messageStart":
            return self._delta({"role": "assistant", "content": ""})
        if event_type == "messageStop":
            self.finished = True
            reason = finish_reason(data.get("stopReason"))
            return (
                self._head
                + b'[{"index":0,"delta":{},"finish_reason":"'
                + reason.encode()
                + (b'"}]}\n\n')
            )
        if event_type == "metadata":
            self.usage = usage_from_converse(data.get("usage"))
            if not self._include_usage:
                return b""
            return self._head + b'[],"usage":' + orjson.dumps(openai_usage(self.usage)) + b"}\n\n"
        return b""  # contentBlockStop and events added later carry nothing for OpenAI

    def _tool_for(self, block: Any) -> int:
        index = self._tool_index.get(_int(block))
        if index is None:  # a delta without its start: give it the next index
            index = self._tool_index.setdefault(_int(block), len(self._tool_index))
        return index

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return (
            self._head
            + b'[{"index":0,"delta":'
            + orjson.dumps(delta)
            + b',"finish_reason":null}]}\n\n'
        )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
