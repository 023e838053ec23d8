"""Per-deployment routing state behind one small port: usage, latency, cooldowns.

The strategies (``routing/strategies.py``) and the cooldown tracker read and write
this state only through ``DeploymentStateStore``. ``InMemoryStateStore`` keeps it in
the process (one worker). A shared backend (Redis, for several workers or replicas)
implements the same methods; reads on the routing path must stay local and cheap,
so such a backend is expected to answer reads from a local mirror it refreshes in
the background and to send writes without waiting (one pipeline per request).

Times are seconds from the store's clock (``time.time`` by default: wall-clock
seconds, so minutes line up across replicas, as LiteLLM's per-minute usage keys do).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

MINUTE_S = 60.0
DEFAULT_LATENCY_TTL_S = 3600.0
LATENCY_SAMPLES = 10


class DeploymentStateStore(Protocol):
    """What routing remembers about each deployment (keyed by deployment id)."""

    def now(self) -> float: ...

    # -- load: requests in flight, requests and tokens in the current minute
    def request_started(self, deployment_id: str) -> None:
        """One more request in flight, and one more request this minute."""

    def request_ended(self, deployment_id: str) -> None:
        """One request fewer in flight."""

    def add_tokens(self, deployment_id: str, tokens: int) -> None:
        """Tokens a finished call used, counted in the current minute."""

    def in_flight(self, deployment_id: str) -> int: ...

    def minute_usage(self, deployment_id: str) -> tuple[int, int]:
        """``(requests, tokens)`` counted in the current minute."""

    # -- latency: recent samples, seconds
    def add_latency(self, deployment_id: str, seconds: float, *, first_token: bool) -> None:
        """A response time (``first_token``: time to the first streamed byte)."""

    def latency(self, deployment_id: str, *, first_token: bool, ttl: float) -> float | None:
        """Mean of the recent samples no older than ``ttl``; None when there are none."""

    # -- cooldowns
    def count_failure(self, deployment_id: str, window: float) -> int:
        """Count a failure in the deployment's fixed window; returns the count so far."""

    def cool_down(self, deployment_id: str, until: float) -> None:
        """Skip the deployment until ``until``; its failure count starts again."""

    def cooling_until(self, deployment_id: str) -> float:
        """When the deployment's cooldown ends (0 when it is not cooling)."""

    def cooling_ids(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class OwnState:
    """One deployment's state as counted by this process (see ``own_state``)."""

    in_flight: int
    minute: int
    requests: int
    tokens: int
    latencies: list[tuple[float, float]]  # (when, seconds)
    first_tokens: list[tuple[float, float]]


@dataclass(slots=True)
class _State:
    in_flight: int = 0
    minute: int = -1
    requests: int = 0
    tokens: int = 0
    latencies: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=LATENCY_SAMPLES)
    )
    first_tokens: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=LATENCY_SAMPLES)
    )
    window_start: float = 0.0
    failures: int = 0
    cooling_until: float = 0.0


class InMemoryStateStore:
    """The single-process store: plain dicts, no locks (one event loop)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._cooling: set[str] = set()

    def now(self) -> float:
        return self._clock()

    def _state(self, deployment_id: str) -> _State:
        state = self._states.get(deployment_id)
        if state is None:
            state = self._states[deployment_id] = _State()
        return state

    def _this_minute(self, state: _State) -> _State:
        minute = int(self._clock() // MINUTE_S)
        if state.minute != minute:
            state.minute, state.requests, state.tokens = minute, 0, 0
        return state

    def request_started(self, deployment_id: str) -> None:
        state = self._this_minute(self._state(deployment_id))
        state.in_flight += 1
        state.requests += 1

    def request_ended(self, deployment_id: str) -> None:
        state = self._states.get(deployment_id)
        if state is not None and state.in_flight > 0:
            state.in_flight -= 1

    def add_tokens(self, deployment_id: str, tokens: int) -> None:
        if tokens > 0:
            self._this_minute(self._state(deployment_id)).tokens += tokens

    def in_flight(self, deployment_id: str) -> int:
        state = self._states.get(deployment_id)
        return state.in_flight if state is not None else 0

    def minute_usage(self, deployment_id: str) -> tuple[int, int]:
        state = self._states.get(deployment_id)
        if state is None:
            return 0, 0
        state = self._this_minute(state)
        return state.requests, state.tokens

    def add_latency(self, deployment_id: str, seconds: float, *, first_token: bool) -> None:
        if seconds != seconds or seconds < 0:  # NaN or negative: a broken clock reading
            return
        state = self._state(deployment_id)
        samples = state.first_tokens if first_token else state.latencies
        samples.append((self._clock(), seconds))

    def latency(self, deployment_id: str, *, first_token: bool, ttl: float) -> float | None:
        state = self._states.get(deployment_id)
        if state is None:
            return None
        samples = state.first_tokens if first_token else state.latencies
        oldest = self._clock() - ttl
        recent = [value for at, value in samples if at >= oldest]
        return sum(recent) / len(recent) if recent else None

    def count_failure(self, deployment_id: str, window: float) -> int:
        state = self._state(deployment_id)
        now = self._clock()
        if state.failures == 0 or now - state.window_start >= window:
            state.window_start, state.failures = now, 0
        state.failures += 1
        return state.failures

    def cool_down(self, deployment_id: str, until: float) -> None:
        state = self._state(deployment_id)
        state.cooling_until = until
        state.failures = 0
        self._cooling.add(deployment_id)

    def cooling_until(self, deployment_id: str) -> float:
        if deployment_id not in self._cooling:  # the common case: one set lookup
            return 0.0
        return self._states[deployment_id].cooling_until

    def deployment_ids(self) -> list[str]:
        """Every deployment this store holds state for."""
        return list(self._states)

    def own_state(self, deployment_id: str) -> OwnState:
        """This process's load and latency samples of a deployment (a shared store
        publishes them for the other replicas)."""
        state = self._states.get(deployment_id)
        if state is None:
            return OwnState(0, -1, 0, 0, [], [])
        state = self._this_minute(state)
        return OwnState(
            state.in_flight,
            state.minute,
            state.requests,
            state.tokens,
            list(state.latencies),
            list(state.first_tokens),
        )

    def cooling_ids(self) -> list[str]:
        now = self._clock()
        ended = [i for i in self._cooling if self._states[i].cooling_until <= now]
        self._cooling.difference_update(ended)
        return sorted(self._cooling)
