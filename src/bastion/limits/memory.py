"""Counters in this process: exact for one worker, per worker with several."""

from __future__ import annotations

from collections.abc import Sequence

from bastion.limits.backend import Decision
from bastion.limits.counters import Counter, Kind, window_of


class MemoryBackend:
    name = "memory"

    def __init__(self) -> None:
        # (kind, scope) -> (window, value) for rpm/tpm; scope -> requests in flight.
        self._windows: dict[tuple[Kind, str], tuple[int, int]] = {}
        self._parallel: dict[str, int] = {}

    async def acquire(
        self,
        counters: Sequence[Counter],
        tokens: int,
        request_id: str,
        now: float,
        reads: Sequence[str] = (),
    ) -> Decision:
        return self.acquire_now(counters, tokens, now)

    def acquire_now(self, counters: Sequence[Counter], tokens: int, now: float) -> Decision:
        window = window_of(now)
        values: list[int] = []
        for index, counter in enumerate(counters):
            used = self._value(counter, window)
            values.append(used)
            if used >= counter.limit:
                return Decision(False, window, values, index)
        for index, counter in enumerate(counters):
            if counter.kind is Kind.PARALLEL:
                self._parallel[counter.scope] = values[index] + 1
                values[index] += 1
            else:
                step = 1 if counter.kind is Kind.RPM else tokens
                values[index] += step
                self._windows[(counter.kind, counter.scope)] = (window, values[index])
        return Decision(True, window, values)

    async def settle(
        self, counters: Sequence[Counter], window: int, token_delta: int, request_id: str
    ) -> None:
        self.settle_now(counters, window, token_delta)

    def settle_now(self, counters: Sequence[Counter], window: int, token_delta: int) -> None:
        for counter in counters:
            if counter.kind is Kind.PARALLEL:
                left = self._parallel.get(counter.scope, 0) - 1
                if left > 0:
                    self._parallel[counter.scope] = left
                else:
                    self._parallel.pop(counter.scope, None)
            elif counter.kind is Kind.TPM and token_delta:
                entry = self._windows.get((counter.kind, counter.scope))
                if entry is not None and entry[0] == window:
                    self._windows[(counter.kind, counter.scope)] = (window, entry[1] + token_delta)

    def _value(self, counter: Counter, window: int) -> int:
        if counter.kind is Kind.PARALLEL:
            return self._parallel.get(counter.scope, 0)
        entry = self._windows.get((counter.kind, counter.scope))
        return entry[1] if entry is not None and entry[0] == window else 0
