"""``routing_strategy``: which deployment of a group serves a request.

The choices are pure functions over the candidates and what the state store
(``routing/state_store.py``) knows about them; the small classes below only bind a
store and settings to them. Every strategy gets the deployments that are not cooling
down (and, for a retry, not tried yet) and returns one, or None when every candidate
is at its ``rpm``/``tpm`` capacity.

- ``simple-shuffle``: at random, in proportion to ``weight``/``rpm``/``tpm``.
- ``least-busy``: fewest requests in flight on this gateway.
- ``latency-based-routing``: lowest mean of the recent response times (time to
  the first byte for streams), any within ``lowest_latency_buffer`` of the best
  at random; a deployment with no samples yet counts as 0 s, so it is tried first.
- ``usage-based-routing``, ``usage-based-routing-v2``: fewest tokens this minute.
- ``cost-based-routing``: lowest input + output price per token; an unpriced
  deployment counts as $5 + $5 per token (LiteLLM's rule), so it is picked last.

The last three skip deployments whose ``rpm``/``tpm`` this minute would be
exceeded by this request (its estimated prompt tokens). Ties are broken at random.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bastion.core.deployment import Deployment
from bastion.routing.state_store import DEFAULT_LATENCY_TTL_S, DeploymentStateStore
from bastion.routing.strategy import pick_weighted

UNPRICED_COST_PER_TOKEN = 10.0  # LiteLLM: $5 input + $5 output when no price is known
_INF = float("inf")


class RouteHints:
    """What a strategy may need about the request; token counts are worked out lazily."""

    __slots__ = ("_estimate", "_tokens", "stream")

    def __init__(self, stream: bool = False, estimate: Callable[[], int] | None = None) -> None:
        self.stream = stream
        self._estimate = estimate
        self._tokens: int | None = None

    def input_tokens(self) -> int:
        if self._tokens is None:
            self._tokens = self._estimate() if self._estimate is not None else 0
        return self._tokens


NO_HINTS = RouteHints()


class Strategy(Protocol):
    name: str
    # What the gateway must report to the state store for this strategy.
    tracks_load: bool
    tracks_latency: bool

    def pick(
        self, candidates: Sequence[Deployment], rng: random.Random, hints: RouteHints
    ) -> Deployment | None: ...


# --- pure choices ---------------------------------------------------------------------


def lowest(
    candidates: Sequence[Deployment], scores: Sequence[float], rng: random.Random
) -> Deployment:
    """The candidate with the lowest score; ties at random."""
    best = min(scores)
    tied = [d for d, s in zip(candidates, scores, strict=True) if s == best]
    return tied[0] if len(tied) == 1 else tied[rng.randrange(len(tied))]


def within_buffer(
    candidates: Sequence[Deployment], scores: Sequence[float], buffer: float, rng: random.Random
) -> Deployment:
    """At random among the candidates whose score is within ``buffer`` (a fraction)
    of the lowest score: LiteLLM's ``lowest_latency_buffer``."""
    best = min(scores)
    limit = best + best * buffer
    close = [d for d, s in zip(candidates, scores, strict=True) if s <= limit]
    return close[0] if len(close) == 1 else close[rng.randrange(len(close))]


def capacity(deployment: Deployment) -> tuple[float, float]:
    """``(rpm, tpm)`` the deployment takes per minute (infinite when not set)."""
    info = deployment.model_info
    rpm = deployment.rpm or info.get("rpm") or _INF
    tpm = deployment.tpm or info.get("tpm") or _INF
    return float(rpm), float(tpm)


def has_room(deployment: Deployment, usage: tuple[int, int], input_tokens: int) -> bool:
    """Whether one more request of ``input_tokens`` fits this minute's rpm and tpm."""
    rpm, tpm = capacity(deployment)
    requests, tokens = usage
    return requests + 1 <= rpm and tokens + input_tokens <= tpm


def with_room(
    candidates: Sequence[Deployment],
    usage: Sequence[tuple[int, int]],
    input_tokens: int,
) -> tuple[list[Deployment], list[tuple[int, int]]]:
    kept: list[Deployment] = []
    kept_usage: list[tuple[int, int]] = []
    for deployment, used in zip(candidates, usage, strict=True):
        if has_room(deployment, used, input_tokens):
            kept.append(deployment)
            kept_usage.append(used)
    return kept, kept_usage


def price_per_token(input_cost: float | None, output_cost: float | None) -> float:
    if input_cost is None and output_cost is None:
        return UNPRICED_COST_PER_TOKEN
    return (input_cost if input_cost is not None else 5.0) + (
        output_cost if output_cost is not None else 5.0
    )


# --- strategies -----------------------------------------------------------------------


class SimpleShuffle:
    name = "simple-shuffle"
    tracks_load = False
    tracks_latency = False

    def pick(
        self, candidates: Sequence[Deployment], rng: random.Random, hints: RouteHints
    ) -> Deployment | None:
        return pick_weighted(candidates, rng)


class LeastBusy:
    name = "least-busy"
    tracks_load = True
    tracks_latency = False

    def __init__(self, store: DeploymentStateStore) -> None:
        self.store = store

    def pick(
        self, candidates: Sequence[Deployment], rng: random.Random, hints: RouteHints
    ) -> Deployment | None:
        if len(candidates) == 1:
            return candidates[0]
        return lowest(candidates, [self.store.in_flight(d.id) for d in candidates], rng)


@dataclass(slots=True)
class LatencyArgs:
    ttl: float = DEFAULT_LATENCY_TTL_S
    lowest_latency_buffer: float = 0.0

    @classmethod
    def parse(cls, args: Mapping[str, Any] | None) -> LatencyArgs:
        args = args or {}
        ttl = args.get("ttl", DEFAULT_LATENCY_TTL_S)
        buffer = args.get("lowest_latency_buffer", 0.0)
        return cls(ttl=float(ttl), lowest_latency_buffer=float(buffer))


class LowestLatency:
    name = "latency-based-routing"
    tracks_load = True  # rpm capacity needs the per-minute request count
    tracks_latency = True

    def __init__(self, store: DeploymentStateStore, args: LatencyArgs | None = None) -> None:
        self.store = store
        self.args = args or LatencyArgs()

    def pick(
        self, candidates: Sequence[Deployment], rng: random.Random, hints: RouteHints
    ) -> Deployment | None:
        store, ttl = self.store, self.args.ttl
        usage = [store.minute_usage(d.id) for d in candidates]
        roomy, _ = with_room(candidates, usage, _tokens_if_capped(candidates, hints))
        if not roomy:
            return None
        scores = []
        for d in roomy:
            seconds = None
            if hints.stream:
                seconds = store.latency(d.id, first_token=True, ttl=ttl)
            if seconds is None:
                seconds = store.latency(d.id, first_token=False, ttl=ttl)
            scores.append(seconds or 0.0)
        return within_buffer(roomy, scores, self.args.lowest_latency_buffer, rng)


class LowestUsage:
    """``usage-based-routing`` and ``-v2``: the fewest tokens used this minute."""

    tracks_load = True
    tracks_latency = False

    def __init__(self, store: DeploymentStateStore, name: str = "usage-based-routing") -> None:
        self.store = store
        self.name = name

    def pick(
        self, candidates: Sequence[Deployment], rng: random.Random, hints: RouteHints
    ) -> Deployment | None:
        usage = [self.store.minute_usage(d.id) for d in candidates]
        roomy, used = with_room(candidates, usage, _tokens_if_capped(candidates, hints))
        if not roomy:
            return None
        return lowest(roomy, [float(tokens) for _, tokens in used], rng)


class LowestCost:
    name = "cost-based-routing"
    tracks_load = True
    tracks_latency = False

    def __init__(self, store: DeploymentStateStore, cost_of: Callable[[Deployment], float]) -> None:
        self.store = store
        # Not cached here: the price book caches per deployment and forgets a
        # deployment whose settings change (stored models, reloads).
        self.cost = cost_of

    def pick(
        self, candidates: Sequence[Deployment], rng: random.Random, hints: RouteHints
    ) -> Deployment | None:
        usage = [self.store.minute_usage(d.id) for d in candidates]
        roomy, _ = with_room(candidates, usage, _tokens_if_capped(candidates, hints))
        if not roomy:
            return None
        return lowest(roomy, [self.cost(d) for d in roomy], rng)


def _tokens_if_capped(candidates: Sequence[Deployment], hints: RouteHints) -> int:
    """The prompt estimate, worked out only when some candidate has a tpm cap."""
    if any(capacity(d)[1] != _INF for d in candidates):
        return hints.input_tokens()
    return 0


def build_strategy(
    name: str,
    store: DeploymentStateStore,
    *,
    args: Mapping[str, Any] | None = None,
    cost_of: Callable[[Deployment], float] | None = None,
) -> Strategy:
    if name == "least-busy":
        return LeastBusy(store)
    if name == "latency-based-routing":
        return LowestLatency(store, LatencyArgs.parse(args))
    if name in ("usage-based-routing", "usage-based-routing-v2"):
        return LowestUsage(store, name)
    if name == "cost-based-routing":
        return LowestCost(store, cost_of or (lambda _d: UNPRICED_COST_PER_TOKEN))
    return SimpleShuffle()
