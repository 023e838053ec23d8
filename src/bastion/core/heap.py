"""Keep the garbage collector's full passes off the latency tail.

Python's cyclic collector walks every tracked object on a full collection: with the
gateway's imports, config and price tables that is some 100,000 objects and tens of
milliseconds, paid by whichever request happens to trigger it. Once startup is done
those objects live for the life of the process, so they are moved out of the
collector's sight (``gc.freeze``) and later collections only walk what requests
create.

The young-generation threshold stays at its default: a young collection walks every
object allocated since the last one, so raising the threshold trades many pauses of
tens of microseconds for fewer of a millisecond or more, and those showed up in the
latency tail.
"""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Call once when startup is complete, before serving."""
    gc.collect()
    gc.freeze()
