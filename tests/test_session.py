"""WallSession, the wall's side of /feed without I/O: bytes in, events and bytes out,
errors recorded, never raised. No sockets, no sleeps: ``now`` is a number."""
from __future__ import annotations

import orjson
import pytest

from wallboard import protocol as P
from wallboard.protocol.session import WallSession


def welcome(seq=0, epoch=None, heartbeat_s=1.0, roles=("subscribe",)) -> bytes:
    return P.encode(P.Welcome(protocol=1, hub="hub-1", seq=seq, heartbeat_s=heartbeat_s,
                              roles=list(roles), epoch=epoch))


def events(first: int, n: int = 2) -> bytes:
    return P.encode_events([{"type": "device", "id": f"d{first + i}", "ts": 1.0, "seq": first + i,
                             "status": "ok"} for i in range(n)])


def snapshot_frames(seq: int, data: dict, max_records: int = 1) -> list[bytes]:
    parts = P.split_snapshot(data, max_records)
    return [P.encode(P.Snapshot(seq=seq, part=i, parts=len(parts), data=p)) for i, p in enumerate(parts)]


def kinds(items):
    return [k for k, _ in items]


def test_hello_carries_since_epoch_token_and_wall():
    s = WallSession(token="t" * 16, wall="wall-1", since=41, epoch="e1")
    assert orjson.loads(s.connect()) == {"op": "hello", "token": "t" * 16, "since": 41, "wall": "wall-1",
                                         "epoch": "e1", "max_frame": P.WALL_MAX_FRAME, "conflate": True}
    assert orjson.loads(WallSession().connect()) == {"op": "hello", "max_frame": 16 << 20, "conflate": True}


def test_a_session_transcript():
    s = WallSession()
    s.connect()
    data = {"version": 2, "seq": 10, "stores": [{"id": "a"}, {"id": "b"}], "devices": [{"id": "d"}]}
    for i, frame in enumerate([welcome(10, "e1", heartbeat_s=2.0), *snapshot_frames(10, data),
                               events(11, 3), P.encode(P.Heartbeat(seq=13, time=5.0)),
                               P.encode(P.Stats(counters={"walls": 1}))]):
        s.receive(frame, now=100.0 + i)
    items = s.events()
    assert kinds(items) == ["welcome", "epoch", "snapshot", "events", "heartbeat", "stats"]
    assert items[2][1] == data and len(items[3][1]) == 3 and items[5][1] == {"walls": 1}
    assert (s.since, s.epoch, s.heartbeat_s, s.hub, s.roles, s.connects) == (13, "e1", 2.0, "hub-1",
                                                                             ("subscribe",), 1)
    assert s.welcome_seq == 10 and s.welcomed and s.close_reason is None and s.rejects == {}
    assert s.events() == []                                     # taken once


def test_a_gap_between_frames_resyncs_from_the_last_seq_and_ignores_the_rest():
    s = WallSession(since=20)
    s.connect()
    s.receive(welcome(30), 1.0)
    s.receive(events(21), 1.0)
    s.receive(events(25), 1.0)                                   # 23, 24 missing
    items = s.events()
    assert kinds(items) == ["welcome", "events", "error"]
    err = items[2][1]
    assert err.code == "seq_gap" and err.seq == 25 and "expected seq 23, got 25; resync" in str(err)
    assert s.close_reason == "resync" and s.since == 22 and s.rejects == {"seq_gap": 1}
    s.receive(events(26), 1.0)                                   # still arriving while we close
    assert s.events() == [] and s.since == 22
    s.connection_lost()
    assert orjson.loads(s.connect())["since"] == 22 and s.close_reason is None


def test_a_new_epoch_resyncs_from_a_snapshot():
    s = WallSession(since=500, epoch="e1")
    s.connect()
    s.receive(welcome(3, "e2"), 1.0)                            # the hub's log started over
    items = s.events()
    assert kinds(items) == ["welcome", "epoch"] and items[1][1] == "e2"
    assert s.close_reason == "resync" and s.since is None and s.epoch == "e2"
    assert s.rejects == {"epoch": 1} and "hub log epoch 'e2' after 'e1'" in s.last_reject
    s.receive(events(1), 1.0)                                    # old seqs would be skipped: not taken
    assert s.events() == []
    hello = orjson.loads(s.connect())
    assert hello.get("since") is None and hello["epoch"] == "e2"


def test_the_first_epoch_seen_or_the_same_epoch_does_not_resync():
    s = WallSession(since=7)
    s.connect()
    s.receive(welcome(9, "e1"), 1.0)
    assert s.close_reason is None and s.epoch == "e1" and s.since == 7
    s.connection_lost()
    s.connect()
    s.receive(welcome(9, "e1"), 2.0)
    assert kinds(s.events()) == ["welcome", "epoch", "welcome"] and s.close_reason is None
    s.receive(welcome(9), 3.0)                                   # a hub without epochs
    assert s.close_reason is None and s.epoch == "e1"


def test_snapshot_parts_out_of_order_are_counted_and_dropped():
    s = WallSession()
    s.connect()
    data = {"version": 2, "seq": 5, "stores": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}
    f = snapshot_frames(5, data)
    s.receive(f[0], 1.0)
    s.receive(f[2], 1.0)                                          # part 1 lost
    assert s.events() == [] and s.rejects == {"bad_value": 1}
    assert s.last_reject == "bad_value: snapshot part 2 after 1 parts"
    for frame in f:                                               # the next snapshot, whole
        s.receive(frame, 2.0)
    assert s.events() == [("snapshot", data)] and s.since == 5


def test_a_lost_connection_drops_a_partial_snapshot():
    s = WallSession()
    s.connect()
    f = snapshot_frames(5, {"version": 2, "seq": 5, "stores": [{"id": "a"}, {"id": "b"}]})
    s.receive(f[0], 1.0)
    s.connection_lost()
    s.connect()
    s.receive(f[1], 2.0)
    assert s.events() == [] and s.rejects == {"bad_value": 1}


@pytest.mark.parametrize("frame,code", [
    (b"{not json", "not_json"),
    (b"[1, 2]", "not_object"),
    (P.encode(P.Hello(since=1)), "unknown_op"),                    # not a hub -> wall op
    (orjson.dumps({"op": "events", "events": [{"type": "device", "id": "d", "ts": 1.0, "seq": 1,
                                               "status": "exploded"}]}), "bad_value"),
])
def test_bad_frames_are_recorded_never_raised(frame, code):
    s = WallSession(since=0)
    s.connect()
    s.receive(frame, 1.0)
    (kind, err), = s.events()
    assert kind == "error" and isinstance(err, P.ProtocolError) and err.code == code
    assert s.rejects == {code: 1} and s.last_reject.startswith(f"{code}: ")
    assert s.last_message_at is None                               # nothing usable arrived
    assert s.close_reason is None


def test_an_error_from_the_hub_keeps_its_fields():
    s = WallSession()
    s.connect()
    s.receive(P.encode(P.Error(code="forbidden", message="no control role", field="command")), 1.0)
    (kind, err), = s.events()
    assert (err.code, err.field) == ("forbidden", "command") and s.rejects == {"forbidden": 1}


def test_staleness_counts_heartbeat_intervals_of_the_callers_clock():
    s = WallSession(stale_heartbeats=3.0)
    s.connect()
    assert not s.stale(1e9) and s.stale_in(1e9) == 3.0            # nothing yet: not stale
    s.receive(welcome(0, heartbeat_s=2.0), now=50.0)
    assert s.stale_in(51.0) == 5.0 and not s.stale(55.9)
    assert s.stale(56.0)
    s.receive(P.encode(P.Heartbeat(seq=0, time=1.0)), now=56.5)  # the hub's time plays no part
    assert not s.stale(56.5) and s.stale_in(60.0) == 2.5


def test_controls_and_explicit_resync():
    s = WallSession(token="k" * 16)
    s.connect()
    s.control("ack_incident", {"incident": "INC-1"})
    assert [orjson.loads(b) for b in s.data_to_send()] == [
        {"op": "control", "command": "ack_incident", "args": {"incident": "INC-1"}, "token": "k" * 16}]
    assert s.data_to_send() == []
    s.resync(None)
    assert s.close_reason == "resync" and s.since is None


def test_bad_configuration():
    with pytest.raises(ValueError, match="stale_heartbeats must be > 0, got 0"):
        WallSession(stale_heartbeats=0)
