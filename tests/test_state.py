"""LiveState: upsert/merge/delete, dirty sets, seqs, TTL, orphans, moves, queries."""
from __future__ import annotations

import subprocess
import sys

import pytest

from test_state_helpers import Feed, check_aggregates
from wallboard import protocol as P
from wallboard.state import Dirty, LiveState, SeqGap, StateConfig, STATUS_ORDER


@pytest.fixture
def feed() -> Feed:
    return Feed()


def city(cid: str) -> dict:
    return {"id": cid, "name": cid.upper()}


def base_state(feed: Feed) -> LiveState:
    st = LiveState()
    st.apply([
        feed.ev("store", "s1", city=city("hz"), name="West Lake", status="open"),
        feed.ev("store", "s2", city=city("hz"), name="Binjiang"),
        feed.ev("store", "s3", city=city("sh")),
        feed.ev("device", "d1", store="s1", kind="pos", status="ok", metrics={"cpu": 0.1, "mem": 0.5}),
        feed.ev("device", "d2", store="s1", kind="scale", status="warn"),
        feed.ev("device", "d3", store="s2", kind="pos", status="crit"),
    ], 100.0)
    return st


def test_upsert_creates_and_counts(feed: Feed) -> None:
    st = base_state(feed)
    assert st.seq == 6
    assert set(st.devices) == {"d1", "d2", "d3"}
    assert st.store_counts("s1") == {**dict.fromkeys(STATUS_ORDER, 0), "ok": 1, "warn": 1}
    assert st.store_worst("s1") == "warn"
    assert st.store_worst("s3") == "ok"                      # no devices
    assert st.city_counts("hz")["crit"] == 1 and st.city_counts("hz")["ok"] == 1
    assert st.city_stores("hz") == ["s1", "s2"]
    assert st.kind_counts()["pos"]["crit"] == 1
    assert st.store_devices("s1") == ["d1", "d2"]
    assert st.counters["applied"] == 6
    check_aggregates(st, 100.0)


def test_partial_merge_keeps_fields_and_merges_metrics(feed: Feed) -> None:
    st = base_state(feed)
    st.apply([feed.ev("device", "d1", ts=1001.0, metrics={"cpu": 0.9}, msg="hot")], 110.0)
    rec = st.devices["d1"]
    assert rec["metrics"] == {"cpu": 0.9, "mem": 0.5}
    assert rec["status"] == "ok" and rec["kind"] == "pos" and rec["msg"] == "hot"
    assert rec["ts"] == 1001.0 and rec["seq"] == 7 and rec["last_seen"] == 110.0
    st.apply([feed.ev("store", "s1", name="West Lake 2")], 111.0)
    assert st.stores["s1"]["name"] == "West Lake 2" and st.stores["s1"]["status"] == "open"


@pytest.mark.parametrize("fields", [
    {"msg": "paper low"}, {"name": "Till 2", "status": "warn"}, {"metrics": {"cpu": 0.7}},
    {"status": "crit", "metrics": {"mem": 0.9}, "msg": "m", "name": "n"}, {"status": "ok", "msg": "x"},
    {"metrics": {"cpu": 0.2}, "name": "only"}, {},
])
def test_inline_path_merges_like_the_general_path(feed: Feed, fields: dict) -> None:
    fast, slow = base_state(Feed()), base_state(Feed())
    f1, f2 = Feed(seq=6), Feed(seq=6)
    fast.apply([f1.ev("device", "d1", ts=2000.0, **fields)], 120.0)
    # x_ extension fields force the general path; the rest must end up identical
    slow.apply([f2.ev("device", "d1", ts=2000.0, x_probe=1, **fields)], 120.0)
    slow.devices["d1"].pop("x_probe")
    assert fast.devices == slow.devices
    assert fast.store_counts("s1") == slow.store_counts("s1") and fast.kind_counts() == slow.kind_counts()
    check_aggregates(fast, 120.0)


def test_batch_with_a_moving_device_event_checks_each_event(feed: Feed) -> None:
    # apply() skips the per-event key check only when no event of the batch carries
    # store/kind/ttl_s/deleted/x_*; a batch mixing both kinds must still route each right
    st = base_state(feed)
    d = st.apply([
        feed.ev("device", "d1", status="warn", metrics={"cpu": 0.3}),
        feed.ev("device", "d2", store="s2", x_src="zbx"),             # moves, keeps x_src
        feed.ev("voice", None, channel="app", text="slow", store="s1"),
        feed.ev("device", "d3", ttl_s=7.0, msg="t"),
        feed.ev("kpi", None, metric="gmv", scope="global", value=1.0),
        feed.ev("device", "d1", name="Till 1"),
    ], 130.0)
    assert st.devices["d1"]["status"] == "warn" and st.devices["d1"]["name"] == "Till 1"
    assert st.devices["d1"]["metrics"] == {"cpu": 0.3, "mem": 0.5}
    assert st.devices["d2"]["store"] == "s2" and st.devices["d2"]["x_src"] == "zbx"
    assert st.devices["d3"]["ttl_s"] == 7.0 and st.devices["d3"]["msg"] == "t"
    assert st.store_devices("s2") == ["d2", "d3"]
    assert d.devices == {"d1", "d2", "d3"} and d.stores == {"s1", "s2"} and d.voice
    check_aggregates(st, 130.0)


def test_batch_of_plain_updates_with_other_types_uses_inline_path(feed: Feed) -> None:
    st = base_state(feed)
    d = st.apply([
        feed.ev("kpi", None, metric="gmv", scope="global", value=1.0),
        feed.ev("device", "d2", status="ok", msg="fixed"),
        feed.ev("incident", "i1", title="x", severity="P2", status="open", opened_at=1.0, stores=["s1"]),
        feed.ev("device", "gone", status="down"),                     # unknown: general path creates it
    ], 131.0)
    assert st.devices["d2"]["status"] == "ok" and st.devices["d2"]["msg"] == "fixed"
    assert st.devices["gone"]["status"] == "down" and st.store_devices("s1") == ["d1", "d2"]
    assert d.devices == {"d2", "gone"} and d.kinds == {"scale", ""} and d.incidents == {"i1"}
    check_aggregates(st, 131.0)


def test_merge_does_not_alias_event_metrics(feed: Feed) -> None:
    st = LiveState()
    m = {"cpu": 1.0}
    st.apply([feed.ev("device", "d1", store="s1", metrics=m)], 1.0)
    st.apply([feed.ev("device", "d1", metrics={"temp": 3.0})], 2.0)
    assert m == {"cpu": 1.0}
    assert st.devices["d1"]["metrics"] == {"cpu": 1.0, "temp": 3.0}


def test_status_change_moves_counts_and_marks_dirty(feed: Feed) -> None:
    st = base_state(feed)
    d = st.apply([feed.ev("device", "d1", status="down")], 120.0)
    assert st.store_worst("s1") == "down"
    assert st.city_counts("hz")["down"] == 1 and st.city_counts("hz")["ok"] == 0
    assert d.devices == {"d1"} and d.stores == {"s1"} and d.cities == {"hz"} and d.kinds == {"pos"}
    assert not d.changes and not d.incidents and not d.voice and not d.all
    d2 = st.apply([feed.ev("device", "d1", metrics={"cpu": 0.2})], 121.0)
    assert d2.devices == {"d1"} and d2.stores == {"s1"} and d2.kinds == set()   # counts unchanged
    check_aggregates(st, 121.0)


def test_delete_removes_entity_and_counts(feed: Feed) -> None:
    st = base_state(feed)
    d = st.apply([feed.ev("device", "d2", deleted=True)], 130.0)
    assert "d2" not in st.devices and st.store_devices("s1") == ["d1"]
    assert st.store_counts("s1")["warn"] == 0 and "scale" not in st.kind_counts()
    assert "d2" in d.devices and "s1" in d.stores
    st.apply([feed.ev("device", "nope", deleted=True)], 131.0)
    assert st.counters["deleted_unknown"] == 1
    st.apply([feed.ev("device", "d1", deleted=False, status="warn")], 132.0)
    assert "deleted" not in st.devices["d1"] and st.devices["d1"]["status"] == "warn"
    check_aggregates(st, 132.0)


def test_store_delete_orphans_devices_then_reattach(feed: Feed) -> None:
    st = base_state(feed)
    st.apply([feed.ev("store", "s1", deleted=True)], 140.0)
    assert st.counters["orphan_devices"] == 2
    assert st.city_counts("hz")["ok"] == 0 and st.city_stores("hz") == ["s2"]
    assert st.store_devices("s1") == ["d1", "d2"]             # devices are kept
    assert st.orphan_store_ids() == ["s1"]
    st.apply([feed.ev("store", "s1", city=city("sh"))], 141.0)
    assert st.counters["orphan_devices"] == 0
    assert st.city_counts("sh")["ok"] == 1 and st.city_counts("sh")["warn"] == 1
    check_aggregates(st, 141.0)


def test_orphan_device_attached_when_store_appears(feed: Feed) -> None:
    st = LiveState()
    st.apply([feed.ev("device", "d9", store="s9", kind="gate", status="crit")], 1.0)
    assert st.counters["orphan_devices"] == 1
    assert st.store_worst("s9") == "crit"
    d = st.apply([feed.ev("store", "s9", city=city("bj"))], 2.0)
    assert st.counters["orphan_devices"] == 0
    assert st.city_counts("bj")["crit"] == 1 and "bj" in d.cities
    check_aggregates(st, 2.0)


def test_device_moving_between_stores_updates_both(feed: Feed) -> None:
    st = base_state(feed)
    d = st.apply([feed.ev("device", "d3", store="s3", status="ok")], 150.0)
    assert st.store_counts("s2")["crit"] == 0 and st.store_counts("s3")["ok"] == 1
    assert st.city_counts("hz")["crit"] == 0 and st.city_counts("sh")["ok"] == 1
    assert {"s2", "s3"} <= d.stores and {"hz", "sh"} <= d.cities
    st.apply([feed.ev("device", "d3", kind="camera")], 151.0)
    assert st.kind_counts()["camera"]["ok"] == 1 and st.kind_counts()["pos"]["ok"] == 1
    check_aggregates(st, 151.0)


def test_store_changing_city_moves_counts(feed: Feed) -> None:
    st = base_state(feed)
    st.apply([feed.ev("store", "s2", city=city("sh"))], 160.0)
    assert st.city_counts("hz")["crit"] == 0 and st.city_counts("sh")["crit"] == 1
    assert st.city_stores("sh") == ["s2", "s3"]
    check_aggregates(st, 160.0)


def test_seq_gap_raises_and_applies_nothing(feed: Feed) -> None:
    st = base_state(feed)
    feed.seq += 5
    batch = [feed.ev("device", "d1", status="down")]
    with pytest.raises(SeqGap) as ei:
        st.apply(batch, 170.0)
    assert (ei.value.expected, ei.value.got, ei.value.since) == (7, 12, 6)
    assert "expected seq 7, got 12" in str(ei.value)
    assert st.devices["d1"]["status"] == "ok" and st.seq == 6


def test_non_contiguous_batch_raises_before_applying(feed: Feed) -> None:
    st = base_state(feed)
    a = feed.ev("device", "d1", status="down")
    feed.seq += 1
    b = feed.ev("device", "d2", status="down")
    with pytest.raises(SeqGap) as ei:
        st.apply([a, b], 171.0)
    assert (ei.value.expected, ei.value.got) == (8, 9)
    assert st.devices["d1"]["status"] == "ok" and st.seq == 6


def test_duplicates_on_replay_overlap_are_skipped_and_counted(feed: Feed) -> None:
    st = base_state(feed)
    replay = Feed(seq=3)
    batch = [replay.ev("device", "d9", store="s1"), replay.ev("device", "d1", status="down"),
             replay.ev("device", "d3", status="down"), replay.ev("device", "d2", status="down")]
    st.apply(batch, 180.0)                                   # seqs 4..7: 4-6 already applied
    assert st.counters["skipped_duplicates"] == 3
    assert "d9" not in st.devices and st.devices["d1"]["status"] == "ok"
    assert st.devices["d2"]["status"] == "down" and st.seq == 7
    d = st.apply(batch, 181.0)                               # entirely old: nothing
    assert not d and st.counters["skipped_duplicates"] == 7


def test_first_batch_may_start_anywhere() -> None:
    st = LiveState()
    st.apply([Feed(seq=41).ev("store", "s1")], 1.0)
    assert st.seq == 42
    assert not st.apply([], 2.0) and st.seq == 42


def test_ttl_expiry_to_unknown_and_recovery(feed: Feed) -> None:
    st = LiveState(StateConfig(device_ttl_s=60.0))
    st.apply([feed.ev("store", "s1", city=city("hz")),
              feed.ev("device", "d1", store="s1", kind="pos", status="ok"),
              feed.ev("device", "d2", store="s1", kind="pos", status="ok", ttl_s=10.0)], 100.0)
    assert st.device_status("d2", 110.0) == "ok"
    assert st.device_status("d2", 110.5) == "unknown"        # even before tick
    d = st.tick(111.0)
    assert d.devices == {"d2"} and d.stores == {"s1"} and d.cities == {"hz"}
    assert st.store_counts("s1")["unknown"] == 1 and st.store_worst("s1") == "unknown"
    assert st.counters["expired_devices"] == 1
    check_aggregates(st, 111.0)
    assert not st.tick(112.0)                                # nothing new
    st.apply([feed.ev("device", "d1", metrics={"x": 1})], 150.0)   # d1 refreshed at 150
    st.tick(170.0)
    assert st.device_status("d1", 170.0) == "ok"             # 100 + 60 passed, but seen at 150
    d = st.apply([feed.ev("device", "d2", metrics={"x": 2})], 175.0)   # d2 recovers
    assert st.device_status("d2", 175.0) == "ok" and st.store_counts("s1")["unknown"] == 0
    assert "d2" in d.devices and "pos" in d.kinds
    st.tick(186.0)                                           # d2 again silent > 10 s
    assert st.device_status("d2", 186.0) == "unknown"
    check_aggregates(st, 186.0)
    st.tick(300.0)
    assert st.total_counts()["unknown"] == 2
    check_aggregates(st, 300.0)


def test_last_seen_is_the_state_clock_not_producer_ts(feed: Feed) -> None:
    st = LiveState(StateConfig(device_ttl_s=60.0))
    # a producer clock far in the future must not keep a dead device fresh
    st.apply([feed.ev("device", "d1", ts=10 ** 9, store="s1", status="ok")], 100.0)
    st.tick(200.0)
    assert st.device_status("d1", 200.0) == "unknown"


def test_ttl_shrink_and_grow(feed: Feed) -> None:
    st = LiveState(StateConfig(device_ttl_s=100.0))
    st.apply([feed.ev("device", "d1", store="s1", status="ok")], 0.0)
    st.apply([feed.ev("device", "d1", ttl_s=5.0)], 1.0)
    st.tick(7.0)
    assert st.device_status("d1", 7.0) == "unknown" and st.store_counts("s1")["unknown"] == 1
    st.apply([feed.ev("device", "d1", ttl_s=500.0)], 8.0)
    st.tick(400.0)
    assert st.device_status("d1", 400.0) == "ok"
    check_aggregates(st, 400.0)


def test_deleted_device_leaves_no_ttl_entry(feed: Feed) -> None:
    st = LiveState(StateConfig(device_ttl_s=10.0))
    st.apply([feed.ev("device", "d1", store="s1")], 0.0)
    st.apply([feed.ev("device", "d1", deleted=True)], 1.0)
    st.apply([feed.ev("device", "d1", store="s1", status="ok")], 2.0)
    st.tick(11.5)
    assert st.device_status("d1", 11.5) == "ok"              # old entry is stale
    st.tick(12.5)
    assert st.device_status("d1", 12.5) == "unknown"
    assert st.counters["expired_devices"] == 1
    check_aggregates(st, 12.5)


def test_feed_age_and_touch() -> None:
    st = LiveState()
    assert st.feed_age(5.0) is None
    st.touch(10.0)
    assert st.feed_age(12.5) == 2.5
    st.apply([], 20.0)
    assert st.feed_age(21.0) == 1.0


def test_controls_collected_in_order(feed: Feed) -> None:
    st = LiveState()
    a = feed.ev("control", command="banner", text="Doors open 9:00")
    b = feed.ev("control", command="switch_layout", layout="double11")
    d = st.apply([a, b], 1.0)
    assert d.controls == [a, b] and bool(d)
    assert st.counters["controls"] == 2


def test_dirty_merge_and_bool() -> None:
    a, b = Dirty(), Dirty()
    assert not a
    b.devices.add("d1")
    b.kpi.add(("gmv", "global"))
    b.voice = True
    b.controls.append({"command": "banner"})
    assert a.merge(b) is a
    assert a.devices == {"d1"} and a.voice and a.controls and a.kpi == {("gmv", "global")}
    assert Dirty.everything().all and bool(Dirty.everything())
    assert "devices=1" in repr(a)


def test_dirty_moved_names_created_deleted_and_moved_devices_only(feed: Feed) -> None:
    st = LiveState()
    d = st.apply([feed.ev("store", "s1", city=city("hz")), feed.ev("store", "s2", city=city("hz")),
                  feed.ev("device", "d1", store="s1", kind="pos", status="ok"),
                  feed.ev("device", "d2", store="s1", kind="pos", status="ok")], 100.0)
    assert d.moved == {"d1", "d2"}                                  # created
    d = st.apply([feed.ev("device", "d1", status="crit"),           # inline status path
                  feed.ev("device", "d2", status="warn", ttl_s=5.0, x_note="general path")], 101.0)
    assert d.devices == {"d1", "d2"} and not d.moved
    d = st.tick(5000.0)                                             # past TTL
    assert d.devices == {"d1", "d2"} and not d.moved
    d = st.apply([feed.ev("device", "d1", status="ok")], 5001.0)    # back from expiry
    assert not d.moved
    d = st.apply([feed.ev("device", "d1", store="s2"), feed.ev("device", "d2", kind="scale")], 5002.0)
    assert d.moved == {"d1", "d2"}                                  # another store, another kind
    d = st.apply([feed.ev("device", "d1", deleted=True)], 5003.0)
    assert d.moved == {"d1"} and Dirty().merge(d).moved == {"d1"} and "moved=1" in repr(d)


def test_incident_open_board_and_severity_counts(feed: Feed) -> None:
    st = base_state(feed)
    d = st.apply([
        feed.ev("incident", "i1", ts=500.0, severity="P2", stores=["s1"]),
        feed.ev("incident", "i2", ts=400.0, severity="P1", stores=["s2"], status="acknowledged"),
        feed.ev("incident", "i3", ts=300.0, severity="P2", stores=["s3"]),
    ], 200.0)
    assert [r["id"] for r in st.open_incidents()] == ["i2", "i3", "i1"]
    assert st.open_by_severity() == {"P1": 1, "P2": 2, "P3": 0, "P4": 0}
    assert d.incidents == {"i1", "i2", "i3"} and {"s1", "s2", "s3"} <= d.stores
    assert {"hz", "sh"} <= d.cities
    st.apply([feed.ev("incident", "i1", ts=600.0, status="resolved", resolved_at=650.0)], 201.0)
    assert [r["id"] for r in st.open_incidents()] == ["i2", "i3"]
    assert [r["id"] for r in st.recent_resolved(700.0, 100.0)] == ["i1"]
    assert st.recent_resolved(800.0, 100.0) == []
    assert [r["id"] for r in st.store_incidents("s1", include_resolved=True)] == ["i1"]
    assert st.store_incidents("s1") == []
    st.apply([feed.ev("incident", "i1", status="open")], 202.0)   # reopened
    assert st.open_by_severity()["P2"] == 2
    check_aggregates(st, 202.0)


def test_incident_and_change_defaults_filled(feed: Feed) -> None:
    st = LiveState()
    st.apply([feed.ev("incident", "i1", ts=42.0), feed.ev("change", "c1", ts=43.0)], 1.0)
    assert st.incidents["i1"]["opened_at"] == 42.0 and st.incidents["i1"]["severity"] == "P4"
    assert st.incidents["i1"]["status"] == "open"
    assert st.changes["c1"]["start"] == 43.0 and st.changes["c1"]["status"] == "planned"


def test_changes_in_window(feed: Feed) -> None:
    st = LiveState()
    st.apply([
        feed.ev("change", "long", start=1.0, end=10_000.0, status="succeeded"),
        feed.ev("change", "a", start=100.0, end=200.0, status="succeeded"),
        feed.ev("change", "b", start=300.0, end=None, status="running"),
        feed.ev("change", "c", start=5_000.0, end=5_100.0, status="failed"),
        feed.ev("change", "old_open", start=0.0, status="running"),
    ], 1.0)
    ids = lambda t0, t1: [r["id"] for r in st.changes_in_window(t0, t1)]  # noqa: E731
    assert ids(150.0, 250.0) == ["old_open", "long", "a"]
    assert ids(250.0, 260.0) == ["old_open", "long"]
    assert ids(250.0, 350.0) == ["old_open", "long", "b"]
    assert ids(20_000.0, 30_000.0) == ["old_open", "b"]
    st.apply([feed.ev("change", "a", start=6_000.0, end=6_001.0)], 2.0)   # moved in time
    assert ids(150.0, 250.0) == ["old_open", "long"]
    assert "a" in ids(6_000.5, 6_000.6)
    st.apply([feed.ev("change", "a", deleted=True)], 3.0)
    assert "a" not in ids(0.0, 10 ** 6)
    assert [r["id"] for r in st.store_changes("s1", 150.0, 250.0)] == ["old_open", "long"]


def test_store_changes_scope(feed: Feed) -> None:
    st = base_state(feed)
    st.apply([
        feed.ev("change", "direct", start=10.0, scope={"stores": ["s1"]}),
        feed.ev("change", "via_city", start=11.0, scope={"cities": ["hz"]}),
        feed.ev("change", "other", start=12.0, scope={"stores": ["s3"]}),
        feed.ev("change", "chain", start=13.0, scope={"systems": ["pos"]}),
    ], 1.0)
    assert [r["id"] for r in st.store_changes("s1", 0.0, 100.0)] == ["direct", "via_city", "chain"]


def test_voice_and_kpi_samples(feed: Feed) -> None:
    st = LiveState()
    d = st.apply([
        feed.ev("voice", ts=60.0, channel="app", text="slow checkout", sentiment=-0.5),
        feed.ev("voice", ts=61.0, channel="app", text="love it"),
        feed.ev("voice", ts=185.0, channel="weibo", text="queue"),
        feed.ev("kpi", ts=10.0, metric="gmv", scope="global", value=1.5, unit="M CNY"),
        feed.ev("kpi", ts=20.0, metric="gmv", scope="global", value=2.5),
    ], 1.0)
    assert d.voice and d.kpi == {("gmv", "global")}
    assert [v["text"] for v in st.voice_items(2)] == ["queue", "love it"]
    minutes, counts = st.voice_per_minute(0.0, 200.0)
    assert minutes.tolist() == [0.0, 60.0, 120.0, 180.0] and counts.tolist() == [0, 2, 0, 1]
    ts, vals = st.kpi_series("gmv", "global")
    assert ts.tolist() == [10.0, 20.0] and vals.tolist() == [1.5, 2.5]
    assert st.latest_kpi("gmv", "global") == (20.0, 2.5, "M CNY")
    assert st.latest_kpi("gmv", "city:hz") is None
    assert st.kpi_series("nope", "global")[0].size == 0
    assert st.kpi_keys() == [("gmv", "global")]


def test_unknown_event_type_refused_with_nothing_applied(feed: Feed) -> None:
    st = LiveState()
    with pytest.raises(P.ProtocolError, match=r"unknown event type 'mystery'.* at op apply, event 0"):
        st.apply([feed.ev("mystery", "x")], 1.0)
    assert st.counters["unknown_type"] == 0 and st.seq == 0 and st.feed_age(2.0) is None


def test_state_config_errors() -> None:
    with pytest.raises(ValueError, match=r"StateConfig.kpi_points: expected an integer >= 1, got 0"):
        StateConfig(kpi_points=0)
    with pytest.raises(ValueError, match=r"StateConfig.device_ttl_s: expected a finite number > 0"):
        StateConfig(device_ttl_s=-1)
    with pytest.raises(ValueError, match=r"StateConfig.max_voice_items: expected an integer"):
        StateConfig(max_voice_items=2.5)  # type: ignore[arg-type]


def test_state_imports_no_qt_asyncio_or_websockets() -> None:
    code = ("import sys, wallboard.state; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'websockets', 'asyncio', 'pyqtgraph')]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    assert r.returncode == 0, r.stdout + r.stderr


def test_grown_state_freezes_its_records_out_of_gc_scans(feed: Feed, monkeypatch) -> None:
    import gc

    from wallboard.state import model

    monkeypatch.setattr(model, "GC_FREEZE_STEP", 5)
    try:
        st = base_state(feed)                        # 6 records >= 5: frozen after apply
        frozen = gc.get_freeze_count()
        assert frozen > 0 and st._frozen_size == 6
        st.apply([feed.ev("device", "d4", store="s3", status="ok")], 101.0)
        assert st._frozen_size == 6                  # grew by 1 < 5: no new freeze
        st.apply([feed.ev("device", "d1", deleted=True), feed.ev("device", "d2", deleted=True)], 102.0)
        assert st._frozen_size == 5                  # shrunk: growth counted from here
        rec = st.devices["d3"]
        st2 = LiveState.from_snapshot(st.snapshot())
        assert st2._frozen_size == 5 and st2.devices["d3"] == rec
        # from_snapshot unfreezes, collects (what died while frozen goes) and freezes again:
        # the count can drop below the earlier one, but the live records are frozen again
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_snapshot_load_reclaims_cycles_that_died_while_frozen(feed: Feed, monkeypatch) -> None:
    import gc
    import weakref

    from wallboard.state import model

    class Node:
        pass

    monkeypatch.setattr(model, "GC_FREEZE_STEP", 5)
    try:
        a, b = Node(), Node()
        a.other, b.other = b, a                      # a reference cycle
        gone = weakref.ref(a)
        st = base_state(feed)                        # freezes the cycle with the records
        del a, b
        gc.collect()
        assert gone() is not None                    # frozen: the collector skips it
        LiveState.from_snapshot(st.snapshot())       # a resync unfreezes and collects
        assert gone() is None
    finally:
        gc.unfreeze()
