"""The hub's one ``GET /metrics``: Prometheus text exposition built with prometheus-client.

Served on the hub's own port (the websocket port, next to ``/feed`` and ``/publish``)::

    curl -H "Authorization: Bearer $WALLBOARD_METRICS_TOKEN" http://127.0.0.1:8765/metrics

It needs the ``metrics`` role (granted by ``metrics``, ``subscribe`` and ``control``
tokens) when any token grants it; a refusal is ``401`` and counts against the address
like any refusal. Each scrape is logged at DEBUG. The hub creates one :class:`HubMetrics`
(``hub.metrics``); its histograms are observed by the hub (``ack``: submit to journaled
and applied, i.e. when the producer's ack goes out) and by each wall sender
(``fanout``: commit to the events frame written to the wall's socket).

Families (``docs/security.md`` and ``docs/protocol.md`` list them): ``process_*`` (CPU,
RSS, open fds, start time), ``python_info``, ``wallboard_*`` counters and gauges from
``hub.stats()``, ``wallboard_rejects_total{reason}``, per-wall gauges, HTTP ingest requests
by path and code, and the two latency histograms.
"""
from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from .auth import bearer

if TYPE_CHECKING:  # pragma: no cover
    from .server import Hub

log = logging.getLogger("wallboard.hub.metrics")

#: The text format generate_latest() writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Latency buckets (seconds): 1 ms .. 10 s.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# stats key -> (metric name without _total, type, help, scale)
_STATS: dict[str, tuple[str, str, str, float]] = {
    "events_in": ("wallboard_events_in", "counter", "Events accepted, journaled and applied.", 1),
    "events_out": ("wallboard_events_out", "counter", "Events sent to walls (live and replayed).", 1),
    "conflated": ("wallboard_conflated_events", "counter",
                  "Device updates a lagging wall did not need: a later event of its window overwrote them.", 1),
    "columnar_events_out": ("wallboard_columnar_events_out", "counter",
                            "Events sent to walls in columnar devices frames (part of events_out).", 1),
    "replayed": ("wallboard_events_replayed", "counter", "Events replayed to reconnecting walls.", 1),
    "http_events": ("wallboard_http_events", "counter", "Events accepted through POST /events.", 1),
    "walls": ("wallboard_walls_connected", "gauge", "Walls connected now.", 1),
    "walls_connected": ("wallboard_wall_connections", "counter", "Wall connections accepted.", 1),
    "devices": ("wallboard_devices", "gauge", "Devices in the hub's state.", 1),
    "devices_cap": ("wallboard_devices_cap", "gauge", "Most devices the hub's state holds (max_devices).", 1),
    "stores": ("wallboard_stores", "gauge", "Stores in the hub's state.", 1),
    "stores_cap": ("wallboard_stores_cap", "gauge", "Most stores the hub's state holds (max_stores).", 1),
    "evicted_devices": ("wallboard_evicted_devices", "counter",
                        "Long-silent devices evicted to make room under max_devices.", 1),
    "refused_devices": ("wallboard_refused_devices", "counter",
                        "Device events not applied: max_devices reached and no device long silent.", 1),
    "evicted_stores": ("wallboard_evicted_stores", "counter",
                       "Long-silent stores without devices evicted under max_stores.", 1),
    "refused_stores": ("wallboard_refused_stores", "counter",
                       "Store events not applied: max_stores reached and no store evictable.", 1),
    "walls_dropped": ("wallboard_walls_dropped", "counter",
                      "Walls closed (1013) after staying past their lag bound, or not reading, for wall_drop_s.", 1),
    "resyncs": ("wallboard_resyncs", "counter", "Snapshots sent because a wall's seq was gone or it lagged.", 1),
    "snapshots_sent": ("wallboard_snapshots_sent", "counter", "Snapshots sent to walls.", 1),
    "snapshots_encoded": ("wallboard_snapshots_encoded", "counter", "Snapshots encoded for walls (in parts).", 1),
    "snapshots_shared": ("wallboard_snapshots_shared", "counter",
                         "Wall resyncs served by a snapshot encoded for another resync.", 1),
    "duplicates": ("wallboard_duplicate_batches", "counter", "Resent batches acknowledged, not re-applied.", 1),
    "publishers": ("wallboard_publish_connections", "counter", "Producer websocket connections.", 1),
    "violations": ("wallboard_protocol_violations", "counter", "Frames that broke the protocol.", 1),
    "controls": ("wallboard_controls", "counter", "Control commands journaled.", 1),
    "peers_blocked": ("wallboard_peers_blocked", "counter",
                      "Addresses blocked at the handshake after repeated refusals.", 1),
    "compactions": ("wallboard_journal_compactions", "counter", "Journal snapshots + truncations.", 1),
    "compaction_errors": ("wallboard_journal_compaction_errors", "counter",
                          "Journal compactions that failed (retried at the next commit).", 1),
    "heap_trims": ("wallboard_heap_trims", "counter",
                   "Free heap pages handed back to the system after a compaction (glibc malloc_trim).", 1),
    "state_errors": ("wallboard_state_errors", "counter", "Journaled events the live state failed to apply.", 1),
    "seq": ("wallboard_seq", "gauge", "Last committed seq.", 1),
    "journal_events": ("wallboard_journal_events", "gauge", "Events held in the journal (journal size).", 1),
    "journal_bytes": ("wallboard_journal_bytes", "gauge", "Journal file size on disk (SQLite + WAL).", 1),
    "journal_commits": ("wallboard_journal_commits", "counter", "Journal commits (one fsync each).", 1),
    "journal_pending": ("wallboard_journal_pending_events", "gauge",
                        "Accepted events waiting for the next journal commit (journal lag).", 1),
    "ingest_queue_bytes": ("wallboard_ingest_queue_bytes", "gauge",
                           "Bytes of accepted events waiting for their commit, over all producers.", 1),
    "ingest_queue_peak_bytes": ("wallboard_ingest_queue_peak_bytes", "gauge",
                                "Largest ingest queue since the start, in bytes.", 1),
    "tail_bytes": ("wallboard_tail_bytes", "gauge", "Bytes of encoded events held in the fan-out tail.", 1),
    "journal_commit_ms": ("wallboard_journal_last_commit_seconds", "gauge", "Duration of the last journal commit.",
                          0.001),
    "wall_max_lag": ("wallboard_wall_max_lag_events", "gauge", "Largest backlog of any wall, in events.", 1),
}
_SKIP = {"rejects", "commits"}  # sum of the labelled rejects; same as journal_commits
_NAME_RE = re.compile(r"[^a-zA-Z0-9_]")


class _HubCollector:
    """Reads ``hub.stats()``, the walls and the HTTP request counts at scrape time."""

    def __init__(self, hub: "Hub") -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        stats = hub.stats()
        info = GaugeMetricFamily("wallboard_hub_info", "Hub identity (value always 1).", labels=["hub"])
        info.add_metric([hub.hub_id], 1)
        yield info
        for key, (name, mtype, help_, scale) in _STATS.items():
            v = float(stats.get(key, 0)) * scale
            yield CounterMetricFamily(name, help_, value=v) if mtype == "counter" else \
                GaugeMetricFamily(name, help_, value=v)
        rejects = CounterMetricFamily("wallboard_rejects", "Refused frames, events and requests, by reason.",
                                      labels=["reason"])
        hooks = CounterMetricFamily("wallboard_webhooks", "Alert webhook bodies accepted, by source.",
                                    labels=["source"])
        ignored = CounterMetricFamily("wallboard_webhook_alerts_ignored", "Webhook alerts skipped, by source and "
                                      "reason: rule ([ignore] in the mapping), test (Grafana's test notification).",
                                      labels=["source", "reason"])
        for key in sorted(stats):
            if key.startswith("rejects_"):
                rejects.add_metric([key[len("rejects_"):]], stats[key])
            elif key.startswith("webhooks_"):
                hooks.add_metric([key[len("webhooks_"):]], stats[key])
            elif key.startswith("ignored_alerts_"):
                ignored.add_metric(key[len("ignored_alerts_"):].rsplit("_", 1), stats[key])
        yield rejects
        yield hooks
        yield ignored
        for key in sorted(stats):
            if key in _STATS or key in _SKIP or key.startswith(("rejects_", "webhooks_", "ignored_alerts_")):
                continue
            v = stats[key]
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                yield GaugeMetricFamily(f"wallboard_hub_{_NAME_RE.sub('_', key)}", f"Hub counter {key}.", value=v)
        yield from self._walls()
        counts: dict[tuple[str, int], int] = {}
        for ingest in hub.metrics.ingests:
            for key, n in ingest.requests.items():
                counts[key] = counts.get(key, 0) + n
        requests = CounterMetricFamily("wallboard_http_requests", "HTTP ingest requests by path and status code.",
                                       labels=["path", "code"])
        for (path, code), n in sorted(counts.items()):
            requests.add_metric([path, str(code)], n)
        yield requests
        if getattr(hub, "sources", None) is not None:
            yield from hub.sources.collect()

    def _walls(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily("wallboard_wall_lag_events", "Events this wall still has to receive (while "
                                "conflating: the rest of its window plus what came after it).",
                                labels=["wall"])
        queued = GaugeMetricFamily("wallboard_wall_queued_frames", "Out-of-band frames (heartbeat, stats, "
                                   "errors) queued for this wall.", labels=["wall"])
        sent = CounterMetricFamily("wallboard_wall_sent_events", "Events sent to this wall.", labels=["wall"])
        resyncs = CounterMetricFamily("wallboard_wall_resyncs", "Snapshots sent to this wall.", labels=["wall"])
        seen: dict[str, int] = {}
        for w in sorted(self.hub.walls, key=lambda w: w.name):
            seen[w.name] = seen.get(w.name, 0) + 1
            label = w.name if seen[w.name] == 1 else f"{w.name}#{seen[w.name]}"  # unique label sets
            info = w.info()
            lag.add_metric([label], info.get("lag", 0))
            queued.add_metric([label], len(w.oob))
            sent.add_metric([label], info.get("sent", 0))
            resyncs.add_metric([label], info.get("resyncs", 0))
        yield from (lag, queued, sent, resyncs)


class HubMetrics:
    """One registry per hub: process and platform collectors, the hub collector and the
    latency histograms ``ack`` and ``fanout`` (call ``.observe(seconds)``)."""

    def __init__(self, hub: "Hub") -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.ack = Histogram("wallboard_ack_seconds", "Producer batch accepted -> journaled and applied (the ack "
                             "is sent then).", buckets=BUCKETS, registry=self.registry)
        self.fanout = Histogram("wallboard_fanout_seconds", "Events committed -> events frame written to a "
                                "wall's socket.", buckets=BUCKETS, registry=self.registry)
        self.registry.register(_HubCollector(hub))  # type: ignore[arg-type]
        self.scrapes = 0
        self.ingests: list[Any] = []  # running HttpIngest listeners (their request counts)

    def render(self) -> bytes:
        """The whole exposition (text format 0.0.4)."""
        self.scrapes += 1
        return generate_latest(self.registry)


def metrics_response(hub: "Hub", connection: Any, request: Any) -> Any:
    """The handshake-time answer to ``GET /metrics`` on the hub port (websockets'
    ``process_request``): 401 without the metrics role, else the exposition."""
    from .server import _peer

    peer = _peer(connection)
    header = request.headers.get("Authorization")
    token = bearer(header)
    if "metrics" not in hub.auth.roles_for(token):
        hub.reject("auth")
        what = ("a metrics, subscribe or control token is required: send 'Authorization: Bearer <token>'"
                if token is None else "the token does not grant metrics")
        hub._log_refusal(peer, f"GET /metrics: {what}")
        resp = connection.respond(HTTPStatus.UNAUTHORIZED, f"auth: {what}\n")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="wallboard"'
        return resp
    body = hub.metrics.render()
    log.debug("metrics scraped by %s (%d bytes)", peer, len(body))
    resp = connection.respond(HTTPStatus.OK, "")
    resp.body = body
    for name, value in (("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))):
        del resp.headers[name]  # websockets' Headers add on assignment
        resp.headers[name] = value
    return resp


__all__ = ["HubMetrics", "metrics_response", "BUCKETS"]
