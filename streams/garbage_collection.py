"""The cyclic garbage collector's schedule for a long-running service process.

CPython's defaults (a young collection every 700 net allocations, the older generations every 10
of the younger) suit short scripts. A worker holds a large, lasting heap (the client libraries,
the app and its agents, compiled schemas and templates, table caches) and allocates fast; at 400
notifications/s with the defaults each worker ran some 3,500 young and 60 full collections in a
one-minute benchmark, the full ones ~200 ms each: over half of its CPU (`gc.callbacks` timing
during `scripts/bench_notifications.py`). Nearly everything it allocates is freed by reference
counting; the collector only needs to find the odd cycle, and a cycle may wait a little.

So a process freezes what exists when it starts serving (`gc.freeze`: modules, settings, the app,
never garbage; the collector stops scanning them) and collects its young objects every
`young_objects` net allocations instead of 700. With 50,000 the same benchmark ran ~100 young
and no full collection (besides faust-streaming's own explicit ones when a rebalance closes a
table's partitions), and the worker's CPU per notification fell 3.3 -> 2.7 ms.
"""

from __future__ import annotations

import gc

# A middle-generation collection every MIDDLE_EVERY young ones, an old one every OLD_EVERY middle
# ones (and then only when a quarter of the old generation is new since the last: CPython's rule).
MIDDLE_EVERY = 20
OLD_EVERY = 10


def schedule_collections(young_objects: int) -> None:
    """Freeze the heap as it stands and collect every `young_objects` allocations; 0 keeps
    CPython's schedule (and freezes nothing)."""
    if young_objects <= 0:
        return
    gc.freeze()
    gc.set_threshold(young_objects, MIDDLE_EVERY, OLD_EVERY)
