"""The plots' shared axes sizing and cheap grid (widgets/_plot_style.py)."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QFontMetricsF

from wallboard.widgets._plot_style import PlotGrid, style_axes
from wallboard.widgets.base import set_ui_scale, ui_font

NOW = 1_760_000_000.0


def make_plot(qtbot, date_axis: bool = False) -> pg.PlotWidget:
    axis = {"bottom": pg.DateAxisItem(orientation="bottom")} if date_axis else {}
    w = pg.PlotWidget(axisItems=axis)
    qtbot.addWidget(w)
    w.resize(900, 400)
    return w


def test_grid_lines_sit_on_the_axis_ticks(qtbot):
    w = make_plot(qtbot)
    pi = w.getPlotItem()
    grid = PlotGrid(pi, x=True, y=True)
    pi.setXRange(0, 100, padding=0)
    pi.setYRange(0, 10, padding=0)
    w.grab()  # lay out and paint once
    major, minor = grid.lines()
    xs = sorted(round(line.x1(), 6) for line in major + minor if line.x1() == line.x2())
    ys = sorted(round(line.y1(), 6) for line in major + minor if line.y1() == line.y2())
    ax = pi.getAxis("bottom")
    expected = sorted(round(v, 6) for _, vals in ax.tickValues(0, 100, ax.width())[:2] for v in vals)
    assert xs == expected and 0 < len(xs) < 60
    assert ys and all(0 <= y <= 10 for y in ys)


def test_grid_only_on_the_asked_axis_and_never_without_a_range(qtbot):
    w = make_plot(qtbot)
    pi = w.getPlotItem()
    grid = PlotGrid(pi, x=False, y=True)
    pi.setYRange(0, 10, padding=0)
    w.grab()
    lines = [ln for level in grid.lines() for ln in level]
    assert lines and all(ln.y1() == ln.y2() for ln in lines)  # horizontal only
    pi.getViewBox().setRange(xRange=(5, 5), yRange=(1, 1), padding=0)
    assert all(isinstance(level, list) for level in grid.lines())


def test_date_axis_grid_waits_for_the_axis_first_paint(qtbot):
    w = make_plot(qtbot, date_axis=True)
    pi = w.getPlotItem()
    grid = PlotGrid(pi, x=True, y=False)
    pi.setXRange(NOW - 3600, NOW, padding=0)
    assert grid.lines() == [[], []]  # no font metrics yet: no guess
    w.grab()
    assert any(grid.lines()), "after a paint the grid follows the date ticks"


def test_style_axes_sizes_the_axes_from_the_font(qtbot):
    w = make_plot(qtbot)
    pi = w.getPlotItem()
    try:
        set_ui_scale(2.0)
        font = ui_font(13)
        style_axes(pi, font, text="#ffffff", grid="#444444", left_sample="-0000.0")
        fm = QFontMetricsF(font)
        assert pi.getAxis("bottom").maximumHeight() >= fm.height()
        assert pi.getAxis("left").maximumWidth() >= fm.horizontalAdvance("-0000.0")
        style_axes(pi, font, text="#ffffff", grid="#444444", left_width=300)
        assert pi.getAxis("left").maximumWidth() == 300
    finally:
        set_ui_scale(1.0)
