"""The columnar path (``devices`` frames -> ``LiveState.apply_devices``) gives the state
the object path (``events`` frames -> ``LiveState.apply``) gives, for any mix of events,
connections and ticks; and the ``devices`` frame's checks name what is wrong."""
from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as S

from test_state_helpers import check_aggregates, public_view
from test_state_props import CONFIG, SETTINGS, event, ts
from wallboard import protocol as P
from wallboard.state import LiveState

IDS = [f"d{i}" for i in range(7)]
# plain status updates with float metrics: what travels in columns (d5, d6: never
# created by an object event, so their first update is a new device)
col_update = S.fixed_dictionaries(
    {"type": S.just("device"), "id": S.sampled_from(IDS),
     "status": S.sampled_from(["ok", "ok", "warn", "crit", "down", "maint", "unknown"])},
    optional={"metrics": S.dictionaries(S.sampled_from(["cpu", "mem", "temp"]),
                                        S.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=2)})
mixed = S.one_of(event, col_update, col_update, col_update, col_update)
steps = S.lists(S.tuples(S.floats(0, 40, allow_nan=False), ts, S.lists(mixed, max_size=30),
                         S.integers(0, 9)), min_size=1, max_size=12)


class Wall:
    """One wall's connection: the hub side's encoder and the session's id list."""

    def __init__(self, min_run: int) -> None:
        self.min_run = min_run
        self.reconnect()

    def reconnect(self) -> None:
        self.enc = P.ColumnarEncoder(min_run=self.min_run)
        self.ids: list[str] = []

    def apply(self, st: LiveState, events: list[dict[str, Any]], now: float) -> int:
        encoded = [orjson.dumps(e) for e in events]
        n = 0
        for frame in self.enc.encode(events, encoded, P.MAX_FRAME):
            if frame.startswith(b'{"op":"devices"'):
                b = P.decode_devices(frame, len(self.ids))
                self.ids.extend(b.new_ids)
                b.ids = self.ids
                st.apply_devices(b, now)
                n += 1
            else:
                st.apply(P.decode(frame).events, now)
        return n


def _events(seq: int, t: float, evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for e in evs:
        seq += 1
        out.append({**e, "ts": t, "seq": seq})
    return out


def _same(a: LiveState, b: LiveState, now: float) -> None:
    # one count differs: ``batches`` (a batch may travel as several frames)
    va, vb, sa, sb = public_view(a, now), public_view(b, now), a.snapshot(), b.snapshot()
    for v in (va, vb, sa, sb):
        v["counters"] = {k: n for k, n in v["counters"].items() if k != "batches"}
    assert va == vb
    assert sa == sb


@SETTINGS
@given(plan=steps, min_run=S.sampled_from([1, 3, P.MIN_RUN]))
def test_columnar_equals_object_path(plan: list, min_run: int) -> None:
    obj, col, wall, now, seq, frames = LiveState(CONFIG), LiveState(CONFIG), Wall(min_run), 1000.0, 0, 0
    for dt, t, evs, knob in plan:
        now += dt
        events = _events(seq, t, evs)
        seq += len(events)
        if knob == 0:
            wall.reconnect()                     # a new connection (failover): a new dictionary
        if events:
            obj.apply(orjson.loads(orjson.dumps(events)), now)
            frames += wall.apply(col, events, now)
        if knob < 7:
            obj.tick(now)
            col.tick(now)
            check_aggregates(col, now)
        if knob == 9:                            # a reader in the middle (drill-down, snapshot)
            _same(obj, col, now)
    _same(obj, col, now)


def _wall_with(n_dev: int = 3) -> tuple[LiveState, Wall]:
    st, wall = LiveState(CONFIG), Wall(1)
    evs = [{"type": "store", "id": "s0", "city": {"id": "c0", "name": "C0"}}]
    evs += [{"type": "device", "id": f"d{i}", "store": "s0", "kind": "pos", "status": "ok"} for i in range(n_dev)]
    st.apply(_events(0, 1000.0, evs), 1000.0)
    return st, wall


def test_columnar_status_moves_counts_and_dirty() -> None:
    st, wall = _wall_with()
    evs = _events(st.seq, 1001.0, [
        {"type": "device", "id": "d0", "status": "crit", "metrics": {"cpu": 0.5}},
        {"type": "device", "id": "d1", "status": "warn"},
        {"type": "device", "id": "d0", "status": "down", "metrics": {"temp": 40.0}},
    ])
    assert wall.apply(st, evs, 1001.0) == 1
    assert st.store_counts("s0")["down"] == 1 and st.store_counts("s0")["warn"] == 1
    assert st.city_counts("c0")["ok"] == 1
    rec = st.devices["d0"]
    assert rec["status"] == "down" and rec["metrics"] == {"cpu": 0.5, "temp": 40.0}
    assert rec["seq"] == evs[-1]["seq"] and rec["last_seen"] == 1001.0 and rec["ts"] == 1001.0


def test_columnar_stale_device_turns_unknown_by_ttl() -> None:
    st, wall = _wall_with()
    wall.apply(st, _events(st.seq, 1010.0, [{"type": "device", "id": "d0", "status": "ok"}]), 1010.0)
    st.tick(1000.0 + CONFIG.device_ttl_s + 1)               # d1, d2 silent: unknown; d0 not yet
    assert st.store_counts("s0")["unknown"] == 2
    assert st.device_status("d0", 1000.0 + CONFIG.device_ttl_s + 1) == "ok"
    st.tick(1010.0 + CONFIG.device_ttl_s + 1)
    assert st.store_counts("s0")["unknown"] == 3
    # a recovering (expired) device takes the object path inside the frame
    wall.apply(st, _events(st.seq, 1100.0, [{"type": "device", "id": "d2", "status": "warn"}]), 1100.0)
    assert st.store_counts("s0")["warn"] == 1 and st.store_counts("s0")["unknown"] == 2


def test_columnar_seq_gap_and_overlap() -> None:
    st, wall = _wall_with()
    seq = st.seq
    evs = _events(seq + 5, 1001.0, [{"type": "device", "id": "d0", "status": "warn"}])
    frame = wall.enc.encode(evs, [orjson.dumps(e) for e in evs], P.MAX_FRAME)[0]
    b = P.decode_devices(frame, 0)
    b.ids = list(b.new_ids)
    from wallboard.state.dirty import SeqGap
    with pytest.raises(SeqGap):
        st.apply_devices(b, 1001.0)
    assert st.seq == seq and st.devices["d0"]["status"] == "ok"
    evs = _events(seq - 1, 1001.0, [{"type": "device", "id": "d1", "status": "crit"},
                                    {"type": "device", "id": "d0", "status": "warn"}])
    frame = P.ColumnarEncoder(min_run=1).encode(evs, [orjson.dumps(e) for e in evs], P.MAX_FRAME)[0]
    b = P.decode_devices(frame, 0)
    b.ids = list(b.new_ids)
    st.apply_devices(b, 1001.0)                              # the first row was applied already
    assert st.counters["skipped_duplicates"] == 1
    assert st.devices["d1"]["status"] == "ok" and st.devices["d0"]["status"] == "warn"


def _frame(**over: Any) -> bytes:
    f = {"op": "devices", "seq": 5, "ids_from": 0, "new_ids": ["a", "b"], "dev": [0, 1],
         "ts": [1.0, 2.0], "status": [0, 1], "metrics": {"cpu": [0.5, None]}}
    f.update(over)
    return orjson.dumps({k: v for k, v in f.items() if v is not ...})


@pytest.mark.parametrize("over,known,code,field,text", [
    ({"status": [0, 6]}, 0, "bad_value", "status[1]", "Expected `int` <= 5"),
    ({"ts": [1.0, "x"]}, 0, "bad_type", "ts[1]", "Expected `float`, got `str`"),
    ({"dev": ...}, 0, "missing_field", None, "Object missing required field `dev`"),
    ({"extra": 1}, 0, "unknown_field", None, "Object contains unknown field `extra`"),
    ({"ts": [1.0]}, 0, "bad_value", "ts", "1 values for 2 events"),
    ({"metrics": {"cpu": [1.0]}}, 0, "bad_value", "metrics.cpu", "1 values for 2 events"),
    ({}, 3, "bad_value", "ids_from", "ids_from 0 after 3 ids on this connection"),
    ({"dev": [0, 2]}, 0, "bad_value", "dev[1]", "device index 2 was never announced"),
    ({"dev": [], "ts": [], "status": [], "metrics": {}}, 0, "bad_value", "dev", "0 events"),
    ({"new_ids": ["a", ""]}, 0, "bad_value", "new_ids[1]", "Expected `str` of length >= 1"),
])
def test_devices_frame_errors_name_the_field(over: dict, known: int, code: str, field: str | None,
                                             text: str) -> None:
    with pytest.raises(P.ProtocolError) as e:
        P.decode_devices(_frame(**over), known)
    assert e.value.code == code and e.value.op == "devices" and e.value.field == field
    assert text in str(e.value)


def test_devices_frame_not_json() -> None:
    with pytest.raises(P.ProtocolError) as e:
        P.decode_devices(b'{"op":"devices",', 0)
    assert e.value.code == "not_json"


def test_encoder_keeps_other_events_as_objects_and_withdraws_ids_of_too_large_frames() -> None:
    enc = P.ColumnarEncoder(min_run=2)
    evs = _events(0, 1.0, [{"type": "device", "id": "a", "status": "ok"},
                           {"type": "device", "id": "b", "status": "ok", "metrics": {"n": 1}},   # int metric
                           {"type": "device", "id": "c", "status": "ok"},
                           {"type": "device", "id": "d", "status": "warn", "metrics": {"cpu": 0.5}}])
    frames = enc.encode(evs, [orjson.dumps(e) for e in evs], P.MAX_FRAME)
    assert [f[:15] for f in frames] == [b'{"op":"events",', b'{"op":"devices"']
    assert P.decode(frames[0]).events == evs[:2]
    b = P.decode_devices(frames[1], 0)
    b.ids = b.new_ids
    assert b.events() == evs[2:]
    assert enc.index == {"c": 0, "d": 1}
    more = _events(4, 1.0, [{"type": "device", "id": "e", "status": "ok"}, {"type": "device", "id": "f", "status": "ok"}])
    frames = enc.encode(more, [orjson.dumps(e) for e in more], 60)      # over 60 bytes: objects
    assert [f[:15] for f in frames] == [b'{"op":"events",'] and enc.index == {"c": 0, "d": 1}
