"""Retries within a model group, then fallbacks to other groups.

For one request: pick a deployment of the group (skipping those cooling down and,
for a retry, those already tried), call it; on a retryable failure try again up to
``num_retries`` times (or the count ``retry_policy`` gives the error's kind); when
the group is exhausted, move to the next group of the fallback chain, up to
``max_fallbacks``. A context-window overflow or a content-policy refusal switches
to ``context_window_fallbacks`` / ``content_policy_fallbacks`` instead. With
``enable_pre_call_checks``, deployments whose context window the prompt would
overflow are skipped before any call. The client sees the last error.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bastion.core.deployment import Deployment
from bastion.core.errors import (
    BastionError,
    NotFoundError,
    RateLimitError,
    UpstreamError,
    UpstreamStatusError,
)
from bastion.routing.context_window import ContextWindows
from bastion.routing.cooldown import CooldownTracker
from bastion.routing.error_kinds import ErrorKind, classify
from bastion.routing.feedback import RoutingFeedback
from bastion.routing.model_table import ModelTable
from bastion.routing.retry_policy import RETRIES, KindCounts
from bastion.routing.strategies import NO_HINTS, RouteHints, SimpleShuffle, Strategy

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
    context_window_fallbacks: dict[str, list[str]] = field(default_factory=dict)
    content_policy_fallbacks: dict[str, list[str]] = field(default_factory=dict)
    retry_policy: dict[str, int | None] | None = None
    # A group's own retry_policy, used instead of ``retry_policy`` for that group.
    model_group_retry_policy: dict[str, dict[str, int | None]] = field(default_factory=dict)
    enable_pre_call_checks: bool = False


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
        strategy: Strategy | None = None,
        context_windows: ContextWindows | None = None,
    ) -> None:
        self.table = table
        self.policy = policy
        self.cooldowns = cooldowns
        self.strategy: Strategy = strategy or SimpleShuffle()
        # What the gateway reports for the strategy (load, latency, tokens).
        self.feedback = RoutingFeedback(cooldowns.store, self.strategy)
        self.context_windows = context_windows or ContextWindows()
        self._retry_counts = KindCounts(policy.retry_policy, RETRIES)
        self._group_retry_counts = _group_counts(policy)
        self._rng = rng or random.Random()
        self._sleep = sleep

    def adopt(self, other: Router) -> None:
        """Route with ``other``'s settings from now on (the config file was reloaded).

        ``other`` should share this router's table and state store, so cooldowns and
        strategy state carry over. A request already routing keeps the deployment it
        is on; its later retries and fallbacks follow the new settings.
        """
        self.policy = other.policy
        self.cooldowns = other.cooldowns
        self.strategy = other.strategy
        self.feedback = other.feedback
        self.context_windows = other.context_windows
        self._retry_counts = other._retry_counts
        self._group_retry_counts = other._group_retry_counts

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

    def special_chain(self, group: str, kind: ErrorKind) -> list[str] | None:
        """``context_window_fallbacks`` / ``content_policy_fallbacks`` for the group."""
        if kind is ErrorKind.CONTEXT_WINDOW:
            rules = self.policy.context_window_fallbacks
        elif kind is ErrorKind.CONTENT_POLICY:
            rules = self.policy.content_policy_fallbacks
        else:
            return None
        found = rules.get(group)
        if found is None:
            found = rules.get(self.canonical_group(group))
        if found is None:
            return None
        return [g for g in found if g != group][: self.policy.max_fallbacks]

    async def route(
        self,
        model: str,
        attempt: Callable[[Deployment], Awaitable[T]],
        *,
        num_retries: int | None = None,
        fallbacks: Sequence[str] | None = None,
        use_fallbacks: bool = True,
        hints: RouteHints = NO_HINTS,
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
        switched: set[ErrorKind] = set()
        index = 0
        while index < len(chain):
            name, group = chain[index]
            try:
                value, deployment, retries = await self._try_group(
                    name, group, attempt, retries_allowed, waits, hints
                )
            except _GroupFailed as failed:
                retries_done += failed.retries
                last_error = failed.error
                if isinstance(failed.error, UpstreamError):
                    kind = classify(failed.error)
                    special = self.special_chain(model, kind) if use_fallbacks else None
                    if special is not None and kind not in switched:
                        # The rest of the chain is the list for this kind of failure.
                        switched.add(kind)
                        tried = {n for n, _ in chain[: index + 1]}
                        chain = chain[: index + 1] + [
                            (n, g)
                            for n in special
                            if n not in tried and (g := self.table.lookup(n))
                        ]
                    elif kind not in switched and not failed.error.fallback_ok:
                        raise failed.error from None
                index += 1
                continue
            return Routed(value, deployment, retries_done + retries, index, waits[0])
        assert last_error is not None
        raise last_error

    async def _try_group(
        self,
        name: str,
        group: list[Deployment],
        attempt: Callable[[Deployment], Awaitable[T]],
        retries_allowed: int,
        waits: list[float],
        hints: RouteHints,
    ) -> tuple[T, Deployment, int]:
        tried: set[str] = set()
        error: BastionError | None = None
        # Whether the last error may be repeated on a deployment already tried.
        repeat_ok = False
        if self.policy.enable_pre_call_checks:
            group = self._fitting(name, group, hints)
        attempt_no = 0
        while True:
            available = [d for d in group if not self.cooldowns.is_cooling(d.id)]
            if not available:
                # The failure that cooled the last deployment says more than "all cooling".
                raise _GroupFailed(error or self._all_cooling(name, group), max(attempt_no - 1, 0))
            fresh = [d for d in available if d.id not in tried]
            if attempt_no and not fresh and isinstance(error, UpstreamError):
                # Only a transient failure is worth repeating on the same deployment.
                wait = self._wait_before_same_deployment(error, attempt_no)
                if wait is None or not repeat_ok:
                    raise _GroupFailed(error, attempt_no - 1)
                await self._sleep(wait)
                waits[0] += wait
            deployment = self.strategy.pick(fresh or available, self._rng, hints)
            if deployment is None:
                raise _GroupFailed(error or self._all_at_capacity(name), max(attempt_no - 1, 0))
            try:
                return await attempt(deployment), deployment, attempt_no
            except UpstreamError as exc:
                kind = classify(exc)
                self.cooldowns.record_failure(deployment.id, exc, len(group), kind)
                error = exc
                tried.add(deployment.id)
                limit = self._retry_counts_of(name).get(kind)
                if limit is None:
                    # A rejected request fails the same everywhere; a deployment-level
                    # failure (bad credentials, missing model) may not affect its siblings.
                    if not exc.fallback_ok:
                        raise _GroupFailed(exc, attempt_no) from None
                    limit, repeat_ok = retries_allowed, exc.retryable
                else:
                    repeat_ok = True  # retry_policy names this kind: it is retried
                if attempt_no >= limit:
                    raise _GroupFailed(exc, attempt_no) from None
            attempt_no += 1

    def _retry_counts_of(self, group: str) -> KindCounts:
        """``model_group_retry_policy`` for the group (or what its alias names), else
        ``retry_policy``: a group's own policy replaces the general one, as in LiteLLM."""
        if self._group_retry_counts:
            own = self._group_retry_counts.get(group) or self._group_retry_counts.get(
                self.canonical_group(group)
            )
            if own is not None:
                return own
        return self._retry_counts

    def _fitting(self, name: str, group: list[Deployment], hints: RouteHints) -> list[Deployment]:
        """The deployments whose context window the prompt fits (pre-call checks)."""
        limits = [self.context_windows.limit(d) for d in group]
        if all(limit is None for limit in limits):
            return group
        tokens = hints.input_tokens()
        fitting = [d for d, lim in zip(group, limits, strict=True) if lim is None or tokens <= lim]
        if fitting:
            return fitting
        largest = max(lim for lim in limits if lim is not None)
        raise _GroupFailed(
            UpstreamStatusError(
                f"the prompt (about {tokens} tokens, estimated) does not fit the context "
                f"window of any deployment of '{name}' (largest: {largest} tokens). Shorten "
                "the prompt or use a model with a larger context window.",
                status=400,
                provider="bastion",
                error_type="invalid_request_error",
                code="context_length_exceeded",
                param="messages",
            ),
            0,
        )

    def _wait_before_same_deployment(self, error: UpstreamError, attempt_no: int) -> float | None:
        if error.retry_after is not None:
            if error.retry_after > MAX_INLINE_WAIT_S:
                return None
            return max(float(error.retry_after), self.policy.retry_after)
        return max(BACKOFF_BASE_S * 2.0 ** (attempt_no - 1), self.policy.retry_after)

    def _all_at_capacity(self, name: str) -> RateLimitError:
        seconds = _seconds_to_next_minute()
        return RateLimitError(
            f"no deployments available for model '{name}': every deployment is at its rpm/tpm "
            f"capacity for this minute. Try again in {seconds}s.",
            headers={"retry-after": str(seconds)},
            code="no_deployments_available",
        )

    def _all_cooling(self, name: str, group: list[Deployment]) -> RateLimitError:
        wait = min(self.cooldowns.seconds_left(d.id) for d in group)
        seconds = max(1, round(wait + 0.499))
        return RateLimitError(
            f"no deployments available for model '{name}': all {len(group)} are cooling down "
            f"after failures. Try again in {seconds}s.",
            headers={"retry-after": str(seconds)},
            code="no_deployments_available",
        )


def _group_counts(policy: RouterPolicy) -> dict[str, KindCounts]:
    return {
        group: KindCounts(counts, RETRIES)
        for group, counts in policy.model_group_retry_policy.items()
    }


def _seconds_to_next_minute() -> int:
    return max(1, 60 - int(time.time()) % 60)


class _GroupFailed(Exception):
    def __init__(self, error: BastionError, retries: int) -> None:
        self.error = error
        self.retries = retries
