"""Which monitor each layout screen goes to, and at what size.

Monitors are numbered in a stable reading order (left to right, then top to bottom, by
geometry; see :func:`order_monitors`), so "monitor 1" is the same panel of the wall on
every boot whatever order the X server or the compositor lists them in.

A wall window goes to (first that applies):

1. the monitor given on the command line (``--monitor NAME|N``), for every window;
2. the monitor named in the layout (``monitor = "HDMI-1"`` on a ``[[screens]]`` table or
   on ``[rotation]``);
3. monitor N, where N is the layout's ``screen = N``, else the window's position in the
   layout (layout screen N goes to monitor N).

A monitor number beyond the last wraps round (a laptop with one monitor gets every
window), and windows sharing a monitor are cascaded. Windowed (the default), a window
takes 80 % of its monitor's available area, centred; ``--fullscreen`` and ``--kiosk``
(frameless, on top, cursor hidden when idle) give it exactly its monitor's geometry, set
explicitly so it holds without a window manager too.

:func:`plan` is pure (tests call it with made-up monitors); :class:`ScreenPlacer` reads
Qt's screens, applies a plan to the windows, re-applies it when a monitor comes or goes,
and toggles full screen (F11) on the window's own monitor.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

log = logging.getLogger(__name__)

MODES = ("window", "fullscreen", "kiosk")
WINDOWED_FRACTION = 0.8
CASCADE_PX = 48          # per shared window, in logical pixels
IDLE_CURSOR_S = 3.0      # kiosk: the cursor hides after this long without a mouse move
RESTACK_AFTER_MS = (300, 1500, 5000)  # full screen windows sharing a monitor are stacked again then


@dataclass(frozen=True)
class Monitor:
    """One monitor as Qt sees it; ``index`` is its place in :func:`order_monitors`."""

    index: int
    name: str
    geometry: tuple[int, int, int, int]           # x, y, width, height (logical pixels)
    available: tuple[int, int, int, int]          # the same minus panels and docks
    scale: float = 1.0                            # device pixel ratio
    refresh_hz: float = 0.0
    primary: bool = False
    model: str = ""

    def as_dict(self) -> dict:
        x, y, w, h = self.geometry
        return {"index": self.index, "name": self.name, "geometry": [x, y, w, h],
                "scale": self.scale, "refresh_hz": round(self.refresh_hz, 2), "primary": self.primary}


@dataclass(frozen=True)
class Target:
    """Where the layout wants one window: its layout screen number and monitor name."""

    layout_screen: int                 # ``screen = N`` from the layout, else its position
    monitor: str | None = None
    mode: str | None = None            # this window's own mode (F11), else the wall's


@dataclass(frozen=True)
class Placement:
    """Where one window goes: the monitor, the geometry, the mode, and why."""

    window: int
    layout_screen: int
    monitor: Monitor
    geometry: tuple[int, int, int, int]
    mode: str
    note: str = ""                     # e.g. a named monitor that is not connected

    def as_dict(self) -> dict:
        return {"window": self.window, "layout_screen": self.layout_screen,
                "monitor": self.monitor.name, "monitor_index": self.monitor.index,
                "geometry": list(self.geometry), "mode": self.mode, "note": self.note}


def order_monitors(rects: Sequence[tuple[int, int, int, int]]) -> list[int]:
    """Indices of ``rects`` (x, y, w, h) in reading order: rows top to bottom (a monitor
    whose top is above the middle of the row's first monitor belongs to that row), each
    row left to right; ties keep the given order."""
    by_top = sorted(range(len(rects)), key=lambda i: (rects[i][1], rects[i][0], i))
    rows: list[list[int]] = []
    for i in by_top:
        if rows:
            first = rects[rows[-1][0]]
            if rects[i][1] < first[1] + first[3] / 2:
                rows[-1].append(i)
                continue
        rows.append([i])
    return [i for row in rows for i in sorted(row, key=lambda j: (rects[j][0], j))]


def find_monitor(monitors: Sequence[Monitor], ref: str) -> Monitor | None:
    """The monitor ``ref`` names: its number in the order, else its name (exact, then
    case-insensitive; the first of several with the same name)."""
    ref = ref.strip()
    if ref.isdigit():
        n = int(ref)
        return monitors[n] if n < len(monitors) else None
    for m in monitors:
        if m.name == ref:
            return m
    for m in monitors:
        if m.name.lower() == ref.lower():
            return m
    return None


def _windowed(m: Monitor, k: int, size: tuple[int, int] | None) -> tuple[int, int, int, int]:
    """Windowed geometry on ``m`` for the ``k``-th window sharing it: 80 % of the available
    area (or exactly ``size``), centred, cascaded by ``CASCADE_PX`` per window."""
    ax, ay, aw, ah = m.available
    if size:
        w, h = size                      # as asked, even beyond the monitor
    else:
        w, h = int(aw * WINDOWED_FRACTION), int(ah * WINDOWED_FRACTION)
    step = CASCADE_PX * k
    x = max(ax, min(ax + (aw - w) // 2 + step, ax + aw - w))
    y = max(ay, min(ay + (ah - h) // 2 + step, ay + ah - h))
    return (x, y, w, h)


def plan(targets: Sequence[Target], monitors: Sequence[Monitor], *, mode: str = "window",
         monitor: str | None = None, size: tuple[int, int] | None = None) -> list[Placement]:
    """Placements of the windows ``targets`` describe, in order (see the module docstring).
    ``monitor`` is the ``--monitor`` option, ``size`` the ``--size`` option (windowed only)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    if not monitors:
        return []
    out: list[Placement] = []
    shared: dict[int, int] = {}
    for i, t in enumerate(targets):
        note = ""
        m = None
        ref = monitor or t.monitor
        if ref:
            m = find_monitor(monitors, ref)
            if m is None:
                known = ", ".join(f"{x.index}:{x.name}" for x in monitors)
                src = "--monitor" if monitor else "the layout's monitor"
                note = f'{src} "{ref}" is not connected (monitors: {known})'
        if m is None:
            n = t.layout_screen
            m = monitors[n % len(monitors)]
            if n >= len(monitors) and not note:
                note = f"layout screen {n} shares monitor {m.index} (only {len(monitors)} connected)"
        k = shared.get(m.index, 0)
        shared[m.index] = k + 1
        mode_i = t.mode or mode
        geom = m.geometry if mode_i != "window" else _windowed(m, k, size)
        out.append(Placement(i, t.layout_screen, m, geom, mode_i, note))
    return out


def select_screen(specs: Sequence[Any], n: int | None) -> list[Any]:
    """``--screen N``: the layout windows whose layout screen is N (``screen = N``, else
    their position); the first window when none is; every window when ``n`` is None."""
    if n is None:
        return list(specs)
    return [s for i, s in enumerate(specs) if (s.screen if s.screen is not None else i) == n] or list(specs[:1])


def targets_for(specs: Sequence[Any], all_specs: Sequence[Any]) -> list[Target]:
    """The targets of the windows shown (``specs``, layout ``Window`` objects), given every
    window of the layout (``all_specs``: a window's position there is its layout screen
    number when the layout sets no ``screen``)."""
    out = []
    for spec in specs:
        pos = next((i for i, s in enumerate(all_specs) if s is spec), None)
        if pos is None:
            pos = next((i for i, s in enumerate(all_specs) if s == spec), 0)
        n = spec.screen if getattr(spec, "screen", None) is not None else pos
        out.append(Target(n, getattr(spec, "monitor", None)))
    return out


# --------------------------------------------------------------------------- Qt side


def qt_monitors(app: Any = None) -> tuple[list[Monitor], list[Any]]:
    """Qt's screens as :class:`Monitor` objects in reading order, and the QScreens in the
    same order."""
    from PySide6.QtGui import QGuiApplication

    screens = list(QGuiApplication.screens())
    primary = QGuiApplication.primaryScreen()
    rects = [_rect(s.geometry()) for s in screens]
    order = order_monitors(rects)
    mons = []
    for idx, i in enumerate(order):
        s = screens[i]
        mons.append(Monitor(idx, s.name() or f"screen-{i}", rects[i], _rect(s.availableGeometry()),
                            float(s.devicePixelRatio()), float(s.refreshRate()), s is primary,
                            (s.manufacturer() + " " + s.model()).strip()))
    return mons, [screens[i] for i in order]


def _rect(r: Any) -> tuple[int, int, int, int]:
    return (r.x(), r.y(), r.width(), r.height())


class ScreenPlacer:
    """Puts the wall's windows on their monitors and keeps them there.

    ``place(windows, all_specs)`` after the windows exist (each carries its layout window
    as ``w.spec``) and again after a layout switch; it shows windows that are hidden.
    ``toggle_fullscreen(w)`` is F11. ``placements`` is the last plan (the status file
    reports it).
    """

    def __init__(self, *, mode: str = "window", monitor: str | None = None,
                 size: tuple[int, int] | None = None, idle_cursor_s: float = IDLE_CURSOR_S) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        self.mode = mode
        self.monitor = monitor
        self.size = size
        self.placements: list[Placement] = []
        self._windows: list[Any] = []
        self._all_specs: list[Any] = []
        self._cursor = None
        self._idle_cursor_s = idle_cursor_s
        self._hooked = False

    def place(self, windows: Sequence[Any], all_specs: Sequence[Any]) -> list[Placement]:
        """Plan and apply: each window to its monitor, at its size, shown."""
        self._windows = [w for w in windows if getattr(w, "spec", None) is not None]
        self._all_specs = list(all_specs)
        mons, qscreens = qt_monitors()
        self._hook()
        targets = [Target(t.layout_screen, t.monitor, getattr(w, "mode_override", None))
                   for t, w in zip(targets_for([w.spec for w in self._windows], self._all_specs), self._windows)]
        self.placements = plan(targets, mons, mode=self.mode, monitor=self.monitor, size=self.size)
        for w, p in zip(self._windows, self.placements):
            if p.note and p.note != getattr(w, "placement_note", ""):
                log.warning("window %d: %s", p.window, p.note)
            self.apply(w, p, qscreens[p.monitor.index])
        self._stack(self._windows, self.placements)
        self._restack_later()
        if self.mode == "kiosk" and self._cursor is None:
            self._cursor = IdleCursor(self._idle_cursor_s)
        return self.placements

    def _restack_later(self) -> None:
        """Stack again once the window manager has mapped the windows: a raise before a
        window is mapped is lost, and a window manager puts each newly mapped window on
        top (with openbox the devices screen covered the command screen)."""
        if not any(p.mode != "window" for p in self.placements):
            return
        from PySide6.QtCore import QTimer

        windows, placements = list(self._windows), list(self.placements)
        for ms in RESTACK_AFTER_MS:
            QTimer.singleShot(ms, lambda: self._stack(windows, placements) if self.placements == placements else None)

    @staticmethod
    def _stack(windows: Sequence[Any], placements: Sequence[Placement]) -> None:
        """Full-screen windows that share a monitor (fewer monitors than layout screens)
        cover each other: the lowest layout screen, the command screen, goes on top (the
        others are behind it, and their placement note says so). Raised last-first, so the
        first window of each monitor is raised last."""
        covering = [(w, p) for w, p in zip(windows, placements) if p.mode != "window"]
        for w, _p in sorted(covering, key=lambda wp: -wp[1].layout_screen):
            w.raise_()
        if covering:  # a window manager may ignore a bare raise (openbox does): ask it to
            top = min(covering, key=lambda wp: wp[1].layout_screen)[0]  # activate the command screen
            activate = getattr(top, "activateWindow", None)
            if activate is not None:
                activate()

    def apply(self, w: Any, p: Placement, qscreen: Any) -> None:
        from PySide6.QtCore import Qt

        old = getattr(w, "placement", None)
        w.placement = p
        w.placement_note = p.note
        if old == p and w.isVisible():
            return
        if w.screen() is not qscreen:
            w.setScreen(qscreen)
        x, y, width, height = p.geometry
        if p.mode == "kiosk":
            flags = w.windowFlags() | Qt.WindowType.FramelessWindowHint | Qt.WindowType.WindowStaysOnTopHint
            if flags != w.windowFlags():
                w.setWindowFlags(flags)
        if p.mode == "window":
            if w.isFullScreen():
                w.showNormal()
            w.resize(width, height)
            w.move(x, y)
            w.show()
        else:
            w.setGeometry(x, y, width, height)   # holds without a window manager
            w.showFullScreen()
            w.setGeometry(x, y, width, height)

    @property
    def cursor_hidden(self) -> bool | None:
        """Kiosk: whether the idle cursor is hidden now; None outside kiosk mode."""
        return None if self._cursor is None else self._cursor.hidden

    def toggle_fullscreen(self, w: Any) -> None:
        """F11: full screen on the window's own monitor, or back to its windowed place.
        The choice sticks to the window across layout switches (``w.mode_override``)."""
        if getattr(w, "placement", None) is None or w not in self._windows:
            w.showNormal() if w.isFullScreen() else w.showFullScreen()
            return
        w.mode_override = "window" if w.isFullScreen() else "fullscreen"
        self.place(self._windows, self._all_specs)

    def _hook(self) -> None:
        """Monitors plugged in or out (or a TV switched off on DisplayPort): place again."""
        if self._hooked:
            return
        from PySide6.QtGui import QGuiApplication

        app = QGuiApplication.instance()
        if app is None:
            return
        self._hooked = True
        app.screenAdded.connect(lambda *_: self._replace())
        app.screenRemoved.connect(lambda *_: self._replace())

    def _replace(self) -> None:
        from PySide6.QtCore import QTimer

        # After Qt has moved the windows of a removed screen itself.
        QTimer.singleShot(0, lambda: self.place(self._windows, self._all_specs) if self._windows else None)


class IdleCursor:
    """Kiosk: hide the mouse cursor after ``idle_s`` seconds without movement; a move shows
    it again. Polls the cursor position twice a second (no event filter on every event)."""

    def __init__(self, idle_s: float = IDLE_CURSOR_S, poll_s: float = 0.5) -> None:
        from PySide6.QtCore import Qt, QTimer
        from PySide6.QtGui import QCursor, QGuiApplication

        self._app = QGuiApplication.instance()
        self._pos = QCursor.pos
        self._blank = QCursor(Qt.CursorShape.BlankCursor)
        self.idle_s = idle_s
        self.hidden = False
        self._last = self._pos()
        self._still_since = 0.0
        self._timer = QTimer()
        self._timer.setInterval(int(poll_s * 1000))
        self._timer.timeout.connect(self._poll)
        self._timer.start()
        self.hide()

    def _poll(self) -> None:
        import time

        pos = self._pos()
        now = time.monotonic()
        if pos != self._last:
            self._last = pos
            self._still_since = now
            self.show()
        elif not self.hidden and now - self._still_since >= self.idle_s:
            self.hide()

    def hide(self) -> None:
        if not self.hidden:
            self._app.setOverrideCursor(self._blank)
            self.hidden = True

    def show(self) -> None:
        if self.hidden:
            self._app.restoreOverrideCursor()
            self.hidden = False


def describe(monitors: Sequence[Monitor], placements: Sequence[Placement], names: Sequence[str]) -> str:
    """The text ``wallboard screens`` prints: the monitors, then where each layout screen
    goes (``names``: the windows' screen names, in order)."""
    lines = ["monitors (numbered left to right, top to bottom):"]
    for m in monitors:
        x, y, w, h = m.geometry
        extra = "  primary" if m.primary else ""
        model = f"  {m.model}" if m.model else ""
        lines.append(f"  {m.index}  {m.name:<12} {w}x{h}+{x}+{y}  scale {m.scale:g}  "
                     f"{m.refresh_hz:.0f} Hz{extra}{model}")
    if placements:
        lines.append("layout screens:")
        for p, name in zip(placements, names):
            x, y, w, h = p.geometry
            lines.append(f"  screen {p.layout_screen} ({name}) -> monitor {p.monitor.index} "
                         f"{p.monitor.name}: {p.mode} {w}x{h}+{x}+{y}" + (f"  [{p.note}]" if p.note else ""))
    return "\n".join(lines)


#: Burn-in shift: the picture moves to the next offset every this many seconds.
BURN_IN_PERIOD_S = 180.0


def burn_in_offsets(px: int) -> list[tuple[int, int]]:
    """The cycle of picture offsets for ``--burn-in-shift PX``: the centre, then the eight
    points of a square of side 2 PX around it (each pixel stays lit a ninth of the time
    at most at a hard edge)."""
    if px <= 0:
        return [(0, 0)]
    return [(0, 0), (px, 0), (px, px), (0, px), (-px, px), (-px, 0), (-px, -px), (0, -px), (px, -px)]


class BurnInShifter:
    """Moves every wall window's picture to the next offset every ``period_s`` seconds
    (``WallWindow.shift_picture``); ``px = 0`` does nothing. Call :meth:`start`."""

    def __init__(self, windows_of: Any, px: int, period_s: float = BURN_IN_PERIOD_S) -> None:
        from PySide6.QtCore import QTimer

        self.windows_of = windows_of          # a callable: the windows to shift now
        self.px = px
        self.offsets = burn_in_offsets(px)
        self.step = 0
        self.timer = QTimer()
        self.timer.setInterval(int(period_s * 1000))
        self.timer.timeout.connect(self.shift)

    def start(self) -> None:
        if self.px > 0:
            self.timer.start()

    def shift(self) -> tuple[int, int]:
        self.step = (self.step + 1) % len(self.offsets)
        dx, dy = self.offsets[self.step]
        for w in self.windows_of():
            w.shift_picture(dx, dy, self.px)
        return dx, dy
