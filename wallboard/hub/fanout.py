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
        self._sizes: deque[int] = deque()  # len() of each _buf entry, to trim by bytes
        self.bytes = 0
        self.base = 1  # seq of _buf[0]

    @property
    def last_seq(self) -> int:
        return self.base + len(self._buf) - 1

    def reset(self, last_seq: int) -> None:
        """Empty the ring so that the next appended event is ``last_seq + 1``."""
        self._buf = []
        self._sizes.clear()
        self.bytes = 0
        self.base = last_seq + 1

    def extend(self, first_seq: int, encoded: list[bytes]) -> None:
        if first_seq != self.last_seq + 1:  # never expected; keep the ring contiguous
            self.reset(first_seq - 1)
        self._buf.extend(encoded)
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


def events_frame(encoded: list[bytes]) -> bytes:
    """An ``events`` frame from already-encoded events."""
    return _EVENTS_HEAD + b",".join(encoded) + _EVENTS_TAIL


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

    # -- called by the hub (event loop thread) ---------------------------------------
    def start_from(self, since: int | None) -> None:
        """Position the cursor for ``hello.since``: replay if kept, else a snapshot."""
        hub = self.hub
        last = hub.seq
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
        if self.cursor and not self.need_snapshot and self.hub.seq - self.cursor + 1 > self.hub.config.max_lag:
            self.need_snapshot = True
            self.resyncs += 1
            self.hub.count("resyncs")
            log.warning("wall %s is %d events behind (bound %d): dropping its backlog, resync",
                        self.name, self.hub.seq - self.cursor + 1, self.hub.config.max_lag)
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
        lag = self.hub.seq - self.cursor + 1 if self.cursor else 0
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

    async def _send_events(self) -> None:
        cfg = self.hub.config
        tail = self.hub.tail
        waiting = self.hub.seq - self.cursor + 1
        if waiting < cfg.batch_events:
            # batch: at most one frame per batch_interval unless a full batch is waiting
            pause = self._last_send + cfg.batch_interval - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
        chunk = tail.get(self.cursor, cfg.batch_events, cfg.max_frame - 64)
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
        await self._send(events_frame(chunk))
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

    def info(self) -> dict[str, Any]:
        return {"wall": self.name, "cursor": self.cursor, "lag": max(0, self.hub.seq - self.cursor + 1),
                "sent": self.sent_events, "resyncs": self.resyncs, "dropped": self.dropped}
