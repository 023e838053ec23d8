"""The spend writer process: batches cross the socket pair and land in the database
exactly once; the process survives signals meant for the gateway and runs niced."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from bastion.services.spend_process import SpendProcess
from bastion.services.spend_writer import encode_record
from bastion.services.writer_priority import NICENESS
from bastion.storage import Database
from bastion.storage.models import SpendLog
from bastion.storage.models.base import table_of
from bastion.storage.spend import SpendRecord
from bastion.storage.urls import normalize_database_url

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def encoded(request_id: str, spend: str = "0.000123456") -> bytes:
    return encode_record(
        SpendRecord(
            request_id=request_id,
            spend=Decimal(spend),
            start_time=T0,
            end_time=T0,
            model="gpt-4o-mini",
            model_group="gpt-4o-mini",
            prompt_tokens=12,
            completion_tokens=9,
            total_tokens=21,
            cached_tokens=3,
            request_tags=("batch",),
            metadata={"k": "v"},
        )
    )


async def _logged(db: Database) -> dict[str, tuple[Decimal, int, list[str]]]:
    table = table_of(SpendLog)
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(
                table.c.request_id, table.c.spend, table.c.cached_tokens, table.c.request_tags
            )
        )
        return {r.request_id: (r.spend, r.cached_tokens, r.request_tags) for r in rows}


def _niceness(pid: int) -> int | None:
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return None  # not Linux
    return int(stat.read_text().rsplit(")", 1)[1].split()[16])


def _process_name(pid: int) -> str | None:
    comm = Path(f"/proc/{pid}/comm")
    return comm.read_text().strip() if comm.exists() else None


async def test_batches_are_written_once_and_survive_signals(
    db: Database, migrated_url: str
) -> None:
    process = SpendProcess(normalize_database_url(migrated_url))
    try:
        assert await process.apply([encoded(f"r{i}") for i in range(3)]) == 3
        assert await process.apply([encoded("r0"), encoded("r3")]) == 1  # r0 already written
        pid = process._process.pid

        # Ctrl-C or SIGTERM to the gateway's process group must not kill the writer first.
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGINT)
        assert await process.apply([encoded("r4", "1.5")]) == 1
        assert process._process.pid == pid and process._process.is_alive()
        niceness = _niceness(pid)
        assert niceness is None or niceness >= NICENESS
        assert _process_name(pid) in (None, "bastion-spend")
    finally:
        await process.close()
    assert process._process is None

    logged = await _logged(db)
    assert sorted(logged) == ["r0", "r1", "r2", "r3", "r4"]
    assert logged["r1"] == (Decimal("0.000123456"), 3, ["batch"])
    assert logged["r4"][0] == Decimal("1.5")


async def test_dead_writer_is_replaced_by_the_next_batch(db: Database, migrated_url: str) -> None:
    process = SpendProcess(normalize_database_url(migrated_url))
    try:
        assert await process.apply([encoded("a")]) == 1
        first = process._process
        first.kill()
        first.join(5)
        assert await process.apply([encoded("b")]) == 1
        assert process._process.pid != first.pid
    finally:
        await process.close()
    assert sorted(await _logged(db)) == ["a", "b"]
