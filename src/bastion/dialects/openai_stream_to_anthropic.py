"""OpenAI chat-completion SSE in, Anthropic Messages SSE out, as the Anthropic API sends it.

One ``AnthropicStreamTranslator`` per stream: feed it upstream bytes as they come
(split anywhere), get Anthropic event bytes back. The output is

    message_start, ping,
    (content_block_start, content_block_delta…, content_block_stop)…,
    message_delta (stop_reason, stop_sequence, usage), message_stop

Text, reasoning (``reasoning_content``: a thinking block) and each tool call (one
tool_use block per OpenAI tool-call index, its arguments as ``input_json_delta``
fragments) open a block each; a block closes when another kind starts or the
choice finishes. Empty deltas produce nothing. OpenAI sends ``finish_reason``
before the usage chunk, so ``message_delta`` waits for ``[DONE]`` (or the end of
the stream) and then carries the final usage: output, input and cache tokens.

An error event from the upstream becomes ``translator.error`` (an UpstreamError,
which the HTTP layer renders as Anthropic's ``event: error``); a stream that ends
before any finish becomes one as well. Only the first choice is translated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from bastion.core.errors import UpstreamConnectionError, UpstreamError, UpstreamStatusError
from bastion.dialects.openai_response_to_anthropic import message_id, stop_reason, tool_use_id
from bastion.dialects.sse_reader import SSEReader
from bastion.dialects.usage import anthropic_usage_dict, usage_from_openai

JSON = dict[str, Any]

_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_TEXT_DELTA = b',"delta":{"type":"text_delta","text":'
_JSON_DELTA = b',"delta":{"type":"input_json_delta","partial_json":'
_THINKING_DELTA = b',"delta":{"type":"thinking_delta","thinking":'
_DELTA_TAIL = b"}}\n\n"
_STOP_HEAD = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
_PING = b'event: ping\ndata: {"type":"ping"}\n\n'
_MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'

# OpenAI error types (and codes) by the HTTP status the error would have had.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "overloaded_error": 529,
    "timeout": 408,
}


def _event(name: str, payload: JSON) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class AnthropicStreamTranslator:
    __slots__ = (
        "_block",
        "_choice",
        "_finish",
        "_open",
        "_open_tool",
        "_reader",
        "_refusal",
        "_request",
        "_started",
        "_tool_blocks",
        "_tool_ids",
        "_usage",
        "done",
        "error",
    )

    def __init__(self, request: JSON) -> None:
        self._request = request
        self._reader = SSEReader()
        self._started = False
        self._block = -1  # index of the last block opened
        self._open: str | None = None  # kind of the open block: text, thinking or tool_use
        self._open_tool: int | None = None  # OpenAI tool-call index of the open tool block
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool-call index → block index
        self._tool_ids: dict[str, int] = {}  # tool-call id → OpenAI tool-call index
        self._finish: Any = None
        self._choice: JSON = {}
        self._usage: Any = None
        self._refusal = False
        self.done = False  # message_stop sent
        self.error: UpstreamError | None = None

    def feed(self, data: bytes) -> bytes:
        """Anthropic event bytes for these upstream bytes (maybe none)."""
        if self.done or self.error is not None:
            return b""
        out: list[bytes] = []
        for name, payload in self._reader.feed(data):
            self._handle(name, payload, out)
            if self.done or self.error is not None:
                break
        return b"".join(out)

    def close(self) -> bytes:
        """The upstream ended: the closing events, or ``error`` if the answer was cut short."""
        if self.done or self.error is not None:
            return b""
        out: list[bytes] = []
        for name, payload in self._reader.close():
            self._handle(name, payload, out)
        if not self.done and self.error is None:
            if self._finish is None:
                self.error = UpstreamConnectionError(
                    "the upstream stream ended before the answer was complete"
                )
            else:
                self._finalize(out)
        return b"".join(out)

    # -- events ----------------------------------------------------------------------------

    def _handle(self, name: str | None, data: bytes, out: list[bytes]) -> None:
        if data == b"[DONE]":
            if not self._started:
                self._start({}, out)
            self._finalize(out)
            return
        if not data:
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.error = UpstreamStatusError(
                "the upstream sent a stream event that is not JSON", status=502
            )
            return
        if not isinstance(chunk, dict):
            return
        if "error" in chunk or name == "error":
            self.error = _stream_error(chunk.get("error", chunk))
            return
        usage = chunk.get("usage")
        choices = chunk.get("choices")
        if not self._started and (choices or usage):
            # Not on Azure's leading prompt-filter chunk: it has no choices and no id.
            self._start(chunk, out)
        if usage:
            self._usage = usage
        if not choices or not isinstance(choices, list):
            return
        choice = choices[0]
        if not isinstance(choice, dict) or choice.get("index") not in (0, None):
            return
        delta = choice.get("delta")
        if delta and isinstance(delta, dict):
            self._delta(delta, out)
        finish = choice.get("finish_reason")
        if finish:
            self._finish = finish
            self._choice = choice
            self._close_block(out)

    def _start(self, chunk: JSON, out: list[bytes]) -> None:
        self._started = True
        usage = anthropic_usage_dict(usage_from_openai(chunk.get("usage")))
        usage["output_tokens"] = 0
        message: JSON = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": self._request.get("model"),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        out.append(_event("message_start", {"type": "message_start", "message": message}))
        out.append(_PING)

    def _delta(self, delta: JSON, out: list[bytes]) -> None:
        reasoning = delta.get("reasoning_content")
        if reasoning is None:
            reasoning = delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            if self._open != "thinking":
                self._open_block(
                    "thinking", {"type": "thinking", "thinking": "", "signature": ""}, out
                )
            out.append(self._delta_bytes(_THINKING_DELTA, reasoning))
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._text(content, out)
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._refusal = True
            self._text(refusal, out)
        calls = delta.get("tool_calls")
        if calls and isinstance(calls, list):
            for call in calls:
                if isinstance(call, dict):
                    self._tool_call(call, out)

    def _text(self, text: str, out: list[bytes]) -> None:
        if self._open != "text":
            self._open_block("text", {"type": "text", "text": ""}, out)
        out.append(self._delta_bytes(_TEXT_DELTA, text))

    def _tool_call(self, call: JSON, out: list[bytes]) -> None:
        index = call.get("index")
        call_id = call.get("id")
        if not isinstance(index, int):
            # Some servers omit the index and send each call whole, with its id.
            if isinstance(call_id, str) and call_id:
                index = self._tool_ids.get(call_id, len(self._tool_blocks))
            else:
                index = self._open_tool if self._open_tool is not None else 0
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        block = self._tool_blocks.get(index)
        if block is None:
            start = {
                "type": "tool_use",
                "id": tool_use_id(call_id),
                "name": str(function.get("name") or ""),
                "input": {},
            }
            block = self._open_block("tool_use", start, out)
            self._tool_blocks[index] = block
            self._open_tool = index
            if isinstance(call_id, str) and call_id:
                self._tool_ids[call_id] = index
        # A fragment for a call whose block was closed (OpenAI never interleaves calls)
        # still goes to that call's block index, by which clients accumulate.
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = orjson.dumps(arguments).decode()
        if isinstance(arguments, str) and arguments:
            out.append(
                _DELTA_HEAD
                + str(block).encode()
                + _JSON_DELTA
                + orjson.dumps(arguments)
                + _DELTA_TAIL
            )

    # -- blocks ----------------------------------------------------------------------------

    def _delta_bytes(self, kind: bytes, text: str) -> bytes:
        return _DELTA_HEAD + str(self._block).encode() + kind + orjson.dumps(text) + _DELTA_TAIL

    def _open_block(self, kind: str, block: JSON, out: list[bytes]) -> int:
        self._close_block(out)
        self._block += 1
        self._open = kind
        out.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": self._block, "content_block": block},
            )
        )
        return self._block

    def _close_block(self, out: list[bytes]) -> None:
        if self._open is None:
            return
        out.append(_STOP_HEAD + str(self._block).encode() + b"}\n\n")
        self._open = None
        self._open_tool = None

    def _finalize(self, out: list[bytes]) -> None:
        self._close_block(out)
        reason, sequence = stop_reason(
            self._finish, self._choice, self._request, bool(self._tool_blocks)
        )
        if self._refusal:
            reason = "refusal"
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": anthropic_usage_dict(usage_from_openai(self._usage)),
        }
        out.append(_event("message_delta", delta))
        out.append(_MESSAGE_STOP)
        self.done = True


def _stream_error(error: Any) -> UpstreamStatusError:
    """An OpenAI error object that arrived inside a stream."""
    if not isinstance(error, dict):
        return UpstreamStatusError(f"upstream stream error: {error}", status=500)
    message = error.get("message")
    kind = error.get("type")
    code = error.get("code")
    status = _ERROR_STATUS.get(str(kind)) or _ERROR_STATUS.get(str(code)) or 500
    if isinstance(code, int) and 400 <= code <= 599:
        status = code
    return UpstreamStatusError(
        f"upstream stream error: {message if isinstance(message, str) and message else kind}",
        status=status,
        error_type=str(kind) if isinstance(kind, str) else None,
    )


def _untranslatable(exc: Exception) -> UpstreamStatusError:
    """An upstream chunk of a shape no OpenAI-compatible server should send."""
    return UpstreamStatusError(
        f"the upstream stream could not be translated ({type(exc).__name__}: {exc})", status=502
    )


async def anthropic_stream_from_openai(
    chunks: AsyncIterator[bytes], request: JSON
) -> AsyncIterator[bytes]:
    """Translate an upstream OpenAI SSE byte stream; an upstream error is raised, not yielded."""
    translator = AnthropicStreamTranslator(request)
    async for chunk in chunks:
        try:
            out = translator.feed(chunk)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            raise _untranslatable(exc) from exc
        if out:
            yield out
        if translator.error is not None:
            raise translator.error
    try:
        out = translator.close()
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        raise _untranslatable(exc) from exc
    if out:
        yield out
    if translator.error is not None:
        raise translator.error
