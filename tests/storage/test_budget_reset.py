"""reset_budgets with a fake clock across day, week and month boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bastion.core.errors import BudgetExceededError
from bastion.policy.auth import Principal, PrincipalKind
from bastion.policy.budgets import BudgetGuard, charges_for
from bastion.policy.ledger import SpendLedger
from bastion.storage import Database, SpendRecord, apply_spend_batch, hash_key, reset_budgets
from bastion.storage.models import Budget, EndUser, Team, User, VirtualKey
from bastion.storage.snapshot import load_auth_snapshot
from tests.storage.conftest import FakeClock

DAILY, WEEKLY, MONTHLY = hash_key("sk-daily"), hash_key("sk-weekly"), hash_key("sk-monthly")


async def _spend_everywhere(db: Database, at: datetime, tag: str) -> None:
    records = [
        SpendRecord(
            request_id=f"{tag}-{token[:6]}",
            spend=Decimal("1.5"),
            start_time=at,
            api_key=token,
            team_id="team",
            user_id="ann",
            end_user="cust",
        )
        for token in (DAILY, WEEKLY, MONTHLY)
    ]
    await apply_spend_batch(db.engine, records)


async def _key_spend(db: Database) -> dict[str, Decimal]:
    async with db.transaction() as s:
        return {
            name: (await s.keys.get(token)).spend
            for name, token in (("daily", DAILY), ("weekly", WEEKLY), ("monthly", MONTHLY))
        }


async def test_resets_follow_calendar_boundaries(db: Database, clock: FakeClock) -> None:
    # Wednesday 12 March 2025, 15:30 UTC.
    async with db.transaction() as s:
        await s.teams.create(Team(team_id="team", budget_duration="1mo", max_budget=Decimal(100)))
        await s.users.create(User(user_id="ann", budget_duration="1h"))
        await s.members.add("team", "ann", budget_duration="1d")
        await s.budgets.create(Budget(budget_id="b", budget_duration="7d", max_budget=Decimal(5)))
        await s.end_users.create(EndUser(user_id="cust", budget_id="b"))
        await s.keys.create(VirtualKey(token=DAILY, budget_duration="1d"))
        await s.keys.create(VirtualKey(token=WEEKLY, budget_duration="7d"))
        await s.keys.create(VirtualKey(token=MONTHLY, budget_duration="30d"))
    await _spend_everywhere(db, clock.now, "wed")

    # Nothing is due yet.
    result = await reset_budgets(db.engine, clock.now)
    assert result.total == 0
    assert await _key_spend(db) == dict.fromkeys(("daily", "weekly", "monthly"), Decimal("4.5") / 3)

    # 16:00: only the hourly user budget resets.
    result = await reset_budgets(db.engine, clock.advance(minutes=30))
    assert result.reset["user"] == 1 and result.total == 1
    async with db.transaction() as s:
        user = await s.users.get("ann")
        assert user.spend == 0 and user.budget_reset_at == datetime(2025, 3, 12, 17, tzinfo=UTC)

    # Thursday 00:00:01: the daily key and the daily team membership.
    clock.now = datetime(2025, 3, 13, 0, 0, 1, tzinfo=UTC)
    result = await reset_budgets(db.engine, clock.now)
    assert result.reset["key"] == 1 and result.reset["team_member"] == 1
    spend = await _key_spend(db)
    assert spend["daily"] == 0 and spend["weekly"] == Decimal("1.5")
    async with db.transaction() as s:
        daily = await s.keys.get(DAILY)
        assert daily.budget_reset_at == datetime(2025, 3, 14, tzinfo=UTC)
        assert (await s.members.get("team", "ann")).spend == 0
    await _spend_everywhere(db, clock.now, "thu")

    # Monday 17 March: the weekly key and the weekly reusable budget (its end users).
    clock.now = datetime(2025, 3, 17, 0, 5, tzinfo=UTC)
    result = await reset_budgets(db.engine, clock.now)
    assert result.reset["end_user"] == 1
    spend = await _key_spend(db)
    assert spend == {"daily": 0, "weekly": 0, "monthly": Decimal(3)}
    async with db.transaction() as s:
        assert (await s.keys.get(WEEKLY)).budget_reset_at == datetime(2025, 3, 24, tzinfo=UTC)
        assert (await s.end_users.get("cust")).spend == 0
        assert (await s.budgets.get("b")).budget_reset_at == datetime(2025, 3, 24, tzinfo=UTC)
        assert (await s.teams.get("team")).spend == Decimal(9)

    # 1 April: the monthly team and the 30d key; running twice changes nothing more.
    clock.now = datetime(2025, 4, 1, 0, 0, tzinfo=UTC)
    result = await reset_budgets(db.engine, clock.now)
    assert result.reset["team"] == 1
    assert (await reset_budgets(db.engine, clock.now)).total == 0
    async with db.transaction() as s:
        team = await s.teams.get("team")
        assert team.spend == 0 and team.budget_reset_at == datetime(2025, 5, 1, tzinfo=UTC)
        monthly = await s.keys.get(MONTHLY)
        assert monthly.spend == 0 and monthly.budget_reset_at == datetime(2025, 5, 1, tzinfo=UTC)


async def test_rows_without_a_reset_time_are_scheduled_not_zeroed(
    db: Database, clock: FakeClock
) -> None:
    async with db.transaction() as s:
        await s.keys.create(VirtualKey(token=DAILY, spend=Decimal(2)))
    async with db.engine.begin() as conn:  # as an older version might have left it
        await conn.execute(
            sa.update(VirtualKey.__table__).values(budget_duration="1d", budget_reset_at=None)
        )
    result = await db.reset_budgets()  # the database's clock and timezone
    assert result.total == 0 and result.scheduled == 1
    async with db.transaction() as s:
        row = await s.keys.get(DAILY)
        assert row.spend == Decimal(2) and row.budget_reset_at == datetime(2025, 3, 13, tzinfo=UTC)


async def test_configured_timezone_and_invalid_stored_duration(
    db: Database, clock: FakeClock
) -> None:
    async with db.transaction() as s:
        await s.keys.create(VirtualKey(token=DAILY, budget_duration="1d", spend=Decimal(1)))
        await s.keys.create(VirtualKey(token=WEEKLY, spend=Decimal(1)))
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.update(VirtualKey.__table__)
            .where(VirtualKey.__table__.c.token == WEEKLY)
            .values(budget_duration="fortnight", budget_reset_at=clock.now - timedelta(days=1))
        )
    tokyo = ZoneInfo("Asia/Tokyo")
    # Midnight in Tokyo on 13 March is 15:00 UTC on the 12th.
    clock.now = datetime(2025, 3, 13, 15, 0, 1, tzinfo=UTC)
    await reset_budgets(db.engine, clock.now, tokyo)
    async with db.transaction() as s:
        row = await s.keys.get(DAILY)
        assert row.spend == 0
        assert row.budget_reset_at == datetime(2025, 3, 14, 15, 0, tzinfo=UTC)
        assert (await s.keys.get(WEEKLY)).spend == Decimal(1)  # skipped, logged, not fatal


async def test_a_refused_team_is_served_again_after_its_reset(
    db: Database, clock: FakeClock
) -> None:
    """The whole loop with a fake clock: spend in the database, the snapshot, the check."""
    async with db.transaction() as s:
        await s.teams.create(Team(team_id="team", max_budget=Decimal(1), budget_duration="1d"))
        await s.keys.create(VirtualKey(token=DAILY, team_id="team"))
    await apply_spend_batch(
        db.engine,
        [
            SpendRecord(
                request_id="r1",
                spend=Decimal("1.5"),
                start_time=clock.now,
                api_key=DAILY,
                team_id="team",
            )
        ],
    )
    guard = BudgetGuard(SpendLedger(), clock=clock)

    async def check() -> None:
        snapshot = await load_auth_snapshot(db.engine, clock.now)
        principal = Principal(
            PrincipalKind.KEY, key=snapshot.keys[DAILY], team=snapshot.teams["team"]
        )
        guard.check(charges_for(principal, None, snapshot))

    with pytest.raises(BudgetExceededError, match="resets at 2025-03-13T00:00:00"):
        await check()
    clock.now = datetime(2025, 3, 13, 0, 0, 1, tzinfo=UTC)
    await check()  # past its reset time: fresh before the reset job has run
    assert (await reset_budgets(db.engine, clock.now)).reset["team"] == 1
    await check()
    await apply_spend_batch(
        db.engine,
        [
            SpendRecord(
                request_id="r2",
                spend=Decimal(1),
                start_time=clock.now,
                api_key=DAILY,
                team_id="team",
            )
        ],
    )
    with pytest.raises(BudgetExceededError, match="resets at 2025-03-14T00:00:00"):
        await check()
