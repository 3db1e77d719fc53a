"""The wall's replay source (issue 16): ``WallSession(at=...)`` with bytes, and a
``FeedClient(at=...)`` against a real hub in a thread (loopback) feeding its own
``LiveState`` while the live client keeps running."""
from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from wallboard import protocol as P
from wallboard.app.frame import FrameDriver
from wallboard.feed import LIVE, FeedClient
from wallboard.hub.auth import Auth
from wallboard.hub.server import Hub, HubConfig
from wallboard.state import LiveState

from test_feed import wait_for


def dev(i: int, status: str = "ok") -> dict:
    return {"type": "device", "id": f"d{i}", "store": "s1", "kind": "pos", "status": status,
            "metrics": {"cpu": float(i)}}


# ---------------------------------------------------------------- session, bytes only
def test_replay_session_says_at_keeps_the_clock_and_resumes_where_it_was():
    s = P.WallSession(wall="w", at=1000.0, speed=4)
    hello = orjson.loads(s.connect())
    assert hello["at"] == 1000.0 and hello["speed"] == 4.0 and "since" not in hello
    s.receive(P.encode(P.Welcome(protocol=1, hub="h", seq=9, heartbeat_s=1.0, replay=True, at=990.0)), now=50.0)
    assert s.replay_clock(50.0) == 990.0 and s.replay_clock(52.0) == 998.0    # x4
    s.receive(P.encode(P.Heartbeat(seq=3, time=5e9, at=1001.0, speed=4.0)), now=53.0)
    assert s.replay_clock(53.5) == 1003.0
    s.set_speed(0, now=54.0)                                       # paused
    assert s.replay_clock(54.0) == 1005.0 == s.replay_clock(99.0)
    s.seek(700.0, now=60.0)
    assert [orjson.loads(d) for d in s.data_to_send()] == [{"op": "speed", "x": 0.0}, {"op": "seek", "at": 700.0}]
    assert s.replay_clock(61.0) == 700.0
    s.connection_lost()
    s.seek(650.0, now=62.0)                                        # queued while down ...
    again = orjson.loads(s.connect())                              # ... is in the next hello
    assert again["at"] == 650.0 and again["speed"] == 0.0 and s.data_to_send() == []


def test_a_live_session_refuses_seek_and_speed():
    s = P.WallSession()
    with pytest.raises(ValueError, match="seek: this is a live session"):
        s.seek(1.0, now=0.0)
    with pytest.raises(ValueError, match="speed: this is a live session"):
        s.set_speed(2.0, now=0.0)
    assert s.replay_clock(0.0) is None
    with pytest.raises(ValueError, match="seek/speed need a replay client"):
        FeedClient("ws://127.0.0.1:9/feed").seek(1.0)


# ---------------------------------------------------------------- a real hub, loopback
def test_replay_client_beside_the_live_one_shows_the_past_and_seeks(tmp_path):
    hub = Hub(HubConfig(port=0, journal=str(tmp_path / "j.db"), heartbeat_s=0.2), auth=Auth())
    hub.start_in_thread()

    def publish(evs):
        async def go():
            await hub.submit(evs)
        asyncio.run_coroutine_threadsafe(go(), hub.loop).result(5)

    live = FeedClient(hub.url)
    replay = None
    try:
        live.start()
        live_state = LiveState()
        live_driver = FrameDriver(live_state, live)
        assert wait_for(lambda: live.state.state == LIVE)
        publish([dev(i) for i in range(3)])
        time.sleep(0.3)
        t_mid = time.time()
        time.sleep(0.3)
        publish([dev(0, "crit")])
        assert wait_for(lambda: (live_driver.step(), live_state.seq == 4)[1])

        replay = FeedClient(hub.url, at=t_mid, speed=0, wall="rewind")
        rstate = LiveState()
        rdriver = FrameDriver(rstate, replay, clock=lambda: replay.replay_clock() or 0.0)
        replay.start()
        assert wait_for(lambda: (rdriver.step(), rdriver.stats.snapshots == 1)[1])
        assert rstate.seq == 3 and rstate.devices["d0"]["status"] == "ok"     # the past
        assert replay.replay_clock() == pytest.approx(t_mid)                  # paused there
        assert live_state.devices["d0"]["status"] == "crit"                   # the present, untouched
        replay.set_speed(16)
        assert wait_for(lambda: (rdriver.step(), rstate.seq == 4)[1])
        assert rstate.devices["d0"]["status"] == "crit"
        replay.set_speed(0)
        replay.seek(t_mid)                                                    # back again
        assert wait_for(lambda: (rdriver.step(), rdriver.stats.snapshots == 2 and rstate.seq == 3)[1])
        publish([dev(1, "warn")])                                             # the live one goes on
        assert wait_for(lambda: (live_driver.step(), live_state.seq == 5)[1])
        assert hub.counters["replays"] == 1
    finally:
        if replay is not None:
            replay.stop()
        live.stop()
        hub.stop()
