"""The controller's REPLAY side: start a window's replay, route its keys, Esc to LIVE.

``ReplayKeys(controller)`` owns nothing the live wall needs: each replaying window holds
its :class:`wallboard.app.replay.WindowReplay` (``w.replay``). The controller calls
:meth:`frame` every frame, :meth:`second` once a second, :meth:`key` for every key,
:meth:`live` on Esc, :meth:`hub_time` with every live heartbeat's ``time`` (the moments
asked for are on the hub's clock: the wall's own clock is never sent as "now").

Keys on a window: ``[`` starts REPLAY one minute ago (Shift+``[``: ten), then ``[`` /
``]`` step back / forward (Shift: ten minutes), Space pauses / resumes, ``+`` / ``-``
change the speed, ``R`` rewinds to the opening of the incident selected on the page's
board (else its first row), Esc goes back to LIVE. Keys that change the page or the
layout (PageUp/PageDown, 1-9, Ctrl+K, L) end the replay first.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent

from wallboard.app.replay import WindowReplay
from wallboard.app.window import PageView
from wallboard.protocol import WALL_MAX_FRAME
from wallboard.state import Dirty

if TYPE_CHECKING:  # pragma: no cover
    from wallboard.app.controller import WallController
    from wallboard.app.window import WallWindow

log = logging.getLogger(__name__)

K = Qt.Key
#: Keys that move the replay clock: (seconds, Shift held or a braced key).
_STEPS = {K.Key_BracketLeft: -60.0, K.Key_BracketRight: 60.0, K.Key_BraceLeft: -600.0, K.Key_BraceRight: 600.0}
_ENDS_REPLAY = (K.Key_PageUp, K.Key_PageDown, K.Key_L, *range(K.Key_1, K.Key_9 + 1))
#: Before its opening: a rewind to an incident starts this long before it opened.
REWIND_LEAD_S = 60.0


class ReplayKeys:
    """REPLAY on the controller's windows (see the module docstring)."""

    def __init__(self, ctl: "WallController") -> None:
        self.ctl = ctl
        #: Hub clock minus wall clock, from the live heartbeats (0 until the first).
        self.hub_offset = 0.0
        #: Why the last REPLAY did not start ("" when it did).
        self.error = ""
        #: ``client_factory(at, speed)`` -> a replay feed client; the default opens one to
        #: the live client's hubs (tests give their own).
        self.client_factory: Callable[[float, float], Any] | None = self._default_client

    # ------------------------------------------------------------------ clock
    def hub_time(self, t: Any) -> None:
        if isinstance(t, (int, float)) and t > 0:
            self.hub_offset = float(t) - self.ctl.clock()

    def hub_now(self) -> float:
        return self.ctl.clock() + self.hub_offset

    # ------------------------------------------------------------------ state
    def windows(self) -> list["WallWindow"]:
        return [w for w in self.ctl.windows if w.replay is not None]

    def active(self) -> bool:
        return any(w.replay is not None for w in self.ctl.windows)

    def header_text(self, w: "WallWindow") -> str:
        return w.replay.text(self.ctl.lang) if w.replay is not None else ""

    # ------------------------------------------------------------------ start / stop
    def start(self, w: "WallWindow", at: float, speed: float = 1.0, *, sync: bool = False) -> bool:
        """REPLAY on ``w`` from ``at`` (hub clock); False (and ``error``) when it cannot.
        ``sync``: snapshots load on the calling thread (a tape played frame by frame)."""
        page = w.current_page()
        if page is None:
            return False
        factory = self.client_factory
        client = factory(at, speed) if factory is not None else None
        if client is None:
            self._fail(self.ctl.tr("REPLAY needs a hub feed"))
            return False
        self.live(w)

        def build(state: Any, ctx: Any) -> PageView:
            return PageView(page.screen_spec, state, ctx, title=page.title)

        replay = WindowReplay(client, at, speed, page.ctx, build, hub_now=self.hub_now,
                              executor=None if sync else self.ctl._executor, config=getattr(self.ctl.state, "config", None))
        w.show_replay(replay)
        replay.start()
        self.error = ""
        log.info("REPLAY on %s from %s at x%g", w.windowTitle(), time.strftime("%H:%M:%S", time.localtime(at)),
                 speed)
        self._paint(w)
        self.ctl._update_headers(self.ctl.clock())
        self.ctl._update_status_line()
        return True

    def live(self, w: "WallWindow") -> bool:
        """Esc: ``w`` back to LIVE at once; False when it was not replaying."""
        replay = w.hide_replay()
        if replay is None:
            return False
        replay.stop()
        page = w.current_page()
        if page is not None:
            page.refresh(Dirty.everything(), self.ctl.clock())
        self.ctl._update_headers(self.ctl.clock())
        return True

    def live_everywhere(self) -> None:
        for w in self.windows():
            self.live(w)

    def to_incident(self, w: "WallWindow", incident_id: str) -> bool:
        """"Rewind to its opening": REPLAY from a minute before the incident opened."""
        states = [self.ctl.state] + ([w.replay.state] if w.replay is not None else [])
        opened = None
        for state in states:   # live first; the past holds one resolved and gone since
            inc = state.incidents.get(incident_id) if hasattr(state, "incidents") else None
            opened = (inc or {}).get("opened_at")
            if opened is not None:
                break
        if not isinstance(opened, (int, float)):
            self._fail(f"{self.ctl.tr('Rewind to its opening')}: {incident_id!r}?")
            return False
        at = float(opened) - REWIND_LEAD_S
        if w.replay is not None:
            w.replay.seek(at)
            self._paint(w)
            return True
        return self.start(w, at)

    def _fail(self, why: str) -> None:
        self.error = why
        log.warning("%s", why)
        self.ctl._update_status_line()

    # ------------------------------------------------------------------ keys
    def key(self, event: QKeyEvent, w: "WallWindow") -> bool:
        key = event.key()
        mods = event.modifiers()
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        r = w.replay
        if key in _STEPS and not ctrl:
            step = _STEPS[key] * (10 if shift and abs(_STEPS[key]) == 60 else 1)
            if r is not None:
                r.step(step)
            elif step < 0:
                self.start(w, self.hub_now() + step)
            else:
                return True        # ] on a live window: nothing later than now
            self._paint(w)
            return True
        if key == K.Key_R and not ctrl:
            iid = self._page_incident(w)
            if iid is not None:
                self.to_incident(w, iid)
            return True
        if r is None:
            return False
        if key == K.Key_Space:
            r.toggle_pause()
        elif key in (K.Key_Plus, K.Key_Equal):
            r.faster(True)
        elif key in (K.Key_Minus, K.Key_Underscore):
            r.faster(False)
        elif key in _ENDS_REPLAY or (key == K.Key_K and ctrl):
            self.live(w)
            return False           # and the key does what it does on a live window
        else:
            return False
        self._paint(w)
        return True

    def _page_incident(self, w: "WallWindow") -> str | None:
        pages = ([w.replay.page] if w.replay is not None else []) + [w.current_page()]
        for page in pages:
            iid = page.selected_incident() if page is not None else None
            if iid is not None:
                return iid
        return None

    # ------------------------------------------------------------------ frames
    def frame(self) -> None:
        for w in self.windows():
            w.replay.frame()
            self._veil(w)

    def second(self) -> None:
        for w in self.windows():
            w.replay.tick()
            self._paint(w)

    def _paint(self, w: "WallWindow") -> None:
        """The replay clock on the panels' strips, the scrub bar and the header."""
        r = w.replay
        if r is None:
            return
        text = r.text(self.ctl.lang)
        for frame in r.page.panels:
            frame.set_replay(text)
        w.scrub.lang = self.ctl.lang
        w.scrub.set_position(r.clock(), self.hub_now())
        self._veil(w)
        self.ctl._update_headers(self.ctl.clock())

    def _veil(self, w: "WallWindow") -> None:
        """Until the state at the moment arrives: NO DATA, saying so (or why not)."""
        r = w.replay
        stats = r.driver.stats
        reason = ""
        if not stats.snapshots:
            when = time.strftime("%H:%M:%S", time.localtime(r.requested_at))
            reason = f"{self.ctl.tr('REPLAY: waiting for the state at')} {when}"
            status = getattr(r.client, "state", None)
            why = stats.last_reject or getattr(status, "last_reject", "") or getattr(status, "last_error", "")
            if why:
                reason += f" · {why}"
        for frame in r.page.panels:
            frame.set_no_data(reason)

    # ------------------------------------------------------------------ the client
    def _default_client(self, at: float, speed: float) -> Any:
        live = self.ctl.client
        urls = getattr(live, "urls", None)
        if not urls:
            return None
        from wallboard.feed import FeedClient

        wall = getattr(live, "wall", None) or "wall"
        return FeedClient(",".join(urls), token=getattr(live, "token", None), wall=f"{wall}-replay", at=at,
                          speed=speed, max_frame=getattr(live, "max_frame", None) or WALL_MAX_FRAME)


__all__ = ["ReplayKeys", "REWIND_LEAD_S"]
