"""KPI chart: several KPI series on one time axis, with threshold bands.

One ``PlotDataItem`` per configured series is created in the constructor and only ever
fed with ``setData`` (never recreated), from the state's ring buffers
(``state.kpi_series``), so memory and cost follow the ring size, not uptime. Bands are
static ``LinearRegionItem``s (y ranges) that do not take part in auto-ranging. The legend
shows each series' latest value. Pens are 1 px (cosmetic).

Build as ``KpiChartPanel(state, options, ctx)``; call ``refresh(dirty, now)`` each frame:
series named in ``dirty.kpi`` are re-fed immediately; the time axis slides once per second.

For a metric that cannot be negative (no sample below 0) the y axis never goes below 0:
it spans from 0 (or, for values far from 0 such as 99.2..99.8 %, from a little under the
lowest) to a little above the highest value shown; while there is no data (or only zeros)
it shows a default range from 0 by unit (0..100 for "%", 0..500 for "ms", else 0..10) with "No data"
written across the plot -- never pyqtgraph's -0.4..0.4 for an empty plot. A series with a
negative value gets the usual auto range.

Options: ``series``: list of ``{metric, scope="global", label=metric, label_zh=label}``;
``bands``: list of ``{from, to, color | level}`` (``level`` one of ok/warn/crit, default
warn); ``window_min`` (60). Legend labels are ``label_zh`` on a Chinese wall, with the
unit translated (``orders/s`` -> 单/秒).
"""
from __future__ import annotations


import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from wallboard.layout.specs.kpi_chart import SPEC
from wallboard.widgets._plot_style import PlotGrid, style_axes
from wallboard.widgets.base import STATUS_COLORS, PanelContext, register_translations, ui_font, ui_scale
from wallboard.widgets.kpi_tiles import format_value, translate_unit

register_translations({"No data": "暂无数据"})
#: y span shown while a non-negative chart has no data (or only zeros), by unit
DEFAULT_Y_MAX = {"%": 100.0, "ms": 500.0}
DEFAULT_Y_MAX_OTHER = 10.0

PALETTE = ("#3a86ff", "#ffbe0b", "#2ec4b6", "#ff006e", "#8338ec", "#fb5607", "#a7c957", "#e5e5e5")


def parse_options(options) -> tuple[list[dict], list[dict], float]:
    """Check the options with the widget's spec (the layout's validators; ValueError naming
    ``kpi_chart.options.KEY``); return ``(series, bands, window_s)``, each band with the
    colour it is drawn in."""
    opts = SPEC.options_or_raise(options)
    series = [{k: s[k] for k in ("metric", "scope", "label", "label_zh")} for s in opts["series"]]
    bands = []
    for i, b in enumerate(opts["bands"]):
        color = b["color"] or STATUS_COLORS[b["level"]]
        if not QColor.isValidColorName(color):
            raise ValueError(f"kpi_chart.options.bands[{i}].color: expected a colour name such as "
                             f'"#e0a106" or "orange", got "{color}"')
        bands.append({"from": float(b["from"]), "to": float(b["to"]), "color": color})
    return series, bands, float(opts["window_min"]) * 60.0


class KpiChartPanel(QWidget):
    """Multi-series KPI time chart with bands; see the module docstring."""

    def __init__(self, state, options: dict, ctx: PanelContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series, self.bands, self.window_s = parse_options(options)
        self._first_ts: dict[int, float] = {}  # per series: its oldest point in the window
        self._ylim: dict[int, tuple[float, float]] = {}  # per series: min, max in the window
        self._unit: str = ""
        self.state, self.ctx = state, ctx
        self._keys = {(s["metric"], s["scope"]): i for i, s in enumerate(self.series)}
        self._last_sec: int | None = None
        self.feeds = 0
        theme = ctx.theme
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.plot = pg.PlotWidget(parent=self, background=theme.panel,
                                  axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        layout.addWidget(self.plot)
        pi = self.plot.getPlotItem()
        pi.hideButtons()
        pi.setMenuEnabled(False)
        pi.setMouseEnabled(x=False, y=False)
        self.grid = PlotGrid(pi, x=True, y=True, color=theme.grid, alpha=0.2)
        style_axes(pi, ui_font(13), text=theme.text, grid=theme.grid, left_sample="-0000.0")
        pi.enableAutoRange(x=False, y=False)
        self.no_data = QLabel(ctx.tr("No data"), self)
        self.no_data.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_data.setFont(ui_font(16))
        self.no_data.setStyleSheet(f"color: {theme.text_dim}; background: transparent;")
        self.no_data.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.legend = pi.addLegend(offset=(10, 10), labelTextColor=theme.text, labelTextSize=f"{15 * ui_scale():.0f}pt",
                                   brush=pg.mkBrush(11, 15, 20, 200))
        self.band_items = []
        for band in self.bands:
            c = QColor(band["color"])
            fill, edge = QColor(c), QColor(c)
            fill.setAlpha(45)
            edge.setAlpha(140)
            reg = pg.LinearRegionItem((band["from"], band["to"]), orientation="horizontal", movable=False,
                                      brush=pg.mkBrush(fill), pen=pg.mkPen(edge, width=1))
            reg.setZValue(-10)
            pi.addItem(reg, ignoreBounds=True)
            self.band_items.append(reg)
        #: one PlotDataItem per series, created here once and only fed with setData
        self.items: list[pg.PlotDataItem] = []
        for i, s in enumerate(self.series):
            item = pi.plot([], [], pen=pg.mkPen(PALETTE[i % len(PALETTE)], width=max(2.0, 1.5 * ui_scale())),
                           name=self._label(s))
            item.setClipToView(True)
            self.items.append(item)
        now = ctx.clock()
        for i in range(len(self.series)):
            self._feed(i, now)
        self._slide(now)
        self._range_y()

    # ------------------------------------------------------------------ public API
    def refresh(self, dirty, now: float) -> None:
        """Re-feed series named in ``dirty.kpi`` (all on ``dirty.all``); slide the axis per second."""
        todo = range(len(self.series)) if dirty.all else [self._keys[k] for k in dirty.kpi if k in self._keys]
        for i in todo:
            self._feed(i, now)
        if todo:
            self._range_y()
        sec = int(now)
        if sec != self._last_sec:
            self._last_sec = sec
            self._slide(now)

    def set_dimmed(self, dimmed: bool) -> None:
        """Fade the chart while the feed is STALE."""
        self.plot.getPlotItem().setOpacity(0.4 if dimmed else 1.0)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self.no_data.setGeometry(self.rect())

    @property
    def y_range(self) -> tuple[float, float]:
        """The y span shown now."""
        lo, hi = self.plot.getPlotItem().getViewBox().viewRange()[1]
        return float(lo), float(hi)

    # ------------------------------------------------------------------ internals
    def _label(self, s: dict) -> str:
        return s["label_zh"] if self.ctx.lang == "zh" else s["label"]

    def _feed(self, i: int, now: float) -> None:
        self.feeds += 1
        s = self.series[i]
        ts, values = self.state.kpi_series(s["metric"], s["scope"])
        # only what the window shows (plus one point before it so the line enters from the edge)
        start = max(0, int(np.searchsorted(ts, now - self.window_s)) - 1) if len(ts) else 0
        shown = np.asarray(values[start:], dtype=np.float64)
        self.items[i].setData(np.asarray(ts[start:], dtype=np.float64), shown)
        if len(ts) > start:
            self._first_ts[i] = float(ts[start])
            finite = shown[np.isfinite(shown)]
            if len(finite):
                self._ylim[i] = (float(finite.min()), float(finite.max()))
        latest = self.state.latest_kpi(s["metric"], s["scope"])
        label = self._label(s)
        if latest is not None:
            unit = translate_unit(latest[2] or "", self.ctx.lang)
            self._unit = self._unit or (latest[2] or "")
            label = f"{label}  {format_value(latest[1])}{(' ' + unit) if unit else ''}"
        sample = self.legend.getLabel(self.items[i]) if hasattr(self.legend, "getLabel") else None
        if sample is not None and sample.text != label:
            sample.setText(label)

    def _range_y(self) -> None:
        """0-based y range for a metric that cannot be negative; a default span and
        "No data" while there is nothing (or only zeros) to show."""
        pi = self.plot.getPlotItem()
        self.no_data.setVisible(not self._ylim)
        lo = min((v[0] for v in self._ylim.values()), default=0.0)
        hi = max((v[1] for v in self._ylim.values()), default=0.0)
        if lo < 0:
            pi.enableAutoRange(y=True)
            return
        if hi <= 0:  # nothing, or only zeros: a default span from 0
            pi.setYRange(0.0, DEFAULT_Y_MAX.get(self._unit.strip(), DEFAULT_Y_MAX_OTHER), padding=0)
            return
        span = hi - lo
        # from 0 when the data comes near it; else around the data (99.2..99.8 %), never below 0
        y0 = 0.0 if lo <= hi * 0.5 else max(0.0, lo - max(span * 0.15, hi * 0.002))
        y1 = hi + max(span * 0.12, (hi - y0) * 0.08, hi * 0.002)
        if self._unit.strip() == "%" and hi <= 100.0:
            y1 = min(y1, 100.0 + (y1 - hi) * 0.25)
        pi.setYRange(y0, y1, padding=0)

    def _slide(self, now: float) -> None:
        """Show the window ending now; while the data is younger than the window, start a
        little before the first point so a fresh feed is not a sliver at the right edge."""
        lo = now - self.window_s
        if self._first_ts:
            first = min(self._first_ts.values())
            if first > lo:
                lo = max(lo, first - max(60.0, (now - first) * 0.1))
        self.plot.getPlotItem().setXRange(lo, now, padding=0)


__all__ = ["KpiChartPanel", "parse_options"]
