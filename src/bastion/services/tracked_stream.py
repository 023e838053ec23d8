"""A stream relayed unchanged that tells routing when its first byte came and when it ended."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from bastion.core.deployment import Deployment
from bastion.providers.base import ProviderStream
from bastion.routing.feedback import RoutingFeedback


class TrackedStream:
    def __init__(
        self,
        upstream: ProviderStream,
        feedback: RoutingFeedback,
        deployment: Deployment,
        started: float,
    ) -> None:
        self._upstream = upstream
        self._feedback = feedback
        self._deployment = deployment
        self._started = started
        self._ended = False
        self.content_type = upstream.content_type

    async def __aiter__(self) -> AsyncIterator[bytes]:
        first = True
        async for chunk in self._upstream:
            if first:
                first = False
                self._feedback.first_byte(self._deployment, time.perf_counter() - self._started)
            yield chunk

    async def aclose(self) -> None:
        if not self._ended:
            self._ended = True
            self._feedback.answered(self._deployment, time.perf_counter() - self._started)
        await self._upstream.aclose()
