"""The frame driver (pure): budgeted draining, coalesced overruns, gaps resync, counters."""
from __future__ import annotations

from wallboard import protocol as P
from wallboard.app.frame import FrameDriver
from wallboard.state import LiveState


class Source:
    def __init__(self, items):
        self.items = list(items)
        self.resyncs = []

    def drain(self, n):
        out, self.items = self.items[:n], self.items[n:]
        return out

    def resync(self, since):
        self.resyncs.append(since)


def kpi(seq, v=1.0):
    return P.validate_event({"type": "kpi", "ts": 1000.0 + seq, "seq": seq, "metric": "gmv", "scope": "global",
                             "value": v})


def test_applies_everything_within_budget_and_counts():
    src = Source([("events", [kpi(1), kpi(2)]), ("events", [kpi(3)])])
    st = LiveState()
    # a generous budget: the frame budget is wall-clock time, and a loaded machine (or the
    # first KPI's numpy import) must not turn "applies everything" into an overrun
    d = FrameDriver(st, src, budget_s=30.0, clock=lambda: 2000.0)
    dirty = d.step()
    assert st.seq == 3 and d.stats.applied == 3 and ("gmv", "global") in dirty.kpi
    assert d.stats.overruns == 0


def test_overrun_leaves_work_for_the_next_frame_never_drops_it():
    src = Source([("events", [kpi(i)]) for i in range(1, 201)])
    st = LiveState()
    d = FrameDriver(st, src, budget_s=0.0, max_items=8, clock=lambda: 2000.0)
    d.step()
    assert 0 < st.seq < 200 and d.stats.overruns == 1
    for _ in range(500):
        if st.seq == 200:
            break
        d.step()
    assert st.seq == 200 and d.stats.applied == 200


def test_gap_resyncs_and_drops_the_rest_of_the_queue():
    src = Source([("events", [kpi(1)]), ("events", [kpi(5)]), ("events", [kpi(6)])])
    st = LiveState()
    d = FrameDriver(st, src, clock=lambda: 2000.0)
    d.step()
    assert st.seq == 1 and src.resyncs == [1] and d.stats.resyncs == 1
    assert "seq gap" in d.stats.last_reject


def test_errors_and_stats_are_counted_and_forwarded():
    seen = []
    err = P.ProtocolError("bad_value", "nope", field="status")
    src = Source([("error", err), ("stats", {"events_in": 5}), ("heartbeat", P.Heartbeat(seq=0, time=1.0))])
    st = LiveState()
    d = FrameDriver(st, src, clock=lambda: 2000.0, on_item=lambda k, p: seen.append(k))
    d.step()
    assert d.stats.rejects == 1 and "nope" in d.stats.last_reject
    assert d.stats.hub_counters == {"events_in": 5}
    assert seen == ["error", "stats", "heartbeat"]
    assert st.feed_age(2001.0) == 1.0


def test_events_per_second():
    t = [1000.0]
    src = Source([])
    d = FrameDriver(LiveState(), src, clock=lambda: t[0])
    for i in range(1, 31):
        src.items.append(("events", [kpi(i)]))
        t[0] += 0.1
        d.step()
    assert 8.0 <= d.stats.events_per_s(t[0]) <= 12.0


def test_bad_snapshot_keeps_state_counts_and_asks_again():
    st = LiveState()
    st.apply([kpi(1)], 1000.0)
    src = Source([("snapshot", {"seq": 5, "stores": "not a list"})])
    d = FrameDriver(st, src, clock=lambda: 2000.0)
    d.step()
    assert st.seq == 1
    assert d.stats.rejects == 1 and d.stats.last_reject.startswith("bad snapshot")
    assert src.resyncs == [None]


def test_snapshot_builds_off_the_ui_thread_then_swaps_in_place():
    from concurrent.futures import ThreadPoolExecutor

    donor = LiveState()
    donor.apply([kpi(i) for i in range(1, 8)], 1000.0)
    st = LiveState()
    st.apply([kpi(1)], 1000.0)
    src = Source([("snapshot", donor.snapshot()), ("events", [kpi(8)])])
    with ThreadPoolExecutor(1) as ex:
        d = FrameDriver(st, src, clock=lambda: 2000.0, executor=ex)
        d.step()
        for _ in range(200):
            if st.seq == 8:
                break
            d._building is not None and d._building.result(10)
            d.step()
    assert st.seq == 8 and d.stats.snapshots == 1 and not d.loading_snapshot


def test_bad_snapshot_built_off_thread_is_counted():
    from concurrent.futures import ThreadPoolExecutor

    st = LiveState()
    src = Source([("snapshot", {"seq": 5, "stores": "not a list"})])
    with ThreadPoolExecutor(1) as ex:
        d = FrameDriver(st, src, clock=lambda: 2000.0, executor=ex)
        d.step()
        d._building.exception(10)
        d.step()
    assert d.stats.rejects == 1 and src.resyncs == [None] and st.seq == 0


def test_budget_grows_with_a_backlog_and_shrinks_when_caught_up():
    src = Source([("events", [kpi(i)]) for i in range(1, 3001)])
    st = LiveState()
    d = FrameDriver(st, src, budget_s=0.0001, max_budget_s=0.004, max_items=4, clock=lambda: 2000.0)
    d.step()
    first = d._budget
    for _ in range(5):
        d.step()
    assert d._budget > first and d._budget <= 0.004
    for _ in range(5000):
        if st.seq == 3000:
            break
        d.step()
    d.step()
    assert st.seq == 3000 and d._budget < 0.004
