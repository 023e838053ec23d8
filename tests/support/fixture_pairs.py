"""JSON fixture pairs for pure translations: an input, and the output it must give.

A fixture file holds ``kind``, ``input`` and ``expected``. With
``BASTION_WRITE_FIXTURES=1`` a missing ``expected`` is written from the current
output (to be reviewed by hand before committing); otherwise it must match.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import orjson

from bastion.dialects.sse import SSEParser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def load(directory: str) -> list[tuple[str, dict[str, Any]]]:
    files = sorted((FIXTURES / directory).glob("*.json"))
    return [(f.stem, json.loads(f.read_text())) for f in files]


def check(directory: str, name: str, fixture: dict[str, Any], actual: Any) -> None:
    if "expected" not in fixture and os.environ.get("BASTION_WRITE_FIXTURES") == "1":
        fixture["expected"] = actual
        path = FIXTURES / directory / f"{name}.json"
        path.write_text(json.dumps(fixture, indent=2, ensure_ascii=False) + "\n")
        return
    assert "expected" in fixture, f"{directory}/{name}.json has no 'expected'"
    assert actual == fixture["expected"]


def sse_payloads(data: bytes) -> list[Any]:
    """The data of each SSE event, parsed as JSON (``[DONE]`` stays a string)."""
    parser = SSEParser()
    events = [*parser.feed(data), *parser.close()]
    return [e.data if e.data == "[DONE]" else orjson.loads(e.data) for e in events]


def splits(data: bytes) -> list[list[bytes]]:
    """The same bytes cut three ways: whole, one byte at a time, and in 7-byte pieces."""
    return [
        [data],
        [data[i : i + 1] for i in range(len(data))],
        [data[i : i + 7] for i in range(0, len(data), 7)],
    ]
