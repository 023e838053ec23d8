"""Anthropic's Messages API: api.anthropic.com, and Claude on Azure AI Foundry.

* Anthropic-dialect clients (``/v1/messages``): the body goes upstream as the client
  sent it, only ``model`` replaced (``dialects/splice.py``), and the answer or the SSE
  stream comes back byte for byte, so ``thinking``, ``cache_control``, server tools,
  citations and whatever Anthropic adds next keep working. The client's
  ``anthropic-version`` and ``anthropic-beta`` headers are forwarded.
* OpenAI-dialect clients (``/v1/chat/completions``): translated both ways
  (``dialects/openai_to_anthropic.py``, ``anthropic_response_to_openai.py``,
  ``anthropic_stream_to_openai.py``).

Azure AI Foundry serves the same API at
``https://<resource>.services.ai.azure.com/anthropic/v1/messages``, authenticated with
``x-api-key`` (Anthropic's SDK also sends ``api-key``) or an Entra ID bearer token. An
``api_base`` on ``*.azure.com`` selects it; a bare resource URL gets ``/anthropic``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.core.errors import UpstreamStatusError
from bastion.dialects.anthropic_response_to_openai import anthropic_to_openai_response
from bastion.dialects.anthropic_stream_to_openai import (
    AnthropicStreamTranslator,
    openai_stream_from_anthropic,
)
from bastion.dialects.openai_to_anthropic import (
    DEFAULT_MAX_TOKENS,
    AnthropicRequest,
    openai_to_anthropic,
)
from bastion.dialects.splice import passthrough_body
from bastion.providers.base import ProviderCall, ProviderResponse, ProviderStream
from bastion.providers.environment import first_env
from bastion.providers.http import UpstreamHTTP, encode_headers, open_sse, post_json

DEFAULT_API_BASE = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
API_BASE_ENV = ("ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL")
API_KEY_ENV = ("ANTHROPIC_API_KEY",)
# Never ANTHROPIC_API_KEY for Azure: a first-party key must not be sent to another host.
AZURE_API_KEY_ENV = ("ANTHROPIC_FOUNDRY_API_KEY", "AZURE_AI_API_KEY", "AZURE_API_KEY")
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")
# litellm_params defaults that mean the same in Anthropic's dialect as in OpenAI's.
SHARED_DEFAULTS = frozenset({"temperature", "top_p", "top_k"})
# /v1/messages fields that /v1/messages/count_tokens refuses.
MESSAGES_ONLY_FIELDS = frozenset(
    {"max_tokens", "stream", "temperature", "top_p", "top_k", "stop_sequences", "metadata"}
)


def normalize_base(api_base: str) -> tuple[str, bool]:
    """(base URL without ``/v1/messages``, whether it is Azure AI Foundry)."""
    base = api_base.strip().rstrip("/")
    for suffix in (COUNT_TOKENS_PATH, MESSAGES_PATH, "/v1"):
        if base.endswith(suffix):
            base = base[: -len(suffix)].rstrip("/")
            break
    parts = urlsplit(base)
    azure = (parts.hostname or "").endswith(".azure.com")
    if azure and parts.path in ("", "/"):
        base += "/anthropic"
    return base, azure


class AnthropicProvider:
    name = "anthropic"
    dialects = frozenset({Dialect.OPENAI, Dialect.ANTHROPIC})

    def __init__(self, http: UpstreamHTTP) -> None:
        self._http = http

    def configure(self, deployment: Deployment) -> None:
        base, azure = normalize_base(
            deployment.api_base or first_env(API_BASE_ENV) or DEFAULT_API_BASE
        )
        deployment.api_base = base
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if azure:
            key = deployment.api_key or first_env(AZURE_API_KEY_ENV)
            ad_token = deployment.params.get("azure_ad_token") or os.environ.get("AZURE_AD_TOKEN")
            if key:
                headers["x-api-key"] = headers["api-key"] = key
            elif ad_token:
                headers["authorization"] = f"Bearer {ad_token}"
            else:
                deployment.missing_credential = (
                    "no api_key or azure_ad_token set and none of "
                    f"{', '.join(AZURE_API_KEY_ENV)} is in the environment"
                )
        else:
            key = deployment.api_key or first_env(API_KEY_ENV)
            if key:
                headers["x-api-key"] = key
            else:
                deployment.missing_credential = (
                    "no api_key set and ANTHROPIC_API_KEY is not in the environment"
                )
        deployment.api_key = key
        headers = merge_headers(headers, deployment.extra_headers)
        deployment.request_headers = headers
        deployment.request_head = encode_headers(headers)

    def supports(self, operation: Operation) -> bool:
        return operation is Operation.CHAT

    async def send(self, deployment: Deployment, call: ProviderCall) -> ProviderResponse:
        if call.dialect is Dialect.ANTHROPIC:
            payload = self._passthrough(deployment, call)
            status, body, content_type = await self._post(deployment, call, payload)
            return ProviderResponse(status, body, content_type)
        request = self._translate(deployment, call, stream=False)
        _, body, _ = await self._post(deployment, call, orjson.dumps(request.body))
        return ProviderResponse(
            200,
            anthropic_to_openai_response(body, json_mode=request.json_mode, provider=self.name),
        )

    async def open_stream(self, deployment: Deployment, call: ProviderCall) -> ProviderStream:
        anthropic = call.dialect is Dialect.ANTHROPIC
        request: AnthropicRequest | None = None
        if anthropic:
            payload = self._passthrough(deployment, call)
        else:
            request = self._translate(deployment, call, stream=True)
            payload = orjson.dumps(request.body)
        headers, head = self._headers(deployment, call)
        try:
            stream = await open_sse(
                self._http,
                f"{deployment.api_base}{MESSAGES_PATH}",
                payload,
                headers,
                head,
                provider=self.name,
                stream_timeout=call.timeout or deployment.stream_timeout or deployment.timeout,
                secrets=_secrets(deployment),
            )
        except UpstreamStatusError as error:
            raise _for_client(error, anthropic) from None
        if request is None:
            return stream  # relayed untouched
        options = call.body.get("stream_options")
        translator = AnthropicStreamTranslator(
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
            json_mode=request.json_mode,
            model=deployment.upstream_model,
            provider=self.name,
        )
        return TranslatedAnthropicStream(stream, translator)

    async def count_tokens(self, deployment: Deployment, call: ProviderCall) -> int:
        """Input tokens of a request, counted by the upstream's ``/v1/messages/count_tokens``."""
        if call.dialect is Dialect.ANTHROPIC:
            payload = passthrough_body(
                call.raw,
                call.body,
                deployment.upstream_model,
                also_drop=call.also_drop | MESSAGES_ONLY_FIELDS,
            )
        else:
            body = self._translate(deployment, call, stream=False).body
            payload = orjson.dumps({k: v for k, v in body.items() if k not in MESSAGES_ONLY_FIELDS})
        _, answer, _ = await self._post(deployment, call, payload, path=COUNT_TOKENS_PATH)
        try:
            tokens = orjson.loads(answer).get("input_tokens")
        except (orjson.JSONDecodeError, AttributeError):
            tokens = None
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise UpstreamStatusError(
                f"{self.name} answered count_tokens without an input_tokens number",
                status=502,
                provider=self.name,
            )
        return tokens

    # -- parts -----------------------------------------------------------------------------

    def _passthrough(self, deployment: Deployment, call: ProviderCall) -> bytes:
        defaults = {k: v for k, v in deployment.default_params.items() if k in SHARED_DEFAULTS}
        return passthrough_body(
            call.raw,
            call.body,
            deployment.upstream_model,
            also_drop=call.also_drop,
            defaults=defaults or None,
        )

    def _translate(
        self, deployment: Deployment, call: ProviderCall, *, stream: bool
    ) -> AnthropicRequest:
        body = call.body
        if deployment.default_params:
            body = {**deployment.default_params, **body}
        drop = deployment.drop_params if call.drop_params is None else call.drop_params
        return openai_to_anthropic(
            body,
            model=deployment.upstream_model,
            stream=stream,
            label=f"deployment '{deployment.model_name}' ({self.name})",
            drop_params=bool(drop),
            also_drop=call.also_drop,
            default_max_tokens=default_max_tokens(deployment.model_info),
        )

    def _headers(
        self, deployment: Deployment, call: ProviderCall
    ) -> tuple[Mapping[str, str], bytes]:
        forwarded = {
            name: call.client_headers[name]
            for name in FORWARDED_HEADERS
            if call.client_headers.get(name)
        }
        if not forwarded:
            return deployment.request_headers, deployment.request_head
        headers = merge_headers(deployment.request_headers, forwarded)
        return headers, encode_headers(headers)

    async def _post(
        self,
        deployment: Deployment,
        call: ProviderCall,
        payload: bytes,
        *,
        path: str = MESSAGES_PATH,
    ) -> tuple[int, bytes, bytes]:
        headers, head = self._headers(deployment, call)
        try:
            return await post_json(
                self._http,
                f"{deployment.api_base}{path}",
                payload,
                headers,
                head,
                provider=self.name,
                timeout=call.timeout or deployment.timeout,
                secrets=_secrets(deployment),
            )
        except UpstreamStatusError as error:
            raise _for_client(error, call.dialect is Dialect.ANTHROPIC) from None


class TranslatedAnthropicStream:
    """An Anthropic SSE stream, relayed as OpenAI chat-completion chunks."""

    content_type = b"text/event-stream"

    def __init__(self, upstream: ProviderStream, translator: AnthropicStreamTranslator) -> None:
        self._upstream = upstream
        self._translator = translator

    def __aiter__(self) -> AsyncIterator[bytes]:
        return openai_stream_from_anthropic(self._upstream.__aiter__(), self._translator)

    async def aclose(self) -> None:
        await self._upstream.aclose()


def default_max_tokens(model_info: Mapping[str, Any]) -> int:
    """Anthropic requires max_tokens: the model's output limit from model_info, else 4096."""
    for name in ("max_tokens", "max_output_tokens"):
        value = model_info.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return DEFAULT_MAX_TOKENS


def merge_headers(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """``base`` overridden by ``extra``, names compared case-insensitively.

    ``anthropic-beta`` values are combined (configured betas plus the client's).
    """
    out = dict(base)
    lowered = {name.lower(): name for name in out}
    for name, value in extra.items():
        key = name.lower()
        existing = lowered.get(key)
        if existing is not None:
            previous = out.pop(existing)
            if key == "anthropic-beta":
                flags = [f.strip() for f in f"{previous},{value}".split(",") if f.strip()]
                value = ",".join(dict.fromkeys(flags))
        out[name] = value
        lowered[key] = name
    return out


def _for_client(error: UpstreamStatusError, anthropic_client: bool) -> UpstreamStatusError:
    """Anthropic's 529 (overloaded) means 503 to an OpenAI-dialect client; both retry."""
    if error.status == 529 and not anthropic_client:
        error.status = 503
        error.type = "overloaded_error"
    return error


def _secrets(deployment: Deployment) -> tuple[str | None, ...]:
    token = deployment.params.get("azure_ad_token")
    return (
        deployment.api_key,
        token if isinstance(token, str) else None,
        os.environ.get("AZURE_AD_TOKEN"),
    )
