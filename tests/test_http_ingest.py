"""HTTP ingest on a real hub over loopback: each endpoint, each refusal, webhook round trips
onto a wall's LiveState fed through /feed, and /metrics parsed by prometheus_client."""
from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from wallboard import protocol as P
from wallboard.hub.alert_mapping import load_mapping
from wallboard.hub.auth import Auth, AuthConfigError
from wallboard.hub.http_ingest import parse_event_body, start_http_ingest
from wallboard.hub.server import Hub, HubConfig
from wallboard.state import LiveState

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PUB, SUB, CTL = "pub-token-0123456789", "sub-token-0123456789", "ctl-token-0123456789"


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


class Env:
    """A hub (memory journal) + HTTP ingest on 127.0.0.1 and an aiohttp session."""

    def __init__(self, *, auth: Auth | None = None, max_body: int = 1 << 20, rate_limit: float | None = None,
                 mapping: Any = None, ssl_context: Any = None, **cfg: Any) -> None:
        self.hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, **cfg), auth=auth or Auth())
        self.kw = dict(max_body=max_body, rate_limit=rate_limit, mapping=mapping, ssl_context=ssl_context)

    async def __aenter__(self) -> "Env":
        await self.hub.astart()
        self.ingest = await start_http_ingest(self.hub, "127.0.0.1", 0, **self.kw)
        self.url = self.ingest.url
        self.session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.session.close()
        await self.ingest.stop()
        await self.hub.astop()

    async def post(self, path: str, data: Any, token: str | None = None, **headers: str) -> tuple[int, Any]:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        headers.setdefault("Content-Type", "application/json")
        headers.setdefault("X-Wallboard-Client", "test")
        if not isinstance(data, (bytes, str)):
            data = orjson.dumps(data)
        async with self.session.post(self.url + path, data=data, headers=headers) as r:
            body = await r.read()
            return r.status, json.loads(body) if r.content_type == "application/json" else body.decode()

    async def get(self, path: str, token: str | None = None, *, hub_port: bool = False) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        base = f"http://127.0.0.1:{self.hub.port}" if hub_port else self.url
        async with self.session.get(base + path, headers=headers) as r:
            return r.status, await r.text()


JSON = {"Content-Type": "application/json", "X-Wallboard-Client": "test"}


def secured() -> Auth:
    return Auth({"publish": PUB, "subscribe": SUB, "control": CTL})


STORE = {"type": "store", "id": "s1", "name": "Store 1"}
DEVICE = {"type": "device", "id": "s1/pos-01", "store": "s1", "status": "ok"}


# ---------------------------------------------------------------------- POST /events


def test_events_json_array_and_jsonl_get_seq_ranges():
    async def main() -> None:
        async with Env() as env:
            assert await env.post("/events", [STORE, DEVICE]) == (
                200, {"first": 1, "last": 2, "count": 2, "duplicate": False})
            jsonl = b'\n{"type":"kpi","metric":"sales","scope":"global","value":5}\n\n' \
                    b'{"type":"voice","channel":"app","text":"slow"}\n'
            assert (await env.post("/events", jsonl))[1]["first"] == 3
            assert env.hub.seq == 4 and env.hub.state.devices["s1/pos-01"]["status"] == "ok"
            assert env.hub.state.latest_kpi("sales", "global")[1] == 5
    run(main())


def test_bad_event_in_array_names_index_and_field_and_applies_nothing():
    async def main() -> None:
        async with Env() as env:
            status, body = await env.post("/events", [STORE, {"type": "device", "id": "d", "stat": "ok"}])
            assert status == 400
            assert body["error"] == "unknown_field" and body["index"] == 1 and body["field"] == "stat"
            assert "did you mean 'status'?" in body["message"]
            assert env.hub.seq == 0 and not env.hub.state.stores
            assert env.hub.stats()["rejects_unknown_field"] == 1
    run(main())


def test_bad_jsonl_line_names_line_number():
    async def main() -> None:
        async with Env() as env:
            body = b'{"type":"store","id":"s1"}\n\n{"type":"device","id":"d","status":"sick"}\n'
            status, reply = await env.post("/events", body)
            assert status == 400 and reply["line"] == 3 and reply["index"] == 1 and reply["field"] == "status"
            assert reply["message"].startswith("line 3: bad_value")
            status, reply = await env.post("/events", b'{"type":"store","id":"s1"}\n{oops\n')
            assert status == 400 and reply["error"] == "not_json" and reply["line"] == 2
            assert reply["message"].startswith("line 2: not JSON")
            assert env.hub.seq == 0
    run(main())


@pytest.mark.parametrize("body, code, text", [
    (b"", "missing_field", "empty body: expected a JSON array of events or JSON Lines"),
    (b"[]", "missing_field", "no events in the body"),
    (b"[1,", "not_json", "not JSON"),
    (b'"store"', "bad_type", "line 1: bad_type: event is a string"),
])
def test_malformed_bodies(body, code, text):
    with pytest.raises(Exception) as ei:
        parse_event_body(body, 10)
    assert ei.value.code == code and text in str(ei.value)  # type: ignore[attr-defined]


def test_array_that_is_not_a_list_is_refused():
    async def main() -> None:
        async with Env() as env:
            status, reply = await env.post("/events", b"[1, 2")
            assert status == 400 and reply["error"] == "not_json" and "offset" in reply
    run(main())


def test_auth_401_403_and_roles():
    async def main() -> None:
        async with Env(auth=secured()) as env:
            status, reply = await env.post("/events", [STORE])
            assert status == 401 and "a publish or control token is required" in reply["message"]
            status, reply = await env.post("/events", [STORE], Authorization="Basic abc")
            assert status == 401 and "malformed Authorization header" in reply["message"]
            status, reply = await env.post("/events", [STORE], token="wrong")
            assert status == 403 and reply["message"] == "the token does not grant publish or control"
            status, reply = await env.post("/events", [STORE], token=SUB)
            assert status == 403
            assert (await env.post("/events", [STORE], token=PUB))[0] == 200
            banner = {"type": "control", "command": "banner", "text": "go"}
            status, reply = await env.post("/events", b'{"type":"store","id":"s2"}\n' + orjson.dumps(banner),
                                           token=PUB)
            assert status == 403 and reply["error"] == "forbidden" and reply["line"] == 2 and reply["index"] == 1
            assert "control events need the control role" in reply["message"]
            assert (await env.post("/events", [banner], token=CTL))[0] == 200  # control: control events ...
            status, reply = await env.post("/events", [STORE], token=CTL)  # ... but not other events
            assert status == 403 and reply["error"] == "forbidden" and reply["index"] == 0
            assert "event 0: store events need the publish role" in reply["message"]
            status, text = await env.get("/metrics")
            assert status == 404 and f":{env.hub.port}/metrics" in text  # the one /metrics is on the hub port
            assert (await env.get("/healthz"))[0] == 200  # health needs no token
            assert env.hub.stats()["rejects_auth"] == 4
            assert env.hub.seq == 2
    run(main())


def test_empty_bearer_is_no_token_open_hub_accepts_secured_hub_says_why():
    """``Authorization: Bearer `` (a script's unset token variable, as in the curl examples of
    docs/integrations.md) presents no token: accepted where publish is open, refused with a
    message naming the empty bearer where it is not."""
    async def main() -> None:
        async with Env() as env:
            for header in ("Bearer ", "Bearer", "bearer  "):
                status, reply = await env.post("/events", [STORE], Authorization=header)
                assert status == 200, (header, reply)
        async with Env(auth=secured()) as env:
            status, reply = await env.post("/events", [STORE], Authorization="Bearer ")
            assert status == 401 and reply["error"] == "auth"
            assert reply["message"] == ("'Authorization: Bearer' without a token (an unset token variable?): "
                                        "a publish or control token is required")
            assert "s1" not in env.hub.state.stores
    run(main())


def test_control_events_with_a_token_holding_both_roles():
    async def main() -> None:
        both = Auth({"publish": PUB, "subscribe": None, "control": PUB})
        async with Env(auth=both) as env:
            status, _ = await env.post("/events", [{"type": "control", "command": "banner", "text": "go"}], token=PUB)
            assert status == 200 and env.hub.seq == 1
    run(main())


def test_413_for_large_bodies_and_too_many_events():
    async def main() -> None:
        async with Env(max_body=4096, max_batch=3) as env:
            big = [dict(STORE, name="x" * 3000), dict(STORE, id="s2", name="y" * 3000)]
            status, reply = await env.post("/events", big)
            assert status == 413 and reply["error"] == "too_large" and "at most 4096 bytes" in reply["message"]

            async def chunks():  # no Content-Length: the limit applies while reading
                for _ in range(3):
                    yield b" " * 2000
            async with env.session.post(env.url + "/events", data=chunks(), headers=JSON) as r:
                assert r.status == 413 and "body over 4096 bytes" in (await r.json())["message"]
            status, reply = await env.post("/events", [dict(STORE, id=f"s{i}") for i in range(4)])
            assert status == 413 and "at most 3 events per request" in reply["message"]
            assert env.hub.seq == 0
    run(main())


def test_429_over_rate_limit():
    async def main() -> None:
        async with Env(rate_limit=2) as env:
            assert (await env.post("/events", [STORE, DEVICE]))[0] == 200
            status, reply = await env.post("/events", [STORE])
            assert status == 429 and reply["error"] == "rate_limited" and "nothing applied" in reply["message"]
    run(main())


def test_idempotent_resend_with_producer_and_batch_headers():
    async def main() -> None:
        async with Env() as env:
            h = {"X-Wallboard-Producer": "etl-1", "X-Wallboard-Batch": "7"}
            first = await env.post("/events", [STORE, DEVICE], **h)
            again = await env.post("/events", [STORE, DEVICE], **h)
            assert first == (200, {"first": 1, "last": 2, "count": 2, "duplicate": False})
            assert again == (200, {"first": 1, "last": 2, "count": 2, "duplicate": True})
            assert env.hub.seq == 2
            status, reply = await env.post("/events", [STORE], **{"X-Wallboard-Producer": "etl-1",
                                                                  "X-Wallboard-Batch": "x"})
            assert status == 400 and reply["field"] == "X-Wallboard-Batch" and "expected an integer >= 0" in reply["message"]
            status, reply = await env.post("/events", [STORE], **{"X-Wallboard-Producer": "etl-1"})
            assert status == 400 and "go together" in reply["message"]
            status, reply = await env.post("/events", [STORE], **{"X-Wallboard-Producer": "p" * 201,
                                                                  "X-Wallboard-Batch": "1"})
            assert status == 400 and "expected 1..200 characters" in reply["message"]
    run(main())


def test_unknown_path_and_method():
    async def main() -> None:
        async with Env() as env:
            status, text = await env.get("/nope")
            assert status == 404 and "unknown path '/nope'" in text
            status, text = await env.get("/events")
            assert status == 405 and "GET not allowed on /events" in text
    run(main())


def test_non_loopback_bind_with_open_roles_is_refused():
    async def main() -> None:
        hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None), auth=Auth())
        await hub.astart()
        try:
            with pytest.raises(AuthConfigError, match="refusing to bind 0.0.0.0"):
                await start_http_ingest(hub, "0.0.0.0", 0)  # checked before binding
        finally:
            await hub.astop()
    run(main())


# ---------------------------------------------------------------------- webhooks


async def wall_state_until(hub: Hub, seq: int) -> LiveState:
    """A wall's LiveState fed through the hub's /feed until it reaches ``seq``."""
    state = LiveState()
    parts: list[dict] = []
    async with connect(hub.url) as ws:
        await ws.send(P.encode(P.Hello(token=None, since=None, wall="test-wall")).decode())
        deadline = time.monotonic() + 10
        while state.seq < seq and time.monotonic() < deadline:
            msg = P.decode(await asyncio.wait_for(ws.recv(), 10))
            if isinstance(msg, P.Snapshot):
                parts.append(msg.data)
                if msg.part == msg.parts - 1:
                    state = LiveState.from_snapshot(P.merge_snapshot_parts(parts))
                    parts = []
            elif isinstance(msg, P.Events):
                state.apply(msg.events, time.time())
    return state


def test_alertmanager_firing_then_resolved_round_trip_to_wall_state():
    firing, resolved = (FIXTURES / "alertmanager-0.25-webhooks.jsonl").read_bytes().splitlines()

    async def main() -> None:
        async with Env(auth=Auth({"publish": PUB, "subscribe": None, "control": None})) as env:
            assert (await env.post("/alertmanager", firing))[0] == 401
            status, reply = await env.post("/alertmanager", firing, token=PUB)
            assert status == 200 and reply["incidents"] == ["d46443f82f72b7c9"]
            assert reply["devices"] == ["hz-001/pos-03"] and reply["count"] == 2
            wall = await wall_state_until(env.hub, reply["last"])
            inc = wall.incidents["d46443f82f72b7c9"]
            assert inc["status"] == "open" and inc["severity"] == "P1" and inc["stores"] == ["hz-001"]
            assert wall.devices["hz-001/pos-03"]["status"] == "down"
            assert [i["id"] for i in wall.open_incidents()] == ["d46443f82f72b7c9"]
            # Alertmanager repeats the notification: same incident, still one
            status, again = await env.post("/alertmanager", firing, token=PUB)
            assert status == 200 and again["incidents"] == reply["incidents"]
            status, reply = await env.post("/alertmanager", resolved, token=PUB)
            assert status == 200
            wall = await wall_state_until(env.hub, reply["last"])
            inc = wall.incidents["d46443f82f72b7c9"]
            assert inc["status"] == "resolved" and inc["resolved_at"] == P.parse_ts("2026-11-26T13:05:30Z")
            assert wall.devices["hz-001/pos-03"]["status"] == "ok"
            assert wall.open_incidents() == [] and len(wall.incidents) == 1
    run(main())


def test_grafana_documented_payload_round_trip(tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text('[labels]\nstore = ["zone"]\n')
    firing = json.loads((FIXTURES / "grafana-webhook-example.json").read_text())
    resolved = json.loads(json.dumps(firing))
    resolved["status"] = "resolved"
    for a in resolved["alerts"]:
        a.update(status="resolved", endsAt="2021-10-12T10:30:00+02:00")

    async def main() -> None:
        async with Env(mapping=load_mapping(mapping)) as env:
            status, reply = await env.post("/grafana", firing)
            assert status == 200 and reply["incidents"] == ["c6eadffa33fcdf37", "bc97ff14869b13e3"]
            wall = await wall_state_until(env.hub, reply["last"])
            assert {i["id"]: i["stores"] for i in wall.open_incidents()} == {
                "c6eadffa33fcdf37": ["us-1"], "bc97ff14869b13e3": ["eu-1"]}
            status, reply = await env.post("/grafana", resolved)
            wall = await wall_state_until(env.hub, reply["last"])
            assert wall.open_incidents() == []
            assert {i["status"] for i in wall.incidents.values()} == {"resolved"}
    run(main())


def test_grafana_test_notification_200_ignored_and_legacy_body_400_unsupported():
    test_body = (FIXTURES / "grafana-test-notification.json").read_bytes()
    legacy = (FIXTURES / "grafana-legacy-webhook.json").read_bytes()

    async def main() -> None:
        async with Env() as env:
            status, reply = await env.post("/grafana", test_body)
            assert status == 200 and reply["count"] == 0 and reply["incidents"] == []
            assert (reply["ignored"], reply["tests"]) == (1, 1)
            assert reply["message"] == ("Grafana test notification ignored (1 alert labelled alertname=TestAlert, "
                                        "instance=Grafana): nothing opened; [grafana] test_notifications = \"open\" "
                                        "in the --mapping file opens it as an incident")
            assert env.hub.seq == 0 and env.hub.state.incidents == {}
            status, reply = await env.post("/grafana", legacy)
            assert status == 400 and reply["error"] == "unsupported"
            assert reply["message"].startswith("grafana webhook: a legacy Grafana alerting body (ruleName, ruleId, "
                                               "evalMatches, ruleUrl; Grafana 8 and older without unified alerting) "
                                               "is not supported")
            status, text = await env.get("/metrics", hub_port=True)
            assert 'wallboard_webhook_alerts_ignored_total{reason="test",source="grafana"} 1.0' in text
            assert 'wallboard_rejects_total{reason="unsupported"} 1.0' in text
    run(main())


def test_webhook_refusals_name_the_field():
    async def main() -> None:
        async with Env() as env:
            status, reply = await env.post("/alertmanager", b"{not json")
            assert status == 400 and reply["error"] == "not_json"
            status, reply = await env.post("/alertmanager", {"alerts": [{"status": "firing"}]})
            assert status == 400 and reply["field"] == "alerts[0].labels"
            assert reply["message"].startswith("not a valid alertmanager webhook payload: alerts[0].labels")
            status, reply = await env.post("/grafana", {"status": "firing"})
            assert status == 400 and reply["field"] == "alerts"
            long_label = {"alerts": [{"status": "firing", "labels": {"alertname": "x", "owner": "o",
                                                                      "store": "s" * 300}}]}
            status, reply = await env.post("/alertmanager", long_label)
            assert status == 400 and "alert maps to a bad incident event" in reply["message"]
            status, reply = await env.post("/alertmanager", {"alerts": [
                {"status": "firing", "labels": {"alertname": "Watchdog"}}]})
            assert status == 200 and reply == {"first": None, "last": None, "count": 0, "incidents": [],
                                               "devices": [], "ignored": 1}
            assert env.hub.seq == 0
    run(main())


# ---------------------------------------------------------------------- metrics, health


def test_metrics_parse_with_prometheus_parser():
    async def main() -> None:
        async with Env() as env:
            await env.post("/events", [STORE, DEVICE])
            await env.post("/events", [{"type": "nope"}])
            await env.get("/nope")
            async with connect(env.hub.url) as ws:  # one wall, so per-wall gauges exist
                await ws.send(P.encode(P.Hello(token=None, since=None, wall='wall "A"')).decode())
                await asyncio.wait_for(ws.recv(), 10)  # welcome
                for _ in range(100):
                    if env.hub.walls:
                        break
                    await asyncio.sleep(0.02)
                status, text = await env.get("/metrics", hub_port=True)
            assert status == 200
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            value = {f.name: f.samples[0].value for f in fams.values() if len(f.samples) == 1 and not f.samples[0].labels}
            assert fams["wallboard_events_in"].type == "counter"
            assert fams["wallboard_events_in"].samples[0].value == 2
            assert value["wallboard_seq"] == 2 and value["wallboard_journal_events"] == 2
            assert value["wallboard_walls_connected"] == 1
            assert "wallboard_journal_pending_events" in value and "wallboard_resyncs" in fams
            reasons = {s.labels["reason"]: s.value for s in fams["wallboard_rejects"].samples}
            assert reasons["bad_value"] == 1 and reasons["not_found"] == 1
            [lag] = fams["wallboard_wall_lag_events"].samples
            assert lag.labels == {"wall": 'wall "A"'}
            codes = {(s.labels["path"], s.labels["code"]): s.value for s in fams["wallboard_http_requests"].samples}
            assert codes[("/events", "200")] == 1 and codes[("/events", "400")] == 1 and codes[("other", "404")] == 1
    run(main())


def test_healthz():
    async def main() -> None:
        async with Env() as env:
            status, text = await env.get("/healthz")
            body = json.loads(text)
            assert status == 200 and body["status"] == "ok" and body["seq"] == 0 and body["hub"] == env.hub.hub_id
    run(main())


# ---------------------------------------------------------------------- TLS


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a test cert")
def test_tls_with_the_hub_cert_options(tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True, timeout=60)
    from wallboard.hub.http_ingest import server_ssl_context

    async def main() -> None:
        async with Env(ssl_context=server_ssl_context(str(cert), str(key))) as env:
            assert env.url.startswith("https://127.0.0.1:")
            client = ssl.create_default_context(cafile=str(cert))
            client.check_hostname = False
            async with env.session.post(env.url + "/events", data=orjson.dumps([STORE]), ssl=client,
                                        headers=JSON) as r:
                assert r.status == 200 and (await r.json())["first"] == 1
    run(main())
