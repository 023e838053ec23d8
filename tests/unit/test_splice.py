"""Splicing a new model into a raw request body: every other byte kept, or no splice at all."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from bastion.dialects import splice
from bastion.dialects.splice import passthrough_body, replace_model


def spliced(raw: bytes, model: str = "claude-upstream-1") -> bytes:
    current = orjson.loads(raw)["model"]
    out = replace_model(raw, current, model)
    assert out is not None, "expected a splice"
    return out


def test_compact_body_from_an_sdk() -> None:
    raw = b'{"max_tokens":100,"messages":[{"role":"user","content":"hi"}],"model":"claude"}'
    assert spliced(raw) == (
        b'{"max_tokens":100,"messages":[{"role":"user","content":"hi"}],'
        b'"model":"claude-upstream-1"}'
    )


def test_whitespace_key_order_numbers_and_escapes_are_kept() -> None:
    raw = (
        b'{\n  "temperature" : 1.0E0,\n  "model"\t:\r\n "claude",\n'
        b'  "messages": [{"role": "user", "content": "caf\\u00e9 \\ud83d\\ude00 \\/"}],\n'
        b'  "max_tokens": 1000000000000000000000\n}\n'
    )
    out = spliced(raw, "m2")
    assert out == raw.replace(b'"claude"', b'"m2"')


def test_nested_model_keys_are_left_alone() -> None:
    raw = (
        b'{"tools":[{"name":"pick","input_schema":{"type":"object","properties":'
        b'{"model":{"type":"string"}}}}],"metadata":{"model":"nested"},'
        b'"messages":[{"role":"user","content":[{"type":"tool_result","model":"x"}]}],'
        b'"model":"claude","max_tokens":5}'
    )
    assert raw.count(b'"model"') == 4  # the scan path, not the fast path
    out = spliced(raw)
    assert out == raw.replace(b'"model":"claude"', b'"model":"claude-upstream-1"')
    assert orjson.loads(out)["metadata"] == {"model": "nested"}


def test_model_key_mentioned_inside_strings() -> None:
    # An escaped quote before "model" inside a string: not a key, and brackets in strings
    # do not change the depth.
    raw = (
        b'{"messages":[{"role":"user","content":"say \\"model\\" or \\"model"}],'
        b'"system":"}]{[ \\"model\\": \\"fake\\" ","model":"claude","max_tokens":1}'
    )
    out = spliced(raw)
    assert orjson.loads(out)["system"] == '}]{[ "model": "fake" '
    assert out == raw.replace(b'"model":"claude"', b'"model":"claude-upstream-1"')


def test_model_written_with_escapes() -> None:
    # The key spelled with \u escapes and a nested literal "model": the scan decodes keys.
    raw = b'{"metadata":{"model":"claude"},"mod\\u0065l":"claude","max_tokens":1}'
    out = spliced(raw)
    assert (
        out == b'{"metadata":{"model":"claude"},"mod\\u0065l":"claude-upstream-1","max_tokens":1}'
    )
    # The value spelled with escapes.
    raw = b'{"model":"cl\\u0061ude","max_tokens":1}'
    assert spliced(raw) == b'{"model":"claude-upstream-1","max_tokens":1}'


def test_new_model_needing_escapes_is_encoded() -> None:
    raw = b'{"model":"claude"}'
    out = spliced(raw, 'we"ird\\ mödel')
    assert orjson.loads(out) == {"model": 'we"ird\\ mödel'}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"claude","model":"claude"}',  # duplicate top-level keys
        b'{"model":"claude","x":{"a":1},"mod\\u0065l":"claude"}',  # duplicate, one escaped
        b'{"model":123}',  # not a string
        b'["model","claude"]',  # not an object
    ],
)
def test_unsafe_bodies_are_not_spliced(raw: bytes) -> None:
    assert replace_model(raw, "claude", "m2") is None


def test_a_current_value_that_does_not_match_is_refused() -> None:
    assert replace_model(b'{"model":"other"}', "claude", "m2") is None


def _random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(7 if depth < 4 else 4)
    if kind == 0:
        return rng.choice(["model", '"model"', 'x\\"model', "}{][", "é\n\t", ""])
    if kind == 1:
        return rng.randint(-(10**20), 10**20)
    if kind == 2:
        return rng.choice([True, False, None, 1.5])
    if kind == 3:
        return "".join(rng.choice('ab"\\{}[]:,model ') for _ in range(rng.randrange(12)))
    if kind in (4, 5):
        keys = ["model", "messages", "content", '"model"', "x"]
        return {rng.choice(keys) + str(i): _random_value(rng, depth + 1) for i in range(3)} | (
            {"model": _random_value(rng, depth + 1)} if rng.random() < 0.5 else {}
        )
    return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def _encode(items: list[tuple[str, Any]], rng: random.Random, ascii_only: bool) -> bytes:
    """A JSON object written out member by member, with random whitespace."""
    space = lambda: rng.choice(["", " ", "\n  ", "\t"])  # noqa: E731
    members = [
        f"{space()}{json.dumps(k, ensure_ascii=ascii_only)}{space()}:{space()}"
        f"{json.dumps(v, ensure_ascii=ascii_only)}{space()}"
        for k, v in items
    ]
    return ("{" + ",".join(members) + "}").encode()


def test_random_bodies_change_exactly_the_model_value() -> None:
    rng = random.Random(20240601)
    for _ in range(500):
        items = [(k, _random_value(rng, 1)) for k in ("messages", "metadata", "tools")]
        model = rng.choice(["claude", 'a"b', "\\model", "é", "model"])
        items.insert(rng.randrange(len(items) + 1), ("model", model))
        state = rng.getstate()
        ascii_only = rng.random() < 0.5
        raw = _encode(items, rng, ascii_only)
        rng.setstate(state)
        rng.random()
        expected = _encode(
            [(k, "new-model" if k == "model" else v) for k, v in items], rng, ascii_only
        )
        assert replace_model(raw, model, "new-model") == expected


# -- passthrough_body ------------------------------------------------------------------------


def test_same_model_returns_the_very_bytes() -> None:
    raw = b'{"model": "claude", "max_tokens": 1}'
    assert passthrough_body(raw, orjson.loads(raw), "claude") is raw


def test_gateway_fields_force_a_rebuild_that_keeps_key_order() -> None:
    raw = b'{"model":"claude","mock_testing_fallbacks":false,"max_tokens":1,"metadata":{"a":1}}'
    out = passthrough_body(raw, orjson.loads(raw), "up")
    assert out == b'{"model":"up","max_tokens":1,"metadata":{"a":1}}'


def test_also_drop_and_defaults() -> None:
    raw = b'{"model":"claude","max_tokens":1,"top_k":3}'
    body = orjson.loads(raw)
    assert passthrough_body(raw, body, "up", also_drop=frozenset({"top_k"})) == (
        b'{"model":"up","max_tokens":1}'
    )
    out = passthrough_body(raw, body, "up", defaults={"temperature": 0.2, "top_k": 9})
    assert orjson.loads(out) == {"model": "up", "max_tokens": 1, "top_k": 3, "temperature": 0.2}
    # Defaults already in the body need no rebuild.
    assert passthrough_body(raw, body, "up", defaults={"top_k": 9}) == raw.replace(
        b'"claude"', b'"up"'
    )


def test_no_raw_or_an_unsafe_raw_falls_back_to_encoding() -> None:
    body = {"model": "claude", "max_tokens": 1}
    assert passthrough_body(None, body, "up") == b'{"model":"up","max_tokens":1}'
    raw = b'{"model":"claude","model":"claude","max_tokens":1}'
    assert passthrough_body(raw, orjson.loads(raw), "up") == b'{"model":"up","max_tokens":1}'


def test_the_fast_path_needs_no_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scan(raw: bytes) -> None:
        raise AssertionError("scanned")

    monkeypatch.setattr(splice, "_top_level_model_span", no_scan)
    raw = b'{"messages":[{"role":"user","content":"the \\"model\\" word"}],"model":"claude"}'
    assert spliced(raw) == raw.replace(b'"claude"', b'"claude-upstream-1"')
    with pytest.raises(AssertionError, match="scanned"):
        spliced(b'{"metadata":{"model":"x"},"model":"claude"}')
