"""The spend queue: records are encoded when queued, written in batches, kept when the
database refuses, spilled at shutdown and re-queued at the next start."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from bastion.policy.ledger import SpendLedger
from bastion.services import spend_writer
from bastion.services.spend_writer import SpendWriter, encode_record
from bastion.storage.spend import SpendRecord

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def full_record(request_id: str = "req-1") -> SpendRecord:
    return SpendRecord(
        request_id=request_id,
        spend=Decimal("0.000123456"),
        start_time=T0,
        end_time=T0 + timedelta(milliseconds=250),
        completion_start_time=T0 + timedelta(milliseconds=40),
        call_type="acompletion",
        status="failure",
        api_key="ab" * 32,
        user_id="ann",
        team_id="search",
        organization_id="org",
        end_user="cust-9",
        model="gpt-4o-2024-08-06",
        model_id="dep-1",
        model_group="gpt-4o",
        api_base="https://api.example/v1",
        custom_llm_provider="openai",
        prompt_tokens=100,
        completion_tokens=20,
        total_tokens=120,
        cached_tokens=30,
        cache_creation_tokens=5,
        reasoning_tokens=7,
        cache_hit=True,
        request_tags=("a", "b"),
        messages=[{"role": "user", "content": "hi"}],
        response={"choices": []},
        metadata={"x": 1},
    )


def test_the_wire_format_round_trips_every_field() -> None:
    record = full_record()
    assert SpendRecord.from_wire(orjson.loads(encode_record(record))) == record


def test_wire_round_trip_keeps_missing_times_and_exact_money() -> None:
    record = SpendRecord(request_id="r", spend=Decimal("1E-9"), start_time=T0)
    back = SpendRecord.from_wire(orjson.loads(encode_record(record)))
    assert back == record
    assert back.end_time is None and back.spend == Decimal("0.000000001")


class FakeDatabase:
    def __init__(self) -> None:
        self.batches: list[list[SpendRecord]] = []
        self.refuse = False
        self.started = asyncio.Event()
        self.release: asyncio.Event | None = None

    async def apply(self, encoded: list[bytes]) -> int:
        self.started.set()
        if self.release is not None:
            await self.release.wait()
        if self.refuse:
            raise ConnectionRefusedError("database away")
        self.batches.append([SpendRecord.from_wire(orjson.loads(e)) for e in encoded])
        return len(encoded)


async def test_flush_writes_what_was_queued_and_a_refused_batch_is_kept() -> None:
    database = FakeDatabase()
    writer = SpendWriter(database.apply, SpendLedger(), interval=3600)
    writer.record(full_record("a"))
    writer.record(full_record("b"))
    database.refuse = True
    assert not await writer.flush()
    assert writer.queued == 2 and writer.failures == 1
    database.refuse = False
    assert await writer.flush()
    assert [r.request_id for r in database.batches[0]] == ["a", "b"]
    assert database.batches[0][0] == full_record("a")
    assert writer.queued == 0


async def test_records_arriving_during_a_write_are_written_next_without_waiting_a_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spend_writer, "FLUSH_AT", 3)
    database = FakeDatabase()
    database.release = asyncio.Event()
    writer = SpendWriter(database.apply, SpendLedger(), interval=3600)
    await writer.start()
    try:
        for i in range(3):
            writer.record(full_record(f"first-{i}"))
        await asyncio.wait_for(database.started.wait(), 5)
        for i in range(4):  # arrive while the first batch is being written
            writer.record(full_record(f"second-{i}"))
        database.release.set()
        for _ in range(200):
            if sum(len(b) for b in database.batches) == 7:
                break
            await asyncio.sleep(0.01)
        assert [len(b) for b in database.batches] == [3, 4]
    finally:
        await writer.stop()


def _spilled(directory: Path) -> list[Path]:
    return list(directory.glob("spend.spill*"))


async def test_spend_is_spilled_when_the_database_is_away_at_shutdown_and_requeued(
    tmp_path: Path,
) -> None:
    spill = tmp_path / "spend.spill"
    database = FakeDatabase()
    database.refuse = True
    writer = SpendWriter(database.apply, SpendLedger(), interval=3600, spill_path=spill)
    await writer.start()
    writer.record(full_record("kept-1"))
    writer.record(full_record("kept-2"))
    await writer.stop()
    spilled = _spilled(tmp_path)
    assert len(spilled) == 1
    # A file written by an earlier version holds log rows (JSON objects): still read.
    legacy = full_record("legacy")
    with spilled[0].open("ab") as out:
        out.write(orjson.dumps(legacy.log_row(), default=str) + b"\n")
        out.write(b"{not json\n")

    database.refuse = False
    again = SpendWriter(database.apply, SpendLedger(), interval=3600, spill_path=spill)
    await again.start()
    assert again.queued == 3
    await again.stop()
    written = {r.request_id: r for r in database.batches[0]}
    assert sorted(written) == ["kept-1", "kept-2", "legacy"]
    assert written["kept-1"] == full_record("kept-1")
    assert written["legacy"] == full_record("legacy")
    assert not _spilled(tmp_path)
