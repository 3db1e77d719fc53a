"""The alert policy (pure): P1/P2 sound until acknowledged, P1 escalates, mute silences."""
from __future__ import annotations

from wallboard.app.alerts import AlertPolicy


def test_p1_plays_at_once_then_repeats_and_escalates():
    pol = AlertPolicy(repeat_s=30, escalate_after_s=120)
    a = pol.due([("i1", "P1")], 0.0)
    assert a is not None and a.sound == "p1" and not a.escalated
    assert pol.due([("i1", "P1")], 10.0) is None
    assert pol.due([("i1", "P1")], 30.0) is not None
    late = pol.due([("i1", "P1")], 130.0)
    assert late is not None and late.escalated
    assert pol.due([("i1", "P1")], 146.0) is not None  # escalated: every repeat_s / 2


def test_p1_before_p2_and_one_sound_covers_both():
    pol = AlertPolicy()
    a = pol.due([("i2", "P2"), ("i1", "P1")], 0.0)
    assert a.sound == "p1"
    assert pol.due([("i2", "P2"), ("i1", "P1")], 1.0) is None


def test_acknowledged_incident_stops_and_mute_silences():
    pol = AlertPolicy()
    assert pol.due([("i1", "P2")], 0.0) is not None
    assert pol.due([], 100.0) is None
    pol.muted = True
    assert pol.due([("i3", "P1")], 200.0) is None
    pol.muted = False
    assert pol.due([("i3", "P1")], 260.0) is not None
