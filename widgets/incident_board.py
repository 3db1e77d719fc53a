"""Incident board: open incidents by severity then age, with live timers, for a wall at 5 m.

Each row shows a severity badge, the title, the affected stores (click one: the panel emits
``store_clicked(store_id)``), owner, status, time since opened and since acknowledged
(ticking once per second) and the top suspect change from ``state.suspects``. New rows
flash for ``flash_s``; resolved rows stay ``resolved_keep_s`` (faded) and then leave. On a
workstation (``ctx.send_control`` set) an ACK button and a context-menu action send
``ack_incident``; the context menu's "Rewind to its opening" emits ``rewind_requested(id)``
(the shell starts REPLAY a minute before the incident opened). The footer shows MTTA and MTTR over every incident the state holds.

Build as ``IncidentBoardPanel(state, options, ctx)``; call ``refresh(dirty, now)`` once per
frame (it repaints when incidents, changes or stores are dirty, else once per second for
the timers). Clicking a row emits ``incident_selected(id)`` (wire it to the change
timeline's ``select_incident``). ``unacknowledged_severe()`` lists open, unacknowledged
P1/P2 incidents for the shell's alert sound.

Options: ``flash_s`` (120), ``resolved_keep_s`` (300), ``max_rows`` (12).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QMenu, QWidget

from wallboard.widgets._names import store_name
from wallboard.widgets._text_fit import draw_text_fit
from wallboard.layout.specs.incident_board import SPEC
from wallboard.widgets.base import SEVERITY_COLORS, PanelContext, paint_dim, register_translations, ui_font

register_translations(
    {
        "Incidents": "事件",
        "Open": "待处理",
        "Acknowledged": "已确认",
        "Mitigated": "已缓解",
        "Resolved": "已解决",
        "opened": "已开",
        "ack": "确认",
        "ACK": "确认",
        "NOT ACK": "未确认",
        "ACK sent": "已发送确认",
        "ACK refused": "确认被拒",
        "no answer": "无应答",
        "Acknowledge": "确认事件",
        "suspect": "可疑变更",
        "no owner": "无负责人",
        "no stores": "无门店",
        "chain-wide": "全渠道",
        "No open incidents": "无未处理事件",
        "more": "更多",
        "MTTA": "平均确认时长",
        "MTTR": "平均恢复时长",
        "incidents": "个事件",
        "took": "用时",
        "Rewind to its opening": "回放到事件开始",
    }
)

SEVERE = ("P1", "P2")




def duration_text(seconds: float | None) -> str:
    """Live timer text: ``4:05``, ``1:02:33``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = int(max(0.0, seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


@dataclass
class Row:
    """One incident as shown (recomputed when the state changes)."""

    incident_id: str
    severity: str
    title: str
    status: str
    owner: str
    stores: list[tuple[str, str]]  # (store_id, display name)
    opened_at: float | None
    acknowledged_at: float | None
    resolved_at: float | None
    suspect: str | None
    hits: list[tuple[QRectF, str, str]] = field(default_factory=list, compare=False)  # set by paint
    #: how the title was drawn (a text-fit result: size, lines, elided), set by paint
    title_fit: object = field(default=None, compare=False)


class IncidentBoardPanel(QWidget):
    """Open and recently resolved incidents; see the module docstring."""

    store_clicked = Signal(str)
    incident_selected = Signal(str)
    rewind_requested = Signal(str)

    def __init__(self, state, options: dict, ctx: PanelContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        opts = SPEC.options_or_raise(options)
        self.state, self.ctx = state, ctx
        self.flash_s = float(opts["flash_s"])
        self.resolved_keep_s = float(opts["resolved_keep_s"])
        self.max_rows = int(opts["max_rows"])
        self.rows: list[Row] = []
        self.hidden_rows = 0
        self.selected: str | None = None
        self.mtta: float | None = None
        self.mttr: float | None = None
        self.n_acked = self.n_resolved = 0
        self.paints = 0
        self._first_seen: dict[str, float] = {}
        self._ack_sent: dict[str, str | None] = {}  # incident -> ref of the ack sent
        self._hits: list[tuple[QRectF, str, str]] = []
        self._dimmed = False
        self._now = ctx.clock()
        self._last_sec: int | None = None
        self._painted_sec: int | None = None
        self.setMouseTracking(False)
        self.setMinimumSize(320, 200)
        self._rebuild(self._now)

    # ------------------------------------------------------------------ public API
    def refresh(self, dirty, now: float) -> None:
        """Per frame: rebuild rows when incidents/changes/stores are dirty; tick timers per second."""
        data = bool(dirty.all or dirty.incidents or dirty.changes or dirty.stores)
        sec = int(now)
        if data or sec != self._last_sec:
            self._last_sec = sec
            expired = any(r.status == "resolved" and r.resolved_at is not None
                          and now - r.resolved_at > self.resolved_keep_s for r in self.rows)
            shown = self._shown()
            if data or expired or self.hidden_rows:
                self._rebuild(now)  # rows, suspects and MTTA/MTTR only when they can change
            # repaint when what it shows changed, and once a second (ages, flashing): at
            # 10,000 device events/s every frame names some store, rarely one of its rows
            if self._shown() != shown or sec != self._painted_sec:
                self._painted_sec = sec
                self.update()
            self._now = now

    def _shown(self) -> tuple:
        """What the paint depends on besides the clock."""
        return (self.rows, self.hidden_rows, self.mtta, self.mttr, self.n_acked, self.n_resolved)

    def set_dimmed(self, dimmed: bool) -> None:
        """Veil the board while the feed is STALE."""
        if self._dimmed != bool(dimmed):
            self._dimmed = bool(dimmed)
            self.update()

    def unacknowledged_severe(self) -> list[tuple[str, str]]:
        """Open P1/P2 incidents nobody acknowledged yet, as ``[(id, severity)]`` (for sound)."""
        return [(r.incident_id, r.severity) for r in self.rows
                if r.severity in SEVERE and r.status == "open" and r.acknowledged_at is None]

    def is_flashing(self, incident_id: str, now: float | None = None) -> bool:
        """Whether the row of ``incident_id`` is still in its "new" flash period."""
        now = self._now if now is None else now
        row = next((r for r in self.rows if r.incident_id == incident_id), None)
        if row is None or row.status == "resolved":
            return False
        start = row.opened_at if row.opened_at is not None else self._first_seen.get(incident_id, now)
        return now - start < self.flash_s

    def acknowledge(self, incident_id: str) -> bool:
        """Send ``ack_incident`` for ``incident_id``; False on a wall without the control role."""
        if self.ctx.send_control is None:
            return False
        self._ack_sent[incident_id] = self.ctx.send_control("ack_incident", {"incident": incident_id})
        self.update()
        return True

    def ack_label(self, incident_id: str) -> tuple[str, str | None]:
        """The ACK button's text and fill: ``("ACK", None)`` (accent: press it), ``("ACK sent",
        "")`` (grey: waiting for the hub), ``("ACK refused", red)`` (the hub said no; the
        reason is on the status line) or ``("no answer", amber)``; the last two can be pressed
        again. An accepted ack needs no label: the incident shows as acknowledged."""
        if incident_id not in self._ack_sent:
            return "ACK", None
        outcome, _ = self.ctx.control_outcome(self._ack_sent[incident_id])
        if outcome == "refused":
            return "ACK refused", SEVERITY_COLORS["P1"]
        if outcome == "no_answer":
            return "no answer", SEVERITY_COLORS["P3"]
        return "ACK sent", ""

    def ack_refusal(self, incident_id: str) -> str | None:
        """Why the hub refused this row's ACK (drawn on the row, under its title, in red,
        until the ACK is pressed again or the incident is acknowledged), else None."""
        if incident_id not in self._ack_sent:
            return None
        outcome, reason = self.ctx.control_outcome(self._ack_sent[incident_id])
        if outcome != "refused":
            return None
        head, sep, why = reason.partition("refused: ")  # "control 'ack_incident' refused: <why>"
        return why if sep and why else reason

    def select(self, incident_id: str | None) -> None:
        """Highlight a row (no signal)."""
        self.selected = incident_id
        self.update()

    # ------------------------------------------------------------------ data
    def _store_name(self, sid: str) -> str:
        return store_name(self.state.stores, sid, self.ctx.lang)

    def _row(self, inc: dict) -> Row:
        iid = inc["id"]
        suspect = None
        sus = self.state.suspects(iid)
        if sus:
            ch = self.state.changes.get(sus[0][0]) or {}
            suspect = ch.get("title") or sus[0][0]
        return Row(iid, inc.get("severity") or "P4", inc.get("title") or iid, inc.get("status") or "open",
                   inc.get("owner") or "", [(s, self._store_name(s)) for s in inc.get("stores") or []],
                   inc.get("opened_at"), inc.get("acknowledged_at"), inc.get("resolved_at"), suspect)

    def _rebuild(self, now: float) -> None:
        self._now = now
        scope = self.ctx.region
        open_incs = self.state.open_incidents(scope)
        resolved = self.state.recent_resolved(now, self.resolved_keep_s, scope)
        resolved.sort(key=lambda i: -(i.get("resolved_at") or 0.0))
        incs = open_incs + resolved
        for inc in incs:
            iid = inc["id"]
            self._first_seen.setdefault(iid, now)
            if iid in self._ack_sent and ((inc.get("status") or "open") != "open"
                                          or inc.get("acknowledged_at") is not None):
                del self._ack_sent[iid]
        live = {inc["id"] for inc in incs}
        for gone in [k for k in self._first_seen if k not in live]:
            del self._first_seen[gone]
        self.hidden_rows = max(0, len(incs) - self.max_rows)
        # rows (their suspects, store names) only for what is shown: the rest is counted
        self.rows = [self._row(i) for i in incs[: self.max_rows]]
        stats = self.state.incident_stats(scope)   # kept by the state, not a scan
        self.n_acked, self.n_resolved = stats.n_acked, stats.n_resolved
        self.mtta, self.mttr = stats.mtta, stats.mttr

    # ------------------------------------------------------------------ paint
    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self.paints += 1
        tr = self.ctx.tr
        theme = self.ctx.theme
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        w, h = self.width(), self.height()
        p.fillRect(self.rect(), QColor(theme.panel))
        base = max(14.0, min(28.0, h / 26.0))
        head_h = base * 2.2
        foot_h = base * 2.0
        # header: title and counts per severity
        p.setFont(_px(base * 1.2, True))
        p.setPen(QColor(theme.text))
        p.drawText(QRectF(12, 0, w * 0.5, head_h), Qt.AlignmentFlag.AlignVCenter, tr("Incidents"))
        x = w - 12.0
        counts: dict[str, int] = {}
        for r in self.rows:
            if r.status != "resolved":
                counts[r.severity] = counts.get(r.severity, 0) + 1
        p.setFont(_px(base * 1.1, True))
        fm = QFontMetricsF(p.font())
        for sev in reversed(("P1", "P2", "P3", "P4")):
            text = f"{sev} {counts.get(sev, 0)}"
            tw = fm.horizontalAdvance(text) + 16
            rect = QRectF(x - tw, head_h * 0.18, tw, head_h * 0.64)
            color = QColor(SEVERITY_COLORS[sev]) if counts.get(sev) else QColor(theme.grid)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(color)
            p.drawRoundedRect(rect, 5, 5)
            p.setPen(QColor("#ffffff"))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
            x -= tw + 8
        # rows
        self._hits = []
        avail = h - head_h - foot_h
        n = max(len(self.rows) + (1 if self.hidden_rows else 0), 1)
        rh = max(base * 3.6, min(base * 5.6, avail / max(n, 4)))
        y = head_h
        if not self.rows:
            p.setFont(_px(base * 1.4, True))
            p.setPen(QColor("#2e9d5b"))
            p.drawText(QRectF(0, y, w, avail), Qt.AlignmentFlag.AlignCenter, "\u2714 " + tr("No open incidents"))
        for r in self.rows:
            if y + rh > h - foot_h + 1:
                break
            self._paint_row(p, r, QRectF(6, y + 3, w - 12, rh - 6))
            y += rh
        if self.hidden_rows:
            p.setFont(_px(base, True))
            p.setPen(QColor(theme.text_dim))
            p.drawText(QRectF(12, y, w - 24, base * 1.6), Qt.AlignmentFlag.AlignVCenter,
                       f"+{self.hidden_rows} {tr('more')}")
        # footer: MTTA / MTTR
        p.setPen(QPen(QColor(theme.grid), 1))
        p.drawLine(QPointF(8, h - foot_h), QPointF(w - 8, h - foot_h))
        p.setFont(_px(base * 1.1, True))
        p.setPen(QColor(theme.text))
        foot = (f"{tr('MTTA')} {duration_text(self.mtta)} (n={self.n_acked})    "
                f"{tr('MTTR')} {duration_text(self.mttr)} (n={self.n_resolved})")
        p.drawText(QRectF(12, h - foot_h, w - 24, foot_h), Qt.AlignmentFlag.AlignVCenter, foot)
        paint_dim(self, p, self._dimmed)
        p.end()

    def _paint_row(self, p: QPainter, r: Row, rect: QRectF) -> None:
        tr, theme, now = self.ctx.tr, self.ctx.theme, self._now
        resolved = r.status == "resolved"
        sev_color = QColor(SEVERITY_COLORS.get(r.severity, "#888888"))
        bg = QColor(theme.background)
        if self.is_flashing(r.incident_id, now) and int(now) % 2 == 0:
            bg = QColor(sev_color)
            bg.setAlpha(120)
        p.setPen(QPen(QColor(theme.accent), 3) if r.incident_id == self.selected else Qt.PenStyle.NoPen)
        p.setBrush(bg)
        p.drawRoundedRect(rect, 6, 6)
        p.setOpacity(0.45 if resolved else 1.0)
        rh = rect.height()
        big, small = rh * 0.27, rh * 0.185
        badge = QRectF(rect.left() + 6, rect.top() + 6, rh * 0.95, rh - 12)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("#3a3f47") if resolved else sev_color)
        p.drawRoundedRect(badge, 6, 6)
        p.setPen(QColor("#ffffff"))
        p.setFont(_px(rh * 0.36, True))
        p.drawText(badge, Qt.AlignmentFlag.AlignCenter, "\u2714" if resolved else r.severity)
        left = badge.right() + 12
        right = rect.right() - 8
        # right block: timers (and the ACK button on a workstation)
        can_ack = self.ctx.send_control is not None and r.status == "open" and not resolved
        if can_ack:
            bw = rh * 1.3
            brect = QRectF(right - bw, rect.top() + rh * 0.2, bw, rh * 0.6)
            label, fill = self.ack_label(r.incident_id)
            p.setPen(QPen(QColor(theme.accent), 2))
            p.setBrush(QColor(fill or theme.accent) if fill != "" else QColor(theme.grid))
            p.drawRoundedRect(brect, 6, 6)
            p.setPen(QColor("#ffffff"))
            draw_text_fit(p, brect.adjusted(3, 0, -3, 0), tr(label), _px(small, True), floor_px=9,
                          align=Qt.AlignmentFlag.AlignCenter)
            r.hits.append((brect, "ack", r.incident_id))
            self._hits.append((brect, "ack", r.incident_id))
            right = brect.left() - 12
        tw = rh * 2.6
        p.setFont(_px(big, True))
        p.setPen(QColor(theme.text))
        t_open = QRectF(right - tw, rect.top() + 4, tw, rh * 0.42)
        if resolved:
            p.drawText(t_open, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       "\u2714 " + duration_text(now - r.resolved_at if r.resolved_at else None))
            p.setFont(_px(small, True))
            p.setPen(QColor(theme.text_dim))
            took = r.resolved_at - r.opened_at if r.resolved_at and r.opened_at else None
            p.drawText(QRectF(right - tw, rect.top() + rh * 0.45, tw, rh * 0.3),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       f"{tr('took')} {duration_text(took)}")
        else:
            p.drawText(t_open, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       duration_text(now - r.opened_at if r.opened_at else None))
        t_ack = QRectF(right - tw, rect.top() + rh * 0.45, tw, rh * 0.3)
        p.setFont(_px(small, True))
        if r.acknowledged_at is not None and not resolved:
            p.setPen(QColor(theme.text_dim))
            p.drawText(t_ack, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       f"{tr('ack')} {duration_text(now - r.acknowledged_at)}")
        elif not resolved:
            p.setPen(QColor(SEVERITY_COLORS["P1"]))
            p.drawText(t_ack, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, tr("NOT ACK"))
        right = t_open.left() - 10
        # line 1: title
        p.setFont(_px(big, True))
        fm = QFontMetricsF(p.font())
        p.setPen(QColor(theme.text))
        title_rect = QRectF(left, rect.top() + 4, right - left, rh * 0.42)
        # the title shrinks (to a floor that still lets two lines fit its box), then takes
        # two lines, and only then is elided
        r.title_fit = draw_text_fit(p, title_rect, r.title, p.font(), floor_px=int(rh * 0.14), max_lines=2)
        # line 2: stores (clickable) · owner · status · suspect; the line shrinks (to 80 %)
        # before a store is left out
        stores = r.stores or [("", tr("no stores"))]
        rest = f"\u00b7 {r.owner or tr('no owner')} \u00b7 {tr(r.status.capitalize())}"
        fm = QFontMetricsF(_px(small))
        need = sum(fm.horizontalAdvance(n + ", ") for _, n in stores[:4]) + fm.horizontalAdvance(rest)
        p.setFont(_px(max(small * 0.8, min(small, small * (right - left) / max(need, 1.0)))))
        fm = QFontMetricsF(p.font())
        y0, y1 = rect.top() + rh * 0.44, rect.top() + rh * 0.72
        x = left
        for i, (sid, name) in enumerate(stores[:4]):
            text = name + ("," if i < min(len(stores), 4) - 1 else "")
            wdt = fm.horizontalAdvance(text)
            if x + wdt > right:
                break
            srect = QRectF(x, y0, wdt, y1 - y0)
            p.setPen(QColor(theme.accent) if sid else QColor(theme.text_dim))
            p.drawText(srect, Qt.AlignmentFlag.AlignVCenter, text)
            if sid:
                self._hits.append((srect, "store", sid))
                r.hits.append((srect, "store", sid))
            x += wdt + fm.horizontalAdvance(" ")
        if len(stores) > 4:
            more = f"+{len(stores) - 4}"
            p.setPen(QColor(theme.text_dim))
            p.drawText(QRectF(x, y0, fm.horizontalAdvance(more) + 4, y1 - y0), Qt.AlignmentFlag.AlignVCenter, more)
            x += fm.horizontalAdvance(more) + fm.horizontalAdvance(" ")
        refusal = self.ack_refusal(r.incident_id) if can_ack else None
        if refusal or r.suspect:  # line 3: why the hub refused the ACK (while it shows), else the suspect
            p.setPen(QColor(SEVERITY_COLORS["P1"] if refusal else "#ffd166"))
            srect = QRectF(left, y1, rect.right() - 8 - left, rect.bottom() - 4 - y1)
            text = (f"\u2716 {tr('ACK refused')}: {refusal}" if refusal
                    else f"\u26a0 {tr('suspect')}: {r.suspect}")
            draw_text_fit(p, srect, text, p.font(), floor_px=max(9, int(small * 0.8)), max_lines=1)
            p.setFont(_px(small))
        p.setPen(QColor(theme.text_dim))
        if right > x:
            p.drawText(QRectF(x, y0, right - x, y1 - y0), Qt.AlignmentFlag.AlignVCenter,
                       fm.elidedText(rest, Qt.TextElideMode.ElideRight, right - x))
        self._hits.append((rect, "row", r.incident_id))
        p.setOpacity(1.0)

    # ------------------------------------------------------------------ input
    def hit(self, pos: QPointF) -> tuple[str, str] | None:
        """What is under ``pos`` from the last paint: ``(kind, id)`` with kind store/ack/row."""
        for rect, kind, ident in self._hits:
            if rect.contains(pos):
                return kind, ident
        return None

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        found = self.hit(event.position())
        if found is None:
            return
        kind, ident = found
        if kind == "store":
            self.store_clicked.emit(ident)
        elif kind == "ack":
            self.acknowledge(ident)
        else:
            self.selected = ident
            self.incident_selected.emit(ident)
            self.update()

    def contextMenuEvent(self, event) -> None:  # noqa: N802 (Qt API)
        menu = self.context_menu(QPointF(event.pos()))
        if menu is not None:
            menu.popup(event.globalPos())

    def context_menu(self, pos: QPointF) -> QMenu | None:
        """The menu of the row under ``pos``: Acknowledge (an open incident, on a wall that
        sends controls) and Rewind to its opening (one that has ``opened_at``)."""
        found = self.hit(pos)
        if found is None:
            return None
        row = next((r for r in self.rows if r.incident_id == found[1]), None)
        if found[0] == "store":
            row = next((r for r in self.rows if any(found[1] == s for s, _ in r.stores)), None)
        if row is None:
            return None
        menu = QMenu(self)
        if self.ctx.send_control is not None and row.status == "open":
            menu.addAction(self.ctx.tr("Acknowledge")).triggered.connect(lambda: self.acknowledge(row.incident_id))
        if row.opened_at is not None:
            menu.addAction(self.ctx.tr("Rewind to its opening")).triggered.connect(
                lambda: self.rewind_requested.emit(row.incident_id))
        return menu if menu.actions() else None


def _px(size: float, bold: bool = False):
    font = ui_font(10, bold)
    font.setPixelSize(max(8, int(size)))
    return font


__all__ = ["IncidentBoardPanel", "Row", "duration_text"]
