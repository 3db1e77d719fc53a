"""The hub's log as one async interface: :class:`EventLog`.

The rooms of the hub meet here: ingest appends (``append_group``, one commit per group,
or ``append`` for one batch), the follower (tail, state, fan-out) follows what was
committed (``follow``), walls behind the in-memory tail read it (``read``), compaction
stores snapshots (``snapshots``). The log assigns seqs, owns idempotency
(:mod:`wallboard.hub.batches`) and has an ``epoch``. Storage is a :class:`Journal`
(SQLite embedded, memory for demos and tests) behind it; a replicated log (NATS
JetStream: stream sequence = seq, ``Nats-Msg-Id`` = batch key within the window, a KV
bucket for snapshots) implements the same methods.

Usage (on the hub's event loop)::

    log = EventLog(open_journal(path))
    done = await log.append_group([Batch(events, "producer", 7, digest)])   # GroupCommit
    first, last = await log.append(Batch(events))                            # one batch
    async for rows in log.follow(after=0):   # [(seq, JSON bytes, event dict)], in order
        ...
    await log.read(after, limit)             # [] when ``after`` was compacted away
    log.first_kept()                         # lowest seq still readable
    await log.snapshots.put(seq, blob, keep) # store a snapshot, trim older events
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, AsyncIterator

import orjson

from .batches import Appended, Batch, BatchRefused, GroupCommit
from .journal import Journal, Recovered

#: Committed rows kept in memory for followers (they are never further behind than a
#: few group commits, so this only has to outlast the slowest follower's turn; a follower
#: further behind reads the journal). Each row holds its event dict: 100,000 rows kept
#: ~100 MB and 300,000+ objects for every full garbage collection to scan.
RECENT_ROWS = 20_000
#: ... and at most about this many bytes of their JSON (the event dicts take as much again).
RECENT_BYTES = 256 << 20

Row = tuple[int, bytes, dict[str, Any]]


class Compacted(Exception):
    """``follow(after)``: the events after ``after`` are gone (compacted): start again
    from a snapshot."""


class SnapshotStore:
    """Snapshots of the state, apart from the events: ``put`` stores one and lets the log
    drop events older than ``seq - keep``; ``latest`` is what a restart rebuilds from."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    async def put(self, seq: int, snapshot: bytes | dict[str, Any], keep: int) -> int:
        """Store the state at ``seq`` (JSON bytes or a dict); returns events dropped."""
        if is_async(self._journal):
            return await self._journal.compact(seq, snapshot, keep)  # type: ignore[no-any-return,misc]
        return await asyncio.to_thread(self._journal.compact, seq, snapshot, keep)

    def latest(self) -> Recovered:
        """The newest snapshot and every event after it (blocking: at start, or in a
        worker thread)."""
        return self._journal.recover()


def is_async(journal: Any) -> bool:
    """A journal whose ``append``/``read``/``compact`` are coroutines run on the loop (the
    JetStream log: its records come back to the hub through its subscription, with every
    other hub's, and ``on_rows`` hands them to followers); a synchronous one (SQLite,
    memory) is called in worker threads and its appends are what followers see."""
    return bool(getattr(journal, "is_async", False))


class EventLog:
    """See the module docstring. One writer (the hub's committer), any followers.
    ``await start()`` before use and ``await aclose()`` after (both no-ops but for an
    async journal, which connects there)."""

    def __init__(self, journal: Journal, recent_bytes: int = RECENT_BYTES) -> None:
        self.journal = journal
        self.snapshots = SnapshotStore(journal)
        self._recent: deque[Row] = deque(maxlen=RECENT_ROWS)
        self._recent_bytes = 0          # JSON bytes of the rows in _recent (bounded by recent_bytes)
        self.recent_bytes = recent_bytes
        self._grew = asyncio.Event()
        # the last seq followers may read: moved on the loop once the rows are in memory
        # (the journal's own moves in its worker thread, before they are)
        self._last = journal.last_seq
        self._async = is_async(journal)
        if self._async:
            journal.on_rows = self._followed  # type: ignore[attr-defined]

    async def start(self) -> None:
        if self._async:
            await self.journal.start()  # type: ignore[attr-defined]
            self._last = self.journal.last_seq

    async def aclose(self) -> None:
        if self._async:
            await self.journal.aclose()  # type: ignore[attr-defined]
        else:
            self.journal.close()

    def _followed(self, rows: list[Row]) -> None:
        """An async journal's records, in stream order (this hub's and every other's)."""
        self._remember(rows)
        self._last = rows[-1][0]
        self._grew.set()

    @property
    def epoch(self) -> str:
        return self.journal.epoch

    @property
    def last_seq(self) -> int:
        return self._last

    def first_kept(self) -> int:
        return self.journal.first_kept

    async def append_group(self, batches: list[Batch]) -> GroupCommit:
        """Commit the batches in one transaction (see :func:`wallboard.hub.batches.plan`);
        raises :class:`~wallboard.hub.batches.JournalUnavailable` when nothing could be
        committed. Followers see the fresh events once this returns (an async journal:
        once its subscription delivers them, in the stream's order)."""
        if self._async:
            return await self.journal.append(batches)  # type: ignore[no-any-return,misc]
        done = await asyncio.to_thread(self.journal.append, batches)
        if done.rows:
            events = [ev for i in done.fresh for ev in batches[i].events]
            self._remember([(seq, data, ev) for (seq, data), ev in zip(done.rows, events)])
            self._last = done.last_seq
            self._grew.set()
        return done

    async def append(self, batch: Batch) -> tuple[int, int]:
        """One batch: its range (also for a resend of a committed key); raises
        :class:`BatchRefused` or ``JournalUnavailable``."""
        outcome = (await self.append_group([batch])).outcomes[0]
        if isinstance(outcome, BatchRefused):
            raise outcome
        assert isinstance(outcome, Appended)
        return outcome.range

    async def read(self, after: int, limit: int) -> list[dict[str, Any]]:
        """Kept events with ``seq > after`` (at most ``limit``); ``[]`` below ``first_kept``."""
        if self._async:
            return await self.journal.read(after, limit)  # type: ignore[no-any-return,misc]
        return await asyncio.to_thread(self.journal.read, after, limit)

    async def follow(self, after: int, limit: int = 5000) -> AsyncIterator[list[Row]]:
        """Every committed event with ``seq > after``, in order and without gaps, as lists
        of ``(seq, JSON bytes, event)`` -- from memory while the follower keeps up, else
        read back from the journal. Waits for new commits; raises :class:`Compacted`."""
        cursor = after
        while True:
            if cursor >= self._last:
                self._grew.clear()
                if cursor >= self._last:
                    await self._grew.wait()
                continue
            rows = self._from_memory(cursor, limit)
            if rows is None:
                events = await self.read(cursor, limit)
                if not events:
                    raise Compacted(f"events after seq {cursor} are compacted away (first kept "
                                    f"{self.first_kept()})")
                rows = [(ev["seq"], orjson.dumps(ev), ev) for ev in events]
            yield rows
            cursor = rows[-1][0]

    def _remember(self, rows: list[Row]) -> None:
        """Keep ``rows`` in memory for followers: at most RECENT_ROWS rows and about
        ``recent_bytes`` of JSON (big events must not make it hold gigabytes)."""
        recent = self._recent
        full = len(recent) + len(rows) - RECENT_ROWS
        if full > 0:  # the deque drops these from the left on extend: take their bytes off
            self._recent_bytes -= sum(len(recent[i][1]) for i in range(min(full, len(recent))))
        recent.extend(rows)
        self._recent_bytes += sum(len(r[1]) for r in rows)
        while self._recent_bytes > self.recent_bytes and len(recent) > 1:
            self._recent_bytes -= len(recent.popleft()[1])

    def _from_memory(self, cursor: int, limit: int) -> list[Row] | None:
        recent = self._recent
        if not recent or recent[0][0] > cursor + 1:
            return None
        start = cursor + 1 - recent[0][0]
        if start >= len(recent):
            return None
        return [recent[i] for i in range(start, min(len(recent), start + limit))]

    def close(self) -> None:
        self.journal.close()


__all__ = ["EventLog", "is_async", "SnapshotStore", "Compacted", "RECENT_ROWS", "RECENT_BYTES"]
