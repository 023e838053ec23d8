"""Gemini (AI Studio) and Vertex AI providers: configuration, URLs, and OAuth access tokens."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bastion.config.model import ProxyConfig
from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.core.errors import UpstreamStatusError
from bastion.providers.base import ProviderCall
from bastion.providers.gemini import GeminiProvider
from bastion.providers.google_credentials import AccessTokens, loader_for
from bastion.providers.http import UpstreamHTTP
from bastion.providers.registry import ProviderRegistry
from bastion.providers.vertex import VertexProvider
from bastion.providers.vertex_anthropic import VertexAnthropicProvider, vertex_anthropic_body
from bastion.routing.deployments import make_deployment
from tests.mocks.gemini_upstream import MockGemini

ENV = (
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_BASE",
    "VERTEXAI_PROJECT",
    "VERTEX_PROJECT",
    "GOOGLE_CLOUD_PROJECT",
    "VERTEXAI_LOCATION",
    "VERTEX_LOCATION",
    "GOOGLE_CLOUD_REGION",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def google() -> Iterator[MockGemini]:
    with MockGemini(token_ttl=3600) as mock:
        yield mock


@pytest.fixture
def registry() -> ProviderRegistry:
    return ProviderRegistry(UpstreamHTTP())


def deploy(registry: ProviderRegistry, **params: Any) -> Deployment:
    model_info = params.pop("model_info", {})
    return make_deployment("group", params, model_info, "dep-1", registry, ProxyConfig())


def test_prefixes_resolve_to_the_google_providers(registry: ProviderRegistry) -> None:
    assert isinstance(registry.resolve("gemini/gemini-2.5-flash")[0], GeminiProvider)
    assert isinstance(registry.resolve("gemini-2.5-flash")[0], GeminiProvider)
    assert isinstance(registry.resolve("vertex_ai/gemini-2.5-pro")[0], VertexProvider)
    assert isinstance(registry.resolve("vertex_ai_beta/gemini-2.5-pro")[0], VertexProvider)


def test_ai_studio_url_and_key_header(
    registry: ProviderRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "from-google-env")
    d = deploy(registry, model="gemini/gemini-2.5-flash")
    assert d.request_headers["x-goog-api-key"] == "from-google-env"
    provider = d.provider
    assert isinstance(provider, GeminiProvider)
    assert provider.model_url(d, "generateContent") == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    monkeypatch.setenv("GEMINI_API_KEY", "from-gemini-env")
    d = deploy(registry, model="gemini/models/gemini-2.5-flash", api_base="http://h:1/v1")
    assert d.request_headers["x-goog-api-key"] == "from-gemini-env"
    assert provider.model_url(d, "x") == "http://h:1/v1/models/gemini-2.5-flash:x"
    assert "key=" not in provider.model_url(d, "x")  # never in the URL, where logs see it


def test_ai_studio_without_a_key_marks_the_deployment(registry: ProviderRegistry) -> None:
    d = deploy(registry, model="gemini/gemini-2.5-flash")
    assert d.missing_credential and "GEMINI_API_KEY" in d.missing_credential
    assert registry.get("gemini") is not None
    assert d.provider.supports(Operation.EMBEDDING)
    assert not d.provider.supports(Operation.RERANK)


def test_vertex_urls_by_location_and_publisher(
    registry: ProviderRegistry, google: MockGemini
) -> None:
    info = google.service_account_info("sa-project")
    d = deploy(
        registry,
        model="vertex_ai/gemini-2.5-pro",
        vertex_location="europe-west4",
        vertex_credentials=info,
    )
    provider = d.provider
    assert isinstance(provider, VertexProvider)
    assert provider.model_url(d, "generateContent") == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/sa-project/locations/"
        "europe-west4/publishers/google/models/gemini-2.5-pro:generateContent"
    )
    d = deploy(
        registry,
        model="vertex_ai/claude-sonnet-4-5@20250929",
        vertex_project="p2",
        vertex_location="global",
        vertex_credentials=json.dumps(info),
    )
    assert isinstance(d.provider, VertexAnthropicProvider)
    assert Dialect.ANTHROPIC in d.provider.dialects
    assert provider.model_url(d, "rawPredict", publisher="anthropic") == (
        "https://aiplatform.googleapis.com/v1/projects/p2/locations/global/publishers/"
        "anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    )


def test_vertex_project_and_location_from_the_environment(
    registry: ProviderRegistry, google: MockGemini, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "sa.json"
    key_file.write_text(json.dumps(google.service_account_info("file-project")))
    monkeypatch.setenv("VERTEXAI_PROJECT", "env-project")
    monkeypatch.setenv("VERTEXAI_LOCATION", "asia-northeast1")
    d = deploy(registry, model="vertex_ai/gemini-2.5-pro", vertex_credentials=str(key_file))
    url = d.provider.model_url(d, "m")  # type: ignore[attr-defined]
    assert "/projects/env-project/locations/asia-northeast1/" in url
    assert url.startswith("https://asia-northeast1-aiplatform.googleapis.com/v1/")


def test_unusable_vertex_credentials_fail_at_startup(registry: ProviderRegistry) -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        deploy(registry, model="vertex_ai/gemini-2.5-pro", vertex_credentials="{nope")
    with pytest.raises(ValueError, match="cannot load Google credentials"):
        deploy(registry, model="vertex_ai/gemini-2.5-pro", vertex_credentials="/no/such/file.json")


def test_vertex_anthropic_body_is_reenveloped() -> None:
    body = {
        "model": "claude-group",
        "max_tokens": 10,
        "stream": False,
        "messages": [{"role": "user", "content": "hi"}],
        "fallbacks": ["x"],
        "metadata": {"user_id": "u"},
    }
    out = vertex_anthropic_body(
        body, stream=True, defaults={"temperature": 0.5, "seed": 1}, also_drop=frozenset()
    )
    assert "model" not in out and "fallbacks" not in out
    assert out["anthropic_version"] == "vertex-2023-10-16"
    assert out["stream"] is True and out["temperature"] == 0.5 and "seed" not in out
    assert out["metadata"] == {"user_id": "u"}
    out = vertex_anthropic_body(body, stream=False, defaults={}, also_drop=frozenset({"metadata"}))
    assert "stream" not in out and "metadata" not in out


# --- access tokens, through google-auth's real JWT flow against the mock -------------------


async def test_token_is_fetched_once_for_concurrent_callers(google: MockGemini) -> None:
    tokens = AccessTokens(loader_for(google.service_account_info()))
    before = google.token_requests
    results = await asyncio.gather(*(tokens.token() for _ in range(20)))
    assert len(set(results)) == 1 and results[0].startswith("ya29.mock-")
    assert google.token_requests - before == 1
    assert await tokens.token() == results[0]  # cached
    assert google.token_requests - before == 1
    assert tokens.project == "mock-project"


async def test_token_is_renewed_in_the_background_before_expiry(google: MockGemini) -> None:
    offset = 0.0
    tokens = AccessTokens(
        loader_for(google.service_account_info()), clock=lambda: time.time() + offset
    )
    first = await tokens.token()
    offset = 3600 - 200  # inside the early-refresh window: served, and renewed behind
    assert await tokens.token() == first
    for _ in range(200):
        if tokens.refreshes == 2:
            break
        await asyncio.sleep(0.01)
    assert tokens.refreshes == 2
    second = await tokens.token()
    assert second != first
    offset = 2 * 3600  # long expired: the caller waits for a fresh one
    third = await tokens.token()
    assert third not in (first, second) and tokens.refreshes == 3


async def test_token_failure_is_a_401_without_the_private_key(google: MockGemini) -> None:
    info = google.service_account_info()
    info["token_uri"] = google.base_url + "/no-such-token-endpoint"
    tokens = AccessTokens(loader_for(info))
    with pytest.raises(UpstreamStatusError) as error:
        await tokens.token()
    assert error.value.status == 401
    assert "PRIVATE KEY" not in error.value.message
    assert "could not get a Google access token" in error.value.message


async def test_vertex_gemini_call_carries_the_bearer_token(
    registry: ProviderRegistry, google: MockGemini
) -> None:
    http = UpstreamHTTP()
    await http.start()
    try:
        provider = VertexProvider(http)
        d = make_deployment(
            "v",
            {
                "model": "vertex_ai/gemini-2.5-flash",
                "vertex_project": "p",
                "vertex_credentials": google.service_account_info(),
                "api_base": google.base_url,
            },
            {},
            "dep-v",
            registry,
            ProxyConfig(),
        )
        provider.configure(d)
        call = ProviderCall(
            Operation.CHAT, {"model": "v", "messages": [{"role": "user", "content": "hi"}]}
        )
        answer = orjson.loads((await provider.send(d, call)).body)
        assert answer["choices"][0]["message"]["content"] == "Hello from gemini-2.5-flash."
        recorded = google.last
        assert recorded.path == (
            "/v1/projects/p/locations/us-central1/publishers/google/models/"
            "gemini-2.5-flash:generateContent"
        )
        assert recorded.headers["authorization"] in {f"Bearer {t}" for t in google.issued_tokens()}
    finally:
        await http.close()
