"""Budget checks before a call: key, team, team member, user, end user, organization, global.

Spend is the auth snapshot's plus what this worker spent since (policy/ledger.py),
or, with Redis, the window total every replica adds to when that is larger
(policy/shared_spend.py).
A budget whose reset time has passed counts as fresh even before the reset job
has zeroed it in the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from bastion.core.errors import BudgetExceededError
from bastion.policy.auth import Principal, PrincipalKind
from bastion.policy.ledger import EntityKey, SpendLedger
from bastion.storage.snapshot import AuthSnapshot, BudgetFields

if TYPE_CHECKING:
    from bastion.policy.shared_spend import SharedSpend

logger = logging.getLogger("bastion.budgets")


@dataclass(frozen=True, slots=True)
class Charge:
    """One entity a request's spend is charged to, with its budget (if any)."""

    entity: EntityKey
    label: str
    max_budget: Decimal | None
    soft_budget: Decimal | None
    spend: Decimal
    reset_at: datetime | None


def charges_for(
    principal: Principal, end_user: str | None, snapshot: AuthSnapshot | None
) -> list[Charge]:
    charges: list[Charge] = []
    if principal.kind is PrincipalKind.KEY and principal.key is not None:
        key = principal.key
        charges.append(
            _charge(("key", key.token), f"key {key.key_alias or key.key_name}", key.budget)
        )
        if principal.team is not None:
            team = principal.team
            charges.append(
                _charge(
                    ("team", team.team_id), f"team {team.team_alias or team.team_id}", team.budget
                )
            )
        if principal.membership is not None:
            member = principal.membership
            charges.append(
                Charge(
                    ("member", f"{member.team_id}:{member.user_id}"),
                    f"member {member.user_id} of team {member.team_id}",
                    member.max_budget_in_team,
                    None,
                    member.spend,
                    member.budget_reset_at,
                )
            )
        if principal.user is not None:
            user = principal.user
            charges.append(_charge(("user", user.user_id), f"user {user.user_id}", user.budget))
        if principal.organization is not None:
            org = principal.organization
            charges.append(
                _charge(
                    ("org", org.organization_id),
                    f"organization {org.organization_alias or org.organization_id}",
                    org.budget,
                )
            )
    if end_user and snapshot is not None:
        record = snapshot.end_users.get(end_user)
        budget = snapshot.budgets.get(record.budget_id) if record and record.budget_id else None
        spend = record.spend if record is not None else Decimal(0)
        charges.append(
            Charge(
                ("end_user", end_user),
                f"end user {end_user}",
                budget.budget.max_budget if budget else None,
                budget.budget.soft_budget if budget else None,
                spend,
                budget.budget.budget_reset_at if budget else None,
            )
        )
    return charges


@dataclass(frozen=True, slots=True)
class BudgetEvent:
    """A budget reached: ``soft_budget_crossed`` (the call goes on) or ``budget_crossed``
    (the call is refused). Raised once per entity, limit and budget window."""

    event: Literal["budget_crossed", "soft_budget_crossed"]
    entity: EntityKey
    label: str
    spend: Decimal
    limit: Decimal
    reset_at: datetime | None


_AlertKey = tuple[str, EntityKey, Decimal, datetime | None, bool]

# How many (entity, window) alerts are remembered before past windows are dropped.
_ALERTED_PRUNE_AT = 10_000


class BudgetGuard:
    def __init__(
        self,
        ledger: SpendLedger,
        *,
        status: int = 422,
        default_end_user_budget: Decimal | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        alerts: Callable[[BudgetEvent], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.status = status
        self.default_end_user_budget = default_end_user_budget
        self._clock = clock
        # Told each event once (services/alerts.py sends it off the request path).
        self.alerts = alerts
        self._alerted: dict[_AlertKey, datetime | None] = {}
        # Spend totals shared across replicas (Redis), set by the composition root.
        self.shared: SharedSpend | None = None

    def check(self, charges: list[Charge], *, again: bool = False) -> None:
        """Raises BudgetExceededError for the first charge over its budget. ``again``:
        the same charges checked a second time (with shared totals just read)."""
        now = self._clock()
        for charge in charges:
            limit = charge.max_budget
            if limit is None and charge.entity[0] == "end_user":
                limit = self.default_end_user_budget
            spend = self.current_spend(charge, now, again=again)
            if charge.soft_budget is not None and spend >= charge.soft_budget:
                self._alert("soft_budget_crossed", charge, spend, charge.soft_budget, now)
            if limit is not None and spend >= limit:
                self._alert("budget_crossed", charge, spend, limit, now)
                error = BudgetExceededError(
                    f"budget exceeded for {charge.label}: spend ${spend:.6f} has reached its "
                    f"max_budget of ${limit:.6f}"
                    + (f"; it resets at {charge.reset_at.isoformat()}" if charge.reset_at else ""),
                )
                error.status = self.status
                raise error

    def current_spend(self, charge: Charge, now: datetime, *, again: bool = False) -> Decimal:
        reset_at = charge.reset_at
        if reset_at is not None and reset_at.tzinfo is None:
            reset_at = reset_at.replace(tzinfo=UTC)
        base = Decimal(0) if reset_at is not None and reset_at <= now else charge.spend
        local = base + self.ledger.pending(charge.entity)
        if self.shared is not None:
            total = self.shared.total(charge, base, now, watch=not again)
            if total is not None and total > local:
                return total
        return local

    def spent(self, charges: list[Charge], amount: Decimal) -> None:
        """After the ledger took a call's spend: add it to the shared totals too."""
        if self.shared is None or not amount:
            return
        now = self._clock()
        views = []
        for charge in charges:
            reset_at = _aware(charge.reset_at)
            base = Decimal(0) if reset_at is not None and reset_at <= now else charge.spend
            views.append(base + self.ledger.pending(charge.entity))
        self.shared.add(charges, amount, views)

    def _alert(
        self,
        event: Literal["budget_crossed", "soft_budget_crossed"],
        charge: Charge,
        spend: Decimal,
        limit: Decimal,
        now: datetime,
    ) -> None:
        """Once per entity, limit and window: a budget whose reset time has passed is in
        a new window even before the snapshot says so."""
        reset_at = _aware(charge.reset_at)
        current = reset_at is None or reset_at > now
        key = (event, charge.entity, limit, reset_at, current)
        if key in self._alerted:
            return
        if len(self._alerted) >= _ALERTED_PRUNE_AT:  # forget windows that have ended
            self._alerted = {k: end for k, end in self._alerted.items() if end is None or end > now}
        self._alerted[key] = reset_at if current else None
        budget_event = BudgetEvent(event, charge.entity, charge.label, spend, limit, reset_at)
        if self.alerts is not None:
            self.alerts(budget_event)
        else:
            logger.warning(
                "%s: %s has spent $%.6f of $%.6f",
                event.replace("_", " "),
                charge.label,
                spend,
                limit,
            )


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _charge(entity: EntityKey, label: str, budget: BudgetFields) -> Charge:
    return Charge(
        entity, label, budget.max_budget, budget.soft_budget, budget.spend, budget.budget_reset_at
    )
