"""Claude on Vertex AI: Anthropic's Messages API behind ``rawPredict`` / ``streamRawPredict``.

The body is Anthropic's, re-enveloped: no ``model`` (it is in the URL) and
``anthropic_version: vertex-2023-10-16``. Anthropic-dialect clients
(``/v1/messages``) pass through; the answer and the SSE stream come back as
Anthropic sent them. ``anthropic-beta`` client headers are forwarded.
OpenAI-dialect clients get the native Anthropic provider's translation both ways.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.dialects.anthropic_response_to_openai import anthropic_to_openai_response
from bastion.dialects.anthropic_stream_to_openai import AnthropicStreamTranslator
from bastion.dialects.openai_params import GATEWAY_FIELDS
from bastion.dialects.openai_to_anthropic import AnthropicRequest, openai_to_anthropic
from bastion.providers.anthropic import TranslatedAnthropicStream, default_max_tokens
from bastion.providers.base import ProviderCall, ProviderResponse, ProviderStream
from bastion.providers.http import UpstreamHTTP, encode_headers, open_sse, post_json
from bastion.providers.translated import include_usage

if TYPE_CHECKING:
    from bastion.providers.vertex import VertexProvider

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
_FORWARDED_HEADERS = ("anthropic-beta",)
# litellm_params defaults that mean the same in Anthropic's dialect as in OpenAI's.
_SHARED_DEFAULTS = frozenset({"max_tokens", "temperature", "top_p", "top_k"})


def vertex_anthropic_body(
    body: dict[str, Any], *, stream: bool, defaults: dict[str, Any], also_drop: frozenset[str]
) -> dict[str, Any]:
    """An Anthropic Messages body as Vertex wants it. Pure."""
    out = {
        k: v
        for k, v in body.items()
        if k != "model" and k not in GATEWAY_FIELDS and k not in also_drop
    }
    for name, value in defaults.items():
        if name in _SHARED_DEFAULTS and name not in out and name not in also_drop:
            out[name] = value
    out.setdefault("anthropic_version", VERTEX_ANTHROPIC_VERSION)
    if stream:
        out["stream"] = True
    else:
        out.pop("stream", None)
    return out


class VertexAnthropicProvider:
    name = "vertex_ai"
    dialects = frozenset({Dialect.OPENAI, Dialect.ANTHROPIC})

    def __init__(self, http: UpstreamHTTP, vertex: VertexProvider) -> None:
        self._http = http
        self._vertex = vertex

    def configure(self, deployment: Deployment) -> None:
        self._vertex.configure(deployment)

    def supports(self, operation: Operation) -> bool:
        return operation is Operation.CHAT

    async def send(self, deployment: Deployment, call: ProviderCall) -> ProviderResponse:
        request = self._translate(deployment, call)
        payload = self._payload(deployment, call, request)
        headers, head = await self._headers(deployment, call)
        status, body, content_type = await post_json(
            self._http,
            self._vertex.model_url(deployment, "rawPredict", publisher="anthropic"),
            payload,
            headers,
            head,
            provider=self.name,
            timeout=call.timeout or deployment.timeout,
        )
        if request is None:
            return ProviderResponse(status, body, content_type)
        answer = anthropic_to_openai_response(body, json_mode=request.json_mode, provider=self.name)
        return ProviderResponse(200, answer)

    async def open_stream(self, deployment: Deployment, call: ProviderCall) -> ProviderStream:
        request = self._translate(deployment, call)
        payload = self._payload(deployment, call, request)
        headers, head = await self._headers(deployment, call)
        stream = await open_sse(
            self._http,
            self._vertex.model_url(deployment, "streamRawPredict", publisher="anthropic"),
            payload,
            headers,
            head,
            provider=self.name,
            stream_timeout=call.timeout or deployment.stream_timeout or deployment.timeout,
        )
        if request is None:
            return stream  # relayed untouched
        translator = AnthropicStreamTranslator(
            include_usage=include_usage(call.body),
            json_mode=request.json_mode,
            model=deployment.upstream_model,
            provider=self.name,
        )
        return TranslatedAnthropicStream(stream, translator)

    def _translate(self, deployment: Deployment, call: ProviderCall) -> AnthropicRequest | None:
        """The Anthropic body for an OpenAI-dialect call; None when the client speaks Anthropic."""
        if call.dialect is Dialect.ANTHROPIC:
            return None
        body = {**deployment.default_params, **call.body}
        drop = deployment.drop_params if call.drop_params is None else call.drop_params
        return openai_to_anthropic(
            body,
            model=deployment.upstream_model,
            stream=call.stream,
            label=f"deployment '{deployment.model_name}' ({self.name})",
            drop_params=bool(drop),
            also_drop=call.also_drop,
            default_max_tokens=default_max_tokens(deployment.model_info),
        )

    def _payload(
        self, deployment: Deployment, call: ProviderCall, request: AnthropicRequest | None
    ) -> bytes:
        if request is not None:
            return orjson.dumps(
                vertex_anthropic_body(
                    request.body, stream=call.stream, defaults={}, also_drop=frozenset()
                )
            )
        body = vertex_anthropic_body(
            call.body,
            stream=call.stream,
            defaults=deployment.default_params,
            also_drop=call.also_drop,
        )
        return orjson.dumps(body)

    async def _headers(
        self, deployment: Deployment, call: ProviderCall
    ) -> tuple[dict[str, str], bytes]:
        headers, _ = await self._vertex.headers(deployment)
        for name in _FORWARDED_HEADERS:
            value = call.client_headers.get(name)
            if value:
                headers[name] = value
        return headers, encode_headers(headers)
