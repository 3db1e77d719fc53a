"""Property tests: incremental views equal a brute-force recomputation after random event
sequences, and snapshots round-trip exactly (also through JSON and split parts)."""
from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as S

from test_state_helpers import Feed, check_aggregates, public_view
from wallboard import protocol as P
from wallboard.state import LiveState, StateConfig

CONFIG = StateConfig(device_ttl_s=50.0, max_resolved_incidents=3, resolved_keep_s=200.0,
                     max_open_incidents=4, max_finished_changes=3, finished_keep_s=150.0,
                     max_active_changes=4, max_voice_items=5, voice_window_minutes=5,
                     kpi_points=4, max_kpi_series=3)

ts = S.floats(min_value=0, max_value=5000, allow_nan=False).map(lambda x: round(x, 3))
city = S.sampled_from(["c0", "c1", "c2"]).map(lambda c: {"id": c, "name": c.upper()})
maybe = S.booleans()


def entity(type_: str, ids: list[str], fields: dict[str, Any],
           required: dict[str, Any] | None = None) -> S.SearchStrategy:
    live = S.fixed_dictionaries({"type": S.just(type_), "id": S.sampled_from(ids), **(required or {})},
                                optional=fields)
    dead = S.fixed_dictionaries({"type": S.just(type_), "id": S.sampled_from(ids),
                                 "deleted": S.sampled_from([True, False])})
    return S.one_of(live, live, live, dead)


stores = entity("store", ["s0", "s1", "s2"], {
    "status": S.sampled_from(["open", "opening", "closed"]), "name": S.text(max_size=3)},
    required={"city": city})
stores_plain = entity("store", ["s0", "s1", "s2", "s3"], {"name": S.text(max_size=3)})
devices = entity("device", [f"d{i}" for i in range(5)], {
    "kind": S.sampled_from(["pos", "scale", "ap"]),
    "status": S.sampled_from(["ok", "warn", "crit", "down", "maint", "unknown"]),
    "ttl_s": S.sampled_from([5.0, 20.0, 100.0]),
    "metrics": S.dictionaries(S.sampled_from(["cpu", "mem", "temp"]), S.integers(0, 100), max_size=2),
    "msg": S.text(max_size=3),
}, required={"store": S.sampled_from(["s0", "s1", "s2", "s9"])})
device_status = S.fixed_dictionaries({"type": S.just("device"), "id": S.sampled_from([f"d{i}" for i in range(5)]),
                                      "status": S.sampled_from(["ok", "warn", "crit"])})
# the inline path of apply: any mix of the fast keys
device_update = S.fixed_dictionaries(
    {"type": S.just("device"), "id": S.sampled_from([f"d{i}" for i in range(5)])},
    optional={"status": S.sampled_from(["ok", "warn", "unknown"]), "msg": S.text(max_size=2),
              "name": S.text(max_size=2),
              "metrics": S.dictionaries(S.sampled_from(["cpu", "mem"]), S.integers(0, 9), max_size=2)})
incidents = entity("incident", ["i0", "i1", "i2", "i3", "i4", "i5"], {
    "severity": S.sampled_from(["P1", "P2", "P3", "P4"]),
    "status": S.sampled_from(["open", "acknowledged", "resolved"]),
    "stores": S.lists(S.sampled_from(["s0", "s1", "s2", "s9"]), max_size=2),
    "opened_at": ts, "resolved_at": S.one_of(S.none(), ts),
    "suspect_changes": S.lists(S.sampled_from(["c0", "c1"]), max_size=1),
})
changes = entity("change", ["c0", "c1", "c2", "c3", "c4", "c5", "c6"], {
    "status": S.sampled_from(["planned", "running", "succeeded", "failed", "rolled_back"]),
    "start": ts, "end": S.one_of(S.none(), ts), "approved": maybe,
    "scope": S.fixed_dictionaries({}, optional={"stores": S.lists(S.sampled_from(["s0", "s1"]), max_size=2),
                                                "cities": S.lists(S.sampled_from(["c0", "c1"]), max_size=1)}),
})
voice = S.fixed_dictionaries({"type": S.just("voice"), "channel": S.just("app"), "text": S.text(max_size=4)},
                             optional={"sentiment": S.floats(-1, 1), "store": S.just("s1")})
kpi = S.fixed_dictionaries({"type": S.just("kpi"), "metric": S.sampled_from(["gmv", "orders", "aov", "uv"]),
                            "scope": S.sampled_from(["global", "city:c0"]),
                            "value": S.floats(-1e6, 1e6, allow_nan=False)},
                           optional={"unit": S.just("CNY")})
event = S.one_of(stores, stores, stores_plain, devices, devices, device_status, device_status, device_update, device_update,
                 incidents, changes, voice, kpi)
# a step: (seconds to advance, event ts, events)
steps = S.lists(S.tuples(S.floats(0, 40, allow_nan=False), ts, S.lists(event, max_size=10)),
                min_size=1, max_size=12)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(st: LiveState, feed: Feed, plan: list, now: float, check: bool) -> float:
    for dt, t, evs in plan:
        now += dt
        batch = [feed.ev(e["type"], e.get("id"), ts=t, **{k: v for k, v in e.items()
                                                          if k not in ("type", "id")}) for e in evs]
        st.apply(batch, now)
        st.tick(now)
        if check:
            check_aggregates(st, now)
    return now


@SETTINGS
@given(plan=steps)
def test_aggregates_equal_brute_force(plan: list) -> None:
    st = LiveState(CONFIG)
    run(st, Feed(), plan, 1000.0, check=True)


@SETTINGS
@given(plan=steps)
def test_aggregates_with_default_config_and_lazy_ticks(plan: list) -> None:
    st, feed, now = LiveState(), Feed(), 0.0
    for dt, t, evs in plan:                                  # tick only every other step
        now += dt
        st.apply([feed.ev(e["type"], e.get("id"), ts=t, **{k: v for k, v in e.items()
                                                          if k not in ("type", "id")}) for e in evs], now)
        if feed.seq % 2:
            st.tick(now)
            check_aggregates(st, now)


@SETTINGS
@given(plan=steps, more=steps)
def test_snapshot_round_trip_exact(plan: list, more: list) -> None:
    st, feed = LiveState(CONFIG), Feed()
    now = run(st, feed, plan, 1000.0, check=False)
    snap = st.snapshot()
    wire = orjson.loads(orjson.dumps(snap))                  # JSON-serialisable, floats exact
    assert wire == snap
    st2 = LiveState.from_snapshot(wire, CONFIG)
    assert public_view(st2, now) == public_view(st, now)
    assert st2.snapshot() == snap
    parts = P.split_snapshot(snap, max_records=3)
    st3 = LiveState.from_snapshot(P.merge_snapshot_parts(parts), CONFIG)
    assert st3.snapshot() == snap
    # both states go on identically (heap, FIFOs, rings were restored too)
    feed2 = Feed(seq=feed.seq)
    end1 = run(st, feed, more, now, check=False)
    end2 = run(st2, feed2, more, now, check=False)
    assert public_view(st2, end2) == public_view(st, end1)
    assert st2.snapshot() == st.snapshot()


@SETTINGS
@given(plan=steps)
def test_batches_equal_one_event_at_a_time(plan: list) -> None:
    # apply() decides per batch whether device events need the per-event key check;
    # splitting every batch into single events must not change the resulting state
    whole, single, f1, f2, now = LiveState(CONFIG), LiveState(CONFIG), Feed(), Feed(), 1000.0
    for dt, t, evs in plan:
        now += dt
        batch = [f1.ev(e["type"], e.get("id"), ts=t, **{k: v for k, v in e.items() if k not in ("type", "id")})
                 for e in evs]
        whole.apply(batch, now)
        single.touch(now)
        for e in evs:
            single.apply([f2.ev(e["type"], e.get("id"), ts=t,
                                **{k: v for k, v in e.items() if k not in ("type", "id")})], now)
        whole.tick(now)
        single.tick(now)
    assert whole.snapshot()["devices"] == single.snapshot()["devices"]
    a, b = public_view(whole, now), public_view(single, now)
    for v in (a, b):                                         # batches: the one count that differs
        v["counters"] = {k: n for k, n in v["counters"].items() if k != "batches"}
    assert a == b
