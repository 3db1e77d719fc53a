"""What a journal file must be before the hub trusts it, and who holds it.

:class:`Sidecar` is the file ``<journal>.lock`` next to a SQLite journal. The hub holds an
OS lock on it (``fcntl.flock``) for as long as it has the journal open, so a second hub
on the same journal refuses to start, naming the pid that holds it. It also keeps, in one
fixed-size record rewritten after every commit (``pwrite``, no fsync: it survives the
process, kill -9 included, and may only lag the journal after a power loss), the log's
**epoch** (a random id created with the journal) and the last committed seq. So at the
next start :func:`check_journal` can tell that a journal which existed is gone or empty,
or ends before what was committed (its ``-wal`` lost or garbled after kill -9, a restored
backup), or is another log than the one this hub served.

Every refusal is :class:`JournalRefused`, one line naming the file, the damage and the
way out: ``--new-epoch`` (starts a new epoch: what the file still holds is kept when it
can be read, a damaged file is moved aside to ``<journal>.damaged-<time>``, and walls
resync because the epoch changed). A file that is not a wallboard journal (not SQLite, or
SQLite with other tables) is never touched, with or without ``--new-epoch``.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import orjson

#: ``PRAGMA application_id`` of a wallboard journal ("WBJL").
APPLICATION_ID = 0x57424A4C
#: The tables a wallboard journal may hold (older versions had ``batches``).
JOURNAL_TABLES = frozenset({"events", "snapshots", "snapshot_parts", "batch_keys", "batches", "meta"})
RECORD_SIZE = 256
_SQLITE_MAGIC = b"SQLite format 3\x00"
_WAY_OUT = "restore it, or start a new epoch with --new-epoch (walls resync)"


class JournalRefused(Exception):
    """The hub must not start on this journal; ``str()`` is the one line to print.
    ``kind``: ``locked``, ``missing``, ``foreign``, ``damaged``, ``continuity`` or
    ``disk_full`` (``--new-epoch`` gets past ``missing``, ``damaged`` and ``continuity``)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def new_epoch() -> str:
    return uuid.uuid4().hex[:16]


@dataclass
class SidecarState:
    epoch: str
    seq: int
    pid: int


class Sidecar:
    """The lock and last-known-state file of one journal (see the module docstring)."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.path = Path(f"{journal}.lock")
        self.fd: int | None = None
        self.previous: SidecarState | None = None
        self.epoch = ""

    def acquire(self) -> None:
        """Take the lock (refuse naming the holder's pid) and read what the last hub left."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            state = _parse(os.pread(fd, RECORD_SIZE, 0))
            os.close(fd)
            holder = f"pid {state.pid}" if state is not None else "another process"
            raise JournalRefused(f"journal {self.journal} is in use by another hub ({holder} holds "
                                 f"{self.path}); stop that hub first, or give this one another --journal", "locked") from None
        self.fd = fd
        self.previous = _parse(os.pread(fd, RECORD_SIZE, 0))

    def write(self, seq: int) -> None:
        """Record the last committed seq (after every commit; a few microseconds)."""
        if self.fd is not None:
            data = orjson.dumps({"epoch": self.epoch, "seq": seq, "pid": os.getpid()})
            os.pwrite(self.fd, data.ljust(RECORD_SIZE - 1) + b"\n", 0)

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)   # closing the descriptor drops the flock


def _parse(raw: bytes) -> SidecarState | None:
    try:
        obj = orjson.loads(raw.strip() or b"null")
        return SidecarState(str(obj["epoch"]), int(obj["seq"]), int(obj["pid"])) if obj else None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def move_aside(path: Path) -> Path:
    """Rename a damaged journal (and its -wal/-shm) to ``<name>.damaged-<time>``."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            src.rename(Path(f"{target}{suffix}"))
    return target


def check_file(path: Path, previous: SidecarState | None, allow_new_epoch: bool) -> bool:
    """Before SQLite opens ``path``: refuse a missing/empty journal that existed, a file
    that is not SQLite. With ``allow_new_epoch`` an empty or missing one starts over.
    True when there is no journal yet (SQLite creates it)."""
    wal = Path(f"{path}-wal")
    size = path.stat().st_size if path.exists() else None
    if not size:
        had = previous is not None and previous.seq > 0
        wal_size = wal.stat().st_size if wal.exists() else 0
        if had or wal_size:
            what = "missing" if size is None else "empty (0 bytes)"
            why = (f"the hub had committed seq 1..{previous.seq} of epoch {previous.epoch} to it"
                   if previous is not None and had else f"its -wal file holds {wal_size} bytes")
            if not allow_new_epoch:
                raise JournalRefused(f"journal {path}: {what}, but {why}; {_WAY_OUT}", "missing")
            if size is not None or wal.exists():
                move_aside(path)
        return True
    with path.open("rb") as fh:
        head = fh.read(16)
    if head != _SQLITE_MAGIC:
        raise JournalRefused(f"journal {path}: not an SQLite database (it starts with {head[:16]!r}); it is "
                             "not a wallboard journal and is left untouched: give --journal another path", "foreign")
    return False


def check_schema(db: sqlite3.Connection, path: Path, previous: SidecarState | None, allow_new_epoch: bool) -> None:
    """After opening, before anything is written: pass a wallboard journal (application
    id, or an older version's tables); refuse a foreign SQLite file (other tables, or none
    at all), except an empty one the sidecar says is ours (its tables were in the lost
    ``-wal``): that one is short of what was committed, unless ``allow_new_epoch``."""
    app = db.execute("PRAGMA application_id").fetchone()[0]
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if app == APPLICATION_ID or (app == 0 and "events" in tables and tables <= JOURNAL_TABLES):
        return
    if app == 0 and not tables and previous is not None:
        if not allow_new_epoch:
            check_continuity(path, previous.epoch, 0, previous)
        return
    what = f"application id {app:#x}" if app else (
        "tables " + ", ".join(sorted(tables)[:5]) if tables else "no tables")
    raise JournalRefused(f"journal {path}: an SQLite file that is not a wallboard journal ({what}); it is left "
                         "untouched: give --journal another path", "foreign")


def quick_check(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a file in which SQLite's ``quick_check`` finds damage (a truncated file,
    garbled pages), naming its first finding."""
    rows = db.execute("PRAGMA quick_check(1)").fetchall()
    first = str(rows[0][0]) if rows else "no answer"
    if first != "ok":
        raise JournalRefused(f"journal {path}: damaged (integrity check: {first[:200]}); restore it, or start a new "
                             "epoch with --new-epoch (the damaged file is moved aside; walls resync)", "damaged")


def check_continuity(path: Path, epoch: str, last_seq: int, previous: SidecarState | None) -> None:
    """Refuse a journal that is another log than the last one served here, or that ends
    before the seq the hub had committed (lost or garbled -wal, restored backup)."""
    if previous is None:
        return
    if previous.epoch and previous.epoch != epoch:
        raise JournalRefused(f"journal {path}: holds epoch {epoch}, but the hub here last served epoch "
                             f"{previous.epoch} (another file was put in its place?); {_WAY_OUT}", "continuity")
    if last_seq < previous.seq:
        raise JournalRefused(f"journal {path}: ends at seq {last_seq}, but the hub had committed up to seq "
                             f"{previous.seq} (its -wal file was lost or damaged after a crash, or an older "
                             f"copy was restored); {_WAY_OUT}", "continuity")


@contextlib.contextmanager
def refusing(path: Path) -> Iterator[None]:
    """Turn SQLite's errors while opening into one-line refusals (disk full named as such)."""
    try:
        yield
    except JournalRefused:
        raise
    except sqlite3.DatabaseError as e:
        name = getattr(e, "sqlite_errorname", "")
        if name == "SQLITE_FULL" or "disk is full" in str(e):
            raise JournalRefused(f"disk full: journal {path}: {e}; free space and start again", "disk_full") from None
        raise JournalRefused(f"journal {path}: damaged ({e}); restore it, or start a new epoch with --new-epoch "
                             "(the damaged file is moved aside; walls resync)", "damaged") from None
    except OSError as e:
        if e.errno == 28:
            raise JournalRefused(f"disk full: journal {path}: {e.strerror}; free space and start again",
                                 "disk_full") from None
        raise JournalRefused(f"journal {path}: cannot open ({e.strerror or e})", "damaged") from None
