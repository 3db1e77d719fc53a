"""The layout schema: every table, field, default and cross-field check.

``SCHEMA.check_fields(raw, (), ck)`` validates a parsed TOML document and builds the
model objects; :func:`cross_check` then checks what spans sections (screen names,
rotation pages, placeholders). A panel's type, default title, age threshold and options
come from its widget's spec (:mod:`wallboard.layout.specs`), which the widgets check their
options with too. Documented in docs/layouts.md (its widget tables generated from the specs).
"""
from __future__ import annotations

from typing import Any

from wallboard.layout.model import (
    LAYOUT_NAME_PATTERN, PLACEHOLDERS, SEVERITIES, SOUND_NAMES, Event, FreezeWindow, Panel,
    Rotation, RotationPage, Rule, RuleMatch, Scope, Screen, Sound,
)
from wallboard.layout.specs import SPECS, WIDGET_TYPES
from wallboard.layout.specs.common import ID as _ID, TEXT as _TEXT
from wallboard.layout.validators import (
    BAD, REQUIRED, AnyTable, Bool, Check, Choice, Field, ListOf, Num, Pair, Str, Table, When,
    fmt_path, hint,
)

#: Options per widget type, from each widget's spec (:mod:`wallboard.layout.specs`).
WIDGET_OPTIONS: dict[str, Table] = {t: s.options for t, s in SPECS.items()}


def _scope_table() -> Table:
    return Table({
        "cities": Field(ListOf(_ID, unique=True, doc="an array of city ids"), [], 'e.g. ["sh", "hz"]'),
        "stores": Field(ListOf(_ID, unique=True, doc="an array of store ids"), [], 'e.g. ["sh-001"]'),
    }, lambda s, p, ck: Scope(tuple(s["cities"]), tuple(s["stores"])))


def _panel_post(p, path, ck):
    typ = p["type"]
    spec = SPECS[typ]
    opts = spec.check(p["options"], path + ("options",), ck)
    if opts is BAD:
        # Reported already (the load will fail); keep the panel so grid checks still run.
        opts = {}
    if ck.base_dir is not None:
        for key in spec.path_options:
            if isinstance(opts.get(key), str):
                opts[key] = str((ck.base_dir / opts[key]).resolve())
            elif isinstance(opts.get(key), list):
                opts[key] = [str((ck.base_dir / x).resolve()) for x in opts[key]]
    return Panel(
        type=typ, title=p["title"] or spec.title, title_zh=p["title_zh"] or spec.title_zh,
        col=p["at"][0], row=p["at"][1], cols=p["span"][0], rows=p["span"][1],
        stale_after_s=spec.stale_after_s if p["stale_after_s"] is None else p["stale_after_s"],
        options=opts, scope=p["scope"])


_PANEL = Table({
    "type": Field(Choice(*WIDGET_TYPES), REQUIRED, "widget type"),
    "title": Field(_TEXT, "", "panel title (default per type)"),
    "title_zh": Field(_TEXT, "", "Chinese title"),
    "at": Field(Pair(0, "col, row"), REQUIRED, "top-left cell, 0-based"),
    "span": Field(Pair(1, "cols, rows"), (1, 1), "cells covered"),
    "stale_after_s": Field(Num(0, 86400), None, "age threshold in seconds (0: never)"),
    "scope": Field(_scope_table(), None, "narrows the event scope for this panel"),
    "options": Field(AnyTable(), {}, "widget options, see below"),
}, _panel_post, doc="a table (one [[screens.panels]])")


def _screen_post(s, path, ck):
    cols, rows = s["columns"], s["rows"]
    owner: dict[tuple[int, int], int] = {}
    ok = True
    for i, p in enumerate(s["panels"]):
        pp = path + ("panels", i)
        if p is BAD:
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
            ck.error(pp + ("at",), f"panel overlaps {fmt_path(path + ('panels', j))} "
                     f'({other.type} "{other.title}") at cell (col {c}, row {r})')
            ok = False
    if not ok:
        return BAD
    return Screen(name=s["name"], columns=cols, rows=rows, panels=tuple(s["panels"]),
                  title=s["title"], title_zh=s["title_zh"], screen=s["screen"],
                  monitor=s["monitor"])


_SCREEN = Table({
    "name": Field(Str(1, 64), REQUIRED, "unique name (rotation pages refer to it)"),
    "title": Field(_TEXT, "", "screen title"),
    "title_zh": Field(_TEXT, "", "Chinese title"),
    "screen": Field(Num(0, 63, integer=True), None, "physical screen index"),
    "monitor": Field(Str(1, 64), None, 'monitor name, e.g. "HDMI-1" (see wallboard screens)'),
    "columns": Field(Num(1, 48, integer=True), 12, "grid columns"),
    "rows": Field(Num(1, 48, integer=True), 8, "grid rows"),
    "panels": Field(ListOf(_PANEL, 1, 64, doc="an array of tables ([[screens.panels]])",
                       partial=True),
                 REQUIRED, "the panels"),
}, _screen_post, doc="a table (one [[screens]])")


def _freeze_post(f, path, ck):
    if not f["end"] > f["start"]:
        ck.error(path + ("end",), f"end ({f['end'].isoformat()}) must be after start "
                 f"({f['start'].isoformat()})")
        return BAD
    return FreezeWindow(f["start"], f["end"], f["label"], f["label_zh"])


def _event_post(e, path, ck):
    if e["starts_at"] and e["ends_at"] and not e["ends_at"] > e["starts_at"]:
        ck.error(path + ("ends_at",), "ends_at must be after starts_at")
        return BAD
    return Event(e["title"], e["title_zh"], e["starts_at"], e["ends_at"], e["scope"],
                 tuple(e["freeze"]))


_EVENT = Table({
    "title": Field(Str(1, 200), REQUIRED, "shown in every screen's header"),
    "title_zh": Field(_TEXT, "", "Chinese title"),
    "starts_at": Field(When(), None, "countdown target / time since"),
    "ends_at": Field(When(), None, "end of the event"),
    "scope": Field(_scope_table(), Scope(), "cities and/or stores (empty: chain-wide)"),
    "freeze": Field(ListOf(Table({
        "start": Field(When(), REQUIRED, "start of the freeze"),
        "end": Field(When(), REQUIRED, "end of the freeze"),
        "label": Field(Str(1, 200), REQUIRED, "label on the timeline"),
        "label_zh": Field(_TEXT, "", "Chinese label"),
    }, _freeze_post), 0, 50, doc="an array of tables ([[event.freeze]])"), [],
        "change freeze windows"),
}, _event_post)


def _rotation_post(r, path, ck):
    if r["enabled"] and not r["pages"]:
        ck.error(path + ("pages",), "an enabled rotation needs at least one page")
        return BAD
    pages = tuple(RotationPage(p["screen"], p["duration_s"]) for p in r["pages"])
    return Rotation(r["enabled"], pages, r["screen"], r["monitor"])


_ROTATION = Table({
    "enabled": Field(Bool(), True, "cycle through the pages (Space pauses)"),
    "screen": Field(Num(0, 63, integer=True), None, "physical screen of the rotating window"),
    "monitor": Field(Str(1, 64), None, "monitor name of the rotating window"),
    "pages": Field(ListOf(Table({
        "screen": Field(Str(1, 64), REQUIRED, "name of a [[screens]] entry"),
        "duration_s": Field(Num(3, 86400), 30.0, "seconds on this page"),
    }), 0, 64, doc="an array of tables ([[rotation.pages]])"), [], "the playlist"),
}, _rotation_post)

_SOUND = Table({
    "enabled": Field(Bool(), True, "play alert sounds (M mutes)"),
    "p1": Field(Choice(*SOUND_NAMES), "p1_alarm", "sound for a new P1"),
    "p1_escalated": Field(Choice(*SOUND_NAMES), "p1_urgent",
                       "sound once a P1 is unacknowledged for escalate_after_s"),
    "p2": Field(Choice(*SOUND_NAMES), "p2_chime", "sound for a new P2"),
    "repeat_s": Field(Num(2, 3600), 30.0, "repeat until acknowledged, every this many seconds"),
    "escalate_after_s": Field(Num(0, 86400), 120.0, "seconds before a P1 escalates"),
    "volume": Field(Num(0, 1), 0.8, "0..1"),
}, lambda s, p, ck: Sound(**s))

MATCH_KEYS = ("severity", "stores", "cities", "kinds", "tags")


def _match_post(m, path, ck):
    if not any(m[k] for k in MATCH_KEYS):
        ck.error(path, "matches every incident: name at least one of "
                 + ", ".join(MATCH_KEYS))
        return BAD
    return RuleMatch(**{k: tuple(m[k]) for k in MATCH_KEYS})


def _rule_post(r, path, ck):
    return Rule(name=r["name"] or f"rules[{path[-1]}]", screen=r["screen"], match=r["match"],
                layout=r["layout"], for_min=r["for_min"], sound=r["sound"], repeat_s=r["repeat_s"])


_MATCH = Table({
    "severity": Field(ListOf(Choice(*SEVERITIES), unique=True,
                             doc='an array of severities, e.g. ["P1", "P2"]'), [],
                      "incident severities"),
    "stores": Field(ListOf(_ID, unique=True, doc="an array of store ids"), [],
                    "an incident store is one of these (or in one of cities)"),
    "cities": Field(ListOf(_ID, unique=True, doc="an array of city ids"), [],
                    "an incident store is in one of these cities (or one of stores)"),
    "kinds": Field(ListOf(_ID, unique=True, doc="an array of device kinds"), [],
                   "the incident's kinds (device kinds it is about) include one of these"),
    "tags": Field(ListOf(Str(1, 200), unique=True, doc="an array of tags"), [],
                  "the incident's tags, or its stores' tags, include one of these"),
}, _match_post, doc="a table {severity, stores, cities, kinds, tags}")

_RULE = Table({
    "name": Field(Str(1, 64), None, "shown in messages (default: rules[N])"),
    "screen": Field(Str(1, 64), REQUIRED, "the [[screens]] entry whose window turns to the incident"),
    "match": Field(_MATCH, REQUIRED, "which incidents (every criterion given must hold)"),
    "layout": Field(Str(1, 100, LAYOUT_NAME_PATTERN, doc="a layout name (not a path)"), None,
                    "show this layout's first screen instead of the incident's store page"),
    "for_min": Field(Num(0, 1440), 10.0,
                     "turn back after this many minutes even if unacknowledged (0: only the "
                     "acknowledgement, or Esc)"),
    "sound": Field(Choice(*SOUND_NAMES), None, "sound (default: the [sound] one for its severity)"),
    "repeat_s": Field(Num(2, 3600), None, "the sound repeats every this many seconds until "
                      "acknowledged (default: [sound] repeat_s)"),
}, _rule_post, doc="a table (one [[rules]])")

SCHEMA = Table({
    "schema": Field(Num(1, 1, integer=True), 1, "schema version (1)"),
    "name": Field(Str(1, 64), None, "layout name (default: the file name)"),
    "description": Field(Str(0, 500), "", "one line for the layout picker"),
    "kind": Field(Choice("event", "store"), "event",
               '"store": a drill-down template filled in for one store'),
    "theme": Field(Choice("dark", "light"), "dark", "colors"),
    "frame_rate": Field(Num(1, 120, integer=True), 30, "frames per second"),
    "event": Field(_EVENT, REQUIRED, "the event"),
    "screens": Field(ListOf(_SCREEN, 1, 16, doc="an array of tables ([[screens]])",
                        partial=True),
                  REQUIRED, "the screens"),
    "rotation": Field(_ROTATION, Rotation(), "rotation playlist"),
    "sound": Field(_SOUND, Sound(), "alert sounds"),
    "rules": Field(ListOf(_RULE, 0, 32, doc="an array of tables ([[rules]])", partial=True), [],
                   "auto-focus: turn a screen to a matching incident"),
})



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


def _check_rules(raw: dict, top: dict, names: dict | None, ck: Check) -> None:
    """Each rule names a screen of this layout; rule names are unique; none in a store page."""
    rules = top["rules"]
    if rules is BAD or not rules:
        return
    if top["kind"] == "store":
        ck.error(("rules",), 'a kind = "store" layout (the store page) has no [[rules]]: '
                 "put them in the wall's event layout")
        return
    seen: dict[str, int] = {}
    for i, r in enumerate(rules):
        # a rule with other errors still gets its screen and name checked (from the raw table)
        given = raw["rules"][i] if r is BAD else {"screen": r.screen, "name": r.name}
        if not isinstance(given, dict):
            continue
        screen, name = given.get("screen"), given.get("name")
        if names is not None and isinstance(screen, str) and screen not in names:
            ck.error(("rules", i, "screen"), f'no screen named "{screen}"{hint(screen, names)}; '
                     f"screens: {', '.join(names)}")
        if isinstance(name, str):
            if name in seen:
                ck.error(("rules", i, "name"), f'duplicate rule name "{name}" (also rules[{seen[name]}])')
            seen.setdefault(name, i)
    top["rules"] = [r for r in rules if r is not BAD]


def cross_check(raw: dict, top: dict, ck: Check) -> None:
    """Checks across sections: unique screen names, rotation references, placeholders."""
    screens = top["screens"] if top["screens"] is not BAD else None
    names: dict[str, int] | None = None
    if screens is not None:
        names = {}
        for i, s in enumerate(screens):
            if s is BAD:  # its name may still be valid: rotation pages may refer to it
                name = raw["screens"][i].get("name")
                if isinstance(name, str):
                    names.setdefault(name, i)
                continue
            if s.name in names:
                ck.error(("screens", i, "name"), f'duplicate screen name "{s.name}" '
                         f"(also screens[{names[s.name]}])")
            names.setdefault(s.name, i)
        rot = top["rotation"]
        if rot is not BAD:
            for i, p in enumerate(rot.pages):
                if p.screen not in names:
                    ck.error(("rotation", "pages", i, "screen"),
                             f'no screen named "{p.screen}"{hint(p.screen, names)}; '
                             f"screens: {', '.join(names)}")
    _check_rules(raw, top, names, ck)
    kind = top["kind"]
    if kind == "event":
        found: list = []
        _placeholders(raw, (), found)
        for path, ph in found:
            ck.error(path, f'placeholder {ph} is only allowed in a layout with kind = "store"')
    elif kind == "store" and top["event"] is not BAD and not top["event"].scope.chain_wide:
        ck.error(("event", "scope"), 'a kind = "store" layout gets its scope at run time '
                 "(bind_store); leave event.scope empty")
