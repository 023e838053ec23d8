"""Keep the garbage collector's full passes off the latency tail.

Python's cyclic collector walks every tracked object on a full collection: with the
gateway's imports, config and price tables that is some 100,000 objects and tens of
milliseconds, paid by whichever request happens to trigger it. Once startup is done
those objects live for the life of the process, so they are moved out of the
collector's sight (``gc.freeze``) and later collections only walk what requests
create. The first-generation threshold is raised as well: a request allocates a few
hundred container objects, and collecting every 700 allocations spent CPU on every
request for no memory back (almost everything a request allocates is freed by
reference counting).
"""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 20_000


def settle_heap() -> None:
    """Call once when startup is complete, before serving."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)
