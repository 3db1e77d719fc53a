"""KPI colours that mean what they say: good direction by kind, dead band, not-open stores
(issue 12), pure rules and the tiles that use them."""
from __future__ import annotations

import pytest

from wallboard.layout.kpi import dead_band_default, delta_tone, good_default, resolve_good, stores_phase
from wallboard.state import Dirty, LiveState
from wallboard.widgets.base import PanelContext
from wallboard.widgets.kpi_tiles import KpiTilesPanel, translate_unit
from conftest import feed_events as feed
from test_kpi import NOW, kpi


def store(sid, status, city="sh", **kw):
    return dict({"type": "store", "id": sid, "name": sid, "city": {"id": city, "name": city},
                 "lat": 31.0, "lon": 121.0, "status": status}, **kw)


def tiles(qtbot, events, tile_opts, now=NOW, **ctx_kw):
    st = LiveState()
    feed(st, list(events), now)
    panel = KpiTilesPanel(st, {"tiles": tile_opts}, PanelContext(clock=lambda: now, **ctx_kw))
    qtbot.addWidget(panel)
    panel.resize(1600, 440)
    panel.refresh(Dirty.everything(), now)
    return st, panel


@pytest.mark.parametrize("metric, good", [
    ("orders_per_s", "up"), ("gmv_per_min", "up"), ("footfall_per_min", "up"),
    ("payment_success_rate", "up"), ("payment_latency_p99_ms", "down"), ("queue_len", "down"),
    ("error_rate", "down"), ("payment_fail_per_min", "down"), ("temperature", None),
])
def test_good_direction_by_kind(metric, good):
    assert good_default(metric) == good


def test_good_and_direction_imply_each_other_and_thresholds_keep_their_order():
    assert resolve_good("orders_per_s", None, None) == ("up", "down_bad")
    assert resolve_good("queue_len", None, None) == ("down", "up_bad")
    assert resolve_good("temperature", None, None) == (None, "up_bad")
    assert resolve_good("temperature", "up", None) == ("up", "down_bad")
    assert resolve_good("gmv", None, "up_bad") == ("down", "up_bad")
    # a capacity alarm on orders/s (warn below crit) stays "high is bad"; its delta is still "up is good"
    assert resolve_good("orders_per_s", None, None, 400, 500) == ("up", "up_bad")
    with pytest.raises(ValueError, match='good = "up" contradicts direction = "up_bad"'):
        resolve_good("m", "up", "up_bad")


def test_dead_band():
    assert dead_band_default("%") == (0.05, 0.0)
    assert dead_band_default("orders/s") == (0.0, 0.5)
    assert delta_tone(0.0, 99.5, "up", 0.05, 0.0) == "neutral"
    assert delta_tone(0.03, 99.5, "up", 0.05, 0.0) == "neutral"
    assert delta_tone(-0.2, 99.5, "up", 0.05, 0.0) == "bad"
    assert delta_tone(0.4, 100.0, "up", 0.0, 0.5) == "neutral"    # 0.4 % of the reference
    assert delta_tone(-6.0, 100.0, "up", 0.0, 0.5) == "bad"
    assert delta_tone(6.0, 100.0, "down", 0.0, 0.5) == "bad"
    assert delta_tone(6.0, 100.0, None, 0.0, 0.5) == "neutral"    # no known kind: no judgement


def test_store_phase():
    assert stores_phase([], NOW) is None
    assert stores_phase([{"status": "planned"}, {"status": "opening", "opens_at": NOW + 60}], NOW) == "not_open"
    assert stores_phase([{"status": "opening", "opens_at": NOW - 1}], NOW) is None  # should be trading
    assert stores_phase([{"status": "planned"}, {"status": "open"}], NOW) is None
    assert stores_phase([{"status": "closed"}, None], NOW) == "closed"


def test_falling_orders_are_red_and_rising_gmv_and_footfall_green(qtbot):
    events = [kpi("orders_per_s", 120, NOW - 20), kpi("orders_per_s", 100, NOW - 10),
              kpi("gmv_per_min", 1000, NOW - 20), kpi("gmv_per_min", 1100, NOW - 10),
              kpi("footfall_per_min", 40, NOW - 20, "store:a"), kpi("footfall_per_min", 50, NOW - 10, "store:a"),
              kpi("payment_latency_p99_ms", 200, NOW - 20, unit="ms"),
              kpi("payment_latency_p99_ms", 260, NOW - 10, unit="ms")]
    _, panel = tiles(qtbot, events, [{"metric": "orders_per_s"}, {"metric": "gmv_per_min"},
                                     {"metric": "footfall_per_min", "scope": "store:a"},
                                     {"metric": "payment_latency_p99_ms"}])
    assert [v.tone for v in panel.views] == ["bad", "good", "good", "bad"]
    panel.grab()
    assert panel.painted[0]["line"].lines == ("\u25bc 20 vs prev",)


def test_same_percentage_as_reference_is_neutral_not_red(qtbot):
    _, panel = tiles(qtbot, [kpi("payment_success_rate", 99.5, NOW - 10, unit="%")],
                     [{"metric": "payment_success_rate", "reference": 99.5, "warn": 99.0, "crit": 97.0,
                       "direction": "down_bad"}])
    view = panel.views[0]
    assert (view.tone, view.level) == ("neutral", "ok")
    panel.grab()
    assert panel.painted[0]["line"].lines[0].startswith("=")


def test_explicit_good_and_dead_band_options(qtbot):
    events = [kpi("temperature", 20, NOW - 20), kpi("temperature", 21, NOW - 10)]
    _, panel = tiles(qtbot, events, [{"metric": "temperature", "good": "down"}])
    assert panel.views[0].tone == "bad"
    _, panel = tiles(qtbot, events, [{"metric": "temperature", "good": "down", "dead_band": 2}])
    assert panel.views[0].tone == "neutral"


@pytest.mark.parametrize("tile, message", [
    ({"metric": "m", "good": "higher"}, 'kpi_tiles.options.tiles[0].good: expected one of "up", "down", got "higher"'),
    ({"metric": "m", "good": "up", "direction": "up_bad"}, 'good = "up" contradicts direction = "up_bad"'),
    ({"metric": "m", "dead_band": -1}, "kpi_tiles.options.tiles[0].dead_band: out of range: -1; expected a number at least 0"),
])
def test_bad_meaning_options_name_the_key(qtbot, tile, message):
    with pytest.raises(ValueError) as err:
        KpiTilesPanel(LiveState(), {"tiles": [tile]}, PanelContext())
    assert message in str(err.value)


def test_orders_at_zero_before_the_stores_open_is_grey_not_red(qtbot):
    events = [store("a", "opening", opens_at=NOW + 30), store("b", "planned"),
              kpi("orders_per_s", 0, NOW - 20), kpi("orders_per_s", 0, NOW - 10),
              kpi("orders_per_s", 0, NOW - 10, "store:a"), kpi("orders_per_s", 0, NOW - 10, "city:sh")]
    opts = [{"metric": "orders_per_s", "warn": 5, "crit": 2, "direction": "down_bad"},
            {"metric": "orders_per_s", "scope": "store:a", "warn": 5, "crit": 2, "direction": "down_bad"},
            {"metric": "orders_per_s", "scope": "city:sh", "warn": 5, "crit": 2, "direction": "down_bad"}]
    st, panel = tiles(qtbot, events, opts)
    assert [(v.level, v.phase) for v in panel.views] == [("idle", "not_open")] * 3
    panel.grab()
    assert panel.painted[0]["line"].lines == ("not open yet",)
    # the opening time passes: the zero is now an alarm (the state said nothing new)
    panel.refresh(Dirty(), NOW + 31)
    assert [v.level for v in panel.views] == ["crit", "crit", "crit"]


def test_a_store_that_opens_turns_its_tile_live(qtbot):
    st, panel = tiles(qtbot, [store("a", "planned"), kpi("orders_per_s", 0, NOW - 10, "store:a")],
                      [{"metric": "orders_per_s", "scope": "store:a", "warn": 5, "crit": 2}])
    assert panel.views[0].level == "idle"
    panel.refresh(feed(st, [store("a", "open")], NOW + 1), NOW + 1)
    assert (panel.views[0].phase, panel.views[0].level) == (None, "crit")
    panel.refresh(feed(st, [store("a", "closed")], NOW + 2), NOW + 2)
    assert panel.views[0].phase == "closed"
    panel.grab()
    assert panel.painted[0]["line"].lines == ("closed",)


def test_global_tile_follows_the_event_scope(qtbot):
    events = [store("a", "planned"), store("b", "open", city="bj"), kpi("orders_per_s", 0, NOW - 10)]
    _, panel = tiles(qtbot, events, [{"metric": "orders_per_s"}], scope={"stores": ["a"]})
    assert panel.views[0].phase == "not_open"
    _, panel = tiles(qtbot, events, [{"metric": "orders_per_s"}])
    assert panel.views[0].phase is None


def test_chinese_units_and_labels(qtbot):
    assert translate_unit("orders/s", "zh") == "单/秒"
    assert translate_unit("people/min", "zh") == "人/分钟"
    assert translate_unit("people", "zh") == "人"
    assert translate_unit("orders/s", "en") == "orders/s"
    _, panel = tiles(qtbot, [kpi("queue_len", 3, NOW - 10, unit="people")],
                     [{"metric": "queue_len", "label": "Queue", "label_zh": "排队"}], lang="zh")
    panel.grab()
    assert panel.painted[0]["unit"].lines == ("人",) and panel.painted[0]["label"].lines == ("排队",)


def tiles_layout(tmp_path, tiles_toml: str):
    from wallboard.layout import load_layout
    src = tmp_path / "k.toml"
    src.write_text('schema = 1\n[event]\ntitle = "t"\n[[screens]]\nname = "s"\n[[screens.panels]]\n'
                   'type = "kpi_tiles"\nat = [0, 0]\n[screens.panels.options]\ntiles = ' + tiles_toml + "\n")
    return load_layout(src)


def test_layout_fills_good_and_direction(tmp_path):
    lay = tiles_layout(tmp_path, '[{ metric = "orders_per_s" }, { metric = "queue_len", warn = 6, crit = 12 }, '
                                 '{ metric = "orders_per_s", label = "cap", warn = 400, crit = 500 }]')
    got = [(t["good"], t["direction"]) for t in lay.screens[0].panels[0].options["tiles"]]
    assert got == [("up", "down_bad"), ("down", "up_bad"), ("up", "up_bad")]


def test_layout_refuses_contradicting_good(tmp_path):
    from wallboard.layout import LayoutError
    with pytest.raises(LayoutError) as err:
        tiles_layout(tmp_path, '[{ metric = "orders_per_s", good = "up", direction = "up_bad" }]')
    assert 'good = "up" contradicts direction = "up_bad"' in str(err.value)
    assert "tiles[0].good" in str(err.value)


def test_a_clock_second_repaints_only_the_sample_ages(qtbot):
    """Once a second only the ages move: just their boxes are painted again (not the big
    numbers, ~10 ms a second at 4K); a new sample, a wider age or a sample turning old
    repaints whole tiles."""
    from PySide6.QtCore import QRect
    st, panel = tiles(qtbot, [kpi("orders_per_s", 120.0, ts=NOW - 3), kpi("queue_len", 4.0, ts=NOW - 3)],
                      [{"metric": "orders_per_s"}, {"metric": "queue_len"}])
    panel.show()
    panel.grab()                                    # painted once: the ages' widths are known
    updates = []
    panel.update = lambda *a: updates.append(QRect(*a) if a else panel.rect())
    panel.refresh(Dirty(), NOW + 1)                 # "4s": as wide as "3s"
    rects = panel._tile_rects()
    assert len(updates) == 2 and all(u.width() < rects[0].width() / 4 for u in updates)
    assert all(u.right() >= r.right() - 30 and u.bottom() < r.top() + r.height() * 0.3
               for u, r in zip(updates, rects))   # top right corners: the ages
    updates.clear()
    panel.refresh(feed(st, [kpi("orders_per_s", 130.0, ts=NOW + 1.5)], NOW + 1.5), NOW + 1.5)
    assert updates == [panel.rect()]                # a new sample: the whole panel
    panel.grab()
    updates.clear()
    panel.refresh(Dirty(), NOW + 8)                 # "11s": wider, the labels follow
    assert updates == [panel.rect()]
