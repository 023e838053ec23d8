"""State shared across workers and replicas through the rate limiter's Redis.

With Redis configured (config/redis_settings.py) the composition root wires:

- budgets: spend totals per budgeted entity and window (policy/shared_spend.py),
  read in the rate limiter's admission round trip, added to after each answer
  (storage/redis_spend.py);
- routing: cooldowns and the strategies' load and latency, through the deployment
  state store (routing/redis_state_store.py).

Both use the limiter's Redis client and outage state (one client per process) and
its key prefix (``general_settings.rate_limit_redis_prefix``). Without Redis nothing
here is built and the gateway behaves as a single process does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bastion.limits.limiter import RateLimiter
from bastion.policy.budgets import BudgetGuard
from bastion.policy.shared_spend import SharedSpend
from bastion.services.metering import Meter

if TYPE_CHECKING:  # redis-py is loaded only when Redis is configured
    from bastion.routing.redis_state_store import RedisStateStore
    from bastion.storage.redis_spend import RedisSpendSender


class SharedState:
    def __init__(self, limits: RateLimiter) -> None:
        self.limits = limits
        self.routing: RedisStateStore | None = None
        self.spend: RedisSpendSender | None = None

    @classmethod
    def of(cls, limits: RateLimiter | None) -> SharedState | None:
        """Built only when the rate limiter talks to Redis."""
        if limits is None or limits.link is None or limits.shared is None:
            return None
        return cls(limits)

    def routing_store(self) -> RedisStateStore:
        from bastion.routing.redis_state_store import RedisStateStore

        assert self.limits.link is not None and self.limits.shared is not None
        self.routing = RedisStateStore(self.limits.link, self.limits.shared.prefix)
        return self.routing

    def share_budgets(self, guard: BudgetGuard, meter: Meter) -> None:
        from bastion.storage.redis_spend import RedisSpendSender

        link, backend = self.limits.link, self.limits.shared
        assert link is not None and backend is not None
        shared = SharedSpend(backend.prefix, default_end_user_budget=guard.default_end_user_budget)
        shared.available = lambda: link.up
        self.spend = RedisSpendSender(link, shared)
        shared.sender = self.spend
        guard.shared = shared
        meter.on_charged = guard.spent
        self.limits.shared_spend = shared
        self.limits.budgets = guard

    async def start(self) -> None:
        """After the limiter's start (which pings Redis)."""
        if self.routing is not None:
            self.routing.start()

    async def stop(self) -> None:
        if self.routing is not None:
            await self.routing.stop()
        if self.spend is not None:
            await self.spend.drain()

    def status(self) -> dict[str, Any]:
        details: dict[str, Any] = {"budgets": "redis" if self.spend is not None else "local"}
        if self.routing is not None:
            details["routing"] = self.routing.status()
        return details
