"""The map at a glance (issue 12): worst status drawn on top, a click picks the marker
under the pointer (worst first), hover tooltips, "maint" in the legend, English names."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor

from wallboard.state import Dirty, LiveState
from wallboard.widgets.base import STATUS_COLORS, PanelContext
from wallboard.widgets.store_map import StoreMapPanel

from conftest import SeqFeed

NOW = 1000.0


def make(qtbot, lang="en"):
    st, f = LiveState(), SeqFeed()
    evs = []
    # a, b, c: three stores 0.0005 degrees apart (2-3 px at this zoom); d far away
    for i, (sid, lon, status) in enumerate((("a", 121.4700, "ok"), ("b", 121.4705, "crit"),
                                             ("c", 121.4710, "warn"), ("d", 121.60, "maint"))):
        evs.append(f.ev(type="store", id=sid, name=f"鲜达{sid}店", name_en=f"FreshDa {sid.upper()}",
                        city={"id": "sh", "name": "上海", "name_en": "Shanghai"}, lat=31.23, lon=lon,
                        status="open"))
        evs.append(f.ev(type="device", id=f"{sid}-pos", store=sid, kind="pos", status=status, ttl_s=600.0))
    evs.append(f.ev(type="incident", id="i1", title="Payment gateway timeouts", severity="P1", status="open",
                    stores=["b"], opened_at=NOW - 30))
    st.apply(evs, NOW)
    w = StoreMapPanel(st, {}, PanelContext(clock=lambda: NOW, lang=lang))
    qtbot.addWidget(w)
    w.resize(900, 600)
    w.show()
    d = Dirty()
    d.all = True
    w.refresh(d, NOW)
    w.zoom_to(121.45, 31.2, 121.62, 31.26)
    return w, st, f


def test_worst_status_is_drawn_on_top(qtbot):
    w, st, f = make(qtbot)
    order = w.draw_order()
    assert order[-3:] == ["d", "c", "b"]           # maint, warn, crit: the worst painted last
    assert w.markers.data["data"][w.marker_row("b")] == "b"   # the spot table row is b's
    assert w.marker_brush("b") == QColor(STATUS_COLORS["crit"])
    # b recovers: it goes back below; c (warn) is now on top
    w.refresh(st.apply([f.ev(type="device", id="b-pos", status="ok")], NOW + 1), NOW + 1)
    assert w.draw_order()[-1] == "c" and w.draw_order().index("b") < w.draw_order().index("d")
    assert w.markers.data["data"][w.marker_row("b")] == "b"
    assert w.marker_brush("b") == QColor(STATUS_COLORS["ok"])


def test_rows_changed_under_clusters_are_grouped_when_the_markers_show_again(qtbot):
    """While the map shows clusters its hidden markers' rows are not moved one status
    change at a time; zoomed in again they are grouped by severity in one permutation."""
    w, st, f = make(qtbot)
    w.zoom_to(73.0, 18.0, 135.0, 53.0)                  # all of China: clusters
    assert w.clustered
    w.refresh(st.apply([f.ev(type="device", id="b-pos", status="ok"), f.ev(type="device", id="a-pos", status="down"),
                        f.ev(type="device", id="d-pos", status="crit")], NOW + 1), NOW + 1)
    assert w._rows_stale
    w.zoom_to(121.45, 31.2, 121.62, 31.26)
    assert not w.clustered and not w._rows_stale
    assert w.draw_order() == ["b", "c", "d", "a"]        # ok, warn, crit, down: the worst on top
    for s in "abcd":
        assert w.markers.data["data"][w.marker_row(s)] == s
    assert w.marker_brush("a") == QColor(STATUS_COLORS["down"])


def test_click_picks_the_marker_under_the_pointer_worst_first(qtbot):
    w, st, f = make(qtbot)
    px, _ = w.vb.viewPixelSize()
    xa, ya = w._xy[w._index["a"]]
    xb, _ = w._xy[w._index["b"]]
    assert (xb - xa) / px < 6                      # the markers overlap
    with qtbot.waitSignal(w.store_clicked, timeout=1000) as sig:
        w.click_at(xa, ya)                        # under both a (ok) and b (crit): the crit one
    assert sig.args == ["b"]
    assert w.store_at(xa - 30 * px, ya) is None   # beyond every marker
    # once b and c are ok again, all are ok: the nearest one under the pointer
    w.refresh(st.apply([f.ev(type="device", id="b-pos", status="ok"), f.ev(type="device", id="c-pos", status="ok")],
                       NOW + 1), NOW + 1)
    with qtbot.waitSignal(w.store_clicked, timeout=1000) as sig:
        w.click_at(xa, ya)
    assert sig.args == ["a"]
    assert w.store_at(121.53, 31.25) is None      # nothing there


def test_hover_tooltip_names_store_city_status_and_incidents(qtbot):
    w, st, f = make(qtbot)
    x, y = w._xy[w._index["b"]]
    text = w.tooltip_at(x, y)
    assert text.splitlines()[0] == "FreshDa B"
    assert "Shanghai" in text and "open" in text and "crit" in text
    assert "1 open incidents:" in text and "P1 Payment gateway timeouts" in text
    x, y = w._xy[w._index["d"]]
    assert "No open incidents" in w.tooltip_at(x, y) and "maint" in w.tooltip_at(x, y)
    assert w.tooltip_at(121.53, 31.25) is None
    assert w.hover_text(w.vb.mapViewToScene(QPointF(x, y))) == w.tooltip_at(x, y)   # the mouse's path


def test_chinese_tooltip_uses_chinese_names(qtbot):
    w, st, f = make(qtbot, lang="zh")
    x, y = w._xy[w._index["b"]]
    text = w.tooltip_at(x, y)
    assert text.splitlines()[0] == "鲜达b店" and "上海" in text and "严重" in text


def test_cluster_tooltip_counts_its_stores(qtbot):
    w, st, f = make(qtbot)
    w.zoom_to(100, 20, 130, 45)
    assert w.clustered
    item = w.cluster_of("sh")
    text = w.tooltip_at(item.pos().x(), item.pos().y())
    assert text.startswith("Shanghai\n4 stores:") and "1 crit" in text and "1 warn" in text


def test_legend_has_maint(qtbot):
    w, st, f = make(qtbot)
    texts = [t for t, _ in w.overlay.legend_entries()]
    assert "M maint" in texts
    assert texts.index("\u25cf ok") < texts.index("M maint") < texts.index("! warn")


@pytest.mark.parametrize("lang, name", [("en", "FreshDa A"), ("zh", "鲜达a店")])
def test_store_labels_use_the_wall_language(qtbot, lang, name):
    w, st, f = make(qtbot, lang=lang)
    assert w.store_name("a") == name
    assert w.store_name("nope") == "nope"


def test_rows_stay_grouped_by_severity_through_many_changes(qtbot):
    """Each change moves one row by boundary swaps; the table stays sorted and consistent."""
    import random

    from wallboard.widgets.base import STATUS_RANK
    w, st, f = make(qtbot)
    rng = random.Random(7)
    now = NOW
    for _ in range(60):
        now += 0.3
        sid = rng.choice("abcd")
        w.refresh(st.apply([f.ev(type="device", id=f"{sid}-pos", status=rng.choice(
            ["ok", "maint", "warn", "crit", "down", "unknown"]))], now), now)
        ranks = [STATUS_RANK[st.store_worst(s)] for s in w.draw_order()]
        assert ranks == sorted(ranks)
        assert [w.markers.data["data"][w.marker_row(s)] for s in "abcd"] == list("abcd")
        for s in "abcd":
            assert w.marker_brush(s) == QColor(STATUS_COLORS[st.store_worst(s)])


def test_chain_wide_banner_shrinks_before_it_is_cut(qtbot):
    w, st, f = make(qtbot)
    title = "Nationwide price list and promotion sync for the 9.28 opening weekend"
    w.refresh(st.apply([f.ev(type="change", id="c1", title=title, system="pricing", status="running",
                             start=NOW - 10)], NOW + 1), NOW + 1)
    assert w.chain_wide_changes()
    w.resize(960, 500)
    w.grab()
    fit = w.overlay.banner_fits[0]
    assert not fit.elided and title in fit.lines[0] and fit.px < 20   # smaller, whole
    w.resize(500, 400)
    w.grab()
    fit = w.overlay.banner_fits[0]
    assert fit.elided and fit.px == 14                                # cut only at the floor
