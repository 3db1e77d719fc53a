"""Change timeline: every change as a bar in a swimlane, incidents on the same time axis.

Answers the command center's three questions about changes: do we know every change, did
they all go through the gate (unapproved changes and changes inside a declared freeze
window are hatched, outlined red and carry an icon), and which one broke this (selecting
an incident, by click or automatically when a new P1/P2 opens, highlights the suspect
changes from ``state.suspects`` and draws a link from the incident to each of them).

Build it as ``ChangeTimelinePanel(state, options, ctx)`` and call ``refresh(dirty, now)``
once per frame: it rebuilds its bars only when ``dirty`` names changes or incidents, and
otherwise once per second so running bars grow and the now-line follows the clock.
``select_incident(id)`` selects from outside (the shell wires the incident board's
``incident_selected`` to it). Pan/zoom with the mouse stops following the clock;
double-click (or two idle minutes) returns to live.

Options: ``lanes`` ("system" | "city", default "system"), ``window_min`` (120),
``freeze`` (list of ``{start, end, label}`` with epoch-second floats). Until the history
fills ``window_min``, the view fits the span of the changes and incidents it has (at least
5 min), so a fresh wall's bars and labels are readable; a label that would run past the
plot's right edge is drawn right-aligned to it. The header's state word is the
feed's (LIVE, STALE, RECONNECTING...), or PAUSED after a manual pan/zoom.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from wallboard.layout.specs.change_timeline import SPEC
from wallboard.scope import Scope
from wallboard.widgets._plot_style import PlotGrid, style_axes
from wallboard.widgets.base import (
    CHANGE_STATUS_COLORS,
    FAILED_CHANGE,
    FEED_COLORS,
    SEVERITY_COLORS,
    PanelContext,
    register_translations,
    ui_font,
    ui_scale,
)

register_translations(
    {
        "Changes": "变更",
        "Incidents": "事件",
        "chain-wide": "全渠道",
        "running": "进行中",
        "succeeded": "成功",
        "failed": "失败",
        "rolled_back": "已回滚",
        "unapproved": "未审批",
        "in freeze": "冻结期内",
        "suspects": "可疑变更",
        "no suspect change": "无可疑变更",
        "LIVE": "实时",
        "PAUSED (double-click for live)": "已暂停(双击恢复实时)",
        "last": "最近",
        "min": "分钟",
        "no system": "未知系统",
        "+{n} more lanes": "其余 {n} 条泳道",
        "{n} lanes": "{n} 条泳道",
    }
)

LANE_MODES = ("system", "city")
UNAPPROVED_ICON = "\u26a0"  # ⚠
FREEZE_ICON = "\u2744"  # ❄
FLAG_RED = "#ff2d55"
HIGHLIGHT = "#ffd166"
MIN_BAR_S = 300.0  # planned/finished changes without an end still get five minutes
MAX_SUBROWS = 4
RESUME_LIVE_S = 120.0
#: While the history is shorter than ``window_min``, the view fits the data's span, never
#: narrower than this (a fresh demo's first minutes are not a sliver at the right edge).
MIN_FIT_S = 300.0
INCIDENT_LANE = -1.0
MAX_SUSPECTS = 5  # highlighted and linked; a wall cannot show more and stay readable




def _parse_freeze(raw: list, where: str, lang: str = "en") -> list[tuple[float, float, str]]:
    """``[{start, end, label}]`` -> ``[(start, end, label)]``; ValueError naming the item."""
    out = []
    for i, item in enumerate(raw):
        path = f"{where}: option 'freeze[{i}]'"
        if not isinstance(item, dict):
            raise ValueError(f"{path} must be a table {{start, end, label}}, got {type(item).__name__}")
        unknown = set(item) - {"start", "end", "label", "label_zh"}
        if unknown:
            raise ValueError(f"{path}: unknown key {sorted(unknown)[0]!r}; expected start, end, label, label_zh")
        for key in ("start", "end"):
            v = item.get(key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{path}.{key} must be epoch seconds (number), got {v!r}")
        for key in ("label", "label_zh"):
            if not isinstance(item.get(key, ""), str):
                raise ValueError(f"{path}.{key} must be str, got {type(item[key]).__name__}")
        label = item.get("label", "")
        if lang == "zh" and item.get("label_zh"):
            label = item["label_zh"]
        if item["end"] <= item["start"]:
            raise ValueError(f"{path}: end must be after start")
        out.append((float(item["start"]), float(item["end"]), label))
    return out


@dataclass
class Bar:
    """One change as drawn: time span, lane position and why it is flagged."""

    change_id: str
    title: str
    status: str
    x0: float
    x1: float
    lane: int
    sub: int = 0
    subs: int = 1
    flags: set[str] = field(default_factory=set)
    open_end: bool = False  # running: grows with the clock

    def y_span(self) -> tuple[float, float]:
        h = 0.78 / self.subs
        top = self.lane - 0.39 + self.sub * h
        return top + 0.06 * h, top + h * 0.94


@dataclass
class Marker:
    incident_id: str
    severity: str
    title: str
    x0: float
    x1: float
    resolved: bool


class _BarsItem(pg.GraphicsObject):
    """All change bars, incident markers and suspect links in one item (pixel-space paint).

    Created once; ``set_content`` swaps the data and schedules a repaint. Painting happens
    in device pixels so hatches, outlines and icons stay crisp at any zoom.
    """

    def __init__(self) -> None:
        super().__init__()
        self.bars: list[Bar] = []
        self.markers: list[Marker] = []
        self.lanes = 1
        self.selected: str | None = None
        self.suspects: list[str] = []
        self.font = ui_font(13, bold=True)
        self.badge_font = ui_font(12, bold=True)
        self._bounds = QRectF(0, -1.6, 1, 2)
        self._right_px = float("inf")

    def set_content(self, bars, markers, lanes, selected, suspects, t0, t1) -> None:
        self.prepareGeometryChange()
        self.bars, self.markers, self.lanes = bars, markers, max(1, lanes)
        self.selected, self.suspects = selected, suspects
        self._bounds = QRectF(t0, -1.6, max(1.0, t1 - t0), self.lanes + 1.2)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        return self._bounds

    def paint(self, p: QPainter, *args) -> None:
        tr = p.transform()
        p.resetTransform()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        bars_by_id = {b.change_id: b for b in self.bars}
        dim_others = self.selected is not None and bool(self.suspects)
        fm = QFontMetricsF(self.font)
        vb = self.getViewBox()
        self._right_px = tr.map(QPointF(vb.viewRect().right(), 0)).x() if vb is not None else float("inf")
        for bar in self.bars:
            ya, yb = bar.y_span()
            r = tr.mapRect(QRectF(QPointF(bar.x0, ya), QPointF(bar.x1, yb))).normalized()
            if r.width() < 4:
                r.setWidth(4)
            self._paint_bar(p, bar, r, fm, dim_others and bar.change_id not in self.suspects)
        # incident markers: a line through all lanes at opened_at, a span on the top lane
        top = tr.map(QPointF(0, INCIDENT_LANE - 0.4)).y()
        bottom = tr.map(QPointF(0, self.lanes - 0.5)).y()
        for m in self.markers:
            color = QColor(SEVERITY_COLORS.get(m.severity, "#888888"))
            x = tr.map(QPointF(m.x0, 0)).x()
            x_end = tr.map(QPointF(m.x1, 0)).x()
            sel = m.incident_id == self.selected
            line = QPen(color, 3 if sel else 1.5, Qt.PenStyle.SolidLine if sel else Qt.PenStyle.DashLine)
            p.setPen(line)
            p.drawLine(QPointF(x, top), QPointF(x, bottom))
            span = QRectF(x, top + 4, max(3.0, x_end - x), (bottom - top) * 0 + 10)
            fill = QColor(color)
            fill.setAlpha(90 if m.resolved else 200)
            p.fillRect(span, fill)
            badge = QRectF(x - 18, top + 16, 36, 22)
            p.setPen(QPen(QColor(HIGHLIGHT) if sel else color.darker(150), 3 if sel else 1))
            p.setBrush(color)
            p.drawRoundedRect(badge, 4, 4)
            p.setFont(self.badge_font)
            p.setPen(QColor("#ffffff"))
            p.drawText(badge, Qt.AlignmentFlag.AlignCenter, m.severity)
        # links from the selected incident to its suspects, ranked
        sel_marker = next((m for m in self.markers if m.incident_id == self.selected), None)
        if sel_marker is not None:
            origin = tr.map(QPointF(sel_marker.x0, INCIDENT_LANE))
            origin = QPointF(origin.x(), top + 38)
            for rank, cid in enumerate(self.suspects):
                bar = bars_by_id.get(cid)
                if bar is None:
                    continue
                ya, yb = bar.y_span()
                r = tr.mapRect(QRectF(QPointF(bar.x0, ya), QPointF(bar.x1, yb))).normalized()
                target = QPointF(r.left() - 16, r.center().y())
                path = QPainterPath(origin)
                path.cubicTo(QPointF(origin.x(), target.y()), QPointF(target.x() - 40, target.y()), target)
                pen = QPen(QColor(HIGHLIGHT), 3 if rank == 0 else 2)
                if rank > 0:
                    pen.setStyle(Qt.PenStyle.DashLine)
                p.setPen(pen)
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawPath(path)
                tag = QRectF(target.x() - 12, target.y() - 12, 24, 24)
                p.setBrush(QColor(HIGHLIGHT))
                p.setPen(Qt.PenStyle.NoPen)
                p.drawEllipse(tag)
                p.setPen(QColor("#000000"))
                p.setFont(self.badge_font)
                p.drawText(tag, Qt.AlignmentFlag.AlignCenter, str(rank + 1))

    def _paint_bar(self, p: QPainter, bar: Bar, r: QRectF, fm: QFontMetricsF, faded: bool) -> None:
        color = QColor(CHANGE_STATUS_COLORS.get(bar.status, "#7a7f87"))
        if faded:
            color.setAlpha(110)
        flagged = bool(bar.flags & {"unapproved", "freeze"})
        if bar.status == "planned":
            p.setBrush(QColor(color.red(), color.green(), color.blue(), 60))
            p.setPen(QPen(color, 2, Qt.PenStyle.DashLine))
        else:
            p.setBrush(color)
            p.setPen(Qt.PenStyle.NoPen)
        p.drawRoundedRect(r, 3, 3)
        if bar.status == "rolled_back":
            p.fillRect(r, QBrush(QColor(255, 255, 255, 70), Qt.BrushStyle.Dense6Pattern))
        if bar.open_end:  # running: a bright leading edge at "now"
            p.fillRect(QRectF(r.right() - 4, r.top(), 4, r.height()), QColor("#ffffff"))
        if flagged:
            p.fillRect(r, QBrush(QColor(255, 45, 85, 150 if not faded else 60), Qt.BrushStyle.BDiagPattern))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(QPen(QColor(FLAG_RED), 3))
            p.drawRoundedRect(r, 3, 3)
        if bar.change_id in self.suspects:
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(QPen(QColor(HIGHLIGHT), 4))
            p.drawRoundedRect(r.adjusted(-3, -3, 3, 3), 4, 4)
        icons = ("".join([UNAPPROVED_ICON if "unapproved" in bar.flags else "",
                          FREEZE_ICON if "freeze" in bar.flags else ""]))
        text = f"{icons} {bar.title}".strip() if icons else bar.title
        font = label_font(self.font, fm, r.height())
        if font is not None:
            fm = QFontMetricsF(font)
            p.setFont(font)
            p.setPen(QColor("#ffffff") if not faded else QColor(255, 255, 255, 110))
            # label starts at the visible part of the bar and may run past a short bar
            text_rect = label_rect(r, self._right_px, max(260.0, fm.horizontalAdvance(text) + 8))
            p.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                       fm.elidedText(text, Qt.TextElideMode.ElideRight, text_rect.width()))


#: A bar label shrinks with a thin bar down to this fraction of its size, then is left out.
LABEL_FLOOR = 0.6


def label_font(font: QFont, fm: QFontMetricsF, bar_h: float) -> QFont | None:
    """The bar label's font for a bar ``bar_h`` px high: the panel's font while it fits,
    smaller (down to LABEL_FLOOR of it) on thin bars, None when even that does not fit."""
    need = fm.height() * 0.9
    if bar_h >= need:
        return font
    scale = bar_h / need
    if scale < LABEL_FLOOR:
        return None
    small = QFont(font)
    small.setPointSizeF(max(1.0, font.pointSizeF() * scale))
    return small


def label_rect(bar: QRectF, right_px: float, min_w: float = 260.0) -> QRectF:
    """Where a bar's label goes (device pixels): from the visible part of the bar, at
    least ``min_w`` wide (the label's own width: it may run past a short bar), shifted left
    so it ends inside the plot (``right_px``) when the bar is near "now"."""
    rect = QRectF(max(bar.left(), 0) + 6, bar.top(), max(bar.width() - 10, min_w), bar.height())
    overflow = rect.right() - (right_px - 4)
    if overflow > 0:
        rect.translate(-min(overflow, max(0.0, rect.left())), 0)
    return rect


class ChangeTimelinePanel(QWidget):
    """Swimlanes of changes against incidents; see the module docstring."""

    incident_selected = Signal(str)

    def __init__(self, state, options: dict, ctx: PanelContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        given = dict(options) if isinstance(options, dict) else options
        freeze = given.pop("freeze", []) if isinstance(given, dict) else []   # from the shell
        if not isinstance(freeze, list):
            raise ValueError(f"change_timeline: option 'freeze' must be a list, got {type(freeze).__name__}")
        opts = SPEC.options_or_raise(given)
        self.state, self.ctx = state, ctx
        self.lane_mode: str = opts["lanes"]
        self.window_s = float(opts["window_min"]) * 60.0
        self.freeze = _parse_freeze(freeze, "change_timeline", ctx.lang)
        self._dimmed = False
        self._last_sec: int | None = None
        self._following = True
        self._manual_at = 0.0
        self._now = ctx.clock()
        self.selected_incident: str | None = None
        self.suspect_ids: list[str] = []
        self._suspect_info: list[tuple[str, float, Any]] = []
        self._known_incidents: set[str] = set(state.incidents)
        self.bars: dict[str, Bar] = {}
        self.markers: dict[str, Marker] = {}
        self.lane_names: list[str] = []
        self.frames_rebuilt = 0
        #: The span the view shows while following the clock (seconds; see MIN_FIT_S).
        self.view_s = self.window_s
        self._feed_word = ""

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(2)
        self.header = QLabel(self)
        self.header.setFont(ui_font(18, bold=True))
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.info = QLabel(self)
        self.info.setFont(ui_font(15))
        self.info.setTextFormat(Qt.TextFormat.RichText)
        theme = ctx.theme
        for lab in (self.header, self.info):
            lab.setStyleSheet(f"color: {theme.text}; background: transparent;")
        self.plot = pg.PlotWidget(parent=self, background=theme.panel,
                                  axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        layout.addWidget(self.header)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.info)
        pi = self.plot.getPlotItem()
        pi.hideButtons()
        pi.setMenuEnabled(False)
        self.vb = pi.getViewBox()
        self.vb.invertY(True)
        self.vb.setMouseEnabled(x=True, y=False)
        self.vb.enableAutoRange(enable=False)
        self._axis_font = ui_font(13)
        self._others = ""   # the shared lane's name when not every lane fits ("+3 more")
        style_axes(pi, self._axis_font, text=theme.text, grid=theme.grid, left_width=150 * ui_scale())
        self.grid = PlotGrid(pi, x=True, y=False, color=theme.grid, alpha=0.25)
        # static freeze windows: created once
        self.freeze_items = []
        for start, end, label in self.freeze:
            reg = pg.LinearRegionItem((start, end), movable=False,
                                      brush=pg.mkBrush(215, 38, 61, 40), pen=pg.mkPen(215, 38, 61, 160))
            reg.setZValue(-10)
            pi.addItem(reg, ignoreBounds=True)
            txt = pg.TextItem(f"{FREEZE_ICON} {label}", color="#ff8fa3", anchor=(0, 1))
            txt.setFont(ui_font(12, bold=True))
            txt.setPos(start, 0.5)
            pi.addItem(txt, ignoreBounds=True)
            self.freeze_items.append((reg, txt))
        self.items = _BarsItem()
        pi.addItem(self.items)
        self.now_line = pg.InfiniteLine(pos=self._now, angle=90, movable=False,
                                        pen=pg.mkPen(theme.accent, width=2))
        pi.addItem(self.now_line, ignoreBounds=True)
        self.vb.sigRangeChangedManually.connect(self._on_manual_range)
        self.plot.scene().sigMouseClicked.connect(self._on_click)
        self._veil = QWidget(self)
        self._veil.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._veil.setStyleSheet("background: rgba(0,0,0,140);")
        self._veil.hide()
        self.setAutoFillBackground(True)
        pal = self.palette()
        pal.setColor(self.backgroundRole(), QColor(theme.panel))
        self.setPalette(pal)
        # a severe incident already open at start is selected, like a new one would be
        severe = [i for i in state.open_incidents() if i.get("severity") in ("P1", "P2")]
        if severe:
            newest = max(severe, key=lambda i: i.get("opened_at") or i.get("ts") or 0.0)
            self._select(newest["id"], emit=False)
        self._rebuild(self._now)

    # ------------------------------------------------------------------ public API
    def refresh(self, dirty, now: float) -> None:
        """Per frame: rebuild when changes/incidents are dirty, else once per second."""
        data = bool(dirty.all or dirty.changes or dirty.incidents
                    or (self.lane_mode == "city" and dirty.stores))
        if dirty.all or dirty.incidents:
            self._auto_select(dirty, now)
        sec = int(now)
        if not self._following and now - self._manual_at > RESUME_LIVE_S:
            self._following = True
        if data or sec != self._last_sec:
            self._last_sec = sec
            self._rebuild(now)
        elif self.ctx.feed_state() != self._feed_word:  # the state word changes at once
            self._update_texts(list(self.bars.values()))

    def set_dimmed(self, dimmed: bool) -> None:
        """Veil the panel while the feed is STALE."""
        self._dimmed = bool(dimmed)
        self._veil.setGeometry(self.rect())
        self._veil.setVisible(self._dimmed)
        self._veil.raise_()

    def select_incident(self, incident_id: str | None) -> None:
        """Select an incident (or None): highlight its suspects and draw the links."""
        self._select(incident_id, emit=False)
        self._rebuild(self._now)

    def go_live(self) -> None:
        """Follow the clock again after a manual pan/zoom."""
        self._following = True
        self._rebuild(self._now)

    def flags(self, change_id: str) -> set[str]:
        """Why a change is flagged (``unapproved``, ``freeze``); empty when not drawn/flagged."""
        bar = self.bars.get(change_id)
        return set(bar.flags) if bar else set()

    # ------------------------------------------------------------------ internals
    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._veil.setGeometry(self.rect())

    def _select(self, incident_id: str | None, emit: bool) -> None:
        self.selected_incident = incident_id
        self._suspect_info = list(self.state.suspects(incident_id)) if incident_id else []
        self.suspect_ids = [s[0] for s in self._suspect_info[:MAX_SUSPECTS]]
        if emit and incident_id:
            self.incident_selected.emit(incident_id)

    def _auto_select(self, dirty, now: float) -> None:
        ids = list(self.state.incidents) if dirty.all else list(dirty.incidents)
        newest = None
        for iid in ids:
            inc = self.state.incidents.get(iid)
            if iid in self._known_incidents or inc is None:
                continue
            self._known_incidents.add(iid)
            if inc.get("severity") in ("P1", "P2") and inc.get("status") != "resolved":
                if newest is None or (inc.get("opened_at") or 0) >= (newest.get("opened_at") or 0):
                    newest = inc
        if newest is not None:
            self._select(newest["id"], emit=True)
        elif self.selected_incident:
            # suspects change as changes and incidents arrive
            self._select(self.selected_incident, emit=False)

    def _on_manual_range(self, *args) -> None:
        self._following = False
        self._manual_at = self._now

    def _on_click(self, ev) -> None:
        if ev.double():
            self.go_live()
            return
        pos = ev.scenePos()
        if not self.vb.sceneBoundingRect().contains(pos):
            return
        best, best_d = None, 14.0
        for m in self.markers.values():
            x = self.vb.mapViewToScene(QPointF(m.x0, 0)).x()
            d = abs(x - pos.x())
            if d < best_d:
                best, best_d = m.incident_id, d
        if best is not None:
            self._select(best, emit=True)
            self._rebuild(self._now)

    def _store_city(self, store_id: str) -> str | None:
        return ((self.state.stores.get(store_id) or {}).get("city") or {}).get("id")

    def _change_in_scope(self, ch: dict) -> bool:
        """The change's scope reaches the panel's (chain-wide changes reach every scope)."""
        return self.ctx.region.reaches(Scope.of(ch.get("scope")), self._store_city)

    def _lane_key(self, ch: dict) -> str:
        if self.lane_mode == "system":
            return ch.get("system") or self.ctx.tr("no system")
        sc = ch.get("scope") or {}
        cities = list(sc.get("cities") or [])
        for s in sc.get("stores") or []:
            city = (self.state.stores.get(s) or {}).get("city") or {}
            if city.get("id") and city["id"] not in cities:
                cities.append(city["id"])
        if not cities:
            return self.ctx.tr("chain-wide")
        return self._city_name(cities[0]) + (f" +{len(cities) - 1}" if len(cities) > 1 else "")

    def lanes_that_fit(self) -> int:
        """Change lanes the plot can label one above the other (the incident lane on top
        takes one row); no limit before the plot has a height."""
        h = self.vb.boundingRect().height()
        if h <= 0 or not self.isVisible():
            return 1_000
        row = QFontMetricsF(self._axis_font).height() * 1.15
        return max(1, int(h / row) - 1)

    def _fit_lanes(self, keys: dict[str, str]) -> dict[str, str]:
        """``keys`` (change id -> lane) with at most :meth:`lanes_that_fit` lanes: the
        busiest keep their own, the others share the last one, named "+N more lanes" (a wall
        read from 5 m must never show labels on top of each other)."""
        names = set(keys.values())
        fit = self.lanes_that_fit()
        self._others = ""
        if len(names) <= fit:
            return keys
        count = Counter(keys.values())
        keep = set(sorted(names, key=lambda n: (-count[n], n))[:fit - 1])
        label = "+{n} more lanes" if keep else "{n} lanes"
        self._others = self.ctx.tr(label).format(n=len(names) - len(keep))
        return {cid: (k if k in keep else self._others) for cid, k in keys.items()}

    def _city_name(self, city_id: str) -> str:
        city = self.state.cities().get(city_id)    # the state's city table, not every store
        if city is None:
            return city_id
        if self.ctx.lang != "zh" and city.get("name_en"):
            return city["name_en"]
        return city.get("name") or city_id

    def _rebuild(self, now: float) -> None:
        self._now = now
        self.frames_rebuilt += 1
        t0, t1 = now - self.window_s, now + self.window_s * 0.25
        if not self._following:
            (vx0, vx1), _ = self.vb.viewRange()
            t0, t1 = min(t0, vx0), max(t1, vx1)
        changes = [c for c in self.state.changes_in_window(t0, t1) if self._change_in_scope(c)]
        bars: list[Bar] = []
        keys: dict[str, str] = {}
        for ch in changes:
            start = ch.get("start")
            if start is None:
                continue
            status = ch.get("status") or "planned"
            end = ch.get("end")
            open_end = status == "running"
            if open_end:
                x1 = max(now, start)
            else:
                x1 = end if end is not None else start + MIN_BAR_S
            flags = set()
            if ch.get("approved") is not True:
                flags.add("unapproved")
            if any(fs < x1 and fe > start for fs, fe, _ in self.freeze):
                flags.add("freeze")
            bars.append(Bar(ch["id"], ch.get("title") or ch["id"], status, start, max(x1, start),
                            0, flags=flags, open_end=open_end))
            keys[ch["id"]] = self._lane_key(ch)
        # lanes: stable alphabetical order (as many as the plot's height can label; the
        # rest share the last lane), then pack overlapping bars into sub-rows
        keys = self._fit_lanes(keys)
        self.lane_names = sorted(set(keys.values()) - {self._others}) + (
            [self._others] if self._others in keys.values() else [])
        index = {name: i for i, name in enumerate(self.lane_names)}
        per_lane: dict[int, list[Bar]] = {}
        for b in bars:
            b.lane = index[keys[b.change_id]]
            per_lane.setdefault(b.lane, []).append(b)
        for lane_bars in per_lane.values():
            lane_bars.sort(key=lambda b: b.x0)
            ends: list[float] = []
            for b in lane_bars:
                for k, e in enumerate(ends):
                    if e <= b.x0:
                        b.sub, ends[k] = k, b.x1
                        break
                else:
                    if len(ends) < MAX_SUBROWS:
                        ends.append(b.x1)
                        b.sub = len(ends) - 1
                    else:
                        b.sub = len(ends) - 1
            for b in lane_bars:
                b.subs = len(ends)
        self.bars = {b.change_id: b for b in bars}
        markers = []
        for inc in self.state.incidents.values():
            opened = inc.get("opened_at") or inc.get("ts")
            if opened is None:
                continue
            resolved = inc.get("status") == "resolved"
            x1 = (inc.get("resolved_at") or opened) if resolved else now
            if x1 < t0 or opened > t1:
                continue
            markers.append(Marker(inc["id"], inc.get("severity") or "P4", inc.get("title") or inc["id"],
                                  opened, max(x1, opened), resolved))
        self.markers = {m.incident_id: m for m in markers}
        lanes = max(1, len(self.lane_names))
        self.view_s = self._fit_span(now, bars, markers)
        self.items.set_content(bars, markers, lanes, self.selected_incident, self.suspect_ids, t0, t1)
        ticks = [(INCIDENT_LANE, self.ctx.tr("Incidents"))] + [(i, n) for i, n in enumerate(self.lane_names)]
        self.plot.getPlotItem().getAxis("left").setTicks([ticks, []])
        self.vb.setYRange(INCIDENT_LANE - 0.6, lanes - 0.5, padding=0)
        for _reg, txt in self.freeze_items:
            txt.setPos(txt.pos().x(), lanes - 0.5)
        self.now_line.setPos(now)
        if self._following:
            self.vb.setXRange(now - self.view_s * 0.85, now + self.view_s * 0.15, padding=0)
        self._update_texts(bars)

    def _fit_span(self, now: float, bars: list[Bar], markers: list[Marker]) -> float:
        """The window while the history is young: the data's span (+15 % room), at least
        MIN_FIT_S, at most the configured window."""
        starts = [b.x0 for b in bars if b.x0 <= now] + [m.x0 for m in markers]
        if not starts:
            return min(self.window_s, MIN_FIT_S)
        span = (now - min(starts)) / 0.85 * 1.1
        return max(min(self.window_s, MIN_FIT_S), min(self.window_s, span))

    def _update_texts(self, bars: list[Bar]) -> None:
        tr = self.ctx.tr
        running = sum(1 for b in bars if b.status == "running")
        failed = sum(1 for b in bars if b.status in FAILED_CHANGE)
        unapproved = sum(1 for b in bars if "unapproved" in b.flags)
        frozen = sum(1 for b in bars if "freeze" in b.flags)
        self._feed_word = feed = self.ctx.feed_state()
        if self._following:
            live = f"<span style='color:{FEED_COLORS.get(feed, '#7a7f87')}'>{tr(feed)}</span>"
        else:
            live = tr("PAUSED (double-click for live)")
        minutes = int(round(self.view_s / 60)) if self._following else int(self.window_s // 60)
        parts = [f"<b>{tr('Changes')}</b> \u00b7 {tr('last')} {minutes} {tr('min')} \u00b7 {live}",
                 f"<span style='color:{CHANGE_STATUS_COLORS['running']}'>\u25b6 {running} {tr('running')}</span>"]
        if failed:
            parts.append(f"<span style='color:{CHANGE_STATUS_COLORS['failed']}'>\u2716 {failed} {tr('failed')}</span>")
        if unapproved:
            parts.append(f"<span style='color:{FLAG_RED}'>{UNAPPROVED_ICON} {unapproved} {tr('unapproved')}</span>")
        if frozen:
            parts.append(f"<span style='color:{FLAG_RED}'>{FREEZE_ICON} {frozen} {tr('in freeze')}</span>")
        header = " &nbsp; ".join(parts)
        if header != self.header.text():
            self.header.setText(header)
        info = ""
        inc = self.state.incidents.get(self.selected_incident) if self.selected_incident else None
        if inc is not None:
            sev = inc.get("severity") or "P4"
            color = SEVERITY_COLORS.get(sev, "#888")
            head = f"<span style='color:{color}'><b>{sev}</b></span> {_esc(inc.get('title') or inc['id'])}"
            names = []
            for rank, (cid, score, _reasons) in enumerate(self._suspect_info[:3]):
                ch = self.state.changes.get(cid) or {}
                names.append(f"<span style='color:{HIGHLIGHT}'>{rank + 1}.</span> {_esc(ch.get('title') or cid)}")
            tail = " &nbsp; ".join(names) if names else tr("no suspect change")
            info = f"{head} &nbsp;\u2192&nbsp; {tr('suspects')}: {tail}"
        if info != self.info.text():
            self.info.setText(info)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["ChangeTimelinePanel", "Bar", "Marker", "LANE_MODES"]
