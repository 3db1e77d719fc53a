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


# ---------------------------------------------------------------- (c) resync storms
def _gap_then_close(s: WallSession, since: int | None) -> None:
    """A hub that always answers with a gap: welcome, then events after a hole."""
    s.receive(P.encode(P.Welcome(protocol=1, hub="bad", seq=100, heartbeat_s=1.0)), 0.0)
    s.receive(events((since or 0) + 5, (since or 0) + 6), 0.0)


def test_a_hub_that_always_gaps_costs_a_reconnect_every_few_seconds_not_132_a_second():
    """Sans-I/O: WallSession says ``resync`` every time; the policy spaces the reconnects.
    Simulated time: each connection lives 5 ms (the 132/s of the issue)."""
    import random

    from wallboard.backoff import Reconnects, backoff

    s = WallSession(since=10)
    policy = Reconnects(lambda: backoff(rng=random.Random(5)), healthy_s=10.0)
    now, connects, delays = 0.0, 0, []
    while now < 60.0:
        s.connect()
        connects += 1
        _gap_then_close(s, s.since)
        policy.up(now)
        assert s.close_reason == "resync" and s.since == 10         # never skipped
        now += 0.005
        s.connection_lost()
        delays.append(policy.down(now))
        now += delays[-1]
    assert delays[0] == 0.0                                          # the first resync at once
    assert connects <= 30, connects                                  # 5 ms each without back-off: 12,000
    assert s.rejects["seq_gap"] == connects and policy.in_a_row == connects


def recording_delays(first, then):
    """A delay-generator factory that records how often it is made and what is drawn."""
    made, asked = [], []

    def delays():
        made.append(1)
        for d in first:
            asked.append(d)
            yield d
        while True:
            asked.append(then)
            yield then

    return delays, made, asked


def test_the_feed_driver_backs_off_a_resync_storm(caplog):
    """The real client against a hub that sends a gap on every connection: the delays it
    sleeps come from one backoff generator (never restarted by the welcomes), the first at
    once, the rest growing; it says so in the log and in its status."""
    delays, made, asked = recording_delays((0.0, 0.05, 0.1, 0.2, 0.4, 0.8), 1.0)

    async def script(ws, hello, n):
        await ws.send(welcome())
        await ws.send(events((hello.since or 0) + 3, (hello.since or 0) + 4))   # always a gap
        await ws.wait_closed()

    fake = FakeHub(script)
    client = FeedClient(fake.url, since=1, delays=delays)
    try:
        with caplog.at_level("WARNING", logger="wallboard.feed"):
            client.start()
            assert wait_for(lambda: len(fake.hellos) >= 5, timeout=20)
        assert made == [1], "a welcome restarted the backoff"
        assert asked[:4] == [0.0, 0.05, 0.1, 0.2]
        assert all(h.since == 1 for h in fake.hellos)                       # the gap is never skipped
        assert client.state.reconnects_in_a_row >= 4
        assert client.state.rejects["seq_gap"] >= 4
        assert f"feed {fake.url}: resync asked again (2 reconnects in a row, none up 10 s): next attempt in 0.1 s" \
            in caplog.text
    finally:
        client.stop()
        fake.close()


def test_a_bad_snapshot_resync_backs_off_too():
    """FrameDriver asks ``resync(None)`` for a snapshot that does not load; the client's
    reconnect after it waits like any other within a short-lived link."""
    delays, made, asked = recording_delays((0.0, 0.05, 0.1), 0.2)

    async def script(ws, hello, n):
        await ws.send(welcome())
        await ws.send(P.encode(P.Snapshot(seq=5, part=0, parts=1, data={"version": 99})))
        await ws.wait_closed()

    fake = FakeHub(script)
    client = FeedClient(fake.url, delays=delays)
    try:
        client.start()
        for _ in range(4):
            assert wait_for(lambda: any(k == "snapshot" for k, _ in client.drain(100)), timeout=10)
            client.resync(None)                                              # as FrameDriver does
        assert wait_for(lambda: len(fake.hellos) >= 4, timeout=10)
        assert made == [1] and asked[:3] == [0.0, 0.05, 0.1]
    finally:
        client.stop()
        fake.close()


# ---------------------------------------------------------------- (d) heartbeat bound
HB_TEXT = ("bad_value: hub heartbeat_s 1e+09 is longer than this wall accepts (at most 30 s): counted as "
           "30 s, so a silent feed turns STALE after 90 s")


def test_a_huge_hub_heartbeat_is_bounded_and_a_silent_feed_turns_stale():
    """A hub heartbeat of 1e9 s kept a silent feed LIVE: the wall believes at most 30 s."""
    s = WallSession()
    s.connect()
    s.receive(P.encode(P.Welcome(protocol=1, hub="h", seq=0, heartbeat_s=1e9)), now=1000.0)
    items = s.events()
    assert [k for k, _ in items] == ["welcome", "error"]
    err = items[1][1]
    assert err.code == "bad_value" and err.field == "heartbeat_s" and str(err).startswith(HB_TEXT)
    assert s.last_reject == HB_TEXT and s.rejects == {"bad_value": 1}
    assert s.heartbeat_s == P.WALL_MAX_HEARTBEAT_S == 30.0
    assert not s.stale(1089.0) and s.stale(1090.0)           # 3 x 30 s of silence


def test_a_heartbeat_within_the_bound_is_taken_as_it_is():
    s = WallSession()
    s.connect()
    s.receive(P.encode(P.Welcome(protocol=1, hub="h", seq=0, heartbeat_s=30.0)), now=0.0)
    assert s.heartbeat_s == 30.0 and s.rejects == {}


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan")])
def test_a_bad_heartbeat_bound_is_refused(bad):
    with pytest.raises(ValueError, match="max_heartbeat_s must be a finite number > 0, got "):
        WallSession(max_heartbeat_s=bad)


def test_the_client_turns_stale_under_a_silent_hub_that_announced_1e9_s():
    async def script(ws, hello, n):
        await ws.send(P.encode(P.Welcome(protocol=1, hub="liar", seq=0, heartbeat_s=1e9, roles=["subscribe"])))
        await ws.wait_closed()                                   # then silence

    fake = FakeHub(script)
    client = FeedClient(fake.url, max_heartbeat_s=0.1)           # 30 s in production: 0.3 s here
    try:
        client.start()
        assert wait_for(lambda: client.state.state == "STALE")
        assert client.state.heartbeat_s == 0.1 and client.state.rejects["bad_value"] == 1
        assert client.state.last_reject.startswith("bad_value: hub heartbeat_s 1e+09 is longer than this wall "
                                                   "accepts (at most 0.1 s)")
    finally:
        client.stop()
        fake.close()


def test_the_controller_bounds_the_heartbeat_it_is_shown(qtbot):
    """The shell's own STALE check (data age > 3 heartbeats) uses the same bound."""
    from wallboard import layout as L
    from wallboard.app.controller import WallController
    from wallboard.state import LiveState

    class Status:
        state, heartbeat_s, rejects, last_reject = "LIVE", 1e9, 0, ""

    class Feed:
        state = Status()

        def drain(self, n):
            return []

        def resync(self, since):
            pass

    now = [1000.0]
    st = LiveState()
    ctl = WallController(st, Feed(), L.load_layout(L.find_layout("overview")), size=(1280, 720),
                         clock=lambda: now[0])
    try:
        for w in ctl.windows:
            qtbot.addWidget(w)
        st.touch(1000.0)
        now[0] = 1089.0
        assert not ctl.is_stale(now[0])
        now[0] = 1091.0
        assert ctl.is_stale(now[0])
    finally:
        ctl.shutdown()


# ---------------------------------------------------------------- (c) the hub's retry_after
def test_the_session_keeps_the_hubs_retry_after_until_the_next_connect():
    s = WallSession()
    s.connect()
    s.receive(P.encode(P.Error(code="unavailable", message="snapshot budget used up", retry_after=12.0)), 1.0)
    assert s.retry_after == 12.0
    s.receive(P.encode(P.Error(code="forbidden", message="no", ref="c1", retry_after=3.0)), 1.0)
    assert s.retry_after == 12.0                        # a refused control says nothing about the link
    s.connection_lost()
    assert s.retry_after == 12.0
    s.connect()
    assert s.retry_after is None


@pytest.mark.parametrize("asked,cap,want,tail", [
    (0.3, 60.0, 0.3, ""),
    (1e9, 0.2, 0.2, " (at most 0.2 s)"),
])
def test_the_client_waits_the_hubs_retry_after_up_to_its_bound(caplog, asked, cap, want, tail):
    """The hub's snapshot budget answers ``unavailable`` + ``retry_after`` and closes 1013:
    the wall comes back after that, not after its own (shorter) back-off; a hub asking
    for 1e9 s cannot park it."""
    delays, made, _ = recording_delays((0.0,), 0.0)

    async def script(ws, hello, n):
        await ws.send(welcome())
        if n == 1:
            await ws.send(P.encode(P.Error(code="unavailable", message="snapshot budget used up",
                                           retry_after=asked)))
            await ws.close(1013, "unavailable: snapshot budget used up")
            return
        await ws.send(events(1, 2))
        await ws.wait_closed()

    fake = FakeHub(script)
    client = FeedClient(fake.url, delays=delays, max_retry_after_s=cap)
    col = Collector(client)
    try:
        with caplog.at_level("WARNING", logger="wallboard.feed"):
            client.start()
            assert wait_for(lambda: col.pump() and col.seqs()[-1:] == [2])
        assert client.state.next_retry_s == want and client.state.rejects["unavailable"] == 1
        assert f"feed {fake.url}: the hub asked to retry in {asked:g} s: next attempt in {want:g} s{tail}" \
            in caplog.text
    finally:
        client.stop()
        fake.close()
