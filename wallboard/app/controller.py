"""The wall controller: frame loop, layouts and switching, drill-down, alerts, STALE.

Owns the live state, the feed client, the current layout and the windows. Once per frame
(QTimer at the layout's frame rate) it runs :class:`FrameDriver.step` and refreshes the
visible pages with the dirty set; once per second it updates headers, age badges, the
STALE banner, the rotation and the alert sounds. Control events from the hub
(``switch_layout``, ``banner``, ``focus_store``) arrive through the state's dirty set.

Call :meth:`start` after construction, :meth:`shutdown` before quitting.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QFileSystemWatcher, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent
from PySide6.QtWidgets import QApplication

from wallboard import layout as L
from wallboard.app.alerts import AlertPolicy
from wallboard.app.autofocus import FocusScreens
from wallboard.app.controls import ControlLedger
from wallboard.app.frame import FrameDriver
from wallboard.app.header import HeaderStatus
from wallboard.app.i18n import register as register_shell_translations
from wallboard.app.memory import TrimAfterSwitch
from wallboard.app.overlays import HelpOverlay, LayoutPicker
from wallboard.app.rewind import ReplayKeys
from wallboard.app.screens import ScreenPlacer, select_screen
from wallboard.app.sound import SoundPlayer
from wallboard.app.window import PageView, WallWindow
from wallboard.protocol import WALL_MAX_HEARTBEAT_S
from wallboard.state import Dirty, LiveState
from wallboard.widgets.base import THEMES, PanelContext, cjk_font_family, set_ui_scale

log = logging.getLogger(__name__)
register_shell_translations()

STALE_HEARTBEATS = 3


class WallController(QObject):
    """Drives every window of one wall process."""

    layout_changed = Signal(str)
    stale_changed = Signal(bool)

    def __init__(
        self,
        state: LiveState,
        client: Any,
        layout: L.Layout,
        *,
        lang: str = "en",
        screen: int | None = None,
        fps: float | None = None,
        fullscreen: bool = False,
        size: tuple[int, int] | None = None,
        muted: bool = False,
        layout_dirs: list[Path] | None = None,
        clock: Callable[[], float] = time.time,
        starts_at: float | None = None,
        placer: ScreenPlacer | None = None,
    ) -> None:
        super().__init__()
        self.state = state
        self.client = client
        self.lang = lang
        self.only_screen = screen
        self.fps_override = fps
        self.fullscreen = fullscreen
        self.size = size
        #: Puts each window on its monitor (``--monitor``, ``--kiosk``: see app/screens.py).
        self.placer = placer or ScreenPlacer(mode="fullscreen" if fullscreen else "window", size=size)
        self.clock = clock
        self.layout_dirs = layout_dirs or [L.DEFAULT_LAYOUT_DIR]
        #: Overrides the layout's ``starts_at`` (the embedded demo's own opening moment).
        self.starts_at_override = starts_at
        self.layout: L.Layout = layout
        self.previous_layouts: list[str] = []
        self.layout_error = ""
        self.windows: list[WallWindow] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot")
        self.driver = FrameDriver(state, client, clock=clock, on_item=self._on_item, executor=self._executor)
        self.alerts = AlertPolicy(muted=muted)
        self.sound = SoundPlayer()
        self.paused = False
        self.stale = False
        self.banner_until = 0.0
        self.controls_applied = 0
        self.controls_ignored = 0
        self.hub_layouts_refused = 0  # switch_layout controls naming no layout of ours (or a path)
        self.stores_unknown = 0  # open_store / focus_store for a store the state lacks
        self.drill_error = ""  # why the last store page did not open
        self.controls = ControlLedger(self.clock)  # controls sent, and what became of them
        self.roles: list[str] = []
        # Controls are judged by seq, never by a clock: those up to the hub's seq in the
        # welcome of the connection they came on are the replay of what this wall missed
        # (history); later ones are orders. ``_live_mark`` = (state seq when the latest
        # welcome was handled, the boundary before it): controls applied before that
        # welcome, in the same frame, keep the previous connection's boundary.
        self._live_after: int | None = None
        self._live_mark: tuple[int, int | None] = (0, None)
        self._page_started = clock()
        self._last_second = 0.0
        self._pulse = Dirty()
        self._no_data = ""
        self._watched = ""
        #: the hub's failing sources and sinks (its stats' notices), on the status line
        self.hub_notices: list[dict[str, str]] = []
        #: Instrumentation: each is called at the end of every :meth:`frame` with
        #: (event batches applied this frame, dirty, now); benchmarks force the paint there.
        self.frame_observers: list[Callable[[list[list[dict]], Dirty, float], None]] = []
        #: glibc keeps the old layout's freed pages: handed back a few seconds after a switch
        self.trimmer = TrimAfterSwitch(self)
        self.watcher = QFileSystemWatcher(self)
        self.watcher.fileChanged.connect(self._layout_file_changed)
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self.frame)
        self.watcher.directoryChanged.connect(self._layout_dir_changed)
        set_ui_scale(self._logical_height() / 1080.0)
        #: What this machine lacks (no CJK font, no audio): (message, detail) pairs shown on
        #: every window's status line and logged once, at start.
        self.notices = self._environment_notices()
        #: REPLAY on windows (the flight recorder): keys, start, Esc to LIVE (app/rewind.py).
        self.rewind = ReplayKeys(self)
        #: The layout's [[rules]]: screens turned to matching incidents (app/autofocus.py).
        self.focus = FocusScreens(self)
        self.apply_layout(layout)
        self._update_status_line()

    def _environment_notices(self) -> list[tuple[str, str]]:
        notices = []
        if not cjk_font_family():
            notices.append(("no CJK font: Chinese names draw as boxes (install fonts-noto-cjk)", ""))
        if self.sound.unavailable:
            notices.append(("no audio", self.sound.unavailable))
        for text, detail in notices:
            log.warning("%s%s", text, f": {detail}" if detail else "")
        return notices

    def _logical_height(self) -> int:
        """The wall's height in logical pixels: the given size, else the primary screen's."""
        if self.size:
            return self.size[1]
        screen = QGuiApplication.primaryScreen()
        return screen.size().height() if screen is not None else 1080

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        fps = self.fps_override or self.layout.frame_rate or 30
        self.timer.start(max(5, int(1000 / fps)))
        self._show()

    def shutdown(self) -> None:
        self.timer.stop()
        self.trimmer.timer.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        for w in self.windows:
            w.close()

    def _show(self) -> None:
        """Each layout window on its monitor, shown (placed again after a layout switch)."""
        self.placer.place(self.windows, self.layout.windows())

    # ------------------------------------------------------------------ context
    def ctx_for(self, scope: L.Scope | None = None) -> PanelContext:
        ev = self.layout.event
        sc = scope or ev.scope
        send = self._send_control if hasattr(self.client, "send_control") else None
        return PanelContext(
            lang=self.lang,
            theme=THEMES.get(self.layout.theme, THEMES["dark"]),
            scope={"cities": list(sc.cities), "stores": list(sc.stores)},
            send_control=send,
            control_outcome=self.controls.outcome,
            clock=self.clock,
            feed_state=self.feed_state,
            freeze=[{"start": f.start.timestamp(), "end": f.end.timestamp(),
                     "label": (f.label_zh if self.lang == "zh" and f.label_zh else f.label)}
                    for f in ev.freeze],
        )

    # ------------------------------------------------------------------ layouts
    def layout_names(self) -> list[str]:
        names: list[str] = []
        for d in self.layout_dirs:
            for p in L.list_layouts(d):
                if p.stem not in names and p.stem != "store":
                    names.append(p.stem)
        return names

    def apply_layout(self, layout: L.Layout) -> None:
        """Show ``layout`` on this wall's windows (reusing them; extra ones close)."""
        if hasattr(self, "rewind"):
            self.rewind.live_everywhere()     # the pages replayed are about to go
        self.layout = layout
        theme = THEMES.get(layout.theme, THEMES["dark"])
        specs = select_screen(layout.windows(), self.only_screen)
        for i, spec in enumerate(specs):
            if i < len(self.windows):
                w = self.windows[i]
            else:
                w = WallWindow(theme, self.lang, self._on_key)
                self.windows.append(w)
            w.spec = spec
            pages = []
            for page in spec.pages:
                panel_scope = None
                pv = PageView(page.screen, self.state, self.ctx_for(panel_scope), duration_s=page.duration_s)
                pv.store_clicked.connect(self.open_store)
                pv.rewind_requested.connect(lambda iid, w=w: self.rewind.to_incident(w, iid))
                pages.append(pv)
            w.set_pages(pages, spec.rotating and layout.rotation.enabled)
            w.setWindowTitle(f"wallboard — {self._title()}")
        for w in self.windows[len(specs):]:
            w.close()
            w.deleteLater()
        del self.windows[len(specs):]
        if self.timer.isActive():
            self._show()
        self.alerts.repeat_s = layout.sound.repeat_s
        self.alerts.escalate_after_s = layout.sound.escalate_after_s
        self.alerts.enabled = layout.sound.enabled
        if self.timer.isActive():
            fps = self.fps_override or layout.frame_rate or 30
            self.timer.setInterval(max(5, int(1000 / fps)))
        self._watch(layout.path)
        self.focus.reset(layout)
        self._page_started = self.clock()
        self._refresh_all(self.clock())
        self.trimmer.switched()
        self.layout_changed.emit(layout.name)

    def switch_layout(self, name_or_path: str, *, from_hub: bool = False) -> bool:
        """Load and show a layout; on error keep the current one and show why.

        ``from_hub``: the hub's ``switch_layout`` control names a layout of this wall's
        layout dirs by name only; a path (``../../../etc/passwd``) or anything else that
        is not a layout name is refused without touching the file system, said on the
        status line and counted (``hub_layouts_refused``), like any other failed switch
        ordered by the hub."""
        try:
            if from_hub:
                L.check_layout_name(name_or_path, self.layout_names())
            path = L.find_layout(name_or_path, self.layout_dirs)
            new = L.load_layout(path)
            if new.kind == "store":
                raise ValueError(f"{new.name!r} is the store page template, not a wall layout "
                                 f"(open a store instead); layouts: {', '.join(self.layout_names())}")
        except (L.LayoutError, FileNotFoundError, KeyError, ValueError) as e:
            if from_hub:
                self.hub_layouts_refused += 1
                self.layout_error = f'{self.tr("layout from the hub refused")} "{_shown(name_or_path)}": {_why(e, name_or_path)}'
            else:
                self.layout_error = f"{self.tr('layout')} {name_or_path}: {e}"
            log.warning("%s", self.layout_error)
            self._update_status_line()
            return False
        if self.layout.name != new.name:
            self.previous_layouts.append(self.layout.path or self.layout.name)
            del self.previous_layouts[:-10]
        self.layout_error = ""
        self.apply_layout(new)
        self._update_status_line()
        return True

    def _watch(self, path: str | None) -> None:
        """Watch the layout file and its directory: a file deleted and written again (or
        replaced by an editor) drops out of a QFileSystemWatcher; the directory brings it back."""
        old = self.watcher.files() + self.watcher.directories()
        if old:
            self.watcher.removePaths(old)
        self._watched = str(path) if path else ""
        if path and Path(path).exists():
            self.watcher.addPath(str(path))
            self.watcher.addPath(str(Path(path).parent))

    def _layout_dir_changed(self, _directory: str) -> None:
        """The layout's directory changed: reload when the layout file came back."""
        path = self._watched
        if path and Path(path).exists() and path not in self.watcher.files():
            self._layout_file_changed(path)

    def _layout_file_changed(self, path: str) -> None:
        """Hot reload: a good file replaces the layout, a bad (or deleted) one leaves it in
        place and says why on the status line."""
        if not Path(path).exists():
            self.layout_error = f"{self.tr('layout not reloaded')}: {path}: {self.tr('file removed')}"
            log.warning("%s", self.layout_error)
            self._update_status_line()
            return
        try:
            new = L.load_layout(path)
        except (L.LayoutError, FileNotFoundError, ValueError) as e:
            self.layout_error = f"{self.tr('layout not reloaded')}: {e}"
            log.warning("%s", self.layout_error)
        else:
            self.layout_error = ""
            self.apply_layout(new)
        if Path(path).exists() and path not in self.watcher.files():
            self.watcher.addPath(path)  # editors replace files; watch the new one
        self._update_status_line()

    # ------------------------------------------------------------------ drill-down
    def store_page(self, store_id: str) -> PageView | None:
        """A live page of one store (the shipped or the user's ``store`` layout, bound to
        it), or None when the state lacks the store or the template does not load (then
        ``drill_error`` says why, on the status line)."""
        store = self.state.stores.get(store_id) if hasattr(self.state, "stores") else None
        if store is None:
            self.drill_error = f"{self.tr('unknown store')} {store_id!r}"
            self.stores_unknown += 1
            log.warning("%s (open_store/focus_store)", self.drill_error)
            self._update_status_line()
            return None
        city = ((store or {}).get("city") or {}).get("id", "")
        name = (store or {}).get("name_en" if self.lang == "en" else "name") or (store or {}).get("name") or store_id
        try:
            tpl = L.load_layout(L.find_layout("store", self.layout_dirs))
            bound = L.bind_store(tpl, store_id, city, name)
        except (L.LayoutError, FileNotFoundError, KeyError, ValueError) as e:
            self.drill_error = f"{self.tr('store page')}: {e}"
            self._update_status_line()
            return None
        self.drill_error = ""
        page = PageView(bound.screens[0], self.state, self.ctx_for(bound.event.scope),
                        title=f"{self.tr('Store')} {name}")
        page.store_clicked.connect(self.open_store)
        return page

    def open_store(self, store_id: str, own_window: bool | None = None) -> bool:
        """Open a store's page (devices, changes, incidents, voice, KPIs) on the wall
        that asked, or in its own window on a workstation (Shift+click)."""
        page = self.store_page(store_id)
        if page is None:
            return False
        if own_window is None:
            own_window = bool(QApplication.keyboardModifiers() & Qt.KeyboardModifier.ShiftModifier)
        if own_window:
            w = WallWindow(THEMES.get(self.layout.theme, THEMES["dark"]), self.lang, self._on_key)
            w.set_pages([page], False)
            w.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
            w.resize(1600, 1000)
            w.setWindowTitle(f"wallboard — {page.title}")
            w.store_window = True   # its header names the store (its one page)
            self.windows.append(w)
            w.destroyed.connect(lambda *_a, w=w: self.windows.remove(w) if w in self.windows else None)
            w.show()
            self.present(w, page)
        else:
            self.push_page(self.windows[0], page)
        return True

    def push_page(self, w: WallWindow, page: PageView) -> None:
        """Show ``page`` on top of ``w`` (live: a REPLAY there ends), as a drill-down."""
        self.rewind.live(w)
        w.push_drill(page)
        self.present(w, page)

    def present(self, w: WallWindow, page: PageView) -> None:
        """A page just shown on ``w``: wired for "rewind", painted, headers updated."""
        page.rewind_requested.connect(lambda iid, w=w: self.rewind.to_incident(w, iid))
        page.refresh(_all_dirty(), self.clock())
        page.set_dimmed(self.stale)
        for frame in page.panels:
            frame.set_no_data(self._no_data)
        self._update_headers(self.clock())
        self._update_status_line()

    def back(self, window: WallWindow | None = None) -> bool:
        """Esc: close an overlay, else the top drill-down page."""
        w = window or self.windows[0]
        if w.overlay is not None:
            self._close_overlay(w)
            return True
        if self.rewind.live(w):                   # REPLAY -> LIVE at once
            return True
        if self.focus.escape(w):                  # back from an auto-focus
            return True
        if w.pop_drill():
            cur = w.current_page()
            if cur is not None:
                cur.refresh(_all_dirty(), self.clock())
            self._update_headers(self.clock())
            return True
        if w not in self.windows[:1] and not w.pages[1:] and w.isWindow() and w.testAttribute(Qt.WidgetAttribute.WA_DeleteOnClose):
            w.close()
            return True
        return False

    # ------------------------------------------------------------------ frame loop
    def frame(self) -> None:
        """One frame: drain + apply within budget, refresh visible pages, once a second
        the clock-driven parts."""
        dirty = self.driver.step()
        if dirty.controls:
            self._handle_controls(dirty.controls)
        now = self.clock()
        for w in self.windows:  # panels are cheap when dirty names nothing of theirs
            page = w.current_page()
            if page is not None:
                page.refresh(dirty, now)
        self.rewind.frame()
        self._check_stale(now)
        self._sync_no_data()
        if now - self._last_second >= 1.0:
            self._last_second = now
            self._second(now)
        for observer in self.frame_observers:
            observer(self.driver.frame_events, dirty, now)

    def _check_stale(self, now: float) -> bool:
        """Every frame (it is cheap): dim the panels and raise the banner the moment the
        feed goes STALE, clear both the moment it is back."""
        stale = self.is_stale(now)
        if stale != self.stale:
            self.stale = stale
            for w in self.windows:
                for p in w.pages + w.drill:
                    p.set_dimmed(stale)
                if stale:
                    self._stale_banner(w, now)
                else:
                    w.stale_banner.clear()
            self.stale_changed.emit(stale)
            self._update_headers(now)
        return stale

    def _stale_banner(self, w: WallWindow, now: float) -> None:
        age = self.state.feed_age(now)
        w.stale_banner.show_message(
            f"{self.tr('STALE')} — {self.tr('no data for')} {int(age or 0)}s · "
            f"{self.tr('showing the last known state')}", "crit")

    def _second(self, now: float) -> None:
        stale = self._check_stale(now)
        for w in self.windows:
            page = w.current_page()
            if page is not None:
                page.tick(now)
            w.stale_banner.tick(now)
            w.banner.tick(now)
            if self.banner_until and now > self.banner_until:
                w.banner.clear()
            if stale:
                self._stale_banner(w, now)  # the age keeps counting
        if self.banner_until and now > self.banner_until:
            self.banner_until = 0.0
        self.rewind.second()
        self.focus.second(now)
        self._rotate(now)
        self._update_headers(now)
        self._update_status_line()
        self._alert(now)

    def is_stale(self, now: float) -> bool:
        """STALE: the feed says so, or nothing arrived for 3 heartbeat intervals."""
        status = self._feed_status()
        if status is not None and getattr(status, "state", "") == "STALE":
            return True
        hb = min(float(getattr(status, "heartbeat_s", 1.0) or 1.0), WALL_MAX_HEARTBEAT_S)
        age = self.state.feed_age(now)
        if age is None:
            return False
        return age > STALE_HEARTBEATS * hb

    def feed_state(self) -> str:
        """The feed state the wall shows: the client's, STALE when data stopped arriving."""
        status = self._feed_status()
        state = getattr(status, "state", "CONNECTING") if status is not None else "CONNECTING"
        return "STALE" if self.stale and state == "LIVE" else state

    def has_data(self) -> bool:
        """Whether a first snapshot (or any event) has been applied."""
        return bool(self.driver.stats.snapshots or self.state.seq > 0)

    def no_data_reason(self) -> str:
        """Why the wall has nothing to show yet (``""`` once it has its first data):
        "not connected to HOST:PORT (connection refused)", "refused: <the hub's reason>",
        "certificate not trusted: <detail>", or "waiting for the first snapshot"."""
        if self.has_data():
            return ""
        status = self._feed_status()
        kind = getattr(status, "error_kind", "") or ""
        detail = getattr(status, "last_error", "") or ""
        state = getattr(status, "state", "CONNECTING") if status is not None else "CONNECTING"
        if kind == "refused" or state == "AUTH_FAILED":
            return f"{self.tr('refused')}: {detail or getattr(status, 'last_reject', '') or '?'}"
        if kind == "tls":
            return f"{self.tr('certificate not trusted')}: {detail}"
        if state in ("LIVE", "STALE") or self.driver.loading_snapshot:
            return self.tr("connected, waiting for the first snapshot")
        where = getattr(status, "host_port", "") or getattr(self.client, "url", "") or "?"
        return f"{self.tr('not connected to')} {where}" + (f" ({self.tr(detail)})" if detail else "")

    def _sync_no_data(self, force: bool = False) -> None:
        """Show or clear the panels' NO DATA veil when the reason changes."""
        reason = self.no_data_reason()
        if reason == self._no_data and not force:
            return
        self._no_data = reason
        for w in self.windows:
            for page in w.pages + w.drill:
                for frame in page.panels:
                    frame.set_no_data(reason)

    def _feed_status(self) -> Any:
        s = getattr(self.client, "state", None)
        if callable(s):
            s = s()
        return s

    def _refresh_all(self, now: float) -> None:
        self._sync_no_data(force=True)
        for w in self.windows:
            page = w.current_page()
            if page is not None:
                page.refresh(_all_dirty(), now)
                page.set_dimmed(self.stale)
        self._update_headers(now)

    # ------------------------------------------------------------------ rotation
    def _rotate(self, now: float) -> None:
        if self.paused:
            return
        for w in self.windows:
            if not w.rotating or w.drill or len(w.pages) < 2 or w.replay is not None or w.auto_focus is not None:
                continue
            page = w.pages[w.page_index]
            if page.duration_s and now - self._page_started >= page.duration_s:
                self.flip(w, +1)

    def flip(self, w: WallWindow, step: int) -> None:
        page = w.show_page(w.page_index + step)
        self._page_started = self.clock()
        if page is not None:
            page.refresh(_all_dirty(), self.clock())
            page.set_dimmed(self.stale)
        self._update_headers(self.clock())

    # ------------------------------------------------------------------ header/status
    def _title(self) -> str:
        ev = self.layout.event
        return (ev.title_zh if self.lang == "zh" and ev.title_zh else ev.title) or self.layout.name

    def _update_headers(self, now: float) -> None:
        status = self._feed_status()
        starts = self.layout.event.starts_at.timestamp() if self.layout.event.starts_at else None
        if self.starts_at_override is not None and starts is not None:
            starts = self.starts_at_override
        feed_state = self.feed_state()
        feed_rejects = getattr(status, "rejects", 0) or 0
        if isinstance(feed_rejects, dict):  # FeedStatus counts by reason, errors it queued included
            rejects = sum(feed_rejects.values()) + self.driver.stats.bad_snapshots
        else:
            rejects = int(feed_rejects) + self.driver.stats.rejects
        last = getattr(status, "last_reject", "") or self.driver.stats.last_reject
        for w in self.windows:
            page = w.current_page()
            w.header.update_status(HeaderStatus(
                title=self._title(), now=now, starts_at=starts, feed_state=feed_state,
                data_age_s=self.state.feed_age(now), events_per_s=self.driver.stats.events_per_s(now),
                rejects=rejects, last_reject=last or "",
                page=page.title if page is not None and (w.drill or len(w.pages) > 1
                                                          or getattr(w, "store_window", False)) else "",
                paused=self.paused and w.rotating, muted=self.alerts.muted or self.rewind.active(),
                hub=self._hub_text(status), replay=self.rewind.header_text(w),
                focus=self.focus.header_text(w)))

    def _hub_text(self, status: Any) -> str:
        """Which hub the wall is on, when its --feed lists several (else "")."""
        if len(getattr(self.client, "urls", ())) < 2 or status is None:
            return ""
        hub, where = getattr(status, "hub", "") or "", getattr(status, "host_port", "") or ""
        return f"{hub} ({where})" if hub else where

    def _update_status_line(self) -> None:
        parts = [self.tr(text) + (f": {self.tr(detail)}" if detail else "") for text, detail in self.notices]
        if self.layout_error:
            parts.append(self.layout_error)
        if self.drill_error:
            parts.append(self.drill_error)
        if self.rewind.error:
            parts.append(self.rewind.error)
        if self.focus.error:
            parts.append(self.focus.error)
        if self.controls_ignored:
            parts.append(f"{self.tr('old control events ignored')}: {self.controls_ignored}")
        if self.hub_layouts_refused:
            parts.append(f"{self.tr('layouts from the hub refused')}: {self.hub_layouts_refused}")
        for n in self.hub_notices[:5]:
            what = self.tr("hub source failing") if n.get("kind") == "source" else self.tr("hub notifications failing")
            parts.append(f"{what}: {n.get('name', '')[:60]}: {n.get('error', '')[:160]}")
        if len(self.hub_notices) > 5:
            parts.append(f"+{len(self.hub_notices) - 5}")
        text = " · ".join(parts)
        for w in self.windows:
            w.set_status(text)

    # ------------------------------------------------------------------ hub items
    def _send_control(self, command: str, args: dict[str, Any]) -> str:
        """Send a control through the feed, numbered so a refusal can name it."""
        ref = self.controls.sent(command)
        self.client.send_control(command, args, ref=ref)
        return ref

    def _on_item(self, kind: str, payload: Any) -> None:
        if kind == "control_refused" and isinstance(payload, dict):
            if self.controls.refused(payload.get("ref"), str(payload.get("message") or payload.get("code") or "")):
                log.warning("control %s refused: %s", payload.get("ref"), payload.get("message"))
            return
        if kind == "notices" and isinstance(payload, list):
            if payload != self.hub_notices:
                self.hub_notices = payload
                for n in payload:
                    log.warning("hub: %s %s failing: %s", n.get("kind"), n.get("name"), n.get("error"))
                self._update_status_line()
            return
        if kind == "heartbeat":
            self.rewind.hub_time(getattr(payload, "time", None))
        if kind == "welcome":
            self.roles = list(getattr(payload, "roles", []) or [])
            self._live_mark = (self.state.seq, self._live_after)
            self._live_after = int(getattr(payload, "seq", 0) or 0)

    def _is_history(self, ev: dict) -> bool:
        """A replayed control (seq up to its connection's welcome seq), not an order."""
        seq = ev.get("seq")
        if type(seq) is not int:
            return False
        mark, before = self._live_mark
        boundary = self._live_after if seq > mark else before
        return boundary is not None and seq <= boundary

    def _handle_controls(self, controls: list[dict]) -> None:
        now = self.clock()
        for ev in controls:
            if self._is_history(ev):
                self.controls_ignored += 1  # replayed history, not an order for now
                continue
            cmd = ev.get("command")
            self.controls_applied += 1
            if cmd == "switch_layout":
                self.switch_layout(str(ev.get("layout", "")), from_hub=True)
            elif cmd == "banner":
                text = str(ev.get("text", ""))
                ttl = float(ev.get("ttl_s") or 0)
                self.banner_until = now + ttl if ttl else 0.0
                for w in self.windows:
                    w.banner.show_message(text, str(ev.get("level") or "info"))
            elif cmd == "focus_store":
                self.open_store(str(ev.get("store", "")), own_window=False)

    # ------------------------------------------------------------------ alerts
    def _alert(self, now: float) -> None:
        if self.rewind.active():
            return                                  # sounds off while replaying
        if self.focus.play_due(now) is not None:
            return                                  # a rule's sound: one sound a second
        severe = []
        held = self.focus.held()                    # the rules repeat their own sounds
        for inc in self.state.open_incidents():
            if inc.get("severity") in ("P1", "P2") and inc.get("status") == "open" and inc["id"] not in held:
                severe.append((inc["id"], inc["severity"]))
        alert = self.alerts.due(severe, now)
        if alert is not None:
            snd = self.layout.sound
            name = snd.p2 if alert.sound == "p2" else (snd.p1_escalated if alert.escalated else snd.p1)
            if name != "none":
                self.sound.play(name, alert.volume * snd.volume)

    # ------------------------------------------------------------------ keys
    def tr(self, text: str) -> str:  # type: ignore[override]
        from wallboard.widgets.base import translate

        return translate(text, self.lang)

    def _on_key(self, event: QKeyEvent, w: WallWindow) -> bool:
        key = event.key()
        mods = event.modifiers()
        if w.overlay is not None and key != Qt.Key.Key_Escape:
            return False
        if key == Qt.Key.Key_Escape:
            return self.back(w)
        if self.rewind.key(event, w):
            return True
        if key == Qt.Key.Key_K and mods & Qt.KeyboardModifier.ControlModifier:
            self.open_picker(w)
            return True
        if key == Qt.Key.Key_F1:
            self._open_overlay(w, HelpOverlay(w.theme, self.lang, lambda: self._close_overlay(w), w.centralWidget()))
            return True
        if key == Qt.Key.Key_F11:
            self.placer.toggle_fullscreen(w)
            return True
        if key == Qt.Key.Key_M:
            self.alerts.muted = not self.alerts.muted
            self._update_headers(self.clock())
            return True
        if key == Qt.Key.Key_L:
            self.lang = "zh" if self.lang == "en" else "en"
            for win in self.windows:
                win.header.lang = self.lang
            self.apply_layout(self.layout)
            return True
        if key == Qt.Key.Key_Space:
            self.paused = not self.paused
            self._page_started = self.clock()
            self._update_headers(self.clock())
            return True
        if key in (Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
            step = 1 if key == Qt.Key.Key_PageDown else -1
            if len(w.pages) > 1 and not w.drill:
                self.flip(w, step)
            else:
                names = self.layout_names()
                if names:
                    cur = names.index(self.layout.name) if self.layout.name in names else 0
                    self.switch_layout(names[(cur + step) % len(names)])
            return True
        if Qt.Key.Key_1 <= key <= Qt.Key.Key_9 and not mods & Qt.KeyboardModifier.ControlModifier:
            names = self.layout_names()
            idx = key - Qt.Key.Key_1
            if idx < len(names):
                self.switch_layout(names[idx])
            return True
        return False

    def open_picker(self, w: WallWindow) -> None:
        def pick(name: str | None) -> None:
            self._close_overlay(w)
            if name:
                self.switch_layout(name)

        self._open_overlay(w, LayoutPicker(w.theme, self.lang, self.layout_names(), self.layout.name, pick,
                                           w.centralWidget()))

    def _open_overlay(self, w: WallWindow, overlay) -> None:
        self._close_overlay(w)
        w.overlay = overlay
        overlay.setGeometry(w.centralWidget().rect())
        overlay.show()
        overlay.raise_()
        overlay.setFocus()

    def _close_overlay(self, w: WallWindow) -> None:
        if w.overlay is not None:
            w.overlay.hide()
            w.overlay.deleteLater()
            w.overlay = None
            w.setFocus()


def _shown(name: str, width: int = 80) -> str:
    """A name from the hub, on one line and at most ``width`` characters (for the status line)."""
    s = " ".join(str(name).split()) if name.isprintable() else repr(name)[1:-1]
    return s if len(s) <= width else s[: width - 3] + "..."


def _why(e: Exception, name: str) -> str:
    """A failed switch's reason without the layout's name again (the caller says it)."""
    if isinstance(e, L.LayoutError):
        if len(e.issues) == 1 and e.issues[0].file in (name, _shown(name)) and not e.issues[0].path:
            return e.issues[0].message
        return "; ".join(str(i) for i in e.issues)
    return str(e)


def _all_dirty() -> Dirty:
    d = Dirty()
    d.all = True
    return d
