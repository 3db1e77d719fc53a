"""What every wall panel shares: the panel context, the theme, status colours and glyphs,
and the translation table.

A panel is a ``QWidget`` built as ``Panel(state, options, ctx)``; the shell calls
``refresh(dirty, now)`` once per frame and ``set_dimmed(True)`` while the feed is STALE.
Panels read the state and paint; they never parse wire data or touch the network.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QPainter
from PySide6.QtWidgets import QWidget

from wallboard.protocol import did_you_mean  # the project's one "did you mean" hint (pure)
from wallboard.scope import Scope

# --------------------------------------------------------------------------- statuses

#: Device statuses, best first. ``unknown`` (no news within ttl_s) ranks above warn:
#: the wall never shows silence as health.
STATUS_ORDER: tuple[str, ...] = ("ok", "maint", "warn", "unknown", "crit", "down")
STATUS_RANK: dict[str, int] = {s: i for i, s in enumerate(STATUS_ORDER)}

#: Colour per status, chosen to stay apart for deuteranopes and on washed-out projectors
#: (blue-ish ok rather than pure green; the glyph is the second cue).
STATUS_COLORS: dict[str, str] = {
    "ok": "#2e9d5b",
    "maint": "#5b6b8c",
    "warn": "#e0a106",
    "unknown": "#7a7f87",
    "crit": "#e4572e",
    "down": "#b0103a",
}
#: Second cue besides colour: a glyph per status (empty for ok).
STATUS_GLYPHS: dict[str, str] = {
    "ok": "",
    "maint": "M",
    "warn": "!",
    "unknown": "?",
    "crit": "\u25b2",  # ▲
    "down": "\u2716",  # ✖
}

STORE_STATUS_COLORS: dict[str, str] = {
    "planned": "#5b6b8c",
    "opening": "#3a86ff",
    "open": "#2e9d5b",
    "closed": "#444a55",
    "maintenance": "#e0a106",
}

#: Colour of each feed state (the header's pill, any "live" word on a panel).
FEED_COLORS: dict[str, str] = {
    "LIVE": "#2e9d5b",
    "CONNECTING": "#3a86ff",
    "RECONNECTING": "#e0a106",
    "STALE": "#b0103a",
    "AUTH_FAILED": "#b0103a",
    #: A window showing the past (the flight recorder): a colour no live state uses.
    "REPLAY": "#9b4dff",
}

SEVERITY_COLORS: dict[str, str] = {
    "P1": "#d7263d",
    "P2": "#f46036",
    "P3": "#e0a106",
    "P4": "#5b6b8c",
}

CHANGE_STATUS_COLORS: dict[str, str] = {
    "planned": "#5b6b8c",
    "running": "#3a86ff",
    "succeeded": "#2e9d5b",
    "failed": "#d7263d",
    "rolled_back": "#d7263d",  # a rollback is a failed change (drawn hatched to tell them apart)
}
#: Change statuses that count (and are coloured) as failed.
FAILED_CHANGE: frozenset[str] = frozenset({"failed", "rolled_back"})


def worst(statuses) -> str:
    """The worst of some device statuses (``ok`` for none)."""
    best = 0
    for s in statuses:
        r = STATUS_RANK.get(s, STATUS_RANK["unknown"])
        if r > best:
            best = r
    return STATUS_ORDER[best]


# --------------------------------------------------------------------------- theme


@dataclass(frozen=True)
class Theme:
    """Colours of a wall theme. Dark by default: walls are read in dim rooms."""

    name: str = "dark"
    background: str = "#0b0f14"
    panel: str = "#121821"
    panel_border: str = "#1f2a36"
    text: str = "#e6edf3"
    text_dim: str = "#8b98a5"
    accent: str = "#3a86ff"
    grid: str = "#263241"
    land: str = "#17202b"
    land_border: str = "#34465a"
    stale: str = "#b0103a"

    def color(self, name: str) -> QColor:
        return QColor(getattr(self, name))


DARK = Theme()
LIGHT = Theme(
    name="light",
    background="#eef1f5",
    panel="#ffffff",
    panel_border="#c9d1db",
    text="#101418",
    text_dim="#56606b",
    accent="#1f5fbf",
    grid="#d5dbe3",
    land="#e3e8ee",
    land_border="#a9b4c2",
    stale="#b0103a",
)
THEMES: dict[str, Theme] = {"dark": DARK, "light": LIGHT}

# --------------------------------------------------------------------------- i18n

_ZH: dict[str, str] = {}


def register_translations(table: dict[str, str]) -> None:
    """Add English -> Simplified Chinese UI strings (each widget module registers its own)."""
    _ZH.update(table)


register_translations(
    {
        "ok": "正常",
        "maint": "维护",
        "warn": "告警",
        "unknown": "未知",
        "crit": "严重",
        "down": "宕机",
        "planned": "计划中",
        "opening": "开业中",
        "open": "营业",
        "closed": "关闭",
        "maintenance": "维护中",
        "No data": "暂无数据",
        "NO DATA": "无数据",
        "STALE": "数据过期",
        "LIVE": "实时",
        "CONNECTING": "连接中",
        "RECONNECTING": "重连中",
        "AUTH_FAILED": "认证失败",
    }
)


def translate(text: str, lang: str) -> str:
    """``text`` in ``lang`` (``en`` or ``zh``); falls back to English when untranslated."""
    if lang == "zh":
        return _ZH.get(text, text)
    return text


# --------------------------------------------------------------------------- context


@dataclass
class PanelContext:
    """What the shell gives every panel besides the state and its options."""

    lang: str = "en"
    theme: Theme = DARK
    #: The layout's event scope: ``{"cities": [...], "stores": [...]}`` (empty = all).
    scope: dict[str, list[str]] = field(default_factory=dict)
    #: Sends a ``control`` message to the hub and returns its ``ref``; None where this wall
    #: cannot send controls.
    send_control: Callable[[str, dict[str, Any]], str | None] | None = None
    #: What became of a control by its ``ref``: ``("pending"|"refused"|"no_answer"|"unknown",
    #: reason)`` (see ``wallboard.app.controls``).
    control_outcome: Callable[[str | None], tuple[str, str]] = lambda ref: ("unknown", "")
    clock: Callable[[], float] = time.time
    #: The event's change-freeze windows: ``{"start", "end", "label"}`` (epoch seconds).
    freeze: list[dict[str, Any]] = field(default_factory=list)
    #: The wall's feed state now (``LIVE``, ``STALE``, ``RECONNECTING``, ``CONNECTING``,
    #: ``AUTH_FAILED``): a panel that says "live" asks here (never assumes it).
    feed_state: Callable[[], str] = lambda: "LIVE"
    _region: tuple = field(default=(None, None), init=False, repr=False, compare=False)

    def tr(self, text: str) -> str:
        return translate(text, self.lang)

    @property
    def region(self) -> Scope:
        """The event scope as a :class:`~wallboard.scope.Scope` (what the state's
        scoped queries take; built again only when ``scope`` is given a new table)."""
        src, built = self._region
        if src is not self.scope:
            built = Scope.of(self.scope)
            self._region = (self.scope, built)
        return built

    def whole_chain(self) -> bool:
        """Whether the event scope is empty: every store belongs to it."""
        return self.region.chain_wide

    def in_scope_store(self, store: dict | None, store_id: str) -> bool:
        """Whether a store belongs to the event scope (everything when scope is empty):
        :meth:`Scope.contains` with the store's city."""
        region = self.region
        if region.chain_wide:          # the usual wall: no city lookup per store
            return True
        return region.contains(store_id, ((store or {}).get("city") or {}).get("id"))


_UI_SCALE = 1.0


def set_ui_scale(scale: float) -> None:
    """Scale every fixed point size given to :func:`ui_font` (the shell sets it from the
    wall's logical height: 1.0 at 1080 lines, 2.0 on a 2160-line wall without OS scaling)."""
    global _UI_SCALE
    _UI_SCALE = max(0.75, min(4.0, float(scale)))


def ui_scale() -> float:
    return _UI_SCALE


#: CJK sans families the wall prefers, best first (any family covering Simplified
#: Chinese is the fallback).
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei")
_CJK_FAMILY: list[str] = []  # the cached lookup: [] before it ran, [""] when none


def cjk_font_family() -> str:
    """The installed font family the wall draws Chinese text with (``""`` when no
    installed font covers Simplified Chinese: names like "上海" would draw as boxes; the
    shell says so on the status line). Looked up once per process (needs a QGuiApplication)."""
    if not _CJK_FAMILY:
        installed = set(QFontDatabase.families())
        covering = QFontDatabase.families(QFontDatabase.WritingSystem.SimplifiedChinese)
        fam = next((f for f in CJK_FAMILIES if f in installed), "")
        if not fam:
            fam = next((f for f in covering if "Mono" not in f and "Serif" not in f), covering[0] if covering else "")
        _CJK_FAMILY.append(fam)
    return _CJK_FAMILY[0]


def ui_font(point_size: float, bold: bool = False, *, fixed: bool = False) -> QFont:
    """The wall's UI font: a CJK-capable sans when installed, else Qt's default sans.

    ``point_size`` is scaled by the wall's UI scale (see :func:`set_ui_scale`) unless
    ``fixed`` (sizes already derived from the widget's own geometry).
    """
    font = QFont()
    fam = cjk_font_family()
    if fam:
        font.setFamily(fam)
    font.setPointSizeF(point_size if fixed else point_size * _UI_SCALE)
    font.setBold(bold)
    return font


def paint_dim(widget: QWidget, painter: QPainter, dimmed: bool) -> None:
    """Dim a panel while its data is stale: a translucent veil over what it shows."""
    if dimmed:
        painter.fillRect(widget.rect(), QColor(0, 0, 0, 140))


def age_text(seconds: float | None) -> str:
    """Short human age: ``12s``, ``4m``, ``3h``, ``2d``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = max(0.0, seconds)
    if s < 60:
        return f"{int(s)}s"
    if s < 3600:
        return f"{int(s // 60)}m"
    if s < 86400:
        return f"{int(s // 3600)}h"
    return f"{int(s // 86400)}d"


__all__ = [
    "STATUS_ORDER",
    "STATUS_RANK",
    "STATUS_COLORS",
    "STATUS_GLYPHS",
    "STORE_STATUS_COLORS",
    "SEVERITY_COLORS",
    "FEED_COLORS",
    "CHANGE_STATUS_COLORS",
    "FAILED_CHANGE",
    "Theme",
    "DARK",
    "LIGHT",
    "THEMES",
    "PanelContext",
    "register_translations",
    "translate",
    "ui_font",
    "cjk_font_family",
    "set_ui_scale",
    "ui_scale",
    "paint_dim",
    "age_text",
    "worst",
    "Qt",
]
