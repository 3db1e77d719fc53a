"""Snapshots: layout, copies, and a precise SnapshotError for every malformed input."""
from __future__ import annotations

import copy

import orjson
import pytest

from test_state_helpers import Feed, public_view
from wallboard.state import Dirty, LiveState, SnapshotError, StateConfig


def sample_state() -> tuple[LiveState, Feed]:
    f, st = Feed(), LiveState(StateConfig(device_ttl_s=30.0))
    st.apply([
        f.ev("store", "s1", city={"id": "hz", "name": "Hangzhou"}, lat=30.2, lon=120.1),
        f.ev("device", "d1", store="s1", kind="pos", status="ok", metrics={"cpu": 0.5}),
        f.ev("device", "d2", store="s1", kind="pos", status="warn", ttl_s=5.0),
        f.ev("device", "d3", store="s404", kind="ap", status="crit"),
        f.ev("change", "c1", start=900.0, end=950.0, status="failed", scope={"stores": ["s1"]}),
        f.ev("incident", "i1", opened_at=1000.0, severity="P1", stores=["s1"]),
        f.ev("incident", "i2", opened_at=1000.0, status="resolved", resolved_at=1100.0),
        f.ev("voice", ts=1000.0, channel="app", text="slow"),
        f.ev("kpi", ts=1000.0, metric="gmv", scope="global", value=3.5, unit="M"),
    ], 100.0)
    st.tick(110.0)                                           # d2 expires
    return st, f


def test_snapshot_layout_and_round_trip() -> None:
    st, _ = sample_state()
    snap = st.snapshot()
    for key in ("stores", "devices", "changes", "incidents", "voice", "kpi", "expired_devices",
                "finished_changes", "resolved_incidents", "voice_minutes"):
        assert isinstance(snap[key], list), key
    assert snap["version"] == 2 and snap["seq"] == 9 and snap["expired_devices"] == ["d2"]
    assert snap["clock"] == 110.0                            # the latest time the state saw
    assert snap["devices"][0]["last_seen"] == 100.0
    assert snap["finished_changes"] == [["c1", 950.0]] and snap["resolved_incidents"] == [["i2", 1100.0]]
    st2 = LiveState.from_snapshot(orjson.loads(orjson.dumps(snap)), StateConfig(device_ttl_s=30.0))
    assert public_view(st2, 120.0) == public_view(st, 120.0)
    assert st2.device_status("d2", 111.0) == "unknown" and st2.store_counts("s1")["unknown"] == 1
    assert st2.counters["orphan_devices"] == 1
    st2.tick(131.0)                                          # ttl keeps running after a load
    assert st2.device_status("d1", 131.0) == "unknown"


def test_snapshot_is_a_copy_both_ways() -> None:
    st, f = sample_state()
    snap = st.snapshot()
    before = copy.deepcopy(snap)
    st.apply([f.ev("device", "d1", metrics={"cpu": 0.9}, status="down")], 120.0)
    assert snap == before                                    # live state does not alias it
    st2 = LiveState.from_snapshot(snap)
    st2.apply([Feed(seq=st2.seq).ev("device", "d1", metrics={"cpu": 0.1})], 121.0)
    assert snap == before


def test_empty_state_round_trip() -> None:
    st = LiveState()
    assert LiveState.from_snapshot(st.snapshot()).snapshot() == st.snapshot()
    assert Dirty.everything().all


def bad(mutate) -> SnapshotError:
    st, _ = sample_state()
    snap = st.snapshot()
    mutate(snap)
    with pytest.raises(SnapshotError) as ei:
        LiveState.from_snapshot(snap)
    return ei.value


@pytest.mark.parametrize("mutate, path, text", [
    (lambda s: s.__setitem__("version", 3), "version", "is 3 (expected 1 or 2)"),
    (lambda s: s.__setitem__("clock", "noon"), "clock", "expected a number or null"),
    (lambda s: s.__setitem__("seq", -1), "seq", "expected an integer >= 0"),
    (lambda s: s.__setitem__("feed_at", "x"), "feed_at", "expected a number or null"),
    (lambda s: s.__setitem__("counters", {"a": 1.5}), "counters", "expected {str: int}"),
    (lambda s: s.__setitem__("voice_newest", 1.5), "voice_newest", "expected an integer or null"),
    (lambda s: s.__setitem__("devices", {}), "devices", "is dict (expected a list)"),
    (lambda s: s["stores"].__setitem__(0, 5), "stores[0]", "is int (expected an object)"),
    (lambda s: s["devices"][1].__setitem__("type", "store"), "devices[1].type", "expected 'device'"),
    (lambda s: s["devices"][0].pop("last_seen"), "devices[0].last_seen", "missing (expected a number)"),
    (lambda s: s["devices"][0].__setitem__("status", "green"), "devices[0].status", "expected a device status"),
    (lambda s: s["devices"][0].__setitem__("id", ""), "devices[0].id", "expected a string id"),
    (lambda s: s["stores"][0].__setitem__("lat", 200), "stores[0].lat", "lat"),
    (lambda s: s["stores"][0].__setitem__("colour", "red"), "stores[0].colour", "unknown field"),
    (lambda s: s["changes"][0].__setitem__("start", None), "changes[0].start", "expected a number"),
    (lambda s: s["incidents"][0].__setitem__("severity", "P9"), "incidents[0].severity", "P1..P4"),
    (lambda s: s["expired_devices"].append("ghost"), "expired_devices[1]", "the id of a device"),
    (lambda s: s["finished_changes"].append(["nope", 1.0]), "finished_changes[1]", "[known id, number]"),
    (lambda s: s["resolved_incidents"].__setitem__(0, ["i2"]), "resolved_incidents[0]", "[known id, number]"),
    (lambda s: s["voice"][0].pop("text"), "voice[0].text", "'text' is required"),
    (lambda s: s["voice_minutes"].append([1.5, 2]), "voice_minutes[1]", "[minute start, count] integers"),
    (lambda s: s["kpi"].append([]), "kpi[1]", "is list (expected an object)"),
    (lambda s: s["kpi"][0].__setitem__("metric", 3), "kpi[0].metric", "expected a string"),
    (lambda s: s["kpi"][0].__setitem__("unit", 3), "kpi[0].unit", "expected a string or null"),
    (lambda s: s["kpi"][0]["ts"].append(1.0), "kpi[0].ts", "same length"),
    (lambda s: s["kpi"][0].__setitem__("values", ["x"]), "kpi[0].values", "non-number"),
])
def test_snapshot_errors_name_path_and_expectation(mutate, path, text) -> None:
    e = bad(mutate)
    assert e.path == path
    assert str(e).startswith(f"snapshot {path}:")
    assert text in str(e)


def test_snapshot_root_must_be_object() -> None:
    with pytest.raises(SnapshotError, match=r"snapshot \(root\): is list \(expected an object\)"):
        LiveState.from_snapshot([])  # type: ignore[arg-type]


def test_validate_false_skips_field_checks_but_keeps_structure_checks() -> None:
    st, _ = sample_state()
    snap = st.snapshot()
    snap["stores"][0]["lat"] = 200
    assert LiveState.from_snapshot(snap, validate=False).stores["s1"]["lat"] == 200
    snap["devices"][0]["status"] = "green"
    with pytest.raises(SnapshotError, match="devices.0..status"):
        LiveState.from_snapshot(snap, validate=False)


def test_fifo_pairs_must_name_finished_or_resolved_records() -> None:
    e = bad(lambda s: s["resolved_incidents"].append(["i1", 5.0]))
    assert e.path == "resolved_incidents[1]" and "'i1' has status 'open'" in str(e)
    assert "expected the id of a resolved incident" in str(e)
    e = bad(lambda s: s["finished_changes"].__setitem__(0, ["c1", 1.0]) or
            s["changes"][0].__setitem__("status", "running"))
    assert e.path == "finished_changes[0]" and "finished change" in str(e)


def test_load_into_smaller_config_enforces_its_bounds() -> None:
    f, st = Feed(), LiveState()
    for i in range(20):
        st.apply([f.ev("incident", f"r{i:02d}", status="resolved", resolved_at=float(i)),
                  f.ev("change", f"c{i:02d}", start=float(i), end=float(i + 1), status="succeeded"),
                  f.ev("voice", ts=i * 60.0, channel="app", text="x"),
                  f.ev("kpi", ts=float(i), metric=f"m{i}", scope="global", value=1.0)], 1.0)
    snap = st.snapshot()
    snap["resolved_incidents"] = snap["resolved_incidents"][5:]        # FIFO misses r00..r04
    small = StateConfig(max_resolved_incidents=4, max_finished_changes=3, max_voice_items=2,
                        voice_window_minutes=5, kpi_points=2, max_kpi_series=6)
    st2 = LiveState.from_snapshot(snap, small)
    assert len(st2.incidents) == 4 and len(st2.changes) == 3
    assert len(st2.voice_items(100)) == 2 and len(st2._voice.minutes) <= 5
    assert len(st2.kpi_keys()) == 6
