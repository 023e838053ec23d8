"""Bedrock's streamed answers relayed to the client: event-stream frames in, SSE out.

The raw upstream bytes are decoded as they arrive (``bedrock_eventstream``); each
complete message is an ``event`` (handed to a translator), an ``exception`` (a
modeled error such as ``throttlingException``: raised as UpstreamStatusError, which
the relay turns into an error event in the client's dialect) or an ``error``.
Everything one upstream read produced leaves as one piece.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import orjson

from bastion.core.errors import UpstreamConnectionError, UpstreamStatusError
from bastion.dialects.anthropic_bedrock import ChunkError, chunk_to_sse
from bastion.dialects.bedrock_to_openai import DONE, ConverseStreamState
from bastion.providers.base import ProviderStream
from bastion.providers.bedrock_errors import stream_error, stream_exception
from bastion.providers.bedrock_eventstream import (
    EventMessage,
    EventStreamDecoder,
    EventStreamError,
)

PROVIDER = "bedrock"


class EventTranslator(Protocol):
    def event(self, message: EventMessage) -> bytes:
        """SSE bytes for one ``event`` message (maybe none)."""

    def finish(self) -> bytes:
        """The tail once the upstream ended cleanly; raises if the answer was cut short."""


class ConverseTranslator:
    """ConverseStream events → OpenAI chat-completion chunks."""

    def __init__(self, state: ConverseStreamState) -> None:
        self.state = state

    def event(self, message: EventMessage) -> bytes:
        return self.state.event(message.header(":event-type"), _json(message.payload))

    def finish(self) -> bytes:
        if not self.state.finished:
            raise _cut_short("messageStop")
        return DONE


class InvokeTranslator:
    """InvokeModelWithResponseStream ``chunk`` events → Anthropic SSE events."""

    def __init__(self) -> None:
        self.stopped = False

    def event(self, message: EventMessage) -> bytes:
        if message.header(":event-type") != "chunk":
            return b""
        try:
            sse = chunk_to_sse(message.payload)
        except ChunkError as exc:
            raise _malformed(str(exc)) from None
        if sse.startswith(b"event: message_stop\n"):
            self.stopped = True
        return sse

    def finish(self) -> bytes:
        if not self.stopped:
            raise _cut_short("message_stop")
        return b""


class BedrockEventStream:
    """An open Bedrock stream, yielding the client dialect's SSE bytes."""

    content_type = b"text/event-stream"

    def __init__(
        self,
        upstream: ProviderStream,
        translator: EventTranslator,
        secrets: tuple[str | None, ...] = (),
    ) -> None:
        self._upstream = upstream
        self._translator = translator
        self._secrets = secrets
        self._decoder = EventStreamDecoder()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        decoder = self._decoder
        translator = self._translator
        async for chunk in self._upstream:
            try:
                messages = decoder.feed(chunk)
            except EventStreamError as exc:
                raise _malformed(str(exc)) from None
            out = []
            for message in messages:
                kind = message.message_type
                if kind == "event":
                    piece = translator.event(message)
                    if piece:
                        out.append(piece)
                elif kind == "exception":
                    if out:
                        yield b"".join(out)  # what came before the error still counts
                    raise stream_exception(
                        message.header(":exception-type"),
                        message.payload,
                        PROVIDER,
                        self._secrets,
                    )
                elif kind == "error":
                    if out:
                        yield b"".join(out)
                    raise stream_error(
                        message.header(":error-code"), message.header(":error-message"), PROVIDER
                    )
            if out:
                yield out[0] if len(out) == 1 else b"".join(out)
        if decoder.pending:
            raise _cut_short("a complete event-stream message")
        tail = translator.finish()
        if tail:
            yield tail

    async def aclose(self) -> None:
        await self._upstream.aclose()


def _json(payload: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise _malformed("an event's payload is not JSON") from None
    if not isinstance(data, dict):
        raise _malformed("an event's payload is not a JSON object")
    return data


def _malformed(detail: str) -> UpstreamStatusError:
    return UpstreamStatusError(
        f"{PROVIDER}: malformed event stream ({detail})", status=502, provider=PROVIDER
    )


def _cut_short(expected: str) -> UpstreamConnectionError:
    return UpstreamConnectionError(
        f"{PROVIDER}: the stream ended before {expected}", provider=PROVIDER
    )
