"""``WallSession``: the wall's side of ``/feed`` as a sans-I/O state machine.

In the manner of python-websockets' ``protocol.py``: the session never touches a socket,
a clock or a thread. Its driver (``wallboard.feed.FeedClient`` over asyncio/websockets,
or a test with plain bytes) feeds it what arrives and sends what it produces::

    s = WallSession(token=t, wall="wall-1")
    send(s.connect())                       # hello (since, epoch, max_frame): on every connect
    for frame in incoming:
        s.receive(frame, now=time.monotonic())
        for kind, payload in s.events():    # ("welcome", Welcome), ("events", [ev, ...] or a conflated Span),
            ...                             # ("devices", DeviceBatch) (columnar, see below),
            ...                             # ("snapshot", merged dict), ("heartbeat", Heartbeat),
                                            # ("stats", dict), ("notices", list), ("error", ProtocolError), ("epoch", str),
                                            # ("control_refused", {"ref", "code", "message"})
        for data in s.data_to_send():       # controls queued with s.control(...)
            send(data)
        if s.close_reason:                  # "resync": close now and reconnect at once;
            reconnect()                     # the next connect() asks for s.since
    s.connection_lost()                     # the link went down (for whatever reason)

A replay session (``WallSession(at=T, speed=X)``, the flight recorder's second
connection) says ``hello`` with ``at`` instead of ``since``; it keeps the replay clock
(``replay_clock(now)``: the ``at`` of the last welcome/heartbeat/seek advanced by the
elapsed monotonic time x ``speed``), moves it with :meth:`seek` / :meth:`set_speed`
(queued ``seek`` / ``speed`` frames), and on every new connection (a lost link, a seq gap)
asks again for the moment its clock shows, so a replay resumes where it was.

What it decides: the seq it has (``since``, asked for on the next connect), snapshot parts
reassembled in order (out-of-order parts are counted and dropped), a seq gap between
``events`` frames -> resync from ``since`` (never skipped), a ``welcome`` whose ``epoch``
differs from the one last seen -> the hub's log started over: resync from a snapshot
(``since = None``; old seqs are not trusted). Staleness: nothing received for
``stale_heartbeats`` heartbeat intervals (``stale(now)`` / ``stale_in(now)``, with
``now`` from a monotonic clock); a welcome's ``heartbeat_s`` above ``max_heartbeat_s``
(30 s) counts as that bound (recorded as ``bad_value``). Columnar (``columnar=True``: the wall's default is the
driver's choice): ``hello`` offers it, a ``welcome`` with ``columnar`` confirms it, and
``devices`` frames (``protocol.columnar``) then come as ``("devices", DeviceBatch)`` with
``ids`` set to this connection's id dictionary (made anew on every connection; checked:
``ids_from``, indices, seq contiguity as for ``events``); a ``devices`` frame that was not
negotiated is refused (``unknown_op``). Frames: at most ``max_frame`` bytes (announced in
``hello``; the driver enforces it on the socket too). Nothing raises from ``receive``: bad frames are recorded
(``rejects`` by code, ``last_reject``) and handed out as ``("error", ProtocolError)``.
"""
from __future__ import annotations

from typing import Any

from wallboard.protocol.codec import decode, merge_snapshot_parts
from wallboard.protocol.columnar import decode_devices
from wallboard.protocol.conflate import Span
from wallboard.protocol.errors import ProtocolError
from wallboard.protocol.limits import MIN_WALL_FRAME, WALL_MAX_FRAME, WALL_MAX_HEARTBEAT_S
from wallboard.protocol.messages import (
    Control, Error, Events, Heartbeat, Hello, Seek, Snapshot, Speed, Stats, Welcome, encode,
)

_FEED_OPS = ("welcome", "snapshot", "events", "heartbeat", "stats", "error")

Item = tuple[str, Any]


class WallSession:
    """The client side of ``/feed``; see the module docstring."""

    def __init__(self, *, token: str | None = None, wall: str | None = None,
                 since: int | None = None, epoch: str | None = None,
                 stale_heartbeats: float = 3.0, max_frame: int = WALL_MAX_FRAME,
                 max_heartbeat_s: float = WALL_MAX_HEARTBEAT_S,
                 at: float | None = None, speed: float | None = None, columnar: bool = False) -> None:
        if stale_heartbeats <= 0:
            raise ValueError(f"stale_heartbeats must be > 0, got {stale_heartbeats!r}")
        if type(max_frame) is not int or max_frame < MIN_WALL_FRAME:
            raise ValueError(f"max_frame must be an integer >= {MIN_WALL_FRAME} bytes "
                             f"(every accepted event fits in that), got {max_frame!r}")
        if not 0 < max_heartbeat_s < float("inf"):
            raise ValueError(f"max_heartbeat_s must be a finite number > 0, got {max_heartbeat_s!r}")
        self.token = token
        self.wall = wall
        self.max_heartbeat_s = max_heartbeat_s
        self.since = since                 # last seq held (events or snapshot); None: none
        self.epoch = epoch                 # the hub log's epoch of ``since``
        self.stale_heartbeats = stale_heartbeats
        self.max_frame = max_frame
        self.heartbeat_s = 1.0
        self.hub = ""
        self.roles: tuple[str, ...] = ()
        self.connects = 0                  # welcomes received
        self.welcomed = False              # on this connection
        self.welcome_seq: int | None = None
        self.last_message_at: float | None = None   # driver's monotonic clock
        self.rejects: dict[str, int] = {}
        self.last_reject = ""
        self.close_reason: str | None = None
        #: Seconds the hub asked to wait before coming back (``error`` with ``retry_after``,
        #: e.g. ``unavailable`` when its snapshot budget is used up); None when it did not.
        self.retry_after: float | None = None
        self._parts: list[dict[str, Any]] = []
        #: Offer the columnar encoding in hello (never on a replay connection); ``columnar_on``:
        #: this connection's welcome confirmed it; ``_ids``: its id dictionary.
        self.columnar = bool(columnar) and at is None
        self.columnar_on = False
        self._ids: list[str] = []
        self._items: list[Item] = []
        self._out: list[bytes] = []
        #: Replay mode (``at`` given): the replay clock is ``replay_at`` at the driver's
        #: monotonic ``_replay_mono``, running at ``speed`` (0: paused); ``None``: live.
        self.replay = at is not None
        self.replay_at: float | None = None if at is None else float(at)
        self.speed = 1.0 if speed is None else float(speed)
        self._replay_mono: float | None = None

    # ------------------------------------------------------------------ driver -> session
    def connect(self) -> bytes:
        """A new connection is open: reset it and return the ``hello`` to send first."""
        self._parts = []
        self.welcomed = False
        self.welcome_seq = None
        self.columnar_on = False
        self._ids = []                     # a new connection: a new dictionary
        self.close_reason = None
        self.retry_after = None
        if self.replay:   # the moment the clock shows (where a lost link left it)
            self.since = None
            self._out = []    # a seek / speed queued while down is in this hello
            return encode(Hello(token=self.token, wall=self.wall, max_frame=self.max_frame,
                                at=self.replay_at, speed=self.speed))
        return encode(Hello(token=self.token, since=self.since, wall=self.wall, epoch=self.epoch,
                            max_frame=self.max_frame, conflate=True, columnar=self.columnar or None))

    def connection_lost(self) -> None:
        """The connection is gone: snapshot parts in flight are dropped."""
        self._parts = []
        self.welcomed = False

    def receive(self, data: bytes | bytearray | memoryview | str, now: float) -> None:
        """One frame from the hub, received at ``now`` (monotonic seconds). Never raises."""
        if self.close_reason is not None:
            return                         # closing: what still arrives is not ours
        if data[:15] in (b'{"op":"devices"', '{"op":"devices"'):
            self._devices(data, now)
            return
        try:
            msg = decode(data, max_size=self.max_frame, expect=_FEED_OPS)
        except ProtocolError as e:
            self._reject(e.code, str(e))
            self._items.append(("error", e))
            return
        if not isinstance(msg, Error):
            self.last_message_at = now
        if self.replay and isinstance(msg, (Welcome, Heartbeat)) and msg.at is not None:
            self.replay_at, self._replay_mono = float(msg.at), now    # the hub's replay clock
            if isinstance(msg, Heartbeat) and msg.speed is not None:
                self.speed = float(msg.speed)
        if isinstance(msg, Events):
            self._events(msg.events, msg.first, msg.last)
        elif isinstance(msg, Snapshot):
            self._snapshot(msg)
        elif isinstance(msg, Heartbeat):
            self._items.append(("heartbeat", msg))
        elif isinstance(msg, Welcome):
            self._welcome(msg)
        elif isinstance(msg, Stats):
            self._items.append(("stats", msg.counters))
            if msg.notices is not None:
                self._items.append(("notices", msg.notices))
        else:
            assert isinstance(msg, Error)
            self._reject(msg.code, msg.message)
            if msg.retry_after is not None and msg.ref is None:   # about the link, not a control
                self.retry_after = msg.retry_after
            self._items.append(("error", ProtocolError(msg.code, msg.message, index=msg.index,
                                                       field=msg.field, seq=msg.seq, offset=msg.offset)))
            if msg.ref is not None:  # it answers one of our controls
                self._items.append(("control_refused", {"ref": msg.ref, "code": msg.code,
                                                        "message": msg.message}))

    def resync(self, since: int | None) -> None:
        """Ask for everything after ``since`` (None: a snapshot) on a new connection: the
        driver closes this one (``close_reason == "resync"``) and reconnects at once."""
        self.since = since
        self._parts = []
        self.close_reason = "resync"

    def control(self, command: str, args: dict[str, Any] | None = None, ref: str | None = None) -> None:
        """Queue a ``control`` message (sent by the driver from ``data_to_send``); a hub
        that refuses it answers an ``error`` naming ``ref``, handed out as
        ``("control_refused", {"ref", "code", "message"})`` after the ``("error", ...)``."""
        self._out.append(encode(Control(command=command, args=dict(args or {}), token=self.token, ref=ref)))

    def seek(self, at: float, now: float) -> None:
        """Replay: show the state at ``at`` (a ``seek`` frame; the clock moves at once)."""
        self._replay_only("seek")
        self.replay_at, self._replay_mono = float(at), now
        self._out.append(encode(Seek(at=float(at))))

    def set_speed(self, x: float, now: float) -> None:
        """Replay: ``x`` times the recorded pace (0: paused)."""
        self._replay_only("speed")
        self.replay_at = self.replay_clock(now)
        self._replay_mono, self.speed = now, float(x)
        self._out.append(encode(Speed(x=float(x))))

    def replay_clock(self, now: float) -> float | None:
        """The moment a replay shows at monotonic ``now`` (None: live, or not yet known)."""
        if self.replay_at is None:
            return None
        if self._replay_mono is None:
            return self.replay_at
        return self.replay_at + max(0.0, now - self._replay_mono) * self.speed

    def _replay_only(self, what: str) -> None:
        if not self.replay:
            raise ValueError(f"{what}: this is a live session (a replay session is made with at=...)")

    # ------------------------------------------------------------------ session -> driver
    def events(self) -> list[Item]:
        """What happened since the last call, in order (see the module docstring)."""
        items, self._items = self._items, []
        return items

    def data_to_send(self) -> list[bytes]:
        """Frames to send, in order."""
        out, self._out = self._out, []
        return out

    def stale_in(self, now: float) -> float:
        """Seconds until the link counts as stale (<= 0: it is; a full interval before
        anything arrived)."""
        limit = self.stale_heartbeats * self.heartbeat_s
        if self.last_message_at is None:
            return limit
        return limit - (now - self.last_message_at)

    def stale(self, now: float) -> bool:
        """Nothing received for ``stale_heartbeats`` heartbeat intervals."""
        return self.last_message_at is not None and self.stale_in(now) <= 0

    # ------------------------------------------------------------------ internals
    def _reject(self, code: str, text: str) -> None:
        self.rejects[code] = self.rejects.get(code, 0) + 1
        self.last_reject = f"{code}: {text}"[:300]

    def _welcome(self, msg: Welcome) -> None:
        self.welcomed = True
        self.connects += 1
        # a hub announcing 1e9 s would keep a silent feed LIVE for ever: bounded
        self.heartbeat_s = min(msg.heartbeat_s, self.max_heartbeat_s)
        self.hub = msg.hub
        self.roles = tuple(msg.roles)
        self.welcome_seq = msg.seq
        self.columnar_on = self.columnar and bool(msg.columnar)
        self._items.append(("welcome", msg))
        if self.heartbeat_s < msg.heartbeat_s:
            bound = self.max_heartbeat_s
            text = (f"hub heartbeat_s {msg.heartbeat_s:g} is longer than this wall accepts (at most {bound:g} s): "
                    f"counted as {bound:g} s, so a silent feed turns STALE after {self.stale_heartbeats * bound:g} s")
            self._reject("bad_value", text)
            self._items.append(("error", ProtocolError("bad_value", text, field="heartbeat_s")))
        epoch = msg.epoch
        if epoch is None or epoch == self.epoch:
            return
        known, self.epoch = self.epoch, epoch
        self._items.append(("epoch", epoch))
        if known is not None and self.since is not None:
            # the hub's log started over: its seqs are not the ones we hold
            self._reject("epoch", f"hub log epoch {epoch!r} after {known!r}; resync from a snapshot")
            self.resync(None)

    def _events(self, events: list[dict[str, Any]], span_first: int | None = None,
                span_last: int | None = None) -> None:
        if not events:
            return
        first = events[0]["seq"] if span_first is None else span_first
        if self.since and first != self.since + 1:
            text = f"expected seq {self.since + 1}, got {first}; resync"
            self._reject("seq_gap", text)
            self._items.append(("error", ProtocolError("seq_gap", text, seq=first)))
            self.resync(self.since)
            return
        if span_last is None:
            self.since = events[-1]["seq"]
            self._items.append(("events", events))
        else:   # a conflated frame: it stands for first..last (protocol.conflate.Span)
            self.since = span_last
            self._items.append(("events", Span(events, first, span_last)))

    def _devices(self, data: bytes | bytearray | memoryview | str, now: float) -> None:
        try:
            if not self.columnar_on:
                raise ProtocolError("unknown_op", "a devices frame, but this connection did not negotiate "
                                    "columnar", op="devices", expected="events frames (welcome without columnar)")
            if len(data) > self.max_frame:
                raise ProtocolError("too_large", f"frame of {len(data)} bytes", op="devices",
                                    expected=f"at most {self.max_frame} bytes")
            b = decode_devices(data, len(self._ids))
        except ProtocolError as e:
            self._reject(e.code, str(e))
            self._items.append(("error", e))
            return
        self.last_message_at = now
        if self.since and b.seq != self.since + 1:
            text = f"expected seq {self.since + 1}, got {b.seq}; resync"
            self._reject("seq_gap", text)
            self._items.append(("error", ProtocolError("seq_gap", text, seq=b.seq)))
            self.resync(self.since)
            return
        self._ids.extend(b.new_ids)
        b.ids = self._ids
        self.since = b.last_seq
        self._items.append(("devices", b))

    def _snapshot(self, msg: Snapshot) -> None:
        if msg.part != len(self._parts):
            self._reject("bad_value", f"snapshot part {msg.part} after {len(self._parts)} parts")
            self._parts = []
            if msg.part != 0:
                return
        self._parts.append(msg.data)
        if msg.part + 1 == msg.parts:
            merged = merge_snapshot_parts(self._parts)
            self._parts = []
            self.since = msg.seq
            self._items.append(("snapshot", merged))


__all__ = ["WallSession", "WALL_MAX_FRAME"]
