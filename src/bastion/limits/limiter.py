"""The rate limiter the request path talks to.

For one request :meth:`RateLimiter.ticket` returns a :class:`LimitTicket` (or
None when no limit can apply: then the request costs nothing more). The gateway
calls :meth:`LimitTicket.admit` with the deployment the router picked: the
caller's counters and that deployment's are checked and counted in one step (one
Redis round trip). A caller's limit refuses with a 429 naming it; a deployment's
limit refuses that deployment only (a 429 the router treats like a provider's:
it tries the group's other deployments). After the call :meth:`LimitTicket.finish`
corrects the token reservation with the real usage and frees parallel slots,
off the latency path.

With Redis, budgets shared across replicas (policy/shared_spend.py) are read in
the same round trip as the first admission and checked again there: a request
whose team (key, user…) crossed its budget on another replica is refused with the
budget error before any upstream is called. A response cache on the same Redis
reads its entry in that round trip too (:meth:`LimitTicket.read_cache`): a request
then costs one round trip before its answer, whatever is configured.

Redis unreachable: counting continues on this process's counters (or, with
``general_settings.rate_limit_fail_closed: true``, requests with limits are
refused with a 503) until the link says Redis is back.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.core.deployment import Deployment, Operation
from bastion.core.errors import BastionError, RateLimitError, UpstreamStatusError
from bastion.core.unanswered import Unanswered
from bastion.core.usage import Usage
from bastion.limits.backend import CounterBackend, Decision
from bastion.limits.counters import Counter, Kind, seconds_to_next_window
from bastion.limits.estimate import estimate_tokens
from bastion.limits.memory import MemoryBackend
from bastion.limits.plan import deployment_counters, principal_counters
from bastion.policy.auth import Principal
from bastion.policy.budgets import BudgetGuard, Charge
from bastion.policy.shared_spend import SharedSpend
from bastion.storage.snapshot import AuthSnapshot

if TYPE_CHECKING:
    # redis-py (and what it pulls in) is loaded only when Redis is configured.
    from bastion.limits.redis_backend import RedisBackend, Settlement
    from bastion.storage.redis_link import RedisLink

logger = logging.getLogger("bastion.limits")

PARALLEL_RETRY_AFTER_S = 1


class LimitsUnavailableError(BastionError):
    """Redis is unreachable and the limits are configured fail-closed."""

    status = 503
    type = "service_unavailable"
    code = "rate_limits_unavailable"


@dataclass(slots=True)
class _Held:
    """Counters counted for a request, on one backend, to settle afterwards."""

    backend: CounterBackend
    counters: Sequence[Counter]
    window: int
    reserved: int
    deployment: Deployment | None


class RateLimiter:
    def __init__(
        self,
        *,
        local: MemoryBackend | None = None,
        shared: RedisBackend | None = None,
        link: RedisLink | None = None,
        fail_closed: bool = False,
        global_max_parallel: int | None = None,
        deployment_limits: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.local = local or MemoryBackend()
        self.shared = shared
        self.link = link
        self.fail_closed = fail_closed
        self.global_max_parallel = global_max_parallel
        self.deployment_limits = deployment_limits
        self.clock = clock
        self._to_settle: list[Settlement] = []
        self._settle_scheduled = False
        self._settling = Unanswered()
        self.settle_failures = 0
        # Budgets shared on Redis (set by the composition root): read at admission.
        self.shared_spend: SharedSpend | None = None
        self.budgets: BudgetGuard | None = None

    def ticket(
        self,
        request_id: str,
        counters: list[Counter],
        tokens: Callable[[], int],
        charges: Sequence[Charge] = (),
    ) -> LimitTicket | None:
        """A ticket for a request held to ``counters`` (None: nothing can apply).

        ``tokens`` estimates the reservation; it is called only if a tpm limit applies.
        ``charges``: the request's budgets; those shared on Redis are read and checked
        at the first admission.
        """
        reads = self._budget_reads(charges)
        if not counters and not self.deployment_limits and not reads:
            return None
        ticket = LimitTicket(self, request_id, counters, tokens)
        if reads:
            ticket.budget_check(reads, list(charges))
        return ticket

    def _budget_reads(self, charges: Sequence[Charge]) -> list[str]:
        if not charges or self.shared_spend is None or self.budgets is None:
            return []
        if self.link is None or not self.link.up:
            return []
        return self.shared_spend.read_keys(charges)

    def budget_read(
        self, keys: Sequence[str], values: Sequence[object], charges: list[Charge]
    ) -> None:
        """Totals read at admission: remembered, then the budgets checked with them."""
        if self.shared_spend is None or self.budgets is None:
            return
        self.shared_spend.seen(keys, values)
        self.budgets.check(charges, again=True)

    def ticket_for(
        self,
        principal: Principal,
        *,
        request_id: str,
        models: tuple[str, ...],
        end_user: str | None,
        snapshot: AuthSnapshot | None,
        body: dict[str, Any],
        body_bytes: int,
        operation: Operation,
        charges: Sequence[Charge] = (),
    ) -> LimitTicket | None:
        """The ticket of one LLM request (None when no limit can apply to it)."""
        counters = principal_counters(
            principal,
            models=models,
            end_user=end_user,
            snapshot=snapshot,
            global_max_parallel=self.global_max_parallel,
        )
        return self.ticket(
            request_id, counters, lambda: estimate_tokens(body, body_bytes, operation), charges
        )

    async def start(self) -> None:
        if self.link is not None:
            await self.link.start()

    async def stop(self) -> None:
        await self.drain()
        if self.shared is not None:
            await self.shared.close()
        if self.link is not None:
            await self.link.stop()

    @property
    def backend_name(self) -> str:
        if self.shared is not None and self.link is not None and self.link.up:
            return self.shared.name
        return self.local.name

    def status(self) -> dict[str, Any]:
        """For readiness details."""
        details: dict[str, Any] = {"backend": self.backend_name}
        if self.link is not None:
            details["redis"] = self.link.status()
            details["on_redis_failure"] = "refuse" if self.fail_closed else "local counters"
        return details

    async def acquire(
        self, counters: Sequence[Counter], tokens: int, request_id: str, reads: Sequence[str] = ()
    ) -> tuple[CounterBackend, Decision]:
        now = self.clock()
        if self.shared is not None and self.link is not None:
            if self.link.up:
                try:
                    decision = await self.shared.acquire(counters, tokens, request_id, now, reads)
                    return self.shared, decision
                except _redis_failures() as exc:
                    self.link.failed(exc)
            if self.fail_closed and counters:
                raise LimitsUnavailableError(
                    "rate limits cannot be checked: Redis is unreachable and the gateway is "
                    "configured to refuse (general_settings.rate_limit_fail_closed). "
                    "Retry shortly.",
                    headers={"retry-after": "1"},
                )
        return self.local, self.local.acquire_now(counters, tokens, now)

    def settle(self, held: _Held, token_delta: int, request_id: str) -> None:
        """Settle at once (memory) or queue for Redis; never raises.

        The settlements of one turn of the event loop leave together, as one script
        call written with the other Redis writes of that turn (storage/resp_client.py).
        """
        if isinstance(held.backend, MemoryBackend):
            held.backend.settle_now(held.counters, held.window, token_delta)
            return
        self._to_settle.append((held.counters, held.window, token_delta, request_id))
        if not self._settle_scheduled:
            self._settle_scheduled = True
            asyncio.get_running_loop().call_soon(self._send_settlements)

    def _send_settlements(self) -> None:
        self._settle_scheduled = False
        batch, self._to_settle = self._to_settle, []
        if not batch or self.shared is None:
            return
        count = len(batch)

        def settled(reply: asyncio.Future[Any]) -> None:
            exc = self._settling.answered(reply)
            if exc is None:
                return
            if isinstance(exc, _redis_failures()):
                # Lost: tokens stay reserved until the window ends, slots lapse with their lease.
                if self.link is not None:
                    self.link.failed(exc)
                self.settle_failures += count
            else:
                logger.error("could not settle rate-limit counters of %d requests: %s", count, exc)

        self._settling.sent(self.shared.queue_settlements(batch, settled))

    async def drain(self) -> None:
        """Wait until queued settlements are sent and answered (shutdown, tests)."""
        while self._to_settle or self._settle_scheduled or self._settling.count:
            if self._to_settle:
                self._send_settlements()
            await self._settling.wait()
            await asyncio.sleep(0)  # a scheduled send runs


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
        self._held: list[_Held] = []
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
                _Held(backend, self._pending, decision.window, tokens, deployment=None)
            )
            self._headers = _success_headers(self._pending, decision.values[:mine])
            self._pending = []
        if own:
            self._held.append(_Held(backend, own, decision.window, tokens, deployment))
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


@functools.cache
def _redis_failures() -> tuple[type[BaseException], ...]:
    """Errors meaning Redis did not answer. Only evaluated when a call to the shared
    backend raised, so redis-py is already imported by then."""
    from redis.exceptions import RedisError

    from bastion.storage.redis_link import UNREACHABLE

    return (*UNREACHABLE, RedisError)
