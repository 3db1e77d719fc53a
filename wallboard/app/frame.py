"""The frame step: drain the feed within a time budget, apply to the state, say what is dirty.

Pure (no Qt): the shell's QTimer calls :meth:`FrameDriver.step` once per frame; tests
drive it with a fake source. Work beyond the budget stays queued for the next frame and is
counted as an overrun (coalesced into the next frame, never dropped). A wall that fell
behind conflates what is queued (a device's status is "latest value wins": see
:meth:`FrameDriver._refill`), so it catches up on the newest state, not the backlog. A seq gap asks the
source to resync; a snapshot replaces the state in place so panels keep their reference.
"""
from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from wallboard.protocol import ProtocolError
from wallboard.protocol.conflate import conflate_items

_DATA = ("events", "devices")   # queued items that carry events
#: A conflation of the queue that dropped less than this share of its events is not tried
#: again for CONFLATE_RETRY_S seconds (it cost more than it saved).
MIN_CONFLATE_GAIN = 0.2
CONFLATE_RETRY_S = 2.0
from wallboard.state import Dirty, LiveState, SeqGap, SnapshotError


class FeedSource(Protocol):
    """What the frame driver needs of a feed client (``wallboard.feed.FeedClient``)."""

    def drain(self, max_items: int) -> list[tuple[str, Any]]: ...

    # optional: ``pending_events() -> int`` (events queued), which turns on conflation

    def resync(self, since: int) -> None: ...


@dataclass
class FrameStats:
    """Counters the header and the benchmarks read."""

    frames: int = 0
    applied: int = 0
    overruns: int = 0  # frames that left work queued for the next one (coalesced)
    resyncs: int = 0
    conflated: int = 0  # queued device updates not applied: a later queued one overwrote them
    snapshots: int = 0
    rejects: int = 0  # feed messages refused by the decoder (counted by the feed) + bad snapshots
    bad_snapshots: int = 0  # snapshots that did not load (counted here only)
    last_reject: str = ""
    last_frame_ms: float = 0.0
    hub_counters: dict[str, float] = field(default_factory=dict)
    _rate: deque = field(default_factory=lambda: deque(maxlen=64))

    def events_per_s(self, now: float) -> float:
        """Events applied per second over the last ~2 s of frames."""
        while self._rate and now - self._rate[0][0] > 2.0:
            self._rate.popleft()
        if len(self._rate) < 2:
            return 0.0
        span = max(1e-3, self._rate[-1][0] - self._rate[0][0])
        return sum(n for _, n in list(self._rate)[1:]) / span


def build_state(state: LiveState, snap: dict, now: float | None = None, columns: bool = False) -> LiveState:
    """A new state from a snapshot, with ``state``'s config (pure; may run off the UI thread).
    ``now`` is the wall's clock at receipt: device ages in the snapshot become local
    times (the hub's clock is never compared with ours). Raises ``SnapshotError`` for a
    snapshot that does not load. A state that kept device columns, or any state of a
    feed that asked for columnar frames (``columns``), gets them made here too, off the UI
    thread (~0.2 s for 100,000 devices: made by the first ``devices`` frame instead, on the
    UI thread, they blocked it that long once per connection)."""
    fresh = LiveState.from_snapshot(snap, config=getattr(state, "config", None), now=now)
    fleet = getattr(state, "_fleet", None)
    if columns or (fleet is not None and fleet.cols is not None):
        fresh.keep_columns()
    return fresh


def swap_state_in_place(state: LiveState, fresh: LiveState) -> Dirty:
    """Make ``state`` hold ``fresh``'s contents: panels keep their reference and see the new data."""
    state.__dict__.clear()
    state.__dict__.update(fresh.__dict__)
    return Dirty.everything()


def load_snapshot_in_place(state: LiveState, snap: dict, now: float | None = None) -> Dirty:
    """Replace ``state``'s contents with a snapshot (on the calling thread)."""
    return swap_state_in_place(state, build_state(state, snap, now))


class FrameDriver:
    """Applies what the feed delivered, within ``budget_s`` per frame.

    ``on_item`` receives the non-data items (``welcome``, ``heartbeat``, ``stats``,
    ``state``, ``error``) so the shell can show them.
    """

    def __init__(
        self,
        state: LiveState,
        source: FeedSource,
        *,
        budget_s: float = 0.006,
        max_budget_s: float = 0.020,
        max_items: int = 64,
        conflate_after: int = 4000,
        conflate_max: int = 20_000,
        apply_chunk: int = 2000,
        clock: Callable[[], float] = time.time,
        on_item: Callable[[str, Any], None] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.state = state
        self.source = source
        self.budget_s = budget_s
        #: While a backlog persists the budget grows (x1.5 a frame) up to this, leaving
        #: room to paint at 30 fps; it shrinks back once the queue is drained.
        self.max_budget_s = max(budget_s, max_budget_s)
        self._budget = budget_s
        self.max_items = max_items
        #: Behind by more than this many queued events (``source.pending_events()``), the
        #: drain conflates up to ``conflate_max`` of them at a time (0: never) and applies
        #: them in spans of at most ``apply_chunk`` events (one item each, so the frame
        #: budget is checked between them).
        self.conflate_after = conflate_after
        self.conflate_max = max(1, conflate_max)
        self.apply_chunk = max(1, apply_chunk)
        self._conflate_skip_until = 0.0   # monotonic: the last conflation dropped too little
        self.clock = clock
        self.on_item = on_item
        self.stats = FrameStats()
        #: Event batches applied by the last :meth:`step` (read-only; for instrumentation).
        self.frame_events: list[Any] = []   # events lists and DeviceBatch objects
        self._pending: deque[tuple[str, Any]] = deque()
        #: a source whose events were validated when decoded (``FeedClient.validated``)
        self._checked = bool(getattr(source, "validated", False))
        #: A snapshot being turned into a state on a worker thread (a 100,000-device
        #: snapshot takes a second or two: the UI keeps painting meanwhile).
        self._building: Future | None = None
        self._executor = executor

    def step(self) -> Dirty:
        """One frame's worth of work; returns the merged dirty set (TTL expiry included)."""
        t0 = time.perf_counter()
        now = self.clock()
        dirty = Dirty()
        applied = 0
        handled = 0
        self.frame_events = []
        if self._building is not None:
            if not self._building.done():
                return self._finish(t0, now, dirty, 0)  # keep painting the old state
            self._finish_snapshot(now, dirty)
        while self._building is None:
            if not self._pending:
                self._refill()
                if not self._pending:
                    self._budget = max(self.budget_s, self._budget / 1.5)  # caught up
                    break
            if handled and time.perf_counter() - t0 > self._budget:
                self.stats.overruns += 1  # the rest waits for the next frame (coalesced)
                self._budget = min(self.max_budget_s, self._budget * 1.5)
                break
            kind, payload = self._pending.popleft()
            handled += 1
            if kind == "events":
                applied += self._apply(payload, now, dirty)
            elif kind == "devices":
                applied += self._apply(payload, now, dirty, columnar=True)
            elif kind == "snapshot":
                if self._executor is not None:
                    self._building = self._executor.submit(build_state, self.state, payload, now,
                                                           self._columnar_feed())
                    break  # what follows the snapshot waits until it is loaded
                try:
                    dirty.merge(load_snapshot_in_place(self.state, payload, now))
                except SnapshotError as e:
                    self._bad_snapshot(e)
                    continue
                self.state.touch(now)
                self.stats.snapshots += 1
            else:
                if kind in ("heartbeat", "welcome", "stats"):
                    self.state.touch(now)
                if kind == "stats" and isinstance(payload, dict):
                    self.stats.hub_counters = payload
                if kind == "error":
                    self.stats.rejects += 1
                    self.stats.last_reject = _reason(payload)
                if self.on_item is not None:
                    self.on_item(kind, payload)
        return self._finish(t0, now, dirty, applied)

    def _columnar_feed(self) -> bool:
        """Whether the source's session offers columnar ``devices`` frames (then a state
        built from a snapshot gets its device columns at once, off the UI thread)."""
        return bool(getattr(getattr(self.source, "session", None), "columnar", False))

    def _refill(self) -> None:
        """Take the next items from the source. Behind (more than ``conflate_after``
        events queued at the source), take up to ``conflate_max`` events' worth and
        conflate each run of event batches (``protocol.conflate``): of each device only
        the updates no later one overwrites, in spans of at most ``apply_chunk`` events
        that keep the seqs honest. Caught up, one drain of ``max_items`` as before. A
        conflation that dropped less than ``MIN_CONFLATE_GAIN`` of its events is not tried
        again for ``CONFLATE_RETRY_S``."""
        items = self.source.drain(self.max_items)
        waiting = getattr(self.source, "pending_events", None)
        if (not self.conflate_after or waiting is None
                or sum(len(p) for k, p in items if k in _DATA) + waiting() <= self.conflate_after
                or time.monotonic() < self._conflate_skip_until):
            self._pending.extend(items)
            return
        total = sum(len(p) for k, p in items if k in _DATA)
        while total < self.conflate_max:
            more = self.source.drain(8)
            if not more:
                break
            items.extend(more)
            total += sum(len(p) for k, p in more if k in _DATA)
        merged, dropped = conflate_items(items, self.apply_chunk)
        self.stats.conflated += dropped
        self._pending.extend(merged)
        # Conflating costs ~0.3-0.8 us per event; it pays only when it drops a good share
        # (an apply is ~1.5-3 us). Updates spread over many devices repeat rarely within a
        # window: then leave it for a while, and look again later.
        gain = dropped / total if total else 0.0
        if gain < MIN_CONFLATE_GAIN:
            self._conflate_skip_until = time.monotonic() + CONFLATE_RETRY_S

    def _finish(self, t0: float, now: float, dirty: Dirty, applied: int) -> Dirty:
        dirty.merge(self.state.tick(now))
        self.stats.frames += 1
        self.stats.applied += applied
        self.stats._rate.append((now, applied))
        self.stats.last_frame_ms = (time.perf_counter() - t0) * 1000.0
        return dirty

    def _finish_snapshot(self, now: float, dirty: Dirty) -> None:
        fut, self._building = self._building, None
        try:
            fresh = fut.result()
        except SnapshotError as e:
            self._bad_snapshot(e)
            return
        dirty.merge(swap_state_in_place(self.state, fresh))
        self.state.touch(now)
        self.stats.snapshots += 1

    def _bad_snapshot(self, e: Exception) -> None:
        """A snapshot we cannot load leaves the old state in place and asks again."""
        self._pending.clear()
        self.stats.rejects += 1
        self.stats.bad_snapshots += 1
        self.stats.last_reject = f"bad snapshot: {e}"
        self.stats.resyncs += 1
        self.source.resync(None)

    @property
    def loading_snapshot(self) -> bool:
        return self._building is not None

    def _apply(self, events: Any, now: float, dirty: Dirty, columnar: bool = False) -> int:
        """Apply an ``events`` batch (or, ``columnar``, a ``devices`` frame's batch)."""
        if not len(events):
            return 0
        try:
            if columnar:
                dirty.merge(self.state.apply_devices(events, now))
            else:
                dirty.merge(self.state.apply(events, now, checked=self._checked))
        except SeqGap as gap:
            # Never skip a gap: drop what is queued (it is after the gap too) and resync.
            self._pending.clear()
            self.stats.resyncs += 1
            self.stats.last_reject = f"seq gap: expected {gap.expected}, got {gap.got}; resync"
            self.source.resync(self.state.seq)
            return 0
        self.state.touch(now)
        self.frame_events.append(events)   # an events list, or a devices frame's DeviceBatch
        return len(events)


def _reason(payload: Any) -> str:
    if isinstance(payload, ProtocolError):
        return str(payload)
    return str(payload)[:300]
