"""Who goes next, and who may come in: the hub's admission rules that keep a flooder from
delaying everyone else (issue 13; ``docs/security.md``). No I/O here (the connection
count's protocol hook only schedules the cut of a refused connection).

* :func:`take_group` -- the batches of the next group commit. Batches are grouped by
  *lane* (the sender's address; the hub's own producers by their producer name). A lane
  with little queued (at most :data:`LIGHT_BYTES`) is *light*: while light and heavy
  lanes are both waiting, the light batches go first in a group of their own, so a
  producer sending small batches waits for at most the commit in flight (about
  ``group_bytes`` worth) and its own small one, never for a flooder's queue.
* :class:`RateBuckets` -- one :class:`~wallboard.hub.budget.TokenBucket` per producer
  (its address and credential), shared by its websocket connections and its HTTP
  requests.
* :class:`EntityRoom` -- whether a batch's new devices / stores fit under
  ``max_devices`` / ``max_stores``, checked before the batch is queued (a refusal names
  the event), with the new ids of queued batches reserved until they are applied.
* :class:`ConnectionCount` -- open connections, in all and per address.
"""
from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from typing import Any, Callable

from .auth import printable
from .budget import TokenBucket

#: A connection past a connection cap: the ``Retry-After`` of its 503, and the seconds it
#: is kept (its handshake or request, instead of the usual 10 s) before it is cut.
CONNECTION_RETRY_S = 5
REFUSED_HANDSHAKE_S = 2.0
#: A lane with at most this many bytes queued is light: its batches go first.
LIGHT_BYTES = 64 << 10


def _lane(b: Any) -> Any:
    return b.lane if b.lane is not None else b.producer


def take_group(pending: list[tuple[Any, Any]], cap: int, cap_bytes: int = 1 << 62,
               light_first: bool = True) -> tuple[list[tuple[Any, Any]], list[tuple[Any, Any]]]:
    """``(group, rest)``: the batches of the next group commit.

    With one lane waiting (or only light ones): all of them while they hold at most
    ``cap`` events and ``cap_bytes`` bytes. With light and heavy lanes waiting and
    ``light_first``: the light lanes' batches alone (the hub then calls the next one
    without ``light_first``, so heavy lanes are never starved by a stream of light
    batches). Past the caps lanes take turns (each lane's oldest batch first, round by
    round, its own batches in order) until the group is full. Every group takes at
    least one batch; a lane's batches keep their order."""
    queues: dict[Any, list[int]] = {}
    held: dict[Any, int] = {}
    for i, (b, _) in enumerate(pending):
        k = _lane(b)
        queues.setdefault(k, []).append(i)
        held[k] = held.get(k, 0) + b.size
    if len(queues) > 1:
        light = [k for k in queues if held[k] <= LIGHT_BYTES]
        if light_first and light and len(light) < len(queues):
            queues = {k: queues[k] for k in light}
    elif (sum(len(b.events) for b, _ in pending) <= cap and sum(b.size for b, _ in pending) <= cap_bytes):
        return pending, []
    chosen: set[int] = set()
    n, nbytes, heads = 0, 0, {k: 0 for k in queues}
    while True:
        took = False
        for k, idx in queues.items():
            h = heads[k]
            if h >= len(idx):
                continue
            b = pending[idx[h]][0]
            if n == 0 or (n + len(b.events) <= cap and nbytes + b.size <= cap_bytes):
                chosen.add(idx[h])
                n += len(b.events)
                nbytes += b.size
                heads[k] = h + 1
                took = True
        if not took:
            break
    if len(chosen) == len(pending):
        return pending, []
    group = [w for i, w in enumerate(pending) if i in chosen]
    return group, [w for i, w in enumerate(pending) if i not in chosen]


class EntityRoom:
    """Devices and stores that queued batches will add, reserved until those batches are
    settled, so that a batch adding entities past ``max_devices`` / ``max_stores`` (with
    none of the held ones long silent) is refused before it is queued, naming the event,
    instead of being journaled and acked while the state does not keep it.

    ``check(state, events)`` returns ``None`` and a reservation (give it back with
    :meth:`release` when the batch is settled) or a refusal ``(kind, index, message)``.
    The state keeps its own count (``refused_devices``) for what slips past between two
    checks (batches of the hub's own producers, an apply held back by a compaction)."""

    def __init__(self, max_devices: int, max_stores: int, evict_after_s: float) -> None:
        self.caps = {"device": max_devices, "store": max_stores}
        self.evict_after_s = evict_after_s
        self.pending: dict[str, dict[str, int]] = {"device": {}, "store": {}}
        self.evictions = {"device": 0, "store": 0}

    def check(self, state: Any, events: list[dict[str, Any]]
              ) -> tuple[tuple[str, int, str] | None, tuple[dict[str, list[str]], dict[str, int]] | None]:
        taken: dict[str, list[str]] = {}
        evict: dict[str, int] = {}
        for kind in ("device", "store"):
            held = state.devices if kind == "device" else state.stores
            pending = self.pending[kind]
            new: list[tuple[int, str, float]] = []
            seen: set[str] = set()
            for i, ev in enumerate(events):
                if ev.get("type") != kind or ev.get("deleted"):
                    continue
                eid = ev.get("id")
                if eid in held or eid in pending or eid in seen:
                    continue
                seen.add(eid)
                new.append((i, eid, ev.get("ts") or 0.0))
            if not new:
                continue
            free = max(0, self.caps[kind] - len(held) - len(pending))
            need = len(new) - free
            if need > 0:
                when = min(t for _, _, t in new[free:])
                can = state.evictable(kind, when, need + self.evictions[kind]) - self.evictions[kind]
                if can < need:
                    i, eid, _ = new[free + max(0, can)]
                    return (kind, i, self._message(kind, eid, i, len(held) + len(pending))), None
                evict[kind] = need
            taken[kind] = [eid for _, eid, _ in new]
        for kind, ids in taken.items():
            pending = self.pending[kind]
            for eid in ids:
                pending[eid] = pending.get(eid, 0) + 1
        for kind, n in evict.items():
            self.evictions[kind] += n
        return None, (taken, evict)

    def release(self, reservation: tuple[dict[str, list[str]], dict[str, int]]) -> None:
        taken, evict = reservation
        for kind, ids in taken.items():
            pending = self.pending[kind]
            for eid in ids:
                left = pending.get(eid, 0) - 1
                if left > 0:
                    pending[eid] = left
                else:
                    pending.pop(eid, None)
        for kind, n in evict.items():
            self.evictions[kind] = max(0, self.evictions[kind] - n)

    def _message(self, kind: str, eid: str, index: int, count: int) -> str:
        flag = "--max-devices" if kind == "device" else "--max-stores"
        silent = "ttl_s + --evict-after" if kind == "device" else "--evict-after"
        return (f"{kind} {printable(eid, 100)!r} (event {index}) would be {kind} {count + 1} of at most "
                f"{self.caps[kind]} ({flag}) and none of the {kind}s held has been silent long enough to make room "
                f"({silent} {self.evict_after_s:g} s before this event's ts): batch not applied; resend it "
                f"without new {kind}s, delete unused ones, or raise {flag}")


class ConnectionCount:
    """Open connections (from the TCP accept, handshakes included): at most ``total``, and
    at most ``per_address`` from one address. :meth:`open` counts one and returns None, or
    returns the refusal message (not counted) for a connection past a cap."""

    def __init__(self, total: int, per_address: int) -> None:
        self.total, self.per_address = total, per_address
        self.open_now = 0
        self.by_address: dict[str, int] = {}
        self.peak = 0

    def open(self, address: str) -> str | None:
        held = self.by_address.get(address, 0)
        if self.open_now >= self.total:
            return (f"too many connections: {self.open_now} open to this hub (at most {self.total}, "
                    "--max-connections); retry later")
        if held >= self.per_address:
            return (f"too many connections: {held} open from this address (at most {self.per_address}, "
                    "--max-connections-per-address); close some or retry later")
        self.open_now += 1
        self.by_address[address] = held + 1
        self.peak = max(self.peak, self.open_now)
        return None

    def close(self, address: str) -> None:
        self.open_now = max(0, self.open_now - 1)
        left = self.by_address.get(address, 0) - 1
        if left > 0:
            self.by_address[address] = left
        else:
            self.by_address.pop(address, None)


class CountedConnection:
    """Mixin for a connection protocol (websockets' ``ServerConnection``, aiohttp's
    ``RequestHandler``): counted in ``wb_count`` (a :class:`ConnectionCount`, set on the
    class) from ``connection_made`` to ``connection_lost``; one past a cap is marked
    ``wb_refusal`` (the server answers it 503) and cut after :data:`REFUSED_HANDSHAKE_S`
    whatever it sends."""

    wb_count: ConnectionCount

    def connection_made(self, transport: Any) -> None:
        peer = transport.get_extra_info("peername")
        self.wb_address = str(peer[0]) if peer else "?"
        self.wb_refusal = self.wb_count.open(self.wb_address)
        if self.wb_refusal is not None:
            asyncio.get_running_loop().call_later(REFUSED_HANDSHAKE_S, transport.abort)
        super().connection_made(transport)  # type: ignore[misc]

    def connection_lost(self, exc: BaseException | None) -> None:
        if getattr(self, "wb_refusal", "") is None:
            self.wb_count.close(self.wb_address)
            self.wb_refusal = ""  # counted down once
        super().connection_lost(exc)  # type: ignore[misc]


def counted(base: type, count: ConnectionCount) -> type:
    """A subclass of connection protocol ``base`` counted in ``count``."""
    return type(f"Counted{base.__name__}", (CountedConnection, base), {"wb_count": count})


class LaneActivity:
    """The lanes that submitted within the last ``window`` seconds: while more than one
    did, a group commit holds at most ``contended_bytes`` (one frame), so the commit in
    flight that a light producer's batch waits for is short; a producer alone keeps the
    full ``group_bytes`` (its throughput)."""

    def __init__(self, window: float = 1.0, max_lanes: int = 4096) -> None:
        self.window, self.max_lanes = window, max_lanes
        self._seen: dict[Any, float] = {}
        self._next: dict[Any, float] = {}

    def seen(self, lane: Any, now: float) -> None:
        self._seen[lane] = now
        if len(self._seen) > self.max_lanes:
            self.active(now)

    def active(self, now: float) -> int:
        """Lanes seen within the window (older ones are forgotten)."""
        old = [k for k, t in self._seen.items() if now - t > self.window]
        for k in old:
            del self._seen[k]
        return len(self._seen)

    def group_bytes(self, now: float, group_bytes: int, contended_bytes: int) -> int:
        self.contended = len(self._seen) > 1 and self.active(now) > 1
        return min(group_bytes, contended_bytes) if self.contended else group_bytes

    contended = False  # more than one lane active at the last group commit

    def pace(self, lane: Any, busy: float, now: float, factor: float) -> float:
        """Seconds a heavy lane's connection waits before its next frame while lanes
        contend: the lane's frames are read at most ``1 / (1 + factor)`` of the time
        (``busy``: the seconds its last frame took from receipt to queued), so a flooder
        leaves the loop to the others between two of its frames. 0 when not contended."""
        if not self.contended:
            return 0.0
        start = max(now, self._next.get(lane, 0.0))
        self._next[lane] = start + busy * (1 + factor)
        if len(self._next) > self.max_lanes:
            self._next = {k: t for k, t in self._next.items() if t > now}
        return max(0.0, start + busy * factor - now)


class RateBuckets:
    """One :class:`TokenBucket` of ``rate`` events/s per producer, where a producer is its
    address and the token it presented (none: ``-``): its websocket connections and its
    HTTP requests take from the same bucket. Holds at most ``max_producers`` buckets (the
    least recently used is forgotten first; it would have been full again by then unless
    that many producers are busy at once)."""

    def __init__(self, rate: float, max_producers: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.max_producers, self.clock = float(rate), max_producers, clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    @staticmethod
    def key(address: str, token: str | None) -> str:
        """``address`` and a digest of ``token`` (never the token itself)."""
        cred = hashlib.blake2b(token.encode(), digest_size=8).hexdigest() if token else "-"
        return f"{address} {cred}"

    def get(self, address: str, token: str | None) -> TokenBucket:
        k = self.key(address, token)
        b = self._buckets.get(k)
        if b is None:
            b = self._buckets[k] = TokenBucket(self.rate, clock=self.clock)
            while len(self._buckets) > self.max_producers:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(k)
        return b

    def __len__(self) -> int:
        return len(self._buckets)


__all__ = ["LIGHT_BYTES", "ConnectionCount", "CountedConnection", "EntityRoom", "LaneActivity", "RateBuckets", "counted", "take_group"]
