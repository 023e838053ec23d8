"""Spend made by this worker that the last auth snapshot does not include yet.

A budget check adds these amounts to the snapshot's ``spend``. Increments go into
an open batch; the spend writer seals a batch when it starts writing it and marks
it written when the database has it. A batch leaves the ledger once a snapshot
whose load started after the write has been installed, so nothing is counted
twice and nothing is missed while a write or a reload is in flight.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

EntityKey = tuple[str, str]  # ("key", token) / ("team", id) / ("user", id) / …


@dataclass
class _Batch:
    sums: dict[EntityKey, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    written_at: float | None = None


class SpendLedger:
    def __init__(self) -> None:
        self._open = _Batch()
        self._sealed: list[_Batch] = []

    def add(self, entities: Iterable[EntityKey], amount: Decimal) -> None:
        if amount:
            for entity in entities:
                self._open.sums[entity] += amount

    def pending(self, entity: EntityKey) -> Decimal:
        total = self._open.sums.get(entity, Decimal(0))
        for batch in self._sealed:
            total += batch.sums.get(entity, Decimal(0))
        return total

    def seal(self) -> _Batch:
        batch, self._open = self._open, _Batch()
        self._sealed.append(batch)
        return batch

    def written(self, batch: _Batch) -> None:
        batch.written_at = time.monotonic()

    def unseal(self, batch: _Batch) -> None:
        """A write failed: its amounts stay pending (and are retried by the writer)."""
        batch.written_at = None

    def snapshot_loaded(self, load_started: float) -> None:
        self._sealed = [
            b for b in self._sealed if b.written_at is None or b.written_at >= load_started
        ]
