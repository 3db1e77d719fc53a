"""What ``wallboard hub --sources FILE`` runs: Prometheus KPI pollers and notification sinks.

::

    cfg = load_sources("sources.toml")     # SourcesError: every problem with file:line
    hub = Hub(HubConfig(sources="sources.toml"))   # the hub loads it, starts and stops it

The hub owns one :class:`Sources` (``hub.sources``): started after the hub binds, it
runs a :class:`~.prometheus.PrometheusPoller` per ``[[prometheus]]`` table and a
:class:`~wallboard.hub.sinks.Notifier` for the ``[[sink]]`` tables. :meth:`Sources.notices`
is what the hub sends walls in its ``stats`` message (failing sources and sinks, shown on
their status line); :meth:`Sources.collect` adds the ``wallboard_source_*`` and
``wallboard_sink_*`` families to ``/metrics``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from .config import (KpiQuery, PrometheusSource, SinkConfig, SourcesConfig, SourcesError, load_sources,
                     parse_sources)

if TYPE_CHECKING:  # pragma: no cover
    from wallboard.hub.server import Hub


class Sources:
    """The running sources and sinks of one hub (see the module docs)."""

    def __init__(self, hub: "Hub", cfg: SourcesConfig, *, sink_backoff_s: float | None = None) -> None:
        from wallboard.hub.sinks import Notifier

        from .prometheus import PrometheusPoller

        self.hub = hub
        self.cfg = cfg
        self.pollers = [PrometheusPoller(hub, p) for p in cfg.prometheus]
        self.notifier = Notifier(hub, cfg.sinks, backoff_s=sink_backoff_s)

    def start(self) -> None:
        """On the hub's loop, after its state is recovered."""
        self.notifier.start()
        for p in self.pollers:
            p.start()

    async def stop(self) -> None:
        for p in self.pollers:
            await p.stop()
        await self.notifier.stop()

    def observe(self, events: list[dict[str, Any]]) -> None:
        self.notifier.observe(events)

    def notices(self) -> list[dict[str, str]]:
        """Failing sources and sinks: ``{"kind": "source" | "sink", "name", "error"}``."""
        out = [{"kind": "source", "name": p.health.name, "error": p.health.error}
               for p in self.pollers if p.health.ok is False]
        return out + self.notifier.notices()

    def collect(self) -> Iterator[Any]:
        """Metric families for the hub's ``/metrics``."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        up = GaugeMetricFamily("wallboard_source_up", "1 if the source's last run worked, 0 if it failed "
                               "(absent before its first run).", labels=["source"])
        runs = CounterMetricFamily("wallboard_source_runs", "Runs of the source's queries.", labels=["source"])
        fails = CounterMetricFamily("wallboard_source_failures", "Runs that failed.", labels=["source"])
        samples = CounterMetricFamily("wallboard_source_samples", "KPI samples published.", labels=["source"])
        dropped = CounterMetricFamily("wallboard_source_dropped_series", "Result series not published (no scope "
                                      "label, not finite, a second series for a scope).", labels=["source"])
        for p in self.pollers:
            h = p.health
            if h.ok is not None:
                up.add_metric([h.name], 1 if h.ok else 0)
            runs.add_metric([h.name], h.runs)
            fails.add_metric([h.name], h.failures)
            samples.add_metric([h.name], h.samples)
            dropped.add_metric([h.name], h.dropped)
        yield from (up, runs, fails, samples, dropped)
        families = {k: CounterMetricFamily(f"wallboard_sink_{k}", doc, labels=["sink"]) for k, doc in (
            ("sent", "Notifications delivered."), ("retried", "Delivery attempts retried."),
            ("failed", "Notifications given up on (after retries, or refused for good)."),
            ("dropped", "Notifications not queued: the sink's queue was full."))}
        queue = GaugeMetricFamily("wallboard_sink_queue", "Notifications waiting in the sink's queue.",
                                  labels=["sink"])
        for w in self.notifier.workers:
            for k, fam in families.items():
                fam.add_metric([w.health.name], getattr(w.health, k))
            queue.add_metric([w.health.name], w.queue.qsize())
        yield from families.values()
        yield queue


__all__ = ["Sources", "SourcesConfig", "SourcesError", "KpiQuery", "PrometheusSource", "SinkConfig",
           "load_sources", "parse_sources"]
