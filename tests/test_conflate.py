"""Conflation (issue 14): a device's status is "latest value wins" on the way to a wall.

The rule (wallboard/protocol/conflate.py), conflated ``events`` frames on the wire
(``first``/``last``), the wall session and the state taking them, the hub's per-wall
sender planning a lagging wall's window, and the wall's frame drain conflating its queue.
"""
from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallboard import protocol as P
from wallboard.app.frame import FrameDriver
from wallboard.hub.fanout import Tail, WallSender
from wallboard.hub.server import HubConfig
from wallboard.protocol.conflate import Span, conflate, conflation_key, kept_indexes, split_spans
from wallboard.state import LiveState, SeqGap


def dev(seq: int, did: str, **fields: Any) -> dict:
    return {"type": "device", "id": did, "ts": 1000.0 + seq, "seq": seq, **fields}


def kpi(seq: int) -> dict:
    return {"type": "kpi", "metric": "gmv", "scope": "global", "value": float(seq), "ts": 1000.0 + seq, "seq": seq}


def random_window(rng: random.Random, n: int, devices: int = 20, first: int = 1) -> list[dict]:
    out = []
    for i in range(n):
        seq = first + i
        did = f"d{rng.randrange(devices)}"
        x = rng.random()
        if x < 0.05:
            out.append(kpi(seq))
        elif x < 0.08:
            out.append({"type": "device", "id": did, "deleted": True, "ts": 1000.0 + seq, "seq": seq})
        elif x < 0.10:
            out.append({"type": "incident", "id": f"i{rng.randrange(3)}", "title": "t", "severity": "P2",
                        "status": "open", "opened_at": 1000.0, "ts": 1000.0 + seq, "seq": seq})
        else:
            ev = dev(seq, did, status=rng.choice(["ok", "warn", "crit"]))
            if rng.random() < 0.5:
                ev["metrics"] = {f"m{rng.randrange(3)}": float(i)}
            if rng.random() < 0.2:
                ev["msg"] = f"m{i}"
            if rng.random() < 0.1:
                ev["store"] = f"s{rng.randrange(3)}"
            if rng.random() < 0.05:
                ev["ttl_s"] = float(rng.randrange(10, 100))
            out.append(ev)
    return out


def entities(state: LiveState) -> tuple:
    """What a wall shows: the entities (metrics compared as dicts), the roll-ups, the KPIs."""
    devices = {d: {**r, "metrics": dict(r.get("metrics") or {})} for d, r in state.devices.items()}
    return (devices, dict(state.incidents), state.total_counts(), state.kind_counts(),
            [tuple(map(list, state.kpi_series(m, s))) for m, s in state.kpi_keys()], state.seq)


# ---------------------------------------------------------------------- the rule
def test_a_later_update_with_the_same_keys_overwrites_the_earlier_one():
    evs = [dev(1, "a", status="ok"), dev(2, "b", status="ok"), dev(3, "a", status="crit")]
    assert [e["seq"] for e in conflate(evs)] == [2, 3]


def test_a_partial_later_update_keeps_the_earlier_one_whose_keys_it_lacks():
    evs = [dev(1, "a", status="ok", msg="x"), dev(2, "a", status="crit")]
    assert [e["seq"] for e in conflate(evs)] == [1, 2]            # msg would be lost
    evs = [dev(1, "a", status="ok", msg="x"), dev(2, "a", msg="y"), dev(3, "a", status="crit")]
    assert [e["seq"] for e in conflate(evs)] == [2, 3]            # together they carry both


def test_metrics_are_covered_name_by_name():
    evs = [dev(1, "a", metrics={"cpu": 1.0}), dev(2, "a", metrics={"mem": 2.0})]
    assert [e["seq"] for e in conflate(evs)] == [1, 2]
    evs = [dev(1, "a", metrics={"cpu": 1.0}), dev(2, "a", metrics={"cpu": 3.0, "mem": 2.0})]
    assert [e["seq"] for e in conflate(evs)] == [2]


def test_a_delete_covers_everything_before_it_and_is_itself_kept():
    evs = [dev(1, "a", status="ok", store="s1", kind="pos"), {"type": "device", "id": "a", "deleted": True,
                                                             "ts": 1.0, "seq": 2}, dev(3, "a", status="ok")]
    assert [e["seq"] for e in conflate(evs)] == [2, 3]


def test_only_device_events_are_dropped_and_the_last_event_is_always_kept():
    evs = [kpi(1), kpi(2), dev(3, "a", status="ok"), kpi(4), dev(5, "a", status="warn")]
    assert [e["seq"] for e in conflate(evs)] == [1, 2, 4, 5]
    assert conflation_key(kpi(1)) is None
    assert kept_indexes([None, ("a", frozenset({"x"}))]) == [0, 1]


def test_spans_cover_the_window_contiguously_and_end_at_its_last_seq():
    kept = [dev(3, "a"), dev(7, "b"), dev(8, "c")]
    spans = split_spans(kept, 1, 10, 2)
    assert [(s.first, s.last, [e["seq"] for e in s]) for s in spans] == [(1, 7, [3, 7]), (8, 10, [8])]
    assert [s.dropped for s in spans] == [5, 2]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 400), chunk=st.integers(1, 50), devices=st.integers(1, 30))
def test_applying_the_conflated_spans_gives_the_state_of_applying_every_event(seed, n, chunk, devices):
    rng = random.Random(seed)
    base = random_window(rng, 30, devices)           # a state that already holds some devices
    window = random_window(rng, n, devices, first=31)
    exact, conf = LiveState(settle_gc=False), LiveState(settle_gc=False)
    for s in (exact, conf):
        s.apply([dict(e) for e in base], 5.0)
    exact.apply([dict(e) for e in window], 6.0)
    for span in split_spans(conflate([dict(e) for e in window]), 31, 30 + n, chunk):
        conf.apply(span, 6.0)
    assert entities(conf) == entities(exact)


# ---------------------------------------------------------------------- the state
def test_a_span_must_continue_the_state_seq_and_moves_it_to_its_last():
    s = LiveState(settle_gc=False)
    s.apply([dev(1, "a", status="ok")], 1.0)
    with pytest.raises(SeqGap) as gap:
        s.apply(Span([dev(5, "a", status="ok")], 3, 6), 1.0)
    assert (gap.value.expected, gap.value.got) == (2, 3) and s.seq == 1
    s.apply(Span([dev(5, "a", status="warn")], 2, 9), 1.0)
    assert s.seq == 9 and s.devices["a"]["status"] == "warn"
    s.apply(Span([dev(8, "a", status="crit")], 7, 10), 1.0)   # overlap: seq 8 was had already
    assert s.seq == 10 and s.devices["a"]["status"] == "warn"


def test_a_span_whose_seqs_do_not_increase_within_it_is_a_gap():
    s = LiveState(settle_gc=False)
    with pytest.raises(SeqGap):
        s.apply(Span([dev(5, "a", status="ok"), dev(4, "b", status="ok")], 1, 9), 1.0)
    with pytest.raises(SeqGap):
        s.apply(Span([dev(11, "a", status="ok")], 1, 9), 1.0)
    assert s.seq == 0 and not s.devices


# ---------------------------------------------------------------------- the wire
def frame(first: int | None, last: int | None, events: list[dict]) -> bytes:
    return orjson.dumps({"op": "events", "first": first, "last": last, "events": events})


def test_a_conflated_frame_decodes_with_its_range():
    msg = P.decode(frame(1, 9, [dev(3, "a", status="ok"), dev(9, "b", status="ok")]))
    assert isinstance(msg, P.Events) and (msg.first, msg.last) == (1, 9) and len(msg.events) == 2
    assert P.decode(P.encode(msg)) == msg


@pytest.mark.parametrize("first,last,seqs,text", [
    (5, 4, [5], "bad_value: last 4 before first 5 (expected last >= first (5)) at op events, field 'last'"),
    (5, 9, [4], "bad_value: seq 4 outside first..last 5..9 (expected a seq within 5..9) at op events, event 0, "
                "seq 4, field 'seq'"),
    (5, 9, [6, 10], "bad_value: seq 10 outside first..last 5..9 (expected a seq within 5..9) at op events, "
                    "event 1, seq 10, field 'seq'"),
    (5, 9, [7, 6], "seq_gap: seq 6 follows 7 (expected a seq above 7 (seqs increase)) at op events, event 1, "
                   "seq 6, field 'seq'"),
    (0, 9, [6], "bad_value: is 0 (expected an integer >= 1) at op events, field 'first'"),
])
def test_a_bad_conflated_frame_is_refused_precisely(first, last, seqs, text):
    with pytest.raises(P.ProtocolError) as e:
        P.decode(frame(first, last, [dev(s, "a", status="ok") for s in seqs]))
    assert str(e.value) == text


def test_a_frame_with_only_one_of_first_and_last_is_refused():
    with pytest.raises(P.ProtocolError) as e:
        P.decode(orjson.dumps({"op": "events", "first": 3, "events": [dev(3, "a", status="ok")]}))
    assert e.value.code == "missing_field" and e.value.field == "last"


def test_the_session_takes_a_conflated_frame_as_a_span_and_resumes_after_its_last():
    s = P.WallSession()
    s.connect()
    s.receive(P.encode(P.Welcome(protocol=1, hub="h", seq=0, heartbeat_s=1.0)), now=1.0)
    s.receive(frame(1, 9, [dev(4, "a", status="ok")]), now=1.0)
    items = dict(s.events())
    span = items["events"]
    assert type(span) is Span and (span.first, span.last) == (1, 9) and s.since == 9
    s.receive(frame(11, 12, [dev(12, "a", status="ok")]), now=1.0)   # 10 is missing: a gap
    assert s.close_reason == "resync" and s.since == 9
    assert "seq_gap: expected seq 10, got 11" in s.last_reject


# ---------------------------------------------------------------------- the hub
class RecordingWs:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.remote_address = ("127.0.0.1", 1)

    async def send(self, data: bytes, text: bool = False) -> None:
        self.frames.append(data)


def hub_with(events: list[dict], **cfg: Any) -> Any:
    tail = Tail(capacity=10_000)
    tail.extend(events[0]["seq"], [orjson.dumps(e) for e in events], events)
    counters: dict[str, int] = {}
    return SimpleNamespace(seq=events[-1]["seq"], config=HubConfig(**cfg), tail=tail, counters=counters,
                           count=lambda k, n=1: counters.__setitem__(k, counters.get(k, 0) + n),
                           committed_at=lambda seq: None, metrics=SimpleNamespace(fanout=None))


def test_a_lagging_wall_gets_its_window_conflated_in_honest_frames_and_the_same_state():
    rng = random.Random(3)
    base = random_window(rng, 50, 40)
    window = random_window(rng, 6000, 40, first=51)
    hub = hub_with(base + window, conflate_after=2000, conflate_frame_events=100, max_lag=20_000)

    async def main() -> RecordingWs:
        ws = RecordingWs()
        w = WallSender(hub, ws, "w", {"subscribe"})  # type: ignore[arg-type]
        w.conflate = True                              # its hello said conflate: true
        w.cursor = 51
        for _ in range(1000):
            if w.cursor > hub.seq:
                break
            await w._send_events()
        assert w.cursor == hub.seq + 1 and w.lag() == 0 and w.conflated > 0
        return ws

    ws = asyncio.run(main())
    assert hub.counters["conflated"] > 5000 - 40 * 10           # a backlog of 6000 for 40 devices
    assert hub.counters["conflated"] + hub.counters["events_out"] == 6000
    session = P.WallSession(since=50)
    session.connect()
    exact, conf = LiveState(settle_gc=False), LiveState(settle_gc=False)
    for s in (exact, conf):
        s.apply([dict(e) for e in base], 5.0)
    exact.apply([dict(e) for e in window], 6.0)
    for f in ws.frames:
        session.receive(f, now=1.0)
    for kind, payload in session.events():
        assert kind == "events"
        conf.apply(payload, 6.0)
    assert not session.rejects and session.since == 6050
    assert entities(conf) == entities(exact)


def test_a_subscriber_that_did_not_ask_gets_every_event_however_far_behind():
    events = [dev(i, f"d{i % 5}", status="ok") for i in range(1, 6001)]
    hub = hub_with(events, conflate_after=2000)
    hub.metrics.fanout = SimpleNamespace(observe=lambda x: None)

    async def main() -> RecordingWs:
        ws = RecordingWs()
        w = WallSender(hub, ws, "recorder", {"subscribe"})  # type: ignore[arg-type]
        w.cursor = 1
        for _ in range(100):
            if w.cursor > hub.seq:
                break
            await w._send_events()
        return ws

    ws = asyncio.run(main())
    got = [ev["seq"] for f in ws.frames for ev in orjson.loads(f)["events"]]
    assert got == list(range(1, 6001)) and "conflated" not in hub.counters


def test_the_wall_session_asks_for_conflation_and_the_hello_decodes():
    hello = P.decode(P.WallSession().connect())
    assert isinstance(hello, P.Hello) and hello.conflate is True
    assert P.decode(b'{"op":"hello","since":3}').conflate is None
    with pytest.raises(P.ProtocolError) as e:
        P.decode(b'{"op":"hello","conflate":"yes"}')
    assert e.value.code == "bad_type" and e.value.field == "conflate"


def test_a_wall_that_keeps_up_gets_plain_frames():
    events = [dev(i, f"d{i % 5}", status="ok") for i in range(1, 301)]
    hub = hub_with(events, conflate_after=2000)

    async def main() -> RecordingWs:
        ws = RecordingWs()
        w = WallSender(hub, ws, "w", {"subscribe"})  # type: ignore[arg-type]
        w.cursor = 1
        w._last_send = -1.0
        hub.metrics.fanout = SimpleNamespace(observe=lambda x: None)
        await w._send_events()
        return ws

    ws = asyncio.run(main())
    assert len(ws.frames) == 1 and b'"first"' not in ws.frames[0] and "conflated" not in hub.counters


def test_conflate_after_is_validated():
    with pytest.raises(ValueError, match="conflate_after"):
        HubConfig(conflate_after=-1).validate()
    with pytest.raises(ValueError, match="conflate_frame_events"):
        HubConfig(conflate_frame_events=5001).validate()


# ---------------------------------------------------------------------- the wall's drain
class QueueSource:
    def __init__(self, items: list) -> None:
        self.items = list(items)
        self.resyncs: list = []

    def drain(self, n: int) -> list:
        out, self.items = self.items[:n], self.items[n:]
        return out

    def pending_events(self) -> int:
        return sum(len(p) for k, p in self.items if k == "events")

    def resync(self, since: Any) -> None:
        self.resyncs.append(since)


def test_a_wall_behind_conflates_its_queue_and_shows_the_same_state():
    rng = random.Random(5)
    window = random_window(rng, 9000, 30)
    items: list = [("events", window[i:i + 500]) for i in range(0, 4000, 500)]
    items.append(("heartbeat", None))
    items += [("events", window[i:i + 500]) for i in range(4000, 9000, 500)]
    exact = LiveState(settle_gc=False)
    exact.apply([dict(e) for e in window], 2000.0)
    st_ = LiveState(settle_gc=False)
    d = FrameDriver(st_, QueueSource(items), budget_s=1.0, max_budget_s=1.0, clock=lambda: 2000.0,
                    conflate_after=4000, conflate_max=20_000, apply_chunk=300)
    for _ in range(100):
        d.step()
        if st_.seq == 9000:
            break
    assert d.stats.conflated > 8000 and not d.source.resyncs
    assert entities(st_) == entities(exact)


def test_a_wall_that_keeps_up_does_not_conflate():
    window = [dev(i, "a", status="ok") for i in range(1, 101)]
    st_ = LiveState(settle_gc=False)
    d = FrameDriver(st_, QueueSource([("events", window)]), clock=lambda: 2000.0)
    d.step()
    assert st_.seq == 100 and d.stats.conflated == 0 and st_.counters["applied"] == 100


def test_a_feed_queue_past_max_pending_is_conflated_not_dropped_for_a_resync():
    from wallboard.feed import FeedClient

    rng = random.Random(9)
    window = random_window(rng, 3000, 10)
    client = FeedClient("ws://127.0.0.1:9/feed", max_pending=1000)
    for i in range(0, 3000, 500):
        client._push([("events", window[i:i + 500])])
    assert client.dropped_events == 0 and client.conflated > 1500 and client.pending_events() <= 1000
    exact, conf = LiveState(settle_gc=False), LiveState(settle_gc=False)
    exact.apply([dict(e) for e in window], 5.0)
    for kind, payload in client.drain(10_000):
        conf.apply(payload, 5.0)
    assert entities(conf) == entities(exact)


def test_a_feed_queue_that_conflation_cannot_shrink_is_still_dropped_and_resynced():
    from wallboard.feed import FeedClient

    client = FeedClient("ws://127.0.0.1:9/feed", max_pending=1000)
    client._request_resync = lambda since: None         # no loop here: just note the drop
    for i in range(0, 3000, 500):                        # KPI samples: never conflated
        client._push([("events", [kpi(s) for s in range(i + 1, i + 501)])])
    assert client.dropped_events > 1000 and client.conflated == 0


def test_a_drain_whose_conflation_drops_little_does_not_try_again_at_once():
    events = [dev(i, f"d{i}", status="ok") for i in range(1, 9001)]   # every device once
    items = [("events", events[i:i + 500]) for i in range(0, 9000, 500)]
    st_ = LiveState(settle_gc=False)
    d = FrameDriver(st_, QueueSource(items), budget_s=1.0, max_budget_s=1.0, clock=lambda: 2000.0,
                    conflate_after=1000, conflate_max=2000, max_items=2)
    d.step()
    assert d.stats.conflated == 0 and d._conflate_skip_until > 0
    for _ in range(50):
        d.step()
        if st_.seq == 9000:
            break
    assert st_.seq == 9000 and st_.counters["applied"] == 9000
