"""The Bedrock provider without a network: configuration, URLs, errors, the Anthropic path."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.core.errors import InvalidRequestError, UpstreamError
from bastion.dialects.anthropic_bedrock import ChunkError, chunk_to_sse, invoke_body
from bastion.providers.bedrock import BedrockProvider
from bastion.providers.bedrock_errors import bedrock_error
from bastion.providers.bedrock_eventstream import encode_event, encode_exception
from bastion.providers.bedrock_stream import BedrockEventStream, InvokeTranslator
from bastion.providers.http import UpstreamHTTP
from bastion.providers.registry import ProviderRegistry

KEYS = {"aws_access_key_id": "AKIDTEST", "aws_secret_access_key": "unit-secret"}
SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def provider() -> BedrockProvider:
    return BedrockProvider(UpstreamHTTP())


def deploy(provider: BedrockProvider, model: str, **params: Any) -> Deployment:
    """A deployment as the config path builds it for ``bedrock/<model>``."""
    deployment = Deployment(
        id="dep-1",
        model_name="group",
        provider_name="bedrock",
        upstream_model=model,
        provider=provider,
        api_base=params.get("api_base"),
        api_key=params.get("api_key"),
        params={"model": f"bedrock/{model}", **params},
        model_info=params.pop("model_info", {}),
    )
    provider.configure(deployment)
    return deployment


def test_registered_under_both_prefixes() -> None:
    registry = ProviderRegistry(UpstreamHTTP())
    bedrock, model = registry.resolve(f"bedrock/{SONNET}")
    assert bedrock.name == "bedrock" and model == SONNET
    converse, model = registry.resolve(SONNET, custom_llm_provider="bedrock_converse")
    assert converse is bedrock and model == SONNET
    assert bedrock.supports(Operation.CHAT) and not bedrock.supports(Operation.EMBEDDING)


def test_default_endpoint_region_and_encoded_model_id(provider: BedrockProvider) -> None:
    deployment = deploy(provider, SONNET, aws_region_name="eu-central-1", **KEYS)
    assert deployment.api_base == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    assert provider.url(deployment, "converse") == (
        "https://bedrock-runtime.eu-central-1.amazonaws.com/model/"
        "anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    )
    assert deployment.missing_credential is None


def test_region_from_environment_then_arn(
    provider: BedrockProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-1")
    assert deploy(provider, SONNET, **KEYS).api_base == (
        "https://bedrock-runtime.ap-northeast-1.amazonaws.com"
    )
    monkeypatch.setenv("AWS_REGION", "us-east-2")
    assert "us-east-2" in str(deploy(provider, SONNET, **KEYS).api_base)
    arn = "arn:aws:bedrock:eu-west-3:123456789012:application-inference-profile/abc123"
    deployment = deploy(provider, arn, **KEYS)
    assert deployment.api_base == "https://bedrock-runtime.eu-west-3.amazonaws.com"
    assert provider.url(deployment, "invoke").endswith(
        "/model/arn%3Aaws%3Abedrock%3Aeu-west-3%3A123456789012%3A"
        "application-inference-profile%2Fabc123/invoke"
    )


def test_region_from_profile_config_and_default(provider: BedrockProvider, tmp_path: Path) -> None:
    assert "us-west-2" in str(deploy(provider, SONNET, **KEYS).api_base)
    (tmp_path / "config").write_text("[profile team]\nregion = sa-east-1\n")
    (tmp_path / "credentials").write_text(
        "[team]\naws_access_key_id = AKIDTEAM\naws_secret_access_key = s\n"
    )
    deployment = deploy(provider, SONNET, aws_profile_name="team")
    assert "sa-east-1" in str(deployment.api_base)
    assert deployment.missing_credential is None
    assert "amazonaws.com.cn" in str(
        deploy(provider, SONNET, aws_region_name="cn-north-1").api_base
    )


def test_endpoint_overrides_and_route_prefixes(provider: BedrockProvider) -> None:
    deployment = deploy(provider, f"converse/{SONNET}", api_base="http://127.0.0.1:9/", **KEYS)
    assert provider.url(deployment, "converse-stream") == (
        f"http://127.0.0.1:9/model/{SONNET.replace(':', '%3A')}/converse-stream"
    )
    endpoint = deploy(
        provider, SONNET, aws_bedrock_runtime_endpoint="https://vpce-1.example.com", **KEYS
    )
    assert endpoint.api_base == "https://vpce-1.example.com"
    provisioned = deploy(
        provider, SONNET, model_id="arn:aws:bedrock:us-east-1:1:provisioned-model/x", **KEYS
    )
    assert "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Aprovisioned-model%2Fx/converse" in (
        provider.url(provisioned, "converse")
    )


def test_claude_deployments_take_anthropic_bodies(provider: BedrockProvider) -> None:
    assert provider.dialects == frozenset({Dialect.OPENAI})
    claude = deploy(provider, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", **KEYS)
    assert claude.provider is not provider
    assert claude.provider.dialects == frozenset({Dialect.OPENAI, Dialect.ANTHROPIC})
    assert claude.provider.name == "bedrock"
    nova = deploy(provider, "us.amazon.nova-pro-v1:0", **KEYS)
    assert nova.provider is provider
    arn = "arn:aws:bedrock:us-east-1:1:application-inference-profile/p"
    by_base = deploy(provider, arn, base_model=SONNET, **KEYS)
    assert Dialect.ANTHROPIC in by_base.provider.dialects


def test_missing_credentials_mark_the_deployment(provider: BedrockProvider) -> None:
    deployment = deploy(provider, SONNET)
    assert deployment.missing_credential is not None
    assert "AWS_ACCESS_KEY_ID" in deployment.missing_credential
    ghost = deploy(provider, SONNET, aws_profile_name="ghost")
    assert ghost.missing_credential is not None and "ghost" in ghost.missing_credential


def test_api_key_selects_bearer_auth(
    provider: BedrockProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = deploy(provider, SONNET, api_key="bedrock-api-key-1")
    assert deployment.missing_credential is None
    route = provider._target(deployment).routes["converse"]
    assert route.signer is None
    assert route.headers["Authorization"] == "Bearer bedrock-api-key-1"
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "from-env")
    from_env = provider._target(deploy(provider, SONNET)).routes["invoke"]
    assert from_env.headers["Authorization"] == "Bearer from-env"
    signed = provider._target(deploy(provider, SONNET, **KEYS)).routes["invoke"]
    assert signed.signer is not None and "Authorization" not in signed.headers


@pytest.mark.parametrize(
    ("status", "error_type", "want_status", "want_type"),
    [
        (429, "ThrottlingException", 429, "rate_limit_error"),
        (400, "ValidationException", 400, "invalid_request_error"),
        (403, "AccessDeniedException", 403, "permission_error"),
        (403, "UnrecognizedClientException", 403, "authentication_error"),
        (403, "InvalidSignatureException", 403, "authentication_error"),
        (429, "ModelNotReadyException", 503, "api_error"),
        (503, "ServiceUnavailableException", 503, "api_error"),
        (408, "ModelTimeoutException", 408, "timeout"),
        (404, "ResourceNotFoundException", 404, "not_found_error"),
        (500, "InternalServerException", 500, "api_error"),
        (418, "SomethingNewException", 418, "invalid_request_error"),
    ],
)
def test_bedrock_errors_are_mapped(
    status: int, error_type: str, want_status: int, want_type: str
) -> None:
    headers = {
        "x-amzn-errortype": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        "retry-after": "2",
    }
    body = orjson.dumps({"message": "it failed for unit-secret"})
    error = bedrock_error(status, body, headers, "bedrock", ("unit-secret",))
    assert (error.status, error.type, error.code) == (want_status, want_type, error_type)
    assert error.message == f"bedrock error: {error_type}: it failed for ***"
    assert error.retry_after == 2.0


def test_bedrock_error_without_type_header_keeps_the_status() -> None:
    error = bedrock_error(502, b"<html>bad gateway</html>", {}, "bedrock")
    assert (error.status, error.type, error.code) == (502, "api_error", None)
    assert "bad gateway" in error.message


def test_invoke_body_re_envelopes_an_anthropic_body() -> None:
    body = {
        "model": "claude-group",
        "stream": True,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "anthropic_beta": ["mine-as-is"],
        "fallbacks": ["other"],
        "drop_me": 1,
        "service_tier": "auto",
    }
    out = invoke_body(
        body,
        {
            "anthropic-beta": "claude-code-20250219, context-1m-2025-08-07 ,mine-as-is,"
            "oauth-2025-04-20,interleaved-thinking-2025-05-14",
            "anthropic-version": "2023-06-01",
        },
        defaults={"temperature": 0.1, "max_tokens": 5, "user": "x"},
        also_drop=frozenset({"drop_me"}),
    )
    assert out == {
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "anthropic_beta": [
            "mine-as-is",
            "context-1m-2025-08-07",
            "interleaved-thinking-2025-05-14",
        ],
        "anthropic_version": "bedrock-2023-05-31",
        "temperature": 0.1,
    }
    assert "model" in body and "stream" in body  # the client's body is not modified


def test_invoke_body_refuses_fields_bedrock_rejects_unless_dropped() -> None:
    body = {
        "max_tokens": 10,
        "messages": [],
        "container": "c1",
        "service_tier": "auto",
        "metadata": {"user_id": "u"},
    }
    with pytest.raises(InvalidRequestError, match="'container' is not supported by dep"):
        invoke_body(body, {}, label="dep")
    out = invoke_body(body, {}, drop_params=True)
    assert out == {
        "max_tokens": 10,
        "messages": [],
        "metadata": {"user_id": "u"},
        "anthropic_version": "bedrock-2023-05-31",
    }


def chunk(event: dict[str, Any]) -> bytes:
    data = base64.b64encode(orjson.dumps(event)).decode()
    return encode_event("chunk", orjson.dumps({"bytes": data, "p": "abc"}))


def test_chunk_to_sse() -> None:
    sse = chunk_to_sse(orjson.dumps({"bytes": base64.b64encode(b'{"type":"ping"}').decode()}))
    assert sse == b'event: ping\ndata: {"type":"ping"}\n\n'
    pretty = base64.b64encode(b'{\n  "type": "ping"\n}').decode()
    assert (
        chunk_to_sse(orjson.dumps({"bytes": pretty})) == b'event: ping\ndata: {"type":"ping"}\n\n'
    )
    for bad in (
        b"{}",
        b'{"bytes": "!!"}',
        orjson.dumps({"bytes": base64.b64encode(b"[]").decode()}),
    ):
        with pytest.raises(ChunkError):
            chunk_to_sse(bad)


class Upstream:
    content_type = b"application/vnd.amazon.eventstream"

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), 5):
            yield self.data[i : i + 5]

    async def aclose(self) -> None:
        pass


async def collect(data: bytes) -> tuple[bytes, UpstreamError | None]:
    out = []
    try:
        async for piece in BedrockEventStream(Upstream(data), InvokeTranslator()):
            out.append(piece)
    except UpstreamError as exc:
        return b"".join(out), exc
    return b"".join(out), None


async def test_invoke_stream_becomes_anthropic_sse() -> None:
    events = [
        {"type": "message_start", "message": {"id": "msg_bdrk_1", "usage": {"input_tokens": 3}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 3}},
    ]
    out, error = await collect(b"".join(chunk(e) for e in events))
    assert error is None
    assert out == b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events
    )


async def test_invoke_stream_errors() -> None:
    start = chunk({"type": "message_start", "message": {}})
    out, error = await collect(start)
    assert out.startswith(b"event: message_start\n")
    assert error is not None and error.status == 502 and "message_stop" in error.message
    exception = encode_exception("serviceUnavailableException", b'{"message":"busy"}')
    out, error = await collect(start + exception)
    assert error is not None and (error.status, error.code) == (503, "ServiceUnavailableException")
    garbage = encode_event("chunk", b'{"bytes":"bm90IGpzb24="}')
    _, error = await collect(start + garbage)
    assert error is not None and error.status == 502 and "malformed" in error.message
    corrupt = bytearray(start)
    corrupt[-1] ^= 1
    _, error = await collect(bytes(corrupt))
    assert error is not None and "CRC" in error.message
