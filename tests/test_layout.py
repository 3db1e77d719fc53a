"""wallboard.layout: shipped layouts load; each error kind is precise (path, line, hint);
errors are collected together; the module stays pure. Also the generated alert sounds."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import wave
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wallboard.layout import (
    DEFAULT_LAYOUT_DIR, SOUND_NAMES, SPECS, WIDGET_OPTIONS, WIDGET_TYPES, Layout, LayoutError,
    LayoutIssue, Scope, bind_store, check_layout_files, find_layout, list_layouts,
    MAX_FILE_BYTES, check_layout_name, load_layout, load_layout_text,
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ["overview", "launch-928", "double-11", "store"]

MINIMAL = """\
[event]
title = "Test"

[[screens]]
name = "main"
columns = 4
rows = 2

[[screens.panels]]
type = "incident_board"
at = [0, 0]
span = [2, 2]

[[screens.panels]]
type = "device_grid"
at = [2, 0]
span = [2, 2]
[screens.panels.options]
order = "worst"
"""


def issues(text: str, name: str = "t.toml") -> list[LayoutIssue]:
    with pytest.raises(LayoutError) as exc:
        load_layout_text(text, name)
    return exc.value.issues


def one(text: str) -> LayoutIssue:
    found = issues(text)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


# --------------------------------------------------------------------------- shipped


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_layout_loads(name):
    lay = load_layout(find_layout(name))
    assert isinstance(lay, Layout)
    assert lay.name == name
    assert lay.screens and all(s.panels for s in lay.screens)
    assert lay.windows()
    for s in lay.screens:
        for p in s.panels:
            assert p.type in WIDGET_TYPES
            assert p.title and p.title_zh
            assert set(p.options) == set(WIDGET_OPTIONS[p.type].fields)


def test_shipped_layouts_are_all_listed_and_checked():
    names = [p.stem for p in list_layouts(DEFAULT_LAYOUT_DIR)]
    assert set(SHIPPED) <= set(names)
    ok, report = check_layout_files(list_layouts(DEFAULT_LAYOUT_DIR))
    assert ok, report
    assert f"{len(names)} file(s) checked, 0 with errors" in report


def test_launch_928_event_scope_and_windows():
    lay = load_layout(find_layout("launch-928"))
    assert lay.event.scope.cities == ("shanghai", "hangzhou", "nanjing", "suzhou", "chengdu")
    tz = timezone(timedelta(hours=8))
    assert lay.event.starts_at == datetime(2026, 9, 28, 9, 28, tzinfo=tz)
    assert lay.event.freeze and lay.event.freeze[0].end > lay.event.freeze[0].start
    wins = lay.windows()
    assert [w.rotating for w in wins] == [False, True]
    assert wins[0].screen == 0 and wins[1].screen == 1
    assert [(p.screen.name, p.duration_s) for p in wins[1].pages] == [("devices", 60), ("cities", 30)]
    assert lay.rotation.enabled


def test_kpi_metrics_are_the_simulator_names():
    import tomllib

    from wallboard.hub.simulator import SCENARIO_DIR

    known = {k["metric"] for f in SCENARIO_DIR.glob("*.toml")
             for k in tomllib.loads(f.read_text(encoding="utf-8")).get("kpis", [])}
    assert {"orders_per_s", "payment_success_rate", "queue_len"} <= known
    for name in SHIPPED:
        lay = load_layout(find_layout(name))
        for s in lay.screens:
            for p in s.panels:
                for item in p.options.get("tiles", []) + p.options.get("series", []):
                    assert item["metric"] in known, (name, item)
                    if item["metric"] == "payment_success_rate" and "unit" in item:
                        assert item["unit"] == "%"


def test_store_layout_is_a_template_bound_at_run_time():
    lay = load_layout(find_layout("store"))
    assert lay.kind == "store" and lay.event.scope.chain_wide
    grid = next(p for p in lay.screens[0].panels if p.type == "device_grid")
    assert grid.options["mode"] == "store"
    bound = bind_store(lay, "sh-001", "sh", "Jing'an")
    assert bound.event.scope == Scope(cities=("sh",), stores=("sh-001",))
    assert bound.event.title == "Store Jing'an"
    tiles = next(p for p in bound.screens[0].panels if p.type == "kpi_tiles").options["tiles"]
    assert {t["scope"] for t in tiles} == {"store:sh-001"}
    assert lay.screens[0].panels[1].options["tiles"][0]["scope"] == "store:{store}"  # untouched
    with pytest.raises(ValueError):
        bind_store(load_layout(find_layout("overview")), "sh-001")
    with pytest.raises(ValueError):
        bind_store(lay, "")


def test_defaults_are_filled_in():
    lay = load_layout_text(MINIMAL, "mini.toml")
    assert lay.name == "mini" and lay.theme == "dark" and lay.frame_rate == 30
    assert lay.sound.p1 == "p1_alarm" and lay.sound.enabled
    assert not lay.rotation.enabled and lay.rotation.pages == ()
    board, grid = lay.screens[0].panels
    assert board.options == {"flash_s": 120, "resolved_keep_s": 300, "max_rows": 12}
    assert board.stale_after_s == 120 and board.title == "Incidents"
    assert grid.options["mode"] == "scope" and grid.options["kinds"] == []
    assert (grid.col, grid.row, grid.cols, grid.rows) == (2, 0, 2, 2)
    assert [w.pages[0].screen.name for w in lay.windows()] == ["main"]


def test_rfc3339_string_accepted_for_times():
    text = MINIMAL.replace('title = "Test"', 'title = "Test"\nstarts_at = "2026-09-28T09:28:00+08:00"')
    lay = load_layout_text(text)
    assert lay.event.starts_at.utcoffset() == timedelta(hours=8)


# --------------------------------------------------------------------------- each error kind


def test_unknown_key_with_hint_and_line():
    text = MINIMAL.replace('order = "worst"', 'oder = "worst"')
    err = one(text)
    assert err.path == "screens[0].panels[1].options.oder"
    assert 'unknown key (did you mean "order"?)' in err.message
    assert err.line == line_of(text, "oder")
    assert str(err).startswith(f"t.toml:{err.line}: screens[0].panels[1].options.oder: unknown key")


def test_unknown_top_level_key():
    err = one("frame_rat = 30\n" + MINIMAL)
    assert (err.path, err.line) == ("frame_rat", 1)
    assert 'did you mean "frame_rate"?' in err.message


def test_unknown_key_written_only_in_a_table_header_has_its_line():
    """``[panels.map.options]`` (the old assets/README.md example) names its line."""
    text = MINIMAL + '\n[panels.map.options]\nprovinces = "p.geojson"\n'
    err = one(text)
    assert (err.path, err.line) == ("panels", line_of(text, "[panels.map.options]"))
    assert str(err).startswith(f"t.toml:{err.line}: panels: unknown key; expected one of: schema,")


def test_wrong_type():
    text = MINIMAL.replace("rows = 2", 'rows = "2"')
    err = one(text)
    assert err.path == "screens[0].rows"
    assert err.message == 'expected an integer, got a string ("2")'
    assert err.line == line_of(text, 'rows = "2"')


def test_bool_is_not_an_integer():
    err = one(MINIMAL.replace("rows = 2", "rows = true"))
    assert err.message == "expected an integer, got a boolean (true)"


def test_bad_enum_with_hint():
    text = MINIMAL.replace('order = "worst"', 'order = "worts"')
    err = one(text)
    assert err.path == "screens[0].panels[1].options.order"
    assert err.message == 'expected one of "worst", "fixed", got "worts" (did you mean "worst"?)'
    assert err.line == line_of(text, "worts")


def test_bad_widget_type():
    err = one(MINIMAL.replace('type = "device_grid"', 'type = "device-grid"'))
    assert err.path == "screens[0].panels[1].type"
    assert 'got "device-grid" (did you mean "device_grid"?)' in err.message


def test_out_of_range():
    text = MINIMAL.replace('order = "worst"', "min_cell_px = 1")
    err = one(text)
    assert err.path == "screens[0].panels[1].options.min_cell_px"
    assert err.message == "out of range: 1; expected an integer at least 4 and at most 64"
    assert err.line == line_of(text, "min_cell_px")


def test_overlap():
    text = MINIMAL.replace("at = [2, 0]", "at = [1, 0]").replace("span = [2, 2]\n[screens", "span = [1, 2]\n[screens")
    err = one(text)
    assert err.path == "screens[0].panels[1].at"
    assert err.message == ('panel overlaps screens[0].panels[0] (incident_board "Incidents") '
                           "at cell (col 1, row 0)")
    assert err.line == line_of(text, "at = [1, 0]")


def test_out_of_grid_span_and_cell():
    text = MINIMAL.replace("at = [2, 0]\nspan = [2, 2]", "at = [2, 0]\nspan = [3, 2]")
    err = one(text)
    assert err.path == "screens[0].panels[1].span"
    assert "beyond the 4 x 2 grid (cols 0..3, rows 0..1)" in err.message
    assert "cols 2..4" in err.message
    err = one(MINIMAL.replace("at = [2, 0]", "at = [2, 5]"))
    assert err.path == "screens[0].panels[1].at"
    assert err.message == "cell (col 2, row 5) is outside the 4 x 2 grid (cols 0..3, rows 0..1)"


def test_missing_required():
    text = MINIMAL.replace('type = "incident_board"\n', "")
    err = one(text)
    assert err.path == "screens[0].panels[0].type"
    assert err.message.startswith('missing required key (one of "store_map"')
    assert err.line == 9  # the [[screens.panels]] header of that panel
    err = one(MINIMAL.replace('title = "Test"', ""))
    assert (err.path, err.line) == ("event.title", 1)


def test_missing_required_option():
    text = MINIMAL.replace('type = "device_grid"', 'type = "text"').replace('order = "worst"', "")
    err = one(text)
    assert err.path == "screens[0].panels[1].options.text"
    assert err.message == "missing required key (a string)"
    assert err.line == line_of(text, "[screens.panels.options]")


def test_toml_syntax_error_has_line_and_column():
    text = MINIMAL.replace("rows = 2", "rows == 2")
    err = one(text)
    assert err.line == line_of(text, "rows == 2") and err.column is not None
    assert err.message.startswith("TOML syntax error: ")
    assert str(err).startswith(f"t.toml:{err.line}:{err.column}: TOML syntax error")
    err = one("a = [1,\n")
    assert err.line == 1 and err.message.endswith("at end of file")


def test_time_without_offset():
    text = MINIMAL.replace('title = "Test"', 'title = "Test"\nstarts_at = 2026-09-28T09:28:00')
    err = one(text)
    assert err.path == "event.starts_at" and err.line == 3
    assert "has no UTC offset" in err.message and "+08:00" in err.message


def test_inline_table_array_element_line():
    text = MINIMAL.replace('type = "device_grid"', 'type = "kpi_tiles"').replace(
        'order = "worst"',
        'tiles = [\n  { metric = "gmv" },\n  { metric = "queue_len", direction = "up" },\n]')
    err = one(text)
    assert err.path == "screens[0].panels[1].options.tiles[1].direction"
    assert err.line == line_of(text, 'direction = "up"')


def test_kpi_threshold_order_and_scope_format():
    text = MINIMAL.replace('type = "device_grid"', 'type = "kpi_tiles"').replace(
        'order = "worst"',
        'tiles = [{ metric = "payment_success_rate", warn = 97, crit = 99, direction = "down_bad" },\n'
        '  { metric = "gmv", scope = "sh" }]')
    found = issues(text)
    assert [i.path for i in found] == ["screens[0].panels[1].options.tiles[0].warn",
                                       "screens[0].panels[1].options.tiles[1].scope"]
    assert "warn (97) must be above crit (99)" in found[0].message
    assert found[1].message == 'expected "global", "city:ID" or "store:ID", got "sh"'


def test_rotation_refers_to_unknown_screen():
    text = MINIMAL + '\n[rotation]\n[[rotation.pages]]\nscreen = "mian"\nduration_s = 20\n'
    err = one(text)
    assert err.path == "rotation.pages[0].screen"
    assert 'no screen named "mian" (did you mean "main"?)' in err.message
    assert err.line == line_of(text, 'screen = "mian"')


def test_enabled_rotation_needs_pages_and_duplicate_screen_names():
    err = one(MINIMAL + "\n[rotation]\nenabled = true\n")
    assert err.path == "rotation.pages" and "at least one page" in err.message
    dup = MINIMAL + MINIMAL[MINIMAL.index("[[screens]]"):]
    err = one(dup)
    assert err.path == "screens[1].name" and 'duplicate screen name "main"' in err.message
    assert err.line == 21  # the second name = "main"
    assert dup.splitlines()[20] == 'name = "main"'


def test_placeholder_only_in_store_layouts():
    err = one(MINIMAL.replace('title = "Test"', 'title = "Store {store}"'))
    assert err.path == "event.title"
    assert err.message == 'placeholder {store} is only allowed in a layout with kind = "store"'
    err = one('kind = "store"\n' + MINIMAL.replace(
        'title = "Test"', 'title = "T"\nscope = { stores = ["sh-001"] }'))
    assert err.path == "event.scope" and "at run time" in err.message


def test_sound_names_checked():
    err = one(MINIMAL + '\n[sound]\np1 = "p1_alarms"\n')
    assert err.path == "sound.p1" and 'did you mean "p1_alarm"?' in err.message


def test_all_errors_reported_together_in_line_order():
    text = """\
theme = "drak"
frame_rat = 30

[event]
title = "X"

[[screens]]
name = "a"
columns = 4
rows = 2

[[screens.panels]]
type = "store-map"
at = [0, 0]

[[screens.panels]]
type = "device_grid"
at = [1, 0]
span = [3, 3]
[screens.panels.options]
oder = "worst"

[[screens.panels]]
type = "text"
at = [0, 1]
"""
    exc = pytest.raises(LayoutError, load_layout_text, text, "multi.toml").value
    got = [(i.line, i.path) for i in exc.issues]
    assert got == [
        (1, "theme"),
        (2, "frame_rat"),
        (13, "screens[0].panels[0].type"),
        (19, "screens[0].panels[1].span"),
        (21, "screens[0].panels[1].options.oder"),
        (23, "screens[0].panels[2].options.text"),
    ]
    msg = str(exc)
    assert msg.startswith("6 errors in layout multi.toml:\n  multi.toml:1: theme: ")
    assert exc.errors == exc.issues


Q3, L3 = '"' * 3, "'" * 3
EDGE_TOML = "\n".join([
    'a."b c" = 1',
    '"中文" = { x = ' + Q3 + 'q\\"' + Q3 + ', y = [1, [2, 3], {z = \'w\'}] }',
    "m = " + Q3,
    "multi \\" + Q3 + " still",
    Q3,
    "lit = " + L3 + "it's" + L3,
    "[t]",
    "k = [",
    "  { a = 1 },  # c",
    '  { b = "]" },',
    "]",
    "[[t.arr]]",
    "v = 1",
    "[[t.arr]]",
    "v = 2",
    "",
])


def test_line_index_follows_toml_constructs():
    import tomllib

    from wallboard.layout.lines import LineIndex

    assert tomllib.loads(EDGE_TOML)["m"] == 'multi """ still\n'
    li = LineIndex(EDGE_TOML)
    assert li.line(("a", "b c")) == 1
    assert li.line(("中文", "y", 2, "z")) == 2
    assert li.line(("m",)) == 3 and li.line(("lit",)) == 6
    assert li.line(("t", "k", 1, "b")) == 10
    assert li.line(("t", "arr", 1, "v")) == 15
    assert li.line(("t", "arr", 1, "nope")) == 14      # falls back to the nearest parent
    assert li.line(("nowhere",)) is None


def test_deep_nesting_is_a_layout_error():
    err = one("a = " + "[" * 3000 + "]" * 3000)
    assert err.message == "TOML nested too deeply"


_EDIT = st.sampled_from(list("[]{}\"'=,.#\n 0123456789abcxyz_-:+T") + ["[[screens]]", Q3])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(SHIPPED), edits=st.lists(
    st.tuples(st.floats(0, 1), st.integers(0, 12), st.lists(_EDIT, max_size=4)),
    min_size=1, max_size=4))
def test_mutated_layouts_give_a_layout_or_issues_never_a_crash(name, edits):
    text = (DEFAULT_LAYOUT_DIR / f"{name}.toml").read_text(encoding="utf-8")
    for where, cut, insert in edits:
        i = int(where * len(text))
        text = text[:i] + "".join(insert) + text[i + cut:]
    try:
        load_layout_text(text, f"{name}.toml")
    except LayoutError as exc:
        n_lines = text.count("\n") + 1
        assert exc.issues
        for issue in exc.issues:
            assert issue.line is None or 1 <= issue.line <= n_lines
            assert str(issue).startswith(f"{name}.toml")


# --------------------------------------------------------------------------- files


def test_load_layout_file_errors(tmp_path):
    with pytest.raises(LayoutError, match="cannot read"):
        load_layout(tmp_path / "nope.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[event]\ntitle = "caf\xe9"\n')
    e = pytest.raises(LayoutError, load_layout, bad).value
    assert e.issues[0].line == 2 and "not UTF-8" in e.issues[0].message


def test_find_layout_by_name_path_and_hint(tmp_path):
    assert find_layout("launch-928") == DEFAULT_LAYOUT_DIR / "launch-928.toml"
    mine = tmp_path / "mine.toml"
    mine.write_text(MINIMAL, encoding="utf-8")
    assert find_layout(str(mine)) == mine
    assert find_layout("mine", [tmp_path, DEFAULT_LAYOUT_DIR]) == mine
    e = pytest.raises(LayoutError, find_layout, "launch-982").value
    assert 'no layout named "launch-982" (did you mean "launch-928"?)' in str(e)
    with pytest.raises(LayoutError, match="no such layout file"):
        find_layout(str(tmp_path / "missing.toml"))
    assert list_layouts(tmp_path / "absent") == []


def test_check_layout_files_report(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(MINIMAL, encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL.replace("rows = 2", 'rows = "2"'), encoding="utf-8")
    ok, report = check_layout_files([good, bad])
    assert not ok
    assert f"ok   {good}: good (1 screens, 2 panels)" in report
    assert f"FAIL {bad}: 1 error(s)" in report
    assert f'  {bad}:7: screens[0].rows: expected an integer, got a string ("2")' in report
    assert report.endswith("2 file(s) checked, 1 with errors (1 error(s))")
    assert check_layout_files([good])[0]
    assert not check_layout_files([])[0]


def test_map_files_resolved_and_checked(tmp_path):
    text = MINIMAL.replace('type = "device_grid"', 'type = "store_map"').replace(
        'order = "worst"', 'basemap_extra = ["extra/roads.geojson"]\nprovinces = "prov.json"')
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    lay = load_layout(path)
    target = tmp_path / "extra" / "roads.geojson"
    opts = lay.screens[0].panels[1].options
    assert opts["basemap_extra"] == [str(target.resolve())]
    assert opts["provinces"] == str((tmp_path / "prov.json").resolve())
    ok, report = check_layout_files([path])
    assert not ok and report.count("file not found") == 2
    line = text.splitlines().index('basemap_extra = ["extra/roads.geojson"]') + 1
    assert (f"  {path}:{line}: screens[0].panels[1].options.basemap_extra[0]: file not found: "
            f"{target.resolve()}") in report
    assert f"  {path}:{line + 1}: screens[0].panels[1].options.provinces: file not found:" in report
    target.parent.mkdir()
    target.write_text("{}", encoding="utf-8")
    (tmp_path / "prov.json").write_text("{}", encoding="utf-8")
    assert check_layout_files([path])[0]


def test_device_grid_store_mode_needs_a_store():
    err = one(MINIMAL.replace('order = "worst"', 'mode = "store"'))
    assert err.path == "screens[0].panels[1].options.store"
    assert err.message.startswith('missing: mode = "store" needs the store id')
    err = one(MINIMAL.replace('order = "worst"', 'store = "sh-001"'))
    assert err.message == 'only used with mode = "store"'
    err = one(MINIMAL.replace('order = "worst"', "min_cell_px = 40\nmax_cell_px = 20"))
    assert err.path.endswith("max_cell_px") and "below min_cell_px (40)" in err.message


def test_options_are_accepted_by_the_widgets():
    """The layout and the widgets check options with the same spec: each shipped panel's
    options, as the shell passes them (None left out), pass the widget's own check, and
    the KPI widgets build their tiles / series from them."""
    from wallboard.app.panels import PANEL_MODULES
    from wallboard.layout.specs.spec import unset_removed
    from wallboard.widgets import kpi_chart, kpi_tiles

    assert set(PANEL_MODULES) == set(SPECS) == set(WIDGET_TYPES)
    checked = 0
    for name in SHIPPED:
        lay = load_layout(find_layout(name))
        if lay.kind == "store":
            lay = bind_store(lay, "sh-001", "sh", "Jing'an")
        for s in lay.screens:
            for p in s.panels:
                opts = unset_removed(dict(p.options))
                clean, errors = SPECS[p.type].widget_options(opts)
                assert errors == [], (name, p.type, errors)
                assert clean == SPECS[p.type].options_or_raise(clean)   # idempotent
                if p.type == "kpi_tiles":
                    kpi_tiles.parse_tiles(opts["tiles"])
                elif p.type == "kpi_chart":
                    kpi_chart.parse_options(opts)
                checked += 1
    assert checked >= 15


def test_widget_modules_use_their_spec():
    """Each widget module checks its options with its own spec object (no second copy)."""
    import importlib

    for typ, spec in SPECS.items():
        mod = importlib.import_module(spec.module)
        assert mod.SPEC is spec, typ


def test_docs_mention_every_key():
    doc = (ROOT / "docs" / "layouts.md").read_text(encoding="utf-8")
    for typ, table in WIDGET_OPTIONS.items():
        assert f"`{typ}`" in doc
        for key in table.fields:
            assert f"`{key}`" in doc, (typ, key)
    for key in ("stale_after_s", "span", "duration_s", "escalate_after_s", "freeze", "kind"):
        assert f"`{key}`" in doc


#: The mistakes docs/layouts.md shows the report of (put into launch-928.toml).
DOC_MISTAKES = [
    ("frame_rate = 30", "frame_rat = 30"),
    ("starts_at = 2026-09-28T09:28:00+08:00", "starts_at = 2026-09-28T09:28:00"),
    ('lanes = "city"', 'lanes = "cities"'),
    ("min_cell_px = 14", 'min_cell_px = 1\noder = "worst"'),
    ('type = "voice_feed"', 'type = "voice-feed"'),
    ("at = [8, 2]\nspan = [4, 6]", "at = [7, 2]\nspan = [4, 6]"),
    ('screen = "cities"\nduration_s = 30', 'screen = "citys"\nduration_s = 30'),
]


def doc_error_report() -> str:
    text = (DEFAULT_LAYOUT_DIR / "launch-928.toml").read_text(encoding="utf-8")
    for old, new in DOC_MISTAKES:
        assert old in text, old
        text = text.replace(old, new, 1)
    return str(pytest.raises(LayoutError, load_layout_text, text, "launch-928.toml").value)


def test_docs_error_report_is_real():
    doc = (ROOT / "docs" / "layouts.md").read_text(encoding="utf-8")
    assert "```text\n" + doc_error_report() + "\n```" in doc


def test_docs_full_example_is_valid():
    doc = (ROOT / "docs" / "layouts.md").read_text(encoding="utf-8")
    start = doc.index("```toml\n") + len("```toml\n")
    example = doc[start:doc.index("```", start)]
    lay = load_layout_text(example, "example.toml")
    assert len(lay.screens) >= 2 and lay.rotation.enabled


# --------------------------------------------------------------------------- purity


def test_import_pulls_in_no_qt_or_network():
    code = ("import sys, wallboard.layout\n"
            "bad = [m for m in ('PySide6', 'websockets', 'asyncio', 'numpy') if m in sys.modules]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


# --------------------------------------------------------------------------- sounds


def _make_sounds():
    spec = importlib.util.spec_from_file_location("make_sounds", ROOT / "tools" / "make_sounds.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", [n for n in SOUND_NAMES if n != "none"])
def test_sound_files_exist_and_fit(name):
    path = ROOT / "assets" / "sounds" / f"{name}.wav"
    assert path.stat().st_size < 50_000
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 22050)
        assert w.getnframes() / w.getframerate() < 1.0
    assert _make_sounds().matches(path, _make_sounds().render(name))


def test_sound_generator_covers_layout_names_and_check_mode(tmp_path):
    mod = _make_sounds()
    assert set(mod.SOUNDS) == set(SOUND_NAMES) - {"none"}
    assert mod.main(["--out", str(tmp_path)]) == 0
    assert mod.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "p2_chime.wav").write_bytes(b"RIFF")
    assert mod.main(["--out", str(tmp_path), "--check"]) == 1


@pytest.mark.parametrize("name", ["launch-928", "double-11", "overview", "my_layout.v2", "A1"])
def test_layout_names_are_accepted(name):
    check_layout_name(name)


@pytest.mark.parametrize("name", ["../../../etc/passwd", "/etc/passwd", "a/b", "a\\b", "..", ".hidden",
                                  "x.toml", "X.TOML", "", " ", "a..b", "a\nb", "x" * 101, "-x"])
def test_paths_and_odd_names_are_refused_with_the_known_layouts(name):
    with pytest.raises(LayoutError) as e:
        check_layout_name(name, ["launch-928", "overview"])
    (issue,) = e.value.issues
    assert issue.message == ("not a layout name: expected letters, digits, '-', '_', '.' (at most 100 "
                             "characters), never a path or a file; known: launch-928, overview")


def test_a_huge_file_is_refused_after_reading_only_the_limit(tmp_path):
    """A 1 GB file took the wall to 1.1 GB RSS: it was read whole, then cut."""
    import tracemalloc

    big = tmp_path / "big.toml"
    with big.open("wb") as f:
        f.truncate(200 * MAX_FILE_BYTES)               # sparse: 200 MB that cost no disk
    tracemalloc.start()
    try:
        with pytest.raises(LayoutError, match=f"file larger than {MAX_FILE_BYTES} bytes"):
            load_layout(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_FILE_BYTES, peak


def test_docs_widget_tables_are_generated_from_the_specs():
    """docs/layouts.md's table of widget types and each widget's options table are what
    the specs generate (so the docs cannot drift from what the layout accepts)."""
    from wallboard.layout.specs.docs import block_names, render_docs

    text = (ROOT / "docs" / "layouts.md").read_text(encoding="utf-8")
    assert block_names(text) == ["widget-types"] + [f"options {t}" for t in SPECS]
    assert text == render_docs(text), \
        "stale: run python -m wallboard.layout.specs.docs --write docs/layouts.md"
    assert "| `allow_unlabelled` | boolean | false |" in text


def test_docs_generator_refuses_an_unknown_block(tmp_path):
    from wallboard.layout.specs.docs import main, render_docs

    with pytest.raises(ValueError, match="unknown generated block 'options store-map': expected "
                       "widget-types or options TYPE"):
        render_docs("<!-- generated: options store-map -->\n<!-- end generated -->\n")
    f = tmp_path / "x.md"
    f.write_text("<!-- generated: options text -->\nold\n<!-- end generated -->\n", encoding="utf-8")
    assert main([str(f)]) == 1                       # stale: the check fails
    assert main([str(f), "--write"]) == 0 and main([str(f)]) == 0
    assert "| `text_zh` | string |" in f.read_text(encoding="utf-8")
