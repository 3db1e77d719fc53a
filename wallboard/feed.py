"""Feed client: the wall's connection to the hub, in its own thread. No Qt.

Usage from the UI thread::

    client = FeedClient("ws://127.0.0.1:8765/feed", token=None, on_wake=wake_ui)
    client.start()
    ...once per frame: for kind, payload in client.drain(64): ...
    client.status / client.state -> FeedStatus(state, last_message_at, heartbeat_s, ...)
    client.send_control("ack_incident", {"incident": "INC-1"})
    client.resync(state.seq)       # when LiveState.apply raised SeqGap
    client.stop()

    replay = FeedClient(url, at=time.time() - 60, speed=4)   # the flight recorder
    replay.seek(t); replay.set_speed(0); replay.replay_clock()  # -> the moment shown

The thread runs an asyncio loop: connect, ``hello`` with ``since`` (the last seq it
received), then every frame becomes one queue item: ``("events", [event, ...])``,
``("devices", DeviceBatch)`` (``columnar=True``, the wall's choice: runs of device status
updates as columns, ``LiveState.apply_devices``), ``("snapshot", merged dict)`` (after its last part), ``("welcome", Welcome)``,
``("heartbeat", Heartbeat)``, ``("stats", dict)``, ``("error", ProtocolError)`` and
``("state", FeedStatus)`` on every state change. ``on_wake`` is called from the feed
thread when the queue goes from empty to non-empty -- at most once until the next
``drain`` -- never once per event.

Frames larger than ``max_frame`` (default :data:`wallboard.protocol.WALL_MAX_FRAME`,
16 MiB; announced to the hub in ``hello``) are refused by the socket before they are read
(close 1009, counted as ``too_large``). Reconnects follow
:class:`wallboard.backoff.Reconnects` (first retry at once, then jittered exponential
backoff capped at 5 s; only a link that stayed up 10 s starts it over, so a resync asked
again and again -- a hub that always sends a gap -- backs off too); keepalive ping every
5 s, 10 s timeout; a hub's ``retry_after`` (``unavailable``: its snapshot budget is used
up) is waited for, up to ``max_retry_after_s`` (60 s). A seq gap
(first seq of a frame != last seq + 1) reconnects with ``since`` so the hub replays or
sends a snapshot; a gap is never skipped. States: CONNECTING (first attempt),
LIVE, RECONNECTING, STALE (connected but nothing received for 3 heartbeat intervals; a
hub's interval counts as at most ``max_heartbeat_s``, 30 s),
AUTH_FAILED (token refused; retried only every ``auth_retry_s``, no retry storm).
If the UI stops draining, the queue is bounded (``max_pending`` events): it is dropped
and the feed resyncs with a snapshot instead of growing memory.

The protocol decisions (hello with since/epoch, snapshot parts, gap or new epoch ->
resync, staleness on the monotonic clock, rejects) are the pure
:class:`wallboard.protocol.WallSession`'s (``client.session``); this module is its
asyncio/websockets driver in a thread: connect, feed it frames, send what it queues,
reconnect when it asks.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from wallboard import protocol as P
from wallboard.backoff import Reconnects, backoff, classify_close

#: Close code websockets sends when a frame exceeds ``max_size``.
MESSAGE_TOO_BIG = 1009

log = logging.getLogger("wallboard.feed")

CONNECTING, LIVE, RECONNECTING, STALE, AUTH_FAILED = "CONNECTING", "LIVE", "RECONNECTING", "STALE", "AUTH_FAILED"
STATES = (CONNECTING, LIVE, RECONNECTING, STALE, AUTH_FAILED)
Item = tuple[str, Any]


@dataclass(frozen=True)
class FeedStatus:
    """A snapshot of the client's condition (immutable; read it from any thread)."""

    state: str = CONNECTING
    last_message_at: float | None = None
    heartbeat_s: float = 1.0
    rejects: dict[str, int] = field(default_factory=dict)
    last_reject: str = ""
    seq: int = 0
    connects: int = 0
    hub: str = ""
    roles: tuple[str, ...] = ()
    #: Why the link is down, for the wall to say: ``""`` (no failure since the last
    #: welcome), ``"unreachable"`` (nothing answered at ``host_port``), ``"refused"`` (the
    #: hub refused the token: ``last_error`` is its reason as text) or ``"tls"`` (the
    #: hub's certificate did not verify: ``last_error`` is the verifier's detail).
    error_kind: str = ""
    last_error: str = ""
    #: ``HOST:PORT`` of the feed URL (what "not connected to ..." names).
    host_port: str = ""
    #: Reconnects since the last healthy link (welcomed and up ``healthy_s``): a hub
    #: that keeps sending gaps or bad snapshots shows here, backed off.
    reconnects_in_a_row: int = 0
    #: Seconds waited before the latest reconnect (the back-off, or the hub's
    #: ``retry_after`` up to ``max_retry_after_s``).
    next_retry_s: float = 0.0


#: Queue items that carry events (counted against ``max_pending``).
_DATA = ("events", "devices")


class FeedClient:
    """Threaded websocket client of a hub's ``/feed`` (see the module docstring)."""

    #: every event it yields went through ``protocol.decode`` (validated): the frame driver
    #: applies them with ``LiveState.apply(checked=True)``, not validating them twice
    validated = True

    def __init__(self, url: str, token: str | None = None, since: int | None = None,
                 on_wake: Callable[[], None] | None = None, *, wall: str | None = None,
                 ping_interval: float = 5.0, ping_timeout: float = 10.0, stale_heartbeats: float = 3.0,
                 auth_retry_s: float | None = 60.0, max_pending: int = 200_000, open_timeout: float = 10.0,
                 delays: Callable[[], Any] = backoff, max_frame: int = P.WALL_MAX_FRAME,
                 healthy_s: float = 10.0, max_heartbeat_s: float = P.WALL_MAX_HEARTBEAT_S,
                 max_retry_after_s: float = 60.0, at: float | None = None,
                 speed: float | None = None, columnar: bool = False) -> None:
        #: The hubs to take the feed from (``url`` may list several, comma-separated, hubs
        #: of one log): on loss of its hub the wall moves to the next and resumes from its
        #: last seq (the same on every hub of the log).
        self.urls = feed_urls(url)
        self._hub_index = 0
        self.url = self.urls[0]
        self.token = token
        self.wall = wall
        self.on_wake = on_wake
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.stale_heartbeats = stale_heartbeats
        self.auth_retry_s = auth_retry_s
        self.max_pending = max_pending
        self.open_timeout = open_timeout
        self._delays = delays
        #: The pure reconnect policy: a link up less than ``healthy_s`` does not reset the
        #: backoff, whatever ended it (a resync too).
        self.reconnects = Reconnects(delays, healthy_s)
        #: A hub's ``retry_after`` is waited for, up to this (a hub cannot park a wall).
        self.max_retry_after_s = max_retry_after_s
        #: The protocol logic (since, epoch, snapshot parts, gaps, staleness) is the pure
        #: session's; this class drives it over websockets in its own thread.
        self.session = P.WallSession(token=token, wall=wall, since=since, stale_heartbeats=stale_heartbeats,
                                     max_frame=max_frame, max_heartbeat_s=max_heartbeat_s, at=at,
                                     speed=speed, columnar=columnar)
        self.max_frame = max_frame
        self._lock = threading.Lock()
        self._q: deque[Item] = deque()
        self._q_events = 0
        self._wake_pending = False
        self._status = FeedStatus(host_port=_host_port(self.url))
        self._rejects: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ws: Any = None
        self._resync_to: tuple[int | None] | None = None
        self._session_reject = ""
        self.dropped_events = 0
        #: queued events conflated on the feed thread (the UI fell max_pending behind)
        self.conflated = 0
        self._generation = 0   # bumped by resync(): a queue conflated meanwhile is stale

    # ------------------------------------------------------------------ UI side
    def start(self) -> None:
        """Start the feed thread (returns at once; watch ``state`` / the queue)."""
        if self._thread is not None:
            return
        ready = threading.Event()
        self._thread = threading.Thread(target=self._thread_main, args=(ready,), name="wallboard-feed",
                                        daemon=True)
        self._thread.start()
        ready.wait(5)

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and join the thread."""
        loop, ev = self._loop, self._stop
        if loop is not None and ev is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(ev.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def drain(self, max_items: int = 64) -> list[Item]:
        """Take up to ``max_items`` queued items (thread-safe, never blocks on the network)."""
        with self._lock:
            n = min(max_items, len(self._q))
            out = [self._q.popleft() for _ in range(n)]
            for kind, payload in out:
                if kind in _DATA:
                    self._q_events -= len(payload)
            if not self._q:
                self._wake_pending = False
        return out

    @property
    def state(self) -> FeedStatus:
        """The current :class:`FeedStatus` (``.state`` is one of :data:`STATES`)."""
        return self._status

    status = state

    def pending(self) -> int:
        with self._lock:
            return len(self._q)

    def pending_events(self) -> int:
        """Events queued for the UI (read without the lock: a hint for conflation)."""
        return self._q_events

    def send_control(self, command: str, args: dict[str, Any] | None = None, ref: str | None = None) -> None:
        """Send a control message (thread-safe); refusals come back as ``("error", ...)``,
        followed by ``("control_refused", {"ref", "code", "message"})`` when ``ref`` is given."""
        loop = self._loop
        if loop is None:
            self._refuse_control(ref, "feed not started: control not sent")
            return
        loop.call_soon_threadsafe(self._send_now, command, dict(args or {}), ref)

    # -- replay mode (``at=`` given: the flight recorder's second connection) ---------
    @property
    def replay(self) -> bool:
        return self.session.replay

    def replay_clock(self) -> float | None:
        """The moment the replay shows now (epoch seconds; None for a live client)."""
        return self.session.replay_clock(time.monotonic())

    @property
    def speed(self) -> float:
        return self.session.speed

    def seek(self, at: float) -> None:
        """Replay: show the state at ``at`` (thread-safe; a new snapshot follows)."""
        self._replay_call(self.session.seek, float(at))

    def set_speed(self, x: float) -> None:
        """Replay: ``x`` times the recorded pace, 0 = paused (thread-safe)."""
        self._replay_call(self.session.set_speed, float(x))

    def _replay_call(self, fn: Callable[[float, float], None], value: float) -> None:
        if not self.session.replay:
            raise ValueError("this feed client is live: seek/speed need a replay client (at=...)")
        loop = self._loop

        def run() -> None:
            fn(value, time.monotonic())
            ws = self._ws
            if ws is not None:
                self._flush(ws)

        if loop is None:
            fn(value, time.monotonic())       # not started: the hello will carry it
        else:
            loop.call_soon_threadsafe(run)

    def _refuse_control(self, ref: str | None, why: str) -> None:
        items: list[tuple[str, Any]] = [("error", P.ProtocolError("forbidden", why))]
        if ref is not None:
            items.append(("control_refused", {"ref": ref, "code": "forbidden", "message": why}))
        self._push(items)

    def resync(self, since: int | None) -> None:
        """Drop queued events and reconnect asking for everything after ``since``
        (``None``/0: a snapshot). Call it when ``LiveState.apply`` raised ``SeqGap``."""
        with self._lock:
            self._generation += 1
            kept = [it for it in self._q if it[0] not in ("events", "devices", "snapshot")]
            self.dropped_events += self._q_events
            self._q.clear()
            self._q.extend(kept)
            self._q_events = 0
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._request_resync, since)

    # ------------------------------------------------------------------ feed thread
    def _push(self, items: list[Item]) -> None:
        wake = False
        overflow = False
        if self._q_events + sum(len(it[1]) for it in items if it[0] in _DATA) > self.max_pending:
            items = self._squeeze(items)
        with self._lock:
            for it in items:
                self._q.append(it)
                if it[0] in _DATA:
                    self._q_events += len(it[1])
            if self._q_events > self.max_pending:
                overflow = True
                self.dropped_events += self._q_events
                kept = [it for it in self._q if it[0] not in ("events", "devices", "snapshot")]
                self._q.clear()
                self._q.extend(kept)
                self._q_events = 0
            if self._q and not self._wake_pending:
                self._wake_pending = wake = True
        if overflow:
            log.warning("UI did not drain %d queued events: dropped them, resyncing with a snapshot",
                        self.max_pending)
            self._reject("overflow", f"over {self.max_pending} events queued; resync")
            self._request_resync(None)
        if wake and self.on_wake is not None:
            try:
                self.on_wake()
            except Exception:  # the UI's problem, not the feed's
                log.exception("on_wake failed")

    def _squeeze(self, items: list[Item]) -> list[Item]:
        """The UI fell ``max_pending`` events behind: conflate what is queued (and
        ``items``) instead of dropping it all for a resync (``protocol.conflate``: of each
        device only the updates no later one overwrites). Runs on the feed thread, the
        queue taken out while it runs; what the UI drained meanwhile was nothing. Returns
        the items to queue: the conflated ones, unless a resync came meanwhile."""
        with self._lock:
            queued = list(self._q)
            self._q.clear()
            self._q_events = 0
            generation = self._generation
        merged, dropped = P.conflate_items(queued + list(items), 2000)
        with self._lock:
            if generation != self._generation:      # resync() dropped the queue meanwhile
                return [it for it in merged if it[0] not in ("events", "devices", "snapshot")]
            self.conflated += dropped
        if dropped:
            log.info("UI %d events behind: conflated the queue (%d device updates overwritten later)",
                     self.max_pending, dropped)
        return merged

    def _set(self, **changes: Any) -> None:
        old = self._status
        rejects = dict(self._rejects)          # the link's (auth, connect, overflow) ...
        for code, n in self.session.rejects.items():   # ... and the protocol's
            rejects[code] = rejects.get(code, 0) + n
        new = FeedStatus(**{**old.__dict__, **changes, "rejects": rejects})
        self._status = new
        if new.state != old.state:
            log.info("feed %s: %s -> %s", self.url, old.state, new.state)
            self._push([("state", new)])

    def _reject(self, code: str, text: str) -> None:
        self._rejects[code] = self._rejects.get(code, 0) + 1
        self._set(last_reject=f"{code}: {text}"[:300])

    def _link_error(self, kind: str, detail: str) -> None:
        """Record why the link is down (shown on the wall); a refusal or an untrusted
        certificate is logged at WARNING once per distinct reason (not once per retry)."""
        detail = detail.strip()[:300]
        if kind in ("refused", "tls") and (kind, detail) != (self._status.error_kind, self._status.last_error):
            what = "refused the token" if kind == "refused" else "certificate not trusted"
            log.warning("feed %s: %s: %s", self.url, what, detail)
        self._set(error_kind=kind, last_error=detail)

    def _send_now(self, command: str, args: dict[str, Any], ref: str | None = None) -> None:
        ws = self._ws
        if ws is None:
            self._refuse_control(ref, f"not connected: control {command!r} not sent")
            return
        self.session.control(command, args, ref)
        self._flush(ws)

    def _flush(self, ws: Any) -> None:
        """Send what the session queued (controls), in order."""
        for data in self.session.data_to_send():
            task = asyncio.ensure_future(ws.send(data, text=True))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _request_resync(self, since: int | None) -> None:
        self._resync_to = (since,)
        ws = self._ws
        if ws is not None:
            asyncio.ensure_future(ws.close(1000, "resync"))

    def _thread_main(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        ready.set()
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; True when stopping."""
        assert self._stop is not None
        if seconds <= 0:
            return self._stop.is_set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()

    async def _main(self) -> None:
        assert self._stop is not None
        first = True
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        while not self._stop.is_set():
            if self._status.state != AUTH_FAILED:
                self._set(state=CONNECTING if first else RECONNECTING)
            first = False
            auth_failed = False
            try:
                async with connect(self.url, additional_headers=headers, compression=None, max_size=self.max_frame,
                                   ping_interval=self.ping_interval, ping_timeout=self.ping_timeout,
                                   open_timeout=self.open_timeout, max_queue=64) as ws:
                    self._ws = ws
                    await ws.send(self.session.connect(), text=True)
                    await self._session(ws)
            except InvalidStatus as e:
                code = e.response.status_code
                body = _body_text(e.response.body)
                if classify_close(http_status=code) == "auth":
                    auth_failed = True
                    self._reject("auth", f"{_without_code(body, 'auth')} (HTTP {code})")
                    self._link_error("refused", body or f"HTTP {code}")
                else:
                    self._reject("connect", f"HTTP {code}")
                    self._link_error("unreachable", f"HTTP {code}" + (f": {body}" if body else ""))
            except ConnectionClosed as e:
                rc = e.rcvd
                if rc is not None and classify_close(rc.code, rc.reason) == "auth":
                    auth_failed = True
                    if self._status.last_reject != f"auth: {_without_code(rc.reason, 'auth')}":
                        self._reject("auth", _without_code(rc.reason, "auth"))  # not told by an error first
                    self._link_error("refused", rc.reason)
                elif e.sent is not None and e.sent.code == MESSAGE_TOO_BIG:
                    # websockets read the frame's length, not the frame: nothing was buffered
                    self._reject("too_large", f"a frame from the hub is larger than this wall's limit of "
                                 f"{self.max_frame} bytes (--max-frame; announced in hello): "
                                 f"connection closed, reconnecting")
                    log.warning("feed %s: %s", self.url, self._status.last_reject)
            except ssl.SSLCertVerificationError as e:
                self._link_error("tls", e.verify_message or e.reason or str(e))
            except (OSError, asyncio.TimeoutError, InvalidHandshake, InvalidURI) as e:
                log.debug("feed %s: connect failed: %s", self.url, e)
                self._link_error("unreachable", _os_error_text(e))
            finally:
                self._ws = None
            self.session.connection_lost()
            self._next_hub()
            resync = self._resync_to is not None
            if resync:
                (self.session.since,) = self._resync_to
                self._resync_to = None
            if self._stop.is_set():
                break
            if auth_failed:
                self._set(state=AUTH_FAILED)
                if self.auth_retry_s is None:
                    await self._stop.wait()
                    break
                if await self._sleep(self.auth_retry_s):
                    break
                continue
            delay = self.reconnects.down(time.monotonic())
            n = self.reconnects.in_a_row
            asked = self.session.retry_after
            if asked is not None and asked > delay:
                delay = max(delay, min(asked, self.max_retry_after_s))
                log.warning("feed %s: the hub asked to retry in %g s: next attempt in %g s%s", self.url, asked,
                            delay, f" (at most {self.max_retry_after_s:g} s)" if asked > delay else "")
            self._set(reconnects_in_a_row=n, next_retry_s=delay)
            if delay <= 0:
                continue
            if resync and n & (n - 1) == 0:  # 2, 4, 8, ... in a row: said, not once per retry
                log.warning("feed %s: resync asked again (%d reconnects in a row, none up %g s): "
                            "next attempt in %.1f s", self.url, n, self.reconnects.healthy_s, delay)
            self._set(state=RECONNECTING)
            if await self._sleep(delay):
                break

    def _next_hub(self) -> None:
        """After a lost link or a failed connect: the next hub of the list (if several)."""
        if len(self.urls) > 1:
            self._hub_index = (self._hub_index + 1) % len(self.urls)
            self.url = self.urls[self._hub_index]
            self._set(host_port=_host_port(self.url), hub="")
            log.info("feed: moving to hub %s (%d of %d)", self.url, self._hub_index + 1, len(self.urls))

    async def _session(self, ws: Any) -> bool:
        """Receive until closed, feeding the session; True when the session asked for a
        resync (the caller reconnects as :class:`Reconnects` says). Staleness is judged
        on the monotonic clock."""
        assert self._stop is not None
        session = self.session
        stop_task = asyncio.ensure_future(self._stop.wait())
        try:
            while True:
                timeout = max(0.0, session.stale_in(time.monotonic()))
                if timeout == 0.0:
                    timeout = session.stale_heartbeats * session.heartbeat_s
                recv = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait({recv, stop_task}, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                if stop_task in done:
                    recv.cancel()
                    await ws.close()
                    return False
                if not done:  # nothing for 3 heartbeat intervals: STALE, keep waiting
                    recv.cancel()
                    with contextlib.suppress(BaseException):
                        await recv
                    if self._status.state == LIVE and session.stale(time.monotonic()):
                        self._set(state=STALE)
                    continue
                session.receive(recv.result(), time.monotonic())
                self._take(session.events())
                self._flush(ws)
                if session.close_reason is not None:      # a gap or a new epoch: resync
                    self._resync_to = (session.since,)
                    await ws.close(1000, session.close_reason)
                    return True
        finally:
            stop_task.cancel()

    def _take(self, items: list[Item]) -> None:
        """The session's events -> the UI queue and the status (one ``_set`` per item)."""
        session = self.session
        if session.last_reject and session.last_reject != self._session_reject:
            self._session_reject = session.last_reject      # counted by the session
            self._set(last_reject=session.last_reject)
        for kind, payload in items:
            if kind in ("error", "control_refused"):
                self._push([(kind, payload)])
                continue
            if kind == "epoch":
                log.info("feed %s: hub log epoch %s", self.url, payload)
                continue
            changes: dict[str, Any] = {"last_message_at": time.time()}
            if self._status.state in (STALE, CONNECTING, RECONNECTING, AUTH_FAILED):
                changes["state"] = LIVE
            if kind == "welcome":
                self.reconnects.up(time.monotonic())
                changes.update(heartbeat_s=session.heartbeat_s, hub=session.hub, roles=session.roles,
                               connects=self._status.connects + 1, state=LIVE, error_kind="", last_error="")
            elif kind in ("events", "devices", "snapshot"):
                changes["seq"] = session.since or 0
            self._set(**changes)
            self._push([(kind, payload)])


def feed_urls(text: str) -> list[str]:
    """``ws://a:8765/feed,ws://b:8765/feed`` -> the URLs; ``ValueError`` naming a bad one."""
    urls = [u.strip() for u in text.split(",")]
    for u in urls:
        if not u.startswith(("ws://", "wss://")) or len(u) <= len("wss://"):
            raise ValueError(f"feed URL {u!r}: expected ws://HOST:PORT/feed or wss://... (several: comma-separated)")
    return urls


def _host_port(url: str) -> str:
    """``HOST:PORT`` of a ws:// or wss:// URL (the default port when it names none)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        host = parts.hostname or "?"
    except ValueError:
        return url
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _body_text(body: bytes | bytearray | str | None) -> str:
    """An HTTP refusal's body as one line of text (never a ``bytearray(b'...')`` repr)."""
    if not body:
        return ""
    if isinstance(body, (bytes, bytearray, memoryview)):
        body = bytes(body[:300]).decode("utf-8", "replace")
    return " ".join(str(body).split())[:200]


def _os_error_text(e: BaseException) -> str:
    """A connect failure in a few words: ``connection refused``, ``timed out``, ..."""
    if isinstance(e, asyncio.TimeoutError):
        return "timed out"
    if isinstance(e, OSError) and e.errno:
        text = os.strerror(e.errno)
        return text[:1].lower() + text[1:]
    return str(e) or type(e).__name__


def _without_code(text: str, code: str) -> str:
    """``"auth: why"`` -> ``"why"`` (the reject count adds the code back once)."""
    head, sep, rest = text.partition(":")
    return rest.strip() if sep and head.strip() == code else text
