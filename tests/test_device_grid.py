"""Device grid: cells repaint on change, TTL expiry, roll-up, hover, click, no-CJK font."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QFont

from wallboard.state import Dirty, LiveState
from widgets.base import STATUS_COLORS, PanelContext
from widgets.device_grid import DeviceGridPanel, cell_templates, validate_options, OPTION_SPEC, DEFAULTS

NOW = 1000.0


class Feed:
    """Builds validated-looking event dicts with contiguous seqs."""

    def __init__(self):
        self.seq = 0

    def ev(self, **kw):
        self.seq += 1
        kw.setdefault("ts", NOW)
        kw["seq"] = self.seq
        return kw


def make_state(n_stores=3, per_store=6, ttl=60.0):
    st, f = LiveState(), Feed()
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
    import widgets.device_grid as mod

    def fake_font(size, bold=False):
        f = QFont("No Such Font Family 12345")
        f.setPointSizeF(size)
        f.setBold(bold)
        return f

    monkeypatch.setattr(mod, "ui_font", fake_font)
    st, f = make_state()
    w = DeviceGridPanel(st, {}, PanelContext(lang="zh", clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(600, 300)
    w.show()
    w.refresh(all_dirty(), NOW)
    w.set_dimmed(True)
    assert not w.grab().isNull()


def test_bad_options_reported_defaults_kept():
    clean, errors = validate_options("device_grid", OPTION_SPEC, DEFAULTS,
                                     {"min_cel_px": 5, "order": "best", "min_cell_px": 1, "kinds": "pos"})
    assert clean["order"] == "worst" and clean["min_cell_px"] == 10
    assert "device_grid.options.min_cel_px: unknown option" in errors[0]
    assert "did you mean 'min_cell_px'" in errors[0]
    assert errors[1] == "device_grid.options.order: expected one of worst, fixed, got 'best'"
    assert errors[2] == "device_grid.options.min_cell_px: expected a number in 4..64, got 1"
    assert errors[3] == "device_grid.options.kinds: expected list, got str"
    _, errs = validate_options("device_grid", OPTION_SPEC, DEFAULTS, ["x"])
    assert errs == ["device_grid.options: expected a table of options, got list"]


def test_store_mode_without_store_is_reported(qtbot):
    st, f = make_state()
    w = DeviceGridPanel(st, {"mode": "store"}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    assert w.errors == ['device_grid.options.store: expected a store id with mode = "store"']


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
