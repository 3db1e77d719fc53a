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

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any, Iterable, Sequence

from wallboard.resources import data_dir, user_layout_dir
from wallboard.layout.lines import LineIndex
from wallboard.layout.model import (
    LAYOUT_NAME_PATTERN, PLACEHOLDERS, SOUND_NAMES, Event, FreezeWindow, Layout, LayoutError, LayoutIssue, Page, Panel,
    Rotation, RotationPage, Rule, RuleMatch, Scope, Screen, Sound, Window,
)
from wallboard.layout.schema import SCHEMA, WIDGET_OPTIONS, cross_check
from wallboard.layout.specs import DEFAULT_TITLES, PATH_OPTIONS, SPECS, STALE_DEFAULTS, WIDGET_TYPES
from wallboard.layout.validators import Check, hint

__all__ = [
    "WIDGET_TYPES", "SOUND_NAMES", "DEFAULT_LAYOUT_DIR", "LayoutIssue", "LayoutError",
    "Scope", "FreezeWindow", "Event", "Panel", "Screen", "RotationPage", "Rotation",
    "Sound", "Rule", "RuleMatch", "Page", "Window", "Layout", "load_layout", "load_layout_text", "find_layout",
    "list_layouts", "check_layout_files", "bind_store", "WIDGET_OPTIONS", "PLACEHOLDERS",
    "STALE_DEFAULTS", "DEFAULT_TITLES", "check_layout_name", "rule_layout_dirs", "SPECS",
]

#: Where shipped layouts live (``find_layout`` looks here when no dirs are given).
DEFAULT_LAYOUT_DIR = data_dir("layouts")
MAX_FILE_BYTES = 1_000_000
#: A layout's name as another machine may give it (see ``LAYOUT_NAME_PATTERN``).
LAYOUT_NAME = re.compile(LAYOUT_NAME_PATTERN)
MAX_NAME = 100


def load_layout_text(text: str, name: str = "<layout>", path: str | Path | None = None) -> Layout:
    """Parse and validate layout ``text``; ``name`` is the file shown in messages (and the
    layout's name when the file sets none). Raises :class:`LayoutError` with every issue."""
    file = str(path) if path is not None else name
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LayoutError([_syntax_issue(file, str(exc), text)]) from None
    except RecursionError:
        raise LayoutError([LayoutIssue(file, None, "", "TOML nested too deeply")]) from None
    base = Path(path).resolve().parent if path is not None else None
    ck = Check(file, LineIndex(text), base)
    top, _ = SCHEMA.check_fields(raw, (), ck)   # cross-checks also see the valid parts
    cross_check(raw, top, ck)
    if ck.issues:
        raise LayoutError(sorted(ck.issues, key=lambda i: (i.line or 0)))
    stem = Path(name).stem if name and not name.startswith("<") else "layout"
    return Layout(name=top["name"] or stem, event=top["event"], screens=tuple(top["screens"]),
                  path=str(path) if path is not None else None,
                  description=top["description"], kind=top["kind"], theme=top["theme"],
                  frame_rate=top["frame_rate"], rotation=top["rotation"], sound=top["sound"],
                  rules=tuple(top["rules"]))


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
        with p.open("rb") as f:           # never more than the limit in memory (a 1 GB file)
            data = f.read(MAX_FILE_BYTES + 1)
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


def check_layout_name(name: str, known: Sequence[str] = ()) -> None:
    """Raise :class:`LayoutError` unless ``name`` is a layout *name* (``launch-928``), not
    a path: what a layout named by another machine (the hub's ``switch_layout``) must be,
    so it can only pick one of the layouts in the wall's own layout dirs. The message says
    what was refused and lists ``known``."""
    s = str(name)
    if len(s) <= MAX_NAME and LAYOUT_NAME.fullmatch(s) and not s.lower().endswith(".toml"):
        return
    shown = s if len(s) <= 80 else s[:77] + "..."
    raise LayoutError([LayoutIssue(shown, None, "",
                                   f"not a layout name: expected letters, digits, '-', '_', '.' "
                                   f"(at most {MAX_NAME} characters), never a path or a file; "
                                   f"known: {', '.join(known) or 'none'}")])


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
    raise LayoutError([LayoutIssue(s, None, "", f'no layout named "{s}"{hint(s, known)}; '
                                   f"known: {', '.join(known) or 'none'} "
                                   f"(in {', '.join(str(d) for d in dirs)})")])


def _option_files(panel: Panel) -> list[tuple[tuple, str]]:
    """The files a panel's options name, each with its key path under the panel."""
    out: list[tuple[tuple, str]] = []
    for key in PATH_OPTIONS.get(panel.type, ()):
        v = panel.options.get(key)
        out += [(("options", key), v)] if isinstance(v, str) else \
            [(("options", key, i), f) for i, f in enumerate(v or [])]
    return out


def rule_layout_dirs(lay: Layout, dirs: Sequence[str | Path]) -> list[Path]:
    """Where a rule's ``layout = "NAME"`` is looked up: the layout file's own directory,
    then ``dirs`` (the wall's layout dirs)."""
    own = [Path(lay.path).resolve().parent] if lay.path else []
    return own + [Path(d) for d in dirs if Path(d).resolve() not in own]


def _missing_files(path: str | Path, lay: Layout) -> list[LayoutIssue]:
    """A "file not found" issue, with its line and key path, per file a panel names, and
    a "no layout named" issue per rule whose ``layout`` is in none of the layout dirs."""
    missing = [(("screens", si, "panels", pi) + key, f"file not found: {f}")
               for si, s in enumerate(lay.screens)
               for pi, p in enumerate(s.panels) for key, f in _option_files(p) if not Path(f).is_file()]
    dirs = rule_layout_dirs(lay, [user_layout_dir(), DEFAULT_LAYOUT_DIR])
    for i, rule in enumerate(lay.rules):
        if rule.layout is not None:
            try:
                find_layout(rule.layout, dirs)
            except LayoutError as e:
                missing.append((("rules", i, "layout"), e.issues[0].message))
    if not missing:
        return []
    try:
        lines: LineIndex | None = LineIndex(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        lines = None
    ck = Check(str(path), lines)
    for key, message in missing:
        ck.error(key, message)
    return ck.issues


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
        missing = _missing_files(path, lay)
        if missing:
            n_bad += 1
            n_issues += len(missing)
            lines.append(f"FAIL {path}: {len(missing)} error(s)")
            lines.extend(f"  {i}" for i in missing)
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
