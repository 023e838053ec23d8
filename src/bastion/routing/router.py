"""Retries within a model group, then fallbacks to other groups.

For one request: pick a deployment of the group (skipping those cooling down and,
for a retry, those already tried), call it; on a retryable failure try again up to
``num_retries`` times; when the group is exhausted, move to the next group of the
fallback chain, up to ``max_fallbacks``. The client sees the last error.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from bastion.core.deployment import Deployment
from bastion.core.errors import BastionError, NotFoundError, RateLimitError, UpstreamError
from bastion.routing.cooldown import CooldownTracker
from bastion.routing.model_table import ModelTable
from bastion.routing.strategy import pick_weighted

T = TypeVar("T")

# A retry on the same deployment waits for its retry-after, unless that is longer
# than this: then the error goes back to the client (or to a fallback) at once.
MAX_INLINE_WAIT_S = 5.0
BACKOFF_BASE_S = 0.05


@dataclass(slots=True)
class RouterPolicy:
    num_retries: int = 2
    max_fallbacks: int = 5
    retry_after: float = 0.0
    fallbacks: dict[str, list[str]] | None = None
    default_fallbacks: Sequence[str] = ()


@dataclass(slots=True)
class Routed(Generic[T]):
    value: T
    deployment: Deployment
    retries: int
    fallbacks: int
    waited_seconds: float = 0.0


class Router:
    def __init__(
        self,
        table: ModelTable,
        policy: RouterPolicy,
        cooldowns: CooldownTracker,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.table = table
        self.policy = policy
        self.cooldowns = cooldowns
        self._rng = rng or random.Random()
        self._sleep = sleep

    def canonical_group(self, name: str) -> str:
        """The group a requested name resolves to (an alias names its target)."""
        return self.table.aliases.get(name, name)

    def fallback_chain(self, group: str, override: Sequence[str] | None = None) -> list[str]:
        if override is not None:
            chain = list(override)
        else:
            configured = (self.policy.fallbacks or {}).get(group)
            if configured is None:
                configured = (self.policy.fallbacks or {}).get(self.canonical_group(group))
            chain = list(configured if configured is not None else self.policy.default_fallbacks)
        chain = [g for g in chain if g != group]
        return chain[: self.policy.max_fallbacks]

    async def route(
        self,
        model: str,
        attempt: Callable[[Deployment], Awaitable[T]],
        *,
        num_retries: int | None = None,
        fallbacks: Sequence[str] | None = None,
        use_fallbacks: bool = True,
    ) -> Routed[T]:
        primary = self.table.lookup(model)
        if primary is None:
            raise NotFoundError(
                f"model '{model}' is not served here. Call GET /v1/models to list the models "
                "this key can use.",
                param="model",
                code="model_not_found",
            )
        retries_allowed = self.policy.num_retries if num_retries is None else num_retries
        chain: list[tuple[str, list[Deployment]]] = [(model, primary)]
        if use_fallbacks:
            for name in self.fallback_chain(model, fallbacks):
                group = self.table.lookup(name)
                if group:
                    chain.append((name, group))
        last_error: BastionError | None = None
        retries_done = 0
        waits = [0.0]
        for fallback_index, (name, group) in enumerate(chain):
            try:
                value, deployment, retries = await self._try_group(
                    name, group, attempt, retries_allowed, waits
                )
            except _GroupFailed as failed:
                retries_done += failed.retries
                last_error = failed.error
                if isinstance(failed.error, UpstreamError) and not failed.error.fallback_ok:
                    raise failed.error from None
                continue
            return Routed(value, deployment, retries_done + retries, fallback_index, waits[0])
        assert last_error is not None
        raise last_error

    async def _try_group(
        self,
        name: str,
        group: list[Deployment],
        attempt: Callable[[Deployment], Awaitable[T]],
        retries_allowed: int,
        waits: list[float],
    ) -> tuple[T, Deployment, int]:
        tried: set[str] = set()
        error: BastionError | None = None
        for attempt_no in range(retries_allowed + 1):
            available = [d for d in group if not self.cooldowns.is_cooling(d.id)]
            if not available:
                # The failure that cooled the last deployment says more than "all cooling".
                raise _GroupFailed(error or self._all_cooling(name, group), max(attempt_no - 1, 0))
            fresh = [d for d in available if d.id not in tried]
            if attempt_no and not fresh and isinstance(error, UpstreamError):
                # Only a transient failure is worth repeating on the same deployment.
                wait = self._wait_before_same_deployment(error, attempt_no)
                if wait is None or not error.retryable:
                    raise _GroupFailed(error, attempt_no - 1)
                await self._sleep(wait)
                waits[0] += wait
            deployment = pick_weighted(fresh or available, self._rng)
            try:
                return await attempt(deployment), deployment, attempt_no
            except UpstreamError as exc:
                self.cooldowns.record_failure(deployment.id, exc, len(group))
                error = exc
                tried.add(deployment.id)
                # A rejected request fails the same everywhere; a deployment-level
                # failure (bad credentials, missing model) may not affect its siblings.
                if not exc.fallback_ok:
                    raise _GroupFailed(exc, attempt_no) from None
        assert error is not None
        raise _GroupFailed(error, retries_allowed)

    def _wait_before_same_deployment(self, error: UpstreamError, attempt_no: int) -> float | None:
        if error.retry_after is not None:
            if error.retry_after > MAX_INLINE_WAIT_S:
                return None
            return max(float(error.retry_after), self.policy.retry_after)
        return max(BACKOFF_BASE_S * 2.0 ** (attempt_no - 1), self.policy.retry_after)

    def _all_cooling(self, name: str, group: list[Deployment]) -> RateLimitError:
        wait = min(self.cooldowns.seconds_left(d.id) for d in group)
        seconds = max(1, round(wait + 0.499))
        return RateLimitError(
            f"no deployments available for model '{name}': all {len(group)} are cooling down "
            f"after failures. Try again in {seconds}s.",
            headers={"retry-after": str(seconds)},
            code="no_deployments_available",
        )


class _GroupFailed(Exception):
    def __init__(self, error: BastionError, retries: int) -> None:
        self.error = error
        self.retries = retries
