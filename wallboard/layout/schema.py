"""The layout schema: every table, field, default and cross-field check.

``SCHEMA.check_fields(raw, (), ck)`` validates a parsed TOML document and builds the
model objects; :func:`cross_check` then checks what spans sections (screen names,
rotation pages, placeholders). ``WIDGET_OPTIONS`` holds each widget type's options:
they match what the widgets in ``widgets/`` accept. Documented in docs/layouts.md.
"""
from __future__ import annotations

from typing import Any

from wallboard.layout.kpi import resolve_good
from wallboard.layout.model import (
    DEFAULT_TITLES, LAYOUT_NAME_PATTERN, PLACEHOLDERS, SEVERITIES, SOUND_NAMES, STALE_DEFAULTS,
    WIDGET_TYPES, Event, FreezeWindow, Panel, Rotation, RotationPage, Rule, RuleMatch, Scope,
    Screen, Sound,
)
from wallboard.layout.validators import (
    BAD, REQUIRED, AnyTable, Bool, Check, Choice, Field, ListOf, MapOf, Num, Pair, Ref,
    Str, Table, When, fmt_path, hint,
)


_ID = Str(1, 64, r"[^\s{}]+", doc="an id without spaces")
_METRIC = Str(1, 100, r"[A-Za-z0-9_.:-]+", doc="a metric name (letters, digits, _ . : -)")
_KPI_SCOPE = Str(1, 100, r"global|(city|store):([^\s:{}]+|\{city\}|\{store\})",
                  doc='"global", "city:ID" or "store:ID"')
_TEXT = Str(0, 200)


def _tile_post(t, path, ck):
    t["label"] = t["label"] or t["metric"]
    try:
        t["good"], t["direction"] = resolve_good(t["metric"], t["good"], t["direction"],
                                                   t["warn"], t["crit"])
    except ValueError as e:
        ck.error(path + ("good",), str(e))
        return BAD
    w, c = t["warn"], t["crit"]
    if w is not None and c is not None:
        if t["direction"] == "up_bad" and not w < c:
            ck.error(path + ("warn",), f'warn ({w:g}) must be below crit ({c:g}) when '
                     'direction = "up_bad" (higher is worse)')
            return BAD
        if t["direction"] == "down_bad" and not w > c:
            ck.error(path + ("warn",), f'warn ({w:g}) must be above crit ({c:g}) when '
                     'direction = "down_bad" (lower is worse)')
            return BAD
    return t


def _series_post(s, path, ck):
    s["label"] = s["label"] or s["metric"]
    return s


def _band_post(b, path, ck):
    if not b["from"] < b["to"]:
        ck.error(path + ("to",), f"to ({b['to']:g}) must be above from ({b['from']:g})")
        return BAD
    return b


def _chart_post(o, path, ck):
    seen: dict[tuple, int] = {}
    for i, s in enumerate(o["series"]):
        key = (s["metric"], s["scope"])
        if key in seen:
            ck.error(path + ("series", i), f"duplicate series {s['metric']} @ {s['scope']} "
                     f"(same as series[{seen[key]}])")
            return BAD
        seen[key] = i
    return o


def _grid_post(o, path, ck):
    if o["mode"] == "store" and o["store"] is None:
        ck.error(path + ("store",), 'missing: mode = "store" needs the store id '
                 '(in a kind = "store" layout: store = "{store}")')
        return BAD
    if o["mode"] == "scope" and o["store"] is not None:
        ck.error(path + ("store",), 'only used with mode = "store"')
        return BAD
    if o["max_cell_px"] < o["min_cell_px"]:
        ck.error(path + ("max_cell_px",), f"max_cell_px ({o['max_cell_px']}) is below "
                 f"min_cell_px ({o['min_cell_px']})")
        return BAD
    return o


_NUMBER = Num(-1e15, 1e15)
_PATH = Str(1, 1000, doc="a file path")
_COLOR = Str(1, 40, r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})|[a-z]+",
              doc='a color such as "#e0a106" or "orange"')

_TILE = Table({
    "metric": Field(_METRIC, REQUIRED, "KPI metric name, e.g. orders_per_s"),
    "scope": Field(_KPI_SCOPE, "global", '"global", "city:ID" or "store:ID"'),
    "label": Field(_TEXT, "", "tile label (default: the metric name)"),
    "label_zh": Field(_TEXT, None, "Chinese label (default: label)"),
    "unit": Field(Str(0, 16), None, 'unit after the value, e.g. "%" (default: the samples\' unit)'),
    "warn": Field(_NUMBER, None, "value at which the tile turns warn"),
    "crit": Field(_NUMBER, None, "value at which the tile turns crit"),
    "good": Field(Choice("up", "down"), None,
               'which way is good: colours the delta (default: from direction, else by '
               'the metric\'s kind: orders, GMV, footfall, success "up"; latency, queue, '
               'errors "down")'),
    "direction": Field(Choice("up_bad", "down_bad"), None,
                    '"up_bad": higher is worse; "down_bad": lower is worse (thresholds; '
                    'default: the opposite of good, else the order of warn and crit, else '
                    'the opposite of the kind\'s good way)'),
    "dead_band": Field(Num(0, 1e15), None,
                    'a delta this small (in the unit) is neutral (default: 0.05 for "%")'),
    "dead_band_pct": Field(Num(0, 100), None,
                        "a delta this small (% of the reference) is neutral (default 0.5)"),
    "reference": Field(Ref(), "prev", 'delta against "prev" (previous sample) or a fixed number'),
}, _tile_post, doc="a table {metric, scope, label, ...}")

_SERIES = Table({
    "metric": Field(_METRIC, REQUIRED, "KPI metric name"),
    "scope": Field(_KPI_SCOPE, "global", '"global", "city:ID" or "store:ID"'),
    "label": Field(_TEXT, "", "legend label (default: the metric name)"),
    "label_zh": Field(_TEXT, None, "Chinese legend label (default: label)"),
}, _series_post, doc="a table {metric, scope, label, label_zh}")

_BAND = Table({
    "from": Field(_NUMBER, REQUIRED, "lower edge"),
    "to": Field(_NUMBER, REQUIRED, "upper edge"),
    "level": Field(Choice("ok", "warn", "crit"), "warn", "band color by status"),
    "color": Field(_COLOR, None, "explicit color instead of the level's"),
}, _band_post, doc="a table {from, to, level, color}")

#: Options per widget type; they match what each widget in ``widgets/`` accepts.
WIDGET_OPTIONS: dict[str, Table] = {
    "store_map": Table({
        "provinces": Field(_PATH, None, "GeoJSON replacing the shipped province layer"),
        "countries": Field(_PATH, None, "GeoJSON replacing the shipped country layer"),
        "basemap_extra": Field(ListOf(_PATH, 0, 16, doc="an array of file paths"), [],
                            "GeoJSON files drawn on top of the basemap"),
        "show_countries": Field(Bool(), True, "draw the country layer"),
        "show_provinces": Field(Bool(), True, "draw the province layer"),
        "cluster_span_deg": Field(Num(0.01, 360), 3.0, "when the view is wider than this "
                               "(degrees of longitude) stores gather into one donut per city"),
        "marker_px": Field(Num(6, 64, integer=True), 18, "store marker size"),
        "pulse_s": Field(Num(0, 3600), 10.0, "seconds a store pulses after an incident opens"),
        "label_max": Field(Num(0, 5000, integer=True), 60, "at most this many store labels"),
    }),
    "device_grid": Table({
        "mode": Field(Choice("scope", "store"), "scope",
                   '"scope": one row per store of the scope; "store": every device of one store'),
        "store": Field(Str(1, 64, r"[^\s{}]+|\{store\}", doc='a store id (or "{store}")'), None,
                    'the store for mode = "store"'),
        "order": Field(Choice("worst", "fixed"), "worst", "worst rows first, or a fixed order"),
        "min_cell_px": Field(Num(4, 64, integer=True), 10, "below this cell size stores roll up"),
        "max_cell_px": Field(Num(8, 128, integer=True), 36, "largest cell size"),
        "resort_s": Field(Num(0, 3600), 5.0, "worst-first re-sort period"),
        "kinds": Field(ListOf(_ID, unique=True, doc="an array of device kinds"), [],
                    "kind column order (empty: the standard order)"),
        "key_metric": Field(MapOf(_METRIC, "a table {kind = metric}"), {},
                         "per kind, a device metric shown in store mode"),
    }, _grid_post),
    "change_timeline": Table({
        "lanes": Field(Choice("system", "city"), "system", "one lane per system or per city"),
        "window_min": Field(Num(5, 10080, integer=True), 120, "minutes shown"),
    }),
    "incident_board": Table({
        "flash_s": Field(Num(0, 3600, integer=True), 120, "seconds a new P1/P2 row flashes"),
        "resolved_keep_s": Field(Num(0, 86400, integer=True), 300,
                              "seconds a resolved incident stays listed"),
        "max_rows": Field(Num(1, 200, integer=True), 12, "rows shown (the rest is counted)"),
    }),
    "voice_feed": Table({
        "spike_factor": Field(Num(1, 100, lo_open=True), 3.0,
                           "a minute this many times the baseline is a spike"),
        "baseline_min": Field(Num(3, 1440, integer=True), 15, "minutes of the baseline"),
        "topics": Field(ListOf(Str(1, 64), unique=True, doc="an array of topics"), [],
                     "topics to show (empty: all)"),
    }),
    "kpi_tiles": Table({
        "tiles": Field(ListOf(_TILE, 1, 32), REQUIRED, "the tiles, in order"),
    }),
    "kpi_chart": Table({
        "series": Field(ListOf(_SERIES, 1, 8), REQUIRED, "the lines drawn"),
        "bands": Field(ListOf(_BAND, 0, 12), [], "shaded value bands"),
        "window_min": Field(Num(1, 10080, integer=True), 60, "minutes shown"),
    }, _chart_post),
    "text": Table({
        "text": Field(Str(1, 4000), REQUIRED, "the note (English)"),
        "text_zh": Field(Str(0, 4000), "", "the note (Chinese)"),
    }),
}
#: Options holding file paths: resolved against the layout file's directory.
PATH_OPTIONS: dict[str, tuple[str, ...]] = {"store_map": ("provinces", "countries", "basemap_extra")}


def _scope_table() -> Table:
    return Table({
        "cities": Field(ListOf(_ID, unique=True, doc="an array of city ids"), [], 'e.g. ["sh", "hz"]'),
        "stores": Field(ListOf(_ID, unique=True, doc="an array of store ids"), [], 'e.g. ["sh-001"]'),
    }, lambda s, p, ck: Scope(tuple(s["cities"]), tuple(s["stores"])))


def _panel_post(p, path, ck):
    typ = p["type"]
    opts = WIDGET_OPTIONS[typ].check(p["options"], path + ("options",), ck)
    if opts is BAD:
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
