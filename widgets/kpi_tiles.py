"""KPI tiles: big numbers readable at 5 m, with delta, sparkline, threshold colour and age.

Each tile shows one ``(metric, scope)`` from the state's KPI rings: its label (``label_zh``
on a Chinese wall), the latest value with its unit, the delta against a reference (the
previous sample, or a fixed number), a sparkline of the last ``SPARK_S`` seconds, and the
age of the latest sample (the wall never lies: an old number says so).

Colours mean what they say:

- the **delta** is green when it moves the good way, red when the bad way, and grey "="
  within the dead band (``max(dead_band, dead_band_pct % of the reference)``; by default
  0.05 points for "%", else 0.5 %). The good way is ``good = "up" | "down"``; by default it
  follows ``direction`` when that is given, else the metric's kind (orders, GMV, footfall,
  success rates: up; latency, queue, error rates: down; see ``wallboard.layout.kpi``). A
  KPI of no known kind and no ``good`` shows its delta neutral.
- the **tile** turns amber/red when the value crosses ``warn``/``crit`` in the bad
  direction (``direction = "up_bad"``: high is bad; ``"down_bad"``: low is bad).
- while none of the KPI's stores trades yet (all "planned", or "opening" before their
  ``opens_at``; the event scope's stores for ``global``, the city's for ``city:ID``) the
  tile is grey with "not open yet" ("closed" when they are all closed): a zero before the
  opening is not an alarm.

Titles, numbers and the delta line fit their box (``widgets/_text_fit.py``): they shrink,
then wrap, and are elided only when the tile has no room left.

Build as ``KpiTilesPanel(state, options, ctx)``; call ``refresh(dirty, now)`` every frame:
tiles are recomputed only when ``dirty.kpi`` names one of them (or ``dirty.all``), their
stores' phase is checked once per second while stores change, and the panel repaints once
per second for the ages: when only the ages moved (same widths, nothing turned old), just
the age boxes are painted again (the big numbers cost ~10 ms a second at 4K otherwise).

Options: ``tiles``: list of ``{metric, scope="global", label=metric, label_zh=label,
unit=None (from the samples), warn=None, crit=None, good=None (by kind),
direction=None (from good), dead_band=None, dead_band_pct=None (by unit),
reference="prev"}``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QWidget

from wallboard.layout.specs.kpi_tiles import SPEC
from wallboard.layout.kpi import dead_band_default, delta_tone, stores_phase
from wallboard.widgets._text_fit import MIN_FLOOR_PX, draw_fitted, draw_text_fit, fit_text
from wallboard.widgets.base import (STATUS_COLORS, STORE_STATUS_COLORS, PanelContext, age_text,
                                    paint_dim, register_translations, translate, ui_font)

register_translations({"vs prev": "较上次", "vs": "较", "No data": "暂无数据", "ago": "前",
                       "not open yet": "尚未开业", "closed": "已打烊"})
#: Unit words, translated part by part ("people/min" -> "人/分钟").
UNIT_ZH = {"orders": "单", "order": "单", "people": "人", "min": "分钟", "s": "秒", "h": "小时",
           "ms": "毫秒", "kCNY": "千元", "CNY": "元", "items": "件", "devices": "台"}

SPARK_S = 1800.0     # sparkline span: the last 30 minutes
STALE_S = 300.0      # a sample older than this is shown as old (age in red, value dimmed)
PHASE_TEXT = {"not_open": "not open yet", "closed": "closed"}

def translate_unit(unit: str, lang: str) -> str:
    """``unit`` for the UI language: in Chinese each word between "/" is translated."""
    if lang != "zh" or not unit:
        return unit
    return "/".join(UNIT_ZH.get(part, translate(part, lang)) for part in unit.split("/"))


@dataclass
class TileSpec:
    metric: str
    scope: str
    label: str
    label_zh: str
    unit: str | None
    warn: float | None
    crit: float | None
    good: str | None
    direction: str
    dead_band: float | None
    dead_band_pct: float | None
    reference: str | float


@dataclass
class TileView:
    """What a tile shows now (recomputed when its series or its stores' phase changes).

    ``tone``: how the delta reads (``good``/``bad``/``neutral``); ``phase``: ``not_open``
    or ``closed`` while none of the KPI's stores trades (then ``level`` is ``idle``)."""

    value: float | None = None
    ts: float | None = None
    unit: str = ""
    delta: float | None = None
    tone: str = "neutral"
    level: str = "ok"
    phase: str | None = None
    spark: tuple[np.ndarray, np.ndarray] | None = None


def parse_tiles(raw, where: str = "kpi_tiles") -> list[TileSpec]:
    """The ``tiles`` option as :class:`TileSpec` s, checked by the widget's spec (the
    layout's validators: ValueError naming ``kpi_tiles.options.tiles[i].key``)."""
    return [TileSpec(**t) for t in SPEC.options_or_raise({"tiles": raw})["tiles"]]


def threshold_level(value: float | None, warn: float | None, crit: float | None, direction: str) -> str:
    """``ok``/``warn``/``crit`` for ``value`` against the thresholds in the bad direction."""
    if value is None:
        return "unknown"
    bad = (lambda v, t: v >= t) if direction == "up_bad" else (lambda v, t: v <= t)
    if crit is not None and bad(value, crit):
        return "crit"
    if warn is not None and bad(value, warn):
        return "warn"
    return "ok"


def format_value(value: float | None) -> str:
    """Compact number for a wall: ``1.23M``, ``45.6k``, ``99.2``, ``7``; ``-`` for none."""
    if value is None or not math.isfinite(value):
        return "-"
    a = abs(value)
    for limit, div, suffix in ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if a >= limit:
            return f"{value / div:.3g}{suffix}" if a / div < 100 else f"{value / div:.0f}{suffix}"
    if a >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}" if a >= 1 else f"{value:.2g}"


class KpiTilesPanel(QWidget):
    """A grid of big-number KPI tiles; see the module docstring."""

    def __init__(self, state, options: dict, ctx: PanelContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.specs = [TileSpec(**t) for t in SPEC.options_or_raise(options)["tiles"]]
        self.state, self.ctx = state, ctx
        self.views: list[TileView] = [TileView() for _ in self.specs]
        self._keys = {(s.metric, s.scope): i for i, s in enumerate(self.specs)}
        self._phases: list[str | None] = [None] * len(self.specs)
        self._dimmed = False
        self._now = ctx.clock()
        self._last_sec: int | None = None
        self._label_cap: float | None = None   # px of the smallest label (set per paint)
        self._phase_sec: int | None = None
        #: per tile, (age box width, sample old) as last painted: None until painted
        self._age_shown: list[tuple[float, bool] | None] = [None] * len(self.specs)
        self.recomputes = 0
        #: per tile, what the last paint drew: ``{"label", "value", "unit", "line"}`` -> Fitted
        #: (the text as drawn: its size, lines and whether it had to be elided)
        self.painted: list[dict] = [{} for _ in self.specs]
        self.setMinimumSize(200, 120)
        self._check_phases(self._now)
        for i in range(len(self.specs)):
            self._compute(i, self._now)

    # ------------------------------------------------------------------ public API
    def refresh(self, dirty, now: float) -> None:
        """Recompute the tiles ``dirty.kpi`` names (and those whose stores opened or
        closed); repaint for those and once per second."""
        self._now = now
        todo = set(range(len(self.specs))) if dirty.all else {self._keys[k] for k in dirty.kpi if k in self._keys}
        sec = int(now)
        if dirty.all or (sec != self._phase_sec and (dirty.stores or self._waiting())):
            todo |= self._check_phases(now)
        for i in sorted(todo):
            self._compute(i, now)
        if todo or sec != self._last_sec:
            self._last_sec = sec
            ages = None if todo else self._age_boxes()
            if ages is None:
                self.update()
            else:   # only the ages changed: their boxes, not the big numbers beside them
                for box in ages:
                    self.update(box)

    def set_dimmed(self, dimmed: bool) -> None:
        """Veil the tiles while the feed is STALE."""
        if self._dimmed != bool(dimmed):
            self._dimmed = bool(dimmed)
            self.update()

    # ------------------------------------------------------------------ data
    def _waiting(self) -> bool:
        """A tile waits for an opening: its phase may end with the clock (``opens_at``)."""
        return any(ph == "not_open" for ph in self._phases)

    def _scope_stores(self, scope: str):
        stores = self.state.stores
        if scope.startswith("store:"):
            return [stores.get(scope[6:])]
        if scope.startswith("city:"):
            return [stores.get(sid) for sid in self.state.city_stores(scope[5:])]
        return [s for sid, s in stores.items() if self.ctx.in_scope_store(s, sid)]

    def _check_phases(self, now: float) -> set[int]:
        """Re-derive each tile's store phase; the indexes of the tiles whose phase moved."""
        self._phase_sec = int(now)
        moved, by_scope = set(), {}
        for i, spec in enumerate(self.specs):
            if spec.scope not in by_scope:  # tiles share scopes: each is walked once
                by_scope[spec.scope] = stores_phase(self._scope_stores(spec.scope), now)
            ph = by_scope[spec.scope]
            if ph != self._phases[i]:
                self._phases[i] = ph
                moved.add(i)
        return moved

    def _compute(self, i: int, now: float) -> None:
        self.recomputes += 1
        spec, view = self.specs[i], TileView(phase=self._phases[i])
        latest = self.state.latest_kpi(spec.metric, spec.scope)
        if latest is not None:
            view.ts, view.value, unit = latest
            view.unit = spec.unit if spec.unit is not None else (unit or "")
            ts, values = self.state.kpi_series(spec.metric, spec.scope)
            ref = None
            if spec.reference == "prev":
                ref = float(values[-2]) if len(values) > 1 else None
            else:
                ref = float(spec.reference)
            if ref is not None:
                view.delta = view.value - ref
                d_abs, d_pct = dead_band_default(view.unit)
                d_abs = d_abs if spec.dead_band is None else float(spec.dead_band)
                d_pct = d_pct if spec.dead_band_pct is None else float(spec.dead_band_pct)
                view.tone = delta_tone(view.delta, ref, spec.good, d_abs, d_pct)
            start = np.searchsorted(ts, view.ts - SPARK_S) if len(ts) else 0
            view.spark = (ts[start:], values[start:])
        view.level = "idle" if view.phase else threshold_level(view.value, spec.warn, spec.crit, spec.direction)
        if view.phase:
            view.tone = "neutral"
        self.views[i] = view

    # ------------------------------------------------------------------ paint
    def _grid(self, n: int, w: float, h: float) -> tuple[int, int]:
        best, best_size = (1, max(n, 1)), -1.0
        for cols in range(1, max(n, 1) + 1):
            rows = math.ceil(n / cols)
            tw, th = w / cols, h / rows
            size = min(tw / 1.6, th)  # tiles near 1.6:1
            if size > best_size:
                best, best_size = (cols, rows), size
        return best

    def _tile_rects(self) -> list[QRectF]:
        n = len(self.specs)
        cols, rows = self._grid(n, self.width(), self.height())
        tw, th = self.width() / cols, self.height() / max(rows, 1)
        return [QRectF(c * tw + 5, r * th + 5, tw - 10, th - 10) for r, c in (divmod(i, cols) for i in range(n))]

    def _age_state(self, i: int, rect: QRectF) -> tuple[QRectF, float, bool]:
        """Tile ``i``'s sample age box (top right: its text is right-aligned in it after
        ``0.6 pad`` of room), its width, and whether the sample is old."""
        view, h = self.views[i], rect.height()
        pad = max(8.0, h * 0.06)
        _, _, _, _, age_w = self._fit_label(i, rect)
        top = QRectF(rect.left() + pad, rect.top() + pad * 0.5, rect.width() - 2 * pad, h * 0.21)
        stale = view.ts is not None and self._now - view.ts > STALE_S
        return QRectF(top.right() - age_w, top.top(), age_w, h * 0.15), age_w, stale

    def _age_boxes(self) -> list[QRect] | None:
        """The boxes to paint when only the clock moved: each tile's age text (not the
        room left of it, which touches the label), or None when a width or an old/new
        state changed (the labels share one size and follow the ages' widths)."""
        rects, boxes = self._tile_rects(), []
        for i, rect in enumerate(rects):
            box, age_w, stale = self._age_state(i, rect)
            if self._age_shown[i] != (age_w, stale):
                return None
            if age_w:
                pad = max(8.0, rect.height() * 0.06)
                box.setLeft(box.left() + pad * 0.6 - 1)
                boxes.append(box.toAlignedRect())
        return boxes

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        theme = self.ctx.theme
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.fillRect(self.rect(), QColor(theme.panel))
        n = len(self.specs)
        if n == 0:
            p.setPen(QColor(theme.text_dim))
            p.setFont(ui_font(16))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.ctx.tr("No data"))
        rects = self._tile_rects()
        # every label at the size of the one that needs the smallest: a row of tiles reads as one
        self._label_cap = None
        if n:
            self._label_cap = min(self._fit_label(i, rects[i])[0].px for i in range(n))
        region = event.region()
        whole = region.contains(self.rect())
        for i in range(n):
            if whole or region.intersects(rects[i].toAlignedRect()):
                self._paint_tile(p, i, rects[i], None if whole else region)
        paint_dim(self, p, self._dimmed)
        p.end()

    def _fit_label(self, i: int, rect: QRectF):
        """``(fit, box, age, age_font, age_w)`` of tile ``i``'s label row: the sample age
        at the right, the label (shrunk, wrapped, elided last) in what is left."""
        view, spec = self.views[i], self.specs[i]
        h = rect.height()
        pad = max(8.0, h * 0.06)
        top = QRectF(rect.left() + pad, rect.top() + pad * 0.5, rect.width() - 2 * pad, h * 0.21)
        age = age_text(self._now - view.ts) if view.ts is not None else ""
        age_font = _px(min(h * 0.12, top.height()), True)
        age_w = QFontMetricsF(age_font).horizontalAdvance(age) + pad * 0.6 if age else 0.0
        box = QRectF(top.left(), top.top(), top.width() - age_w, top.height())
        label = spec.label_zh if self.ctx.lang == "zh" else spec.label
        size = h * 0.13 if self._label_cap is None else min(h * 0.13, self._label_cap)
        fit = fit_text(label, box.width(), box.height(), _px(size, True), floor_px=max(11, int(h * 0.06)))
        return fit, box, age, age_font, age_w

    def _paint_tile(self, p: QPainter, i: int, rect: QRectF, region=None) -> None:
        """Paint tile ``i``; with a ``region`` (a partial repaint), only the parts whose
        ink box meets it (the rest of the tile is left as painted before)."""
        theme, tr = self.ctx.theme, self.ctx.tr

        def due(box: QRectF, margin: float = 4.0) -> bool:
            return region is None or region.intersects(
                box.adjusted(-margin, -margin, margin, margin).toAlignedRect())

        spec, view = self.specs[i], self.views[i]
        alarm = view.level in ("warn", "crit")
        level_color = QColor(STATUS_COLORS.get(view.level, STATUS_COLORS["unknown"]))
        bg = QColor(theme.background)
        if alarm:
            bg = QColor(level_color)
            bg.setAlpha(70 if view.level == "warn" else 110)
        p.setPen(QPen(level_color if alarm else QColor(theme.panel_border), 3))
        p.setBrush(bg)
        p.drawRoundedRect(rect, 8, 8)
        h = rect.height()
        pad = max(8.0, h * 0.06)
        inner_w = rect.width() - 2 * pad
        floor = max(11, int(h * 0.06))
        stale = view.ts is not None and self._now - view.ts > STALE_S
        # sample age (top right), then the label in what is left (shrinks, wraps, elides last)
        label_fit, label_box, age, age_font, age_w = self._fit_label(i, rect)
        top = QRectF(rect.left() + pad, rect.top() + pad * 0.5, inner_w, h * 0.21)
        age_box = QRectF(top.right() - age_w, top.top(), age_w, h * 0.15)
        self._age_shown[i] = (age_w, stale)
        p.setFont(age_font)
        p.setPen(QColor(STATUS_COLORS["crit"]) if stale else QColor(theme.text_dim))
        p.drawText(age_box, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, age)
        p.setPen(QColor(theme.text_dim))
        drawn = self.painted[i]
        if region is None:
            drawn.clear()
        if due(label_box, 0.0):
            drawn["label"] = label_fit
            draw_fitted(p, label_box, label_fit, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # the big number with its unit: the number matters more, so the unit gives way first
        value_rect = QRectF(rect.left() + pad, top.bottom(), inner_w, h * 0.38)
        text = format_value(view.value)
        unit = translate_unit(view.unit or "", self.ctx.lang)
        num_font = _px(h * 0.36, True)
        num = fit_text(text, inner_w, value_rect.height(), num_font, floor_px=floor, max_lines=1)
        unit_fit = None
        if unit:
            unit_box = inner_w - num.width - 6
            unit_fit = fit_text(unit, unit_box, value_rect.height() * 0.5, _px(h * 0.15, True),
                                floor_px=floor, max_lines=1)
            if unit_fit.elided or unit_box < inner_w * 0.12:
                # no room beside the full-size number: shrink the number to leave the unit room
                num = fit_text(text, inner_w * 0.68, value_rect.height(), num_font, floor_px=floor, max_lines=1)
                for lines in (1, 2):  # "orders/s" on one line if it can, at a smaller size
                    unit_fit = fit_text(unit, inner_w - num.width - 6, value_rect.height() * 0.5,
                                        _px(h * 0.15, True), floor_px=max(MIN_FLOOR_PX, floor * 0.8), max_lines=lines)
                    if not unit_fit.elided:
                        break
        color = level_color if alarm else QColor(theme.text)
        if stale or view.value is None or view.phase:
            color = QColor(theme.text_dim)
        p.setPen(color)
        nh = QFontMetricsF(num.font).height()   # the line box, centred in value_rect
        if due(QRectF(value_rect.left(), value_rect.center().y() - nh / 2, num.width, nh)):
            drawn["value"] = num
            p.setFont(num.font)
            p.drawText(value_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, num.lines[0])
        if unit_fit is not None and not unit_fit.elided and due(
                QRectF(value_rect.left() + num.width, value_rect.top(), value_rect.width() - num.width,
                       value_rect.height())):
            drawn["unit"] = unit_fit
            p.setPen(QColor(theme.text_dim))
            ux = value_rect.left() + num.width + 6
            base = value_rect.center().y() + QFontMetricsF(num.font).ascent() / 2 - QFontMetricsF(num.font).descent() / 2
            urect = QRectF(ux, value_rect.top(), value_rect.right() - ux, base - value_rect.top() + 2)
            draw_fitted(p, urect, unit_fit, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom)
        # delta vs reference, coloured by meaning; or why there is none
        bottom = QRectF(rect.left() + pad, value_rect.bottom(), inner_w, h * 0.15)
        line, pen = None, QColor(theme.text_dim)
        if view.phase:
            line, pen = tr(PHASE_TEXT[view.phase]), QColor(STORE_STATUS_COLORS["planned"]).lighter(150)
        elif view.delta is not None:
            neutral = view.tone == "neutral"
            arrow = "=" if neutral and abs(view.delta) < 1e-12 else ("\u25b2" if view.delta > 0 else "\u25bc")
            ref = tr("vs prev") if spec.reference == "prev" else f"{tr('vs')} {format_value(float(spec.reference))}"
            line = f"{arrow} {format_value(abs(view.delta))} {ref}"
            pen = QColor({"good": STATUS_COLORS["ok"], "bad": STATUS_COLORS["crit"]}.get(view.tone, theme.text_dim))
        elif view.value is None:
            line = tr("No data")
        if line and due(bottom):
            p.setPen(pen)
            drawn["line"] = draw_text_fit(p, bottom, line, _px(h * 0.12, True), floor_px=floor, max_lines=2)
        # sparkline (bottom)
        spark = QRectF(rect.left() + pad, bottom.bottom() + 4, inner_w, rect.bottom() - bottom.bottom() - pad)
        if view.spark is not None and len(view.spark[0]) > 1 and spark.height() > 4 and due(spark):
            xs, ys = view.spark
            x0, x1 = float(xs[0]), float(xs[-1])
            y0, y1 = float(np.min(ys)), float(np.max(ys))
            if y1 == y0:
                y0, y1 = y0 - 1.0, y1 + 1.0
            path = QPainterPath()
            step = max(1, len(xs) // 200)  # a few hundred points are plenty for a sparkline
            for k in range(0, len(xs), step):
                px = spark.left() + (float(xs[k]) - x0) / max(x1 - x0, 1e-9) * spark.width()
                py = spark.bottom() - (float(ys[k]) - y0) / (y1 - y0) * spark.height()
                path.moveTo(px, py) if k == 0 else path.lineTo(px, py)
            spark_color = level_color if alarm else QColor(theme.text_dim if view.phase else theme.accent)
            p.setPen(QPen(spark_color, 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(path)
            last = path.currentPosition()
            p.setBrush(QColor(theme.text))
            p.drawEllipse(QPointF(last), 3, 3)


def _px(size: float, bold: bool = False):
    font = ui_font(10, bold)
    font.setPixelSize(max(8, int(size)))
    return font


__all__ = ["KpiTilesPanel", "TileSpec", "TileView", "parse_tiles", "threshold_level", "format_value",
           "translate_unit"]
