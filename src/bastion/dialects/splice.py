"""Changing the ``model`` of a raw JSON request body without re-encoding the rest.

Same-dialect pass-through sends the client's bytes upstream. Only the model changes
(the client names a model group, the upstream wants its own model id), so the new
value is spliced into the original bytes: whitespace, key order, number spelling,
escapes and every field the gateway does not know arrive exactly as the client wrote
them, and a large body is not parsed and re-encoded a second time.

Splicing is done only when the top-level ``"model"`` member is proven:

* Fast path (C-speed byte searches): the bytes contain ``"model"`` exactly once and no
  ``\\u006`` escape. A valid JSON object that has a top-level ``model`` key must spell
  that key somewhere; without a ``\\u006x`` escape the only spelling of ``model`` is the
  literal one (its letters can be escaped only as ``\\u006d``, ``\\u006f``…), so the
  single occurrence *is* the top-level key. Any other ``"model"`` (a nested key, a
  string ending in ``\\"model``) makes the count 2 or more.
* Otherwise a scan of the top level: string tokens and brackets are matched by one
  regular expression, so quotes, brackets and backslashes inside strings never confuse
  the nesting depth; keys at depth 1 named ``model`` (escaped or not) are collected.
  Exactly one, with a string value, is required.

Anything else (duplicate top-level keys, a non-string model, bytes that are not a JSON
object) gives ``None`` and the caller re-encodes the parsed body instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from bastion.dialects.openai_params import GATEWAY_FIELDS

_MODEL_TOKEN = b'"model"'
_LETTER_ESCAPE = b"\\u006"
# A JSON string token (escapes included), or one bracket. Strings are matched whole, so
# a bracket or quote inside a string is never taken for structure.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_WHITESPACE = b" \t\r\n"
_QUOTE, _COLON, _OPEN_BRACE = 0x22, 0x3A, 0x7B


def replace_model(raw: bytes, current: str, model: str) -> bytes | None:
    """``raw`` with its top-level ``model`` string set to ``model``; every other byte kept.

    ``raw`` must be a JSON object whose top-level ``model`` is the string ``current`` (the
    caller parsed it). Returns None when the member cannot be located safely.
    """
    span: tuple[int, int] | None
    if raw.count(_MODEL_TOKEN) == 1 and _LETTER_ESCAPE not in raw:
        span = _value_span(raw, raw.find(_MODEL_TOKEN) + len(_MODEL_TOKEN))
    else:
        span = _top_level_model_span(raw)
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
    current = body.get("model")
    if not rebuild and raw is not None and isinstance(current, str):
        if current == model:
            return raw
        spliced = replace_model(raw, current, model)
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


def _value_span(raw: bytes, after_key: int) -> tuple[int, int] | None:
    """The span of the string value following a key token that ends at ``after_key``."""
    pos = _skip_whitespace(raw, after_key)
    if pos >= len(raw) or raw[pos] != _COLON:
        return None
    pos = _skip_whitespace(raw, pos + 1)
    if pos >= len(raw) or raw[pos] != _QUOTE:
        return None
    match = _STRING.match(raw, pos)
    return None if match is None else (match.start(), match.end())


def _is_model_key(raw: bytes, start: int, end: int) -> bool:
    token = raw[start:end]
    if token == _MODEL_TOKEN:
        return True
    if b"\\" not in token or len(token) > 64:
        return False
    try:
        return bool(orjson.loads(token) == "model")
    except orjson.JSONDecodeError:
        return False


def _top_level_model_span(raw: bytes) -> tuple[int, int] | None:
    first = _skip_whitespace(raw, 0)
    if first >= len(raw) or raw[first] != _OPEN_BRACE:
        return None
    depth = 0
    found: tuple[int, int] | None = None
    for match in _TOKEN.finditer(raw, first):
        start = match.start()
        char = raw[start]
        if char == _QUOTE:
            if depth != 1:
                continue
            end = match.end()
            after = _skip_whitespace(raw, end)
            if after < len(raw) and raw[after] == _COLON and _is_model_key(raw, start, end):
                if found is not None:
                    return None  # a duplicate key: parsers disagree on which one wins
                found = _value_span(raw, end)
                if found is None:
                    return None  # not a string
        elif char in b"{[":
            depth += 1
        else:
            depth -= 1
    return found
