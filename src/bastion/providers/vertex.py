"""Vertex AI (``vertex_ai/``): Gemini models, and Claude models through ``vertex_anthropic``.

Calls go to ``https://{location}-aiplatform.googleapis.com/v1/projects/{project}/
locations/{location}/publishers/google/models/{model}:{method}`` (``global`` has no
region in the host) with an OAuth access token from google-auth. The project and
location come from ``vertex_project``/``vertex_location`` or VERTEXAI_PROJECT /
VERTEXAI_LOCATION (else the credentials' project, and us-central1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from bastion.core.deployment import Deployment
from bastion.core.errors import UpstreamStatusError
from bastion.dialects.gemini_embeddings import vertex_predict_request
from bastion.dialects.translate_common import Target
from bastion.providers.base import ProviderCall, ProviderResponse
from bastion.providers.environment import first_env
from bastion.providers.gemini import GoogleGenAIProvider
from bastion.providers.google_credentials import AccessTokens, loader_for
from bastion.providers.http import UpstreamHTTP, encode_headers
from bastion.providers.vertex_anthropic import VertexAnthropicProvider

DEFAULT_LOCATION = "us-central1"
_PROJECT_ENV = ("VERTEXAI_PROJECT", "VERTEX_PROJECT", "GOOGLE_CLOUD_PROJECT")
_LOCATION_ENV = ("VERTEXAI_LOCATION", "VERTEX_LOCATION", "GOOGLE_CLOUD_REGION")


@dataclass(slots=True)
class VertexTarget:
    """Where one Vertex deployment's calls go, and the tokens they carry."""

    base: str
    project: str | None
    location: str
    tokens: AccessTokens


def vertex_host(location: str) -> str:
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


class VertexProvider(GoogleGenAIProvider):
    name = "vertex_ai"

    def __init__(self, http: UpstreamHTTP) -> None:
        super().__init__(http)
        self._targets: dict[str, VertexTarget] = {}
        self._tokens: dict[str, AccessTokens] = {}
        # Claude models on Vertex speak Anthropic's Messages API, not Gemini's.
        self.anthropic = VertexAnthropicProvider(http, self)

    def configure(self, deployment: Deployment) -> None:
        params = deployment.params
        location = str(
            params.get("vertex_location")
            or params.get("vertex_ai_location")
            or first_env(_LOCATION_ENV)
            or DEFAULT_LOCATION
        )
        project = params.get("vertex_project") or params.get("vertex_ai_project")
        project = str(project) if project else first_env(_PROJECT_ENV)
        tokens = self._token_source(params.get("vertex_credentials"))
        base = (deployment.api_base or vertex_host(location)).rstrip("/")
        deployment.api_base = base
        deployment.upstream_model = deployment.upstream_model.removeprefix("models/")
        self._targets[deployment.id] = VertexTarget(base, project, location, tokens)
        headers = {"Content-Type": "application/json", **deployment.extra_headers}
        deployment.request_headers = headers
        deployment.request_head = encode_headers(headers)
        if deployment.upstream_model.startswith("claude"):
            deployment.provider = self.anthropic

    def _token_source(self, source: Any) -> AccessTokens:
        if isinstance(source, str) and source.strip().startswith("{"):
            try:
                source = orjson.loads(source)  # the same key as a mapping shares its tokens
            except orjson.JSONDecodeError:
                raise ValueError("vertex_credentials is not valid JSON") from None
        key = orjson.dumps(source, option=orjson.OPT_SORT_KEYS, default=str).decode()
        tokens = self._tokens.get(key)
        if tokens is None:
            tokens = AccessTokens(loader_for(source), label=self.name)
            if source is not None:
                tokens.load()  # a key file or JSON: fail at startup if unusable
            self._tokens[key] = tokens
        return tokens

    def target(self, deployment: Deployment) -> VertexTarget:
        target = self._targets.get(deployment.id)
        if target is None:
            self.configure(deployment)
            target = self._targets[deployment.id]
        return target

    async def headers(self, deployment: Deployment) -> tuple[dict[str, str], bytes]:
        token = await self.target(deployment).tokens.token()
        headers = {**deployment.request_headers, "Authorization": f"Bearer {token}"}
        return headers, encode_headers(headers)

    def secrets(self, deployment: Deployment) -> tuple[str | None, ...]:
        return ()

    def model_url(self, deployment: Deployment, method: str, publisher: str = "google") -> str:
        target = self.target(deployment)
        project = target.project or target.tokens.project
        if not project:
            raise UpstreamStatusError(
                f"deployment '{deployment.model_name}' (vertex_ai) has no project: set "
                "vertex_project in litellm_params or VERTEXAI_PROJECT in the environment",
                status=400,
                provider=self.name,
                error_type="invalid_request_error",
            )
        base = target.base
        if not base.endswith(("/v1", "/v1beta1")):
            base += "/v1"
        model = quote(deployment.upstream_model, safe="@")
        return (
            f"{base}/projects/{project}/locations/{target.location}/publishers/{publisher}"
            f"/models/{model}:{method}"
        )

    async def _embed(
        self, deployment: Deployment, call: ProviderCall, fields: dict[str, Any], target: Target
    ) -> ProviderResponse:
        payload = orjson.dumps(vertex_predict_request(fields, target))
        return await self._embed_with(deployment, call, "predict", payload)
