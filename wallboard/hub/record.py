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
* :func:`replay` -- publishes a recording into a hub, paced by the recorded timestamps
  divided by ``speed``; timestamps are shifted to "now" unless ``keep_ts``.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any, TextIO

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wallboard import protocol as P
from wallboard.backoff import backoff, classify_close

log = logging.getLogger("wallboard.hub.record")

TS_FIELDS = ("ts", "opens_at", "start", "end", "opened_at", "acknowledged_at", "resolved_at")


class AuthFailed(RuntimeError):
    """The hub refused our token; retrying would not help."""


def run_batch_key(run: bytes, n: int) -> int:
    """Batch key ``n`` of the run with the random id ``run`` (e.g. ``uuid4().bytes``): 53
    bits of a hash of both (the protocol's integer range), so keys of two runs under the
    same producer id collide with a probability of about 2^-53 per pair (and the log
    refuses a collision as ``conflict``, it never acks it as a duplicate)."""
    h = hashlib.blake2b(run + n.to_bytes(8, "big"), digest_size=8).digest()
    return int.from_bytes(h, "big") >> 11


class Publisher:
    """At-least-once producer for a hub's ``/publish`` endpoint (see module docstring)."""

    def __init__(self, url: str, *, token: str | None = None, producer: str | None = None,
                 window: int = 64) -> None:
        self.url = url
        self.token = token
        self.run = uuid.uuid4().bytes
        self.producer = producer or f"producer-{uuid.UUID(bytes=self.run).hex[:12]}"
        self.window = window
        self.sent_batches = 0
        self.batch = 0                     # key of the last batch sent
        self.unacked: OrderedDict[int, bytes] = OrderedDict()
        self.acked = 0
        self.rejected = 0
        self.refused: dict[str, int] = {}  # terminal refusals by code (those batches are dropped)
        self.last_error: P.Error | None = None
        self.acks: list[P.Ack] = []
        self.keep_acks = False
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()
        self._closed = False

    async def __aenter__(self) -> "Publisher":
        await self._connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _connect(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        delays = backoff()
        while True:
            try:
                self._ws = await connect(self.url, additional_headers=headers, compression=None,
                                         max_size=None, open_timeout=10)
                break
            except InvalidStatus as e:
                if classify_close(http_status=e.response.status_code) == "auth":
                    raise AuthFailed(f"{self.url}: hub refused the token (HTTP {e.response.status_code})") from None
                await asyncio.sleep(next(delays))
            except OSError as e:
                d = next(delays)
                log.warning("cannot reach %s (%s); retry in %.1fs", self.url, e, d)
                await asyncio.sleep(d)
        self._reader = asyncio.create_task(self._read(self._ws))
        for data in list(self.unacked.values()):  # resend in order; the hub drops duplicates
            await self._ws.send(data, text=True)

    async def _read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                msg = P.decode(raw, max_size=1 << 30)
                if isinstance(msg, P.Ack):
                    if msg.batch is not None:
                        self.unacked.pop(msg.batch, None)
                    self.acked += 1
                    if self.keep_acks:
                        self.acks.append(msg)
                elif isinstance(msg, P.Error):
                    self.rejected += 1
                    self.last_error = msg
                    log.error("hub refused a batch: %s: %s", msg.code, msg.message)
                    if msg.code == "auth":
                        raise AuthFailed(msg.message)
                    # acks and errors come in batch order: this answers the oldest unacked
                    # batch. A retryable refusal resends it after retry_after; a terminal
                    # one drops it (it would be refused again).
                    if self.unacked:
                        num, data = self.unacked.popitem(last=False)
                        if msg.code in P.RETRYABLE_CODES:
                            self.unacked[num] = data
                            delay = msg.retry_after if msg.retry_after is not None else 1.0
                            asyncio.get_running_loop().call_later(min(max(delay, 0.05), 30.0), self._resend, num)
                        else:
                            self.refused[msg.code] = self.refused.get(msg.code, 0) + 1
                self._progress.set()
        except ConnectionClosed as e:
            if e.rcvd and classify_close(e.rcvd.code, e.rcvd.reason) == "auth":
                self.last_error = P.Error(code="auth", message=e.rcvd.reason)
        except P.ProtocolError as e:
            log.error("bad frame from hub: %s", e)
        finally:
            self._progress.set()

    def _resend(self, num: int) -> None:
        data = self.unacked.get(num)
        if data is not None and self._ws is not None:
            task = asyncio.ensure_future(self._ws.send(data, text=True))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _ensure(self) -> None:
        if self._reader is not None and self._reader.done():
            if self.last_error is not None and self.last_error.code == "auth":
                raise AuthFailed(self.last_error.message)
            await self._connect()

    async def publish(self, events: list[dict[str, Any]]) -> int:
        """Send one batch (waits while ``window`` batches are unacked); returns its key."""
        if not events:
            return self.batch
        while len(self.unacked) >= self.window:
            await self._ensure()
            self._progress.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._progress.wait(), 1.0)
        self.sent_batches += 1
        self.batch = run_batch_key(self.run, self.sent_batches)
        data = P.encode(P.Publish(events=events, producer=self.producer, batch=self.batch, token=self.token))
        self.unacked[self.batch] = data
        await self._ensure()
        try:
            await self._ws.send(data, text=True)
        except ConnectionClosed:
            await self._ensure()  # reconnect resends everything unacked
        return self.batch

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
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await self._reader


async def record(feed_url: str, out: Path | str, *, token: str | None = None, duration: float | None = None,
                 max_events: int | None = None) -> int:
    """Tap a hub's ``/feed`` into ``out`` (JSON lines); returns the number of events written."""
    path = Path(out)
    written = 0
    since: int | None = None
    end = time.monotonic() + duration if duration else None
    headers = {"Authorization": f"Bearer {token}"} if token else None
    delays = backoff()
    with path.open("a", encoding="utf-8") as fh:
        while end is None or time.monotonic() < end:
            try:
                async with connect(feed_url, additional_headers=headers, compression=None, max_size=None) as ws:
                    delays = backoff()
                    await ws.send(P.encode(P.Hello(token=token, since=since, wall="recorder")), text=True)
                    parts: list[dict[str, Any]] = []
                    while end is None or time.monotonic() < end:
                        left = None if end is None else max(0.01, end - time.monotonic())
                        try:
                            raw = await asyncio.wait_for(ws.recv(), left)
                        except asyncio.TimeoutError:
                            break
                        msg = P.decode(raw, max_size=1 << 30)
                        if isinstance(msg, P.Snapshot):
                            parts.append(msg.data)
                            if msg.part + 1 == msg.parts:
                                _line(fh, {"op": "snapshot", "seq": msg.seq,
                                           "data": P.merge_snapshot_parts(parts)})
                                parts, since = [], msg.seq
                        elif isinstance(msg, P.Events):
                            if since is not None and msg.events[0]["seq"] != since + 1:
                                log.warning("seq gap %s -> %s: resync", since, msg.events[0]["seq"])
                                break
                            for ev in msg.events:
                                _line(fh, ev)
                            written += len(msg.events)
                            since = msg.events[-1]["seq"]
                            if max_events is not None and written >= max_events:
                                return written
                        elif isinstance(msg, P.Error):
                            log.error("hub error: %s: %s", msg.code, msg.message)
                    else:
                        break
                    if end is not None and time.monotonic() >= end:
                        break
            except InvalidStatus as e:
                raise AuthFailed(f"{feed_url}: HTTP {e.response.status_code}") from None
            except ConnectionClosed as e:
                if e.rcvd and classify_close(e.rcvd.code, e.rcvd.reason) == "auth":
                    raise AuthFailed(e.rcvd.reason) from None
                await asyncio.sleep(next(delays))
            except OSError:
                await asyncio.sleep(next(delays))
            fh.flush()
    return written


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
    events: list[dict[str, Any]] = []
    with Path(path).open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not JSON ({e.msg} at byte {e.pos})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{path}:{n}: expected a JSON object (an event or a snapshot line)")
            batch = snapshot_to_events(obj.get("data", {})) if obj.get("op") == "snapshot" else [obj]
            for ev in batch:
                ev.pop("seq", None)
                try:
                    events.append(P.validate_event(ev, require_seq=False, op="replay"))
                except P.ProtocolError as e:
                    raise ValueError(f"{path}:{n}: {e}") from None
    return events


async def replay(path: Path | str, hub_url: str, *, speed: float = 1.0, token: str | None = None,
                 keep_ts: bool = False, max_batch: int = 2000) -> int:
    """Publish a recording into the hub at ``hub_url`` (its ``/publish``); returns events sent."""
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    events = read_tape(path)
    if not events:
        return 0
    url = hub_url if hub_url.rstrip("/").endswith("/publish") else hub_url.rstrip("/").rsplit("/feed", 1)[0] + "/publish"
    first = min(e.get("ts", 0) for e in events)
    start = time.time()
    shift = 0.0 if keep_ts else start - first
    sent = 0
    async with Publisher(url, token=token, producer=f"replay-{Path(path).stem}") as pub:
        i = 0
        while i < len(events):
            due = (events[i].get("ts", first) - first) / speed
            wait = start + due - time.time()
            if wait > 0:
                await asyncio.sleep(min(wait, 1.0))
                continue
            batch = []
            while i < len(events) and len(batch) < max_batch and (events[i].get("ts", first) - first) / speed <= \
                    time.time() - start:
                ev = dict(events[i])
                for f in TS_FIELDS:
                    if isinstance(ev.get(f), (int, float)):
                        ev[f] = ev[f] + shift
                batch.append(ev)
                i += 1
            await pub.publish(batch)
            sent += len(batch)
        await pub.flush()
    return sent
