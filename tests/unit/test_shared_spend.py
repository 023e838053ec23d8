"""Shared budget totals, the pure part: which entities share, how a window is named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bastion.policy.budgets import Charge
from bastion.policy.shared_spend import ALL_TIME_TTL_S, PAST_RESET_TTL_S, SharedSpend

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
STAMP = int(NOW.timestamp())


def charge(
    kind: str = "team",
    max_budget: str | None = "1",
    reset_at: datetime | None = None,
    soft: str | None = None,
) -> Charge:
    return Charge(
        (kind, "x"),
        f"{kind} x",
        Decimal(max_budget) if max_budget else None,
        Decimal(soft) if soft else None,
        Decimal(0),
        reset_at,
    )


def test_only_budgeted_entities_share_their_spend() -> None:
    shared = SharedSpend("p:", clock=lambda: NOW)
    assert shared.shared(charge())
    assert shared.shared(charge(max_budget=None, soft="0.5"))  # a soft budget alerts
    assert not shared.shared(charge(max_budget=None))
    assert not shared.shared(charge("end_user", max_budget=None))
    with_default = SharedSpend("p:", default_end_user_budget=Decimal(2), clock=lambda: NOW)
    assert with_default.shared(charge("end_user", max_budget=None))
    assert shared.read_keys([charge(max_budget=None), charge()]) == ["p:spend:team:x:all"]


def test_a_total_is_named_by_its_window_and_expires_with_it() -> None:
    shared = SharedSpend("p:", clock=lambda: NOW)
    end = NOW + timedelta(days=3)
    key = shared.key_of(charge(reset_at=end), NOW)
    assert key.name == f"p:spend:team:x:{int(end.timestamp())}"
    assert key.expires_at == int(end.timestamp()) + 60
    naive = shared.key_of(charge(reset_at=end.replace(tzinfo=None)), NOW)
    assert naive == key  # stored reset times are UTC without a zone
    forever = shared.key_of(charge(), NOW)
    assert (forever.name, forever.expires_at) == ("p:spend:team:x:all", STAMP + ALL_TIME_TTL_S)
    passed = NOW - timedelta(minutes=1)  # reset due, the reset job has not run yet
    late = shared.key_of(charge(reset_at=passed), NOW)
    assert late.name == f"p:spend:team:x:after{int(passed.timestamp())}"
    assert late.expires_at == STAMP + PAST_RESET_TTL_S


def test_totals_seen_are_remembered_and_garbage_is_ignored() -> None:
    shared = SharedSpend("p:", clock=lambda: NOW)
    team = charge()
    shared.seen(["p:spend:team:x:all"], [b"0.250000000000"])
    assert shared.total(team, Decimal(0), NOW) == Decimal("0.25")
    shared.seen(["p:spend:team:x:all"], [None])  # missing: keep what was seen
    shared.seen(["p:spend:team:x:all"], [b"nan?"])
    assert shared.total(team, Decimal(0), NOW) == Decimal("0.25")
    shared.drop()  # Redis away
    assert shared.total(team, Decimal(0), NOW) is None
