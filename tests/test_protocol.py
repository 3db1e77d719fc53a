"""Wire protocol v1: every message round-trips, every malformed input is a ProtocolError
that says where and what was expected, and nothing else escapes the decoder."""
from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wallboard import protocol as P


def frame(obj) -> bytes:
    return orjson.dumps(obj)


def dev(seq=1, **kw):
    ev = {"type": "device", "id": "sh-001-pos-01", "ts": 1790000000.0, "seq": seq,
          "store": "sh-001", "kind": "pos", "status": "ok"}
    ev.update(kw)
    return ev


VALID_EVENTS = [
    {"type": "store", "id": "sh-001", "ts": "2026-09-28T09:28:00+08:00", "name": "上海南京西路店",
     "name_en": "Shanghai West Nanjing Rd", "city": {"id": "sh", "name": "上海", "name_en": "Shanghai"},
     "lat": 31.23, "lon": 121.47, "status": "opening", "opens_at": "2026-09-28T09:28:00+08:00",
     "tags": ["launch-928"]},
    dev(metrics={"cpu": 12.5, "txn_per_min": 4}, msg="fine", ttl_s=120),
    {"type": "change", "id": "chg-1", "ts": 1, "title": "SCO config push", "system": "sco",
     "owner": "ops", "scope": {"stores": ["sh-001"], "cities": [], "systems": ["sco"]},
     "status": "running", "start": 1790000000, "end": None, "approved": False, "risk": "high"},
    {"type": "incident", "id": "inc-1", "ts": 1, "title": "SCO down", "severity": "P1",
     "status": "open", "stores": ["sh-001"], "owner": "duty", "opened_at": 1790000000,
     "acknowledged_at": None, "resolved_at": None, "suspect_changes": ["chg-1"],
     "tags": ["payments"], "kinds": ["self_checkout"]},
    {"type": "voice", "ts": 1, "channel": "app", "text": "排队太长", "sentiment": -0.8,
     "topic": "queue", "store": "sh-001"},
    {"type": "kpi", "ts": 1, "metric": "orders_per_s", "scope": "global", "value": 1234, "unit": "1/s"},
    {"type": "control", "ts": 1, "command": "switch_layout", "layout": "double-11"},
    {"type": "control", "ts": 1, "command": "banner", "text": "Doors open in 5 min", "level": "info"},
    {"type": "control", "ts": 1, "command": "focus_store", "store": "sh-001"},
    {"type": "device", "id": "gone", "ts": 1, "deleted": True},
]


def test_every_valid_event_type_decodes_and_normalises_ts():
    events = [dict(e, seq=i + 1) for i, e in enumerate(VALID_EVENTS)]
    msg = P.decode(frame({"op": "events", "events": events}))
    assert isinstance(msg, P.Events)
    assert [e["type"] for e in msg.events] == [e["type"] for e in VALID_EVENTS]
    store = msg.events[0]
    assert store["ts"] == 1790558880.0  # 2026-09-28T01:28:00Z
    assert store["opens_at"] == store["ts"]
    assert all(isinstance(e["ts"], float) for e in msg.events)


def test_str_input_and_bytes_input_are_equal():
    f = frame({"op": "events", "events": [dev()]})
    assert P.decode(f) == P.decode(f.decode())


@pytest.mark.parametrize(
    "msg",
    [
        P.Welcome(protocol=1, hub="hub-a", seq=42, heartbeat_s=1.0, roles=["subscribe"]),
        P.Snapshot(seq=10, part=0, parts=2, data={"seq": 10, "stores": []}),
        P.Heartbeat(seq=5, time=1790000000.5),
        P.Stats(counters={"events_in": 3, "walls": 1}),
        P.Error(code="bad_event", message="x", index=2, field="status"),
        P.Hello(token="t", since=7, wall="wall-1"),
        P.Hello(),
        P.Control(command="ack_incident", args={"incident": "inc-1"}),
        P.Control(command="switch_layout", args={"layout": "overview"}),
        P.Publish(events=[{"type": "kpi", "metric": "gmv", "scope": "global", "value": 1}],
                  producer="p1", batch=3),
        P.Ack(first=1, last=500, producer="p1", batch=3, duplicate=True),
    ],
)
def test_messages_round_trip(msg):
    assert P.decode(P.encode(msg)) == msg


def test_encode_events_fast_path():
    evs = [dev(1), dev(2)]
    assert P.decode(P.encode_events(evs)) == P.Events(events=evs)


def test_publish_may_omit_seq_and_ts():
    msg = P.decode(frame({"op": "publish", "events": [{"type": "kpi", "metric": "gmv", "scope": "global", "value": 1}]}))
    assert isinstance(msg, P.Publish) and "seq" not in msg.events[0]


def test_expect_restricts_ops():
    with pytest.raises(P.ProtocolError) as ei:
        P.decode(frame({"op": "hello"}), expect=("publish",))
    assert ei.value.code == "unknown_op"
    assert "not accepted here" in str(ei.value)


# Each error message the decoder can give, with where it points.
ERROR_CASES = [
    (b"{\"op\": ", "not_json", "at byte"),
    (b"\xff\xfe", "not_json", "UTF-8"),
    (b"[1, 2]", "not_object", "frame is a list"),
    (b"{}", "missing_field", "'op' is required"),
    (frame({"op": 3}), "bad_type", "op is an integer"),
    (frame({"op": "evnts"}), "unknown_op", "did you mean 'events'?"),
    (frame({"op": "events"}), "missing_field", "'events' is required"),
    (frame({"op": "events", "events": {}}), "bad_type", "expected a list"),
    (frame({"op": "events", "events": [5]}), "bad_type", "event is an integer"),
    (frame({"op": "events", "events": [{"id": "x"}]}), "missing_field", "'type' is required"),
    (frame({"op": "events", "events": [dev(type="devise")]}), "bad_value", "did you mean 'device'?"),
    (frame({"op": "events", "events": [dev(type={"a": 1})]}), "bad_type", "type is an object"),
    (frame({"op": "events", "events": [dev(seq=None)]}), "missing_field", "seq must be an integer"),
    (frame({"op": "events", "events": [dev(seq="1")]}), "bad_type", "seq must be an integer"),
    (frame({"op": "events", "events": [dev(1), dev(3)]}), "seq_gap", "seq 3 follows 1 (expected seq 2)"),
    (frame({"op": "events", "events": [{k: v for k, v in dev().items() if k != "id"}]}), "missing_field", "'id' is required"),
    (frame({"op": "events", "events": [{k: v for k, v in dev().items() if k != "ts"}]}), "missing_field", "'ts' is required"),
    (frame({"op": "events", "events": [dev(stauts="ok")]}), "unknown_field", "did you mean 'status'?"),
    (frame({"op": "events", "events": [dev(status="dead")]}), "bad_value", "one of ok, warn, crit, down, maint, unknown"),
    (frame({"op": "events", "events": [dev(status=1)]}), "bad_type", "1 is not allowed"),
    (frame({"op": "events", "events": [dev(metrics={"cpu": "hi"})]}), "bad_type", "field 'metrics.cpu'"),
    (frame({"op": "events", "events": [dev(metrics=[1])]}), "bad_type", "name -> number"),
    (frame({"op": "events", "events": [dev(ttl_s=0)]}), "bad_value", "a number > 0"),
    (frame({"op": "events", "events": [dev(ts="yesterday")]}), "bad_value", "cannot parse timestamp"),
    (frame({"op": "events", "events": [dev(ts="2026-09-28T09:28:00")]}), "bad_value", "has no UTC offset"),
    (frame({"op": "events", "events": [dev(ts=-5)]}), "bad_value", "out of range"),
    (frame({"op": "events", "events": [dev(ts=[1])]}), "bad_type", "timestamp is a list"),
    (frame({"op": "events", "events": [dev(name="x" * 300)]}), "bad_value", "length 300"),
    (frame({"op": "events", "events": [dev(id="")]}), "bad_value", "length 0"),
    (frame({"op": "events", "events": [{"type": "store", "id": "s", "ts": 1, "seq": 1, "lat": 91}]}), "bad_value", "between -90 and 90"),
    (frame({"op": "events", "events": [{"type": "store", "id": "s", "ts": 1, "seq": 1, "city": {"name": "x"}}]}), "missing_field", "field 'city.id'"),
    (frame({"op": "events", "events": [{"type": "store", "id": "s", "ts": 1, "seq": 1, "city": {"id": "x", "nmae": "y"}}]}), "unknown_field", "did you mean 'name'?"),
    (frame({"op": "events", "events": [{"type": "store", "id": "s", "ts": 1, "seq": 1, "tags": "a"}]}), "bad_type", "a list of strings"),
    (frame({"op": "events", "events": [{"type": "store", "id": "s", "ts": 1, "seq": 1, "city": "sh"}]}), "bad_type", "expected an object"),
    (frame({"op": "events", "events": [{"type": "incident", "id": "i", "ts": 1, "seq": 1, "kinds": "pos"}]}), "bad_type", "field 'kinds'"),
    (frame({"op": "events", "events": [{"type": "incident", "id": "i", "ts": 1, "seq": 1, "tags": ["x"] * 101}]}), "bad_value", "at most 100"),
    (frame({"op": "events", "events": [{"type": "change", "id": "c", "ts": 1, "seq": 1, "approved": "yes"}]}), "bad_type", "true or false"),
    (frame({"op": "events", "events": [{"type": "voice", "ts": 1, "seq": 1, "channel": "app"}]}), "missing_field", "'text' is required for voice"),
    (frame({"op": "events", "events": [{"type": "voice", "ts": 1, "seq": 1, "channel": "app", "text": "x", "sentiment": 2}]}), "bad_value", "between -1 and 1"),
    (frame({"op": "events", "events": [{"type": "kpi", "ts": 1, "seq": 1, "metric": "m", "scope": "town:x", "value": 1}]}), "bad_value", "not a KPI scope"),
    (frame({"op": "events", "events": [{"type": "kpi", "ts": 1, "seq": 1, "metric": "m", "scope": "global", "value": 1, "deleted": True}]}), "bad_value", "only for entities"),
    (frame({"op": "events", "events": [{"type": "control", "ts": 1, "seq": 1, "command": "switch_layout"}]}), "missing_field", "'layout' is required for control switch_layout"),
    (frame({"op": "publish", "events": [dev()] * (P.MAX_BATCH + 1)}), "too_large", "events in one batch"),
    (frame({"op": "welcome", "protocol": 1, "hub": "h", "seq": -1, "heartbeat_s": 1}), "bad_value", "an integer >= 0"),
    (frame({"op": "welcome", "protocol": 1, "hub": "h", "seq": 0}), "missing_field", "'heartbeat_s' is required"),
    (frame({"op": "snapshot", "seq": 1, "part": 2, "parts": 2, "data": {}}), "bad_value", "0 <= part < 2"),
    (frame({"op": "stats", "counters": {"a": "x"}}), "bad_type", "counters.a"),
    (frame({"op": "control", "command": "reboot"}), "bad_value", "one of switch_layout"),
    (frame({"op": "control", "command": "ack_incident", "args": {}}), "missing_field", "'incident' id is required"),
    (frame({"op": "control", "command": "banner", "args": {"text": "x", "levle": "info"}}), "unknown_field", "args.levle"),
    (frame({"op": "hello", "since": "5"}), "bad_type", "an integer >= 0"),
]


@pytest.mark.parametrize("data,code,text", ERROR_CASES)
def test_error_messages_are_precise(data, code, text):
    with pytest.raises(P.ProtocolError) as ei:
        P.decode(data)
    assert ei.value.code == code
    assert code in P.ERROR_CODES
    assert text in str(ei.value), str(ei.value)


def test_error_names_index_and_seq_in_a_batch():
    events = [dev(1), dev(2), dev(3, status="nope")]
    with pytest.raises(P.ProtocolError) as ei:
        P.decode(frame({"op": "events", "events": events}))
    e = ei.value
    assert (e.op, e.index, e.seq, e.field) == ("events", 2, 3, "status")
    err = P.decode(P.encode(e.to_message()))
    assert isinstance(err, P.Error) and err.index == 2 and err.field == "status"


def test_oversized_frame():
    with pytest.raises(P.ProtocolError) as ei:
        P.decode(b" " * 100, max_size=50)
    assert ei.value.code == "too_large" and "100 bytes" in str(ei.value)


def test_non_bytes_input():
    with pytest.raises(P.ProtocolError) as ei:
        P.decode(12345)  # type: ignore[arg-type]
    assert ei.value.code == "not_json"


def test_extension_fields_are_kept():
    msg = P.decode(frame({"op": "events", "events": [dev(x_source="zabbix")]}))
    assert msg.events[0]["x_source"] == "zabbix"


def test_snapshot_split_and_merge_round_trip():
    data = {"seq": 9, "stores": list(range(7)), "devices": list(range(12)), "voice": []}
    parts = P.split_snapshot(data, 5)
    assert all(sum(len(v) for v in p.values() if isinstance(v, list)) <= 5 for p in parts)
    assert P.merge_snapshot_parts(parts) == data
    assert P.merge_snapshot_parts([]) == {}


# ------------------------------------------------------------------ fuzz (bounded in CI)

SAMPLE_FRAMES = [
    frame({"op": "events", "events": [dict(e, seq=i + 1) for i, e in enumerate(VALID_EVENTS)]}),
    P.encode(P.Welcome(protocol=1, hub="h", seq=3, heartbeat_s=1.0)),
    P.encode(P.Snapshot(seq=1, part=0, parts=1, data={"stores": [VALID_EVENTS[0]]})),
    P.encode(P.Control(command="ack_incident", args={"incident": "i"})),
    frame({"op": "publish", "producer": "p", "batch": 1, "events": VALID_EVENTS}),
]


def _safe_decode(data):
    try:
        P.decode(data)
    except P.ProtocolError as e:
        assert e.code in P.ERROR_CODES
        assert str(e)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_never_escape(data):
    _safe_decode(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLE_FRAMES), st.data())
def test_fuzz_mutated_valid_frames_never_escape(base, data):
    b = bytearray(base)
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.integers(0, 2))
        pos = data.draw(st.integers(0, max(0, len(b) - 1)))
        if kind == 0 and b:
            b[pos] = data.draw(st.integers(0, 255))
        elif kind == 1:
            del b[pos : pos + data.draw(st.integers(1, 20))]
        else:
            b[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    _safe_decode(bytes(b))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(P.OPS)), st.dictionaries(st.sampled_from(
    ["events", "seq", "part", "parts", "data", "protocol", "hub", "heartbeat_s", "time", "counters",
     "code", "message", "since", "token", "command", "args", "first", "last", "type", "id", "ts"]),
    json_values, max_size=6))
def test_fuzz_structured_messages_never_escape(op, body):
    _safe_decode(orjson.dumps({"op": op, **body}))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID_EVENTS), st.sampled_from(sorted({k for s in P.SCHEMAS.values() for k in s} | {"ts", "id", "type"})), json_values)
def test_fuzz_event_field_values_never_escape(base, key, value):
    ev = dict(base, seq=1)
    ev[key] = value
    try:
        _safe_decode(orjson.dumps({"op": "events", "events": [ev]}))
    except orjson.JSONEncodeError:
        pass


# ------------------------------------------------------------------ batch fast path
# decode() checks typical device-status batches column by column and falls back to the
# per-event validator when not sure; both must agree on every input.

def _general(events, require_seq=True, require_ts=True):
    try:
        return P._validate_batch(events, "events", require_seq=require_seq, require_ts=require_ts)
    except P.ProtocolError as e:
        return (e.code, str(e))


def _decoded(data):
    try:
        return P.decode(data).events
    except P.ProtocolError as e:
        return (e.code, str(e))


def status_batch(n=5, first=1):
    return [{"type": "device", "id": f"d{i}", "ts": 1790000000.5 + i, "seq": first + i, "status": "ok",
             "metrics": {"cpu": 0.5, "temp": 41}} for i in range(n)]


def test_typical_status_batch_takes_the_fast_path_unchanged():
    events = status_batch() + [dev(6, msg="m", name="n", ttl_s=30, metrics={}), dev(7, deleted=True)]
    assert P._batch_is_plainly_valid(orjson.loads(orjson.dumps(events)), True, True)
    assert P.decode(frame({"op": "events", "events": events})).events == events


@pytest.mark.parametrize("events", [
    [dict(e, ts=1790000000) for e in status_batch()],            # int ts: normalised to float
    [dict(e, ts="2026-09-28T09:28:00+08:00") for e in status_batch()],
    [dict(e, x_src="zbx") for e in status_batch()],              # extension field kept
    status_batch()[:2] + [dict(VALID_EVENTS[5], seq=3)],         # mixed: kpi with int ts
])
def test_batches_the_fast_path_is_unsure_of_go_the_general_way(events):
    data = frame({"op": "events", "events": events})
    assert not P._batch_is_plainly_valid(orjson.loads(data), True, True)
    out = P.decode(data).events
    assert out == _general(orjson.loads(data)["events"])
    assert all(type(e["ts"]) is float for e in out)


def test_mixed_batch_fast_path_validates_the_other_events_too():
    events = status_batch(3) + [dict(VALID_EVENTS[6], seq=4, ts=1.5), dict(VALID_EVENTS[1], seq=5)]
    assert P._batch_is_plainly_valid(orjson.loads(frame(events)), True, True)
    bad = status_batch(3) + [dict(VALID_EVENTS[6], seq=4, ts=1.5, layout=3)]
    with pytest.raises(P.ProtocolError) as ei:
        P.decode(frame({"op": "events", "events": bad}))
    assert (ei.value.code, ei.value.index, ei.value.field) == ("bad_type", 3, "layout")


def test_publish_batch_fast_path_and_seq_fallback():
    evs = [{k: v for k, v in e.items() if k != "seq"} for e in status_batch()]
    assert P._batch_is_plainly_valid(orjson.loads(frame(evs)), False, False)
    evs[2]["seq"] = 0                                             # producers' seq: checked by the general path
    with pytest.raises(P.ProtocolError) as ei:
        P.decode(frame({"op": "publish", "events": evs}))
    assert (ei.value.code, ei.value.index) == ("bad_type", 2)


_DEVICE_FIELDS = sorted(set(P._ALL_FIELDS["device"]) | {"x_note", "bogus", "metrics.cpu", "metrics.x" * 30})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 6), st.integers(1, 5), st.lists(st.tuples(
    st.integers(0, 5), st.sampled_from(_DEVICE_FIELDS), st.sampled_from(["set", "drop"]),
    json_values | st.sampled_from(["ok", "warn", "", "x" * 201, 0.0, -1.0, 1e300, 2**62, True, {"a": 1.5}]))),
    st.booleans())
def test_fast_path_agrees_with_the_general_path(n, first, mutations, publish):
    events = status_batch(n, first) + [dict(dev(first + n, msg="m", ttl_s=5.0), ts=1.0)]
    for i, key, how, value in mutations:
        ev = events[i % len(events)]
        if key.startswith("metrics."):
            if type(ev.get("metrics")) is dict:
                ev["metrics"][key[8:]] = value
        elif how == "drop":
            ev.pop(key, None)
        else:
            ev[key] = value
    if publish:
        for ev in events:
            ev.pop("seq", None)
    try:
        data = frame({"op": "publish" if publish else "events", "events": events})
    except orjson.JSONEncodeError:
        return
    loaded = orjson.loads(data)["events"]
    want = _general(orjson.loads(data)["events"], require_seq=not publish, require_ts=not publish)
    got = _decoded(data) if not publish else _general(loaded, False, False)
    if not publish:
        assert got == want
    if P._batch_is_plainly_valid(orjson.loads(data)["events"], not publish, not publish):
        assert want == orjson.loads(data)["events"]                # valid and already normalised
