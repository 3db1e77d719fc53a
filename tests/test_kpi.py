"""KPI tiles and KPI chart: values, deltas, thresholds, item reuse, retention, options."""
from __future__ import annotations

import numpy as np
import pytest

from wallboard.state import Dirty, LiveState, StateConfig
from wallboard.widgets.base import PanelContext
from wallboard.widgets.kpi_chart import KpiChartPanel
from wallboard.widgets.kpi_tiles import KpiTilesPanel, format_value, threshold_level
from conftest import feed_events as feed

NOW = 1_760_000_000.0



def kpi(metric, value, ts, scope="global", unit=None):
    ev = {"type": "kpi", "metric": metric, "scope": scope, "value": value, "ts": ts}
    if unit:
        ev["unit"] = unit
    return ev


TILES = [
    {"metric": "orders_per_s", "label": "Orders/s", "label_zh": "订单/秒", "warn": 400, "crit": 500},
    {"metric": "pay_ok", "label": "Payment success", "direction": "down_bad", "warn": 98, "crit": 97,
     "reference": 99.5},
    {"metric": "gmv", "scope": "city:sh", "label": "GMV Shanghai"},
]


def make_tiles(qtbot, events=(), options=None, now=NOW, **ctx_kw):
    st = LiveState()
    if events:
        feed(st, list(events), now)
    panel = KpiTilesPanel(st, options if options is not None else {"tiles": TILES},
                          PanelContext(clock=lambda: now, **ctx_kw))
    qtbot.addWidget(panel)
    panel.resize(1200, 400)
    panel.refresh(Dirty.everything(), now)
    return st, panel


def test_format_and_threshold():
    assert format_value(1_234_567) == "1.23M"
    assert format_value(45_600) == "45.6k"
    assert format_value(99.24) == "99.2"
    assert format_value(None) == "-"
    assert threshold_level(510, 400, 500, "up_bad") == "crit"
    assert threshold_level(450, 400, 500, "up_bad") == "warn"
    assert threshold_level(97.5, 98, 97, "down_bad") == "warn"
    assert threshold_level(None, 1, 2, "up_bad") == "unknown"


def test_tiles_show_value_delta_and_level(qtbot):
    st, panel = make_tiles(qtbot, [
        kpi("orders_per_s", 300, NOW - 20, unit="/s"), kpi("orders_per_s", 450, NOW - 10, unit="/s"),
        kpi("pay_ok", 96.5, NOW - 10, unit="%"),
    ])
    orders, pay, gmv = panel.views
    assert (orders.value, orders.delta, orders.level, orders.unit) == (450, 150, "warn", "/s")
    assert pay.level == "crit" and pay.delta == pytest.approx(-3.0)
    assert gmv.value is None and gmv.level == "unknown"
    assert len(orders.spark[0]) == 2


def test_tiles_recompute_only_what_is_dirty(qtbot):
    st, panel = make_tiles(qtbot, [kpi("orders_per_s", 300, NOW - 20)])
    n = panel.recomputes
    panel.refresh(Dirty(), NOW + 0.5)
    assert panel.recomputes == n
    d = feed(st, [kpi("orders_per_s", 520, NOW + 1), kpi("unrelated", 1, NOW + 1)], NOW + 1)
    panel.refresh(d, NOW + 1)
    assert panel.recomputes == n + 1
    assert panel.views[0].level == "crit"


@pytest.mark.parametrize("options, message", [
    ({"tiles": {}}, "kpi_tiles.options.tiles: expected an array of tile tables {metric, scope, label, ...}, got a table"),
    ({"tiles": [{"label": "x"}]}, "kpi_tiles.options.tiles[0].metric: missing required key"),
    ({"tiles": [{"metric": "m", "warn": "5"}]}, 'kpi_tiles.options.tiles[0].warn: expected a number, got a string ("5")'),
    ({"tiles": [{"metric": "m", "direction": "up"}]}, 'kpi_tiles.options.tiles[0].direction: expected one of "up_bad", "down_bad", got "up"'),
    ({"tiles": [{"metric": "m", "reference": "last"}]}, 'kpi_tiles.options.tiles[0].reference: expected "prev" or a number, got a string ("last")'),
    ({"tiles": [{"metric": "m", "treshold": 1}]}, "kpi_tiles.options.tiles[0].treshold: unknown key; expected one of: metric, scope,"),
    ({"tile": []}, 'kpi_tiles.options.tile: unknown key (did you mean "tiles"?)'),
])
def test_bad_tile_options_name_the_key(qtbot, options, message):
    with pytest.raises(ValueError) as err:
        KpiTilesPanel(LiveState(), options, PanelContext())
    assert message in str(err.value)


def test_tiles_render_to_png(qtbot, tmp_path):
    st, panel = make_tiles(qtbot, [kpi("orders_per_s", 300 + k, NOW - 600 + k * 10) for k in range(60)], lang="zh")
    panel.set_dimmed(True)
    path = tmp_path / "tiles.png"
    assert panel.grab().save(str(path))
    assert path.stat().st_size > 5000


CHART = {"series": [{"metric": "orders_per_s", "label": "Orders/s"},
                    {"metric": "orders_per_s", "scope": "city:sh", "label": "Shanghai"}],
         "bands": [{"from": 400, "to": 500, "level": "warn"}, {"from": 500, "to": 900, "color": "#d7263d"}],
         "window_min": 60}


def make_chart(qtbot, config=None, options=None, now=NOW):
    st = LiveState(config=config or StateConfig())
    panel = KpiChartPanel(st, options or CHART, PanelContext(clock=lambda: now))
    qtbot.addWidget(panel)
    panel.resize(900, 400)
    return st, panel


def test_chart_updates_without_recreating_items_and_keeps_retention(qtbot):
    st, panel = make_chart(qtbot, StateConfig(kpi_points=50))
    items = list(panel.items)
    plot_items = list(panel.plot.getPlotItem().items)
    t = NOW
    for batch in range(10):  # 10 frames of 20 points each = 200 points, ring holds 50
        events = [kpi("orders_per_s", 100 + batch * 20 + k, t + k) for k in range(20)]
        events += [kpi("orders_per_s", 50 + k, t + k, scope="city:sh") for k in range(20)]
        t += 20
        panel.refresh(feed(st, events, t), t)
    assert panel.items == items and all(a is b for a, b in zip(panel.items, items))
    assert list(panel.plot.getPlotItem().items) == plot_items
    xs, ys = panel.items[0].getData()
    assert len(xs) == 50  # the ring's retention, not everything ever received
    assert ys[-1] == 100 + 9 * 20 + 19
    assert np.all(np.diff(xs) > 0)
    assert "299" in panel.legend.getLabel(panel.items[0]).text


def test_chart_window_trims_old_points_and_feeds_only_dirty_series(qtbot):
    st, panel = make_chart(qtbot)
    feed(st, [kpi("orders_per_s", k, NOW - 7200 + k * 60) for k in range(121)], NOW)
    panel.refresh(Dirty.everything(), NOW)
    xs, _ = panel.items[0].getData()
    assert xs[0] >= NOW - 3600 - 60 and xs[-1] == NOW
    n = panel.feeds
    d = feed(st, [kpi("other", 1, NOW + 1)], NOW + 1)
    panel.refresh(d, NOW + 1)
    assert panel.feeds == n
    assert panel.plot.getPlotItem().getViewBox().viewRange()[0] == pytest.approx([NOW + 1 - 3600, NOW + 1])


@pytest.mark.parametrize("options, message", [
    ({"series": "orders"}, 'kpi_chart.options.series: expected an array of series tables {metric, scope, label, label_zh}, got a string ("orders")'),
    ({"series": [{"scope": "global"}]}, "kpi_chart.options.series[0].metric: missing required key"),
    ({"series": [{"metric": 5}]}, "kpi_chart.options.series[0].metric: expected a metric name (letters, digits, _ . : -), got an integer (5)"),
    ({"bands": [{"from": 1, "to": "x"}]}, 'kpi_chart.options.bands[0].to: expected a number, got a string ("x")'),
    ({"bands": [{"from": 1, "to": 2, "level": "bad"}]}, 'kpi_chart.options.bands[0].level: expected one of "ok", "warn", "crit", got "bad"'),
    ({"series": [{"metric": "m"}], "bands": [{"from": 1, "to": 2, "color": "notacolor"}]},
     'kpi_chart.options.bands[0].color: expected a colour name such as "#e0a106" or "orange", got "notacolor"'),
    ({"window_min": 0}, "kpi_chart.options.window_min: out of range: 0; expected an integer at least 1"),
    ({"windowmin": 5}, 'kpi_chart.options.windowmin: unknown key (did you mean "window_min"?)'),
])
def test_bad_chart_options_name_the_key(qtbot, options, message):
    with pytest.raises(ValueError) as err:
        KpiChartPanel(LiveState(), options, PanelContext())
    assert message in str(err.value)


def test_chart_renders_to_png(qtbot, tmp_path):
    st, panel = make_chart(qtbot)
    feed(st, [kpi("orders_per_s", 300 + (k % 40) * 5, NOW - 3000 + k * 10) for k in range(300)], NOW)
    panel.refresh(Dirty.everything(), NOW)
    panel.set_dimmed(True)
    path = tmp_path / "chart.png"
    assert panel.grab().save(str(path))
    assert path.stat().st_size > 5000


def test_layout_filled_defaults_are_accepted(qtbot):
    """The layout loader fills label="" / label_zh=None / color=None; widgets use their defaults."""
    tiles = KpiTilesPanel(LiveState(), {"tiles": [{"metric": "m", "label": "", "label_zh": None, "unit": None}]},
                          PanelContext())
    assert (tiles.specs[0].label, tiles.specs[0].label_zh) == ("m", "m")
    chart = KpiChartPanel(LiveState(), {"series": [{"metric": "m", "scope": "global", "label": ""}],
                                        "bands": [{"from": 1, "to": 2, "level": "crit", "color": None}]},
                          PanelContext())
    assert chart.series[0]["label"] == "m" and chart.bands[0]["color"] == "#e4572e"


def test_chart_without_data_starts_at_zero_and_says_no_data(qtbot):
    """Not pyqtgraph's -0.4..0.4 for a metric that cannot be negative (issue 12)."""
    st, panel = make_chart(qtbot)
    panel.show()
    assert panel.y_range == (0.0, 10.0)
    assert panel.no_data.isVisible() and panel.no_data.text() == "No data"
    # only zeros (stores not open yet): still from 0, the default span by unit
    panel.refresh(feed(st, [kpi("orders_per_s", 0.0, NOW - 5, unit="%")], NOW), NOW)
    assert panel.y_range == (0.0, 100.0) and not panel.no_data.isVisible()


def test_chart_y_range_follows_the_data_never_below_zero(qtbot):
    st, panel = make_chart(qtbot)
    panel.refresh(feed(st, [kpi("orders_per_s", v, NOW - 50 + k) for k, v in enumerate((10, 40, 30))], NOW), NOW)
    lo, hi = panel.y_range
    assert lo == 0.0 and 40 < hi < 50
    st2, panel2 = make_chart(qtbot, options={"series": [{"metric": "pay_ok"}]})
    panel2.refresh(feed(st2, [kpi("pay_ok", v, NOW - 50 + k, unit="%") for k, v in enumerate((99.2, 99.8))], NOW), NOW)
    lo, hi = panel2.y_range
    assert 98.5 < lo < 99.2 and 99.8 < hi <= 100.1
    st3, panel3 = make_chart(qtbot, options={"series": [{"metric": "delta"}]})
    panel3.refresh(feed(st3, [kpi("delta", v, NOW - 50 + k) for k, v in enumerate((-5, 5))], NOW), NOW)
    assert panel3.plot.getPlotItem().getViewBox().autoRangeEnabled()[1]


def test_chart_series_label_zh(qtbot):
    st = LiveState()
    feed(st, [kpi("orders_per_s", 12, NOW - 5, unit="orders/s")], NOW)
    panel = KpiChartPanel(st, {"series": [{"metric": "orders_per_s", "label": "This store", "label_zh": "本店"}]},
                          PanelContext(clock=lambda: NOW, lang="zh"))
    qtbot.addWidget(panel)
    assert panel.legend.getLabel(panel.items[0]).text == "本店  12 单/秒"
    assert panel.no_data.text() == "暂无数据"
