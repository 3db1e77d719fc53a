"""The hub's durable event log: seq assignment, group commit, replay, compaction.

:class:`Journal` is the seam between the hub and its storage. The hub only ever calls
the methods of that protocol, from one asyncio task at a time, through
``asyncio.to_thread`` for the blocking ones (``append``, ``read``, ``compact``):

* ``recover()`` once at start: the newest snapshot (or ``None``) and every event after it,
  so the hub can rebuild its ``LiveState`` (kill -9 and restart lose no acked event);
* ``append(batches)`` decides every batch (:func:`wallboard.hub.batches.plan`): fresh
  batches get the next contiguous seqs, a resend of a committed key is answered with the
  range it was committed with, a key reused for other events is refused (``conflict``), a
  batch that cannot be stored is refused alone; the fresh events and their keys are
  written durably in **one** commit (one fsync). Returns a :class:`GroupCommit` (one
  outcome per batch, plus the encoded events the log wrote, for the hub's tail). A
  failed commit raises :class:`JournalUnavailable`: nothing was taken, producers resend.
  The hub acks a producer only after this returns (group commit: the hub gathers what
  arrived in ~20 ms and appends it in one call);
* ``read(after, limit)`` replays kept events with ``seq > after`` (for ``hello.since``);
  ``first_kept`` is the lowest seq still replayable;
* ``compact(seq, snapshot, keep)`` stores a snapshot of the state at ``seq`` (the JSON
  bytes of ``wallboard.state.snapshot.encode_snapshot``, or a dict) and drops events
  older than ``seq - keep`` -- disk stays bounded by configuration, not uptime. It runs
  in short steps, so ``append`` and ``read`` calls from other threads interleave with it
  (a compaction never holds up acks and fan-out for long); at every step the journal
  recovers exactly (newest snapshot + the events after it) and ``first_kept`` is right
  (readers never get a range with a hole: ``read`` answers ``[]`` below ``first_kept``);
* ``batch_range(producer, batch)``: the range a committed batch key got; keys are kept
  for ``dedupe_window`` seconds (default 24 h) in the journal itself (they survive a
  restart), then ``expire_keys`` (also run by ``compact``) forgets them.

Implementations: :class:`SqliteJournal` (embedded default, SQLite in WAL mode,
``synchronous=FULL``) and :class:`MemoryJournal` (in-process demo, nothing on disk).
A replicated log -- NATS JetStream, whose stream sequence is contiguous -- fits the
same protocol: ``append`` publishes the batch and returns the stream sequences as seqs
(``seq`` = JetStream stream sequence, so walls can fail over between hubs),
``read`` is an ordered consumer starting at ``after + 1``, snapshots live in a KV
bucket keyed by seq, ``compact`` purges the stream up to ``seq - keep``, and producer
batch ids map to JetStream's ``Nats-Msg-Id`` de-duplication window.
"""
from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import orjson

from .journal_guard import (APPLICATION_ID, JournalRefused, Sidecar, SidecarState, check_continuity, check_file, check_schema,
                            move_aside, quick_check, refusing)
from .journal_guard import new_epoch as make_epoch
from .batches import (DEDUPE_WINDOW_S, Appended, Batch, KeyMemory, BatchRefused, GroupCommit, JournalUnavailable,
                      KeyRecord, plan, unset_seqs)

#: Rows (events, batch ranges) deleted per transaction by ``compact``; the journal lock
#: is released between chunks so appends interleave (~3 ms per chunk).
COMPACT_CHUNK = 5_000
#: Bytes per stored snapshot part: a 24 MB snapshot is written as 24 short transactions,
#: not one that holds the lock (and the SQLite write lock) for ~100 ms.
SNAPSHOT_PART = 1 << 20


log = logging.getLogger("wallboard.hub.journal")


def _snapshot_bytes(snapshot: bytes | dict[str, Any]) -> bytes:
    """The JSON bytes to store: ``snapshot`` itself when already encoded."""
    if type(snapshot) is bytes:
        return snapshot
    if isinstance(snapshot, (bytes, bytearray, memoryview)):
        return bytes(snapshot)
    if isinstance(snapshot, dict):
        return orjson.dumps(snapshot)
    raise TypeError(f"journal compact: snapshot is {type(snapshot).__name__}, "
                    "expected JSON bytes (encode_snapshot) or a dict")


def _exact(b: bytes) -> bytes:
    """A right-sized copy: orjson's result keeps its ~4 KiB working buffer, which would
    make every kept event cost 4 KiB of memory."""
    return memoryview(b).tobytes()


@dataclass
class History:
    """What :meth:`Journal.history` found for a moment ``at``: the state then is
    ``snapshot`` (None: the empty state) + ``events``, up to ``seq`` (the last event
    committed at or before ``at``; its commit time is ``seq_at``)."""

    seq: int
    seq_at: float | None
    snapshot: dict[str, Any] | None
    events: list[dict[str, Any]]
    ats: list[float] = field(default_factory=list)   # each event's commit time


#: A journal keeps older snapshots for replays (``history``) at least this far apart
#: (seconds of their storing time); the newest is always kept. The hub stores one every
#: ``compact_every`` events (10 s at 10,000 events/s), so a replay rebuilds at most that
#: many events on top of a snapshot, whatever the length of the history.
SNAPSHOT_GAP_S = 2.0
#: Compressed bytes the SQLite journal spends on snapshots at most (default): past it,
#: older snapshots are thinned evenly (the one whose neighbours are closest goes), so
#: replays over a long history get slower, never the disk fuller.
REPLAY_BUDGET = 32 << 30
#: ``snapshots.codec``: how the stored bytes are the JSON (0: as they are, the files of
#: older versions; 1: zlib, level ``SNAPSHOT_ZLIB_LEVEL``, ~17x on a 100,000-device state).
CODEC_RAW, CODEC_ZLIB = 0, 1
SNAPSHOT_ZLIB_LEVEL = 1
#: ``events.codec``: how a stored row (one batch, the events' JSON joined by newlines) is
#: kept. ``CODEC_ZLIB`` (the default, ``SqliteJournal.row_codec``) is ~8x smaller on device
#: status batches (150 -> ~20 bytes per event with the indexes); rows of older files are
#: ``CODEC_RAW`` and read as they are.
ROW_ZLIB_LEVEL = 1


def thinnest(seqs: list[int]) -> int:
    """Which of the snapshots at ``seqs`` (sorted, at least three) to drop to stay within a
    byte budget: of the ones between the oldest and the newest (both stay), the one whose
    neighbours are the fewest events apart -- so the rest stay evenly spread."""
    return min(range(1, len(seqs) - 1), key=lambda k: seqs[k + 1] - seqs[k - 1])


def decode_snapshot_blob(blob: bytes, codec: int, where: str) -> bytes:
    """The snapshot JSON of stored bytes; ``RuntimeError`` naming ``where`` when they do
    not decode (a damaged file) or the codec is unknown (a newer version's file)."""
    if codec == CODEC_RAW:
        return blob
    if codec == CODEC_ZLIB:
        try:
            return zlib.decompress(blob)
        except zlib.error as e:
            raise RuntimeError(f"{where}: compressed snapshot does not decompress ({e}); the file is damaged") from None
    raise RuntimeError(f"{where}: snapshot codec {codec!r} unknown (a newer wallboard's file?); expected 0 or 1")


def decode_row(data: bytes, codec: int, where: str) -> bytes:
    """The newline-joined events' JSON of a stored events row (``codec`` as for snapshots);
    ``RuntimeError`` naming ``where`` when it does not decode."""
    if codec == CODEC_ZLIB:
        try:
            return zlib.decompress(data)
        except zlib.error as e:
            raise RuntimeError(f"{where}: compressed events row does not decompress ({e}); the file is damaged") from None
    if codec == CODEC_RAW:
        return data
    raise RuntimeError(f"{where}: events row codec {codec!r} unknown (a newer wallboard's file?); expected 0 or 1")


@dataclass
class Recovered:
    """What :meth:`Journal.recover` found: rebuild state from ``snapshot`` + ``events``."""

    snapshot_seq: int = 0
    snapshot: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    last_seq: int = 0


class Journal(Protocol):
    """Storage seam of the hub (see the module docstring for the contract)."""

    last_seq: int
    first_kept: int
    epoch: str      # random id of this log, created with it: a wall's seqs mean nothing in another

    def recover(self) -> Recovered: ...
    def append(self, batches: list[Batch]) -> GroupCommit: ...
    def read(self, after: int, limit: int) -> list[dict[str, Any]]: ...
    def read_timed(self, after: int, limit: int) -> list[tuple[int, float, bytes]]: ...
    def history(self, at: float) -> History | None: ...
    def batch_range(self, producer: str, batch: int) -> tuple[int, int] | None: ...
    def expire_keys(self) -> int: ...
    def compact(self, seq: int, snapshot: bytes | dict[str, Any], keep: int) -> int: ...
    def stats(self) -> dict[str, float]: ...
    def close(self) -> None: ...


class MemoryJournal:
    """In-memory journal for the embedded demo: same contract, nothing survives the process.

    Keeps at most ``keep`` events, encoded (older ones are dropped as if compacted), so
    memory is bounded by configuration and later mutation of the dicts cannot alter it.
    Thread-safe (one lock, held briefly: ``compact`` drops events in chunks).
    """

    def __init__(self, keep: int = 100_000, *, dedupe_window: float = DEDUPE_WINDOW_S) -> None:
        self.keep = keep
        self.window = dedupe_window
        self._lock = threading.Lock()
        self._events: deque[bytes] = deque()
        self._ats: deque[float] = deque()     # commit time of each kept event (non-decreasing)
        self._snapshot: tuple[int, bytes] | None = None
        self._older: deque[tuple[int, float, bytes]] = deque(maxlen=16)  # for history()
        self._keys = KeyMemory(dedupe_window)
        self.epoch = make_epoch()   # a memory log starts over with every process
        self.last_seq = 0
        self.first_kept = 1
        self.commits = 0

    def recover(self) -> Recovered:
        with self._lock:
            snap_seq, blob = self._snapshot if self._snapshot else (0, None)
            last = self.last_seq
        snap = orjson.loads(blob) if blob is not None else None
        events = self.read(snap_seq, last - snap_seq) if snap_seq + 1 >= self.first_kept else []
        return Recovered(snap_seq, snap, events, last)

    def append(self, batches: list[Batch]) -> GroupCommit:
        """Number, store and remember the batches (see :func:`wallboard.hub.batches.plan`)."""
        with self._lock:
            now = time.time()
            done = plan(batches, self.last_seq, self._lookup, now, self.window)
            self._events.extend(data for _, data in done.rows)
            at = max(now, self._ats[-1]) if self._ats else now
            self._ats.extend(at for _ in done.rows)
            for producer, batch, digest, first, last, at in done.keys:
                self._keys.put((producer, batch), (digest, first, last, at))
            self._expire(now)
            self.last_seq = done.last_seq
            self.commits += 1
            while len(self._events) > self.keep:
                self._events.popleft()
                self._ats.popleft()
            self.first_kept = self.last_seq - len(self._events) + 1
        return done

    def _lookup(self, producer: str, batch: int) -> KeyRecord | None:
        return self._keys.get(producer, batch)

    def _expire(self, now: float) -> int:
        return self._keys.expire(now)

    def expire_keys(self) -> int:
        """Forget batch keys committed longer ago than the window; returns how many."""
        with self._lock:
            return self._expire(time.time())

    def read(self, after: int, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            if after + 1 < self.first_kept:
                return []
            start = after + 1 - self.first_kept
            stop = min(len(self._events), start + max(0, limit))
            blobs = [self._events[i] for i in range(start, stop)]
        return [orjson.loads(b) for b in blobs]

    def batch_range(self, producer: str, batch: int) -> tuple[int, int] | None:
        """The range a committed batch key got (None: not committed within the window)."""
        with self._lock:
            return _live_range(self._lookup(producer, batch), time.time() - self.window)

    def read_timed(self, after: int, limit: int) -> list[tuple[int, float, bytes]]:
        """``(seq, commit time, event JSON)`` of kept events after ``after``."""
        with self._lock:
            if after + 1 < self.first_kept:
                return []
            start = after + 1 - self.first_kept
            stop = min(len(self._events), start + max(0, limit))
            return [(self.first_kept + i, self._ats[i], self._events[i]) for i in range(start, stop)]

    def history(self, at: float) -> History | None:
        """The state at ``at`` as snapshot + events (None: no longer held)."""
        import bisect

        with self._lock:
            n = bisect.bisect_right(self._ats, at)   # kept events committed by then
            if n == 0 and self.first_kept > 1:
                return None
            target = self.first_kept + n - 1
            snaps = [(s, b) for s, _, b in self._older] + ([self._snapshot] if self._snapshot else [])
            base, blob = max(((s, b) for s, b in snaps if s <= target), default=(0, None))
            if base + 1 < self.first_kept:
                return None
            idx = range(base + 1 - self.first_kept, n)
            blobs = [self._events[i] for i in idx]
            ats = [self._ats[i] for i in idx]
            seq_at = self._ats[n - 1] if n else None
        return History(target, seq_at, orjson.loads(blob) if blob is not None else None,
                       [orjson.loads(b) for b in blobs], ats)

    def compact(self, seq: int, snapshot: bytes | dict[str, Any], keep: int) -> int:
        """Keep ``snapshot`` (JSON bytes or a dict: the state at ``seq``), then drop events
        ``<= seq - keep`` in chunks of ``COMPACT_CHUNK``. Returns events dropped."""
        blob = _snapshot_bytes(snapshot)
        with self._lock:
            if self._snapshot is None or self._snapshot[0] < seq:  # same seq: same state, kept
                old, self._snapshot = self._snapshot, (seq, blob)
                if old is not None and (not self._older or time.time() - self._older[-1][1] >= SNAPSHOT_GAP_S):
                    self._older.append((old[0], time.time(), old[1]))
        dropped = 0
        while True:
            with self._lock:
                n = min(len(self._events), seq - keep - self.first_kept + 1, COMPACT_CHUNK)
                if n <= 0:
                    break
                for _ in range(n):
                    self._events.popleft()
                    self._ats.popleft()
                self.first_kept += n
                dropped += n
        with self._lock:  # older snapshots below the first kept event serve no history
            while len(self._older) > 1 and self._older[1][0] < self.first_kept:
                self._older.popleft()
        return dropped

    def stats(self) -> dict[str, float]:
        return {"journal_events": len(self._events), "journal_commits": self.commits}

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, data BLOB NOT NULL, last INTEGER);
CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot_parts (
    seq INTEGER NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (seq, part));
CREATE TABLE IF NOT EXISTS batch_keys (
    producer TEXT NOT NULL, batch INTEGER NOT NULL, digest BLOB, first INTEGER NOT NULL,
    last INTEGER NOT NULL, at REAL NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS batch_keys_key ON batch_keys (producer, batch);
CREATE INDEX IF NOT EXISTS batch_keys_at ON batch_keys (at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _live_range(rec: KeyRecord | None, horizon: float) -> tuple[int, int] | None:
    return (rec[1], rec[2]) if rec is not None and rec[3] >= horizon else None


def describe_error(path: Path | str, e: BaseException) -> str:
    """One line for a storage failure; a full disk is named as such."""
    name = getattr(e, "sqlite_errorname", "")
    if name == "SQLITE_FULL" or isinstance(e, OSError) and e.errno == 28 or "disk is full" in str(e):
        return f"disk full: journal {path}: {e}"
    return f"journal {path}: {e}"


def _rollback(db: sqlite3.Connection) -> None:
    """ROLLBACK if a transaction is still open (SQLite ends some failed ones by itself:
    a bare ROLLBACK would then hide the real error behind "no transaction is active")."""
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


class SqliteJournal:
    """SQLite (WAL, ``synchronous=FULL``) journal: one transaction and one fsync per ``append``.

    ``path`` is created if missing. Events are stored as JSON blobs keyed by seq; a
    ``meta`` row keeps the last seq so seqs stay contiguous even after compaction has
    deleted every event. Thread-safe (one lock): the hub calls it from worker threads.

    A snapshot is a ``snapshots`` row ``(seq, data, parts)``: ``parts == 0`` (files of
    older versions) means ``data`` is the JSON; otherwise the JSON is the ``data`` of the
    ``snapshot_parts`` rows ``(seq, 0 .. parts-1)``, written each in its own transaction
    *before* the ``snapshots`` row, whose commit makes the snapshot exist. Parts without
    their row (a crash mid-write) are deleted on open. ``codec`` says how the stored
    bytes are the JSON (``CODEC_ZLIB`` since snapshots are kept for replays, every one the
    hub makes, within ``replay_budget`` bytes: ``size``; ``CODEC_RAW`` in older files).
    """

    def __init__(self, path: str | Path, *, dedupe_window: float = DEDUPE_WINDOW_S, new_epoch: bool = False,
                 retain_s: float = 0.0, replay_budget: int = REPLAY_BUDGET, row_codec: int = CODEC_ZLIB) -> None:
        self.path = Path(path)
        self.window = dedupe_window
        #: compressed snapshot bytes kept at most (older ones thinned evenly past it)
        self.replay_budget = replay_budget
        #: how new events rows are stored (``CODEC_ZLIB``; ``CODEC_RAW``: as they are)
        self.row_codec = row_codec
        self.snapshots_thinned = 0
        #: events committed less than this many seconds ago are kept by ``compact`` (for
        #: replays), whatever its ``keep``; 0: ``keep`` alone decides
        self.retain_s = retain_s
        self._last_at = 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._compacting = threading.Lock()    # one compaction at a time
        self._waiting = 0                      # appends/reads waiting for the lock
        self._side: sqlite3.Connection | None = None   # checkpoints during a compaction
        self._waiting_lock = threading.Lock()
        self.commits = 0
        self.epoch = ""
        self._sidecar = Sidecar(self.path)
        self._sidecar.acquire()    # JournalRefused naming the pid when another hub has it
        try:
            self._open(new_epoch)
        except BaseException:
            self._sidecar.release()
            raise
        self._sidecar.epoch = self.epoch
        self._sidecar.write(self.last_seq)

    def _open(self, new_epoch: bool) -> None:
        """Check the file (:mod:`wallboard.hub.journal_guard`), open it, set the epoch."""
        previous = self._sidecar.previous
        with refusing(self.path):
            fresh = check_file(self.path, previous, new_epoch)
        try:
            with refusing(self.path):
                self._connect(fresh, previous, new_epoch)
        except JournalRefused as e:
            if not (new_epoch and e.kind == "damaged"):
                raise
            moved = move_aside(self.path)
            log.warning("%s: moved to %s; a new epoch starts in a new file", e, moved)
            with refusing(self.path):
                self._connect(True, previous, new_epoch)
        stored = self._db.execute("SELECT value FROM info WHERE key = 'epoch'").fetchone()
        if stored is not None and not new_epoch:
            self.epoch = str(stored[0])
            check_continuity(self.path, self.epoch, self.last_seq, previous)
            return
        self.epoch = make_epoch()
        self._db.execute("INSERT OR REPLACE INTO info VALUES ('epoch', ?)", (self.epoch,))
        if stored is not None or self.last_seq:
            log.warning("journal %s: new epoch %s at seq %d (was %s): walls resync", self.path, self.epoch,
                        self.last_seq, stored[0] if stored else "none")

    def _connect(self, fresh: bool, previous: SidecarState | None, new_epoch: bool) -> None:
        self._db = db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        try:
            if not fresh:   # a foreign file is refused before anything is written
                check_schema(db, self.path, previous, new_epoch)
                quick_check(db, self.path)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA journal_size_limit=67108864")
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            db.executescript(_SCHEMA)
            self._migrate()
            row = db.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
            top = db.execute("SELECT seq, last FROM events ORDER BY seq DESC LIMIT 1").fetchone()
            self.last_seq = max(row[0] if row else 0, (top[1] or top[0]) if top else 0)
            self._last_at = db.execute("SELECT COALESCE(MAX(at), 0) FROM events").fetchone()[0]
            low = db.execute("SELECT MIN(seq) FROM events").fetchone()[0]
            self.first_kept = low if low is not None else self.last_seq + 1
        except BaseException:
            db.close()
            raise

    def _migrate(self) -> None:
        """Bring a journal of an older version up to this schema."""
        db = self._db
        ev_columns = [r[1] for r in db.execute("PRAGMA table_info(events)")]
        if "last" not in ev_columns:
            # a journal of one row per event: those rows stay as they are (``last`` NULL)
            db.execute("ALTER TABLE events ADD COLUMN last INTEGER")
        if "at" not in ev_columns:   # commit times (replays): rows from before count as very old
            db.execute("ALTER TABLE events ADD COLUMN at REAL NOT NULL DEFAULT 0")
        if "codec" not in ev_columns:   # rows from before compressed rows: JSON as it is
            db.execute("ALTER TABLE events ADD COLUMN codec INTEGER NOT NULL DEFAULT 0")
        db.execute("CREATE INDEX IF NOT EXISTS events_at ON events (at)")
        columns = [r[1] for r in db.execute("PRAGMA table_info(snapshots)")]
        if "parts" not in columns:   # a journal written before snapshots came in parts
            db.execute("ALTER TABLE snapshots ADD COLUMN parts INTEGER NOT NULL DEFAULT 0")
        if "at" not in columns:
            db.execute("ALTER TABLE snapshots ADD COLUMN at REAL NOT NULL DEFAULT 0")
        if "codec" not in columns:   # snapshots before they were compressed: JSON as it is
            db.execute("ALTER TABLE snapshots ADD COLUMN codec INTEGER NOT NULL DEFAULT 0")
        if "size" not in columns:    # stored bytes (the budget); older rows count as 0
            db.execute("ALTER TABLE snapshots ADD COLUMN size INTEGER NOT NULL DEFAULT 0")
        db.execute("DELETE FROM snapshot_parts WHERE seq NOT IN (SELECT seq FROM snapshots)")
        if db.execute("SELECT 1 FROM sqlite_master WHERE name='batches'").fetchone():
            # a journal of the version that kept batch ranges without their content digest:
            # its keys stay duplicates (not checkable for conflicts) for one window
            db.executescript(f"""BEGIN;
                INSERT OR IGNORE INTO batch_keys SELECT producer, batch, NULL, first, last, {time.time()}
                FROM batches; DROP TABLE batches; COMMIT;""")

    @contextlib.contextmanager
    def _urgent(self) -> Iterator[None]:
        """The lock for ``append``/``read``/``recover``: served before compaction steps."""
        with self._waiting_lock:
            self._waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._waiting_lock:
                self._waiting -= 1
        try:
            yield
        finally:
            self._lock.release()

    def _step(self) -> Any:
        """The lock for one compaction step, taken once no append or read waits for it
        (``threading.Lock`` is not fair: a compaction thread that releases and re-takes it
        at once could keep a waiting append out for many steps). Defers at most ~50 ms."""
        for _ in range(100):
            if not self._waiting:
                break
            time.sleep(0.0005)
        return self._lock

    def recover(self) -> Recovered:
        """The newest snapshot and every event after it (raises ``RuntimeError`` naming
        the seq when a snapshot's parts are missing: a damaged file)."""
        with self._urgent():
            row = self._db.execute(
                "SELECT seq, data, parts, codec FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
            snap_seq, blob = (row[0], self._snapshot_blob(*row[:3])) if row else (0, None)
            events = [orjson.loads(d) for _, _, d in self._rows_after(snap_seq)]
        snap = orjson.loads(self._snapshot_json(snap_seq, blob, row[3])) if row else None
        return Recovered(snap_seq, snap, events, self.last_seq)

    def _snapshot_blob(self, seq: int, data: bytes, parts: int) -> bytes:
        """The stored bytes of the snapshot at ``seq`` (under the lock)."""
        if not parts:
            return data
        chunks = [d for (d,) in self._db.execute(
            "SELECT data FROM snapshot_parts WHERE seq = ? AND part < ? ORDER BY part", (seq, parts))]
        if len(chunks) != parts:
            raise RuntimeError(f"journal {self.path}: snapshot at seq {seq} has {len(chunks)} of its "
                               f"{parts} parts; expected all (the file is damaged)")
        return b"".join(chunks)

    def _snapshot_json(self, seq: int, blob: bytes, codec: int) -> bytes:
        """The JSON of stored snapshot bytes (outside the lock: decompression takes ~50 ms)."""
        return decode_snapshot_blob(blob, codec, f"journal {self.path}: snapshot at seq {seq}")

    def append(self, batches: list[Batch]) -> GroupCommit:
        """Number the batches, refuse or answer resends (:func:`wallboard.hub.batches.plan`)
        and commit the fresh events with their batch keys in one transaction (one fsync).
        Raises :class:`JournalUnavailable` when the commit fails (nothing was taken: the
        producers resend); a batch the log refuses fails alone in the outcomes."""
        with self._urgent():
            done = plan(batches, self.last_seq, self._lookup, time.time(), self.window)
            if not done.rows and not done.keys:
                return done  # only resends and refusals: nothing to write
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                at = max(time.time(), self._last_at)   # commit times never go back
                db.executemany("INSERT INTO events (seq, data, last, at, codec) VALUES (?, ?, ?, ?, ?)",
                               _chunks(done, at, self.row_codec))
                if done.keys:
                    db.executemany("INSERT OR REPLACE INTO batch_keys VALUES (?, ?, ?, ?, ?, ?)", done.keys)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('last_seq', ?)", (done.last_seq,))
                db.execute("COMMIT")
            except (sqlite3.Error, OSError, ValueError, OverflowError) as e:
                _rollback(db)
                unset_seqs(batches, done)  # seqs were not taken
                raise JournalUnavailable(describe_error(self.path, e)) from e
            if self.first_kept > self.last_seq and done.rows:
                self.first_kept = done.rows[0][0]
            self.last_seq = done.last_seq
            self._last_at = at
            self.commits += 1
            self._sidecar.write(done.last_seq)   # what the next start checks the file against
        return done

    def _lookup(self, producer: str, batch: int) -> KeyRecord | None:
        return self._db.execute("SELECT digest, first, last, at FROM batch_keys WHERE producer = ? AND batch = ?",
                                (producer, batch)).fetchone()

    def read(self, after: int, limit: int) -> list[dict[str, Any]]:
        with self._urgent():
            if after + 1 < self.first_kept:
                return []
            return [orjson.loads(d) for _, _, d in self._rows_after(after, limit)]

    def read_timed(self, after: int, limit: int) -> list[tuple[int, float, bytes]]:
        """``(seq, commit time, event JSON)`` of kept events with ``seq > after``."""
        with self._urgent():
            if after + 1 < self.first_kept:
                return []
            return list(self._rows_after(after, limit))

    def _raw_rows(self, after: int, upto: int | None = None) -> Any:
        """The stored rows ``(first, last, at, data, codec)`` that hold the kept events
        with ``seq > after`` (and ``<= upto``), in order (a cursor: under the lock)."""
        db = self._db
        start = db.execute("SELECT MAX(seq) FROM events WHERE seq <= ?", (after + 1,)).fetchone()[0]
        end = upto if upto is not None else 1 << 62
        return db.execute("SELECT seq, last, at, data, codec FROM events WHERE seq >= ? AND seq <= ? ORDER BY seq",
                          (start if start is not None else after + 1, end))

    def _rows_after(self, after: int, limit: int | None = None, upto: int | None = None
                    ) -> Iterator[tuple[int, float, bytes]]:
        """``(seq, commit time, event JSON)`` of the kept events with ``seq > after`` (and
        ``<= upto``), in order, at most ``limit``. A row holds one batch (``seq`` its first,
        ``last`` its last event, the events' JSON joined by newlines, zlib-compressed when
        its ``codec`` is ``CODEC_ZLIB``) or, in a journal from before, one event."""
        n = 0
        end = upto if upto is not None else 1 << 62
        for first, last, at, data, codec in self._raw_rows(after, upto):
            parts = self._row_events(first, last, data, codec)
            for i, d in enumerate(parts):
                if after < first + i <= end:
                    if limit is not None and n >= limit:
                        return
                    n += 1
                    yield first + i, at, d
            if limit is not None and n >= limit:
                return

    def _row_events(self, first: int, last: int | None, data: bytes, codec: int) -> list[bytes]:
        """The events' JSON of one stored row (``RuntimeError`` naming the row when it
        does not decode: a damaged file, or a codec of a newer version)."""
        if codec:
            data = decode_row(data, codec, f"journal {self.path}: events row at seq {first}")
        return data.split(b"\n") if last is not None else [data]

    def batch_range(self, producer: str, batch: int) -> tuple[int, int] | None:
        """The range a committed batch key got (None: not committed within the window)."""
        with self._urgent():
            return _live_range(self._lookup(producer, batch), time.time() - self.window)

    def history(self, at: float) -> History | None:
        """The state at ``at`` (the hub's commit clock) as the newest snapshot at or before
        it + the events after that snapshot committed by ``at``; None when the log no
        longer holds that moment (compacted)."""
        with self._urgent():
            db = self._db
            row = db.execute("SELECT seq, last, at FROM events WHERE at <= ? ORDER BY at DESC, seq DESC LIMIT 1",
                             (at,)).fetchone()
            if row is None:   # before every kept event: only an empty log's start is known
                if self.first_kept > 1:
                    return None
                return History(0, None, None, [])
            target, seq_at = row[1] or row[0], row[2]
            snap = db.execute("SELECT seq, data, parts, codec FROM snapshots WHERE seq <= ? ORDER BY seq DESC "
                              "LIMIT 1", (target,)).fetchone()
            base, blob = (snap[0], self._snapshot_blob(*snap[:3])) if snap else (0, None)
            if base + 1 < self.first_kept and base < target:
                return None
            rows = self._raw_rows(base, upto=target).fetchall()
        # decompressed and decoded outside the lock, one orjson call per stored row
        events: list[dict[str, Any]] = []
        ats: list[float] = []
        for first, last, row_at, data, codec in rows:
            if codec:
                data = decode_row(data, codec, f"journal {self.path}: events row at seq {first}")
            if last is None:
                lo, hi, evs = first, first, [orjson.loads(data)]
            else:
                lo, hi = max(first, base + 1), min(last, target)
                evs = orjson.loads(b"[" + data.replace(b"\n", b",") + b"]")  # orjson writes no raw newline
                if lo != first or hi != last:
                    evs = evs[lo - first:hi - first + 1]
            if lo <= hi:
                events.extend(evs)
                ats.extend([row_at] * len(evs))
        data = orjson.loads(self._snapshot_json(base, blob, snap[3])) if snap else None
        return History(target, seq_at, data, events, ats)

    def expire_keys(self) -> int:
        """Forget batch keys committed longer ago than the window, ``COMPACT_CHUNK`` rows
        per transaction; returns how many."""
        horizon = time.time() - self.window
        sql = "DELETE FROM batch_keys WHERE rowid IN (SELECT rowid FROM batch_keys WHERE at < ? LIMIT ?)"
        with self._step():  # the usual case, nothing to forget, costs no write (no fsync)
            if self._db.execute("SELECT 1 FROM batch_keys WHERE at < ? LIMIT 1", (horizon,)).fetchone() is None:
                return 0
        n, total = COMPACT_CHUNK, 0
        while n >= COMPACT_CHUNK:
            n = self._tx((sql, (horizon, COMPACT_CHUNK)))
            total += n
        return total

    # ------------------------------------------------------------------ compaction
    def compact(self, seq: int, snapshot: bytes | dict[str, Any], keep: int) -> int:
        """Store ``snapshot`` (the state at ``seq``: JSON bytes, or a dict to encode), then
        delete older snapshots, events ``<= seq - keep`` and batch rows nobody can resend
        any more. Returns events dropped.

        Runs as the steps below, each a few short transactions that take the journal lock
        only briefly, so ``append``/``read`` from other threads interleave; the journal
        recovers exactly after a crash between any two of them. A snapshot already
        stored at ``seq`` or later is kept (the same seq is the same state)."""
        blob = _snapshot_bytes(snapshot)
        with self._compacting, self._checkpointing():
            self.store_snapshot(seq, blob)
            upto = seq - keep
            if self.retain_s > 0:   # and nothing committed within the retention
                with self._step():
                    row = self._db.execute("SELECT seq, last FROM events WHERE at >= ? ORDER BY at, seq LIMIT 1",
                                           (time.time() - self.retain_s,)).fetchone()
                    if row is not None:
                        upto = min(upto, row[0] - 1)
                    # only up to a snapshot: every kept event can be replayed from one
                    snap = self._db.execute("SELECT MAX(seq) FROM snapshots WHERE seq <= ?", (upto,)).fetchone()[0]
                upto = min(upto, snap if snap is not None else 0)
            dropped = self.drop_events_upto(upto)
            self.drop_snapshots_before(self._snapshots_to_keep())
            self.expire_keys()
        return dropped

    def _snapshots_to_keep(self) -> int:
        """The oldest snapshot a replay can still need: the newest one at or before the
        first kept event (older ones are dropped)."""
        with self._step():
            row = self._db.execute("SELECT MAX(seq) FROM snapshots WHERE seq < ?", (self.first_kept,)).fetchone()
            if row[0] is not None:
                return row[0]
            return self._db.execute("SELECT COALESCE(MIN(seq), 0) FROM snapshots").fetchone()[0]

    @contextlib.contextmanager
    def _checkpointing(self) -> Iterator[None]:
        """While compacting: no automatic checkpoint in the commits (it would copy the
        WAL into the database under the lock, ~10-30 ms per 4 MB); instead a second
        connection checkpoints (PASSIVE: it never blocks the writer) after every step,
        outside the lock. Autocheckpointing is back on afterwards."""
        with self._lock:
            self._db.execute("PRAGMA wal_autocheckpoint=0")
        side = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._side = side
        try:
            yield
        finally:
            self._side = None
            with contextlib.suppress(sqlite3.Error):
                side.execute("PRAGMA wal_checkpoint(PASSIVE)")
            side.close()
            with self._lock:
                self._db.execute("PRAGMA wal_autocheckpoint=1000")

    def _checkpoint(self) -> None:
        """Between compaction steps: copy the WAL into the database without the lock."""
        side = self._side
        if side is not None:
            side.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _tx(self, *statements: tuple[str, tuple[Any, ...]]) -> int:
        """Run ``statements`` in one transaction under the lock; rows changed by the last."""
        with self._step():
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                n = 0
                for sql, args in statements:
                    n = db.execute(sql, args).rowcount
                db.execute("COMMIT")
            except BaseException:
                _rollback(db)
                raise
        self._checkpoint()
        return n

    def store_snapshot(self, seq: int, blob: bytes) -> None:
        """Compaction step 1: write ``blob`` as parts of ``SNAPSHOT_PART`` bytes, one
        transaction each; the last part and the ``snapshots`` row commit together, and
        only that commit makes the snapshot visible to ``recover``."""
        with self._step():
            newest = self._db.execute("SELECT MAX(seq) FROM snapshots").fetchone()[0]
        if newest is not None and newest >= seq:
            return
        blob = zlib.compress(blob, SNAPSHOT_ZLIB_LEVEL)   # without the GIL, in this worker thread
        view = memoryview(blob)    # parts without copies
        pieces = [view[i:i + SNAPSHOT_PART] for i in range(0, len(blob), SNAPSHOT_PART)] or [view]
        put = "INSERT OR REPLACE INTO snapshot_parts VALUES (?, ?, ?)"
        for part, piece in enumerate(pieces[:-1]):
            self._tx((put, (seq, part, piece)))
        self._tx((put, (seq, len(pieces) - 1, pieces[-1])),
                 ("INSERT OR REPLACE INTO snapshots (seq, data, parts, at, codec, size) VALUES (?, ?, ?, ?, ?, ?)",
                  (seq, b"", len(pieces), time.time(), CODEC_ZLIB, len(blob))))
        self._thin_snapshots(seq)

    def _thin_snapshots(self, newest: int) -> None:
        """Keep older snapshots (for replays) at least ``SNAPSHOT_GAP_S`` apart: the one
        stored just before ``newest`` goes when it is younger than that after the one
        before it. Then, while all of them take more than ``replay_budget`` bytes, thin
        them evenly: of the ones between the oldest and the newest (both stay), the one
        whose neighbours are the fewest events apart goes."""
        with self._step():
            rows = self._db.execute("SELECT seq, at FROM snapshots WHERE seq < ? ORDER BY seq DESC LIMIT 2",
                                    (newest,)).fetchall()
        if len(rows) == 2 and rows[0][1] - rows[1][1] < SNAPSHOT_GAP_S:
            self._drop_snapshot(rows[0][0])
        with self._step():
            kept = self._db.execute("SELECT seq, size FROM snapshots ORDER BY seq").fetchall()
        total = sum(size for _, size in kept)
        while total > self.replay_budget and len(kept) > 2:
            i = thinnest([k[0] for k in kept])
            self._drop_snapshot(kept[i][0])
            total -= kept.pop(i)[1]
            self.snapshots_thinned += 1

    def _drop_snapshot(self, seq: int) -> None:
        """Delete one snapshot: its row first (it no longer exists), then its parts."""
        self._tx(("DELETE FROM snapshots WHERE seq = ?", (seq,)))
        while self._tx(("DELETE FROM snapshot_parts WHERE rowid IN (SELECT rowid FROM "
                        "snapshot_parts WHERE seq = ? LIMIT 4)", (seq,))):
            pass

    def drop_snapshots_before(self, seq: int) -> None:
        """Compaction step 2: delete snapshots older than ``seq`` (their rows first, in one
        transaction, then their parts a few at a time). Only after ``store_snapshot``."""
        self._tx(("DELETE FROM snapshots WHERE seq < ?", (seq,)))
        while self._tx(("DELETE FROM snapshot_parts WHERE rowid IN (SELECT rowid FROM "
                        "snapshot_parts WHERE seq < ? LIMIT 4)", (seq,))):
            pass

    def drop_events_upto(self, upto: int) -> int:
        """Compaction step 3: delete events ``<= upto``, oldest first, ``COMPACT_CHUNK``
        per transaction; ``first_kept`` moves with every chunk (no hole is ever readable).
        Only after a snapshot at ``upto`` or later is stored. Returns events deleted."""
        dropped = 0
        with self._step():  # only whole rows go: keep the row (batch) that holds upto and upto + 1
            row = self._db.execute("SELECT seq, last FROM events WHERE seq <= ? ORDER BY seq DESC LIMIT 1",
                                   (upto,)).fetchone()
        if row is not None and (row[1] or row[0]) > upto:
            upto = row[0] - 1
        while True:
            with self._step():
                lo = self.first_kept
                hi = min(upto, lo + COMPACT_CHUNK - 1)
                if hi < lo:
                    return dropped
                db = self._db
                db.execute("BEGIN IMMEDIATE")
                try:
                    if db.execute("DELETE FROM events WHERE seq BETWEEN ? AND ?", (lo, hi)).rowcount:
                        dropped += hi - lo + 1  # seqs are contiguous: every one of lo..hi was kept
                    db.execute("COMMIT")
                except BaseException:
                    _rollback(db)
                    raise
                self.first_kept = hi + 1
            self._checkpoint()

    def stats(self) -> dict[str, float]:
        n = max(0, self.last_seq - self.first_kept + 1)  # seqs are contiguous
        size = sum(p.stat().st_size for p in (self.path, Path(str(self.path) + "-wal")) if p.exists())
        return {"journal_events": n, "journal_commits": self.commits, "journal_bytes": size}

    def close(self) -> None:
        """Close the file and give up the journal's lock (the next hub may open it)."""
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._sidecar.release()


def _chunks(done: GroupCommit, at: float, codec: int = CODEC_RAW) -> list[tuple[int, bytes, int, float, int]]:
    """The rows of a group commit: one per fresh batch, ``(first, events joined by
    newlines, last, commit time, codec)`` (orjson never writes a raw newline: it escapes
    those in strings); with ``CODEC_ZLIB`` the joined bytes are compressed (zlib level
    ``ROW_ZLIB_LEVEL``, which runs without the GIL: the hub's loop goes on meanwhile)."""
    rows, out, i = done.rows, [], 0
    for b in done.fresh:
        first, last = done.outcomes[b].range  # type: ignore[union-attr]
        n = last - first + 1
        data = b"\n".join([d for _, d in rows[i:i + n]])
        if codec == CODEC_ZLIB:
            data = zlib.compress(data, ROW_ZLIB_LEVEL)
        out.append((first, data, last, at, codec))
        i += n
    return out


def open_journal(path: str | Path | None, keep: int = 100_000, *,
                 dedupe_window: float = DEDUPE_WINDOW_S, new_epoch: bool = False, retain_s: float = 0.0,
                 replicas: int = 1, replay_budget: int = REPLAY_BUDGET) -> Journal:
    """``SqliteJournal(path)``, a :class:`MemoryJournal` when ``path`` is None, or for
    ``nats://HOST:PORT[,HOST:PORT...]/STREAM`` a (not yet connected) JetStream log
    (:mod:`wallboard.hub.jetstream`). Raises :class:`JournalRefused` (one line to print)
    when the file must not be trusted, or the URL is not one the hub can use."""
    if path is None:
        return MemoryJournal(keep, dedupe_window=dedupe_window)
    if "://" in str(path):
        if not str(path).startswith("nats://"):
            raise JournalRefused(f"journal {path}: expected a SQLite file path or nats://HOST:PORT/STREAM", "foreign")
        from .jetstream import JetStreamJournal, import_nats

        try:
            import_nats()
        except ImportError:
            raise JournalRefused(f"journal {path}: the JetStream log needs nats-py: pip install "
                                 "'wallboard[cluster]'", "missing") from None

        try:
            return JetStreamJournal(str(path), replicas=replicas, dedupe_window=dedupe_window,  # type: ignore[return-value]
                                    retain_s=retain_s, replay_budget=replay_budget)
        except ValueError as e:
            raise JournalRefused(str(e), "foreign") from None
    return SqliteJournal(path, dedupe_window=dedupe_window, new_epoch=new_epoch, retain_s=retain_s,
                         replay_budget=replay_budget)
