"""Collector thresholds for the long-running processes (the hub, the wall), and the hub's
GIL switch interval (:func:`tune_switch_interval`).

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
import sys

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


#: Seconds a thread waiting for the GIL lets the running one keep it (CPython: 0.005).
SWITCH_INTERVAL_S = 0.0005


def tune_switch_interval(seconds: float = SWITCH_INTERVAL_S) -> float:
    """Set the process's GIL switch interval; returns the old one.

    The hub commits to SQLite in a worker thread, which releases the GIL for every
    SQLite call and must get it back afterwards. While the event loop is busy (decoding
    a flood), CPython lets the loop's thread keep the GIL up to the switch interval each
    time: a one-row commit took several of those waits. Measured with the loop busy in
    3 ms slices and a one-row commit via ``asyncio.to_thread`` (load 5-6.6, 2 cores):
    p50 27-33 -> 17-20 ms, p99 116-167 -> 72-92 ms with 0.5 ms instead of 5 ms."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    return old
