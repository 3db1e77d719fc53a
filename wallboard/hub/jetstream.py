"""The hub's log on NATS JetStream: several hubs append to one replicated stream and
serve the same feed (``wallboard hub --journal nats://HOST:PORT[,HOST:PORT...]/STREAM``).

How seqs stay one sequence with several writers (docs/architecture.md, "Several hubs"):

* one stream message (a **record**) per producer batch: its first line is a JSON header
  ``{"first", "last", "p", "b", "d", "at"}`` (event seqs, the batch key, its digest and
  commit time), then the batch's events, one JSON object per line, ``seq`` set. A batch is
  one message, so it is stored whole or not at all.
* a hub numbers a batch after the last event of the **last record it has followed**
  (stream sequence S) and publishes it with ``Nats-Expected-Last-Sequence: S``. The stream
  stores it only if S is still its last message; otherwise (another hub appended first)
  the hub follows the stream up to the new last record and numbers the batch again. So
  event seqs are contiguous, assigned once, and the same on every hub (they are in the
  record); the stream sequence numbers records (the first, the *genesis* record, holds
  no event and exists so that no append ever expects 0, which JetStream does not check).
* idempotency: ``Nats-Msg-Id`` = the batch key, so the stream itself answers a resend
  within its duplicate window (2 min) as a duplicate, naming the record; the exact
  ``(producer, batch) -> (digest, first, last, at)`` record (:mod:`wallboard.hub.batches`)
  is built by every hub from the records it follows and kept in the snapshot, so a
  resend to *another* hub, or after the window, is answered with its range (or refused
  as ``conflict``) for ``dedupe_window`` (24 h).
* acked = stored by the stream's quorum (the PubAck); ``sync_interval: always`` in the
  server configuration makes that mean fsync too.
* snapshots: an object store bucket ``<STREAM>_snap``, object ``snapshot``: a header line
  ``{"seq", "sseq", "keys"}`` and the state's JSON; compaction purges whole records from
  the head of the stream below the snapshot minus ``keep`` events (never single events).
  A new hub loads it and follows the stream from the record after it.

Every method runs on the hub's event loop, except :meth:`recover`, :meth:`expire_keys` and
:meth:`stats`, which the hub calls from worker threads (``recover`` hops onto the loop).
"""
from __future__ import annotations

import asyncio
import bisect
import hashlib
import logging
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import orjson

from .batches import (DEDUPE_WINDOW_S, Appended, Batch, BatchRefused, GroupCommit, JournalUnavailable, KeyMemory,
                      KeyRecord, plan)
from .journal import REPLAY_BUDGET, History, Recovered, _snapshot_bytes
from .journal_guard import JournalRefused, new_epoch
from .jetstream_replay import ReplaySnapshots, decode

log = logging.getLogger("wallboard.hub.jetstream")

#: The stream's own duplicate window for ``Nats-Msg-Id`` (the exact record covers the rest).
STREAM_DUPLICATE_WINDOW_S = 120.0
#: Records whose (stream seq, first, last) a hub keeps to find an event's record.
INDEX_RECORDS = 200_000
#: Seconds an append waits for its follower (CAS retry, a duplicate's record) before
#: answering ``unavailable``.
FOLLOW_WAIT_S = 5.0
#: How long a starting hub waits for a JetStream that answers "not yet" (a cluster forming).
START_WAIT_S = 30.0
#: Records a read fetches at once at most (pipelined ``get_msg`` requests).
READ_WINDOW = 64
#: Appends retried after another hub took the stream's next record, per group.
CAS_TRIES = 200
#: JetStream's error code for a wrong ``Nats-Expected-Last-Sequence``.
WRONG_LAST_SEQUENCE = 10071
SNAPSHOT_OBJECT = "snapshot"

_STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HOSTPORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")


def import_nats() -> Any:
    """``import nats`` without aiohttp: nats-py imports it for its WebSocket transport,
    which ``nats://`` URLs never use, and aiohttp is ~55 modules and a CA bundle loaded
    at import: a third of a hub's start (a hub given ``--http-port`` imports aiohttp
    itself, normally, before or after)."""
    if "nats" in sys.modules or "aiohttp" in sys.modules:
        import nats
        return nats
    sys.modules["aiohttp"] = None  # type: ignore[assignment]   # "import aiohttp" raises ImportError
    try:
        import nats
    finally:
        del sys.modules["aiohttp"]
    return nats


def is_nats_url(journal: str | None) -> bool:
    return journal is not None and journal.startswith("nats://")


@dataclass(frozen=True)
class NatsTarget:
    servers: list[str]
    stream: str

    @property
    def subject(self) -> str:
        return f"wallboard.{self.stream}.log"

    @property
    def bucket(self) -> str:
        return f"{self.stream}_snap"


def parse_nats_url(url: str) -> NatsTarget:
    """``nats://h:p[,h:p...]/STREAM`` -> servers and stream; ``ValueError`` naming what is wrong."""
    if not url.startswith("nats://"):
        raise ValueError(f"journal {url!r}: expected nats://HOST:PORT[,HOST:PORT...]/STREAM")
    rest = url[len("nats://"):]
    hosts, sep, stream = rest.partition("/")
    if not sep or not stream:
        raise ValueError(f"journal {url!r}: no stream name; expected nats://HOST:PORT[,HOST:PORT...]/STREAM")
    if not _STREAM_NAME.match(stream):
        raise ValueError(f"journal {url!r}: stream name {stream!r}: expected 1-64 of A-Z a-z 0-9 _ -")
    servers = []
    for hp in hosts.split(","):
        m = _HOSTPORT.match(hp.strip())
        if not m or not 0 < int(m.group(2)) < 65536:
            raise ValueError(f"journal {url!r}: server {hp!r}: expected HOST:PORT")
        servers.append(f"nats://{hp.strip()}")
    return NatsTarget(servers, stream)


def _not_ready(e: BaseException) -> bool:
    """A JetStream answer that means "not yet" rather than "no": a request timeout, no
    responders (JetStream not enabled *yet* on a starting server), no response from the
    stream (its leader not elected yet), 503 "JetStream system temporarily unavailable",
    or no peers for the replicas yet (10005: the other servers not routed yet)."""
    from nats.errors import NoRespondersError, TimeoutError as NatsTimeout
    from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError

    if isinstance(e, (NatsTimeout, asyncio.TimeoutError, NoRespondersError, NoStreamResponseError,
                      ServiceUnavailableError)):
        return True
    return isinstance(e, APIError) and (e.code == 503 or e.err_code in (10008, 10005))


def msg_id(producer: str, batch: int) -> str:
    """``Nats-Msg-Id`` of a batch key (ASCII whatever the producer id)."""
    return "k" + hashlib.blake2b(f"{producer}\x1f{batch}".encode(), digest_size=12).hexdigest()


def encode_record(header: dict[str, Any], rows: list[tuple[int, bytes]]) -> bytes:
    return b"\n".join([orjson.dumps(header)] + [d for _, d in rows])


class JetStreamJournal:
    """See the module docstring. ``await start()`` before use, ``await aclose()`` after."""

    is_async = True

    def __init__(self, url: str, *, replicas: int = 1, dedupe_window: float = DEDUPE_WINDOW_S,
                 connect_timeout: float = 5.0, retain_s: float = 0.0, replay_budget: int = REPLAY_BUDGET,
                 start_wait_s: float = START_WAIT_S) -> None:
        self.target = parse_nats_url(url)
        #: snapshots kept for replays (``history``): a second stream, ``replay_budget`` bytes
        self.replay = ReplaySnapshots(self.target.stream, replay_budget, replicas)
        self._last_at = 0.0         # commit time of the last record followed (never goes back)
        self._compacted_seq = 0     # the seq of this hub's last compaction
        self.url = url
        self.replicas = replicas
        self.window = dedupe_window
        self.retain_s = retain_s     # records committed within this many seconds are not purged
        self.connect_timeout = connect_timeout
        self.start_wait_s = start_wait_s
        self.epoch = ""
        self.last_seq = 0           # last event seq followed
        self.first_kept = 1
        self.commits = 0
        self.foreign = 0            # stream messages that are not records (skipped, counted)
        self.cas_retries = 0
        self.link_errors = 0
        self._closing = False
        self._error_logged = -1e9
        self.on_rows: Callable[[list[tuple[int, bytes, dict[str, Any]]]], None] | None = None
        self._sseq = 0              # stream seq of the last record followed
        self._index: deque[tuple[int, int, int, float]] = deque(maxlen=INDEX_RECORDS)  # (sseq, first, last, at)
        self._keys = KeyMemory(self.window)
        self._keys_lock = threading.Lock()
        self._progress = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nc: Any = None
        self._js: Any = None
        self._sub: Any = None
        self._obj: Any = None
        self._startup: list[dict[str, Any]] | None = None
        self._snap: tuple[int, int, dict[str, Any] | None] = (0, 0, None)   # (seq, sseq, state)
        self._append_lock = asyncio.Lock()

    # ------------------------------------------------------------------ start / stop
    async def start(self) -> None:
        """Connect, create the stream and snapshot bucket if missing, load the newest
        snapshot and follow the stream from the record after it up to its end."""
        nats = import_nats()
        from nats.js import api

        self._loop = asyncio.get_running_loop()
        t = self.target
        try:   # nats-py retries the first connect too (reconnect attempts): bound it here
            self._nc = await asyncio.wait_for(nats.connect(
                servers=t.servers, connect_timeout=self.connect_timeout, max_reconnect_attempts=-1,
                reconnect_time_wait=0.5, allow_reconnect=True, name="wallboard-hub", error_cb=self._nats_error,
                disconnected_cb=self._nats_disconnected, reconnected_cb=self._nats_reconnected),
                self.connect_timeout * (len(t.servers) + 1))
        except Exception as e:
            raise JournalRefused(f"journal {self.url}: cannot reach NATS ({type(e).__name__}: {e})", "missing") from e
        self._js = self._nc.jetstream(timeout=FOLLOW_WAIT_S)
        info = await self._set_up(api)
        snap_seq, snap_sseq, _ = self._snap
        first_stream = info.state.first_seq or 1
        if snap_sseq + 1 < first_stream and info.state.messages:
            await self._close_refused()
            raise JournalRefused(f"journal {self.url}: the stream starts at record {first_stream} but the newest "
                                 f"snapshot covers records up to {snap_sseq} only (trimmed by something else than "
                                 "the hub: max_age/max_msgs on the stream?)", "damaged")
        self.last_seq = snap_seq
        self._sseq = snap_sseq
        self.first_kept = snap_seq + 1
        self._startup = []
        end = info.state.last_seq
        await self._subscribe(self._sseq + 1)
        deadline = time.monotonic() + 120
        while self._sseq < end:
            if time.monotonic() > deadline:
                raise JournalRefused(f"journal {self.url}: could not follow the stream to record {end} "
                                     f"within 120 s (at {self._sseq})", "missing")
            await self._wait_progress(1.0)
        await self._first_kept_at_start(info.state.first_seq)
        log.info("journal %s: epoch %s, snapshot at seq %d (record %d), followed to seq %d (record %d)",
                 self.url, self.epoch, snap_seq, snap_sseq, self.last_seq, self._sseq)

    async def _set_up(self, api: Any) -> Any:
        """Stream, snapshot bucket, newest snapshot, replay index. A cluster that is still
        forming (servers started together, a meta leader not yet elected, the stream's
        leader moving) answers with timeouts or 503s for a few seconds: those are retried
        for up to ``start_wait_s``, saying so once every 5 s; anything else, or still
        failing then, refuses the start."""
        deadline = time.monotonic() + self.start_wait_s
        said = -1e9
        while True:
            try:
                info = await self._ensure_stream(api)
                self._obj = await self._snapshot_bucket(api)
                await self._load_snapshot()
                await self.replay.start(self._js, self.epoch)
                return info
            except JournalRefused:
                await self._close_refused()
                raise
            except Exception as e:
                why = f"{type(e).__name__}: {e}"
                now = time.monotonic()
                if not _not_ready(e) or now >= deadline:
                    await self._close_refused()
                    waited = f" (still not ready after {self.start_wait_s:g} s)" if _not_ready(e) else ""
                    raise JournalRefused(f"journal {self.url}: JetStream refused ({why}){waited}", "missing") from e
                if now - said >= 5:
                    said = now
                    log.warning("journal %s: JetStream not ready (%s); retrying for up to %.0f s more", self.url,
                                why, deadline - now)
                await asyncio.sleep(min(0.5, max(0.0, deadline - now)))

    async def _close_refused(self) -> None:
        self._closing = True   # our own close: not "disconnected; reconnecting"
        await self._nc.close()

    async def _nats_error(self, e: Exception) -> None:
        self.link_errors += 1
        now = time.monotonic()
        if now - self._error_logged >= 5:
            self._error_logged = now
            log.warning("journal %s: NATS: %s: %s (%d so far)", self.url, type(e).__name__, e, self.link_errors)

    async def _nats_disconnected(self) -> None:
        if self._nc is not None and not self._closing:
                log.warning("journal %s: disconnected from NATS; reconnecting", self.url)

    async def _nats_reconnected(self) -> None:
        log.warning("journal %s: reconnected to %s", self.url, getattr(self._nc, "connected_url", None))

    async def _ensure_stream(self, api: Any) -> Any:
        from nats.js.errors import APIError, NotFoundError

        t = self.target
        try:
            info = await self._js.stream_info(t.stream)
        except NotFoundError:
            epoch = new_epoch()
            cfg = api.StreamConfig(
                name=t.stream, subjects=[t.subject], description=f"wallboard log epoch {epoch}",
                retention=api.RetentionPolicy.LIMITS, storage=api.StorageType.FILE, num_replicas=self.replicas,
                duplicate_window=STREAM_DUPLICATE_WINDOW_S, deny_delete=True, discard=api.DiscardPolicy.OLD)
            try:
                info = await self._js.add_stream(cfg)
                log.info("journal %s: stream %s created (replicas %d, epoch %s)", self.url, t.stream,
                         self.replicas, epoch)
            except APIError as e:   # another hub created it meanwhile (with its own epoch), or a refusal
                try:
                    info = await self._js.stream_info(t.stream)
                except NotFoundError:
                    if _not_ready(e):
                        raise e from None
                    raise JournalRefused(f"journal {self.url}: JetStream refused to create stream {t.stream} with "
                                         f"{self.replicas} replica(s): {e.description} (err_code {e.err_code})",
                                         "missing") from e
        desc = info.config.description or ""
        if not desc.startswith("wallboard log epoch "):
            raise JournalRefused(f"journal {self.url}: stream {t.stream} is not a wallboard log (description "
                                 f"{desc!r}); give --journal another stream", "foreign")
        self.epoch = desc.rsplit(" ", 1)[1]
        have = info.config.num_replicas or 1
        if have != self.replicas:   # --replicas acts at creation only: another hub (or nats) made it
            log.warning("journal %s: stream %s has %d replica(s), not the %d of --replicas: kept as it is (give every "
                        "hub of the stream the same --replicas; change it with `nats stream edit %s --replicas %d`)",
                        self.url, t.stream, have, self.replicas, t.stream, self.replicas)
        if not info.state.last_seq:   # the genesis record: no append ever expects sequence 0
            await self._js.publish(t.subject, orjson.dumps({"genesis": self.epoch}),
                                   headers={"Nats-Msg-Id": f"genesis-{self.epoch}"})
            info = await self._js.stream_info(t.stream)
        return info

    async def _snapshot_bucket(self, api: Any) -> Any:
        """The snapshot bucket as it is (another hub may have made it with other replicas),
        or a new one."""
        from nats.js.errors import BucketNotFoundError

        t = self.target
        try:
            return await self._js.object_store(t.bucket)
        except BucketNotFoundError:
            return await self._js.create_object_store(
                t.bucket, config=api.ObjectStoreConfig(description=f"wallboard snapshots of {t.stream}",
                                                       replicas=self.replicas, storage=api.StorageType.FILE))

    async def _load_snapshot(self) -> None:
        from nats.js.errors import NotFoundError, ObjectNotFoundError

        try:
            res = await self._obj.get(SNAPSHOT_OBJECT)
        except (ObjectNotFoundError, NotFoundError):
            return
        data = res.data or b""
        head, _, body = data.partition(b"\n")
        meta = orjson.loads(head)
        if meta.get("epoch") != self.epoch:
            log.warning("journal %s: snapshot of epoch %s ignored (stream epoch %s)", self.url, meta.get("epoch"),
                        self.epoch)
            return
        now = time.time()
        for p, b, d, first, last, at in meta.get("keys", []):
            self._remember_key((p, b), (bytes.fromhex(d) if d else None, first, last, at), now)
        self._snap = (meta["seq"], meta["sseq"], orjson.loads(body))
        self._last_at = max(self._last_at, float(meta.get("at", 0.0)))

    async def _subscribe(self, start: int) -> None:
        from nats.js import api

        cfg = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
        self._sub = await self._js.subscribe(self.target.subject, stream=self.target.stream, cb=self._on_msg,
                                             ordered_consumer=True, config=cfg, idle_heartbeat=2.0,
                                             pending_msgs_limit=-1, pending_bytes_limit=-1)

    async def aclose(self) -> None:
        self._closing = True
        await self.replay.stop()
        if self._sub is not None:
            try:
                await asyncio.wait_for(self._sub.unsubscribe(), 2)
            except Exception as e:
                log.debug("journal %s: unsubscribe: %s", self.url, e)
            self._sub = None
        if self._nc is not None:
            try:
                await asyncio.wait_for(self._nc.close(), 5)
            except Exception as e:
                log.warning("journal %s: close: %s", self.url, e)
            self._nc = None

    def close(self) -> None:
        """Synchronous close (the hub awaits :meth:`aclose`)."""
        if self._nc is not None and self._loop is not None and self._loop.is_running():
            self._loop.create_task(self.aclose())

    # ------------------------------------------------------------------ following
    async def _on_msg(self, msg: Any) -> None:
        sseq = msg.metadata.sequence.stream
        if sseq <= self._sseq:
            return  # already followed (a consumer reset)
        try:
            head, _, body = msg.data.partition(b"\n")
            meta = orjson.loads(head)
            if "genesis" in meta:
                self._sseq = sseq
                self._progress.set()
                return
            first, last = int(meta["first"]), int(meta["last"])
            lines = body.split(b"\n") if body else []
            if len(lines) != last - first + 1:
                raise ValueError(f"{len(lines)} events for seq {first}..{last}")
        except Exception as e:
            self.foreign += 1
            self._sseq = sseq
            log.error("journal %s: stream record %d is not a wallboard record (%s): skipped", self.url, sseq, e)
            self._progress.set()
            return
        if first != self.last_seq + 1:
            # only a writer that ignored Nats-Expected-Last-Sequence can do this
            self.foreign += 1
            self._sseq = sseq
            log.error("journal %s: record %d holds seq %d..%d, expected to start at %d: skipped", self.url, sseq,
                      first, last, self.last_seq + 1)
            self._progress.set()
            return
        rows = [(first + i, d, orjson.loads(d)) for i, d in enumerate(lines)]
        self._sseq = sseq
        self._last_at = at = max(self._last_at, float(meta.get("at", 0.0)))   # commit times never go back
        self._index.append((sseq, first, last, at))
        if meta.get("p") is not None and meta.get("b") is not None:
            d = meta.get("d")
            self._remember_key((meta["p"], meta["b"]), (bytes.fromhex(d) if d else None, first, last,
                                                        float(meta.get("at", time.time()))), time.time())
        self.last_seq = last
        if self._startup is not None:
            self._startup.extend(ev for _, _, ev in rows)
        if self.on_rows is not None:
            self.on_rows(rows)
        self._progress.set()

    async def _wait_progress(self, timeout: float) -> bool:
        self._progress.clear()
        try:
            await asyncio.wait_for(self._progress.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def _reach(self, sseq: int, what: str) -> None:
        """Wait until the record at stream seq ``sseq`` is followed."""
        deadline = time.monotonic() + FOLLOW_WAIT_S
        while self._sseq < sseq:
            if time.monotonic() > deadline:
                raise JournalUnavailable(f"journal {self.url}: {what}: the stream is at record {sseq}, this hub "
                                         f"followed it to {self._sseq} only within {FOLLOW_WAIT_S:.0f} s")
            await self._wait_progress(0.5)

    # ------------------------------------------------------------------ keys
    def _remember_key(self, key: tuple[str, int], rec: KeyRecord, now: float) -> None:
        with self._keys_lock:
            self._keys.put(key, rec)
            if len(self._keys) % 1024 == 0:
                self._keys.expire(now)

    def _lookup(self, producer: str, batch: int) -> KeyRecord | None:
        with self._keys_lock:
            return self._keys.get(producer, batch)

    def expire_keys(self) -> int:
        with self._keys_lock:
            return self._keys.expire(time.time())

    def batch_range(self, producer: str, batch: int) -> tuple[int, int] | None:
        rec = self._lookup(producer, batch)
        return (rec[1], rec[2]) if rec is not None and rec[3] >= time.time() - self.window else None

    # ------------------------------------------------------------------ append
    async def append(self, batches: list[Batch]) -> GroupCommit:
        """Publish each fresh batch as one record, numbered after the last record
        followed, with ``Nats-Expected-Last-Sequence`` (see the module docstring)."""
        async with self._append_lock:
            return await self._append(batches)

    async def _append(self, batches: list[Batch]) -> GroupCommit:
        from nats.js.errors import APIError

        outcomes: list[Any] = [None] * len(batches)
        rows: list[tuple[int, bytes]] = []
        fresh: list[int] = []
        pending = list(range(len(batches)))
        max_payload = getattr(self._nc, "max_payload", 1 << 20) if self._nc is not None else 1 << 20
        for _ in range(CAS_TRIES):
            now = time.time()
            done = plan([batches[i] for i in pending], self.last_seq, self._lookup, now, self.window)
            expected = self._sseq
            redo: list[int] = []
            lost_race = False
            cursor = 0    # into done.rows
            for j, i in enumerate(pending):
                outcome = done.outcomes[j]
                if redo:
                    redo.append(i)
                    continue
                if j not in done.fresh:
                    outcomes[i] = outcome
                    continue
                b = batches[i]
                n = outcome.last - outcome.first + 1
                brows = done.rows[cursor:cursor + n]
                cursor += n
                header: dict[str, Any] = {"first": outcome.first, "last": outcome.last, "at": now}
                hdrs = {"Nats-Expected-Last-Sequence": str(expected)}
                if b.key is not None:
                    header.update(p=b.producer, b=b.batch, d=b.digest.hex() if b.digest else None)
                    hdrs["Nats-Msg-Id"] = msg_id(*b.key)
                payload = encode_record(header, brows)
                if len(payload) + 512 > max_payload:
                    self._unset(b)
                    outcomes[i] = BatchRefused("too_large", f"batch of {len(b.events)} events is {len(payload)} bytes "
                                               f"as one record; the NATS server takes at most {max_payload} "
                                               "(max_payload): send smaller batches", field="events")
                    redo.append(-1)   # the seqs planned after it are wrong: plan the rest again
                    continue
                try:
                    ack = await self._js.publish(self.target.subject, payload, headers=hdrs)
                except APIError as e:
                    self._unset(b)
                    if e.err_code == WRONG_LAST_SEQUENCE:
                        self.cas_retries += 1
                        lost_race = True
                        redo.append(i)
                        continue
                    self._unset_all(batches, pending[j + 1:])
                    raise JournalUnavailable(f"journal {self.url}: JetStream refused the append: {e.description}")
                except Exception as e:
                    self._unset(b)
                    self._unset_all(batches, pending[j + 1:])
                    raise JournalUnavailable(f"journal {self.url}: append failed ({type(e).__name__}: {e}); "
                                             "resend the same batch (a duplicate is answered as such)") from e
                if ack.duplicate:   # the stream's first line of dedupe: answered from the record
                    self._unset(b)
                    await self._reach(ack.seq, "a duplicate's record")
                    outcomes[i] = self._duplicate(b)
                    redo.append(-1)
                    continue
                expected = ack.seq
                outcomes[i] = outcome
                rows.extend(brows)
                fresh.append(i)
                self.commits += 1
            redo = [i for i in redo if i >= 0]
            for i in redo:
                self._unset(batches[i])
            if not redo:
                break
            pending = redo
            if lost_race:
                await self._reach(expected + 1, "another hub's record")
        else:
            raise JournalUnavailable(f"journal {self.url}: {CAS_TRIES} appends in a row lost the race to other hubs")
        last = max([self.last_seq] + [o.last for o in outcomes if isinstance(o, Appended)])
        return GroupCommit(outcomes=outcomes, rows=rows, fresh=fresh, last_seq=last)

    @staticmethod
    def _unset(b: Batch) -> None:
        for ev in b.events:
            ev.pop("seq", None)

    def _unset_all(self, batches: list[Batch], rest: list[int]) -> None:
        for i in rest:
            self._unset(batches[i])

    def _duplicate(self, b: Batch) -> Appended | BatchRefused:
        rec = self._lookup(*b.key) if b.key else None
        if rec is None:
            return Appended(self.last_seq + 1, self.last_seq)   # not a record of ours: nothing to answer with
        digest, first, last, _ = rec
        if digest is not None and b.digest is not None and digest != b.digest:
            return BatchRefused("conflict", f"producer {b.producer!r} batch {b.batch} was committed as seq "
                                f"{first}..{last} with other events; a new batch needs a new key (nothing applied)",
                                field="batch")
        return Appended(first, last, duplicate=True)

    # ------------------------------------------------------------------ read
    async def read(self, after: int, limit: int) -> list[dict[str, Any]]:
        """Kept events with ``seq > after`` (at most ``limit``), read from the stream."""
        return [orjson.loads(d) for _, _, d in await self._timed(after, limit)]

    async def _timed(self, after: int, limit: int, upto: int | None = None) -> list[tuple[int, float, bytes]]:
        """``(seq, commit time, event JSON)`` of kept events with ``seq > after`` (and
        ``<= upto``), at most ``limit``; commit times never go back in stream order."""
        from nats.js.errors import NotFoundError

        if after + 1 < self.first_kept or after >= self.last_seq:
            return []
        sseq = await self._locate(after + 1)
        if sseq is None:
            return []
        end = self.last_seq if upto is None else upto
        out: list[tuple[int, float, bytes]] = []
        prev_at = 0.0
        window = 4    # records fetched at once (pipelined requests), doubling up to READ_WINDOW
        while len(out) < limit and sseq <= self._sseq:
            batch = range(sseq, min(self._sseq, sseq + window - 1) + 1)
            window = min(READ_WINDOW, window * 2)
            msgs = await asyncio.gather(*(self._js.get_msg(self.target.stream, s) for s in batch),
                                        return_exceptions=True)
            for s, msg in zip(batch, msgs):
                if isinstance(msg, NotFoundError):
                    if not out:   # purged meanwhile
                        await self._refresh_first_kept()
                        return []
                    return out
                if isinstance(msg, BaseException):
                    raise msg
                sseq = s + 1
                head, _, body = (msg.data or b"").partition(b"\n")
                meta = orjson.loads(head)
                if "first" not in meta:
                    continue
                first = meta["first"]
                if first > end:
                    return out
                prev_at = at = max(prev_at, self._commit_time(s, float(meta.get("at", 0.0))))
                for i, d in enumerate(body.split(b"\n")):
                    if after < first + i <= end and len(out) < limit:
                        out.append((first + i, at, d))
                if len(out) >= limit:
                    return out
        return out

    async def _locate(self, seq: int) -> int | None:
        """The stream seq of the record that holds event ``seq`` (None: not kept)."""
        idx = self._index
        if idx and idx[0][1] <= seq:
            i = bisect.bisect_right(idx, seq, key=lambda r: r[1]) - 1
            return idx[i][0]
        # records are in seq order: binary search by their first event
        found = await self._search(lambda meta: meta.get("first", 0) <= seq)
        return found[0] if found is not None else None

    async def _search(self, before: Callable[[dict[str, Any]], bool]) -> tuple[int, dict[str, Any]] | None:
        """``(stream seq, header)`` of the last stream record older than the ones this hub
        followed whose header is ``before`` the point searched (a binary search: ``before``
        holds for a prefix of the stream); None when it holds for none."""
        from nats.js.errors import NotFoundError

        idx = self._index
        info = await self._js.stream_info(self.target.stream)
        lo, hi = info.state.first_seq, min(info.state.last_seq, idx[0][0] - 1 if idx else info.state.last_seq)
        found = None
        while lo <= hi:
            mid = (lo + hi) // 2
            try:
                msg = await self._js.get_msg(self.target.stream, mid)
            except NotFoundError:
                lo = mid + 1
                continue
            meta = orjson.loads((msg.data or b"").partition(b"\n")[0])
            if before(meta):
                found, lo = (mid, meta), mid + 1
            else:
                hi = mid - 1
        return found

    async def _first_kept_at_start(self, first_sseq: int) -> None:
        """The first event of the stream's first record (records before the snapshot are
        still kept, ``keep`` events of them, for walls to resume from)."""
        try:
            msg = await self._js.get_msg(self.target.stream, first_sseq)
            meta = orjson.loads((msg.data or b"").partition(b"\n")[0])
            self.first_kept = 1 if "genesis" in meta else int(meta.get("first", self.first_kept))
        except Exception as e:
            log.warning("journal %s: first kept record %d unreadable (%s); replays start at seq %d", self.url,
                        first_sseq, e, self.first_kept)

    async def _refresh_first_kept(self) -> None:
        info = await self._js.stream_info(self.target.stream)
        try:
            msg = await self._js.get_msg(self.target.stream, info.state.first_seq)
            meta = orjson.loads((msg.data or b"").partition(b"\n")[0])
            if "first" in meta:
                self.first_kept = max(self.first_kept, meta["first"])
        except Exception as e:
            log.debug("first kept: %s", e)

    # ------------------------------------------------------------------ recover / compact
    def recover(self) -> Recovered:
        """The newest snapshot and every event after it. From a worker thread (the hub's
        ``_state_from_log``): hops onto the loop. The first call answers what ``start``
        followed; later ones (a state rebuild) load the snapshot and read the stream."""
        assert self._loop is not None, "JetStreamJournal.recover before start"
        return asyncio.run_coroutine_threadsafe(self.arecover(), self._loop).result(120)

    async def arecover(self) -> Recovered:
        if self._startup is not None:
            events, self._startup = self._startup, None
            seq, _, snap = self._snap
            self._snap = (seq, self._snap[1], None)   # the state now holds it
            return Recovered(seq, snap, events, self.last_seq)
        await self._load_snapshot()
        seq, _, snap = self._snap
        self._snap = (seq, self._snap[1], None)
        last = self.last_seq
        events: list[dict[str, Any]] = []
        while (events[-1]["seq"] if events else seq) < last:
            more = await self.read(events[-1]["seq"] if events else seq, 5000)
            if not more:
                break
            events.extend(more)
        return Recovered(seq, snap, events, events[-1]["seq"] if events else seq)

    async def compact(self, seq: int, snapshot: bytes | dict[str, Any], keep: int) -> int:
        """Store the snapshot at ``seq`` (unless a newer one is stored), then purge whole
        records below event ``seq - keep`` from the head of the stream. Returns events dropped."""
        from nats.js import api
        from nats.js.errors import NotFoundError, ObjectNotFoundError

        blob = _snapshot_bytes(snapshot)
        idx = self._index
        i = bisect.bisect_right(idx, seq, key=lambda r: r[2]) - 1
        if i < 0 or idx[i][2] != seq:
            log.warning("journal %s: no record ends at seq %d; snapshot not stored", self.url, seq)
            return 0
        sseq = idx[i][0]
        try:
            info = await self._obj.get_info(SNAPSHOT_OBJECT)
            stored = orjson.loads(info.description or "{}").get("seq", 0)
        except (ObjectNotFoundError, NotFoundError):
            stored = 0
        if stored < seq:
            horizon = time.time() - self.window
            with self._keys_lock:
                keys = [[p, b, d.hex() if d else None, f, la, at] for (p, b), (d, f, la, at) in self._keys.records.items()
                        if at >= horizon]
            head = orjson.dumps({"seq": seq, "sseq": sseq, "epoch": self.epoch, "keys": keys, "at": idx[i][3]})
            desc = orjson.dumps({"seq": seq, "sseq": sseq}).decode()
            await self._obj.put(SNAPSHOT_OBJECT, head + b"\n" + blob,
                                meta=api.ObjectMeta(name=SNAPSHOT_OBJECT, description=desc))
        # for replays: every compaction's snapshot, unless another hub stored one close by
        # (within half the distance since this hub's last compaction)
        gap = max(1, (seq - self._compacted_seq) // 2)
        self._compacted_seq = seq
        max_payload = getattr(self._nc, "max_payload", 1 << 20) if self._nc is not None else 1 << 20
        try:
            await self.replay.put(seq, idx[i][3], blob, max_payload, gap)
        except Exception as e:   # the log is fine; only replays of this stretch start further back
            log.warning("journal %s: replay snapshot at seq %d not stored (%s: %s)", self.url, seq,
                        type(e).__name__, e)
        upto = seq - keep
        j = bisect.bisect_right(idx, upto, key=lambda r: r[2]) - 1
        if self.retain_s > 0:   # nor what was committed within the retention
            j = min(j, bisect.bisect_left(idx, time.time() - self.retain_s, key=lambda r: r[3]) - 1)
        if j < 0 or idx[j][2] < self.first_kept:
            return 0
        cut_sseq, cut_last = idx[j][0], idx[j][2]
        await self._js.purge_stream(self.target.stream, seq=cut_sseq + 1)
        dropped = cut_last - self.first_kept + 1
        self.first_kept = cut_last + 1
        try:
            await self.replay.purge_below(self.first_kept)
        except Exception as e:
            log.warning("journal %s: replay snapshots not trimmed (%s: %s)", self.url, type(e).__name__, e)
        return dropped

    # ------------------------------------------------------------------ the flight recorder
    def _on_loop(self, coro: Any, what: str) -> Any:
        """Run ``coro`` on the hub's loop from a worker thread and wait for it."""
        loop = self._loop
        assert loop is not None, f"JetStreamJournal.{what} before start"
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise RuntimeError(f"JetStreamJournal.{what} blocks: call it from a worker thread (asyncio.to_thread)")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(60)

    def read_timed(self, after: int, limit: int) -> list[tuple[int, float, bytes]]:
        """``(seq, commit time, event JSON)`` of kept events with ``seq > after`` (from a
        worker thread: a replay's sender)."""
        return self._on_loop(self._timed(after, limit), "read_timed")  # type: ignore[no-any-return]

    def history(self, at: float) -> History | None:
        """The state at ``at`` (the stream's commit clock, see
        :mod:`wallboard.hub.jetstream_replay`) as the newest replay snapshot at or before it
        + the events after it committed by then; None when the log no longer holds that
        moment. From a worker thread: the stream is read on the loop, decoded here."""
        found = self._on_loop(self._history(at), "history")
        if found is None:
            return None
        target, seq_at, base, blob, rows = found
        snap = decode(blob, f"journal {self.url}: replay snapshot at seq {base}") if blob is not None else None
        return History(target, seq_at, snap, [orjson.loads(d) for _, _, d in rows], [a for _, a, _ in rows])

    async def _history(self, at: float) -> tuple[int, float | None, int, bytes | None, list[Any]] | None:
        rec = await self._record_at(at)
        if rec is None:   # before every kept record: only an unpurged log's start is known
            return None if self.first_kept > 1 else (0, None, 0, None, [])
        target, seq_at = rec[2], rec[3]
        snap = await self.replay.fetch(target)
        base, blob = snap if snap is not None else (0, None)
        if base + 1 < self.first_kept and base < target:
            return None
        rows = await self._timed(base, target - base, upto=target)
        if len(rows) != target - base:   # purged meanwhile
            return None
        return target, seq_at, base, blob, rows

    def _commit_time(self, sseq: int, at: float) -> float:
        """The commit time of record ``sseq`` as this hub followed it (``at``, its header's,
        when it is older than what the hub followed)."""
        idx = self._index
        if idx and idx[0][0] <= sseq:
            i = bisect.bisect_left(idx, sseq, key=lambda r: r[0])
            if i < len(idx) and idx[i][0] == sseq:
                return idx[i][3]
        return at

    async def _record_at(self, at: float) -> tuple[int, int, int, float] | None:
        """``(stream seq, first, last, commit time)`` of the last record committed at or
        before ``at``: from the records this hub followed, else a binary search of the
        stream by the records' ``at`` (None: none that old is kept)."""
        idx = self._index
        if idx and idx[0][3] <= at:
            return idx[bisect.bisect_right(idx, at, key=lambda r: r[3]) - 1]
        # the genesis record (no "first") is the oldest: before every moment
        found = await self._search(lambda meta: "first" not in meta or float(meta.get("at", 0.0)) <= at)
        if found is None or "first" not in found[1]:
            return None
        sseq, meta = found
        return sseq, int(meta["first"]), int(meta["last"]), float(meta.get("at", 0.0))

    def stats(self) -> dict[str, float]:
        return {"journal_events": max(0, self.last_seq - self.first_kept + 1), "journal_commits": self.commits,
                "journal_records": self._sseq, "journal_foreign": self.foreign,
                "journal_cas_retries": self.cas_retries}


__all__ = ["JetStreamJournal", "parse_nats_url", "is_nats_url", "msg_id", "NatsTarget"]
