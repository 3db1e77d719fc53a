"""Voice feed: spike detection and marking, filters, topic counts, options."""
from __future__ import annotations

import numpy as np
import pytest

from wallboard.state import Dirty, LiveState
from wallboard.widgets.base import PanelContext
from wallboard.widgets.voice_feed import VoiceFeedPanel, find_spikes, sentiment_color
from conftest import feed_events as feed

NOW = 1_760_000_040.0  # 40 s into a minute



def voice(ts, topic="payment", store="s1", sentiment=-0.6, text="支付失败"):
    return {"type": "voice", "ts": ts, "channel": "app", "text": text, "sentiment": sentiment,
            "topic": topic, "store": store}


def history(per_minute=2, minutes=40, spike_at=None, spike_n=20, topic="payment"):
    out = []
    m_now = NOW // 60 * 60
    for m in range(minutes, 0, -1):
        n = spike_n if m == spike_at else per_minute
        out += [voice(m_now - m * 60 + k, topic=topic) for k in range(n)]
    return out


STORES = [{"type": "store", "id": "s1", "name": "静安店", "city": {"id": "sh", "name": "上海"}},
          {"type": "store", "id": "s2", "name": "朝阳店", "city": {"id": "bj", "name": "北京"}}]


def make(qtbot, events=(), options=None, now=NOW, **ctx_kw):
    st = LiveState()
    feed(st, STORES + list(events), now)
    panel = VoiceFeedPanel(st, options or {}, PanelContext(clock=lambda: now, **ctx_kw))
    qtbot.addWidget(panel)
    panel.resize(900, 800)
    panel.refresh(Dirty.everything(), now)
    return st, panel


def test_find_spikes():
    counts = np.array([2, 2, 2, 2, 2, 20, 2, 3])
    base, spikes = find_spikes(counts, baseline_min=15, factor=3.0)
    assert list(np.nonzero(spikes)[0]) == [5]
    assert base[5] == pytest.approx(2.0)
    assert np.isnan(base[:3]).all()
    # few items never make a spike, even from a zero baseline
    _, spikes = find_spikes(np.array([0, 0, 0, 0, 4]), 15, 3.0)
    assert not spikes.any()


def test_voice_spike_is_marked(qtbot):
    st, panel = make(qtbot, history(spike_at=10))
    spike_minute = NOW // 60 * 60 - 600
    assert panel.spike_minutes == [spike_minute]
    xs, ys = panel.spike_marks.getData()
    assert list(xs) == [spike_minute + 30]
    assert ys[0] > 20
    assert "spike" not in panel.plot.getPlotItem().titleLabel.text  # not recent: no title alarm


def test_live_spike_updates_once_per_second(qtbot):
    st, panel = make(qtbot, history())
    assert panel.spike_minutes == []
    n = panel.rebuilds
    d = feed(st, [voice(NOW + 1 + k * 0.01) for k in range(30)], NOW + 1.5)
    panel.refresh(d, NOW + 1.5)
    panel.refresh(Dirty(), NOW + 1.7)
    assert panel.rebuilds == n + 1  # folded into the per-second rebuild
    assert panel.spike_minutes == [NOW // 60 * 60]
    assert "spike" in panel.plot.getPlotItem().titleLabel.text


def test_topic_filter_and_counts(qtbot):
    events = history(per_minute=2, minutes=5) + history(per_minute=1, minutes=5, topic="queue")
    st, panel = make(qtbot, events, {"topics": ["queue"]})
    assert panel.list.topics == [("queue", 5)]
    assert all(it["topic"] == "queue" for it in panel.list.items)
    assert panel.counts.sum() == 5


def test_scope_filter(qtbot):
    events = [voice(NOW - 100, store="s1"), voice(NOW - 90, store="s2"), voice(NOW - 80, store=None)]
    events[2].pop("store")
    st, panel = make(qtbot, events, scope={"cities": ["sh"]})
    assert len(panel.list.items) == 2  # s1 and the chain-wide item, not Beijing
    assert panel.counts.sum() == 2


def test_sentiment_colors():
    assert sentiment_color(-0.9) != sentiment_color(0.9) != sentiment_color(None)


@pytest.mark.parametrize("options, message", [
    ({"spike_factor": "3"}, 'voice_feed.options.spike_factor: expected a number, got a string ("3")'),
    ({"spike_factor": 1.0}, "voice_feed.options.spike_factor: out of range: 1; expected a number above 1 and at most 100"),
    ({"baseline_min": 2}, "voice_feed.options.baseline_min: out of range: 2; expected an integer at least 3"),
    ({"topics": "payment"}, 'voice_feed.options.topics: expected an array of topics, got a string ("payment")'),
    ({"topics": [1]}, "voice_feed.options.topics[0]: expected a string, got an integer (1)"),
    ({"topic": []}, 'voice_feed.options.topic: unknown key (did you mean "topics"?)'),
])
def test_bad_options_name_the_key(qtbot, options, message):
    with pytest.raises(ValueError) as err:
        VoiceFeedPanel(LiveState(), options, PanelContext())
    assert message in str(err.value)


def test_renders_to_png(qtbot, tmp_path):
    st, panel = make(qtbot, history(spike_at=3), lang="zh")
    panel.set_dimmed(True)
    path = tmp_path / "voice.png"
    assert panel.grab().save(str(path))
    assert path.stat().st_size > 5000


def test_a_young_feed_says_how_many_came_in_the_last_minute_not_zero(qtbot):
    """At the start of a feed, the last complete minute is empty while items pour in: the
    title counts the last 60 s (never '0 per min' beside a spike of new items)."""
    _st, panel = make(qtbot, [voice(NOW - 50 + k) for k in range(12)])
    assert panel.current_per_min == 12
    assert "12 per min" in panel._title


def test_the_volume_chart_fits_a_young_history_then_shows_its_full_hour(qtbot):
    from wallboard.widgets.voice_feed import CHART_FLOOR_MIN, CHART_MIN

    _st, panel = make(qtbot, [voice(NOW - 120)])
    x0, _x1 = panel.plot.getPlotItem().viewRange()[0]
    assert x0 == pytest.approx(NOW - CHART_FLOOR_MIN * 60, abs=1)
    _st, panel = make(qtbot, history(minutes=90))
    x0, _x1 = panel.plot.getPlotItem().viewRange()[0]
    assert x0 == pytest.approx(NOW - CHART_MIN * 60, abs=1)
