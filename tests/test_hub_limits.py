"""Memory bounded by configuration (issue 13): event, frame and batch limits, the ingest
queue over all producers, the fan-out tail's bytes and the token bucket -- each refusal
with its message, over the websocket and over HTTP, on real hubs over loopback."""
from __future__ import annotations

import asyncio
import threading
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import connect

from wallboard import protocol as P
from wallboard.hub.auth import Auth
from wallboard.hub.batches import Batch
from wallboard.hub.budget import IngestQueue, TokenBucket, check_event_bytes
from wallboard.hub.fanout import Tail
from wallboard.hub.http_ingest import start_http_ingest
from wallboard.hub.journal import MemoryJournal
from wallboard.hub.server import Hub, HubConfig

pytestmark = pytest.mark.timeout(60)


def kpi(i: int, pad: int = 0) -> dict[str, Any]:
    ev: dict[str, Any] = {"type": "kpi", "metric": "m", "scope": "global", "value": float(i), "ts": 1000.0 + i}
    if pad:
        ev["x_pad"] = "p" * pad
    return ev


async def recv(ws: Any) -> P.Message:
    return P.decode(await asyncio.wait_for(ws.recv(), 10), max_size=1 << 30)


class SlowJournal(MemoryJournal):
    """A memory journal whose appends wait until ``gate`` is set (a slow disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def append(self, batches: list[Batch]) -> Any:
        self.gate.wait(10)
        return super().append(batches)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


# ---------------------------------------------------------------------- token bucket
class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_bucket_never_goes_into_debt_and_refuses_a_batch_over_its_burst():
    clock = Clock()
    b = TokenBucket(1000, clock=clock)
    assert b.over_burst(2000) and not b.over_burst(1000)
    assert b.take(1000) and b.level == 0
    assert not b.take(500) and b.level == 0          # refused: nothing taken
    assert b.retry_after(500) == 0.5
    clock.t = 0.5
    assert b.take(500)                                 # a normal batch gets in after its refill
    msg = b.over_burst_message(2000, "per connection")
    assert msg == ("batch of 2000 events is larger than the rate limit allows at once (1000 events: --rate-limit "
                   "1000 events/s per connection); it can never be admitted: split it into batches of at most "
                   "1000 events (nothing applied)")


def test_a_batch_over_the_burst_is_too_large_and_does_not_lock_normal_batches_out():
    hub = Hub(HubConfig(port=0, journal=None, rate_limit=1000), auth=Auth())
    hub.start_in_thread()
    try:
        async def go() -> list[P.Message]:
            async with connect(hub.publish_url) as ws:
                out = []
                for n, size in ((1, 2000), (2, 500), (3, 500), (4, 500)):
                    await ws.send(P.encode(P.Publish(events=[kpi(n * 10000 + i) for i in range(size)],
                                                     producer="p", batch=n)))
                    out.append(await recv(ws))
                return out
        big, a2, a3, limited = run(go())
    finally:
        hub.stop()
    assert isinstance(big, P.Error) and big.code == "too_large" and big.field == "events"
    assert "batch of 2000 events is larger than the rate limit allows at once (1000 events" in big.message
    assert isinstance(a2, P.Ack) and isinstance(a3, P.Ack) and (a2.first, a3.last) == (1, 1000)
    assert isinstance(limited, P.Error) and limited.code == "rate_limited" and 0 < limited.retry_after <= 0.5
    assert "over 1000 events/s for this producer (its address and token, over its connections and HTTP " \
           "requests)" in limited.message
    assert hub.stats()["rejects_too_large"] == 1


def test_http_batch_over_the_burst_is_413_and_rate_limited_says_when():
    async def main() -> None:
        hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None), auth=Auth())
        await hub.astart()
        ingest = await start_http_ingest(hub, "127.0.0.1", 0, rate_limit=10)
        try:
            async with aiohttp.ClientSession(headers={"X-Wallboard-Client": "t"}) as s:
                async def post(events: list) -> tuple[int, dict, Any]:
                    async with s.post(ingest.url + "/events", data=orjson.dumps(events),
                                      headers={"Content-Type": "application/json"}) as r:
                        return r.status, await r.json(), r.headers
                status, body, _ = await post([kpi(i) for i in range(11)])
                assert status == 413 and body["error"] == "too_large"
                assert "batch of 11 events is larger than the rate limit allows at once (10 events: --rate-limit " \
                       "10 events/s per producer)" in body["message"]
                assert (await post([kpi(i) for i in range(10)]))[0] == 200
                status, body, headers = await post([kpi(1)])
                assert status == 429 and body["error"] == "rate_limited" and headers["Retry-After"] == "1"
        finally:
            await ingest.stop()
            await hub.astop()
    run(main())


def test_websocket_and_http_of_one_producer_take_from_one_rate_bucket():
    """A producer (its address and token) has one bucket over its websocket connections
    and its HTTP requests; another token from the same address has its own."""
    from wallboard.hub.admission import RateBuckets

    tokens = {"publish": "p" * 16}
    other = "q" * 16

    async def main() -> None:
        hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, rate_limit=100),
                  auth=Auth(grants={"p" * 16: {"publish"}, other: {"publish"}}))
        await hub.astart()
        ingest = await start_http_ingest(hub, "127.0.0.1", 0)
        try:
            async with connect(hub.publish_url, additional_headers={"Authorization": f"Bearer {tokens['publish']}"}) as ws, \
                    connect(hub.publish_url) as ws2:
                await ws.send(P.encode(P.Publish(events=[kpi(i) for i in range(95)])))
                assert isinstance(await recv(ws), P.Ack)
                await ws2.send(P.encode(P.Publish(events=[kpi(i) for i in range(60)], token=tokens["publish"])))
                limited = await recv(ws2)            # a second connection, same producer: same bucket
                assert isinstance(limited, P.Error) and limited.code == "rate_limited"
            async with aiohttp.ClientSession() as s:
                async def post(token: str) -> tuple[int, dict]:
                    async with s.post(ingest.url + "/events", data=orjson.dumps([kpi(i) for i in range(100)]),
                                      headers={"Content-Type": "application/json",
                                               "Authorization": f"Bearer {token}"}) as r:
                        return r.status, await r.json()
                status, body = await post(tokens["publish"])
                assert status == 429 and body["error"] == "rate_limited"
                assert body["message"].startswith("over 100 events/s for this producer (its address and token, "
                                                  "over its HTTP requests and websocket connections)")
                assert (await post(other))[0] == 200   # another token: another producer
        finally:
            await ingest.stop()
            await hub.astop()
    run(main())
    rb = RateBuckets(10, max_producers=2)
    a = rb.get("10.0.0.1", "t" * 16)
    assert rb.get("10.0.0.1", "t" * 16) is a and rb.get("10.0.0.1", None) is not a
    rb.get("10.0.0.2", None)
    assert len(rb) == 2 and "t" * 16 not in RateBuckets.key("10.0.0.1", "t" * 16)


# ---------------------------------------------------------------------- event bytes
def test_check_event_bytes_skips_small_frames_and_names_the_event():
    evs = [kpi(1), kpi(2, pad=3000)]
    check_event_bytes(evs, 2048, frame_bytes=2000)   # the frame is within the limit: not measured
    with pytest.raises(P.ProtocolError) as ei:
        check_event_bytes(evs, 2048, frame_bytes=4000)
    e = ei.value
    assert (e.code, e.index, e.limit) == ("too_large", 1, 2048) and e.got > 3000
    assert str(e) == (f"too_large: event encodes to {e.got} bytes (expected at most 2048 bytes per event "
                      "(--max-event-bytes)) at op publish, event 1")


def test_an_event_over_max_event_bytes_is_refused_on_the_websocket_nothing_applied():
    hub = Hub(HubConfig(port=0, journal=None, max_event_bytes=2048), auth=Auth())
    hub.start_in_thread()
    try:
        async def go() -> list[P.Message]:
            async with connect(hub.publish_url) as ws:
                await ws.send(P.encode(P.Publish(events=[kpi(1), kpi(2, pad=3000)])))
                refused = await recv(ws)
                await ws.send(P.encode(P.Publish(events=[kpi(3, pad=1000)])))
                return [refused, await recv(ws)]
        refused, ack = run(go())
    finally:
        hub.stop()
    assert isinstance(refused, P.Error) and refused.code == "bad_event" and refused.index == 1
    assert "too_large: event encodes to" in refused.message and "at most 2048 bytes per event" in refused.message
    assert isinstance(ack, P.Ack) and (ack.first, ack.last) == (1, 1)


def test_an_event_over_max_event_bytes_is_413_over_http_naming_the_line():
    async def main() -> None:
        hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, max_event_bytes=2048), auth=Auth())
        await hub.astart()
        ingest = await start_http_ingest(hub, "127.0.0.1", 0)
        try:
            body = orjson.dumps(kpi(1)) + b"\n" + orjson.dumps(kpi(2, pad=3000)) + b"\n"
            async with aiohttp.ClientSession() as s:
                async with s.post(ingest.url + "/events", data=body, headers={
                        "Content-Type": "application/x-ndjson", "X-Wallboard-Client": "t"}) as r:
                    status, reply = r.status, await r.json()
            assert status == 413 and reply["error"] == "too_large" and reply["index"] == 1 and reply["line"] == 2
            assert reply["message"].startswith("line 2: too_large: event encodes to")
            assert hub.seq == 0
        finally:
            await ingest.stop()
            await hub.astop()
    run(main())


def test_a_batch_over_max_batch_on_the_websocket_names_the_limit():
    hub = Hub(HubConfig(port=0, journal=None, max_batch=3), auth=Auth())
    hub.start_in_thread()
    try:
        async def go() -> P.Message:
            async with connect(hub.publish_url) as ws:
                await ws.send(P.encode(P.Publish(events=[kpi(i) for i in range(4)])))
                return await recv(ws)
        e = run(go())
    finally:
        hub.stop()
    assert isinstance(e, P.Error) and e.code == "too_large" and "(expected at most 3)" in e.message


# ---------------------------------------------------------------------- ingest queue
def test_ingest_queue_admits_a_batch_alone_and_refuses_past_its_limit():
    q = IngestQueue(100)
    assert q.admit(150)                 # nothing waiting: a batch alone always goes
    assert not q.admit(1) and not q.room(1) and q.room(0) is False
    q.release(150)
    assert q.room(10 ** 9)              # empty: anything fits
    assert q.admit(60) and q.admit(40) and not q.admit(1)
    err = q.full_error(1, retry_after=1.0)
    assert err.retry_after == 1.0 and err.message == (
        "ingest queue full: 100 bytes of events are waiting for their commit and this batch adds 1 (limit 100 "
        "bytes over all producers, --max-ingest-bytes)")


def test_a_heavy_lane_is_paced_only_while_lanes_contend():
    from wallboard.hub.admission import LaneActivity

    lanes = LaneActivity(window=1.0)
    lanes.seen("10.0.0.1", 100.0)
    lanes.group_bytes(100.0, 4 << 20, 1 << 20)
    assert not lanes.contended and lanes.pace("10.0.0.1", 0.01, 100.0, 2.0) == 0.0
    lanes.seen("10.0.0.2", 100.5)
    assert lanes.group_bytes(100.5, 4 << 20, 1 << 20) == 1 << 20 and lanes.contended
    assert lanes.pace("10.0.0.1", 0.01, 100.5, 2.0) == pytest.approx(0.02)    # twice its frame's time
    assert lanes.pace("10.0.0.1", 0.01, 100.5, 2.0) == pytest.approx(0.05)    # its other connection: after
    assert lanes.group_bytes(102.0, 4 << 20, 1 << 20) == 4 << 20 and not lanes.contended  # both gone quiet


def test_ingest_queue_gives_each_address_at_most_its_share():
    q = IngestQueue(1000)                                   # share: a quarter
    assert q.share == 250 and q.admit(400, "10.0.0.1")     # alone in its lane: goes
    assert not q.room(1, "10.0.0.1") and q.room(500, "10.0.0.2") and q.room(500, None)
    assert q.full_error(10, 1.0, "10.0.0.1").message == (
        "ingest queue share full: 400 bytes of events from 10.0.0.1 are waiting for their commit and this "
        "batch adds 10 (at most 250 bytes per address: a quarter of --max-ingest-bytes 1000; one batch while "
        "other addresses send)")
    woke = []
    q.on_release = lambda: woke.append(1)
    q.release(400, "10.0.0.1")
    assert q.room(250, "10.0.0.1") and q.lanes == {} and woke == [1]
    q.contended = True                                      # several addresses sending: one batch each
    assert q.admit(10, "10.0.0.1") and not q.room(10, "10.0.0.1") and q.room(10, "10.0.0.2")


def cfg_small(**kw: Any) -> HubConfig:
    return HubConfig(host="127.0.0.1", port=0, journal=None, max_frame=1 << 16, max_body=1 << 16,
                     max_ingest_bytes=1 << 16, **kw)


def test_a_full_ingest_queue_answers_unavailable_with_retry_after_then_takes_the_resend(caplog):
    journal = SlowJournal()
    hub = Hub(cfg_small(), auth=Auth(), journal=journal)
    hub.start_in_thread()
    try:
        async def go() -> list[P.Message]:
            async with connect(hub.publish_url) as ws:
                for n in (1, 2):  # 40 KB each: the second does not fit while the first waits
                    await ws.send(P.encode(P.Publish(events=[kpi(n * 100 + i, pad=3900) for i in range(10)],
                                                     producer="p", batch=n)))
                await ws.send(b"{" + b"x" * 40_000)  # refused before it is parsed: not a violation
                for _ in range(100):  # the garbage is read after the 1 s pause, still full
                    if hub.stats().get("publish_pauses", 0) >= 2:
                        break
                    await asyncio.sleep(0.05)
                journal.gate.set()
                out = [await recv(ws), await recv(ws)]
                unparsed = await recv(ws)
                assert isinstance(unparsed, P.Error) and unparsed.code == "unavailable"
                await ws.send(P.encode(P.Publish(events=[kpi(200 + i, pad=3900) for i in range(10)],
                                                 producer="p", batch=2)))
                out.append(await recv(ws))
                return out
        ack1, full, ack2 = run(go())
        stats = hub.stats()
    finally:
        hub.stop()
    assert isinstance(ack1, P.Ack) and (ack1.first, ack1.last) == (1, 10)
    assert isinstance(full, P.Error) and full.code == "unavailable" and full.retry_after == 1.0
    assert full.message.startswith("not applied: ingest queue full: ") and "limit 65536 bytes" in full.message
    assert isinstance(ack2, P.Ack) and (ack2.first, ack2.last) == (11, 20) and not ack2.duplicate
    assert stats["rejects_ingest_full"] == 2 and stats["ingest_queue_bytes"] == 0 and not stats.get("violations")
    assert stats["publish_pauses"] == 2  # the connection was not read for retry_after after each refusal
    logged = [r.getMessage() for r in caplog.records if "ingest queue full" in r.getMessage()]
    assert len(logged) == 1 and logged[0].endswith("--max-ingest-bytes): answered unavailable (1 batches refused "
                                                   "so far)")
    assert 39_000 < stats["ingest_queue_peak_bytes"] <= 1 << 16


def test_a_full_ingest_queue_is_503_with_retry_after_over_http():
    async def main() -> None:
        journal = SlowJournal()
        hub = Hub(cfg_small(), auth=Auth(), journal=journal)
        await hub.astart()
        ingest = await start_http_ingest(hub, "127.0.0.1", 0, max_body=1 << 16)
        try:
            async with aiohttp.ClientSession() as s:
                async def post(n: int) -> tuple[int, dict, Any]:
                    body = orjson.dumps([kpi(n * 100 + i, pad=3900) for i in range(10)])
                    async with s.post(ingest.url + "/events", data=body, headers={
                            "Content-Type": "application/json", "X-Wallboard-Client": "t"}) as r:
                        return r.status, await r.json(), r.headers
                first = asyncio.create_task(post(1))
                while hub.ingest_queue.bytes == 0:
                    await asyncio.sleep(0.01)
                status, body, headers = await post(2)
                journal.gate.set()
                assert (await first)[0] == 200
            assert status == 503 and body["error"] == "unavailable" and headers["Retry-After"] == "1"
            assert "ingest queue full" in body["message"] and "resend after the Retry-After delay" in body["message"]
        finally:
            await ingest.stop()
            await hub.astop()
    run(main())


# ---------------------------------------------------------------------- tail bytes
def test_tail_is_bounded_by_bytes_as_well_as_by_count():
    t = Tail(capacity=10_000, max_bytes=1 << 20)
    big = b"x" * (100 << 10)
    for seq in range(1, 101):
        t.extend(seq, [big])
        assert t.bytes <= 1 << 20 and t.bytes == sum(map(len, t._buf))
    assert t.last_seq == 100 and t.base > 80
    assert t.get(t.base, 5, 1 << 30) == [big] * 5 and t.get(1, 5, 1 << 30) is None


@pytest.mark.parametrize("option, value, want", [
    ("max_event_bytes", 100, "hub option max_event_bytes=100: expected 1024..524288 bytes"),
    ("max_event_bytes", 1 << 20, "hub option max_event_bytes=1048576: expected 1024..524288 bytes"),
    ("max_ingest_bytes", 1000, "hub option max_ingest_bytes=1000: expected >= max_frame and max_body "
                               "(1048576 bytes)"),
    ("tail_bytes", 1000, "hub option tail_bytes=1000: expected >= 4 x max_frame (4194304 bytes)"),
    ("wall_drop_s", 0, "hub option wall_drop_s=0: expected > 0 seconds"),
    ("snapshot_budget", 0, "hub option snapshot_budget=0: expected >= 1 per minute"),
    ("snapshot_cache_s", -1, "hub option snapshot_cache_s=-1: expected >= 0 seconds"),
    ("max_devices", 0, "hub option max_devices=0: expected >= 1"),
    ("max_stores", 0, "hub option max_stores=0: expected >= 1"),
    ("evict_after_s", 0, "hub option evict_after_s=0: expected > 0 seconds"),
])
def test_bad_limit_options_are_named(option, value, want):
    with pytest.raises(ValueError) as ei:
        HubConfig(**{option: value}).validate()
    assert str(ei.value) == want


def cli_hub_config(monkeypatch, *argv: str) -> HubConfig:
    """The HubConfig ``wallboard hub ARGV`` builds (the hub itself is not made)."""
    import argparse

    from wallboard.hub import commands

    seen = {}

    class Stop(Exception):
        pass

    def fake_hub(cfg: HubConfig) -> None:
        seen["cfg"] = cfg
        raise Stop

    with monkeypatch.context() as m:
        m.setattr("wallboard.hub.server.Hub", fake_hub)
        parser = argparse.ArgumentParser()
        commands.register(parser.add_subparsers())
        args = parser.parse_args(["hub", *argv])
        with pytest.raises(Stop):
            args.func(args)
    return seen["cfg"]


def test_cli_flags_reach_the_config(monkeypatch):
    cfg = cli_hub_config(monkeypatch, "--port", "0", "--max-event-bytes", "4096", "--max-ingest-bytes", "8388608")
    assert (cfg.max_event_bytes, cfg.max_ingest_bytes) == (4096, 8 << 20)


# ---------------------------------------------------------------------- entity caps
def test_hub_device_cap_is_counted_in_metrics_and_survives_a_restart(tmp_path):
    from test_hub_gate import http_get  # noqa: F401 - raw GET helper

    def publish_all(hub: Hub) -> None:
        async def go() -> None:
            async with connect(hub.publish_url) as ws:
                old = [{"type": "device", "id": f"old{i}", "status": "ok", "ts": 1000.0} for i in range(3)]
                new = [{"type": "device", "id": f"new{i}", "status": "ok", "ts": 1000.0 + 400 + i} for i in range(4)]
                for evs in (old, new[:3]):   # the old ones are silent for ttl_s + 60 s: evicted
                    await ws.send(P.encode(P.Publish(events=evs)))
                    assert isinstance(await recv(ws), P.Ack)
                await ws.send(P.encode(P.Publish(events=[new[2], new[3]])))
                refused = await recv(ws)     # nothing long silent left: refused before it is queued
                assert isinstance(refused, P.Error) and (refused.code, refused.index, refused.field) == \
                    ("too_large", 1, "id")
                assert refused.message == (
                    "device 'new3' (event 1) would be device 4 of at most 3 (--max-devices) and none of the devices "
                    "held has been silent long enough to make room (ttl_s + --evict-after 60 s before this event's "
                    "ts): batch not applied; resend it without new devices, delete unused ones, or raise "
                    "--max-devices")
            # the hub's own producers are not checked before: the state refuses and counts
            await hub.submit([{"type": "device", "id": "new9", "status": "ok", "ts": 1500.0}])
        asyncio.run_coroutine_threadsafe(go(), hub.loop).result(30)

    cfg = dict(port=0, journal=str(tmp_path / "j.db"), max_devices=3, evict_after_s=60.0)
    hub = Hub(HubConfig(**cfg), auth=Auth())
    hub.start_in_thread()
    try:
        publish_all(hub)
        status, _, body = http_get(hub, "/metrics")
        live = {k: (r["seq"], r["ts"]) for k, r in hub.state.devices.items()}
    finally:
        hub.stop()
    text = body.decode()
    assert status == 200 and "wallboard_devices 3.0" in text and "wallboard_devices_cap 3.0" in text
    assert "wallboard_evicted_devices_total 3.0" in text and "wallboard_refused_devices_total 1.0" in text
    assert 'wallboard_rejects_total{reason="max_devices"} 1.0' in text
    assert sorted(live) == ["new0", "new1", "new2"]
    again = Hub(HubConfig(**cfg), auth=Auth())
    again.start_in_thread()
    try:
        assert {k: (r["seq"], r["ts"]) for k, r in again.state.devices.items()} == live
    finally:
        again.stop()


def test_entity_room_reserves_the_new_ids_of_queued_batches():
    from wallboard.hub.admission import EntityRoom
    from wallboard.state import LiveState, StateConfig

    state = LiveState(StateConfig(max_devices=2, max_stores=1, evict_after_s=60.0))
    room = EntityRoom(2, 1, 60.0)
    dev = lambda i, ts=1000.0: {"type": "device", "id": f"d{i}", "status": "ok", "ts": ts}  # noqa: E731
    refused, first = room.check(state, [dev(0), dev(1), dev(1)])
    assert refused is None and first is not None and room.pending["device"] == {"d0": 1, "d1": 1}
    refused, _ = room.check(state, [dev(0), dev(2)])  # d0 is queued already; d2 is one too many
    assert refused == ("device", 1, "device 'd2' (event 1) would be device 3 of at most 2 (--max-devices) and none "
                       "of the devices held has been silent long enough to make room (ttl_s + --evict-after 60 s "
                       "before this event's ts): batch not applied; resend it without new devices, delete unused "
                       "ones, or raise --max-devices")
    room.release(first)
    state.apply([dict(dev(0), seq=1), dict(dev(1), seq=2)], 1000.0)
    assert room.check(state, [dev(0, 1001.0)])[0] is None            # an update adds nothing
    assert room.check(state, [dev(5, 1000.0 + 300 + 61)])[0] is None  # d0 is long silent by then: evictable
    assert room.evictions["device"] == 1
    refused, store = room.check(state, [{"type": "store", "id": "s1", "ts": 0.0}])
    assert refused is None and store is not None
    room.release(store)
    state.apply([{"type": "store", "id": "s1", "ts": 0.0, "seq": 3}], 1000.0)
    refused, _ = room.check(state, [{"type": "store", "id": "s2", "ts": 30.0}])
    assert refused is not None and refused[:2] == ("store", 0) and refused[2].startswith(
        "store 's2' (event 0) would be store 2 of at most 1 (--max-stores) and none of the stores held has been "
        "silent long enough to make room (--evict-after 60 s before this event's ts)")


def test_a_batch_past_the_store_cap_is_507_over_http_and_nothing_is_applied():
    async def main() -> None:
        hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, max_stores=1), auth=Auth())
        await hub.astart()
        ingest = await start_http_ingest(hub, "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession(headers={"X-Wallboard-Client": "t"}) as s:
                async def post(events: list) -> tuple[int, dict]:
                    async with s.post(ingest.url + "/events", data=orjson.dumps(events),
                                      headers={"Content-Type": "application/json"}) as r:
                        return r.status, await r.json()
                assert (await post([{"type": "store", "id": "s1", "ts": 1000.0}]))[0] == 200
                seq = hub.seq
                status, body = await post([kpi(1), {"type": "store", "id": "s2", "ts": 1001.0}])
            assert status == 507 and body["error"] == "too_large" and body["index"] == 1 and body["field"] == "id"
            assert body["message"].startswith("store 's2' (event 1) would be store 2 of at most 1 (--max-stores)")
            assert hub.seq == seq and hub.stats()["rejects_max_stores"] == 1
        finally:
            await ingest.stop()
            await hub.astop()
    run(main())


def test_connections_past_the_per_address_cap_are_503_and_a_silent_one_is_cut():
    import socket
    import time

    from websockets.exceptions import InvalidStatus

    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, max_connections_per_address=2), auth=Auth())
    hub.start_in_thread()
    held = [socket.create_connection(("127.0.0.1", hub.port)) for _ in range(2)]  # handshakes never sent
    try:
        for _ in range(200):
            if hub.connections.open_now == 2:
                break
            time.sleep(0.01)

        async def refused() -> Any:
            with pytest.raises(InvalidStatus) as e:
                async with connect(hub.url):
                    pass
            return e.value.response
        resp = run(refused())
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
        assert resp.body.decode().strip() == ("too many connections: 2 open from this address (at most 2, "
                                              "--max-connections-per-address); close some or retry later")
        silent = socket.create_connection(("127.0.0.1", hub.port))   # refused, and says nothing: cut
        silent.settimeout(10)
        t0 = time.monotonic()
        assert silent.recv(100) == b"" and time.monotonic() - t0 < 9
        silent.close()
        stats = hub.stats()
        assert stats["rejects_connections"] == 1 and stats["connections_open"] == 2
        for s in held:
            s.close()
        for _ in range(200):
            if hub.connections.open_now == 0:
                break
            time.sleep(0.01)
        assert hub.connections.open_now == 0 and not hub.connections.by_address

        async def fine() -> None:
            async with connect(hub.publish_url) as ws:
                await ws.send(P.encode(P.Publish(events=[kpi(1)])))
                assert isinstance(await recv(ws), P.Ack)
        run(fine())
    finally:
        for s in held:
            s.close()
        hub.stop()


def test_the_http_port_counts_in_the_same_connection_caps():
    import socket

    async def main() -> None:
        hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, max_connections=2,
                            max_connections_per_address=2), auth=Auth())
        await hub.astart()
        ingest = await start_http_ingest(hub, "127.0.0.1", 0)
        held = socket.create_connection(("127.0.0.1", hub.port))   # one on the hub port
        try:
            async with aiohttp.ClientSession(headers={"X-Wallboard-Client": "t"}) as s:
                async with s.get(ingest.url + "/healthz") as r:       # the second (kept alive)
                    assert r.status == 200
                connector = aiohttp.TCPConnector(force_close=True)
                async with aiohttp.ClientSession(connector=connector) as s2:
                    async with s2.get(ingest.url + "/healthz") as r:
                        body = await r.json()
                        assert r.status == 503 and r.headers["Retry-After"] == "5"
                assert body == {"error": "unavailable", "message": "too many connections: 2 open to this hub (at "
                                "most 2, --max-connections); retry later"}
            assert hub.stats()["rejects_connections"] == 1 and "rejects_unavailable" not in hub.stats()
        finally:
            held.close()
            await ingest.stop()
            await hub.astop()
    run(main())


def test_connection_count_caps_the_total_and_each_address():
    from wallboard.hub.admission import ConnectionCount

    c = ConnectionCount(total=3, per_address=2)
    assert c.open("a") is None and c.open("a") is None and c.open("b") is None
    assert c.open("c") == "too many connections: 3 open to this hub (at most 3, --max-connections); retry later"
    c.close("b")
    assert c.open("a") == ("too many connections: 2 open from this address (at most 2, "
                           "--max-connections-per-address); close some or retry later")
    assert c.open("c") is None and c.open_now == 3 and c.peak == 3 and c.by_address == {"a": 2, "c": 1}
    with pytest.raises(ValueError, match="max_connections_per_address=5: expected 1..max_connections"):
        HubConfig(max_connections=4, max_connections_per_address=5).validate()


def test_the_logs_recent_rows_are_bounded_by_bytes_and_followers_still_get_everything():
    from wallboard.hub.log import EventLog

    async def main() -> None:
        log = EventLog(MemoryJournal(), recent_bytes=1 << 20)
        for b in range(10):  # 10 x 300 KB
            await log.append_group([Batch([kpi(b * 10 + i, pad=30_000) for i in range(10)])])
            assert log._recent_bytes <= 1 << 20 and log._recent_bytes == sum(len(r[1]) for r in log._recent)
        assert len(log._recent) < 40
        seqs: list[int] = []
        async for rows in log.follow(0):
            seqs.extend(r[0] for r in rows)
            if seqs[-1] == 100:
                break
        assert seqs == list(range(1, 101))
    run(main())


def test_entity_events_refused_by_the_caps_are_logged_once_per_interval(caplog):
    import logging

    async def main() -> None:
        hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, max_devices=2, max_stores=1), auth=Auth())
        await hub.astart()
        try:
            await hub.submit([{"type": "device", "id": f"d{i}", "status": "ok", "ts": 100.0} for i in range(4)]
                             + [{"type": "store", "id": f"s{i}", "ts": 100.0} for i in range(3)])
            with caplog.at_level(logging.WARNING, "wallboard.hub"):
                hub._warn_caps(1000.0)
                hub._warn_caps(1001.0)   # within refusal_log_s: not again
        finally:
            await hub.astop()
    run(main())
    lines = [r.getMessage() for r in caplog.records if "entity caps" in r.getMessage()]
    assert lines == ["entity caps reached: 2 device events (--max-devices 2, 2 held) and 2 store events "
                     "(--max-stores 1, 1 held) not applied since the last warning: none of the held ones was "
                     "silent long enough to be evicted (--evict-after 3600 s)"]


def test_group_commit_takes_turns_between_producers_past_its_cap():
    """A producer with many batches queued does not make another's batch wait for all of
    them: past ``group_events`` producers take turns, each in its own order."""
    from wallboard.hub.batches import Batch
    from wallboard.hub.server import take_group

    ev = {"type": "kpi"}
    flood = [(Batch([ev] * 500, "flood", i), f"f{i}") for i in range(10)]
    pending = flood[:6] + [(Batch([ev] * 10, "bystander", 1), "b1")] + flood[6:]
    group, rest = take_group(pending, 2000)
    assert [w for _, w in group] == ["f0", "f1", "f2", "b1"]          # the bystander in the first group
    assert [w for _, w in rest] == ["f3", "f4", "f5", "f6", "f7", "f8", "f9"]   # in their order
    assert take_group(pending[:3], 2000) == (pending[:3], [])         # under the cap: all at once
    big = [(Batch([ev] * 5000, "p", 1), "x")]
    assert take_group(big, 2000) == (big, [])                        # at least one batch


def test_group_commit_is_capped_by_bytes_too():
    from wallboard.hub.batches import Batch
    from wallboard.hub.server import take_group

    ev = {"type": "kpi"}
    pending = [(Batch([ev] * 10, "flood", i, size=1 << 20), f"f{i}") for i in range(6)]
    pending.insert(3, (Batch([ev], "bystander", 1, size=300), "b1"))
    group, rest = take_group(pending, 20_000, 2 << 20)
    assert [w for _, w in group] == ["b1"] and len(rest) == 6       # light first, in a group of its own
    group, rest = take_group(rest, 20_000, 2 << 20)
    assert [w for _, w in group] == ["f0", "f1"] and len(rest) == 4  # then the flood, capped by bytes


def test_group_commit_puts_light_lanes_first_and_heavy_lanes_take_turns():
    """Lanes are the senders' addresses: a light lane (at most LIGHT_BYTES queued) goes in
    a group of its own ahead of heavy ones, whatever their order; heavy lanes take turns."""
    from wallboard.hub.admission import LIGHT_BYTES, take_group
    from wallboard.hub.batches import Batch

    ev = {"type": "kpi"}
    a = [(Batch([ev], None, None, size=1 << 20, lane="10.0.0.1"), f"a{i}") for i in range(3)]
    b = [(Batch([ev], None, None, size=1 << 20, lane="10.0.0.2"), f"b{i}") for i in range(3)]
    light = [(Batch([ev], "p", i, size=LIGHT_BYTES // 4, lane="10.0.0.3"), f"l{i}") for i in range(2)]
    pending = a[:2] + b[:1] + light[:1] + a[2:] + b[1:] + light[1:]
    group, rest = take_group(pending, 20_000, 2 << 20)
    assert [w for _, w in group] == ["l0", "l1"]
    group, rest = take_group(rest, 20_000, 2 << 20)
    assert [w for _, w in group] == ["a0", "b0"]                      # one each, in arrival order
    group, rest = take_group(rest, 20_000, 2 << 20)
    assert [w for _, w in group] == ["a1", "b1"] and [w for _, w in rest] == ["a2", "b2"]
    mixed = a[:1] + light[:1]
    assert [w for _, w in take_group(mixed, 20_000, 2 << 20, light_first=False)[0]] == ["a0", "l0"]  # turns
    one = [(Batch([ev], None, None, size=1000, lane="10.0.0.1"), f"x{i}") for i in range(3)]
    assert take_group(one, 20_000, 2 << 20) == (one, [])              # one lane within the caps: all
