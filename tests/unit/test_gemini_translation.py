"""OpenAI ⇄ Gemini translation, from the fixture pairs in tests/fixtures/openai_gemini."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from bastion.core.errors import InvalidRequestError, UpstreamStatusError
from bastion.dialects.gemini_schema import clean_schema
from bastion.dialects.gemini_to_openai import (
    GeminiStreamTranslator,
    chat_completion_from_gemini,
    usage_from_gemini,
)
from bastion.dialects.openai_to_gemini import gemini_request
from bastion.dialects.translate_common import Target
from tests.support.fixture_pairs import check, load, splits, sse_payloads

DIRECTORY = "openai_gemini"
CASES = load(DIRECTORY)
TARGET = Target("deployment 'g' (gemini)")


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"call_{next(counter)}"


def translate(fixture: dict[str, Any]) -> Any:
    kind = fixture["kind"]
    if kind == "request":
        return gemini_request(fixture["input"], TARGET)
    if kind == "response":
        return chat_completion_from_gemini(
            fixture["input"], model="gemini-x", created=1700000000, new_id=ids()
        )
    if kind == "stream":
        outputs = []
        for pieces in splits(fixture["input"].encode()):
            translator = GeminiStreamTranslator(
                model="gemini-x",
                created=1700000000,
                include_usage=fixture["include_usage"],
                new_id=ids(),
            )
            out = b"".join(translator.feed(p) for p in pieces) + translator.finish()
            outputs.append(sse_payloads(out))
        assert outputs[0] == outputs[1] == outputs[2], "output depends on how bytes were split"
        return outputs[0]
    raise AssertionError(kind)


@pytest.mark.parametrize(("name", "fixture"), [c for c in CASES if c[1]["kind"] != "stream_error"])
def test_fixture_pair(name: str, fixture: dict[str, Any]) -> None:
    check(DIRECTORY, name, fixture, translate(fixture))


def test_error_mid_stream_raises_with_the_upstream_status() -> None:
    fixture = dict(CASES)["stream_error_mid_stream"]
    translator = GeminiStreamTranslator(model="m", created=1, include_usage=False)
    data = fixture["input"].encode()
    first, _, rest = data.partition(b"\r\n\r\n")
    assert b"Hel" in translator.feed(first + b"\r\n\r\n")
    with pytest.raises(UpstreamStatusError) as info:
        translator.feed(rest)
    assert info.value.status == fixture["status"]
    assert "overloaded" in info.value.message


def test_stream_event_that_is_not_json_is_a_502() -> None:
    translator = GeminiStreamTranslator(model="m", created=1, include_usage=False)
    with pytest.raises(UpstreamStatusError) as info:
        translator.feed(b"data: {not json\n\n")
    assert info.value.status == 502


def test_usage_counts_cached_and_thinking_tokens() -> None:
    usage = usage_from_gemini(
        {
            "promptTokenCount": 100,
            "cachedContentTokenCount": 40,
            "candidatesTokenCount": 10,
            "thoughtsTokenCount": 5,
            "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 7}],
        }
    )
    assert (usage.input_tokens, usage.cached_input_tokens) == (60, 40)
    assert usage.prompt_tokens == 100
    assert (usage.output_tokens, usage.reasoning_tokens) == (15, 5)
    assert usage.audio_input_tokens == 7


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"logit_bias": {"1": 2}}, "logit_bias"),
        ({"tools": [{"type": "web_search_preview"}]}, "tools"),
        ({"response_format": {"type": "grammar"}}, "response_format"),
    ],
)
def test_what_gemini_cannot_express_is_a_400_unless_dropped(
    body: dict[str, Any], param: str
) -> None:
    request = {"model": "g", "messages": [{"role": "user", "content": "x"}], **body}
    with pytest.raises(InvalidRequestError) as info:
        gemini_request(request, TARGET)
    assert info.value.param == param
    assert "deployment 'g' (gemini)" in info.value.message
    assert "drop_params" in info.value.message
    dropped = gemini_request(request, Target("x", drop_params=True))
    assert "tools" not in dropped or dropped["tools"] == []


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([{"role": "wizard", "content": "x"}], "role 'wizard'"),
        ([{"role": "system", "content": "only system"}], "at least one user"),
        (
            [
                {
                    "role": "assistant",
                    "tool_calls": [{"function": {"name": "f", "arguments": "{"}}],
                },
            ],
            "not valid JSON",
        ),
        ([{"role": "tool", "tool_call_id": "nope", "content": "x"}], "does not match"),
        ([{"role": "user", "content": [{"type": "video", "video": {}}]}], "type 'video'"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            "url is required",
        ),
    ],
)
def test_bad_messages_are_client_errors(messages: list[Any], fragment: str) -> None:
    with pytest.raises(InvalidRequestError, match=fragment):
        gemini_request({"model": "g", "messages": messages}, TARGET)


def test_clean_schema_handles_recursive_refs_and_does_not_mutate() -> None:
    schema = {
        "type": "object",
        "properties": {"node": {"$ref": "#/$defs/node"}},
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/$defs/node"}, "n": {"type": "integer"}},
            }
        },
    }
    before = orjson.dumps(schema)
    cleaned = clean_schema(schema)
    assert orjson.dumps(schema) == before
    assert "$defs" not in orjson.dumps(cleaned).decode()
    assert "$ref" not in orjson.dumps(cleaned).decode()
    assert cleaned["properties"]["node"]["properties"]["n"] == {"type": "integer"}
