"""Walls that stop reading are dropped (issue 13): past their lag bound, or with a frame
blocked, for ``wall_drop_s`` -> closed with 1013 and a reason, counted; a wall that keeps
up (or catches up) is left alone."""
from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import time
from types import SimpleNamespace
from typing import Any

import pytest
from websockets.asyncio.client import connect

from wallboard import protocol as P
from wallboard.hub.auth import Auth
from wallboard.hub.fanout import WallSender
from wallboard.hub.server import Hub, HubConfig

pytestmark = pytest.mark.timeout(60)


class StuckWs:
    """A connection whose sends never complete (a wall that stopped reading)."""

    def __init__(self) -> None:
        self.closed: tuple[int, str] | None = None
        self.transport = SimpleNamespace(is_closing=lambda: self.closed is not None, abort=lambda: None)

    async def send(self, frame: Any, text: bool = False) -> None:
        await asyncio.Event().wait()

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def fake_hub(seq: int, **cfg: Any) -> Any:
    counters: dict[str, int] = {}
    config = HubConfig(**cfg)
    return SimpleNamespace(seq=seq, config=config, counters=counters,
                           count=lambda k, n=1: counters.__setitem__(k, counters.get(k, 0) + n))


def test_a_wall_past_its_lag_bound_for_wall_drop_s_is_closed_1013_with_a_reason(caplog):
    async def main() -> tuple[Any, Any]:
        hub = fake_hub(100, max_lag=50, wall_drop_s=5.0)
        ws = StuckWs()
        w = WallSender(hub, ws, "w1", {"subscribe"})  # type: ignore[arg-type]
        w.cursor = 10                                  # 91 events behind
        assert not w.check(1000.0) and w.behind_since == 1000.0
        assert not w.check(1004.9)
        hub.seq, w.cursor = 100, 95                    # caught up: the clock starts again
        assert not w.check(1005.0) and w.behind_since is None
        w.cursor = 10
        assert not w.check(1006.0)
        with caplog.at_level(logging.WARNING, "wallboard.hub"):
            assert w.check(1011.0)
            await asyncio.sleep(0.05)
        assert w.check(1012.0)                         # once
        return ws, hub
    ws, hub = asyncio.run(main())
    assert ws.closed == (1013, "lagging: 91 events behind (bound 50) for 5 s; reconnect to resync")
    assert hub.counters == {"walls_dropped": 1}
    assert "wall w1 dropped: lagging: 91 events behind (bound 50) for 5 s" in caplog.text


def test_a_wall_with_a_frame_blocked_for_wall_drop_s_is_dropped_even_within_its_lag():
    async def main() -> Any:
        hub = fake_hub(5, max_lag=50, wall_drop_s=0.2)
        ws = StuckWs()
        w = WallSender(hub, ws, "w2", {"subscribe"})  # type: ignore[arg-type]
        w.push(b"{}")
        w.task = asyncio.create_task(w._run())
        await asyncio.sleep(0.05)
        assert not w.check(time.monotonic())
        await asyncio.sleep(0.25)
        assert w.check(time.monotonic())
        await asyncio.sleep(0.05)
        assert w.task.done()
        return ws
    ws = asyncio.run(main())
    assert ws.closed == (1013, "lagging: not reading (a frame waiting to be written) for 0 s; reconnect to resync")


def raw_wall(port: int) -> socket.socket:
    """A websocket wall on a raw socket with a tiny receive buffer: it says hello, then
    never reads again."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET /feed HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert b" 101 " in head.split(b"\r\n")[0]
    payload = P.encode(P.Hello(wall="sleeper", since=0))
    mask = os.urandom(4)
    assert len(payload) < 126
    s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    return s


def test_a_real_wall_that_stops_reading_is_dropped_and_a_reading_wall_is_not():
    hub = Hub(HubConfig(port=0, journal=None, max_lag=3000, tail_events=3000, wall_drop_s=0.5, heartbeat_s=0.1),
              auth=Auth())
    hub.start_in_thread()
    try:
        sleeper = raw_wall(hub.port)

        async def go() -> int:
            got = 0
            async with connect(hub.url, max_size=None) as wall, connect(hub.publish_url) as prod:
                await wall.send(P.encode(P.Hello(wall="reader")))

                async def read() -> None:
                    nonlocal got
                    async for raw in wall:
                        if '"op":"events"' in raw[:40]:
                            got += raw.count('"type":"kpi"')
                reader = asyncio.create_task(read())
                for b in range(80):  # 8 MB: more than the sleeper's socket buffers take
                    evs = [{"type": "kpi", "metric": "m", "scope": "global", "value": 1.0, "x_pad": "p" * 1000}
                           for _ in range(100)]
                    await prod.send(P.encode(P.Publish(events=evs)))
                    assert isinstance(P.decode(await prod.recv()), P.Ack)
                for _ in range(100):  # dropped after 0.5 s, cut after at most 1 s more
                    if hub.stats().get("walls_dropped") and len(hub.walls) == 1:
                        break
                    await asyncio.sleep(0.05)
                stats["walls"] = hub.stats()
                names.extend(w.name for w in hub.walls)
                reader.cancel()
            return got
        stats: dict[str, Any] = {}
        names: list[str] = []
        got = asyncio.run(asyncio.wait_for(go(), 30))
        stats = stats["walls"]
    finally:
        hub.stop()
        sleeper.close()
    assert stats["walls_dropped"] == 1 and names == ["reader"]
    assert got > 0  # the reading wall kept getting events (a resync under load may replace some)
