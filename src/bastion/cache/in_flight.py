"""Identical misses in flight in one process: the first goes upstream, the rest wait.

Without this, N identical requests that arrive together all miss the cache and all
call the provider (a client retrying while its first try is still running, an eval
suite, a burst of the same question). With it, the first miss *leads*: it calls the
provider, and identical requests that miss while it runs *follow*: they wait for its
answer and are served that answer as a cache hit (no upstream call, nothing spent).
If the leader gets no answer worth storing (an error, a client that left), its
followers go upstream themselves.

Only complete (non-streamed) answers are shared: a follower of a stream would get
nothing until the whole stream had ended, later than its own first token. Per
process: workers and replicas each lead their own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bastion.cache.entry import CachedAnswer


@dataclass(frozen=True, slots=True)
class Lead:
    """A leader's claim on a key; its followers wait on ``answer``."""

    key: str
    answer: asyncio.Future[CachedAnswer | None]


class MissesInFlight:
    def __init__(self) -> None:
        self._leads: dict[str, Lead] = {}

    def join(self, key: str) -> Lead | asyncio.Future[CachedAnswer | None]:
        """A :class:`Lead` when nobody is fetching ``key``'s answer (the caller must
        :meth:`finish` it), else the answer to wait for."""
        lead = self._leads.get(key)
        if lead is not None and not lead.answer.done():
            return lead.answer
        lead = Lead(key, asyncio.get_running_loop().create_future())
        self._leads[key] = lead
        return lead

    def finish(self, lead: Lead, answer: CachedAnswer | None) -> None:
        """Hand the answer (None: there is none to share) to the followers. Only the
        first call counts, so a leader can call it again on its way out."""
        if self._leads.get(lead.key) is lead:
            del self._leads[lead.key]
        if not lead.answer.done():
            lead.answer.set_result(answer)

    def __len__(self) -> int:
        return len(self._leads)
