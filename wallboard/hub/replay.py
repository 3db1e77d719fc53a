"""The flight recorder's hub side: a wall's replay connection (``hello`` with ``at``).

A replay connection shows the past; the wall keeps its live connection beside it. The hub
answers ``welcome`` with ``replay: true`` and ``at`` (the moment shown: the one asked for,
or the earliest the log still holds), then a ``snapshot`` of the state as the hub had it
at that moment (everything committed by then, by the hub's own commit clock), then the
events committed after it at their original pace times ``speed`` (0 = paused). Its
heartbeats carry the replay clock (``at``) and ``speed``. On the connection the wall may
send ``{"op":"seek","at":T}`` (a new snapshot at T, then on from there) and
``{"op":"speed","x":X}``; ``hello.until`` stops the replay clock there (a range of history:
``wallboard record --from --to``); a ``control`` is refused (acknowledge on the live connection).
The replay clock never runs past the present: at the head of the log a replay follows new
commits as they come.

The state at T is rebuilt in a worker thread from the journal's ``history(T)`` (the
newest snapshot at or before T + the events after it committed by T, each applied at its
commit time, then expired as of T), so it is the state the live hub had at T.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Iterator

from wallboard import protocol as P
from wallboard.state import LiveState
from wallboard.state.snapshot import live_snapshot

from .fanout import events_frame

if TYPE_CHECKING:  # pragma: no cover
    from websockets.asyncio.server import ServerConnection

    from .server import Hub

log = logging.getLogger("wallboard.hub.replay")

#: Events per frame of a replay, and how often the sender looks at its clock when idle.
REPLAY_BATCH = 500
IDLE_S = 0.25


class ReplayGone(Exception):
    """The log no longer holds the moment asked for."""


def state_at(hub: "Hub", at: float) -> tuple[int, float, list[bytes]]:
    """``(seq, moment, snapshot frames)`` of the state at ``at`` (blocking: worker
    thread). The moment is ``at``, or the earliest the log holds when ``at`` is older;
    raises :class:`ReplayGone` when nothing that old or older is held."""
    with gc_paused():
        return _state_at(hub, at)


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = True


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic garbage collection while a replay state is rebuilt (~100,000 records
    and as many decoded events made at once: the collections they trigger scan them
    again and again, ~30% of a seek). Process-wide, for the second or so of a rebuild;
    nested and concurrent rebuilds share one pause, the last one out restores it."""
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def _state_at(hub: "Hub", at: float) -> tuple[int, float, list[bytes]]:
    journal = hub.journal
    hist = journal.history(at)
    if hist is None:
        first = journal.read_timed(journal.first_kept - 1, 1)
        if not first:
            raise ReplayGone(f"the log holds no moment at or before {at:.3f}")
        at = first[0][1]
        hist = journal.history(at)
        if hist is None:
            raise ReplayGone(f"the log holds no moment at or before {at:.3f}")
    snap = hist.snapshot
    # the journal's own snapshot, decoded for this call alone: taken as it is (no copies),
    # and this short-lived state leaves the process's collector (gc.freeze) alone
    state = (LiveState.from_snapshot(snap, hub.state_config, validate=False, take=True, settle_gc=False)
             if snap is not None else LiveState(hub.state_config, settle_gc=False))
    group: list[dict[str, Any]] = []
    group_at = None
    for ev_at, ev in zip(hist.ats, hist.events):   # each batch at its own commit time
        if ev["seq"] <= state.seq:
            continue
        if group and (ev_at != group_at or len(group) >= 5000):
            state.apply(group, group_at or at, checked=True)
            group = []
        group.append(ev)
        group_at = ev_at
    if group:
        state.apply(group, group_at or at, checked=True)
    state.seq = max(state.seq, hist.seq)
    state.tick(at)
    # the state is this call's own: its live records are encoded as they are (no copies)
    parts = P.split_snapshot(live_snapshot(state, now=at), hub.config.snapshot_records)
    frames = [P.encode(P.Snapshot(seq=state.seq, part=i, parts=len(parts), data=d)) for i, d in enumerate(parts)]
    return state.seq, at, frames


class Replay:
    """One replay connection: its clock, its cursor and its sender task."""

    def __init__(self, hub: "Hub", ws: "ServerConnection", name: str, seq: int, at: float, speed: float,
                 until: float | None = None) -> None:
        self.hub = hub
        self.until = until             # the replay clock stops there (hello.until)
        self.ws = ws
        self.name = name
        self.speed = speed
        self._t0 = at                  # replay clock = t0 + (monotonic - m0) * speed
        self._m0 = time.monotonic()
        self._seek: float | None = None  # a snapshot at this moment is to be sent
        self._wake = asyncio.Event()
        self.cursor = seq              # the snapshot sent shows the state at this seq
        self.sent = 0

    def clock(self) -> float:
        """The replay clock (epoch seconds of commit time); never ahead of the present."""
        t = min(time.time(), self._t0 + (time.monotonic() - self._m0) * self.speed)
        return t if self.until is None else min(t, self.until)

    def seek(self, at: float) -> None:
        self._seek = at
        self._wake.set()

    def set_speed(self, x: float) -> None:
        self._t0, self._m0, self.speed = self.clock(), time.monotonic(), x
        self._wake.set()

    async def run(self) -> None:
        """Send snapshot + paced events until the connection closes."""
        next_beat = 0.0
        journal = self.hub.journal
        while True:
            if self._seek is not None:
                at, self._seek = self._seek, None
                try:
                    seq, shown, frames = await asyncio.to_thread(state_at, self.hub, at)
                except ReplayGone as e:
                    await self.ws.send(P.encode(P.Error(code="bad_value", message=str(e), field="at")), text=True)
                    await self.ws.close(1008, "replay: that moment is no longer in the log")
                    return
                for f in frames:
                    await self.ws.send(f, text=True)
                self.cursor = seq
                self._t0, self._m0 = shown, time.monotonic()
                self.hub.count("replay_snapshots")
            now_r = self.clock()
            rows = await asyncio.to_thread(journal.read_timed, self.cursor, REPLAY_BATCH)
            due = [r for r in rows if r[1] <= now_r]
            if due:
                await self.ws.send(events_frame([d for _, _, d in due]), text=True)
                self.cursor = due[-1][0]
                self.sent += len(due)
                self.hub.count("replayed_events", len(due))
                if len(due) == len(rows) == REPLAY_BATCH:
                    continue                    # more are due right now
            mono = time.monotonic()
            if mono >= next_beat:
                next_beat = mono + self.hub.config.heartbeat_s
                await self.ws.send(P.encode(P.Heartbeat(seq=self.cursor, time=time.time(), at=now_r,
                                                        speed=self.speed)), text=True)
            if self.speed >= P.MAX_REPLAY_SPEED and (rows or self.until is not None):
                # the fastest replay does not wait through silent stretches: on to the next
                # commit (or to ``until``)
                nxt = rows[len(due)][1] if len(due) < len(rows) else self.until
                if nxt is not None and nxt > now_r:
                    self._t0, self._m0 = min(nxt, time.time()), time.monotonic()
                    next_beat = 0.0
                    continue
            wait = IDLE_S
            if rows and len(due) < len(rows) and self.speed > 0:
                wait = min(IDLE_S, max(0.0, (rows[len(due)][1] - now_r) / self.speed))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), min(wait, max(0.0, next_beat - mono)))
            except asyncio.TimeoutError:
                pass


async def serve_replay(hub: "Hub", ws: "ServerConnection", name: str, roles: set[str], hello: P.Hello) -> None:
    """A wall's replay connection, from its ``hello`` (``at`` set) to its close."""
    assert hello.at is not None
    at = min(float(hello.at), time.time())
    speed = 1.0 if hello.speed is None else float(hello.speed)
    try:
        seq, shown, frames = await asyncio.to_thread(state_at, hub, at)
    except ReplayGone as e:
        await ws.send(P.encode(P.Error(code="bad_value", message=str(e), field="at")), text=True)
        await ws.close(1008, "replay: that moment is no longer in the log")
        return
    await ws.send(P.encode(P.Welcome(protocol=P.PROTOCOL_VERSION, hub=hub.hub_id, seq=hub.seq,
                                     heartbeat_s=hub.config.heartbeat_s, roles=sorted(roles),
                                     epoch=hub.journal.epoch or None, replay=True, at=shown)), text=True)
    for f in frames:
        await ws.send(f, text=True)
    hub.count("replay_snapshots")
    replay = Replay(hub, ws, name, seq, shown, speed, None if hello.until is None else float(hello.until))
    hub.count("replays")
    log.info("wall %s replays from %.3f at x%g", name, shown, speed)
    task = asyncio.create_task(replay.run(), name=f"replay-{name}")
    violations = 0
    try:
        async for raw in ws:
            try:
                msg = P.decode(raw, max_size=hub.config.max_frame, expect=("seek", "speed", "control"))
            except P.ProtocolError as e:
                hub.reject(e.code)
                violations += 1
                await ws.send(P.encode(e.to_message()), text=True)
                if violations >= hub.config.max_violations:
                    await ws.close(1008, f"protocol: {violations} violations, last {e.code}"[:120])
                    return
                continue
            if isinstance(msg, P.Seek):
                replay.seek(min(float(msg.at), time.time()))
            elif isinstance(msg, P.Speed):
                replay.set_speed(msg.x)
            else:
                hub.reject("bad_value")
                await ws.send(P.encode(P.Error(code="bad_value", ref=getattr(msg, "ref", None), field="op",
                                               message="a replay connection takes no control: send it on the "
                                                       "live connection")), text=True)
    finally:
        task.cancel()
        log.info("wall %s replay closed (%d events sent)", name, replay.sent)


__all__ = ["serve_replay", "state_at", "Replay", "ReplayGone"]
