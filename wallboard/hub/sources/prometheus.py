"""KPIs from Prometheus: instant queries on a schedule, published as ``kpi`` samples.

One :class:`PrometheusPoller` per ``[[prometheus]]`` table runs as a task on the hub's
loop (:class:`wallboard.hub.sources.Sources` starts it): every ``interval_s`` it runs each
``[[prometheus.kpi]]`` query (``GET /api/v1/query``, ``time`` = now) with aiohttp, never
blocking ingest (the HTTP waits are the loop's), turns the result series into ``kpi``
events (:func:`kpi_samples`) and submits them through ``Hub.submit`` like any producer:
journaled, fanned out, idempotent. Its batch keys are ``(prometheus/NAME/RUN, n)`` with
``RUN`` new at every start, so a restart never reuses a key the log remembers; a batch
refused as ``unavailable`` is resent with the same key.

A failure (connection, HTTP status, Prometheus ``error``, a series without the scope's
label, a non-finite value) is kept in :attr:`health` (:class:`SourceHealth`) with what
went wrong; the hub shows failing sources on the walls' status line and in ``/metrics``.
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wallboard.hub.batches import BatchRefused, JournalUnavailable

from .config import KpiQuery, PrometheusSource
from .http_task import HttpTask

if TYPE_CHECKING:  # pragma: no cover
    from wallboard.hub.server import Hub

log = logging.getLogger("wallboard.hub.sources")

#: Characters of an error message kept for the status line and the log.
MAX_ERROR = 240


@dataclass
class SourceHealth:
    """How one source is doing: ``ok`` None until its first run, then the last run's verdict."""

    name: str
    ok: bool | None = None
    error: str = ""
    runs: int = 0
    failures: int = 0          # runs that failed, since the start
    samples: int = 0           # kpi samples published, since the start
    dropped: int = 0           # series not published (no scope label, not finite)
    last_ok: float | None = None   # wall-clock time of the last good run
    failing_since: float | None = None  # monotonic

    def failed(self, error: str) -> None:
        if self.ok is not False:
            self.failing_since = time.monotonic()
        self.ok, self.error = False, error[:MAX_ERROR]
        self.failures += 1

    def succeeded(self) -> None:
        self.ok, self.error, self.failing_since = True, "", None
        self.last_ok = time.time()

    def notice(self) -> str | None:
        """The status-line text while failing (None when fine)."""
        if self.ok is not False:
            return None
        return f"source {self.name} failing: {self.error}"


@dataclass
class Samples:
    """What one query's result became: events plus what was left out and why."""

    events: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    problems: list[str] = field(default_factory=list)


def kpi_samples(kq: KpiQuery, data: Any) -> Samples:
    """``kpi`` events from the ``data`` of a Prometheus ``/api/v1/query`` answer.

    A ``vector`` gives one sample per series (its scope from the series' label), a
    ``scalar`` one ``global`` sample. Series without the scope's label, with a NaN or
    infinite value, or a second series for the same scope are dropped and named in
    ``problems``. Raises ``ValueError`` for a result that is neither (matrix, string)."""
    out = Samples()
    if not isinstance(data, dict) or "resultType" not in data:
        raise ValueError("answer without data.resultType")
    rtype, result = data.get("resultType"), data.get("result")
    if rtype == "scalar":
        series = [({}, result)]
    elif rtype == "vector" and isinstance(result, list):
        series = [(s.get("metric") or {}, s.get("value")) for s in result if isinstance(s, dict)]
    else:
        raise ValueError(f"result type {rtype!r}: expected an instant vector or a scalar (a range "
                         "selector like [5m] needs a function such as rate() around it)")
    seen: set[str] = set()
    for labels, value in series:
        scope = kq.scope_for(labels if isinstance(labels, dict) else {})
        if scope is None:
            out.dropped += 1
            out.problems.append(f"a series without the label {kq.scope_label!r} ({_labels(labels)})")
            continue
        try:
            ts, raw = float(value[0]), value[1]
            v = float(raw)
        except (TypeError, ValueError, IndexError):
            out.dropped += 1
            out.problems.append(f"a sample that is not [time, \"value\"]: {str(value)[:60]}")
            continue
        if not math.isfinite(v):
            out.dropped += 1
            out.problems.append(f"{scope}: value {raw} is not a finite number")
            continue
        if scope in seen:
            out.dropped += 1
            out.problems.append(f"several series for {scope}: aggregate by {kq.scope_label or 'nothing'} "
                                f"(e.g. sum by ({kq.scope_label}) (...))" if kq.scope_label else
                                "several series for global: aggregate them (e.g. sum(...))")
            continue
        seen.add(scope)
        ev: dict[str, Any] = {"type": "kpi", "metric": kq.metric, "scope": scope, "value": v, "ts": ts}
        if kq.unit:
            ev["unit"] = kq.unit
        out.events.append(ev)
    return out


def _labels(labels: Any) -> str:
    if not isinstance(labels, dict) or not labels:
        return "no labels"
    return "{" + ", ".join(f'{k}="{v}"' for k, v in list(labels.items())[:6]) + "}"


class PrometheusPoller(HttpTask):
    """Runs one ``[[prometheus]]`` table's queries every ``interval_s`` (see the module docs)."""

    def __init__(self, hub: "Hub", cfg: PrometheusSource) -> None:
        self.hub = hub
        self.cfg = cfg
        self.health = SourceHealth(f"prometheus/{cfg.name}")
        self.producer = f"prometheus/{cfg.name}/{uuid.uuid4().hex[:12]}"  # new every start: keys never reused
        self.batch = 0

    def start(self) -> None:
        self._start(self._loop(), f"source {self.health.name}")

    def _headers(self) -> dict[str, str]:
        if not self.cfg.bearer_token_file:
            return {}
        try:
            token = Path(self.cfg.bearer_token_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise _RunError(f"cannot read bearer_token_file {self.cfg.bearer_token_file!r}: {e.strerror}") from None
        return {"Authorization": f"Bearer {token}"}

    async def _loop(self) -> None:
        self._open_session(self.cfg.timeout_s)
        next_run = time.monotonic()
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug: keep polling, say so
                log.exception("source %s: run failed", self.health.name)
                self.health.failed(f"internal error: {type(e).__name__}: {e}")
            next_run += self.cfg.interval_s
            now = time.monotonic()
            if next_run < now:  # a run longer than the interval: skip the missed ticks
                next_run = now + self.cfg.interval_s - (now - next_run) % self.cfg.interval_s
            await asyncio.sleep(next_run - now)

    async def run_once(self) -> int:
        """One round of every query; the samples submitted (also kept in ``health``)."""
        h = self.health
        h.runs += 1
        events: list[dict[str, Any]] = []
        problems: list[str] = []
        try:
            headers = self._headers()
            for i, kq in enumerate(self.cfg.kpis):
                try:
                    got = kpi_samples(kq, await self._query(kq.query, headers))
                except _RunError as e:
                    if e.fatal:  # the server is not there: the other queries would fail the same way
                        problems.append(str(e))
                        break
                    problems.append(f"kpi[{i}] {kq.metric}: {e}")
                    continue
                except ValueError as e:
                    problems.append(f"kpi[{i}] {kq.metric}: {e}")
                    continue
                events += got.events
                h.dropped += got.dropped
                if got.problems:
                    problems.append(f"kpi[{i}] {kq.metric}: {got.problems[0]}"
                                    + (f" (+{len(got.problems) - 1} more)" if len(got.problems) > 1 else ""))
            if events:
                await self._submit(events)
                h.samples += len(events)
        except _RunError as e:
            problems.insert(0, str(e))
        if problems:
            was = h.error
            h.failed("; ".join(problems))
            if h.error != was:
                log.warning("source %s: %s", h.name, h.error)
            self.hub.count("source_failures")
        else:
            if h.ok is False:
                log.info("source %s: working again (%d samples)", h.name, len(events))
            h.succeeded()
        self.hub.count("source_samples", len(events))
        return len(events)

    async def _query(self, query: str, headers: dict[str, str]) -> Any:
        import aiohttp

        url = f"{self.cfg.url}/api/v1/query"
        try:
            async with self._session.get(url, params={"query": query, "time": f"{time.time():.3f}"},
                                         headers=headers) as resp:
                body = await resp.read()
                status = resp.status
        except asyncio.TimeoutError:
            raise _RunError(f"{url}: no answer within {self.cfg.timeout_s:g} s", fatal=True) from None
        except aiohttp.ClientConnectorError as e:
            errno = getattr(e.os_error, "errno", None)
            why = os.strerror(errno).lower() if errno else str(e.os_error or e)
            raise _RunError(f"cannot connect to {self.cfg.url}: {why}", fatal=True) from None
        except aiohttp.ClientError as e:
            raise _RunError(f"{url}: {type(e).__name__}: {e}", fatal=True) from None
        import orjson

        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _RunError(f"HTTP {status}, not a Prometheus API answer: {body[:80]!r}", fatal=status != 200) from None
        if not isinstance(doc, dict):
            raise _RunError(f"HTTP {status}: not a Prometheus API answer")
        if doc.get("status") != "success":
            raise _RunError(f"HTTP {status}: {doc.get('errorType', 'error')}: {str(doc.get('error', ''))[:160]}",
                            fatal=status in (401, 403, 404))
        return doc.get("data")

    async def _submit(self, events: list[dict[str, Any]]) -> None:
        """Submit under a fresh key; ``unavailable`` is retried with the same key within the interval."""
        self.batch += 1
        deadline = time.monotonic() + self.cfg.interval_s
        while True:
            try:
                await self.hub.submit([dict(e) for e in events], self.producer, self.batch)
                return
            except JournalUnavailable as e:
                if time.monotonic() + e.retry_after > deadline:
                    raise _RunError(f"the hub did not take {len(events)} samples: {e.message}") from None
                await asyncio.sleep(e.retry_after)
            except BatchRefused as e:
                raise _RunError(f"the hub refused the samples: {e.message}") from None


class _RunError(Exception):
    def __init__(self, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


__all__ = ["PrometheusPoller", "SourceHealth", "Samples", "kpi_samples"]
