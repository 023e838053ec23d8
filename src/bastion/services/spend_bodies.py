"""Request and response bodies for spend-log rows (``store_prompts_in_spend_logs``).

Off by default, and always off with ``litellm_settings.turn_off_message_logging``:
then nothing here runs. When on, a row keeps the request's messages (the ``input``
or ``prompt`` of calls without messages) and the answer: the answer's JSON for a
non-streamed call, ``{"stream": true, "content": <assembled text>}`` for a stream.

Stored bodies are bounded: a string longer than ``max_string`` characters keeps its
head and tail around a ``…[N characters truncated by bastion]…`` marker (LiteLLM
truncates at ``MAX_STRING_LENGTH_PROMPT_IN_DB``, whose value is honoured), and a
body still larger than ``max_bytes`` of JSON is replaced by
``{"bastion_truncated": true, "bytes": N, "head": <the first max_bytes characters>}``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from bastion.core.dialect import Dialect
from bastion.providers.base import ProviderStream

MAX_STRING_ENV = "MAX_STRING_LENGTH_PROMPT_IN_DB"
DEFAULT_MAX_STRING = 2048  # LiteLLM's default
DEFAULT_MAX_BYTES = 256 * 1024
_INPUT_FIELDS = ("messages", "input", "prompt", "contents")


@dataclass(frozen=True, slots=True)
class SpendBodies:
    max_string: int = DEFAULT_MAX_STRING
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_environment(cls) -> SpendBodies:
        raw = os.environ.get(MAX_STRING_ENV, "")
        try:
            max_string = int(raw) if raw else DEFAULT_MAX_STRING
        except ValueError:
            max_string = DEFAULT_MAX_STRING
        return cls(max_string=max(max_string, 16))

    def request(self, body: dict[str, Any], dialect: Dialect) -> Any:
        """What a spend-log row keeps of a request (before the gateway changes it)."""
        value: Any = None
        for name in _INPUT_FIELDS:
            if name in body:
                value = body[name]
                break
        system = body.get("system") if dialect is Dialect.ANTHROPIC else None
        if system is not None and isinstance(value, list):
            value = [{"role": "system", "content": system}, *value]
        return self.bounded(value)

    def answer(self, body: bytes) -> Any:
        """A non-streamed answer, parsed only when small enough to keep."""
        if len(body) > self.max_bytes * 4:
            return self._head(body.decode("utf-8", "replace"), len(body))
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            value = body.decode("utf-8", "replace")
        return self.bounded(value)

    def streamed(self, text: str) -> Any:
        return self.bounded({"stream": True, "content": text})

    def bounded(self, value: Any) -> Any:
        value = self._cut_strings(value)
        size = len(orjson.dumps(value, default=str))
        if size <= self.max_bytes:
            return value
        return self._head(orjson.dumps(value, default=str).decode(), size)

    def _head(self, text: str, size: int) -> dict[str, Any]:
        return {"bastion_truncated": True, "bytes": size, "head": text[: self.max_bytes]}

    def _cut_strings(self, value: Any) -> Any:
        if isinstance(value, str):
            if len(value) <= self.max_string:
                return value
            keep_tail = self.max_string // 5
            keep_head = self.max_string - keep_tail
            cut = len(value) - keep_head - keep_tail
            return (
                f"{value[:keep_head]}…[{cut} characters truncated by bastion]…"
                f"{value[len(value) - keep_tail :] if keep_tail else ''}"
            )
        if isinstance(value, list):
            return [self._cut_strings(v) for v in value]
        if isinstance(value, dict):
            return {k: self._cut_strings(v) for k, v in value.items()}
        return value


class StreamTranscript:
    """The text of a stream's answer, read from the events as they pass (whole events,
    as services/metered_stream.py relays them): OpenAI ``choices[0].delta.content``
    (``text`` for completions), Anthropic ``text_delta`` blocks."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._parts: list[str] = []

    def text(self) -> str:
        return "".join(self._parts)

    def feed(self, chunk: bytes) -> None:
        for event in chunk.replace(b"\r\n", b"\n").split(b"\n\n"):
            lines = [ln[5:].strip() for ln in event.split(b"\n") if ln.startswith(b"data:")]
            if not lines or lines[0] == b"[DONE]":
                continue
            try:
                data = orjson.loads(b"\n".join(lines))
            except orjson.JSONDecodeError:
                continue
            if isinstance(data, dict):
                piece = self._piece(data)
                if piece:
                    self._parts.append(piece)

    def _piece(self, data: dict[str, Any]) -> str | None:
        if self._dialect is Dialect.ANTHROPIC:
            delta = data.get("delta")
            if data.get("type") == "content_block_delta" and isinstance(delta, dict):
                text = delta.get("text")
                return text if isinstance(text, str) else None
            return None
        choices = data.get("choices")
        if not isinstance(choices, list):
            return None
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
            return text if isinstance(text, str) else None
        return None


class TranscribedStream:
    """A stream passed on unchanged while its answer text is collected."""

    def __init__(self, upstream: ProviderStream, transcript: StreamTranscript) -> None:
        self._upstream = upstream
        self._transcript = transcript
        self.content_type = upstream.content_type

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._upstream:
            self._transcript.feed(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._upstream.aclose()
