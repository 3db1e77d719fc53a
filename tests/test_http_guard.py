"""The HTTP port against browsers and broken clients (real hub, loopback): content type,
client header, Origin, blocked addresses, read timeouts for partial requests, malformed
requests logged without tracebacks, SIGTERM with a partial body open."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import orjson
import pytest

from wallboard.hub.auth import Auth
from wallboard.hub.http_ingest import start_http_ingest
from wallboard.hub.server import Hub, HubConfig

from conftest import ROOT, free_port

PUB = "pub-token-0123456789"
BANNER = orjson.dumps([{"type": "control", "command": "banner", "text": "pwned"}])


class Ingest:
    """A hub in a thread with an HTTP listener; ``request()`` speaks raw HTTP/1.1."""

    def __init__(self, auth: Auth | None = None, read_timeout: float = 10.0, **cfg) -> None:
        self.hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, **cfg), auth=auth or Auth())
        self.hub.start_in_thread()
        self.ingest = asyncio.run_coroutine_threadsafe(
            start_http_ingest(self.hub, "127.0.0.1", 0, read_timeout=read_timeout), self.hub.loop).result(10)

    def request(self, raw: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
        with socket.create_connection(("127.0.0.1", self.ingest.port), timeout=timeout) as s:
            s.sendall(raw)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body

    def post(self, body: bytes, **headers: str) -> tuple[int, dict]:
        lines = [f"POST /events HTTP/1.1", "Host: hub", "Connection: close", f"Content-Length: {len(body)}"]
        lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
        status, data = self.request(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return status, orjson.loads(data)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.ingest.stop(), self.hub.loop).result(10)
        self.hub.stop()


@pytest.fixture
def open_hub():
    h = Ingest(origins=["https://wall.example"])
    yield h
    h.close()


def test_a_cross_origin_simple_post_is_refused(open_hub):
    # what a page on another origin can send without a preflight: text/plain, no custom header
    status, reply = open_hub.post(BANNER, Content_Type="text/plain", Origin="https://evil.example")
    assert status == 403 and reply["error"] == "origin"
    assert reply["message"] == "origin 'https://evil.example' is not allowed: start the hub with --origin for it"
    status, reply = open_hub.post(BANNER, Content_Type="text/plain")
    assert status == 415 and reply["error"] == "content_type"
    assert reply["message"] == "Content-Type 'text/plain': expected application/json or application/x-ndjson"
    status, reply = open_hub.post(BANNER)
    assert status == 415 and "Content-Type 'missing'" in reply["message"]
    status, reply = open_hub.post(BANNER, Content_Type="application/json")
    assert status == 401 and reply["error"] == "no_client_header"
    assert "send any 'Authorization: Bearer <token>' or an 'X-Wallboard-Client: <name>' header" in reply["message"]
    assert open_hub.hub.seq == 0
    # a script that can set headers gets through; so does an allowed browser origin
    assert open_hub.post(BANNER, Content_Type="application/json; charset=utf-8", X_Wallboard_Client="etl")[0] == 200
    assert open_hub.post(BANNER, Content_Type="application/x-ndjson", X_Wallboard_Client="etl",
                         Origin="https://wall.example")[0] == 200
    c = open_hub.hub.counters
    assert (c["rejects_origin"], c["rejects_content_type"], c["rejects_no_client_header"]) == (1, 2, 1)


def test_an_origin_is_refused_by_default_on_every_path():
    h = Ingest()
    try:
        status, body = h.request(b"GET /healthz HTTP/1.1\r\nHost: x\r\nOrigin: http://store-pc\r\n"
                                 b"Connection: close\r\n\r\n")
        assert status == 403 and b"origin 'http://store-pc' is not allowed" in body
        status, _ = h.request(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status == 200
    finally:
        h.close()


def test_a_blocked_address_gets_429_before_anything():
    h = Ingest(auth=Auth({"publish": PUB, "subscribe": "s" * 16, "control": "c" * 16}), max_refusals=2,
               refusal_block=20)
    try:
        for _ in range(2):
            status, reply = h.post(b"[]", Content_Type="application/json", Authorization="Bearer nope-nope-nope-nope")
            assert status == 403 and reply["error"] == "auth"
        status, reply = h.post(b"[]", Content_Type="application/json", Authorization=f"Bearer {PUB}")
        assert status == 429 and reply["error"] == "blocked"
        assert reply["message"].startswith("too many refused attempts from this address; retry in")
        assert h.hub.counters["peers_blocked"] == 1
    finally:
        h.close()


def test_a_partial_body_gets_408_and_the_connection_closed():
    h = Ingest(read_timeout=0.5)
    try:
        raw = (b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Wallboard-Client: t\r\n"
               b"Content-Length: 1000\r\n\r\n[{\"type\":")
        status, body = h.request(raw)
        reply = orjson.loads(body)
        assert status == 408 and reply["error"] == "timeout"
        assert reply["message"] == "request body not received within 0.5 s (9 bytes arrived)"
    finally:
        h.close()


def test_partial_headers_are_dropped_after_the_read_timeout():
    h = Ingest(read_timeout=0.5)
    try:
        socks = [socket.create_connection(("127.0.0.1", h.ingest.port), timeout=10) for _ in range(20)]
        for s in socks:
            s.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\n")  # never finished
        t0 = time.monotonic()
        for s in socks:
            assert s.recv(100) == b""  # closed by the hub (bounded by the socket timeout)
            s.close()
        assert time.monotonic() - t0 < 10
    finally:
        h.close()


def test_malformed_requests_are_counted_and_logged_without_tracebacks(caplog):
    caplog.set_level(logging.DEBUG)
    h = Ingest()
    try:
        for i in range(30):
            junk = [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
                    b"POST /events HTTP/1.1\r\nContent-Length: -5\r\n\r\n"][i % 3]
            with socket.create_connection(("127.0.0.1", h.ingest.port), timeout=10) as s:
                s.sendall(junk)
                while s.recv(65536):
                    pass
        assert h.hub.counters["rejects_bad_http"] >= 20  # the first garbage line of a connection is aiohttp's debug
    finally:
        h.close()
    assert not [r for r in caplog.records if r.exc_info or r.exc_text], "a traceback was logged"
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and warned[0].startswith("refused 127.0.0.1:") and "malformed HTTP request" in warned[0]


def test_sigterm_with_a_partial_body_open_exits_promptly():
    port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLBOARD_")}
    proc = subprocess.Popen([sys.executable, "-m", "wallboard", "hub", "--port", str(port), "--http-port",
                             str(http_port), "--log-level", "WARNING"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", http_port), timeout=10)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "hub did not start"
                time.sleep(0.1)
        s.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"X-Wallboard-Client: t\r\nContent-Length: 100000\r\n\r\n[")
        time.sleep(0.3)  # the handler is now reading the body
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        took = time.monotonic() - t0
        s.close()
        assert proc.returncode == 0, proc.stderr.read().decode()
        assert took < 15, f"SIGTERM took {took:.1f} s"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
