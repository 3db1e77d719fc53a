"""What one peer may cost the hub: rate, queued bytes, event bytes, snapshots (issue 13).

Every bound here is set by :class:`~wallboard.hub.server.HubConfig` (and its CLI flag),
never by what arrives; ``docs/security.md`` lists them with their defaults:

* :class:`TokenBucket` -- ``rate_limit`` events/s per producer (its address and token,
  over its websocket connections and HTTP requests: :class:`wallboard.hub.admission.RateBuckets`)
  with a burst of one second's worth. A batch larger than the burst can
  never be admitted: :meth:`TokenBucket.over_burst` says so (a terminal ``too_large``),
  instead of admitting it into debt and locking later batches out.
* :class:`IngestQueue` -- ``max_ingest_bytes`` of events accepted but not yet committed,
  over all producers; past it a batch is answered ``unavailable`` with ``retry_after``
  (nothing applied: resend the same batch).
* :func:`check_event_bytes` -- ``max_event_bytes`` per event (at most the protocol's
  ``MAX_EVENT``): a terminal ``too_large`` naming the event.
* :class:`SnapshotBudget` -- ``snapshot_budget`` snapshots per address per minute; the
  next ``hello`` that needs one is refused with ``retry_after``.

No I/O here: the hub calls these from its event loop.
"""
from __future__ import annotations

import math
import time
from collections import deque
from typing import Any, Callable

import orjson

from wallboard import protocol as P

from .batches import JournalUnavailable


class TokenBucket:
    """``rate`` events/s with a burst of ``burst`` events (default: one second's worth).

    ``take(n)`` admits a batch of ``n <= burst`` events when the bucket holds ``n``
    tokens (and takes them); the level never goes below zero, so one producer's big
    batch cannot lock the next batches out for longer than the refill of what it took.
    A batch of more than ``burst`` events is never admitted: check :meth:`over_burst`
    first and refuse it for good."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else rate)
        self.level = self.burst
        self._clock = clock
        self.t = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.burst, self.level + (now - self.t) * self.rate)
        self.t = now

    def over_burst(self, n: int) -> bool:
        """True when a batch of ``n`` events can never be admitted (``n > burst``)."""
        return n > self.burst

    def take(self, n: int) -> bool:
        """Admit ``n`` events (True, tokens taken) or not (False, nothing taken)."""
        self._refill()
        if n > self.level:
            return False
        self.level -= n
        return True

    def retry_after(self, n: int) -> float:
        """Seconds until ``n`` (<= burst) tokens are there (at least 0.05 s)."""
        self._refill()
        return max(0.05, round((min(n, self.burst) - self.level) / self.rate, 3))

    def over_burst_message(self, n: int, where: str) -> str:
        return (f"batch of {n} events is larger than the rate limit allows at once ({self.burst:.0f} events: "
                f"--rate-limit {self.rate:g} events/s {where}); it can never be admitted: split it into "
                f"batches of at most {math.floor(self.burst)} events (nothing applied)")


class IngestFull(JournalUnavailable):
    """``unavailable`` because :class:`IngestQueue` is full (not a journal failure)."""


class IngestQueue:
    """Bytes of events accepted and waiting for their commit, over all producers, and per
    *lane* (the sender's address): one address may hold at most ``share`` bytes (default
    a quarter of ``limit``), so a flooder cannot fill the queue for everyone, and only one
    batch at a time while ``contended`` (several addresses sending).

    ``admit(n, lane)`` takes ``n`` bytes when they fit under ``limit`` and the lane's
    share (or when nothing is waiting there: a batch alone always goes) and returns True;
    ``release(n, lane)`` gives them back when the batch is settled (committed, refused or
    failed) and calls ``on_release``. Lane ``None`` (the hub's own producers) has no share."""

    def __init__(self, limit: int, share: int | None = None) -> None:
        self.limit = int(limit)
        self.share = int(share) if share is not None else max(1, self.limit // 4)
        self.bytes = 0
        self.batches = 0
        self.peak = 0
        self.refused = 0
        self.lanes: dict[str, int] = {}
        self.on_release: Callable[[], None] | None = None
        #: set while several addresses send: then each holds one batch at a time
        self.contended = False

    def _fits_all(self, n: int) -> bool:
        return not self.bytes or self.bytes + n <= self.limit

    def _fits_lane(self, n: int, lane: str | None) -> bool:
        held = self.lanes.get(lane, 0) if lane is not None else 0
        return not held or (not self.contended and held + n <= self.share)

    def room(self, n: int, lane: str | None = None) -> bool:
        """Whether ``n`` more bytes would be admitted now (checked before a frame is even
        parsed: a full queue refuses without the work of decoding and validating)."""
        return self._fits_all(n) and self._fits_lane(n, lane)

    def admit(self, n: int, lane: str | None = None) -> bool:
        if not self.room(n, lane):
            return False
        self.bytes += n
        self.batches += 1
        if lane is not None:
            self.lanes[lane] = self.lanes.get(lane, 0) + n
        if self.bytes > self.peak:
            self.peak = self.bytes
        return True

    def release(self, n: int, lane: str | None = None) -> None:
        self.bytes = max(0, self.bytes - n)
        self.batches = max(0, self.batches - 1)
        if lane is not None:
            left = self.lanes.get(lane, 0) - n
            if left > 0:
                self.lanes[lane] = left
            else:
                self.lanes.pop(lane, None)
        if self.on_release is not None:
            self.on_release()

    def full_error(self, n: int, retry_after: float, lane: str | None = None) -> "IngestFull":
        if self._fits_all(n) and not self._fits_lane(n, lane):
            return IngestFull(
                f"ingest queue share full: {self.lanes.get(lane, 0)} bytes of events from {lane} are waiting for "
                f"their commit and this batch adds {n} (at most {self.share} bytes per address: a quarter of "
                f"--max-ingest-bytes {self.limit}; one batch while other addresses send)", retry_after=retry_after)
        return IngestFull(
            f"ingest queue full: {self.bytes} bytes of events are waiting for their commit and this batch adds "
            f"{n} (limit {self.limit} bytes over all producers, --max-ingest-bytes)", retry_after=retry_after)


#: Bytes counted for an event of a batch whose size was not measured (the hub's own
#: producers: simulator, wall controls).
EVENT_ESTIMATE = 256


def check_event_bytes(events: list[dict[str, Any]], limit: int, frame_bytes: int | None = None) -> None:
    """Raise ``too_large`` naming the first event that encodes to more than ``limit``
    bytes. ``frame_bytes`` (the size the batch arrived in) skips the measure when the
    whole frame is within the limit, i.e. in the usual case."""
    if frame_bytes is not None and frame_bytes <= limit:
        return
    for i, ev in enumerate(events):
        n = len(orjson.dumps(ev))
        if n > limit:
            raise P.ProtocolError("too_large", f"event encodes to {n} bytes", op="publish", index=i,
                                  expected=f"at most {limit} bytes per event (--max-event-bytes)",
                                  limit=limit, got=n)


class SnapshotBudget:
    """At most ``per_window`` snapshots per address within ``window`` seconds."""

    def __init__(self, per_window: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 max_addresses: int = 10_000) -> None:
        self.per_window = per_window
        self.window = window
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}
        self.max_addresses = max_addresses

    def take(self, address: str) -> float:
        """0.0 when ``address`` may have one more snapshot now (counted); else the seconds
        until it may."""
        now = self._clock()
        q = self._sent.get(address)
        if q is None:
            if len(self._sent) >= self.max_addresses:
                self._sweep(now)
            q = self._sent[address] = deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        if len(q) >= self.per_window:
            return max(0.1, round(q[0] + self.window - now, 1))
        q.append(now)
        return 0.0

    def _sweep(self, now: float) -> None:
        for a in [a for a, q in self._sent.items() if not q or q[-1] <= now - self.window]:
            del self._sent[a]
        if len(self._sent) >= self.max_addresses:  # all busy: forget the oldest half
            for a in list(self._sent)[: len(self._sent) // 2]:
                del self._sent[a]


def address_of(peer: str) -> str:
    """``host`` of a ``host:port`` peer string (IPv6 too)."""
    return peer.rsplit(":", 1)[0] if ":" in peer else peer


__all__ = ["TokenBucket", "IngestQueue", "IngestFull", "SnapshotBudget", "check_event_bytes", "address_of", "EVENT_ESTIMATE"]
