"""The always-on header of every wall screen, and the banners under it.

Header: event title, local clock, countdown to the opening (or time since), feed state
with data age, events/s, rejected messages with the last reason. Read from 5 m away, so
it is large and high-contrast; the feed state is a coloured pill with text (never colour
alone). Call :meth:`HeaderBar.update_status` once per second (cheap; repaints only when
its text changes).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from wallboard.widgets.base import DARK, FEED_COLORS, Theme, age_text, translate, ui_font


@dataclass(frozen=True)
class HeaderStatus:
    """Everything the header shows; the shell builds one per second."""

    title: str
    now: float
    starts_at: float | None
    feed_state: str
    data_age_s: float | None
    events_per_s: float
    rejects: int
    last_reject: str
    page: str = ""
    paused: bool = False
    muted: bool = False
    utc_offset_s: int | None = None
    #: The hub the wall is on (hub id and HOST:PORT), shown when it has several to choose from.
    hub: str = ""
    #: REPLAY on this window: the pill's text ("REPLAY 09:31:05 x4") in place of the feed state.
    replay: str = ""
    #: Auto-focus on this window: why it shows what it shows ("P1 INC-1: auto-focus, Esc to return").
    focus: str = ""


def countdown_text(starts_at: float | None, now: float, lang: str) -> str:
    """``T-01:02:03`` before the opening, ``T+04:05`` after it (hours grow past 99)."""
    if starts_at is None:
        return ""
    delta = int(round(starts_at - now))
    sign = "-" if delta > 0 else "+"
    d = abs(delta)
    h, rem = divmod(d, 3600)
    m, s = divmod(rem, 60)
    label = translate("Opening", lang) if delta > 0 else translate("Since opening", lang)
    if h >= 48:
        return f"{label} T{sign}{h // 24}d {h % 24:02d}h"
    return f"{label} T{sign}{h:02d}:{m:02d}:{s:02d}"


#: The auto-focus pill (the crit banner's red).
FOCUS_COLOR = "#b0103a"


class HeaderBar(QWidget):
    """Top strip of a wall window. Scales its fonts with the window height."""

    def __init__(self, lang: str = "en", theme: Theme = DARK, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lang = lang
        self.theme = theme
        self._status: HeaderStatus | None = None
        self._texts: tuple = ()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
        self.setFixedHeight(64)

    def scale_to(self, window_height: int) -> None:
        """Header height ~4 % of the screen, never below 48 px."""
        self.setFixedHeight(max(48, int(window_height * 0.042)))

    def tr(self, text: str) -> str:  # type: ignore[override]
        return translate(text, self.lang)

    def texts(self) -> tuple[str, str, str, str, str]:
        """(title, clock, countdown, feed, counters) as drawn; tests read these."""
        s = self._status
        if s is None:
            return ("", "", "", "", "")
        lt = time.localtime(s.now)
        clock = time.strftime("%H:%M:%S", lt)
        feed = s.replay or self.tr(s.feed_state)
        if s.replay:
            pass
        elif s.data_age_s is not None and s.feed_state != "LIVE":
            feed += f" · {self.tr('data age')} {age_text(s.data_age_s)}"
        if s.hub:
            feed += f" · {self.tr('hub')} {s.hub}"
        counters = f"{s.events_per_s:,.0f} {self.tr('ev/s')}"
        if s.rejects:
            counters += f" · {self.tr('rejected')} {s.rejects}"
            if s.last_reject:
                counters += f": {s.last_reject[:100]}"
        if s.paused:
            counters += f" · {self.tr('PAUSED')}"
        if s.muted:
            counters += f" · {self.tr('MUTED')}"
        title = s.title + (f" — {s.page}" if s.page else "")
        return (title, clock, countdown_text(s.starts_at, s.now, self.lang), feed, counters)

    def focus_text(self) -> str:
        """The auto-focus pill's text ("" when none); drawn left of the clock."""
        return self._status.focus if self._status is not None else ""

    def update_status(self, status: HeaderStatus) -> None:
        self._status = status
        texts = self.texts() + (status.focus,)
        if texts != self._texts:
            self._texts = texts
            self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        r = self.rect()
        p.fillRect(r, QColor(self.theme.panel))
        p.setPen(QPen(QColor(self.theme.panel_border), 2))
        p.drawLine(r.bottomLeft(), r.bottomRight())
        if self._status is None:
            p.end()
            return
        title, clock, countdown, feed, counters, focus = self._texts
        h = r.height()
        pad = int(h * 0.3)
        big = ui_font(max(10.0, h * 0.34), bold=True, fixed=True)
        small = ui_font(max(8.0, h * 0.26), fixed=True)
        # Feed pill (right), clock left of it, counters under nothing: one line for walls.
        p.setFont(big)
        fm = p.fontMetrics()
        pill_w = fm.horizontalAdvance(feed) + pad * 2
        pill = QRectF(r.right() - pill_w - pad, h * 0.14, pill_w, h * 0.72)
        color = QColor(FEED_COLORS["REPLAY" if self._status.replay else self._status.feed_state]
                       if self._status.replay or self._status.feed_state in FEED_COLORS else "#7a7f87")
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(color)
        p.drawRoundedRect(pill, h * 0.18, h * 0.18)
        p.setPen(QColor("#ffffff"))
        p.drawText(pill, Qt.AlignmentFlag.AlignCenter, feed)
        x_right = pill.left() - pad
        clock_w = fm.horizontalAdvance(clock)
        p.setPen(QColor(self.theme.text))
        p.drawText(QRectF(x_right - clock_w, 0, clock_w, h), Qt.AlignmentFlag.AlignVCenter, clock)
        x_right -= clock_w + pad
        if focus:   # why this screen shows what it shows: a crit pill, never missed
            fw = fm.horizontalAdvance(focus) + pad * 2
            box = QRectF(x_right - fw, h * 0.14, fw, h * 0.72)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(FOCUS_COLOR))
            p.drawRoundedRect(box, h * 0.18, h * 0.18)
            p.setPen(QColor("#ffffff"))
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, focus)
            x_right -= fw + pad
        if countdown:
            cw = fm.horizontalAdvance(countdown)
            p.setPen(QColor(self.theme.accent))
            p.drawText(QRectF(x_right - cw, 0, cw, h), Qt.AlignmentFlag.AlignVCenter, countdown)
            x_right -= cw + pad
        # The title keeps what it needs (up to half the strip); counters take the rest.
        p.setFont(big)
        title_w = min(p.fontMetrics().horizontalAdvance(title), int(r.width() * 0.5))
        p.setFont(small)
        fs = p.fontMetrics()
        room = max(0, int(x_right - pad * 3 - title_w))
        cw = min(fs.horizontalAdvance(counters) + 8, room)  # + slack: elision rounds down
        p.setPen(QColor(self.theme.text_dim if not self._status.rejects else "#e0a106"))
        p.drawText(QRectF(x_right - cw, 0, cw, h), Qt.AlignmentFlag.AlignVCenter,
                   fs.elidedText(counters, Qt.TextElideMode.ElideRight, int(cw)))
        x_right -= cw + pad
        p.setFont(big)
        p.setPen(QColor(self.theme.text))
        tw = max(0, int(x_right - pad))
        p.drawText(QRectF(pad, 0, tw, h), Qt.AlignmentFlag.AlignVCenter,
                   p.fontMetrics().elidedText(title, Qt.TextElideMode.ElideRight, tw))
        p.end()


class BannerBar(QWidget):
    """A full-width message strip: the command center's ``banner`` or the STALE warning.

    Hidden when it has no text. ``level`` is info, warn or crit (crit blinks slowly,
    driven by :meth:`tick`, so it cannot be missed).
    """

    LEVEL_COLORS = {"info": "#1f5fbf", "warn": "#b7791f", "crit": "#b0103a"}

    def __init__(self, theme: Theme = DARK, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme
        self.text = ""
        self.level = "info"
        self._phase = False
        self.setFixedHeight(56)
        self.hide()

    def scale_to(self, window_height: int) -> None:
        self.setFixedHeight(max(40, int(window_height * 0.04)))

    def show_message(self, text: str, level: str = "info") -> None:
        changed = (text, level) != (self.text, self.level)
        self.text, self.level = text, level
        self.setVisible(bool(text))
        if changed:
            self.update()

    def clear(self) -> None:
        self.show_message("", self.level)

    def tick(self, now: float) -> None:
        if self.level == "crit" and self.text:
            phase = int(now) % 2 == 0
            if phase != self._phase:
                self._phase = phase
                self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        r = self.rect()
        color = QColor(self.LEVEL_COLORS.get(self.level, "#1f5fbf"))
        if self.level == "crit" and self._phase:
            color = color.lighter(125)
        p.fillRect(r, color)
        p.setPen(QColor("#ffffff"))
        p.setFont(ui_font(max(10.0, r.height() * 0.42), bold=True, fixed=True))
        p.drawText(r, Qt.AlignmentFlag.AlignCenter,
                   p.fontMetrics().elidedText(self.text, Qt.TextElideMode.ElideRight, r.width() - 20))
        p.end()
