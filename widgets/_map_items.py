"""Store map building blocks: on-screen cluster merging, label placement, cached items.

Used by :mod:`widgets.store_map`; nothing here reads the live state.

- :func:`layout_discs` lays out the city discs (pixel centre, store count) for one zoom:
  it merges only cities so close that even their smallest readable discs would overlap
  (closest pairs first, so a merge does not snowball across the country), then shrinks
  the discs that would still touch, never below that readable minimum; disc radii grow
  with the store count up to a cap the map derives from its panel size. The map calls it
  whenever the zoom changes, so zooming in splits groups again. :func:`merge_discs` is
  the grouping alone.
- :func:`place_labels` puts each label next to its marker without overlapping another
  label or marker: it tries eight positions around the marker, then the same eight
  on three rings further out with a leader line, and drops the label when none fits.
- :class:`ClusterItem` (a donut of store counts by status plus its placed label) and
  :class:`StoreLabelItem` (one store's name) are drawn in pixels, cached as device
  pixmaps (``DeviceCoordinateCache``) and only repainted when their own content changes.
- :class:`BasemapView` draws the basemap as the view's cached background: one rendering
  per pan/zoom/resize, after which repainting any small region is a pixmap copy;
  :func:`load_layers` reads the layers the map's options ask for.
- :class:`MapOverlay`: legend, banners and the stale veil over the map; it skips painting
  when a repaint below touches none of its parts.

Every pixel constant here (fonts, disc radii, chips, gaps, leader lines, legend) is for a
1080-line wall; the items and functions take a ``scale`` (the panel passes
:func:`widgets.base.ui_scale` read when it was built) that multiplies all of them
together, so a 2160-line wall gets twice the size with the same proportions.
"""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import (
    QBrush, QColor, QFont, QFontMetrics, QFontMetricsF, QPainter, QPainterPath, QPen,
)
from PySide6.QtWidgets import QGraphicsObject, QWidget

from wallboard.widgets._text_fit import fit_text
from wallboard.widgets.base import (
    CHANGE_STATUS_COLORS, STATUS_COLORS, STATUS_GLYPHS, STATUS_ORDER, STORE_STATUS_COLORS,
    PanelContext, ui_scale,
)

#: Gap (px) kept between discs that stay apart and between a marker and its label.
DISC_GAP = 10.0
LABEL_GAP = 4.0
#: Bad statuses shown as chips under a cluster's name, worst first.
CHIP_STATUSES = ("down", "crit", "unknown", "warn")


def disc_min_radius(n_stores: int, scale: float = 1.0) -> float:
    """Smallest pixel radius of a disc whose store count (its digits) is still readable
    inside the ring (times the UI ``scale``)."""
    return (10.0 + 3.0 * len(str(max(0, int(n_stores))))) * scale


def disc_radius(n_stores: int, scale: float = 1.0, cap: float | None = None) -> float:
    """Pixel radius of a cluster disc holding ``n_stores`` stores (times the UI ``scale``):
    grows with the log of the count, at most ``cap`` px (the map passes a share of its
    panel size), never below :func:`disc_min_radius`."""
    r = (11.0 + 3.5 * math.log2(1 + max(0, n_stores))) * scale
    if cap is not None:
        r = min(r, cap)
    return max(r, disc_min_radius(n_stores, scale))


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


def layout_discs(points: list[tuple[float, float, int]], gap: float = DISC_GAP,
                 radius=disc_radius, min_radius=disc_min_radius) -> list[tuple[list[int], float, float, float]]:
    """Merge and size city discs for one zoom so that none overlaps another.

    ``points``: ``(x_px, y_px, n_stores)`` per city; ``radius(n)``: the disc radius wanted
    for ``n`` stores; ``min_radius(n)``: the smallest readable one. Two discs merge only
    when even their minimum discs would come closer than ``gap`` (the closest pairs first,
    round by round, so merges stay local instead of chaining across the map); a merged
    disc sits at the store-weighted centroid. Discs that would still overlap at their
    wanted radius are shrunk (the room above their minimum shared in proportion), so every
    pair keeps ``gap`` between them. Returns ``(members, x, y, r)`` per disc, biggest count
    first; ``members`` lists the point indices, biggest count first.
    """
    import numpy as np

    if not points:
        return []
    xy = np.array([(p[0], p[1]) for p in points], float).reshape(-1, 2)
    n = np.array([max(1, int(p[2])) for p in points], float)
    members: list[list[int]] = [[i] for i in range(len(points))]
    for _ in range(len(points)):  # rounds; each merges at least one pair or stops
        m = len(members)
        if m < 2:
            break
        rmin = np.array([min_radius(int(c)) for c in n])
        d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        need = rmin[:, None] + rmin[None, :] + gap
        ratio = d / need
        iu = np.triu_indices(m, 1)
        close = np.nonzero(ratio[iu] < 1.0)[0]
        if not len(close):
            break
        pairs = sorted(zip(ratio[iu][close].tolist(), iu[0][close].tolist(), iu[1][close].tolist()))
        into = list(range(m))  # each disc merges at most once per round: closest pairs win
        used: set[int] = set()
        for _, a, b in pairs:
            if a in used or b in used:
                continue
            used.update((a, b))
            into[b] = a
        keep = [i for i in range(m) if into[i] == i]
        new_xy, new_n, new_members = [], [], []
        for i in keep:
            group = [j for j in range(m) if into[j] == i]
            w = n[group]
            new_xy.append((xy[group] * w[:, None]).sum(axis=0) / w.sum())
            new_n.append(w.sum())
            new_members.append([k for j in group for k in members[j]])
        xy, n, members = np.array(new_xy).reshape(-1, 2), np.array(new_n), new_members
    m = len(members)
    want = np.array([radius(int(c)) for c in n])
    rmin = np.minimum(np.array([min_radius(int(c)) for c in n]), want)
    r = want.copy()
    if m > 1:
        d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        spare = want - rmin
        for a in range(m):  # pairwise shares: both discs of a pair fit in their distance
            for b in range(a + 1, m):
                room = d[a, b] - gap - rmin[a] - rmin[b]
                if want[a] + want[b] + gap <= d[a, b]:
                    continue
                tot = spare[a] + spare[b]
                fa = spare[a] / tot if tot > 0 else 0.5
                r[a] = min(r[a], rmin[a] + max(0.0, room) * fa)
                r[b] = min(r[b], rmin[b] + max(0.0, room) * (1 - fa))
    size = {i: points[i][2] for i in range(len(points))}
    out = []
    for k in range(m):
        mem = sorted(members[k], key=lambda i: (-size[i], i))
        out.append((mem, float(xy[k, 0]), float(xy[k, 1]), float(r[k])))
    out.sort(key=lambda g: (-sum(points[i][2] for i in g[0]), min(g[0])))
    return out


def merge_discs(points: list[tuple[float, float, int]], gap: float = DISC_GAP,
                radius=disc_radius, min_radius=None) -> list[list[int]]:
    """The groups of :func:`layout_discs` alone (indices, biggest group first).
    ``min_radius`` defaults to ``radius`` (merge whenever the wanted discs overlap)."""
    return [g[0] for g in layout_discs(points, gap, radius, min_radius or radius)]


#: Candidate label positions around a marker, in order of preference: (ux, uy) picks the
#: side (-1 left/top, 0 centred, 1 right/bottom).
_SIDES = ((0, 1), (1, 0), (-1, 0), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))


def _label_rect(x, y, r, w, h, side, extra, gap=LABEL_GAP):
    ux, uy = side
    d = r + gap + extra
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
                 obstacles: list[tuple[float, float, float]] = (), scale: float = 1.0):
    """Greedy label placement without overlaps.

    ``anchors``: ``(x, y, r)`` pixel centre and radius of each marker, in priority order
    (the first gets the best spot); ``sizes``: ``(w, h)`` of each label; every anchor disc
    and ``obstacles`` disc is kept free. ``bounds`` ``(x0, y0, x1, y1)`` keeps labels on
    screen (labels of anchors outside it are dropped). Returns per label ``None``
    (dropped) or ``(left, top, leader)`` relative to its anchor; ``leader`` is True when the
    label sits away from the marker (one of three further rings) and needs a line to it. ``scale`` (the UI scale)
    multiplies the marker-label gap and the leader distance.
    """
    taken = _Hash(96.0 * scale)
    gap = LABEL_GAP * scale
    for x, y, r in list(anchors) + list(obstacles):
        taken.add((x - r, y - r, x + r, y + r))
    out: list = []
    for (x, y, r), (w, h) in zip(anchors, sizes):
        if bounds is not None and not (bounds[0] <= x <= bounds[2] and bounds[1] <= y <= bounds[3]):
            out.append(None)
            continue
        found = None
        for extra, leader in ((0.0, False), (max(18.0 * scale, h * 1.2), True),
                              (max(40.0 * scale, h * 2.4), True), (max(64.0 * scale, h * 3.6), True)):
            for side in _SIDES:
                rect = _label_rect(x, y, r, w, h, side, extra, gap)
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


def _font(base: QFont, px: float) -> QFont:
    f = QFont(base)
    f.setPixelSize(max(1, int(round(px))))
    return f


#: Cluster label metrics (px at scale 1): name and chip font sizes, their line heights,
#: horizontal padding of the name and of each chip.
NAME_PX, CHIP_PX, NAME_H, CHIP_H, NAME_PAD, CHIP_PAD = 22, 20, 28.0, 26.0, 6.0, 8.0
#: Store label metrics (px at scale 1): font size, line height, horizontal padding.
STORE_PX, STORE_H, STORE_PAD = 20, 26.0, 8.0


class _Ink:
    """Text measured by its ink: advance and tight bounds relative to the baseline, so a
    line can be centred on what is drawn (CJK fonts have a tall ascent that would push
    Latin text down) and sized so no glyph sticks out of its box. Results are cached."""

    def __init__(self, font: QFont):
        self.font = font
        self._fm = QFontMetricsF(font)
        self._cache: dict[str, tuple[float, QRectF]] = {}

    def measure(self, text: str) -> tuple[float, QRectF]:
        """``(advance, tight ink rect relative to the baseline origin)``."""
        got = self._cache.get(text)
        if got is None:
            if len(self._cache) > 2000:
                self._cache.clear()
            got = (self._fm.horizontalAdvance(text), self._fm.tightBoundingRect(text))
            self._cache[text] = got
        return got

    def line_h(self, text: str, minimum: float, pad: float) -> float:
        """Height of a line holding ``text``: ``minimum``, or its ink plus ``pad`` above and
        below when that is taller."""
        return max(minimum, self.measure(text)[1].height() + 2 * pad)

    def origin(self, box: QRectF, text: str, align: str = "center") -> QPointF:
        """Baseline origin that puts the ink of ``text`` in the vertical middle of ``box``
        and horizontally at its left (``align="left"``) or centre."""
        adv, ink = self.measure(text)
        x = box.left() if align == "left" else box.left() + (box.width() - adv) / 2
        return QPointF(x, box.center().y() - (ink.top() + ink.bottom()) / 2)

    def ink_at(self, box: QRectF, text: str, align: str = "center") -> QRectF:
        """Where the ink of ``text`` lands when drawn in ``box`` (see :meth:`origin`)."""
        o = self.origin(box, text, align)
        return self.measure(text)[1].translated(o)


class ClusterItem(QGraphicsObject):
    """A (possibly merged) city cluster: donut of store counts by worst status with the
    total in the middle, and a label (name, "+N" more cities, bad-status chips) at the
    offset the placer chose. Drawn in pixels and cached: :meth:`set_counts` and
    :meth:`set_label` repaint it only when what it shows changes. ``scale`` (default: the
    UI scale now) multiplies every size: disc, ring, fonts, chips, leader line."""

    def __init__(self, key: tuple[str, ...], ctx: PanelContext, font: QFont,
                 scale: float | None = None):
        super().__init__()
        self.key, self.ctx = key, ctx
        self.k = k = ui_scale() if scale is None else float(scale)
        self.counts: dict[str, int] = {}
        self.name = ""
        self.radius = disc_radius(0, k)
        self._radius_set = False   # True once the map sized the disc (set_radius)
        self.label_off: tuple[float, float, bool] | None = (0.0, 0.0, False)
        self._base = font
        self._name_font, self._chip_font = _font(font, NAME_PX * k), _font(font, CHIP_PX * k)
        self._name_ink, self._chip_ink = _Ink(self._name_font), _Ink(self._chip_font)
        self._total_ink = _Ink(self._total_font())
        self._name_h, self._chip_h = NAME_H * k, 0.0
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
        k = self.k
        digits = len(str(sum(self.counts.values()))) != len(str(sum(counts.values())))
        self.name, self.counts = name, counts
        radius = self.radius if self._radius_set else disc_radius(sum(counts.values()), k)
        if radius != self.radius or digits:
            self.radius = radius
            self._total_ink = _Ink(self._total_font())
        pad = CHIP_PAD * k
        texts = [(STATUS_GLYPHS[s] + str(counts[s]), STATUS_COLORS[s]) for s in CHIP_STATUSES if counts.get(s)]
        self._chips = [(t, c, self._chip_ink.measure(t)[0] + pad) for t, c in texts]
        self._chip_h = max((self._chip_ink.line_h(t, CHIP_H * k, k) for t, _ in texts), default=0.0)
        self._name_w = self._name_ink.measure(name)[0] + NAME_PAD * k
        self._name_h = self._name_ink.line_h(name, NAME_H * k, k)
        self._geometry()
        return True

    def set_radius(self, radius: float) -> bool:
        """Size the disc (the map's :func:`layout_discs` decides it); True when it changed.
        The total in the middle is re-fitted to the ring."""
        self._radius_set = True
        if abs(radius - self.radius) < 0.25:
            return False
        self.radius = radius
        self._total_ink = _Ink(self._total_font())
        self._geometry()
        return True

    def ring_width(self) -> float:
        """Width of the status ring (the rest of the disc holds the total)."""
        return max(3.5 * self.k, self.radius * 0.26)

    def label_size(self) -> tuple[float, float]:
        """Pixel size of the label block (name line + chips line)."""
        w = max(self._name_w, sum(c[2] for c in self._chips))
        return w, self._name_h + self._chip_h

    def label_rect(self) -> QRectF | None:
        """The label block in item pixels (None when hidden)."""
        if self.label_off is None:
            return None
        return QRectF(self.label_off[0], self.label_off[1], *self.label_size())

    def set_label(self, off: tuple[float, float, bool] | None) -> None:
        """Place the label at ``(left, top, leader)`` relative to the disc centre, or hide it."""
        if off != self.label_off:
            self.label_off = off
            self._geometry()

    def _geometry(self) -> None:
        self.prepareGeometryChange()
        r = self.radius + 2 * self.k
        rect = QRectF(-r, -r, 2 * r, 2 * r)
        label = self.label_rect()
        if label is not None:
            rect = rect.united(label)
        m = 2 * self.k
        self._rect = rect.adjusted(-m, -m, m, m)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt)
        return self._rect

    def _total_font(self) -> QFont:
        """Font of the total: as big as fits inside the ring (its digits side by side)."""
        digits = len(str(sum(self.counts.values())))
        inner = 2 * (self.radius - self.ring_width())
        return _font(self._base, max(8.0 * self.k, min(self.radius * 0.8, 0.9 * inner / (0.6 * digits))))

    def _texts(self):
        """(ink measurer, box, align, text, colour) of everything written, as painted:
        the total in the disc, then the name and each chip of the label."""
        r, theme = self.radius, self.ctx.theme
        out = [(self._total_ink, QRectF(-r, -r, 2 * r, 2 * r), "center",
                str(sum(self.counts.values())), theme.text)]
        label = self.label_rect()
        if label is None:
            return out
        x0, y0, w = label.x(), label.y(), label.width()
        out.append((self._name_ink, QRectF(x0, y0, w, self._name_h), "center", self.name, theme.text))
        x = x0 + (w - sum(c[2] for c in self._chips)) / 2
        for text, color, cw in self._chips:
            out.append((self._chip_ink, QRectF(x, y0 + self._name_h, cw, self._chip_h), "left", text, color))
            x += cw
        return out

    def text_rects(self) -> list[QRectF]:
        """Item-pixel ink rectangles of the texts drawn (total, name, chips): for tests
        that check nothing is clipped by :meth:`boundingRect`."""
        return [ink.ink_at(box, text, align) for ink, box, align, text, _ in self._texts()]

    def paint(self, p: QPainter, option, widget=None) -> None:
        theme, k = self.ctx.theme, self.k
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r, total = self.radius, max(1, sum(self.counts.values()))
        rect = QRectF(-r, -r, 2 * r, 2 * r)
        label = self.label_rect()
        if label is not None and self.label_off[2]:  # leader line to a far label
            c = label.center()
            d = math.hypot(c.x(), c.y()) or 1.0
            p.setPen(QPen(QColor(theme.text_dim), 1.5 * k))
            p.drawLine(QPointF(c.x() / d * r, c.y() / d * r), _nearest(label, 0.0, 0.0))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(theme.panel))
        p.drawEllipse(rect)
        start, width = 90 * 16, self.ring_width()
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
        for ink, box, align, text, color in self._texts():
            p.setFont(ink.font)
            p.setPen(QColor(color))
            p.drawText(ink.origin(box, text, align), text)


def _nearest(rect: QRectF, x: float, y: float) -> QPointF:
    """The point of ``rect`` nearest to (x, y) (where a leader line ends)."""
    return QPointF(min(max(x, rect.left()), rect.right()), min(max(y, rect.top()), rect.bottom()))


class StoreLabelItem(QGraphicsObject):
    """One store's label (status glyph + name) at a placed offset from its marker, with a
    leader line when it sits away from the marker. Cached; repaints only on change.
    ``scale`` (default: the UI scale now) multiplies font, padding and line widths."""

    def __init__(self, font: QFont, scale: float | None = None):
        super().__init__()
        self.k = ui_scale() if scale is None else float(scale)
        self._font = _font(font, STORE_PX * self.k)
        self._ink = _Ink(self._font)
        self.text, self.color = "", QColor("#ffffff")
        self.off: tuple[float, float, bool] = (0.0, 0.0, False)
        self.marker_r = 9.0 * self.k
        self._size = (0.0, 0.0)
        self._rect = QRectF()
        self.setFlag(QGraphicsObject.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setCacheMode(QGraphicsObject.CacheMode.DeviceCoordinateCache)
        self.setZValue(12)

    def measure(self, text: str) -> tuple[float, float]:
        """Pixel size ``text`` would take."""
        k = self.k
        return self._ink.measure(text)[0] + STORE_PAD * k, self._ink.line_h(text, STORE_H * k, k)

    def set_label(self, text: str, color: str, off: tuple[float, float, bool], marker_r: float) -> None:
        """Show ``text`` in ``color`` at ``off`` = (left, top, leader) from the marker."""
        c = QColor(color)
        if (text, c, off, marker_r) == (self.text, self.color, self.off, self.marker_r):
            return
        self.prepareGeometryChange()
        self.text, self.color, self.off, self.marker_r = text, c, off, marker_r
        self._size = self.measure(text)
        m = 2 * self.k
        self._rect = QRectF(off[0], off[1], *self._size).united(
            QRectF(-marker_r, -marker_r, 2 * marker_r, 2 * marker_r)).adjusted(-m, -m, m, m)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt)
        return self._rect

    def text_rect(self) -> QRectF:
        """Item-pixel ink rectangle of the text as painted (for tests)."""
        return self._ink.ink_at(QRectF(self.off[0], self.off[1], *self._size), self.text)

    def paint(self, p: QPainter, option, widget=None) -> None:
        w, h = self._size
        x0, y0, leader = self.off
        box = QRectF(x0, y0, w, h)
        if leader:
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setPen(QPen(QColor(self.color), 1.2 * self.k))
            cx, cy = x0 + w / 2, y0 + h / 2
            d = math.hypot(cx, cy) or 1.0
            p.drawLine(QPointF(cx / d * self.marker_r, cy / d * self.marker_r), _nearest(box, 0.0, 0.0))
        p.setFont(self._font)
        p.setPen(self.color)
        p.drawText(self._ink.origin(box, self.text), self.text)


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

    from wallboard.widgets.basemap import BasemapError, load_basemap, load_geojson

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

#: Legend strip height (px at scale 1) at the bottom of the map panel; the panel keeps
#: ``legend_h`` = this times its UI scale free of labels.
LEGEND_H = 40


def rect_at(off, size) -> QRectF:
    """QRectF at ``off`` = (left, top, ...) of ``size`` = (w, h)."""
    return QRectF(off[0], off[1], size[0], size[1])


class MapOverlay(QWidget):
    """Legend, banners, basemap problems and the stale veil, over the map view; every
    size follows the panel's UI scale (``panel.k``)."""

    def __init__(self, panel):
        super().__init__(panel)
        self.panel = panel
        self.banner_fits: list = []
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)

    def _top_h(self) -> int:
        pnl = self.panel
        return round((8 + 36 * (len(pnl.chain_wide_changes()) + (1 if pnl.errors else 0))) * pnl.k)

    def legend_entries(self) -> list[tuple[str, str]]:
        """The legend as (text, colour): statuses with their glyphs, store states, count."""
        pnl, tr = self.panel, self.panel.ctx.tr
        out = [(f"{STATUS_GLYPHS[s] or '●'} {tr(s)}", STATUS_COLORS[s])
               for s in ("ok", "maint", "warn", "unknown", "crit", "down")]
        out += [(f"{glyph} {tr(s)}", STORE_STATUS_COLORS[s]) for s, glyph in (("planned", "◌"), ("opening", "◎"))]
        out.append((f"{pnl.store_count():,} {tr('stores')}", pnl.ctx.theme.text_dim))
        return out

    def legend_font_px(self, entries=None, font: QFont | None = None) -> int:
        """Legend font size: 20 px of a 1080-line wall, shrunk so every entry fits the
        panel width (not below 9 px)."""
        k = self.panel.k
        f = QFont(font or self.panel._font)
        full = max(1, round(20 * k))
        f.setPixelSize(full)
        fm = QFontMetrics(f)
        entries = self.legend_entries() if entries is None else entries
        need = sum(fm.horizontalAdvance(t) for t, _ in entries) + round(18 * k) * (len(entries) - 1)
        avail = max(1, self.width() - round(24 * k))
        return full if need <= avail else max(9, int(full * avail / need))

    def legend_rect(self) -> QRect:
        """The legend strip at the bottom (labels are kept out of it)."""
        h = self.panel.legend_h
        return QRect(0, self.height() - h, self.width(), h)

    def paintEvent(self, event):  # noqa: N802 (Qt)
        pnl = self.panel
        k = pnl.k
        rect = event.rect()
        legend = self.legend_rect()
        top = QRect(0, 0, self.width(), self._top_h())
        if not pnl.dimmed and not rect.intersects(legend) and not rect.intersects(top):
            return  # a marker or cluster repaint below: nothing of ours there
        p = QPainter(self)
        theme, tr = pnl.ctx.theme, pnl.ctx.tr
        f = QFont(pnl._font)  # the panel's UI font (a CJK one when installed)
        f.setPixelSize(max(1, round(20 * k)))
        p.setFont(f)
        x, y = round(12 * k), legend.top() + round((LEGEND_H - 14) * k)
        if rect.intersects(legend):
            entries = self.legend_entries()
            lf = QFont(f)
            lf.setPixelSize(self.legend_font_px(entries, f))
            lfm = QFontMetrics(lf)
            p.setFont(lf)
            gap = round(18 * k * lf.pixelSize() / f.pixelSize())
            for t, color in entries:
                p.setPen(QColor(color))
                p.drawText(x, y, t)
                x += lfm.horizontalAdvance(t) + gap
            p.setFont(f)
        line, yb = round(36 * k), round(32 * k)
        self.banner_fits = []   # how each banner was drawn (for tests)
        for title, status in pnl.chain_wide_changes():
            # the banner shrinks (to 70 %) before its title is cut
            fit = fit_text(f"⬚ {tr('Chain-wide change')} ({tr(status)}): {title}",
                           max(1, self.width() - round(32 * k)), round(32 * k), f,
                           floor_px=max(9, round(20 * k * 0.7)), max_lines=1)
            p.fillRect(round(8 * k), yb - round(24 * k), round(fit.width) + round(16 * k),
                       round(32 * k), QColor(theme.panel))
            p.setPen(QColor(CHANGE_STATUS_COLORS.get(status, theme.accent)))
            p.setFont(fit.font)
            p.drawText(round(16 * k), yb, fit.lines[0])
            self.banner_fits.append(fit)
            p.setFont(f)
            yb += line
        if pnl.errors:
            p.setPen(QColor(STATUS_COLORS["warn"]))
            p.drawText(round(12 * k), yb, f"! {len(pnl.errors)} {tr('basemap problems')}: {pnl.errors[0][:120]}")
        if pnl.dimmed:
            p.fillRect(self.rect(), QColor(0, 0, 0, 140))
            f.setPixelSize(max(18, min(round(64 * k), self.height() // 8)))
            p.setFont(f)
            p.setPen(QColor(theme.stale))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, tr("STALE"))
        p.end()


__all__ = ["ClusterItem", "StoreLabelItem", "BasemapView", "MapOverlay", "merge_discs",
           "place_labels", "disc_radius", "rings_path", "load_layers", "rect_at", "LEGEND_H"]
