"""Layout files: the schema of ``layouts/*.toml``, its validation and typed access.

Pure: stdlib only (``tomllib``), no Qt, no I/O beyond reading the file it is given.

Typical use by the shell::

    path = find_layout("launch-928")          # shipped name or a path -> Path
    layout = load_layout(path)                # -> Layout (frozen), or raises LayoutError
    for window in layout.windows():           # one window per physical screen / rotation
        ...

``LayoutError.issues`` holds *every* problem found (not only the first), each a
``LayoutIssue(file, line, path, message)`` whose ``str()`` reads like
``launch-928.toml:42: screens[0].panels[2].options.order: expected one of "worst",
"fixed", got "best"``. The CLI's ``check-layout`` calls :func:`check_layout_files`.
A drill-down layout (``kind = "store"``) is a template: call :func:`bind_store` to fill in
its store before building its panels. The schema is documented in ``docs/layouts.md``.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import tomllib
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

__all__ = [
    "WIDGET_TYPES", "SOUND_NAMES", "DEFAULT_LAYOUT_DIR", "LayoutIssue", "LayoutError",
    "Scope", "FreezeWindow", "Event", "Panel", "Screen", "RotationPage", "Rotation",
    "Sound", "Page", "Window", "Layout", "load_layout", "load_layout_text", "find_layout",
    "list_layouts", "check_layout_files", "bind_store",
]

WIDGET_TYPES: tuple[str, ...] = (
    "store_map", "device_grid", "change_timeline", "incident_board",
    "voice_feed", "kpi_tiles", "kpi_chart", "text",
)
#: Alert sounds shipped in ``assets/sounds/<name>.wav``; ``"none"`` is silence.
SOUND_NAMES: tuple[str, ...] = ("p1_alarm", "p1_urgent", "p2_chime", "none")
#: Where shipped layouts live (``find_layout`` looks here when no dirs are given).
DEFAULT_LAYOUT_DIR = Path(__file__).resolve().parent.parent / "layouts"
#: Placeholders a ``kind = "store"`` layout may use; :func:`bind_store` fills them.
PLACEHOLDERS: tuple[str, ...] = ("{store}", "{city}", "{store_name}")
#: A panel's default age threshold (seconds) per widget type; 0 means "never stale".
STALE_DEFAULTS: dict[str, float] = {
    "store_map": 60, "device_grid": 60, "change_timeline": 900, "incident_board": 120,
    "voice_feed": 300, "kpi_tiles": 30, "kpi_chart": 30, "text": 0,
}
#: Title shown when a panel names none (English, Chinese).
DEFAULT_TITLES: dict[str, tuple[str, str]] = {
    "store_map": ("Stores", "门店地图"), "device_grid": ("Devices", "设备状态"),
    "change_timeline": ("Changes", "变更时间线"), "incident_board": ("Incidents", "故障看板"),
    "voice_feed": ("Voice of customers", "顾客之声"), "kpi_tiles": ("KPIs", "业务指标"),
    "kpi_chart": ("Trend", "指标趋势"), "text": ("Notes", "备注"),
}
MAX_FILE_BYTES = 1_000_000

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
class Scope:
    """Cities and/or stores an event (or panel) covers; both empty means chain-wide."""

    cities: tuple[str, ...] = ()
    stores: tuple[str, ...] = ()

    @property
    def chain_wide(self) -> bool:
        return not self.cities and not self.stores


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


@dataclass(frozen=True)
class RotationPage:
    screen: str
    duration_s: float


@dataclass(frozen=True)
class Rotation:
    enabled: bool = False
    pages: tuple[RotationPage, ...] = ()
    screen: int | None = None            # physical screen of the rotating window


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
class Page:
    screen: Screen
    duration_s: float | None             # None: a static window (no rotation)


@dataclass(frozen=True)
class Window:
    """What one top-level window shows: one page, or the rotation's pages in order."""

    screen: int | None
    pages: tuple[Page, ...]
    rotating: bool                       # True: the rotation's window (PgUp/PgDn flip)


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
                out.append(Window(s.screen, (Page(s, None),), False))
            elif not placed:
                placed = True
                pages = tuple(Page(self.screen(p.screen), p.duration_s)
                              for p in self.rotation.pages)
                where = self.rotation.screen
                if where is None:
                    where = pages[0].screen.screen
                out.append(Window(where, pages, True))
        return tuple(out)


# --------------------------------------------------------------------------- lines


class _LineIndex:
    """Maps key paths such as ``("screens", 0, "panels", 2, "options", "order")`` to the
    1-based line where that key (or table header, or array element) is written.

    A small scanner over text that ``tomllib`` has already accepted: it follows table
    headers, arrays of tables, dotted keys, inline tables and multi-line arrays. A path
    it cannot place falls back to its nearest placed parent."""

    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
        self.paths: dict[tuple, int] = {}
        self._aot: dict[tuple, int] = {}
        try:
            self._document()
        except (IndexError, ValueError):  # pragma: no cover - best effort only
            pass

    def line(self, path: tuple) -> int | None:
        while path:
            if path in self.paths:
                return self.paths[path]
            path = path[:-1]
        return None

    def _here(self) -> int:
        return bisect_right(self.starts, self.i)

    def _mark(self, path: tuple) -> None:
        self.paths.setdefault(path, self._here())

    def _skip(self, newlines: bool) -> None:
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c == "#":
                j = s.find("\n", self.i)
                self.i = len(s) if j < 0 else j
            elif c in " \t\r" or (newlines and c == "\n"):
                self.i += 1
            else:
                return

    def _key(self) -> list[str]:
        s, parts = self.s, []
        while True:
            self._skip(False)
            c = s[self.i]
            if c in "\"'":
                j = self.i + 1
                while s[j] != c:
                    j += 2 if (c == '"' and s[j] == "\\") else 1
                raw = s[self.i + 1:j]
                parts.append(raw if c == "'" else raw.encode().decode("unicode_escape"))
                self.i = j + 1
            else:
                m = re.compile(r"[A-Za-z0-9_-]+").match(s, self.i)
                parts.append(m.group())
                self.i = m.end()
            self._skip(False)
            if self.i < len(s) and s[self.i] == ".":
                self.i += 1
                continue
            return parts

    def _resolve(self, parts: list[str]) -> tuple:
        out: tuple = ()
        for p in parts:
            out += (p,)
            if out in self._aot:
                out += (self._aot[out],)
        return out

    def _document(self) -> None:
        s, table = self.s, ()
        while True:
            self._skip(True)
            if self.i >= len(s):
                return
            start = self.i
            if s.startswith("[[", self.i):
                self.i += 2
                parts = self._key()
                arr = self._resolve(parts[:-1]) + (parts[-1],)
                self._mark(arr)
                self._aot[arr] = self._aot.get(arr, -1) + 1
                table = arr + (self._aot[arr],)
                self._mark(table)
                self.i = s.index("]]", self.i) + 2
            elif s[self.i] == "[":
                self.i += 1
                table = self._resolve(self._key())
                self._mark(table)
                self.i = s.index("]", self.i) + 1
            else:
                path = table + tuple(self._key())
                self._mark(path)
                self.i += 1  # "="
                self._value(path)
            if self.i <= start:
                return

    def _value(self, path: tuple) -> None:
        s = self.s
        self._skip(False)
        for q in ('"""', "'''"):
            if s.startswith(q, self.i):
                j = self.i + 3
                while not s.startswith(q, j) or (q == '"""' and s[j - 1] == "\\"):
                    j += 1
                while s.startswith(q[0], j + 3):  # up to two quotes may end the content
                    j += 1
                self.i = j + 3
                return
        c = s[self.i]
        if c in "\"'":
            j = self.i + 1
            while s[j] != c:
                j += 2 if (c == '"' and s[j] == "\\") else 1
            self.i = j + 1
        elif c == "[":
            self.i += 1
            n = 0
            while True:
                self._skip(True)
                if s[self.i] == "]":
                    self.i += 1
                    return
                self._mark(path + (n,))
                self._value(path + (n,))
                self._skip(True)
                if s[self.i] == ",":
                    self.i += 1
                n += 1
        elif c == "{":
            self.i += 1
            while True:
                self._skip(False)
                if s[self.i] == "}":
                    self.i += 1
                    return
                sub = path + tuple(self._key())
                self._mark(sub)
                self.i += 1  # "="
                self._value(sub)
                self._skip(False)
                if s[self.i] == ",":
                    self.i += 1
        else:
            m = re.compile(r"[^,\]\}\n#]*").match(s, self.i)
            self.i = m.end()


# --------------------------------------------------------------------------- validators

_BAD = object()        # a value that failed validation (already reported)
_REQUIRED = object()   # a field without default


def _fmt_path(path: Sequence[str | int]) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            key = p if re.fullmatch(r"[A-Za-z0-9_-]+", p) else '"' + p + '"'
            out += ("." if out else "") + key
    return out


def _q(v: Any) -> str:
    return '"' + v + '"' if isinstance(v, str) else repr(v)


def _what(v: Any) -> str:
    """A value's TOML type with the value, for messages: 'a string ("12")'."""
    if isinstance(v, bool):
        return f"a boolean ({'true' if v else 'false'})"
    if isinstance(v, int):
        return f"an integer ({v})"
    if isinstance(v, float):
        return f"a number ({v:g})"
    if isinstance(v, str):
        s = v if len(v) <= 40 else v[:37] + "..."
        return f'a string ("{s}")'
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, datetime):
        return f"a date-time ({v.isoformat()})"
    if isinstance(v, (date, dtime)):
        return f"a {'date' if isinstance(v, date) else 'time'} ({v.isoformat()})"
    return type(v).__name__


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


class _Check:
    """Collects issues for one file; finds each key path's line in the source text.
    ``base_dir`` is the layout file's directory (relative paths in options resolve there)."""

    def __init__(self, file: str, lines: _LineIndex | None, base_dir: Path | None = None):
        self.file = file
        self.lines = lines
        self.base_dir = base_dir
        self.issues: list[LayoutIssue] = []

    def error(self, path: Sequence[str | int], message: str) -> None:
        line = self.lines.line(tuple(path)) if self.lines else None
        self.issues.append(LayoutIssue(self.file, line, _fmt_path(path), message))


class _V:
    """A typed validator: ``check`` returns the converted value or ``_BAD``."""

    doc = "a value"

    def check(self, v: Any, path: tuple, ck: _Check) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _type_error(self, v: Any, path: tuple, ck: _Check) -> Any:
        ck.error(path, f"expected {self.doc}, got {_what(v)}")
        return _BAD


class _Str(_V):
    def __init__(self, min_len: int = 0, max_len: int = 500, pattern: str | None = None,
                 doc: str | None = None):
        self.min_len, self.max_len = min_len, max_len
        self.pattern = re.compile(pattern) if pattern else None
        self.doc = doc or "a string"

    def check(self, v, path, ck):
        if not isinstance(v, str):
            return self._type_error(v, path, ck)
        if len(v) < self.min_len:
            ck.error(path, "must not be empty" if self.min_len == 1
                     else f"must be at least {self.min_len} characters")
            return _BAD
        if len(v) > self.max_len:
            ck.error(path, f"too long: {len(v)} characters, at most {self.max_len}")
            return _BAD
        if self.pattern and not self.pattern.fullmatch(v):
            ck.error(path, f"expected {self.doc}, got {_q(v)}")
            return _BAD
        return v


class _Num(_V):
    """A number in [lo, hi] (``lo_open``: strictly above lo); ``integer``: whole only."""

    def __init__(self, lo: float, hi: float, integer: bool = False, lo_open: bool = False):
        self.lo, self.hi, self.integer, self.lo_open = lo, hi, integer, lo_open
        self.doc = "an integer" if integer else "a number"

    def check(self, v, path, ck):
        ok = isinstance(v, int) if self.integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok:
            return self._type_error(v, path, ck)
        if v != v:  # nan
            ck.error(path, "expected a number, got nan")
            return _BAD
        if v < self.lo or v > self.hi or (self.lo_open and v == self.lo):
            lo = f"above {self.lo:g}" if self.lo_open else f"at least {self.lo:g}"
            ck.error(path, f"out of range: {v:g}; expected {self.doc} {lo} and at most {self.hi:g}")
            return _BAD
        return v if self.integer else float(v)


class _Bool(_V):
    doc = "a boolean (true or false)"

    def check(self, v, path, ck):
        return v if isinstance(v, bool) else self._type_error(v, path, ck)


class _Enum(_V):
    def __init__(self, *choices: str):
        self.choices = choices
        self.doc = "one of " + ", ".join(_q(c) for c in choices)

    def check(self, v, path, ck):
        if not isinstance(v, str):
            return self._type_error(v, path, ck)
        if v not in self.choices:
            ck.error(path, f"expected {self.doc}, got {_q(v)}{_hint(v, self.choices)}")
            return _BAD
        return v


class _When(_V):
    doc = "a date-time with a UTC offset (e.g. 2026-09-28T09:28:00+08:00)"

    def check(self, v, path, ck):
        if isinstance(v, str):
            try:
                v = datetime.fromisoformat(v)
            except ValueError:
                ck.error(path, f"expected {self.doc}, got {_what(v)}")
                return _BAD
        if not isinstance(v, datetime):
            return self._type_error(v, path, ck)
        if v.tzinfo is None:
            ck.error(path, f"{v.isoformat()} has no UTC offset; write it as "
                           f"{v.isoformat()}+08:00 (or your zone's offset)")
            return _BAD
        return v


class _List(_V):
    """An array of ``item``. ``partial``: keep the valid items (bad ones stay ``_BAD`` in
    place) so checks across items, such as panel overlaps, still run on the rest."""

    def __init__(self, item: _V, min_len: int = 0, max_len: int = 1000, unique: bool = False,
                 doc: str | None = None, partial: bool = False):
        self.item, self.min_len, self.max_len, self.unique = item, min_len, max_len, unique
        self.partial = partial
        self.doc = doc or f"an array of {item.doc.removeprefix('a ').removeprefix('an ')}s"

    def check(self, v, path, ck):
        if not isinstance(v, list):
            return self._type_error(v, path, ck)
        if not self.min_len <= len(v) <= self.max_len:
            ck.error(path, f"expected {self.min_len} to {self.max_len} entries, got {len(v)}")
            return _BAD
        out = [self.item.check(x, path + (i,), ck) for i, x in enumerate(v)]
        if self.unique:
            seen: set = set()
            for i, x in enumerate(out):
                if x is not _BAD and x in seen:
                    ck.error(path + (i,), f"duplicate entry {_q(x)}")
                seen.add(x)
        return _BAD if not self.partial and any(x is _BAD for x in out) else out


class _Pair(_List):
    """Two integers, e.g. ``at = [col, row]``."""

    def __init__(self, lo: int, names: str):
        super().__init__(_Num(lo, 999, integer=True), doc=f"[{names}], two integers")

    def check(self, v, path, ck):
        if not isinstance(v, list):
            return self._type_error(v, path, ck)
        if len(v) != 2:
            ck.error(path, f"expected {self.doc}, got {len(v)} entries")
            return _BAD
        out = super().check(v, path, ck)
        return _BAD if out is _BAD else tuple(out)


@dataclass
class _F:
    """A table field: validator, default (``_REQUIRED`` if none) and one line of docs."""

    v: _V
    default: Any = None
    doc: str = ""


class _Table(_V):
    """A TOML table with known keys: unknown keys are refused with a did-you-mean hint,
    missing required keys are named, defaults are filled in. ``post(result, path, ck)``
    runs cross-field checks once every field was valid."""

    doc = "a table"

    def __init__(self, fields: dict[str, _F], post: Callable | None = None,
                 doc: str | None = None):
        self.fields, self.post = fields, post
        if doc:
            self.doc = doc

    def check(self, v, path, ck):
        if not isinstance(v, dict):
            return self._type_error(v, path, ck)
        out, ok = self.check_fields(v, path, ck)
        if not ok:
            return _BAD
        return self.post(out, path, ck) if self.post is not None else out

    def check_fields(self, v: dict, path: tuple, ck: _Check) -> tuple[dict, bool]:
        """Each field's converted value (``_BAD`` where invalid) and whether all were ok."""
        out: dict[str, Any] = {}
        ok = True
        for key in v:
            if key not in self.fields:
                ck.error(path + (key,), f"unknown key{_hint(key, self.fields)}; "
                         f"expected one of: {', '.join(self.fields)}")
                ok = False
        for name, f in self.fields.items():
            if name in v:
                out[name] = f.v.check(v[name], path + (name,), ck)
            elif f.default is _REQUIRED:
                ck.error(path + (name,), f"missing required key ({f.v.doc})")
                out[name] = _BAD
            else:
                out[name] = copy.deepcopy(f.default)
            ok = ok and out[name] is not _BAD
        return out, ok


# --------------------------------------------------------------------------- schema

_ID = _Str(1, 64, r"[^\s{}]+", doc="an id without spaces")
_METRIC = _Str(1, 100, r"[A-Za-z0-9_.:-]+", doc="a metric name (letters, digits, _ . : -)")
_KPI_SCOPE = _Str(1, 100, r"global|(city|store):([^\s:{}]+|\{city\}|\{store\})",
                  doc='"global", "city:ID" or "store:ID"')
_TEXT = _Str(0, 200)


class _Ref(_V):
    """A tile's reference: ``"prev"`` (the previous sample) or a fixed number."""

    doc = '"prev" or a number'

    def check(self, v, path, ck):
        if v == "prev":
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return _Num(-1e15, 1e15).check(v, path, ck)
        return self._type_error(v, path, ck)


class _Map(_V):
    """A table of free keys (``key_pattern``) to ``value`` validated values."""

    def __init__(self, value: _V, doc: str):
        self.value, self.doc = value, doc

    def check(self, v, path, ck):
        if not isinstance(v, dict):
            return self._type_error(v, path, ck)
        out = {k: self.value.check(x, path + (k,), ck) for k, x in v.items()}
        return _BAD if any(x is _BAD for x in out.values()) else out


def _tile_post(t, path, ck):
    t["label"] = t["label"] or t["metric"]
    w, c = t["warn"], t["crit"]
    if w is not None and c is not None:
        if t["direction"] == "up_bad" and not w < c:
            ck.error(path + ("warn",), f'warn ({w:g}) must be below crit ({c:g}) when '
                     'direction = "up_bad" (higher is worse)')
            return _BAD
        if t["direction"] == "down_bad" and not w > c:
            ck.error(path + ("warn",), f'warn ({w:g}) must be above crit ({c:g}) when '
                     'direction = "down_bad" (lower is worse)')
            return _BAD
    return t


def _series_post(s, path, ck):
    s["label"] = s["label"] or s["metric"]
    return s


def _band_post(b, path, ck):
    if not b["from"] < b["to"]:
        ck.error(path + ("to",), f"to ({b['to']:g}) must be above from ({b['from']:g})")
        return _BAD
    return b


def _chart_post(o, path, ck):
    seen: dict[tuple, int] = {}
    for i, s in enumerate(o["series"]):
        key = (s["metric"], s["scope"])
        if key in seen:
            ck.error(path + ("series", i), f"duplicate series {s['metric']} @ {s['scope']} "
                     f"(same as series[{seen[key]}])")
            return _BAD
        seen[key] = i
    return o


def _grid_post(o, path, ck):
    if o["mode"] == "store" and o["store"] is None:
        ck.error(path + ("store",), 'missing: mode = "store" needs the store id '
                 '(in a kind = "store" layout: store = "{store}")')
        return _BAD
    if o["mode"] == "scope" and o["store"] is not None:
        ck.error(path + ("store",), 'only used with mode = "store"')
        return _BAD
    if o["max_cell_px"] < o["min_cell_px"]:
        ck.error(path + ("max_cell_px",), f"max_cell_px ({o['max_cell_px']}) is below "
                 f"min_cell_px ({o['min_cell_px']})")
        return _BAD
    return o


_NUMBER = _Num(-1e15, 1e15)
_PATH = _Str(1, 1000, doc="a file path")
_COLOR = _Str(1, 40, r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})|[a-z]+",
              doc='a color such as "#e0a106" or "orange"')

_TILE = _Table({
    "metric": _F(_METRIC, _REQUIRED, "KPI metric name, e.g. orders_per_s"),
    "scope": _F(_KPI_SCOPE, "global", '"global", "city:ID" or "store:ID"'),
    "label": _F(_TEXT, "", "tile label (default: the metric name)"),
    "label_zh": _F(_TEXT, None, "Chinese label (default: label)"),
    "unit": _F(_Str(0, 16), None, 'unit after the value, e.g. "%" (default: the samples\' unit)'),
    "warn": _F(_NUMBER, None, "value at which the tile turns warn"),
    "crit": _F(_NUMBER, None, "value at which the tile turns crit"),
    "direction": _F(_Enum("up_bad", "down_bad"), "up_bad",
                    '"up_bad": higher is worse; "down_bad": lower is worse'),
    "reference": _F(_Ref(), "prev", 'delta against "prev" (previous sample) or a fixed number'),
}, _tile_post, doc="a table {metric, scope, label, ...}")

_SERIES = _Table({
    "metric": _F(_METRIC, _REQUIRED, "KPI metric name"),
    "scope": _F(_KPI_SCOPE, "global", '"global", "city:ID" or "store:ID"'),
    "label": _F(_TEXT, "", "legend label (default: the metric name)"),
}, _series_post, doc="a table {metric, scope, label}")

_BAND = _Table({
    "from": _F(_NUMBER, _REQUIRED, "lower edge"),
    "to": _F(_NUMBER, _REQUIRED, "upper edge"),
    "level": _F(_Enum("ok", "warn", "crit"), "warn", "band color by status"),
    "color": _F(_COLOR, None, "explicit color instead of the level's"),
}, _band_post, doc="a table {from, to, level, color}")

#: Options per widget type; they match what each widget in ``widgets/`` accepts.
WIDGET_OPTIONS: dict[str, _Table] = {
    "store_map": _Table({
        "provinces": _F(_PATH, None, "GeoJSON replacing the shipped province layer"),
        "countries": _F(_PATH, None, "GeoJSON replacing the shipped country layer"),
        "basemap_extra": _F(_List(_PATH, 0, 16, doc="an array of file paths"), [],
                            "GeoJSON files drawn on top of the basemap"),
        "show_countries": _F(_Bool(), True, "draw the country layer"),
        "show_provinces": _F(_Bool(), True, "draw the province layer"),
        "cluster_span_deg": _F(_Num(0.01, 360), 3.0, "when the view is wider than this "
                               "(degrees of longitude) stores gather into one donut per city"),
        "marker_px": _F(_Num(6, 64, integer=True), 18, "store marker size"),
        "pulse_s": _F(_Num(0, 3600), 10.0, "seconds a store pulses after an incident opens"),
        "label_max": _F(_Num(0, 5000, integer=True), 60, "at most this many store labels"),
    }),
    "device_grid": _Table({
        "mode": _F(_Enum("scope", "store"), "scope",
                   '"scope": one row per store of the scope; "store": every device of one store'),
        "store": _F(_Str(1, 64, r"[^\s{}]+|\{store\}", doc='a store id (or "{store}")'), None,
                    'the store for mode = "store"'),
        "order": _F(_Enum("worst", "fixed"), "worst", "worst rows first, or a fixed order"),
        "min_cell_px": _F(_Num(4, 64, integer=True), 10, "below this cell size stores roll up"),
        "max_cell_px": _F(_Num(8, 128, integer=True), 36, "largest cell size"),
        "resort_s": _F(_Num(0, 3600), 5.0, "worst-first re-sort period"),
        "kinds": _F(_List(_ID, unique=True, doc="an array of device kinds"), [],
                    "kind column order (empty: the standard order)"),
        "key_metric": _F(_Map(_METRIC, "a table {kind = metric}"), {},
                         "per kind, a device metric shown in store mode"),
    }, _grid_post),
    "change_timeline": _Table({
        "lanes": _F(_Enum("system", "city"), "system", "one lane per system or per city"),
        "window_min": _F(_Num(5, 10080, integer=True), 120, "minutes shown"),
    }),
    "incident_board": _Table({
        "flash_s": _F(_Num(0, 3600, integer=True), 120, "seconds a new P1/P2 row flashes"),
        "resolved_keep_s": _F(_Num(0, 86400, integer=True), 300,
                              "seconds a resolved incident stays listed"),
        "max_rows": _F(_Num(1, 200, integer=True), 12, "rows shown (the rest is counted)"),
    }),
    "voice_feed": _Table({
        "spike_factor": _F(_Num(1, 100, lo_open=True), 3.0,
                           "a minute this many times the baseline is a spike"),
        "baseline_min": _F(_Num(3, 1440, integer=True), 15, "minutes of the baseline"),
        "topics": _F(_List(_Str(1, 64), unique=True, doc="an array of topics"), [],
                     "topics to show (empty: all)"),
    }),
    "kpi_tiles": _Table({
        "tiles": _F(_List(_TILE, 1, 32), _REQUIRED, "the tiles, in order"),
    }),
    "kpi_chart": _Table({
        "series": _F(_List(_SERIES, 1, 8), _REQUIRED, "the lines drawn"),
        "bands": _F(_List(_BAND, 0, 12), [], "shaded value bands"),
        "window_min": _F(_Num(1, 10080, integer=True), 60, "minutes shown"),
    }, _chart_post),
    "text": _Table({
        "text": _F(_Str(1, 4000), _REQUIRED, "the note (English)"),
        "text_zh": _F(_Str(0, 4000), "", "the note (Chinese)"),
    }),
}
#: Options holding file paths: resolved against the layout file's directory.
PATH_OPTIONS: dict[str, tuple[str, ...]] = {"store_map": ("provinces", "countries", "basemap_extra")}


def _scope_table() -> _Table:
    return _Table({
        "cities": _F(_List(_ID, unique=True, doc="an array of city ids"), [], 'e.g. ["sh", "hz"]'),
        "stores": _F(_List(_ID, unique=True, doc="an array of store ids"), [], 'e.g. ["sh-001"]'),
    }, lambda s, p, ck: Scope(tuple(s["cities"]), tuple(s["stores"])))


class _AnyTable(_V):
    doc = "a table"

    def check(self, v, path, ck):
        return v if isinstance(v, dict) else self._type_error(v, path, ck)


def _panel_post(p, path, ck):
    typ = p["type"]
    opts = WIDGET_OPTIONS[typ].check(p["options"], path + ("options",), ck)
    if opts is _BAD:
        # Reported already (the load will fail); keep the panel so grid checks still run.
        opts = {}
    if ck.base_dir is not None:
        for key in PATH_OPTIONS.get(typ, ()):
            if isinstance(opts.get(key), str):
                opts[key] = str((ck.base_dir / opts[key]).resolve())
            elif isinstance(opts.get(key), list):
                opts[key] = [str((ck.base_dir / x).resolve()) for x in opts[key]]
    en, zh = DEFAULT_TITLES[typ]
    return Panel(
        type=typ, title=p["title"] or en, title_zh=p["title_zh"] or zh,
        col=p["at"][0], row=p["at"][1], cols=p["span"][0], rows=p["span"][1],
        stale_after_s=STALE_DEFAULTS[typ] if p["stale_after_s"] is None else p["stale_after_s"],
        options=opts, scope=p["scope"])


_PANEL = _Table({
    "type": _F(_Enum(*WIDGET_TYPES), _REQUIRED, "widget type"),
    "title": _F(_TEXT, "", "panel title (default per type)"),
    "title_zh": _F(_TEXT, "", "Chinese title"),
    "at": _F(_Pair(0, "col, row"), _REQUIRED, "top-left cell, 0-based"),
    "span": _F(_Pair(1, "cols, rows"), (1, 1), "cells covered"),
    "stale_after_s": _F(_Num(0, 86400), None, "age threshold in seconds (0: never)"),
    "scope": _F(_scope_table(), None, "narrows the event scope for this panel"),
    "options": _F(_AnyTable(), {}, "widget options, see below"),
}, _panel_post, doc="a table (one [[screens.panels]])")


def _screen_post(s, path, ck):
    cols, rows = s["columns"], s["rows"]
    owner: dict[tuple[int, int], int] = {}
    ok = True
    for i, p in enumerate(s["panels"]):
        pp = path + ("panels", i)
        if p is _BAD:
            continue
        if p.col >= cols or p.row >= rows:
            ck.error(pp + ("at",), f"cell (col {p.col}, row {p.row}) is outside the "
                     f"{cols} x {rows} grid (cols 0..{cols - 1}, rows 0..{rows - 1})")
            ok = False
            continue
        if p.col + p.cols > cols or p.row + p.rows > rows:
            ck.error(pp + ("span",), f"panel covers cols {p.col}..{p.col + p.cols - 1}, rows "
                     f"{p.row}..{p.row + p.rows - 1}, beyond the {cols} x {rows} grid "
                     f"(cols 0..{cols - 1}, rows 0..{rows - 1})")
            ok = False
            continue
        clash = None
        for c in range(p.col, p.col + p.cols):
            for r in range(p.row, p.row + p.rows):
                if (c, r) in owner and clash is None:
                    clash = (owner[(c, r)], c, r)
                owner.setdefault((c, r), i)
        if clash is not None:
            j, c, r = clash
            other = s["panels"][j]
            ck.error(pp + ("at",), f"panel overlaps {_fmt_path(path + ('panels', j))} "
                     f'({other.type} "{other.title}") at cell (col {c}, row {r})')
            ok = False
    if not ok:
        return _BAD
    return Screen(name=s["name"], columns=cols, rows=rows, panels=tuple(s["panels"]),
                  title=s["title"], title_zh=s["title_zh"], screen=s["screen"])


_SCREEN = _Table({
    "name": _F(_Str(1, 64), _REQUIRED, "unique name (rotation pages refer to it)"),
    "title": _F(_TEXT, "", "screen title"),
    "title_zh": _F(_TEXT, "", "Chinese title"),
    "screen": _F(_Num(0, 63, integer=True), None, "physical screen index"),
    "columns": _F(_Num(1, 48, integer=True), 12, "grid columns"),
    "rows": _F(_Num(1, 48, integer=True), 8, "grid rows"),
    "panels": _F(_List(_PANEL, 1, 64, doc="an array of tables ([[screens.panels]])",
                       partial=True),
                 _REQUIRED, "the panels"),
}, _screen_post, doc="a table (one [[screens]])")


def _freeze_post(f, path, ck):
    if not f["end"] > f["start"]:
        ck.error(path + ("end",), f"end ({f['end'].isoformat()}) must be after start "
                 f"({f['start'].isoformat()})")
        return _BAD
    return FreezeWindow(f["start"], f["end"], f["label"], f["label_zh"])


def _event_post(e, path, ck):
    if e["starts_at"] and e["ends_at"] and not e["ends_at"] > e["starts_at"]:
        ck.error(path + ("ends_at",), "ends_at must be after starts_at")
        return _BAD
    return Event(e["title"], e["title_zh"], e["starts_at"], e["ends_at"], e["scope"],
                 tuple(e["freeze"]))


_EVENT = _Table({
    "title": _F(_Str(1, 200), _REQUIRED, "shown in every screen's header"),
    "title_zh": _F(_TEXT, "", "Chinese title"),
    "starts_at": _F(_When(), None, "countdown target / time since"),
    "ends_at": _F(_When(), None, "end of the event"),
    "scope": _F(_scope_table(), Scope(), "cities and/or stores (empty: chain-wide)"),
    "freeze": _F(_List(_Table({
        "start": _F(_When(), _REQUIRED, "start of the freeze"),
        "end": _F(_When(), _REQUIRED, "end of the freeze"),
        "label": _F(_Str(1, 200), _REQUIRED, "label on the timeline"),
        "label_zh": _F(_TEXT, "", "Chinese label"),
    }, _freeze_post), 0, 50, doc="an array of tables ([[event.freeze]])"), [],
        "change freeze windows"),
}, _event_post)


def _rotation_post(r, path, ck):
    if r["enabled"] and not r["pages"]:
        ck.error(path + ("pages",), "an enabled rotation needs at least one page")
        return _BAD
    pages = tuple(RotationPage(p["screen"], p["duration_s"]) for p in r["pages"])
    return Rotation(r["enabled"], pages, r["screen"])


_ROTATION = _Table({
    "enabled": _F(_Bool(), True, "cycle through the pages (Space pauses)"),
    "screen": _F(_Num(0, 63, integer=True), None, "physical screen of the rotating window"),
    "pages": _F(_List(_Table({
        "screen": _F(_Str(1, 64), _REQUIRED, "name of a [[screens]] entry"),
        "duration_s": _F(_Num(3, 86400), 30.0, "seconds on this page"),
    }), 0, 64, doc="an array of tables ([[rotation.pages]])"), [], "the playlist"),
}, _rotation_post)

_SOUND = _Table({
    "enabled": _F(_Bool(), True, "play alert sounds (M mutes)"),
    "p1": _F(_Enum(*SOUND_NAMES), "p1_alarm", "sound for a new P1"),
    "p1_escalated": _F(_Enum(*SOUND_NAMES), "p1_urgent",
                       "sound once a P1 is unacknowledged for escalate_after_s"),
    "p2": _F(_Enum(*SOUND_NAMES), "p2_chime", "sound for a new P2"),
    "repeat_s": _F(_Num(2, 3600), 30.0, "repeat until acknowledged, every this many seconds"),
    "escalate_after_s": _F(_Num(0, 86400), 120.0, "seconds before a P1 escalates"),
    "volume": _F(_Num(0, 1), 0.8, "0..1"),
}, lambda s, p, ck: Sound(**s))

_TOP = _Table({
    "schema": _F(_Num(1, 1, integer=True), 1, "schema version (1)"),
    "name": _F(_Str(1, 64), None, "layout name (default: the file name)"),
    "description": _F(_Str(0, 500), "", "one line for the layout picker"),
    "kind": _F(_Enum("event", "store"), "event",
               '"store": a drill-down template filled in for one store'),
    "theme": _F(_Enum("dark", "light"), "dark", "colors"),
    "frame_rate": _F(_Num(1, 120, integer=True), 30, "frames per second"),
    "event": _F(_EVENT, _REQUIRED, "the event"),
    "screens": _F(_List(_SCREEN, 1, 16, doc="an array of tables ([[screens]])",
                        partial=True),
                  _REQUIRED, "the screens"),
    "rotation": _F(_ROTATION, Rotation(), "rotation playlist"),
    "sound": _F(_SOUND, Sound(), "alert sounds"),
})


# --------------------------------------------------------------------------- cross checks


def _placeholders(obj: Any, path: tuple, out: list) -> None:
    if isinstance(obj, str):
        for ph in PLACEHOLDERS:
            if ph in obj:
                out.append((path, ph))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _placeholders(v, path + (k,), out)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _placeholders(v, path + (i,), out)


def _cross_check(raw: dict, top: dict, ck: _Check) -> None:
    """Checks across sections: unique screen names, rotation references, placeholders."""
    screens = top["screens"] if top["screens"] is not _BAD else None
    if screens is not None:
        names: dict[str, int] = {}
        for i, s in enumerate(screens):
            if s is _BAD:  # its name may still be valid: rotation pages may refer to it
                name = raw["screens"][i].get("name")
                if isinstance(name, str):
                    names.setdefault(name, i)
                continue
            if s.name in names:
                ck.error(("screens", i, "name"), f'duplicate screen name "{s.name}" '
                         f"(also screens[{names[s.name]}])")
            names.setdefault(s.name, i)
        rot = top["rotation"]
        if rot is not _BAD:
            for i, p in enumerate(rot.pages):
                if p.screen not in names:
                    ck.error(("rotation", "pages", i, "screen"),
                             f'no screen named "{p.screen}"{_hint(p.screen, names)}; '
                             f"screens: {', '.join(names)}")
    kind = top["kind"]
    if kind == "event":
        found: list = []
        _placeholders(raw, (), found)
        for path, ph in found:
            ck.error(path, f'placeholder {ph} is only allowed in a layout with kind = "store"')
    elif kind == "store" and top["event"] is not _BAD and not top["event"].scope.chain_wide:
        ck.error(("event", "scope"), 'a kind = "store" layout gets its scope at run time '
                 "(bind_store); leave event.scope empty")


# --------------------------------------------------------------------------- loading


def load_layout_text(text: str, name: str = "<layout>", path: str | Path | None = None) -> Layout:
    """Parse and validate layout ``text``; ``name`` is the file shown in messages (and the
    layout's name when the file sets none). Raises :class:`LayoutError` with every issue."""
    file = str(path) if path is not None else name
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LayoutError([_syntax_issue(file, str(exc), text)]) from None
    base = Path(path).resolve().parent if path is not None else None
    ck = _Check(file, _LineIndex(text), base)
    top, _ = _TOP.check_fields(raw, (), ck)   # cross-checks also see the valid parts
    _cross_check(raw, top, ck)
    if ck.issues:
        raise LayoutError(sorted(ck.issues, key=lambda i: (i.line or 0)))
    stem = Path(name).stem if name and not name.startswith("<") else "layout"
    return Layout(name=top["name"] or stem, event=top["event"], screens=tuple(top["screens"]),
                  path=str(path) if path is not None else None,
                  description=top["description"], kind=top["kind"], theme=top["theme"],
                  frame_rate=top["frame_rate"], rotation=top["rotation"], sound=top["sound"])


def _syntax_issue(file: str, msg: str, text: str) -> LayoutIssue:
    m = re.search(r"\(at line (\d+), column (\d+)\)$", msg)
    if m:
        return LayoutIssue(file, int(m.group(1)), "",
                           f"TOML syntax error: {msg[:m.start()].strip()}", int(m.group(2)))
    m = re.search(r"\(at end of document\)$", msg)
    if m:
        return LayoutIssue(file, text.count("\n") + (not text.endswith("\n")), "",
                           f"TOML syntax error: {msg[:m.start()].strip()} at end of file")
    return LayoutIssue(file, None, "", f"TOML syntax error: {msg}")


def load_layout(path: str | Path) -> Layout:
    """Read and validate the layout file at ``path``. Raises :class:`LayoutError` (never
    anything else) when the file is missing, unreadable, not TOML or not a valid layout."""
    p = Path(path)
    try:
        data = p.read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as exc:
        raise LayoutError([LayoutIssue(str(p), None, "", f"cannot read: {exc.strerror or exc}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise LayoutError([LayoutIssue(str(p), None, "", f"file larger than {MAX_FILE_BYTES} bytes")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LayoutError([LayoutIssue(str(p), line, "", f"not UTF-8 (byte offset {exc.start})")]) from None
    return load_layout_text(text, p.name, path=p)


def list_layouts(directory: str | Path = DEFAULT_LAYOUT_DIR) -> list[Path]:
    """The ``*.toml`` files in ``directory``, sorted by name (empty if it does not exist).
    A layout's name is its file stem; load each with :func:`load_layout`."""
    d = Path(directory)
    return sorted(d.glob("*.toml")) if d.is_dir() else []


def find_layout(name_or_path: str | Path, search_dirs: Sequence[str | Path] | None = None) -> Path:
    """Resolve a layout given by name ("launch-928") or path. A path (has a separator or
    ends in ``.toml``) is returned if it exists; a name is looked up as ``NAME.toml`` in
    ``search_dirs`` (default: the shipped ``layouts/``), first match wins. Raises
    :class:`LayoutError` naming the known layouts (with a did-you-mean hint) otherwise."""
    s = str(name_or_path)
    dirs = [Path(d) for d in (search_dirs if search_dirs is not None else [DEFAULT_LAYOUT_DIR])]
    if "/" in s or "\\" in s or s.endswith(".toml"):
        p = Path(s)
        if p.is_file():
            return p
        raise LayoutError([LayoutIssue(s, None, "", "no such layout file")])
    for d in dirs:
        p = d / f"{s}.toml"
        if p.is_file():
            return p
    known = [p.stem for d in dirs for p in list_layouts(d)]
    raise LayoutError([LayoutIssue(s, None, "", f'no layout named "{s}"{_hint(s, known)}; '
                                   f"known: {', '.join(known) or 'none'} "
                                   f"(in {', '.join(str(d) for d in dirs)})")])


def _option_files(panel: Panel) -> list[str]:
    out: list[str] = []
    for key in PATH_OPTIONS.get(panel.type, ()):
        v = panel.options.get(key)
        out += [v] if isinstance(v, str) else list(v or [])
    return out


def check_layout_files(paths: Iterable[str | Path]) -> tuple[bool, str]:
    """Validate each file; returns ``(ok, report)`` where ``report`` has one line per good
    file and every issue of the bad ones, then a summary. Also checks that the files a
    panel names (a store map's GeoJSON layers) exist. For ``wallboard check-layout``: exit 0 only when ok."""
    lines: list[str] = []
    n_files = n_bad = n_issues = 0
    for path in paths:
        n_files += 1
        try:
            lay = load_layout(path)
        except LayoutError as exc:
            n_bad += 1
            n_issues += len(exc.issues)
            lines.append(f"FAIL {path}: {len(exc.issues)} error(s)")
            lines.extend(f"  {i}" for i in exc.issues)
            continue
        missing = [(s, p, f) for s in lay.screens for p in s.panels
                   for f in _option_files(p) if not Path(f).is_file()]
        if missing:
            n_bad += 1
            n_issues += len(missing)
            lines.append(f"FAIL {path}: {len(missing)} error(s)")
            for s, p, f in missing:
                lines.append(f'  {path}: screen "{s.name}", panel "{p.title}": file not found: {f}')
            continue
        n_panels = sum(len(s.panels) for s in lay.screens)
        lines.append(f"ok   {path}: {lay.name} ({len(lay.screens)} screens, {n_panels} panels)")
    lines.append(f"{n_files} file(s) checked, {n_bad} with errors ({n_issues} error(s))")
    return n_bad == 0 and n_files > 0, "\n".join(lines)


def bind_store(layout: Layout, store_id: str, city_id: str = "", store_name: str = "") -> Layout:
    """Fill in a ``kind = "store"`` layout for one store: the event scope becomes that
    store (and its city), and ``{store}``, ``{city}``, ``{store_name}`` in every string
    are replaced. Raises ValueError for a layout of another kind or an empty store id."""
    if layout.kind != "store":
        raise ValueError(f'layout {layout.name!r} is kind = "{layout.kind}", not "store"')
    if not store_id or any(ch.isspace() for ch in store_id):
        raise ValueError(f"bad store id {store_id!r}")
    subs = {"{store}": store_id, "{city}": city_id, "{store_name}": store_name or store_id}

    def sub(obj: Any) -> Any:
        if isinstance(obj, str):
            for k, v in subs.items():
                obj = obj.replace(k, v)
            return obj
        if isinstance(obj, (list, tuple)):
            return type(obj)(sub(x) for x in obj)
        if isinstance(obj, dict):
            return {k: sub(v) for k, v in obj.items()}
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return dataclasses.replace(obj, **{f.name: sub(getattr(obj, f.name))
                                               for f in dataclasses.fields(obj)
                                               if f.name not in ("name", "path")})
        return obj

    bound = sub(layout)
    scope = Scope(cities=(city_id,) if city_id else (), stores=(store_id,))
    return dataclasses.replace(bound, event=dataclasses.replace(bound.event, scope=scope))
