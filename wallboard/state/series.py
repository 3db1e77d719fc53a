"""Append-only samples: voice-of-customer items and KPI series (numpy ring buffers).

``VoiceLog`` keeps the newest ``max_voice_items`` items and a count per minute (by the
item's ``ts``) over the newest ``voice_window_minutes`` minutes; items older than that
window still enter the ring but are not counted (``counters['voice_outside_window']``).

``KpiStore`` keeps one ring per ``(metric, scope)``: up to ``kpi_points`` points in
arrival order, storage grown by doubling up to that bound; at most ``max_kpi_series``
series, the least recently updated dropped first (``counters['evicted_kpi_series']``).
"""
from __future__ import annotations

import math
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

from .config import StateConfig

if TYPE_CHECKING:
    import numpy as np
else:
    class _Numpy:
        """numpy, imported on first use: a hub with no KPI or voice queries never pays
        for it (~90 modules; a third hub's start is mostly imports)."""

        def __getattr__(self, name: str) -> Any:
            import numpy

            globals()["np"] = numpy
            return getattr(numpy, name)

    np = _Numpy()


class VoiceLog:
    """The voice ring and the per-minute counts."""

    def __init__(self, config: StateConfig, counters: dict[str, int]) -> None:
        self.counters = counters
        self.items: deque[dict[str, Any]] = deque(maxlen=config.max_voice_items)
        self.window = config.voice_window_minutes
        self.minutes: dict[int, int] = {}    # minute start (epoch s) -> count
        self.newest: int | None = None

    def add(self, ev: dict[str, Any]) -> None:
        self.items.append(dict(ev))
        self.count(ev["ts"], 1)

    def count(self, ts: float, n: int) -> None:
        m = int(math.floor(ts / 60.0)) * 60
        newest = self.newest
        if newest is None or m > newest:
            self.newest = newest = m
        cutoff = newest - (self.window - 1) * 60
        if m < cutoff:
            self.counters["voice_outside_window"] += 1
            return
        self.minutes[m] = self.minutes.get(m, 0) + n
        if len(self.minutes) > self.window:
            self.trim()

    def trim(self) -> None:
        """Drop per-minute counts older than the window (after a snapshot load too)."""
        if self.newest is not None and len(self.minutes) > self.window:
            cutoff = self.newest - (self.window - 1) * 60
            self.minutes = {k: v for k, v in self.minutes.items() if k >= cutoff}

    def per_minute(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        m0 = int(math.floor(t0 / 60.0)) * 60
        m1 = int(math.floor(t1 / 60.0)) * 60
        if m1 < m0:
            return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.int64)
        n = (m1 - m0) // 60 + 1
        if n > 4 * self.window + 1:                   # never allocate beyond what is kept
            m0 = m1 - 4 * self.window * 60
            n = 4 * self.window + 1
        minutes = m0 + 60 * np.arange(n, dtype=np.int64)
        counts = np.zeros(n, dtype=np.int64)
        for k, v in self.minutes.items():
            if m0 <= k <= m1:
                counts[(k - m0) // 60] = v
        return minutes.astype(np.float64), counts


class _Ring:
    __slots__ = ("ts", "values", "start", "n", "cap", "unit")

    def __init__(self, cap: int) -> None:
        size = min(cap, 64)
        self.ts = np.empty(size, dtype=np.float64)
        self.values = np.empty(size, dtype=np.float64)
        self.start = 0
        self.n = 0
        self.cap = cap
        self.unit: str | None = None

    def append(self, ts: float, value: float) -> None:
        size = len(self.ts)
        if self.n == size and size < self.cap:       # grow (data is contiguous from 0)
            new = min(self.cap, size * 2)
            self.ts = np.concatenate([self.ts[:self.n], np.empty(new - size)])
            self.values = np.concatenate([self.values[:self.n], np.empty(new - size)])
            size = new
        if self.n < size:
            i = self.start + self.n
            if i >= size:
                i -= size
            self.n += 1
        else:
            i = self.start
            self.start = (self.start + 1) % size
        self.ts[i] = ts
        self.values[i] = value

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        idx = (self.start + np.arange(self.n)) % len(self.ts)
        return self.ts[idx], self.values[idx]

    def last(self) -> tuple[float, float]:
        i = (self.start + self.n - 1) % len(self.ts)
        return float(self.ts[i]), float(self.values[i])


class KpiStore:
    """Bounded KPI rings keyed by ``(metric, scope)``, least recently updated last out."""

    def __init__(self, config: StateConfig, counters: dict[str, int]) -> None:
        self.counters = counters
        self.points = config.kpi_points
        self.max_series = config.max_kpi_series
        self.series: OrderedDict[tuple[str, str], _Ring] = OrderedDict()

    def add(self, metric: str, scope: str, ts: float, value: float, unit: str | None,
            dirty_kpi: set[tuple[str, str]]) -> None:
        key = (metric, scope)
        ring = self.series.get(key)
        if ring is None:
            ring = self.series[key] = _Ring(self.points)
            if len(self.series) > self.max_series:
                old, _ = self.series.popitem(last=False)
                self.counters["evicted_kpi_series"] += 1
                dirty_kpi.add(old)
        else:
            self.series.move_to_end(key)
        ring.append(ts, value)
        if unit is not None:
            ring.unit = unit
        dirty_kpi.add(key)

    def to_records(self, arrays: bool = False) -> list[dict[str, Any]]:
        """One record per series, LRU order; ``ts``/``values`` are lists of floats, or
        with ``arrays`` the numpy arrays themselves (for ``orjson.OPT_SERIALIZE_NUMPY``,
        which writes the same JSON without making a float object per point: 64 full
        series were 524,288 floats, ~16 MB of Python heap, at every compaction)."""
        out = []
        for (metric, scope), ring in self.series.items():
            ts, values = ring.arrays()
            out.append({"metric": metric, "scope": scope, "unit": ring.unit,
                        "ts": ts if arrays else ts.tolist(), "values": values if arrays else values.tolist()})
        return out

    def restore(self, rec: dict[str, Any]) -> None:
        ring = _Ring(self.points)
        for t, v in zip(rec["ts"][-self.points:], rec["values"][-self.points:]):
            ring.append(t, v)
        ring.unit = rec.get("unit")
        self.series[(rec["metric"], rec["scope"])] = ring
        while len(self.series) > self.max_series:
            self.series.popitem(last=False)
