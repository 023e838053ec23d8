"""AWS event-stream framing (``application/vnd.amazon.eventstream``), decoded as bytes arrive.

Bedrock's ConverseStream and InvokeModelWithResponseStream answer with a sequence of
binary messages::

    total length (u32) | headers length (u32) | prelude CRC32 (u32)
    headers            | payload              | message CRC32 (u32)

Both CRCs (standard CRC-32 of the bytes before them) are checked. Each header is a
1-byte name length, the name, a 1-byte value type and the value; Bedrock uses string
headers (``:message-type``, ``:event-type``, ``:exception-type``, ``:content-type``).
The encoder is here too: the mock upstream and the tests build frames with it.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Mapping
from typing import NamedTuple

PRELUDE_LENGTH = 12
MIN_MESSAGE_LENGTH = PRELUDE_LENGTH + 4
# AWS's own limits: 128 KiB of headers, 24 MiB of payload.
MAX_HEADERS_LENGTH = 128 * 1024
MAX_MESSAGE_LENGTH = MIN_MESSAGE_LENGTH + MAX_HEADERS_LENGTH + 24 * 1024 * 1024

HeaderValue = bool | int | bytes | str | uuid.UUID

_PRELUDE = struct.Struct(">III")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_FIXED: dict[int, struct.Struct] = {
    2: struct.Struct(">b"),
    3: struct.Struct(">h"),
    4: struct.Struct(">i"),
    5: struct.Struct(">q"),
    8: struct.Struct(">q"),  # timestamp: milliseconds since the epoch
}


class EventStreamError(ValueError):
    """The bytes are not a valid event stream (bad CRC, impossible lengths, bad header)."""


class EventMessage(NamedTuple):
    headers: Mapping[str, HeaderValue]  # shared between messages: read, never modify
    payload: bytes

    def header(self, name: str) -> str:
        """A string header's value, or '' when it is absent or not a string."""
        value = self.headers.get(name)
        return value if isinstance(value, str) else ""

    @property
    def message_type(self) -> str:
        return self.header(":message-type") or "event"


class EventStreamDecoder:
    """Feed bytes split anywhere; get the complete messages out, CRCs verified.

    Bytes of an unfinished message wait in a list until the prelude's length says the
    message is complete, so a large message arriving in many pieces is joined once.
    Header blocks repeat (each event type has the same three headers), so parsed
    header blocks are cached by their bytes.
    """

    __slots__ = ("_header_cache", "_need", "_parts", "_size")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._need = 0
        self._header_cache: dict[bytes, dict[str, HeaderValue]] = {}

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole message."""
        return self._size

    def feed(self, data: bytes) -> list[EventMessage]:
        if self._parts:
            self._parts.append(data)
            self._size += len(data)
            if self._size < self._need:
                return []
            buffer = b"".join(self._parts)
            self._parts = []
            self._size = 0
        else:
            buffer = bytes(data)
        view = memoryview(buffer)
        messages: list[EventMessage] = []
        start = 0
        end = len(buffer)
        need = PRELUDE_LENGTH
        while end - start >= PRELUDE_LENGTH:
            total, headers_length, prelude_crc = _PRELUDE.unpack_from(buffer, start)
            if zlib.crc32(view[start : start + 8]) != prelude_crc:
                raise EventStreamError("event stream prelude CRC mismatch")
            if not MIN_MESSAGE_LENGTH <= total <= MAX_MESSAGE_LENGTH or (
                headers_length > min(MAX_HEADERS_LENGTH, total - MIN_MESSAGE_LENGTH)
            ):
                raise EventStreamError(
                    f"event stream message lengths are impossible "
                    f"(total {total}, headers {headers_length})"
                )
            if end - start < total:
                need = total
                break
            body_end = start + total - 4
            (message_crc,) = _U32.unpack_from(buffer, body_end)
            if zlib.crc32(view[start + 8 : body_end], prelude_crc) != message_crc:
                raise EventStreamError("event stream message CRC mismatch")
            headers_start = start + PRELUDE_LENGTH
            payload_start = headers_start + headers_length
            raw_headers = buffer[headers_start:payload_start]
            headers = self._header_cache.get(raw_headers)
            if headers is None:
                headers = _parse_headers(raw_headers)
                if len(self._header_cache) < 64:
                    self._header_cache[raw_headers] = headers
            messages.append(EventMessage(headers, buffer[payload_start:body_end]))
            start += total
        if start < end:
            self._parts = [buffer[start:]]
            self._size = end - start
            self._need = need
        return messages


def _parse_headers(data: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos = 0
    size = len(data)
    try:
        while pos < size:
            name_length = data[pos]
            pos += 1
            name = data[pos : pos + name_length].decode("utf-8")
            pos += name_length
            value_type = data[pos]
            pos += 1
            value: HeaderValue
            if value_type in (0, 1):
                value = value_type == 0
            elif value_type in _FIXED:
                fixed = _FIXED[value_type]
                (value,) = fixed.unpack_from(data, pos)
                pos += fixed.size
            elif value_type in (6, 7):
                (length,) = _U16.unpack_from(data, pos)
                pos += 2
                raw = data[pos : pos + length]
                if len(raw) != length:
                    raise EventStreamError("event stream header value is cut short")
                pos += length
                value = raw.decode("utf-8") if value_type == 7 else raw
            elif value_type == 9:
                raw = data[pos : pos + 16]
                if len(raw) != 16:
                    raise EventStreamError("event stream header value is cut short")
                pos += 16
                value = uuid.UUID(bytes=raw)
            else:
                raise EventStreamError(f"unknown event stream header type {value_type}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed event stream headers ({exc})") from None
    return headers


def encode_message(headers: Mapping[str, HeaderValue], payload: bytes = b"") -> bytes:
    """One event-stream message. ``str`` headers are strings, ``int`` int32, ``bool`` flags."""
    encoded = b"".join(_encode_header(name, value) for name, value in headers.items())
    total = PRELUDE_LENGTH + len(encoded) + len(payload) + 4
    head = struct.pack(">II", total, len(encoded))
    message = head + _U32.pack(zlib.crc32(head)) + encoded + payload
    return message + _U32.pack(zlib.crc32(message))


def encode_event(event_type: str, payload: bytes) -> bytes:
    """An ``event`` message as Bedrock sends them (JSON payload)."""
    return encode_message(
        {
            ":event-type": event_type,
            ":content-type": "application/json",
            ":message-type": "event",
        },
        payload,
    )


def encode_exception(exception_type: str, payload: bytes) -> bytes:
    """An ``exception`` message (a modeled error sent mid-stream)."""
    return encode_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        payload,
    )


def _encode_header(name: str, value: HeaderValue) -> bytes:
    raw_name = name.encode("utf-8")
    head = bytes([len(raw_name)]) + raw_name
    if isinstance(value, bool):
        return head + bytes([0 if value else 1])
    if isinstance(value, int):
        return head + b"\x04" + struct.pack(">i", value)
    if isinstance(value, uuid.UUID):
        return head + b"\x09" + value.bytes
    if isinstance(value, str):
        data = value.encode("utf-8")
        return head + b"\x07" + _U16.pack(len(data)) + data
    return head + b"\x06" + _U16.pack(len(value)) + value
