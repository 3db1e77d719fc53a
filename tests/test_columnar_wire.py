"""Columnar ``devices`` frames on the wire: negotiated in hello/welcome, sent by the
hub's wall sender for runs of device status updates, taken by the wall session (its id
dictionary per connection) and applied by the frame driver; a real hub and FeedClient
end to end. The state they build equals the object path's."""
from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from conftest import wait_until
from test_conflate import QueueSource, RecordingWs, entities, hub_with
from wallboard import protocol as P
from wallboard.app.frame import FrameDriver
from wallboard.feed import FeedClient
from wallboard.hub.auth import Auth
from wallboard.hub.fanout import WallSender
from wallboard.hub.server import Hub, HubConfig
from wallboard.state import LiveState

pytestmark = pytest.mark.timeout(60)
STATUSES = ("ok", "ok", "ok", "warn", "crit", "down")


def window(n: int, first: int = 1, devices: int = 40, seed: int = 4) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        seq = first + i
        ev: dict[str, Any] = {"type": "device", "id": f"d{rng.randrange(devices)}", "ts": 1000.0 + seq,
                              "seq": seq, "status": rng.choice(STATUSES)}
        if rng.random() < 0.7:
            ev["metrics"] = {"cpu": round(rng.random(), 3)}
        if rng.random() < 0.03:
            ev = {"type": "kpi", "metric": "gmv", "scope": "global", "value": float(seq), "ts": 1000.0 + seq,
                  "seq": seq}
        out.append(ev)
    return out


def welcome(columnar: bool | None) -> bytes:
    return P.encode(P.Welcome(protocol=P.PROTOCOL_VERSION, hub="h", seq=0, heartbeat_s=1.0, columnar=columnar))


def send_all(hub: Any, ws: RecordingWs, w: WallSender) -> None:
    async def main() -> None:
        for _ in range(1000):
            if w.cursor > hub.seq:
                break
            w._last_send = -1.0
            await w._send_events()
    asyncio.run(main())


def test_the_hub_sends_devices_frames_to_a_columnar_wall_and_the_state_is_the_same():
    base = [{"type": "device", "id": f"d{i}", "ts": 999.0, "seq": i + 1, "status": "ok", "store": "s0",
             "kind": "pos"} for i in range(40)]
    events = base + window(3000, first=41)
    hub = hub_with(events, conflate_after=0)
    hub.metrics.fanout = SimpleNamespace(observe=lambda x: None)
    ws = RecordingWs()
    w = WallSender(hub, ws, "w", {"subscribe"})  # type: ignore[arg-type]
    w.columnar = P.ColumnarEncoder()
    w.cursor = 1
    send_all(hub, ws, w)
    kinds = [f[:15] for f in ws.frames]
    assert b'{"op":"devices"' in kinds and b'{"op":"events",' in kinds
    assert hub.counters["columnar_events_out"] > 2500 and hub.counters["events_out"] == len(events)
    session = P.WallSession(columnar=True)
    assert P.decode(session.connect()).columnar is True
    session.receive(welcome(True), now=1.0)
    exact, col = LiveState(settle_gc=False), LiveState(settle_gc=False)
    exact.apply([dict(e) for e in events], 6.0)
    d = FrameDriver(col, QueueSource([]), budget_s=1.0, max_budget_s=1.0, clock=lambda: 6.0)
    for f in ws.frames:
        session.receive(f, now=1.0)
    items = [it for it in session.events() if it[0] in ("events", "devices")]
    assert not session.rejects and session.since == len(events)
    d.source = QueueSource(items)
    for _ in range(100):
        d.step()
        if col.seq == len(events):
            break
    assert entities(col) == entities(exact)
    assert col.store_counts("s0") == exact.store_counts("s0")


def test_a_wall_that_did_not_ask_gets_events_frames_only():
    events = window(600)
    hub = hub_with(events, conflate_after=0)
    hub.metrics.fanout = SimpleNamespace(observe=lambda x: None)
    ws = RecordingWs()
    w = WallSender(hub, ws, "recorder", {"subscribe"})  # type: ignore[arg-type]
    w.cursor = 1
    send_all(hub, ws, w)
    assert all(f.startswith(b'{"op":"events"') for f in ws.frames)
    assert P.decode(P.WallSession().connect()).columnar is None            # not offered by default
    assert P.decode(P.WallSession(at=5.0, columnar=True).connect()).columnar is None   # never on a replay


def _devices_frame(first: int = 1, ids_from: int = 0, new: tuple[str, ...] = ("a",)) -> bytes:
    return orjson.dumps({"op": "devices", "seq": first, "ids_from": ids_from, "new_ids": list(new),
                         "dev": [0, 0, 0], "ts": [1.0, 2.0, 3.0], "status": [0, 1, 0]})


def test_the_session_refuses_a_devices_frame_it_did_not_negotiate():
    s = P.WallSession(columnar=True)
    s.connect()
    s.receive(welcome(None), now=1.0)                   # this hub does not speak columnar
    s.receive(_devices_frame(), now=1.0)
    (kind, err), = [it for it in s.events() if it[0] == "error"]
    assert err.code == "unknown_op" and "did not negotiate columnar" in str(err)
    assert s.rejects == {"unknown_op": 1} and s.since is None


def test_the_session_resyncs_on_a_devices_gap_and_starts_a_new_dictionary_per_connection():
    s = P.WallSession(columnar=True, since=10)
    s.connect()
    s.receive(welcome(True), now=1.0)
    s.receive(_devices_frame(first=11), now=1.0)
    (kind, b), = [it for it in s.events() if it[0] == "devices"]
    assert b.ids == ["a"] and s.since == 13 and len(b) == 3
    s.receive(_devices_frame(first=20, ids_from=1, new=()), now=1.0)        # 14..19 missing
    assert s.close_reason == "resync" and s.since == 13 and s.rejects["seq_gap"] == 1
    s.connect()
    s.receive(welcome(True), now=1.0)
    s.receive(_devices_frame(first=14), now=1.0)        # ids_from 0 again: a new dictionary
    assert not s.rejects.get("bad_value") and s.since == 16
    s.receive(b'{"op":"devices","seq":17,"ids_from":0,"new_ids":["b"],"dev":[0],"ts":[1.0],"status":[0]}', 1.0)
    err = [e for k, e in s.events() if k == "error"][-1]
    assert err.code == "bad_value" and "ids_from 0 after 1 ids" in str(err) and s.since == 16


def test_a_too_large_devices_frame_is_refused():
    s = P.WallSession(columnar=True, max_frame=P.MIN_WALL_FRAME)
    s.connect()
    s.receive(welcome(True), now=1.0)
    big = b'{"op":"devices",' + b" " * P.MIN_WALL_FRAME + b"}"
    s.receive(big, now=1.0)
    assert s.rejects == {"too_large": 1}


def test_a_real_hub_and_feed_client_take_the_columnar_path(qapp):
    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None), auth=Auth())
    hub.start_in_thread()
    client = FeedClient(hub.url, columnar=True)
    plain = FeedClient(hub.url)
    st, st_plain = LiveState(settle_gc=False), LiveState(settle_gc=False)
    drivers = [FrameDriver(st, client, budget_s=1.0, max_budget_s=1.0),
               FrameDriver(st_plain, plain, budget_s=1.0, max_budget_s=1.0)]
    kinds: list[str] = []
    drivers[0].on_item = lambda k, p: kinds.append(k)
    try:
        client.start()
        plain.start()
        wait_until(qapp, lambda: client.state.state == "LIVE" and plain.state.state == "LIVE", 10, "LIVE")
        events = [{k: v for k, v in e.items() if k != "seq"} for e in window(400, devices=30)]

        async def publish() -> None:
            from websockets.asyncio.client import connect
            async with connect(hub.url.replace("/feed", "/publish")) as ws:
                await ws.send(orjson.dumps({"op": "publish", "producer": "t", "batch": 1, "events": events}).decode())
                await ws.recv()
        asyncio.run(publish())

        def caught_up() -> bool:
            for d in drivers:
                d.step()
            return st.seq == st_plain.seq == 400
        wait_until(qapp, caught_up, 15, "both walls at seq 400")
        assert st._fleet.cols is not None and st._fleet.cols.frames >= 1
        assert st_plain._fleet.cols is None
        for a, b in zip(st.devices.values(), st_plain.devices.values()):   # two clocks: last_seen differs
            a.pop("last_seen"), b.pop("last_seen")
        assert entities(st) == entities(st_plain)
        assert hub.counters.get("columnar_events_out", 0) > 300
    finally:
        client.stop()
        plain.stop()
        hub.stop()
