"""Google's Gemini API: AI Studio here (``gemini/``), Vertex AI in ``vertex.py``.

Both speak ``generateContent`` / ``streamGenerateContent?alt=sse``; they differ in
the URL and the credential (an API key in ``x-goog-api-key`` here, an OAuth access
token there). OpenAI-dialect requests are translated both ways.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import orjson

from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.dialects.gemini_embeddings import batch_embed_request, embeddings_from_gemini
from bastion.dialects.gemini_to_openai import GeminiStreamTranslator, chat_completion_from_gemini
from bastion.dialects.openai_to_gemini import gemini_request
from bastion.dialects.translate_common import Target
from bastion.providers.base import ProviderCall, ProviderResponse, ProviderStream
from bastion.providers.http import UpstreamHTTP, encode_headers, open_sse, post_json
from bastion.providers.translated import (
    TranslatedStream,
    include_usage,
    load_object,
    now,
    request_fields,
    target_of,
)

AI_STUDIO_BASE = "https://generativelanguage.googleapis.com"
AI_STUDIO_VERSION = "/v1beta"


class GoogleGenAIProvider:
    """What AI Studio and Vertex share; subclasses say where to call and with which headers."""

    name = "google"
    dialects = frozenset({Dialect.OPENAI})

    def __init__(self, http: UpstreamHTTP) -> None:
        self._http = http

    def configure(self, deployment: Deployment) -> None:
        raise NotImplementedError

    def supports(self, operation: Operation) -> bool:
        return operation in (Operation.CHAT, Operation.EMBEDDING)

    def model_url(self, deployment: Deployment, method: str) -> str:
        raise NotImplementedError

    async def headers(self, deployment: Deployment) -> tuple[dict[str, str], bytes]:
        """Request headers (and their encoded form) for one call."""
        return deployment.request_headers, deployment.request_head

    def secrets(self, deployment: Deployment) -> tuple[str | None, ...]:
        return (deployment.api_key,)

    async def send(self, deployment: Deployment, call: ProviderCall) -> ProviderResponse:
        fields = request_fields(deployment, call)
        target = target_of(deployment, call)
        if call.operation is Operation.EMBEDDING:
            return await self._embed(deployment, call, fields, target)
        payload = orjson.dumps(gemini_request(fields, target))
        body = await self._post(deployment, call, "generateContent", payload)
        data = load_object(body, self.name)
        answer = chat_completion_from_gemini(data, model=deployment.upstream_model, created=now())
        return ProviderResponse(200, orjson.dumps(answer))

    async def open_stream(self, deployment: Deployment, call: ProviderCall) -> ProviderStream:
        fields = request_fields(deployment, call)
        payload = orjson.dumps(gemini_request(fields, target_of(deployment, call)))
        headers, head = await self.headers(deployment)
        upstream = await open_sse(
            self._http,
            self.model_url(deployment, "streamGenerateContent") + "?alt=sse",
            payload,
            headers,
            head,
            provider=self.name,
            stream_timeout=call.timeout or deployment.stream_timeout or deployment.timeout,
            secrets=self.secrets(deployment),
        )
        translator = GeminiStreamTranslator(
            model=deployment.upstream_model,
            created=now(),
            include_usage=include_usage(fields),
            provider=self.name,
        )
        return TranslatedStream(upstream, translator)

    async def _embed(
        self, deployment: Deployment, call: ProviderCall, fields: dict[str, Any], target: Target
    ) -> ProviderResponse:
        raise NotImplementedError

    async def _post(
        self, deployment: Deployment, call: ProviderCall, method: str, payload: bytes
    ) -> bytes:
        headers, head = await self.headers(deployment)
        _, body, _ = await post_json(
            self._http,
            self.model_url(deployment, method),
            payload,
            headers,
            head,
            provider=self.name,
            timeout=call.timeout or deployment.timeout,
            secrets=self.secrets(deployment),
        )
        return body

    async def _embed_with(
        self, deployment: Deployment, call: ProviderCall, method: str, payload: bytes
    ) -> ProviderResponse:
        body = await self._post(deployment, call, method, payload)
        answer = embeddings_from_gemini(
            load_object(body, self.name),
            model=deployment.upstream_model,
            encoding_format=call.body.get("encoding_format"),
            provider=self.name,
        )
        return ProviderResponse(200, orjson.dumps(answer))


class GeminiProvider(GoogleGenAIProvider):
    """AI Studio: ``x-goog-api-key`` from api_key, GEMINI_API_KEY or GOOGLE_API_KEY."""

    name = "gemini"

    def configure(self, deployment: Deployment) -> None:
        base = deployment.api_base or os.environ.get("GEMINI_API_BASE") or AI_STUDIO_BASE
        deployment.api_base = base.rstrip("/")
        deployment.upstream_model = deployment.upstream_model.removeprefix("models/")
        if deployment.api_key is None:
            deployment.api_key = os.environ.get("GEMINI_API_KEY") or os.environ.get(
                "GOOGLE_API_KEY"
            )
        headers = {"Content-Type": "application/json"}
        if deployment.api_key:
            headers["x-goog-api-key"] = deployment.api_key
        else:
            deployment.missing_credential = (
                "no api_key set and neither GEMINI_API_KEY nor GOOGLE_API_KEY is in the environment"
            )
        headers.update(deployment.extra_headers)
        deployment.request_headers = headers
        deployment.request_head = encode_headers(headers)

    def model_url(self, deployment: Deployment, method: str) -> str:
        base = deployment.api_base or AI_STUDIO_BASE
        if not base.endswith(("/v1beta", "/v1", "/v1alpha")):
            base += AI_STUDIO_VERSION
        return f"{base}/models/{quote(deployment.upstream_model, safe='')}:{method}"

    async def _embed(
        self, deployment: Deployment, call: ProviderCall, fields: dict[str, Any], target: Target
    ) -> ProviderResponse:
        payload = orjson.dumps(batch_embed_request(fields, deployment.upstream_model, target))
        return await self._embed_with(deployment, call, "batchEmbedContents", payload)
