"""Protocol limits (wallboard.protocol.limits): what the journal, a snapshot or any peer
could not carry is refused at the door with a precise error (field path, limit, got), on
the fast path as on the general one; one test per message."""
from __future__ import annotations

import orjson
import pytest

from wallboard import protocol as P


def nest(n: int, leaf=1):
    """``leaf`` inside ``n`` lists."""
    v = leaf
    for _ in range(n):
        v = [v]
    return v


def dev(**kw):
    ev = {"type": "device", "id": "d1", "status": "ok"}
    ev.update(kw)
    return ev


def publish(*events, **kw) -> bytes:
    return orjson.dumps({"op": "publish", "events": list(events), **kw})


def refused(data: bytes, **decode_kw) -> P.ProtocolError:
    with pytest.raises(P.ProtocolError) as ei:
        P.decode(data, **decode_kw)
    return ei.value


def test_limits_are_exported_and_consistent():
    assert P.MAX_INT == 2**53 - 1
    assert P.MAX_DEPTH == 32
    assert P.MAX_EVENT * 2 == P.MAX_FRAME          # any event fits alone in a frame
    assert P.LIMITS["max_depth"] == P.MAX_DEPTH


# ------------------------------------------------------------------ nesting depth

def test_depth_at_the_limit_is_accepted():
    msg = P.decode(publish(dev(x_a=nest(P.MAX_DEPTH), x_b={"k": nest(P.MAX_DEPTH - 1)})))
    assert msg.events[0]["x_a"] == nest(P.MAX_DEPTH)


@pytest.mark.parametrize("depth", [P.MAX_DEPTH + 1, 251, 253, 300])
def test_depth_past_the_limit_is_too_large_naming_the_path(depth):
    # written by hand: orjson itself cannot encode 255 levels (which is the point)
    deep = b'{"type":"device","id":"d1","x_a":' + b"[" * depth + b"1" + b"]" * depth + b"}"
    e = refused(b'{"op":"publish","events":[{"type":"device","id":"d0"},' + deep + b"]}")
    assert e.code == "too_large"
    assert (e.index, e.limit, e.got) == (1, P.MAX_DEPTH, P.MAX_DEPTH + 1)
    assert e.field == "x_a" + "[0]" * P.MAX_DEPTH
    assert f"nests more than {P.MAX_DEPTH} lists/objects deep" in str(e)
    assert "at most 32 levels" in str(e)


def test_depth_counts_objects_and_lists_alike():
    v = {"a": [{"b": nest(P.MAX_DEPTH)}]}     # 3 + 32 levels
    e = refused(publish(dev(x_v=v)))
    assert e.code == "too_large" and e.field.startswith("x_v.a[0].b[0]")


def test_depth_in_other_event_types_and_in_controls():
    for ev in ({"type": "voice", "channel": "app", "text": "hi", "x_deep": nest(40)},
               {"type": "control", "command": "banner", "text": "hi", "x_deep": nest(40)}):
        assert refused(publish(ev)).code == "too_large"
    ctl = orjson.dumps({"op": "control", "command": "banner", "args": {"text": "hi", "x_deep": nest(40)}})
    e = refused(ctl)
    assert e.code == "too_large" and e.field.startswith("args.x_deep")


# ------------------------------------------------------------------ integers

@pytest.mark.parametrize("value", [2**53, -(2**53), 2**63, 2**64 - 1])
def test_int_out_of_range_in_metrics_fast_and_general_path(value):
    events = [dev(id=f"d{i}", ts=1.0, metrics={"cpu": 1.5, "n": 3}) for i in range(50)]
    events[17]["metrics"]["n"] = value
    e = refused(publish(*events))
    assert (e.code, e.index, e.field) == ("bad_value", 17, "metrics.n")
    assert (e.limit, e.got) == (P.MAX_INT, value)
    assert f"integer {value} out of range" in str(e)
    assert "within +-9007199254740991 (2**53 - 1)" in str(e)


def test_int_at_the_limit_is_accepted_everywhere():
    m = P.MAX_INT
    ev = dev(metrics={"a": m, "b": -m}, ttl_s=m, x_n=[m, -m, {"k": m}])
    assert P.decode(publish(ev)).events[0]["x_n"][2]["k"] == m
    kpi = {"type": "kpi", "metric": "orders", "scope": "global", "value": -m}
    assert P.decode(publish(kpi)).events[0]["value"] == -m
    assert P.decode(publish(dev(), producer="p", batch=m)).batch == m


@pytest.mark.parametrize("field,event", [
    ("ttl_s", dev(ttl_s=2**63)),
    ("value", {"type": "kpi", "metric": "m", "scope": "global", "value": 2**60}),
    ("x_n", dev(x_n=2**53)),
    ("x_n[1]", dev(x_n=[1, -(2**62)])),
    ("x_n.k", dev(x_n={"k": 2**63 + 5})),
])
def test_int_out_of_range_in_any_field(field, event):
    e = refused(publish(event))
    assert (e.code, e.field, e.limit) == ("bad_value", field, P.MAX_INT)


def test_batch_id_out_of_range_is_refused_not_a_journal_failure():
    e = refused(publish(dev(), producer="etl", batch=2**63))
    assert (e.code, e.op, e.field) == ("bad_value", "publish", "batch")
    assert e.got == 2**63


@pytest.mark.parametrize("frame,field", [
    ({"op": "hello", "since": 2**53}, "since"),
    ({"op": "ack", "first": 1, "last": 2**60}, "last"),
    ({"op": "welcome", "protocol": 1, "hub": "h", "seq": 2**63, "heartbeat_s": 1}, "seq"),
    ({"op": "heartbeat", "seq": 1, "time": 2**63}, "time"),
])
def test_int_out_of_range_in_messages(frame, field):
    e = refused(orjson.dumps(frame))
    assert (e.code, e.field, e.limit) == ("bad_value", field, P.MAX_INT)


def test_seq_out_of_range_in_events_frames():
    first = P.MAX_INT - 1
    events = [dev(ts=1.0, seq=first + i) for i in range(3)]      # the last one is past the limit
    e = refused(orjson.dumps({"op": "events", "events": events}))
    assert (e.code, e.index, e.field) == ("bad_value", 2, "seq")
    ok = [dev(ts=1.0, seq=first + i) for i in range(2)]
    assert len(P.decode(orjson.dumps({"op": "events", "events": ok})).events) == 2


# ------------------------------------------------------------------ strings, keys, types

def test_free_text_string_too_long():
    e = refused(publish(dev(x_note="a" * (P.MAX_TEXT + 1))))
    assert (e.code, e.field, e.limit, e.got) == ("bad_value", "x_note", P.MAX_TEXT, P.MAX_TEXT + 1)
    assert "string of 4001 characters (expected at most 4000)" in str(e)


def test_schema_string_too_long_names_limit_and_got():
    e = refused(publish(dev(msg="m" * (P.MAX_TEXT + 3))))
    assert (e.field, e.limit, e.got) == ("msg", P.MAX_TEXT, P.MAX_TEXT + 3)


def test_object_key_too_long_inside_a_free_value():
    e = refused(publish(dev(x_map={"k" * (P.MAX_ID + 1): 1})))
    assert e.code == "bad_value" and e.field == "x_map." + "k" * 40
    assert "key of 201 characters (expected keys of at most 200)" in str(e)


def test_extension_field_name_too_long():
    e = refused(publish(dev(**{"x_" + "n" * P.MAX_ID: 1})))
    assert e.code == "bad_value" and "field name of 202 characters" in str(e)


def test_non_json_value_from_a_python_caller_is_bad_type():
    with pytest.raises(P.ProtocolError) as ei:
        P.validate_event(dev(ts=1.0, x_set={1, 2}), require_seq=False)
    assert ei.value.code == "bad_type" and ei.value.field == "x_set"
    assert "expected a JSON value" in str(ei.value)


def test_non_string_field_name_from_a_python_caller_is_bad_type():
    with pytest.raises(P.ProtocolError) as ei:
        P.validate_event({**dev(ts=1.0), 7: "x"}, require_seq=False)
    assert ei.value.code == "bad_type" and "field name 7 is an integer" in str(ei.value)


def test_non_string_key_inside_a_free_value_is_bad_type():
    with pytest.raises(P.ProtocolError) as ei:
        P.validate_event(dev(ts=1.0, x_m={1: "a"}), require_seq=False)
    assert ei.value.code == "bad_type" and "key 1 is an integer" in str(ei.value)


def test_non_finite_float_from_a_python_caller():
    with pytest.raises(P.ProtocolError) as ei:
        P.validate_event(dev(ts=1.0, x_f=[1.0, float("nan")]), require_seq=False)
    assert ei.value.code == "bad_value" and ei.value.field == "x_f[1]"
    assert "is not finite" in str(ei.value)


def test_lone_surrogate_from_a_python_caller():
    # orjson.loads never makes one, but an in-process producer can; the journal's
    # encode would then fail after validation
    with pytest.raises(P.ProtocolError) as ei:
        P.validate_event(dev(ts=1.0, msg="ok \ud800"), require_seq=False)
    assert ei.value.code == "bad_value" and ei.value.field == "msg"
    assert "not valid Unicode at character 3" in str(ei.value)


# ------------------------------------------------------------------ event size

def test_event_too_large_names_size_and_limit():
    big = dev(x_blob=["a" * P.MAX_TEXT] * 140)          # ~560 KiB encoded
    e = refused(publish(dev(), big))
    assert (e.code, e.index, e.limit) == ("too_large", 1, P.MAX_EVENT)
    assert e.got > P.MAX_EVENT
    assert f"event encodes to {e.got} bytes (expected at most {P.MAX_EVENT} bytes)" in str(e)


def test_change_with_huge_scope_is_too_large():
    stores = [f"store-{i:06d}-" + "s" * 180 for i in range(3000)]     # ~580 KiB
    ch = {"type": "change", "id": "c1", "title": "t", "status": "running", "start": 1.0,
          "scope": {"stores": stores}}
    e = refused(publish(ch), max_size=8 << 20)
    assert e.code == "too_large" and e.got > P.MAX_EVENT


def test_every_accepted_event_fits_in_a_frame_alone():
    """The schema bounds keep a device event (no x_ field) under MAX_EVENT even with every
    string at its maximum length and made of the widest JSON escape."""
    wide = "\x01"                                    # encodes as \\u0001: 6 bytes
    ev = dev(ts=1.0, id=wide * P.MAX_ID, store=wide * P.MAX_ID, kind=wide * 64, name=wide * 200,
             msg=wide * P.MAX_TEXT, ttl_s=1.5,
             metrics={f"{i:03d}" + wide * (P.MAX_ID - 3): -1.2345678901234567e-300 for i in range(200)})
    P.validate_event(ev, require_seq=False)
    assert len(orjson.dumps(ev)) <= P.MAX_EVENT
