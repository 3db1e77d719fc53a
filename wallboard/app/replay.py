"""REPLAY on a window: the flight recorder's wall side (issue 16).

A window in REPLAY shows the page it showed (a layout page or a store page) built again
on a state of its own, fed by a second connection to the hub (``FeedClient(at=...)``):
the live state and the live connection keep running, so Esc is back to LIVE at once.
Inside the window "now" is the replay clock: panels are refreshed and ticked with it,
and the replay state expires devices by it, so ages and TTLs read as they did then.

Keys (the controller routes them here): ``[`` / ``]`` one minute back / forward
(Shift: ten), Space pause / resume, ``+`` / ``-`` speed x1, x2, x4 ... x64, Esc LIVE.
Unmistakable: a violet frame around the window, "REPLAY 09:31:05 x4" in the header in
place of the feed pill and on every panel's title strip, and a scrub bar with the keys
(click it on a workstation to jump). Controls (ACK) are not offered there: acknowledging
is a live act. Alert sounds stay off while any window replays.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from wallboard.app.frame import FrameDriver
from wallboard.state import Dirty, LiveState
from wallboard.widgets.base import FEED_COLORS, Theme, translate, ui_font

log = logging.getLogger(__name__)

REPLAY_COLOR = FEED_COLORS["REPLAY"]
#: The speeds ``+`` / ``-`` step through.
SPEEDS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
#: How far back the scrub bar reaches (the hub's default ``--keep``).
SCRUB_SPAN_S = 3600.0


def replay_clock_text(at: float | None, speed: float, lang: str, utc_offset_s: int | None = None) -> str:
    """``REPLAY 09:31:05 x4`` (``PAUSED`` for speed 0), the time as the header shows times."""
    if at is None:
        return translate("REPLAY", lang)
    lt = time.gmtime(at + utc_offset_s) if utc_offset_s is not None else time.localtime(at)
    # "PAUSED" of the rotation reads 轮播暂停 in Chinese: the replay's pause has its own word
    pace = (translate("replay paused", "zh") if lang == "zh" else "PAUSED") if speed == 0 else f"x{speed:g}"
    return f"{translate('REPLAY', lang)} {time.strftime('%H:%M:%S', lt)} {pace}"


class WindowReplay:
    """One window's REPLAY: its client, state, frame driver and page.

    ``client`` is a started-or-not replay feed client (``seek``, ``set_speed``,
    ``replay_clock``, ``drain``, ``resync``, ``stop``); ``page_factory(state, ctx)``
    builds the page shown (the window's current page again); ``ctx`` is that page's
    context, copied with the replay clock, no controls, and "REPLAY" as feed state.
    ``hub_now`` gives the present on the hub's clock (the scrub bar's right end, the
    limit of ``]``)."""

    def __init__(self, client: Any, at: float, speed: float, ctx: Any, page_factory: Callable[[Any, Any], Any],
                 *, hub_now: Callable[[], float], executor: Any = None, config: Any = None) -> None:
        self.client = client
        self.requested_at = float(at)
        self.hub_now = hub_now
        self.paused_speed: float | None = None     # the speed Space resumes, while paused
        self._speed = float(speed)
        self.state = LiveState(config)
        self.ctx = dataclasses.replace(ctx, clock=self.clock, send_control=None, feed_state=lambda: "REPLAY")
        self.driver = FrameDriver(self.state, client, clock=self.clock, executor=executor)
        self.page = page_factory(self.state, self.ctx)
        self.seeks = 0

    # ------------------------------------------------------------------ the clock
    def clock(self) -> float:
        """The replay clock (the moment shown), or the moment asked for until the hub says."""
        at = self.client.replay_clock()
        return self.requested_at if at is None else at

    @property
    def speed(self) -> float:
        return self._speed

    def text(self, lang: str, utc_offset_s: int | None = None) -> str:
        """The pill: ``REPLAY 09:31:05 x4``, and the link's state when it is not up (the
        clock then runs on without data: said, not hidden)."""
        text = replay_clock_text(self.clock(), self._speed, lang, utc_offset_s)
        link = getattr(getattr(self.client, "state", None), "state", "LIVE")
        return text if link == "LIVE" else f"{text} · {translate(link, lang)}"

    # ------------------------------------------------------------------ moving it
    def start(self) -> None:
        self.client.start()

    def stop(self) -> None:
        self.client.stop(timeout=2.0)

    def seek(self, at: float) -> None:
        at = min(float(at), self.hub_now())
        self.requested_at = at
        self.seeks += 1
        self.client.seek(at)

    def step(self, seconds: float) -> None:
        """``[`` / ``]``: the replay clock ``seconds`` later (earlier when negative)."""
        self.seek(self.clock() + seconds)

    def set_speed(self, x: float) -> None:
        self._speed = float(x)
        self.client.set_speed(self._speed)

    def faster(self, up: bool) -> None:
        """``+`` / ``-``: the next speed of :data:`SPEEDS` (resumes a paused replay)."""
        cur = self.paused_speed if self.paused_speed is not None else self._speed
        self.paused_speed = None
        higher = [s for s in SPEEDS if s > cur]
        lower = [s for s in SPEEDS if s < cur]
        x = (higher[0] if higher else SPEEDS[-1]) if up else (lower[-1] if lower else SPEEDS[0])
        self.set_speed(x)

    def toggle_pause(self) -> None:
        if self.paused_speed is None:
            self.paused_speed = self._speed or 1.0
            self.set_speed(0.0)
        else:
            x, self.paused_speed = self.paused_speed, None
            self.set_speed(x)

    # ------------------------------------------------------------------ frames
    def frame(self) -> Dirty:
        """One frame: apply what the replay connection brought, refresh the page by the
        replay clock."""
        dirty = self.driver.step()
        self.page.refresh(dirty, self.clock())
        return dirty

    def tick(self) -> None:
        self.page.tick(self.clock())


class ReplayFrame(QWidget):
    """The coloured frame around a window in REPLAY (mouse-transparent, drawn on top)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground, True)
        self.hide()

    def border(self) -> int:
        return max(6, int(self.height() * 0.006))

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        b = self.border()
        pen = QPen(QColor(REPLAY_COLOR), b)
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(QRectF(self.rect()).adjusted(b / 2, b / 2, -b / 2, -b / 2))
        p.end()


class ScrubBar(QWidget):
    """Under the page in REPLAY: the last hour as a track with the replay clock on it,
    and the keys. A click on the track emits ``seek_to(epoch seconds)`` (workstations)."""

    seek_to = Signal(float)

    def __init__(self, theme: Theme, lang: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme
        self.lang = lang
        self.at: float | None = None
        self.end = 0.0
        self.span_s = SCRUB_SPAN_S
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(40)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.hide()

    def scale_to(self, window_height: int) -> None:
        self.setFixedHeight(max(32, int(window_height * 0.032)))

    def keys_text(self) -> str:
        return translate("[ / ] one minute (Shift: ten) · Space pause · + / - speed · Esc LIVE", self.lang)

    def set_position(self, at: float | None, end: float) -> None:
        if (at, end) != (self.at, self.end):
            self.at, self.end = at, end
            self.update()

    def _track(self) -> QRectF:
        r = self.rect()
        return QRectF(r.width() * 0.45, r.height() * 0.35, r.width() * 0.53, r.height() * 0.3)

    def moment_at(self, x: float) -> float:
        """The moment under horizontal position ``x`` of the track."""
        t = self._track()
        frac = min(1.0, max(0.0, (x - t.left()) / max(1.0, t.width())))
        return self.end - self.span_s * (1.0 - frac)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and self._track().adjusted(-4, -20, 4, 20).contains(
                event.position()):
            self.seek_to.emit(self.moment_at(event.position().x()))

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        r = self.rect()
        p.fillRect(r, QColor(self.theme.panel))
        h = r.height()
        p.setFont(ui_font(max(8.0, h * 0.36), fixed=True))
        p.setPen(QColor(self.theme.text))
        p.drawText(QRectF(h * 0.4, 0, r.width() * 0.43, h), Qt.AlignmentFlag.AlignVCenter,
                   p.fontMetrics().elidedText(self.keys_text(), Qt.TextElideMode.ElideRight, int(r.width() * 0.43)))
        t = self._track()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(self.theme.panel_border))
        p.drawRoundedRect(t, t.height() / 2, t.height() / 2)
        if self.at is not None and self.end:
            frac = min(1.0, max(0.0, 1.0 - (self.end - self.at) / self.span_s))
            x = t.left() + frac * t.width()
            p.setBrush(QColor(REPLAY_COLOR))
            p.drawRoundedRect(QRectF(t.left(), t.top(), x - t.left(), t.height()), t.height() / 2, t.height() / 2)
            p.drawEllipse(QRectF(x - h * 0.25, h * 0.25, h * 0.5, h * 0.5))
        p.end()


__all__ = ["WindowReplay", "ReplayFrame", "ScrubBar", "replay_clock_text", "SPEEDS", "REPLAY_COLOR"]
