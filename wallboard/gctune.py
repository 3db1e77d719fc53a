"""Collector thresholds for the long-running processes (the hub, the wall).

CPython's default first-generation threshold (700 container allocations) was set for
programs that make few objects. The hub decodes 500-event frames into dicts tens of
thousands of times a second; at 700, a young collection ran ~100 times a second and
promoted whatever was in flight (queued batches, the tail) into the older generations,
whose collections then scanned it again: about 20 % of the hub's core went to the
collector, with pauses up to 95 ms (benchmarks/hub_ingest.py, docs/performance.md).

Almost every one of those objects dies by reference counting before any collection
would look at it, so a larger first threshold makes each collection see only what is
really alive. Reference cycles (asyncio futures, exception tracebacks) are still freed,
a little later: at most ``YOUNG`` allocations later for the young ones. The long-lived
state is kept out of the scans by ``LiveState``'s freeze (wallboard/state/model.py).
"""
from __future__ import annotations

import gc

#: Container allocations (minus deallocations) between young collections (CPython: 700).
YOUNG = 50_000
#: Young collections per middle-generation one, and middle per full one (CPython: 10, 10).
MIDDLE = 20
OLD = 10


def tune_gc() -> tuple[int, int, int]:
    """Set the process's collector thresholds; returns the old ones."""
    old = gc.get_threshold()
    gc.set_threshold(YOUNG, MIDDLE, OLD)
    return old
