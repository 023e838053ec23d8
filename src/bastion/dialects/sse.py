"""Server-sent events: an incremental parser for arbitrarily split bytes, and an encoder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str


class SSEParser:
    """Feed bytes as they arrive; get complete events out.

    Lines may be split anywhere, even inside a UTF-8 character or between CR and LF.
    Comment lines (``:``) and ``id``/``retry`` fields are ignored.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> Iterator[SSEEvent]:
        self._buffer += chunk
        while True:
            end = _line_end(self._buffer)
            if end is None:
                return
            line_end, next_start = end
            line = self._buffer[:line_end].decode("utf-8", "replace")
            self._buffer = self._buffer[next_start:]
            if not line:
                if self._data or self._event is not None:
                    yield SSEEvent(self._event, "\n".join(self._data))
                self._event, self._data = None, []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value

    def close(self) -> Iterator[SSEEvent]:
        """Whatever a stream that ended without a final blank line left pending."""
        if self._buffer:
            yield from self.feed(b"\n")
        if self._data or self._event is not None:
            yield SSEEvent(self._event, "\n".join(self._data))
            self._event, self._data = None, []


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    lf = buffer.find(b"\n")
    cr = buffer.find(b"\r")
    if cr != -1 and (lf == -1 or cr < lf):
        if cr + 1 == len(buffer):
            return None  # a CR at the end may be the first half of CRLF
        return (cr, cr + 2) if buffer[cr + 1 : cr + 2] == b"\n" else (cr, cr + 1)
    if lf == -1:
        return None
    return lf, lf + 1


def encode_event(data: bytes, event: str | None = None) -> bytes:
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
