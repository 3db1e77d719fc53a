"""The hub follows its log: a state that fails to apply is rebuilt from the log (newest
snapshot + events) instead of freezing; a poison event is skipped, counted, never fatal."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect

from wallboard import protocol as P
from wallboard.hub.auth import Auth
from wallboard.hub.server import Hub, HubConfig
from wallboard.state import LiveState

pytestmark = pytest.mark.timeout(60)


def store(i: int) -> dict:
    return {"type": "store", "id": f"s{i}", "name": f"Store {i}", "status": "open", "ts": 1000.0 + i}


async def publish(hub: Hub, n0: int, n: int) -> None:
    async with connect(hub.publish_url) as ws:
        for i in range(n0, n0 + n):
            await ws.send(P.encode(P.Publish(events=[store(i)], producer="p", batch=i)))
            assert isinstance(P.decode(await asyncio.wait_for(ws.recv(), 10)), P.Ack)


async def settled(hub: Hub, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while (hub._rebuilding is not None or hub.state.seq != hub.seq) and time.monotonic() < end:
        await asyncio.sleep(0.02)
    assert hub._rebuilding is None and hub.state.seq == hub.seq


def test_failed_apply_rebuilds_the_state_from_the_log(tmp_path):
    hub = Hub(HubConfig(port=0, journal=str(tmp_path / "j.db")), auth=Auth())

    async def go() -> None:
        await hub.astart()
        try:
            await publish(hub, 1, 3)
            broken = hub.state

            def fail(events: list, now: float) -> Any:
                raise RuntimeError("injected apply failure")
            broken.apply = fail  # type: ignore[method-assign]
            await publish(hub, 4, 3)   # acks go on while the state is rebuilt
            await settled(hub)
            assert hub.state is not broken and sorted(hub.state.stores) == [f"s{i}" for i in range(1, 7)]
            await publish(hub, 7, 2)   # and the rebuilt state follows the log again
            await settled(hub)
            assert len(hub.state.stores) == 8
            assert hub.counters["state_errors"] == 1 and hub.counters["state_rebuilds"] == 1
        finally:
            await hub.astop()
    asyncio.run(go())


def test_poison_event_is_skipped_not_fatal_at_restart(tmp_path, monkeypatch):
    path = str(tmp_path / "j.db")
    hub = Hub(HubConfig(port=0, journal=path), auth=Auth())

    async def fill() -> None:
        await hub.astart()
        try:
            await publish(hub, 1, 5)
        finally:
            await hub.astop()
    asyncio.run(fill())
    real = LiveState.apply

    def picky(self: LiveState, events: list, now: float) -> Any:
        if any(e.get("id") == "s3" for e in events):
            raise ValueError("cannot take s3")
        return real(self, events, now)
    monkeypatch.setattr(LiveState, "apply", picky)
    again = Hub(HubConfig(port=0, journal=path), auth=Auth())

    async def restart() -> None:
        await again.astart()   # used to raise: the hub could not start on its own journal
        try:
            assert again.state.seq == again.seq == 5
            assert sorted(again.state.stores) == ["s1", "s2", "s4", "s5"]
            assert again.counters["state_skipped"] == 1
        finally:
            await again.astop()
    asyncio.run(restart())
