"""Change timeline: bars grow with the clock, flags, suspect highlighting, options."""
from __future__ import annotations

import pytest

from wallboard.state import Dirty, LiveState
from wallboard.widgets.base import PanelContext
from wallboard.widgets.change_timeline import ChangeTimelinePanel
from conftest import feed_events as feed

NOW = 1_760_000_000.0



def make(qtbot, events=(), options=None, now=NOW, **ctx_kw):
    st = LiveState()
    if events:
        feed(st, list(events), now)
    panel = ChangeTimelinePanel(st, options or {}, PanelContext(clock=lambda: now, **ctx_kw))
    qtbot.addWidget(panel)
    panel.resize(1400, 500)
    panel.refresh(Dirty.everything(), now)
    return st, panel


def change(cid, **kw):
    ev = {"type": "change", "id": cid, "title": f"change {cid}", "system": "POS", "status": "succeeded",
          "start": NOW - 1800, "end": NOW - 1200, "approved": True}
    ev.update(kw)
    return ev


def test_running_change_grows_with_the_clock(qtbot):
    st, panel = make(qtbot, [change("c1", status="running", start=NOW - 600, end=None)])
    item = panel.items
    assert panel.bars["c1"].x1 == pytest.approx(NOW)
    assert panel.bars["c1"].open_end
    panel.refresh(Dirty(), NOW + 10.2)
    assert panel.bars["c1"].x1 == pytest.approx(NOW + 10.2)
    assert panel.now_line.value() == pytest.approx(NOW + 10.2)
    assert panel.items is item  # the same pyqtgraph item, updated in place
    lo, hi = panel.vb.viewRange()[0]
    assert lo < NOW + 10 < hi


def test_idle_frames_within_a_second_do_not_rebuild(qtbot):
    st, panel = make(qtbot, [change("c1")])
    panel.refresh(Dirty(), NOW + 0.1)
    n = panel.frames_rebuilt
    for k in range(5):
        panel.refresh(Dirty(), NOW + 0.2 + k * 0.1)
    assert panel.frames_rebuilt == n
    panel.refresh(feed(st, [change("c2", status="running", end=None)], NOW + 0.8), NOW + 0.8)
    assert panel.frames_rebuilt == n + 1
    assert "c2" in panel.bars


def test_unapproved_change_in_freeze_window_is_flagged(qtbot):
    freeze = [{"start": NOW - 3600, "end": NOW + 3600, "label": "Opening freeze"}]
    st, panel = make(qtbot, [
        change("bad", approved=False, start=NOW - 900, end=NOW - 300),
        change("early", approved=True, start=NOW - 7000, end=NOW - 6000),
        change("frozen", approved=True, start=NOW - 600, end=NOW - 100),
    ], {"freeze": freeze})
    assert panel.flags("bad") == {"unapproved", "freeze"}
    assert panel.flags("early") == set()
    assert panel.flags("frozen") == {"freeze"}
    assert "2 in freeze" in panel.header.text() and "1 unapproved" in panel.header.text()


def test_change_without_approval_field_counts_as_unapproved(qtbot):
    ev = change("c1")
    del ev["approved"]
    st, panel = make(qtbot, [ev])
    assert "unapproved" in panel.flags("c1")


def test_selecting_an_incident_highlights_its_suspects(qtbot):
    events = [
        {"type": "store", "id": "s1", "name": "Store 1", "city": {"id": "sh", "name": "Shanghai"}},
        change("bad", status="failed", approved=False, start=NOW - 1500, end=NOW - 1300,
               scope={"cities": ["sh"]}, title="POS 4.2 rollout"),
        change("far", start=NOW - 9000, end=NOW - 8500, system="ESL"),
        {"type": "incident", "id": "i1", "title": "Payments down", "severity": "P3", "status": "open",
         "opened_at": NOW - 1200, "stores": ["s1"]},
    ]
    st, panel = make(qtbot, events)
    assert panel.selected_incident is None  # P3 is not auto-selected
    panel.select_incident("i1")
    assert panel.suspect_ids[0] == "bad"
    assert "far" not in panel.suspect_ids
    assert panel.items.selected == "i1" and panel.items.suspects[0] == "bad"
    assert "POS 4.2 rollout" in panel.info.text()
    assert "i1" in panel.markers


def test_new_p1_is_selected_automatically(qtbot):
    st, panel = make(qtbot, [change("c1", status="running", end=None, start=NOW - 300)])
    with qtbot.waitSignal(panel.incident_selected, timeout=1000) as sig:
        d = feed(st, [{"type": "incident", "id": "p1", "title": "All POS down", "severity": "P1",
                       "status": "open", "opened_at": NOW}], NOW + 1)
        panel.refresh(d, NOW + 1)
    assert sig.args == ["p1"]
    assert panel.selected_incident == "p1"
    assert "c1" in panel.suspect_ids  # chain-wide running change


def test_city_lanes_use_city_names(qtbot):
    events = [
        {"type": "store", "id": "s1", "name": "静安店", "city": {"id": "sh", "name": "上海", "name_en": "Shanghai"}},
        change("a", scope={"stores": ["s1"]}),
        change("b", scope={}),
    ]
    st, panel = make(qtbot, events, {"lanes": "city"})
    assert panel.lane_names == sorted(["Shanghai", "chain-wide"])


def test_scope_filter_hides_changes_of_other_cities(qtbot):
    events = [
        change("sh", scope={"cities": ["sh"]}),
        change("bj", scope={"cities": ["bj"]}),
        change("all", scope={}),
    ]
    st, panel = make(qtbot, events, scope={"cities": ["sh"]})
    assert set(panel.bars) == {"sh", "all"}


@pytest.mark.parametrize("options, message", [
    ({"lanes": "store"}, 'change_timeline.options.lanes: expected one of "system", "city", got "store"'),
    ({"lanes": 3}, 'change_timeline.options.lanes: expected one of "system", "city", got an integer (3)'),
    ({"window_min": "2h"}, 'change_timeline.options.window_min: expected an integer, got a string ("2h")'),
    ({"window_min": 0}, "change_timeline.options.window_min: out of range: 0; expected an integer at least 5"),
    ({"windw_min": 5}, 'change_timeline.options.windw_min: unknown key (did you mean "window_min"?)'),
    ({"freeze": [{"start": 1.0}]}, "option 'freeze[0]'.end must be epoch seconds"),
    ({"freeze": [{"start": 2.0, "end": 1.0}]}, "option 'freeze[0]': end must be after start"),
    ({"freeze": ["x"]}, "option 'freeze[0]' must be a table"),
    ({"freeze": [{"start": 1.0, "end": 2.0, "lable": "x"}]}, "unknown key 'lable'"),
])
def test_bad_options_name_the_key(qtbot, options, message):
    with pytest.raises(ValueError) as err:
        ChangeTimelinePanel(LiveState(), options, PanelContext())
    assert message in str(err.value)


def test_renders_to_png(qtbot, tmp_path):
    freeze = [{"start": NOW - 1200, "end": NOW + 900, "label": "Opening freeze"}]
    st, panel = make(qtbot, [
        change("c1", status="running", end=None, start=NOW - 1800, title="POS release 4.2"),
        change("c2", status="failed", approved=False, start=NOW - 3000, end=NOW - 2400, system="Payments"),
        {"type": "incident", "id": "i1", "title": "Payment failures", "severity": "P1", "status": "open",
         "opened_at": NOW - 2200},
    ], {"freeze": freeze}, lang="zh")
    panel.set_dimmed(True)
    panel.set_dimmed(False)
    path = tmp_path / "timeline.png"
    assert panel.grab().save(str(path))
    assert path.stat().st_size > 5000


def test_freeze_label_zh_on_a_chinese_wall(qtbot):
    freeze = [{"start": NOW - 60, "end": NOW + 60, "label": "Freeze", "label_zh": "封网"}]
    st, panel = make(qtbot, [], {"freeze": freeze}, lang="zh")
    assert panel.freeze == [(NOW - 60, NOW + 60, "封网")]


@pytest.mark.parametrize("feed_state", ["STALE", "RECONNECTING", "AUTH_FAILED", "CONNECTING"])
def test_header_state_word_follows_the_feed_not_always_live(qtbot, feed_state):
    state = {"now": "LIVE"}
    st, panel = make(qtbot, [change("c1")], feed_state=lambda: state["now"])
    assert "LIVE" in panel.header.text()
    state["now"] = feed_state
    panel.refresh(Dirty(), NOW + 0.1)  # within the same second: still updated at once
    assert feed_state in panel.header.text() and "LIVE" not in panel.header.text()
    state["now"] = "LIVE"
    panel.refresh(Dirty(), NOW + 0.2)
    assert "LIVE" in panel.header.text()


def test_rolled_back_counts_and_is_coloured_as_failed(qtbot):
    from wallboard.widgets.base import CHANGE_STATUS_COLORS

    st, panel = make(qtbot, [change("c1", status="rolled_back"), change("c2", status="failed"),
                             change("c3", status="succeeded")])
    assert "2 failed" in panel.header.text()
    assert CHANGE_STATUS_COLORS["rolled_back"] == CHANGE_STATUS_COLORS["failed"]


def test_rolled_back_change_is_a_suspect_like_a_failed_one():
    st = LiveState()
    feed(st, [change("rb", status="rolled_back", start=NOW - 900, end=NOW - 600, scope={"stores": ["s1"]}),
              change("ok", status="succeeded", start=NOW - 900, end=NOW - 600, scope={"stores": ["s1"]}),
              {"type": "incident", "id": "i1", "title": "x", "severity": "P2", "status": "open",
               "stores": ["s1"], "opened_at": NOW - 300}], NOW)
    ranked = [cid for cid, _score, _why in st.suspects("i1")]
    assert ranked[0] == "rb"


def test_fresh_history_fits_the_window_to_the_data_with_a_5_min_floor(qtbot):
    options = {"window_min": 360}
    st, panel = make(qtbot, [change("c1", start=NOW - 60, end=NOW - 30)], options=options)
    assert panel.view_s == pytest.approx(300)
    lo, hi = panel.vb.viewRange()[0]
    assert hi - lo == pytest.approx(300, rel=0.01)
    assert "last 5 min" in panel.header.text()
    feed(st, [change("c-10", start=NOW - 600, end=NOW - 300)], NOW)
    panel.refresh(Dirty.everything(), NOW)
    assert 600 / 0.85 <= panel.view_s <= 600 / 0.85 * 1.2
    feed(st, [change("c0", start=NOW - 2 * 3600, end=NOW - 2 * 3600 + 600)], NOW)
    panel.refresh(Dirty.everything(), NOW)
    assert 2 * 3600 / 0.85 <= panel.view_s <= 2 * 3600 / 0.85 * 1.2  # the data's span, some room
    lo, hi = panel.vb.viewRange()[0]
    assert lo < NOW - 2 * 3600 < NOW < hi
    feed(st, [change("old", start=NOW - 5.9 * 3600, end=NOW - 5.8 * 3600)], NOW)
    panel.refresh(Dirty.everything(), NOW)
    assert panel.view_s == pytest.approx(360 * 60)  # the history fills the configured window
    st2, empty = make(qtbot, [], options=options)
    assert empty.view_s == pytest.approx(300)


def test_label_rect_stays_inside_the_plot_near_now():
    from PySide6.QtCore import QRectF

    from wallboard.widgets.change_timeline import label_rect

    far = label_rect(QRectF(100, 10, 50, 20), right_px=1000)
    assert far.left() == 106 and far.width() == 260  # runs past a short bar
    near = label_rect(QRectF(900, 10, 20, 20), right_px=1000)
    assert near.right() == 996 and near.width() == 260  # right-aligned to the plot's edge
    tiny = label_rect(QRectF(50, 10, 20, 20), right_px=200)
    assert tiny.left() == 0  # never pushed out on the left


def test_bar_labels_shrink_on_thin_bars_to_a_floor(qtbot):
    from PySide6.QtGui import QFontMetricsF

    from wallboard.widgets.base import ui_font
    from wallboard.widgets.change_timeline import LABEL_FLOOR, label_font

    font = ui_font(13, bold=True)
    fm = QFontMetricsF(font)
    h = fm.height()
    assert label_font(font, fm, h) is font  # fits: unchanged
    smaller = label_font(font, fm, h * 0.75)
    assert smaller is not None and smaller.pointSizeF() < font.pointSizeF()
    assert QFontMetricsF(smaller).height() <= h * 0.75 / 0.9 + 1
    assert label_font(font, fm, h * 0.9 * (LABEL_FLOOR - 0.05)) is None  # too thin: no label


def test_a_label_near_now_is_kept_inside_the_plot(qtbot, tmp_path):
    st, panel = make(qtbot, [change("c1", title="Self-checkout payment SDK config push (late)", status="running",
                                    start=NOW - 20, end=None)], options={"window_min": 360})
    panel.show()
    qtbot.waitExposed(panel)
    img = panel.grab().toImage()
    assert img.width() > 0
    item = panel.items
    vb_right = item.getViewBox().viewRect().right()
    assert vb_right > NOW  # the bar is in view, with the future margin
    assert item._right_px < float("inf")  # painted with the plot's right edge known


def test_lanes_past_the_plot_height_share_one_named_lane(qtbot):
    """Seven city lanes in a panel tall enough for three: the busiest two keep their own
    lane, the rest share a third one named "+5 more lanes" (never labels on top of each other)."""
    cities = [("c%d" % i, "City%d" % i) for i in range(7)]
    events = [{"type": "store", "id": f"s{i}", "name": f"store {i}", "city": {"id": cid, "name": name}}
              for i, (cid, name) in enumerate(cities)]
    for i, (cid, _) in enumerate(cities):
        events += [change(f"ch{i}-{k}", scope={"cities": [cid]}, start=NOW - 1800 + 60 * k, end=NOW - 1700 + 60 * k)
                   for k in range(1 + (i == 3) * 2 + (i == 5))]
    st, panel = make(qtbot, events, {"lanes": "city"})
    panel.show()
    qtbot.wait(10)
    panel.refresh(Dirty(), NOW + 0.5)
    assert panel.lane_names == ["City0", "City1", "City2", "City3", "City4", "City5", "City6"]  # 500 px: all fit
    for h in range(150, 500, 10):   # the height where three lanes fit (fonts differ by machine)
        panel.resize(1400, h)
        qtbot.wait(5)
        if panel.lanes_that_fit() >= 3:
            break
    fit = panel.lanes_that_fit()
    assert 3 <= fit < 7
    panel.refresh(Dirty(), NOW + 1.5)   # the once-a-second rebuild picks up the new height
    assert len(panel.lane_names) == fit
    assert panel.lane_names[-1] == f"+{7 - (fit - 1)} more lanes"
    assert panel.lane_names[:2] == ["City3", "City5"]   # the busiest keep their lanes
    assert {b.lane for b in panel.bars.values()} == set(range(fit))


def test_the_shared_lane_is_translated(qtbot):
    events = [{"type": "store", "id": f"s{i}", "name": f"store {i}", "city": {"id": f"c{i}", "name": f"城{i}"}}
              for i in range(6)]
    events += [change(f"x{i}", scope={"cities": [f"c{i}"]}) for i in range(6)]
    st = LiveState()
    feed(st, events, NOW)
    panel = ChangeTimelinePanel(st, {"lanes": "city"}, PanelContext(clock=lambda: NOW, lang="zh"))
    qtbot.addWidget(panel)
    panel.show()
    for h in range(120, 500, 10):
        panel.resize(1400, h)
        qtbot.wait(5)
        if 2 <= panel.lanes_that_fit() < 6:
            break
    panel.refresh(Dirty.everything(), NOW)
    assert panel.lane_names[-1].startswith("其余 ") and panel.lane_names[-1].endswith(" 条泳道")
    panel.resize(1400, 60)
    qtbot.wait(5)
    panel.refresh(Dirty.everything(), NOW + 2)
    assert panel.lane_names == ["6 条泳道"]   # only one lane fits: all of them in it
