"""Budget spend shared on the real Redis: two replicas (own ledger, guard, client)
see each other's spend at the next admission; totals expire with their window, are
re-seeded from the database's view, and are dropped when spend is lowered by hand."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from bastion.config.redis_settings import RedisSettings
from bastion.core.deployment import Deployment
from bastion.core.errors import BudgetExceededError
from bastion.limits.counters import Counter, Kind
from bastion.limits.limiter import RateLimiter
from bastion.limits.redis_backend import RedisBackend
from bastion.policy.budgets import BudgetGuard, Charge
from bastion.policy.ledger import SpendLedger
from bastion.policy.shared_spend import SharedSpend
from bastion.storage.redis_link import RedisLink
from bastion.storage.redis_spend import RedisSpendSender

DEPLOYMENT = Deployment(
    id="d", model_name="gpt", provider_name="openai", upstream_model="gpt", provider=None  # type: ignore[arg-type]
)  # fmt: skip
NOW = datetime.now(UTC)
RESET_AT = (NOW + timedelta(days=1)).replace(microsecond=0)
TEAM = Charge(("team", "t1"), "team t1", Decimal("0.05"), None, Decimal(0), RESET_AT)
KEY = Charge(("key", "k1"), "key k1", None, None, Decimal(0), None)  # no budget: not shared


@dataclass
class Replica:
    ledger: SpendLedger
    guard: BudgetGuard
    shared: SharedSpend
    sender: RedisSpendSender
    limiter: RateLimiter

    def charge(self, charges: list[Charge], amount: str) -> None:
        """What the meter does after an answer."""
        self.ledger.add((c.entity for c in charges), Decimal(amount))
        self.guard.spent(charges, Decimal(amount))


@contextlib.asynccontextmanager
async def replicas(prefix: str, n: int = 2) -> AsyncIterator[list[Replica]]:
    made: list[Replica] = []
    for _ in range(n):
        link = RedisLink(RedisSettings("test"))
        ledger = SpendLedger()
        guard = BudgetGuard(ledger)
        shared = SharedSpend(prefix)
        shared.available = lambda link=link: link.up  # type: ignore[misc]
        sender = RedisSpendSender(link, shared)
        shared.sender = sender
        guard.shared = shared
        limiter = RateLimiter(shared=RedisBackend(link.resp, prefix), link=link)
        limiter.shared_spend, limiter.budgets = shared, guard
        made.append(Replica(ledger, guard, shared, sender, limiter))
    try:
        yield made
    finally:
        for replica in made:
            await replica.limiter.stop()


async def test_spend_on_one_replica_stops_the_other_at_its_next_admission(
    redis_url: str, redis_prefix: str
) -> None:
    async with replicas(redis_prefix) as (a, b):
        charges = [KEY, TEAM]
        a.guard.check(charges)
        a.charge(charges, "0.06")  # replica A crosses the team's $0.05
        await a.sender.drain()
        with pytest.raises(BudgetExceededError):
            a.guard.check(charges)

        b.guard.check(charges)  # B's snapshot and ledger know nothing of it yet...
        ticket = b.limiter.ticket("r1", [], lambda: 0, charges)
        assert ticket is not None  # ...so its admission reads the team's total
        with pytest.raises(BudgetExceededError, match="budget exceeded for team t1"):
            await ticket.admit(DEPLOYMENT)
        ticket.finish()
        with pytest.raises(BudgetExceededError):  # and remembers it
            b.guard.check(charges)

        # In the rate limits' round trip: the counter is counted, then the budget refuses.
        rpm = Counter(Kind.RPM, "key:k1", 100, "key k1", "rpm_limit")
        ticket = b.limiter.ticket("r2", [rpm], lambda: 0, charges)
        assert ticket is not None
        with pytest.raises(BudgetExceededError):
            await ticket.admit(DEPLOYMENT)
        ticket.finish()

        async with Redis.from_url(redis_url) as redis:
            key = a.shared.key_of(TEAM, NOW).name
            assert key == f"{redis_prefix}spend:team:t1:{int(RESET_AT.timestamp())}"
            assert Decimal((await redis.get(key)).decode()) == Decimal("0.06")
            expires = await redis.expiretime(key)
            assert expires == int(RESET_AT.timestamp()) + 60  # the total ends with its window
            assert await redis.keys(f"{redis_prefix}spend:key:*") == []  # no budget, no total


async def test_without_budgets_shared_no_ticket_is_needed(redis_prefix: str) -> None:
    async with replicas(redis_prefix, n=1) as (a,):
        assert a.limiter.ticket("r", [], lambda: 0, [KEY]) is None


async def test_a_lost_total_is_reseeded_from_the_database_view(
    redis_url: str, redis_prefix: str
) -> None:
    async with replicas(redis_prefix) as (a, b):
        a.charge([TEAM], "0.01")
        await a.sender.drain()
        async with Redis.from_url(redis_url) as redis:
            key = a.shared.key_of(TEAM, NOW).name
            await redis.delete(key)  # e.g. Redis restarted without persistence
            # B's snapshot now has $0.03 written by everyone; it spends $0.01 more.
            reloaded = replace(TEAM, spend=Decimal("0.03"))
            b.charge([reloaded], "0.01")
            await b.sender.drain()
            assert Decimal((await redis.get(key)).decode()) == Decimal("0.04")
            # A adds on top of the shared total (its own view, $0.01, is lower).
            a.charge([TEAM], "0.02")
            await a.sender.drain()
            assert Decimal((await redis.get(key)).decode()) == Decimal("0.06")


async def test_spend_lowered_by_hand_drops_the_shared_total(
    redis_url: str, redis_prefix: str
) -> None:
    async with replicas(redis_prefix, n=1) as (a,):
        spent = replace(TEAM, spend=Decimal("0.04"))
        a.charge([spent], "0.02")
        await a.sender.drain()
        with pytest.raises(BudgetExceededError):
            a.guard.check([spent])
        # An admin set the team's spend to 0: the next snapshot says so.
        a.ledger.written(a.ledger.seal())  # the spend writer wrote it...
        a.ledger.snapshot_loaded(float("inf"))  # ...and a later snapshot holds it
        lowered = replace(TEAM, spend=Decimal(0))
        a.guard.check([lowered])  # the stale $0.06 total is not used
        a.charge([lowered], "0.01")
        await a.sender.drain()
        async with Redis.from_url(redis_url) as redis:
            total = await redis.get(a.shared.key_of(TEAM, NOW).name)
            assert Decimal(total.decode()) == Decimal("0.01")


async def test_with_redis_away_budgets_use_the_local_view(redis_prefix: str) -> None:
    async with replicas(redis_prefix, n=1) as (a,):
        link = a.limiter.link
        assert link is not None
        link.failed(ConnectionError("test: Redis went away"))
        assert a.shared.read_keys([TEAM]) == []
        assert a.limiter.ticket("r", [], lambda: 0, [TEAM]) is None
        a.charge([TEAM], "0.06")  # counted in the ledger, not sent
        assert a.sender.lost == 0 and not a.sender._queue
        with pytest.raises(BudgetExceededError):
            a.guard.check([TEAM])


async def test_a_second_check_on_an_older_snapshot_keeps_the_total(redis_prefix: str) -> None:
    """A request's charges come from the snapshot of its first check; when a newer
    snapshot was installed before its admission, its lower spend is not a reset."""
    async with replicas(redis_prefix, n=1) as (a,):
        roomy = replace(TEAM, max_budget=Decimal(1))
        older = replace(roomy, spend=Decimal("0.04"))
        a.charge([older], "0.02")
        await a.sender.drain()
        newer = replace(roomy, spend=Decimal("0.05"))
        a.guard.check([newer])  # another request, on the newer snapshot
        a.guard.check([older], again=True)
        assert a.guard.current_spend(older, datetime.now(UTC), again=True) == Decimal("0.06")
        assert not a.shared.has_forgotten()
