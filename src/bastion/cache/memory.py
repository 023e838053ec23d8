"""The in-process store: least recently used entries go first, bounded by bytes,
each entry expiring after its TTL. One worker's memory: with several workers or
replicas use Redis (``cache_params.type: redis``)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

# Bytes counted per entry beyond its key and value (the dict slot, tuple, objects).
ENTRY_OVERHEAD = 120


class MemoryStore:
    name = "local"

    def __init__(
        self,
        max_bytes: int,
        max_item_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_item_bytes = min(max_item_bytes, max_bytes)
        self.clock = clock
        self.size = 0
        self.evictions = 0
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._entries.clear()
        self.size = 0

    async def get(self, key: str) -> bytes | None:
        return self.get_now(key)

    def get_now(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if self.clock() >= expires:
            self._drop(key, value)
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: bytes, ttl: float) -> bool:
        """Stores ``value`` for ``ttl`` seconds; False when it is too large to keep."""
        cost = _cost(key, value)
        if cost > self.max_item_bytes:
            return False
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= _cost(key, old[1])
        while self._entries and self.size + cost > self.max_bytes:
            oldest, (_, dropped) = self._entries.popitem(last=False)
            self.size -= _cost(oldest, dropped)
            self.evictions += 1
        self._entries[key] = (self.clock() + ttl, value)
        self.size += cost
        return True

    def usable(self) -> bool:
        return True

    def status(self) -> dict[str, Any]:
        return {
            "entries": len(self._entries),
            "bytes": self.size,
            "max_bytes": self.max_bytes,
            "evictions": self.evictions,
        }

    def _drop(self, key: str, value: bytes) -> None:
        del self._entries[key]
        self.size -= _cost(key, value)


def _cost(key: str, value: bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD
