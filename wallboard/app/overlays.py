"""Overlays over a wall window: the shortcut help (F1) and the layout picker (Ctrl+K)."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QKeyEvent, QPainter
from PySide6.QtWidgets import QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from wallboard.widgets.base import Theme, translate, ui_font

SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("1 … 9", "Switch to layout 1 … 9"),
    ("PgUp / PgDn", "Previous / next rotation page (or layout)"),
    ("Space", "Pause / resume the rotation"),
    ("Ctrl+K", "Layout picker"),
    ("Esc", "Back: close drill-down, overlay or auto-focus"),
    ("F11", "Full screen on / off"),
    ("M", "Mute / unmute alert sounds"),
    ("L", "Language: English / 中文"),
    ("F1", "This help"),
    ("Click a store", "Open its page (Shift+click: in its own window)"),
    ("[ / ]", "REPLAY: one minute back / forward (Shift: ten)"),
    ("Space  + / -", "In REPLAY: pause / resume, speed x1 … x64"),
    ("R", "REPLAY from the selected incident's opening"),
    ("Esc", "REPLAY: back to LIVE at once"),
)


class HelpOverlay(QWidget):
    """Translucent sheet listing every shortcut; any key or click closes it."""

    def __init__(self, theme: Theme, lang: str, on_close: Callable[[], None], parent: QWidget) -> None:
        super().__init__(parent)
        self.theme, self.lang, self.on_close = theme, lang, on_close
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setGeometry(parent.rect())

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(0, 0, 0, 210))
        h = max(16.0, self.height() / 34)
        p.setFont(ui_font(h * 1.3, bold=True, fixed=True))
        p.setPen(QColor(self.theme.text))
        x, y = int(self.width() * 0.2), int(self.height() * 0.12)
        p.drawText(x, y, translate("Keyboard shortcuts", self.lang))
        y += int(h * 3)
        for key, what in SHORTCUTS:
            p.setFont(ui_font(h, bold=True, fixed=True))
            p.setPen(QColor(self.theme.accent))
            p.drawText(x, y, key)
            p.setFont(ui_font(h, fixed=True))
            p.setPen(QColor(self.theme.text))
            p.drawText(x + int(self.width() * 0.18), y, translate(what, self.lang))
            y += int(h * 2.1)
        p.end()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        self.on_close()

    def mousePressEvent(self, _event) -> None:  # noqa: N802
        self.on_close()


class LayoutPicker(QWidget):
    """Type to filter, arrows to choose, Enter to switch, Esc to cancel."""

    def __init__(self, theme: Theme, lang: str, names: list[str], current: str,
                 on_pick: Callable[[str | None], None], parent: QWidget) -> None:
        super().__init__(parent)
        self.on_pick = on_pick
        self.names = names
        self.setGeometry(parent.rect())
        box = QVBoxLayout(self)
        w = max(400, parent.width() // 3)
        m_side = max(0, (parent.width() - w) // 2)
        box.setContentsMargins(m_side, parent.height() // 6, m_side, parent.height() // 6)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText(translate("Layout…", lang))
        self.filter.setFont(ui_font(20))
        self.list = QListWidget(self)
        self.list.setFont(ui_font(20))
        style = (f"background: {theme.panel}; color: {theme.text}; border: 2px solid {theme.accent};"
                 " padding: 8px;")
        self.filter.setStyleSheet(style)
        self.list.setStyleSheet(style)
        box.addWidget(self.filter)
        box.addWidget(self.list, 1)
        for i, n in enumerate(names):
            item = QListWidgetItem(f"{i + 1}  {n}" if i < 9 else f"   {n}")
            item.setData(Qt.ItemDataRole.UserRole, n)
            self.list.addItem(item)
            if n == current:
                self.list.setCurrentItem(item)
        if self.list.currentItem() is None and names:
            self.list.setCurrentRow(0)
        self.filter.textChanged.connect(self._filter)
        self.filter.returnPressed.connect(self._accept)
        self.list.itemActivated.connect(lambda _i: self._accept())
        self.filter.installEventFilter(self)
        # The shell gives the overlay focus when it opens it (overlay.setFocus()); the
        # proxy sends that focus, and so the typed text and Enter, to the filter field.
        self.setFocusProxy(self.filter)
        self.filter.setFocus()

    def _filter(self, text: str) -> None:
        first = None
        for i in range(self.list.count()):
            item = self.list.item(i)
            hide = text.lower() not in item.data(Qt.ItemDataRole.UserRole).lower()
            item.setHidden(hide)
            if not hide and first is None:
                first = item
        if first is not None:
            self.list.setCurrentItem(first)

    def _accept(self) -> None:
        item = self.list.currentItem()
        self.on_pick(item.data(Qt.ItemDataRole.UserRole) if item is not None and not item.isHidden() else None)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == event.Type.KeyPress:
            key = event.key()
            if key == Qt.Key.Key_Escape:
                self.on_pick(None)
                return True
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                row = self.list.currentRow() + (1 if key == Qt.Key.Key_Down else -1)
                while 0 <= row < self.list.count() and self.list.item(row).isHidden():
                    row += 1 if key == Qt.Key.Key_Down else -1
                if 0 <= row < self.list.count():
                    self.list.setCurrentRow(row)
                return True
        return False

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(0, 0, 0, 180))
        p.end()
