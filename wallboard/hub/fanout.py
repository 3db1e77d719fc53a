"""Fan-out to walls: one shared tail of encoded events, one cursor and sender per wall.

Every committed event is encoded to JSON **once** and appended to :class:`Tail`, a ring
of the newest ``capacity`` events. Each wall is a :class:`WallSender`: a cursor (next
seq to send), a small bounded queue of out-of-band frames (heartbeat, stats, errors) and
one task that turns ``tail[cursor:]`` into ``events`` frames -- at most one frame per
``batch_interval`` (10 ms) unless 500 events are waiting. So a wall's backlog is a
number (``tail.last_seq - cursor``), never a growing copy of the data: when it exceeds
``max_lag`` the wall's backlog is dropped and the wall is resynced with a snapshot; other
walls are unaffected. Cursors older than the tail are served from the log
(:meth:`EventLog.read <wallboard.hub.log.EventLog.read>`).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from wallboard import protocol as P
from wallboard.protocol.conflate import conflation_key, kept_indexes, split_ranges

if TYPE_CHECKING:  # pragma: no cover
    from websockets.asyncio.server import ServerConnection

    from .server import Hub

log = logging.getLogger("wallboard.hub")

_EVENTS_HEAD = b'{"op":"events","events":['
_EVENTS_TAIL = b"]}"


class Tail:
    """Ring of the newest committed events, each already encoded as JSON bytes: at most
    ``capacity`` events and ``max_bytes`` bytes (older ones are read from the log)."""

    def __init__(self, capacity: int = 50_000, max_bytes: int = 256 << 20) -> None:
        self.capacity = max(1000, capacity)
        self.max_bytes = max(1 << 20, max_bytes)
        self._buf: list[bytes] = []
        #: conflation key of each event (``protocol.conflate.conflation_key``; None: kept always)
        self._keys: list[Any] = []
        self._sizes: deque[int] = deque()  # len() of each _buf entry, to trim by bytes
        self.bytes = 0
        self.base = 1  # seq of _buf[0]

    @property
    def last_seq(self) -> int:
        return self.base + len(self._buf) - 1

    def reset(self, last_seq: int) -> None:
        """Empty the ring so that the next appended event is ``last_seq + 1``."""
        self._buf = []
        self._keys = []
        self._sizes.clear()
        self.bytes = 0
        self.base = last_seq + 1

    def extend(self, first_seq: int, encoded: list[bytes], events: list[dict[str, Any]] | None = None) -> None:
        """Append committed events (``encoded``: their JSON; ``events``: the same events
        as dicts, for their conflation keys; without them none of these is conflated)."""
        if first_seq != self.last_seq + 1:  # never expected; keep the ring contiguous
            self.reset(first_seq - 1)
        self._buf.extend(encoded)
        if events is not None:
            self._keys.extend(map(conflation_key, events))
        else:
            self._keys.extend([None] * len(encoded))
        sizes = list(map(len, encoded))
        self._sizes.extend(sizes)
        self.bytes += sum(sizes)
        extra = len(self._buf) - self.capacity
        if self.bytes > self.max_bytes:  # trim to 3/4 of the byte bound (amortised)
            over, k, keep_one = self.bytes - self.max_bytes * 3 // 4, 0, len(self._sizes) - 1
            for size in self._sizes:
                if over <= 0 or k >= keep_one:
                    break
                over -= size
                k += 1
            extra = max(extra, k)
        elif extra <= self.capacity // 4:  # trim by count in chunks: amortised O(1)
            extra = 0
        if extra > 0:
            del self._buf[:extra]
            del self._keys[:extra]
            for _ in range(extra):
                self.bytes -= self._sizes.popleft()
            self.base += extra

    def get(self, seq: int, max_n: int, max_bytes: int) -> list[bytes] | None:
        """Encoded events from ``seq`` on (at most ``max_n`` / ``max_bytes``); None if
        ``seq`` is older than the ring."""
        if seq < self.base:
            return None
        i = seq - self.base
        out = self._buf[i : i + max_n]
        total = 0
        for k, b in enumerate(out):
            total += len(b) + 1
            if total > max_bytes and k > 0:
                return out[:k]
        return out


    def conflated(self, seq: int, last: int) -> tuple[list[int], list[bytes]] | None:
        """Conflate the window ``seq..last`` (:func:`~wallboard.protocol.conflate.kept_indexes`):
        the seqs and encoded events kept, in order; None if ``seq`` is older than the ring."""
        if seq < self.base or last > self.last_seq or last < seq:
            return None
        i = seq - self.base
        keep = kept_indexes(self._keys[i:i + last - seq + 1])
        buf = self._buf
        return [seq + k for k in keep], [buf[i + k] for k in keep]


def events_frame(encoded: list[bytes], first: int | None = None, last: int | None = None) -> bytes:
    """An ``events`` frame from already-encoded events; with ``first`` / ``last``, a
    conflated frame standing for those seqs (docs/protocol.md)."""
    if first is None:
        return _EVENTS_HEAD + b",".join(encoded) + _EVENTS_TAIL
    head = b'{"op":"events","first":%d,"last":%d,"events":[' % (first, last)
    return head + b",".join(encoded) + _EVENTS_TAIL


class WallSender:
    """One connected wall: cursor, out-of-band queue, resync flag, sender task."""

    def __init__(self, hub: "Hub", ws: "ServerConnection", name: str, roles: set[str]) -> None:
        self.hub = hub
        self.ws = ws
        self.name = name
        self.roles = roles
        self.cursor = 0  # next seq to send; 0 = not started
        self.need_snapshot = False
        self.oob: deque[bytes] = deque(maxlen=64)
        self.wake = asyncio.Event()
        self.sent_events = 0
        self.resyncs = 0
        self._last_send = 0.0
        self.task: asyncio.Task[None] | None = None
        self.behind_since: float | None = None   # monotonic: since when past max_lag
        self._sending_since: float | None = None  # monotonic: the frame being written since
        self.dropped = False
        #: Conflated frames still to send: ``(first, last, encoded events)`` each, planned
        #: from one window of the tail when the wall fell behind (see :meth:`_plan_window`).
        self._plan: deque[tuple[int, int, list[bytes]]] = deque()
        self._plan_left = 0   # events in self._plan
        self._plan_last = 0   # the seq the plan ends at
        self.conflated = 0    # events this wall did not need (overwritten later in a window)
        #: The wall takes conflated frames (``hello.conflate``); others always get every event.
        self.conflate = False
        #: The wall takes columnar ``devices`` frames (``hello.columnar``): this
        #: connection's encoder (its id dictionary); None: ``events`` frames only.
        self.columnar: P.ColumnarEncoder | None = None
        self.max_frame = hub.config.max_frame   # the wall's hello.max_frame, when smaller

    def lag(self) -> int:
        """Events this wall still has to receive: committed after its cursor, or, while a
        conflated plan is being sent, the plan's rest plus what was committed after it."""
        if not self.cursor:
            return 0
        if self._plan:
            return self._plan_left + max(0, self.hub.seq - self._plan_last)
        return max(0, self.hub.seq - self.cursor + 1)

    # -- called by the hub (event loop thread) ---------------------------------------
    def start_from(self, since: int | None) -> None:
        """Position the cursor for ``hello.since``: replay if kept, else a snapshot."""
        hub = self.hub
        last = hub.seq
        self._drop_plan()
        if not since or since > last or since + 1 < hub.eventlog.first_kept():
            self.need_snapshot = True
        else:
            self.cursor = since + 1
            self.need_snapshot = False
        self.wake.set()
        if self.task is None:
            self.task = asyncio.create_task(self._run(), name=f"wall-{self.name}")

    def push(self, frame: bytes) -> None:
        """Queue an out-of-band frame (heartbeat, stats, error); oldest dropped past 64."""
        self.oob.append(frame)
        self.wake.set()

    def notify(self) -> None:
        """New events were committed: wake the sender, or resync a wall too far behind."""
        if self.cursor and not self.need_snapshot and self.lag() > self.hub.config.max_lag:
            lag = self.lag()
            self.need_snapshot = True
            self._drop_plan()
            self.resyncs += 1
            self.hub.count("resyncs")
            log.warning("wall %s is %d events behind (bound %d): dropping its backlog, resync",
                        self.name, lag, self.hub.config.max_lag)
        self.wake.set()

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def check(self, now: float) -> bool:
        """Called every heartbeat (``now``: monotonic): drop this wall -- close it with 1013
        and a reason, counted ``walls_dropped`` -- once it has stayed past its lag bound
        (``max_lag``), or one frame to it has been waiting to be written, for
        ``wall_drop_s``: a wall that stopped reading must not hold a sender, a snapshot
        and its socket buffers forever. True when it is (being) dropped."""
        if self.dropped:
            return True
        cfg = self.hub.config
        lag = self.lag()
        if lag > cfg.max_lag:
            if self.behind_since is None:
                self.behind_since = now
        else:
            self.behind_since = None
        behind = now - self.behind_since if self.behind_since is not None else 0.0
        blocked = now - self._sending_since if self._sending_since is not None else 0.0
        if max(behind, blocked) < cfg.wall_drop_s:
            return False
        self.dropped = True
        self.hub.count("walls_dropped")
        what = (f"{lag} events behind (bound {cfg.max_lag})" if behind >= blocked
                else "not reading (a frame waiting to be written)")
        reason = f"lagging: {what} for {max(behind, blocked):.0f} s; reconnect to resync"
        log.warning("wall %s dropped: %s", self.name, reason)
        asyncio.get_running_loop().create_task(self._drop(reason[:120]), name=f"drop-{self.name}")
        return True

    async def _drop(self, reason: str) -> None:
        self.stop()
        try:
            await asyncio.wait_for(self.ws.close(1013, reason), 1.0)
        except Exception:  # the close frame could not go out either: cut the connection
            pass
        transport = getattr(self.ws, "transport", None)
        if transport is not None and not transport.is_closing():
            transport.abort()

    async def _send(self, frame: bytes) -> None:
        self._sending_since = time.monotonic()
        try:
            await self.ws.send(frame, text=True)
        finally:
            self._sending_since = None

    # -- sender task ------------------------------------------------------------------
    async def _run(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                while self.oob:
                    await self._send(self.oob.popleft())
                if self.need_snapshot:
                    await self._send_snapshot()
                    continue
                if self.cursor and self.cursor <= self.hub.seq:
                    await self._send_events()
        except ConnectionClosed:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:  # never let one wall take the hub down
            log.exception("wall %s sender failed; closing it", self.name)
            await self.ws.close(1011, "internal error")

    async def _send_snapshot(self) -> None:
        self.need_snapshot = False
        self._drop_plan()
        hub = self.hub
        ra = self.ws.remote_address
        addr, peer = (ra[0], f"{ra[0]}:{ra[1]}") if ra else ("?", "?")
        wait = hub.snap_budget.take(addr)
        if wait:  # this address had its snapshots for the minute: refuse, the wall comes back later
            n = hub.config.snapshot_budget
            why = (f"snapshot budget used up: {n} snapshots per 60 s per address; reconnect with your last seq "
                   f"(a replay needs none) or retry in {wait:.0f} s")
            hub.reject("snapshot_budget")
            hub._log_refusal(peer, f"wall {self.name!r}: {why}", gate=False)
            await self._send(P.encode(P.Error(code="unavailable", message=why, retry_after=wait)))
            self.dropped = True  # not counted as a lagging wall
            await self.ws.close(1013, f"unavailable: snapshot budget used up; retry in {wait:.0f} s")
            return
        seq, frames = await hub.wall_snapshot()
        for f in frames:
            await self._send(f)
        self.hub.count("snapshots_sent")
        self.cursor = seq + 1
        self.wake.set()

    def _drop_plan(self) -> None:
        self._plan.clear()
        self._plan_left = 0

    def _plan_window(self) -> bool:
        """The wall fell behind (more than ``conflate_after`` events waiting): conflate
        the window from its cursor to the newest committed event (at most ``max_lag`` and
        ``conflate_window`` events) into frames of at most ``conflate_frame_events`` events that say which
        seqs they stand for (``first``/``last``). False when the cursor is older than the
        tail (then the journal replays, unconflated)."""
        cfg = self.hub.config
        first = self.cursor
        last = min(self.hub.seq, first + min(cfg.max_lag, cfg.conflate_window) - 1)
        got = self.hub.tail.conflated(first, last)
        if got is None:
            return False
        seqs, enc = got
        sizes = list(map(len, enc))
        for i, j, start, end in split_ranges(seqs, first, last, cfg.conflate_frame_events, sizes,
                                             cfg.max_frame - 128):
            self._plan.append((start, end, enc[i:j]))
        self._plan_left = len(enc)
        self._plan_last = last
        dropped = last - first + 1 - len(enc)
        self.conflated += dropped
        self.hub.count("conflated", dropped)
        return True

    async def _send_planned(self) -> None:
        start, end, chunk = self._plan.popleft()
        if start != self.cursor:   # never expected: the plan no longer fits the cursor
            self._drop_plan()
            self.wake.set()
            return
        conflated = end - start + 1 != len(chunk)
        await self._send(events_frame(chunk, start, end) if conflated else events_frame(chunk))
        self._last_send = time.monotonic()
        committed = self.hub.committed_at(end)
        if committed is not None:
            self.hub.metrics.fanout.observe(self._last_send - committed)
        if self.need_snapshot:  # flagged while we were sending
            self._drop_plan()
            self.wake.set()
            return
        self.cursor = end + 1
        self._plan_left -= len(chunk)
        self.sent_events += len(chunk)
        self.hub.count("events_out", len(chunk))
        if self.cursor <= self.hub.seq or self.oob:
            self.wake.set()

    async def _send_events(self) -> None:
        cfg = self.hub.config
        tail = self.hub.tail
        if self._plan:
            await self._send_planned()
            return
        waiting = self.hub.seq - self.cursor + 1
        if self.conflate and cfg.conflate_after and waiting > cfg.conflate_after and self._plan_window():
            await self._send_planned()
            return
        if waiting < cfg.batch_events:
            # batch: at most one frame per batch_interval unless a full batch is waiting
            pause = self._last_send + cfg.batch_interval - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
        # a columnar wall takes up to 4 x batch_events per chunk (its frames are ~0.3 of the
        # bytes, and its apply costs mostly per frame): only when that many are waiting
        chunk = tail.get(self.cursor, cfg.batch_events if self.columnar is None else 4 * cfg.batch_events,
                         cfg.max_frame - 64)
        if chunk is None:  # older than the ring: replay from the journal
            events = await self.hub.eventlog.read(self.cursor - 1, cfg.batch_events)
            if not events or events[0]["seq"] != self.cursor:
                self.need_snapshot = True
                self.wake.set()
                return
            import orjson

            chunk = [orjson.dumps(e) for e in events]
            self.hub.count("replayed", len(chunk))
        if not chunk:
            return
        for frame in self._frames(chunk):
            await self._send(frame)
        self._last_send = time.monotonic()
        committed = self.hub.committed_at(self.cursor)
        if committed is not None:
            self.hub.metrics.fanout.observe(self._last_send - committed)
        if self.need_snapshot:  # flagged while we were sending: cursor is stale anyway
            self.wake.set()
            return
        self.cursor += len(chunk)
        self.sent_events += len(chunk)
        self.hub.count("events_out", len(chunk))
        if self.cursor <= self.hub.seq or self.oob:
            self.wake.set()

    def _frames(self, chunk: list[bytes]) -> list[bytes]:
        """The frames for ``chunk`` (contiguous encoded events): one ``events`` frame, or
        for a columnar wall its encoder's ``devices`` / ``events`` frames (in order)."""
        enc = self.columnar
        if enc is None:
            return [events_frame(chunk)]
        import orjson

        events = orjson.loads(b"[" + b",".join(chunk) + b"]")
        before = enc.events_sent
        frames = enc.encode(events, chunk, self.max_frame - 64)
        self.hub.count("columnar_events_out", enc.events_sent - before)
        return frames

    def info(self) -> dict[str, Any]:
        return {"wall": self.name, "cursor": self.cursor, "lag": self.lag(),
                "sent": self.sent_events, "conflated": self.conflated, "resyncs": self.resyncs,
                "dropped": self.dropped}
