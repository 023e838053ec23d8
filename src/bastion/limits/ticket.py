"""One request's share of the rate limits, from admission to settlement
(:class:`LimitTicket`; the limiter that issues it is limits/limiter.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bastion.core.deployment import Deployment
from bastion.core.errors import RateLimitError, UpstreamStatusError
from bastion.core.usage import Usage
from bastion.limits.backend import CounterBackend
from bastion.limits.counters import Counter, Kind, seconds_to_next_window
from bastion.limits.plan import deployment_counters
from bastion.policy.budgets import Charge

if TYPE_CHECKING:
    from bastion.limits.limiter import RateLimiter

PARALLEL_RETRY_AFTER_S = 1


@dataclass(slots=True)
class Held:
    """Counters counted for a request, on one backend, to settle afterwards."""

    backend: CounterBackend
    counters: Sequence[Counter]
    window: int
    reserved: int
    deployment: Deployment | None


class LimitTicket:
    """One request's share of the counters, from admission to settlement."""

    def __init__(
        self,
        limiter: RateLimiter,
        request_id: str,
        counters: list[Counter],
        tokens: Callable[[], int],
    ) -> None:
        self._limiter = limiter
        self.request_id = request_id
        self._pending = counters  # the caller's counters, until counted once
        self._estimate = tokens
        self._tokens: int | None = None
        self._held: list[Held] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._used: int | None = None
        self._served: Deployment | None = None
        self._finished = False
        self._budget_keys: list[str] = []  # shared budget totals read at the first admission
        self._charges: list[Charge] = []
        self._cache_key: str | None = None  # a response-cache entry read at the first admission
        self.cache_read = False  # whether the admission read it (False: Redis was away)
        self.cache_value: object = None  # what it read (None: no entry)

    def budget_check(self, keys: list[str], charges: list[Charge]) -> None:
        """Read these shared budget totals at the first admission and check the budgets."""
        self._budget_keys, self._charges = keys, charges

    @property
    def reads_shared(self) -> bool:
        """Whether the admission will go to Redis (so it can read other keys for free)."""
        link = self._limiter.link
        return self._limiter.shared is not None and link is not None and link.up

    def read_cache(self, key: str) -> None:
        """Read this response-cache entry in the first admission's round trip: after
        :meth:`admit`, :attr:`cache_read` says whether it was read, :attr:`cache_value`
        holds it."""
        self._cache_key = key

    async def admit(self, deployment: Deployment) -> None:
        """Count the request against the caller's limits (first time) and the
        deployment's; raises a 429 when one is reached."""
        limiter = self._limiter
        own = deployment_counters(deployment) if limiter.deployment_limits else []
        counters = [*self._pending, *own] if self._pending else own
        budget_keys = self._budget_keys
        cache_key = self._cache_key
        reads = [*budget_keys, cache_key] if cache_key is not None else budget_keys
        if not counters and not reads:
            return
        tokens = 0
        if any(c.kind is Kind.TPM for c in counters):
            if self._tokens is None:
                self._tokens = max(0, self._estimate())
            tokens = self._tokens
        backend, decision = await limiter.acquire(counters, tokens, self.request_id, reads)
        if not decision.allowed:
            counter = counters[decision.refused]
            error_headers = _refusal_headers(counter, decision.values[decision.refused], limiter)
            if decision.refused >= len(counters) - len(own):
                raise UpstreamStatusError(
                    counter.refusal(),
                    status=429,
                    provider="bastion",
                    error_type="rate_limit_error",
                    code="rate_limit_exceeded",
                    retry_after=float(error_headers["retry-after"]),
                    headers=error_headers,
                )
            raise RateLimitError(counter.refusal(), headers=error_headers)
        if self._pending:
            mine = len(self._pending)
            self._held.append(
                Held(backend, self._pending, decision.window, tokens, deployment=None)
            )
            self._headers = _success_headers(self._pending, decision.values[:mine])
            self._pending = []
        if own:
            self._held.append(Held(backend, own, decision.window, tokens, deployment))
        if cache_key is not None:
            self._cache_key = None
            if len(decision.read) == len(reads):  # not read: Redis was away
                self.cache_read = True
                self.cache_value = decision.read[-1]
        if budget_keys:
            self._budget_keys = []
            if decision.read:  # refused here: the counters held are settled by finish()
                limiter.budget_read(budget_keys, decision.read[: len(budget_keys)], self._charges)

    def record_usage(self, usage: Usage) -> None:
        self._used = usage.total_tokens

    def served_by(self, deployment: Deployment) -> None:
        """The deployment that answered (its tpm gets the real tokens)."""
        self._served = deployment

    def headers(self) -> list[tuple[bytes, bytes]]:
        """x-ratelimit-* headers for a served request (the tightest caller limits)."""
        return self._headers

    def finish(self) -> None:
        """Settle every counter held: the real tokens replace the reservation on the
        caller's counters and the deployment that answered (an answer without usage
        keeps its reservation; a failed call uses none); other deployments tried
        along the way are settled to zero tokens. Idempotent."""
        if self._finished:
            return
        self._finished = True
        deployment = self._served
        used = self._used
        if used is None:
            used = (self._tokens or 0) if deployment is not None else 0
        for held in self._held:
            actual = used if held.deployment is None or held.deployment is deployment else 0
            self._limiter.settle(held, actual - held.reserved, self.request_id)


def _refusal_headers(counter: Counter, value: int, limiter: RateLimiter) -> dict[str, str]:
    if counter.kind is Kind.PARALLEL:
        return {"retry-after": str(PARALLEL_RETRY_AFTER_S)}
    headers = {"retry-after": str(seconds_to_next_window(limiter.clock()))}
    what = "requests" if counter.kind is Kind.RPM else "tokens"
    headers[f"x-ratelimit-limit-{what}"] = str(counter.limit)
    headers[f"x-ratelimit-remaining-{what}"] = str(max(0, counter.limit - value))
    return headers


def _success_headers(
    counters: Sequence[Counter], values: Sequence[int]
) -> list[tuple[bytes, bytes]]:
    tightest: dict[Kind, tuple[int, int]] = {}
    for counter, value in zip(counters, values, strict=True):
        if counter.kind is Kind.PARALLEL:
            continue
        remaining = max(0, counter.limit - value)
        best = tightest.get(counter.kind)
        if best is None or remaining < best[1]:
            tightest[counter.kind] = (counter.limit, remaining)
    headers: list[tuple[bytes, bytes]] = []
    for kind, what in ((Kind.RPM, b"requests"), (Kind.TPM, b"tokens")):
        if kind in tightest:
            limit, remaining = tightest[kind]
            headers.append((b"x-ratelimit-limit-" + what, str(limit).encode()))
            headers.append((b"x-ratelimit-remaining-" + what, str(remaining).encode()))
    return headers
