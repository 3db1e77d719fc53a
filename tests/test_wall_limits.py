"""Issue 13, the wall: what a hub (or something posing as one) can make a wall do.

A frame-size limit announced in ``hello`` and enforced on the socket; (more below).
Sans-I/O checks drive :class:`WallSession` with bytes; the driver checks use the scripted
``FakeHub`` of test_feed on loopback."""
from __future__ import annotations

import asyncio

import orjson
import pytest

from test_feed import Collector, FakeHub, events, wait_for, welcome
from wallboard import protocol as P
from wallboard.feed import LIVE, FeedClient
from wallboard.protocol.limits import MIN_WALL_FRAME
from wallboard.protocol.session import WallSession

pytestmark = pytest.mark.timeout(60)


# ---------------------------------------------------------------- (b) frame size
def test_hello_announces_the_wall_max_frame_and_the_hub_reads_it():
    s = WallSession(max_frame=2 * MIN_WALL_FRAME)
    hello = P.decode(s.connect(), expect=("hello",))
    assert hello.max_frame == 2 * MIN_WALL_FRAME
    assert P.decode(WallSession().connect()).max_frame == P.WALL_MAX_FRAME == 16 << 20


def test_a_hello_announcing_less_than_the_protocol_frame_is_refused():
    with pytest.raises(P.ProtocolError) as e:
        P.decode(b'{"op":"hello","max_frame":4096}')
    assert str(e.value).startswith("bad_value") and "max_frame" in str(e.value)
    assert f"an integer >= {MIN_WALL_FRAME}" in str(e.value)


@pytest.mark.parametrize("bad", [4096, MIN_WALL_FRAME - 1, 2.0e6, None])
def test_a_session_limit_below_the_protocol_frame_is_refused(bad):
    with pytest.raises(ValueError, match=rf"max_frame must be an integer >= {MIN_WALL_FRAME} bytes "
                                         r"\(every accepted event fits in that\), got "):
        WallSession(max_frame=bad)


def test_the_session_refuses_a_frame_over_its_limit():
    s = WallSession(max_frame=MIN_WALL_FRAME)
    s.connect()
    s.receive(b" " * (MIN_WALL_FRAME + 1), 1.0)
    (kind, err), = s.events()
    assert kind == "error" and err.code == "too_large"
    assert str(err) == f"too_large: frame of {MIN_WALL_FRAME + 1} bytes (expected at most {MIN_WALL_FRAME} bytes)"
    assert s.rejects == {"too_large": 1}


def test_the_client_closes_on_a_frame_over_its_limit_before_reading_it():
    """A 130 MB frame took the wall to 1.36 GB: websockets' max_size refuses it from its
    length (close 1009); the wall says so, counts it and reconnects (with back-off)."""
    big = orjson.dumps({"op": "stats", "counters": {"x": 1.0}, "pad": "p" * MIN_WALL_FRAME})

    async def script(ws, hello, n):
        await ws.send(welcome())
        if n == 1:
            await ws.send(big.decode())
        else:
            await ws.send(events(1, 3))
        await ws.wait_closed()

    fake = FakeHub(script)
    client = FeedClient(fake.url, max_frame=MIN_WALL_FRAME)
    col = Collector(client)
    try:
        client.start()
        assert wait_for(lambda: col.pump() and col.seqs()[-1:] == [3])
        assert fake.hellos[0].max_frame == MIN_WALL_FRAME
        assert client.state.rejects["too_large"] == 1 and client.state.state == LIVE
        assert client.state.last_reject == (
            f"too_large: a frame from the hub is larger than this wall's limit of {MIN_WALL_FRAME} bytes "
            "(--max-frame; announced in hello): connection closed, reconnecting")
        assert client.state.connects == 2
    finally:
        client.stop()
        fake.close()
