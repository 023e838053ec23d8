"""The Anthropic provider's configuration: base URLs, Azure AI Foundry, credentials, headers."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.core.deployment import Deployment
from bastion.core.dialect import Dialect
from bastion.providers.anthropic import (
    AnthropicProvider,
    default_max_tokens,
    merge_headers,
    normalize_base,
)
from bastion.providers.http import UpstreamHTTP
from bastion.providers.registry import ProviderRegistry

ENV = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_API_BASE",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_FOUNDRY_API_KEY",
    "AZURE_AI_API_KEY",
    "AZURE_API_KEY",
    "AZURE_AD_TOKEN",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def configured(**fields: Any) -> Deployment:
    provider = AnthropicProvider(UpstreamHTTP())
    deployment = Deployment(
        id="d",
        model_name="claude",
        provider_name="anthropic",
        upstream_model="claude-sonnet-4-5",
        provider=provider,
        **fields,
    )
    provider.configure(deployment)
    return deployment


@pytest.mark.parametrize(
    "given, base, azure",
    [
        ("https://api.anthropic.com", "https://api.anthropic.com", False),
        ("https://api.anthropic.com/", "https://api.anthropic.com", False),
        ("https://api.anthropic.com/v1", "https://api.anthropic.com", False),
        ("https://api.anthropic.com/v1/messages", "https://api.anthropic.com", False),
        ("http://proxy.local:8080/llm/anthropic", "http://proxy.local:8080/llm/anthropic", False),
        ("https://res.services.ai.azure.com", "https://res.services.ai.azure.com/anthropic", True),
        (
            "https://res.services.ai.azure.com/anthropic/",
            "https://res.services.ai.azure.com/anthropic",
            True,
        ),
        (
            "https://res.services.ai.azure.com/anthropic/v1/messages",
            "https://res.services.ai.azure.com/anthropic",
            True,
        ),
        ("https://res.openai.azure.com", "https://res.openai.azure.com/anthropic", True),
    ],
)
def test_base_urls(given: str, base: str, azure: bool) -> None:
    assert normalize_base(given) == (base, azure)


def test_defaults_and_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    deployment = configured(extra_headers={"Anthropic-Beta": "context-1m-2025-08-07"})
    assert deployment.api_base == "https://api.anthropic.com"
    assert deployment.missing_credential is None
    assert deployment.request_headers == {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": "sk-ant-env",
        "Anthropic-Beta": "context-1m-2025-08-07",
    }
    assert deployment.request_head.startswith(b"content-type: application/json\r\n")
    assert b"authorization" not in deployment.request_head.lower()


def test_base_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/v1")
    assert configured(api_key="k").api_base == "http://127.0.0.1:9"
    monkeypatch.setenv("ANTHROPIC_API_BASE", "http://127.0.0.1:8")
    assert configured(api_key="k").api_base == "http://127.0.0.1:8"


def test_a_missing_key_is_named() -> None:
    deployment = configured()
    assert deployment.missing_credential is not None
    assert "ANTHROPIC_API_KEY" in deployment.missing_credential


def test_azure_foundry_uses_its_own_keys_never_the_anthropic_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-first-party")
    base = "https://res.services.ai.azure.com"
    deployment = configured(api_base=base)
    assert deployment.missing_credential is not None
    assert "sk-ant-first-party" not in str(deployment.request_headers)
    monkeypatch.setenv("AZURE_AI_API_KEY", "azure-key")
    deployment = configured(api_base=base)
    assert deployment.request_headers["x-api-key"] == "azure-key"
    assert deployment.request_headers["api-key"] == "azure-key"
    assert deployment.api_base == base + "/anthropic"


def test_azure_entra_token() -> None:
    deployment = configured(
        api_base="https://res.services.ai.azure.com/anthropic",
        params={"azure_ad_token": "eyJ.token"},
    )
    assert deployment.missing_credential is None
    assert deployment.request_headers["authorization"] == "Bearer eyJ.token"
    assert "x-api-key" not in deployment.request_headers


def test_merge_headers_is_case_insensitive_and_unions_betas() -> None:
    base = {"anthropic-version": "2023-06-01", "Anthropic-Beta": "a,b", "x-api-key": "k"}
    merged = merge_headers(base, {"anthropic-version": "2099-01-01", "anthropic-beta": "b, c"})
    assert merged == {
        "x-api-key": "k",
        "anthropic-version": "2099-01-01",
        "anthropic-beta": "a,b,c",
    }


def test_default_max_tokens_from_model_info() -> None:
    assert default_max_tokens({}) == 4096
    assert default_max_tokens({"max_output_tokens": 64000}) == 64000
    assert default_max_tokens({"max_tokens": 8192, "max_output_tokens": 64000}) == 8192
    assert default_max_tokens({"max_tokens": True}) == 4096


def test_registry_resolves_prefixed_and_bare_claude_names() -> None:
    registry = ProviderRegistry(UpstreamHTTP())
    provider, model = registry.resolve("anthropic/claude-opus-4-1")
    assert isinstance(provider, AnthropicProvider) and model == "claude-opus-4-1"
    provider, model = registry.resolve("claude-3-5-haiku-20241022")
    assert isinstance(provider, AnthropicProvider) and model == "claude-3-5-haiku-20241022"
    assert provider.dialects == {Dialect.OPENAI, Dialect.ANTHROPIC}
