"""Producers and tapes: :class:`Publisher` (at-least-once publishing), record and replay.

* :class:`Publisher` -- ``async with Publisher(url) as pub: await pub.publish(events)``;
  keys each batch (producer id + a batch key drawn from this run's random id and a
  counter, :func:`run_batch_key`, so two runs under one producer id never share a key),
  keeps every unacked batch, resends them in order after a reconnect (the hub answers
  a resend of a committed batch with its range, ``duplicate``) and ``flush()`` waits for
  the last ack. Retryable errors (``rate_limited``, ``unavailable``) resend the same
  batch after the hub's ``retry_after``; terminal ones drop it, counted in ``rejected``
  (and ``refused``) and logged.
* :func:`record` -- a wall-side tap: ``hello`` on ``/feed``, writes one JSON line per
  event (plus one ``{"op":"snapshot",...}`` line per snapshot) to a ``.jsonl`` file and
  resumes with ``since`` after a dropped connection.
* :func:`replay` -- publishes a recording into a hub, paced by the recorded events' own
  timestamps (relative to the first event after the opening snapshot, whose records go
  first, at once) divided by ``speed``; timestamps are shifted to "now" unless ``keep_ts``.

Both count what they did in a :class:`Progress` the caller may pass in, so a command
interrupted by SIGINT/SIGTERM still reports it; both give up with :class:`Unreachable`
after ``retries`` failed connects in a row.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, TextIO

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wallboard import protocol as P
from wallboard.protocol.publisher import PublisherSession
from wallboard.backoff import backoff, classify_close

log = logging.getLogger("wallboard.hub.record")

TS_FIELDS = ("ts", "opens_at", "start", "end", "opened_at", "acknowledged_at", "resolved_at")


class AuthFailed(RuntimeError):
    """The hub refused our token; retrying would not help."""


class Unreachable(RuntimeError):
    """The hub could not be reached within the allowed connect attempts."""


@dataclass
class Progress:
    """What a record or replay did so far (read it after an interruption too)."""

    events: int = 0      # record: written to the file; replay: sent to the hub
    acked: int = 0       # replay: of those, acknowledged by the hub (journaled)
    total: int = 0       # replay: events in the recording
    attempts: int = 0    # failed connects in a row, now


def run_batch_key(run: bytes, n: int) -> int:
    """Batch key ``n`` of the run with the random id ``run`` (e.g. ``uuid4().bytes``): 53
    bits of a hash of both (the protocol's integer range), so keys of two runs under the
    same producer id collide with a probability of about 2^-53 per pair (and the log
    refuses a collision as ``conflict``, it never acks it as a duplicate)."""
    h = hashlib.blake2b(run + n.to_bytes(8, "big"), digest_size=8).digest()
    return int.from_bytes(h, "big") >> 11


class Publisher:
    """At-least-once producer for a hub's ``/publish`` endpoint (see module docstring): the
    asyncio driver of a :class:`~wallboard.protocol.publisher.PublisherSession`, which
    decides what is acked, resent after ``retry_after`` or dropped as refused."""

    def __init__(self, url: str, *, token: str | None = None, producer: str | None = None,
                 window: int = 64, retries: int | None = None) -> None:
        self.url = url
        self.retries = retries  # failed connects in a row before Unreachable (None: forever)
        self.token = token
        self.run = uuid.uuid4().bytes
        self.producer = producer or f"producer-{uuid.UUID(bytes=self.run).hex[:12]}"
        self.window = window
        self.session = PublisherSession(self.producer, token=token, window=window,
                                        batch_key=lambda n: run_batch_key(self.run, n))
        self.rejected = 0                  # refusals of any kind (retried ones included)
        self.refused: dict[str, int] = {}  # terminal refusals by code (those batches are dropped)
        self.last_error: P.Error | None = None
        self.acks: list[P.Ack] = []
        self.keep_acks = False
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._progress = asyncio.Event()

    # the session's counters, under the names this class always had
    @property
    def unacked(self) -> "OrderedDict[int, bytes]":
        return self.session.unacked

    @property
    def acked(self) -> int:
        return self.session.acked

    @property
    def batch(self) -> int:
        """The key of the last batch sent."""
        return self.session.batch

    @property
    def sent_batches(self) -> int:
        return self.session.sent

    @sent_batches.setter
    def sent_batches(self, n: int) -> None:  # a producer restarting its numbering (tests)
        self.session.sent = n

    async def __aenter__(self) -> "Publisher":
        await self._connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _connect(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        delays = backoff()
        attempts = 0
        while True:
            try:
                self._ws = await connect(self.url, additional_headers=headers, compression=None,
                                         max_size=None, open_timeout=10)
                break
            except InvalidStatus as e:
                if classify_close(http_status=e.response.status_code) == "auth":
                    raise AuthFailed(f"{self.url}: hub refused the token (HTTP {e.response.status_code})") from None
                why = f"HTTP {e.response.status_code}"
            except (OSError, TimeoutError) as e:
                why = reason(e)
            attempts += 1
            if self.retries is not None and attempts >= self.retries:
                raise Unreachable(f"cannot reach {self.url}: {why} ({attempts} attempts)")
            d = next(delays)
            log.warning("cannot reach %s (%s); retry in %.1fs", self.url, why, d)
            await asyncio.sleep(d)
        self._reader = asyncio.create_task(self._read(self._ws))
        for data in self.session.connect():  # resend in order; the hub acks committed ones again
            await self._ws.send(data, text=True)

    async def _read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                self.session.receive(raw, time.monotonic())
                self._handle(self.session.events())
                self._progress.set()
        except ConnectionClosed as e:
            if e.rcvd and classify_close(e.rcvd.code, e.rcvd.reason) == "auth":
                self.last_error = P.Error(code="auth", message=e.rcvd.reason)
        except Exception:  # never expected: say so, the next publish reconnects
            log.exception("publisher reader failed")
        finally:
            self._progress.set()

    def _handle(self, items: list[tuple[str, Any]]) -> None:
        for kind, payload in items:
            if kind == "ack":
                if self.keep_acks:
                    self.acks.append(payload)
            elif kind in ("retry", "failed", "fatal"):
                err = payload[1] if kind == "failed" else payload if kind == "fatal" else None
                self.rejected += 1
                if kind == "retry":
                    batch, delay = payload
                    log.warning("hub could not take batch %d now; resending it in %.2f s", batch, delay)
                    self._schedule_retry()
                    continue
                assert err is not None
                self.last_error = P.Error(code=err.code, message=err.detail, index=err.index, field=err.field,
                                          seq=err.seq)
                log.error("hub refused a batch: %s: %s", err.code, err.detail)
                if kind == "failed":
                    self.refused[err.code] = self.refused.get(err.code, 0) + 1
            else:  # "error": a frame that answers nothing we sent
                log.error("bad frame from hub: %s", payload)

    def _schedule_retry(self) -> None:
        wait = self.session.next_retry_in(time.monotonic())
        if wait is None:
            return
        if self._retry is not None:
            self._retry.cancel()
        self._retry = asyncio.get_running_loop().call_later(min(max(wait, 0.0), 30.0), self._resend_due)

    def _resend_due(self) -> None:
        self._retry = None
        ws = self._ws
        for data in self.session.due(time.monotonic()):
            if ws is not None:
                task = asyncio.ensure_future(ws.send(data, text=True))
                task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._schedule_retry()

    async def _ensure(self) -> None:
        if self.session.fatal is not None or (self.last_error is not None and self.last_error.code == "auth"):
            raise AuthFailed(self.last_error.message if self.last_error else str(self.session.fatal))
        if self._reader is not None and self._reader.done():
            await self._connect()

    async def publish(self, events: list[dict[str, Any]]) -> int:
        """Send one batch (waits while ``window`` batches are unacked); returns its key."""
        if not events:
            return self.batch
        while not self.session.has_room():
            await self._ensure()
            self._progress.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._progress.wait(), 1.0)
        await self._ensure()
        key = self.session.publish(events)
        try:
            for data in self.session.data_to_send():
                await self._ws.send(data, text=True)
        except ConnectionClosed:
            await self._ensure()  # reconnect resends everything unacked
        return key

    async def flush(self, timeout: float = 60.0) -> None:
        """Wait until every batch is acked (reconnecting as needed) or ``timeout``."""
        end = time.monotonic() + timeout
        while self.unacked and time.monotonic() < end:
            await self._ensure()
            self._progress.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._progress.wait(), 0.5)
        if self.unacked:
            raise TimeoutError(f"{len(self.unacked)} batches still unacked after {timeout}s")

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await self._reader


def reason(e: BaseException) -> str:
    """A connect failure in a few words: "connection refused", "timed out", ..."""
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve the host name ({e.strerror})"
    if isinstance(e, OSError) and e.errno:
        return os.strerror(e.errno).lower()
    return str(e) or type(e).__name__


def open_output(out: Path | str) -> TextIO:
    """``out`` opened for appending, or ValueError saying precisely why it cannot be."""
    path = Path(out)
    if not path.parent.is_dir():
        raise ValueError(f"--out {out}: directory {str(path.parent)!r} does not exist")
    try:
        return path.open("a", encoding="utf-8")
    except OSError as e:
        raise ValueError(f"--out {out}: cannot write: {e.strerror or e}") from None


async def record(feed_url: str, out: Path | str, *, token: str | None = None, duration: float | None = None,
                 max_events: int | None = None, retries: int | None = None,
                 progress: Progress | None = None) -> int:
    """Tap a hub's ``/feed`` into ``out`` (JSON lines); returns the number of events written.

    ``retries``: failed connects in a row (none welcomed) before :class:`Unreachable`
    (None: forever). ``progress.events`` counts the events written as they are.
    """
    from wallboard.feed import feed_urls

    prog = progress if progress is not None else Progress()
    path = Path(out)
    urls = feed_urls(feed_url)   # several hubs of one log: on loss of one, the next, from the same seq
    hub = 0
    since: int | None = None
    epoch: str | None = None
    end = time.monotonic() + duration if duration else None
    headers = {"Authorization": f"Bearer {token}"} if token else None
    delays = backoff()
    with open_output(path) as fh:
        while end is None or time.monotonic() < end:
            why = ""
            feed_url = urls[hub]
            hub = (hub + 1) % len(urls)   # the next attempt goes to the next hub
            try:
                async with connect(feed_url, additional_headers=headers, compression=None, max_size=None) as ws:
                    delays = backoff()
                    prog.attempts = 0
                    await ws.send(P.encode(P.Hello(token=token, since=since, wall="recorder", epoch=epoch)), text=True)
                    parts: list[dict[str, Any]] = []
                    while end is None or time.monotonic() < end:
                        left = None if end is None else max(0.01, end - time.monotonic())
                        try:
                            raw = await asyncio.wait_for(ws.recv(), left)
                        except asyncio.TimeoutError:
                            break
                        msg = P.decode(raw, max_size=1 << 30)
                        if isinstance(msg, P.Welcome):
                            epoch = msg.epoch
                            log.info("recording from %s (hub %s)", feed_url, msg.hub)
                        elif isinstance(msg, P.Snapshot):
                            parts.append(msg.data)
                            if msg.part + 1 == msg.parts:
                                _line(fh, {"op": "snapshot", "seq": msg.seq,
                                           "data": P.merge_snapshot_parts(parts)})
                                fh.flush()
                                parts, since = [], msg.seq
                        elif isinstance(msg, P.Events):
                            if since is not None and msg.events[0]["seq"] != since + 1:
                                log.warning("seq gap %s -> %s: resync", since, msg.events[0]["seq"])
                                break
                            for ev in msg.events:
                                _line(fh, ev)
                            fh.flush()  # on disk frame by frame: a killed recorder loses nothing
                            prog.events += len(msg.events)
                            since = msg.events[-1]["seq"]
                            if max_events is not None and prog.events >= max_events:
                                return prog.events
                        elif isinstance(msg, P.Error):
                            log.error("hub error: %s: %s", msg.code, msg.message)
                    else:
                        break
                    if end is not None and time.monotonic() >= end:
                        break
            except InvalidStatus as e:
                status = e.response.status_code
                if classify_close(http_status=status) == "auth":
                    raise AuthFailed(f"{feed_url}: hub refused the token (HTTP {status})") from None
                body = e.response.body.decode("utf-8", "replace").strip() if e.response.body else ""
                why = f"HTTP {status}" + (f" ({body[:200]})" if body else "")
            except ConnectionClosed as e:
                if e.rcvd and classify_close(e.rcvd.code, e.rcvd.reason) == "auth":
                    raise AuthFailed(e.rcvd.reason) from None
                await asyncio.sleep(next(delays))
            except (OSError, TimeoutError) as e:
                why = reason(e)
            fh.flush()
            if why:
                prog.attempts += 1
                if retries is not None and prog.attempts >= retries:
                    raise Unreachable(f"cannot reach {feed_url}: {why} ({prog.attempts} attempts)")
                d = next(delays)
                log.warning("cannot reach %s (%s); retry in %.1fs", feed_url, why, d)
                await asyncio.sleep(d)
    return prog.events


def _line(fh: TextIO, obj: dict[str, Any]) -> None:
    fh.write(orjson.dumps(obj).decode())
    fh.write("\n")


_STRIP = {"store": (), "device": ("last_seen",), "change": (), "incident": ()}


def snapshot_to_events(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Entity and sample records of a state snapshot as publishable events."""
    out: list[dict[str, Any]] = []
    keys = {"stores": "store", "devices": "device", "changes": "change", "incidents": "incident"}
    for key, etype in keys.items():
        for rec in data.get(key, []):
            ev = {k: v for k, v in rec.items() if k in P._ALL_FIELDS[etype] or k.startswith("x_")}
            ev["type"] = etype
            ev.pop("seq", None)
            out.append(ev)
    for rec in data.get("voice", []):
        ev = {k: v for k, v in rec.items() if k in P._ALL_FIELDS["voice"] or k.startswith("x_")}
        ev["type"] = "voice"
        ev.pop("seq", None)
        out.append(ev)
    for series in data.get("kpi", []):
        for ts, value in zip(series.get("ts", []), series.get("values", [])):
            ev = {"type": "kpi", "metric": series["metric"], "scope": series["scope"], "value": value, "ts": ts}
            if series.get("unit"):
                ev["unit"] = series["unit"]
            out.append(ev)
    out.sort(key=lambda e: e.get("ts") or 0)
    return out


def read_tape(path: Path | str) -> list[dict[str, Any]]:
    """Events of a recording, validated; errors name the file, line and field."""
    return [ev for _, ev in read_tape_lines(path)]


def tape_objects(fh: Any, path: Path | str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` per non-blank line of a tape; ``ValueError`` naming the
    file and line of one that is not a JSON object."""
    for n, line in enumerate(fh, 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not JSON ({e.msg} at byte {e.pos})") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{path}:{n}: expected a JSON object (an event or a snapshot line)")
        yield n, obj


def read_tape_lines(path: Path | str) -> list[tuple[bool, dict[str, Any]]]:
    """``(from_snapshot, event)`` per event of a recording (a snapshot line gives one
    event per record, ``True``), validated; errors name the file, line and field."""
    events: list[tuple[bool, dict[str, Any]]] = []
    with Path(path).open("rb") as fh:
        for n, obj in tape_objects(fh, path):
            snap = obj.get("op") == "snapshot"
            batch = snapshot_to_events(obj.get("data", {})) if snap else [obj]
            for ev in batch:
                ev.pop("seq", None)
                try:
                    events.append((snap, P.validate_event(ev, require_seq=False, op="replay")))
                except P.ProtocolError as e:
                    raise ValueError(f"{path}:{n}: {e}") from None
    return events


def pace_origin(lines: list[tuple[bool, dict[str, Any]]]) -> float:
    """The recorded time replay time 0 stands for: the ``ts`` of the first event that is
    not a snapshot record (a snapshot's records carry their own, older times: the oldest
    KPI sample may be hours before the recording began); with only snapshots, the newest."""
    live = next((ev["ts"] for snap, ev in lines if not snap and "ts" in ev), None)
    return live if live is not None else max((ev.get("ts", 0.0) for _, ev in lines), default=0.0)


async def replay(path: Path | str, hub_url: str, *, speed: float = 1.0, token: str | None = None,
                 keep_ts: bool = False, max_batch: int = 2000, retries: int | None = None,
                 progress: Progress | None = None) -> int:
    """Publish a recording into the hub at ``hub_url`` (its ``/publish``); returns events sent.

    Paced by the events' ``ts`` relative to :func:`pace_origin`, divided by ``speed``
    (what came before it, the opening snapshot's records, goes at once). ``progress``
    counts events sent and acknowledged as they are; ``retries`` bounds failed connects
    in a row (:class:`Unreachable`).
    """
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    prog = progress if progress is not None else Progress()
    lines = read_tape_lines(path)
    events = [ev for _, ev in lines]
    prog.total = len(events)
    if not events:
        raise ValueError(f"{path}: no events to replay (an empty recording)")
    url = hub_url if hub_url.rstrip("/").endswith("/publish") else hub_url.rstrip("/").rsplit("/feed", 1)[0] + "/publish"
    origin = pace_origin(lines)
    start = time.time()
    shift = 0.0 if keep_ts else start - origin
    sizes: dict[int, int] = {}

    def due(ev: dict[str, Any]) -> float:
        return max(0.0, (ev.get("ts", origin) - origin) / speed)

    def count_acked(pub: Publisher) -> None:
        prog.acked = prog.events - sum(sizes.get(k, 0) for k in pub.unacked)

    async with Publisher(url, token=token, producer=f"replay-{Path(path).stem}", retries=retries) as pub:
        i = 0
        try:
            while i < len(events):
                wait = start + due(events[i]) - time.time()
                if wait > 0:
                    count_acked(pub)
                    await asyncio.sleep(min(wait, 1.0))
                    continue
                batch = []
                while i < len(events) and len(batch) < max_batch and due(events[i]) <= time.time() - start:
                    ev = dict(events[i])
                    for f in TS_FIELDS:
                        if isinstance(ev.get(f), (int, float)):
                            ev[f] = ev[f] + shift
                    batch.append(ev)
                    i += 1
                sizes[await pub.publish(batch)] = len(batch)
                prog.events += len(batch)
                count_acked(pub)
            await pub.flush()
        finally:
            count_acked(pub)
    return prog.events
