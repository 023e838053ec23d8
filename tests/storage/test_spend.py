"""Batched spend writes: exact totals, idempotency, aggregates, reports, retention,
concurrency, and the auth snapshot the gateway caches."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from bastion.core.errors import InvalidRequestError
from bastion.storage import (
    Database,
    SpendRecord,
    apply_spend_batch,
    create_engine,
    delete_spend_logs_older_than,
    hash_key,
)
from bastion.storage.models import (
    Budget,
    EndUser,
    Organization,
    Team,
    User,
    VirtualKey,
)
from tests.storage.conftest import FakeClock

T0 = datetime(2025, 3, 12, 10, 0, tzinfo=UTC)
KEY_A, KEY_B = hash_key("sk-a"), hash_key("sk-b")


async def _tenancy(db: Database) -> None:
    async with db.transaction() as s:
        await s.organizations.create(Organization(organization_id="org"))
        await s.teams.create(Team(team_id="team", organization_id="org", max_budget=Decimal(10)))
        await s.users.create(User(user_id="ann"))
        await s.members.add("team", "ann")
        await s.keys.create(
            VirtualKey(token=KEY_A, team_id="team", user_id="ann", organization_id="org")
        )
        await s.keys.create(VirtualKey(token=KEY_B, team_id="team"))


def record(i: int, spend: str, *, api_key: str = KEY_A, **fields: object) -> SpendRecord:
    base: dict[str, object] = {
        "team_id": "team",
        "user_id": "ann" if api_key == KEY_A else None,
        "organization_id": "org",
        "end_user": "cust-1",
        "model": "gpt-4o-2024-08-06",
        "model_group": "gpt-4o",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "cached_tokens": 2,
        "reasoning_tokens": 1,
    }
    base.update(fields)
    return SpendRecord(
        request_id=f"req-{i:05d}",
        spend=Decimal(spend),
        start_time=T0 + timedelta(seconds=i),
        end_time=T0 + timedelta(seconds=i, milliseconds=500),
        api_key=api_key,
        **base,  # type: ignore[arg-type]
    )


async def _spends(db: Database) -> dict[str, Decimal]:
    async with db.transaction() as s:
        return {
            "key_a": (await s.keys.get(KEY_A)).spend,
            "key_b": (await s.keys.get(KEY_B)).spend,
            "team": (await s.teams.get("team")).spend,
            "user": (await s.users.get("ann")).spend,
            "member": (await s.members.get("team", "ann")).spend,
            "org": (await s.organizations.get("org")).spend,
            "end_user": (await s.end_users.get("cust-1")).spend,
        }


async def test_many_small_increments_add_up_exactly(db: Database) -> None:
    await _tenancy(db)
    # 1,000 requests at 0.000123457 USD each (a realistic small-model call): floats drift,
    # Decimal must land exactly on 0.123457 USD.
    batch = [record(i, "0.000123457") for i in range(1000)]
    for start in range(0, 1000, 100):
        result = await apply_spend_batch(db.engine, batch[start : start + 100])
        assert result.applied == 100 and result.duplicates == 0
    spends = await _spends(db)
    exact = Decimal("0.123457")
    assert spends["key_a"] == exact and spends["team"] == exact and spends["user"] == exact
    assert spends["member"] == exact and spends["org"] == exact and spends["end_user"] == exact
    assert spends["key_b"] == Decimal(0)
    async with db.transaction() as s:
        assert (await s.keys.get(KEY_A)).last_active == T0 + timedelta(
            seconds=999, milliseconds=500
        )


async def test_batches_are_idempotent_per_request_id(db: Database) -> None:
    await _tenancy(db)
    batch = [record(i, "0.01") for i in range(10)]
    first = await apply_spend_batch(db.engine, batch)
    assert first.applied == 10 and first.spend == Decimal("0.1")
    # A retried batch (the writer timed out after the commit) adds nothing.
    retry = await apply_spend_batch(db.engine, batch)
    assert retry.applied == 0 and retry.duplicates == 10 and retry.spend == 0
    # A batch mixing old and new requests adds only the new ones, and duplicates inside
    # one batch count once.
    mixed = [*batch[5:], record(10, "0.5"), record(10, "0.5")]
    third = await apply_spend_batch(db.engine, mixed)
    assert (third.applied, third.duplicates) == (1, 5)
    spends = await _spends(db)
    assert spends["key_a"] == spends["team"] == Decimal("0.6")
    async with db.transaction() as s:
        [row] = await s.spend.by_day(T0.date(), T0.date())
        assert row.totals.requests == 11 and row.totals.spend == Decimal("0.6")
    assert await apply_spend_batch(db.engine, []) == first.__class__(0, 0, Decimal(0))


async def test_unknown_entities_do_not_fail_the_batch(db: Database) -> None:
    await _tenancy(db)
    rec = record(1, "1", api_key=hash_key("sk-deleted"), team_id="gone", user_id="gone")
    result = await apply_spend_batch(db.engine, [rec])
    assert result.applied == 1  # the ledger keeps it; there is simply no row to add to
    async with db.transaction() as s:
        log = await s.spend.get_log("req-00001")
        assert log is not None and log.spend == Decimal(1) and log.team_id == "gone"


async def test_daily_aggregates_and_reports(db: Database) -> None:
    await _tenancy(db)
    day2 = timedelta(days=1)
    batch = [
        record(1, "0.25"),
        record(2, "0.75", api_key=KEY_B, model_group="claude", end_user=None),
        record(3, "1.5", status="failure", prompt_tokens=0, completion_tokens=0, total_tokens=0),
        SpendRecord(
            request_id="req-day2",
            spend=Decimal("2"),
            start_time=T0 + day2,
            api_key=KEY_A,
            team_id="team",
            user_id="ann",
            model_group="gpt-4o",
            total_tokens=100,
            cache_creation_tokens=40,
            messages=[{"role": "user", "content": "hi"}],
            response={"choices": []},
            metadata={"user_api_key_alias": "a"},
            request_tags=["batch"],
            cache_hit=True,
        ),
    ]
    await apply_spend_batch(db.engine, batch)
    d1, d2 = T0.date(), (T0 + day2).date()
    async with db.transaction() as s:
        teams = await s.spend.by_entity("team", d1, d2)
        assert [(t.entity_id, t.totals.spend, t.totals.requests) for t in teams] == [
            ("team", Decimal("4.5"), 4)
        ]
        assert teams[0].totals.failed_requests == 1 and teams[0].totals.successful_requests == 3
        assert teams[0].totals.cache_creation_tokens == 40 and teams[0].totals.cached_tokens == 6
        keys = await s.spend.by_entity("key", d1, d2)
        assert [(k.entity_id, k.totals.spend) for k in keys] == [
            (KEY_A, Decimal("3.75")),
            (KEY_B, Decimal("0.75")),
        ]
        models = await s.spend.by_entity("model", d1, d1)
        assert {m.entity_id: m.totals.spend for m in models} == {
            "gpt-4o": Decimal("1.75"),
            "claude": Decimal("0.75"),
        }
        assert [m.entity_id for m in await s.spend.by_entity("model", d1, d1, limit=1)] == [
            "gpt-4o"
        ]
        users = await s.spend.by_entity("user", d1, d2)
        assert [(u.entity_id, u.totals.spend) for u in users] == [("ann", Decimal("3.75"))]
        days = await s.spend.by_day(d1, d2)
        assert [(d.date, d.totals.spend) for d in days] == [(d1, Decimal("2.5")), (d2, Decimal(2))]
        team_days = await s.spend.by_day(d1, d2, entity_type="team", entity_id="team")
        assert sum(d.totals.spend for d in team_days) == Decimal("4.5")
        report = await s.spend.breakdown("team", d1, d2)
        assert [(r.date, r.model, r.totals.spend) for r in report] == [
            (d1, "claude", Decimal("0.75")),
            (d1, "gpt-4o", Decimal("1.75")),
            (d2, "gpt-4o", Decimal(2)),
        ]
        per_model = await s.spend.model_spend("key", KEY_A, d1, d2)
        assert per_model == {"gpt-4o": Decimal("3.75")}
        logs = await s.spend.logs(api_key=KEY_A)
        assert [log.request_id for log in logs.items] == ["req-day2", "req-00003", "req-00001"]
        stored = logs.items[0]
        assert stored.messages == [{"role": "user", "content": "hi"}]
        assert stored.metadata_ == {"user_api_key_alias": "a"} and stored.cache_hit
        assert stored.request_tags == ["batch"]
        assert (await s.spend.logs(user_id="ann", start=T0 + day2)).total == 1
        assert (await s.spend.logs(team_id="team", end=T0 + day2)).total == 3
        assert (await s.spend.logs(request_id="req-00002")).items[0].model == "gpt-4o-2024-08-06"
        with pytest.raises(InvalidRequestError, match="unknown entity type 'project'"):
            await s.spend.by_entity("project", d1, d2)
        with pytest.raises(InvalidRequestError, match="end_date is before start_date"):
            await s.spend.by_day(d2, d1)


async def test_retention_deletes_old_logs_only(db: Database) -> None:
    await _tenancy(db)
    batch = [record(i, "0.1") for i in range(12)]
    await apply_spend_batch(db.engine, batch)
    cutoff = T0 + timedelta(seconds=5)
    assert await delete_spend_logs_older_than(db.engine, cutoff, chunk=4) == 5
    async with db.transaction() as s:
        remaining = await s.spend.logs(size=100)
        assert remaining.total == 7
        assert min(r.start_time for r in remaining.items) == cutoff
        # Aggregates are kept.
        [day] = await s.spend.by_day(T0.date(), date(2025, 3, 13))
        assert day.totals.spend == Decimal("1.2")


async def test_concurrent_writers_lose_no_increment(db: Database, migrated_url: str) -> None:
    if db.dialect != "postgresql":
        pytest.skip("two writers on one SQLite file serialise; the replica case is PostgreSQL")
    await _tenancy(db)
    other = create_engine(migrated_url)
    try:

        async def writer(engine: object, offset: int) -> None:
            for n in range(10):
                # Both writers touch the same key, team, user, org, end user and daily rows
                # (passed in opposite orders; the writer sorts them to avoid deadlocks).
                batch = [record(offset + n * 20 + i, "0.001") for i in range(20)]
                if offset:
                    batch.reverse()
                await apply_spend_batch(engine, batch)  # type: ignore[arg-type]

        await asyncio.gather(writer(db.engine, 0), writer(other, 10_000))
    finally:
        await other.dispose()
    spends = await _spends(db)
    assert spends["key_a"] == spends["team"] == spends["end_user"] == Decimal("0.4")
    async with db.transaction() as s:
        [day] = await s.spend.by_day(T0.date(), T0.date() + timedelta(days=1))
        assert day.totals.requests == 400 and day.totals.spend == Decimal("0.4")


async def test_auth_snapshot(db: Database, clock: FakeClock) -> None:
    await _tenancy(db)
    async with db.transaction() as s:
        budget = await s.budgets.create(Budget(budget_id="b", max_budget=Decimal(3), rpm_limit=9))
        await s.end_users.create(EndUser(user_id="cust", budget_id=budget.budget_id))
        await s.keys.update(KEY_B, {"blocked": True, "expires": clock.now - timedelta(days=1)})
        await s.keys.regenerate(
            KEY_A, hash_key("sk-a2"), grace_until=clock.now + timedelta(hours=1)
        )
        await s.keys.create(VirtualKey(token=hash_key("sk-c")))
        await s.keys.regenerate(
            hash_key("sk-c"), hash_key("sk-c2"), grace_until=clock.now - timedelta(seconds=1)
        )
    await apply_spend_batch(db.engine, [record(1, "0.5", api_key=hash_key("sk-a2"), user_id="ann")])
    snap = await db.load_auth_snapshot()
    assert snap.loaded_at == clock.now
    assert set(snap.keys) == {hash_key("sk-a2"), KEY_B, hash_key("sk-c2")}
    a2 = snap.keys[hash_key("sk-a2")]
    assert a2.team_id == "team" and a2.budget.spend == Decimal("0.5")
    assert snap.keys[KEY_B].blocked and snap.keys[KEY_B].expires == clock.now - timedelta(days=1)
    assert set(snap.previous_tokens) == {KEY_A}  # sk-c's grace already ended
    assert snap.previous_tokens[KEY_A].key_token == hash_key("sk-a2")
    assert snap.teams["team"].budget.max_budget == Decimal(10)
    assert snap.teams["team"].budget.spend == Decimal("0.5")
    assert snap.users["ann"].budget.spend == Decimal("0.5")
    assert snap.organizations["org"].budget.spend == Decimal("0.5")
    assert snap.memberships[("team", "ann")].spend == Decimal("0.5")
    assert snap.end_users["cust"].budget_id == "b"
    assert snap.budgets["b"].budget.rpm_limit == 9
    assert snap.end_users["cust-1"].spend == Decimal("0.5")  # created on first spend


async def test_without_spend_logs_the_entities_and_daily_totals_still_add_up(db: Database) -> None:
    await _tenancy(db)
    batch = [record(i, "0.25") for i in range(4)]
    result = await apply_spend_batch(db.engine, batch, write_logs=False)
    assert result.applied == 4
    spends = await _spends(db)
    assert spends["key_a"] == spends["team"] == spends["end_user"] == Decimal("1.00")
    async with db.engine.connect() as conn:
        logs = (await conn.exec_driver_sql("SELECT count(*) FROM spend_logs")).scalar()
        daily = (
            await conn.exec_driver_sql(
                "SELECT sum(requests) FROM daily_spend WHERE entity_type = 'key'"
            )
        ).scalar()
    assert logs == 0
    assert daily == 4
