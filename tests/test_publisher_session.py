"""PublisherSession, a producer's side of /publish without I/O: batches numbered once,
resent (the same bytes, in order) until acked, retryable vs terminal errors, errors
attributed to the batch in flight. Bytes in and out, ``now`` a number."""
from __future__ import annotations

import orjson
import pytest

from wallboard import protocol as P
from wallboard.protocol.publisher import RETRY_AFTER_S, PublisherSession, WindowFull


def ev(i: int) -> dict:
    return {"type": "device", "id": f"d{i}", "status": "ok"}


def ack(batch: int, first: int, last: int, producer: str = "etl", duplicate: bool = False) -> bytes:
    return P.encode(P.Ack(first=first, last=last, producer=producer, batch=batch, duplicate=duplicate))


def error(code: str, message: str = "no", **kw) -> bytes:
    return orjson.dumps({"op": "error", "code": code, "message": message, **kw})


def batches(frames: list[bytes]) -> list[int]:
    return [orjson.loads(f)["batch"] for f in frames]


def session(**kw) -> PublisherSession:
    s = PublisherSession("etl", **kw)
    assert s.connect() == []
    return s


def test_batches_are_numbered_sent_and_acked():
    s = session(token="t" * 16)
    assert [s.publish([ev(1)]), s.publish([ev(2), ev(3)])] == [1, 2]
    sent = s.data_to_send()
    assert batches(sent) == [1, 2] and orjson.loads(sent[0]) == {
        "op": "publish", "events": [ev(1)], "producer": "etl", "batch": 1, "token": "t" * 16}
    s.receive(ack(1, 1, 1), 0.0)
    s.receive(ack(2, 2, 3), 0.0)
    assert [k for k, _ in s.events()] == ["ack", "ack"]
    assert (s.pending, s.acked, s.failed) == (0, 2, 0)


def test_a_reconnect_resends_every_unacked_batch_in_order_the_same_bytes():
    s = session()
    for i in range(4):
        s.publish([ev(i)])
    first = s.data_to_send()
    s.receive(ack(2, 2, 2), 0.0)
    again = s.connect()
    assert again == [first[0], first[2], first[3]]
    s.receive(ack(1, 1, 1, duplicate=True), 0.0)                 # the hub had it: same range
    assert s.pending == 2


def test_rate_limited_is_retried_after_retry_after_and_later_batches_are_not_blamed():
    s = session()
    for i in range(3):
        s.publish([ev(i)])
    s.data_to_send()
    s.receive(ack(1, 1, 1), 10.0)
    s.receive(error("rate_limited", retry_after=2.5), 10.0)      # answers batch 2
    assert ("retry", (2, 2.5)) in s.events()
    assert s.next_retry_in(10.0) == 2.5 and s.due(12.0) == []
    s.receive(error("bad_value", "status 'exploded'", index=0, field="status"), 11.0)   # batch 3
    (kind, (b, err)), = s.events()
    assert (kind, b, err.code, err.field) == ("failed", 3, "bad_value", "status")
    assert batches(s.due(12.5)) == [2] and s.next_retry_in(12.5) is None
    s.receive(ack(2, 2, 2), 13.0)
    assert (s.pending, s.acked, s.failed) == (0, 2, 1)


def test_unavailable_without_retry_after_waits_the_default():
    s = session()
    s.publish([ev(1)])
    s.receive(error("unavailable", "journal: disk full"), 5.0)
    assert s.events() == [("retry", (1, RETRY_AFTER_S))]
    assert s.due(5.0 + RETRY_AFTER_S - 0.01) == [] and len(s.due(5.0 + RETRY_AFTER_S)) == 1


def test_conflict_is_terminal_for_that_batch():
    s = session()
    s.publish([ev(1)])
    s.receive(error("conflict", "batch etl/1 was committed with other content"), 0.0)
    (kind, (b, err)), = s.events()
    assert (kind, b, err.code) == ("failed", 1, "conflict") and s.pending == 0
    assert s.connect() == []                                      # never resent


def test_auth_is_fatal_for_the_session():
    s = session()
    s.publish([ev(1)])
    s.receive(error("auth", "token refused"), 0.0)
    (kind, err), = s.events()
    assert kind == "fatal" and err.code == "auth" and not s.has_room()
    with pytest.raises(RuntimeError, match="publisher session ended: auth: token refused"):
        s.publish([ev(2)])


def test_window_and_bad_frames():
    s = session(window=2)
    s.publish([ev(1)])
    s.publish([ev(2)])
    assert not s.has_room()
    with pytest.raises(WindowFull, match=r"2 batches unacked \(window 2\)"):
        s.publish([ev(3)])
    s.receive(b"{nope", 0.0)
    s.receive(ack(1, 1, 1, producer="someone-else"), 0.0)
    s.receive(error("bad_value"), 0.0)                           # fine: answers batch 1
    kinds = [k for k, _ in s.events()]
    assert kinds == ["error", "error", "failed"] and s.pending == 1
    s.connect()
    s.receive(error("bad_value"), 0.0)                            # batch 2 after the reconnect
    s.receive(error("bad_value"), 0.0)                            # nothing in flight: just recorded
    assert [k for k, _ in s.events()] == ["failed", "error"]


@pytest.mark.parametrize("kw,text", [
    (dict(producer=""), "producer must be 1..200 characters"),
    (dict(producer="p", window=0), "window must be >= 1"),
    (dict(producer="p", batch_start=2**60), "batch_start must be within 0..9007199254740991"),
])
def test_bad_configuration(kw, text):
    with pytest.raises(ValueError, match=text):
        PublisherSession(**kw)


def test_forbidden_fails_the_batch_not_the_session():
    """``forbidden`` (a control event without the control role) drops that batch; the
    session goes on (other event types may be allowed)."""
    s = PublisherSession("p")
    s.publish([{"type": "control", "command": "reload"}])
    s.receive(b'{"op":"error","code":"forbidden","message":"control events need the control role"}', 0.0)
    [(kind, (batch, err))] = s.events()
    assert kind == "failed" and batch == 1 and err.code == "forbidden"
    assert s.fatal is None and s.has_room() and s.failed == 1


def test_batch_keys_come_from_the_key_function_and_must_be_new():
    keys = iter([7, 7, 9])
    s = PublisherSession("p", batch_key=lambda n: next(keys))
    assert s.publish([{"type": "kpi"}]) == 7 and s.sent == 1
    with pytest.raises(ValueError, match="batch key 7 of batch 2: expected a key within 0..9007199254740991 "
                                         "that no unacked batch has"):
        s.publish([{"type": "kpi"}])
    assert s.sent == 1 and s.publish([{"type": "kpi"}]) == 9 and list(s.unacked) == [7, 9]
