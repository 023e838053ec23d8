"""Budget spend shared across replicas: per-entity window totals kept in a counter store.

Without it a budget check sees the database snapshot (reloaded every ~2 s, and
behind by the spend writer's batch interval) plus this worker's own spend since.
With it (Redis configured), every charged call also adds its cost to one total per
budgeted entity and budget window in Redis, and a budget check takes the larger of
that total and the local view. The database stays the source of truth:

- a total is named by its window (the budget's reset time) and expires with it, so
  a reset starts a new total;
- every addition raises the total to at least this worker's own view (the snapshot
  plus the spend it has not seen written yet), so a total lost with a Redis restart
  or created late is re-seeded from the database;
- a spend that goes *down* within a window (an admin set it by hand) drops the
  total, which the next addition re-seeds.

Only entities that have a budget (``max_budget``, ``soft_budget``, or the default
end-user budget) get a total. This module is pure bookkeeping; the Redis calls are
in storage/redis_spend.py (additions, after the answer) and the rate limiter's
admission (reads, in the same round trip: limits/limiter.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol

from bastion.policy.budgets import Charge

# A window without a reset time (an all-time budget): its total lapses after a day
# without spend and is then re-seeded from the database.
ALL_TIME_TTL_S = 86_400
# A window whose reset time has passed but whose reset the snapshot does not show yet.
PAST_RESET_TTL_S = 3_600
# Kept after a window ends, for checks on replicas whose clocks lag a little.
WINDOW_GRACE_S = 60

# Redis key, the amount to add, this worker's own view (the floor), expiry (unix s).
Addition = tuple[str, Decimal, Decimal, int]


@dataclass(frozen=True, slots=True)
class WindowKey:
    """Where one entity's total for its current budget window lives."""

    name: str
    expires_at: int  # unix seconds


class SpendSender(Protocol):
    def send(self, additions: Sequence[Addition]) -> None:
        """Queue additions for the store (off the request path); never raises."""
        ...


class SharedSpend:
    """The totals this worker last saw, and what to add after each call."""

    def __init__(
        self,
        prefix: str,
        *,
        default_end_user_budget: Decimal | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.prefix = prefix
        self.default_end_user_budget = default_end_user_budget
        self.sender: SpendSender | None = None
        # Whether the store is reachable: while it is not, nothing is read or added.
        self.available: Callable[[], bool] = lambda: True
        self._clock = clock
        self._seen: dict[str, Decimal] = {}  # key name -> total as last read or written
        self._bases: dict[str, Decimal] = {}  # key name -> snapshot spend last checked
        self._forgotten: list[str] = []  # totals to delete in the store

    def shared(self, charge: Charge) -> bool:
        """Whether the charge's entity has a budget, so its spend is shared."""
        if charge.max_budget is not None or charge.soft_budget is not None:
            return True
        return charge.entity[0] == "end_user" and self.default_end_user_budget is not None

    def key_of(self, charge: Charge, now: datetime) -> WindowKey:
        kind, ident = charge.entity
        reset_at = _aware(charge.reset_at)
        stamp = int(now.timestamp())
        if reset_at is None:
            tag, expires = "all", stamp + ALL_TIME_TTL_S
        elif reset_at > now:
            tag = str(int(reset_at.timestamp()))
            expires = int(reset_at.timestamp()) + WINDOW_GRACE_S
        else:
            tag, expires = f"after{int(reset_at.timestamp())}", stamp + PAST_RESET_TTL_S
        return WindowKey(f"{self.prefix}spend:{kind}:{ident}:{tag}", expires)

    def read_keys(self, charges: Iterable[Charge]) -> list[str]:
        """The totals a budget check on these charges reads (empty: nothing shared)."""
        if not self.available():
            return []
        now = self._clock()
        return [self.key_of(c, now).name for c in charges if self.shared(c)]

    def seen(self, keys: Sequence[str], values: Sequence[object]) -> None:
        """Totals read from the store (bytes, str or None for a missing total)."""
        for key, value in zip(keys, values, strict=False):
            amount = _decimal(value)
            if amount is not None:
                self._seen[key] = amount

    def total(
        self, charge: Charge, base: Decimal, now: datetime, *, watch: bool = True
    ) -> Decimal | None:
        """The last shared total of the charge's window; ``base`` is the snapshot's spend
        (0 after a reset time has passed). ``watch`` (first checks, whose charges come
        from the newest snapshot): a base lower than the last one seen in the same
        window means spend was lowered by hand, and the shared total is dropped."""
        if not self.shared(charge):
            return None
        key = self.key_of(charge, now).name
        if not watch:
            return self._seen.get(key)
        before = self._bases.get(key)
        if before is None or before != base:
            if len(self._bases) > 100_000:
                self._bases.clear()
            self._bases[key] = base
            if before is not None and base < before:
                self._seen.pop(key, None)
                self._forgotten.append(key)
                return None
        return self._seen.get(key)

    def has_forgotten(self) -> bool:
        return bool(self._forgotten)

    def take_forgotten(self) -> list[str]:
        """Totals to delete in the store (spend lowered by hand), once each."""
        forgotten, self._forgotten = self._forgotten, []
        return forgotten

    def add(self, charges: Iterable[Charge], amount: Decimal, views: Sequence[Decimal]) -> None:
        """After a call: add ``amount`` to the totals of its budgeted charges.

        ``views`` holds, per charge, this worker's own view of its spend including the
        amount (the floor a total is raised to)."""
        if not amount or self.sender is None or not self.available():
            return
        now = self._clock()
        additions: list[Addition] = []
        for charge, view in zip(charges, views, strict=True):
            if self.shared(charge):
                key = self.key_of(charge, now)
                additions.append((key.name, amount, view, key.expires_at))
                self._seen[key.name] = max(self._seen.get(key.name, Decimal(0)) + amount, view)
        if additions:
            self.sender.send(additions)

    def drop(self) -> None:
        """The store is away: forget its totals (they are read again when it returns)."""
        self._seen.clear()


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None
