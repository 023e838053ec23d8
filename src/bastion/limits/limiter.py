"""The rate limiter the request path talks to.

For one request :meth:`RateLimiter.ticket` returns a :class:`LimitTicket`
(limits/ticket.py), or None when no limit can apply: then the request costs nothing
more. The gateway
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
from typing import TYPE_CHECKING, Any

from bastion.core.deployment import Operation
from bastion.core.errors import BastionError
from bastion.core.unanswered import Unanswered
from bastion.limits.backend import CounterBackend, Decision
from bastion.limits.counters import Counter
from bastion.limits.estimate import estimate_tokens
from bastion.limits.memory import MemoryBackend
from bastion.limits.plan import principal_counters
from bastion.limits.ticket import Held, LimitTicket
from bastion.policy.auth import Principal
from bastion.policy.budgets import BudgetGuard, Charge
from bastion.policy.shared_spend import SharedSpend
from bastion.storage.snapshot import AuthSnapshot

if TYPE_CHECKING:
    # redis-py (and what it pulls in) is loaded only when Redis is configured.
    from bastion.limits.redis_backend import RedisBackend, Settlement
    from bastion.storage.redis_link import RedisLink

logger = logging.getLogger("bastion.limits")


class LimitsUnavailableError(BastionError):
    """Redis is unreachable and the limits are configured fail-closed."""

    status = 503
    type = "service_unavailable"
    code = "rate_limits_unavailable"


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

    def settle(self, held: Held, token_delta: int, request_id: str) -> None:
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


@functools.cache
def _redis_failures() -> tuple[type[BaseException], ...]:
    """Errors meaning Redis did not answer. Only evaluated when a call to the shared
    backend raised, so redis-py is already imported by then."""
    from redis.exceptions import RedisError

    from bastion.storage.redis_link import UNREACHABLE

    return (*UNREACHABLE, RedisError)
