"""Feed client on real loopback sockets: resume after a drop, gap -> resync, STALE,
AUTH_FAILED without a retry storm, one wake-up per batch of work, control round trip."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import pytest
from websockets.asyncio.server import serve

from wallboard import protocol as P
from wallboard.feed import AUTH_FAILED, LIVE, STALE, FeedClient
from wallboard.hub.auth import Auth
from wallboard.hub.server import Hub, HubConfig

pytestmark = pytest.mark.timeout(60)


def wait_for(pred, timeout=10.0, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


class Collector:
    def __init__(self, client: FeedClient):
        self.client = client
        self.items: list = []

    def pump(self):
        self.items.extend(self.client.drain(1000))
        return self.items

    def kinds(self):
        return [k for k, _ in self.items]

    def seqs(self):
        return [e["seq"] for k, p in self.items if k == "events" for e in p]


class FakeHub:
    """A scripted /feed server: ``script(ws, hello)`` runs per connection."""

    def __init__(self, script):
        self.script = script
        self.hellos: list[P.Hello] = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def handler(ws):
            hello = P.decode(await ws.recv())
            self.hellos.append(hello)
            await self.script(ws, hello, len(self.hellos))

        async def main():
            self.server = await serve(handler, "127.0.0.1", 0, compression=None)
            self.port = next(iter(self.server.sockets)).getsockname()[1]
            ready.set()

        self.thread = threading.Thread(target=lambda: (self.loop.run_until_complete(main()), self.loop.run_forever()),
                                       daemon=True)
        self.thread.start()
        ready.wait(5)
        self.url = f"ws://127.0.0.1:{self.port}/feed"

    def close(self):
        async def shut():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def welcome(hb=1.0):
    return P.encode(P.Welcome(protocol=1, hub="fake", seq=0, heartbeat_s=hb, roles=["subscribe"]))


def events(a, b):
    return P.encode_events([{"type": "kpi", "metric": "m", "scope": "global", "value": 1.0, "ts": 1.0, "seq": s}
                            for s in range(a, b + 1)])


def test_resume_after_a_dropped_connection_replays_without_a_snapshot():
    hub = Hub(HubConfig(port=0), auth=Auth())
    hub.start_in_thread()
    client = FeedClient(hub.url)
    col = Collector(client)
    try:
        client.start()
        assert wait_for(lambda: client.state.state == LIVE)

        def publish(n0, n):
            async def go():
                evs = [{"type": "kpi", "metric": "m", "scope": "global", "value": float(i)} for i in range(n0, n0 + n)]
                fut = hub.submit(evs)
                await fut
            asyncio.run_coroutine_threadsafe(go(), hub.loop).result(5)

        publish(0, 10)
        assert wait_for(lambda: len(col.pump()) and col.seqs()[-1:] == [10])
        # drop every wall connection from the hub side
        for w in list(hub.walls):
            asyncio.run_coroutine_threadsafe(w.ws.close(1001, "going away"), hub.loop).result(5)
        publish(10, 5)
        assert wait_for(lambda: col.pump() and col.seqs()[-1:] == [15])
        assert col.seqs() == list(range(1, 16))
        assert col.kinds().count("snapshot") == 1 and col.kinds().count("welcome") == 2
        assert client.state.connects == 2 and client.state.state == LIVE
        assert "RECONNECTING" in [p.state for k, p in col.items if k == "state"]
    finally:
        client.stop()
        hub.stop()


def test_seq_gap_reconnects_with_since_and_is_never_skipped():
    async def script(ws, hello, n):
        await ws.send(welcome())
        if n == 1:
            await ws.send(events(1, 2))
            await ws.send(events(5, 6))  # gap
        else:
            await ws.send(events(hello.since + 1, 6))
        await ws.wait_closed()

    fake = FakeHub(script)
    client = FeedClient(fake.url, since=0)
    col = Collector(client)
    try:
        client.start()
        assert wait_for(lambda: col.pump() and col.seqs()[-1:] == [6])
        assert col.seqs() == [1, 2, 3, 4, 5, 6]
        assert fake.hellos[1].since == 2
        assert client.state.rejects["seq_gap"] == 1 and "expected seq 3, got 5" in client.state.last_reject
    finally:
        client.stop()
        fake.close()


def test_stale_after_three_missed_heartbeats_then_live_again():
    async def script(ws, hello, n):
        await ws.send(welcome(hb=0.1))
        await asyncio.sleep(0.8)  # silence: > 3 heartbeat intervals
        await ws.send(P.encode(P.Heartbeat(seq=0, time=time.time())))
        await ws.wait_closed()

    fake = FakeHub(script)
    client = FeedClient(fake.url)
    col = Collector(client)
    try:
        client.start()
        assert wait_for(lambda: client.state.state == STALE)
        assert wait_for(lambda: client.state.state == LIVE)
        states = [p.state for k, p in col.pump() if k == "state"]
        assert states[-3:] == ["LIVE", "STALE", "LIVE"]
        assert client.state.last_message_at is not None
    finally:
        client.stop()
        fake.close()


def test_auth_failed_without_a_retry_storm():
    hub = Hub(HubConfig(port=0), auth=Auth({"publish": "p" * 16, "subscribe": "s" * 16, "control": "c" * 16}))
    hub.start_in_thread()
    bad_header = FeedClient(hub.url, token="wrong")
    no_token = FeedClient(hub.url)
    try:
        bad_header.start()
        no_token.start()
        assert wait_for(lambda: bad_header.state.state == AUTH_FAILED and no_token.state.state == AUTH_FAILED)
        time.sleep(0.5)
        assert hub.counters["rejects_auth"] == 2  # one attempt each, no storm
        assert bad_header.state.rejects["auth"] == 1 and "401" in bad_header.state.last_reject
        assert no_token.state.last_reject == "auth: a subscribe token is required"  # the code once
        assert "bytearray" not in bad_header.state.last_reject and "b'" not in bad_header.state.last_reject
    finally:
        bad_header.stop()
        no_token.stop()
        hub.stop()


def test_one_wake_per_batch_of_work_and_bounded_queue():
    async def script(ws, hello, n):
        await ws.send(welcome())
        for k in range(50):
            await ws.send(events(k * 10 + 1, k * 10 + 10))
        await ws.wait_closed()

    fake = FakeHub(script)
    wakes = []
    client = FeedClient(fake.url, on_wake=lambda: wakes.append(1))
    try:
        client.start()
        assert wait_for(lambda: client.state.seq == 500)
        assert len(wakes) == 1  # nothing drained yet: a single wake-up for all 50 frames
        got = client.drain(10_000)
        assert sum(len(p) for k, p in got if k == "events") == 500
        assert client.drain(10) == []
    finally:
        client.stop()
        fake.close()


def test_control_round_trip_and_bad_url():
    hub = Hub(HubConfig(port=0), auth=Auth())
    hub.start_in_thread()
    client = FeedClient(hub.url)
    col = Collector(client)
    try:
        client.start()
        assert wait_for(lambda: client.state.state == LIVE)
        client.send_control("switch_layout", {"layout": "double-11"})
        assert wait_for(lambda: col.pump() and any(
            k == "events" and p[0]["type"] == "control" for k, p in col.items))
        client.send_control("switch_layout", {})
        assert wait_for(lambda: col.pump() and any(k == "error" for k, _ in col.items))
        err = [p for k, p in col.items if k == "error"][0]
        assert err.code == "missing_field" and "layout" in str(err)
    finally:
        client.stop()
        hub.stop()
    with pytest.raises(ValueError, match="expected ws://HOST:PORT/feed"):
        FeedClient("http://x/feed")


def test_feed_module_does_not_import_qt():
    out = subprocess.run([sys.executable, "-c", "import sys, wallboard.feed; print('PySide6' in sys.modules)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
