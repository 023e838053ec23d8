"""Azure AI Foundry (``azure_ai/``): the model-inference API, plus Cohere rerank on Azure.

Chat and embeddings are OpenAI-compatible at ``{api_base}/chat/completions`` and
``{api_base}/embeddings`` (``?api-version=`` when one is configured); embeddings
carry ``input_type`` (Azure-hosted Cohere embed models take ``text``, ``query``
or ``document``), which ``litellm_params.input_type`` sets by default. Rerank
(``azure_ai/cohere-rerank-v3.5``) is Cohere's rerank shape at ``{api_base}/v1/rerank``,
or ``/v2/rerank`` when the base says v2 (``…/providers/cohere/v2``).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import orjson

from bastion.core.deployment import Deployment, Operation
from bastion.dialects.cohere_to_openai import rerank_from_cohere
from bastion.dialects.openai_params import upstream_body
from bastion.dialects.openai_to_cohere import cohere_rerank_request
from bastion.providers.base import ProviderCall, ProviderResponse
from bastion.providers.http import UpstreamHTTP, encode_headers, post_json
from bastion.providers.openai_compatible import OPERATION_PATHS, OpenAICompatibleProvider
from bastion.providers.translated import load_object, request_fields
from bastion.providers.vendors import Vendor

AZURE_AI_VENDOR = Vendor(
    "azure_ai", None, ("AZURE_AI_API_KEY",), ("AZURE_AI_API_BASE",), supports_completions=False
)


def rerank_url(base: str) -> tuple[str, int]:
    """The rerank URL for an Azure AI base, and the Cohere API version it speaks."""
    path = urlsplit(base).path.rstrip("/")
    if path.endswith(("/v1/rerank", "/v2/rerank")):
        url = base
    elif path.endswith(("/v1", "/v2")):
        url = f"{base}/rerank"
    else:
        url = f"{base}/v1/rerank"
    return url, 2 if "/v2/" in url else 1


class AzureAIProvider(OpenAICompatibleProvider):
    def configure(self, deployment: Deployment) -> None:
        base = deployment.api_base or os.environ.get("AZURE_AI_API_BASE")
        if not base:
            raise ValueError(
                "azure_ai deployments need api_base (https://<resource>.services.ai.azure.com/"
                "models or the model's endpoint) or AZURE_AI_API_BASE in the environment"
            )
        deployment.api_base = base.rstrip("/")
        if deployment.api_key is None:
            deployment.api_key = os.environ.get("AZURE_AI_API_KEY")
        if deployment.api_version is None:
            deployment.api_version = os.environ.get("AZURE_AI_API_VERSION")
        headers = {"Content-Type": "application/json"}
        if deployment.api_key:
            # Foundry resources read api-key, serverless endpoints a bearer token: send both.
            headers["api-key"] = deployment.api_key
            headers["Authorization"] = f"Bearer {deployment.api_key}"
        else:
            deployment.missing_credential = (
                "no api_key set and AZURE_AI_API_KEY is not in the environment"
            )
        headers.update(deployment.extra_headers)
        deployment.request_headers = headers
        deployment.request_head = encode_headers(headers)

    def supports(self, operation: Operation) -> bool:
        return operation in (Operation.CHAT, Operation.EMBEDDING, Operation.RERANK)

    def url(self, deployment: Deployment, operation: Operation) -> str:
        base = deployment.api_base or ""
        path = OPERATION_PATHS[operation]
        url = base if base.endswith(path) else f"{base}{path}"
        if deployment.api_version:
            url += f"?api-version={deployment.api_version}"
        return url

    def payload(self, deployment: Deployment, call: ProviderCall) -> bytes:
        if call.operation is not Operation.EMBEDDING:
            return super().payload(deployment, call)
        drop = deployment.drop_params if call.drop_params is None else call.drop_params
        body = upstream_body(
            call.body,
            call.operation,
            deployment.upstream_model,
            defaults=deployment.default_params,
            drop_params=bool(drop),
            also_drop=call.also_drop,
            unsupported=self.vendor.unsupported_params,
        )
        # input_type is no OpenAI field, so drop_params would drop it; Azure needs it.
        input_type = call.body.get("input_type", deployment.default_params.get("input_type"))
        if input_type is not None and "input_type" not in call.also_drop:
            body["input_type"] = input_type
        return orjson.dumps(body)

    async def send(self, deployment: Deployment, call: ProviderCall) -> ProviderResponse:
        if call.operation is not Operation.RERANK:
            return await super().send(deployment, call)
        fields = request_fields(deployment, call)
        url, version = rerank_url(deployment.api_base or "")
        payload: dict[str, Any] = cohere_rerank_request(
            fields, deployment.upstream_model, version=version
        )
        _, body, _ = await post_json(
            self._http,
            url,
            orjson.dumps(payload),
            deployment.request_headers,
            deployment.request_head,
            provider=self.name,
            timeout=call.timeout or deployment.timeout,
            secrets=(deployment.api_key,),
        )
        answer = rerank_from_cohere(load_object(body, self.name), fields)
        return ProviderResponse(200, orjson.dumps(answer))


def make_azure_ai_provider(http: UpstreamHTTP) -> AzureAIProvider:
    """The registry's factory (providers/registry.py loads this module on first use)."""
    return AzureAIProvider(AZURE_AI_VENDOR, http)
