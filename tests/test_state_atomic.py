"""LiveState.apply is all or nothing (issue 18, item 7): a batch with a bad event anywhere
raises naming it and leaves the state exactly as before -- seq, records, aggregates,
counters, feed age -- so the next good batch applies (no SeqGap forever after)."""
from __future__ import annotations

import copy

import pytest

from test_state_helpers import check_aggregates
from wallboard import protocol as P
from wallboard.state import LiveState, SeqGap

NOW = 1_790_000_000.0


def base() -> LiveState:
    st = LiveState()
    evs = [{"type": "store", "id": f"s{i}", "city": {"id": "hz", "name": "Hangzhou"}} for i in range(3)]
    evs += [{"type": "device", "id": f"d{i}", "store": f"s{i % 3}", "kind": "pos", "status": "ok",
             "metrics": {"cpu": 1.0}} for i in range(30)]
    evs += [{"type": "incident", "id": "i1", "severity": "P2", "stores": ["s1"], "opened_at": NOW - 60}]
    for i, ev in enumerate(evs):
        ev.update(seq=i + 1, ts=NOW - 100)
    st.apply(evs, NOW - 100)
    return st


def batch_after(st: LiveState, n: int = 100) -> list[dict]:
    """A good batch: device status updates (the inline path), with a store, a kpi and an
    incident update in the middle (the other paths)."""
    out = []
    for i in range(n):
        out.append({"type": "device", "id": f"d{i % 30}", "ts": NOW, "status": ["warn", "crit", "ok"][i % 3],
                    "metrics": {"cpu": float(i)}})
    out[10] = {"type": "store", "id": "s1", "ts": NOW, "name": "renamed"}
    out[20] = {"type": "kpi", "ts": NOW, "metric": "gmv", "scope": "global", "value": 1.0}
    out[30] = {"type": "incident", "id": "i1", "ts": NOW, "status": "resolved", "resolved_at": NOW}
    for i, ev in enumerate(out):
        ev["seq"] = st.seq + 1 + i
    return out


def frozen(st: LiveState) -> tuple:
    """Everything observable of the state (deep copies)."""
    return (st.seq, copy.deepcopy(st.snapshot()), st.feed_age(NOW + 1), dict(st.counters),
            st.total_counts(), st.open_by_severity(), st.kpi_keys())


BAD = [
    ("unknown device status", lambda ev: ev.update(status="exploded"), "bad_value", "status"),
    ("missing ts", lambda ev: ev.pop("ts"), "missing_field", "ts"),
    ("metrics not an object", lambda ev: ev.update(metrics=[1]), "bad_type", "metrics"),
    ("unknown field", lambda ev: ev.update(colour="red"), "unknown_field", "colour"),
    ("id not a string", lambda ev: ev.update(id=7), "bad_type", "id"),
    ("deep extension", lambda ev: ev.update(x_a=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]),
     "too_large", "x_a" + "[0]" * 32),
    ("integer out of range", lambda ev: ev.update(metrics={"n": 2**60}), "bad_value", "metrics.n"),
]


@pytest.mark.parametrize("at", [0, 57, 99])
@pytest.mark.parametrize("name,spoil,code,field", BAD, ids=[b[0] for b in BAD])
def test_a_bad_event_anywhere_changes_nothing(name, spoil, code, field, at):
    st = base()
    before = frozen(st)
    batch = batch_after(st)
    spoil(batch[at])
    with pytest.raises(P.ProtocolError) as ei:
        st.apply(batch, NOW)
    e = ei.value
    assert (e.code, e.index, e.field, e.op) == (code, at, field, "apply")
    assert frozen(st) == before
    check_aggregates(st, NOW)
    good = batch_after(st)                      # the same seqs again: they follow
    st.apply(good, NOW)
    assert st.seq == good[-1]["seq"]
    check_aggregates(st, NOW)


def test_a_bad_incident_or_kpi_in_the_middle_changes_nothing():
    for at, spoil in ((30, {"severity": "P9"}), (20, {"value": "high"})):
        st = base()
        before = frozen(st)
        batch = batch_after(st)
        batch[at].update(spoil)
        with pytest.raises(P.ProtocolError) as ei:
            st.apply(batch, NOW)
        assert ei.value.index == at
        assert frozen(st) == before


def _not_an_event(batch):
    batch[40] = "not an event"


def _seq_as_text(batch):
    batch[5]["seq"] = str(batch[5]["seq"])


@pytest.mark.parametrize("spoil,match", [
    (_not_an_event, r"bad_type: event is a string .*at op apply, event 40"),
    (_seq_as_text, r"seq must be an integer >= 1 at op apply, event 5"),
])
def test_a_malformed_batch_changes_nothing(spoil, match):
    st = base()
    before = frozen(st)
    batch = batch_after(st)
    spoil(batch)
    with pytest.raises(P.ProtocolError, match=match):
        st.apply(batch, NOW)
    assert frozen(st) == before


def test_a_gap_in_the_middle_changes_nothing():
    st = base()
    before = frozen(st)
    batch = batch_after(st)
    for ev in batch[60:]:
        ev["seq"] += 1
    with pytest.raises(SeqGap) as gi:
        st.apply(batch, NOW)
    assert (gi.value.expected, gi.value.got) == (batch[59]["seq"] + 1, batch[60]["seq"])
    assert frozen(st) == before


def test_replay_overlap_checks_only_what_it_applies():
    st = base()
    old = st.seq
    batch = batch_after(st)
    st.apply(batch[:50], NOW)
    batch[10]["status"] = "exploded"          # already applied: skipped, not re-checked
    st.apply(batch, NOW)
    assert st.seq == old + 100 and st.counters["skipped_duplicates"] == 50


def test_checked_apply_skips_event_validation_but_still_checks_seqs():
    """``checked=True`` (events already validated by ``protocol.decode`` or the hub's
    ingest) applies the same batch to the same state, and a gap is still a SeqGap."""
    a, b = base(), base()
    batch = batch_after(a)
    a.apply(copy.deepcopy(batch), NOW)
    b.apply(copy.deepcopy(batch), NOW, checked=True)
    assert a.snapshot() == b.snapshot()
    gap = batch_after(b)
    for ev in gap:
        ev["seq"] += 5
    with pytest.raises(SeqGap):
        b.apply(gap, NOW, checked=True)
    bad = batch_after(b)
    bad[3]["status"] = "purple"
    with pytest.raises(P.ProtocolError):
        b.apply(copy.deepcopy(bad), NOW)  # unchecked: the precise error, state unchanged


def test_feed_client_events_are_applied_checked():
    from wallboard.app.frame import FrameDriver
    from wallboard.feed import FeedClient

    assert FeedClient.validated is True

    class Plain:
        def drain(self, max_items):
            return []

        def resync(self, since):
            pass

    assert FrameDriver(LiveState(), Plain())._checked is False
