"""Provider registry, vendor rows, Azure URLs, request shaping, upstream errors, the fake."""

from __future__ import annotations

import base64
import email.utils
import struct
import time
from typing import Any

import orjson
import pytest
from multidict import CIMultiDict

from bastion.config.model import ProxyConfig
from bastion.core.deployment import Deployment, Operation
from bastion.core.errors import UpstreamStatusError, UpstreamTimeoutError
from bastion.dialects.openai_params import GATEWAY_FIELDS, upstream_body
from bastion.providers.azure import DEFAULT_API_VERSION, AzureOpenAIProvider
from bastion.providers.base import ProviderCall
from bastion.providers.fake import EMBEDDING_DIMENSIONS, FakeProvider
from bastion.providers.http import UpstreamHTTP, error_from_response, parse_retry_after
from bastion.providers.openai_compatible import OpenAICompatibleProvider
from bastion.providers.registry import ProviderRegistry, UnknownProviderError, infer_provider
from bastion.providers.vendors import VENDORS, VENDORS_BY_NAME, Vendor
from bastion.routing.deployments import make_deployment

ALL_PROVIDER_ENV = sorted(
    {name for v in VENDORS for name in (*v.api_key_env, *v.api_base_env)}
    | {
        "AZURE_API_KEY",
        "AZURE_OPENAI_API_KEY",
        "AZURE_API_BASE",
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_API_VERSION",
        "AZURE_AD_TOKEN",
    }
)


@pytest.fixture(autouse=True)
def _clean_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def registry() -> ProviderRegistry:
    return ProviderRegistry(UpstreamHTTP())


def deploy(registry: ProviderRegistry, **params: Any) -> Deployment:
    """A deployment built the way the config path builds it."""
    model_info = params.pop("model_info", {})
    return make_deployment("group", params, model_info, "dep-1", registry, ProxyConfig())


# --- registry -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "provider", "upstream"),
    [
        ("openai/gpt-4o", "openai", "gpt-4o"),
        ("gpt-4o", "openai", "gpt-4o"),
        ("gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("o3-mini", "openai", "o3-mini"),
        ("text-embedding-3-small", "openai", "text-embedding-3-small"),
        ("ft:gpt-4o-mini:acme::abc123", "openai", "ft:gpt-4o-mini:acme::abc123"),
        ("azure/my-gpt4-deployment", "azure", "my-gpt4-deployment"),
        ("groq/llama-3.1-8b-instant", "groq", "llama-3.1-8b-instant"),
        ("ollama/llama3", "ollama", "llama3"),
        (
            "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct",
            "hosted_vllm",
            "meta-llama/Llama-3.1-8B-Instruct",
        ),
        ("openrouter/anthropic/claude-3.5-sonnet", "openrouter", "anthropic/claude-3.5-sonnet"),
        ("fake/anything", "fake", "anything"),
    ],
)
def test_resolve_by_prefix_and_inference(
    registry: ProviderRegistry, model: str, provider: str, upstream: str
) -> None:
    found, upstream_model = registry.resolve(model)
    assert found.name == provider
    assert upstream_model == upstream


def test_custom_llm_provider_overrides_the_prefix(registry: ProviderRegistry) -> None:
    provider, upstream = registry.resolve("meta-llama/Llama-3.1-8B", "hosted_vllm")
    assert (provider.name, upstream) == ("hosted_vllm", "meta-llama/Llama-3.1-8B")
    # A model written with the same prefix loses it.
    provider, upstream = registry.resolve("groq/llama3-70b", "groq")
    assert (provider.name, upstream) == ("groq", "llama3-70b")
    # An unprefixed name that inference could not place works with custom_llm_provider.
    provider, upstream = registry.resolve("my-finetune", "openai")
    assert (provider.name, upstream) == ("openai", "my-finetune")


def test_unknown_prefix_suggests_close_provider(registry: ProviderRegistry) -> None:
    with pytest.raises(
        UnknownProviderError,
        match=r"unknown provider 'opnai'; did you mean "
        r"'openai/'\?",
    ):
        registry.resolve("opnai/gpt-4o")
    with pytest.raises(UnknownProviderError, match="did you mean 'groq/'"):
        registry.resolve("grok/llama3")


def test_unknown_prefix_without_close_match_lists_providers(registry: ProviderRegistry) -> None:
    with pytest.raises(UnknownProviderError) as info:
        registry.resolve("zzqxv/model")
    assert "unknown provider 'zzqxv'; known providers:" in str(info.value)
    assert "openai" in str(info.value)


@pytest.mark.parametrize(
    "model",
    [
        "replicate/meta/llama-3-70b",
        "sagemaker/my-endpoint",
        "watsonx/ibm/granite-13b-chat-v2",
    ],
)
def test_planned_providers_say_not_supported_yet(registry: ProviderRegistry, model: str) -> None:
    with pytest.raises(UnknownProviderError, match="not supported by this version"):
        registry.resolve(model)


def test_unprefixed_unknown_model_asks_for_a_prefix(registry: ProviderRegistry) -> None:
    with pytest.raises(UnknownProviderError, match="write it with a provider prefix"):
        registry.resolve("meta-llama/Llama-3.1-8B")
    with pytest.raises(UnknownProviderError, match="'openai/mystery-model'"):
        infer_provider("mystery-model")


def test_register_adds_a_provider_like_a_plugin(registry: ProviderRegistry) -> None:
    extra = OpenAICompatibleProvider(Vendor("acme", "https://llm.acme.test/v1"), UpstreamHTTP())
    registry.register(extra, "acme_alias")
    assert registry.resolve("acme/m")[0] is extra
    assert registry.resolve("acme_alias/m")[0] is extra
    assert "acme" in registry.names()


def test_every_vendor_and_azure_and_fake_are_registered(registry: ProviderRegistry) -> None:
    for vendor in VENDORS:
        assert registry.get(vendor.name) is not None
    assert isinstance(registry.get("azure"), AzureOpenAIProvider)
    assert isinstance(registry.fake, FakeProvider)


# --- vendor rows --------------------------------------------------------------------------


def _base_for(vendor: Vendor) -> tuple[dict[str, Any], str]:
    """Params a vendor needs beyond the model, and the api_base it should end up with."""
    if vendor.api_base is None:
        return {"api_base": "http://inference.internal:8000"}, (
            "http://inference.internal:8000" + vendor.base_path
        )
    return {}, vendor.api_base


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
def test_vendor_defaults_base_url_and_key_from_env(
    registry: ProviderRegistry, monkeypatch: pytest.MonkeyPatch, vendor: Vendor
) -> None:
    extra, expected_base = _base_for(vendor)
    if vendor.api_key_env:
        monkeypatch.setenv(vendor.api_key_env[0], f"key-for-{vendor.name}")
    deployment = deploy(registry, model=f"{vendor.name}/some-model", **extra)

    assert deployment.provider_name == vendor.name
    assert deployment.upstream_model == "some-model"
    assert deployment.api_base == expected_base
    assert deployment.missing_credential is None
    headers = deployment.request_headers
    assert headers["Content-Type"] == "application/json"
    if vendor.api_key_env:
        assert deployment.api_key == f"key-for-{vendor.name}"
        assert headers["Authorization"] == f"Bearer key-for-{vendor.name}"
    else:
        assert "Authorization" not in headers


@pytest.mark.parametrize(
    ("vendor", "env_name"),
    [(v, name) for v in VENDORS for name in v.api_key_env[1:]],
    ids=lambda x: x if isinstance(x, str) else x.name,
)
def test_vendor_alternate_key_env_names(
    registry: ProviderRegistry, monkeypatch: pytest.MonkeyPatch, vendor: Vendor, env_name: str
) -> None:
    extra, _ = _base_for(vendor)
    monkeypatch.setenv(env_name, "alt-key")
    deployment = deploy(registry, model=f"{vendor.name}/m", **extra)
    assert deployment.api_key == "alt-key"


@pytest.mark.parametrize("vendor", [v for v in VENDORS if v.api_base_env], ids=lambda v: v.name)
def test_vendor_base_env_overrides_default(
    registry: ProviderRegistry, monkeypatch: pytest.MonkeyPatch, vendor: Vendor
) -> None:
    monkeypatch.setenv(vendor.api_base_env[0], "https://proxy.internal/")
    deployment = deploy(registry, model=f"{vendor.name}/m", api_key="k")
    assert deployment.api_base == "https://proxy.internal" + vendor.base_path


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
def test_config_api_key_and_base_beat_the_environment(
    registry: ProviderRegistry, monkeypatch: pytest.MonkeyPatch, vendor: Vendor
) -> None:
    for name in vendor.api_key_env:
        monkeypatch.setenv(name, "env-key")
    for name in vendor.api_base_env:
        monkeypatch.setenv(name, "https://env.example")
    deployment = deploy(
        registry,
        model=f"{vendor.name}/m",
        api_key="config-key",
        api_base="https://config.example/v1",
    )
    assert deployment.api_key == "config-key"
    assert deployment.api_base == "https://config.example/v1"
    assert deployment.request_headers["Authorization"] == "Bearer config-key"


@pytest.mark.parametrize("vendor", [v for v in VENDORS if v.requires_api_key], ids=lambda v: v.name)
def test_missing_key_marks_the_deployment_instead_of_raising(
    registry: ProviderRegistry, vendor: Vendor
) -> None:
    extra, _ = _base_for(vendor)
    deployment = deploy(registry, model=f"{vendor.name}/m", **extra)
    assert deployment.missing_credential is not None
    assert vendor.api_key_env[0] in deployment.missing_credential
    assert "Authorization" not in deployment.request_headers


@pytest.mark.parametrize(
    "vendor", [v for v in VENDORS if not v.requires_api_key], ids=lambda v: v.name
)
def test_keyless_vendors_are_callable_without_key(
    registry: ProviderRegistry, vendor: Vendor
) -> None:
    extra, _ = _base_for(vendor)
    deployment = deploy(registry, model=f"{vendor.name}/m", **extra)
    assert deployment.missing_credential is None


@pytest.mark.parametrize("vendor", [v for v in VENDORS if v.api_base is None], ids=lambda v: v.name)
def test_vendor_without_default_address_needs_api_base(
    registry: ProviderRegistry, vendor: Vendor
) -> None:
    with pytest.raises(ValueError, match="needs api_base"):
        deploy(registry, model=f"{vendor.name}/m")


@pytest.mark.parametrize(
    ("api_base", "expected"),
    [
        ("http://localhost:11434", "http://localhost:11434/v1"),
        ("http://localhost:11434/", "http://localhost:11434/v1"),
        ("http://localhost:11434/v1", "http://localhost:11434/v1"),
        ("http://gpu-box:11434/v1/", "http://gpu-box:11434/v1"),
    ],
)
def test_ollama_bare_host_gets_v1(registry: ProviderRegistry, api_base: str, expected: str) -> None:
    deployment = deploy(registry, model="ollama/llama3", api_base=api_base)
    assert deployment.api_base == expected
    provider = deployment.provider
    assert isinstance(provider, OpenAICompatibleProvider)
    assert provider.url(deployment, Operation.CHAT) == expected + "/chat/completions"


def test_openai_urls_per_operation_and_org_header(registry: ProviderRegistry) -> None:
    deployment = deploy(
        registry,
        model="openai/gpt-4o",
        api_key="sk-x",
        organization="org-1",
        extra_headers={"X-Team": "search"},
    )
    provider = deployment.provider
    assert isinstance(provider, OpenAICompatibleProvider)
    assert provider.url(deployment, Operation.CHAT) == "https://api.openai.com/v1/chat/completions"
    assert provider.url(deployment, Operation.EMBEDDING) == "https://api.openai.com/v1/embeddings"
    assert provider.url(deployment, Operation.COMPLETION) == (
        "https://api.openai.com/v1/completions"
    )
    assert deployment.request_headers["OpenAI-Organization"] == "org-1"
    assert deployment.request_headers["X-Team"] == "search"


def test_vendor_operation_support_follows_the_row(registry: ProviderRegistry) -> None:
    for vendor in VENDORS:
        provider = registry.get(vendor.name)
        assert provider is not None
        assert provider.supports(Operation.CHAT)
        assert provider.supports(Operation.EMBEDDING) is vendor.supports_embeddings
        assert provider.supports(Operation.COMPLETION) is vendor.supports_completions


# --- Azure --------------------------------------------------------------------------------


def test_azure_deployment_url_and_api_key_header(registry: ProviderRegistry) -> None:
    deployment = deploy(
        registry,
        model="azure/gpt-4.1",
        api_key="az-key",
        api_base="https://eastus.openai.azure.com/",
        api_version="2025-01-01-preview",
    )
    provider = deployment.provider
    assert isinstance(provider, AzureOpenAIProvider)
    assert provider.url(deployment, Operation.CHAT) == (
        "https://eastus.openai.azure.com/openai/deployments/gpt-4.1/chat/completions"
        "?api-version=2025-01-01-preview"
    )
    assert provider.url(deployment, Operation.EMBEDDING) == (
        "https://eastus.openai.azure.com/openai/deployments/gpt-4.1/embeddings"
        "?api-version=2025-01-01-preview"
    )
    assert deployment.request_headers["api-key"] == "az-key"
    assert "Authorization" not in deployment.request_headers
    assert deployment.missing_credential is None


def test_azure_deployment_name_is_url_quoted(registry: ProviderRegistry) -> None:
    deployment = deploy(
        registry, model="azure/my deploy/v2", api_key="k", api_base="https://r.openai.azure.com"
    )
    provider = deployment.provider
    assert isinstance(provider, AzureOpenAIProvider)
    assert "/openai/deployments/my%20deploy%2Fv2/chat/completions" in provider.url(
        deployment, Operation.CHAT
    )


def test_azure_api_version_from_env_then_default(
    registry: ProviderRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = {"api_base": "https://r.openai.azure.com", "api_key": "k"}
    assert deploy(registry, model="azure/d", **base).api_version == DEFAULT_API_VERSION
    monkeypatch.setenv("AZURE_API_VERSION", "2024-06-01")
    deployment = deploy(registry, model="azure/d", **base)
    assert deployment.api_version == "2024-06-01"
    provider = deployment.provider
    assert isinstance(provider, AzureOpenAIProvider)
    assert provider.url(deployment, Operation.CHAT).endswith("?api-version=2024-06-01")
    # An explicit api_version beats the environment.
    assert deploy(registry, model="azure/d", api_version="2023-05-15", **base).api_version == (
        "2023-05-15"
    )


def test_azure_base_and_key_from_env(
    registry: ProviderRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_API_BASE", "https://env-resource.openai.azure.com/")
    monkeypatch.setenv("AZURE_API_KEY", "env-az-key")
    deployment = deploy(registry, model="azure/gpt-4o")
    assert deployment.api_base == "https://env-resource.openai.azure.com"
    assert deployment.request_headers["api-key"] == "env-az-key"


def test_azure_v1_base_style_puts_model_in_body(registry: ProviderRegistry) -> None:
    deployment = deploy(
        registry,
        model="azure/gpt-4.1",
        api_key="k",
        api_base="https://r.openai.azure.com/openai/v1/",
    )
    provider = deployment.provider
    assert isinstance(provider, AzureOpenAIProvider)
    assert provider.url(deployment, Operation.CHAT) == (
        "https://r.openai.azure.com/openai/v1/chat/completions"
    )
    body = orjson.loads(
        provider.payload(
            deployment, ProviderCall(Operation.CHAT, {"model": "public-name", "messages": []})
        )
    )
    assert body["model"] == "gpt-4.1"


def test_azure_ad_token_and_missing_credential(registry: ProviderRegistry) -> None:
    base = "https://r.openai.azure.com"
    with_token = deploy(registry, model="azure/d", api_base=base, azure_ad_token="ad-tok")
    assert with_token.request_headers["Authorization"] == "Bearer ad-tok"
    assert with_token.missing_credential is None
    without = deploy(registry, model="azure/d", api_base=base)
    assert without.missing_credential is not None
    assert "AZURE_API_KEY" in without.missing_credential
    assert "api-key" not in without.request_headers


def test_azure_without_base_raises_value_error(registry: ProviderRegistry) -> None:
    with pytest.raises(ValueError, match="azure deployments need api_base"):
        deploy(registry, model="azure/d", api_key="k")


# --- upstream body shaping ----------------------------------------------------------------


def shape(
    body: dict[str, Any],
    operation: Operation = Operation.CHAT,
    *,
    defaults: dict[str, Any] | None = None,
    drop_params: bool = False,
    unsupported: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    return upstream_body(
        body,
        operation,
        "upstream-model",
        defaults=defaults or {},
        drop_params=drop_params,
        unsupported=unsupported,
    )


CHAT = {"model": "public", "messages": [{"role": "user", "content": "hi"}]}


def test_upstream_body_replaces_model() -> None:
    assert shape(dict(CHAT)) == {**CHAT, "model": "upstream-model"}


@pytest.mark.parametrize("field", sorted(GATEWAY_FIELDS))
def test_upstream_body_strips_each_gateway_field(field: str) -> None:
    out = shape({**CHAT, field: "x"})
    assert field not in out
    assert out["messages"] == CHAT["messages"]


def test_upstream_body_strips_typical_litellm_request_fields() -> None:
    body = {**CHAT, "mock_response": "hi", "fallbacks": ["b"], "num_retries": 3, "temperature": 0.5}
    assert shape(body) == {**CHAT, "model": "upstream-model", "temperature": 0.5}


def test_metadata_goes_upstream_only_with_store_true() -> None:
    meta = {"team": "search"}
    assert "metadata" not in shape({**CHAT, "metadata": meta})
    assert "metadata" not in shape({**CHAT, "metadata": meta, "store": False})
    assert "metadata" not in shape({**CHAT, "metadata": meta, "store": "true"})
    kept = shape({**CHAT, "metadata": meta, "store": True})
    assert kept["metadata"] == meta
    assert kept["store"] is True


def test_defaults_fill_in_without_overriding_the_client() -> None:
    out = shape(
        {**CHAT, "temperature": 0.9}, defaults={"temperature": 0.1, "max_tokens": 256, "seed": 7}
    )
    assert out["temperature"] == 0.9
    assert out["max_tokens"] == 256
    assert out["seed"] == 7


def test_without_drop_params_unknown_fields_pass_through() -> None:
    out = shape(
        {**CHAT, "vendor_extension": {"a": 1}, "logit_bias": {"1": 2}},
        unsupported=frozenset({"logit_bias"}),
    )
    assert out["vendor_extension"] == {"a": 1}
    assert out["logit_bias"] == {"1": 2}


def test_drop_params_drops_unknown_and_vendor_unsupported_fields() -> None:
    body = {**CHAT, "vendor_extension": 1, "logit_bias": {"1": 2}, "user": "u1", "temperature": 0.3}
    out = shape(
        body,
        drop_params=True,
        unsupported=frozenset({"logit_bias", "user"}),
        defaults={"input_type": "text", "top_p": 0.5},
    )
    assert out == {**CHAT, "model": "upstream-model", "temperature": 0.3, "top_p": 0.5}


def test_drop_params_uses_the_operation_parameter_set() -> None:
    body = {"model": "e", "input": ["a"], "dimensions": 8, "messages": [], "temperature": 1}
    out = shape(body, Operation.EMBEDDING, drop_params=True)
    assert out == {"model": "upstream-model", "input": ["a"], "dimensions": 8}


def test_upstream_body_leaves_the_client_body_untouched() -> None:
    body = {**CHAT, "mock_response": "x", "metadata": {"a": 1}}
    snapshot = orjson.dumps(body)
    shape(body, defaults={"temperature": 0}, drop_params=True)
    assert orjson.dumps(body) == snapshot


def test_vendor_payload_applies_its_unsupported_params(registry: ProviderRegistry) -> None:
    deployment = deploy(
        registry, model="groq/llama3-8b", api_key="k", drop_params=True, temperature=0.2
    )
    provider = deployment.provider
    assert isinstance(provider, OpenAICompatibleProvider)
    call = ProviderCall(
        Operation.CHAT,
        {**CHAT, "logit_bias": {"1": 1}, "functions": [], "num_retries": 1, "seed": 3},
    )
    body = orjson.loads(provider.payload(deployment, call))
    assert body == {**CHAT, "model": "llama3-8b", "seed": 3, "temperature": 0.2}


# --- upstream errors ----------------------------------------------------------------------


def test_retry_after_seconds() -> None:
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after": "-3"}) == 0.0


def test_retry_after_ms_header_wins() -> None:
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    # A broken ms header falls back to the seconds header.
    assert parse_retry_after({"retry-after-ms": "soon", "retry-after": "4"}) == 4.0


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = parse_retry_after({"retry-after": when})
    assert seconds is not None
    assert 27.0 <= seconds <= 31.0
    past = email.utils.formatdate(time.time() - 300, usegmt=True)
    assert parse_retry_after({"retry-after": past}) == 0.0


def test_retry_after_absent_or_garbage() -> None:
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": ""}) is None
    assert parse_retry_after({"retry-after": "whenever you like"}) is None


def test_retry_after_reads_case_insensitive_response_headers() -> None:
    assert parse_retry_after(CIMultiDict({"Retry-After": "3"})) == 3.0
    assert parse_retry_after(CIMultiDict({"Retry-After-Ms": "20"})) == 0.02


def test_error_from_openai_rate_limit_body() -> None:
    body = orjson.dumps(
        {
            "error": {
                "message": "Rate limit reached for key sk-live-abc123 in organization org-1",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
    )
    error = error_from_response(
        429, body, CIMultiDict({"Retry-After": "2"}), "openai", ("sk-live-abc123", None)
    )
    assert isinstance(error, UpstreamStatusError)
    assert error.status == 429
    assert error.provider == "openai"
    assert error.code == "rate_limit_exceeded"
    assert error.type == "requests"
    assert error.param is None
    assert error.retry_after == 2.0
    assert error.headers["retry-after"] == "2"
    assert error.message == "openai error: Rate limit reached for key *** in organization org-1"
    assert "sk-live-abc123" not in str(error)
    assert error.retryable and error.fallback_ok


def test_error_from_bad_request_keeps_param_and_is_final() -> None:
    body = orjson.dumps(
        {
            "error": {
                "message": "Invalid value for 'temperature'",
                "type": "invalid_request_error",
                "param": "temperature",
                "code": "invalid_value",
            }
        }
    )
    error = error_from_response(400, body, {}, "groq")
    assert (error.status, error.param, error.code) == (400, "temperature", "invalid_value")
    assert error.type == "invalid_request_error"
    assert error.retry_after is None
    assert "retry-after" not in error.headers
    assert not error.retryable
    assert not error.fallback_ok


@pytest.mark.parametrize(
    ("status", "body", "message", "error_type"),
    [
        (503, b"", "upstream answered HTTP 503", "api_error"),
        (502, b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>", "api_error"),
        (401, b'{"error": "invalid key"}', "invalid key", "authentication_error"),
        (404, b'{"detail": "Not Found"}', "Not Found", "not_found_error"),
        (403, b'{"message": "forbidden region"}', "forbidden region", "permission_error"),
        (429, b"[1, 2]", "upstream answered HTTP 429", "rate_limit_error"),
        (422, b'{"error": {"detail": "bad shape"}}', "bad shape", "invalid_request_error"),
    ],
)
def test_error_from_other_body_shapes(
    status: int, body: bytes, message: str, error_type: str
) -> None:
    error = error_from_response(status, body, {}, "vendor")
    assert error.status == status
    assert error.message == f"vendor error: {message}"
    assert error.type == error_type


def test_error_secrets_in_non_json_body_are_masked() -> None:
    error = error_from_response(
        500, b"upstream crashed handling key=sk-SECRET", {}, "openai", ("sk-SECRET",)
    )
    assert "sk-SECRET" not in error.message
    assert "***" in error.message


# --- the fake provider --------------------------------------------------------------------


def fake_deployment(mock_response: Any = None) -> Deployment:
    provider = FakeProvider()
    deployment = Deployment(
        id="fake-1",
        model_name="fake-chat",
        provider_name="fake",
        upstream_model="fake-chat",
        provider=provider,
        mock_response=mock_response,
    )
    provider.configure(deployment)
    return deployment


async def fake_send(
    body: dict[str, Any], operation: Operation = Operation.CHAT, mock_response: Any = None
) -> dict[str, Any]:
    deployment = fake_deployment(mock_response)
    response = await FakeProvider().send(deployment, ProviderCall(operation, body))
    assert response.status == 200
    assert response.content_type == b"application/json"
    result: dict[str, Any] = orjson.loads(response.body)
    return result


async def fake_stream(body: dict[str, Any], operation: Operation = Operation.CHAT) -> list[bytes]:
    stream = await FakeProvider().open_stream(
        fake_deployment(), ProviderCall(operation, body, stream=True)
    )
    assert stream.content_type == b"text/event-stream"
    chunks = [chunk async for chunk in stream]
    await stream.aclose()
    return chunks


async def test_fake_echoes_the_last_user_message() -> None:
    body = {
        "model": "fake-chat",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}],
            },
        ],
    }
    result = await fake_send(body)
    assert result["object"] == "chat.completion"
    assert result["model"] == "fake-chat"
    message = result["choices"][0]["message"]
    assert message["role"] == "assistant"
    assert message["content"] == "Hello from Bastion's fake provider. You said: hello there"
    usage = result["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_fake_mock_response_from_request_and_from_deployment() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    from_request = await fake_send(
        {**body, "mock_response": "canned answer"}, mock_response="deployment answer"
    )
    assert from_request["choices"][0]["message"]["content"] == "canned answer"
    from_deployment = await fake_send(body, mock_response="deployment answer")
    assert from_deployment["choices"][0]["message"]["content"] == "deployment answer"


async def test_fake_honours_n_and_completions() -> None:
    chat = await fake_send(
        {"model": "m", "n": 3, "mock_response": "x", "messages": [{"role": "user", "content": "q"}]}
    )
    assert [c["index"] for c in chat["choices"]] == [0, 1, 2]
    completion = await fake_send({"model": "m", "prompt": "say"}, Operation.COMPLETION)
    assert completion["object"] == "text_completion"
    assert completion["choices"][0]["text"].endswith("You said: say")


async def test_fake_rate_limit_mock_raises_429() -> None:
    deployment = fake_deployment()
    call = ProviderCall(
        Operation.CHAT, {"model": "m", "messages": [], "mock_response": "litellm.RateLimitError"}
    )
    with pytest.raises(UpstreamStatusError) as info:
        await FakeProvider().send(deployment, call)
    error = info.value
    assert error.status == 429
    assert error.type == "rate_limit_error"
    assert error.retry_after == 1
    assert error.headers["retry-after"] == "1"
    assert error.retryable
    # Streams raise before the first byte, too.
    with pytest.raises(UpstreamStatusError):
        await FakeProvider().open_stream(deployment, call)


@pytest.mark.parametrize(
    ("mock", "status"),
    [
        ("litellm.InternalServerError", 500),
        ("litellm.BadRequestError: nope", 400),
        ("litellm.AuthenticationError", 401),
        ("litellm.ServiceUnavailableError", 503),
    ],
)
async def test_fake_error_mocks(mock: str, status: int) -> None:
    with pytest.raises(UpstreamStatusError) as info:
        await fake_send({"model": "m", "messages": []}, mock_response=mock)
    assert info.value.status == status


async def test_fake_timeout_mock_and_unknown_litellm_name() -> None:
    with pytest.raises(UpstreamTimeoutError):
        await fake_send({"model": "m", "messages": []}, mock_response="litellm.Timeout")
    # An unknown name is just text.
    result = await fake_send({"model": "m", "messages": []}, mock_response="litellm.Nope")
    assert result["choices"][0]["message"]["content"] == "litellm.Nope"


async def test_fake_embeddings_are_deterministic() -> None:
    body = {"model": "fake-embedding", "input": ["alpha", "beta"]}
    first = await fake_send(body, Operation.EMBEDDING)
    second = await fake_send(body, Operation.EMBEDDING)
    assert first["object"] == "list"
    assert [d["index"] for d in first["data"]] == [0, 1]
    vectors = [d["embedding"] for d in first["data"]]
    assert vectors == [d["embedding"] for d in second["data"]]
    assert vectors[0] != vectors[1]
    assert all(len(v) == EMBEDDING_DIMENSIONS for v in vectors)
    assert all(-1.0 <= x <= 1.0 for v in vectors for x in v)
    single = await fake_send({"model": "e", "input": "alpha"}, Operation.EMBEDDING)
    assert single["data"][0]["embedding"] == vectors[0]


async def test_fake_embeddings_dimensions_and_base64() -> None:
    floats = await fake_send({"model": "e", "input": "x", "dimensions": 8}, Operation.EMBEDDING)
    vector = floats["data"][0]["embedding"]
    assert len(vector) == 8
    encoded = await fake_send(
        {"model": "e", "input": "x", "dimensions": 8, "encoding_format": "base64"},
        Operation.EMBEDDING,
    )
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    decoded = struct.unpack("<8f", raw)
    assert decoded == pytest.approx(vector, abs=1e-6)
    big = await fake_send({"model": "e", "input": "x", "dimensions": 100}, Operation.EMBEDDING)
    assert len(big["data"][0]["embedding"]) == 100


def _events(chunks: list[bytes]) -> list[bytes]:
    text = b"".join(chunks)
    assert text.endswith(b"\n\n")
    return text[:-2].split(b"\n\n")


async def test_fake_stream_is_valid_sse_ending_with_done() -> None:
    chunks = await fake_stream(
        {
            "model": "fake-chat",
            "mock_response": "one two three",
            "messages": [{"role": "user", "content": "x"}],
        }
    )
    events = _events(chunks)
    assert all(e.startswith(b"data: ") for e in events)
    assert events[-1] == b"data: [DONE]"
    payloads = [orjson.loads(e[6:]) for e in events[:-1]]
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)
    assert len({p["id"] for p in payloads}) == 1
    assert payloads[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(p["choices"][0]["delta"].get("content", "") for p in payloads)
    assert text == "one two three"
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in p for p in payloads)


async def test_fake_stream_usage_chunk_only_with_include_usage() -> None:
    body = {
        "model": "m",
        "mock_response": "hi there",
        "messages": [{"role": "user", "content": "x"}],
        "stream_options": {"include_usage": True},
    }
    events = _events(await fake_stream(body))
    assert events[-1] == b"data: [DONE]"
    usage_chunk = orjson.loads(events[-2][6:])
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    others = [orjson.loads(e[6:]) for e in events[:-2]]
    assert all("usage" not in p for p in others)
    events_off = _events(await fake_stream({**body, "stream_options": {"include_usage": False}}))
    assert all(b'"usage"' not in e for e in events_off)


async def test_fake_completion_stream() -> None:
    events = _events(
        await fake_stream(
            {"model": "m", "prompt": "p", "mock_response": "a b"}, Operation.COMPLETION
        )
    )
    assert events[-1] == b"data: [DONE]"
    payloads = [orjson.loads(e[6:]) for e in events[:-1]]
    assert all(p["object"] == "text_completion" for p in payloads)
    assert "".join(p["choices"][0]["text"] for p in payloads) == "a b"
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"


def test_vendors_by_name_matches_the_table() -> None:
    assert set(VENDORS_BY_NAME) == {v.name for v in VENDORS}
    assert len(VENDORS_BY_NAME) == len(VENDORS)
