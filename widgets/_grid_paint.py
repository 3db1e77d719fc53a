"""Text and drill-down painting of the device grid (a mixin of
:class:`widgets.device_grid.DeviceGridPanel`, split out to keep modules small).

``_paint_text(p, region)`` draws the per-kind header, the store names and per-store count
chips of the rows the dirty ``region`` touches, and the roll-up note;
``_paint_store_page(p)`` draws the one-store page. Both read the panel's layout fields.
"""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QRegion

from widgets._grid_cells import CODE, CODES, KIND_ORDER, KIND_SHORT
from widgets.base import STATUS_COLORS, STATUS_GLYPHS


class GridPainting:
    """Painting helpers; the panel provides ``_ui_font`` and its layout fields."""

    def _paint_text(self, p: QPainter, region: QRegion) -> None:
        theme, tr = self.ctx.theme, self.ctx.tr
        W = self.width()
        if region.intersects(QRect(0, 0, W, self._header_h)):  # per-kind counts
            p.fillRect(QRect(0, 0, W, self._header_h), QColor(theme.panel))
            f = self._ui_font(10, bold=True)
            f.setPixelSize(20)
            p.setFont(f)
            fm = QFontMetrics(f)
            x = 8
            total = int(self._kind_counts.sum()) if len(self._dev_ids) else 0
            p.setPen(QColor(theme.text))
            head = f"{total:,} {tr('devices')} · {len(self._order):,} {tr('stores')}"
            if not self._order:
                head = tr("No devices in scope")
            p.drawText(x, 24, head)
            x += fm.horizontalAdvance(head) + 24
            for k, kind in enumerate(self._kinds):
                counts = self._kind_counts[k]
                label = f"{tr(kind)} {int(counts.sum())}"
                p.setPen(QColor(theme.text_dim))
                p.drawText(x, 24, label)
                x += fm.horizontalAdvance(label) + 6
                for text, color in self._status_chips(counts):
                    p.setPen(QColor(color))
                    p.drawText(x, 24, text)
                    x += fm.horizontalAdvance(text) + 4
                x += 18
            if self._rows and self._rows[0].label_w:  # kind names above the blocks
                f2 = QFont(self._label_font)
                f2.setPixelSize(max(9, min(16, self._pitch - 2)))
                p.setFont(f2)
                p.setPen(QColor(theme.text_dim))
                fm2 = QFontMetrics(f2)
                for x0 in sorted({r.x for r in self._rows}):
                    cx = x0 + self._rows[0].label_w
                    for k, kind in enumerate(self._kinds):
                        w = self._block_px[k] if k < len(self._block_px) else self._pitch
                        t = fm2.elidedText(KIND_SHORT.get(kind, kind), Qt.TextElideMode.ElideRight, w)
                        p.drawText(cx, self._header_h - 6, t)
                        cx += w + self._pitch
        if self._rows and self._rows[0].label_w:  # store names and per-store counts
            self._paint_row_text(p, region)
        if self._rolled and region.intersects(self._roll_rect):
            f = self._ui_font(10, bold=True)
            f.setPixelSize(18)
            p.setFont(f)
            tr_rect = QRect(0, self._roll_rect.top(), W, 26)
            p.fillRect(tr_rect, QColor(theme.panel_border))
            p.setPen(QColor(theme.text))
            msg = tr("{n} stores rolled up - drill down or enlarge to see their devices")
            p.drawText(tr_rect.adjusted(8, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter,
                       "▦ " + msg.format(n=f"{len(self._rolled):,}"))

    def _paint_row_text(self, p: QPainter, region: QRegion) -> None:
        """Names and count chips of the rows the region touches."""
        theme = self.ctx.theme
        fm = QFontMetrics(self._label_font)
        p.setFont(self._label_font)
        rows = self._rows
        bx = self._row_box   # (n, 4): x0, y0, x1, y1 of each row (label to counts)
        todo: set[int] = set()
        for rect in region:  # labelled rows are few (>= 12 px each): a vector test per rect
            hit = (bx[:, 0] <= rect.right()) & (bx[:, 2] >= rect.left()) & \
                  (bx[:, 1] <= rect.bottom()) & (bx[:, 3] >= rect.top())
            todo.update(np.nonzero(hit)[0].tolist())
        for i in sorted(todo):
            row = rows[i]
            lr = QRect(row.x, row.y, row.label_w - 4, self._pitch)
            if region.intersects(lr):
                st = self.state.stores.get(row.store) or {}
                city = (st.get("city") or {})
                zh = self.ctx.lang == "zh"
                name = st.get("name", row.store) if zh else st.get("name_en") or st.get("name", row.store)
                cname = city.get("name", "") if zh else city.get("name_en") or city.get("name", "")
                text = fm.elidedText(f"{name} · {cname}" if cname else name,
                                     Qt.TextElideMode.ElideRight, row.label_w - 8)
                p.fillRect(lr, QColor(theme.panel))
                p.setPen(QColor(theme.text))
                p.drawText(lr, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
            cr = QRect(row.x + row.label_w + row.cells_w + 4, row.y, self._count_w, self._pitch)
            if region.intersects(cr):
                p.fillRect(cr, QColor(theme.panel))
                arr = [0] * len(CODES)
                for s, n in self.state.store_counts(row.store).items():
                    arr[CODE.get(s, 3)] += n
                x = cr.x()
                chips = self._status_chips(arr) or [(f"✓{sum(arr)}", STATUS_COLORS["ok"])]
                for t, color in chips[:3]:
                    p.setPen(QColor(color))
                    p.drawText(x, cr.y(), cr.right() - x, cr.height(),
                               Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, t)
                    x += fm.horizontalAdvance(t) + 6


    def _status_chips(self, counts) -> list[tuple[str, str]]:
        """(text, colour) per non-ok status, worst first: '▲3', '✖1', ..."""
        out = []
        for code in (5, 4, 6, 3, 2, 1):
            n = int(counts[code])
            if n:
                name = CODES[code]
                glyph = STATUS_GLYPHS["unknown" if name == "stale" else name]
                out.append((f"{glyph}{n}", STATUS_COLORS["unknown" if name == "stale" else name]))
        return out

    def _paint_store_page(self, p: QPainter) -> None:
        """One store: big cells with the device name, status glyph and key metric."""
        theme, tr, st = self.ctx.theme, self.ctx.tr, self.state
        p.fillRect(self.rect(), QColor(theme.panel))
        sid = self._store_page
        store = st.stores.get(sid) or {}
        f = self._ui_font(10, bold=True)
        f.setPixelSize(28)
        p.setFont(f)
        p.setPen(QColor(theme.text))
        city = (store.get("city") or {}).get("name", "")
        p.drawText(16, 40, f"{store.get('name', sid)} · {city}")
        devs = sorted(st.store_devices(sid), key=lambda d: (
            list(KIND_ORDER).index(st.devices[d].get("kind")) if st.devices[d].get("kind") in KIND_ORDER else 99,
            str(st.devices[d].get("name", d))))
        self._store_cells = []
        if not devs:
            return
        W, H = self.width() - 32, self.height() - 70
        n = len(devs)
        best = 40
        for c in range(260, 39, -4):  # biggest square-ish cells that fit
            cols = max(1, W // (c + 8))
            if math.ceil(n / cols) * (int(c * 0.6) + 8) <= H:
                best = c
                break
        cw, ch = best, int(best * 0.6)
        cols = max(1, W // (cw + 8))
        fn = self._ui_font(10, bold=True)
        fn.setPixelSize(max(11, ch // 5))
        fm = QFontMetrics(fn)
        km = self.opts["key_metric"] or {}
        for i, d in enumerate(devs):
            dev = st.devices[d]
            code = self._code(d, self._now)
            name = CODES[code]
            color = STATUS_COLORS["unknown" if name == "stale" else name]
            r = QRect(16 + (i % cols) * (cw + 8), 60 + (i // cols) * (ch + 8), cw, ch)
            self._store_cells.append((r, d))
            p.fillRect(r, QColor(color))
            if name == "stale":
                p.fillRect(r, QColor(0, 0, 0, 90))
                p.fillRect(r, Qt.BrushStyle.BDiagPattern)
            p.setFont(fn)
            p.setPen(QColor("#ffffff"))
            glyph = STATUS_GLYPHS["unknown" if name == "stale" else name]
            p.drawText(r.adjusted(6, 4, -6, -4), Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft,
                       fm.elidedText(f"{glyph} {dev.get('name', d)}".strip(), Qt.TextElideMode.ElideRight, cw - 12))
            metrics = dev.get("metrics") or {}
            key = km.get(dev.get("kind")) or (next(iter(metrics)) if metrics else None)
            sub = f"{key} {metrics[key]:g}" if key in metrics else tr(name if name != "stale" else "past TTL")
            p.drawText(r.adjusted(6, 4, -6, -4), Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignLeft,
                       fm.elidedText(sub, Qt.TextElideMode.ElideRight, cw - 12))
