"""Device grid: cells repaint on change, TTL expiry, roll-up, hover, click, no-CJK font."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QFont

from wallboard.state import Dirty, LiveState
from wallboard.widgets.base import STATUS_COLORS, PanelContext
from wallboard.widgets.device_grid import SPEC, DeviceGridPanel, cell_templates

from conftest import SeqFeed

NOW = 1000.0


def make_state(n_stores=3, per_store=6, ttl=60.0):
    st, f = LiveState(), SeqFeed()
    evs = []
    for i in range(n_stores):
        sid = f"s{i}"
        evs.append(f.ev(type="store", id=sid, name=f"门店{i}", city={"id": "sh", "name": "上海"},
                        lat=31.2 + i * 0.01, lon=121.4, status="open"))
        for j in range(per_store):
            kind = "pos" if j % 2 else "camera"
            evs.append(f.ev(type="device", id=f"{sid}-d{j}", store=sid, kind=kind, name=f"dev{j}",
                            status="ok", ttl_s=ttl, metrics={"cpu": 10.0 + j}))
    st.apply(evs, NOW)
    return st, f


def all_dirty() -> Dirty:
    d = Dirty()
    d.all = True
    return d


def rgb(name):
    c = QColor(STATUS_COLORS[name])
    return 0xFF000000 | (c.red() << 16) | (c.green() << 8) | c.blue()


@pytest.fixture
def grid(qtbot):
    st, f = make_state()
    ctx = PanelContext(clock=lambda: NOW)
    w = DeviceGridPanel(st, {}, ctx)
    qtbot.addWidget(w)
    w.resize(900, 500)
    w.show()
    w.refresh(all_dirty(), NOW)
    return w, st, f


def test_status_change_repaints_cell(grid):
    w, st, f = grid
    assert w.cell_pixel("s1-d3") == rgb("ok")
    d = st.apply([f.ev(type="device", id="s1-d3", status="down", msg="no link")], NOW + 1)
    w.refresh(d, NOW + 1)
    assert w.cell_pixel("s1-d3") == rgb("down")
    assert w.cell_pixel("s1-d2") == rgb("ok")          # neighbours untouched
    img = w.grab().toImage()                            # and it is what Qt paints
    r = w.cell_rect("s1-d3")
    assert img.pixelColor(r.x() + 1, r.y() + r.height() // 2) == QColor(STATUS_COLORS["down"])


def test_ttl_expiry_turns_unknown_with_hatch(grid):
    w, st, f = grid
    later = NOW + 120
    d = st.tick(later)
    assert "s0-d0" in d.devices
    w.refresh(d, later)
    # hatched unknown: the cell is unknown-grey and not solid (a hatch pattern), never ok
    r = w.cell_rect("s0-d0")
    pix = {int(w._buf[r.y() + dy, r.x() + dx]) for dy in range(r.height()) for dx in range(r.width())}
    assert rgb("ok") not in pix
    assert rgb("unknown") in pix and len(pix) > 1
    assert "past TTL" in w.tooltip_text(r.center())


def test_tooltip_shows_device_status_metrics_message_age(grid):
    w, st, f = grid
    d = st.apply([f.ev(type="device", id="s2-d1", status="warn", msg="paper low")], NOW + 5)
    w.refresh(d, NOW + 5)
    text = w.tooltip_text(w.cell_rect("s2-d1").center())
    assert "dev1" in text and "warn" in text and "cpu = 11" in text and "paper low" in text
    assert "Age: 0s" in text


def test_click_emits_store(grid, qtbot):
    w, st, f = grid
    r = w.cell_rect("s2-d4")
    with qtbot.waitSignal(w.store_clicked, timeout=1000) as sig:
        qtbot.mouseClick(w, Qt.MouseButton.LeftButton, pos=r.center())
    assert sig.args == ["s2"]


def test_worst_first_order(qtbot):
    st, f = make_state(n_stores=4)
    st.apply([f.ev(type="device", id="s3-d0", status="crit")], NOW)
    w = DeviceGridPanel(st, {"order": "worst"}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(900, 500)
    w.refresh(all_dirty(), NOW)
    assert w._order[0] == "s3"
    w2 = DeviceGridPanel(st, {"order": "fixed"}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w2)
    w2.resize(900, 500)
    w2.refresh(all_dirty(), NOW)
    assert w2._order[0] == "s0"


def test_roll_up_when_cells_too_small(qtbot):
    st, f = make_state(n_stores=120, per_store=10)
    w = DeviceGridPanel(st, {"min_cell_px": 10}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(400, 300)
    w.show()
    w.refresh(all_dirty(), NOW)
    assert 0 < len(w.rolled_up) < 120
    rolled = w.rolled_up[0]
    img = w.grab()  # paints the "N stores rolled up" note without error
    assert not img.isNull()
    # a rolled-up store is clickable as one cell
    x, y = w._roll_xy[0]
    store, dev = w.hit(QPoint(int(x) + 2, int(y) + 2))
    assert store == rolled and dev is None


def test_store_mode_big_cells(qtbot):
    st, f = make_state()
    w = DeviceGridPanel(st, {"mode": "store", "store": "s1"}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(800, 500)
    w.show()
    w.refresh(all_dirty(), NOW)
    w.grab()
    store, dev = w.hit(w._store_cells[0][0].center())
    assert store == "s1" and dev.startswith("s1-")
    assert w._store_cells[0][0].width() >= 100


def test_no_cjk_font_renders(qtbot, monkeypatch):
    import wallboard.widgets.device_grid as mod

    from conftest import missing_font

    monkeypatch.setattr(mod, "ui_font", missing_font)
    st, f = make_state()
    w = DeviceGridPanel(st, {}, PanelContext(lang="zh", clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(600, 300)
    w.show()
    w.refresh(all_dirty(), NOW)
    w.set_dimmed(True)
    assert not w.grab().isNull()


def test_bad_options_reported_defaults_kept():
    """The widget checks its options with its spec (the layout's validators and messages):
    each bad key is named, its default stays."""
    clean, errors = SPEC.widget_options({"min_cel_px": 5, "order": "best", "min_cell_px": 1, "kinds": "pos"})
    assert clean["order"] == "worst" and clean["min_cell_px"] == 10 and clean["kinds"] == []
    assert errors[0].startswith('device_grid.options.min_cel_px: unknown key (did you mean "min_cell_px"?)')
    assert errors[1] == 'device_grid.options.order: expected one of "worst", "fixed", got "best"'
    assert errors[2] == "device_grid.options.min_cell_px: out of range: 1; expected an integer at least 4 and at most 64"
    assert errors[3] == 'device_grid.options.kinds: expected an array of device kinds, got a string ("pos")'
    _, errs = SPEC.widget_options(["x"])
    assert errs == ["device_grid.options: expected a table of options, got list"]


def test_store_mode_without_store_is_reported(qtbot):
    st, f = make_state()
    w = DeviceGridPanel(st, {"mode": "store"}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    assert w.errors == ['device_grid.options.store: missing: mode = "store" needs the store id '
                        '(in a kind = "store" layout: store = "{store}")']
    assert w.opts["mode"] == "scope"


def test_templates_have_non_colour_cue():
    t = cell_templates(10)
    for code in range(1, 7):       # every non-ok status carries a pattern
        assert len(set(t[code].ravel().tolist())) == 2
    assert len(set(t[0].ravel().tolist())) == 1


def test_resort_moves_rows_without_full_layout(qtbot):
    st, f = make_state(n_stores=6, per_store=6)
    w = DeviceGridPanel(st, {"order": "worst", "resort_s": 5}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(900, 500)
    w.show()
    w.refresh(all_dirty(), NOW)
    layouts = w.layouts
    assert w._order[0] == "s0"
    top = w.cell_rect("s0-d0")
    d = st.apply([f.ev(type="device", id="s5-d2", status="down")], NOW + 1)
    w.refresh(d, NOW + 1)                               # before resort_s: order kept
    assert w._order[0] == "s0" and w.cell_pixel("s5-d2") == rgb("down")
    d = st.apply([f.ev(type="device", id="s5-d3", status="warn")], NOW + 6)
    w.refresh(d, NOW + 6)                               # due: s5 moves to the top
    assert w._order[0] == "s5"
    assert w.layouts == layouts and w.resorts == 1      # no full layout
    assert w.cell_rect("s5-d0") == top
    assert w.cell_pixel("s5-d2") == rgb("down") and w.cell_pixel("s5-d3") == rgb("warn")
    assert w.cell_pixel("s0-d0") == rgb("ok")           # shifted rows redrawn correctly
    for sid in ("s0", "s1", "s2", "s3", "s4", "s5"):    # hit map follows the new places
        r = w.cell_rect(f"{sid}-d1")
        assert w.hit(r.center()) == (sid, f"{sid}-d1")
    img = w.grab().toImage()                            # and it is what Qt paints
    r = w.cell_rect("s5-d2")
    assert img.pixelColor(r.x() + 1, r.y() + r.height() // 2) == QColor(STATUS_COLORS["down"])


def test_resort_brings_rolled_up_store_back(qtbot):
    st, f = make_state(n_stores=120, per_store=10)
    w = DeviceGridPanel(st, {"min_cell_px": 10, "resort_s": 1}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(400, 300)
    w.show()
    w.refresh(all_dirty(), NOW)
    rolled = w.rolled_up[-1]
    assert w.cell_rect(f"{rolled}-d0") is None
    d = st.apply([f.ev(type="device", id=f"{rolled}-d0", status="crit")], NOW + 2)
    w.refresh(d, NOW + 2)
    assert rolled not in w.rolled_up and w.resorts == 1
    assert w.cell_pixel(f"{rolled}-d0") == rgb("crit")


def test_kind_counts_follow_changes_including_rolled_up(qtbot):
    import random
    st, f = make_state(n_stores=120, per_store=10)
    w = DeviceGridPanel(st, {"min_cell_px": 10, "order": "fixed"}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(400, 300)
    w.refresh(all_dirty(), NOW)
    assert w.rolled_up and int(w._kind_counts.sum()) == 1200     # rolled-up devices count too
    rnd = random.Random(1)
    for k in range(20):
        evs = [f.ev(type="device", id=f"s{rnd.randrange(120)}-d{rnd.randrange(10)}",
                    status=rnd.choice(["ok", "warn", "crit", "down", "maint"])) for _ in range(15)]
        w.refresh(st.apply(evs, NOW + k), NOW + k)
    incremental = w._kind_counts.copy()
    w._count_kinds()
    assert (incremental == w._kind_counts).all()


# --------------------------------------------------------------------------- UI scale (4K wall)


def _grid_at(qtbot, scale, size, n_stores=3, per_store=6, **opts):
    from wallboard.widgets.base import set_ui_scale
    set_ui_scale(scale)   # the shell sets it before building panels; conftest resets it
    st, f = make_state(n_stores=n_stores, per_store=per_store)
    w = DeviceGridPanel(st, opts, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    w.refresh(all_dirty(), NOW)
    return w, st, f


def test_scale_2_doubles_the_1080_layout(qtbot):
    w1, _, _ = _grid_at(qtbot, 1.0, (900, 500))
    g1 = (w1._cell, w1._pitch, w1._header_h, w1._rows[0].label_w, w1._count_w, w1._label_font.pixelSize())
    w2, _, _ = _grid_at(qtbot, 2.0, (1800, 1000))
    g2 = (w2._cell, w2._pitch, w2._header_h, w2._rows[0].label_w, w2._count_w, w2._label_font.pixelSize())
    assert w2._k == 2.0
    for a, b in zip(g1, g2):
        assert abs(b - 2 * a) <= 2 + 0.03 * b, (g1, g2)
    assert w2._label_font.pixelSize() >= 40           # store names readable from 5 m
    assert w2.header_font_px() == 40


def test_scale_2_header_does_not_overlap_the_first_row(qtbot):
    from PySide6.QtGui import QFontMetrics
    from wallboard.widgets._grid_cells import HEAD_PX, KIND_PAD, px
    w, st, f = _grid_at(qtbot, 2.0, (1800, 1000))
    top = min(r.y for r in w._rows)
    assert w._header_h <= top
    f1 = QFont(w._label_font)
    f1.setPixelSize(w.header_font_px())
    base = px(HEAD_PX - 10, 2.0)
    assert base + QFontMetrics(f1).descent() <= px(HEAD_PX, 2.0)      # totals line in its band
    f2 = QFont(w._label_font)
    f2.setPixelSize(w._kind_px())
    fm2 = QFontMetrics(f2)
    kind_base = w._header_h - px(KIND_PAD, 2.0)
    assert kind_base + fm2.descent() <= top                           # kind names above row 1
    assert kind_base - fm2.tightBoundingRect("GATE").height() >= base + QFontMetrics(f1).descent() - 1
    # and on screen: the pixel row just above the first cells is the panel's background
    img = w.grab().toImage()
    r = w.cell_rect("s0-d0")
    assert img.pixelColor(r.x() + 2, r.y() + 3) == QColor(STATUS_COLORS["ok"])
    assert img.pixelColor(r.x() + 2, w._header_h - 1) != QColor(STATUS_COLORS["ok"])


def test_scale_2_clicks_and_tooltips_hit(qtbot):
    w, st, f = _grid_at(qtbot, 2.0, (1800, 1000))
    r = w.cell_rect("s2-d4")
    assert r.width() == w._cell >= 20
    with qtbot.waitSignal(w.store_clicked, timeout=1000) as sig:
        qtbot.mouseClick(w, Qt.MouseButton.LeftButton, pos=r.bottomRight())
    assert sig.args == ["s2"]
    assert w.hit(r.topLeft()) == ("s2", "s2-d4")
    row = w._rows[w._row_of_store["s1"]]
    assert w.hit(QPoint(row.x + row.label_w - 10, row.y + 5)) == ("s1", None)   # the label column
    assert "dev4" in w.tooltip_text(r.center())


def test_scale_2_rolled_up_strip(qtbot):
    w, st, f = _grid_at(qtbot, 2.0, (800, 600), n_stores=120, per_store=10)
    assert 0 < len(w.rolled_up) < 120
    c = w._roll_tmpl.shape[1]
    assert c == 32                                     # ROLL_CELL_PX (16) of a 1080-line wall
    assert int(w._roll_xy[:, 1].min()) >= w._roll_rect.top() + 52   # below the 52 px note
    assert int(w._roll_xy[:, 1].max()) + c <= w.height()
    last = max((r.y + r.h for r in w._rows), default=0)
    assert last <= w._roll_rect.top()                  # rows stay above the strip
    x, y = w._roll_xy[0]
    assert w.hit(QPoint(int(x) + c - 1, int(y) + c - 1)) == (w.rolled_up[0], None)
    assert not w.grab().isNull()


def test_scale_2_store_page(qtbot):
    w, st, f = _grid_at(qtbot, 2.0, (1600, 1000), mode="store", store="s1")
    w.grab()
    cells = [r for r, _ in w._store_cells]
    assert cells[0].top() >= 120 and cells[0].left() >= 32
    assert all(r.right() < w.width() and r.bottom() < w.height() for r in cells)
    assert w.hit(cells[-1].center())[1].startswith("s1-")


def test_rows_fit_the_width_when_cells_can_shrink(qtbot):
    """Many kinds: the cells shrink until the whole row (label, every kind block and the
    counts) fits the panel instead of running off its right edge."""
    from wallboard.state import LiveState
    st, fd = LiveState(), SeqFeed()
    evs = []
    kinds = ["pos", "self_checkout", "scale", "esl_gateway", "camera", "gate", "printer", "ap", "router"]
    for i in range(4):
        evs.append(fd.ev(type="store", id=f"s{i}", name=f"Store {i}", city={"id": "sh", "name": "上海"},
                         lat=31.2, lon=121.4, status="open"))
        for j in range(60):
            evs.append(fd.ev(type="device", id=f"s{i}-d{j}", store=f"s{i}", kind=kinds[j % 9],
                             status="ok", ttl_s=60.0))
    st.apply(evs, NOW)
    for scale, size in ((1.0, (900, 700)), (2.0, (1800, 1400))):
        from wallboard.widgets.base import set_ui_scale
        set_ui_scale(scale)
        w = DeviceGridPanel(st, {}, PanelContext(clock=lambda: NOW))
        qtbot.addWidget(w)
        w.resize(*size)
        w.refresh(all_dirty(), NOW)
        assert not w.rolled_up
        assert int(w._row_box[:, 2].max()) <= w.width()
        assert all(w.cell_rect(f"s3-d{j}").right() < w.width() for j in range(60))


def test_header_line_shrinks_then_cuts_to_fit(qtbot):
    w, st, f = _grid_at(qtbot, 2.0, (1800, 1000))
    assert w.header_font_px() == 40
    w.resize(420, 1000)
    assert 28 <= w.header_font_px() < 40               # shrunk at most to 70%
    assert not w.grab().isNull()                        # and what does not fit is cut with "…"


# --------------------------------------------------------------------------- kinds filter


def _mixed_state(n_stores=4):
    """Stores with two checkout kinds (pos, scale) and two others (camera, ap)."""
    st, f = LiveState(), SeqFeed()
    evs = []
    for i in range(n_stores):
        sid = f"s{i}"
        evs.append(f.ev(type="store", id=sid, name=f"Store {i}", city={"id": "sh", "name": "上海"},
                        lat=31.2, lon=121.4, status="open"))
        for kind, n in (("pos", 2), ("scale", 1), ("camera", 3), ("ap", 1)):
            for j in range(n):
                evs.append(f.ev(type="device", id=f"{sid}-{kind}{j}", store=sid, kind=kind,
                                name=f"{kind} {j}", status="ok", ttl_s=60.0))
    st.apply(evs, NOW)
    return st, f


def test_kinds_option_filters_devices(qtbot):
    st, f = _mixed_state()
    st.apply([f.ev(type="device", id="s3-camera0", status="down")], NOW)   # not a shown kind
    w = DeviceGridPanel(st, {"kinds": ["pos", "scale"]}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(900, 500)
    w.show()
    w.refresh(all_dirty(), NOW)
    assert w._kinds == ["pos", "scale"]
    assert w.cell_rect("s0-pos0") is not None and w.cell_rect("s0-scale0") is not None
    assert w.cell_rect("s0-camera0") is None and w.cell_rect("s0-ap0") is None
    assert int(w._kind_counts.sum()) == 4 * 3                  # only shown kinds are counted
    assert w._order[0] == "s0"                                 # the down camera does not sort
    assert w.store_code_counts("s3")[0] == 3 and sum(w.store_code_counts("s3")) == 3
    texts = [t for t, _, _ in w._header_parts()]
    assert texts[0].startswith("12 devices") and texts[1] == "filtered to:"
    assert texts[2:] == ["pos 8", "scale 4"]
    assert "filtered to: pos, scale" in w.tooltip_text(
        QPoint(w._rows[0].x + 4, w._rows[0].y + 4))
    # a change of a filtered-out device neither lays out again nor shows anywhere
    layouts = w.layouts
    d = st.apply([f.ev(type="device", id="s1-ap0", status="crit"),
                  f.ev(type="device", id="s9-camera0", store="s1", kind="camera", status="ok",
                       ttl_s=60.0)], NOW + 1)
    w.refresh(d, NOW + 1)
    assert w.layouts == layouts and int(w._kind_counts.sum()) == 12
    # a new device of a shown kind does lay out again
    d = st.apply([f.ev(type="device", id="s1-pos9", store="s1", kind="pos", status="warn",
                       ttl_s=60.0)], NOW + 2)
    w.refresh(d, NOW + 2)
    assert w.layouts == layouts + 1 and w.cell_rect("s1-pos9") is not None
    # the store page shows the same kinds
    w.show_store("s2")
    w.grab()
    assert {d.split("-")[1][:-1] for _, d in w._store_cells} == {"pos", "scale"}


def test_kinds_listing_every_kind_is_not_called_filtered(qtbot):
    st, f = _mixed_state()
    w = DeviceGridPanel(st, {"kinds": ["camera", "pos", "scale", "ap"]}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(900, 500)
    w.refresh(all_dirty(), NOW)
    assert w._kinds == ["camera", "pos", "scale", "ap"]        # the given column order
    assert "filtered to:" not in [t for t, _, _ in w._header_parts()]
    w2 = DeviceGridPanel(st, {"kinds": []}, PanelContext(clock=lambda: NOW))   # layouts' default
    qtbot.addWidget(w2)
    w2.resize(900, 500)
    w2.refresh(all_dirty(), NOW)
    assert int(w2._kind_counts.sum()) == 4 * 7 and not w2.errors


def test_bad_kind_entries_reported_default_kept(qtbot):
    st, f = _mixed_state()
    w = DeviceGridPanel(st, {"kinds": ["pos", 3, ""]}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    assert w.errors == [
        "device_grid.options.kinds[1]: expected an id without spaces, got an integer (3)",
        "device_grid.options.kinds[2]: must not be empty"]
    w.resize(900, 500)
    w.refresh(all_dirty(), NOW)
    assert w.opts["kinds"] is None          # the default: every kind, in the standard order


def test_rolled_up_cell_shows_worst_of_shown_kinds_only(qtbot):
    st, f = _mixed_state(n_stores=200)
    st.apply([f.ev(type="device", id="s150-camera1", status="down"),
              f.ev(type="device", id="s160-scale0", status="crit")], NOW)
    w = DeviceGridPanel(st, {"kinds": ["pos", "scale"], "order": "fixed"}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(700, 400)
    w.refresh(all_dirty(), NOW)
    assert "s150" in w.rolled_up and "s160" in w.rolled_up
    assert w.store_code("s150") == 0 and w.store_code("s160") == 4   # ok (camera hidden), crit
    pos = {s: i for i, s in enumerate(w.rolled_up)}
    assert int(w._roll_codes[pos["s160"]]) == 4 and int(w._roll_codes[pos["s150"]]) == 0
    d = st.apply([f.ev(type="device", id="s150-pos1", status="warn")], NOW + 1)
    w.refresh(d, NOW + 1)
    assert int(w._roll_codes[pos["s150"]]) == 2


# --------------------------------------------------------------------------- readable rows


def _double_11_like(n_stores=320):
    """Many stores with ~8 checkout devices each: the double-11 floor grid."""
    st, f = LiveState(), SeqFeed()
    evs = []
    for i in range(n_stores):
        sid = f"s{i}"
        evs.append(f.ev(type="store", id=sid, name=f"FreshDa Hangzhou #{i + 1}", name_en=f"FreshDa Hangzhou #{i + 1}",
                        city={"id": "hz", "name": "杭州", "name_en": "Hangzhou"},
                        lat=30.2, lon=120.2, status="open"))
        for kind, n in (("pos", 3), ("self_checkout", 2), ("scale", 2), ("printer", 1), ("camera", 3)):
            for j in range(n):
                evs.append(f.ev(type="device", id=f"{sid}-{kind}{j}", store=sid, kind=kind,
                                status="warn" if (i % 37 == 5 and kind == "pos") else "ok", ttl_s=600.0))
    st.apply(evs, NOW)
    return st, f


@pytest.mark.parametrize("scale,size", [(1.0, (1280, 1000)), (2.0, (2560, 2000))])
def test_rows_are_drawn_only_with_a_readable_label_else_rolled_up(qtbot, scale, size):
    from PySide6.QtGui import QFontMetrics
    from wallboard.widgets._grid_cells import LABEL_MIN_PX, px
    from wallboard.widgets.base import set_ui_scale
    set_ui_scale(scale)
    st, f = _double_11_like()
    opts = {"mode": "scope", "order": "worst", "min_cell_px": 6,
            "kinds": ["pos", "self_checkout", "scale", "printer"]}
    w = DeviceGridPanel(st, opts, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    w.refresh(all_dirty(), NOW)
    assert w._rows and all(r.label_w > 0 for r in w._rows)          # every drawn row is named
    assert w._label_font.pixelSize() >= px(LABEL_MIN_PX, scale)
    assert w._cell >= w.min_cell() > 6 * scale                       # min_cell_px 6 is not readable
    assert 0 < len(w.rolled_up) < 320 and len(w._rows) + len(w.rolled_up) == 320
    assert w._order[0] in {r.store for r in w._rows}                # the worst stores keep rows
    warn_stores = {f"s{i}" for i in range(320) if i % 37 == 5}
    assert warn_stores <= {r.store for r in w._rows}
    note = w.roll_note_parts()
    assert note[0][0].startswith(f"▦ {len(w.rolled_up)} stores rolled up")
    # the city is not repeated when the name says it, and a name too long for its
    # column keeps the store's number (elided in the middle)
    from wallboard.widgets._grid_cells import LABEL_PAD
    fm = QFontMetrics(w._label_font)
    for row in w._rows:
        name, city = w.row_label(row.store)
        shown = fm.elidedText(name, Qt.TextElideMode.ElideMiddle, row.label_w - 2 * px(LABEL_PAD, scale))
        assert city == "" and shown.endswith(name.split()[-1])
    # rolled-up cells are big enough for their status pattern, and say so on hover
    c = w._roll_tmpl.shape[1]
    assert c >= px(16, scale)
    x, y = w._roll_xy[0]
    assert w.hit(QPoint(int(x) + 1, int(y) + 1)) == (w.rolled_up[0], None)
    assert not w.grab().isNull()


def test_allow_unlabelled_keeps_the_dense_mosaic(qtbot):
    st, f = _double_11_like(200)
    w = DeviceGridPanel(st, {"min_cell_px": 4, "allow_unlabelled": True}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(1000, 800)
    w.refresh(all_dirty(), NOW)
    from wallboard.widgets._grid_cells import labelled_min_cell
    assert w.min_cell() == 4 and not w.rolled_up and w._cell < labelled_min_cell(1.0)


def test_roll_note_counts_bad_rolled_stores_and_more(qtbot):
    st, f = _double_11_like(400)
    st.apply([f.ev(type="device", id="s399-camera0", status="down")], NOW)
    w = DeviceGridPanel(st, {"order": "fixed"}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(400, 260)
    w.refresh(all_dirty(), NOW)
    parts = [t for t, _ in w.roll_note_parts()]
    shown = len(w._roll_xy)
    assert shown < len(w.rolled_up)
    assert f"+{len(w.rolled_up) - shown} more" in parts
    assert "✖1" in parts and any(p.startswith("!") for p in parts)
    w.show()
    assert not w.grab().isNull()


def _laid_out(qtbot, st, options, size):
    """A grid panel of ``size`` over ``st``, laid out at NOW."""
    w = DeviceGridPanel(st, options, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(*size)
    w.refresh(all_dirty(), NOW)
    return w


def test_store_names_sort_by_number(qtbot):
    st, f = _double_11_like(12)
    w = _laid_out(qtbot, st, {"order": "fixed"}, (1200, 900))
    assert w._order[:3] == ["s0", "s1", "s2"] and w._order[-1] == "s11"


def test_roll_note_counts_follow_a_rolled_store_change(qtbot):
    st, f = _double_11_like(200)
    w = DeviceGridPanel(st, {"order": "fixed", "resort_s": 3600}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(700, 400)
    w.refresh(all_dirty(), NOW)
    rolled = w.rolled_up[0]
    assert "✖1" not in [t for t, _ in w.roll_note_parts()]
    d = st.apply([f.ev(type="device", id=f"{rolled}-pos0", status="down")], NOW + 1)
    w.refresh(d, NOW + 1)
    assert "✖1" in [t for t, _ in w.roll_note_parts()]
    assert int(w._roll_codes[0]) == 5


def test_store_codes_match_store_code_one_by_one(qtbot):
    """The vectorised per-store worst code equals the one-by-one lookup, ties between
    unknown and past-TTL included (the first such device decides), and for stores
    without shown devices or not laid out."""
    st, f = make_state(n_stores=6, per_store=6, ttl=60.0)
    later = NOW + 30
    evs = [f.ev(type="device", id="s0-d2", status="down", ts=later),
           f.ev(type="device", id="s1-d1", status="unknown", ts=later),
           f.ev(type="device", id="s2-d4", status="warn", ts=later),
           f.ev(type="device", id="s2-d5", status="maint", ts=later)]
    st.apply(evs, later)
    w = DeviceGridPanel(st, {"order": "fixed"}, PanelContext(clock=lambda: later))
    qtbot.addWidget(w)
    w.resize(900, 500)
    w.refresh(all_dirty(), later)
    # s3: every device past TTL except one reported "unknown" after the first stale one
    w._codes[w._store_start[3]:w._store_start[4]] = 6
    w._codes[w._store_start[3] + 2] = 3
    # s4: an explicit unknown before the stale ones
    w._codes[w._store_start[4]] = 3
    w._codes[w._store_start[4] + 1:w._store_start[5]] = 6
    ids = ["s0", "s1", "s2", "s3", "s4", "s5", "no-such-store"]
    one_by_one = [w.store_code(s) for s in ids]
    assert w.store_codes(ids).tolist() == one_by_one
    assert one_by_one[:5] == [5, 3, 2, 6, 3]
    for s, code in zip(ids, one_by_one):    # a few stores: only their slices are read
        assert w.store_codes([s]).tolist() == [code]
    assert w.store_codes(["s4", "s3"]).tolist() == [3, 6]
    assert w.store_codes([]).tolist() == []


def test_store_ranks_are_the_worst_rank_of_each_store_slice(qtbot):
    import numpy as np
    from wallboard.widgets.device_grid import CODE_RANK
    st, f = make_state(n_stores=5, per_store=4)
    w = DeviceGridPanel(st, {"order": "fixed"}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(900, 500)
    w.refresh(all_dirty(), NOW)
    rng = np.random.default_rng(7)
    for _ in range(5):
        w._codes[:] = rng.integers(0, 7, len(w._codes))
        naive = [max([0] + [int(CODE_RANK[c]) for c in w._codes[w._store_start[k]:w._store_start[k + 1]]])
                 for k in range(len(w._stores))]
        assert w._store_ranks().tolist() == naive


def test_fixed_order_follows_a_renamed_store(qtbot):
    st, f = _double_11_like(12)
    w = DeviceGridPanel(st, {"order": "fixed"}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(1200, 900)
    w.refresh(all_dirty(), NOW)
    assert w._order[0] == "s0"
    st.apply([f.ev(type="store", id="s0", name="zz last")], NOW + 1)
    assert w._sorted_stores(NOW + 1)[-1] == "s0"


def test_filtered_out_device_is_checked_again_when_its_kind_changes(qtbot):
    st, f = _mixed_state()
    w = DeviceGridPanel(st, {"kinds": ["pos", "scale"]}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(900, 500)
    w.refresh(all_dirty(), NOW)
    layouts = w.layouts
    for t in (1, 2):   # the second time it is remembered as not shown: still no layout
        d = st.apply([f.ev(type="device", id="s1-ap0", status="crit" if t == 1 else "ok")], NOW + t)
        w.refresh(d, NOW + t)
        assert w.layouts == layouts and w.cell_rect("s1-ap0") is None
    d = st.apply([f.ev(type="device", id="s1-ap0", store="s1", kind="pos", status="warn",
                       ttl_s=60.0)], NOW + 3)
    w.refresh(d, NOW + 3)
    assert w.layouts == layouts + 1 and w.cell_rect("s1-ap0") is not None


def test_resort_leaves_the_same_pixels_as_a_full_layout(qtbot):
    """The re-sort redraws only moved rows and the rolled-up cells whose status changed;
    the image must still equal what a full layout of the new order draws."""
    import numpy as np
    st, f = make_state(n_stores=120, per_store=10)
    w = DeviceGridPanel(st, {"min_cell_px": 10, "resort_s": 1}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(400, 300)
    w.refresh(all_dirty(), NOW)
    assert len(w.rolled_up) > 10
    bad = [(w.rolled_up[-1], "crit"), (w.rolled_up[3], "warn"), (w._order[1], "down"),
           (w._order[-2], "maint")] + [(s, "maint") for s in w._order[-1:-60:-3]]
    d = st.apply([f.ev(type="device", id=f"{s}-d0", status=v) for s, v in bad], NOW + 2)
    w.refresh(d, NOW + 2)
    assert w.resorts == 1
    fresh = DeviceGridPanel(st, {"min_cell_px": 10, "resort_s": 1}, PanelContext(clock=lambda: NOW + 2))
    qtbot.addWidget(fresh)
    fresh.resize(400, 300)
    fresh.refresh(all_dirty(), NOW + 2)
    assert fresh._order == w._order and fresh.rolled_up == w.rolled_up
    assert np.array_equal(fresh._buf, w._buf)


def test_order_stores_matches_the_plain_sort_as_names_and_ranks_change(qtbot):
    import random
    from wallboard.widgets.device_grid import _name_key
    st, f = make_state(n_stores=30, per_store=1)
    rng = random.Random(3)
    for order in ("worst", "fixed"):
        w = DeviceGridPanel(st, {"order": order}, PanelContext(clock=lambda: NOW))
        qtbot.addWidget(w)
        for step in range(6):
            stores = [f"s{i}" for i in range(30) if step < 3 or i % 4]   # the set changes
            if step % 2:   # renames, with numbers compared by value
                st.apply([f.ev(type="store", id=f"s{rng.randrange(30)}", name=f"店 #{rng.randrange(12)}")],
                         NOW)
            ranks = {s: rng.randrange(6) for s in stores}

            def name(s):
                return _name_key(str(st.stores[s].get("name", s)))
            want = sorted(stores, key=lambda s: (name(s), s)) if order == "fixed" else \
                sorted(stores, key=lambda s: (-ranks[s], name(s), s))
            assert w._order_stores(stores, ranks.__getitem__) == want


def test_store_worst_codes_are_kept_current_by_every_device_change(qtbot):
    """The per-store worst codes the rolled-up cells, the note and the re-sort read are
    updated with each frame's device changes (TTL expiry included) and always equal a
    fresh reduction over the cells."""
    import random
    import numpy as np
    st, f = _double_11_like(200)
    w = _laid_out(qtbot, st, {"order": "fixed", "resort_s": 3600}, (700, 400))
    assert w.rolled_up
    rng = random.Random(5)
    devices = [d for d in st.devices if "camera" not in d]
    for step in range(1, 8):
        now = NOW + step * (100 if step < 6 else 400)   # the last steps: past the TTL
        evs = [f.ev(type="device", id=rng.choice(devices), status=rng.choice(["ok", "warn", "crit", "down", "maint"]),
                    ts=now) for _ in range(40 if step < 6 else 5)]
        d = st.apply(evs, now)
        d.merge(st.tick(now))
        w.refresh(d, now)
        assert w._scode.tolist() == w.store_codes(w._stores).tolist()
        shown = w.rolled_up[:len(w._roll_xy)]
        assert w._roll_codes.tolist() == w.store_codes(shown).tolist()
        counts = np.bincount(w.store_codes(w.rolled_up), minlength=7)
        chips = [t for t, _ in w._status_chips(counts)]
        assert [t for t, _ in w._roll_note_parts()[1:len(chips) + 1]] == chips


def test_a_laid_out_device_moved_to_another_store_is_laid_out_again(qtbot):
    st, f = _double_11_like(12)
    w = _laid_out(qtbot, st, {"order": "fixed"}, (1200, 900))
    layouts = w.layouts
    d = st.apply([f.ev(type="device", id="s1-pos0", status="crit")], NOW + 1)   # a status: no layout
    w.refresh(d, NOW + 1)
    assert w.layouts == layouts
    d = st.apply([f.ev(type="device", id="s1-pos0", store="s2", kind="pos", status="crit")], NOW + 2)
    w.refresh(d, NOW + 2)
    assert w.layouts == layouts + 1
    row = w._rows[w._row_of_store["s2"]]
    r = w.cell_rect("s1-pos0")
    assert row.y <= r.y() < row.y + row.h and w.store_code_counts("s2")[4] == 1


def test_resort_with_rows_of_other_patterns_leaves_the_same_pixels_as_a_full_layout(qtbot):
    """Places whose new store has another cell pattern (other device counts, taller rows)
    are cleared and drawn whole, the others get only their changed cells: the image still
    equals a full layout of the new order."""
    import numpy as np
    st, f = LiveState(), SeqFeed()
    evs = []
    for i in range(60):
        sid = f"s{i}"
        evs.append(f.ev(type="store", id=sid, name=f"门店{i}", city={"id": "sh", "name": "上海"},
                        lat=31.2, lon=121.4, status="open"))
        for j in range(4 + (i % 3) * 9):   # 4, 13 or 22 devices: one, two or three cell lines
            evs.append(f.ev(type="device", id=f"{sid}-d{j}", store=sid, kind="pos" if j % 2 else "camera",
                            status="ok", ttl_s=600.0))
    st.apply(evs, NOW)
    opts = {"min_cell_px": 10, "resort_s": 1}
    w = _laid_out(qtbot, st, opts, (500, 420))
    assert w.rolled_up and len(w._rows) > 5
    for step, picks in enumerate(([w.rolled_up[2], w.rolled_up[-1], w._order[3]], [w._order[0], w.rolled_up[5]]), 1):
        now = NOW + 2 * step
        d = st.apply([f.ev(type="device", id=f"{s}-d1", status=v, ts=now) for s, v in zip(picks, ("down", "crit", "warn"))]
                     + [f.ev(type="device", id=f"{w._order[0]}-d0", status="ok", ts=now)], now)
        w.refresh(d, now)
        assert w.resorts == step
        fresh = DeviceGridPanel(st, opts, PanelContext(clock=lambda: now))
        qtbot.addWidget(fresh)
        fresh.resize(500, 420)
        fresh.refresh(all_dirty(), now)
        assert fresh._order == w._order and np.array_equal(fresh._buf, w._buf)
