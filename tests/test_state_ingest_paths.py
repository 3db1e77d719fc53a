"""The hot ingest paths: the protocol's uniform-batch fast check and ``LiveState.apply``'s
inline path for device status updates. Each shortcut must give exactly what the general
path gives (same events, same errors, same records and counts)."""
from __future__ import annotations

import io
import sys
from contextlib import redirect_stdout
from pathlib import Path

import orjson
import pytest

from test_state_helpers import Feed, check_aggregates
from wallboard import protocol as P
from wallboard.state import LiveState

T = 1790000000.5


def status_ev(i: int, **kw) -> dict:
    ev = {"type": "device", "id": f"d{i}", "ts": T + i, "status": "ok",
          "metrics": {"cpu": 0.5, "temp": 41}, "seq": i + 1}
    ev.update(kw)
    return ev


def loaded(events: list[dict]) -> list[dict]:
    return orjson.loads(orjson.dumps(events))


def fast(events: list[dict], require: bool = True) -> bool:
    return P._batch_is_plainly_valid(loaded(events), require, require)


def decoded(events: list[dict]):
    try:
        return P.decode(orjson.dumps({"op": "events", "events": events})).events
    except P.ProtocolError as e:
        return (e.code, e.index, e.field)


def general(events: list[dict]):
    try:
        return P._validate_batch(loaded(events), "events", require_seq=True, require_ts=True)
    except P.ProtocolError as e:
        return (e.code, e.index, e.field)


# ------------------------------------------------------------------ protocol fast check


def test_uniform_status_batch_is_plainly_valid_and_unchanged():
    events = [status_ev(i) for i in range(6)]
    assert fast(events)
    assert decoded(events) == events == general(events)


def test_equal_key_counts_with_other_keys_fall_back_to_the_key_union():
    # same number of keys per event, but not the same keys: the uniform check must not
    # take the first event's keys for everyone's
    events = [status_ev(0), {k: v for k, v in status_ev(1).items() if k != "metrics"} | {"msg": "m"}]
    assert fast(events)
    assert decoded(events) == general(events) == events


@pytest.mark.parametrize("bad, want", [
    ({"bogus": 1}, ("unknown_field", 1, "bogus")),
    ({"x_src": 1}, None),                                     # extension field: valid
    ({"store": 7}, ("bad_type", 1, "store")),
])
def test_an_odd_key_in_place_of_one_of_the_first_events_keys(bad, want):
    ev1 = {k: v for k, v in status_ev(1).items() if k != "metrics"} | bad
    events = [status_ev(0), ev1, status_ev(2)]
    got = decoded(events)
    assert got == general(events)
    if want is None:
        assert got == events
    else:
        assert got == want and not fast(events)


@pytest.mark.parametrize("mutate, want", [
    (lambda e: e.update(seq=3.0), ("bad_type", 2, "seq")),            # integral float seq
    (lambda e: e.update(ts=int(T)), None),                             # int ts: normalised
    (lambda e: e.update(id=5), ("bad_type", 2, "id")),
    (lambda e: e.update(id=""), ("bad_value", 2, "id")),
    (lambda e: e.update(status="fine"), ("bad_value", 2, "status")),
    (lambda e: e["metrics"].update(cpu=True), ("bad_type", 2, "metrics.cpu")),
    (lambda e: e["metrics"].update(cpu="1"), ("bad_type", 2, "metrics.cpu")),
    (lambda e: e["metrics"].pop("cpu") and e["metrics"].update(mem=1.0), None),  # other names
    (lambda e: e.update(metrics=[1, 2]), ("bad_type", 2, "metrics")),
    (lambda e: e.update(metrics="ab"), ("bad_type", 2, "metrics")),
    (lambda e: e["metrics"].update({"m" * 201: 1.0}), ("bad_value", 2, "metrics." + "m" * 40)),
])
def test_uniform_batch_columns_agree_with_the_general_path(mutate, want):
    events = [status_ev(i) for i in range(4)]
    mutate(events[2])
    got = decoded(events)
    assert got == general(events)
    if want is None:
        assert type(got) is list and all(type(e["ts"]) is float for e in got)
    else:
        assert got == want
        assert not fast(events)


def test_a_bool_first_seq_is_refused():
    events = [status_ev(0, seq=True), status_ev(1, seq=2)]
    assert not fast(events)
    assert decoded(events) == general(events) == ("bad_type", 0, "seq")


def test_uniform_publish_batch_without_seq_and_with_one():
    evs = [{k: v for k, v in status_ev(i).items() if k != "seq"} for i in range(3)]
    assert fast(evs, require=False)
    evs[0]["seq"] = 1                                        # producers' seq: general path
    assert not fast(evs, require=False)


# ------------------------------------------------------------------ LiveState.apply inline path


def fleet(feed: Feed) -> LiveState:
    st = LiveState()
    st.apply([feed.ev("store", "s1", city={"id": "hz", "name": "HZ"}),
              feed.ev("store", "s2", city={"id": "sh", "name": "SH"})]
             + [feed.ev("device", f"d{i}", store="s1", kind="pos", status="ok",
                        metrics={"cpu": 0.1}) for i in range(4)], 100.0)
    return st


def twin_apply(events_of) -> tuple[LiveState, LiveState]:
    """Apply the same events to two states, the second with an ``x_probe`` field on every
    device event (it forces ``Fleet.apply_device``, the general path)."""
    a, b = fleet(Feed()), fleet(Feed())
    fa, fb = Feed(seq=a.seq), Feed(seq=b.seq)
    a.apply(events_of(fa, False), 120.0)
    b.apply(events_of(fb, True), 120.0)
    for rec in b.devices.values():
        rec.pop("x_probe", None)
    return a, b


def test_mixed_status_metric_only_and_named_updates_match_the_general_path():
    def events(f: Feed, probe: bool):
        x = {"x_probe": 1} if probe else {}
        return [
            f.ev("device", "d0", status="warn", metrics={"cpu": 0.9}, **x),        # the usual six keys
            f.ev("device", "d1", metrics={"temp": 40.0}, **x),                     # metrics only
            f.ev("device", "d2", status="down", **x),                              # status only
            f.ev("device", "d3", status="ok", metrics={"cpu": 0.2}, msg="hi", name="Till", **x),
            f.ev("device", "d0", status="ok", metrics={"cpu": 0.3}, **x),          # again, same batch
            f.ev("kpi", None, metric="gmv", scope="global", value=1.0),
        ]
    a, b = twin_apply(events)
    assert a.devices == b.devices
    assert a.kind_counts() == b.kind_counts() and a.store_counts("s1") == b.store_counts("s1")
    assert a.devices["d0"]["metrics"] == {"cpu": 0.3} and a.devices["d3"]["name"] == "Till"
    check_aggregates(a, 120.0)


def test_six_keys_without_ts_are_refused_like_an_events_frame():
    # type, id, seq, status, metrics + msg: six keys but no ts (a publish-style event):
    # the state takes what an ``events`` frame carries, so ts is required, and nothing moves
    st = fleet(Feed())
    before = st.snapshot()
    ev = {"type": "device", "id": "d1", "seq": st.seq + 1, "status": "crit",
          "metrics": {"cpu": 0.7}, "msg": "hot"}
    with pytest.raises(P.ProtocolError, match=r"missing_field: 'ts' is required at op apply, event 0"):
        st.apply([ev], 130.0)
    assert st.snapshot() == before


def test_six_keys_with_store_move_the_device():
    feed = Feed()
    st = fleet(feed)
    st.apply([feed.ev("device", "d2", status="warn", store="s2")], 140.0)   # six keys, one is store
    assert st.devices["d2"]["store"] == "s2" and st.store_devices("s2") == ["d2"]
    assert st.store_counts("s2")["warn"] == 1 and st.store_counts("s1")["ok"] == 3
    check_aggregates(st, 140.0)


def test_new_device_records_keep_every_key_hot_ones_first():
    feed = Feed()
    st = LiveState()
    ev = feed.ev("device", "d9", store="s1", kind="pos", name="Till 9", status="ok",
                 metrics={"cpu": 0.1}, x_src="zbx")
    st.apply([ev], 50.0)
    rec = st.devices["d9"]
    assert list(rec)[:6] == ["ts", "seq", "status", "metrics", "store", "last_seen"]
    assert rec == {**ev, "last_seen": 50.0}
    assert rec["metrics"] is not ev["metrics"]


# ------------------------------------------------------------------ benchmark floor


def test_ingest_benchmark_prints_the_floor_in_its_one_json_object():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    try:
        import ingest
    finally:
        sys.path.pop(0)
    out = io.StringIO()
    with redirect_stdout(out):
        ingest.main(["--events", "1000", "--devices", "500", "--stores", "10", "--repeat", "1"])
    data = orjson.loads(out.getvalue())
    for key in ("events", "events_per_s", "orjson_loads_per_s", "ratio", "floor_lookup_ratio",
                "floor_minimal_apply_ratio", "floor", "us_per_event", "peak_rss_mb"):
        assert key in data
    assert 0 < data["floor_minimal_apply_ratio"] and 0 < data["floor_lookup_ratio"]
    assert data["devices"] == 500 and sum(data["status_counts"].values()) == 500
