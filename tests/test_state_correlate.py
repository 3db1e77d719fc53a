"""Correlation: which changes may have broken an incident, and in what order."""
from __future__ import annotations

from test_state_helpers import Feed
from wallboard.state import LiveState, rank_suspects

OPEN = 100_000.0   # epoch seconds: hours before it are still valid protocol timestamps


def make_state() -> tuple[LiveState, Feed]:
    feed = Feed()
    st = LiveState()
    st.apply([
        feed.ev("store", "s1", city={"id": "hz", "name": "Hangzhou"}),
        feed.ev("store", "s2", city={"id": "hz", "name": "Hangzhou"}),
        feed.ev("store", "s9", city={"id": "sh", "name": "Shanghai"}),
    ], 1.0)
    return st, feed


def ids(result: list) -> list[str]:
    return [cid for cid, _, _ in result]


def test_ranking_failed_then_unapproved_then_running_then_closeness() -> None:
    st, f = make_state()
    st.apply([
        f.ev("change", "ok_far", start=OPEN - 50 * 60, end=OPEN - 40 * 60, status="succeeded",
             approved=True, scope={"stores": ["s1"]}),
        f.ev("change", "ok_near", start=OPEN - 5 * 60, end=OPEN - 2 * 60, status="succeeded",
             approved=True, scope={"stores": ["s1"]}),
        f.ev("change", "running", start=OPEN - 30 * 60, status="running", approved=True,
             scope={"cities": ["hz"]}),
        f.ev("change", "unapproved", start=OPEN - 45 * 60, end=OPEN - 44 * 60, status="succeeded",
             approved=False, scope={"stores": ["s1"]}),
        f.ev("change", "failed", start=OPEN - 55 * 60, end=OPEN - 50 * 60, status="failed",
             approved=True, scope={"stores": ["s1"]}),
        f.ev("change", "chain", start=OPEN - 20 * 60, end=OPEN - 10 * 60, status="succeeded",
             approved=True, scope={"systems": ["pos"]}),
        # not suspects: other city, too early, after opening, planned in the future
        f.ev("change", "other_city", start=OPEN - 5 * 60, status="failed", scope={"stores": ["s9"]}),
        f.ev("change", "too_early", start=OPEN - 2 * 3600, end=OPEN - 3600 - 60, status="failed",
             scope={"stores": ["s1"]}),
        f.ev("change", "after", start=OPEN + 60, status="failed", scope={"stores": ["s1"]}),
        f.ev("incident", "i1", opened_at=OPEN, severity="P1", stores=["s1"]),
    ], 2.0)
    res = st.suspects("i1")
    assert ids(res) == ["failed", "unapproved", "running", "ok_near", "chain", "ok_far"]
    by_id = {cid: (score, reasons) for cid, score, reasons in res}
    assert "failed" in by_id["failed"][1] and "stores: s1" in by_id["failed"][1]
    assert "not approved" in by_id["unapproved"][1]
    assert "running when the incident opened" in by_id["running"][1]
    assert "cities: hz" in by_id["running"][1]
    assert "chain-wide" in by_id["chain"][1]
    assert "started 5 min before" in by_id["ok_near"][1]
    scores = [s for _, s, _ in res]
    assert scores == sorted(scores, reverse=True)


def test_long_running_change_started_before_window_is_a_suspect() -> None:
    st, f = make_state()
    st.apply([
        f.ev("change", "migration", start=OPEN - 5 * 3600, status="running", scope={"stores": ["s2"]}),
        f.ev("change", "ended_before", start=OPEN - 5 * 3600, end=OPEN - 3 * 3600,
             status="succeeded", scope={"stores": ["s2"]}),
        f.ev("incident", "i1", opened_at=OPEN, stores=["s2"]),
    ], 2.0)
    assert ids(st.suspects("i1")) == ["migration"]


def test_named_suspects_come_first_even_outside_window() -> None:
    st, f = make_state()
    st.apply([
        f.ev("change", "named", start=OPEN - 10 * 3600, end=OPEN - 9 * 3600, status="succeeded",
             scope={"stores": ["s9"]}),
        f.ev("change", "failed", start=OPEN - 60, status="failed", scope={"stores": ["s1"]}),
        f.ev("incident", "i1", opened_at=OPEN, stores=["s1"], suspect_changes=["named", "missing"]),
    ], 2.0)
    res = st.suspects("i1")
    assert ids(res) == ["named", "failed"]
    assert res[0][2][0] == "named by the incident"


def test_ties_broken_by_id_and_unknown_incident() -> None:
    st, f = make_state()
    st.apply([
        f.ev("change", "b", start=OPEN - 600, status="succeeded", end=OPEN - 300),
        f.ev("change", "a", start=OPEN - 600, status="succeeded", end=OPEN - 300),
        f.ev("incident", "i1", opened_at=OPEN, stores=["s1"]),
    ], 2.0)
    assert ids(st.suspects("i1")) == ["a", "b"]
    assert st.suspects("nope") == []


def test_rank_suspects_pure_function() -> None:
    inc = {"id": "i", "opened_at": 1000.0, "stores": ["x"]}
    cands = [
        {"id": "near", "start": 990.0, "end": 995.0, "status": "succeeded"},
        {"id": "far", "start": 100.0, "end": 200.0, "status": "succeeded"},
        {"id": "scoped_elsewhere", "start": 999.0, "status": "failed", "scope": {"stores": ["y"]}},
    ]
    res = rank_suspects(inc, cands, {"x": "c1"}.get, window_s=3600.0)
    assert ids(res) == ["near", "far"]
