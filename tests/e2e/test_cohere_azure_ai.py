"""Cohere and Azure AI Foundry end to end: chat, streaming, tools, embeddings, /v1/rerank.

The Azure AI part follows a team's production setup (seeds/004): Azure-hosted Cohere embed
(``azure_ai/cohere-embed-v-4-0`` with ``input_type: text``) and rerank
(``azure_ai/cohere-rerank-v3.5``), beside an OpenAI-compatible chat model.
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
    MockPool,
    assert_openai_error,
    auth,
    running,
    sync_client,
)
from tests.mocks.cohere_upstream import MockCohere
from tests.mocks.mock_server import StatusFault
from tests.mocks.openai_upstream import MockOpenAIUpstream
from tests.support.gateway import GatewayProcess

COHERE_KEY = "co-e2e-key-81b7"
AZURE_KEY = "az-ai-e2e-key-2f90"
DOCS = ["Berlin is in Germany", "Paris is the capital of France", "Bananas are yellow"]


@dataclass
class Env:
    gw: GatewayProcess
    cohere: MockCohere
    azure: MockCohere
    azure_chat: MockOpenAIUpstream
    client: openai.OpenAI


@pytest.fixture(scope="module")
def env(mocks: MockPool) -> Iterator[Env]:
    azure_chat = mocks.new(api_key=AZURE_KEY, name="azure-ai-chat")
    with MockCohere(api_key=COHERE_KEY) as cohere, MockCohere(api_key=AZURE_KEY) as azure:
        co = {"api_key": COHERE_KEY, "api_base": cohere.base_url}
        az = {"api_key": AZURE_KEY, "api_base": azure.base_url}
        config = {
            "model_list": [
                {
                    "model_name": "command",
                    "litellm_params": {"model": "cohere/command-a-03-2025", **co},
                },
                {
                    "model_name": "co-embed",
                    "litellm_params": {"model": "cohere/embed-v4.0", **co},
                    "model_info": {"mode": "embedding"},
                },
                {
                    "model_name": "co-rerank",
                    "litellm_params": {"model": "cohere/rerank-v3.5", **co},
                    "model_info": {"mode": "rerank"},
                },
                {
                    "model_name": "cohere-embed-v-4-0",
                    "litellm_params": {
                        "model": "azure_ai/cohere-embed-v-4-0",
                        "api_key": AZURE_KEY,
                        "api_base": azure.base_url + "/models",
                        "api_version": "2024-05-01-preview",
                        "input_type": "text",
                    },
                    "model_info": {"mode": "embedding"},
                },
                {
                    "model_name": "cohere-rerank-v3.5",
                    "litellm_params": {"model": "azure_ai/cohere-rerank-v3.5", **az},
                    "model_info": {"mode": "rerank"},
                },
                {
                    "model_name": "az-rerank-v2",
                    "litellm_params": {
                        "model": "azure_ai/cohere-rerank-v3.5",
                        "api_key": AZURE_KEY,
                        "api_base": azure.base_url + "/providers/cohere/v2",
                    },
                    "model_info": {"mode": "rerank"},
                },
                {
                    "model_name": "gpt",
                    "litellm_params": {
                        "model": "openai/gpt-4o",
                        "api_key": AZURE_KEY,
                        "api_base": azure_chat.openai_base,
                    },
                },
                {
                    "model_name": "az-chat",
                    "litellm_params": {
                        "model": "azure_ai/gpt-4o",
                        "api_key": AZURE_KEY,
                        "api_base": azure_chat.base_url,
                        "api_version": "2024-05-01-preview",
                    },
                },
            ],
            "router_settings": {"num_retries": 0},
            "general_settings": {"master_key": MASTER_KEY},
        }
        with running(config) as gw:
            yield Env(gw, cohere, azure, azure_chat, sync_client(gw))


@pytest.fixture(autouse=True)
def _fresh(env: Env) -> None:
    for mock in (env.cohere, env.azure):
        mock.clear()
        mock.clear_faults()


def rerank(env: Env, body: dict[str, Any], path: str = "/v1/rerank") -> httpx.Response:
    return httpx.post(f"{env.gw.url}{path}", headers=auth(), json=body, timeout=10)


# --- Cohere -------------------------------------------------------------------------------------


def test_cohere_chat(env: Env) -> None:
    reply = env.client.chat.completions.create(
        model="command",
        messages=[{"role": "system", "content": "Be brief."}, *USER_MSG],
        max_tokens=40,
        top_p=0.5,
        stop=["END"],
    )
    assert reply.choices[0].message.content == "Hello from command-a-03-2025."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens == 3
    sent = env.cohere.last
    assert sent.path == "/v2/chat" and sent.headers["authorization"] == f"Bearer {COHERE_KEY}"
    assert sent.json["p"] == 0.5 and sent.json["stop_sequences"] == ["END"]
    assert sent.json["messages"][0] == {"role": "system", "content": "Be brief."}


def test_cohere_streaming_with_usage(env: Env) -> None:
    chunks = list(
        env.client.chat.completions.create(
            model="command",
            messages=USER_MSG,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from command-a-03-2025."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert env.cohere.last.json["stream"] is True


def test_cohere_streamed_tool_calls(env: Env) -> None:
    stream = env.client.chat.completions.create(
        model="command",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        stream=True,
    )
    arguments = ""
    name = ""
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                name += (call.function.name or "") if call.function else ""
                arguments += (call.function.arguments or "") if call.function else ""
    assert name == "get_weather" and json.loads(arguments) == {"city": "Paris"}
    assert finish == "tool_calls"
    assert env.cohere.last.json["tool_choice"] == "REQUIRED"
    follow_up = env.client.chat.completions.create(
        model="command",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "I will call get_weather.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "21C"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert follow_up.choices[0].message.content == "The tool said: 21C"
    assert env.cohere.last.json["messages"][1]["tool_plan"] == "I will call get_weather."


def test_cohere_images(env: Env) -> None:
    reply = env.client.chat.completions.create(
        model="command",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ],
    )
    assert reply.choices[0].message.content == "Hello from command-a-03-2025. I see 1 image(s)."


def test_cohere_embeddings_with_input_type_and_base64(env: Env) -> None:
    answer = env.client.embeddings.create(
        model="co-embed",
        input=["alpha beta", "gamma"],
        encoding_format="float",
        extra_body={"input_type": "search_query"},
    )
    assert len(answer.data) == 2 and len(answer.data[0].embedding) == 8
    assert answer.usage.prompt_tokens == 3
    sent = env.cohere.last.json
    assert sent["input_type"] == "search_query" and sent["embedding_types"] == ["float"]
    # The openai SDK asks for base64 by default and decodes it: the numbers must survive.
    plain = env.client.embeddings.create(model="co-embed", input="gamma")
    assert env.cohere.last.json["embedding_types"] == ["base64"]
    assert env.cohere.last.json["input_type"] == "search_document"  # the default
    assert plain.data[0].embedding == pytest.approx(answer.data[1].embedding, rel=1e-6)


def test_cohere_rerank(env: Env) -> None:
    response = rerank(
        env,
        {
            "model": "co-rerank",
            "query": "capital of France",
            "documents": DOCS,
            "top_n": 2,
            "return_documents": True,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["index"] for r in body["results"]] == [1, 0]
    assert body["results"][0]["document"] == {"text": DOCS[1]}
    assert body["results"][0]["relevance_score"] > body["results"][1]["relevance_score"]
    assert body["meta"]["billed_units"]["search_units"] == 1
    assert response.headers["x-litellm-model-id"]
    sent = env.cohere.last
    assert sent.path == "/v2/rerank" and sent.json["model"] == "rerank-v3.5"
    assert "return_documents" not in sent.json
    bare = rerank(env, {"model": "co-rerank", "query": "q", "documents": ["a"]}, "/rerank")
    assert bare.status_code == 200 and "document" not in bare.json()["results"][0]


def test_cohere_errors_keep_status_and_retry_after(env: Env) -> None:
    env.cohere.enqueue(StatusFault(429, retry_after=4))
    response = httpx.post(
        f"{env.gw.url}/v1/chat/completions",
        headers=auth(),
        json={"model": "command", "messages": USER_MSG},
        timeout=10,
    )
    assert_openai_error(response, 429)
    assert response.headers["retry-after"] == "4"
    env.cohere.enqueue(StatusFault(500))
    assert_openai_error(rerank(env, {"model": "co-rerank", "query": "q", "documents": ["a"]}), 500)


# --- Azure AI -----------------------------------------------------------------------------------


def test_azure_ai_cohere_embeddings_take_input_type_from_litellm_params(env: Env) -> None:
    answer = env.client.embeddings.create(
        model="cohere-embed-v-4-0", input=["hello world"], encoding_format="float"
    )
    assert len(answer.data[0].embedding) == 8
    sent = env.azure.last
    assert sent.path == "/models/embeddings"
    assert sent.query == {"api-version": "2024-05-01-preview"}
    assert sent.json["input_type"] == "text" and sent.json["model"] == "cohere-embed-v-4-0"
    assert sent.headers["api-key"] == AZURE_KEY


@pytest.mark.parametrize(
    ("model", "path"),
    [("cohere-rerank-v3.5", "/v1/rerank"), ("az-rerank-v2", "/providers/cohere/v2/rerank")],
)
def test_azure_ai_rerank(env: Env, model: str, path: str) -> None:
    response = rerank(
        env,
        {"model": model, "query": "capital of France", "documents": DOCS, "return_documents": True},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0] == {
        "index": 1,
        "relevance_score": 0.5,
        "document": {"text": DOCS[1]},
    }
    assert env.azure.last.path == path
    assert env.azure.last.headers["authorization"] == f"Bearer {AZURE_KEY}"


def test_azure_ai_chat_is_openai_compatible(env: Env) -> None:
    reply = env.client.chat.completions.create(model="az-chat", messages=USER_MSG)
    assert reply.choices[0].message.content
    sent = env.azure_chat.last_request
    assert sent.path == "/chat/completions"
    assert sent.query == {"api-version": "2024-05-01-preview"}
    assert sent.json["model"] == "gpt-4o"


# --- /v1/rerank itself --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "co-rerank", "documents": ["a"]}, "query"),
        ({"model": "co-rerank", "query": "q", "documents": []}, "documents"),
        ({"model": "co-rerank", "query": "q", "documents": ["a"], "top_n": -1}, "top_n"),
        ({"query": "q", "documents": ["a"]}, "model"),
    ],
)
def test_rerank_rejects_bad_requests(env: Env, body: dict[str, Any], param: str) -> None:
    error = assert_openai_error(rerank(env, body), 400)
    assert error["param"] == param
    assert env.cohere.count() == 0


def test_rerank_on_a_provider_without_rerank_is_a_400(env: Env) -> None:
    error = assert_openai_error(
        rerank(env, {"model": "gpt", "query": "q", "documents": ["a"]}), 400
    )
    assert "does not support rerank" in error["message"]
    assert env.azure_chat.count() == 0


def test_rerank_needs_a_key(env: Env) -> None:
    response = httpx.post(
        f"{env.gw.url}/v1/rerank",
        json={"model": "co-rerank", "query": "q", "documents": ["a"]},
        timeout=10,
    )
    assert_openai_error(response, 401)


def test_health_checks_rerank_models_with_a_tiny_rerank(env: Env) -> None:
    response = httpx.get(
        f"{env.gw.url}/health", params={"model": "co-rerank"}, headers=auth(), timeout=10
    )
    assert response.status_code == 200
    report = response.json()
    assert report["healthy_count"] == 1, report
    assert env.cohere.last.path == "/v2/rerank"
    assert env.cohere.last.json["documents"] == ["ping"]


def test_anthropic_sdk_reaches_cohere_through_the_bridge(env: Env) -> None:
    client = anthropic.Anthropic(base_url=env.gw.url, api_key=MASTER_KEY, max_retries=0)
    message = client.messages.create(
        model="command", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from command-a-03-2025."
    assert env.cohere.last.path == "/v2/chat"
