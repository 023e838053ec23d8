"""AWS Bedrock (``bedrock/``, ``bedrock_converse/``): Converse for OpenAI-dialect clients,
InvokeModel with the Anthropic body for Anthropic-dialect clients of Claude models.

URLs: ``{endpoint}/model/{model id}/converse`` (``converse-stream``, ``invoke``,
``invoke-with-response-stream``, ``count-tokens``), the id URL-encoded as AWS does
(``:`` → ``%3A``, and an ARN's ``/`` → ``%2F``). The endpoint is ``api_base``, else
``aws_bedrock_runtime_endpoint``, else ``https://bedrock-runtime.{region}.amazonaws.com``.
The region is ``aws_region_name``, else the region inside an ARN model id, else
``AWS_REGION_NAME`` / ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else the profile's, else
us-west-2 (LiteLLM's default). Model ids may carry LiteLLM's route prefixes
(``converse/``, ``invoke/``): OpenAI-dialect calls of a Claude model written with
``invoke/`` go to InvokeModel with the Anthropic body (``bedrock_invoke_openai``), every
other OpenAI-dialect call to Converse; ``model_id`` in litellm_params overrides the id
in the URL (provisioned throughput ARNs).

Requests are signed with SigV4 (``bedrock_sigv4``) using credentials from botocore's
chain (``bedrock_auth``); ``api_key`` (or ``AWS_BEARER_TOKEN_BEDROCK``) selects
Bedrock's API-key auth instead (``Authorization: Bearer``).

Whether a deployment takes Anthropic-dialect bodies natively depends on its model, but
``Provider.dialects`` is per provider object; so ``configure`` hands Claude
deployments to a sibling object whose ``dialects`` include Anthropic's. Every other
deployment keeps the OpenAI-only object, and the gateway bridges Anthropic clients
through OpenAI's dialect to Converse.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import botocore.session
import orjson
from botocore.exceptions import BotoCoreError

from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.core.errors import UpstreamStatusError
from bastion.dialects.anthropic_bedrock import invoke_body
from bastion.dialects.anthropic_tokens import estimate_input_tokens
from bastion.dialects.bedrock_to_openai import ConverseStreamState, chat_completion
from bastion.dialects.openai_params import GATEWAY_FIELDS
from bastion.dialects.openai_to_anthropic import AnthropicRequest
from bastion.dialects.openai_to_bedrock import ConverseTarget, converse_request
from bastion.providers.base import ProviderCall, ProviderResponse, ProviderStream
from bastion.providers.bedrock_auth import (
    AwsCredentials,
    CredentialCache,
    CredentialSpec,
    CredentialsUnavailable,
)
from bastion.providers.bedrock_errors import bedrock_error
from bastion.providers.bedrock_invoke_openai import invoke_request, openai_answer, openai_stream
from bastion.providers.bedrock_sigv4 import SigV4Signer
from bastion.providers.bedrock_stream import (
    BedrockEventStream,
    ConverseTranslator,
    EventTranslator,
    InvokeTranslator,
)
from bastion.providers.http import UpstreamHTTP, encode_headers, open_sse, post_json
from bastion.providers.transport import parse_endpoint

NAME = "bedrock"
DEFAULT_REGION = "us-west-2"
CONVERSE, CONVERSE_STREAM = "converse", "converse-stream"
INVOKE, INVOKE_STREAM = "invoke", "invoke-with-response-stream"
COUNT_TOKENS = "count-tokens"
_ACCEPT = {
    CONVERSE: "application/json",
    INVOKE: "application/json",
    COUNT_TOKENS: "application/json",
    CONVERSE_STREAM: "application/vnd.amazon.eventstream",
    INVOKE_STREAM: "application/vnd.amazon.eventstream",
}
_ROUTE_PREFIXES = ("converse/", "invoke/")
MAX_TARGETS = 4096


@dataclass(slots=True)
class _Route:
    url: str
    headers: dict[str, str]  # unsigned: content type, accept, extra headers (or bearer auth)
    head: bytes
    signer: SigV4Signer | None


@dataclass(slots=True)
class _Target:
    """What one deployment's calls need, computed by ``configure``."""

    model_id: str
    claude: bool
    invoke: bool  # a Claude model written with LiteLLM's ``invoke/`` route: InvokeModel
    credentials: AwsCredentials | None
    secrets: tuple[str | None, ...]
    routes: dict[str, _Route]


class BedrockProvider:
    def __init__(
        self,
        http: UpstreamHTTP,
        *,
        anthropic_native: bool = False,
        credentials: CredentialCache | None = None,
    ) -> None:
        self.name = NAME
        self._http = http
        self._credentials = credentials or CredentialCache()
        self._targets: dict[tuple[str, str], _Target] = {}
        self._profile_regions: dict[str | None, str | None] = {}
        if anthropic_native:
            self.dialects = frozenset({Dialect.OPENAI, Dialect.ANTHROPIC})
            self._claude_provider: BedrockProvider = self
        else:
            self.dialects = frozenset({Dialect.OPENAI})
            self._claude_provider = BedrockProvider(
                http, anthropic_native=True, credentials=self._credentials
            )
            self._claude_provider._targets = self._targets

    def configure(self, deployment: Deployment) -> None:
        target = self._build(deployment)
        if target.claude:
            deployment.provider = self._claude_provider

    def supports(self, operation: Operation) -> bool:
        return operation is Operation.CHAT

    async def send(self, deployment: Deployment, call: ProviderCall) -> ProviderResponse:
        target = self._target(deployment)
        if call.dialect is Dialect.ANTHROPIC:
            payload = self._invoke_payload(deployment, target, call)
            status, body, content_type = await self._post(deployment, target, INVOKE, payload, call)
            return ProviderResponse(status, body, content_type)
        if target.invoke:
            request = self._openai_invoke(deployment, target, call)
            _, body, _ = await self._post(
                deployment, target, INVOKE, orjson.dumps(request.body), call
            )
            return ProviderResponse(200, openai_answer(body, request))
        payload = orjson.dumps(
            converse_request(_fields(deployment, call), _label(deployment, call, target))
        )
        _, body, _ = await self._post(deployment, target, CONVERSE, payload, call)
        answer = _load_object(body)
        completion = chat_completion(
            answer,
            model=deployment.upstream_model,
            completion_id=f"chatcmpl-{uuid.uuid4().hex}",
            created=int(time.time()),
        )
        return ProviderResponse(200, orjson.dumps(completion))

    async def open_stream(self, deployment: Deployment, call: ProviderCall) -> ProviderStream:
        target = self._target(deployment)
        translator: EventTranslator
        request: AnthropicRequest | None = None  # set for an OpenAI client on InvokeModel
        if call.dialect is Dialect.ANTHROPIC:
            payload = self._invoke_payload(deployment, target, call)
            operation = INVOKE_STREAM
            translator = InvokeTranslator()
        elif target.invoke:
            request = self._openai_invoke(deployment, target, call)
            payload = orjson.dumps(request.body)
            operation = INVOKE_STREAM
            translator = InvokeTranslator()
        else:
            fields = _fields(deployment, call)
            payload = orjson.dumps(converse_request(fields, _label(deployment, call, target)))
            operation = CONVERSE_STREAM
            options = fields.get("stream_options")
            translator = ConverseTranslator(
                ConverseStreamState(
                    model=deployment.upstream_model,
                    completion_id=f"chatcmpl-{uuid.uuid4().hex}",
                    created=int(time.time()),
                    include_usage=isinstance(options, dict)
                    and options.get("include_usage") is True,
                )
            )
        route = target.routes[operation]
        headers, head = await self._signed(target, route, payload)
        upstream = await open_sse(
            self._http,
            route.url,
            payload,
            headers,
            head,
            provider=NAME,
            stream_timeout=call.timeout or deployment.stream_timeout or deployment.timeout,
            secrets=target.secrets,
            errors=bedrock_error,
        )
        stream = BedrockEventStream(upstream, translator, target.secrets)
        if request is not None:
            return openai_stream(stream, deployment, call, request)
        return stream

    async def count_tokens(self, deployment: Deployment, call: ProviderCall) -> int:
        """Input tokens of an Anthropic body, counted by Bedrock's CountTokens for Claude.

        Other models, and Claude models Bedrock cannot count for (a ValidationException),
        get the gateway's offline estimate.
        """
        target = self._target(deployment)
        if not target.claude or call.dialect is not Dialect.ANTHROPIC:
            return estimate_input_tokens(call.body)
        body = self._invoke_body(deployment, target, call)
        body.setdefault("max_tokens", 1)  # an InvokeModel body needs it; counting does not
        wrapped = {
            "input": {"invokeModel": {"body": base64.b64encode(orjson.dumps(body)).decode()}}
        }
        try:
            _, answer, _ = await self._post(
                deployment, target, COUNT_TOKENS, orjson.dumps(wrapped), call
            )
        except UpstreamStatusError as exc:
            if exc.code == "ValidationException":
                return estimate_input_tokens(call.body)
            raise
        tokens = _load_object(answer).get("inputTokens")
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise UpstreamStatusError(
                "bedrock answered CountTokens without an inputTokens number",
                status=502,
                provider=NAME,
            )
        return tokens

    def url(self, deployment: Deployment, operation: str) -> str:
        """The URL of one Bedrock operation (``converse``, ``invoke-with-response-stream``…)."""
        return self._target(deployment).routes[operation].url

    # -- internals ---------------------------------------------------------------------------

    async def _post(
        self,
        deployment: Deployment,
        target: _Target,
        operation: str,
        payload: bytes,
        call: ProviderCall,
    ) -> tuple[int, bytes, bytes]:
        route = target.routes[operation]
        headers, head = await self._signed(target, route, payload)
        return await post_json(
            self._http,
            route.url,
            payload,
            headers,
            head,
            provider=NAME,
            timeout=call.timeout or deployment.timeout,
            secrets=target.secrets,
            errors=bedrock_error,
        )

    @staticmethod
    async def _signed(
        target: _Target, route: _Route, payload: bytes
    ) -> tuple[dict[str, str], bytes]:
        if route.signer is None or target.credentials is None:
            return route.headers, route.head
        credentials = target.credentials.current() or await target.credentials.get()
        signed = route.signer.sign(credentials, payload)
        return {**route.headers, **signed}, route.head + encode_headers(signed)

    @staticmethod
    def _openai_invoke(
        deployment: Deployment, target: _Target, call: ProviderCall
    ) -> AnthropicRequest:
        label = _label(deployment, call, target)
        return invoke_request(deployment, call, label=label.label, drop_params=label.drop_params)

    def _invoke_payload(self, deployment: Deployment, target: _Target, call: ProviderCall) -> bytes:
        return orjson.dumps(self._invoke_body(deployment, target, call))

    def _invoke_body(
        self, deployment: Deployment, target: _Target, call: ProviderCall
    ) -> dict[str, Any]:
        if not target.claude:
            raise UpstreamStatusError(
                f"deployment '{deployment.model_name}' (bedrock) serves a model that does not "
                "take Anthropic Messages bodies",
                status=400,
                provider=NAME,
                error_type="invalid_request_error",
            )
        label = _label(deployment, call, target)
        body = invoke_body(
            call.body,
            call.client_headers,
            defaults=deployment.default_params,
            also_drop=call.also_drop,
            drop_params=label.drop_params,
            label=label.label,
        )
        return body

    def _profile_region(self, params: dict[str, Any]) -> str:
        """The region of the AWS config file's profile (read once per profile), else LiteLLM's."""
        profile = _text(params.get("aws_profile_name"))
        if profile not in self._profile_regions:
            try:
                region = botocore.session.Session(profile=profile).get_config_variable("region")
            except BotoCoreError:
                region = None
            self._profile_regions[profile] = str(region) if region else None
        return self._profile_regions[profile] or DEFAULT_REGION

    def _target(self, deployment: Deployment) -> _Target:
        target = self._targets.get((deployment.id, deployment.upstream_model))
        if target is None:
            target = self._build(deployment)
        return target

    def _build(self, deployment: Deployment) -> _Target:
        params = deployment.params
        model_id = str(params.get("model_id") or _strip_route(deployment.upstream_model))
        if not model_id:
            raise ValueError("bedrock deployments need a model id, e.g. bedrock/anthropic.claude-…")
        region = _region(params, model_id) or self._profile_region(params)
        endpoint = (
            deployment.api_base
            or _text(params.get("aws_bedrock_runtime_endpoint"))
            or os.environ.get("AWS_BEDROCK_RUNTIME_ENDPOINT")
            or _default_endpoint(region)
        ).rstrip("/")
        deployment.api_base = endpoint
        base_model = str(params.get("base_model") or deployment.model_info.get("base_model") or "")
        claude = is_claude(model_id) or is_claude(base_model)
        # The region matters to credentials only for the STS call of aws_role_name.
        spec = CredentialSpec.from_params(params, region if params.get("aws_role_name") else "")
        bearer = deployment.api_key
        if bearer is None and not spec.access_key_id and not spec.profile_name:
            bearer = os.environ.get("AWS_BEARER_TOKEN_BEDROCK") or None
        credentials: AwsCredentials | None = None
        if bearer is None:
            try:
                credentials = self._credentials.get(spec)
            except CredentialsUnavailable as exc:
                deployment.missing_credential = str(exc)
        base_headers = {"Content-Type": "application/json", **deployment.extra_headers}
        deployment.request_headers = base_headers
        deployment.request_head = encode_headers(base_headers)
        quoted = quote(model_id, safe="")
        routes: dict[str, _Route] = {}
        for operation, accept in _ACCEPT.items():
            url = f"{endpoint}/model/{quoted}/{operation}"
            headers = {**base_headers, "Accept": accept}
            signer = None
            if bearer is not None:
                headers["Authorization"] = f"Bearer {bearer}"
            else:
                host = parse_endpoint(url).host_header.decode("latin-1")
                signer = SigV4Signer(region, host, urlsplit(url).path, headers)
            routes[operation] = _Route(url, headers, encode_headers(headers), signer)
        invoke = claude and deployment.upstream_model.startswith("invoke/")
        target = _Target(model_id, claude, invoke, credentials, (bearer, *spec.secrets), routes)
        if len(self._targets) >= MAX_TARGETS:
            self._targets.clear()
        self._targets[(deployment.id, deployment.upstream_model)] = target
        return target


def is_claude(model_id: str) -> bool:
    lowered = model_id.lower()
    return "anthropic." in lowered or "claude" in lowered


def _strip_route(model: str) -> str:
    for prefix in _ROUTE_PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix) :]
    return model


def _region(params: dict[str, Any], model_id: str) -> str | None:
    explicit = _text(params.get("aws_region_name"))
    if explicit:
        return explicit
    if model_id.startswith("arn:"):
        parts = model_id.split(":")
        if len(parts) > 3 and parts[3]:
            return parts[3]
    for name in ("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"):
        value = os.environ.get(name)
        if value:
            return value
    return None


def _default_endpoint(region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://bedrock-runtime.{region}.{suffix}"


def _fields(deployment: Deployment, call: ProviderCall) -> dict[str, Any]:
    """The client's fields over the deployment's defaults, gateway fields left out."""
    out = {k: v for k, v in deployment.default_params.items() if k not in call.also_drop}
    for name, value in call.body.items():
        if name not in GATEWAY_FIELDS and name not in call.also_drop:
            out[name] = value
    return out


def _label(deployment: Deployment, call: ProviderCall, target: _Target) -> ConverseTarget:
    drop = deployment.drop_params if call.drop_params is None else call.drop_params
    return ConverseTarget(
        f"deployment '{deployment.model_name}' (bedrock {target.model_id})",
        drop_params=bool(drop),
        claude=target.claude,
    )


def _load_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamStatusError(
            "bedrock answered with a body that is not a JSON object", status=502, provider=NAME
        )
    return data


def _text(value: Any) -> str | None:
    return str(value) if value else None
