"""The views the state keeps for the panels (incidents by scope and their MTTA / MTTR,
changes by store, city and status) equal a brute-force scan of the records, after any
mix of upserts, merges, moves, status changes, deletes, evictions and snapshot loads;
and ``Scope`` is the one place a scope is matched."""
from __future__ import annotations

import random

import pytest

from test_state_helpers import Feed
from wallboard.layout import Scope as LayoutScope
from wallboard.state import LiveState, StateConfig
from wallboard.scope import CHAIN, Scope

STORES = [f"s{i}" for i in range(12)]
CITIES = ["hz", "sh", "nj"]
SCOPES = [CHAIN, Scope(("hz",)), Scope((), ("s1", "s7", "ghost")), Scope(("sh", "nj"), ("s0",)),
          Scope(("nowhere",))]


def _city_of(st: LiveState, sid: str) -> str | None:
    return ((st.stores.get(sid) or {}).get("city") or {}).get("id")


def _in_scope(st: LiveState, inc: dict, scope: Scope) -> bool:
    stores = inc.get("stores") or ()
    return not stores or any(scope.contains(s, _city_of(st, s)) for s in stores)


def _brute_stats(st: LiveState, scope: Scope) -> tuple:
    acks, fixes = [], []
    for inc in st.incidents.values():
        if not _in_scope(st, inc, scope) or inc.get("opened_at") is None:
            continue
        if inc.get("acknowledged_at") is not None:
            acks.append(inc["acknowledged_at"] - inc["opened_at"])
        if inc["status"] == "resolved" and inc.get("resolved_at") is not None:
            fixes.append(inc["resolved_at"] - inc["opened_at"])
    return len(acks), sum(acks), len(fixes), sum(fixes)


def _reaches(st: LiveState, ch: dict, sid: str) -> bool:
    return Scope.of(ch.get("scope")).contains(sid, _city_of(st, sid))


def _random_events(rng: random.Random, feed: Feed, n: int) -> list[dict]:
    out = []
    for k in range(n):
        t = 1000.0 + k
        r = rng.random()
        if r < 0.15:
            sid = rng.choice(STORES)
            out.append(feed.ev("store", sid, ts=t, city={"id": rng.choice(CITIES), "name": "x"}))
        elif r < 0.55:
            iid = f"i{rng.randrange(30)}"
            if rng.random() < 0.08:
                out.append(feed.ev("incident", iid, ts=t, deleted=True))
                continue
            ev = feed.ev("incident", iid, ts=t, title="x", severity=rng.choice(["P1", "P2", "P3"]),
                         status=rng.choice(["open", "acknowledged", "mitigated", "resolved"]),
                         stores=rng.sample(STORES, rng.randrange(0, 3)))
            if rng.random() < 0.5:
                ev["acknowledged_at"] = t + rng.randrange(5, 50)
            if ev["status"] == "resolved":
                ev["resolved_at"] = t + rng.randrange(50, 500)
            out.append(ev)
        else:
            cid = f"c{rng.randrange(30)}"
            if rng.random() < 0.08:
                out.append(feed.ev("change", cid, ts=t, deleted=True))
                continue
            scope = rng.choice([None, {"stores": rng.sample(STORES, 2)}, {"cities": [rng.choice(CITIES)]},
                                {"stores": [rng.choice(STORES)], "cities": [rng.choice(CITIES)]}])
            ev = feed.ev("change", cid, ts=t, title="x", start=t - rng.randrange(0, 600),
                         status=rng.choice(["planned", "running", "succeeded", "failed", "rolled_back"]))
            if scope is not None:
                ev["scope"] = scope
            if rng.random() < 0.3:
                ev["end"] = t + rng.randrange(0, 300)
            out.append(ev)
    return out


def check_views(st: LiveState) -> None:
    for scope in SCOPES:
        want = {i for i, inc in st.incidents.items() if _in_scope(st, inc, scope)}
        got = st.incidents_in_scope(scope)
        assert (set(st.incidents) if got is None else got) == want, scope
        s = st.incident_stats(scope)
        n_a, ack, n_r, fix = _brute_stats(st, scope)
        assert (s.n_acked, s.n_resolved) == (n_a, n_r), scope
        assert s.ack_s == pytest.approx(ack) and s.fix_s == pytest.approx(fix), scope
        assert [r["id"] for r in st.open_incidents(scope)] == \
            [r["id"] for r in st.open_incidents() if r["id"] in want]
    for sid in STORES + ["ghost"]:
        want = sorted(i for i, inc in st.incidents.items() if sid in (inc.get("stores") or ()))
        assert sorted(r["id"] for r in st.store_incidents(sid, include_resolved=True)) == want
        assert [r["id"] for r in st.store_changes(sid, 900.0, 1020.0)] == \
            [c["id"] for c in st.changes_in_window(900.0, 1020.0) if _reaches(st, c, sid)]
        assert [r["id"] for r in st.store_active_changes(sid)] == \
            [c["id"] for c in sorted(st.changes.values(), key=lambda c: (c["start"], c["id"]))
             if c["status"] in ("planned", "running") and _reaches(st, c, sid)]
    blast = ("running", "failed", "rolled_back")
    assert [c["id"] for c in st.changes_with_status(*blast)] == \
        [c["id"] for c in sorted(st.changes.values(), key=lambda c: (c["start"], c["id"])) if c["status"] in blast]


@pytest.mark.parametrize("seed", range(6))
def test_views_equal_a_scan_of_the_records(seed):
    rng = random.Random(seed)
    feed = Feed()
    # small caps: evictions of resolved / open incidents and finished / active changes happen
    st = LiveState(StateConfig(max_resolved_incidents=8, max_open_incidents=12, max_finished_changes=8,
                               max_active_changes=10), settle_gc=False)
    for _ in range(8):
        st.apply(_random_events(rng, feed, 40), 2000.0)
        check_views(st)
    st.tick(1e9)                                           # retention drops the finished ones
    check_views(st)
    again = LiveState.from_snapshot(st.snapshot(), st.config, settle_gc=False)
    check_views(again)
    assert again.incident_stats().n_acked == st.incident_stats().n_acked


def test_chain_wide_stats_are_kept_not_scanned():
    feed = Feed()
    st = LiveState(settle_gc=False)
    st.apply([feed.ev("incident", "a", ts=100.0, title="x", opened_at=100.0, acknowledged_at=160.0),
              feed.ev("incident", "b", ts=100.0, title="y", opened_at=100.0, status="resolved",
                      resolved_at=400.0)], 500.0)
    s = st.incident_stats()
    assert (s.n_acked, s.mtta, s.n_resolved, s.mttr) == (1, 60.0, 1, 300.0)
    st.apply([feed.ev("incident", "a", ts=200.0, deleted=True)], 600.0)
    s = st.incident_stats(None)
    assert (s.n_acked, s.mtta, s.n_resolved) == (0, None, 1)


def test_scope_contains_and_reaches():
    assert CHAIN.chain_wide and CHAIN.contains("any", None)
    sc = Scope(("hz",), ("sh-1",))
    assert sc.contains("sh-1", "sh") and sc.contains("hz-9", "hz")
    assert not sc.contains("sh-2", "sh") and not sc.contains("hz-9", None)
    city_of = {"sh-1": "sh", "hz-2": "hz", "nj-1": "nj"}.get
    assert sc.reaches(Scope((), ("hz-2",)), city_of)          # its store is in a listed city
    assert sc.reaches(Scope(("hz",)), city_of) and sc.reaches(CHAIN, city_of)
    assert not sc.reaches(Scope(("nj",), ("nj-1",)), city_of)
    assert Scope.of({"cities": ["hz"], "stores": []}) == Scope(("hz",)) and Scope.of(None) is CHAIN
    assert LayoutScope is Scope                                # one class for layouts and state
    assert hash(Scope(("hz",))) == hash(Scope.of({"cities": ["hz"]}))
