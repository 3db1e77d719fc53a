"""Text and drill-down painting of the device grid (a mixin of
:class:`wallboard.widgets.device_grid.DeviceGridPanel`, split out to keep modules small).

``_paint_text(p, region)`` draws the per-kind header, the store names and per-store count
chips of the rows the dirty ``region`` touches, and the roll-up note;
``_paint_store_page(p)`` draws the one-store page. Both read the panel's layout fields;
every fixed pixel size (fonts, baselines, gaps) is for a 1080-line wall and multiplied by
the panel's UI scale ``self._k`` (via :func:`widgets._grid_cells.px`).
"""
from __future__ import annotations


import math
import re

import numpy as np
from PySide6.QtCore import QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QRegion

from wallboard.widgets._names import city_name, store_name
from wallboard.widgets._text_fit import TextStamps, draw_fitted, fit_text
from wallboard.widgets._grid_cells import (
    CODES, COUNT_GAP, HEAD_PX, KIND_ORDER, KIND_PAD, KIND_SHORT, LABEL_PAD, px,
)
from wallboard.widgets.base import STATUS_COLORS, STATUS_GLYPHS

#: A store name that ends in its number ("#12", "12号店" does not: it ends in 店).
_NUMBERED = re.compile(r"\d+\s*$")
#: Text boxes (row labels, count chips) a grid keeps drawn: ~100 KB each at 4K.
STAMPS_MAX = 160


class GridPainting:
    """Painting helpers; the panel provides ``_ui_font`` and its layout fields."""

    def _paint_text(self, p: QPainter, region: QRegion) -> None:
        theme, sc = self.ctx.theme, self._k
        W = self.width()
        if region.intersects(QRect(0, 0, W, self._header_h)):  # per-kind counts
            p.fillRect(QRect(0, 0, W, self._header_h), QColor(theme.panel))
            self._paint_totals(p, W)
            if self._rows and self._rows[0].label_w:  # kind names above the blocks
                f2 = QFont(self._label_font)
                f2.setPixelSize(self._kind_px())
                p.setFont(f2)
                p.setPen(QColor(theme.text_dim))
                fm2 = QFontMetrics(f2)
                for x0 in sorted({r.x for r in self._rows}):
                    cx = x0 + self._rows[0].label_w
                    for k, kind in enumerate(self._kinds):
                        w = self._block_px[k] if k < len(self._block_px) else self._pitch
                        # a name may run into the blank cell after its block (into the
                        # counts column after the last block): "PRN" over a 1-cell block
                        room = w + (self._pitch if k + 1 < len(self._kinds) else self._count_w)
                        t = fm2.elidedText(KIND_SHORT.get(kind, kind), Qt.TextElideMode.ElideRight, room)
                        p.drawText(cx, self._header_h - px(KIND_PAD, sc), t)
                        cx += w + self._pitch
        if self._rows and self._rows[0].label_w:  # store names and per-store counts
            self._paint_row_text(p, region)
        if self._rolled and region.intersects(self.roll_note_rect()):
            self._paint_roll_note(p, W)

    def roll_note_rect(self) -> QRect:
        """The note line at the top of the rolled-up strip."""
        return QRect(0, self._roll_rect.top(), self.width(), px(26, self._k))

    def roll_note_parts(self) -> list[tuple[str, str]]:
        """The rolled-up strip's note as (text, colour): how many stores are rolled up and
        why, how many of them are in each bad status, and how many did not even fit the
        strip ("+N more"). Counting looks at every rolled-up store, so the result is reused
        for up to a second (the cells themselves are never late)."""
        key = (len(self._rolled), len(self._roll_xy), self.ctx.lang)
        cached = getattr(self, "_roll_note_cache", None)
        t = self._now  # the wall clock the grid was last refreshed with
        if cached is not None and cached[0] == key and t - cached[1] < 1.0:
            return cached[2]
        parts = self._roll_note_parts()
        self._roll_note_cache = (key, t, parts)
        return parts

    def _roll_note_parts(self) -> list[tuple[str, str]]:
        theme, tr = self.ctx.theme, self.ctx.tr
        msg = tr("{n} stores rolled up to one cell each (worst status): too many to label readably")
        parts = [("▦ " + msg.format(n=f"{len(self._rolled):,}"), theme.text)]
        # every rolled-up store, shown or not: their worst codes are kept current
        unshown = len(self._rolled) - len(self._roll_xy)
        counts = np.bincount(self._scode[self._rolled_k].astype(np.int64), minlength=len(CODES))
        parts.extend(self._status_chips(counts))
        if unshown > 0:
            parts.append((tr("+{n} more").format(n=f"{unshown:,}"), theme.text_dim))
        return parts

    def _paint_roll_note(self, p: QPainter, W: int) -> None:
        theme, sc = self.ctx.theme, self._k
        f = self._ui_font(10, bold=True)
        f.setPixelSize(px(18, sc))
        fm = QFontMetrics(f)
        parts = self._painted_note = self.roll_note_parts()
        need = sum(fm.horizontalAdvance(t) + px(10, sc) for t, _ in parts) + px(8, sc)
        if need > W:  # shrink (to 70% at most) so the chips stay on screen
            f.setPixelSize(max(int(px(18, sc) * 0.7), int(px(18, sc) * W / need)))
            fm = QFontMetrics(f)
        p.setFont(f)
        note = self.roll_note_rect()
        p.fillRect(note, QColor(theme.panel_border))
        x, right = px(8, sc), W - px(4, sc)
        # the counts first (they matter most), then the sentence, elided to what is left
        chips = parts[1:]
        chips_w = sum(fm.horizontalAdvance(t) + px(10, sc) for t, _ in chips)
        text, color = parts[0]
        p.setPen(QColor(color))
        room = max(0, right - x - chips_w)
        p.drawText(QRect(x, note.top(), room, note.height()), Qt.AlignmentFlag.AlignVCenter,
                   fm.elidedText(text, Qt.TextElideMode.ElideRight, room))
        x += min(room, fm.horizontalAdvance(text)) + px(10, sc)
        for t, c in chips:
            p.setPen(QColor(c))
            p.drawText(QRect(x, note.top(), right - x, note.height()), Qt.AlignmentFlag.AlignVCenter, t)
            x += fm.horizontalAdvance(t) + px(10, sc)

    def _header_parts(self) -> list[tuple[str, str, float]]:
        """The totals line: (text, colour, gap after it in px of a 1080-line wall)."""
        theme, tr = self.ctx.theme, self.ctx.tr
        total = int(self._kind_counts.sum()) if len(self._dev_ids) else 0
        head = f"{total:,} {tr('devices')} · {len(self._order):,} {tr('stores')}"
        if not self._order:
            head = tr("No devices in scope")
        parts = [(head, theme.text, 24.0)]
        if self._kind_filter is not None and self._hidden:   # say that devices are left out
            parts.append((tr("filtered to:"), theme.accent, 8.0))
        for k, kind in enumerate(self._kinds):
            counts = self._kind_counts[k]
            parts.append((f"{tr(kind)} {int(counts.sum())}", theme.text_dim, 6.0))
            parts.extend((text, color, 4.0) for text, color in self._status_chips(counts))
            text, color, _ = parts[-1]
            parts[-1] = (text, color, parts[-1][2] + 18.0)
        return parts

    def header_font_px(self, parts=None) -> int:
        """Pixel size of the totals line: 20 px of a 1080-line wall, shrunk (to 70% at
        most) so the line fits the panel width; what still does not fit is cut with "…"."""
        sc = self._k
        full = px(20, sc)
        parts = self._header_parts() if parts is None else parts
        f = self._ui_font(10, bold=True)
        f.setPixelSize(full)
        fm = QFontMetrics(f)
        need = sum(fm.horizontalAdvance(t) + px(g, sc) for t, _, g in parts) + px(8, sc)
        avail = max(1, self.width() - px(8, sc))
        if need <= avail:
            return full
        return max(int(full * 0.7), int(full * avail / need))

    def _paint_totals(self, p: QPainter, W: int) -> None:
        sc = self._k
        parts = self._header_parts()
        f = self._ui_font(10, bold=True)
        f.setPixelSize(self.header_font_px(parts))
        p.setFont(f)
        fm = QFontMetrics(f)
        x, base, right = px(8, sc), px(HEAD_PX - 10, sc), W - px(8, sc)
        ell = fm.horizontalAdvance("…")
        for i, (text, color, gap) in enumerate(parts):
            w = fm.horizontalAdvance(text)
            if x + w > right or (i + 1 < len(parts) and x + w + ell > right):
                p.setPen(QColor(self.ctx.theme.text_dim))
                p.drawText(x, base, "…")
                break
            p.setPen(QColor(color))
            p.drawText(x, base, text)
            x += w + px(gap, sc)

    def _paint_row_label(self, p: QPainter, row, lines: int, width: int) -> None:
        """A row's store name and city in ``lines`` text lines of the label column: the
        name shrinks, then takes two lines when the row has a third for the city, and is
        elided last (in the middle when it ends in its number, "FreshDa Hangzhou #12").
        A one-line row shows "name · city" only when both fit at full size. Drawn once
        per name, box and font, then copied (a re-sort moves every row)."""
        theme, pitch, pad = self.ctx.theme, self._pitch, px(LABEL_PAD, self._k)
        name, cname = self.row_label(row.store)
        lr = QRect(row.x, row.y, row.label_w - pad, pitch * min(lines, 3))
        key = ("label", name, cname, lines, width, pitch, self._label_font.key(), theme.text, theme.text_dim)
        self.label_fits[row.store] = self._text_stamps().draw(
            p, lr, QColor(theme.panel), key, lambda q: self._draw_row_label(q, row, lines, width, name, cname))

    def _draw_row_label(self, p: QPainter, row, lines: int, width: int, name: str, cname: str):
        theme, pitch = self.ctx.theme, self._pitch
        floor = max(9, int(self._label_font.pixelSize() * 0.72))
        left = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
        if not (lines >= 2 and cname):
            # one line: "name · city" when it fits at full size, else the name alone
            both = f"{name} · {cname}" if cname else name
            fm = QFontMetrics(self._label_font)
            name, cname = (both if fm.horizontalAdvance(both) <= width else name), ""
        name_lines = 2 if lines >= 3 else 1
        fit = fit_text(name, width, pitch * name_lines, self._label_font, floor_px=floor, max_lines=name_lines)
        box = QRectF(row.x, row.y, width, pitch * len(fit.lines))
        p.setPen(QColor(theme.text))
        if fit.elided and _NUMBERED.search(name):
            p.setFont(fit.font)
            p.drawText(QRectF(row.x, row.y, width, pitch), left,
                       QFontMetrics(fit.font).elidedText(name, Qt.TextElideMode.ElideMiddle, width))
            box = QRectF(row.x, row.y, width, pitch)
        else:
            draw_fitted(p, box, fit, left)
        if cname:
            p.setPen(QColor(theme.text_dim))
            cfit = fit_text(cname, width, pitch, self._label_font, floor_px=floor, max_lines=1)
            draw_fitted(p, QRectF(row.x, box.bottom(), width, pitch), cfit, left)
        return fit

    def _text_stamps(self) -> TextStamps:
        """The panel's drawn-once text boxes (row labels and count chips; a few MB)."""
        stamps = getattr(self, "_stamps", None)
        if stamps is None:
            stamps = self._stamps = TextStamps(limit=STAMPS_MAX)
        return stamps

    def _draw_chips(self, p: QPainter, cr: QRect, chips) -> None:
        """Up to three count chips left to right in the counts box ``cr``."""
        fm = QFontMetrics(self._label_font)
        p.setFont(self._label_font)
        x = cr.x()
        for t, color in chips:
            p.setPen(QColor(color))
            p.drawText(x, cr.y(), cr.right() - x, cr.height(),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, t)
            x += fm.horizontalAdvance(t) + px(6, self._k)

    def _kind_px(self) -> int:
        """Pixel size of the kind names above the blocks (they sit in the header band
        under the totals line, ``label_px + KIND_PAD`` high)."""
        return max(9, min(px(16, self._k), self._pitch - 2))

    def _paint_row_text(self, p: QPainter, region: QRegion) -> None:
        """Names and count chips of the rows the region touches."""
        theme, sc = self.ctx.theme, self._k
        pad, gap = px(LABEL_PAD, sc), px(COUNT_GAP, sc)
        rows, stamps, panel = self._rows, self._text_stamps(), QColor(theme.panel)
        bx = self._row_box   # (n, 4): x0, y0, x1, y1 of each row (label to counts)
        todo: set[int] = set()
        for rect in region:  # labelled rows are few (>= 12 px each): a vector test per rect
            hit = (bx[:, 0] <= rect.right()) & (bx[:, 2] >= rect.left()) & \
                  (bx[:, 1] <= rect.bottom()) & (bx[:, 3] >= rect.top())
            todo.update(np.nonzero(hit)[0].tolist())
        for i in sorted(todo):
            row = rows[i]
            lines = max(1, row.h // self._pitch)  # text lines the row's height holds
            lr = QRect(row.x, row.y, row.label_w - pad, self._pitch * min(lines, 3))
            if region.intersects(lr):
                self._paint_row_label(p, row, lines, row.label_w - 2 * pad)
            cr = QRect(row.x + row.label_w + row.cells_w + gap, row.y, self._count_w, self._pitch)
            if region.intersects(cr):
                arr = self.store_code_counts(row.store)   # shown kinds only
                chips = tuple((self._status_chips(arr) or [(f"✓{sum(arr)}", STATUS_COLORS["ok"])])[:3])
                stamps.draw(p, cr, panel, ("chips", chips, self._label_font.key(), sc),
                            lambda q, cr=cr, chips=chips: self._draw_chips(q, cr, chips))


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
        theme, tr, st, sc = self.ctx.theme, self.ctx.tr, self.state, self._k
        p.fillRect(self.rect(), QColor(theme.panel))
        sid = self._store_page
        store = st.stores.get(sid) or {}
        f = self._ui_font(10, bold=True)
        f.setPixelSize(px(28, sc))
        p.setFont(f)
        p.setPen(QColor(theme.text))
        city = city_name(store, self.ctx.lang)
        m, top, gap = px(16, sc), px(60, sc), px(8, sc)
        p.drawText(m, px(40, sc), f"{store_name(st.stores, sid, self.ctx.lang)} · {city}")
        order = list(self.opts["kinds"] or KIND_ORDER)
        devs = sorted(self._devices_of(sid), key=lambda d: (
            order.index(st.devices[d].get("kind")) if st.devices[d].get("kind") in order else 99,
            str(st.devices[d].get("name", d))))
        self._store_cells = []
        if not devs:
            return
        W, H = self.width() - 2 * m, self.height() - top - px(10, sc)
        n = len(devs)
        lo, hi = px(40, sc), px(260, sc)
        best = lo
        for c in range(hi, lo - 1, -px(4, sc)):  # biggest square-ish cells that fit
            cols = max(1, W // (c + gap))
            if math.ceil(n / cols) * (int(c * 0.6) + gap) <= H:
                best = c
                break
        cw, ch = best, int(best * 0.6)
        cols = max(1, W // (cw + gap))
        fn = self._ui_font(10, bold=True)
        fn.setPixelSize(max(px(11, sc), ch // 5))
        km = self.opts["key_metric"] or {}
        for i, d in enumerate(devs):
            dev = st.devices[d]
            code = self._code(d, self._now)
            name = CODES[code]
            color = STATUS_COLORS["unknown" if name == "stale" else name]
            r = QRect(m + (i % cols) * (cw + gap), top + (i // cols) * (ch + gap), cw, ch)
            self._store_cells.append((r, d))
            p.fillRect(r, QColor(color))
            if name == "stale":
                p.fillRect(r, QColor(0, 0, 0, 90))
                p.fillRect(r, Qt.BrushStyle.BDiagPattern)
            p.setFont(fn)
            p.setPen(QColor("#ffffff"))
            glyph = STATUS_GLYPHS["unknown" if name == "stale" else name]
            inner = r.adjusted(px(6, sc), px(4, sc), -px(6, sc), -px(4, sc))
            half = QRectF(inner.x(), inner.y(), inner.width(), inner.height() / 2)
            floor = max(9, int(fn.pixelSize() * 0.7))
            draw_fitted(p, half, fit_text(f"{glyph} {dev.get('name', d)}".strip(), half.width(), half.height(),
                                          fn, floor_px=floor, max_lines=1),
                        Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            metrics = dev.get("metrics") or {}
            key = km.get(dev.get("kind")) or (next(iter(metrics)) if metrics else None)
            sub = f"{key} {metrics[key]:g}" if key in metrics else tr(name if name != "stale" else "past TTL")
            sub_fit = fit_text(sub, half.width(), half.height(), fn, floor_px=floor, max_lines=1)
            self.cell_fits[d] = sub_fit
            draw_fitted(p, half.translated(0, half.height()), sub_fit,
                        Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignLeft)
