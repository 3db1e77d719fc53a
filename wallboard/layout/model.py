"""The layout model: frozen dataclasses a validated layout is made of, and its errors.

Built by :func:`wallboard.layout.load_layout`; the shell reads them, nothing mutates them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence

from wallboard.scope import Scope  # noqa: F401 (the layout's scopes: one class, one contains)

#: Alert sounds shipped in ``assets/sounds/<name>.wav``; ``"none"`` is silence.
SOUND_NAMES: tuple[str, ...] = ("p1_alarm", "p1_urgent", "p2_chime", "none")
#: Incident severities a ``[[rules]]`` entry may match (the protocol's, most severe first).
SEVERITIES: tuple[str, ...] = ("P1", "P2", "P3", "P4")
#: A layout's name as another machine or a rule may give it (the hub's ``switch_layout``,
#: a rule's ``layout``): a file stem, never a path (no separator, no ``..``, no ``.toml``).
LAYOUT_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*"
#: Placeholders a ``kind = "store"`` layout may use; :func:`bind_store` fills them.
PLACEHOLDERS: tuple[str, ...] = ("{store}", "{city}", "{store_name}")
# The widget types, their default titles and age thresholds: wallboard.layout.specs.

# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class LayoutIssue:
    """One problem in a layout file: where (file, line, key path) and what."""

    file: str
    line: int | None
    path: str
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = self.file or "<layout>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class LayoutError(Exception):
    """A layout could not be used; ``issues`` lists every problem found, in file order."""

    def __init__(self, issues: Sequence[LayoutIssue]):
        self.issues: list[LayoutIssue] = list(issues)
        n = len(self.issues)
        head = f"{n} error{'s' if n != 1 else ''} in layout"
        files = sorted({i.file for i in self.issues if i.file})
        if len(files) == 1:
            head += f" {files[0]}"
        super().__init__(head + ":\n" + "\n".join(f"  {i}" for i in self.issues))

    @property
    def errors(self) -> list[LayoutIssue]:
        """Alias of ``issues`` (the name used in docs/architecture.md)."""
        return self.issues


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class FreezeWindow:
    """A change freeze drawn on the change timeline; changes inside it stand out."""

    start: datetime
    end: datetime
    label: str
    label_zh: str = ""


@dataclass(frozen=True)
class Event:
    title: str
    title_zh: str = ""
    starts_at: datetime | None = None      # aware; the header counts down / up to it
    ends_at: datetime | None = None
    scope: Scope = Scope()
    freeze: tuple[FreezeWindow, ...] = ()


@dataclass(frozen=True)
class Panel:
    """One widget on a screen's grid. ``options`` is validated with defaults filled in
    (treat it as read-only); ``scope`` narrows the event scope for this panel only."""

    type: str
    title: str
    title_zh: str
    col: int
    row: int
    cols: int
    rows: int
    stale_after_s: float
    options: dict = field(default_factory=dict, hash=False)
    scope: Scope | None = None


@dataclass(frozen=True)
class Screen:
    """A grid of panels; shown in its own window or as a page of the rotation."""

    name: str
    columns: int
    rows: int
    panels: tuple[Panel, ...]
    title: str = ""
    title_zh: str = ""
    screen: int | None = None            # physical screen index (None: the shell decides)
    monitor: str | None = None           # monitor name (wins over ``screen`` when present)


@dataclass(frozen=True)
class RotationPage:
    screen: str
    duration_s: float


@dataclass(frozen=True)
class Rotation:
    enabled: bool = False
    pages: tuple[RotationPage, ...] = ()
    screen: int | None = None            # physical screen of the rotating window
    monitor: str | None = None           # monitor name of the rotating window


@dataclass(frozen=True)
class Sound:
    enabled: bool = True
    p1: str = "p1_alarm"
    p1_escalated: str = "p1_urgent"
    p2: str = "p2_chime"
    repeat_s: float = 30.0
    escalate_after_s: float = 120.0
    volume: float = 0.8


@dataclass(frozen=True)
class RuleMatch:
    """What an incident must be for a rule to take it: every criterion given must hold
    (one of its values is enough); ``stores`` and ``cities`` are one criterion, "where"
    (an incident store in ``stores`` or in one of ``cities``)."""

    severity: tuple[str, ...] = ()
    stores: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    """``[[rules]]``: when an open, unacknowledged incident matches, the window of
    ``screen`` turns to the incident's store page (or ``layout``) until the incident is
    acknowledged (or resolved), Esc, or ``for_min`` minutes (0: no time limit); its
    sound (``None``: the layout's [sound] for its severity) repeats every ``repeat_s``
    (``None``: [sound] repeat_s) until it is acknowledged. See wallboard.layout.focus."""

    name: str
    screen: str
    match: RuleMatch
    layout: str | None = None
    for_min: float = 10.0
    sound: str | None = None
    repeat_s: float | None = None


@dataclass(frozen=True)
class Page:
    screen: Screen
    duration_s: float | None             # None: a static window (no rotation)


@dataclass(frozen=True)
class Window:
    """What one top-level window shows: one page, or the rotation's pages in order."""

    screen: int | None
    pages: tuple[Page, ...]
    rotating: bool                       # True: the rotation's window (PgUp/PgDn flip)
    monitor: str | None = None           # monitor name from the layout, if any


@dataclass(frozen=True)
class Layout:
    name: str
    event: Event
    screens: tuple[Screen, ...]
    path: str | None = None
    description: str = ""
    kind: str = "event"                  # "store": a drill-down template, see bind_store
    theme: str = "dark"
    frame_rate: int = 30
    rotation: Rotation = Rotation()
    sound: Sound = Sound()
    rules: tuple[Rule, ...] = ()

    def screen(self, name: str) -> Screen:
        """The screen called ``name`` (KeyError if none)."""
        for s in self.screens:
            if s.name == name:
                return s
        raise KeyError(name)

    def windows(self) -> tuple[Window, ...]:
        """The windows to open: each screen not in the rotation gets its own window; the
        rotation's pages share one window (on ``rotation.screen``, else the first page's
        screen). A disabled rotation still groups its pages: the window shows the first
        page and PgUp/PgDn flip by hand."""
        rotated = {p.screen for p in self.rotation.pages}
        out: list[Window] = []
        placed = False
        for s in self.screens:
            if s.name not in rotated:
                out.append(Window(s.screen, (Page(s, None),), False, s.monitor))
            elif not placed:
                placed = True
                pages = tuple(Page(self.screen(p.screen), p.duration_s)
                              for p in self.rotation.pages)
                where, monitor = self.rotation.screen, self.rotation.monitor
                if where is None and monitor is None:
                    where, monitor = pages[0].screen.screen, pages[0].screen.monitor
                out.append(Window(where, pages, True, monitor))
        return tuple(out)
