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
    out = replace_model(raw, orjson.loads(raw), model)
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
    # The value spelled with escapes: located as a string token, compared decoded.
    raw = b'{"model":"claud\\u00e9","max_tokens":1}'
    assert spliced(raw) == b'{"model":"claude-upstream-1","max_tokens":1}'
    # The key spelled with escapes next to a nested literal "model": neither proof holds,
    # so the caller re-encodes.
    raw = b'{"metadata":{"model":"claude"},"mod\\u0065l":"claude","max_tokens":1}'
    assert replace_model(raw, orjson.loads(raw), "up") is None
    assert orjson.loads(passthrough_body(raw, orjson.loads(raw), "up")) == {
        "metadata": {"model": "claude"},
        "model": "up",
        "max_tokens": 1,
    }


def test_pretty_printed_bodies_use_the_single_occurrence_proof() -> None:
    raw = b'{\n  "model": "claude",\n  "messages": [ {"role": "user", "content": "x"} ]\n}\n'
    assert spliced(raw) == raw.replace(b'"claude"', b'"claude-upstream-1"')
    nested = raw.replace(b'"role": "user"', b'"role": "user", "model": "x"')
    assert replace_model(nested, orjson.loads(nested), "up") is None


def test_new_model_needing_escapes_is_encoded() -> None:
    raw = b'{"model":"claude"}'
    out = spliced(raw, 'we"ird\\ mödel')
    assert orjson.loads(out) == {"model": 'we"ird\\ mödel'}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"claude","model":"claude"}',  # duplicate top-level keys
        b'{"model":"claude","x":{"a":1},"model":"claude"}',  # duplicate, apart
        b'{"model":"claude","x":{"a":1},"mod\\u0065l":"claude"}',  # duplicate, one escaped
        b'{"x":{"model":"claude"},"mod\\u0065l":"claude","model":"claude"}',
        b'{"model":123}',  # not a string
        b'["model","claude"]',  # not an object
    ],
)
def test_unsafe_bodies_are_not_spliced(raw: bytes) -> None:
    body = orjson.loads(raw)
    assert replace_model(raw, body if isinstance(body, dict) else {}, "m2") is None


def test_a_body_that_does_not_match_the_bytes_is_refused() -> None:
    assert replace_model(b'{"model":"other"}', {"model": "claude"}, "m2") is None


def _random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(7 if depth < 4 else 4)
    if kind == 0:
        return rng.choice(["model", '"model"', 'x\\"model', "}{][", "é\n\t", ""])
    if kind == 1:
        return rng.randint(-(2**53), 2**53)
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


def _encode(
    items: list[tuple[str, Any]], rng: random.Random, ascii_only: bool, compact: bool
) -> bytes:
    """A JSON object written member by member: compact, as SDKs write it, or with
    Python's default spacing in values and random whitespace between members."""
    space = lambda: "" if compact else rng.choice(["", " ", "\n  ", "\t"])  # noqa: E731
    separators = (",", ":") if compact else (", ", ": ")
    members = [
        f"{space()}{json.dumps(k, ensure_ascii=ascii_only)}{space()}:{space()}"
        f"{json.dumps(v, ensure_ascii=ascii_only, separators=separators)}{space()}"
        for k, v in items
    ]
    return ("{" + ",".join(members) + "}").encode()


def test_random_bodies_change_exactly_the_model_value_or_nothing() -> None:
    rng = random.Random(20240601)
    outcomes = {"spliced": 0, "refused": 0}
    for _ in range(600):
        items = [(k, _random_value(rng, 1)) for k in ("messages", "metadata", "tools")]
        model = rng.choice(["claude", 'a"b', "\\model", "é", "model"])
        items.insert(rng.randrange(len(items) + 1), ("model", model))
        state = rng.getstate()
        ascii_only, compact = rng.random() < 0.3, rng.random() < 0.7
        raw = _encode(items, rng, ascii_only, compact)
        rng.setstate(state)
        rng.random(), rng.random()
        expected = _encode(
            [(k, "new-model" if k == "model" else v) for k, v in items], rng, ascii_only, compact
        )
        out = replace_model(raw, orjson.loads(raw), "new-model")
        if out is None:
            outcomes["refused"] += 1
            assert b"\\u006" in raw or raw.count(b'"model"') > 1
            assert ascii_only or not compact, "an SDK-style body must be spliced"
        else:
            outcomes["spliced"] += 1
            assert out == expected
    assert outcomes["spliced"] > 300, outcomes


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


def test_which_proof_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    # Compact bodies (what SDKs send) re-encode to their bytes: no search in them at all.
    def no_search(*args: object) -> None:
        raise AssertionError("searched")

    monkeypatch.setattr(splice, "_string_after_key", no_search)
    raw = b'{"tools":[{"input_schema":{"properties":{"model":{}}}}],"model":"claude"}'
    assert spliced(raw) == raw.replace(b'"claude"', b'"claude-upstream-1"')
    # Other spacing: the single "model" proves it.
    monkeypatch.undo()
    raw = b'{"tools": [{"name": "x"}], "model": "claude"}'
    assert spliced(raw) == raw.replace(b'"claude"', b'"claude-upstream-1"')
