"""Cohere and Azure AI providers: configuration, URLs, and the calls they make (against mocks)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

from bastion.config.model import ProxyConfig
from bastion.core.deployment import Deployment, Operation
from bastion.core.errors import UpstreamStatusError
from bastion.providers.azure_ai import AzureAIProvider, rerank_url
from bastion.providers.base import ProviderCall
from bastion.providers.cohere import CohereProvider
from bastion.providers.http import UpstreamHTTP
from bastion.providers.registry import ProviderRegistry
from bastion.routing.deployments import make_deployment
from tests.mocks.cohere_upstream import MockCohere
from tests.mocks.mock_server import StatusFault

ENV = ("CO_API_KEY", "COHERE_API_KEY", "COHERE_API_BASE", "AZURE_AI_API_KEY", "AZURE_AI_API_BASE")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def cohere() -> Iterator[MockCohere]:
    with MockCohere(api_key="co-key") as mock:
        yield mock


@pytest.fixture
async def registry() -> AsyncIterator[ProviderRegistry]:
    http = UpstreamHTTP()
    await http.start()
    yield ProviderRegistry(http)
    await http.close()


def deploy(registry: ProviderRegistry, **params: Any) -> Deployment:
    model_info = params.pop("model_info", {})
    drop = params.pop("drop_params", None)
    d = make_deployment("group", params, model_info, "dep-1", registry, ProxyConfig())
    d.drop_params = drop
    return d


async def test_prefixes_and_keys_from_the_environment(
    registry: ProviderRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(registry.resolve("cohere/command-r")[0], CohereProvider)
    assert isinstance(registry.resolve("cohere_chat/command-r")[0], CohereProvider)
    assert isinstance(registry.resolve("command-r-plus")[0], CohereProvider)
    assert isinstance(registry.resolve("azure_ai/cohere-rerank-v3.5")[0], AzureAIProvider)
    d = deploy(registry, model="cohere/command-r")
    assert d.missing_credential and "CO_API_KEY" in d.missing_credential
    monkeypatch.setenv("COHERE_API_KEY", "env-key")
    d = deploy(registry, model="cohere/command-r", api_base="https://api.cohere.com/v2/")
    assert d.request_headers["Authorization"] == "Bearer env-key"
    assert d.api_base == "https://api.cohere.com"
    with pytest.raises(ValueError, match="api_base"):
        deploy(registry, model="azure_ai/cohere-embed-v-4-0")
    monkeypatch.setenv("AZURE_AI_API_KEY", "az-key")
    monkeypatch.setenv("AZURE_AI_API_BASE", "https://x.services.ai.azure.com/models")
    d = deploy(registry, model="azure_ai/cohere-embed-v-4-0", api_version="2024-05-01-preview")
    assert d.request_headers["api-key"] == "az-key"
    assert d.provider.url(d, Operation.EMBEDDING) == (  # type: ignore[attr-defined]
        "https://x.services.ai.azure.com/models/embeddings?api-version=2024-05-01-preview"
    )
    assert not d.provider.supports(Operation.COMPLETION)
    assert d.provider.supports(Operation.RERANK)


@pytest.mark.parametrize(
    ("base", "url", "version"),
    [
        (
            "https://r.eastus.models.ai.azure.com",
            "https://r.eastus.models.ai.azure.com/v1/rerank",
            1,
        ),
        ("https://r.services.ai.azure.com/v1", "https://r.services.ai.azure.com/v1/rerank", 1),
        (
            "https://r.services.ai.azure.com/providers/cohere/v2",
            "https://r.services.ai.azure.com/providers/cohere/v2/rerank",
            2,
        ),
        ("https://r.x.com/v2/rerank", "https://r.x.com/v2/rerank", 2),
    ],
)
def test_azure_ai_rerank_url(base: str, url: str, version: int) -> None:
    assert rerank_url(base) == (url, version)


async def test_cohere_chat_embed_and_rerank_against_the_mock(
    registry: ProviderRegistry, cohere: MockCohere
) -> None:
    d = deploy(registry, model="cohere/command-r", api_key="co-key", api_base=cohere.base_url)
    chat = ProviderCall(
        Operation.CHAT, {"model": "g", "messages": [{"role": "user", "content": "hi"}]}
    )
    answer = orjson.loads((await d.provider.send(d, chat)).body)
    assert answer["choices"][0]["message"]["content"] == "Hello from command-r."
    assert answer["usage"]["prompt_tokens"] == 61
    e = deploy(
        registry,
        model="cohere/embed-v4.0",
        api_key="co-key",
        api_base=cohere.base_url,
        input_type="search_query",
    )
    embed = ProviderCall(Operation.EMBEDDING, {"model": "g", "input": ["a b", "c"]})
    answer = orjson.loads((await e.provider.send(e, embed)).body)
    assert len(answer["data"]) == 2 and answer["usage"]["prompt_tokens"] == 3
    assert cohere.last.json["input_type"] == "search_query"
    r = deploy(registry, model="cohere/rerank-v3.5", api_key="co-key", api_base=cohere.base_url)
    body = {
        "model": "g",
        "query": "paris",
        "documents": ["rome", "paris"],
        "return_documents": True,
    }
    answer = orjson.loads((await r.provider.send(r, ProviderCall(Operation.RERANK, body))).body)
    assert answer["results"][0] == {
        "index": 1,
        "relevance_score": 1.0,
        "document": {"text": "paris"},
    }
    assert cohere.last.path == "/v2/rerank" and "return_documents" not in cohere.last.json


async def test_cohere_errors_map_and_keep_retry_after(
    registry: ProviderRegistry, cohere: MockCohere
) -> None:
    d = deploy(registry, model="cohere/command-r", api_key="wrong", api_base=cohere.base_url)
    chat = ProviderCall(
        Operation.CHAT, {"model": "g", "messages": [{"role": "user", "content": "x"}]}
    )
    with pytest.raises(UpstreamStatusError) as info:
        await d.provider.send(d, chat)
    assert info.value.status == 401 and "invalid api token" in info.value.message
    assert "wrong" not in info.value.message
    d = deploy(registry, model="cohere/command-r", api_key="co-key", api_base=cohere.base_url)
    cohere.enqueue(StatusFault(429, retry_after=3))
    with pytest.raises(UpstreamStatusError) as info:
        await d.provider.send(d, chat)
    assert info.value.status == 429 and info.value.retry_after == 3


async def test_azure_ai_embeddings_keep_input_type_even_with_drop_params(
    registry: ProviderRegistry, cohere: MockCohere
) -> None:
    d = deploy(
        registry,
        model="azure_ai/cohere-embed-v-4-0",
        api_key="co-key",
        api_base=cohere.base_url + "/models",
        input_type="text",
        drop_params=True,
    )
    call = ProviderCall(Operation.EMBEDDING, {"model": "g", "input": "hello", "bogus": 1})
    answer = orjson.loads((await d.provider.send(d, call)).body)
    assert answer["data"][0]["object"] == "embedding"
    recorded = cohere.last
    assert recorded.path == "/models/embeddings"
    assert recorded.json["input_type"] == "text" and "bogus" not in recorded.json
    assert recorded.headers["api-key"] == "co-key"
