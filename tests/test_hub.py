"""Hub integration on real loopback sockets: publish/ack, idempotency, bad input, auth,
heartbeat/stats, control, slow-wall resync, compaction, record/replay."""
from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wallboard import protocol as P
from wallboard.hub.auth import Auth, AuthConfigError
from wallboard.hub.server import Hub, HubConfig

pytestmark = pytest.mark.timeout(60)


def kpi(i: int) -> dict:
    return {"type": "kpi", "metric": "orders", "scope": "global", "value": float(i), "ts": 1000.0 + i}


def store(i: int) -> dict:
    return {"type": "store", "id": f"s{i}", "name": f"店{i}", "status": "open", "ts": 1000.0 + i}


PUB, SUB, CTL = "pub-token-0123456789", "sub-token-0123456789", "ctl-token-0123456789"


@contextlib.contextmanager
def running(auth: Auth | None = None, **kw):
    kw.setdefault("port", 0)
    hub = Hub(HubConfig(**kw), auth=auth or Auth())
    hub.start_in_thread()
    try:
        yield hub
    finally:
        hub.stop()


async def recv(ws, timeout=5.0):
    return P.decode(await asyncio.wait_for(ws.recv(), timeout), max_size=1 << 30)


async def until(ws, kind, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = await recv(ws, end - time.monotonic())
        if isinstance(m, kind):
            return m
    raise AssertionError(f"no {kind.__name__} within {timeout}s")


def publish_msg(events, producer=None, batch=None, token=None) -> bytes:
    return P.encode(P.Publish(events=events, producer=producer, batch=batch, token=token))


def test_publish_ack_fanout_and_idempotent_resend():
    with running() as hub:
        async def go():
            async with connect(hub.url) as wall, connect(hub.publish_url) as prod:
                await wall.send(P.encode(P.Hello(since=None)))
                w = await recv(wall)
                assert isinstance(w, P.Welcome) and w.seq == 0 and set(w.roles) == {"publish", "subscribe", "control", "metrics"}
                snap = await recv(wall)
                assert isinstance(snap, P.Snapshot) and snap.seq == 0
                await prod.send(publish_msg([store(1), kpi(2)], "p1", 1))
                ack = await recv(prod)
                assert (ack.first, ack.last, ack.batch, ack.duplicate) == (1, 2, 1, False)
                await prod.send(publish_msg([store(1), kpi(2)], "p1", 1))  # resent after a lost ack
                dup = await recv(prod)
                assert (dup.first, dup.last, dup.duplicate) == (1, 2, True)
                await prod.send(publish_msg([kpi(3)], "p1", 2))
                assert (await recv(prod)).first == 3
                got = []
                while len(got) < 3:
                    got.extend((await until(wall, P.Events)).events)
                assert [e["seq"] for e in got] == [1, 2, 3]
                assert got[0]["id"] == "s1" and got[2]["value"] == 3.0
        asyncio.run(go())
        assert hub.seq == 3 and hub.counters["duplicates"] == 1


def test_bad_event_rejects_the_whole_batch_and_the_connection_stays_open():
    with running() as hub:
        async def go():
            async with connect(hub.publish_url) as prod:
                bad = [kpi(1), {"type": "device", "id": "d1", "status": "purple"}]
                await prod.send(publish_msg(bad, "p", 1))
                err = await recv(prod)
                assert isinstance(err, P.Error)
                assert (err.code, err.index, err.field) == ("bad_event", 1, "status")
                assert "expected one of ok, warn" in err.message or "one of" in err.message
                await prod.send(publish_msg([{"type": "kpi", "metric": "m", "scope": "global", "value": 1,
                                              "colour": 1}], "p", 2))
                err = await recv(prod)
                assert (err.code, err.index, err.field) == ("bad_event", 0, "colour")
                await prod.send(publish_msg([kpi(5)], "p", 3))
                ack = await recv(prod)
                assert isinstance(ack, P.Ack) and (ack.first, ack.last) == (1, 1)  # nothing of the bad batch
        asyncio.run(go())
        assert hub.counters["rejects_bad_value"] == 1 and hub.counters["rejects_unknown_field"] == 1


def test_malformed_and_oversized_frames():
    with running(max_frame=4096, max_violations=3) as hub:
        async def go():
            async with connect(hub.publish_url, max_size=None) as prod:
                await prod.send("{not json")
                e = await recv(prod)
                assert e.code == "not_json" and e.offset == 1
                await prod.send(b"x" * 5000)
                e = await recv(prod)
                assert e.code == "too_large" and "at most 4096 bytes" in e.message
                await prod.send(orjson.dumps({"op": "hello"}))  # wrong op for /publish
                e = await recv(prod)
                assert e.code == "unknown_op"
                with pytest.raises(ConnectionClosed) as info:
                    await recv(prod)
                assert info.value.rcvd.code == 1008 and "protocol: 3 violations" in info.value.rcvd.reason
            async with connect(hub.url) as wall:  # the first message on /feed must be hello
                await wall.send("[1, 2]")
                e = await recv(wall)
                assert e.code == "not_object"
                with pytest.raises(ConnectionClosed) as info:
                    await recv(wall)
                assert info.value.rcvd.code == 1008 and "first message must be hello" in info.value.rcvd.reason
        asyncio.run(go())
        assert hub.counters["violations"] == 4


def test_every_auth_refusal():
    auth = Auth({"publish": PUB, "subscribe": SUB, "control": CTL})
    with running(auth, origins=["https://wall.example"]) as hub:
        async def go():
            # wrong token in the Authorization header: HTTP 401 on the handshake
            with pytest.raises(InvalidStatus) as info:
                await connect(hub.url, additional_headers={"Authorization": "Bearer wrong"})
            assert info.value.response.status_code == 401
            # no token at all: closed with policy violation and a reason
            async with connect(hub.url) as wall:
                await wall.send(P.encode(P.Hello(since=None)))
                e = await recv(wall)
                assert e.code == "auth"
                with pytest.raises(ConnectionClosed) as info:
                    await recv(wall)
                assert info.value.rcvd.code == 1008 and info.value.rcvd.reason.startswith("auth:")
            # a publish token does not grant subscribe
            async with connect(hub.url) as wall:
                await wall.send(P.encode(P.Hello(token=PUB)))
                assert (await recv(wall)).code == "auth"
            # publish with a wrong token in the message
            async with connect(hub.publish_url) as prod:
                await prod.send(publish_msg([kpi(1)], token=SUB))
                assert (await recv(prod)).code == "auth"
                with pytest.raises(ConnectionClosed) as info:
                    await recv(prod)
                assert info.value.rcvd.code == 1008
            # control needs the control role: refused, connection stays up
            async with connect(hub.url, additional_headers={"Authorization": f"Bearer {SUB}"}) as wall:
                await wall.send(P.encode(P.Hello()))
                assert set((await recv(wall)).roles) == {"subscribe", "metrics"}
                await wall.send(P.encode(P.Control(command="banner", args={"text": "hi"})))
                e = await until(wall, P.Error)
                assert e.code == "forbidden" and "control role" in e.message
                await wall.send(P.encode(P.Control(command="banner", args={"text": "hi"}, token=CTL)))
                ev = await until(wall, P.Events)
                assert ev.events[0]["type"] == "control" and ev.events[0]["text"] == "hi"
            # control events through /publish need the control role too
            async with connect(hub.publish_url, additional_headers={"Authorization": f"Bearer {PUB}"}) as prod:
                await prod.send(publish_msg([{"type": "control", "command": "banner", "text": "x"}]))
                e = await recv(prod)
                assert (e.code, e.index, e.field) == ("forbidden", 0, "type")
            # origin allow-list
            with pytest.raises(InvalidStatus) as info:
                await connect(hub.url, origin="https://evil.example")
            assert info.value.response.status_code == 403
            with pytest.raises(InvalidStatus) as info:
                await connect(hub.url.replace("/feed", "/admin"))
            assert info.value.response.status_code == 404
        asyncio.run(go())
        assert hub.counters["rejects_auth"] == 4 and hub.counters["rejects_forbidden"] == 2
        assert hub.counters["rejects_origin"] == 1


def test_an_empty_bearer_header_on_the_websocket_is_no_token():
    """``Authorization: Bearer `` (websocat with an unset token variable, docs/integrations.md)
    is the same as no header: the first frame's token decides, and without one the
    producer is closed with the usual auth reason, not a "malformed header" 401."""
    auth = Auth({"publish": PUB, "subscribe": SUB, "control": CTL})
    with running(auth) as hub:
        async def go():
            empty = {"Authorization": "Bearer "}
            async with connect(hub.publish_url, additional_headers=empty) as prod:
                await prod.send(publish_msg([kpi(1)], producer="p", batch=1, token=PUB))
                assert isinstance(await recv(prod), P.Ack)
            async with connect(hub.publish_url, additional_headers=empty) as prod:
                await prod.send(publish_msg([kpi(2)], producer="p", batch=2))
                e = await recv(prod)
                assert e.code == "auth" and e.message == ("a publish or control token is required (first frame "
                                                          "or Authorization header)")
        asyncio.run(go())
        assert hub.seq == 1
    with running() as hub:  # an open hub: published
        async def go_open():
            async with connect(hub.publish_url, additional_headers={"Authorization": "Bearer "}) as prod:
                await prod.send(publish_msg([kpi(1)], producer="p", batch=1))
                assert isinstance(await recv(prod), P.Ack)
        asyncio.run(go_open())


def test_open_roles_refuse_a_non_loopback_bind():
    with pytest.raises(AuthConfigError, match="refusing to bind 0.0.0.0"):
        Hub(HubConfig(host="0.0.0.0", port=0), auth=Auth())


def test_bad_config_is_named():
    with pytest.raises(ValueError, match=r"hub option heartbeat_s=0: expected > 0"):
        HubConfig(heartbeat_s=0).validate()


def test_heartbeat_stats_metrics_and_ack_incident():
    with running(heartbeat_s=0.1, stats_s=0.2) as hub:
        async def go():
            async with connect(hub.url) as wall, connect(hub.publish_url) as prod:
                await wall.send(P.encode(P.Hello()))
                await prod.send(publish_msg([{"type": "incident", "id": "INC-1", "title": "x", "severity": "P2",
                                              "status": "open", "ts": 1000.0}], "p", 1))
                await recv(prod)
                hb = await until(wall, P.Heartbeat)
                assert hb.seq == 1
                st = await until(wall, P.Stats)
                for k in ("events_in", "walls", "seq", "journal_pending", "journal_commit_ms"):
                    assert k in st.counters
                await wall.send(P.encode(P.Control(command="ack_incident", args={"incident": "INC-1",
                                                                                  "owner": "Li Na"})))
                ev = None
                while ev is None or ev.events[-1]["seq"] < 2:
                    ev = await until(wall, P.Events)
                up = ev.events[-1]
                assert up["type"] == "incident" and up["status"] == "acknowledged" and up["owner"] == "Li Na"
                await wall.send(P.encode(P.Control(command="ack_incident", args={"incident": "INC-404"})))
                e = await until(wall, P.Error)
                assert e.code == "bad_value" and e.field == "args.incident" and "INC-404" in e.message
        asyncio.run(go())
        assert hub.state.incidents["INC-1"]["status"] == "acknowledged"
        with socket.create_connection((hub.host, hub.port), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            data = s.recv(65536).decode()
        assert "200 OK" in data and "wallboard_events_in_total 2.0" in data
        assert "wallboard_conflated_events_total 0.0" in data    # a wall that kept up: nothing conflated


def test_slow_wall_is_resynced_while_a_fast_wall_keeps_up():
    with running(max_lag=500, tail_events=2000, batch_events=200) as hub:
        async def go():
            slow_sock = socket.socket()
            slow_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow_sock.connect((hub.host, hub.port))
            async with connect(hub.url, sock=slow_sock, max_queue=1, max_size=None) as slow, \
                    connect(hub.url, max_size=None) as fast, connect(hub.publish_url) as prod:
                for ws in (slow, fast):
                    await ws.send(P.encode(P.Hello(since=None, wall="w")))
                    await until(ws, P.Snapshot)
                fast_seq = 0
                pad = "x" * 400
                for b in range(60):  # 30,000 events, ~15 MB: far more than the socket buffers
                    await prod.send(publish_msg([{**kpi(i), "x_pad": pad} for i in range(500)], "p", b + 1))
                    await until(prod, P.Ack)
                    while fast_seq < hub.seq:
                        m = await recv(fast)
                        if isinstance(m, P.Events):
                            assert m.events[0]["seq"] == fast_seq + 1  # contiguous, no resync
                            fast_seq = m.events[-1]["seq"]
                assert fast_seq == 30_000
                assert hub.counters.get("resyncs", 0) >= 1
                # the slow wall, once it reads again, gets a snapshot that jumps over its backlog
                snap = await until(slow, P.Snapshot, timeout=20)
                assert snap.seq > 1000
        asyncio.run(go())


def test_replay_from_journal_or_snapshot_after_compaction(tmp_path):
    cfg = dict(journal=str(tmp_path / "j.db"), compact_every=1000, keep_events=300, keep_s=0)  # count only
    with running(**cfg) as hub:
        async def go():
            async with connect(hub.publish_url) as prod:
                for b in range(10):
                    await prod.send(publish_msg([store(b * 500 + i) for i in range(500)], "p", b + 1))
                    await until(prod, P.Ack)
            # compaction runs in the background: wait (bounded) until it has caught up
            for _ in range(250):
                if hub._compaction is None and hub.seq - hub._compacted_at < hub.config.compact_every:
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError(f"compaction did not catch up: seq {hub.seq}, compacted at {hub._compacted_at}")
            async with connect(hub.url, max_size=None) as wall:  # recent since: a replay
                await wall.send(P.encode(P.Hello(since=4900)))
                await recv(wall)
                m = await recv(wall)
                assert isinstance(m, P.Events) and m.events[0]["seq"] == 4901
            async with connect(hub.url, max_size=None) as wall:  # compacted since: a snapshot
                await wall.send(P.encode(P.Hello(since=10)))
                await recv(wall)
                m = await recv(wall)
                assert isinstance(m, P.Snapshot) and m.seq == 5000
        asyncio.run(go())
        stats = hub.journal.stats()
        assert stats["journal_events"] <= 300 + 1000 + 500  # bounded by keep + compaction interval
        # 5,000 events at compact_every 1,000: 2 to 5 compactions, depending on how long each
        # one overlaps the next commits (one at a time; a due one starts when it ends) --
        # a count of timing, not of correctness; the bound above and the catch-up wait are
        assert hub.counters["compactions"] >= 2
        before = {k: dict(v) for k, v in hub.state.stores.items()}
    with running(**cfg) as hub2:  # rebuilt from snapshot + kept events
        assert hub2.seq == 5000 and {k: dict(v) for k, v in hub2.state.stores.items()} == before


def test_record_and_replay_round_trip(tmp_path):
    from wallboard.hub.record import Publisher, read_tape, record, replay

    out = tmp_path / "tape.jsonl"
    with running() as a, running() as b:
        async def go():
            async with Publisher(a.publish_url, producer="t") as pub:
                await pub.publish([store(i) for i in range(5)])
                await pub.flush()
            rec = asyncio.ensure_future(record(a.url, out, max_events=5, duration=10))
            await asyncio.sleep(0.3)
            async with Publisher(a.publish_url, producer="t2") as pub:
                await pub.publish([kpi(i) for i in range(5)])
                await pub.flush()
            assert await rec == 5
            n = await replay(out, b.publish_url, speed=1000.0)
            assert n == 10  # 5 stores from the snapshot line + 5 recorded events
        asyncio.run(go())
        assert set(b.state.stores) == set(a.state.stores)
        assert b.state.latest_kpi("orders", "global")[1] == 4.0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "kpi"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: missing_field"):
        read_tape(bad)
    bad.write_text("\n[1]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: expected a JSON object"):
        read_tape(bad)
