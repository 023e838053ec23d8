"""One LLM call end to end, below HTTP: route it, call the provider, report what happened."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bastion.cache.entry import CachedAnswer
from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.core.errors import InvalidRequestError, UpstreamError, UpstreamStatusError
from bastion.dialects.bridge import DialectBridge
from bastion.dialects.multipart import FilePart
from bastion.dialects.openai_params import GATEWAY_FIELDS
from bastion.providers.base import Provider, ProviderCall, ProviderResponse, ProviderStream
from bastion.routing.context_window import estimate_prompt_tokens
from bastion.routing.feedback import RoutingFeedback
from bastion.routing.router import Router
from bastion.routing.strategies import RouteHints
from bastion.services.tracked_stream import TrackedStream

# Reported for a call that was cancelled or broke outside the provider's error tree.
_CANCELLED = UpstreamError("the call did not finish", status=499)


@dataclass(slots=True)
class CallOutcome:
    deployment: Deployment
    retries: int
    fallbacks: int
    upstream_seconds: float
    response: ProviderResponse | None = None
    stream: ProviderStream | None = None
    # A response-cache hit read in the admission's round trip: no provider was called.
    cached: CachedAnswer | None = None


# ``admit`` hook: awaited with each deployment before it is called; raises to refuse.
Admit = Callable[[Deployment], Awaitable[CachedAnswer | None]]


class GatewayService:
    def __init__(
        self,
        router: Router,
        fake_provider: Provider,
        bridges: Mapping[Dialect, DialectBridge] | None = None,
    ) -> None:
        self.router = router
        self._fake = fake_provider
        self._bridges = dict(bridges or {})

    async def call(
        self,
        operation: Operation,
        body: dict[str, Any],
        stream: bool,
        dialect: Dialect = Dialect.OPENAI,
        *,
        raw: bytes | None = None,
        client_headers: dict[str, str] | None = None,
        files: list[FilePart] | None = None,
        admit: Admit | None = None,
    ) -> CallOutcome:
        """``admit`` is awaited with each deployment before it is called (rate limits:
        bastion.limits); it raises to refuse the request or that deployment, and may
        return a cached answer (read in the same round trip), given in the provider's
        place."""
        model = body["model"]
        call = ProviderCall(
            operation,
            body,
            stream,
            dialect=dialect,
            raw=raw,
            client_headers=client_headers or {},
            files=files or [],
            timeout=_optional_seconds(body, "timeout")
            or _optional_seconds(body, "request_timeout"),
            drop_params=_optional_bool(body, "drop_params"),
            also_drop=frozenset(_optional_names(body, "additional_drop_params") or ()),
        )
        # LiteLLM's mock_testing_fallbacks: the requested group fails, to exercise fallbacks.
        failing_group = (
            self.router.table.lookup(model) if body.get("mock_testing_fallbacks") else None
        )
        upstream_time = 0.0
        feedback = self.router.feedback if self.router.feedback.enabled else None

        async def attempt(
            deployment: Deployment,
        ) -> ProviderResponse | ProviderStream | CachedAnswer:
            nonlocal upstream_time
            if failing_group and deployment in failing_group:
                raise UpstreamStatusError(
                    "mock_testing_fallbacks: the requested model group fails on purpose",
                    status=500,
                    provider=deployment.provider_name,
                )
            provider = self._provider_for(deployment, body)
            if not provider.supports(operation):
                raise UpstreamStatusError(
                    f"deployment '{deployment.model_name}' ({deployment.provider_name}) does "
                    f"not support {operation.value} requests",
                    status=400,
                    provider=deployment.provider_name,
                    error_type="invalid_request_error",
                )
            if deployment.missing_credential and provider is not self._fake:
                raise UpstreamStatusError(
                    f"deployment '{deployment.model_name}' cannot be called: "
                    f"{deployment.missing_credential}",
                    status=401,
                    provider=deployment.provider_name,
                    error_type="authentication_error",
                )
            if admit is not None:
                cached = await admit(deployment)
                if cached is not None:
                    return cached
            started = time.perf_counter()
            try:
                if feedback is not None:
                    return await self._tracked(provider, deployment, call, feedback, started)
                if dialect in provider.dialects:
                    if stream:
                        return await provider.open_stream(deployment, call)
                    return await provider.send(deployment, call)
                return await self._bridged(provider, deployment, call)
            finally:
                upstream_time += time.perf_counter() - started

        routed = await self.router.route(
            model,
            attempt,
            num_retries=_optional_int(body, "num_retries"),
            fallbacks=_optional_names(body, "fallbacks"),
            use_fallbacks=not body.get("disable_fallbacks", False),
            hints=RouteHints(stream, lambda: estimate_prompt_tokens(body)),
        )
        outcome = CallOutcome(
            routed.deployment,
            routed.retries,
            routed.fallbacks,
            upstream_time + routed.waited_seconds,
        )
        if isinstance(routed.value, ProviderResponse):
            outcome.response = routed.value
        elif isinstance(routed.value, CachedAnswer):
            outcome.cached = routed.value
        else:
            outcome.stream = routed.value
        return outcome

    async def _tracked(
        self,
        provider: Provider,
        deployment: Deployment,
        call: ProviderCall,
        feedback: RoutingFeedback,
        started: float,
    ) -> ProviderResponse | ProviderStream:
        """The call, reported to the routing strategy (load, latency)."""
        feedback.started(deployment)
        try:
            if call.dialect in provider.dialects:
                if call.stream:
                    result: ProviderResponse | ProviderStream = await provider.open_stream(
                        deployment, call
                    )
                else:
                    result = await provider.send(deployment, call)
            else:
                result = await self._bridged(provider, deployment, call)
        except UpstreamError as error:
            feedback.failed(deployment, error)
            raise
        except BaseException:
            feedback.failed(deployment, _CANCELLED)
            raise
        if isinstance(result, ProviderResponse):
            feedback.answered(deployment, time.perf_counter() - started)
            return result
        return TrackedStream(result, feedback, deployment, started)

    async def _bridged(
        self, provider: Provider, deployment: Deployment, call: ProviderCall
    ) -> ProviderResponse | ProviderStream:
        """Call a provider that lacks the client's dialect, through OpenAI's."""
        bridge = self._bridges.get(call.dialect)
        if bridge is None:
            raise UpstreamStatusError(
                f"deployment '{deployment.model_name}' ({deployment.provider_name}) cannot "
                f"serve {call.dialect.value}-style requests",
                status=400,
                provider=deployment.provider_name,
                error_type="invalid_request_error",
            )
        translated = bridge.request_to_openai(
            call.body,
            drop_unsupported=bool(
                deployment.drop_params if call.drop_params is None else call.drop_params
            ),
            target=f"deployment '{deployment.model_name}' ({deployment.provider_name})",
        )
        # Gateway fields (mock_response, fallbacks…) steer the call whatever the dialect.
        translated.update({k: v for k, v in call.body.items() if k in GATEWAY_FIELDS})
        openai_call = dataclasses.replace(call, body=translated, dialect=Dialect.OPENAI, raw=None)
        if call.stream:
            upstream = await provider.open_stream(deployment, openai_call)
            return BridgedStream(upstream, bridge, call.body)
        response = await provider.send(deployment, openai_call)
        return ProviderResponse(
            response.status, bridge.response_from_openai(response.body, call.body)
        )

    def _provider_for(self, deployment: Deployment, body: dict[str, Any]) -> Provider:
        if "mock_response" in body or deployment.mock_response is not None:
            return self._fake
        return deployment.provider


def _optional_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(f"'{name}' must be a non-negative integer", param=name)
    return value


def _optional_seconds(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise InvalidRequestError(f"'{name}' must be a positive number of seconds", param=name)
    return float(value)


def _optional_bool(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise InvalidRequestError(f"'{name}' must be true or false", param=name)


def _optional_names(body: dict[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequestError(f"'{name}' must be a list of model names", param=name)
    return value


class BridgedStream:
    """An OpenAI-dialect upstream stream, translated chunk by chunk for the client."""

    content_type = b"text/event-stream"

    def __init__(
        self, upstream: ProviderStream, bridge: DialectBridge, request: dict[str, Any]
    ) -> None:
        self._upstream = upstream
        self._bridge = bridge
        self._request = request

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._bridge.stream_from_openai(self._upstream.__aiter__(), self._request)

    async def aclose(self) -> None:
        await self._upstream.aclose()
