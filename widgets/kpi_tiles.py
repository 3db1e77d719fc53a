"""KPI tiles: big numbers readable at 5 m, with delta, sparkline, threshold colour and age.

Each tile shows one ``(metric, scope)`` from the state's KPI rings: its label (``label_zh``
on a Chinese wall), the latest value with its unit, the delta against a reference (the
previous sample, or a fixed number), a sparkline of the last ``SPARK_S`` seconds, and the
age of the latest sample (the wall never lies: an old number says so). The tile turns
amber/red when the value crosses ``warn``/``crit`` in the bad direction (``up_bad``: high is
bad; ``down_bad``: low is bad).

Build as ``KpiTilesPanel(state, options, ctx)``; call ``refresh(dirty, now)`` every frame:
tiles are recomputed only when ``dirty.kpi`` names one of them (or ``dirty.all``) and the
panel repaints once per second for the ages.

Options: ``tiles``: list of ``{metric, scope="global", label=metric, label_zh=label,
unit=None (from the samples), warn=None, crit=None, direction="up_bad",
reference="prev"}``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QWidget

from wallboard.widgets.base import (STATUS_COLORS, PanelContext, age_text, did_you_mean, paint_dim, register_translations,
                          ui_font)

register_translations({"vs prev": "较上次", "vs": "较", "No data": "暂无数据", "ago": "前"})

DIRECTIONS = ("up_bad", "down_bad")
SPARK_S = 1800.0     # sparkline span: the last 30 minutes
STALE_S = 300.0      # a sample older than this is shown as old (age in red, value dimmed)

_TILE_KEYS: dict[str, tuple] = {
    "metric": ((str,), None),
    "scope": ((str,), "global"),
    "label": ((str,), None),
    "label_zh": ((str,), None),
    "unit": ((str, type(None)), None),
    "warn": ((int, float, type(None)), None),
    "crit": ((int, float, type(None)), None),
    "direction": ((str,), "up_bad"),
    "reference": ((str, int, float), "prev"),
}


@dataclass
class TileSpec:
    metric: str
    scope: str
    label: str
    label_zh: str
    unit: str | None
    warn: float | None
    crit: float | None
    direction: str
    reference: str | float


@dataclass
class TileView:
    """What a tile shows now (recomputed when its series is dirty)."""

    value: float | None = None
    ts: float | None = None
    unit: str = ""
    delta: float | None = None
    level: str = "ok"
    spark: tuple[np.ndarray, np.ndarray] | None = None


def parse_tiles(raw, where: str = "kpi_tiles") -> list[TileSpec]:
    """Validate the ``tiles`` option; ValueError naming ``tiles[i].key`` and what was expected."""
    if not isinstance(raw, list):
        raise ValueError(f"{where}: option 'tiles' must be list, got {type(raw).__name__}")
    out = []
    for i, item in enumerate(raw):
        path = f"{where}: option 'tiles[{i}]'"
        if not isinstance(item, dict):
            raise ValueError(f"{path} must be a table, got {type(item).__name__}")
        for key in item:
            if key not in _TILE_KEYS:
                raise ValueError(f"{path}: unknown key {key!r}{did_you_mean(key, _TILE_KEYS)}")
        if "metric" not in item:
            raise ValueError(f"{path}: missing key 'metric'")
        vals = {}
        for key, (types, default) in _TILE_KEYS.items():
            v = item.get(key, default)
            if key in ("label", "label_zh") and not v:  # the layout fills "" / None
                v = vals.get("label") or vals["metric"]
            if isinstance(v, bool) or not isinstance(v, types):
                names = " or ".join("none" if t is type(None) else t.__name__ for t in types)
                raise ValueError(f"{path}.{key} must be {names}, got {type(v).__name__} {v!r}")
            vals[key] = v
        if vals["direction"] not in DIRECTIONS:
            raise ValueError(f"{path}.direction must be one of {DIRECTIONS}, got {vals['direction']!r}")
        if isinstance(vals["reference"], str) and vals["reference"] != "prev":
            raise ValueError(f"{path}.reference must be 'prev' or a number, got {vals['reference']!r}")
        out.append(TileSpec(**vals))
    return out


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
        if not isinstance(options, dict):
            raise ValueError(f"kpi_tiles: options must be a table, got {type(options).__name__}")
        for key in options:
            if key != "tiles":
                raise ValueError(f"kpi_tiles: unknown option {key!r}{did_you_mean(key, ['tiles'])}; known: tiles")
        self.specs = parse_tiles(options.get("tiles", []))
        self.state, self.ctx = state, ctx
        self.views: list[TileView] = [TileView() for _ in self.specs]
        self._keys = {(s.metric, s.scope): i for i, s in enumerate(self.specs)}
        self._dimmed = False
        self._now = ctx.clock()
        self._last_sec: int | None = None
        self.recomputes = 0
        self.setMinimumSize(200, 120)
        for i in range(len(self.specs)):
            self._compute(i, self._now)

    # ------------------------------------------------------------------ public API
    def refresh(self, dirty, now: float) -> None:
        """Recompute the tiles ``dirty.kpi`` names; repaint for those and once per second."""
        self._now = now
        todo = range(len(self.specs)) if dirty.all else [self._keys[k] for k in dirty.kpi if k in self._keys]
        for i in todo:
            self._compute(i, now)
        sec = int(now)
        if todo or sec != self._last_sec:
            self._last_sec = sec
            self.update()

    def set_dimmed(self, dimmed: bool) -> None:
        """Veil the tiles while the feed is STALE."""
        if self._dimmed != bool(dimmed):
            self._dimmed = bool(dimmed)
            self.update()

    # ------------------------------------------------------------------ data
    def _compute(self, i: int, now: float) -> None:
        self.recomputes += 1
        spec, view = self.specs[i], TileView()
        latest = self.state.latest_kpi(spec.metric, spec.scope)
        if latest is not None:
            view.ts, view.value, unit = latest
            view.unit = spec.unit if spec.unit is not None else (unit or "")
            ts, values = self.state.kpi_series(spec.metric, spec.scope)
            if spec.reference == "prev":
                view.delta = view.value - float(values[-2]) if len(values) > 1 else None
            else:
                view.delta = view.value - float(spec.reference)
            start = np.searchsorted(ts, view.ts - SPARK_S) if len(ts) else 0
            view.spark = (ts[start:], values[start:])
        view.level = threshold_level(view.value, spec.warn, spec.crit, spec.direction)
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
        cols, rows = self._grid(n, self.width(), self.height())
        tw, th = self.width() / cols, self.height() / max(rows, 1)
        for i in range(n):
            r, c = divmod(i, cols)
            self._paint_tile(p, i, QRectF(c * tw + 5, r * th + 5, tw - 10, th - 10))
        paint_dim(self, p, self._dimmed)
        p.end()

    def _paint_tile(self, p: QPainter, i: int, rect: QRectF) -> None:
        theme, tr = self.ctx.theme, self.ctx.tr
        spec, view = self.specs[i], self.views[i]
        level_color = QColor(STATUS_COLORS.get(view.level, STATUS_COLORS["unknown"]))
        bg = QColor(theme.background)
        if view.level in ("warn", "crit"):
            bg = QColor(level_color)
            bg.setAlpha(70 if view.level == "warn" else 110)
        p.setPen(QPen(level_color if view.level in ("warn", "crit") else QColor(theme.panel_border), 3))
        p.setBrush(bg)
        p.drawRoundedRect(rect, 8, 8)
        h = rect.height()
        pad = max(8.0, h * 0.06)
        label = spec.label_zh if self.ctx.lang == "zh" else spec.label
        stale = view.ts is not None and self._now - view.ts > STALE_S
        # label (top left) and sample age (top right)
        p.setFont(_px(h * 0.13, True))
        p.setPen(QColor(theme.text_dim))
        top = QRectF(rect.left() + pad, rect.top() + pad * 0.6, rect.width() - 2 * pad, h * 0.17)
        fm = QFontMetricsF(p.font())
        age = age_text(self._now - view.ts) if view.ts is not None else ""
        p.drawText(top, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   fm.elidedText(label, Qt.TextElideMode.ElideRight, top.width() - fm.horizontalAdvance(age) - 10))
        p.setPen(QColor(STATUS_COLORS["crit"]) if stale else QColor(theme.text_dim))
        p.drawText(top, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, age)
        # the big number with its unit
        value_rect = QRectF(rect.left() + pad, top.bottom(), rect.width() - 2 * pad, h * 0.40)
        text = format_value(view.value)
        font = _px(h * 0.36, True)
        fm = QFontMetricsF(font)
        unit_font = _px(h * 0.15, True)
        unit = view.unit or ""
        unit_w = QFontMetricsF(unit_font).horizontalAdvance(" " + unit) if unit else 0.0
        # The number matters more than its unit: shrink the unit first, then drop it.
        while unit and unit_w > value_rect.width() * 0.35 and unit_font.pixelSize() > 9:
            unit_font.setPixelSize(int(unit_font.pixelSize() * 0.85))
            unit_w = QFontMetricsF(unit_font).horizontalAdvance(" " + unit)
        if unit and unit_w > value_rect.width() * 0.35:
            unit, unit_w = "", 0.0
        while fm.horizontalAdvance(text) + unit_w > value_rect.width() and font.pixelSize() > 10:
            font.setPixelSize(int(font.pixelSize() * 0.9))
            fm = QFontMetricsF(font)
        p.setFont(font)
        color = level_color if view.level in ("warn", "crit") else QColor(theme.text)
        if stale or view.value is None:
            color = QColor(theme.text_dim)
        p.setPen(color)
        p.drawText(value_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        if unit:
            p.setFont(unit_font)
            p.setPen(QColor(theme.text_dim))
            ux = value_rect.left() + fm.horizontalAdvance(text) + 6
            p.drawText(QRectF(ux, value_rect.top(), value_rect.right() - ux, value_rect.height() * 0.8),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, unit)
        # delta vs reference, coloured by whether the move is bad
        bottom = QRectF(rect.left() + pad, value_rect.bottom(), rect.width() - 2 * pad, h * 0.14)
        if view.delta is not None:
            up = view.delta > 0
            bad = (up and spec.direction == "up_bad") or (view.delta < 0 and spec.direction == "down_bad")
            arrow = "\u25b2" if up else ("\u25bc" if view.delta < 0 else "=")
            ref = tr("vs prev") if spec.reference == "prev" else f"{tr('vs')} {format_value(float(spec.reference))}"
            p.setFont(_px(h * 0.12, True))
            p.setPen(QColor(STATUS_COLORS["crit"] if bad else (STATUS_COLORS["ok"] if view.delta else theme.text_dim)))
            p.drawText(bottom, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                       f"{arrow} {format_value(abs(view.delta))} {ref}")
        elif view.value is None:
            p.setFont(_px(h * 0.12, True))
            p.setPen(QColor(theme.text_dim))
            p.drawText(bottom, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, tr("No data"))
        # sparkline (bottom right)
        spark = QRectF(rect.left() + pad, bottom.bottom() + 4, rect.width() - 2 * pad,
                       rect.bottom() - bottom.bottom() - pad)
        if view.spark is not None and len(view.spark[0]) > 1:
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
            p.setPen(QPen(level_color if view.level in ("warn", "crit") else QColor(theme.accent), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(path)
            last = path.currentPosition()
            p.setBrush(QColor(theme.text))
            p.drawEllipse(QPointF(last), 3, 3)


def _px(size: float, bold: bool = False):
    font = ui_font(10, bold)
    font.setPixelSize(max(8, int(size)))
    return font


__all__ = ["KpiTilesPanel", "TileSpec", "TileView", "parse_tiles", "threshold_level", "format_value"]
