"""A stored answer: one JSON header line, then the answer's bytes.

A JSON answer is its body as the client received it. A stream is the bytes the
client received, with the length of each chunk, so a hit is replayed as the same
events in the same pieces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

_FORMAT = 1


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    created: float  # wall-clock seconds when it was stored
    content_type: bytes
    body: bytes
    model_id: str | None = None
    # For a stream: the length of each chunk as it was sent (None: a JSON answer).
    chunks: tuple[int, ...] | None = None

    @property
    def is_stream(self) -> bool:
        return self.chunks is not None

    def pieces(self) -> list[bytes]:
        """The stream's chunks (a JSON answer is one piece)."""
        if self.chunks is None:
            return [self.body]
        out, at = [], 0
        for length in self.chunks:
            out.append(self.body[at : at + length])
            at += length
        if at < len(self.body):
            out.append(self.body[at:])
        return out

    def encode(self) -> bytes:
        header = {
            "f": _FORMAT,
            "t": self.created,
            "c": self.content_type.decode("latin-1"),
            "m": self.model_id,
            "l": list(self.chunks) if self.chunks is not None else None,
        }
        return orjson.dumps(header) + b"\n" + self.body

    @classmethod
    def decode(cls, data: bytes) -> CachedAnswer | None:
        """The answer, or None for bytes that are not an entry of this format."""
        end = data.find(b"\n")
        if end < 0:
            return None
        try:
            header = orjson.loads(data[:end])
            if not isinstance(header, dict) or header.get("f") != _FORMAT:
                return None
            lengths = header.get("l")
            return cls(
                created=float(header["t"]),
                content_type=str(header["c"]).encode("latin-1"),
                body=data[end + 1 :],
                model_id=header.get("m"),
                chunks=tuple(int(n) for n in lengths) if lengths is not None else None,
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


def stream_answer(
    created: float, content_type: bytes, chunks: Sequence[bytes], model_id: str | None
) -> CachedAnswer:
    return CachedAnswer(
        created, content_type, b"".join(chunks), model_id, tuple(len(c) for c in chunks)
    )
