"""Axes and a cheap grid for the pyqtgraph plots of the wall (KPI chart, change timeline,
voice chart).

``style_axes`` gives the bottom and left axes the wall's tick font and colours and sizes
them from that font: pyqtgraph drops every tick label that does not fit its axis, so an
axis sized in fixed pixels loses its labels once the UI scale grows the font (a 4K wall).

pyqtgraph's own grid (``PlotItem.showGrid``) is drawn by the axes into a ``QPicture`` that
is replayed on every paint; at 4K on the software rasteriser one replay of a full-height
y grid costs 12-15 ms, and the plots repaint every second as their time axis slides
(a KPI chart paint went from ~30 ms to ~5 ms with this item; see ``docs/performance.md``).

``PlotGrid`` draws the same lines -- at the axes' own tick values, so the grid always
lines up with the labels -- as one ``drawLines`` call with a cosmetic, non-antialiased
pen, inside the view box, behind the data. Add it once after the axes are set up::

    PlotGrid(plot_item, x=True, y=False, color=theme.grid, alpha=0.25)
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QLineF, QRectF
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen

#: Tick levels drawn: major and minor (pyqtgraph's third, finest level is left out: at
#: wall distance it is texture, not information).
LEVELS = 2


def style_axes(plot_item: pg.PlotItem, font: QFont, *, text: str, grid: str,
               left_sample: str = "00000", left_width: float | None = None) -> None:
    """Tick ``font`` and colours on the bottom and left axes, each sized to fit its labels:
    the bottom one a line of ``font`` high, the left one ``left_sample`` wide (or
    ``left_width`` pixels, already scaled, when its labels are names)."""
    fm = QFontMetricsF(font)
    for name in ("bottom", "left"):
        ax = plot_item.getAxis(name)
        ax.setTickFont(font)
        ax.setPen(pg.mkPen(grid))
        ax.setTextPen(pg.mkPen(text))
    pad = fm.height() * 0.45  # tick marks and the gap pyqtgraph leaves around the text
    plot_item.getAxis("bottom").setHeight(int(fm.height() + pad + 0.5))
    width = left_width if left_width is not None else fm.horizontalAdvance(left_sample) + pad
    plot_item.getAxis("left").setWidth(int(width + 0.5))


def _ticks(axis: pg.AxisItem, lo: float, hi: float) -> list[list[float]]:
    """The tick values per level that ``axis`` shows for ``lo..hi`` (what it labels).

    A ``DateAxisItem`` picks its zoom level from font metrics it only has once it has
    painted: until then there is no grid along it (the next paint has one)."""
    if isinstance(axis, pg.DateAxisItem) and not hasattr(axis, "fontMetrics"):
        return []
    horizontal = axis.orientation in ("top", "bottom")
    length = axis.width() if horizontal else axis.height()
    if length < 1 or not hi > lo:
        return []
    return [list(values) for _, values in axis.tickValues(lo, hi, length)[:LEVELS]]


class PlotGrid(pg.GraphicsObject):
    """Grid lines of ``plot_item`` at its bottom (``x``) and left (``y``) axis ticks."""

    def __init__(self, plot_item: pg.PlotItem, *, x: bool = True, y: bool = True,
                 color: str | QColor = "#8a94a6", alpha: float = 0.2) -> None:
        super().__init__()
        self.plot_item = plot_item
        self.x, self.y = x, y
        major, minor = QColor(color), QColor(color)
        major.setAlphaF(min(1.0, alpha * 1.6))
        minor.setAlphaF(alpha * 0.6)
        self.pens = [QPen(major), QPen(minor)]
        for pen in self.pens:
            pen.setCosmetic(True)
            pen.setWidth(1)
        self.setZValue(-50)  # behind the data and the bands' edges, above the background
        vb = plot_item.getViewBox()
        vb.addItem(self, ignoreBounds=True)
        vb.sigRangeChanged.connect(self._range_changed)

    def _range_changed(self, *_args) -> None:
        self.prepareGeometryChange()
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return self.plot_item.getViewBox().viewRect()

    def lines(self) -> list[list[QLineF]]:
        """The grid lines per tick level (major first), in data coordinates."""
        r = self.plot_item.getViewBox().viewRect()
        out: list[list[QLineF]] = [[] for _ in range(LEVELS)]
        if not (r.width() > 0 and r.height() > 0):  # also false for NaN
            return out
        if self.x:
            for level, values in enumerate(_ticks(self.plot_item.getAxis("bottom"), r.left(), r.right())):
                out[level] += [QLineF(v, r.top(), v, r.bottom()) for v in values]
        if self.y:
            for level, values in enumerate(_ticks(self.plot_item.getAxis("left"), r.top(), r.bottom())):
                out[level] += [QLineF(r.left(), v, r.right(), v) for v in values]
        return out

    def paint(self, painter: QPainter, *_args) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for pen, lines in zip(self.pens, self.lines()):
            if lines:
                painter.setPen(pen)
                painter.drawLines(lines)


__all__ = ["PlotGrid"]
