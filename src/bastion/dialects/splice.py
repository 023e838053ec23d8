"""Changing the ``model`` of a raw JSON request body without re-encoding the rest.

Same-dialect pass-through sends the client's bytes upstream. Only the model changes
(the client names a model group, the upstream wants its own model id), so the new
value is spliced into the original bytes: whitespace, key order, number spelling,
escapes and every field the gateway does not know arrive exactly as the client wrote
them.

A splice is made only when the top-level ``"model"`` member is proven to be the one
and only, by one of two checks, both at C speed (the caller has already parsed the
body; the proofs use it):

1. *The body re-encodes to its bytes* (what SDKs send: compact JSON from Python's
   httpx, JavaScript's ``JSON.stringify`` or orjson). ``orjson.dumps`` of the parsed
   body is compared with the raw bytes; when they are equal, the raw object has exactly
   the parsed members (a duplicate key, folded into one dict entry, or a key spelled with
   escapes would differ), and re-encoding with the new model gives, byte for byte, the
   raw body with only the model's value replaced: that is the splice.
2. *One literal occurrence* (any formatting): the bytes contain ``"model"`` exactly
   once and no ``\\u006`` escape. A JSON object with a top-level ``model`` key spells it
   somewhere; without a ``\\u006x`` escape the only spelling is the literal one (its
   letters can be escaped only as ``\\u006d``, ``\\u006f``…), so the single occurrence is
   the top-level key. Any other ``"model"`` (a nested key, a string ending in
   ``\\"model``) makes the count 2 or more.

Otherwise (pretty-printed with nested ``model`` keys, duplicates, escaped keys, a
non-string model) the caller re-encodes the parsed body instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from bastion.dialects.openai_params import GATEWAY_FIELDS

_MODEL_TOKEN = b'"model"'
_LETTER_ESCAPE = b"\\u006"
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_WHITESPACE = b" \t\r\n"
_QUOTE, _COLON = 0x22, 0x3A


def replace_model(raw: bytes, body: Mapping[str, Any], model: str) -> bytes | None:
    """``raw`` with its top-level ``model`` string set to ``model``; every other byte kept.

    ``body`` must be ``raw`` parsed (a dict in document order, as orjson builds it) with
    a string ``model``. Returns None when the member cannot be proven unique.
    """
    current = body.get("model")
    if not isinstance(current, str):
        return None
    try:
        if orjson.dumps(body) == raw:
            return orjson.dumps({**body, "model": model})
    except orjson.JSONEncodeError:
        return None
    if raw.count(_MODEL_TOKEN) != 1 or _LETTER_ESCAPE in raw:
        return None
    span = _string_after_key(raw, raw.find(_MODEL_TOKEN) + len(_MODEL_TOKEN))
    if span is None:
        return None
    start, end = span
    try:
        if orjson.loads(raw[start:end]) != current:
            return None  # not the member the caller parsed: refuse rather than guess
    except orjson.JSONDecodeError:
        return None
    return raw[:start] + orjson.dumps(model) + raw[end:]


def passthrough_body(
    raw: bytes | None,
    body: dict[str, Any],
    model: str,
    *,
    also_drop: frozenset[str] = frozenset(),
    defaults: Mapping[str, Any] | None = None,
) -> bytes:
    """The client's body for the upstream: model replaced, gateway-only fields removed.

    The bytes are spliced (see the module docstring) unless a field has to go
    (``GATEWAY_FIELDS``, ``also_drop``) or a deployment default has to be added, in which
    case the parsed body is re-encoded, keeping its key order.
    """
    missing_defaults = [k for k in defaults if k not in body] if defaults else []
    rebuild = (
        raw is None
        or not GATEWAY_FIELDS.isdisjoint(body)
        or (also_drop and not also_drop.isdisjoint(body))
        or missing_defaults
    )
    if not rebuild and raw is not None:
        if body.get("model") == model:
            return raw
        spliced = replace_model(raw, body, model)
        if spliced is not None:
            return spliced
    out = {k: v for k, v in body.items() if k not in GATEWAY_FIELDS and k not in also_drop}
    if defaults:
        for name in missing_defaults:
            if name not in also_drop:
                out[name] = defaults[name]
    out["model"] = model
    return orjson.dumps(out)


def _skip_whitespace(raw: bytes, pos: int) -> int:
    size = len(raw)
    while pos < size and raw[pos] in _WHITESPACE:
        pos += 1
    return pos


def _at(raw: bytes, pos: int, char: int) -> bool:
    return pos < len(raw) and raw[pos] == char


def _string_after_key(raw: bytes, after_key: int) -> tuple[int, int] | None:
    """The span of the string value after a key token that ends at ``after_key``."""
    pos = _skip_whitespace(raw, after_key)
    if not _at(raw, pos, _COLON):
        return None
    pos = _skip_whitespace(raw, pos + 1)
    if not _at(raw, pos, _QUOTE):
        return None
    match = _STRING.match(raw, pos)
    return None if match is None else (match.start(), match.end())
