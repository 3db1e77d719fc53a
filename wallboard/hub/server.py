"""The hub: websockets server with a durable journal, live state and per-wall fan-out.

Run it from the command line (``wallboard hub``, see :mod:`wallboard.hub.commands`) or
in-process::

    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, demo="launch-928"))
    host, port = hub.start_in_thread()      # own asyncio loop in a daemon thread
    hub.url                                  # "ws://127.0.0.1:PORT/feed"
    hub.stop()

or from asyncio code: ``await hub.start()`` ... ``await hub.stop()``.

Paths: ``/feed`` (walls: hello -> welcome, replay or snapshot, events, heartbeat, stats;
control messages need the control role), ``/publish`` (producers: publish -> ack or
error), ``GET /metrics`` (plain-text counters). Every accepted event gets the next seq
and is journaled before it is acked or fanned out (group commit: what arrives while one
commit's fsync runs goes into the next; ``commit_interval`` can space commits further). On start the live state is rebuilt from the journal.
"""
from __future__ import annotations

import asyncio
import bisect
import contextlib
import importlib
import logging
import os
import ssl
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from wallboard import heap, protocol as P
from wallboard.state import LiveState, StateConfig
from wallboard.state.snapshot import encode_snapshot, encode_snapshot_pieces, live_snapshot

from .auth import Auth, PeerLimiter, RefusalLog, bearer, empty_bearer, origin_allowed, peer_host, printable
from .admission import CONNECTION_RETRY_S, LIGHT_BYTES, ConnectionCount, EntityRoom, LaneActivity, RateBuckets, counted, take_group
from .budget import EVENT_ESTIMATE, IngestQueue, SnapshotBudget, TokenBucket, check_event_bytes
from .fanout import Tail, WallSender
from .batches import DEDUPE_WINDOW_S, Batch, BatchRefused, GroupCommit, JournalUnavailable, batch_digest
from .journal import Journal, open_journal
from . import forked_encode
from .log import Compacted, EventLog

log = logging.getLogger("wallboard.hub")

#: Seconds the loop runs between two pieces of a compaction's snapshot encode.
ENCODE_PAUSE_S = 0.004
#: A blocked address's handshake is answered (429) after this delay, so a client retrying
#: in a loop costs the hub a few handshakes a second; at most TARPIT_MAX wait at once.
TARPIT_S = 1.0
TARPIT_MAX = 256
#: State counters of the entity caps shown in stats() and /metrics.
ENTITY_COUNTERS = ("evicted_devices", "refused_devices", "evicted_stores", "refused_stores")
#: Seconds between two sweeps of batch keys older than the dedupe window.
KEY_EXPIRY_S = 600.0
#: Seconds a producer's next frame waits for room in the ingest queue (and its address's
#: share of it) before it is answered ``unavailable`` with this as ``retry_after``.
ROOM_WAIT_S = 1.0
#: The follower takes committed rows into the tail and the state this many at a time,
#: with a loop turn in between: a group of 1,000 new devices (with evictions) was ~14 ms
#: of CPU in one callback, which a bystander's batch arriving meanwhile waited out whole.
FOLLOW_SLICE = 256


@dataclass
class HubConfig:
    """Every hub option (the CLI maps its flags 1:1 onto these fields)."""

    host: str = "127.0.0.1"
    port: int = 8765
    journal: str | None = None          # SQLite path, nats://HOST:PORT[,HOST:PORT]/STREAM; None = in memory (demo)
    replicas: int = 1                   # JetStream: replicas of a stream the hub creates
    demo: str | None = None             # run this simulator scenario in-process
    speed: float = 1.0                  # simulator time acceleration
    seed: int = 928                     # simulator seed
    demo_options: dict[str, Any] = field(default_factory=dict)  # scale: stores, devices_per_store, rate
    heartbeat_s: float = 1.0
    stats_s: float = 5.0
    max_frame: int = P.MAX_FRAME
    max_batch: int = P.MAX_BATCH
    rate_limit: float = 50_000.0        # events/s per producer: address + token, websocket and HTTP (burst: 1 s worth)
    max_lag: int = 20_000               # events a wall may fall behind before a resync
    tail_events: int = 50_000           # encoded events kept in memory for fast replay
    batch_events: int = 500             # events per frame to a wall
    batch_interval: float = 0.010       # at most one frame per wall per this many seconds
    conflate_after: int = 2_000         # a wall with more events waiting gets its backlog conflated (0: never)
    conflate_frame_events: int = 2_000  # events per conflated frame
    conflate_window: int = 50_000       # events conflated at a time (~10 ms of the loop); at most max_lag
    commit_interval: float = 0.0        # least seconds between two journal commits (0: back to back)
    group_events: int = 20_000          # events per group commit before producers take turns
    group_bytes: int = 4 << 20          # ... and bytes (as they arrived; max_frame while several senders are active)
    compact_every: int = 100_000        # events between snapshots
    encode_chunk: int = 10_000          # devices per piece of a compaction's snapshot encode (on the loop)
    encode_in_child: bool = True        # a compaction's snapshot encoded in a forked child (hub/forked_encode.py)
    keep_events: int = 100_000          # events kept for replay after a snapshot
    keep_s: float = 3600.0              # events committed within this many seconds are kept (replays)
    replay_budget_mb: int = 32768       # MB of compressed snapshots kept for replays (thinned evenly past it)
    snapshot_records: int = 5_000       # list items per snapshot part
    max_violations: int = 3             # protocol violations before closing with 1008
    max_refusals: int = 10              # auth/origin refusals per address within refusal_window ...
    refusal_window: float = 60.0        # ... before the address is refused at the handshake
    refusal_block: float = 60.0         # for this many seconds (see docs/security.md)
    refusal_log_s: float = 60.0         # one log line per address per this many seconds
    compression: bool = False           # permessage-deflate (off: see docs/protocol.md)
    origins: list[str] = field(default_factory=list)  # Origin allow-list (empty = any)
    token_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    hub_id: str = ""
    http_port: int | None = None        # HTTP ingest port (/events, /alertmanager, /grafana, /metrics, /healthz); None = off
    mapping: str | None = None          # alert mapping TOML for the webhooks (None = documented defaults)
    sources: str | None = None          # --sources TOML: Prometheus KPI queries, notification sinks (None = none)
    max_body: int = 1 << 20             # largest HTTP request body
    dedupe_window: float = DEDUPE_WINDOW_S  # seconds a committed (producer, batch) key is remembered
    new_epoch: bool = False             # start a new epoch of the log on a damaged/missing/short journal
    # memory bounded by configuration (issue 13; docs/security.md "Limits and their defaults")
    max_event_bytes: int = P.MAX_EVENT  # bytes of one event (at most the protocol's 512 KiB)
    max_ingest_bytes: int = 64 << 20    # bytes of events waiting for their commit, over all producers
    tail_bytes: int = 256 << 20         # bytes of encoded events in the fan-out tail, and in the log's recent rows
    max_devices: int = 250_000          # devices in the hub's state (least recent long-silent evicted)
    max_stores: int = 25_000            # stores in the hub's state (same, only stores without devices)
    evict_after_s: float = 3_600.0      # long silent: by event ts, ttl_s + this before the new event
    snapshot_budget: int = 20           # snapshots per address per minute (then unavailable + retry_after)
    snapshot_cache_s: float = 2.0       # a snapshot this young is shared by every resync (then: the tail)
    wall_drop_s: float = 30.0           # a wall past max_lag (or not reading) this long is closed (1013)
    pace_factor: float = 2.0            # while several addresses send, a heavy one waits this x its frame's time
    max_connections: int = 4_096        # open connections on the hub port (handshakes included) ...
    max_connections_per_address: int = 256  # ... and from one address; past them: 503 + Retry-After

    def validate(self) -> None:
        """Raise ValueError naming the first bad option."""
        checks = [
            ("port", 0 <= self.port <= 65535, "0..65535"),
            ("http_port", self.http_port is None or 0 <= self.http_port <= 65535, "0..65535"),
            ("speed", self.speed > 0, "> 0"),
            ("heartbeat_s", self.heartbeat_s > 0, "> 0"),
            ("stats_s", self.stats_s > 0, "> 0"),
            ("max_frame", self.max_frame >= 1024, ">= 1024"),
            ("max_batch", self.max_batch >= 1, ">= 1"),
            ("rate_limit", self.rate_limit > 0, "> 0"),
            ("max_lag", self.max_lag >= 1, ">= 1"),
            ("tail_events", self.tail_events >= self.max_lag, ">= max_lag"),
            ("batch_events", self.batch_events >= 1, ">= 1"),
            ("conflate_after", self.conflate_after >= 0, ">= 0 (0: never conflate)"),
            ("conflate_window", self.conflate_window >= 1, ">= 1"),
            ("conflate_frame_events", 1 <= self.conflate_frame_events <= P.MAX_BATCH, f"1..{P.MAX_BATCH}"),
            ("keep_events", self.keep_events >= 0, ">= 0"),
            ("keep_s", self.keep_s >= 0, ">= 0 seconds"),
            ("replay_budget_mb", self.replay_budget_mb >= 1, ">= 1 MB"),
            ("compact_every", self.compact_every >= 1, ">= 1"),
            ("group_events", self.group_events >= 1, ">= 1"),
            ("group_bytes", self.group_bytes >= 1, ">= 1"),
            ("encode_chunk", self.encode_chunk >= 1, ">= 1"),
            ("max_refusals", self.max_refusals >= 1, ">= 1"),
            ("refusal_window", self.refusal_window > 0, "> 0"),
            ("refusal_block", self.refusal_block >= 0, ">= 0"),
            ("refusal_log_s", self.refusal_log_s >= 0, ">= 0"),
            ("dedupe_window", self.dedupe_window > 0, "> 0 seconds"),
            ("wall_drop_s", self.wall_drop_s > 0, "> 0 seconds"),
            ("snapshot_budget", self.snapshot_budget >= 1, ">= 1 per minute"),
            ("max_connections", self.max_connections >= 1, ">= 1"),
            ("pace_factor", self.pace_factor >= 0, ">= 0"),
            ("max_connections_per_address", 1 <= self.max_connections_per_address <= self.max_connections,
             "1..max_connections"),
            ("max_devices", self.max_devices >= 1, ">= 1"),
            ("max_stores", self.max_stores >= 1, ">= 1"),
            ("evict_after_s", self.evict_after_s > 0, "> 0 seconds"),
            ("snapshot_cache_s", self.snapshot_cache_s >= 0, ">= 0 seconds"),
            ("max_event_bytes", 1024 <= self.max_event_bytes <= P.MAX_EVENT, f"1024..{P.MAX_EVENT} bytes"),
            ("max_ingest_bytes", self.max_ingest_bytes >= max(self.max_frame, self.max_body),
             f">= max_frame and max_body ({max(self.max_frame, self.max_body)} bytes)"),
            ("tail_bytes", self.tail_bytes >= 4 * self.max_frame, f">= 4 x max_frame ({4 * self.max_frame} bytes)"),
        ]
        for name, ok, want in checks:
            if not ok:
                raise ValueError(f"hub option {name}={getattr(self, name)!r}: expected {want}")
        if self.journal is not None and "://" in self.journal:
            from .jetstream import parse_nats_url

            parse_nats_url(self.journal)   # ValueError naming what is wrong
        if not 1 <= self.replicas <= 5:
            raise ValueError(f"hub option replicas={self.replicas!r}: expected 1..5 (JetStream stream replicas)")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("hub options tls_cert and tls_key go together")


class Hub:
    """The hub. Create, then ``await astart()`` (stop: ``await astop()``) or
    ``start_in_thread()`` (stop: ``stop()``)."""

    def __init__(self, config: HubConfig | None = None, *, auth: Auth | None = None,
                 journal: Journal | None = None) -> None:
        self.config = config or HubConfig()
        self.config.validate()
        self.auth = auth or Auth.from_env(token_file=self.config.token_file)
        self.auth.check_bind(self.config.host)
        from .alert_mapping import load_mapping

        self.mapping = load_mapping(self.config.mapping)  # a bad mapping file stops the start
        from .sources import load_sources

        #: the --sources file (a bad one stops the start: SourcesError, a ValueError)
        self.sources_config = load_sources(self.config.sources) if self.config.sources else None
        self.sources: Any = None  # the running Sources (wallboard.hub.sources), from astart
        self.http: Any = None
        self.hub_id = self.config.hub_id or f"hub-{uuid.uuid4().hex[:8]}"
        self._journal_arg = journal
        self.journal: Journal = journal  # type: ignore[assignment]
        self.eventlog: EventLog = None  # type: ignore[assignment]  # set by astart, over self.journal
        cfg = self.config
        self.state_config = StateConfig(max_devices=cfg.max_devices, max_stores=cfg.max_stores,
                                        evict_after_s=cfg.evict_after_s)
        self.state = LiveState(self.state_config)
        self.tail = Tail(self.config.tail_events, self.config.tail_bytes)
        self.ingest_queue = IngestQueue(self.config.max_ingest_bytes)
        self._room_waiters: list[asyncio.Future[None]] = []
        self.rate_buckets = RateBuckets(self.config.rate_limit)  # per producer, websocket and HTTP
        self.lanes = LaneActivity()  # senders active in the last second (group commit caps)
        self.entities = EntityRoom(cfg.max_devices, cfg.max_stores, cfg.evict_after_s)  # new ids of queued batches
        self.connections = ConnectionCount(cfg.max_connections, cfg.max_connections_per_address)
        self.ingest_queue.on_release = self._wake_room_waiters
        self._ingest_full_logged = -1e18
        self._caps_seen, self._caps_logged = (0, 0), -1e18  # refused entity events, last warned
        self.walls: set[WallSender] = set()
        self.counters: dict[str, float] = {}
        self._pending: list[tuple[Batch, asyncio.Future[tuple[tuple[int, int], bool]]]] = []
        self._pending_evt: asyncio.Event | None = None
        self._light_first = True  # the next group commit takes light lanes first (take_group)
        #: the last snapshot encoded for walls: (seq, frames, monotonic time it was made)
        self._snap_cache: tuple[int, list[bytes], float] | None = None
        self._snap_task: asyncio.Task[tuple[int, list[bytes]]] | None = None  # the encode running
        self.snap_budget = SnapshotBudget(self.config.snapshot_budget, 60.0)
        self._holders = 0  # encodes holding state updates back in _held (see _holding)
        self.gate = PeerLimiter(self.config.max_refusals, self.config.refusal_window, self.config.refusal_block)
        self.refusals = RefusalLog(log.warning, self.config.refusal_log_s)
        self._tarpitted = 0
        from .metrics import HubMetrics

        self.metrics = HubMetrics(self)  # GET /metrics; ack and fan-out latency histograms
        self._commit_times: deque[tuple[int, float]] = deque(maxlen=4096)  # (last seq, monotonic)
        self._tasks: list[asyncio.Task[Any]] = []
        self._server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._compacted_at = 0
        self._compaction: asyncio.Task[None] | None = None   # the running compaction
        self._encoded_where = ""   # where the last compaction's snapshot was encoded (for its log line)
        #: batches journaled while a compaction encodes the state, applied after it
        self._held: list[list[dict[str, Any]]] | None = None
        #: the rebuild of a state that failed to apply (None: the state follows the log)
        self._rebuilding: asyncio.Task[None] | None = None
        self._last_commit_ms = 0.0
        #: group commits whose futures wait for the follower: (last seq, work, outcome)
        self._unsettled: deque[tuple[int, list[tuple[Batch, asyncio.Future[Any]]], GroupCommit]] = deque()
        self.host = self.config.host
        self.port = self.config.port

    # ------------------------------------------------------------------ lifecycle
    @property
    def seq(self) -> int:
        """The last committed seq."""
        return self.tail.last_seq

    @property
    def url(self) -> str:
        scheme = "wss" if self.config.tls_cert else "ws"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/feed"

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The hub's running event loop (None before start)."""
        return self._loop

    @property
    def publish_url(self) -> str:
        return self.url.rsplit("/", 1)[0] + "/publish"

    async def astart(self) -> tuple[str, int]:
        """Open the journal, rebuild the state, bind, start heartbeat/stats/demo tasks."""
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        self._pending_evt = asyncio.Event()
        if self.journal is None:
            self.journal = open_journal(cfg.journal, keep=max(cfg.keep_events, cfg.tail_events), retain_s=cfg.keep_s,
                                        dedupe_window=cfg.dedupe_window, new_epoch=cfg.new_epoch,
                                        replicas=cfg.replicas, replay_budget=cfg.replay_budget_mb << 20)
        self.eventlog = EventLog(self.journal, recent_bytes=cfg.tail_bytes)
        await self.eventlog.start()   # a JetStream log connects and follows its stream here
        await asyncio.to_thread(self._recover)
        ctx = None
        if cfg.tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
        self._server = await serve(
            self._handler, cfg.host, cfg.port, process_request=self._process_request,
            max_size=cfg.max_frame * 4, max_queue=16, compression="deflate" if cfg.compression else None,
            ping_interval=20, ping_timeout=20, ssl=ctx, logger=_QuietInfo(logging.getLogger("wallboard.hub.ws")),
            server_header="wallboard-hub", create_connection=counted(ServerConnection, self.connections),
        )
        sock = next(iter(self._server.sockets))
        self.host, self.port = sock.getsockname()[:2]
        self._tasks = [asyncio.create_task(self._committer(), name="committer"),
                       asyncio.create_task(self._follower(), name="follower"),
                       asyncio.create_task(self._ticker(), name="ticker")]
        if cfg.http_port is not None:
            from .http_ingest import start_http_ingest

            self.http = await start_http_ingest(self, cfg.host, cfg.http_port, ssl_context=ctx,
                                                max_body=cfg.max_body, mapping=self.mapping)
        if self.sources_config is not None:
            from .sources import Sources

            self.sources = Sources(self, self.sources_config)
            self.sources.start()
        if cfg.demo:
            from .simulator import run_in_hub

            self._tasks.append(asyncio.create_task(run_in_hub(self, cfg.demo, speed=cfg.speed, seed=cfg.seed,
                                                              options=cfg.demo_options), name="demo"))
        # numpy is imported on first use (a KPI or voice series), ~90 modules: a first KPI
        # event mid-feed stalled the loop 60-90 ms (fan-out max latency). Import it now,
        # beside the serving loop, so the start stays fast and the feed never waits for it.
        threading.Thread(target=importlib.import_module, args=("numpy",), name="warm-imports", daemon=True).start()
        log.info("hub %s listening on %s (seq %d, journal %s epoch %s, open roles: %s)", self.hub_id, self.url,
                 self.seq, cfg.journal or "memory", self.journal.epoch, ", ".join(self.auth.open_roles()) or "none")
        return self.host, self.port

    def _recover(self) -> None:
        t0 = time.time()
        self.state, rec = self._state_from_log()
        self.tail.reset(rec.last_seq)
        self._compacted_at = rec.snapshot_seq
        if self.state.seq != rec.last_seq:
            log.warning("journal ends at seq %d but state rebuilt to %d", rec.last_seq, self.state.seq)
        if rec.last_seq:
            log.info("rebuilt state from journal: snapshot seq %d + %d events -> seq %d in %.2fs",
                     rec.snapshot_seq, len(rec.events), rec.last_seq, time.time() - t0)

    async def astop(self) -> None:
        """Stop serving, flush pending commits, close the journal."""
        if self.sources is not None:
            await self.sources.stop()
            self.sources = None
        if self.http is not None:
            await self.http.stop()
            self.http = None
        for t in self._tasks:
            if t.get_name() == "demo":
                t.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        for w in list(self.walls):
            w.stop()
        if self._pending:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._commit_once(), 5)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t
        self._tasks = []
        if self._compaction is not None:  # its worker thread still uses the journal
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(self._compaction), 60)
        if self.eventlog is not None:
            await self.eventlog.aclose()
        elif self.journal is not None:
            self.journal.close()

    def start_in_thread(self, timeout: float = 30.0) -> tuple[str, int]:
        """Run the hub on its own asyncio loop in a daemon thread; returns (host, port)."""
        ready = threading.Event()
        box: dict[str, Any] = {}

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                box["addr"] = loop.run_until_complete(self.astart())
            except BaseException as e:  # report to the caller
                box["error"] = e
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.astop())
            loop.close()

        self._thread = threading.Thread(target=main, name="wallboard-hub", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("hub did not start in time")
        if "error" in box:
            raise box["error"]
        return box["addr"]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop a hub started with :meth:`start_in_thread` and wait for its thread."""
        if self._thread is None or self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None

    # ------------------------------------------------------------------ counters
    def count(self, name: str, n: float = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def reject(self, code: str) -> None:
        self.count("rejects")
        self.count(f"rejects_{code}")

    def stats(self) -> dict[str, float]:
        """All counters: events in/out, walls, resyncs, rejects by reason, journal lag."""
        out = dict(self.counters)
        cfg = self.config
        out.update(self.journal.stats() if self.journal else {})
        out.update(seq=self.seq, walls=len(self.walls),
                   journal_pending=sum(len(b.events) for b, _ in self._pending),
                   ingest_queue_bytes=self.ingest_queue.bytes, ingest_queue_peak_bytes=self.ingest_queue.peak,
                   tail_bytes=self.tail.bytes, devices=len(self.state.devices), devices_cap=cfg.max_devices,
                   stores=len(self.state.stores), stores_cap=cfg.max_stores,
                   **{k: self.state.counters.get(k, 0) for k in ENTITY_COUNTERS},
                   journal_commit_ms=round(self._last_commit_ms, 2),
                   connections_open=self.connections.open_now, connections_peak=self.connections.peak,
                   wall_max_lag=max((w.lag() for w in self.walls if w.cursor), default=0))
        return out

    def tarpit(self, answer: Any) -> Any:
        """``answer`` after :data:`TARPIT_S` (an awaitable), or at once when
        :data:`TARPIT_MAX` answers are waiting already."""
        if self._tarpitted >= TARPIT_MAX:
            return answer

        async def later() -> Any:
            self._tarpitted += 1
            try:
                await asyncio.sleep(TARPIT_S)
            finally:
                self._tarpitted -= 1
            return answer
        return later()

    def _log_refusal(self, peer: str, what: str, *, gate: bool = True) -> None:
        """Log a refusal (once per address per ``refusal_log_s``) and, with ``gate``, count
        it against the address (``max_refusals`` within ``refusal_window`` blocks it)."""
        self.refusals.log(peer, what)
        if gate and self.gate.refused(peer):
            self.count("peers_blocked")
            log.warning("address %s refused %d times within %.0f s: refused at the handshake for %.0f s",
                        printable(peer.rsplit(":", 1)[0]), self.config.max_refusals, self.config.refusal_window,
                        self.config.refusal_block)

    # ------------------------------------------------------------------ ingest
    def submit(self, events: list[dict[str, Any]], producer: str | None = None,
               batch: int | None = None, *, nbytes: int | None = None,
               lane: str | None = None) -> "asyncio.Future[tuple[tuple[int, int], bool]]":
        """Queue validated events for the next group commit (event loop thread only).

        Returns a future of ``((first, last), duplicate)``; it resolves once the log has
        committed the batch (or had committed it already under this key: ``duplicate``)
        and the events are applied to the live state and queued to the walls. It raises
        :class:`BatchRefused` (``conflict``, ``bad_value``: terminal) or
        :class:`JournalUnavailable` (retryable: resend after ``retry_after``); map them
        to the wire with :func:`refusal_error`.

        ``nbytes`` (the size the batch arrived in; default an estimate per event) counts
        against ``max_ingest_bytes`` until the batch is settled: past it the future fails
        at once with ``JournalUnavailable`` (``ingest queue full``, retryable). ``lane``
        (the sender's address) is its turn in group commits and its share of the queue
        (:func:`wallboard.hub.admission.take_group`).
        """
        loop = asyncio.get_running_loop()
        out: asyncio.Future[tuple[tuple[int, int], bool]] = loop.create_future()
        queue = self.ingest_queue
        size = nbytes if nbytes is not None else EVENT_ESTIMATE * len(events)
        room = None
        if lane is not None:  # a producer's batch: its new devices / stores must fit the caps
            refused, room = self.entities.check(self.state, events)
            if refused is not None:
                kind, index, message = refused
                self.reject(f"max_{kind}s")
                self.refusals.log(lane, message)
                out.set_exception(BatchRefused("too_large", message, index=index, field="id"))
                return out
        if not queue.admit(size, lane):
            if room is not None:
                self.entities.release(room)
            out.set_exception(self._ingest_full(size, lane))
            return out
        out.add_done_callback(lambda f: queue.release(size, lane))
        if room is not None and (room[0] or room[1]):
            out.add_done_callback(lambda f: self.entities.release(room))
        digest = batch_digest(events) if producer is not None and batch is not None else None
        now = time.time()
        for ev in events:
            ev.pop("seq", None)
            if "ts" not in ev:
                ev["ts"] = now
        t0, ack = time.perf_counter(), self.metrics.ack
        out.add_done_callback(lambda f: f.cancelled() or f.exception() or ack.observe(time.perf_counter() - t0))
        self._pending.append((Batch(events, producer, batch, digest, size, lane), out))
        self.lanes.seen(lane if lane is not None else producer, time.monotonic())
        assert self._pending_evt is not None
        self._pending_evt.set()
        return out

    def _ingest_full(self, size: int, lane: str | None = None) -> JournalUnavailable:
        """Count and (once per ``refusal_log_s``) log a batch refused by the full ingest
        queue; the error to answer it with (``unavailable``, retryable)."""
        self.reject("ingest_full")
        queue = self.ingest_queue
        queue.refused += 1
        err = queue.full_error(size, retry_after=1.0, lane=lane)
        now = time.monotonic()
        if now - self._ingest_full_logged >= self.config.refusal_log_s:
            self._ingest_full_logged = now
            log.warning("%s: answered unavailable (%d batches refused so far)", err.message, queue.refused)
        return err

    async def wait_room(self, n: int, lane: str | None, timeout: float = ROOM_WAIT_S) -> bool:
        """Wait up to ``timeout`` s until ``n`` bytes fit the ingest queue and ``lane``'s
        share of it (True), else False. The caller reads nothing more from that producer
        meanwhile: a flood that does not wait for its acks waits in its socket buffers."""
        queue, loop = self.ingest_queue, asyncio.get_running_loop()
        end = loop.time() + timeout
        while not queue.room(n, lane):
            left = end - loop.time()
            if left <= 0:
                return False
            fut = loop.create_future()
            self._room_waiters.append(fut)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(fut, left)
        return True

    def _wake_room_waiters(self) -> None:
        waiters, self._room_waiters = self._room_waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(None)

    async def submit_retrying(self, events: list[dict[str, Any]], producer: str | None = None,
                              batch: int | None = None, *, attempts: int = 30) -> tuple[tuple[int, int], bool]:
        """:meth:`submit` for the hub's own producers (in-hub simulator, wall controls):
        after ``unavailable`` the same batch is submitted again after ``retry_after``, up
        to ``attempts`` times (then the last :class:`JournalUnavailable` is raised);
        :class:`BatchRefused` is raised at once."""
        for attempt in range(attempts):
            try:
                return await self.submit([dict(ev) for ev in events], producer, batch)
            except JournalUnavailable as e:
                if attempt + 1 == attempts:
                    raise
                await asyncio.sleep(e.retry_after)
        raise AssertionError("unreachable")

    async def _committer(self) -> None:
        assert self._pending_evt is not None
        last = 0.0
        while True:
            await self._pending_evt.wait()
            pause = last + self.config.commit_interval - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            last = time.monotonic()
            try:
                await self._commit_once()
            except asyncio.CancelledError:
                raise
            except JournalUnavailable as e:
                log.error("journal commit failed: %s", e)
                await asyncio.sleep(0.5)
            except Exception:
                log.exception("journal commit failed")
                await asyncio.sleep(0.5)

    async def _commit_once(self) -> None:
        """Append what is pending to the log as one group commit. Each batch's future is
        settled once the follower has taken the group's events into the tail and the state
        (an ack means: committed, applied, queued to the walls): :meth:`_settle_followed`.
        The committer does not wait for that, so the next group's fsync overlaps the
        follower's work on this one."""
        assert self._pending_evt is not None
        self._pending_evt.clear()
        cap_bytes = self.lanes.group_bytes(time.monotonic(), self.config.group_bytes, self.config.max_frame)
        self.ingest_queue.contended = self.lanes.contended  # one batch per address while several send
        light_first = self._light_first
        work, self._pending = take_group(self._pending, self.config.group_events, cap_bytes, light_first)
        self._light_first = not (light_first and self._pending)  # then a turn for what waited
        if self._pending:
            self._pending_evt.set()   # the rest goes into the next group
        if not work:
            return
        batches = [b for b, _ in work]
        t0 = time.perf_counter()
        try:
            done = await self.eventlog.append_group(batches)
        except Exception as e:  # nothing of the group was taken: every producer resends
            self.count("journal_errors")
            err = e if isinstance(e, JournalUnavailable) else JournalUnavailable(f"journal write failed: {e}")
            for _, f in work:
                if not f.done():
                    f.set_exception(err)
            raise err from e
        self._last_commit_ms = (time.perf_counter() - t0) * 1000
        if done.rows:
            self.count("events_in", len(done.rows))
            self.count("commits")
        self._unsettled.append((done.last_seq, work, done))
        self._settle_followed()

    def _settle_followed(self) -> None:
        """Settle the futures of every group commit the follower has passed (in order)."""
        unsettled = self._unsettled
        while unsettled and unsettled[0][0] <= self.seq:
            _, work, done = unsettled.popleft()
            for (_, f), outcome in zip(work, done.outcomes):
                if f.done():
                    continue
                if isinstance(outcome, BatchRefused):
                    self.reject(outcome.code)
                    f.set_exception(outcome)
                else:
                    if outcome.duplicate:
                        self.count("duplicates")
                    f.set_result((outcome.range, outcome.duplicate))

    async def _follower(self) -> None:
        """The hub follows its log: whatever the log committed, in order, goes into the
        tail (the bytes the log wrote), the state (``_apply``) and to the walls; nothing
        else feeds them. Events gone from the log (never expected in-process) reset the
        tail and rebuild the state."""
        while True:
            try:
                async for rows in self.eventlog.follow(self.seq):
                    for lo in range(0, len(rows), FOLLOW_SLICE):
                        if lo:  # a turn for the loop (other producers' frames, acks) between slices
                            await asyncio.sleep(0)
                        self._follow_slice(rows[lo:lo + FOLLOW_SLICE] if len(rows) > FOLLOW_SLICE else rows)
            except asyncio.CancelledError:
                raise
            except Compacted as e:
                log.error("follower: %s; the tail starts over and the state is rebuilt", e)
                self.tail.reset(self.eventlog.last_seq)
                if self._rebuilding is None:
                    self._rebuilding = asyncio.create_task(self._rebuild_state(), name="rebuild")
                self._settle_followed()
            except Exception:
                log.exception("follower failed; following again")
                await asyncio.sleep(0.1)

    def _follow_slice(self, rows: list[Any]) -> None:
        """Committed rows into the tail and the state together (so ``seq``, and what an ack
        promises, never runs ahead of the state), then to the walls; settle what they
        complete; start a compaction when due."""
        events = [ev for _, _, ev in rows]
        # conflation keys (~0.4 us an event) only while a wall that takes conflated frames
        # is connected: a hub feeding plain subscribers pays nothing for them (events
        # tailed without a key are never conflated away: correct, only less thinned)
        keyed = events if self.config.conflate_after and any(w.conflate for w in self.walls) else None
        self.tail.extend(rows[0][0], [data for _, data, _ in rows], keyed)
        if self._held is not None:  # a compaction is encoding the state: apply after it
            self._held.append(events)
        else:
            self._apply(events)
        self._commit_times.append((self.seq, time.monotonic()))
        for w in self.walls:
            w.notify()
        self._settle_followed()
        if (self.seq - self._compacted_at >= self.config.compact_every and self._compaction is None
                and self._rebuilding is None):
            # in the background: the next commits (acks, fan-out) must not wait for it
            self._compaction = asyncio.create_task(self.compact(), name="compaction")

    def committed_at(self, seq: int) -> float | None:
        """``time.monotonic()`` of the commit that journaled ``seq`` (the last 4096 commits)."""
        times = self._commit_times
        i = bisect.bisect_left(times, seq, key=lambda x: x[0])  # first commit whose last seq >= seq
        if i == len(times) or (i == 0 and len(times) == times.maxlen):
            return None
        return times[i][1]

    def _apply(self, events: list[dict[str, Any]]) -> None:
        """Journaled events into the hub's state. If that fails the state is no longer
        trusted: it is rebuilt from the log (:meth:`_rebuild_state`) while commits, acks
        and fan-out go on (fan-out never reads the state); until then events are not
        applied to it and no compaction starts."""
        if self._rebuilding is not None:
            return  # the rebuild reads these events back from the log
        try:
            self.state.apply(events, time.time(), checked=True)  # validated at ingest
        except Exception:  # journaled already: the state must follow; log loudly
            log.exception("state.apply failed at seq %d..%d; rebuilding the state from the log",
                          events[0]["seq"], events[-1]["seq"])
            self.count("state_errors")
            self._rebuilding = asyncio.get_running_loop().create_task(self._rebuild_state(), name="rebuild")
            return
        if self.sources is not None:
            try:
                self.sources.observe(events)  # incident transitions -> notification queues (never waits)
            except Exception:
                log.exception("notification sinks failed to look at seq %d..%d", events[0]["seq"], events[-1]["seq"])
                self.count("sink_errors")

    def _state_from_log(self) -> tuple[LiveState, Any]:
        """A new state from the newest snapshot + the events after it (worker thread or
        start). An event the state cannot apply is skipped, logged and counted
        (``state_skipped``): one poison event never stops the hub from following its log."""
        rec = self.eventlog.snapshots.latest()
        state = (LiveState.from_snapshot(rec.snapshot, self.state_config) if rec.snapshot is not None
                 else LiveState(self.state_config))
        for i in range(0, len(rec.events), 5000):
            self._apply_tolerant(state, rec.events[i:i + 5000])
        return state, rec

    def _apply_tolerant(self, state: LiveState, events: list[dict[str, Any]]) -> None:
        """``state.apply``; on failure, the batch again one event at a time, skipping those
        that fail (a state that cannot take an event must still reach the log's seq)."""
        now = time.time()
        try:
            state.apply(events, now)
            return
        except Exception:
            pass
        for ev in events:
            if ev["seq"] <= state.seq:
                continue  # applied before the batch failed
            try:
                state.apply([ev], now)
            except Exception as e:
                log.error("state cannot apply seq %d (%s: %s): skipped", ev["seq"], type(e).__name__, e)
                self.count("state_skipped")
                state.seq = ev["seq"]

    async def _rebuild_state(self) -> None:
        """Replace a state that failed to apply with one rebuilt from the log: snapshot +
        events in a worker thread, then the events committed meanwhile, read back from
        the log, and the swap on the loop once it has caught up with the last commit."""
        t0 = time.perf_counter()
        try:
            state, _ = await asyncio.to_thread(self._state_from_log)
            while state.seq < self.seq:
                events = await self.eventlog.read(state.seq, 5000)
                if not events:  # compacted meanwhile: start over from the newer snapshot
                    state, _ = await asyncio.to_thread(self._state_from_log)
                    continue
                self._apply_tolerant(state, events)
            self.state = state
            self._snap_cache = None
            self.count("state_rebuilds")
            log.warning("state rebuilt from the log up to seq %d in %.0f ms", state.seq,
                        (time.perf_counter() - t0) * 1000)
        except Exception:
            log.exception("state rebuild failed; the next failing apply tries again")
        finally:
            self._rebuilding = None

    async def _encode_state(self) -> bytes:
        """The state's snapshot as JSON bytes. In a forked child when it can
        (``encode_in_child``, :mod:`.forked_encode`: the loop only forks, the state goes
        on changing); else, or when the child fails, encoded here in pieces with the loop
        running in between (acks and fan-out go on); meanwhile commits hold their
        ``state.apply`` back in ``_held`` (and the ticker its ``tick``), so the pieces stay
        consistent with ``state.seq``; the held batches are applied, in order, when it is
        done."""
        if self.config.encode_in_child and forked_encode.available():
            try:
                blob = await forked_encode.encode_in_child(lambda: encode_snapshot(self.state))
                self._encoded_where = "in a child process"
                return blob
            except (OSError, RuntimeError) as e:
                self.count("compaction_child_failures")
                log.warning("compaction: the snapshot could not be encoded in a child process (%s); encoding it "
                            "on the loop", e)
        self._encoded_where = "on the loop"
        with self._holding():
            pieces = []
            for piece in encode_snapshot_pieces(self.state, self.config.encode_chunk):
                pieces.append(piece)
                # a few ms of loop between pieces: sending a frame to a wall takes several
                # loop turns, so a bare sleep(0) would still stall fan-out piece by piece
                await asyncio.sleep(ENCODE_PAUSE_S)
            return b"".join(pieces)

    @contextlib.contextmanager
    def _holding(self) -> Any:
        """While inside, state updates wait in ``_held`` (the follower appends there, the
        ticker skips its ``tick``); when the last holder leaves they are applied in order.
        Compaction and wall snapshots may hold at the same time."""
        if self._held is None:
            self._held = []
        self._holders += 1
        try:
            yield
        finally:
            self._holders -= 1
            if self._holders == 0:
                held, self._held = self._held, None
                for events in held or ():
                    self._apply(events)

    async def compact(self) -> None:
        """Snapshot the state into the journal and drop events older than ``keep_events``.

        The snapshot is encoded in a forked child (``_encode_state``; or, failing that, on
        the loop in pieces of ``encode_chunk`` devices: ~60 ms at 100,000 devices in all,
        ~6 ms at a time, consistent with ``state.seq`` because state updates wait for it),
        as of ``state.seq`` when it starts; the journal then stores
        it and trims itself in a worker thread, in short steps that let the committer's
        appends through. ``_commit_once`` starts this as a task every ``compact_every``
        events; a failure is logged and counted (``compaction_errors``), the journal stays
        consistent and the next commit tries again. One runs at a time; when the next is
        due by the time one ends, it starts right away."""
        try:
            seq = self.state.seq
            t0 = time.perf_counter()
            blob = await self._encode_state()
            t1 = time.perf_counter()
            self._compacted_at = seq
            dropped = await self.eventlog.snapshots.put(seq, blob, self.config.keep_events)
            self.count("compactions")
            size, blob = len(blob), b""
            # the snapshot's pieces, their join, its zlib copy and the journal's pages are
            # freed now: hand the heap's free pages back (wallboard/heap.py), off the loop
            if await asyncio.to_thread(heap.trim):
                self.count("heap_trims")
            log.info("journal compacted at seq %d (%d events dropped; snapshot of %.1f MB encoded in %.0f ms "
                     "%s, stored and trimmed in %.0f ms)", seq, dropped, size / 1e6, (t1 - t0) * 1000,
                     self._encoded_where, (time.perf_counter() - t1) * 1000)
            again = bool(self._tasks) and self.seq - self._compacted_at >= self.config.compact_every
        except Exception:
            log.exception("journal compaction failed")
            self.count("compaction_errors")
            again = False
        finally:
            if asyncio.current_task() is self._compaction:
                self._compaction = None
        if again and self._compaction is None:
            # commits went on meanwhile and the next one is due already (not when stopping)
            self._compaction = asyncio.create_task(self.compact(), name="compaction")

    def snapshot_frames(self) -> tuple[int, list[bytes]]:
        """Encoded snapshot parts of the state at its seq, made at once (cached per seq);
        walls use :meth:`wall_snapshot`. While a compaction encodes the state, that seq
        may trail the journal's by a few batches: the wall then gets the rest from the
        tail, as after any snapshot."""
        seq = self.state.seq
        if self._snap_cache is None or self._snap_cache[0] != seq:
            frames = self._frames(seq, P.split_snapshot(self.state.snapshot(), self.config.snapshot_records))
            self._snap_cache = (seq, frames, time.monotonic())
        return self._snap_cache[0], self._snap_cache[1]

    @staticmethod
    def _frames(seq: int, parts: list[dict[str, Any]]) -> list[bytes]:
        return [P.encode(P.Snapshot(seq=seq, part=i, parts=len(parts), data=d)) for i, d in enumerate(parts)]

    def _snapshot_usable(self, seq: int, made: float) -> bool:
        """A cached snapshot at ``seq`` serves a resync when it is the state's seq, or
        younger than ``snapshot_cache_s`` with the events after it still replayable and
        fewer than ``max_lag`` of them (the wall catches up from the tail)."""
        if seq == self.state.seq:
            return True
        return (time.monotonic() - made <= self.config.snapshot_cache_s
                and seq + 1 >= self.eventlog.first_kept() and self.seq - seq < self.config.max_lag // 2)

    async def wall_snapshot(self) -> tuple[int, list[bytes]]:
        """The snapshot frames for a wall's resync: one encoded snapshot is shared by every
        resync while usable (:meth:`_snapshot_usable`); otherwise one encode runs for all
        the walls waiting, in parts with the loop running in between (acks and fan-out go
        on; state updates are held back meanwhile so the parts agree with their seq)."""
        c = self._snap_cache
        if c is not None and self._snapshot_usable(c[0], c[2]):
            self.count("snapshots_shared")
            return c[0], c[1]
        if self._snap_task is None:
            self._snap_task = asyncio.get_running_loop().create_task(self._encode_wall_snapshot(),
                                                                     name="wall-snapshot")
        else:
            self.count("snapshots_shared")
        return await asyncio.shield(self._snap_task)

    async def _encode_wall_snapshot(self) -> tuple[int, list[bytes]]:
        try:
            t0 = time.perf_counter()
            with self._holding():
                seq = self.state.seq
                parts = P.split_snapshot(live_snapshot(self.state), self.config.snapshot_records)
                frames = []
                for i, d in enumerate(parts):
                    frames.append(P.encode(P.Snapshot(seq=seq, part=i, parts=len(parts), data=d)))
                    await asyncio.sleep(ENCODE_PAUSE_S)
                del parts
            self._snap_cache = (seq, frames, time.monotonic())
            self.count("snapshots_encoded")
            log.debug("snapshot at seq %d encoded for walls: %d parts, %.1f MB in %.0f ms", seq, len(frames),
                      sum(map(len, frames)) / 1e6, (time.perf_counter() - t0) * 1000)
            return seq, frames
        finally:
            self._snap_task = None

    # ------------------------------------------------------------------ periodic
    async def _ticker(self) -> None:
        cfg = self.config
        next_stats = time.monotonic() + cfg.stats_s
        next_expiry = time.monotonic() + KEY_EXPIRY_S
        while True:
            await asyncio.sleep(cfg.heartbeat_s)
            try:
                if self._held is None:  # not while a compaction encodes the state
                    self.state.tick(time.time())  # TTL expiry + retention: memory stays bounded
            except Exception:
                log.exception("state.tick failed")
            now_m = time.monotonic()
            for w in list(self.walls):
                w.check(now_m)  # drops a wall stuck past its lag bound for wall_drop_s
            self._warn_caps(now_m)
            hb = P.encode(P.Heartbeat(seq=self.seq, time=time.time()))
            for w in self.walls:
                if w.cursor or w.need_snapshot:
                    w.push(hb)
            if time.monotonic() >= next_expiry and self._compaction is None:
                next_expiry = time.monotonic() + KEY_EXPIRY_S
                try:
                    self.count("keys_expired", await asyncio.to_thread(self.journal.expire_keys))
                except Exception as e:
                    log.warning("expiring batch keys failed: %s", e)
            if time.monotonic() >= next_stats:
                next_stats += cfg.stats_s
                st = P.encode(P.Stats(counters=self.stats(),
                                      notices=self.sources.notices() if self.sources is not None else None))
                for w in self.walls:
                    w.push(st)

    def _warn_caps(self, now: float) -> None:
        """Log (once per ``refusal_log_s``) entity events the state did not keep because
        ``max_devices`` / ``max_stores`` is reached with nothing long silent to evict."""
        c = self.state.counters
        refused = (c.get("refused_devices", 0), c.get("refused_stores", 0))
        if refused == self._caps_seen or now - self._caps_logged < self.config.refusal_log_s:
            return
        (d0, s0), self._caps_seen, self._caps_logged = self._caps_seen, refused, now
        log.warning("entity caps reached: %d device events (--max-devices %d, %d held) and %d store events "
                    "(--max-stores %d, %d held) not applied since the last warning: none of the held ones was "
                    "silent long enough to be evicted (--evict-after %g s)", refused[0] - d0,
                    self.config.max_devices, len(self.state.devices), refused[1] - s0, self.config.max_stores,
                    len(self.state.stores), self.config.evict_after_s)

    # ------------------------------------------------------------------ connections
    def _process_request(self, connection: ServerConnection, request: Any) -> Any:
        """Checks made on the HTTP handshake, before any frame is read: a blocked address
        (429), ``/metrics``, the path (404), a browser Origin not allowed (403) and an
        ``Authorization: Bearer`` token that grants nothing for the path (401)."""
        path = request.path.split("?", 1)[0]
        peer = _peer(connection)
        over = getattr(connection, "wb_refusal", None)
        if over is not None:  # past --max-connections(-per-address): counted at the TCP accept
            self.reject("connections")
            self._log_refusal(peer, over, gate=False)
            resp = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, over + "\n")
            resp.headers["Retry-After"] = str(CONNECTION_RETRY_S)
            return resp
        wait = self.gate.blocked(peer)
        if wait > 0:
            self.reject("blocked")
            self._log_refusal(peer, "address blocked after repeated refusals", gate=False)
            resp = connection.respond(HTTPStatus.TOO_MANY_REQUESTS, f"blocked: too many refused attempts from "
                                      f"this address; retry in {wait:.0f} s\n")
            resp.headers["Retry-After"] = str(max(1, round(wait)))
            return self.tarpit(resp)
        if path == "/metrics":
            from .metrics import metrics_response

            return metrics_response(self, connection, request)
        if path not in ("/feed", "/publish"):
            self.reject("not_found")
            return connection.respond(HTTPStatus.NOT_FOUND, f"unknown path {printable(path, 80)!r}: use /feed, "
                                      "/publish or /metrics\n")
        origin = request.headers.get("Origin")
        if origin is not None and not origin_allowed(origin, self.config.origins):
            self.reject("origin")
            self._log_refusal(peer, f"browser origin {origin!r} not allowed (--origin)")
            return connection.respond(HTTPStatus.FORBIDDEN, f"origin {printable(origin, 200)!r} is not allowed: "
                                      "start the hub with --origin for it\n")
        header = request.headers.get("Authorization")
        if header is not None and not empty_bearer(header):  # an empty one presents no token
            token = bearer(header)
            roles = self.auth.roles_for(token)
            need = ("subscribe",) if path == "/feed" else ("publish", "control")
            if not roles.intersection(need):
                self.reject("auth")
                what = "malformed Authorization header" if token is None else \
                    f"the token does not grant {' or '.join(need)}"
                self._log_refusal(peer, f"{what} ({path})")
                resp = connection.respond(HTTPStatus.UNAUTHORIZED, f"auth: {what}\n")
                resp.headers["WWW-Authenticate"] = 'Bearer realm="wallboard"'
                return resp
            connection.wb_token = token  # type: ignore[attr-defined]
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        path = ws.request.path.split("?", 1)[0] if ws.request else "/feed"
        try:
            if path == "/publish":
                await self._publisher(ws)
            else:
                await self._wall(ws)
        except ConnectionClosed:
            pass

    async def _refuse(self, ws: ServerConnection, code: str, message: str) -> None:
        self.reject(code)
        self._log_refusal(_peer(ws), message)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(P.encode(P.Error(code=code, message=message)), text=True)
        await ws.close(1008, f"{code}: {message}"[:120])

    async def _violation(self, ws: ServerConnection, e: P.ProtocolError, count: int) -> bool:
        """Answer a protocol violation; True when the connection must be closed."""
        self.reject(e.code)
        self.count("violations")
        await ws.send(P.encode(e.to_message()), text=True)
        if count >= self.config.max_violations:
            await ws.close(1008, f"protocol: {count} violations, last {e.code}"[:120])
            return True
        return False

    def _decode(self, raw: Any, expect: tuple[str, ...]) -> P.Message:
        if len(raw) > self.config.max_frame:
            raise P.ProtocolError("too_large", f"frame of {len(raw)} bytes",
                                  expected=f"at most {self.config.max_frame} bytes")
        return P.decode(raw, max_size=self.config.max_frame, max_batch=self.config.max_batch, expect=expect)

    def _first_token(self, raw: Any) -> str | None:
        """The ``token`` of a producer's first frame, read before anything else of it is
        checked (an unauthenticated batch is never validated)."""
        if len(raw) > self.config.max_frame or ('"token"' if isinstance(raw, str) else b'"token"') not in raw:
            return None  # no token anywhere in it: refused without parsing
        self.count("auth_frames_parsed")
        try:
            obj = orjson.loads(raw)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return None
        token = obj.get("token") if type(obj) is dict else None
        return token if type(token) is str else None

    async def _publisher(self, ws: ServerConnection) -> None:
        header_token = getattr(ws, "wb_token", None)
        roles: set[str] | None = self.auth.roles_for(header_token) if header_token is not None else None
        if roles is None and {"publish", "control"} & set(self.auth.open_roles()):
            roles = self.auth.roles_for(None)
        lane = peer_host(_peer(ws))
        bucket: TokenBucket | None = None  # the producer's (its address and first token), at its first batch
        token = header_token
        acks: asyncio.Queue[Any] = asyncio.Queue(maxsize=64)
        sender = asyncio.create_task(self._ack_sender(ws, acks))
        violations = 0
        self.count("publishers")
        try:
            async for raw in ws:
                t_frame = time.perf_counter()
                if roles is None:  # authenticate from the first frame before validating it
                    token = self._first_token(raw)
                    roles = self.auth.roles_for(token)
                    if not roles & {"publish", "control"}:
                        await self._refuse(ws, "auth", "a publish or control token is required (first frame "
                                           "or Authorization header)" if token is None
                                           else "the token grants neither publish nor control")
                        return
                if not self.ingest_queue.room(len(raw), lane):  # full: wait, before any parsing
                    # this connection is not read meanwhile: a flood waits in its socket
                    # buffers, costing no CPU here; still full after ROOM_WAIT_S: refused
                    self.count("publish_waits")
                    if not await self.wait_room(len(raw), lane):
                        await acks.put(refusal_error(self._ingest_full(len(raw), lane)))
                        self.count("publish_pauses")
                        continue
                try:
                    msg = self._decode(raw, ("publish",))
                except P.ProtocolError as e:
                    if e.index is not None:  # a bad event: refuse the batch, stay open
                        self.reject(e.code)
                        await acks.put(P.Error(code="bad_event", message=str(e), index=e.index, field=e.field,
                                               seq=e.seq))
                        continue
                    violations += 1
                    if await self._violation(ws, e, violations):
                        return
                    continue
                assert isinstance(msg, P.Publish)
                if bucket is None:
                    bucket = self.rate_buckets.get(lane, token or msg.token)
                have = roles | self.auth.roles_for(msg.token) if msg.token else roles
                for i, ev in enumerate(msg.events):
                    need = "control" if ev["type"] == "control" else "publish"
                    if need not in have:
                        self.reject("forbidden")
                        why = ("control events need the control role" if need == "control"
                               else f"{ev['type']} events need the publish role (this token grants "
                               f"{', '.join(sorted(have))})")
                        self._log_refusal(_peer(ws), f"publish event {i}: {why}", gate=False)
                        await acks.put(P.Error(code="forbidden", message=f"{why}; batch not applied",
                                               index=i, field="type"))
                        break
                else:
                    n = len(msg.events)
                    try:
                        check_event_bytes(msg.events, self.config.max_event_bytes, len(raw))
                    except P.ProtocolError as e:
                        self.reject(e.code)
                        await acks.put(P.Error(code="bad_event", message=str(e), index=e.index))
                        continue
                    if bucket.over_burst(n):
                        self.reject("too_large")
                        await acks.put(P.Error(code="too_large", field="events",
                                               message=bucket.over_burst_message(n, "per producer")))
                        continue
                    if not bucket.take(n):
                        self.reject("rate_limited")
                        await acks.put(P.Error(code="rate_limited", retry_after=bucket.retry_after(n), message=(
                            f"over {self.config.rate_limit:g} events/s for this producer (its address and "
                            "token, over its connections and HTTP requests); batch not applied, resend it later")))
                        continue
                    fut = self.submit(msg.events, msg.producer, msg.batch, nbytes=len(raw), lane=lane)
                    await acks.put((fut, msg.producer, msg.batch))
                    if self.ingest_queue.lanes.get(lane, 0) > LIGHT_BYTES:  # a heavy sender: paced while others send
                        now = time.perf_counter()
                        wait = self.lanes.pace(lane, now - t_frame, now, self.config.pace_factor)
                        if wait > 0:
                            self.count("publish_paced")
                            await asyncio.sleep(wait)
                    # frames already buffered are read without a suspension: give the loop
                    # (commits, fan-out, other producers) a turn between two batches
                    await asyncio.sleep(0)
        finally:
            await acks.put(None)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(sender, 10)

    async def _ack_sender(self, ws: ServerConnection, acks: "asyncio.Queue[Any]") -> None:
        while True:
            item = await acks.get()
            if item is None:
                return
            try:
                if isinstance(item, P.Error):
                    await ws.send(P.encode(item), text=True)
                    continue
                fut, producer, batch = item
                try:
                    (first, last), dup = await fut
                except (BatchRefused, JournalUnavailable) as e:
                    await ws.send(P.encode(refusal_error(e)), text=True)
                    continue
                await ws.send(P.encode(P.Ack(first=first, last=last, producer=producer, batch=batch,
                                             duplicate=dup)), text=True)
            except ConnectionClosed:
                continue  # drain the queue; the producer resends unacked batches

    async def _wall(self, ws: ServerConnection) -> None:
        peer = _peer(ws)
        try:
            raw = await asyncio.wait_for(ws.recv(), 10)
        except asyncio.TimeoutError:
            await ws.close(1008, "protocol: expected hello within 10 s")
            return
        try:
            hello = self._decode(raw, ("hello",))
        except P.ProtocolError as e:
            self.reject(e.code)
            self.count("violations")
            with contextlib.suppress(ConnectionClosed):
                await ws.send(P.encode(e.to_message()), text=True)
            await ws.close(1008, f"protocol: first message must be hello ({e.code})")
            return
        assert isinstance(hello, P.Hello)
        token = getattr(ws, "wb_token", None)
        if token is None:
            token = hello.token
        roles = self.auth.roles_for(token)
        if "subscribe" not in roles:
            await self._refuse(ws, "auth", "a subscribe token is required" if token is None
                               else "the token does not grant subscribe")
            return
        if hello.at is not None:  # the flight recorder: a replay connection beside the live one
            from .replay import serve_replay

            await serve_replay(self, ws, printable(hello.wall or peer, 100), roles, hello)
            return
        wall = WallSender(self, ws, printable(hello.wall or peer, 100), roles)  # safe in logs and labels
        if hello.columnar:   # runs of device status updates as columns, ids per connection
            wall.columnar = P.ColumnarEncoder()
        if hello.max_frame:
            wall.max_frame = min(wall.max_frame, hello.max_frame)
        await ws.send(P.encode(P.Welcome(protocol=P.PROTOCOL_VERSION, hub=self.hub_id, seq=self.seq,
                                         heartbeat_s=self.config.heartbeat_s, roles=sorted(roles),
                                         epoch=self.journal.epoch or None,
                                         columnar=True if hello.columnar else None)), text=True)
        self.walls.add(wall)
        self.count("walls_connected")
        wall.conflate = bool(hello.conflate)
        wall.start_from(hello.since)
        log.info("wall %s connected from %s (since %s, hub seq %d)", printable(wall.name), peer, hello.since,
                 self.seq)
        violations = 0
        try:
            async for raw in ws:
                try:
                    msg = self._decode(raw, ("hello", "control"))
                except P.ProtocolError as e:
                    self.reject(e.code)
                    if e.op == "control" and e.code not in ("not_json", "not_object", "unknown_op"):
                        wall.push(P.encode(e.to_message()))  # a bad command, not a violation
                        continue
                    violations += 1
                    self.count("violations")
                    wall.push(P.encode(e.to_message()))
                    if violations >= self.config.max_violations:
                        await ws.close(1008, f"protocol: {violations} violations, last {e.code}"[:120])
                        return
                    continue
                if isinstance(msg, P.Hello):  # resync on the same connection
                    wall.conflate = bool(msg.conflate)
                    if not msg.columnar:      # (a columnar one keeps this connection's dictionary)
                        wall.columnar = None
                    wall.start_from(msg.since)
                    continue
                assert isinstance(msg, P.Control)
                await self._control(wall, msg)
        finally:
            self.walls.discard(wall)
            wall.stop()
            log.info("wall %s disconnected", printable(wall.name))

    async def _control(self, wall: WallSender, msg: P.Control) -> None:
        roles = wall.roles | (self.auth.roles_for(msg.token) if msg.token else set())
        if "control" not in roles:
            self.reject("forbidden")
            why = f"control {msg.command!r} refused: this wall's token does not grant the control role"
            self._log_refusal(_peer(wall.ws), f"wall {wall.name!r}: {why}", gate=False)
            wall.push(P.encode(P.Error(code="forbidden", message=why, field="command", ref=msg.ref)))
            return
        now = time.time()
        if msg.command == "ack_incident":
            inc = msg.args["incident"]
            if inc not in self.state.incidents:
                self.reject("bad_value")
                wall.push(P.encode(P.Error(code="bad_value", message=f"unknown incident {inc!r}",
                                           field="args.incident", ref=msg.ref)))
                return
            ev: dict[str, Any] = {"type": "incident", "id": inc, "status": "acknowledged",
                                  "acknowledged_at": now, "ts": now}
            if msg.args.get("owner"):
                ev["owner"] = msg.args["owner"]
        else:
            ev = {"type": "control", "command": msg.command, **msg.args, "ts": now}
        try:
            P.validate_event(ev, require_seq=False, op="control")
        except P.ProtocolError as e:
            self.reject(e.code)
            refusal = e.to_message()
            refusal.ref = msg.ref
            wall.push(P.encode(refusal))
            return
        self.count("controls")
        log.info("control %s from wall %s: %s", msg.command, printable(wall.name), printable(msg.args, 300))
        try:
            await self.submit_retrying([ev], attempts=5)
        except (BatchRefused, JournalUnavailable) as e:
            wall.push(P.encode(refusal_error(e)))


def refusal_error(e: BatchRefused | JournalUnavailable) -> P.Error:
    """The ``error`` message for a batch the log refused (terminal) or could not commit
    (``unavailable``, retryable: ``retry_after`` seconds)."""
    if isinstance(e, JournalUnavailable):
        return P.Error(code="unavailable", message=f"not applied: {e.message}; resend the batch later",
                       retry_after=e.retry_after)
    return P.Error(code=e.code, message=e.message, index=e.index, field=e.field)


def _peer(ws: ServerConnection) -> str:
    addr = ws.remote_address
    return f"{addr[0]}:{addr[1]}" if addr else "?"


class _QuietInfo(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets' per-connection INFO lines (``connection open``, ``HTTP response sent``
    for each /metrics scrape or refused handshake) go out at DEBUG; the hub logs its own
    lines for walls and refusals."""

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        super().log(logging.DEBUG if level == logging.INFO else level, msg, *args, **kwargs)


def configure_logging(level: str = "INFO") -> None:
    """Plain ``logging`` setup for the command-line hub."""
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


__all__ = ["Hub", "HubConfig", "configure_logging"]

if os.environ.get("WALLBOARD_HUB_DEBUG"):
    logging.getLogger("wallboard.hub").setLevel(logging.DEBUG)
