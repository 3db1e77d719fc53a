"""Voice of customers: volume per minute with spike markers, the latest items, topic counts.

The chart (pyqtgraph, one ``BarGraphItem`` + one spike ``ScatterPlotItem`` + one threshold
line, created once and updated with ``setOpts``/``setData``) shows the last hour of items
per minute; a minute whose count exceeds ``spike_factor`` times the mean of the previous
``baseline_min`` minutes (and at least ``MIN_SPIKE`` items) turns red and gets a marker.
Below it the newest items scroll in (channel, store, topic, age, text) with a sentiment
colour stripe, under chips counting items per topic over the hour.

Build as ``VoiceFeedPanel(state, options, ctx)``; call ``refresh(dirty, now)`` each frame.
New items (``dirty.voice``) and the clock are folded into at most one rebuild per second,
so a flood of items costs the same as a trickle. The layout's event scope
(``ctx.scope``) and the ``topics`` option filter what is counted and listed.

Options: ``spike_factor`` (3.0), ``baseline_min`` (15), ``topics`` (list of str; empty =
all topics).
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter
from PySide6.QtWidgets import QVBoxLayout, QWidget

from wallboard.widgets._names import store_name
from wallboard.widgets._plot_style import PlotGrid, style_axes
from wallboard.widgets._text_fit import draw_text_fit
from wallboard.layout.specs.voice_feed import SPEC
from wallboard.widgets.base import ui_scale, PanelContext, age_text, paint_dim, register_translations, ui_font

register_translations(
    {
        "Voice of customers": "客户之声",
        "per min": "条/分钟",
        "spike": "激增",
        "last hour": "近1小时",
        "No voice items": "暂无客户反馈",
        "all topics": "全部话题",
        "no topic": "无话题",
    }
)

CHART_MIN = 60          # minutes on the volume chart (once the history is that long)
CHART_FLOOR_MIN = 10    # minutes it shows at least while the history is younger
MIN_SPIKE = 5           # a minute needs at least this many items to count as a spike
MAX_ITEMS_SCAN = 5_000  # newest items scanned for the list, filters and topic counts
NEW_ITEM_S = 10.0       # items younger than this are highlighted
SPIKE_COLOR = "#d7263d"
BAR_COLOR = "#3a86ff"




def find_spikes(counts: np.ndarray, baseline_min: int, factor: float,
                min_count: int = MIN_SPIKE) -> tuple[np.ndarray, np.ndarray]:
    """Per minute: the baseline (mean of up to ``baseline_min`` previous minutes) and a
    spike mask (count > factor * max(baseline, 1) and count >= min_count).

    Minutes with fewer than three minutes of history get a NaN baseline and never spike.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = len(counts)
    csum = np.concatenate([[0.0], np.cumsum(counts)])
    idx = np.arange(n)
    lo = np.maximum(idx - baseline_min, 0)
    hist = idx - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        base = (csum[idx] - csum[lo]) / hist
    base[hist < 3] = np.nan
    spikes = (counts >= min_count) & (counts > factor * np.maximum(np.nan_to_num(base, nan=np.inf), 1.0))
    return base, spikes


def sentiment_color(s: float | None) -> str:
    """Colour of a sentiment score -1..1 (None: neutral grey)."""
    if s is None:
        return "#8b98a5"
    if s <= -0.5:
        return "#d7263d"
    if s < -0.1:
        return "#f46036"
    if s <= 0.1:
        return "#8b98a5"
    return "#2e9d5b"


class _ItemList(QWidget):
    """Topic chips and the newest items, painted; fed by the panel once per second."""

    def __init__(self, panel: "VoiceFeedPanel") -> None:
        super().__init__(panel)
        self.panel = panel
        self.items: list[dict] = []
        self.topics: list[tuple[str, int]] = []
        self.now = 0.0
        self.setMinimumHeight(120)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        ctx = self.panel.ctx
        theme, tr = ctx.theme, ctx.tr
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        w, h = self.width(), self.height()
        p.fillRect(self.rect(), QColor(theme.panel))
        k = ui_scale()
        base = max(14.0 * k, min(26.0 * k, h / 14.0))
        # topic chips
        chip_font = _px(base * 0.95, True)
        p.setFont(chip_font)
        fm = QFontMetricsF(chip_font)
        x, y, ch = 6.0, 4.0, base * 1.7
        for topic, n in self.topics:
            text = f"{topic} {n}"
            tw = fm.horizontalAdvance(text) + 18
            if x + tw > w - 6:
                break
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(theme.grid))
            p.drawRoundedRect(QRectF(x, y, tw, ch), ch / 2, ch / 2)
            p.setPen(QColor(theme.text))
            p.drawText(QRectF(x, y, tw, ch), Qt.AlignmentFlag.AlignCenter, text)
            x += tw + 8
        top = y + ch + 8
        if not self.items:
            p.setFont(_px(base * 1.1))
            p.setPen(QColor(theme.text_dim))
            p.drawText(QRectF(0, top, w, h - top), Qt.AlignmentFlag.AlignCenter, tr("No voice items"))
        rh = base * 3.0
        meta_font, text_font = _px(base * 0.9), _px(base * 1.15, True)
        for item in self.items:
            if top + rh > h:
                break
            row = QRectF(4, top, w - 8, rh - 4)
            age = self.now - item.get("ts", self.now)
            bg = QColor(theme.accent if age < NEW_ITEM_S else theme.background)
            bg.setAlpha(70 if age < NEW_ITEM_S else 255)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(bg)
            p.drawRoundedRect(row, 5, 5)
            p.fillRect(QRectF(row.left(), row.top(), 8, row.height()), QColor(sentiment_color(item.get("sentiment"))))
            left = row.left() + 16
            p.setFont(meta_font)
            fmm = QFontMetricsF(meta_font)
            chan = item.get("channel", "")
            cw = fmm.horizontalAdvance(chan) + 14
            chip = QRectF(left, row.top() + 4, cw, rh * 0.36)
            p.setBrush(QColor(theme.grid))
            p.drawRoundedRect(chip, 4, 4)
            p.setPen(QColor(theme.text))
            p.drawText(chip, Qt.AlignmentFlag.AlignCenter, chan)
            meta = " \u00b7 ".join(x for x in (self.panel.store_name(item), item.get("topic") or "") if x)
            agew = fmm.horizontalAdvance("00m") + 10
            p.setPen(QColor(theme.text_dim))
            p.drawText(QRectF(chip.right() + 10, chip.top(), row.right() - chip.right() - 20 - agew, chip.height()),
                       Qt.AlignmentFlag.AlignVCenter, meta)
            p.drawText(QRectF(row.right() - agew - 6, chip.top(), agew, chip.height()),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, age_text(age))
            p.setFont(text_font)
            p.setPen(QColor(theme.text))
            trect = QRectF(left, row.top() + rh * 0.42, row.right() - left - 8, rh * 0.5)
            # the customer's words: smaller, then on two lines, and only then cut
            draw_text_fit(p, trect, item.get("text", ""), text_font, floor_px=max(9, int(base * 0.8)), max_lines=2)
            top += rh
        paint_dim(self, p, self.panel.dimmed)
        p.end()


class VoiceFeedPanel(QWidget):
    """Volume chart with spike markers over a scrolling item list; see the module docstring."""

    def __init__(self, state, options: dict, ctx: PanelContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        opts = SPEC.options_or_raise(options)
        self.state, self.ctx = state, ctx
        self.spike_factor = float(opts["spike_factor"])
        self.baseline_min = int(opts["baseline_min"])
        self.topics = set(opts["topics"])
        self.dimmed = False
        self.spike_minutes: list[float] = []
        self.minutes = np.zeros(0)
        self.counts = np.zeros(0)
        self.rebuilds = 0
        self.current_per_min = 0
        self._pending = True
        self._last_sec: int | None = None
        theme = ctx.theme
        self.setAutoFillBackground(True)
        pal = self.palette()
        pal.setColor(self.backgroundRole(), QColor(theme.panel))
        self.setPalette(pal)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(4)
        self.plot = pg.PlotWidget(parent=self, background=theme.panel,
                                  axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        pi = self.plot.getPlotItem()
        pi.hideButtons()
        pi.setMenuEnabled(False)
        pi.setMouseEnabled(x=False, y=False)
        self._title_base = ctx.tr("Voice of customers")
        self._title = ""
        style_axes(pi, ui_font(12), text=theme.text, grid=theme.grid, left_sample="0000")
        self.grid = PlotGrid(pi, x=False, y=True, color=theme.grid, alpha=0.2)
        self.bars = pg.BarGraphItem(x=[0.0], height=[0.0], width=50.0, brush=BAR_COLOR, pen=None)
        self._brushes = (pg.mkBrush(BAR_COLOR), pg.mkBrush(SPIKE_COLOR))   # bar, spike bar
        self._drawn: tuple | None = None   # the data the bars were last set from
        self.threshold = pg.PlotDataItem([], [], pen=pg.mkPen("#ffd166", width=max(1.0, ui_scale()), style=Qt.PenStyle.DashLine))
        self.spike_marks = pg.ScatterPlotItem([], [], symbol="t", size=18, brush=pg.mkBrush(SPIKE_COLOR),
                                              pen=pg.mkPen("#ffffff", width=1))
        for item in (self.bars, self.threshold, self.spike_marks):
            pi.addItem(item)
        self.list = _ItemList(self)
        layout.addWidget(self.plot, 2)
        layout.addWidget(self.list, 3)
        self._rebuild(ctx.clock())

    # ------------------------------------------------------------------ public API
    def refresh(self, dirty, now: float) -> None:
        """Per frame: fold new items and the clock into at most one rebuild per second."""
        if dirty.all or dirty.voice or dirty.stores:
            self._pending = True
        sec = int(now)
        if sec != self._last_sec:
            self._last_sec = sec
            self._rebuild(now)

    def set_dimmed(self, dimmed: bool) -> None:
        """Veil the panel while the feed is STALE (chart faded, list veiled)."""
        self.dimmed = bool(dimmed)
        self.plot.getPlotItem().setOpacity(0.45 if self.dimmed else 1.0)
        self.list.update()

    def store_name(self, item: dict) -> str:
        """Display name of an item's store (or its city id, or '')."""
        sid = item.get("store")
        if sid:
            return store_name(self.state.stores, sid, self.ctx.lang)
        return item.get("city") or ""

    # ------------------------------------------------------------------ internals
    def _filtered(self) -> bool:
        return bool(self.topics or self.ctx.scope.get("stores") or self.ctx.scope.get("cities"))

    @staticmethod
    def chart_span_s(items: list[dict], now: float) -> float:
        """Seconds of history the volume chart shows: the data's span (at least
        ``CHART_FLOOR_MIN`` minutes) until the history fills ``CHART_MIN`` minutes, so a young
        feed's bars are not squeezed into the right edge."""
        oldest = min((it.get("ts", now) for it in items), default=now)
        return min(CHART_MIN * 60.0, max(CHART_FLOOR_MIN * 60.0, now - oldest + 60.0))

    def _keep(self, item: dict) -> bool:
        if self.topics and item.get("topic") not in self.topics:
            return False
        sid, city = item.get("store"), item.get("city")
        if not sid and not city:
            return True  # chain-wide feedback belongs to every scope
        if sid:
            return self.ctx.in_scope_store(self.state.stores.get(sid), sid)
        return self.ctx.region.contains(None, city)

    def _rebuild(self, now: float) -> None:
        self.rebuilds += 1
        self._pending = False
        t1 = now
        t0 = now - (CHART_MIN + self.baseline_min) * 60.0
        scan = self.state.voice_items(MAX_ITEMS_SCAN)
        items = [it for it in scan if self._keep(it)] if self._filtered() else scan
        if self._filtered():
            m0 = math.floor(t0 / 60.0) * 60.0
            m1 = math.floor(t1 / 60.0) * 60.0
            minutes = np.arange(m0, m1 + 1.0, 60.0)
            ts = np.fromiter((it.get("ts", 0.0) for it in items), dtype=np.float64, count=len(items))
            idx = ((ts - m0) // 60.0).astype(np.int64)
            idx = idx[(idx >= 0) & (idx < len(minutes))]
            counts = np.bincount(idx, minlength=len(minutes)).astype(np.float64)
        else:
            minutes, counts = self.state.voice_per_minute(t0, t1)
            counts = np.asarray(counts, dtype=np.float64)
        base, spikes = find_spikes(counts, self.baseline_min, self.spike_factor)
        show = minutes >= now - CHART_MIN * 60.0
        minutes, counts, base, spikes = minutes[show], counts[show], base[show], spikes[show]
        self.minutes, self.counts = minutes, counts
        self.spike_minutes = [float(m) for m in minutes[spikes]]
        centers = minutes + 30.0
        top = float(counts.max()) if len(counts) else 1.0
        # the bars, threshold and marks change with the data (once a minute at most for a
        # quiet feed), not with the clock: re-set only then (each re-set rebuilds the item)
        drawn = (centers.tobytes(), counts.tobytes(), spikes.tobytes(), np.asarray(base).tobytes())
        if drawn != self._drawn:
            self._drawn = drawn
            brush = self._brushes
            self.bars.setOpts(x=centers, height=counts, width=48.0, brushes=[brush[bool(s)] for s in spikes])
            thr = self.spike_factor * np.maximum(np.nan_to_num(base, nan=0.0), 1.0)
            thr[np.isnan(base)] = np.nan
            self.threshold.setData(centers, thr, connect="finite")
            self.spike_marks.setData(centers[spikes], counts[spikes] + max(1.0, top * 0.08))
        self.plot.getPlotItem().setXRange(now - self.chart_span_s(items, now), now + 60.0, padding=0)
        self.plot.getPlotItem().setYRange(0, max(5.0, top * 1.2), padding=0)
        # the last 60 s, not the last complete minute: a minute-old count says "0 per min"
        # while items pour in at the start of a feed
        current = sum(1 for it in items if it.get("ts", 0.0) > now - 60.0)
        self.current_per_min = current
        title = f"{self._title_base} \u00b7 {current} {self.ctx.tr('per min')}"
        if len(spikes) and spikes[-3:].any():
            title += f"  <span style='color:{SPIKE_COLOR}'>\u25b2 {self.ctx.tr('spike')}</span>"
        if title != self._title:
            self._title = title
            self.plot.getPlotItem().setTitle(title, color=self.ctx.theme.text, size="18pt")
        hour = [it for it in items if it.get("ts", 0.0) >= now - CHART_MIN * 60.0]
        topics: dict[str, int] = {}
        for it in hour:
            key = it.get("topic") or self.ctx.tr("no topic")
            topics[key] = topics.get(key, 0) + 1
        self.list.topics = sorted(topics.items(), key=lambda kv: (-kv[1], kv[0]))
        self.list.items = items[:40]
        self.list.now = now
        self.list.update()


def _px(size: float, bold: bool = False):
    font = ui_font(10, bold)
    font.setPixelSize(max(8, int(size)))
    return font


__all__ = ["VoiceFeedPanel", "find_spikes", "sentiment_color"]
