"""One wall window: header, banners, the page stack, the status line.

A window shows one layout ``Window`` (a single page, or the rotation's pages) plus any
drill-down pages pushed on top (Esc pops them). Pages are built once and kept; only the
visible page's panels are refreshed each frame, and a page that becomes visible gets a
full refresh (``Dirty.all``) so it never shows old pixels.
"""
from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPainter
from PySide6.QtWidgets import QGridLayout, QLabel, QMainWindow, QStackedWidget, QVBoxLayout, QWidget

from wallboard.app.header import BannerBar, HeaderBar
from wallboard.app.panels import PanelFrame
from wallboard.app.replay import ReplayFrame, ScrubBar
from wallboard.widgets.base import PanelContext, Theme, ui_font


class PageView(QWidget):
    """A screen of a layout: its panels on a grid of equal cells."""

    store_clicked = Signal(str)
    #: "Rewind to its opening" asked on an incident (the incident board's menu).
    rewind_requested = Signal(str)

    def __init__(self, screen: Any, state: Any, ctx: PanelContext, *, duration_s: float | None = None,
                 title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.screen_spec = screen
        self.duration_s = duration_s
        self.title = title or (screen.title_zh if ctx.lang == "zh" and screen.title_zh else screen.title) or screen.name
        self.ctx = ctx
        grid = QGridLayout(self)
        gap = 8
        grid.setContentsMargins(gap, gap, gap, gap)
        grid.setSpacing(gap)
        for c in range(screen.columns):
            grid.setColumnStretch(c, 1)
        for r in range(screen.rows):
            grid.setRowStretch(r, 1)
        self.panels: list[PanelFrame] = []
        for spec in screen.panels:
            frame = PanelFrame(spec, state, ctx, self)
            frame.store_clicked.connect(self.store_clicked)
            grid.addWidget(frame, spec.row, spec.col, spec.rows, spec.cols)
            self.panels.append(frame)
        # Selecting an incident on one panel (board or timeline) highlights it on the others.
        for src in self.panels:
            sig = getattr(src.widget, "incident_selected", None)
            if sig is not None:
                sig.connect(lambda inc, src=src: self._select_incident(inc, src))
            rewind = getattr(src.widget, "rewind_requested", None)
            if rewind is not None:
                rewind.connect(self.rewind_requested)

    def selected_incident(self) -> str | None:
        """The incident selected on this page's board (else its first row), if any."""
        for p in self.panels:
            rows = getattr(p.widget, "rows", None)
            if p.kind == "incident_board" and rows is not None:
                return getattr(p.widget, "selected", None) or (rows[0].incident_id if rows else None)
        return None

    def _select_incident(self, incident_id: str, source: PanelFrame) -> None:
        for p in self.panels:
            if p is source or p.widget is None:
                continue
            for name in ("select_incident", "select"):
                fn = getattr(p.widget, name, None)
                if callable(fn):
                    fn(incident_id)
                    break

    def refresh(self, dirty: Any, now: float) -> None:
        for p in self.panels:
            p.refresh(dirty, now)

    def tick(self, now: float) -> None:
        for p in self.panels:
            p.tick(now)

    def set_dimmed(self, dimmed: bool) -> None:
        for p in self.panels:
            p.set_dimmed(dimmed)

    def scale_to(self, height: int) -> None:
        for p in self.panels:
            p.title_bar.scale_to(height)


class WallWindow(QMainWindow):
    """Top-level window of one screen. Keys go to ``on_key`` (the controller)."""

    def __init__(self, theme: Theme, lang: str, on_key: Callable[[QKeyEvent, "WallWindow"], bool],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme
        self.lang = lang
        self.on_key = on_key
        self.setWindowTitle("wallboard")
        central = QWidget(self)
        central.setAutoFillBackground(True)
        pal = central.palette()
        pal.setColor(central.backgroundRole(), QColor(theme.background))
        central.setPalette(pal)
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.header = HeaderBar(lang, theme, central)
        self.banner = BannerBar(theme, central)       # command-center message
        self.stale_banner = BannerBar(theme, central)  # STALE: cannot be missed
        self.stack = QStackedWidget(central)
        self.status_line = QLabel(central)
        self.status_line.setStyleSheet(
            f"color: {theme.text_dim}; background: {theme.panel}; padding: 2px 12px;")
        self.status_line.setFont(ui_font(11))
        self.status_line.hide()
        self.scrub = ScrubBar(theme, lang, central)  # REPLAY only
        self.scrub.seek_to.connect(lambda at: self.replay.seek(at) if self.replay is not None else None)
        lay.addWidget(self.header)
        lay.addWidget(self.stale_banner)
        lay.addWidget(self.banner)
        lay.addWidget(self.stack, 1)
        lay.addWidget(self.scrub)
        lay.addWidget(self.status_line)
        self.replay_frame = ReplayFrame(central)
        #: REPLAY on this window (a ``wallboard.app.replay.WindowReplay``), else None.
        self.replay: Any = None
        self.setCentralWidget(central)
        self.pages: list[PageView] = []        # the layout's pages (rotation order)
        self.drill: list[PageView] = []        # drill-down pages pushed on top
        self.page_index = 0
        self.rotating = False
        self.overlay: QWidget | None = None
        #: The layout window shown here (set by the controller; None for a store's own
        #: window) and where app/screens.py placed it (monitor, geometry, mode).
        self.spec: Any = None
        self.placement: Any = None
        self.placement_note = ""
        self.mode_override: str | None = None  # F11's choice for this window
        self.picture_offset = (0, 0)          # burn-in shift (see shift_picture)
        #: The layout rule's focus this window shows (``wallboard.layout.focus.Focus``), else None.
        self.auto_focus: Any = None

    # -- pages -----------------------------------------------------------------------
    def set_pages(self, pages: list[PageView], rotating: bool) -> None:
        """Replace the layout's pages (drill-downs are closed too)."""
        for old in self.pages + self.drill:
            self.stack.removeWidget(old)
            old.deleteLater()
        self.pages, self.drill, self.rotating = list(pages), [], rotating
        for p in self.pages:
            self.stack.addWidget(p)
            p.scale_to(self.height())
        self.page_index = 0
        if self.pages:
            self.stack.setCurrentWidget(self.pages[0])

    def current_page(self) -> PageView | None:
        """The live page on top (under a REPLAY's page, which is ``replay.page``)."""
        if self.replay is not None:
            return self.drill[-1] if self.drill else (self.pages[self.page_index] if self.pages else None)
        w = self.stack.currentWidget()
        return w if isinstance(w, PageView) else None

    def show_replay(self, replay: Any) -> None:
        """REPLAY: show ``replay.page`` over the live page, framed, with the scrub bar."""
        self.hide_replay()
        self.replay = replay
        self.stack.addWidget(replay.page)
        replay.page.scale_to(self.height())
        self.stack.setCurrentWidget(replay.page)
        # the replay's keys are the window's: no panel takes the focus (the map's +/-
        # would zoom instead of changing the speed); the mouse still zooms and clicks
        for child in [replay.page, *replay.page.findChildren(QWidget)]:
            child.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setFocus()
        self.scrub.show()
        self.replay_frame.setGeometry(self.centralWidget().rect())
        self.replay_frame.show()
        self.replay_frame.raise_()

    def hide_replay(self) -> Any:
        """Back to LIVE: the live page again at once (it never stopped). Returns the replay."""
        replay, self.replay = self.replay, None
        if replay is None:
            return None
        self.stack.removeWidget(replay.page)
        replay.page.deleteLater()
        top = self.current_page()
        if top is not None:
            self.stack.setCurrentWidget(top)
        self.scrub.hide()
        self.replay_frame.hide()
        self.setFocus()
        return replay

    def show_page(self, index: int) -> PageView | None:
        if not self.pages:
            return None
        self.page_index = index % len(self.pages)
        if not self.drill:
            self.stack.setCurrentWidget(self.pages[self.page_index])
        return self.pages[self.page_index]

    def push_drill(self, page: PageView) -> None:
        self.drill.append(page)
        self.stack.addWidget(page)
        page.scale_to(self.height())
        self.stack.setCurrentWidget(page)

    def pop_drill(self) -> bool:
        """Close the top drill-down page; False when there was none."""
        if not self.drill:
            return False
        page = self.drill.pop()
        self.stack.removeWidget(page)
        page.deleteLater()
        top = self.drill[-1] if self.drill else (self.pages[self.page_index] if self.pages else None)
        if top is not None:
            self.stack.setCurrentWidget(top)
        return True

    def remove_drill(self, page: PageView) -> bool:
        """Close one drill-down page wherever it is in the stack (an auto-focus page that
        ends under a page opened over it); False when it is not there."""
        if page not in self.drill:
            return False
        if page is self.drill[-1]:
            return self.pop_drill()
        self.drill.remove(page)
        self.stack.removeWidget(page)
        page.deleteLater()
        return True

    def set_status(self, text: str) -> None:
        self.status_line.setText(text)
        self.status_line.setVisible(bool(text))

    def shift_picture(self, dx: int, dy: int, margin: int) -> None:
        """Burn-in shift: draw the picture ``dx, dy`` pixels off centre inside a border of
        ``margin`` pixels (|dx|, |dy| <= margin); the border shows the background."""
        lay = self.centralWidget().layout()
        lay.setContentsMargins(margin + dx, margin + dy, margin - dx, margin - dy)
        self.picture_offset = (dx, dy)

    # -- Qt ------------------------------------------------------------------------------
    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        h = self.height()
        self.header.scale_to(h)
        self.banner.scale_to(h)
        self.stale_banner.scale_to(h)
        for p in self.pages + self.drill:
            p.scale_to(h)
        self.scrub.scale_to(h)
        self.replay_frame.setGeometry(self.centralWidget().rect())
        if self.replay is not None:
            self.replay.page.scale_to(h)
        if self.overlay is not None:
            self.overlay.setGeometry(self.centralWidget().rect())

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if not self.on_key(event, self):
            super().keyPressEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(self.theme.background))
        p.end()


__all__ = ["PageView", "WallWindow", "Qt"]
