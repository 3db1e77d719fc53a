"""wss:// on the hub (``--tls-cert/--tls-key``): a wall that trusts the certificate gets its
welcome and events; one that does not is refused at the TLS handshake."""
from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time

import orjson
import pytest
import websockets

from wallboard import protocol as P
from wallboard.hub.server import Hub, HubConfig

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a test cert")


def make_cert(tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_wss_feed_with_a_trusted_certificate(tmp_path):
    cert, key = make_cert(tmp_path)
    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, tls_cert=str(cert), tls_key=str(key)))
    hub.start_in_thread()
    try:
        assert hub.url.startswith("wss://127.0.0.1:")
        now = time.time()

        async def go():
            trusted = ssl.create_default_context(cafile=str(cert))
            async with websockets.connect(hub.publish_url, ssl=trusted, open_timeout=10) as pub:
                await pub.send(orjson.dumps({"op": "publish", "events": [
                    {"type": "kpi", "metric": "gmv_per_min", "scope": "global", "value": 1.0, "ts": now}]}))
                ack = P.decode(await asyncio.wait_for(pub.recv(), 10))
                assert isinstance(ack, P.Ack) and ack.first == 1
            async with websockets.connect(hub.url, ssl=trusted, open_timeout=10) as ws:
                await ws.send(P.encode(P.Hello(since=None)))
                seen = set()
                for _ in range(20):
                    msg = P.decode(await asyncio.wait_for(ws.recv(), 10))
                    seen.add(msg.op)
                    if {"welcome", "snapshot"} <= seen:
                        break
                assert {"welcome", "snapshot"} <= seen
            untrusted = ssl.create_default_context()  # system CAs: our self-signed cert is unknown
            with pytest.raises(ssl.SSLCertVerificationError):
                async with websockets.connect(hub.url, ssl=untrusted, open_timeout=10):
                    pass

        asyncio.run(go())
    finally:
        hub.stop()


def test_feed_client_over_wss_trusting_the_hub_ca_via_ssl_cert_file(tmp_path, monkeypatch):
    """A wall trusts a private hub CA the standard OpenSSL way: SSL_CERT_FILE (README)."""
    from wallboard.feed import FeedClient

    cert, key = make_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, tls_cert=str(cert), tls_key=str(key)))
    hub.start_in_thread()
    client = FeedClient(hub.url)
    try:
        client.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and client.state.state != "LIVE":
            time.sleep(0.02)
        assert client.state.state == "LIVE"
    finally:
        client.stop()
        hub.stop()
