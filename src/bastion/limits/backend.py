"""The port every counter store implements (in-process, Redis)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bastion.limits.counters import Counter

# The prefix of every Redis key the limiter writes (general_settings.rate_limit_redis_prefix).
DEFAULT_PREFIX = "bastion:rl:"


@dataclass(slots=True)
class Decision:
    """The answer to one admission.

    Allowed: every counter was incremented, ``values`` holds each one's new value.
    Refused: nothing was incremented; ``refused`` is the index of the first counter
    at its limit and ``values[refused]`` its value. ``read`` holds the values of the
    extra keys the admission was asked to read (shared budget totals), when allowed.
    """

    allowed: bool
    window: int
    values: list[int] = field(default_factory=list)
    refused: int = -1
    read: list[object] = field(default_factory=list)


class CounterBackend(Protocol):
    name: str

    async def acquire(
        self,
        counters: Sequence[Counter],
        tokens: int,
        request_id: str,
        now: float,
        reads: Sequence[str] = (),
    ) -> Decision:
        """Check every counter and, only if none is at its limit, count the request
        (rpm +1, tpm +tokens, parallel: hold a slot for ``request_id``), atomically.
        ``reads``: keys whose values come back in the same round trip (a store that
        shares nothing returns none)."""
        ...

    async def settle(
        self, counters: Sequence[Counter], window: int, token_delta: int, request_id: str
    ) -> None:
        """After the call: correct tpm counters of ``window`` by ``token_delta``
        (real usage minus the reservation) and free ``request_id``'s parallel slots."""
        ...
