"""A note panel: fixed text from the layout (briefing, phone numbers, the run sheet).

Options (:mod:`wallboard.layout.specs.text`): ``text`` and ``text_zh`` (shown when the
wall runs in Chinese). The text wraps and
is sized to fill the panel, large enough to read from across the room.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QWidget

from wallboard.layout.specs.text import SPEC
from wallboard.widgets.base import PanelContext, paint_dim, ui_font


class TextNote(QWidget):
    """Static text; repaints only on resize, language change or dimming."""

    def __init__(self, state: Any, options: dict, ctx: PanelContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        opts = SPEC.options_or_raise(options)
        self.ctx = ctx
        self.text = opts["text_zh"] if ctx.lang == "zh" and opts["text_zh"] else opts["text"]
        self.dimmed = False

    def refresh(self, dirty: Any, now: float) -> None:
        """Nothing live to show."""

    def data_age(self, now: float) -> None:
        return None

    def set_dimmed(self, dimmed: bool) -> None:
        if dimmed != self.dimmed:
            self.dimmed = dimmed
            self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        r = self.rect()
        p.fillRect(r, QColor(self.ctx.theme.panel))
        inner = r.adjusted(24, 16, -24, -16)
        size = max(10.0, min(40.0, inner.height() / 6))
        flags = Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
        while size > 10:
            p.setFont(ui_font(size, fixed=True))
            if p.fontMetrics().boundingRect(inner, int(flags), self.text).height() <= inner.height():
                break
            size -= 2
        p.setFont(ui_font(size, fixed=True))
        p.setPen(QColor(self.ctx.theme.text))
        p.drawText(inner, int(flags), self.text)
        paint_dim(self, p, self.dimmed)
        p.end()


PANEL = TextNote
