"""A workstation acknowledges an incident: the control message goes through the hub and
every wall (this one and a second plain feed) sees the acknowledgement; without the control
role the hub refuses it."""
from __future__ import annotations

import asyncio
import time

import pytest

from wallboard import layout as L
from wallboard import protocol as P
from wallboard.app.controller import WallController
from wallboard.feed import FeedClient
from wallboard.hub.server import Hub, HubConfig
from wallboard.state import LiveState


def publish(hub: Hub, events: list[dict]) -> None:
    async def go():
        return await hub.submit([P.validate_event(dict(e), require_seq=False) for e in events])

    asyncio.run_coroutine_threadsafe(go(), hub.loop).result(10)


def pump(qtbot, ctl, until, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ctl.frame()
        if until():
            return True
        qtbot.wait(20)
    return False


@pytest.fixture
def hub():
    h = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, heartbeat_s=0.5))
    h.start_in_thread()
    yield h
    h.stop()


def test_ack_from_the_board_reaches_every_wall(qtbot, hub):
    now = time.time()
    publish(hub, [{"type": "store", "id": "s1", "ts": now, "name": "一号店", "city": {"id": "shanghai"},
                   "lat": 31.2, "lon": 121.4, "status": "open"},
                  {"type": "incident", "id": "inc-9", "ts": now, "title": "POS down", "severity": "P2",
                   "status": "open", "stores": ["s1"], "opened_at": now}])
    client = FeedClient(hub.url)
    other = FeedClient(hub.url)
    ctl = WallController(LiveState(), client, L.load_layout(L.find_layout("overview")), size=(1280, 720))
    for w in ctl.windows:
        qtbot.addWidget(w)
    client.start()
    other.start()
    try:
        ctl.start()
        assert pump(qtbot, ctl, lambda: "inc-9" in ctl.state.incidents)
        board = next(f.widget for w in ctl.windows for p in w.pages for f in p.panels if f.kind == "incident_board")
        assert board.ctx.send_control is not None
        board.ctx.send_control("ack_incident", {"incident": "inc-9"})
        assert pump(qtbot, ctl, lambda: ctl.state.incidents["inc-9"].get("status") == "acknowledged")
        assert ctl.state.incidents["inc-9"].get("acknowledged_at")
        # the second wall (a plain feed) sees it too
        st2 = LiveState()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and st2.incidents.get("inc-9", {}).get("status") != "acknowledged":
            for kind, payload in other.drain(100):
                if kind == "events":
                    st2.apply(payload, time.time())
                elif kind == "snapshot":
                    st2 = LiveState.from_snapshot(payload)
            time.sleep(0.02)
        assert st2.incidents["inc-9"]["status"] == "acknowledged"
    finally:
        ctl.shutdown()
        client.stop()
        other.stop()


def test_ack_without_the_control_role_is_refused(qtbot, monkeypatch):
    monkeypatch.setenv("WALLBOARD_CONTROL_TOKEN", "sekrit-token-0123456789")
    h = Hub(HubConfig(host="127.0.0.1", port=0, journal=None))
    h.start_in_thread()
    client = FeedClient(h.url)
    try:
        now = time.time()
        publish(h, [{"type": "incident", "id": "inc-1", "ts": now, "title": "x", "severity": "P3",
                     "status": "open", "opened_at": now}])
        client.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and client.state.state != "LIVE":
            time.sleep(0.02)
        client.send_control("ack_incident", {"incident": "inc-1"})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not client.state.rejects and h.counters.get("rejects_forbidden", 0) == 0 \
                and h.counters.get("rejects_auth", 0) == 0:
            time.sleep(0.02)
        assert h.state.incidents["inc-1"]["status"] == "open"
        refused = {k: v for k, v in h.counters.items() if k.startswith("rejects_")}
        assert refused, h.counters
    finally:
        client.stop()
        h.stop()


def test_the_board_shows_a_refused_ack_and_the_reason_is_on_the_status_line(qtbot, monkeypatch):
    """A wall whose token lacks the control role: its ACK turns 'ACK refused' (not a
    button stuck at 'ACK sent'), the hub's reason is in the header's rejects, and the
    button can be pressed again."""
    monkeypatch.setenv("WALLBOARD_CONTROL_TOKEN", "sekrit-token-0123456789")
    h = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, heartbeat_s=0.5))
    h.start_in_thread()
    client = FeedClient(h.url)
    ctl = WallController(LiveState(), client, L.load_layout(L.find_layout("overview")), size=(1280, 720))
    for w in ctl.windows:
        qtbot.addWidget(w)
    try:
        now = time.time()
        publish(h, [{"type": "incident", "id": "inc-1", "ts": now, "title": "x", "severity": "P3",
                     "status": "open", "opened_at": now}])
        client.start()
        ctl.start()
        assert pump(qtbot, ctl, lambda: "inc-1" in ctl.state.incidents)
        board = next(f.widget for w in ctl.windows for p in w.pages for f in p.panels if f.kind == "incident_board")
        assert board.ack_label("inc-1") == ("ACK", None)
        assert board.acknowledge("inc-1")
        assert board.ack_label("inc-1")[0] == "ACK sent"
        assert board.ack_refusal("inc-1") is None  # not answered yet
        assert pump(qtbot, ctl, lambda: board.ack_label("inc-1")[0] == "ACK refused")
        assert ctl.controls.refusals == 1
        # the row itself says why (under its title), not only the header
        assert board.ack_refusal("inc-1") == "this wall's token does not grant the control role"
        board.grab()  # paints the row with its refusal line
        assert "control role" in (client.state.last_reject or ctl.driver.stats.last_reject)
        assert h.state.incidents["inc-1"]["status"] == "open"
    finally:
        ctl.shutdown()
        client.stop()
        h.stop()
