"""The wall's ledger of controls in flight (pure), and the session's refusal item."""
from __future__ import annotations

import orjson

from wallboard.app.controls import NO_ANSWER, PENDING, REFUSED, UNKNOWN, ControlLedger
from wallboard.protocol.session import WallSession


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_sent_then_refused_then_unknown_refs():
    c = Clock()
    led = ControlLedger(c, timeout_s=10)
    a, b = led.sent("ack_incident"), led.sent("ack_incident")
    assert a != b
    assert led.outcome(a) == (PENDING, "")
    assert led.refused(a, "no control role")
    assert led.outcome(a) == (REFUSED, "no control role")
    assert led.outcome(b) == (PENDING, "")
    assert not led.refused("c999", "x") and led.outcome("c999") == (UNKNOWN, "")
    assert led.outcome(None) == (UNKNOWN, "")
    assert led.refusals == 1


def test_unanswered_control_becomes_no_answer_after_the_timeout():
    c = Clock()
    led = ControlLedger(c, timeout_s=10)
    ref = led.sent("ack_incident")
    c.t += 9.9
    assert led.outcome(ref)[0] == PENDING
    c.t += 0.2
    assert led.outcome(ref)[0] == NO_ANSWER


def test_ledger_is_bounded():
    led = ControlLedger(Clock(), keep=3)
    refs = [led.sent("banner") for _ in range(5)]
    assert led.outcome(refs[0])[0] == UNKNOWN and led.outcome(refs[-1])[0] == PENDING


def test_session_sends_the_ref_and_hands_out_the_refusal_that_names_it():
    s = WallSession(token=None)
    s.connect()
    s.control("ack_incident", {"incident": "i1"}, ref="c7")
    (frame,) = s.data_to_send()
    assert orjson.loads(frame)["ref"] == "c7"
    s.receive(orjson.dumps({"op": "error", "code": "forbidden", "field": "command", "ref": "c7",
                            "message": "control 'ack_incident' refused: no control role"}), now=1.0)
    items = s.events()
    assert [k for k, _ in items] == ["error", "control_refused"]
    assert items[1][1] == {"ref": "c7", "code": "forbidden",
                           "message": "control 'ack_incident' refused: no control role"}


def test_an_error_without_ref_is_only_an_error():
    s = WallSession(token=None)
    s.connect()
    s.receive(orjson.dumps({"op": "error", "code": "bad_value", "message": "x"}), now=1.0)
    assert [k for k, _ in s.events()] == ["error"]
