"""The frame step: drain the feed within a time budget, apply to the state, say what is dirty.

Pure (no Qt): the shell's QTimer calls :meth:`FrameDriver.step` once per frame; tests
drive it with a fake source. Work beyond the budget stays queued for the next frame and is
counted as an overrun (coalesced into the next frame, never dropped). A seq gap asks the
source to resync; a snapshot replaces the state in place so panels keep their reference.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from wallboard.protocol import ProtocolError
from wallboard.state import Dirty, LiveState, SeqGap


class FeedSource(Protocol):
    """What the frame driver needs of a feed client (``wallboard.feed.FeedClient``)."""

    def drain(self, max_items: int) -> list[tuple[str, Any]]: ...

    def resync(self, since: int) -> None: ...


@dataclass
class FrameStats:
    """Counters the header and the benchmarks read."""

    frames: int = 0
    applied: int = 0
    overruns: int = 0  # frames that left work queued for the next one (coalesced)
    resyncs: int = 0
    snapshots: int = 0
    rejects: int = 0  # feed messages refused by the decoder (counted by the feed)
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


def load_snapshot_in_place(state: LiveState, snap: dict) -> Dirty:
    """Replace ``state``'s contents with a snapshot; panels holding ``state`` see the new data."""
    loader = getattr(state, "load_snapshot", None)
    if loader is not None:
        result = loader(snap)
        if isinstance(result, Dirty):
            return result
    else:
        fresh = LiveState.from_snapshot(snap, config=state.config) if _takes_config() else LiveState.from_snapshot(snap)
        state.__dict__.clear()
        state.__dict__.update(fresh.__dict__)
    d = Dirty()
    d.all = True
    return d


def _takes_config() -> bool:
    import inspect

    try:
        return "config" in inspect.signature(LiveState.from_snapshot).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


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
        max_items: int = 64,
        clock: Callable[[], float] = time.time,
        on_item: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.state = state
        self.source = source
        self.budget_s = budget_s
        self.max_items = max_items
        self.clock = clock
        self.on_item = on_item
        self.stats = FrameStats()
        #: Event batches applied by the last :meth:`step` (read-only; for instrumentation).
        self.frame_events: list[list[dict]] = []
        self._pending: deque[tuple[str, Any]] = deque()

    def step(self) -> Dirty:
        """One frame's worth of work; returns the merged dirty set (TTL expiry included)."""
        t0 = time.perf_counter()
        now = self.clock()
        dirty = Dirty()
        applied = 0
        handled = 0
        self.frame_events = []
        while True:
            if not self._pending:
                self._pending.extend(self.source.drain(self.max_items))
                if not self._pending:
                    break
            if handled and time.perf_counter() - t0 > self.budget_s:
                self.stats.overruns += 1  # the rest waits for the next frame (coalesced)
                break
            kind, payload = self._pending.popleft()
            handled += 1
            if kind == "events":
                applied += self._apply(payload, now, dirty)
            elif kind == "snapshot":
                dirty.merge(load_snapshot_in_place(self.state, payload))
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
        dirty.merge(self.state.tick(now))
        self.stats.frames += 1
        self.stats.applied += applied
        self.stats._rate.append((now, applied))
        self.stats.last_frame_ms = (time.perf_counter() - t0) * 1000.0
        return dirty

    def _apply(self, events: list[dict], now: float, dirty: Dirty) -> int:
        if not events:
            return 0
        try:
            dirty.merge(self.state.apply(events, now))
        except SeqGap as gap:
            # Never skip a gap: drop what is queued (it is after the gap too) and resync.
            self._pending.clear()
            self.stats.resyncs += 1
            self.stats.last_reject = f"seq gap: expected {gap.expected}, got {gap.got}; resync"
            self.source.resync(self.state.seq)
            return 0
        self.state.touch(now)
        self.frame_events.append(events)
        return len(events)


def _reason(payload: Any) -> str:
    if isinstance(payload, ProtocolError):
        return str(payload)
    return str(payload)[:300]
