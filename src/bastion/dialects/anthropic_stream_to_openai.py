"""Anthropic Messages SSE → OpenAI ``chat.completion.chunk`` SSE, event by event.

``AnthropicStreamTranslator`` is pure (events in, bytes out) so whole transcripts can be
tested; ``openai_stream_from_anthropic`` drives it over an upstream byte stream, split
anywhere. What each Anthropic event becomes:

* ``message_start`` → the first chunk, ``{"role": "assistant", "content": ""}``;
* a ``tool_use`` block start → a tool call delta with its index, id and name, then each
  ``input_json_delta`` → an argument fragment for that index (empty fragments skipped);
* ``text_delta`` → ``content``; ``thinking_delta`` → ``reasoning_content``;
* ``message_delta`` → the finish chunk (``finish_reason`` mapped);
* ``message_stop`` → the usage chunk (only if the client asked for
  ``stream_options.include_usage``), then ``[DONE]``;
* ``error`` → UpstreamStatusError, which the HTTP layer turns into the client's error
  event; a stream that ends before ``message_stop`` → UpstreamConnectionError.

Chunks share one pre-encoded envelope: per event only the delta is encoded.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson

from bastion.core.errors import UpstreamConnectionError, UpstreamError
from bastion.dialects.anthropic_response_to_openai import (
    error_from_event,
    finish_reason,
    openai_usage,
)
from bastion.dialects.openai_to_anthropic import JSON_TOOL_NAME
from bastion.dialects.sse import SSEEvent, SSEParser

DONE = b"data: [DONE]\n\n"
_NO_FINISH = b',"finish_reason":null}]}\n\n'
# How each content block index is relayed.
_TEXT, _TOOL, _JSON, _THINKING, _OTHER = range(5)


class AnthropicStreamTranslator:
    def __init__(
        self,
        *,
        include_usage: bool = False,
        json_mode: bool = False,
        model: str = "",
        created: int | None = None,
        provider: str = "anthropic",
    ) -> None:
        self.include_usage = include_usage
        self.json_mode = json_mode
        self.provider = provider
        self.done = False
        self._model = model
        self._created = int(time.time()) if created is None else created
        self._head = self._envelope("chatcmpl-anthropic", model)  # until message_start
        self._usage: dict[str, Any] = {}
        self._blocks: dict[int, tuple[int, int]] = {}  # block index → (kind, tool index)
        self._tools = 0
        self._json_answer = False
        self._finished = False

    def feed(self, event: SSEEvent) -> bytes:
        """The OpenAI SSE bytes for one Anthropic event (often none)."""
        if event.event == "ping" or not event.data:
            return b""
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise UpstreamConnectionError(
                f"{self.provider}: stream sent an event that is not JSON", provider=self.provider
            ) from None
        if not isinstance(data, dict):
            return b""
        kind = data.get("type", event.event)
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "message_start":
            return self._message_start(data)
        if kind == "message_delta":
            return self._message_delta(data)
        if kind == "message_stop":
            return self._message_stop()
        if kind == "error":
            raise error_from_event(data, self.provider)
        return b""  # content_block_stop, ping, and event types added later

    def finish(self) -> None:
        """Call when the upstream ended: a stream cut before message_stop is an error."""
        if not self.done:
            raise UpstreamConnectionError(
                f"{self.provider}: the stream ended before message_stop", provider=self.provider
            )

    # -- events ----------------------------------------------------------------------------

    def _message_start(self, data: dict[str, Any]) -> bytes:
        message = data.get("message")
        message = message if isinstance(message, dict) else {}
        model = message.get("model") or self._model
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._usage.update(usage)
        self._head = self._envelope(message.get("id") or "chatcmpl-anthropic", model)
        return self._chunk(b'{"role":"assistant","content":""}')

    def _block_start(self, data: dict[str, Any]) -> bytes:
        index = data.get("index")
        block = data.get("content_block")
        if not isinstance(index, int) or not isinstance(block, dict):
            return b""
        kind = block.get("type")
        if kind == "text":
            self._blocks[index] = (_TEXT, 0)
            text = block.get("text")
            return self._chunk(orjson.dumps({"content": text})) if text else b""
        if kind == "tool_use":
            if self.json_mode and block.get("name") == JSON_TOOL_NAME:
                self._blocks[index] = (_JSON, 0)
                self._json_answer = True
                return b""
            tool = self._tools
            self._tools += 1
            self._blocks[index] = (_TOOL, tool)
            call = {
                "index": tool,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return self._chunk(orjson.dumps({"tool_calls": [call]}))
        if kind == "thinking":
            self._blocks[index] = (_THINKING, 0)
            thinking = block.get("thinking")
            return self._chunk(orjson.dumps({"reasoning_content": thinking})) if thinking else b""
        self._blocks[index] = (_OTHER, 0)
        return b""

    def _delta(self, data: dict[str, Any]) -> bytes:
        delta = data.get("delta")
        if not isinstance(delta, dict):
            return b""
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return self._chunk(orjson.dumps({"content": text})) if text else b""
        if kind == "input_json_delta":
            fragment = delta.get("partial_json")
            if not fragment:
                return b""
            index = data.get("index")
            block_kind, tool = self._blocks.get(index, (_OTHER, 0))  # type: ignore[arg-type]
            if block_kind == _TOOL:
                call = {"index": tool, "function": {"arguments": fragment}}
                return self._chunk(orjson.dumps({"tool_calls": [call]}))
            if block_kind == _JSON:
                return self._chunk(orjson.dumps({"content": fragment}))
            return b""
        if kind == "thinking_delta":
            thinking = delta.get("thinking")
            return self._chunk(orjson.dumps({"reasoning_content": thinking})) if thinking else b""
        return b""  # signature_delta, citations_delta…

    def _message_delta(self, data: dict[str, Any]) -> bytes:
        usage = data.get("usage")
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})
        delta = data.get("delta")
        stop_reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        return self._finish_chunk(stop_reason)

    def _message_stop(self) -> bytes:
        out = b"" if self._finished else self._finish_chunk(None)
        if self.include_usage:
            out += (
                self._head
                + b',"choices":[],"usage":'
                + orjson.dumps(openai_usage(self._usage))
                + b"}\n\n"
            )
        self.done = True
        return out + DONE

    # -- encoding --------------------------------------------------------------------------

    def _envelope(self, message_id: Any, model: Any) -> bytes:
        return (
            b'data: {"id":'
            + orjson.dumps(message_id)
            + b',"object":"chat.completion.chunk","created":'
            + str(self._created).encode()
            + b',"model":'
            + orjson.dumps(model)
        )

    def _chunk(self, delta: bytes) -> bytes:
        return self._head + b',"choices":[{"index":0,"delta":' + delta + _NO_FINISH

    def _finish_chunk(self, stop_reason: Any) -> bytes:
        if self._finished:
            return b""
        self._finished = True
        reason = finish_reason(stop_reason)
        if reason == "tool_calls" and self._json_answer and not self._tools:
            reason = "stop"
        return (
            self._head
            + b',"choices":[{"index":0,"delta":{},"finish_reason":"'
            + reason.encode()
            + b'"}]}\n\n'
        )


async def openai_stream_from_anthropic(
    chunks: AsyncIterator[bytes], translator: AnthropicStreamTranslator
) -> AsyncIterator[bytes]:
    """Translate upstream bytes as they arrive: one output write per upstream read."""
    parser = SSEParser()
    async for chunk in chunks:
        out, error = _translate(parser.feed(chunk), translator)
        if out:
            yield out
        if error is not None:
            raise error
    out, error = _translate(parser.close(), translator)
    if out:
        yield out
    if error is not None:
        raise error
    translator.finish()


def _translate(
    events: Iterator[SSEEvent], translator: AnthropicStreamTranslator
) -> tuple[bytes, UpstreamError | None]:
    """The bytes for these events; an error comes after what was translated before it."""
    parts: list[bytes] = []
    try:
        for event in events:
            if translator.done:
                break
            part = translator.feed(event)
            if part:
                parts.append(part)
    except UpstreamError as error:
        return b"".join(parts), error
    return b"".join(parts), None
