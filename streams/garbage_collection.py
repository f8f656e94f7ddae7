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

The default is 200,000. CPython's count of net allocations never goes below zero: after a
collection resets it, frees of older objects (a cache's evicted entries, anything that outlived
the collection) are lost to it, so with allocations and frees in balance it wanders upwards like
a random walk, and reaches a threshold in time growing with the threshold's square. At 1,000
notifications/s offered, 60 s, `gc.callbacks` in both workers: with 50,000, 34-39 young
collections of ~65 ms each and one middle one, 2.5-2.7 s of each worker's ~65 CPU-s; with
200,000, two, 0.26-0.37 s, and the same resident memory through the run (its growth is the
tables' caches and RocksDB's, not cycles waiting for a collection).
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
