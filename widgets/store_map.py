"""Store map: every store at its coordinates on an offline basemap, coloured by health.

``StoreMapPanel(state, options, ctx)``; the shell calls ``refresh(dirty, now)`` once per
frame and ``set_dimmed(True)`` while the feed is stale; ``store_clicked(store_id)`` fires
when a store marker is clicked (a click on a city cluster zooms into that city).

Projection: equirectangular lon/lat in a pyqtgraph ``ViewBox`` whose aspect is locked to
``cos(latitude)`` of the scope's centre, so shapes look right at the latitude that
matters. Markers are one ``ScatterPlotItem``: a frame patches only the spots of
``dirty.stores`` (brush, pen, symbol) and re-looks-up just those in the symbol atlas, so
10,000 stores stay smooth. Worst device status sets the colour AND the shape (ok/maint
circle, warn diamond, unknown square, crit triangle, down cross); the store's own state
shows as a dashed hollow ring (planned), a slow blue pulse (opening) or a solid marker
(open). Zoomed out (the view wider than ``cluster_span_deg``) stores gather per city
into a donut of store counts by status; zoomed in each store gets its label.

Live effects, all driven by ``refresh(now)`` (no timer per store): a red pulse for
``pulse_s`` seconds on the stores of an incident that just opened; a square outline on
stores in the scope of a running (blue) or failed (red) change -- the blast radius; a
chain-wide change is named in a banner instead.

Options (validated, bad ones reported in ``errors`` and on the panel): ``provinces`` /
``countries`` (GeoJSON path replacing a shipped layer), ``basemap_extra`` (list of GeoJSON
paths drawn on top), ``show_countries`` / ``show_provinces`` (bool), ``cluster_span_deg``
(default 3.0), ``marker_px`` (18), ``pulse_s`` (10), ``label_max`` (stores labelled at
most, default 60). Keys: arrows pan, ``+``/``-`` zoom, ``Home`` fits the scope.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsObject, QGraphicsPathItem, QWidget

from widgets.base import (
    CHANGE_STATUS_COLORS, STATUS_COLORS, STATUS_GLYPHS, STATUS_ORDER, STATUS_RANK,
    STORE_STATUS_COLORS, PanelContext, register_translations, ui_font,
)
from widgets.basemap import BasemapError, MapLayer, load_basemap, load_geojson
from widgets.device_grid import validate_options

register_translations({
    "Chain-wide change": "全渠道变更",
    "basemap problems": "底图问题",
    "stores": "门店",
    "No stores in scope": "范围内无门店",
})

OPTION_SPEC = {
    "provinces": str, "countries": str, "basemap_extra": list,
    "show_countries": bool, "show_provinces": bool,
    "cluster_span_deg": (0.01, 360), "marker_px": (6, 64), "pulse_s": (0, 3600),
    "label_max": (0, 5000),
}
DEFAULTS = {"provinces": None, "countries": None, "basemap_extra": [],
            "show_countries": True, "show_provinces": True, "cluster_span_deg": 3.0,
            "marker_px": 18, "pulse_s": 10.0, "label_max": 60}
SYMBOLS = {"ok": "o", "maint": "o", "warn": "d", "unknown": "s", "crit": "t1", "down": "x"}
CHINA_BBOX = (73.5, 18.0, 135.1, 53.6)


def rings_path(layer: MapLayer) -> QPainterPath:
    """All rings of a layer as one painter path (lon, lat coordinates)."""
    path = QPainterPath()
    for f in layer.features:
        for ring in f.rings:
            path.moveTo(float(ring[0, 0]), float(ring[0, 1]))
            for x, y in ring[1:].tolist():
                path.lineTo(x, y)
            if len(ring) > 2 and np.allclose(ring[0], ring[-1]):
                path.closeSubpath()
    return path


class ClusterItem(QGraphicsObject):
    """A city cluster: donut of store counts by worst status, count, name and chips.
    Drawn in pixels (ignores the view's zoom)."""

    def __init__(self, city: str, ctx: PanelContext):
        super().__init__()
        self.city, self.ctx = city, ctx
        self.counts: dict[str, int] = {}
        self.name = city
        self.radius = 20.0
        self.setFlag(QGraphicsObject.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setZValue(20)

    def set_counts(self, name: str, counts: dict[str, int]) -> None:
        self.prepareGeometryChange()
        self.name, self.counts = name, counts
        n = sum(counts.values())
        self.radius = 14.0 + 4.5 * math.log2(1 + n)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt)
        r = self.radius
        return QRectF(-max(r, 140), -r - 4, 2 * max(r, 140), 2 * r + 70)

    def paint(self, p: QPainter, option, widget=None) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r, total = self.radius, max(1, sum(self.counts.values()))
        rect = QRectF(-r, -r, 2 * r, 2 * r)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(self.ctx.theme.panel))
        p.drawEllipse(rect)
        start = 90 * 16
        width = max(6.0, r * 0.32)
        for status in reversed(STATUS_ORDER):  # worst segments first, from 12 o'clock
            n = self.counts.get(status, 0)
            if not n:
                continue
            span = -int(round(360 * 16 * n / total))
            pen = QPen(QColor(STATUS_COLORS[status]), width)
            pen.setCapStyle(Qt.PenCapStyle.FlatCap)
            p.setPen(pen)
            p.drawArc(rect.adjusted(width / 2, width / 2, -width / 2, -width / 2), start, span)
            start += span
        f = ui_font(10, bold=True)
        f.setPixelSize(int(max(16, r * 0.7)))
        p.setFont(f)
        p.setPen(QColor(self.ctx.theme.text))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(sum(self.counts.values())))
        f.setPixelSize(22)
        p.setFont(f)
        bad = [(STATUS_GLYPHS[s] + str(self.counts[s]), STATUS_COLORS[s])
               for s in ("down", "crit", "unknown", "warn") if self.counts.get(s)]
        fm = QFontMetrics(f)
        p.setPen(QColor(self.ctx.theme.text))
        p.drawText(QRectF(-140, r + 2, 280, 28), Qt.AlignmentFlag.AlignHCenter, self.name)
        widths = [fm.horizontalAdvance(t) + 8 for t, _ in bad]
        x = -sum(widths) / 2
        for (t, c), w in zip(bad, widths):
            p.setPen(QColor(c))
            p.drawText(QRectF(x, r + 30, w, 28), Qt.AlignmentFlag.AlignLeft, t)
            x += w


class _Overlay(QWidget):
    """Legend, banners, basemap problems and the stale veil, over the map view."""

    def __init__(self, panel: "StoreMapPanel"):
        super().__init__(panel)
        self.panel = panel
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)

    def paintEvent(self, event):  # noqa: N802 (Qt)
        pnl, p = self.panel, QPainter(self)
        theme, tr = pnl.ctx.theme, pnl.ctx.tr
        f = ui_font(10, bold=True)
        f.setPixelSize(20)
        p.setFont(f)
        fm = QFontMetrics(f)
        x, y = 12, self.height() - 14
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


class StoreMapPanel(QWidget):
    """The store map panel (see module docstring)."""

    store_clicked = Signal(str)

    def __init__(self, state, options: dict | None, ctx: PanelContext, parent=None):
        super().__init__(parent)
        self.state, self.ctx = state, ctx
        self.opts, self.errors = validate_options("store_map", OPTION_SPEC, DEFAULTS, options)
        self.dimmed = False
        self._now = ctx.clock()
        self.view = pg.GraphicsView(self, background=ctx.theme.background)
        self.view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.vb = pg.ViewBox(enableMenu=False)
        self.vb.setMouseEnabled(True, True)
        self.view.setCentralItem(self.vb)
        self.overlay = _Overlay(self)
        self._add_basemap()
        self.markers = pg.ScatterPlotItem(pxMode=True)
        self.markers.setZValue(10)
        self.blast = pg.ScatterPlotItem(pxMode=True)
        self.blast.setZValue(9)
        self.pulses = pg.ScatterPlotItem(pxMode=True)
        self.pulses.setZValue(11)
        for item in (self.blast, self.markers, self.pulses):
            self.vb.addItem(item)
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._xy = np.zeros((0, 2))
        self._style: list[tuple] = []
        self._city_of: list[str] = []
        self._clusters: dict[str, ClusterItem] = {}
        self._labels: list[pg.TextItem] = []
        self._labelled: list[str] = []
        self._pulse_list: list[tuple[str, float, str]] = []
        self._chain_wide: list[tuple[str, str]] = []
        self._clustered: bool | None = None
        self._styles_cache: dict = {}
        self._fitted = False
        self.view.installEventFilter(self)
        self.vb.sigRangeChanged.connect(self._on_range)
        self.view.scene().sigMouseClicked.connect(self._on_click)
        self._rebuild(self._now)

    # ------------------------------------------------------------------ basemap

    def _add_basemap(self) -> None:
        theme = self.ctx.theme
        try:
            shipped = load_basemap()
        except BasemapError as exc:
            self.errors.append(str(exc))
            shipped = {}
        layers: list[tuple[MapLayer, str, str, float]] = []
        for name, fill in (("countries", theme.land), ("provinces", theme.panel)):
            if not self.opts[f"show_{name}"]:
                continue
            layer = shipped.get(name)
            if self.opts[name]:
                try:
                    layer = load_geojson(Path(self.opts[name]), name)
                except BasemapError as exc:
                    self.errors.append(f"store_map.options.{name}: {exc}")
            if layer is not None:
                layers.append((layer, fill, theme.land_border, 1.0))
        for i, extra in enumerate(self.opts["basemap_extra"]):
            if not isinstance(extra, str):
                self.errors.append(f"store_map.options.basemap_extra[{i}]: expected a GeoJSON path "
                                   f"string, got {type(extra).__name__}")
                continue
            try:
                layers.append((load_geojson(Path(extra), f"extra{i}"), None, theme.accent, 1.0))
            except BasemapError as exc:
                self.errors.append(f"store_map.options.basemap_extra[{i}]: {exc}")
        self.layers = [lay for lay, *_ in layers]
        for z, (layer, fill, border, width) in enumerate(layers):
            self.errors.extend(layer.errors)
            item = QGraphicsPathItem(rings_path(layer))
            pen = QPen(QColor(border), width)
            pen.setCosmetic(True)
            item.setPen(pen)
            item.setBrush(QBrush(QColor(fill)) if fill else QBrush(Qt.BrushStyle.NoBrush))
            item.setZValue(-10 + z)
            # painted once per zoom into a device pixmap; markers repaint over it cheaply
            item.setCacheMode(QGraphicsPathItem.CacheMode.DeviceCoordinateCache)
            self.vb.addItem(item)

    # ------------------------------------------------------------------ public API

    def set_dimmed(self, dimmed: bool) -> None:
        """Veil the map while the feed is stale."""
        if dimmed != self.dimmed:
            self.dimmed = dimmed
            self.overlay.update()

    def refresh(self, dirty, now: float) -> None:
        """Apply a frame's dirty set: patch changed markers, clusters, outlines, pulses."""
        self._now = now
        structural = dirty.all or any(
            (s in self._index) != (s in self.state.stores) for s in dirty.stores)
        if not structural:
            for s in dirty.stores:
                i = self._index.get(s)
                if i is not None:
                    st = self.state.stores[s]
                    if (st.get("lat"), st.get("lon")) != tuple(self._xy[i][::-1]) or \
                            (st.get("city") or {}).get("id", "") != self._city_of[i]:
                        structural = True
                        break
        if structural:
            self._rebuild(now)
        else:
            if dirty.stores:
                self._patch(dirty.stores)
                if self._clustered:
                    self._update_clusters({self._city_of[self._index[s]] for s in dirty.stores
                                           if s in self._index})
                if self._labelled:
                    self._update_labels()
            if dirty.changes:
                self._update_blast()
            if dirty.incidents:
                self._update_pulse_list(now)
        self._animate(now)

    def fit_scope(self) -> None:
        """Show the stores of the layout's scope (all stores when the scope is empty)."""
        sel = [i for i, s in enumerate(self._ids) if self.ctx.in_scope_store(self.state.stores.get(s), s)]
        pts = self._xy[sel] if sel else self._xy
        if len(pts):
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0)
        else:
            x0, y0, x1, y1 = CHINA_BBOX
        self.zoom_to(x0, y0, x1, y1)

    def zoom_to(self, lon0: float, lat0: float, lon1: float, lat1: float) -> None:
        """Show a lon/lat box (padded 10%, at least 0.05 degrees)."""
        w, h = max(lon1 - lon0, 0.05), max(lat1 - lat0, 0.05)
        cx, cy = (lon0 + lon1) / 2, (lat0 + lat1) / 2
        self.vb.setAspectLocked(True, ratio=math.cos(math.radians(max(-80, min(80, cy)))))
        self.vb.setRange(xRange=(cx - w * 0.6, cx + w * 0.6), yRange=(cy - h * 0.6, cy + h * 0.6),
                         padding=0)
        self._fitted = True

    @property
    def clustered(self) -> bool:
        """Whether stores are drawn as city clusters (zoomed out)."""
        return bool(self._clustered)

    def store_count(self) -> int:
        return len(self._ids)

    def chain_wide_changes(self) -> list[tuple[str, str]]:
        return list(self._chain_wide)

    def marker_pos(self, store_id: str):
        """Widget (panel) coordinates of a store's marker, for tests and the shell."""
        i = self._index[store_id]
        scene = self.vb.mapViewToScene(QPointF(*self._xy[i]))
        return self.view.mapFromScene(scene)

    def marker_brush(self, store_id: str) -> QColor:
        """The fill colour of a store's marker as drawn (transparent for planned)."""
        return QColor(self.markers.data["brush"][self._index[store_id]].color())

    def marker_symbol(self, store_id: str) -> str:
        return self.markers.data["symbol"][self._index[store_id]]

    # ------------------------------------------------------------------ markers

    def _spot_style(self, store_id: str) -> tuple:
        st = self.state.stores.get(store_id) or {}
        worst = self.state.store_worst(store_id)
        status = st.get("status", "open")
        key = (worst, status)
        cached = self._styles_cache.get(key)
        if cached:
            return cached
        size = self.opts["marker_px"] * (1.3 if worst in ("crit", "down") else 1.0)
        color = QColor(STATUS_COLORS.get(worst, STATUS_COLORS["unknown"]))
        if status == "planned":
            brush = pg.mkBrush(0, 0, 0, 0)
            pen = pg.mkPen(STORE_STATUS_COLORS["planned"], width=2, style=Qt.PenStyle.DashLine)
            symbol = "o"
        elif status == "closed":
            brush, pen, symbol = pg.mkBrush(STORE_STATUS_COLORS["closed"]), pg.mkPen("#000000"), "o"
        else:
            brush = pg.mkBrush(color)
            pen = pg.mkPen(STORE_STATUS_COLORS["opening"], width=3) if status == "opening" \
                else pg.mkPen(self.ctx.theme.background, width=1.5)
            symbol = SYMBOLS.get(worst, "s")
        style = (symbol, size, pen, brush)
        self._styles_cache[key] = style
        return style

    def _rebuild(self, now: float) -> None:
        st = self.state
        ids = [s for s, v in st.stores.items()
               if isinstance(v.get("lat"), (int, float)) and isinstance(v.get("lon"), (int, float))]
        self._ids = ids
        self._index = {s: i for i, s in enumerate(ids)}
        self._xy = np.array([[st.stores[s]["lon"], st.stores[s]["lat"]] for s in ids], float).reshape(-1, 2)
        self._city_of = [(st.stores[s].get("city") or {}).get("id", "") for s in ids]
        self._style = [self._spot_style(s) for s in ids]
        self.markers.setData(
            x=self._xy[:, 0], y=self._xy[:, 1], data=np.array(ids, dtype=object),
            symbol=[s[0] for s in self._style], size=[s[1] for s in self._style],
            pen=[s[2] for s in self._style], brush=[s[3] for s in self._style])
        for item in self._clusters.values():
            self.vb.removeItem(item)
        self._clusters = {}
        self._clustered = None
        if not self._fitted:
            self.fit_scope()
        self._update_blast()
        self._update_pulse_list(now)
        self._on_range()

    def _patch(self, stores) -> None:
        """Restyle just the changed spots (only they are looked up in the symbol atlas)."""
        data = self.markers.data
        changed = []
        for s in stores:
            i = self._index.get(s)
            if i is None:
                continue
            style = self._spot_style(s)
            if style is not self._style[i]:
                self._style[i] = style
                changed.append(i)
        if not changed:
            return
        idx = np.array(changed)
        for i in changed:
            sym, size, pen, brush = self._style[i]
            data["symbol"][i], data["size"][i], data["pen"][i], data["brush"][i] = sym, size, pen, brush
        data["sourceRect"][idx] = (0, 0, 0, 0)
        self.markers.updateSpots()

    # ------------------------------------------------------------------ clusters/labels

    def _on_range(self, *args) -> None:
        (x0, x1), _ = self.vb.viewRange()
        clustered = bool((x1 - x0) > self.opts["cluster_span_deg"])
        if clustered != self._clustered:
            self._clustered = clustered
            self.markers.setVisible(not clustered)
            self.blast.setVisible(not clustered)
            if clustered:
                self._update_clusters(set(self._city_of))
            for item in self._clusters.values():
                item.setVisible(clustered)
        self._update_labels()

    def _update_clusters(self, cities) -> None:
        st, lang = self.state, self.ctx.lang
        for city in cities:
            members = st.city_stores(city) if city else [s for s, c in zip(self._ids, self._city_of) if not c]
            members = [s for s in members if s in self._index]
            item = self._clusters.get(city)
            if not members:
                if item is not None:
                    self.vb.removeItem(item)
                    del self._clusters[city]
                continue
            if item is None:
                item = ClusterItem(city, self.ctx)
                self._clusters[city] = item
                self.vb.addItem(item)
            idx = [self._index[s] for s in members]
            cx, cy = self._xy[idx].mean(axis=0)
            item.setPos(float(cx), float(cy))
            counts: dict[str, int] = {}
            for s in members:
                w = st.store_worst(s)
                counts[w] = counts.get(w, 0) + 1
            c = st.stores[members[0]].get("city") or {}
            name = c.get("name", city) if lang == "zh" else c.get("name_en") or c.get("name", city)
            item.set_counts(name or "?", counts)
            item.setVisible(bool(self._clustered))

    def _update_labels(self) -> None:
        for t in self._labels:
            t.setVisible(False)
        self._labelled = []
        if self._clustered or not len(self._xy):
            return
        (x0, x1), (y0, y1) = self.vb.viewRange()
        inside = np.nonzero((self._xy[:, 0] >= x0) & (self._xy[:, 0] <= x1) &
                            (self._xy[:, 1] >= y0) & (self._xy[:, 1] <= y1))[0]
        if len(inside) > self.opts["label_max"]:
            return
        font = ui_font(10, bold=True)
        font.setPixelSize(20)
        while len(self._labels) < len(inside):
            t = pg.TextItem(anchor=(0.5, -0.35), color=self.ctx.theme.text)
            t.setFont(font)
            t.setZValue(12)
            self.vb.addItem(t)
            self._labels.append(t)
        for t, i in zip(self._labels, inside):
            s = self._ids[i]
            st = self.state.stores.get(s) or {}
            name = st.get("name", s) if self.ctx.lang == "zh" else st.get("name_en") or st.get("name", s)
            worst = self.state.store_worst(s)
            glyph = STATUS_GLYPHS.get(worst, "")
            t.setText(f"{glyph} {name}".strip(), color=STATUS_COLORS[worst] if glyph else self.ctx.theme.text)
            t.setPos(float(self._xy[i, 0]), float(self._xy[i, 1]))
            t.setVisible(True)
            self._labelled.append(s)

    # ------------------------------------------------------------------ effects

    def _change_stores(self, ch: dict) -> set[str] | None:
        scope = ch.get("scope") or {}
        stores, cities = scope.get("stores") or [], scope.get("cities") or []
        if not stores and not cities:
            return None  # chain-wide
        out = {s for s in stores if s in self._index}
        for c in cities:
            out.update(s for s in self.state.city_stores(c) if s in self._index)
        return out

    def _update_blast(self) -> None:
        pts, pens, self._chain_wide = [], [], []
        for ch in self.state.changes.values():
            status = ch.get("status")
            if status not in ("running", "failed"):
                continue
            stores = self._change_stores(ch)
            if stores is None:
                self._chain_wide.append((str(ch.get("title", ch.get("id", ""))), status))
                continue
            pen = pg.mkPen(CHANGE_STATUS_COLORS[status], width=3 if status == "failed" else 2)
            for s in stores:
                pts.append(self._xy[self._index[s]])
                pens.append(pen)
        size = self.opts["marker_px"] * 2.2
        if pts:
            a = np.array(pts)
            self.blast.setData(x=a[:, 0], y=a[:, 1], symbol="s", size=size, pen=pens,
                               brush=pg.mkBrush(0, 0, 0, 0))
        else:
            self.blast.setData([], [])
        self.overlay.update()

    def _update_pulse_list(self, now: float) -> None:
        out = []
        for inc in self.state.incidents.values():
            opened = inc.get("opened_at")
            if inc.get("status") in ("open", "acknowledged") and isinstance(opened, (int, float)) \
                    and 0 <= now - opened < self.opts["pulse_s"]:
                out.extend((s, float(opened), "incident") for s in inc.get("stores") or [] if s in self._index)
        out.extend((s, 0.0, "opening") for s in self._ids
                   if (self.state.stores[s].get("status") == "opening"))
        self._pulse_list = out

    def _animate(self, now: float) -> None:
        """Advance pulse rings (called from refresh; costs nothing without pulses)."""
        live = [(s, t0, kind) for s, t0, kind in self._pulse_list
                if kind == "opening" or now - t0 < self.opts["pulse_s"]]
        if len(live) != len(self._pulse_list):
            self._pulse_list = live
        if not live and not len(self.pulses.data):
            return
        if not live or self._clustered:
            self.pulses.setData([], [])
            return
        xs, ys, sizes, pens = [], [], [], []
        base = self.opts["marker_px"]
        for s, t0, kind in live:
            period = 1.2 if kind == "incident" else 3.0
            phase = round(((now - t0) % period) / period * 8) / 8  # 8 steps: bounded atlas
            color = QColor(STATUS_COLORS["crit"] if kind == "incident" else STORE_STATUS_COLORS["opening"])
            color.setAlpha(int(255 * (1 - phase) * (1.0 if kind == "incident" else 0.7)))
            xs.append(self._xy[self._index[s], 0])
            ys.append(self._xy[self._index[s], 1])
            sizes.append(base * (1.2 + (3.0 if kind == "incident" else 1.2) * phase))
            pens.append(pg.mkPen(color, width=3))
        self.pulses.setData(x=xs, y=ys, size=sizes, pen=pens, brush=pg.mkBrush(0, 0, 0, 0), symbol="o")

    def pulsing(self) -> list[str]:
        """Store ids with an incident pulse running."""
        return [s for s, _, kind in self._pulse_list if kind == "incident"]

    # ------------------------------------------------------------------ input

    def _on_click(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or not len(self._xy):
            return
        pos = self.vb.mapSceneToView(ev.scenePos())
        self.click_at(pos.x(), pos.y())

    def click_at(self, lon: float, lat: float) -> None:
        """Handle a click at a view position: nearest cluster zooms in, a store emits."""
        px, py = self.vb.viewPixelSize()
        if self._clustered:
            best, best_d = None, 1e18
            for city, item in self._clusters.items():
                d = math.hypot((item.pos().x() - lon) / px, (item.pos().y() - lat) / py)
                if d <= item.radius + 6 and d < best_d:
                    best, best_d = city, d
            if best is not None:
                idx = [i for i, c in enumerate(self._city_of) if c == best]
                (x0, y0), (x1, y1) = self._xy[idx].min(axis=0), self._xy[idx].max(axis=0)
                self.zoom_to(x0, y0, x1, y1)
            return
        d = np.hypot((self._xy[:, 0] - lon) / px, (self._xy[:, 1] - lat) / py)
        i = int(np.argmin(d))
        if d[i] <= self.opts["marker_px"] * 0.8 + 4:
            self.store_clicked.emit(self._ids[i])

    def eventFilter(self, obj, event):  # noqa: N802 (Qt)
        if obj is self.view and event.type() == event.Type.KeyPress:
            return self.handle_key(event.key())
        return False

    def handle_key(self, key) -> bool:
        """Arrows pan by a fifth of the view, +/- zoom, Home fits the scope."""
        (x0, x1), (y0, y1) = self.vb.viewRange()
        dx, dy = (x1 - x0) / 5, (y1 - y0) / 5
        K = Qt.Key
        moves = {K.Key_Left: (-dx, 0), K.Key_Right: (dx, 0), K.Key_Up: (0, dy), K.Key_Down: (0, -dy)}
        if key in moves:
            self.vb.translateBy(x=moves[key][0], y=moves[key][1])
        elif key in (K.Key_Plus, K.Key_Equal):
            self.vb.scaleBy((0.7, 0.7))
        elif key in (K.Key_Minus, K.Key_Underscore):
            self.vb.scaleBy((1 / 0.7, 1 / 0.7))
        elif key == K.Key_Home:
            self.fit_scope()
        else:
            return False
        return True

    def resizeEvent(self, event):  # noqa: N802 (Qt)
        super().resizeEvent(event)
        self.view.setGeometry(self.rect())  # no layout: keeps top-level size hints quiet
        self.overlay.setGeometry(self.rect())
        self.overlay.raise_()


__all__ = ["StoreMapPanel", "ClusterItem", "rings_path"]
