"""Wall snapshots bounded (issue 13): one encoded snapshot shared by concurrent resyncs,
encoded in parts with state updates held back (the parts agree with their seq), and a
budget of snapshots per address per minute (then ``unavailable`` + ``retry_after``)."""
from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from wallboard import protocol as P
from wallboard.hub.auth import Auth
from wallboard.hub.budget import SnapshotBudget
from wallboard.hub.server import Hub, HubConfig
from wallboard.state import LiveState

pytestmark = pytest.mark.timeout(90)


def devices(n: int, base: int = 0, status: str = "ok") -> list[dict[str, Any]]:
    return [{"type": "device", "id": f"s{(base + i) % 50}/d{base + i}", "store": f"s{(base + i) % 50}",
             "status": status, "metrics": {"v": float(i)}} for i in range(n)]


async def publish(hub: Hub, events: list[dict[str, Any]]) -> None:
    for i in range(0, len(events), 5000):
        await hub.submit(events[i:i + 5000])


async def wall_state(url: str, name: str, until_seq: int | None = None, *, hub: Hub) -> LiveState:
    """A wall that says hello since=0, loads the snapshot and applies events up to the hub's seq."""
    async with connect(url, max_size=None) as ws:
        await ws.send(P.encode(P.Hello(wall=name)))
        parts: list[dict[str, Any]] = []
        state: LiveState | None = None
        for _ in range(10_000):
            msg = P.decode(await asyncio.wait_for(ws.recv(), 20), max_size=1 << 30)
            if isinstance(msg, P.Snapshot):
                parts.append(msg.data)
                if msg.part + 1 == msg.parts:
                    state = LiveState.from_snapshot(P.merge_snapshot_parts(parts), validate=False)
                    assert state.seq == msg.seq
            elif isinstance(msg, P.Events) and state is not None:
                state.apply(msg.events, 0.0)
            if state is not None and state.seq >= (until_seq or hub.seq):
                return state
    raise AssertionError("wall never caught up")


def test_snapshot_budget_counts_per_address_and_says_when():
    t = [0.0]
    b = SnapshotBudget(2, 60.0, clock=lambda: t[0])
    assert b.take("10.0.0.1") == 0 and b.take("10.0.0.1") == 0
    assert b.take("10.0.0.1") == 60.0 and b.take("10.0.0.2") == 0
    t[0] = 30.0
    assert b.take("10.0.0.1") == 30.0
    t[0] = 60.0
    assert b.take("10.0.0.1") == 0


def test_concurrent_resyncs_share_one_encoded_snapshot_and_every_wall_is_exact():
    async def main() -> None:
        hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, snapshot_budget=100, snapshot_records=1000),
                  auth=Auth())
        await hub.astart()
        try:
            await publish(hub, devices(12_000))

            async def keep_publishing() -> None:
                for b in range(20):
                    await publish(hub, devices(50, base=b * 37, status="warn"))
                    await asyncio.sleep(0.01)
            pub = asyncio.create_task(keep_publishing())
            walls = await asyncio.gather(*(wall_state(hub.url, f"w{i}", hub=hub) for i in range(20)))
            await pub
            final = [await wall_state(hub.url, "last", hub=hub)]
            stats = hub.stats()
            assert stats["snapshots_sent"] == 21
            assert stats["snapshots_encoded"] <= 6 and stats.get("snapshots_shared", 0) >= 15
            for st in walls:  # a shared snapshot + the events after it: caught up, nothing missing
                assert st.seq >= 12_000 and len(st.devices) == 12_000
            want = {k: (r["status"], r["seq"]) for k, r in hub.state.devices.items()}
            assert {k: (r["status"], r["seq"]) for k, r in final[0].devices.items()} == want
        finally:
            await hub.astop()
    asyncio.run(asyncio.wait_for(main(), 80))


def test_parts_encoded_while_batches_commit_agree_with_their_seq():
    async def main() -> None:
        hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, snapshot_records=500), auth=Auth())
        await hub.astart()
        try:
            await publish(hub, devices(10_000))
            seq0 = hub.seq
            task = asyncio.create_task(hub.wall_snapshot())
            await asyncio.sleep(0)
            held = []
            for b in range(5):  # committed and acked while the parts are being encoded
                await publish(hub, devices(10, base=b, status="crit"))
                held.append(hub._held is not None)
            seq, frames = await task
            assert seq == seq0 and len(frames) >= 20 and any(held)
            data = P.merge_snapshot_parts([orjson.loads(f)["data"] for f in frames])
            assert data["seq"] == seq0 and all(r["status"] == "ok" for r in data["devices"])
            assert hub._held is None and hub.state.seq == hub.seq == seq0 + 50   # the held batches applied
            assert (await hub.wall_snapshot())[0] == seq0    # young and replayable: shared
        finally:
            await hub.astop()
    asyncio.run(asyncio.wait_for(main(), 60))


def test_past_the_snapshot_budget_a_hello_is_refused_with_retry_after_and_a_replay_is_not():
    async def main() -> None:
        hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, snapshot_budget=2), auth=Auth())
        await hub.astart()
        try:
            await publish(hub, devices(100))
            for i in range(2):
                await wall_state(hub.url, f"w{i}", hub=hub)
            async with connect(hub.url) as ws:
                await ws.send(P.encode(P.Hello(wall="w3")))
                msgs = []
                with pytest.raises(ConnectionClosed) as ei:
                    for _ in range(10):
                        msgs.append(P.decode(await asyncio.wait_for(ws.recv(), 10)))
            err = [m for m in msgs if isinstance(m, P.Error)][0]
            assert err.code == "unavailable" and 59 <= err.retry_after <= 60
            assert err.message == ("snapshot budget used up: 2 snapshots per 60 s per address; reconnect with "
                                   "your last seq (a replay needs none) or retry in 60 s")
            assert ei.value.rcvd.code == 1013
            assert ei.value.rcvd.reason == "unavailable: snapshot budget used up; retry in 60 s"
            async with connect(hub.url) as ws:   # a wall that says its last seq replays: no snapshot
                await ws.send(P.encode(P.Hello(wall="w4", since=50)))
                await ws.recv()  # welcome
                ev = P.decode(await asyncio.wait_for(ws.recv(), 10))
                assert isinstance(ev, P.Events) and ev.events[0]["seq"] == 51
            assert hub.stats()["rejects_snapshot_budget"] == 1
        finally:
            await hub.astop()
    asyncio.run(asyncio.wait_for(main(), 60))
