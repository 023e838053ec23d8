"""Window budgets read back from recorded spend, across resets, with a fake clock.

The global ``max_budget`` and per-model key budgets have no spend column: each
snapshot reload sums ``daily_spend`` / ``spend_logs`` over the current window, so
a new window starts empty without any reset job. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import count

import pytest

from bastion.core.errors import BudgetExceededError
from bastion.policy.auth import Principal, PrincipalKind
from bastion.policy.budget_windows import WindowBudgets, parse_model_max_budget
from bastion.policy.budgets import BudgetGuard
from bastion.policy.durations import parse_duration
from bastion.policy.ledger import SpendLedger
from bastion.storage import Database, SpendRecord, apply_spend_batch, hash_key
from bastion.storage.budget_windows import load_window_spend, refresh_window_spend
from bastion.storage.models import VirtualKey
from bastion.storage.snapshot import load_auth_snapshot
from tests.storage.conftest import FakeClock

TOKEN = hash_key("sk-model-budgets")
_ids = count()


async def spend(
    db: Database, at: datetime, amount: str, model: str, *, token: str | None = TOKEN
) -> None:
    record = SpendRecord(
        request_id=f"r{next(_ids)}",
        spend=Decimal(amount),
        start_time=at,
        api_key=token,
        model=model,
        model_group=model,
    )
    await apply_spend_batch(db.engine, [record])


async def test_global_budget_window_resets_on_its_boundary(db: Database, clock: FakeClock) -> None:
    # Wednesday 12 March 2025, 15:30 UTC; a daily global budget of $5.
    budgets = WindowBudgets(max_budget=Decimal(5), period=parse_duration("1d"))
    await spend(db, datetime(2025, 3, 11, 23, 59, tzinfo=UTC), "100", "gpt-4o")  # yesterday
    await spend(db, clock.now, "3", "gpt-4o")
    await spend(db, clock.now, "1.5", "claude", token=None)  # the master key counts too
    result = await load_window_spend(db.engine, clock.now, budgets, {})
    assert result.proxy is not None and result.proxy.spend == Decimal("4.5")
    assert result.proxy.window.end == datetime(2025, 3, 13, tzinfo=UTC)

    await spend(db, clock.advance(hours=1), "0.5", "gpt-4o")
    result = await load_window_spend(db.engine, clock.now, budgets, {})
    assert result.proxy is not None and result.proxy.spend == Decimal(5)
    guard = BudgetGuard(SpendLedger(), clock=clock)
    budgets.install({}, result)
    master = Principal(PrincipalKind.MASTER)
    with pytest.raises(BudgetExceededError, match="the proxy"):
        guard.check(budgets.charges(master, "gpt-4o"))

    # Midnight: the new day's window is empty, even before anything reloads.
    clock.now = datetime(2025, 3, 13, 0, 0, 1, tzinfo=UTC)
    guard.check(budgets.charges(master, "gpt-4o"))
    result = await load_window_spend(db.engine, clock.now, budgets, {})
    assert result.proxy is not None and result.proxy.spend == 0


async def test_per_model_key_budgets_over_day_and_hour_windows(
    db: Database, clock: FakeClock
) -> None:
    async with db.transaction() as s:
        await s.keys.create(
            VirtualKey(
                token=TOKEN,
                key_alias="ci",
                model_max_budget={
                    "gpt-4o": {"budget_limit": 1, "time_period": "1d"},
                    "claude": {"budget_limit": 2, "time_period": "1h"},
                    "forever": {"budget_limit": 9},
                },
            )
        )
    await spend(db, datetime(2025, 3, 10, tzinfo=UTC), "7", "forever")
    await spend(db, datetime(2025, 3, 12, 14, 59, tzinfo=UTC), "1.5", "claude")  # last hour
    await spend(db, clock.now, "0.25", "claude")
    await spend(db, clock.now, "0.6", "gpt-4o")
    await spend(db, clock.now, "0.4", "openai/gpt-4o")  # governed by the gpt-4o budget
    await spend(db, clock.now, "5", "gpt-4o-mini")  # no budget
    await spend(db, clock.now, "3", "gpt-4o", token=hash_key("sk-other"))  # another key

    budgets = WindowBudgets()
    snapshot = await load_auth_snapshot(db.engine, clock.now)
    await refresh_window_spend(db.engine, budgets, snapshot, clock.now)
    assert budgets.current.key_model(TOKEN, "gpt-4o").spend == Decimal(1)  # type: ignore[union-attr]
    assert budgets.current.key_model(TOKEN, "claude").spend == Decimal("0.25")  # type: ignore[union-attr]
    assert budgets.current.key_model(TOKEN, "forever").spend == Decimal(7)  # type: ignore[union-attr]

    principal = Principal(PrincipalKind.KEY, key=snapshot.keys[TOKEN])
    guard = BudgetGuard(SpendLedger(), clock=clock)
    with pytest.raises(BudgetExceededError) as error:
        guard.check(budgets.charges(principal, "gpt-4o"))
    assert "key ci on model gpt-4o" in str(error.value)
    guard.check(budgets.charges(principal, "claude"))
    guard.check(budgets.charges(principal, "gpt-4o-mini"))

    # Claude crosses its hourly budget; at 16:00 its window is new, gpt-4o's daily one is not.
    await spend(db, clock.now, "1.9", "claude")
    await refresh_window_spend(db.engine, budgets, snapshot, clock.now)
    with pytest.raises(BudgetExceededError, match="on model claude"):
        guard.check(budgets.charges(principal, "claude"))
    clock.advance(minutes=30)
    guard.check(budgets.charges(principal, "claude"))  # the reset time has passed
    await refresh_window_spend(db.engine, budgets, snapshot, clock.now)
    assert budgets.current.key_model(TOKEN, "claude").spend == 0  # type: ignore[union-attr]
    with pytest.raises(BudgetExceededError):
        guard.check(budgets.charges(principal, "gpt-4o"))

    # Thursday: the daily window is new too.
    clock.now = datetime(2025, 3, 13, 0, 0, 1, tzinfo=UTC)
    await refresh_window_spend(db.engine, budgets, snapshot, clock.now)
    assert budgets.current.key_model(TOKEN, "gpt-4o").spend == 0  # type: ignore[union-attr]
    guard.check(budgets.charges(principal, "gpt-4o"))


async def test_without_spend_logs_a_sub_day_window_counts_its_whole_day(
    db: Database, clock: FakeClock
) -> None:
    budgets = WindowBudgets()
    parsed = {TOKEN: parse_model_max_budget({"m": {"budget_limit": 1, "time_period": "1h"}})}
    await apply_spend_batch(
        db.engine,
        [
            SpendRecord(
                request_id=f"r{next(_ids)}",
                spend=Decimal("0.5"),
                start_time=datetime(2025, 3, 12, 9, tzinfo=UTC),
                api_key=TOKEN,
                model_group="m",
            )
        ],
        write_logs=False,
    )
    with_logs = await load_window_spend(db.engine, clock.now, budgets, parsed)
    without = await load_window_spend(db.engine, clock.now, budgets, parsed, spend_logs=False)
    assert with_logs.key_model(TOKEN, "m").spend == 0  # type: ignore[union-attr]
    assert without.key_model(TOKEN, "m").spend == Decimal("0.5")  # type: ignore[union-attr]
