"""The C heap of the long-running processes (the hub, the wall): glibc's settings and trim.

No Qt, no asyncio: the hub and the wall both use it.

glibc's allocator gives each thread that allocates its own arena (up to 8 per core) and
raises its mmap threshold, up to 32 MiB, each time a large mmapped block is freed. In the
hub every compaction makes megabytes of short-lived buffers (the snapshot's JSON pieces
and their join on the loop, its zlib copy and the SQLite pages in a worker thread): after
the first one the threshold had risen past their size, so the next ones were carved out
of the heaps, between small long-lived blocks, in whichever arena the worker thread had;
what they left free stayed resident. RSS rose 0.5-8 MB at every compaction while the heap
in use did not (84 -> 99 MB in 36 minutes of the double-11 demo: docs/performance.md,
"sixth session: the hub's memory over a simulated week").

:func:`tune_malloc` (called once at start, before the worker threads exist) fixes the
threshold, so blocks of ``mmap_threshold`` bytes or more are always their own mapping and
go back to the system when freed, and caps the arenas at ``arena_max``; :func:`trim` hands
free pages inside the heaps back (``malloc_trim(0)``), called after each compaction and
after a layout switch on the wall. ``MALLOC_ARENA_MAX`` / ``MALLOC_MMAP_THRESHOLD_`` in the
environment win over the defaults here. Elsewhere (musl, macOS, Windows) both do nothing
and say so once.
"""
from __future__ import annotations

import ctypes
import logging
import os
from typing import Any, Callable

log = logging.getLogger(__name__)

#: glibc's mallopt parameters (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: Allocations of at least this many bytes get their own mapping (freed to the system).
MMAP_THRESHOLD = 1 << 20
#: Heaps for the process's threads (the loop's, the journal's worker threads...).
ARENA_MAX = 2

_LIBC: list[Any] = []       # [] before the lookup, [None] where there is no glibc


def _libc() -> Any:
    if not _LIBC:
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
            libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        except (OSError, AttributeError):
            libc = None
            log.info("no glibc malloc_trim/mallopt here: freed heap pages stay with the allocator")
        _LIBC.append(libc)
    return _LIBC[0]


def _malloc_trim() -> Callable[[int], int] | None:
    libc = _libc()
    return None if libc is None else libc.malloc_trim


def trim() -> bool:
    """Return free heap pages to the system (every arena, a few milliseconds); False
    where glibc's ``malloc_trim`` is missing."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True


def tune_malloc(arena_max: int = ARENA_MAX, mmap_threshold: int = MMAP_THRESHOLD,
                environ: dict[str, str] | None = None) -> dict[str, int]:
    """Set glibc's arena cap and a fixed mmap threshold (see the module docstring); a
    setting given in the environment (``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``)
    is left to glibc. Returns what was set (``{}`` without glibc). Call it before
    starting threads."""
    if arena_max < 1 or mmap_threshold < 4096:
        raise ValueError(f"tune_malloc: arena_max {arena_max} must be >= 1 and mmap_threshold "
                         f"{mmap_threshold} >= 4096 bytes")
    env = os.environ if environ is None else environ
    libc = _libc()
    if libc is None:
        return {}
    done: dict[str, int] = {}
    for name, param, value in (("MALLOC_ARENA_MAX", M_ARENA_MAX, arena_max),
                               ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, mmap_threshold)):
        if name in env:
            continue
        if libc.mallopt(param, value) == 1:
            done[name] = value
        else:
            log.info("mallopt(%s, %d) refused", name, value)
    return done


__all__ = ["trim", "tune_malloc", "ARENA_MAX", "MMAP_THRESHOLD"]
