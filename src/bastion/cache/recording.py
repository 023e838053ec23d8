"""A stream passed on to the client unchanged and kept when it ends cleanly.

The chunks the client received are kept (up to a size bound) and handed to
``on_complete`` only when the stream ran to its end marker (OpenAI's ``[DONE]``,
Anthropic's ``message_stop``): a stream that broke, was cut short or that the
client left is never stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from bastion.core.dialect import Dialect
from bastion.providers.base import ProviderStream

END_MARKERS = {Dialect.OPENAI: b"[DONE]", Dialect.ANTHROPIC: b"message_stop"}
_TAIL = 256


class RecordingStream:
    def __init__(
        self,
        upstream: ProviderStream,
        dialect: Dialect,
        max_bytes: int,
        on_complete: Callable[[list[bytes]], None],
    ) -> None:
        self._upstream = upstream
        self._marker = END_MARKERS[dialect]
        self._max_bytes = max_bytes
        self._on_complete = on_complete
        self.content_type = upstream.content_type

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks: list[bytes] | None = []
        size = 0
        async for chunk in self._upstream:
            if chunks is not None and chunk:
                size += len(chunk)
                if size > self._max_bytes:
                    chunks = None  # too large to keep: passed on, not stored
                else:
                    chunks.append(chunk)
            yield chunk
        if chunks and self._marker in b"".join(chunks[-2:])[-_TAIL:]:
            self._on_complete(chunks)

    async def aclose(self) -> None:
        await self._upstream.aclose()
