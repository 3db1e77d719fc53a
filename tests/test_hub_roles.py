"""Roles with three separate tokens on a real hub (loopback): a control token connects a
wall, sends control messages, and publishes control events over /publish and POST /events
(also through ``wallboard publish``); a subscribe wall's control is refused with a reason
the wall can show, logged once per address per interval; weak tokens stop the hub."""
from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from wallboard import protocol as P
from wallboard.feed import LIVE, FeedClient
from wallboard.hub.auth import Auth, AuthConfigError
from wallboard.hub.http_ingest import start_http_ingest
from wallboard.hub.server import Hub, HubConfig

from conftest import ROOT

PUB, SUB, CTL = "pub-token-0123456789", "sub-token-0123456789", "ctl-token-0123456789"
BANNER = {"type": "control", "command": "banner", "text": "store 12 closed"}


def three_tokens() -> Auth:
    return Auth({"publish": PUB, "subscribe": SUB, "control": CTL})


@pytest.fixture
def hub():
    h = Hub(HubConfig(host="127.0.0.1", port=0, journal=None), auth=three_tokens())
    h.start_in_thread()
    yield h
    h.stop()


async def recv(ws, timeout: float = 5.0) -> P.Message:
    return P.decode(await asyncio.wait_for(ws.recv(), timeout))


async def until(ws, kind, timeout: float = 5.0) -> P.Message:
    deadline = time.monotonic() + timeout
    while True:
        msg = await recv(ws, max(0.05, deadline - time.monotonic()))
        if isinstance(msg, kind):
            return msg


def test_a_wall_with_the_control_token_connects_and_controls(hub):
    async def go():
        async with connect(hub.url) as wall:
            await wall.send(P.encode(P.Hello(token=CTL, wall="ops")))
            w = await recv(wall)
            assert isinstance(w, P.Welcome) and set(w.roles) == {"control", "subscribe", "metrics"}
            await wall.send(P.encode(P.Control(command="banner", args={"text": "hi"})))
            ev = await until(wall, P.Events)
            assert ev.events[0]["type"] == "control" and ev.events[0]["text"] == "hi"
    asyncio.run(go())
    assert hub.counters["controls"] == 1


def test_the_wall_client_with_the_control_token_goes_live(hub):
    client = FeedClient(hub.url, token=CTL, wall="ops")
    try:
        client.start()
        deadline = time.monotonic() + 10
        while client.state.state != LIVE and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.state.state == LIVE
    finally:
        client.stop()


def test_a_subscribe_walls_control_is_refused_with_a_reason_and_logged_once(hub, caplog):
    caplog.set_level(logging.WARNING, logger="wallboard.hub")

    async def go():
        async with connect(hub.url) as wall:
            await wall.send(P.encode(P.Hello(token=SUB, wall="floor")))
            assert set((await recv(wall)).roles) == {"subscribe", "metrics"}
            for _ in range(5):
                await wall.send(P.encode(P.Control(command="ack_incident", args={"incident": "INC-1"})))
                e = await until(wall, P.Error)
                assert (e.code, e.field) == ("forbidden", "command")
                assert e.message == ("control 'ack_incident' refused: this wall's token does not grant the "
                                     "control role")
            await wall.send(P.encode(P.Hello(since=None)))  # still connected: refusals do not close it
    asyncio.run(go())
    assert hub.counters["rejects_forbidden"] == 5
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 1 and "wall 'floor': control 'ack_incident' refused" in lines[0]
    assert hub.gate.blocked("127.0.0.1:1") == 0  # a wall clicking ACK is never blocked


def test_control_events_on_publish_with_the_control_token(hub):
    async def go():
        async with connect(hub.publish_url, additional_headers={"Authorization": f"Bearer {CTL}"}) as prod:
            await prod.send(P.encode(P.Publish(events=[BANNER])))
            assert isinstance(await recv(prod), P.Ack)
            await prod.send(P.encode(P.Publish(events=[{"type": "store", "id": "s1"}])))
            e = await recv(prod)
            assert (e.code, e.index, e.field) == ("forbidden", 0, "type")
            assert e.message.startswith("store events need the publish role (this token grants control, metrics, "
                                        "subscribe)")
        async with connect(hub.publish_url) as prod:  # the token in the first frame works as well
            await prod.send(P.encode(P.Publish(events=[BANNER], token=CTL)))
            assert isinstance(await recv(prod), P.Ack)
    asyncio.run(go())
    assert hub.seq == 2


def test_a_subscribe_token_is_refused_on_publish_at_the_handshake(hub):
    from websockets.exceptions import InvalidStatus

    async def go():
        with pytest.raises(InvalidStatus) as info:
            await connect(hub.publish_url, additional_headers={"Authorization": f"Bearer {SUB}"})
        assert info.value.response.status_code == 401
        assert b"the token does not grant publish or control" in info.value.response.body
        async with connect(hub.publish_url) as prod:
            await prod.send(P.encode(P.Publish(events=[BANNER], token=SUB)))
            e = await recv(prod)
            assert e.code == "auth" and e.message == "the token grants neither publish nor control"
            with pytest.raises(ConnectionClosed) as closed:
                await recv(prod)
            assert closed.value.rcvd.code == 1008
    asyncio.run(go())


@pytest.mark.parametrize("transport", ["ws", "http"])
def test_wallboard_publish_sends_control_events_with_the_control_token(hub, tmp_path, transport, capsys):
    from test_publish_cli import parse

    token = tmp_path / "ctl.token"
    token.write_text(f"control = {CTL}\n", encoding="utf-8")
    events = tmp_path / "banner.jsonl"
    events.write_text('{"type":"control","command":"banner","text":"store 12 closed"}\n', encoding="utf-8")
    if transport == "http":
        ingest = asyncio.run_coroutine_threadsafe(start_http_ingest(hub, "127.0.0.1", 0), hub.loop).result(10)
        url = ingest.url
    else:
        url = f"ws://127.0.0.1:{hub.port}"
    args = parse(["publish", "--hub", url, "--token-file", str(token), str(events)])
    assert args.func(args) == 0, capsys.readouterr().err
    assert hub.seq == 1


@pytest.mark.parametrize("line,msg", [
    ("publish = \" \"", "tokens:1: blank token: use a random token of at least 16"),
    ("publish = short", "token of 5 characters is too short: at least 16"),
])
def test_weak_token_files_stop_the_hub_command(tmp_path, line, msg):
    f = tmp_path / "tokens"
    f.write_text(line + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "wallboard", "hub", "--port", "0", "--host", "0.0.0.0",
                          "--token-file", str(f)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and msg in out.stderr, out.stderr


def test_whitespace_token_from_the_environment_is_refused():
    with pytest.raises(AuthConfigError, match="WALLBOARD_PUBLISH_TOKEN: blank token"):
        Hub(HubConfig(host="0.0.0.0", port=0), auth=Auth.from_env({"WALLBOARD_PUBLISH_TOKEN": " "}))


def test_token_file_with_token_equals_roles(tmp_path):
    f = tmp_path / "tokens"
    f.write_text(f"{CTL} = subscribe,control\n{PUB} = publish\nmetrics = {'m' * 20}\n", encoding="utf-8")
    h = Hub(HubConfig(host="0.0.0.0", port=0, token_file=str(f)))  # every role has a token: any bind is fine
    assert h.auth.open_roles() == [] and h.auth.roles_for(CTL) == {"subscribe", "control", "metrics"}
    assert Path(f).read_text().count("=") == 3
