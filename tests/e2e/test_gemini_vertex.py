"""Gemini (AI Studio) and Vertex AI end to end: the real gateway, the openai and anthropic SDKs.

One mock serves AI Studio, Vertex (Gemini and Claude) and Google's token endpoint; Vertex
calls get their access token through google-auth's real service-account JWT flow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.helpers import (
    MASTER_KEY,
    USER_MSG,
    WEATHER_TOOL,
    assert_openai_error,
    auth,
    running,
    sync_client,
)
from tests.mocks.gemini_upstream import MockGemini
from tests.mocks.mock_server import ResetFault, StatusFault
from tests.support.gateway import GatewayProcess

GEMINI_KEY = "gm-e2e-key-5c1f0a"
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
    "/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
)


@dataclass
class Env:
    gw: GatewayProcess
    google: MockGemini
    client: openai.OpenAI


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with MockGemini(api_key=GEMINI_KEY) as google:
        credentials = json.dumps(google.service_account_info("sa-project"))
        vertex = {
            "vertex_project": "e2e-project",
            "vertex_location": "us-east5",
            "vertex_credentials": credentials,
            "api_base": google.base_url,
        }
        studio = {"api_key": GEMINI_KEY, "api_base": google.base_url}
        config = {
            "model_list": [
                {
                    "model_name": "gemini",
                    "litellm_params": {"model": "gemini/gemini-2.5-flash", **studio},
                },
                {
                    "model_name": "vertex",
                    "litellm_params": {"model": "vertex_ai/gemini-2.5-pro", **vertex},
                },
                {
                    "model_name": "claude-vertex",
                    "litellm_params": {"model": "vertex_ai/claude-sonnet-4-5@20250929", **vertex},
                },
                {
                    "model_name": "gemini-embed",
                    "litellm_params": {"model": "gemini/text-embedding-004", **studio},
                    "model_info": {"mode": "embedding"},
                },
                {
                    "model_name": "vertex-embed",
                    "litellm_params": {
                        "model": "vertex_ai/text-embedding-005",
                        "input_type": "search_document",
                        **vertex,
                    },
                    "model_info": {"mode": "embedding"},
                },
            ],
            "router_settings": {"num_retries": 0},
            "general_settings": {"master_key": MASTER_KEY},
        }
        with running(config) as gw:
            yield Env(gw, google, sync_client(gw))


@pytest.fixture(autouse=True)
def _fresh(env: Env) -> None:
    env.google.clear()
    env.google.clear_faults()


def generate_requests(google: MockGemini) -> list[Any]:
    return [r for r in google.requests if ":generateContent" in r.path or "Stream" in r.path]


@pytest.mark.parametrize("model", ["gemini", "vertex"])
def test_chat_translates_both_ways(env: Env, model: str) -> None:
    reply = env.client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": "Be brief."}, *USER_MSG],
        max_tokens=50,
        temperature=0.2,
    )
    upstream = "gemini-2.5-flash" if model == "gemini" else "gemini-2.5-pro"
    assert reply.choices[0].message.content == f"Hello from {upstream}."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens == 4
    sent = env.google.last
    assert sent.json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent.json["generationConfig"] == {"maxOutputTokens": 50, "temperature": 0.2}
    if model == "gemini":
        assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
        assert sent.headers["x-goog-api-key"] == GEMINI_KEY
    else:
        assert sent.path == (
            "/v1/projects/e2e-project/locations/us-east5/publishers/google/models/"
            "gemini-2.5-pro:generateContent"
        )
        assert sent.headers["authorization"].startswith("Bearer ya29.mock-")


@pytest.mark.parametrize("model", ["gemini", "vertex"])
def test_streaming_with_usage(env: Env, model: str) -> None:
    chunks = list(
        env.client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "say hello to me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello from gemini-2.5")
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert not chunks[-1].choices and usage is not None
    assert usage.prompt_tokens == 4 and usage.completion_tokens == 3
    assert "streamGenerateContent" in env.google.last.path
    assert env.google.last.query == {"alt": "sse"}


def test_tools_with_streamed_calls_and_the_round_trip(env: Env) -> None:
    stream = env.client.chat.completions.create(
        model="vertex",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.id or ""
                entry["name"] += call.function.name or "" if call.function else ""
                entry["arguments"] += call.function.arguments or "" if call.function else ""
    assert finish == "tool_calls"
    assert calls[0]["name"] == "get_weather" and json.loads(calls[0]["arguments"]) == {
        "city": "Paris"
    }
    declared = env.google.last.json["tools"][0]["functionDeclarations"][0]
    assert declared["name"] == "get_weather" and "additionalProperties" not in json.dumps(declared)
    follow_up = env.client.chat.completions.create(
        model="vertex",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": calls[0]["id"],
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": calls[0]["arguments"]},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": '{"temp_c": 21}'},
        ],
        tools=[WEATHER_TOOL],
    )
    assert follow_up.choices[0].message.content == 'The tool said: {"temp_c": 21}'
    parts = env.google.last.json["contents"][-1]["parts"]
    assert parts == [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}}]


def test_images_become_inline_and_file_data(env: Env) -> None:
    reply = env.client.chat.completions.create(
        model="gemini",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What are these?"},
                    {"type": "image_url", "image_url": {"url": PNG}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            }
        ],
    )
    assert reply.choices[0].message.content == "Hello from gemini-2.5-flash. I see 2 image(s)."
    parts = env.google.last.json["contents"][0]["parts"]
    assert parts[1]["inlineData"]["mimeType"] == "image/png"
    assert parts[2] == {
        "fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}
    }


def test_embeddings_with_input_type(env: Env) -> None:
    answer = env.client.embeddings.create(
        model="gemini-embed",
        input=["alpha", "beta"],
        dimensions=4,
        extra_body={"input_type": "search_query"},
    )
    assert [len(d.embedding) for d in answer.data] == [4, 4]
    request = env.google.last.json["requests"][0]
    assert request["taskType"] == "RETRIEVAL_QUERY" and request["outputDimensionality"] == 4
    assert request["model"] == "models/text-embedding-004"
    answer = env.client.embeddings.create(model="vertex-embed", input="one two three")
    assert len(answer.data[0].embedding) == 8 and answer.usage.prompt_tokens == 3
    sent = env.google.last
    assert sent.path.endswith("/models/text-embedding-005:predict")
    assert sent.json["instances"] == [
        {"content": "one two three", "task_type": "RETRIEVAL_DOCUMENT"}
    ]


def test_one_access_token_serves_many_calls(env: Env) -> None:
    before = env.google.token_requests
    for _ in range(3):
        env.client.chat.completions.create(model="vertex", messages=USER_MSG)
    assert env.google.token_requests - before == 0  # the token from earlier calls is reused
    tokens = {r.headers["authorization"] for r in env.google.requests if "/projects/" in r.path}
    assert len(tokens) == 1


def test_rate_limit_keeps_retry_after_and_5xx_maps(env: Env) -> None:
    env.google.enqueue(StatusFault(429, retry_after=7))
    response = httpx.post(
        f"{env.gw.url}/v1/chat/completions",
        headers=auth(),
        json={"model": "gemini", "messages": USER_MSG},
        timeout=10,
    )
    error = assert_openai_error(response, 429)
    assert response.headers["retry-after"] == "7"
    assert "Resource has been exhausted" in error["message"]
    env.google.enqueue(StatusFault(503))
    response = httpx.post(
        f"{env.gw.url}/v1/chat/completions",
        headers=auth(),
        json={"model": "vertex", "messages": USER_MSG},
        timeout=10,
    )
    assert_openai_error(response, 503)


def test_stream_cut_mid_way_ends_with_an_error_event(env: Env) -> None:
    env.google.enqueue(ResetFault(after_events=1))
    with httpx.stream(
        "POST",
        f"{env.gw.url}/v1/chat/completions",
        headers=auth(),
        json={
            "model": "gemini",
            "messages": [{"role": "user", "content": "a b c d e f"}],
            "stream": True,
        },
        timeout=10,
    ) as response:
        body = response.read().decode()
    assert response.status_code == 200
    assert '"content":"Hello from "' in body
    assert '"error"' in body and "[DONE]" not in body


def test_what_gemini_cannot_express_is_a_400(env: Env) -> None:
    response = httpx.post(
        f"{env.gw.url}/v1/chat/completions",
        headers=auth(),
        json={"model": "gemini", "messages": USER_MSG, "logit_bias": {"50256": -100}},
        timeout=10,
    )
    error = assert_openai_error(response, 400)
    assert error["param"] == "logit_bias" and "gemini" in error["message"]
    response = httpx.post(
        f"{env.gw.url}/v1/chat/completions",
        headers=auth(),
        json={"model": "gemini", "messages": USER_MSG, "logit_bias": {"1": 1}, "drop_params": True},
        timeout=10,
    )
    assert response.status_code == 200


# --- Claude on Vertex -------------------------------------------------------------------------


def anthropic_client(env: Env) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=env.gw.url, api_key=MASTER_KEY, max_retries=0, timeout=20)


def test_anthropic_sdk_passes_through_to_vertex_claude(env: Env) -> None:
    client = anthropic_client(env)
    message = client.messages.create(
        model="claude-vertex",
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "context-1m-2025-08-07"},
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from claude-sonnet-4-5@20250929 on Vertex."
    sent = env.google.last
    assert sent.path == (
        "/v1/projects/e2e-project/locations/us-east5/publishers/anthropic/models/"
        "claude-sonnet-4-5@20250929:rawPredict"
    )
    assert sent.json["anthropic_version"] == "vertex-2023-10-16" and "model" not in sent.json
    assert sent.headers["anthropic-beta"] == "context-1m-2025-08-07"


def test_anthropic_sdk_streams_tool_use_from_vertex_claude(env: Env) -> None:
    client = anthropic_client(env)
    tool = {
        "name": "get_weather",
        "description": "Weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    with client.messages.stream(
        model="claude-vertex",
        max_tokens=64,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[tool],  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    block = final.content[0]
    assert block.type == "tool_use" and block.input == {"city": "Paris"}
    assert env.google.last.path.endswith(":streamRawPredict")
    assert env.google.last.json["stream"] is True


def test_anthropic_client_gets_anthropic_shaped_errors_from_vertex(env: Env) -> None:
    env.google.enqueue(StatusFault(429, retry_after=2))
    client = anthropic_client(env)
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(
            model="claude-vertex", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"


def test_openai_sdk_to_vertex_claude_is_translated(env: Env) -> None:
    reply = env.client.chat.completions.create(model="claude-vertex", messages=USER_MSG)
    assert reply.choices[0].message.content == "Hello from claude-sonnet-4-5@20250929 on Vertex."
    assert reply.choices[0].finish_reason == "stop"
    sent = env.google.last
    assert sent.path.endswith("/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict")
    assert sent.json["anthropic_version"] == "vertex-2023-10-16" and "model" not in sent.json
    assert sent.json["messages"][0]["role"] == "user" and sent.json["max_tokens"] > 0
    chunks = list(
        env.client.chat.completions.create(
            model="claude-vertex",
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER_TOOL],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    arguments = "".join(
        call.function.arguments or ""
        for c in chunks
        if c.choices
        for call in c.choices[0].delta.tool_calls or []
        if call.function
    )
    assert json.loads(arguments) == {"city": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    assert env.google.last.path.endswith(":streamRawPredict")


def test_health_probes_every_google_deployment(env: Env) -> None:
    response = httpx.get(f"{env.gw.url}/health", headers=auth(), timeout=20)
    report = response.json()
    assert report["unhealthy_count"] == 0, report["unhealthy_endpoints"]
    assert report["healthy_count"] == 5


def test_anthropic_sdk_reaches_gemini_through_the_bridge(env: Env) -> None:
    client = anthropic_client(env)
    message = client.messages.create(
        model="gemini", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from gemini-2.5-flash."
    with client.messages.stream(
        model="vertex", max_tokens=64, messages=[{"role": "user", "content": "hi there"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from gemini-2.5-pro."
    assert final.usage.output_tokens == 3
