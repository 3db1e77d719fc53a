"""The wall never lies (issue 12): until its first snapshot every panel says NO DATA and
why (never connected, token refused, certificate not trusted); every "live" word follows
the feed state; the refused wall's header reads as text.

Real hubs here run in a thread on 127.0.0.1 with a free port; every wait is bounded."""
from __future__ import annotations

import logging
import shutil
import time

import pytest

from conftest import free_port, wait_until
from wallboard import layout as L
from wallboard.app.controller import WallController
from wallboard.feed import FeedClient, _body_text, _host_port
from wallboard.hub.auth import Auth
from wallboard.hub.server import Hub, HubConfig
from wallboard.state import LiveState

pytestmark = pytest.mark.timeout(60)


def make_wall(qtbot, url: str, token: str | None = None, lang: str = "en"):
    client = FeedClient(url, token=token, auth_retry_s=None)
    lay = L.load_layout(L.find_layout("overview", [L.DEFAULT_LAYOUT_DIR]))
    ctl = WallController(LiveState(), client, lay, size=(1280, 720), muted=True, lang=lang)
    for w in ctl.windows:
        qtbot.addWidget(w)
    client.start()
    ctl.start()
    return ctl, client


def panels(ctl):
    return ctl.windows[0].current_page().panels


def assert_no_data_everywhere(ctl, starts: str) -> str:
    reason = ctl.no_data_reason()
    assert reason.startswith(starts), reason
    for frame in panels(ctl):
        assert frame.no_data == reason, frame.kind
        assert frame._veil.isVisible(), frame.kind
        assert frame._veil.geometry().height() > 10
    return reason


def timeline_header(ctl) -> str:
    for frame in panels(ctl):
        if frame.kind == "change_timeline":
            return frame.widget.header.text()
    raise AssertionError("no change timeline on the overview")


def test_never_connected_wall_says_no_data_not_connected_to_host_port(qtbot, qapp):
    port = free_port()  # nothing listens there
    ctl, client = make_wall(qtbot, f"ws://127.0.0.1:{port}/feed")
    try:
        wait_until(qapp, lambda: client.state.error_kind == "unreachable", 10, "a failed connect")
        wait_until(qapp, lambda: "connection refused" in ctl.no_data_reason(), 5, "reason on the wall")
        ctl.frame()
        reason = assert_no_data_everywhere(ctl, f"not connected to 127.0.0.1:{port}")
        assert "(connection refused)" in reason
        head = timeline_header(ctl)
        assert "LIVE" not in head and ("RECONNECTING" in head or "CONNECTING" in head), head
        assert ctl.windows[0].header.texts()[3] in ("RECONNECTING", "CONNECTING")
        img = ctl.windows[0].grab()  # paints (the veil's paintEvent runs) without error
        assert img.width() > 100
    finally:
        ctl.shutdown()
        client.stop()


def test_never_connected_wall_in_chinese(qtbot, qapp):
    port = free_port()
    ctl, client = make_wall(qtbot, f"ws://127.0.0.1:{port}/feed", lang="zh")
    try:
        wait_until(qapp, lambda: client.state.error_kind == "unreachable", 10, "a failed connect")
        wait_until(qapp, lambda: "连接被拒绝" in ctl.no_data_reason(), 5, "translated reason")
        ctl.frame()
        assert_no_data_everywhere(ctl, f"未连接到 127.0.0.1:{port}")
    finally:
        ctl.shutdown()
        client.stop()


@pytest.mark.parametrize("token, why", [(None, "a subscribe token is required"),
                                        ("wrong", "the token does not grant subscribe")])
def test_refused_wall_says_refused_with_the_hubs_reason_as_text(qtbot, qapp, token, why):
    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, demo="launch-928", speed=10.0),
              auth=Auth({"publish": "pub-token-0123456789", "subscribe": "sub-token-0123456789",
                        "control": "ctl-token-0123456789"}))
    hub.start_in_thread()
    ctl, client = make_wall(qtbot, hub.url, token=token)
    try:
        wait_until(qapp, lambda: client.state.state == "AUTH_FAILED", 10, "AUTH_FAILED")
        ctl.frame()
        ctl._second(ctl.clock())
        assert_no_data_everywhere(ctl, f"refused: auth: {why}")
        header = " ".join(ctl.windows[0].header.texts())
        assert "bytearray" not in header and "b'" not in header, header
        assert why in header
        assert "rejected 1:" in header  # one refusal counted once (not by the feed and the frame driver)
        assert "AUTH_FAILED" in timeline_header(ctl) and "LIVE" not in timeline_header(ctl)
        assert ctl.state.seq == 0 and not ctl.state.stores  # the demo's data never arrived
    finally:
        ctl.shutdown()
        client.stop()
        hub.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a test cert")
def test_untrusted_certificate_is_shown_and_logged(qtbot, qapp, tmp_path, monkeypatch, caplog):
    from test_hub_tls import make_cert

    cert, key = make_cert(tmp_path)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, tls_cert=str(cert), tls_key=str(key)))
    hub.start_in_thread()
    caplog.set_level(logging.WARNING, logger="wallboard.feed")
    ctl, client = make_wall(qtbot, hub.url)
    try:
        wait_until(qapp, lambda: client.state.error_kind == "tls", 10, "a TLS verification failure")
        ctl.frame()
        reason = assert_no_data_everywhere(ctl, "certificate not trusted: ")
        assert "self-signed" in reason or "verify" in reason, reason
        warnings = [r for r in caplog.records if "certificate not trusted" in r.getMessage()]
        assert len(warnings) == 1  # once per distinct reason, not once per retry
    finally:
        ctl.shutdown()
        client.stop()
        hub.stop()


def test_no_data_clears_with_the_first_snapshot_and_stays_clear_when_stale(qtbot, qapp):
    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, heartbeat_s=0.5), auth=Auth())
    hub.start_in_thread()  # an empty hub: its first snapshot is at seq 0, still data
    ctl, client = make_wall(qtbot, hub.url)
    try:
        wait_until(qapp, lambda: (ctl.frame() or True) and ctl.has_data(), 15, "the first snapshot")
        ctl.frame()
        assert ctl.no_data_reason() == ""
        assert all(not f.no_data and not f._veil.isVisible() for f in panels(ctl))
        wait_until(qapp, lambda: client.state.state == "LIVE", 5, "LIVE")
        ctl._second(ctl.clock())
        assert "LIVE" in timeline_header(ctl)
        hub.stop()
        wait_until(qapp, lambda: (ctl.frame() or True) and ctl.stale, 10, "STALE")
        ctl._second(ctl.clock())
        assert ctl.no_data_reason() == ""  # the last known state, dimmed: not NO DATA
        assert all(f.dimmed and not f.no_data for f in panels(ctl))
        head = timeline_header(ctl)
        assert "LIVE" not in head and ("STALE" in head or "RECONNECTING" in head), head
    finally:
        ctl.shutdown()
        client.stop()
        hub.stop()


def test_feed_helpers_name_the_address_and_decode_the_refusal():
    assert _host_port("ws://127.0.0.1:9/feed") == "127.0.0.1:9"
    assert _host_port("wss://hub.example/feed") == "hub.example:443"
    assert _host_port("ws://[::1]:8765/feed") == "[::1]:8765"
    assert _body_text(bytearray(b"auth: the token does not grant subscribe\n")) == \
        "auth: the token does not grant subscribe"
    assert _body_text(b"") == ""
