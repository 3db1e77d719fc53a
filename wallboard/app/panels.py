"""Panel registry and the frame around each panel (title, data age, dimming).

``make_panel(spec, state, ctx)`` builds the widget a layout's panel names and wraps it in a
:class:`PanelFrame`. A widget that fails to build is replaced by a frame that says so in
red (type, error) -- the wall keeps running and the fault is visible and counted.
"""
from __future__ import annotations

import importlib
import logging
from typing import Any

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

from wallboard.layout.specs import SPECS
from wallboard.layout.specs.spec import unset_removed
from wallboard.widgets.base import FEED_COLORS, PanelContext, age_text, ui_font

log = logging.getLogger(__name__)

#: Layout widget type -> module in ``widgets/`` (from the widget specs).
PANEL_MODULES = {t: spec.module for t, spec in SPECS.items()}

build_failures: dict[str, str] = {}


def panel_class(kind: str) -> type:
    """The widget class for a layout type: the module's ``PANEL`` attribute, else the one
    QWidget subclass defined there that has ``refresh`` and ``set_dimmed``."""
    mod = importlib.import_module(PANEL_MODULES[kind])
    cls = getattr(mod, "PANEL", None)
    if cls is not None:
        return cls
    for value in vars(mod).values():
        if (isinstance(value, type) and issubclass(value, QWidget) and value.__module__ == mod.__name__
                and hasattr(value, "refresh") and hasattr(value, "set_dimmed")):
            return value
    raise ImportError(f"{mod.__name__} defines no panel class")


class PanelFrame(QWidget):
    """A panel with its title strip; shows the data age when older than ``stale_after_s``."""

    store_clicked = Signal(str)

    def __init__(self, spec: Any, state: Any, ctx: PanelContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self.state = state
        self.ctx = ctx
        self.kind = spec.type
        # a panel built outside a layout may have no title: its type's default (the spec's,
        # not the global translation table, where another widget may own the same words)
        zh = ctx.lang == "zh"
        default = SPECS.get(spec.type)
        self.title = (spec.title_zh if zh and spec.title_zh else spec.title) or (
            "" if default is None else default.title_zh if zh else default.title) or spec.type
        self.stale_after_s = float(spec.stale_after_s or 0)
        self.error = ""
        self.dimmed = False
        #: Why there is nothing to show yet ("" once the wall has its first data).
        self.no_data = ""
        self._age_text = ""
        #: REPLAY on this panel's window: "REPLAY 09:31:05 x4" on its title strip.
        self.replay_text = ""
        # The layout's grid decides the size, not what the widget would like: equal cells.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setMinimumSize(1, 1)
        self.title_bar = _TitleBar(self)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.title_bar)
        self.widget: QWidget | None = None
        try:
            cls = panel_class(spec.type)
            options = unset_removed(dict(spec.options))
            if spec.type == "change_timeline" and ctx.freeze and "freeze" not in options:
                options["freeze"] = list(ctx.freeze)
            self.widget = cls(state, options, ctx, self)
        except Exception as e:  # noqa: BLE001 - a broken widget must not take the wall down
            self.error = f"{spec.type}: {type(e).__name__}: {e}"
            build_failures[spec.type] = self.error
            log.exception("panel %s failed to build", spec.type)
        if self.widget is not None:
            lay.addWidget(self.widget, 1)
            sig = getattr(self.widget, "store_clicked", None)
            if sig is not None:
                sig.connect(self.store_clicked)
        else:
            lay.addStretch(1)
        self._veil = _NoDataVeil(self)
        self._veil.hide()

    def set_no_data(self, reason: str) -> None:
        """Until the wall's first data arrives: cover the widget with a dimmed "NO DATA"
        and ``reason`` (e.g. "not connected to 127.0.0.1:9"), so an empty state never
        reads as a healthy one. ``""`` shows the widget again."""
        if reason == self.no_data:
            return
        self.no_data = reason
        self._veil.setVisible(bool(reason))
        if reason:
            self._place_veil()
            self._veil.raise_()
        self._veil.update()
        self.title_bar.update()

    def _place_veil(self) -> None:
        top = self.title_bar.height()
        self._veil.setGeometry(0, top, self.width(), max(1, self.height() - top))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._place_veil()

    def refresh(self, dirty: Any, now: float) -> None:
        if self.widget is None:
            return
        try:
            self.widget.refresh(dirty, now)
        except Exception as e:  # noqa: BLE001
            if not self.error:
                log.exception("panel %s failed to refresh", self.kind)
            self.error = f"{self.kind} refresh: {type(e).__name__}: {e}"
            self.title_bar.update()

    def data_age(self, now: float) -> float | None:
        fn = getattr(self.widget, "data_age", None)
        if callable(fn):
            return fn(now)
        return self.state.feed_age(now)

    def tick(self, now: float) -> None:
        """Once a second: the age badge."""
        age = self.data_age(now)
        text = ""
        if age is not None and self.stale_after_s and age > self.stale_after_s:
            text = f"{self.ctx.tr('data age')} {age_text(age)}"
        if text != self._age_text:
            self._age_text = text
            self.title_bar.update()

    def set_replay(self, text: str) -> None:
        if text != self.replay_text:
            self.replay_text = text
            self.title_bar.update()

    def set_dimmed(self, dimmed: bool) -> None:
        if dimmed == self.dimmed:
            return
        self.dimmed = dimmed
        if self.widget is not None:
            self.widget.set_dimmed(dimmed)
        self.title_bar.update()

    def paintEvent(self, _event) -> None:  # noqa: N802
        if self.widget is None:
            p = QPainter(self)
            r = self.rect().adjusted(0, self.title_bar.height(), 0, 0)
            p.fillRect(r, QColor(self.ctx.theme.panel))
            p.setPen(QColor("#e4572e"))
            p.setFont(ui_font(14))
            p.drawText(r.adjusted(16, 16, -16, -16), Qt.TextFlag.TextWordWrap,
                       self.ctx.tr("Panel failed to load") + f"\n{self.error}")
            p.end()


class _TitleBar(QWidget):
    def __init__(self, frame: PanelFrame) -> None:
        super().__init__(frame)
        self.frame = frame
        self.setFixedHeight(34)

    def scale_to(self, window_height: int) -> None:
        self.setFixedHeight(max(26, int(window_height * 0.026)))

    def paintEvent(self, _event) -> None:  # noqa: N802
        f = self.frame
        th = f.ctx.theme
        p = QPainter(self)
        r = self.rect()
        p.fillRect(r, QColor(th.panel_border))
        h = r.height()
        p.setFont(ui_font(max(9.0, h * 0.42), bold=True, fixed=True))
        p.setPen(QColor(th.text_dim if f.dimmed or f.no_data else th.text))
        p.drawText(QRectF(h * 0.4, 0, r.width() * 0.65, h), Qt.AlignmentFlag.AlignVCenter, f.title)
        badge = f._age_text
        if f.error and f.widget is not None:
            badge = (badge + " · " if badge else "") + f.ctx.tr("error")
        right = float(r.width())
        for text, color in ((badge, "#b0103a"), (f.replay_text, FEED_COLORS["REPLAY"])):
            if not text:
                continue
            w = p.fontMetrics().horizontalAdvance(text) + h
            box = QRectF(right - w - h * 0.3, h * 0.12, w, h * 0.76)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(color))
            p.drawRoundedRect(box, 4, 4)
            p.setPen(QColor("#ffffff"))
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
            right = box.left()
        p.end()


class _NoDataVeil(QWidget):
    """Covers a panel's body (opaque) with a dimmed "NO DATA" and the reason under it."""

    def __init__(self, frame: PanelFrame) -> None:
        super().__init__(frame)
        self.frame = frame
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)

    def paintEvent(self, _event) -> None:  # noqa: N802
        f = self.frame
        th = f.ctx.theme
        p = QPainter(self)
        r = self.rect()
        p.fillRect(r, QColor(th.panel))
        h = r.height()
        big = ui_font(max(10.0, min(h * 0.12, r.width() * 0.06, 40.0)), bold=True, fixed=True)
        small = ui_font(max(8.0, min(h * 0.06, r.width() * 0.03, 20.0)), fixed=True)
        p.setFont(big)
        bh = p.fontMetrics().height()
        p.setFont(small)
        sh = p.fontMetrics().height() * 3
        y = max(0.0, (h - bh - sh) / 2)
        p.setFont(big)
        p.setPen(QColor(th.text_dim))
        p.drawText(QRectF(8, y, r.width() - 16, bh), Qt.AlignmentFlag.AlignCenter, f.ctx.tr("NO DATA"))
        p.setFont(small)
        p.drawText(QRectF(12, y + bh, r.width() - 24, sh),
                   Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap, f.no_data)
        p.end()
