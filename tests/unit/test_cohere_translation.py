"""OpenAI ⇄ Cohere v2 translation (chat, stream, embed, rerank), from fixture pairs."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.core.errors import InvalidRequestError, UpstreamStatusError
from bastion.dialects.cohere_to_openai import (
    CohereStreamTranslator,
    chat_completion_from_cohere,
    embeddings_from_cohere,
    rerank_from_cohere,
)
from bastion.dialects.openai_to_cohere import (
    cohere_chat_request,
    cohere_embed_request,
    cohere_rerank_request,
)
from bastion.dialects.rerank import local_rerank, validate_rerank_request
from bastion.dialects.translate_common import Target
from tests.support.fixture_pairs import check, load, splits, sse_payloads

DIRECTORY = "openai_cohere"
CASES = load(DIRECTORY)
TARGET = Target("deployment 'c' (cohere)")


def translate(fixture: dict[str, Any]) -> Any:
    kind, data = fixture["kind"], fixture["input"]
    if kind == "request":
        return cohere_chat_request(data, "command-r", TARGET, stream=False)
    if kind == "response":
        return chat_completion_from_cohere(data, model="command-r", created=1700000000)
    if kind == "stream":
        outputs = []
        for pieces in splits(data.encode()):
            translator = CohereStreamTranslator(
                model="command-r", created=1700000000, include_usage=fixture["include_usage"]
            )
            out = b"".join(translator.feed(p) for p in pieces) + translator.finish()
            outputs.append(sse_payloads(out))
        assert outputs[0] == outputs[1] == outputs[2], "output depends on how bytes were split"
        return outputs[0]
    if kind == "embed_request":
        return cohere_embed_request(
            data, "embed-v4.0", TARGET, default_input_type=fixture["default_input_type"]
        )
    if kind == "embed_response":
        return embeddings_from_cohere(data, model="embed-v4.0")
    if kind == "rerank_request":
        return cohere_rerank_request(data, "rerank-v3.5", version=fixture["version"])
    if kind == "rerank_response":
        return rerank_from_cohere(data, fixture["request"])
    raise AssertionError(kind)


@pytest.mark.parametrize(("name", "fixture"), CASES)
def test_fixture_pair(name: str, fixture: dict[str, Any]) -> None:
    check(DIRECTORY, name, fixture, translate(fixture))


def test_stream_without_message_end_still_finishes() -> None:
    translator = CohereStreamTranslator(model="m", created=1, include_usage=True)
    start = b'event: message-start\ndata: {"type":"message-start","id":"x"}\n\n'
    delta = b'data: {"type":"content-delta","delta":{"message":{"content":{"text":"hi"}}}}\n\n'
    out = sse_payloads(translator.feed(start + delta) + translator.finish())
    assert out[-3]["choices"][0]["finish_reason"] == "stop"
    assert out[-2]["choices"] == [] and "usage" in out[-2]
    assert out[-1] == "[DONE]"


def test_stream_error_in_message_end_raises() -> None:
    translator = CohereStreamTranslator(model="m", created=1, include_usage=False)
    event = b'data: {"type":"message-end","delta":{"error":"internal failure"}}\n\n'
    with pytest.raises(UpstreamStatusError, match="internal failure"):
        translator.feed(event)


@pytest.mark.parametrize(
    ("body", "param"),
    [({"n": 2}, "n"), ({"logit_bias": {"1": 1}}, "logit_bias"), ({"audio": {}}, "audio")],
)
def test_what_cohere_cannot_express_is_a_400_unless_dropped(
    body: dict[str, Any], param: str
) -> None:
    request = {"model": "c", "messages": [{"role": "user", "content": "x"}], **body}
    with pytest.raises(InvalidRequestError) as info:
        cohere_chat_request(request, "command-r", TARGET, stream=False)
    assert info.value.param == param and "deployment 'c' (cohere)" in info.value.message
    out = cohere_chat_request(request, "command-r", Target("c", drop_params=True), stream=True)
    assert param not in out and out["stream"] is True


def test_tool_choice_naming_an_unknown_tool_is_a_400() -> None:
    request = {
        "model": "c",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "a"}}],
        "tool_choice": {"type": "function", "function": {"name": "b"}},
    }
    with pytest.raises(InvalidRequestError, match="'b'"):
        cohere_chat_request(request, "command-r", TARGET, stream=False)


def test_embeddings_need_text_inputs() -> None:
    with pytest.raises(InvalidRequestError, match="token arrays"):
        cohere_embed_request(
            {"model": "e", "input": [[1, 2, 3]]}, "e", TARGET, default_input_type="x"
        )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"documents": ["a"]}, "query"),
        ({"query": "q"}, "documents"),
        ({"query": "q", "documents": []}, "documents"),
        ({"query": "q", "documents": [1]}, "documents"),
        ({"query": "q", "documents": ["a"], "top_n": 0}, "top_n"),
        ({"query": "q", "documents": ["a"], "return_documents": "yes"}, "return_documents"),
    ],
)
def test_rerank_validation_names_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        validate_rerank_request({"model": "r", **body})
    assert info.value.param == param


def test_local_rerank_orders_by_overlap_and_honours_top_n() -> None:
    answer = local_rerank(
        {
            "query": "capital of france",
            "documents": ["bananas", "the capital of france is paris", {"text": "france"}],
            "top_n": 2,
            "return_documents": True,
        }
    )
    assert [r["index"] for r in answer["results"]] == [2, 1]
    assert answer["results"][0]["document"] == {"text": "france"}
    assert answer["meta"]["billed_units"]["search_units"] == 1
