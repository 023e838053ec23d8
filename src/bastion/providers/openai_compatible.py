"""OpenAI's wire format, spoken to OpenAI and every vendor row of ``vendors.py``."""

from __future__ import annotations

import orjson

from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.dialects.multipart import Form, encode_multipart
from bastion.dialects.openai_params import GATEWAY_FIELDS, upstream_body
from bastion.providers.base import ProviderCall, ProviderResponse, ProviderStream
from bastion.providers.environment import first_env
from bastion.providers.http import UpstreamHTTP, encode_headers, open_sse, post_json
from bastion.providers.vendors import NO_STREAM_OPTIONS, Vendor

OPERATION_PATHS: dict[Operation, str] = {
    Operation.CHAT: "/chat/completions",
    Operation.COMPLETION: "/completions",
    Operation.EMBEDDING: "/embeddings",
    Operation.IMAGE_GENERATION: "/images/generations",
    Operation.AUDIO_SPEECH: "/audio/speech",
    Operation.AUDIO_TRANSCRIPTION: "/audio/transcriptions",
    Operation.MODERATION: "/moderations",
    Operation.RESPONSES: "/responses",
}
# The operations every OpenAI-compatible server has; the rest only where a vendor says so.
_BASIC_OPERATIONS = frozenset({Operation.CHAT, Operation.COMPLETION, Operation.EMBEDDING})


class OpenAICompatibleProvider:
    def __init__(self, vendor: Vendor, http: UpstreamHTTP) -> None:
        self.vendor = vendor
        self.name = vendor.name
        self.dialects = frozenset({Dialect.OPENAI})
        self.accepts_stream_options = vendor.name not in NO_STREAM_OPTIONS
        self._http = http

    def configure(self, deployment: Deployment) -> None:
        vendor = self.vendor
        base = deployment.api_base or first_env(vendor.api_base_env) or vendor.api_base
        if not base:
            raise ValueError(f"provider '{vendor.name}' needs api_base (no default address)")
        base = base.rstrip("/")
        if vendor.base_path and not base.endswith(vendor.base_path):
            base += vendor.base_path
        deployment.api_base = base
        if deployment.api_key is None:
            deployment.api_key = first_env(vendor.api_key_env)
        if deployment.api_key is None and vendor.requires_api_key:
            names = " or ".join(vendor.api_key_env) or "api_key"
            deployment.missing_credential = f"no api_key set and {names} is not in the environment"
        headers = {"Content-Type": "application/json"}
        if deployment.api_key:
            headers["Authorization"] = f"Bearer {deployment.api_key}"
        organization = deployment.params.get("organization")
        if organization:
            headers["OpenAI-Organization"] = str(organization)
        headers.update(deployment.extra_headers)
        deployment.request_headers = headers
        deployment.request_head = encode_headers(headers)

    def supports(self, operation: Operation) -> bool:
        if operation is Operation.EMBEDDING:
            return self.vendor.supports_embeddings
        if operation is Operation.COMPLETION:
            return self.vendor.supports_completions
        return operation in _BASIC_OPERATIONS or operation in self.vendor.extra_operations

    def url(self, deployment: Deployment, operation: Operation) -> str:
        return f"{deployment.api_base}{OPERATION_PATHS[operation]}"

    def request_parts(
        self, deployment: Deployment, call: ProviderCall
    ) -> tuple[bytes, dict[str, str], bytes]:
        """The payload and its headers (as a dict, and pre-encoded for the wire)."""
        if not call.files:
            return (
                self.payload(deployment, call),
                deployment.request_headers,
                (deployment.request_head),
            )
        fields = {k: str(v) for k, v in call.body.items() if k not in GATEWAY_FIELDS}
        fields["model"] = deployment.upstream_model
        body, content_type = encode_multipart(Form(fields, call.files))
        headers = {**deployment.request_headers, "Content-Type": content_type}
        return body, headers, encode_headers(headers)

    def payload(self, deployment: Deployment, call: ProviderCall) -> bytes:
        body = upstream_body(
            call.body,
            call.operation,
            deployment.upstream_model,
            defaults=deployment.default_params,
            drop_params=bool(
                deployment.drop_params if call.drop_params is None else call.drop_params
            ),
            also_drop=call.also_drop,
            unsupported=self.vendor.unsupported_params,
        )
        return orjson.dumps(body)

    async def send(self, deployment: Deployment, call: ProviderCall) -> ProviderResponse:
        payload, headers, head = self.request_parts(deployment, call)
        status, body, content_type = await post_json(
            self._http,
            self.url(deployment, call.operation),
            payload,
            headers,
            head,
            provider=self.name,
            timeout=call.timeout or deployment.timeout,
            secrets=(deployment.api_key,),
        )
        return ProviderResponse(status, body, content_type)

    async def open_stream(self, deployment: Deployment, call: ProviderCall) -> ProviderStream:
        payload, headers, head = self.request_parts(deployment, call)
        return await open_sse(
            self._http,
            self.url(deployment, call.operation),
            payload,
            headers,
            head,
            provider=self.name,
            stream_timeout=call.timeout or deployment.stream_timeout or deployment.timeout,
            secrets=(deployment.api_key,),
        )
