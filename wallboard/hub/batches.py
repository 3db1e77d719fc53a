"""What one group commit does with each producer batch: number it, refuse it, or answer it
as a duplicate. Storage-free (no SQLite, no asyncio): both journals call :func:`plan`.

A producer batch may carry a key ``(producer, batch)`` and the digest of its content
(:func:`batch_digest`, taken by the hub before it adds ``ts``). The log keeps, for every
key it has **committed**, the range it was committed with, the digest and the commit
time, for ``dedupe_window`` seconds. :func:`plan` then decides per batch:

* the key is unknown (or its record is older than the window): the batch is **fresh**,
  its events get the next seqs;
* the key is known with the same digest (or a record without a digest, written by an
  older version): a **duplicate**, answered with the range it was committed with;
* the key is known with another digest: :class:`BatchRefused` ``conflict`` (terminal:
  the producer reused a key for other events; nothing is applied, nothing is acked);
* an event cannot be stored (JSON the encoder refuses: nesting over 255, an integer over
  64 bits) or the key is out of range: :class:`BatchRefused` ``bad_value`` for that
  batch alone; its neighbours in the group commit go on.

The same key twice in one group: the second is judged against the first as if the first
were committed (it is, in the same transaction, or neither is).
"""
from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from wallboard.protocol import MAX_INT

#: Largest batch key: the protocol's largest integer (2^53 - 1, exact in every JSON reader).
MAX_BATCH_ID = MAX_INT

#: Seconds a committed batch key is remembered (``--dedupe-window``).
DEDUPE_WINDOW_S = 24 * 3600.0
#: Seconds a producer should wait before resending after ``unavailable``.
RETRY_AFTER_S = 1.0


def batch_digest(events: list[dict[str, Any]]) -> bytes:
    """16-byte digest of a batch's canonical JSON (sorted keys): the same events give the
    same digest whatever the key order of their objects."""
    data = orjson.dumps(events, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass
class Batch:
    """One producer batch to append: validated events (``seq`` is set by ``append``),
    the optional key ``(producer, batch)`` and the digest of its content."""

    events: list[dict[str, Any]]
    producer: str | None = None
    batch: int | None = None
    digest: bytes | None = None
    #: bytes it arrived in (0: unknown); group commits are capped by it too
    size: int = 0
    #: whose turn it takes in a group commit (the sender's address; None: by ``producer``)
    lane: str | None = None

    @property
    def key(self) -> tuple[str, int] | None:
        return (self.producer, self.batch) if self.producer is not None and self.batch is not None else None


@dataclass(frozen=True)
class Appended:
    """A batch the log holds: its range, and whether this append was a resend of it."""

    first: int
    last: int
    duplicate: bool = False

    @property
    def range(self) -> tuple[int, int]:
        return (self.first, self.last)


class BatchRefused(Exception):
    """The log refused this batch for good (``code`` ``conflict`` or ``bad_value``;
    ``index``/``field`` name the event when one is to blame). Resending it is useless."""

    def __init__(self, code: str, message: str, *, index: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.index, self.field = code, message, index, field


class JournalUnavailable(Exception):
    """The log could not commit (disk full, I/O error, locked, closed): nothing of the group
    was committed; every producer should resend the same batch after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: float = RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.message, self.retry_after = message, retry_after


#: What a key lookup returns: (digest or None, first, last, committed_at) or None.
KeyRecord = tuple[bytes | None, int, int, float]


class KeyMemory:
    """Committed batch keys held in memory (the memory and JetStream journals): each key's
    record ``(digest, first, last, committed at)``, forgotten ``window`` seconds after
    its commit. Not thread-safe: the journal holds its lock around it."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.records: dict[tuple[str, int], KeyRecord] = {}
        self._order: deque[tuple[float, tuple[str, int]]] = deque()   # commit time order

    def get(self, producer: str, batch: int) -> KeyRecord | None:
        return self.records.get((producer, batch))

    def put(self, key: tuple[str, int], rec: KeyRecord) -> None:
        self.records[key] = rec
        self._order.append((rec[3], key))

    def __len__(self) -> int:
        return len(self._order)

    def expire(self, now: float) -> int:
        """Forget keys committed before ``now - window``; returns how many."""
        n, order = 0, self._order
        while order and order[0][0] < now - self.window:
            at, key = order.popleft()
            rec = self.records.get(key)
            if rec is not None and rec[3] == at:
                del self.records[key]
                n += 1
        return n
Outcome = Appended | BatchRefused


@dataclass
class GroupCommit:
    """The result of :func:`plan`: per batch an outcome, and what to write."""

    outcomes: list[Outcome] = field(default_factory=list)
    rows: list[tuple[int, bytes]] = field(default_factory=list)           # (seq, event JSON)
    keys: list[tuple[str, int, bytes | None, int, int, float]] = field(default_factory=list)
    fresh: list[int] = field(default_factory=list)                        # indexes of fresh batches
    last_seq: int = 0

    @property
    def ranges(self) -> list[tuple[int, int] | BatchRefused]:
        """Per batch: the range it holds in the log, or the refusal."""
        return [o.range if isinstance(o, Appended) else o for o in self.outcomes]


def plan(batches: list[Batch], last_seq: int, lookup: Callable[[str, int], KeyRecord | None], now: float,
         window: float) -> GroupCommit:
    """Decide every batch of one group commit (see the module docstring). Sets ``seq`` on
    the events of fresh batches only; ``rows`` are their encoded events, ``keys`` the key
    records to store with them. Nothing is written here."""
    out = GroupCommit(last_seq=last_seq)
    group: dict[tuple[str, int], KeyRecord] = {}
    horizon = now - window
    for b in batches:
        key = b.key
        if key is not None:
            if not 0 <= key[1] <= MAX_BATCH_ID:
                out.outcomes.append(BatchRefused("bad_value", f"batch key {key[1]} out of range "
                                                 f"(expected 0..{MAX_BATCH_ID})", field="batch"))
                continue
            rec = group.get(key)
            if rec is None:
                rec = lookup(*key)
                if rec is not None and rec[3] < horizon:
                    rec = None  # remembered longer than the window: forgotten
            if rec is not None:
                digest, first, last, _ = rec
                if digest is not None and b.digest is not None and digest != b.digest:
                    out.outcomes.append(BatchRefused(
                        "conflict", f"producer {key[0]!r} batch {key[1]} was committed as seq {first}..{last} "
                        "with other events; a new batch needs a new key (nothing applied)", field="batch"))
                else:
                    out.outcomes.append(Appended(first, last, duplicate=True))
                continue
        encoded = _encode(b.events, out.last_seq)
        if isinstance(encoded, BatchRefused):
            out.outcomes.append(encoded)
            continue
        first, last = out.last_seq + 1, out.last_seq + len(b.events)
        if last < first:  # an empty batch takes no seq
            out.outcomes.append(Appended(first, out.last_seq))
            continue
        out.rows.extend(encoded)
        out.last_seq = last
        out.fresh.append(len(out.outcomes))
        out.outcomes.append(Appended(first, last))
        if key is not None:
            group[key] = (b.digest, first, last, now)
            out.keys.append((key[0], key[1], b.digest, first, last, now))
    return out


def _encode(events: list[dict[str, Any]], last_seq: int) -> list[tuple[int, bytes]] | BatchRefused:
    """The events with seqs after ``last_seq``, encoded; on a refusal no seq stays set."""
    rows: list[tuple[int, bytes]] = []
    seq = last_seq
    for i, ev in enumerate(events):
        seq += 1
        ev["seq"] = seq
        try:
            rows.append((seq, memoryview(orjson.dumps(ev)).tobytes()))  # right-sized copy
        except (orjson.JSONEncodeError, TypeError, ValueError) as e:
            for e2 in events[:i + 1]:
                e2.pop("seq", None)
            return BatchRefused("bad_value", f"event {i} cannot be stored: {e}", index=i)
    return rows


def unset_seqs(batches: list[Batch], commit: GroupCommit) -> None:
    """After a failed write: take back the seqs ``plan`` set (the batches were not taken)."""
    for i in commit.fresh:
        for ev in batches[i].events:
            ev.pop("seq", None)


__all__ = ["Batch", "KeyMemory", "Appended", "BatchRefused", "JournalUnavailable", "GroupCommit", "plan", "batch_digest",
           "unset_seqs", "DEDUPE_WINDOW_S", "MAX_BATCH_ID", "RETRY_AFTER_S"]
