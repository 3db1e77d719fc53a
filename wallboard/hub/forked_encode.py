"""A compaction's snapshot encoded in a forked child, off the hub's loop and core.

The hub's state at 100,000 devices is a ~24 MB snapshot; encoding it on the loop, even in
pieces with pauses, held the loop for 170-470 ms per compaction in all (every 100,000
events: every 10 s at 10,000 events/s) and was the fan-out's tail (publish -> plain
subscriber p99 178-455 ms with compaction, 59 ms without: benchmarks/e2e.py --listener).

``os.fork`` gives the child the state exactly as it is at that moment (copy-on-write, as
Redis' BGSAVE does): the child encodes it with one ``encode_snapshot`` call, writes the
bytes to a pipe and leaves with ``os._exit`` (no atexit, no destructors: it never touches
the journal, the sockets or the loop it inherited). The parent's loop only forks (a page
table copy: a few ms) and reads the pipe in a worker thread; its state keeps changing
meanwhile without any hold-back. The child's pages are shared until one side writes: its
reads of the state (reference counts) copy at most the state's pages for ~0.2 s.

Where ``fork`` is missing, refused (memory) or the child fails, the caller encodes on the
loop as before (:meth:`Hub._encode_state`) and counts it.
"""
from __future__ import annotations

import asyncio
import gc
import os
import signal
import warnings
from typing import Any, Callable

#: Exit code of a child whose encode raised (the parent then encodes on the loop).
CHILD_FAILED = 70


def available() -> bool:
    return hasattr(os, "fork") and hasattr(os, "waitstatus_to_exitcode")


def _child(w: int, encode: Callable[[], bytes]) -> None:
    """In the child: never returns."""
    code = CHILD_FAILED
    try:
        gc.disable()   # a collection would touch (and copy) every page of the state
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)   # not the parent's loop handlers
        try:
            signal.set_wakeup_fd(-1)   # the parent's loop wakeup socket is not ours to write
        except (ValueError, OSError):
            pass
        view = memoryview(encode())
        while view:
            n = os.write(w, view)
            view = view[n:]
        code = 0
    except BaseException:   # noqa: BLE001 - anything: the parent falls back
        code = CHILD_FAILED
    finally:
        os._exit(code)


def _collect(r: int, pid: int) -> tuple[bytes, int]:
    """In a worker thread: everything the child writes, then its exit code."""
    chunks = []
    try:
        while True:
            b = os.read(r, 1 << 20)
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    return b"".join(chunks), os.waitstatus_to_exitcode(status)


async def encode_in_child(encode: Callable[[], bytes]) -> bytes:
    """``encode()`` run in a forked child on the state as of now; its bytes. Raises
    ``OSError`` when the fork is refused and ``RuntimeError`` when the child fails."""
    r, w = os.pipe()
    try:
        with warnings.catch_warnings():   # 3.12+: fork of a threaded process; the child only encodes
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except BaseException:
        os.close(r)
        os.close(w)
        raise
    if pid == 0:
        os.close(r)
        _child(w, encode)
    os.close(w)
    blob, code = await asyncio.to_thread(_collect, r, pid)
    if code != 0:
        raise RuntimeError(f"the snapshot child exited with code {code}")
    return blob


__all__: list[Any] = ["available", "encode_in_child", "CHILD_FAILED"]
