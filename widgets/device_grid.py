"""Device health grid: one cell per device, stores as rows, device kinds as column blocks.

``DeviceGridPanel(state, options, ctx)``; the shell calls ``refresh(dirty, now)`` once per
frame and ``set_dimmed(True)`` while the feed is stale; ``store_clicked(store_id)`` fires
on a click (cell, row label or rolled-up store). Call :meth:`DeviceGridPanel.show_store`
to turn the panel into the one-store drill-down page (``show_store(None)`` goes back).

Scale: in scope mode the dense cells live in ONE ``uint32`` numpy pixel buffer shared with
a ``QImage``; a frame writes only the cells of ``dirty.devices`` (one vectorised numpy
assignment) and asks Qt to repaint just those rectangles (the paint walks the dirty
region's rectangles, never its bounding box), so cost follows change, not wall size. Each
status has a baked pixel pattern besides its colour (warn: dot, crit: triangle, down:
cross, maint: bar, unknown: ring, past-TTL: hatch), readable for the colour blind and on a
washed-out projector. A store row is drawn as cells only when its name can be drawn
readably beside them (label font at least ``LABEL_MIN_PX``) and its cells are at least
``min_cell_px``: when not every store fits that way, the worst stores keep their rows and
the rest are rolled up to one cell per store (worst status, with its pattern), under a
note that says how many are rolled up and how many of them are bad -- like the "more"
cell of Zabbix's honeycomb, rather than a mosaic of unlabelled dots.

``kinds`` filters: only devices of the listed kinds are laid out, counted, sorted on and
shown on the store page (the header says "filtered to:" when that hides devices).

Layout vs. order: a full layout (cell size, kind blocks, every device's offset inside its
store row) runs only when the set of stores or devices, the size or the mode changes. The
worst-first re-sort (every ``resort_s``) re-places the existing rows: only rows that moved
are re-blitted and repainted, and only the rolled-up cells whose status changed; it ranks
stores with one reduction over the laid-out codes and keeps the name order between sorts.
Each store's worst code is kept current by the frames' device changes (``_scode``): the
rolled-up cells and their note read it, never every store. A frame looks up only the
devices the state names as created, deleted or moved (``Dirty.moved``) to know whether a
full layout is due. The per-kind header counts repaint at most ``HEADER_HZ`` times a second.

Options (checked by the widget's spec, :mod:`wallboard.layout.specs.device_grid`, which
the layout uses too; a bad one is reported on the panel and in ``errors``, its default
stays): ``mode`` ``"scope"|"store"``, ``store`` (store id for mode store), ``order``
``"worst"|"fixed"``, ``min_cell_px`` (default 10), ``max_cell_px`` (36), ``resort_s``
(worst-first re-sort period, default 5 s), ``kinds`` (list: the only kinds shown, in this
column order; empty = every kind, standard order), ``key_metric`` (``{kind: metric}``
shown in store mode), ``allow_unlabelled`` (default false: true lets rows shrink below a
readable label down to ``min_cell_px``, a mosaic for a workstation or a benchmark, never
for a wall read from 5 m).

UI scale: cell sizes (``min_cell_px`` / ``max_cell_px``), margins, the header, the store
label column and its font, the count chips, the rolled-up strip and the store page are
all sized for a 1080-line wall and multiplied together by :func:`widgets.base.ui_scale`,
read at each full layout (``self._k``; the shell sets it before building panels).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter
from PySide6.QtWidgets import QToolTip, QWidget

from wallboard.layout.specs.device_grid import SPEC
from wallboard.widgets._grid_cells import (  # noqa: F401 (re-exported)
    CODE, CODE_RANK, CODES, COUNT_GAP, KIND_CAPS, KIND_ORDER, KIND_SHORT, LABEL_MIN_PX,
    ROLL_CELL_PX, STALE, _rgb, cell_templates, label_px, labelled_min_cell,
    place_rows, px, row_width,
)
from wallboard.widgets._grid_paint import GridPainting
from wallboard.widgets._names import city_name, store_name
from wallboard.widgets.base import (
    STATUS_GLYPHS, PanelContext, age_text, paint_dim,
    register_translations, ui_font, ui_scale,
)

register_translations({
    "{n} stores rolled up - drill down or enlarge to see their devices":
        "{n} 家门店已汇总 - 点击门店或放大查看设备",
    "{n} stores rolled up to one cell each (worst status): too many to label readably":
        "{n} 家门店汇总为每店一格（最差状态）：门店太多，无法清晰标注",
    "+{n} more": "另 {n} 家", "filtered to:": "仅显示：",
    "devices": "设备", "stores": "门店", "No devices in scope": "范围内无设备",
    "Store": "门店", "Kind": "类型", "Status": "状态", "Age": "时长", "Message": "消息",
    "past TTL": "超时未上报", "Unknown option": "未知选项",
    "pos": "收银", "self_checkout": "自助收银", "scale": "电子秤", "esl_gateway": "价签网关",
    "camera": "摄像头", "gate": "闸机", "printer": "打印机", "ap": "无线AP", "router": "路由器",
    "back": "返回",
})

#: Repaints per second of the per-kind counts in the header (they change every frame
#: under load; twice a second is as fast as anyone reads them).
HEADER_HZ = 2.0
_DIGITS = re.compile(r"(\d+)")
#: Height (px of a 1080-line wall) of the "rolled up" note above the rolled-up cells.
ROLL_TOP = 28
#: Cell code of each worst-first rank (the rank shared by unknown and past-TTL maps to
#: unknown; :meth:`DeviceGridPanel.store_codes` settles that tie per store).
_RANK_CODE = np.zeros(int(CODE_RANK.max()) + 1, np.uint8)
for _c in range(len(CODES) - 1, -1, -1):
    _RANK_CODE[CODE_RANK[_c]] = _c
_TIE_RANK = int(CODE_RANK[STALE])
#: From this cell size (px) on, :meth:`DeviceGridPanel._blit` copies cell by cell.
_SLICE_BLIT_PX = 10
_TEMPLATES: dict[int, np.ndarray] = {}


def _templates(c: int) -> np.ndarray:
    """The cell patterns of size ``c`` (built once per size; read-only)."""
    t = _TEMPLATES.get(c)
    if t is None:
        t = _TEMPLATES[c] = cell_templates(c)
        t.flags.writeable = False
    return t


def _name_key(text: str) -> list[tuple]:
    """Sort key of a store name that compares numbers by value ("#2" before "#10")."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in _DIGITS.split(text) if t]


@dataclass
class _Row:
    store: str
    x: int
    y: int
    h: int
    label_w: int
    cells_w: int


class DeviceGridPanel(GridPainting, QWidget):
    """The device health grid panel (see module docstring)."""

    store_clicked = Signal(str)

    def __init__(self, state, options: dict | None, ctx: PanelContext, parent=None):
        super().__init__(parent)
        self.state, self.ctx = state, ctx
        self.opts, self.errors = SPEC.widget_options(options)
        if self.opts["mode"] == "store" and not self.opts["store"]:   # reported by the spec
            self.opts["mode"] = "scope"
        self._store_page = self.opts["store"] if self.opts["mode"] == "store" else None
        self._kind_filter = self._check_kinds()
        self._hidden = 0   # scope devices of kinds the filter leaves out
        self._dimmed = False
        self._k = ui_scale()  # the UI scale, re-read at every full layout
        self._now = ctx.clock()
        self._last_sort = -1e18
        self._order: list[str] = []
        self._buf = np.zeros((1, 1), np.uint32)
        self._img: QImage | None = None
        # every device of the scope (placed or rolled up), grouped by store
        self._dev_ids: list[str] = []
        self._dev_index: dict[str, int] = {}
        self._dev_store = np.zeros(0, np.int32)     # index into self._stores
        self._rel = np.zeros((0, 2), np.int32)      # offset inside its store row
        self._xy = np.zeros((0, 2), np.int32)       # cell position; -1 when rolled up
        self._placed = np.zeros(0, bool)
        self._codes = np.zeros(0, np.uint8)
        self._kind_of = np.zeros(0, np.int16)
        self._stores: list[str] = []
        self._store_k: dict[str, int] = {}
        self._store_start = np.zeros(1, np.int64)  # store k's devices: [start[k], start[k+1])
        self._lines: dict[str, int] = {}
        self._geom: tuple = ()
        self._kinds: list[str] = []
        self._block_px: list[int] = []
        self._rows: list[_Row] = []
        self._row_box = np.zeros((0, 4), np.int64)
        self._row_origin = np.zeros((0, 2), np.int32)
        self._row_of_store: dict[str, int] = {}
        self._rolled: list[str] = []
        self._rolled_set: set[str] = set()
        self._known_devices: set[str] = set()  # every device laid out (rolled up too)
        self._name_keys: dict[str, tuple] = {}  # store -> (name, its sort key), see _order_stores
        self._name_pos: dict[str, int] = {}     # store -> its place in name order
        #: worst shown code per laid-out store (``self._stores`` order), kept current by
        #: every device change: the rolled-up cells, the roll-up note and the re-sort read it
        self._scode = np.zeros(0, np.uint8)
        self._roll_xy = np.zeros((0, 2), np.int32)
        self._roll_codes = np.zeros(0, np.uint8)   # what the rolled-up cells show
        self._rolled_k = np.zeros(0, np.int64)     # rolled-up stores (shown first) as store indexes
        self._roll_at = np.zeros(0, np.int64)      # store index -> its rolled-up cell, -1: none
        self._roll_rect = QRect()
        self._roll_tmpl = _templates(1)
        self._cell = 10
        self._pitch = 12
        self._count_w = 0
        self._cellmap = np.full((1, 1), -1, np.int32)
        self._kind_counts = np.zeros((0, len(CODES)), np.int64)
        self._header_h = 0
        self._header_due = False
        self._header_at = -1e18
        self._label_font = ui_font(12)
        self._label_em = 9.5   # widest store label / its font size (measured per layout)
        #: store -> how its row label was last drawn (a text-fit result; for tests)
        self.label_fits: dict = {}
        #: device -> how its key-metric line was last drawn on the store page (for tests)
        self.cell_fits: dict = {}
        self._need_layout = True
        self._store_cells: list[tuple[QRect, str]] = []
        self.layouts = 0   # full layouts done (the re-sort avoids them)
        self.resorts = 0   # cheap re-sorts done
        self.setMouseTracking(True)
        self.setMinimumSize(200, 120)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)

    # ------------------------------------------------------------------ public API

    def show_store(self, store_id: str | None) -> None:
        """Show one store's devices (drill-down page), or the scope again with None."""
        self._store_page = store_id
        self._need_layout = True
        self.update()

    def set_dimmed(self, dimmed: bool) -> None:
        """Veil the panel while the feed is stale (its data may be old)."""
        if dimmed != self._dimmed:
            self._dimmed = dimmed
            self.update()

    def refresh(self, dirty, now: float) -> None:
        """Apply a frame's dirty set: repaint only the cells and margins it names.

        Cheap when ``dirty`` names nothing of this panel. A new or deleted device, a new
        store, a resize or the mode lays the grid out again; a due worst-first re-sort
        (order = worst, every ``resort_s``) only moves the rows whose place changed.
        """
        self._now = now
        if self._store_page is not None:
            if dirty.all or self._store_page in dirty.stores:
                self.update()
            return
        if dirty.all or self._need_layout or self._structure_changed(dirty):
            self._relayout(now)
            return
        if dirty.devices:  # first: the worst-first re-sort ranks on these codes
            self._update_devices(dirty.devices, now)
        if self.opts["order"] == "worst" and now - self._last_sort >= self.opts["resort_s"] \
                and (dirty.devices or dirty.stores):
            self._last_sort = now
            order = self._sorted_stores(now)
            if order != self._order and not self._resort(order):
                self._relayout(now)
                return
        if self._header_due and now - self._header_at >= 1.0 / HEADER_HZ:
            self._header_due = False
            self._header_at = now
            self.update(0, 0, self.width(), self._header_h)

    # ------------------------------------------------------------------ model

    def _check_kinds(self) -> frozenset | None:
        """The ``kinds`` filter (None: every kind; the spec checked the names)."""
        kinds = self.opts["kinds"] or None
        self.opts["kinds"] = kinds
        return frozenset(kinds) if kinds else None

    def _kind_shown(self, dev: dict | None) -> bool:
        return self._kind_filter is None or (dev or {}).get("kind") in self._kind_filter

    def _devices_of(self, store_id: str) -> list[str]:
        """The store's devices this panel shows (the ``kinds`` filter applied)."""
        devs = self.state.store_devices(store_id)
        if self._kind_filter is None:
            return list(devs)
        D = self.state.devices
        return [d for d in devs if self._kind_shown(D.get(d))]

    def _scope_stores(self) -> list[str]:
        st = self.state
        if self.ctx.whole_chain():   # no per-store check for a chain-wide wall
            return list(st.stores)
        return [sid for sid, s in st.stores.items() if self.ctx.in_scope_store(s, sid)]

    def _order_stores(self, stores: list[str], rank) -> list[str]:
        """``stores`` in the panel's order: by name (fixed) or worst rank first (``rank``:
        a function of the store, or the ranks in ``stores`` order); names compare numbers
        by value ("#2" before "#10")."""
        S, cache = self.state.stores, self._name_keys
        renamed = False
        for sid in stores:
            rec = S.get(sid)
            text = str(rec.get("name", sid)) if rec else sid
            hit = cache.get(sid)
            if hit is None or hit[0] != text:   # split a name once, not at every re-sort
                cache[sid] = (text, _name_key(text))
                renamed = True
        # each store's place in name order: sorted again only when a name or the set of
        # stores changed (the worst-first re-sort then is one lexsort)
        pos = self._name_pos
        if renamed or len(pos) != len(stores) or not all(map(pos.__contains__, stores)):
            pos = self._name_pos = {s: i for i, s in enumerate(
                sorted(stores, key=lambda s: (cache[s][1], s)))}
        if self.opts["order"] == "fixed":
            return sorted(stores, key=pos.__getitem__)
        ranks = (np.fromiter(map(rank, stores), np.int64, len(stores)) if callable(rank)
                 else np.asarray(rank, np.int64).reshape(-1))
        names = np.fromiter(map(pos.__getitem__, stores), np.int64, len(stores))
        return [stores[i] for i in np.lexsort((names, -ranks)).tolist()]

    def _store_ranks(self) -> np.ndarray:
        """Worst-status rank per laid-out store (``self._stores`` order), from the cell
        codes of its shown devices (one vectorised pass)."""
        ok = int(CODE_RANK[CODE["ok"]])
        r = np.full(len(self._stores), ok, np.int16)
        n = len(self._codes)
        if n and len(r):
            start = self._store_start
            rk = np.empty(n + 1, np.int16)
            rk[:n] = CODE_RANK[self._codes]
            rk[n] = ok
            best = np.maximum.reduceat(rk, np.minimum(start[:-1], n))  # stores' slices
            has = start[1:] > start[:-1]
            r[has] = np.maximum(best[has], ok)
        return r

    def store_code(self, store_id: str) -> int:
        """Cell code of a laid-out store's worst shown device (ok without devices)."""
        k = self._store_k.get(store_id)
        if k is None:
            return CODE.get(self.state.store_worst(store_id), CODE["unknown"])
        c = self._codes[self._store_start[k]:self._store_start[k + 1]]
        return int(c[np.argmax(CODE_RANK[c])]) if len(c) else CODE["ok"]

    def store_codes(self, store_ids) -> np.ndarray:
        """Cell codes (``uint8``) of many stores at once, as :meth:`store_code` gives them
        one by one: laid-out stores in one vectorised pass over the laid-out code array
        (max-rank reduction per store slice; among unknown and past-TTL, the first
        device's code wins, as in :meth:`store_code`), the others looked up singly."""
        store_ids = list(store_ids)
        out = np.full(len(store_ids), CODE["ok"], np.uint8)
        k_of = self._store_k
        sel, ks = [], []
        for i, s in enumerate(store_ids):
            k = k_of.get(s)
            if k is None:
                out[i] = self.store_code(s)
            else:
                sel.append(i)
                ks.append(k)
        if ks:
            out[np.asarray(sel, np.int64)] = self._codes_of_stores(np.asarray(ks, np.int64))
        return out

    def _codes_of_stores(self, ks: np.ndarray) -> np.ndarray:
        """:meth:`store_codes` of laid-out stores given as indexes into ``self._stores``."""
        start, end = self._store_start[ks], self._store_start[ks + 1]
        lens = end - start
        cum = np.zeros(len(ks) + 1, np.int64)
        np.cumsum(lens, out=cum[1:])
        if 4 * int(cum[-1]) < len(self._codes):  # few stores: gather just their slices
            all_codes = self._codes[np.repeat(start - cum[:-1], lens) + np.arange(cum[-1])]
            start, end = cum[:-1], cum[1:]
        else:
            all_codes = self._codes
        n = len(all_codes)
        rk = np.empty(n + 1, np.int8)
        rk[:n] = CODE_RANK[all_codes]
        rk[n] = -1
        bounds = np.empty(2 * len(ks), np.int64)
        bounds[0::2], bounds[1::2] = start, end
        best = np.maximum.reduceat(rk, bounds)[0::2]
        codes = _RANK_CODE[np.maximum(best, 0)]   # -1: a store without devices (set to ok below)
        tie = np.nonzero((best == _TIE_RANK) & (end > start))[0]
        if len(tie):  # unknown or past-TTL: the first such device of the store decides
            at = np.flatnonzero(rk[:n] == _TIE_RANK)
            first = at[np.searchsorted(at, start[tie])]
            codes[tie] = all_codes[first]
        codes[end <= start] = CODE["ok"]
        return codes

    def store_code_counts(self, store_id: str) -> list[int]:
        """Shown devices of a store per cell code (``CODES`` order)."""
        k = self._store_k.get(store_id)
        if k is None:
            arr = [0] * len(CODES)
            for d in self._devices_of(store_id):
                arr[self._code(d, self._now)] += 1
            return arr
        c = self._codes[self._store_start[k]:self._store_start[k + 1]]
        return np.bincount(c, minlength=len(CODES)).tolist()

    def _codes_of(self, dev_ids, now: float) -> list[int]:
        """:meth:`_code` of many devices in one tight loop (the per-frame path)."""
        status_of, D = self.state.device_status, self.state.devices
        code_get, unknown = CODE.get, CODE["unknown"]
        out = []
        for d in dev_ids:
            try:
                c = code_get(status_of(d, now), unknown)
            except KeyError:  # deleted since the last layout
                out.append(unknown)
                continue
            if c == unknown and (D.get(d) or {}).get("status", "unknown") != "unknown":
                c = STALE
            out.append(c)
        return out

    def _code(self, dev_id: str, now: float) -> int:
        try:
            status = self.state.device_status(dev_id, now)
        except KeyError:  # deleted since the last layout
            return CODE["unknown"]
        if status == "unknown":
            dev = self.state.devices.get(dev_id) or {}
            if dev.get("status", "unknown") != "unknown":
                return STALE
        return CODE.get(status, CODE["unknown"])

    def _sorted_stores(self, now: float) -> list[str]:
        """The scope's stores in the panel's order, ranked by the laid-out cell codes (a
        store not laid out yet ranks as ok: it forces a full layout anyway)."""
        scope = self._scope_stores()
        k_of = self._store_k
        ks = np.fromiter((k_of.get(s, -1) for s in scope), np.int64, len(scope))
        ranks = np.append(self._store_ranks(), int(CODE_RANK[CODE["ok"]]))  # [-1]: not laid out
        return self._order_stores(scope, ranks[ks])

    def _structure_changed(self, dirty) -> bool:
        """Whether the frame needs a full layout: a laid-out device was deleted or moved
        (``dirty.moved``: the state names the devices created, deleted or moved to another
        store or kind, so status updates are never looked up here), a new or moved device
        is now shown, or a store not laid out entered the scope."""
        known, D, S = self._known_devices, self.state.devices, self.state.stores
        for d in dirty.moved:
            if d in known:
                return True
            rec = D.get(d)
            if rec is not None and self._kind_shown(rec):
                sid = rec.get("store")
                if self.ctx.in_scope_store(S.get(sid), sid):
                    return True
        k_of = self._store_k
        for s in [s for s in dirty.stores if s not in k_of]:
            if s in S and self.ctx.in_scope_store(S[s], s):
                return True
        return False

    def row_label(self, store_id: str) -> tuple[str, str]:
        """(name, city) a store row shows; the city is left out ("") when the name
        already says it (e.g. "FreshDa Hangzhou #12")."""
        name = store_name(self.state.stores, store_id, self.ctx.lang)
        cname = city_name(self.state.stores.get(store_id), self.ctx.lang)
        return name, ("" if cname and cname in name else cname)

    def _measure_labels(self, stores: list[str]) -> float:
        """Widest one-line row label in units of its font size (capped at 24)."""
        f = QFont(ui_font(10))
        f.setPixelSize(100)
        fm = QFontMetrics(f)
        widest = 0
        for s in stores:
            name, city = self.row_label(s)
            widest = max(widest, fm.horizontalAdvance(f"{name} · {city}" if city else name))
        return min(24.0, max(9.5, widest / 100 + 0.3))

    def _kind_list(self, devs_by_store: dict[str, list[str]]) -> list[str]:
        seen = {self.state.devices[d].get("kind", "?") for ds in devs_by_store.values() for d in ds}
        fixed = list(self.opts["kinds"] or KIND_ORDER)   # (the filter already left others out)
        return [k for k in fixed if k in seen] + sorted(seen - set(fixed))

    # ------------------------------------------------------------------ layout

    def resizeEvent(self, event):  # noqa: N802 (Qt)
        self._need_layout = True
        self._relayout(self._now)
        super().resizeEvent(event)

    def _relayout(self, now: float) -> None:
        """Full layout: cell size, kind blocks, each device's offset in its row, then
        placement of the rows in the current order. Costly (all devices); see _resort."""
        self._need_layout = False
        self.layouts += 1
        self._k = ui_scale()
        W, H = max(1, self.width()), max(1, self.height())
        self._buf = np.empty((H, W), np.uint32)
        self._buf[:] = _rgb(self.ctx.theme.panel)
        self._img = QImage(self._buf.data, W, H, W * 4, QImage.Format.Format_RGB32)
        self._rows, self._row_of_store, self._rolled, self._rolled_set = [], {}, [], set()
        self._dev_ids, self._dev_index, self._stores, self._store_k = [], {}, [], {}
        self._xy = np.zeros((0, 2), np.int32)
        self._placed = np.zeros(0, bool)
        self._roll_xy = np.zeros((0, 2), np.int32)
        self._rolled_k = self._roll_at = np.zeros(0, np.int64)
        if self._store_page is not None:
            self.update()
            return
        st = self.state
        scope = self._scope_stores()
        devs, self._hidden = {}, 0
        for s in scope:
            shown = self._devices_of(s)
            if self._kind_filter is not None:
                self._hidden += len(st.store_devices(s)) - len(shown)
            devs[s] = sorted(shown, key=lambda d: (str(st.devices[d].get("name", d)), d))
        code_of = {d: self._code(d, now) for ds in devs.values() for d in ds}
        ok = int(CODE_RANK[CODE["ok"]])
        self._order = self._order_stores(
            scope, [max((int(CODE_RANK[code_of[d]]) for d in devs[s]), default=ok) for s in scope])
        self._last_sort = now
        self._known_devices = set(code_of)
        self._label_em = self._measure_labels(scope)
        kinds = self._kind_list(devs)
        self._kinds = kinds
        kidx = {k: i for i, k in enumerate(kinds)}
        dev_kind = {d: kidx[st.devices[d].get("kind", "?")] for ds in devs.values() for d in ds}
        per = {s: np.bincount([dev_kind[d] for d in devs[s]], minlength=len(kinds))
               if devs[s] else np.zeros(len(kinds), int) for s in self._order}
        maxc = np.max(np.array(list(per.values())), axis=0) if per and kinds else np.zeros(0, int)
        best = None
        for cap in KIND_CAPS:  # wider blocks or more lines per store: most stores placed,
            # then rows inside the panel width, then the biggest cells
            widths_c = np.minimum(np.maximum(maxc, 1), cap)
            lines_c = {s: max(1, int(np.max(np.ceil(per[s] / widths_c)))) if kinds else 1
                       for s in self._order}
            ncells_c = int(widths_c.sum()) + max(0, len(kinds) - 1)  # blank cell between blocks
            fit_c = self._fit(W, H, ncells_c, lines_c)
            fits = row_width(fit_c[2], ncells_c * fit_c[1], fit_c[3], self._k) <= W
            key = (len(fit_c[6]), fits, fit_c[0])
            if best is None or key > best[0]:
                best = (key, fit_c, widths_c, lines_c, ncells_c)
        _, fit, widths, lines, ncells = best
        c, p, label_w, count_w, header_h, roll_h, placed = fit
        self._cell, self._pitch, self._header_h, self._count_w = c, p, header_h, count_w
        self._lines, self._geom = lines, (W, H, ncells, c, roll_h, label_w)
        self._block_px = [int(w) * p for w in widths]
        self._label_font = ui_font(10)
        self._label_font.setPixelSize(label_px(p, self._k))
        # every scope device's offset inside its row (kind blocks, wrapping lines)
        offs = np.concatenate([[0], np.cumsum(widths + 1)[:-1]]).astype(int) if kinds else []
        ids, rel, ks, owner = [], [], [], []
        for k, s in enumerate(self._order):
            counters = [0] * len(kinds)
            for d in devs[s]:
                kk = dev_kind[d]
                j = counters[kk]
                counters[kk] += 1
                rel.append((label_w + (offs[kk] + j % widths[kk]) * p, (j // widths[kk]) * p))
                ks.append(kk)
                ids.append(d)
                owner.append(k)
        self._stores = list(self._order)
        self._store_k = {s: k for k, s in enumerate(self._stores)}
        self._store_start = np.searchsorted(np.array(owner, np.int64), np.arange(len(self._stores) + 1))
        self._dev_ids = ids
        self._dev_index = {d: i for i, d in enumerate(ids)}
        self._rel = np.array(rel, np.int32).reshape(-1, 2)
        self._dev_store = np.array(owner, np.int32)
        self._kind_of = np.array(ks, np.int16)
        self._codes = np.array([code_of[d] for d in ids], np.uint8).reshape(-1)
        self._scode = self._codes_of_stores(np.arange(len(self._stores), dtype=np.int64))
        self._templates = _templates(c)
        self._apply_placement(placed)
        self._paint_cells(np.nonzero(self._placed)[0])
        self._count_kinds()
        self.update()

    def min_cell(self) -> int:
        """Smallest cell (screen px) a store row is drawn with: ``min_cell_px`` times the
        UI scale, and never so small that the row's store label is unreadable (unless
        ``allow_unlabelled``). Below it, stores are rolled up."""
        lo = int(self.opts["min_cell_px"] * self._k)
        if not self.opts["allow_unlabelled"]:
            lo = max(lo, labelled_min_cell(self._k))
        return lo

    def _fit(self, W: int, H: int, ncells: int, lines: dict[str, int]):
        """Largest cell size whose rows all fit (in height, and in width: a row wider
        than the panel would hide its last kind blocks and counts); else the smallest
        readable size (:meth:`min_cell`) with the rest rolled up."""
        order = self._order
        k = self._k  # cell sizes are for a 1080-line wall; a 2160-line wall doubles them
        lo = self.min_cell()
        hi = max(lo, int(self.opts["max_cell_px"] * k))
        best = None
        a, b = lo, hi
        while a <= b:  # fitting is monotonic in the cell size: binary search
            c = (a + b) // 2
            p, lw, cw, hh, placed = place_rows(order, lines, W, H, ncells, c, 0, k, self._label_em)
            if len(placed) == len(order) and (c == lo or row_width(lw, ncells * p, cw, k) <= W):
                best = (c, p, lw, cw, hh, 0, placed)
                a = c + 1
            else:
                b = c - 1
        if best is not None:
            return best
        roll_h = 0
        rc, rp = self._roll_cell()
        for _ in range(3):  # reserve room for the rolled-up strip, then re-place
            p, lw, cw, hh, placed = place_rows(order, lines, W, H, ncells, lo, roll_h, k, self._label_em)
            rest = len(order) - len(placed)
            per_line = max(1, (W - px(8, k)) // rp)
            need = px(ROLL_TOP + 2, k) + rp * math.ceil(rest / per_line)
            if need <= roll_h:
                break
            roll_h = min(need, H // 3)
        p, lw, cw, hh, placed = place_rows(order, lines, W, H, ncells, lo, roll_h, k, self._label_em)
        return (lo, p, lw, cw, hh, roll_h, placed)

    def _apply_placement(self, placed, blit_rolled: bool = True) -> np.ndarray:
        """Rows, device positions, rolled-up strip and hit map for a placement (the
        rolled-up cells are drawn too unless ``blit_rolled`` is False: the caller then
        draws them). Returns the row origin per store (-1 for rolled-up stores)."""
        W, H, ncells, c, roll_h, label_w = self._geom
        p = self._pitch
        origin = np.full((len(self._stores), 2), -1, np.int32)
        self._rows, self._row_of_store = [], {}
        for s, (x0, y0) in placed:
            self._row_of_store[s] = len(self._rows)
            self._rows.append(_Row(s, x0, y0, self._lines[s] * p, label_w, ncells * p))
        if placed:
            k_of = self._store_k
            origin[[k_of[s] for s, _ in placed]] = [xy for _, xy in placed]
        self._row_origin = origin
        rw = row_width(label_w, ncells * p, self._count_w, self._k)
        self._row_box = np.array([(r.x, r.y, r.x + rw, r.y + r.h) for r in self._rows], np.int64).reshape(-1, 4)
        # device cells: only the placed stores' slices are written (rows are few, devices many)
        n = len(self._dev_store)
        self._placed = np.zeros(n, bool)
        self._xy = np.full((n, 2), -1, np.int32)
        start = self._store_start
        for s, xy in placed:
            k = self._store_k[s]
            a, b = int(start[k]), int(start[k + 1])
            self._placed[a:b] = True
            self._xy[a:b] = self._rel[a:b] + xy
        placed_set = {s for s, _ in placed}
        self._rolled = [s for s in self._order if s not in placed_set]
        self._rolled_set = set(self._rolled)
        k_of = self._store_k
        self._rolled_k = np.fromiter(map(k_of.__getitem__, self._rolled), np.int64, len(self._rolled))
        self._layout_rolled(W, H, roll_h, blit_rolled)
        # hit map at cell resolution, sized to what was placed (a block may overhang a
        # narrow panel), never out of bounds
        xy = self._xy[self._placed]
        span_x = max(W, int(xy[:, 0].max()) + p) if len(xy) else W
        span_y = max(H, int(xy[:, 1].max()) + p) if len(xy) else H
        self._cellmap = np.full((span_y // p + 2, span_x // p + 2), -1, np.int32)
        if len(xy):
            self._cellmap[xy[:, 1] // p, xy[:, 0] // p] = np.nonzero(self._placed)[0]
        return origin

    def _resort(self, order: list[str]) -> bool:
        """Re-place the laid-out rows in a new order; re-blit and repaint only what the
        rows' new places change (:meth:`_redraw_moved_rows`). False when the new order needs a full layout (other stores, or rows
        of other heights no longer fitting the same way)."""
        if len(order) != len(self._stores) or not all(map(self._store_k.__contains__, order)):
            return False
        W, H, ncells, c, roll_h, label_w = self._geom
        p, _, _, _, placed = place_rows(order, self._lines, W, H, ncells, c, roll_h, self._k,
                                        self._label_em)
        if len(placed) != len(self._rows):
            return False
        old_rows = {(r.x, r.y): r.store for r in self._rows}
        old_roll_xy, old_roll_codes = self._roll_xy, self._roll_codes
        self._order = list(order)
        self._apply_placement(placed, blit_rolled=False)
        self._redraw_rolled(old_roll_xy, old_roll_codes)
        self.resorts += 1
        self._redraw_moved_rows(old_rows, label_w, ncells * p)
        return True

    def _redraw_moved_rows(self, old_rows: dict, label_w: int, cells_w: int) -> None:
        """After a re-sort: the rows now at each place. A place whose new store has the
        same cell pattern as the one it showed (same devices per kind, the usual case)
        gets only the cells whose status differs written again (the row is repainted
        whole: its name and counts change); other places are cleared and drawn whole. Clears come first: rows never overlap, but a taller
        old row may reach under the next new one."""
        panel, start, p = _rgb(self.ctx.theme.panel), self._store_start, self._pitch
        row_w = row_width(label_w, cells_w, self._count_w, self._k)
        rel, codes, lines = self._rel, self._codes, self._lines
        clears, whole, cells = [], [], []
        for row in self._rows:
            prev = old_rows.pop((row.x, row.y), None)
            if prev == row.store:
                continue
            k = self._store_k[row.store]
            a, b = int(start[k]), int(start[k + 1])
            if prev is not None:
                kp = self._store_k[prev]
                a0, b0 = int(start[kp]), int(start[kp + 1])
                if lines[prev] == lines[row.store] and b - a == b0 - a0 \
                        and np.array_equal(rel[a:b], rel[a0:b0]):
                    cells.append(np.flatnonzero(codes[a:b] != codes[a0:b0]) + a)
                    whole.append((row.x, row.y, row.h))
                    continue
                clears.append((row.x, row.y, lines[prev] * p))
            clears.append((row.x, row.y, row.h))
            whole.append((row.x, row.y, row.h))
            cells.append(np.arange(a, b))
        for (x, y), prev in old_rows.items():   # places no row takes any more
            clears.append((x, y, lines[prev] * p))
            whole.append((x, y, lines[prev] * p))
        for x, y, h in clears:
            self._buf[y:y + h, x + label_w:x + label_w + cells_w] = panel
        spans: dict[int, list[int]] = {}   # one rect per column of rows: a region of many
        for x, y, h in whole:              # rects is slower to paint than their union
            sp = spans.setdefault(x, [y, y + h])
            sp[0], sp[1] = min(sp[0], y), max(sp[1], y + h)
        for x, (y0, y1) in spans.items():
            self.update(x, y0, row_w, y1 - y0)
        if cells:
            self._paint_cells(np.concatenate(cells))

    def _redraw_rolled(self, old_xy: np.ndarray, old_codes: np.ndarray) -> None:
        """After a re-sort: redraw the rolled-up strip. Its cells sit at fixed places, so
        when the places are the same only the cells whose code changed are drawn again
        (a store moving along the strip often leaves a cell of the same status)."""
        if not self._rolled and not len(old_xy):
            return
        if old_xy.shape == self._roll_xy.shape and np.array_equal(old_xy, self._roll_xy):
            ch = np.nonzero(old_codes != self._roll_codes)[0]
            self._blit(self._roll_xy[ch], self._roll_codes[ch], self._roll_tmpl)
            c = self._roll_tmpl.shape[1]
            if len(ch) > 64:
                self.update(self._roll_rect)
            else:
                for x, y in self._roll_xy[ch].tolist():
                    self.update(x, y, c, c)
                self._refresh_roll_note()
            return
        if not self._roll_rect.isNull():
            self._buf[self._roll_rect.top():, :] = _rgb(self.ctx.theme.panel)
        self._blit(self._roll_xy, self._roll_codes, self._roll_tmpl)
        self.update(self._roll_rect)

    def _roll_cell(self) -> tuple[int, int]:
        """(size, pitch) of a rolled-up store's cell: ``ROLL_CELL_PX`` of a 1080-line
        wall (or ``min_cell_px`` when bigger), so its status pattern reads as a glyph."""
        k = self._k
        c = max(int(self.opts["min_cell_px"] * k), px(ROLL_CELL_PX, k))
        return c, c + px(3, k)

    def _layout_rolled(self, W: int, H: int, roll_h: int, blit: bool = True) -> None:
        n = len(self._rolled)
        self._roll_at = np.full(len(self._stores), -1, np.int64)
        if not n:
            self._roll_xy = np.zeros((0, 2), np.int32)
            self._roll_codes = np.zeros(0, np.uint8)
            self._roll_rect = QRect()
            return
        k = self._k
        c, rp = self._roll_cell()
        top = H - roll_h + px(ROLL_TOP, k)
        per_line = max(1, (W - px(8, k)) // rp)
        i = np.arange(n)
        self._roll_xy = np.stack([px(4, k) + (i % per_line) * rp, top + (i // per_line) * rp],
                                 1).astype(np.int32)
        # the cells fill lines top down: those that fit are the first ones (the stores
        # that did not fit the strip are still counted in its note)
        self._roll_xy = self._roll_xy[self._roll_xy[:, 1] + c <= H]
        self._roll_rect = QRect(0, H - roll_h, W, roll_h)
        self._roll_tmpl = _templates(c)
        shown = self._rolled_k[: len(self._roll_xy)]
        self._roll_at[shown] = np.arange(len(shown))
        self._roll_codes = self._scode[shown]
        if blit:
            self._blit(self._roll_xy, self._roll_codes, self._roll_tmpl)

    # ------------------------------------------------------------------ pixels

    def _blit(self, xy: np.ndarray, codes: np.ndarray, tmpl: np.ndarray) -> None:
        """Write cell patterns for ``xy`` (n, 2) in one vectorised assignment."""
        if not len(xy):
            return
        c = tmpl.shape[1]
        H, W = self._buf.shape
        ok = (xy[:, 0] + c <= W) & (xy[:, 1] + c <= H) & (xy[:, 0] >= 0) & (xy[:, 1] >= 0)
        xy, codes = xy[ok], codes[ok]
        if c >= _SLICE_BLIT_PX:   # big cells: one slice copy each beats a gather of c*c indexes
            buf = self._buf
            for (x, y), k in zip(xy.tolist(), codes.tolist()):
                buf[y:y + c, x:x + c] = tmpl[k]
            return
        d = np.arange(c)
        tile = (d[:, None] * W + d[None, :]).ravel()          # one cell's pixel offsets
        at = (xy[:, 1].astype(np.int64) * W + xy[:, 0])[:, None] + tile[None, :]
        self._buf.reshape(-1)[at] = tmpl.reshape(len(tmpl), -1)[codes]

    def _paint_cells(self, idx: np.ndarray) -> None:
        self._blit(self._xy[idx], self._codes[idx], self._templates)

    def _update_devices(self, dev_ids, now: float) -> None:
        index = self._dev_index
        ids = list(index.keys() & dev_ids)   # the laid-out ones (a set operation in C)
        if not ids:
            return
        idx = np.array([index[d] for d in ids], np.int64)
        new = np.array(self._codes_of(ids, now), np.uint8)
        changed = new != self._codes[idx]
        if not changed.any():
            return
        idx, new = idx[changed], new[changed]
        nc = len(CODES)
        flat = self._kind_counts.reshape(-1)   # per-kind counts follow the change
        np.subtract.at(flat, self._kind_of[idx].astype(np.int64) * nc + self._codes[idx], 1)
        np.add.at(flat, self._kind_of[idx].astype(np.int64) * nc + new, 1)
        self._codes[idx] = new
        self._header_due = True
        self._update_store_codes(self._dev_store[idx])
        idx = idx[self._placed[idx]]
        if not len(idx):
            return
        self._paint_cells(idx)
        c = self._cell
        for x, y in self._xy[idx].tolist():
            self.update(x, y, c, c)
        if self._count_w:
            for k in set(self._dev_store[idx].tolist()):
                r = self._row_of_store.get(self._stores[k])
                if r is not None:
                    row = self._rows[r]
                    self.update(row.x + row.label_w + row.cells_w + px(COUNT_GAP, self._k), row.y,
                                self._count_w, self._pitch)

    def _update_store_codes(self, ks: np.ndarray) -> None:
        """Stores ``ks`` (indexes, repeats allowed) had device codes change: settle their
        worst codes and redraw their rolled-up cells whose code changed."""
        ks = np.flatnonzero(np.bincount(ks, minlength=len(self._stores)))  # each store once
        new = self._codes_of_stores(ks)
        ch = new != self._scode[ks]
        if not ch.any():
            return
        ks, new = ks[ch], new[ch]
        self._scode[ks] = new
        at = self._roll_at[ks] if len(self._roll_at) else np.zeros(0, np.int64)
        shown = at >= 0
        if not shown.any():
            return
        idx = at[shown]
        self._roll_codes[idx] = new[shown]
        self._blit(self._roll_xy[idx], self._roll_codes[idx], self._roll_tmpl)
        c = self._roll_tmpl.shape[1]
        for x, y in self._roll_xy[idx].tolist():
            self.update(x, y, c, c)
        self._refresh_roll_note()   # its per-status counts follow

    def _refresh_roll_note(self) -> None:
        """Repaint the roll-up note when its text changed (its counts are recounted at most
        once a second: repainting it every frame would redraw the same text)."""
        if self._rolled and self.roll_note_parts() != getattr(self, "_painted_note", None):
            self.update(self.roll_note_rect())

    def _count_kinds(self) -> None:
        nk = max(1, len(self._kinds))
        flat = self._kind_of.astype(np.int64) * len(CODES) + self._codes
        self._kind_counts = np.bincount(flat, minlength=nk * len(CODES)).reshape(nk, len(CODES))

    # ------------------------------------------------------------------ paint

    def _ui_font(self, size: float, bold: bool = False) -> QFont:
        return ui_font(size, bold)

    def paintEvent(self, event):  # noqa: N802 (Qt)
        p = QPainter(self)
        region = event.region()
        theme = self.ctx.theme
        if self._store_page is not None:
            self._paint_store_page(p)
        else:
            if self._img is not None:
                for r in region:  # the dirty rectangles, not their bounding box
                    p.drawImage(r, self._img, r)
            self._paint_text(p, region)
        if self._dimmed:
            paint_dim(self, p, True)
            f = ui_font(10, bold=True)
            f.setPixelSize(max(18, min(px(64, self._k), self.height() // 8)))
            p.setFont(f)
            p.setPen(QColor(theme.stale))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.ctx.tr("STALE"))
        p.end()

    # ------------------------------------------------------------------ mouse

    def hit(self, pos: QPoint) -> tuple[str | None, str | None]:
        """``(store_id, device_id)`` under a widget position (device None on labels)."""
        x, y = pos.x(), pos.y()
        if self._store_page is not None:
            for r, d in self._store_cells:
                if r.contains(pos):
                    return self._store_page, d
            return self._store_page, None
        p = self._pitch
        # each cell is filed under the bucket of its top-left corner (unique: cells are a
        # pitch apart); the cell holding (x, y) starts in this bucket or the one before
        for by in (y // p, y // p - 1):
            for bx in (x // p, x // p - 1):
                if 0 <= by < self._cellmap.shape[0] and 0 <= bx < self._cellmap.shape[1]:
                    i = int(self._cellmap[by, bx])
                    if i >= 0:
                        cx, cy = self._xy[i]
                        if cx <= x < cx + self._cell and cy <= y < cy + self._cell:
                            d = self._dev_ids[i]
                            return self.state.devices.get(d, {}).get("store"), d
        for row in self._rows:
            if row.x <= x < row.x + row.label_w and row.y <= y < row.y + row.h:
                return row.store, None
        if len(self._roll_xy):
            c = self._roll_tmpl.shape[1]
            m = (self._roll_xy[:, 0] <= x) & (x < self._roll_xy[:, 0] + c) & \
                (self._roll_xy[:, 1] <= y) & (y < self._roll_xy[:, 1] + c)
            if m.any():
                return self._rolled[int(np.argmax(m))], None
        return None, None

    def tooltip_text(self, pos: QPoint) -> str:
        """What hovering at ``pos`` shows: device, status, metrics, message and age."""
        tr, st = self.ctx.tr, self.state
        store, dev_id = self.hit(pos)
        if store is None:
            return ""
        s = st.stores.get(store) or {}
        city = city_name(s, self.ctx.lang)
        sname = store_name(st.stores, store, self.ctx.lang)
        if dev_id is None:
            arr = self.store_code_counts(store)
            counts = [(CODES[c], n) for c, n in enumerate(arr) if n]
            parts = [f"{tr(k) if k != 'stale' else tr('past TTL')} {v}"
                     for k, v in sorted(counts, key=lambda kv: -int(CODE_RANK[CODE[kv[0]]]))]
            if self._kind_filter is not None:
                parts.append(f"({tr('filtered to:')} {', '.join(tr(k) for k in self._kinds)})")
            return f"{sname} · {city}\n" + "  ".join(parts)
        dev = st.devices.get(dev_id) or {}
        code = self._code(dev_id, self._now)
        status = tr(CODES[code]) if code != STALE else f"{tr('unknown')} ({tr('past TTL')})"
        lines = [f"{dev.get('name', dev_id)}  [{dev_id}]",
                 f"{tr('Status')}: {STATUS_GLYPHS.get(CODES[code], '?')} {status}",
                 f"{tr('Kind')}: {tr(str(dev.get('kind', '?')))}",
                 f"{tr('Store')}: {sname} · {city}"]
        for k, v in (dev.get("metrics") or {}).items():
            lines.append(f"  {k} = {v:g}" if isinstance(v, (int, float)) else f"  {k} = {v}")
        if dev.get("msg"):
            lines.append(f"{tr('Message')}: {dev['msg']}")
        ts = dev.get("last_seen", dev.get("ts"))
        lines.append(f"{tr('Age')}: {age_text(self._now - ts if isinstance(ts, (int, float)) else None)}")
        return "\n".join(lines)

    def mouseMoveEvent(self, event):  # noqa: N802 (Qt)
        pos = event.position().toPoint()
        text = self.tooltip_text(pos)
        if text:
            QToolTip.showText(event.globalPosition().toPoint(), text, self)
        else:
            QToolTip.hideText()
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event):  # noqa: N802 (Qt)
        if event.button() == Qt.MouseButton.LeftButton:
            store, _ = self.hit(event.position().toPoint())
            if store is not None:
                self.store_clicked.emit(store)
        super().mouseReleaseEvent(event)

    # ------------------------------------------------------------------ test helpers

    def cell_rect(self, device_id: str) -> QRect | None:
        """Where a device's cell is drawn (None when rolled up or out of scope)."""
        i = self._dev_index.get(device_id)
        if i is None or not self._placed[i]:
            return None
        x, y = self._xy[i]
        return QRect(int(x), int(y), self._cell, self._cell)

    def cell_pixel(self, device_id: str) -> int | None:
        """The main ARGB colour of a device's cell in the grid image (its most common
        pixel; the status pattern is drawn over it)."""
        r = self.cell_rect(device_id)
        if r is None:
            return None
        vals, counts = np.unique(self._buf[r.y():r.bottom() + 1, r.x():r.right() + 1], return_counts=True)
        return int(vals[np.argmax(counts)])

    @property
    def rolled_up(self) -> list[str]:
        """Store ids shown as one cell each (rolled up)."""
        return list(self._rolled)


__all__ = ["DeviceGridPanel", "SPEC", "cell_templates", "CODES"]
