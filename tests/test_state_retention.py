"""Retention: every collection the state holds stays within its configured bound."""
from __future__ import annotations

import random

from test_state_helpers import Feed
from wallboard.state import LiveState, StateConfig

SMALL = StateConfig(device_ttl_s=30.0, max_resolved_incidents=20, resolved_keep_s=600.0,
                    max_open_incidents=50, max_finished_changes=30, finished_keep_s=900.0,
                    max_active_changes=40, max_voice_items=100, voice_window_minutes=10,
                    kpi_points=16, max_kpi_series=8)


def test_finished_changes_capped_oldest_finished_first() -> None:
    st, f = LiveState(SMALL), Feed()
    for i in range(50):
        st.apply([f.ev("change", f"c{i}", ts=float(i), start=float(i), end=float(i) + 1,
                       status="succeeded")], float(i))
    assert len(st.changes) == 30
    assert min(st.changes) == "c20" and st.counters["evicted_changes"] == 20
    assert len(st._changes.finished) == 30 and len(st._changes._idx) == 30


def test_finished_changes_expire_after_keep_s() -> None:
    st, f = LiveState(SMALL), Feed()
    st.apply([f.ev("change", "old", start=0.0, end=100.0, status="failed"),
              f.ev("change", "new", start=0.0, end=800.0, status="succeeded"),
              f.ev("change", "running", start=0.0, status="running")], 1.0)
    d = st.tick(1000.0 + 1)                                  # old finished at 100: 901 s ago
    assert set(st.changes) == {"new", "running"} and d.changes == {"old"}
    st.tick(10 ** 6)
    assert set(st.changes) == {"running"}                    # running ones are never aged out
    assert st.counters["expired_changes"] == 2


def test_active_changes_safety_cap() -> None:
    st, f = LiveState(SMALL), Feed()
    for i in range(45):
        st.apply([f.ev("change", f"p{i:02d}", start=float(i), status="planned")], 1.0)
    assert len(st.changes) == 40 and "p00" not in st.changes and "p44" in st.changes
    assert st.counters["evicted_active_changes"] == 5


def test_resolved_incidents_capped_and_aged() -> None:
    st, f = LiveState(SMALL), Feed()
    st.apply([f.ev("incident", "open1", severity="P1")], 1.0)
    for i in range(30):
        st.apply([f.ev("incident", f"r{i:02d}", ts=float(i), status="resolved",
                       resolved_at=float(i))], 1.0)
    assert len(st.incidents) == 21 and "open1" in st.incidents and "r09" not in st.incidents
    assert st.counters["evicted_incidents"] == 10
    st.tick(629.5)                                           # keep 600 s: r00..r29 -> up to r29
    assert set(st.incidents) == {"open1"}
    assert st.counters["expired_incidents"] == 20


def test_open_incidents_safety_cap() -> None:
    st, f = LiveState(SMALL), Feed()
    for i in range(55):
        st.apply([f.ev("incident", f"o{i:02d}")], 1.0)
    assert len(st.incidents) == 50 and "o00" not in st.incidents
    assert sum(st.open_by_severity().values()) == 50
    assert st.counters["evicted_open_incidents"] == 5


def test_voice_ring_and_minute_window() -> None:
    st, f = LiveState(SMALL), Feed()
    for i in range(500):
        st.apply([f.ev("voice", ts=i * 6.0, channel="app", text=f"t{i}")], 1.0)
    assert len(st._voice.items) == 100
    assert st.voice_items(1)[0]["text"] == "t499"
    assert len(st._voice.minutes) <= 10
    minutes, counts = st.voice_per_minute(0.0, 499 * 6.0)
    assert counts.sum() <= 100 and counts[-1] == 10
    st.apply([f.ev("voice", ts=0.0, channel="app", text="late")], 2.0)   # far outside window
    assert st.counters["voice_outside_window"] == 1
    huge = st.voice_per_minute(0.0, 10 ** 9)                 # never allocates beyond the window
    assert len(huge[0]) <= 4 * 10 + 1


def test_kpi_points_and_series_bounded() -> None:
    st, f = LiveState(SMALL), Feed()
    for i in range(100):
        st.apply([f.ev("kpi", ts=float(i), metric="gmv", scope="global", value=float(i))], 1.0)
    ts, vals = st.kpi_series("gmv", "global")
    assert ts.tolist() == [float(i) for i in range(84, 100)] and vals[-1] == 99.0
    assert len(st._kpi.series[("gmv", "global")].ts) == 16
    for i in range(20):
        d = st.apply([f.ev("kpi", ts=1.0, metric=f"m{i}", scope="store:s1", value=1.0)], 1.0)
    assert len(st.kpi_keys()) == 8 and st.counters["evicted_kpi_series"] == 13
    assert ("m19", "store:s1") in st.kpi_keys() and ("gmv", "global") not in st.kpi_keys()
    assert ("m11", "store:s1") in d.kpi                      # evicted series marked dirty


def test_memory_bounded_by_config_not_uptime() -> None:
    """A long random run: every container stays within its bound, whatever the uptime."""
    rng = random.Random(3)
    st, f = LiveState(SMALL), Feed()
    now = 0.0
    for step in range(400):
        batch = []
        for _ in range(25):
            r = rng.random()
            t = now + rng.random()
            if r < 0.4:
                batch.append(f.ev("device", f"d{rng.randrange(60)}", ts=t, store=f"s{rng.randrange(6)}",
                                  status=rng.choice(["ok", "warn", "crit"]),
                                  ttl_s=rng.choice([5.0, 30.0, 60.0])))
            elif r < 0.55:
                batch.append(f.ev("change", f"c{rng.randrange(10 ** 6)}", ts=t,
                                  status=rng.choice(["planned", "running", "succeeded", "failed"]),
                                  start=max(0.0, t - 60), end=rng.choice([None, t])))
            elif r < 0.7:
                batch.append(f.ev("incident", f"i{rng.randrange(10 ** 6)}", ts=t,
                                  status=rng.choice(["open", "resolved", "resolved"])))
            elif r < 0.85:
                batch.append(f.ev("voice", ts=t, channel="app", text="x"))
            else:
                batch.append(f.ev("kpi", ts=t, metric=f"m{rng.randrange(30)}", scope="global",
                                  value=rng.random()))
        st.apply(batch, now)
        st.tick(now)
        now += 7.0
        assert len(st.changes) <= SMALL.max_finished_changes + SMALL.max_active_changes
        assert len(st.incidents) <= SMALL.max_resolved_incidents + SMALL.max_open_incidents
        assert len(st._voice.items) <= SMALL.max_voice_items
        assert len(st._voice.minutes) <= SMALL.voice_window_minutes
        assert len(st._kpi.series) <= SMALL.max_kpi_series
        assert all(len(r.ts) <= SMALL.kpi_points for r in st._kpi.series.values())
        assert len(st._fleet.heap) <= 2 * len(st._fleet.armed) + 1024 + 25
        assert len(st._changes._idx) == len(st.changes)
    assert st.counters["applied"] == 400 * 25
