"""Azure OpenAI: OpenAI's wire format at deployment URLs, with ``api-version`` and ``api-key``."""

from __future__ import annotations

import os
from urllib.parse import quote

from bastion.core.deployment import Deployment, Operation
from bastion.providers.http import encode_headers
from bastion.providers.openai_compatible import OPERATION_PATHS, OpenAICompatibleProvider
from bastion.providers.vendors import OPENAI_MEDIA_OPERATIONS, Vendor

DEFAULT_API_VERSION = "2024-10-21"
AZURE_VENDOR = Vendor(
    "azure",
    None,
    ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"),
    ("AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT"),
    extra_operations=OPENAI_MEDIA_OPERATIONS,
)


class AzureOpenAIProvider(OpenAICompatibleProvider):
    def configure(self, deployment: Deployment) -> None:
        base = (
            deployment.api_base
            or os.environ.get("AZURE_API_BASE")
            or os.environ.get("AZURE_OPENAI_ENDPOINT")
        )
        if not base:
            raise ValueError(
                "azure deployments need api_base (https://<resource>.openai.azure.com) "
                "or AZURE_API_BASE in the environment"
            )
        deployment.api_base = base.rstrip("/")
        deployment.api_version = (
            deployment.api_version or os.environ.get("AZURE_API_VERSION") or DEFAULT_API_VERSION
        )
        if deployment.api_key is None:
            deployment.api_key = os.environ.get("AZURE_API_KEY") or os.environ.get(
                "AZURE_OPENAI_API_KEY"
            )
        ad_token = deployment.params.get("azure_ad_token") or os.environ.get("AZURE_AD_TOKEN")
        headers = {"Content-Type": "application/json"}
        if deployment.api_key:
            headers["api-key"] = deployment.api_key
        elif ad_token:
            headers["Authorization"] = f"Bearer {ad_token}"
        else:
            deployment.missing_credential = (
                "no api_key or azure_ad_token set and AZURE_API_KEY is not in the environment"
            )
        headers.update(deployment.extra_headers)
        deployment.request_headers = headers
        deployment.request_head = encode_headers(headers)

    def url(self, deployment: Deployment, operation: Operation) -> str:
        base = deployment.api_base or ""
        path = OPERATION_PATHS[operation]
        if base.endswith("/openai/v1"):
            # Azure's v1 API takes the deployment in the body, like OpenAI.
            return f"{base}{path}"
        if operation is Operation.RESPONSES:
            # The Responses API is not per deployment: the model goes in the body.
            return f"{base}/openai/responses?api-version={deployment.api_version}"
        name = quote(deployment.upstream_model, safe="")
        return f"{base}/openai/deployments/{name}{path}?api-version={deployment.api_version}"
