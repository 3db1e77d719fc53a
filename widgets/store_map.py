"""Store map: every store at its coordinates on an offline basemap, coloured by health.

``StoreMapPanel(state, options, ctx)``; the shell calls ``refresh(dirty, now)`` once per
frame and ``set_dimmed(True)`` while the feed is stale; ``store_clicked(store_id)`` fires
when a store marker is clicked (a click on a city cluster zooms into its stores).

Projection: equirectangular lon/lat in a pyqtgraph ``ViewBox`` whose aspect is locked to
``cos(latitude)`` of the scope's centre, so shapes look right at the latitude that
matters. The basemap is the view's cached background (painted once per pan/zoom, see
:class:`widgets._map_items.BasemapView`). Markers are one ``ScatterPlotItem``: a visual
update patches only the spots of the stores that changed. Worst device status sets the
colour AND the shape (ok/maint circle, warn diamond, unknown square, crit triangle, down
cross); the store's own state shows as a dashed hollow ring (planned), a slow blue pulse
(opening) or a solid marker (open).

Zoomed out (the view wider than ``cluster_span_deg``) stores gather per city into a donut
of store counts by status. Donut radii grow with the store count up to ``DISC_CAP`` of
the panel's smaller side; cities merge only when even their smallest readable donuts
would overlap (the closest first, so a merge stays local and the country stays
recognisable), other donuts that would touch are shrunk instead. A merged donut shows the
combined counts and is named after its biggest city: "Shanghai +3" (zooming in splits
it). Zoomed in,
each store gets its label. Labels (cluster and store) are placed around their marker so
that none overlaps another label or marker; a label that only fits further away gets a
leader line, one that fits nowhere is dropped (worst stores are placed first).

Cost follows change: a frame updates the worst-status cache and the city counts of the
changed stores only; clusters and markers are cached pixmaps repainted only when what
they show changes, at most ``UPDATE_HZ`` times a second each (a change waits at most
``1 / UPDATE_HZ`` s, never more than a second).

Worst on top: the marker rows are kept in order of severity (ok first, then maint, warn,
unknown, crit, down last: a scatter item paints in row order), so a crit store is never
hidden under an ok neighbour 2 px away. A store whose worst status changes moves to its
group by a few row swaps at the group boundaries (one per status it crosses), never a
re-sort of the whole table. A click picks the store whose marker is under
the pointer -- the worst first when several are (then the nearest) -- and only when none is,
the nearest within a few pixels. Hovering a store shows a tooltip: its name (English on an
English wall when the feed has ``name_en``), city, device status, store state and open
incidents; hovering a city cluster shows its store counts (:meth:`tooltip_at`).

Live effects, all driven by ``refresh(now)`` (no timer per store): a red pulse for
``pulse_s`` seconds on the stores of an incident that just opened; a square outline on
stores in the scope of a running (blue) or failed (red) change -- the blast radius; a
chain-wide change is named in a banner instead.

The view fits the layout's scope (all stores when the event has no scope) with a margin
in pixels: the donuts, the banner on top and the legend at the bottom never hide a store.
It keeps fitting -- as stores arrive, when the panel is resized, when a banner appears --
until someone pans or zooms (mouse, keys, a click on a cluster); ``Home`` fits again.

Options (validated, bad ones reported in ``errors`` and on the panel): ``provinces`` /
``countries`` (GeoJSON path replacing a shipped layer), ``basemap_extra`` (list of GeoJSON
paths drawn on top), ``show_countries`` / ``show_provinces`` (bool), ``cluster_span_deg``
(default 3.0), ``marker_px`` (18, px on a 1080-line wall), ``pulse_s`` (10), ``label_max`` (stores labelled at
most, default 60). Keys: arrows pan, ``+``/``-`` zoom, ``Home`` fits the scope.

UI scale: every pixel size (``marker_px``, disc radii, fonts, chips, label gaps, leader
lines, legend, click radii, merge distances) is for a 1080-line wall and is multiplied by
:func:`widgets.base.ui_scale` as read when the panel is built (``self.k``; the shell
sets the scale before it builds panels), so a 2160-line wall shows everything twice as
big with the same layout.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QCursor
from PySide6.QtWidgets import QToolTip, QWidget

from wallboard.widgets._map_items import (
    DISC_GAP, LEGEND_H, NAME_H, BasemapView, ClusterItem, MapOverlay, StoreLabelItem, disc_min_radius,
    disc_radius, layout_discs, load_layers, place_labels, rings_path,
)
from wallboard.widgets._names import city_name, store_name
from wallboard.widgets.base import (
    CHANGE_STATUS_COLORS, STATUS_COLORS, STATUS_GLYPHS, STATUS_RANK,
    STORE_STATUS_COLORS, PanelContext, register_translations, ui_font, ui_scale,
)
from wallboard.layout.specs.store_map import SPEC

register_translations({
    "Chain-wide change": "全渠道变更",
    "basemap problems": "底图问题",
    "stores": "门店",
    "No stores in scope": "范围内无门店",
    "devices": "设备",
    "store": "门店",
    "open incidents": "未关闭故障",
    "No open incidents": "无未关闭故障",
})
#: At most this many open incidents are named in a store's tooltip (the rest are counted).
TOOLTIP_INCIDENTS = 3

SYMBOLS = {"ok": "o", "maint": "o", "warn": "d", "unknown": "s", "crit": "t1", "down": "x"}
CHINA_BBOX = (73.5, 18.0, 135.1, 53.6)
#: Visual updates per second of the markers and of each cluster (changes are aggregated
#: in between; a change is on screen at most 1 / UPDATE_HZ seconds after it arrived).
UPDATE_HZ = 4.0
#: Repaints per second of one cluster donut; the repaints of all clusters are spread
#: evenly over frames, and no change waits longer than MAX_DELAY_S.
CLUSTER_HZ = 2.0
MAX_DELAY_S = 1.0
#: Largest cluster donut radius, as a share of the map panel's smaller side.
DISC_CAP = 0.08


class StoreMapPanel(QWidget):
    """The store map panel (see module docstring)."""

    store_clicked = Signal(str)

    def __init__(self, state, options: dict | None, ctx: PanelContext, parent=None):
        super().__init__(parent)
        self.state, self.ctx = state, ctx
        self.opts, self.errors = SPEC.widget_options(options)
        self.dimmed = False
        #: UI scale read once at construction: multiplies every pixel size of the panel
        self.k = k = ui_scale()
        self.legend_h = round(LEGEND_H * k)
        self._marker_px = self.opts["marker_px"] * k
        self._now = ctx.clock()
        self.view = BasemapView(self, background=ctx.theme.background)
        self.view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.vb = pg.ViewBox(enableMenu=False)
        self.vb.setMouseEnabled(True, True)
        self.view.setCentralItem(self.vb)
        self.view.attach(self.vb)
        self.overlay = MapOverlay(self)
        self._font = ui_font(10, bold=True)
        self._label_proto = StoreLabelItem(self._font, k)  # measures store labels
        self._add_basemap()
        self.markers = pg.ScatterPlotItem(pxMode=True)
        self.markers.setZValue(10)
        #: store index -> its row in ``markers.data``; ``_order``: store index per row
        #: (rows grouped by severity, the worst painted last = on top); ``_bounds[r]``:
        #: first row of the group of rank r (``_bounds[-1]`` = number of rows)
        self._row = np.zeros(0, int)
        self._order = np.zeros(0, int)
        self._bounds = np.zeros(len(STATUS_RANK) + 1, int)
        self._rows_stale = False   # statuses changed while clustered: rows not grouped yet
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
        self._worst: list[str] = []
        self._geo: dict[str, tuple] = {}                    # store -> (lat, lon, city) drawn
        self._city_of: list[str] = []
        self._city_idx: dict[str, np.ndarray] = {}        # city -> store indexes
        self._city_counts: dict[str, dict[str, int]] = {}  # city -> worst status -> stores
        self._groups: dict[str, list[str]] = {}            # cluster key -> cities
        self._group_of: dict[str, str] = {}                 # city -> cluster key
        self._clusters: dict[str, ClusterItem] = {}
        self._stale_groups: set[str] = set()                # counts changed, not yet shown
        self._next_ok: dict[str, float] = {}                # cluster key -> earliest repaint
        self._stale_since: dict[str, float] = {}            # cluster key -> first unshown change
        self._prev_now = self._now
        self._pending: set[str] = set()                     # stores awaiting a marker restyle
        self._last_flush = -1e18
        self._scale: tuple[float, float] | None = None      # px per degree at last grouping
        self._labels: list[StoreLabelItem] = []
        self._labelled: list[str] = []
        self._pulse_list: list[tuple[str, float, str]] = []
        self._chain_wide: list[tuple[str, str]] = []
        self._clustered: bool | None = None
        self._styles_cache: dict = {}
        self._fitted = False
        #: keep fitting the scope (new stores, resize, banner) until the user moves the view
        self.auto_fit = True
        self._fit_top = 0
        self.view.installEventFilter(self)
        self.vb.sigRangeChanged.connect(self._on_range)
        self.vb.sigRangeChangedManually.connect(self._on_manual_range)
        self.vb.sigResized.connect(self._on_vb_resized)
        self.view.scene().sigMouseClicked.connect(self._on_click)
        self.view.scene().sigMouseMoved.connect(self._on_hover)
        self._rebuild(self._now)

    # ------------------------------------------------------------------ basemap

    def _add_basemap(self) -> None:
        self.layers, paths, errors = load_layers(self.opts, self.ctx.theme)
        self.errors.extend(errors)
        self.view.set_layers(paths)

    # ------------------------------------------------------------------ public API

    def set_dimmed(self, dimmed: bool) -> None:
        """Veil the map while the feed is stale."""
        if dimmed != self.dimmed:
            self.dimmed = dimmed
            self.overlay.update()

    def refresh(self, dirty, now: float) -> None:
        """Apply a frame's dirty set: update the counts of changed stores at once, and
        repaint their markers and clusters (at most ``UPDATE_HZ`` times a second)."""
        self._now = now
        structural = dirty.all or (bool(dirty.stores) and not self._count_changes(dirty.stores))
        if structural:
            self._rebuild(now)
        else:
            if dirty.changes:
                self._update_blast()
                if self.auto_fit and self.overlay._top_h() != self._fit_top:
                    self.fit_scope()   # a banner came or went: keep the stores clear of it
            if dirty.incidents:
                self._update_pulse_list(now)
        self._flush(now)
        self._animate(now)

    def fit_scope(self) -> None:
        """Show every store of the layout's scope (all stores when the scope is empty) with
        a margin, and keep doing so as stores arrive or the panel resizes (``auto_fit``)
        until the user pans or zooms."""
        sel = [i for i, s in enumerate(self._ids) if self.ctx.in_scope_store(self.state.stores.get(s), s)]
        pts = self._xy[sel] if sel else self._xy
        if len(pts):
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0)
        else:
            x0, y0, x1, y1 = CHINA_BBOX
        side = self._label_side_room(sel, float(x1 - x0))
        self._show_box(float(x0), float(y0), float(x1), float(y1), self._fit_margin(sel),
                       self._label_room(), side)
        self.auto_fit = True

    def zoom_to(self, lon0: float, lat0: float, lon1: float, lat1: float) -> None:
        """Show a lon/lat box (at least 0.05 degrees) with a margin; the view then stays
        where it is (``auto_fit`` off) until :meth:`fit_scope`."""
        self._show_box(lon0, lat0, lon1, lat1, self._marker_px + 8 * self.k)
        self.auto_fit = False

    def _fit_margin(self, sel: list[int]) -> float:
        """Pixels kept free around the fitted stores: the biggest donut a city of the
        selection can get, or a marker with its blast-radius outline, plus a gap."""
        if not len(self._ids):
            return self._marker_px
        cities: dict[str, int] = {}
        for i in sel or range(len(self._ids)):
            c = self._city_of[i]
            cities[c] = cities.get(c, 0) + 1
        r = disc_radius(max(cities.values()), self.k, self._disc_cap())
        # (zoomed in: a marker's blast-radius square is 2.2 markers wide)
        return max(r, 1.1 * self._marker_px) + DISC_GAP * self.k / 2

    def _label_side_room(self, sel: list[int], span_deg: float) -> float:
        """Extra pixels left and right of the fitted stores when they will be shown as
        labelled markers (few enough, not clustered): half the widest label, so a store
        at the edge can still be named centred above or below it (at most 15% of the
        width)."""
        idx = sel or list(range(len(self._ids)))
        if not idx or len(idx) > self.opts["label_max"] or span_deg > self.opts["cluster_span_deg"]:
            return 0.0
        widest = 0.0
        for i in idx:
            s = self._ids[i]
            name = self.store_name(s)
            widest = max(widest, self._label_proto.measure(f"{STATUS_GLYPHS['crit']} {name}")[0])
        return min(widest / 2, 0.15 * max(self.vb.width(), 1.0))

    def _label_room(self) -> float:
        """Extra pixels under the fitted stores: one label line, so the bottom discs can
        still be named below themselves (labels never go over the legend)."""
        return NAME_H * self.k

    def _disc_cap(self) -> float:
        """Largest donut radius: ``DISC_CAP`` of the panel's smaller side."""
        w, h = self.vb.width(), self.vb.height()
        if w < 64 or h < 64:
            w, h = max(self.width(), 64), max(self.height(), 64)
        return DISC_CAP * min(w, h)

    def _show_box(self, lon0: float, lat0: float, lon1: float, lat1: float, margin: float,
                  below: float = 0.0, side: float = 0.0) -> None:
        """Range the view so the box fills the map area -- the view minus the banner on
        top, the legend at the bottom, ``margin`` px all round, ``below`` px more at the
        bottom and ``side`` px more left and right -- at the aspect of its centre latitude
        (cos(lat) px of longitude per px of latitude)."""
        w, h = max(lon1 - lon0, 0.05), max(lat1 - lat0, 0.05)
        cx, cy = (lon0 + lon1) / 2, (lat0 + lat1) / 2
        ratio = math.cos(math.radians(max(-80, min(80, cy))))
        self.vb.setAspectLocked(True, ratio=ratio)
        W, H = self.vb.width(), self.vb.height()
        top = self.overlay._top_h()
        self._fit_top = top
        bottom = self.legend_h + below
        if W < 64 or H < 64:  # not laid out yet: a plain 10% pad, refitted on resize
            self.vb.setRange(xRange=(cx - w * 0.6, cx + w * 0.6), yRange=(cy - h * 0.6, cy + h * 0.6),
                             padding=0)
        else:
            aw = max(W - 2 * (margin + side), W * 0.3)
            ah = max(H - top - bottom - 2 * margin, H * 0.3)
            px_lon = min(aw / w, ah * ratio / h)          # px per degree of longitude
            px_lat = px_lon / ratio
            # the box's centre sits in the middle of the area between banner and legend
            y_top = cy + (top + (H - top - bottom) / 2) / px_lat
            self.vb.setRange(xRange=(cx - W / 2 / px_lon, cx + W / 2 / px_lon),
                             yRange=(y_top - H / px_lat, y_top), padding=0)
        self._fitted = True

    def _on_manual_range(self, *args) -> None:
        self.auto_fit = False   # the user moved the view: leave it there

    def _on_vb_resized(self, *args) -> None:
        if self.auto_fit and self._fitted:
            self.fit_scope()

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

    def marker_row(self, store_id: str) -> int:
        """The row of a store's spot in ``markers.data`` (rows are sorted by severity)."""
        self._group_rows()
        return int(self._row[self._index[store_id]])

    def marker_brush(self, store_id: str) -> QColor:
        """The fill colour of a store's marker as drawn (transparent for planned)."""
        return QColor(self.markers.data["brush"][self.marker_row(store_id)].color())

    def marker_symbol(self, store_id: str) -> str:
        return self.markers.data["symbol"][self.marker_row(store_id)]

    def draw_order(self) -> list[str]:
        """Store ids in the order their markers are painted (the last is on top)."""
        self._group_rows()
        return [self._ids[i] for i in self._order]

    def cluster_of(self, city: str) -> ClusterItem | None:
        """The cluster showing ``city`` (alone or merged with its neighbours)."""
        key = self._group_of.get(city)
        return self._clusters.get(key) if key is not None else None

    def pending_updates(self) -> int:
        """Clusters (zoomed out) or store markers (zoomed in) whose change is counted but
        not yet repainted; each is repainted within ``MAX_DELAY_S`` of frames."""
        return len(self._stale_groups) if self._clustered else len(self._pending)

    # ------------------------------------------------------------------ markers

    def _spot_style(self, store_id: str, worst: str) -> tuple:
        st = self.state.stores.get(store_id) or {}
        status = st.get("status", "open")
        key = (worst, status)
        cached = self._styles_cache.get(key)
        if cached:
            return cached
        k = self.k
        size = self._marker_px * (1.3 if worst in ("crit", "down") else 1.0)
        color = QColor(STATUS_COLORS.get(worst, STATUS_COLORS["unknown"]))
        if status == "planned":
            brush = pg.mkBrush(0, 0, 0, 0)
            pen = pg.mkPen(STORE_STATUS_COLORS["planned"], width=2 * k, style=Qt.PenStyle.DashLine)
            symbol = "o"
        elif status == "closed":
            brush, pen, symbol = pg.mkBrush(STORE_STATUS_COLORS["closed"]), pg.mkPen("#000000", width=k), "o"
        else:
            brush = pg.mkBrush(color)
            pen = pg.mkPen(STORE_STATUS_COLORS["opening"], width=3 * k) if status == "opening" \
                else pg.mkPen(self.ctx.theme.background, width=1.5 * k)
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
        self._geo = {s: (st.stores[s]["lat"], st.stores[s]["lon"], c) for s, c in zip(ids, self._city_of)}
        self._worst = [st.store_worst(s) for s in ids]
        self._style = [self._spot_style(s, w) for s, w in zip(ids, self._worst)]
        self.markers.setData(
            x=self._xy[:, 0], y=self._xy[:, 1], data=np.array(ids, dtype=object),
            symbol=[s[0] for s in self._style], size=[s[1] for s in self._style],
            pen=[s[2] for s in self._style], brush=[s[3] for s in self._style])
        self._sort_rows()
        by_city: dict[str, list[int]] = {}
        for i, c in enumerate(self._city_of):
            by_city.setdefault(c, []).append(i)
        self._city_idx = {c: np.array(v) for c, v in by_city.items()}
        self._city_counts = {}
        for c, idx in by_city.items():
            counts: dict[str, int] = {}
            for i in idx:
                counts[self._worst[i]] = counts.get(self._worst[i], 0) + 1
            self._city_counts[c] = counts
        self._pending.clear()
        self._stale_groups.clear()
        self._scale = None  # regroup clusters
        self._update_blast()
        if self.auto_fit:  # stores came or went: fit them all (banner height known now)
            self.fit_scope()
        self._update_pulse_list(now)
        self._on_range()
        self._update_labels()

    def _count_changes(self, stores) -> bool:
        """Worst-status cache and city counts of the changed stores (cheap, every frame);
        their markers and clusters are queued for the next visual update. Returns False
        (and stops) at the first store that was added, deleted, moved or changed city:
        the caller then rebuilds everything (:meth:`_rebuild`)."""
        all_stores, geo, index = self.state.stores, self._geo, self._index
        worst_of, worst, pending = self.state.store_worst, self._worst, self._pending
        city_of, city_counts, group_of = self._city_of, self._city_counts, self._group_of
        stale, now = self._stale_groups, self._now
        for s in stores:
            st = all_stores.get(s)
            g = geo.get(s)
            if g is None:   # not on the map: structural only if it now has coordinates
                if st is not None and isinstance(st.get("lat"), (int, float)) \
                        and isinstance(st.get("lon"), (int, float)):
                    return False
                continue
            if st is None or st.get("lat") != g[0] or st.get("lon") != g[1] \
                    or (st.get("city") or {}).get("id", "") != g[2]:
                return False
            i = index[s]
            pending.add(s)
            w = worst_of(s)
            old = worst[i]
            if w == old:
                continue
            worst[i] = w
            if self._clustered:   # markers hidden: their rows are grouped when shown again
                self._rows_stale = True
            else:
                self._move_row(i, STATUS_RANK.get(old, 3), STATUS_RANK.get(w, 3))
            city = city_of[i]
            counts = city_counts[city]
            counts[old] -= 1
            counts[w] = counts.get(w, 0) + 1
            key = group_of.get(city)
            if key is not None and key not in stale:
                stale.add(key)
                self._stale_since[key] = now
        return True

    def _flush(self, now: float) -> None:
        """Repaint what the aggregated changes touched: markers at most UPDATE_HZ times a
        second, each cluster at most UPDATE_HZ times a second (clusters are staggered so
        their repaints spread over frames)."""
        period = 1.0 / UPDATE_HZ
        if self._pending and not self._clustered and now - self._last_flush >= period:
            pending, self._pending = self._pending, set()
            self._last_flush = now
            self._patch(pending)
            if self._labelled and not pending.isdisjoint(self._labelled):
                self._update_labels()
        if self._stale_groups and self._clustered:
            # a per-frame budget spreads the repaints evenly over frames; a change older
            # than MAX_DELAY_S is shown regardless of the budget
            dt = min(1.0, max(0.0, now - self._prev_now))
            budget = max(1, math.ceil(len(self._clusters) * CLUSTER_HZ * dt))
            due = sorted((k for k in self._stale_groups if now >= self._next_ok.get(k, 0.0)),
                         key=lambda k: self._stale_since.get(k, now))
            late = [k for k in due[budget:] if now - self._stale_since.get(k, now) >= MAX_DELAY_S]
            resized = False
            for key in due[:budget] + late:
                self._stale_groups.discard(key)
                self._stale_since.pop(key, None)
                self._next_ok[key] = now + 1.0 / CLUSTER_HZ
                item = self._clusters.get(key)
                if item is not None:
                    size = item.label_size()
                    if self._show_counts(key, item) and item.label_size() != size:
                        resized = True
            if resized:
                self._place_cluster_labels()
        self._prev_now = now

    def _patch(self, stores) -> None:
        """Restyle just the changed spots (only they are looked up in the symbol atlas)."""
        self._group_rows()
        data = self.markers.data
        changed = []
        for s in stores:
            i = self._index.get(s)
            if i is None:
                continue
            style = self._spot_style(s, self._worst[i])
            if style is not self._style[i]:
                self._style[i] = style
                changed.append(i)
        if not changed:
            return
        rows = self._row[np.array(changed)]
        for i, r in zip(changed, rows.tolist()):
            sym, size, pen, brush = self._style[i]
            data["symbol"][r], data["size"][r], data["pen"][r], data["brush"][r] = sym, size, pen, brush
        data["sourceRect"][rows] = (0, 0, 0, 0)
        self.markers.updateSpots()

    def _sort_rows(self, rows_in_store_order: bool = True) -> None:
        """Group the marker rows by severity (stable: by store within a status), the
        worst last so it is painted on top: one permutation, of rows in store order after
        a rebuild, else of the rows as they are (``_row``)."""
        n = len(self._ids)
        ranks = np.fromiter((STATUS_RANK.get(w, 3) for w in self._worst), np.int64, n)
        order = np.argsort(ranks, kind="stable")
        self._rows_stale = False
        if n:
            self.markers.data = self.markers.data[order if rows_in_store_order else self._row[order]]
        self._order = order
        self._row = np.empty(n, int)
        self._row[order] = np.arange(n)
        self._bounds = np.searchsorted(ranks[order], np.arange(len(STATUS_RANK) + 1))

    def _group_rows(self) -> None:
        """Group the marker rows by severity if statuses changed while the map showed
        clusters (the hidden markers' rows are not moved one change at a time)."""
        if self._rows_stale:
            self._sort_rows(rows_in_store_order=False)
            self.markers.update()

    def _swap_rows(self, a: int, b: int) -> None:
        if a == b:
            return
        data = self.markers.data
        data[[a, b]] = data[[b, a]]
        sa, sb = self._order[a], self._order[b]
        self._order[a], self._order[b] = sb, sa
        self._row[sa], self._row[sb] = b, a

    def _move_row(self, i: int, old: int, new: int) -> None:
        """Move store ``i``'s row from the group of rank ``old`` to that of ``new``: one
        swap with the boundary row of each group crossed."""
        bounds = self._bounds
        if new > old:
            for g in range(old, new):       # to the end of group g, which then cedes that row
                self._swap_rows(int(self._row[i]), int(bounds[g + 1]) - 1)
                bounds[g + 1] -= 1
        else:
            for g in range(old, new, -1):   # to the start of group g, which then cedes it
                self._swap_rows(int(self._row[i]), int(bounds[g]))
                bounds[g] += 1
        if new != old:
            self.markers.update()

    # ------------------------------------------------------------------ clusters/labels

    def _px_scale(self) -> tuple[float, float]:
        t = self.vb.childTransform()  # brings pyqtgraph's lazily updated matrix up to date
        return abs(t.m11()), abs(t.m22())

    def _on_range(self, *args) -> None:
        (x0, x1), _ = self.vb.viewRange()
        clustered = bool((x1 - x0) > self.opts["cluster_span_deg"])
        if clustered != self._clustered:
            self._clustered = clustered
            self.markers.setVisible(not clustered)
            self.blast.setVisible(not clustered)
            for item in self._clusters.values():
                item.setVisible(clustered)
            if not clustered:
                self._group_rows()
            if not clustered and self._pending:  # markers were hidden: restyle them now
                pending, self._pending = self._pending, set()
                self._patch(pending)
        if clustered:
            scale = self._px_scale()
            if self._scale is None or any(abs(a - b) > 1e-9 * max(a, 1e-12) for a, b in zip(scale, self._scale)):
                self._scale = scale
                self._regroup()
            else:
                self._place_cluster_labels()
        self._update_labels()

    def _regroup(self) -> None:
        """Lay the city donuts out for this zoom (:func:`layout_discs`: merge only what
        would overlap even at the smallest readable size, shrink the rest); reuse items."""
        sx, sy = self._scale or self._px_scale()
        cities = [c for c in self._city_idx if len(self._city_idx[c])]
        centre = {c: self._xy[self._city_idx[c]].mean(axis=0) for c in cities}
        pts = [(float(centre[c][0]) * sx, -float(centre[c][1]) * sy, len(self._city_idx[c])) for c in cities]
        groups: dict[str, list[str]] = {}
        radii: dict[str, float] = {}
        k, cap = self.k, self._disc_cap()
        for members, _, _, r in layout_discs(pts, DISC_GAP * k, lambda n: disc_radius(n, k, cap),
                                             lambda n: disc_min_radius(n, k)):
            # biggest city first (it names the group), ties by id: never an arbitrary one
            cs = sorted((cities[i] for i in members), key=lambda c: (-len(self._city_idx[c]), c))
            key = "|".join(sorted(cs))
            groups[key] = cs
            radii[key] = r
        for key in [k for k in self._clusters if k not in groups]:
            self.vb.removeItem(self._clusters.pop(key))
            self._next_ok.pop(key, None)
        self._groups = groups
        self._group_of = {c: key for key, cs in groups.items() for c in cs}
        period, n = 1.0 / CLUSTER_HZ, max(1, len(groups))
        for k, (key, cs) in enumerate(groups.items()):
            item = self._clusters.get(key)
            if item is None:
                item = ClusterItem(key, self.ctx, self._font, self.k)
                self._clusters[key] = item
                self.vb.addItem(item)
                self._next_ok[key] = self._now + period * k / n  # staggered repaints
            w = np.array([len(self._city_idx[c]) for c in cs], float)
            pos = (np.array([centre[c] for c in cs]) * w[:, None]).sum(axis=0) / w.sum()
            item.setPos(float(pos[0]), float(pos[1]))
            item.setVisible(bool(self._clustered))
            self._show_counts(key, item)
            item.set_radius(radii[key])
        self._stale_groups.clear()
        self._stale_since.clear()
        self._place_cluster_labels()

    def store_name(self, store_id: str) -> str:
        """The store's name in the UI language: ``name_en`` on an English wall when the
        feed has one, else ``name``, else the id."""
        return store_name(self.state.stores, store_id, self.ctx.lang)

    def _city_name(self, city: str) -> str:
        idx = self._city_idx.get(city)
        c = (self.state.stores.get(self._ids[int(idx[0])]) or {}).get("city") or {} if idx is not None and len(idx) else {}
        if self.ctx.lang == "zh":
            return c.get("name") or city or "?"
        return c.get("name_en") or c.get("name") or city or "?"

    def _show_counts(self, key: str, item: ClusterItem) -> bool:
        cs = self._groups.get(key, [])
        counts: dict[str, int] = {}
        for c in cs:
            for s, n in self._city_counts.get(c, {}).items():
                counts[s] = counts.get(s, 0) + n
        name = self._city_name(cs[0]) if cs else "?"
        if len(cs) > 1:
            name += f" +{len(cs) - 1}"
        return item.set_counts(name, counts)

    def _place_cluster_labels(self) -> None:
        if not self._clusters:
            return
        keys = sorted(self._clusters, key=lambda k: (
            -max((STATUS_RANK.get(s, 3) for s in self._clusters[k].counts), default=0),
            -sum(self._clusters[k].counts.values()), k))
        anchors, sizes = [], []
        for k in keys:
            item = self._clusters[k]
            p = self.vb.mapViewToScene(item.pos())
            anchors.append((p.x(), p.y(), item.radius))
            sizes.append(item.label_size())
        placed = place_labels(anchors, sizes, self._label_bounds(), scale=self.k)
        for k, off in zip(keys, placed):
            self._clusters[k].set_label(off)

    def _update_labels(self) -> None:
        """Label the stores in view (when at most ``label_max``), worst first, without
        overlaps; only labels whose text, colour or place changed repaint."""
        self._labelled = []
        inside = np.zeros(0, int)
        if not self._clustered and len(self._xy):
            (x0, x1), (y0, y1) = self.vb.viewRange()
            inside = np.nonzero((self._xy[:, 0] >= x0) & (self._xy[:, 0] <= x1) &
                                (self._xy[:, 1] >= y0) & (self._xy[:, 1] <= y1))[0]
            if len(inside) > self.opts["label_max"]:
                inside = np.zeros(0, int)
        rank = STATUS_RANK
        order = sorted(inside.tolist(), key=lambda i: (-rank.get(self._worst[i], 3), self._ids[i]))
        anchors, sizes, texts = [], [], []
        for i in order:
            s = self._ids[i]
            name = self.store_name(s)
            glyph = STATUS_GLYPHS.get(self._worst[i], "")
            text = f"{glyph} {name}".strip()
            p = self.vb.mapViewToScene(QPointF(*self._xy[i]))
            anchors.append((p.x(), p.y(), self._style[i][1] * 0.6))
            sizes.append(self._label_proto.measure(text))
            texts.append((text, STATUS_COLORS[self._worst[i]] if glyph else self.ctx.theme.text))
        placed = place_labels(anchors, sizes, self._label_bounds(), scale=self.k) if anchors else []
        n = 0
        for i, (text, color), off, (_, _, r) in zip(order, texts, placed, anchors):
            if off is None:
                continue
            if n == len(self._labels):
                item = StoreLabelItem(self._font, self.k)
                self.vb.addItem(item)
                self._labels.append(item)
            item = self._labels[n]
            item.setPos(float(self._xy[i, 0]), float(self._xy[i, 1]))
            item.set_label(text, color, off, r)
            item.setVisible(True)
            self._labelled.append(self._ids[i])
            n += 1
        for item in self._labels[n:]:
            item.setVisible(False)

    def _label_bounds(self) -> tuple[float, float, float, float]:
        """Scene box labels must stay in: the view minus the banner and the legend strip."""
        b = self.vb.sceneBoundingRect()
        return b.left(), b.top() + self.overlay._top_h(), b.right(), b.bottom() - self.legend_h

    def label_rects(self) -> dict[str, tuple[float, float, float, float]]:
        """Scene (pixel) rectangles of the shown labels: store id or cluster key ->
        (x0, y0, x1, y1). For tests and debugging."""
        out = {}

        def rect(item, off, size):
            p = self.vb.mapViewToScene(item.pos())
            return (p.x() + off[0], p.y() + off[1], p.x() + off[0] + size[0], p.y() + off[1] + size[1])

        for s, item in zip(self._labelled, self._labels):
            out[s] = rect(item, item.off, item.measure(item.text))
        if self._clustered:
            for k, item in self._clusters.items():
                if item.label_off is not None:
                    out[k] = rect(item, item.label_off, item.label_size())
        return out

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
        """One outline per store in the scope of a running or failed change (a failed one
        wins: it is drawn thicker and red); the running/failed changes come from the
        state's status index, so the cost follows them, not every change."""
        worst: dict[str, str] = {}
        self._chain_wide = []
        for ch in self.state.changes_with_status("running", "failed", "rolled_back"):
            status = ch["status"]
            stores = self._change_stores(ch)
            if stores is None:
                self._chain_wide.append((str(ch.get("title", ch.get("id", ""))), status))
                continue
            for s in stores:
                if worst.get(s, "running") == "running":
                    worst[s] = status
        size = self._marker_px * 2.2
        if worst:
            pens = {st: pg.mkPen(CHANGE_STATUS_COLORS[st], width=(3 if st != "running" else 2) * self.k)
                    for st in set(worst.values())}
            a = self._xy[[self._index[s] for s in worst]]
            self.blast.setData(x=a[:, 0], y=a[:, 1], symbol="s", size=size,
                               pen=[pens[st] for st in worst.values()], brush=pg.mkBrush(0, 0, 0, 0))
        else:
            self.blast.setData([], [])
        self.overlay.update()

    def _update_pulse_list(self, now: float) -> None:
        out = []
        for inc in self.state.open_incidents():
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
        base, width = self._marker_px, 3 * self.k
        for s, t0, kind in live:
            period = 1.2 if kind == "incident" else 3.0
            phase = round(((now - t0) % period) / period * 8) / 8  # 8 steps: bounded atlas
            color = QColor(STATUS_COLORS["crit"] if kind == "incident" else STORE_STATUS_COLORS["opening"])
            color.setAlpha(int(255 * (1 - phase) * (1.0 if kind == "incident" else 0.7)))
            xs.append(self._xy[self._index[s], 0])
            ys.append(self._xy[self._index[s], 1])
            sizes.append(base * (1.2 + (3.0 if kind == "incident" else 1.2) * phase))
            pens.append(pg.mkPen(color, width=width))
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
        """Handle a click at a view position: a cluster under it zooms in; a store under
        it (:meth:`store_at`) emits ``store_clicked``."""
        if self._clustered:
            best = self.cluster_at(lon, lat)
            if best is not None:  # zoom to the cluster's stores: a merged cluster splits
                idx = np.concatenate([self._city_idx[c] for c in self._groups[best]])
                (x0, y0), (x1, y1) = self._xy[idx].min(axis=0), self._xy[idx].max(axis=0)
                self.zoom_to(float(x0), float(y0), float(x1), float(y1))
            return
        s = self.store_at(lon, lat)
        if s is not None:
            self.store_clicked.emit(s)

    def cluster_at(self, lon: float, lat: float) -> str | None:
        """The key of the cluster donut nearest to a view position within its ring."""
        px, py = self.vb.viewPixelSize()
        best, best_d = None, 1e18
        for key, item in self._clusters.items():
            d = math.hypot((item.pos().x() - lon) / px, (item.pos().y() - lat) / py)
            if d <= item.radius + 6 * self.k and d < best_d:
                best, best_d = key, d
        return best

    def store_at(self, lon: float, lat: float) -> str | None:
        """The store whose marker is under a view position: of several, the worst (then
        the nearest); when none is, the nearest within a few pixels; else None."""
        if not len(self._xy):
            return None
        px, py = self.vb.viewPixelSize()
        d = np.hypot((self._xy[:, 0] - lon) / px, (self._xy[:, 1] - lat) / py)
        reach = np.array([st[1] for st in self._style]) / 2 + 2 * self.k
        under = np.nonzero(d <= reach)[0]
        if len(under):
            rank = STATUS_RANK
            i = max(under.tolist(), key=lambda i: (rank.get(self._worst[i], 3), -d[i]))
            return self._ids[i]
        i = int(np.argmin(d))
        return self._ids[i] if d[i] <= self._marker_px * 0.8 + 4 * self.k else None

    def tooltip_at(self, lon: float, lat: float) -> str | None:
        """The hover text at a view position: the store under it (name, city, status,
        open incidents) or, zoomed out, the cluster's store counts; None over nothing."""
        tr = self.ctx.tr
        if self._clustered:
            key = self.cluster_at(lon, lat)
            if key is None:
                return None
            item = self._clusters[key]
            counts = ", ".join(f"{n} {tr(s)}" for s, n in sorted(
                item.counts.items(), key=lambda kv: -STATUS_RANK.get(kv[0], 3)) if n)
            cities = " / ".join(self._city_name(c) for c in self._groups.get(key, []))
            return f"{cities}\n{sum(item.counts.values())} {tr('stores')}: {counts}"
        s = self.store_at(lon, lat)
        if s is None:
            return None
        st = self.state.stores.get(s) or {}
        city = city_name(st, self.ctx.lang)
        worst = self._worst[self._index[s]]
        lines = [self.store_name(s), f"{city} \u00b7 {tr('store')}: {tr(st.get('status', 'open'))}",
                 f"{tr('devices')}: {(STATUS_GLYPHS.get(worst) + ' ') if STATUS_GLYPHS.get(worst) else ''}{tr(worst)}"]
        incidents = sorted(self.state.store_incidents(s), key=lambda inc: (str(inc.get("severity", "P9")),
                                                                            -float(inc.get("opened_at") or 0)))
        if not incidents:
            lines.append(tr("No open incidents"))
        else:
            lines.append(f"{len(incidents)} {tr('open incidents')}:")
            for inc in incidents[:TOOLTIP_INCIDENTS]:
                lines.append(f"  {inc.get('severity', '')} {inc.get('title', inc.get('id', ''))}".rstrip())
            if len(incidents) > TOOLTIP_INCIDENTS:
                lines.append(f"  +{len(incidents) - TOOLTIP_INCIDENTS}")
        return "\n".join(lines)

    def hover_text(self, scene_pos) -> str | None:
        """:meth:`tooltip_at` for a scene position (where the mouse is)."""
        if not len(self._xy):
            return None
        pos = self.vb.mapSceneToView(scene_pos)
        return self.tooltip_at(pos.x(), pos.y())

    def _on_hover(self, scene_pos) -> None:
        text = self.hover_text(scene_pos)
        if text:
            QToolTip.showText(QCursor.pos(), text, self.view)
        else:
            QToolTip.hideText()

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
            return True
        else:
            return False
        self.auto_fit = False   # moved by hand: stays until Home
        return True

    def resizeEvent(self, event):  # noqa: N802 (Qt)
        super().resizeEvent(event)
        self.view.setGeometry(self.rect())  # no layout: keeps top-level size hints quiet
        self.overlay.setGeometry(self.rect())
        self.overlay.raise_()


__all__ = ["StoreMapPanel", "ClusterItem", "rings_path"]
