"""What the request path asks of the response cache.

For a request :meth:`ResponseCache.plan` says whether the cache applies and under
which key (None: it does not, and nothing more is done); :meth:`lookup` returns a
stored answer; :meth:`keep_answer` / :meth:`recording` store a fresh one after it
has been sent. With :attr:`ResponseCache.read_at_admission` (a Redis store shared
with the rate limiter) the request path has the entry read in the limiter's
admission round trip instead, and hands what came back to :meth:`found`. Either
way the entry is read after the rate limits admitted the request (a hit counts
against them, as in LiteLLM). With ``litellm_settings.cache`` off there is no
ResponseCache at all, so the request path pays nothing (no key is computed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bastion.cache.controls import CacheControls, parse_controls
from bastion.cache.entry import CachedAnswer, stream_answer
from bastion.cache.in_flight import Lead, MissesInFlight
from bastion.cache.keys import cache_key
from bastion.cache.recording import RecordingStream
from bastion.cache.settings import CacheSettings
from bastion.core.deployment import Deployment, Operation
from bastion.core.dialect import Dialect
from bastion.providers.base import ProviderResponse, ProviderStream
from bastion.routing.model_table import ModelTable

logger = logging.getLogger("bastion.cache")


class CacheStore(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def usable(self) -> bool:
        """False while the store cannot be reached (the cache is bypassed)."""

    async def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes, ttl: float) -> bool:
        """Store without blocking the caller; False when the value was not kept."""

    def status(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class CacheCounters:
    """Counted since start (for metrics: litellm_cache_hits_metric and friends)."""

    hits: int = 0
    misses: int = 0
    stores: int = 0
    not_stored: int = 0  # too large, an error answer, a broken stream
    bypassed: int = 0  # the store was unreachable
    coalesced: int = 0  # misses served the answer of an identical request in flight

    def as_dict(self) -> dict[str, int]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "stores": self.stores,
            "not_stored": self.not_stored,
            "bypassed": self.bypassed,
            "coalesced": self.coalesced,
        }


@dataclass(frozen=True, slots=True)
class CachePlan:
    key: str
    controls: CacheControls
    model_group: str
    dialect: Dialect
    stream: bool = False


@dataclass
class ResponseCache:
    settings: CacheSettings
    store: CacheStore
    table: ModelTable
    clock: Callable[[], float] = time.time
    counters: CacheCounters = field(default_factory=CacheCounters)
    # The store is the rate limiter's Redis: entries can be read in its admission.
    read_at_admission: bool = False
    in_flight: MissesInFlight = field(default_factory=MissesInFlight)

    @property
    def type(self) -> str:
        return self.settings.type

    async def start(self) -> None:
        await self.store.start()

    async def stop(self) -> None:
        await self.store.stop()

    def plan(
        self,
        operation: Operation,
        dialect: Dialect,
        body: dict[str, Any],
        stream: bool,
        *,
        usage_added: bool = False,
    ) -> CachePlan | None:
        """Whether and how the cache applies to this request (raises a 400 for bad
        ``cache`` controls). ``body["model"]`` is the model after the key's aliases;
        ``usage_added``: the gateway added ``include_usage`` and strips that chunk."""
        if (operation, dialect) not in self.settings.calls:
            return None
        controls = parse_controls(body, default_off=self.settings.default_off)
        if controls is None:
            return None
        model = body.get("model")
        if not isinstance(model, str) or not self.table.lookup(model):
            return None  # the router answers for unknown models
        group = self.table.aliases.get(model, model)
        try:
            key = cache_key(
                operation,
                dialect,
                group,
                body,
                stream,
                controls.namespace or self.settings.namespace,
                usage_added=usage_added,
            )
        except TypeError:  # a value JSON cannot canonicalise: not cached
            return None
        return CachePlan(key, controls, group, dialect, stream)

    async def lookup(self, plan: CachePlan) -> CachedAnswer | None:
        """The stored answer, read with a round trip of its own."""
        if not plan.controls.read:
            return None
        if not self.store.usable():
            self.counters.bypassed += 1
            return None
        return self.found(plan, await self.store.get(plan.key))

    def found(self, plan: CachePlan, raw: object) -> CachedAnswer | None:
        """The answer in what the store held under the plan's key (None: a miss)."""
        answer = CachedAnswer.decode(raw) if isinstance(raw, bytes) else None
        max_age = plan.controls.max_age
        if answer is not None and max_age is not None and self.clock() - answer.created > max_age:
            answer = None
        if answer is None:
            self.counters.misses += 1
            return None
        self.counters.hits += 1
        return answer

    async def after_miss(self, plan: CachePlan) -> Lead | CachedAnswer | None:
        """After a miss: lead the fetch of this answer (a :class:`Lead` to hand to
        :meth:`keep_answer` and to release with :meth:`release`), or wait for the
        identical request already fetching it. None: neither applies (a stream, or a
        request that does not store), or the leader got nothing to share."""
        if plan.stream or not plan.controls.write:
            return None
        joined = self.in_flight.join(plan.key)
        if isinstance(joined, Lead):
            return joined
        answer = await asyncio.shield(joined)  # a follower that leaves cancels only itself
        if answer is not None:
            self.counters.coalesced += 1
        return answer

    def release(self, lead: Lead) -> None:
        """The leader is done; followers of a lead without an answer go upstream."""
        self.in_flight.finish(lead, None)

    def bypassed(self) -> None:
        """The entry could not be read (the store was away)."""
        self.counters.bypassed += 1

    def keep_answer(
        self,
        plan: CachePlan,
        deployment: Deployment,
        response: ProviderResponse,
        lead: Lead | None = None,
    ) -> None:
        """Store a complete answer (successful JSON answers only), and hand it to the
        requests that wait for it (``lead``)."""
        if not plan.controls.write:
            return
        if response.status != 200 or not response.content_type.startswith(b"application/json"):
            self.counters.not_stored += 1
            return
        answer = CachedAnswer(self.clock(), response.content_type, response.body, deployment.id)
        if lead is not None:
            self.in_flight.finish(lead, answer)
        self._put(plan, answer)

    def recording(
        self, plan: CachePlan, deployment: Deployment, stream: ProviderStream
    ) -> ProviderStream:
        """``stream``, stored when it has been sent to its end."""
        if not plan.controls.write:
            return stream

        def complete(chunks: list[bytes]) -> None:
            self._put(plan, stream_answer(self.clock(), stream.content_type, chunks, deployment.id))

        return RecordingStream(stream, plan.dialect, self.settings.max_item_bytes, complete)

    def status(self) -> dict[str, Any]:
        return {
            "type": self.settings.type,
            "mode": "default_off" if self.settings.default_off else "default_on",
            "ttl": self.settings.ttl,
            "usable": self.store.usable(),
            **self.counters.as_dict(),
            **self.store.status(),
        }

    def _put(self, plan: CachePlan, answer: CachedAnswer) -> None:
        if not self.store.usable():
            self.counters.bypassed += 1
            return
        data = answer.encode()
        if len(data) > self.settings.max_item_bytes:
            self.counters.not_stored += 1
            return
        ttl = plan.controls.ttl or self.settings.ttl
        try:
            kept = self.store.put(plan.key, data, ttl)
        except Exception:  # storing must never cost the client its answer
            logger.exception("could not store a response in the cache")
            kept = False
        if kept:
            self.counters.stores += 1
        else:
            self.counters.not_stored += 1
