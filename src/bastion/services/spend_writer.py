"""Spend leaves the request path through a queue and reaches the database in batches.

A record is encoded when it is queued (``SpendRecord.to_wire`` as JSON bytes: a few
microseconds spread over requests instead of a burst at flush time, a fraction of the
memory of the objects, and nothing for the garbage collector to walk). Every
``interval`` seconds (LiteLLM's ``proxy_batch_write_at``) the queued records are
written in one transaction (storage.spend.apply_spend_batch: idempotent per
request id). A failed write keeps the records and retries on the next tick, so
spend made while the database is away is written when it returns; ``stop`` makes
a last attempt and, if the database is still away, appends the records to a spill
file that the next start writes first. Nothing is lost on a clean shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from bastion.policy.ledger import SpendLedger
from bastion.storage.spend import SpendRecord

logger = logging.getLogger("bastion.spend")

DEFAULT_INTERVAL_S = 10.0
# A batch is written as soon as it is this big, whatever the interval: memory stays
# bounded under load and each transaction stays short.
FLUSH_AT = 500
MAX_QUEUE = 200_000

# Writes a batch of encoded records (JSON arrays of SpendRecord.to_wire()).
ApplyBatch = Callable[[list[bytes]], Awaitable[Any]]


class SpendWriter:
    def __init__(
        self,
        apply: ApplyBatch,
        ledger: SpendLedger,
        *,
        interval: float = DEFAULT_INTERVAL_S,
        spill_path: Path | None = None,
    ) -> None:
        self._apply = apply
        self.ledger = ledger
        self.interval = interval
        self.spill_path = spill_path
        self._queue: list[bytes] = []
        self._task: asyncio.Task[None] | None = None
        self._early: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.failures = 0

    def record(self, record: SpendRecord) -> None:
        if len(self._queue) >= MAX_QUEUE:
            logger.error("spend queue full (%d records): dropping the oldest", MAX_QUEUE)
            del self._queue[: MAX_QUEUE // 10]
        self._queue.append(encode_record(record))
        if len(self._queue) >= FLUSH_AT and self._early is None and self._task is not None:
            self._early = asyncio.create_task(self._flush_early())

    async def _flush_early(self) -> None:
        # Records that arrived during a write are written next, not at the next tick.
        try:
            while len(self._queue) >= FLUSH_AT and await self.flush():
                pass
        finally:
            self._early = None

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def start(self) -> None:
        self._load_spill()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._early is not None:
            await asyncio.gather(self._early, return_exceptions=True)
        if not await self.flush() and self._queue:
            self._spill()

    async def flush(self) -> bool:
        """Write everything queued; False (and nothing lost) if the database refused."""
        async with self._lock:
            if not self._queue:
                return True
            records, self._queue = self._queue, []
            batch = self.ledger.seal()
            try:
                await self._apply(records)
            except Exception as exc:
                self.failures += 1
                self._queue[:0] = records
                self.ledger.unseal(batch)
                logger.warning(
                    "could not write %d spend records (kept, retried): %s: %s",
                    len(records),
                    type(exc).__name__,
                    exc,
                )
                return False
            self.ledger.written(batch)
            return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    def _spill(self) -> None:
        if self.spill_path is None:
            logger.error("database away at shutdown: %d spend records lost", len(self._queue))
            return
        target = self.spill_path.with_name(f"{self.spill_path.name}.{os.getpid()}")
        with target.open("ab") as out:
            for encoded in self._queue:
                out.write(encoded + b"\n")
        logger.warning(
            "database away at shutdown: %d spend records kept in %s, written at next start",
            len(self._queue),
            target,
        )
        self._queue = []

    def _load_spill(self) -> None:
        """Re-queue what earlier processes spilled; a file is claimed by renaming it, so
        two workers starting together never read the same records."""
        if self.spill_path is None:
            return
        for found in sorted(self.spill_path.parent.glob(self.spill_path.name + "*")):
            claimed = found.with_name(f"{found.name}.claimed-{os.getpid()}")
            if found.name.count(".claimed-"):
                continue
            try:
                found.rename(claimed)
            except OSError:
                continue  # another worker took it
            loaded = 0
            for line in claimed.read_bytes().splitlines():
                try:
                    self._queue.append(_requeued(line))
                    loaded += 1
                except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
                    logger.error("skipping a damaged line in %s", found)
            claimed.unlink()
            logger.info("re-queued %d spend records from %s", loaded, found)


def encode_record(record: SpendRecord) -> bytes:
    return orjson.dumps(record.to_wire(), default=str)


def _requeued(line: bytes) -> bytes:
    """A spilled line, checked; files spilled by earlier versions hold log rows (objects)."""
    value = orjson.loads(line)
    if isinstance(value, dict):
        return encode_record(record_from_row(value))
    SpendRecord.from_wire(value)
    return line


def record_from_row(row: dict[str, Any]) -> SpendRecord:
    from datetime import datetime
    from decimal import Decimal

    def when(value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    start = when(row["start_time"])
    assert start is not None
    return SpendRecord(
        request_id=row["request_id"],
        spend=Decimal(str(row["spend"])),
        start_time=start,
        end_time=when(row.get("end_time")),
        completion_start_time=when(row.get("completion_start_time")),
        call_type=row.get("call_type", "completion"),
        status=row.get("status", "success"),
        api_key=row.get("api_key"),
        user_id=row.get("user"),
        team_id=row.get("team_id"),
        organization_id=row.get("organization_id"),
        end_user=row.get("end_user"),
        model=row.get("model"),
        model_id=row.get("model_id"),
        model_group=row.get("model_group"),
        api_base=row.get("api_base"),
        custom_llm_provider=row.get("custom_llm_provider"),
        prompt_tokens=int(row.get("prompt_tokens", 0)),
        completion_tokens=int(row.get("completion_tokens", 0)),
        total_tokens=int(row.get("total_tokens", 0)),
        cached_tokens=int(row.get("cached_tokens", 0)),
        cache_creation_tokens=int(row.get("cache_creation_tokens", 0)),
        reasoning_tokens=int(row.get("reasoning_tokens", 0)),
        request_tags=tuple(row.get("request_tags") or ()),
        cache_hit=bool(row.get("cache_hit", False)),
        messages=row.get("messages"),
        response=row.get("response"),
        metadata=row.get("metadata") or {},
    )
