"""Counting a Messages request's input tokens (``/v1/messages/count_tokens``), below HTTP.

The model group is routed as a call would be (aliases, wildcards, cooldowns,
retries, fallbacks). A provider that can count exactly has an optional method::

    async def count_tokens(self, deployment: Deployment, call: ProviderCall) -> int

(the native Anthropic provider asks Anthropic's count_tokens API). Every other
provider, and a deployment answering with a mock_response, gets the offline
estimate of ``bastion.dialects.anthropic_tokens``.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.dialects.anthropic_tokens import estimate_input_tokens
from bastion.providers.base import ProviderCall
from bastion.routing.router import Router


class CountsTokens(Protocol):
    async def count_tokens(self, deployment: Deployment, call: ProviderCall) -> int: ...


class TokenCountService:
    def __init__(self, router: Router) -> None:
        self.router = router

    async def count(
        self,
        body: dict[str, Any],
        *,
        raw: bytes | None = None,
        client_headers: dict[str, str] | None = None,
    ) -> tuple[int, Deployment]:
        """(input tokens, the deployment that answered). Raises BastionError subclasses."""
        call = ProviderCall(
            Operation.CHAT,
            body,
            dialect=Dialect.ANTHROPIC,
            raw=raw,
            client_headers=client_headers or {},
        )

        async def attempt(deployment: Deployment) -> int:
            provider = deployment.provider
            mocked = deployment.mock_response is not None or "mock_response" in body
            if mocked or not callable(getattr(provider, "count_tokens", None)):
                return estimate_input_tokens(body)
            return await cast(CountsTokens, provider).count_tokens(deployment, call)

        routed = await self.router.route(body["model"], attempt)
        return routed.value, routed.deployment
