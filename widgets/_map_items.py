"""Store map building blocks: on-screen cluster merging, label placement, cached items.

Used by :mod:`widgets.store_map`; nothing here reads the live state.

- :func:`merge_discs` groups city discs (pixel centre, store count) whose discs would
  overlap on screen into one combined disc; the map calls it whenever the zoom changes,
  so zooming in splits groups again.
- :func:`place_labels` puts each label next to its marker without overlapping another
  label or marker: it tries eight positions around the marker, then the same eight
  further out with a leader line, and drops the label when none fits.
- :class:`ClusterItem` (a donut of store counts by status plus its placed label) and
  :class:`StoreLabelItem` (one store's name) are drawn in pixels, cached as device
  pixmaps (``DeviceCoordinateCache``) and only repainted when their own content changes.
- :class:`BasemapView` draws the basemap as the view's cached background: one rendering
  per pan/zoom/resize, after which repainting any small region is a pixmap copy;
  :func:`load_layers` reads the layers the map's options ask for.
- :class:`MapOverlay`: legend, banners and the stale veil over the map; it skips painting
  when a repaint below touches none of its parts.
"""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsObject, QWidget

from widgets.base import (
    ui_scale,
    CHANGE_STATUS_COLORS, STATUS_COLORS, STATUS_GLYPHS, STATUS_ORDER, STORE_STATUS_COLORS,
    PanelContext,
)

#: Gap (px) kept between discs that stay apart and between a marker and its label.
DISC_GAP = 10.0
LABEL_GAP = 4.0
#: Bad statuses shown as chips under a cluster's name, worst first.
CHIP_STATUSES = ("down", "crit", "unknown", "warn")


def disc_radius(n_stores: int) -> float:
    """Pixel radius of a cluster disc holding ``n_stores`` stores."""
    return 14.0 + 4.5 * math.log2(1 + max(0, n_stores))


# --------------------------------------------------------------------------- geometry


class _Hash:
    """Uniform grid of rectangles for fast overlap queries (cell size in px)."""

    def __init__(self, cell: float = 96.0):
        self.cell = cell
        self.buckets: dict[tuple[int, int], list[tuple[float, float, float, float]]] = {}

    def _keys(self, r):
        c = self.cell
        for gx in range(int(math.floor(r[0] / c)), int(math.floor(r[2] / c)) + 1):
            for gy in range(int(math.floor(r[1] / c)), int(math.floor(r[3] / c)) + 1):
                yield gx, gy

    def add(self, r) -> None:
        for k in self._keys(r):
            self.buckets.setdefault(k, []).append(r)

    def hits(self, r) -> bool:
        for k in self._keys(r):
            for o in self.buckets.get(k, ()):
                if r[0] < o[2] and o[0] < r[2] and r[1] < o[3] and o[1] < r[3]:
                    return True
        return False


def merge_discs(points: list[tuple[float, float, int]], gap: float = DISC_GAP,
                radius=disc_radius) -> list[list[int]]:
    """Group discs that would overlap on screen.

    ``points``: ``(x_px, y_px, n_stores)`` per city. Returns groups of indices (biggest
    group first); a group's disc sits at the store-weighted centroid with the radius of
    its total count, and no two resulting discs come closer than ``gap`` pixels.
    """
    order = sorted(range(len(points)), key=lambda i: (-points[i][2], i))
    groups: list[list] = []  # [x, y, n, members]
    for i in order:
        x, y, n = points[i]
        groups.append([x, y, max(1, n), [i]])
    changed, rounds = True, 0
    while changed and rounds < len(points) + 1:
        changed, rounds = False, rounds + 1
        out: list[list] = []
        for g in groups:
            for h in out:
                if math.hypot(g[0] - h[0], g[1] - h[1]) < radius(g[2]) + radius(h[2]) + gap:
                    n = h[2] + g[2]
                    h[0] = (h[0] * h[2] + g[0] * g[2]) / n
                    h[1] = (h[1] * h[2] + g[1] * g[2]) / n
                    h[2] = n
                    h[3].extend(g[3])
                    changed = True
                    break
            else:
                out.append(g)
        groups = out
    groups.sort(key=lambda g: (-g[2], min(g[3])))
    return [g[3] for g in groups]


#: Candidate label positions around a marker, in order of preference: (ux, uy) picks the
#: side (-1 left/top, 0 centred, 1 right/bottom).
_SIDES = ((0, 1), (1, 0), (-1, 0), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))


def _label_rect(x, y, r, w, h, side, extra):
    ux, uy = side
    d = r + LABEL_GAP + extra
    if ux == 0:
        left = x - w / 2
    elif ux > 0:
        left = x + (d if uy == 0 else d * 0.7)
    else:
        left = x - (d if uy == 0 else d * 0.7) - w
    if uy == 0:
        top = y - h / 2
    elif uy > 0:
        top = y + (d if ux == 0 else d * 0.7)
    else:
        top = y - (d if ux == 0 else d * 0.7) - h
    return (left, top, left + w, top + h)


def place_labels(anchors: list[tuple[float, float, float]], sizes: list[tuple[float, float]],
                 bounds: tuple[float, float, float, float] | None = None,
                 obstacles: list[tuple[float, float, float]] = ()):
    """Greedy label placement without overlaps.

    ``anchors``: ``(x, y, r)`` pixel centre and radius of each marker, in priority order
    (the first gets the best spot); ``sizes``: ``(w, h)`` of each label; every anchor disc
    and ``obstacles`` disc is kept free. ``bounds`` ``(x0, y0, x1, y1)`` keeps labels on
    screen (labels of anchors outside it are dropped). Returns per label ``None``
    (dropped) or ``(left, top, leader)`` relative to its anchor; ``leader`` is True when the
    label sits away from the marker and needs a line to it.
    """
    taken = _Hash()
    for x, y, r in list(anchors) + list(obstacles):
        taken.add((x - r, y - r, x + r, y + r))
    out: list = []
    for (x, y, r), (w, h) in zip(anchors, sizes):
        if bounds is not None and not (bounds[0] <= x <= bounds[2] and bounds[1] <= y <= bounds[3]):
            out.append(None)
            continue
        found = None
        for extra, leader in ((0.0, False), (max(18.0, h * 1.2), True)):
            for side in _SIDES:
                rect = _label_rect(x, y, r, w, h, side, extra)
                if bounds is not None and (rect[0] < bounds[0] or rect[1] < bounds[1]
                                           or rect[2] > bounds[2] or rect[3] > bounds[3]):
                    continue
                if not taken.hits(rect):
                    found = (rect, leader)
                    break
            if found:
                break
        if found is None:
            out.append(None)
            continue
        rect, leader = found
        taken.add(rect)
        out.append((rect[0] - x, rect[1] - y, leader))
    return out


# --------------------------------------------------------------------------- items


def _font(base: QFont, px: int) -> QFont:
    f = QFont(base)
    f.setPixelSize(px)
    return f


class ClusterItem(QGraphicsObject):
    """A (possibly merged) city cluster: donut of store counts by worst status with the
    total in the middle, and a label (name, "+N" more cities, bad-status chips) at the
    offset the placer chose. Drawn in pixels and cached: :meth:`set_counts` and
    :meth:`set_label` repaint it only when what it shows changes."""

    def __init__(self, key: tuple[str, ...], ctx: PanelContext, font: QFont):
        super().__init__()
        self.key, self.ctx = key, ctx
        self.counts: dict[str, int] = {}
        self.name = ""
        self.radius = disc_radius(0)
        self.label_off: tuple[float, float, bool] | None = (0.0, 0.0, False)
        self._name_font, self._chip_font = _font(font, 22), _font(font, 20)
        self._chips: list[tuple[str, str, float]] = []
        self._name_w = 0.0
        self._rect = QRectF()
        self.setFlag(QGraphicsObject.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setCacheMode(QGraphicsObject.CacheMode.DeviceCoordinateCache)
        self.setZValue(20)

    def set_counts(self, name: str, counts: dict[str, int]) -> bool:
        """Show ``counts`` (status -> stores) under ``name``; True when it changed."""
        counts = {s: n for s, n in counts.items() if n}
        if name == self.name and counts == self.counts:
            return False
        self.name, self.counts = name, counts
        self.radius = disc_radius(sum(counts.values()))
        fm = QFontMetrics(self._chip_font)
        self._chips = [(STATUS_GLYPHS[s] + str(counts[s]), STATUS_COLORS[s],
                        fm.horizontalAdvance(STATUS_GLYPHS[s] + str(counts[s])) + 8)
                       for s in CHIP_STATUSES if counts.get(s)]
        self._name_w = QFontMetrics(self._name_font).horizontalAdvance(name) + 6
        self._geometry()
        return True

    def label_size(self) -> tuple[float, float]:
        """Pixel size of the label block (name line + chips line)."""
        w = max(self._name_w, sum(c[2] for c in self._chips))
        return w, 28.0 + (26.0 if self._chips else 0.0)

    def set_label(self, off: tuple[float, float, bool] | None) -> None:
        """Place the label at ``(left, top, leader)`` relative to the disc centre, or hide it."""
        if off != self.label_off:
            self.label_off = off
            self._geometry()

    def _geometry(self) -> None:
        self.prepareGeometryChange()
        r = self.radius + 2
        rect = QRectF(-r, -r, 2 * r, 2 * r)
        if self.label_off is not None:
            w, h = self.label_size()
            rect = rect.united(QRectF(self.label_off[0], self.label_off[1], w, h))
        self._rect = rect.adjusted(-2, -2, 2, 2)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt)
        return self._rect

    def paint(self, p: QPainter, option, widget=None) -> None:
        theme = self.ctx.theme
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r, total = self.radius, max(1, sum(self.counts.values()))
        rect = QRectF(-r, -r, 2 * r, 2 * r)
        if self.label_off is not None and self.label_off[2]:  # leader line to a far label
            w, h = self.label_size()
            lx, ly = self.label_off[0] + w / 2, self.label_off[1] + h / 2
            d = math.hypot(lx, ly) or 1.0
            p.setPen(QPen(QColor(theme.text_dim), 1.5))
            p.drawLine(QPointF(lx / d * r, ly / d * r),
                       QPointF(min(max(0, lx), lx), ly if abs(ly) < h / 2 else
                               (self.label_off[1] if ly > 0 else self.label_off[1] + h)))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(theme.panel))
        p.drawEllipse(rect)
        start, width = 90 * 16, max(6.0, r * 0.32)
        inner = rect.adjusted(width / 2, width / 2, -width / 2, -width / 2)
        for status in reversed(STATUS_ORDER):  # worst segments first, from 12 o'clock
            n = self.counts.get(status, 0)
            if not n:
                continue
            span = -int(round(360 * 16 * n / total))
            pen = QPen(QColor(STATUS_COLORS[status]), width)
            pen.setCapStyle(Qt.PenCapStyle.FlatCap)
            p.setPen(pen)
            p.drawArc(inner, start, span)
            start += span
        f = _font(self._name_font, int(max(16, r * 0.7)))
        p.setFont(f)
        p.setPen(QColor(theme.text))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(sum(self.counts.values())))
        if self.label_off is None:
            return
        w, h = self.label_size()
        x0, y0 = self.label_off[0], self.label_off[1]
        p.setFont(self._name_font)
        p.drawText(QRectF(x0, y0, w, 28), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter,
                   self.name)
        p.setFont(self._chip_font)
        x = x0 + (w - sum(c[2] for c in self._chips)) / 2
        for text, color, cw in self._chips:
            p.setPen(QColor(color))
            p.drawText(QRectF(x, y0 + 28, cw, 26), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                       text)
            x += cw


class StoreLabelItem(QGraphicsObject):
    """One store's label (status glyph + name) at a placed offset from its marker, with a
    leader line when it sits away from the marker. Cached; repaints only on change."""

    def __init__(self, font: QFont):
        super().__init__()
        self._font = _font(font, 20)
        self.text, self.color = "", QColor("#ffffff")
        self.off: tuple[float, float, bool] = (0.0, 0.0, False)
        self.marker_r = 9.0
        self._size = (0.0, 0.0)
        self._rect = QRectF()
        self.setFlag(QGraphicsObject.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setCacheMode(QGraphicsObject.CacheMode.DeviceCoordinateCache)
        self.setZValue(12)

    def measure(self, text: str) -> tuple[float, float]:
        """Pixel size ``text`` would take."""
        return QFontMetrics(self._font).horizontalAdvance(text) + 8.0, 26.0

    def set_label(self, text: str, color: str, off: tuple[float, float, bool], marker_r: float) -> None:
        """Show ``text`` in ``color`` at ``off`` = (left, top, leader) from the marker."""
        c = QColor(color)
        if (text, c, off, marker_r) == (self.text, self.color, self.off, self.marker_r):
            return
        self.prepareGeometryChange()
        self.text, self.color, self.off, self.marker_r = text, c, off, marker_r
        self._size = self.measure(text)
        self._rect = QRectF(off[0], off[1], *self._size).united(
            QRectF(-marker_r, -marker_r, 2 * marker_r, 2 * marker_r)).adjusted(-2, -2, 2, 2)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt)
        return self._rect

    def paint(self, p: QPainter, option, widget=None) -> None:
        w, h = self._size
        x0, y0, leader = self.off
        if leader:
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setPen(QPen(QColor(self.color), 1.2))
            cx, cy = x0 + w / 2, y0 + h / 2
            d = math.hypot(cx, cy) or 1.0
            ex = min(max(0.0, x0), x0 + w)
            ey = min(max(0.0, y0), y0 + h)
            p.drawLine(QPointF(cx / d * self.marker_r, cy / d * self.marker_r), QPointF(ex, ey))
        p.setFont(self._font)
        p.setPen(self.color)
        p.drawText(QRectF(x0, y0, w, h), Qt.AlignmentFlag.AlignCenter, self.text)


# --------------------------------------------------------------------------- view


def rings_path(layer) -> QPainterPath:
    """All rings of a map layer as one painter path (lon, lat coordinates)."""
    import numpy as np

    path = QPainterPath()
    for f in layer.features:
        for ring in f.rings:
            path.moveTo(float(ring[0, 0]), float(ring[0, 1]))
            for x, y in ring[1:].tolist():
                path.lineTo(x, y)
            if len(ring) > 2 and np.allclose(ring[0], ring[-1]):
                path.closeSubpath()
    return path


class BasemapView(pg.GraphicsView):
    """A pyqtgraph view that paints the basemap layers as its cached background.

    Call :meth:`set_layers` with ``(path, fill, border)`` per layer and :meth:`attach` with
    the ViewBox whose coordinates the paths are in. Qt keeps the painted background in a
    pixmap (``CacheBackground``); the view drops it whenever the ViewBox range or the
    widget size changes, so a frame that repaints a few markers copies pixels instead of
    re-rasterising thousands of province outlines.
    """

    def __init__(self, parent=None, background=None):
        super().__init__(parent, background=background)
        self._layers: list[tuple[QPainterPath, QBrush, QPen]] = []
        self._vb = None
        self.background_renders = 0

    def set_layers(self, layers: list[tuple[QPainterPath, str | None, str]]) -> None:
        out = []
        for path, fill, border in layers:
            pen = QPen(QColor(border), 1.0)
            pen.setCosmetic(True)
            out.append((path, QBrush(QColor(fill)) if fill else QBrush(Qt.BrushStyle.NoBrush), pen))
        self._layers = out
        self.resetCachedContent()

    def attach(self, vb) -> None:
        self._vb = vb
        vb.sigTransformChanged.connect(self._invalidate)
        vb.sigResized.connect(self._invalidate)

    def _invalidate(self, *args) -> None:
        self.resetCachedContent()
        self.viewport().update()

    def drawBackground(self, p: QPainter, rect: QRectF) -> None:  # noqa: N802 (Qt)
        super().drawBackground(p, rect)
        if self._vb is None or not self._layers:
            return
        self.background_renders += 1
        p.save()
        p.setClipRect(self._vb.sceneBoundingRect(), Qt.ClipOperation.IntersectClip)
        p.setTransform(self._vb.childGroup.sceneTransform(), True)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for path, brush, pen in self._layers:
            p.setPen(pen)
            p.setBrush(brush)
            p.drawPath(path)
        p.restore()


def load_layers(opts: dict, theme) -> tuple[list, list, list[str]]:
    """The map's basemap layers from its options: shipped ``countries`` / ``provinces``
    (or the user's GeoJSON replacing them) and ``basemap_extra`` files on top.

    Returns ``(layers, paths, errors)``: the :class:`MapLayer` objects, ``(path, fill,
    border)`` for :meth:`BasemapView.set_layers`, and one message per problem (file and
    option named); a bad file is skipped, the rest still drawn.
    """
    from pathlib import Path

    from widgets.basemap import BasemapError, load_basemap, load_geojson

    errors: list[str] = []
    try:
        shipped = load_basemap()
    except BasemapError as exc:
        errors.append(str(exc))
        shipped = {}
    layers: list[tuple] = []
    for name, fill in (("countries", theme.land), ("provinces", theme.panel)):
        if not opts[f"show_{name}"]:
            continue
        layer = shipped.get(name)
        if opts[name]:
            try:
                layer = load_geojson(Path(opts[name]), name)
            except BasemapError as exc:
                errors.append(f"store_map.options.{name}: {exc}")
        if layer is not None:
            layers.append((layer, fill, theme.land_border))
    for i, extra in enumerate(opts["basemap_extra"]):
        if not isinstance(extra, str):
            errors.append(f"store_map.options.basemap_extra[{i}]: expected a GeoJSON path "
                          f"string, got {type(extra).__name__}")
            continue
        try:
            layers.append((load_geojson(Path(extra), f"extra{i}"), None, theme.accent))
        except BasemapError as exc:
            errors.append(f"store_map.options.basemap_extra[{i}]: {exc}")
    for layer, *_ in layers:
        errors.extend(layer.errors)
    return [lay for lay, *_ in layers], [(rings_path(lay), f, b) for lay, f, b in layers], errors


# --------------------------------------------------------------------------- overlay

#: Legend strip height (px) at the bottom of the map panel.
LEGEND_H = 40


def rect_at(off, size) -> QRectF:
    """QRectF at ``off`` = (left, top, ...) of ``size`` = (w, h)."""
    return QRectF(off[0], off[1], size[0], size[1])


class MapOverlay(QWidget):
    """Legend, banners, basemap problems and the stale veil, over the map view."""

    def __init__(self, panel):
        super().__init__(panel)
        self.panel = panel
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)

    def _top_h(self) -> int:
        pnl = self.panel
        return 8 + 36 * (len(pnl.chain_wide_changes()) + (1 if pnl.errors else 0))

    def paintEvent(self, event):  # noqa: N802 (Qt)
        pnl = self.panel
        rect = event.rect()
        legend = QRect(0, self.height() - LEGEND_H, self.width(), LEGEND_H)
        top = QRect(0, 0, self.width(), self._top_h())
        if not pnl.dimmed and not rect.intersects(legend) and not rect.intersects(top):
            return  # a marker or cluster repaint below: nothing of ours there
        p = QPainter(self)
        theme, tr = pnl.ctx.theme, pnl.ctx.tr
        f = QFont(pnl._font)  # the panel's UI font (a CJK one when installed)
        f.setPixelSize(int(20 * ui_scale()))
        p.setFont(f)
        fm = QFontMetrics(f)
        x, y = 12, self.height() - 14
        if rect.intersects(legend):
            for s in ("ok", "warn", "unknown", "crit", "down"):
                t = f"{STATUS_GLYPHS[s] or '●'} {tr(s)}"
                p.setPen(QColor(STATUS_COLORS[s]))
                p.drawText(x, y, t)
                x += fm.horizontalAdvance(t) + 18
            for s, glyph in (("planned", "◌"), ("opening", "◎")):
                t = f"{glyph} {tr(s)}"
                p.setPen(QColor(STORE_STATUS_COLORS[s]))
                p.drawText(x, y, t)
                x += fm.horizontalAdvance(t) + 18
            p.setPen(QColor(theme.text_dim))
            p.drawText(x, y, f"{pnl.store_count():,} {tr('stores')}")
        yb = 32
        for title, status in pnl.chain_wide_changes():
            p.fillRect(8, yb - 24, fm.horizontalAdvance(title) + 220, 32, QColor(theme.panel))
            p.setPen(QColor(CHANGE_STATUS_COLORS.get(status, theme.accent)))
            p.drawText(16, yb, f"⬚ {tr('Chain-wide change')} ({tr(status)}): {title}")
            yb += 36
        if pnl.errors:
            p.setPen(QColor(STATUS_COLORS["warn"]))
            p.drawText(12, yb, f"! {len(pnl.errors)} {tr('basemap problems')}: {pnl.errors[0][:120]}")
        if pnl.dimmed:
            p.fillRect(self.rect(), QColor(0, 0, 0, 140))
            f.setPixelSize(max(18, min(64, self.height() // 8)))
            p.setFont(f)
            p.setPen(QColor(theme.stale))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, tr("STALE"))
        p.end()


__all__ = ["ClusterItem", "StoreLabelItem", "BasemapView", "MapOverlay", "merge_discs",
           "place_labels", "disc_radius", "rings_path", "load_layers", "rect_at", "LEGEND_H"]
