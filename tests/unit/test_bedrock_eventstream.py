"""The AWS event-stream codec: incremental decoding, CRC checks, and botocore agreeing."""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest
from botocore.eventstream import EventStreamBuffer

from bastion.providers.bedrock_eventstream import (
    EventMessage,
    EventStreamDecoder,
    EventStreamError,
    encode_event,
    encode_exception,
    encode_message,
)

MESSAGES = [
    encode_event("messageStart", b'{"role":"assistant"}'),
    encode_event("contentBlockDelta", '{"delta":{"text":"héllo ✓"}}'.encode()),
    encode_exception("throttlingException", b'{"message":"slow down"}'),
    encode_message({":message-type": "event", ":event-type": "empty"}, b""),
]
STREAM = b"".join(MESSAGES)


def decode_all(pieces: list[bytes]) -> list[EventMessage]:
    decoder = EventStreamDecoder()
    out: list[EventMessage] = []
    for piece in pieces:
        out.extend(decoder.feed(piece))
    assert decoder.pending == 0
    return out


def test_decodes_a_stream_of_messages() -> None:
    messages = decode_all([STREAM])
    assert [m.header(":event-type") for m in messages] == [
        "messageStart",
        "contentBlockDelta",
        "",
        "empty",
    ]
    assert [m.message_type for m in messages] == ["event", "event", "exception", "event"]
    assert messages[1].payload == '{"delta":{"text":"héllo ✓"}}'.encode()
    assert messages[2].header(":exception-type") == "throttlingException"
    assert messages[3].payload == b""


def test_every_split_point_gives_the_same_messages() -> None:
    expected = decode_all([STREAM])
    for cut in range(1, len(STREAM)):
        assert decode_all([STREAM[:cut], STREAM[cut:]]) == expected, cut
    for cut in range(1, len(STREAM), 5):
        for second in range(cut + 1, len(STREAM), 11):
            pieces = [STREAM[:cut], STREAM[cut:second], STREAM[second:]]
            assert decode_all(pieces) == expected, (cut, second)


def test_byte_by_byte_yields_each_message_as_soon_as_it_is_complete() -> None:
    decoder = EventStreamDecoder()
    ends = [index + 1 for index in range(len(STREAM)) if decoder.feed(STREAM[index : index + 1])]
    boundaries = []
    total = 0
    for message in MESSAGES:
        total += len(message)
        boundaries.append(total)
    assert ends == boundaries


def test_all_header_types_round_trip() -> None:
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers = {"yes": True, "no": False, "n": -7, "raw": b"\x00\x01", "s": "text", "id": ident}
    (message,) = EventStreamDecoder().feed(encode_message(headers, b"payload"))
    assert message.headers == headers
    assert message.payload == b"payload"


def test_wider_integer_and_timestamp_headers_decode() -> None:
    # int8 (2), int16 (3), int64 (5) and timestamp (8) headers, built by hand.
    raw = (
        b"\x01a\x02\xff"
        + b"\x01b\x03"
        + struct.pack(">h", -300)
        + b"\x01c\x05"
        + struct.pack(">q", 2**40)
        + b"\x01t\x08"
        + struct.pack(">q", 1_700_000_000_000)
    )
    total = 12 + len(raw) + 4
    head = struct.pack(">II", total, len(raw))
    body = head + struct.pack(">I", zlib.crc32(head)) + raw
    frame = body + struct.pack(">I", zlib.crc32(body))
    (message,) = EventStreamDecoder().feed(frame)
    assert message.headers == {"a": -1, "b": -300, "c": 2**40, "t": 1_700_000_000_000}


def test_botocore_decodes_what_we_encode() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(STREAM)
    theirs = list(buffer)
    ours = decode_all([STREAM])
    assert [m.headers for m in theirs] == [m.headers for m in ours]
    assert [m.payload for m in theirs] == [m.payload for m in ours]


def test_message_crc_mismatch_is_rejected() -> None:
    frame = bytearray(MESSAGES[1])
    frame[-6] ^= 0x01  # a payload byte
    decoder = EventStreamDecoder()
    assert decoder.feed(MESSAGES[0]) != []
    with pytest.raises(EventStreamError, match="message CRC"):
        decoder.feed(bytes(frame))


def test_prelude_crc_mismatch_is_rejected_before_the_message_is_complete() -> None:
    frame = bytearray(MESSAGES[0])
    frame[2] ^= 0x10  # the total length
    with pytest.raises(EventStreamError, match="prelude CRC"):
        EventStreamDecoder().feed(bytes(frame[:12]))


def test_impossible_lengths_are_rejected() -> None:
    head = struct.pack(">II", 8, 0)  # shorter than a prelude and a CRC
    with pytest.raises(EventStreamError, match="impossible"):
        EventStreamDecoder().feed(head + struct.pack(">I", zlib.crc32(head)))
    head = struct.pack(">II", 40, 30)  # headers longer than the message allows
    with pytest.raises(EventStreamError, match="impossible"):
        EventStreamDecoder().feed(head + struct.pack(">I", zlib.crc32(head)))


def test_malformed_headers_are_rejected() -> None:
    raw = b"\x05short\x07\x00\x10abc"  # a string header claiming 16 bytes, holding 3
    total = 12 + len(raw) + 4
    head = struct.pack(">II", total, len(raw))
    body = head + struct.pack(">I", zlib.crc32(head)) + raw
    with pytest.raises(EventStreamError, match="cut short"):
        EventStreamDecoder().feed(body + struct.pack(">I", zlib.crc32(body)))


def test_pending_counts_an_incomplete_message() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(MESSAGES[0] + MESSAGES[1][:10]) != []
    assert decoder.pending == 10
