"""Cohere's v2 API (``cohere/``, ``cohere_chat/``): chat, embed and rerank.

OpenAI-dialect chat and embeddings are translated both ways; rerank requests
arrive in Cohere's own shape already and are only re-addressed.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.dialects.cohere_to_openai import (
    CohereStreamTranslator,
    chat_completion_from_cohere,
    embeddings_from_cohere,
    rerank_from_cohere,
)
from bastion.dialects.openai_to_cohere import (
    cohere_chat_request,
    cohere_embed_request,
    cohere_rerank_request,
)
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

COHERE_BASE = "https://api.cohere.com"
DEFAULT_INPUT_TYPE = "search_document"
_PATHS = {
    Operation.CHAT: "/v2/chat",
    Operation.EMBEDDING: "/v2/embed",
    Operation.RERANK: "/v2/rerank",
}


class CohereProvider:
    name = "cohere"
    dialects = frozenset({Dialect.OPENAI})

    def __init__(self, http: UpstreamHTTP) -> None:
        self._http = http

    def configure(self, deployment: Deployment) -> None:
        base = deployment.api_base or os.environ.get("COHERE_API_BASE") or COHERE_BASE
        base = base.rstrip("/")
        for suffix in ("/v2", "/v1"):
            base = base.removesuffix(suffix)
        deployment.api_base = base
        if deployment.api_key is None:
            deployment.api_key = os.environ.get("CO_API_KEY") or os.environ.get("COHERE_API_KEY")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if deployment.api_key:
            headers["Authorization"] = f"Bearer {deployment.api_key}"
        else:
            deployment.missing_credential = (
                "no api_key set and neither CO_API_KEY nor COHERE_API_KEY is in the environment"
            )
        headers.update(deployment.extra_headers)
        deployment.request_headers = headers
        deployment.request_head = encode_headers(headers)

    def supports(self, operation: Operation) -> bool:
        return operation in _PATHS

    async def send(self, deployment: Deployment, call: ProviderCall) -> ProviderResponse:
        fields = request_fields(deployment, call)
        target = target_of(deployment, call)
        model = deployment.upstream_model
        payload: dict[str, Any]
        if call.operation is Operation.EMBEDDING:
            payload = cohere_embed_request(
                fields, model, target, default_input_type=DEFAULT_INPUT_TYPE
            )
        elif call.operation is Operation.RERANK:
            payload = cohere_rerank_request(fields, model)
        else:
            payload = cohere_chat_request(fields, model, target, stream=False)
        data = load_object(await self._post(deployment, call, payload), self.name)
        answer: dict[str, Any]
        if call.operation is Operation.EMBEDDING:
            answer = embeddings_from_cohere(data, model=model)
        elif call.operation is Operation.RERANK:
            answer = rerank_from_cohere(data, fields)
        else:
            answer = chat_completion_from_cohere(data, model=model, created=now())
        return ProviderResponse(200, orjson.dumps(answer))

    async def open_stream(self, deployment: Deployment, call: ProviderCall) -> ProviderStream:
        fields = request_fields(deployment, call)
        payload = cohere_chat_request(
            fields, deployment.upstream_model, target_of(deployment, call), stream=True
        )
        upstream = await open_sse(
            self._http,
            f"{deployment.api_base}{_PATHS[Operation.CHAT]}",
            orjson.dumps(payload),
            deployment.request_headers,
            deployment.request_head,
            provider=self.name,
            stream_timeout=call.timeout or deployment.stream_timeout or deployment.timeout,
            secrets=(deployment.api_key,),
        )
        translator = CohereStreamTranslator(
            model=deployment.upstream_model, created=now(), include_usage=include_usage(fields)
        )
        return TranslatedStream(upstream, translator)

    async def _post(
        self, deployment: Deployment, call: ProviderCall, payload: dict[str, Any]
    ) -> bytes:
        _, body, _ = await post_json(
            self._http,
            f"{deployment.api_base}{_PATHS[call.operation]}",
            orjson.dumps(payload),
            deployment.request_headers,
            deployment.request_head,
            provider=self.name,
            timeout=call.timeout or deployment.timeout,
            secrets=(deployment.api_key,),
        )
        return body
