"""No work before authentication, refusals capped per address, browser origins, and the
one /metrics behind its role -- on a real hub over loopback."""
from __future__ import annotations

import asyncio
import logging
import socket

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wallboard import protocol as P
from wallboard.hub.auth import Auth
from wallboard.hub.server import Hub, HubConfig

PUB, SUB, CTL, MET = ("pub-token-0123456789", "sub-token-0123456789", "ctl-token-0123456789",
                      "met-token-0123456789")


def start(**cfg) -> Hub:
    h = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, **cfg),
            auth=Auth({"publish": PUB, "subscribe": SUB, "control": CTL, "metrics": MET}))
    h.start_in_thread()
    return h


@pytest.fixture
def hub():
    h = start(max_refusals=3, refusal_block=30)
    yield h
    h.stop()


def bad_batch(n: int = 2000) -> bytes:
    """A big batch of invalid events (unknown field in every one)."""
    return orjson.dumps({"op": "publish", "events": [{"type": "device", "id": f"d{i}", "stat": "x" * 100}
                                                     for i in range(n)]})


def http_get(hub: Hub, path: str, token: str | None = None, origin: str | None = None) -> tuple[int, dict, bytes]:
    head = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if origin:
        head += f"Origin: {origin}\r\n"
    with socket.create_connection((hub.host, hub.port), timeout=5) as s:
        s.sendall((head + "\r\n").encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    lines = top.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_an_unauthenticated_batch_is_refused_before_validation_and_the_address_blocked(hub):
    async def go():
        for k in range(3):
            async with connect(hub.publish_url, max_size=None) as prod:
                await prod.send(bad_batch())
                e = P.decode(await asyncio.wait_for(prod.recv(), 5))
                assert e.code == "auth" and "first frame" in e.message
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(prod.recv(), 5)
                assert closed.value.rcvd.code == 1008 and closed.value.rcvd.reason.startswith("auth:")
        # the third refusal blocked the address: refused at the handshake, nothing read
        with pytest.raises(InvalidStatus) as info:
            await connect(hub.publish_url)
        assert info.value.response.status_code == 429
        assert int(info.value.response.headers["Retry-After"]) in range(28, 31)
        assert b"blocked: too many refused attempts from this address" in info.value.response.body
        with pytest.raises(InvalidStatus):  # with a good token too, and on /feed
            await connect(hub.url, additional_headers={"Authorization": f"Bearer {SUB}"})
    asyncio.run(go())
    c = hub.counters
    assert c["rejects_auth"] == 3 and c["rejects_blocked"] == 2 and c["peers_blocked"] == 1
    assert "rejects_unknown_field" not in c and "rejects_bad_event" not in c and "violations" not in c
    assert "auth_frames_parsed" not in c  # no "token" in those frames: not even parsed
    assert http_get(hub, "/metrics", MET)[0] == 429


def test_a_frame_with_a_wrong_token_is_parsed_once_to_read_it(hub):
    async def go():
        async with connect(hub.publish_url, max_size=None) as prod:
            await prod.send(orjson.dumps({"op": "publish", "token": "x" * 20, "events": [{"type": "nope"}] * 50}))
            e = P.decode(await asyncio.wait_for(prod.recv(), 5))
            assert e.code == "auth" and e.message == "the token grants neither publish nor control"
    asyncio.run(go())
    assert hub.counters["auth_frames_parsed"] == 1 and "rejects_unknown_value" not in hub.counters


def test_an_authenticated_bad_batch_is_still_validated_and_the_connection_kept(hub):
    async def go():
        async with connect(hub.publish_url, max_size=None,
                           additional_headers={"Authorization": f"Bearer {PUB}"}) as prod:
            for _ in range(4):
                await prod.send(bad_batch(10))
                e = P.decode(await asyncio.wait_for(prod.recv(), 5))
                assert e.code == "bad_event" and e.index == 0
    asyncio.run(go())
    assert hub.gate.blocked("127.0.0.1:1") == 0


def test_a_wrong_header_token_is_refused_at_the_handshake_and_counted(hub, caplog):
    caplog.set_level(logging.WARNING, logger="wallboard.hub")

    async def go():
        for _ in range(2):
            with pytest.raises(InvalidStatus) as info:
                await connect(hub.url, additional_headers={"Authorization": "Bearer not-a-real-token-at-all"})
            assert info.value.response.status_code == 401
            assert info.value.response.headers["WWW-Authenticate"] == 'Bearer realm="wallboard"'
    asyncio.run(go())
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert len(refused) == 1 and "the token does not grant subscribe (/feed)" in refused[0]


def test_browser_origins_are_refused_unless_allowed(hub):
    async def go():
        with pytest.raises(InvalidStatus) as info:
            await connect(hub.url, origin="https://evil.example")
        assert info.value.response.status_code == 403
        assert b"origin 'https://evil.example' is not allowed" in info.value.response.body
        async with connect(hub.url) as wall:  # no Origin header: not a browser, fine
            await wall.send(P.encode(P.Hello(token=SUB)))
            assert isinstance(P.decode(await asyncio.wait_for(wall.recv(), 5)), P.Welcome)
    asyncio.run(go())
    assert hub.counters["rejects_origin"] == 1


def test_an_allowed_origin_connects():
    h = start(origins=["https://wall.example"])
    try:
        async def go():
            async with connect(h.url, origin="https://wall.example") as wall:
                await wall.send(P.encode(P.Hello(token=SUB)))
                assert isinstance(P.decode(await asyncio.wait_for(wall.recv(), 5)), P.Welcome)
        asyncio.run(go())
    finally:
        h.stop()


def test_metrics_need_the_metrics_role_and_parse(hub, caplog):
    status, headers, body = http_get(hub, "/metrics")
    assert status == 401 and b"a metrics, subscribe or control token is required" in body
    assert http_get(hub, "/metrics", PUB)[0] == 401  # publish does not imply metrics
    caplog.set_level(logging.DEBUG, logger="wallboard.hub.metrics")
    for token in (MET, SUB, CTL):
        status, headers, body = http_get(hub, "/metrics", token)
        assert status == 200 and headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert int(headers["content-length"]) == len(body)
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for name in ("process_resident_memory_bytes", "process_cpu_seconds", "wallboard_ack_seconds",
                 "wallboard_fanout_seconds", "wallboard_events_in", "wallboard_rejects", "wallboard_hub_info"):
        assert name in fams, name
    assert fams["wallboard_ack_seconds"].type == "histogram"
    reasons = {s.labels["reason"]: s.value for s in fams["wallboard_rejects"].samples}
    assert reasons["auth"] == 2
    scrapes = [r for r in caplog.records if r.name == "wallboard.hub.metrics"]
    assert len(scrapes) == 3 and all(r.levelno == logging.DEBUG for r in scrapes)


def test_a_scrape_writes_no_info_line(hub, caplog):
    caplog.set_level(logging.INFO)
    for _ in range(3):
        assert http_get(hub, "/metrics", MET)[0] == 200
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []


def test_ack_and_fanout_latency_are_observed(hub):
    async def go():
        async with connect(hub.url) as wall, connect(
                hub.publish_url, additional_headers={"Authorization": f"Bearer {PUB}"}) as prod:
            await wall.send(P.encode(P.Hello(token=SUB)))
            await wall.recv()
            await asyncio.wait_for(wall.recv(), 5)  # the empty snapshot
            for b in range(3):
                await prod.send(P.encode(P.Publish(events=[{"type": "store", "id": f"s{b}"}], producer="p", batch=b)))
                assert isinstance(P.decode(await asyncio.wait_for(prod.recv(), 5)), P.Ack)
            got = 0
            while got < 3:
                m = P.decode(await asyncio.wait_for(wall.recv(), 5))
                if isinstance(m, P.Events):
                    got += len(m.events)
    asyncio.run(go())
    body = hub.metrics.render().decode()
    fams = {f.name: f for f in text_string_to_metric_families(body)}
    count = {f: next(s.value for s in fams[f].samples if s.name.endswith("_count"))
             for f in ("wallboard_ack_seconds", "wallboard_fanout_seconds")}
    assert count["wallboard_ack_seconds"] == 3 and 1 <= count["wallboard_fanout_seconds"] <= 3


def test_unknown_path_names_the_ones_there_are(hub):
    status, _, body = http_get(hub, "/admin\x1b")
    assert status in (400, 404)
    status, _, body = http_get(hub, "/admin")
    assert status == 404 and b"use /feed, /publish or /metrics" in body


def test_a_malformed_authorization_header_and_a_token_without_metrics(hub):
    async def go():
        with pytest.raises(InvalidStatus) as info:
            await connect(hub.publish_url, additional_headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert info.value.response.status_code == 401
        assert info.value.response.body == b"auth: malformed Authorization header\n"
    asyncio.run(go())
    status, _, body = http_get(hub, "/metrics", "wrong-token-0123456789")
    assert status == 401 and body == b"auth: the token does not grant metrics\n"


def test_the_block_is_logged_once(caplog):
    caplog.set_level(logging.WARNING, logger="wallboard.hub")
    h = start(max_refusals=2, refusal_block=5)
    try:
        for _ in range(2):
            assert http_get(h, "/metrics", "wrong-token-0123456789")[0] == 401
        assert http_get(h, "/metrics", MET)[0] == 429
    finally:
        h.stop()
    blocks = [r.getMessage() for r in caplog.records if r.getMessage().startswith("address ")]
    assert blocks == ["address 127.0.0.1 refused 2 times within 60 s: refused at the handshake for 5 s"]
