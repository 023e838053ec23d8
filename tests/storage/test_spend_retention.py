"""Spend-log retention on SQLite and PostgreSQL with a fake clock: old rows go, daily
totals stay, and of several workers exactly one runs the job once per interval."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bastion.policy.durations import parse_duration
from bastion.services.spend_retention import JOB, SpendLogRetention, retention_cutoff
from bastion.storage import Database, SpendRecord
from bastion.storage.leases import release_lease, take_lease
from bastion.storage.models import DailySpend, SpendLog
from bastion.storage.models.base import table_of
from tests.storage.conftest import FakeClock


def _record(request_id: str, started: datetime, spend: str = "0.25") -> SpendRecord:
    return SpendRecord(
        request_id=request_id,
        spend=Decimal(spend),
        start_time=started,
        end_time=started,
        model_group="gpt-4o",
        end_user="cust",
        prompt_tokens=3,
        completion_tokens=2,
        total_tokens=5,
    )


async def _write(db: Database, records: list[SpendRecord]) -> None:
    """Rows as the spend writer leaves them: the ledger rows and one daily total each
    (inserted directly, so these tests do not depend on the writer's batching)."""
    async with db.engine.begin() as conn:
        await conn.execute(sa.insert(table_of(SpendLog)), [r.log_row() for r in records])
        await conn.execute(
            sa.insert(table_of(DailySpend)),
            [
                {
                    "date": r.start_time.date(),
                    "entity_type": "model",
                    "entity_id": r.request_id,
                    "model": r.model_key,
                    "spend": r.spend,
                    "requests": 1,
                }
                for r in records
            ],
        )


async def _ids(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set((await conn.execute(sa.text("SELECT request_id FROM spend_logs"))).scalars())


async def _daily_total(db: Database) -> tuple[Decimal, int]:
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text(
                    "SELECT sum(spend), sum(requests) FROM daily_spend WHERE entity_type = 'model'"
                )
            )
        ).one()
    spend = Decimal(str(row[0]))
    if db.dialect == "sqlite":  # whole nano-dollars on SQLite
        spend = spend / Decimal(10**9)
    return spend, int(row[1])


async def test_old_rows_are_deleted_and_daily_totals_kept(db: Database, clock: FakeClock) -> None:
    now = clock()
    await _write(
        db,
        [
            _record("old-1", now - timedelta(days=9)),
            _record("old-2", now - timedelta(days=7, seconds=1)),
            _record("edge", now - timedelta(days=7) + timedelta(seconds=1)),
            _record("new", now - timedelta(hours=1)),
        ],
    )
    retention = SpendLogRetention(db.engine, "7d", "1d", clock=clock, holder="w1")
    assert await retention.run_once() == 2
    assert await _ids(db) == {"edge", "new"}
    assert await _daily_total(db) == (Decimal("1.00"), 4)  # aggregates untouched

    # Not due again within the interval, even though more rows have aged since.
    clock.advance(hours=23)
    assert await retention.run_once() is None
    assert await _ids(db) == {"edge", "new"}
    clock.advance(hours=1)
    assert await retention.run_once() == 1
    assert await _ids(db) == {"new"}


async def test_one_worker_runs_the_job_per_interval(db: Database, clock: FakeClock) -> None:
    now = clock()
    await _write(db, [_record(f"r{i}", now - timedelta(days=40)) for i in range(5)])
    workers = [
        SpendLogRetention(db.engine, "30d", "6h", clock=clock, holder=f"w{i}") for i in range(4)
    ]
    results = await asyncio.gather(*(w.run_once() for w in workers))
    assert sorted(results, key=lambda r: r is None) == [5, None, None, None]

    await _write(db, [_record("late", clock() - timedelta(days=31))])
    assert [await w.run_once() for w in workers] == [None] * 4  # not due for anyone
    clock.advance(hours=6)
    results = [await w.run_once() for w in workers]
    assert results.count(1) == 1 and results.count(None) == 3
    assert await _ids(db) == set()


async def test_a_dead_runner_holds_the_job_until_its_lease_ends(
    db: Database, clock: FakeClock
) -> None:
    await _write(db, [_record("old", clock() - timedelta(days=2))])
    assert await take_lease(
        db.engine, JOB, "crashed", clock(), every=timedelta(days=1), ttl=timedelta(hours=1)
    )
    survivor = SpendLogRetention(db.engine, "1d", "1d", clock=clock, holder="alive")
    assert await survivor.run_once() is None
    clock.advance(minutes=59)
    assert await survivor.run_once() is None
    clock.advance(minutes=1)
    assert await survivor.run_once() == 1
    # The crashed holder's late release changes nothing: the job stays recorded as run.
    await release_lease(db.engine, JOB, "crashed", ran_at=None)
    assert await survivor.run_once() is None


async def test_a_failed_run_is_retried_by_the_next_poll(
    db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _write(db, [_record("old", clock() - timedelta(days=2))])
    import bastion.storage.spend as spend

    async def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(spend, "delete_spend_logs_older_than", broken)
    first = SpendLogRetention(db.engine, "1d", "1d", clock=clock, holder="first")
    with pytest.raises(RuntimeError, match="disk full"):
        await first.run_once()
    monkeypatch.undo()
    second = SpendLogRetention(db.engine, "1d", "1d", clock=clock, holder="second")
    assert await second.run_once() == 1  # lease released, run not recorded


def test_cutoff_subtracts_calendar_months_and_fixed_lengths() -> None:
    now = datetime(2025, 3, 31, 12, 0, tzinfo=UTC)
    assert retention_cutoff(now, parse_duration("1mo")) == datetime(2025, 2, 28, 12, tzinfo=UTC)
    assert retention_cutoff(now, parse_duration("3mo")) == datetime(2024, 12, 31, 12, tzinfo=UTC)
    assert retention_cutoff(now, parse_duration("24h")) == now - timedelta(days=1)
    assert retention_cutoff(now, parse_duration("7d")) == now - timedelta(days=7)


def test_bad_durations_are_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="maximum_spend_logs_retention_interval"):
        SpendLogRetention(None, "7d", "30x")  # type: ignore[arg-type]
