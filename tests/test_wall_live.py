"""The wall with the real hub (issue 4's flows end to end): the embedded demo reaches LIVE,
STALE when the hub goes away and LIVE again when it returns on the same port, and hub
``control`` messages switch layouts only with the control role.

Every hub here is a :class:`Hub` in a thread on 127.0.0.1 with a free port; every wait
is bounded (``wait_until``)."""
from __future__ import annotations

import asyncio
import time

import pytest
from websockets.asyncio.client import connect

from conftest import wait_until
from wallboard import layout as L
from wallboard import protocol as P
from wallboard.app.controller import WallController
from wallboard.feed import FeedClient
from wallboard.hub.auth import Auth
from wallboard.hub.server import Hub, HubConfig
from wallboard.state import LiveState

pytestmark = pytest.mark.timeout(60)


def make_wall(qtbot, url: str, layout: str = "overview", token: str | None = None):
    state = LiveState()
    client = FeedClient(url, token=token)
    lay = L.load_layout(L.find_layout(layout, [L.DEFAULT_LAYOUT_DIR]))
    ctl = WallController(state, client, lay, size=(1280, 720), muted=True)
    for w in ctl.windows:
        qtbot.addWidget(w)
    client.start()
    ctl.start()
    return ctl, client


def close_wall(ctl, client) -> None:
    ctl.shutdown()
    client.stop()


def header_feed(ctl) -> str:
    return ctl.windows[0].header.texts()[3]


def test_embedded_demo_reaches_live_and_renders(qtbot, qapp):
    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, demo="launch-928", speed=10.0), auth=Auth())
    hub.start_in_thread()
    ctl, client = make_wall(qtbot, hub.url, "launch-928")
    try:
        wait_until(qapp, lambda: client.state.state == "LIVE" and len(ctl.state.devices) > 0, 20, "LIVE with devices")
        wait_until(qapp, lambda: header_feed(ctl).startswith("LIVE"), 5, "header says LIVE")
        assert ctl.state.seq > 0 and len(ctl.state.stores) >= 10
        assert not ctl.stale and ctl.driver.stats.applied > 0
    finally:
        close_wall(ctl, client)
        hub.stop()


def test_stale_when_the_hub_stops_live_again_when_it_returns_on_the_same_port(qtbot, qapp, tmp_path):
    journal = str(tmp_path / "hub.db")
    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=journal, demo="launch-928", speed=10.0,
                        heartbeat_s=0.5), auth=Auth())
    _, port = hub.start_in_thread()
    ctl, client = make_wall(qtbot, hub.url)
    try:
        wait_until(qapp, lambda: client.state.state == "LIVE" and ctl.state.seq > 0, 20, "LIVE")
        hub.stop()
        wait_until(qapp, lambda: ctl.stale, 10, "STALE after the hub stopped")
        page = ctl.windows[0].current_page()
        assert all(p.dimmed for p in page.panels)  # the last known state, dimmed
        assert ctl.windows[0].stale_banner.text.startswith("STALE")
        assert "no data for" in ctl.windows[0].stale_banner.text
        seq_before = ctl.state.seq
        hub = Hub(HubConfig(host="127.0.0.1", port=port, journal=journal, demo="launch-928", speed=10.0,
                            heartbeat_s=0.5), auth=Auth())
        hub.start_in_thread()
        wait_until(qapp, lambda: not ctl.stale and client.state.state == "LIVE" and ctl.state.seq > seq_before,
                   15, "LIVE again after the hub returned")
        assert not any(p.dimmed for p in ctl.windows[0].current_page().panels)
        assert ctl.windows[0].stale_banner.text == ""
        assert ctl.driver.stats.resyncs == 0  # the journal kept every seq: replay, no gap
    finally:
        close_wall(ctl, client)
        hub.stop()


def test_control_switch_layout_needs_the_control_role(qtbot, qapp):
    # subscribe is open (loopback), publish and control need their tokens
    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None), auth=Auth({"publish": "pub-token-0123456789", "subscribe": None,
                                                                           "control": "ctl-token-0123456789"}))
    hub.start_in_thread()
    lead, lead_client = make_wall(qtbot, hub.url, "overview", token="ctl-token-0123456789")
    plain, plain_client = make_wall(qtbot, hub.url, "overview")
    try:
        wait_until(qapp, lambda: lead_client.state.state == "LIVE" and plain_client.state.state == "LIVE"
                   and "control" in lead.roles and plain.roles, 15, "both walls LIVE and welcomed")
        assert lead.roles == ["control", "metrics", "subscribe"] and plain.roles == ["metrics", "subscribe"]
        # without the control role: refused by the hub, counted on both sides, nothing switches
        plain_client.send_control("switch_layout", {"layout": "launch-928"})
        wait_until(qapp, lambda: plain_client.state.rejects.get("forbidden", 0) == 1, 10, "forbidden counted")
        assert "control role" in plain_client.state.last_reject
        assert hub.counters.get("rejects_forbidden") == 1
        assert lead.layout.name == plain.layout.name == "overview"
        # with the control role: journaled, every wall switches
        lead_client.send_control("switch_layout", {"layout": "launch-928"})
        wait_until(qapp, lambda: lead.layout.name == plain.layout.name == "launch-928", 10, "both walls switched")
        assert lead.controls_applied == plain.controls_applied == 1

        async def publish(header: str, msg_token: str | None) -> P.Message:
            async with connect(hub.publish_url, additional_headers={"Authorization": f"Bearer {header}"}) as ws:
                await ws.send(P.encode(P.Publish(events=[{"type": "control", "command": "switch_layout",
                                                          "layout": "double-11"}], token=msg_token)))
                return P.decode(await asyncio.wait_for(ws.recv(), 5))

        refused = asyncio.run(publish("pub-token-0123456789", None))  # a producer without the control role
        assert isinstance(refused, P.Error) and (refused.code, refused.index, refused.field) == ("forbidden", 0, "type")
        acked = asyncio.run(publish("pub-token-0123456789", "ctl-token-0123456789"))   # the same batch carrying the control token
        assert isinstance(acked, P.Ack)
        wait_until(qapp, lambda: lead.layout.name == plain.layout.name == "double-11", 10, "switched by publish")
    finally:
        close_wall(lead, lead_client)
        close_wall(plain, plain_client)
        hub.stop()
