"""The webhook adapter registry (wallboard.hub.adapters) and the Zabbix adapter: its
recorded fixture opens then resolves an incident on a real hub's HTTP ingest, the media
type's script runs in Duktape (the engine Zabbix embeds), bad bodies get precise 400s."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from test_http_ingest import FIXTURES, Env, run, wall_state_until
from wallboard.hub.adapters import ADAPTERS, MODULES
from wallboard.hub.adapters.zabbix import map_zabbix, to_alert
from wallboard.hub.alert_mapping import MappingRules, PayloadError

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "contrib" / "zabbix" / "wallboard-webhook.js"
PROBLEM = json.loads((FIXTURES / "zabbix-webhook-problem.json").read_text())
RESOLVED = json.loads((FIXTURES / "zabbix-webhook-resolved.json").read_text())


def test_registry_lists_one_module_per_source_each_with_its_fixtures():
    assert list(ADAPTERS) == list(MODULES) == ["alertmanager", "grafana", "zabbix"]
    for a in ADAPTERS.values():
        assert a.fixtures and all((FIXTURES / f).is_file() for f in a.fixtures), a.name


def test_every_recorded_fixture_is_taken_by_its_route():
    async def main() -> None:
        async with Env() as env:
            for a in ADAPTERS.values():
                for f in a.fixtures:
                    for body in (FIXTURES / f).read_bytes().splitlines() if f.endswith(".jsonl") else \
                            [(FIXTURES / f).read_bytes()]:
                        status, reply = await env.post(f"/{a.name}", body)
                        assert status == 200, (a.name, f, reply)
            status, reply = await env.post("/nagios", b"{}")
            assert status == 404 and "/zabbix" in reply["message"]
    run(main())


def test_zabbix_fixture_opens_then_resolves_an_incident_and_its_device():
    async def main() -> None:
        async with Env() as env:
            status, reply = await env.post("/zabbix", PROBLEM)
            assert status == 200, reply
            assert reply["incidents"] == ["zabbix-4711"] and reply["devices"] == ["hz-001/gw-1"]
            wall = await wall_state_until(env.hub, reply["last"])
            inc = wall.incidents["zabbix-4711"]
            assert inc["status"] == "open" and inc["severity"] == "P2" and inc["stores"] == ["hz-001"]
            assert inc["title"] == "Gateway hz-001-gw: packet loss over 20% for 5m"
            assert inc["opened_at"] == 1764658800 and inc["owner"] == "network"
            assert inc["x_url"].startswith("https://zabbix.example/")
            dev = wall.devices["hz-001/gw-1"]
            assert dev["status"] == "crit" and dev["kind"] == "router"
            status, again = await env.post("/zabbix", PROBLEM)  # Zabbix repeats (escalation step)
            assert status == 200 and again["incidents"] == ["zabbix-4711"]
            status, reply = await env.post("/zabbix", RESOLVED)
            assert status == 200, reply
            wall = await wall_state_until(env.hub, reply["last"])
            inc = wall.incidents["zabbix-4711"]
            assert inc["status"] == "resolved" and inc["resolved_at"] == 1764659700
            assert wall.devices["hz-001/gw-1"]["status"] == "ok" and wall.open_incidents() == []
            assert env.hub.stats()["webhooks_zabbix"] == 3
    run(main())


def test_zabbix_acknowledge_update():
    ack = dict(PROBLEM, event_update_status="1", event_update_action="acknowledged, commented",
               event_update_timestamp="1764659000")
    mapped = map_zabbix(ack, MappingRules(), {"zabbix-4711": {"status": "open"}})
    inc = next(e for e in mapped.events if e["type"] == "incident")
    assert inc["status"] == "acknowledged" and inc["acknowledged_at"] == 1764659000
    unack = dict(ack, event_update_action="unacknowledged")
    inc = next(e for e in map_zabbix(unack, MappingRules(), {"zabbix-4711": {"status": "open"}}).events
               if e["type"] == "incident")
    assert "acknowledged_at" not in inc and inc.get("status") is None


@pytest.mark.parametrize("body, path, message", [
    ({"event_value": "1", "event_name": "x"}, "event_id", "missing: expected the value of {EVENT.ID}"),
    (dict(PROBLEM, event_id="{EVENT.ID}"), "event_id", "unexpanded macro '{EVENT.ID}'"),
    (dict(PROBLEM, event_value="2"), "event_value", 'expected "1" (problem) or "0" (resolved)'),
    (dict(PROBLEM, event_nseverity="9"), "event_nseverity", "expected 0..5"),
    (dict(PROBLEM, event_tags="[{"), "event_tags", "expected the JSON of {EVENT.TAGSJSON}"),
    (dict(PROBLEM, event_tags='[{"tag": 1}]'), "event_tags[0]", 'expected {"tag": string'),
    (dict(PROBLEM, event_timestamp="yesterday"), "event_timestamp", "expected UNIX seconds"),
    (dict(PROBLEM, event_name=[5]), "event_name", "expected a string, got list"),
    ({"alerts": []}, "alerts", "post it to /alertmanager or /grafana"),
    ([1], "", "expected a JSON object"),
])
def test_zabbix_bad_bodies_name_the_parameter(body, path, message):
    with pytest.raises(PayloadError) as e:
        to_alert(body)
    assert e.value.path == path and message in str(e.value)


def test_zabbix_bad_body_is_a_400_naming_the_parameter():
    async def main() -> None:
        async with Env() as env:
            status, reply = await env.post("/zabbix", dict(PROBLEM, event_value="problem"))
            assert status == 400 and reply["field"] == "event_value"
            assert reply["message"].startswith("not a valid zabbix webhook payload: event_value:")
            assert env.hub.stats()["rejects_bad_value"] == 1
    run(main())


def test_zabbix_severity_names_and_no_device_tag():
    body = dict(PROBLEM, event_nseverity="{EVENT.NSEVERITY}", event_severity="Disaster", event_tags="[]")
    alert, _ = to_alert(body)
    assert alert["labels"]["severity"] == "disaster" and alert["labels"]["device"] == "hz-001-gw"
    mapped = map_zabbix(body, MappingRules(), {})
    inc = next(e for e in mapped.events if e["type"] == "incident")
    assert inc["severity"] == "P1" and "stores" not in inc and mapped.devices == ["hz-001-gw"]


@pytest.mark.skipif(shutil.which("duk") is None, reason="duk (Debian's duktape, the engine Zabbix embeds) not "
                    "installed: apt-get install duktape")
def test_media_type_script_runs_in_duktape_and_posts_the_fixture(tmp_path):
    """The script in contrib/ (and docs/integrations.md) under Duktape with Zabbix's
    HttpRequest stubbed: it posts the parameters minus URL and Token, with the token as
    a bearer header, and fails loudly on a non-200 answer."""
    params = dict(PROBLEM, URL="http://127.0.0.1:8766/zabbix", Token="tok-0123456789abcdef")
    script = SCRIPT.read_text()

    def duk(status: int) -> subprocess.CompletedProcess[str]:
        js = ("var HttpRequest = function () { this.headers = []; };\n"
              "HttpRequest.prototype.addHeader = function (h) { this.headers.push(h); };\n"
              "HttpRequest.prototype.post = function (url, body) { print(JSON.stringify({url: url, headers: "
              "this.headers, body: JSON.parse(body)})); return '{\"error\": \"x\"}'; };\n"
              f"HttpRequest.prototype.getStatus = function () {{ return {status}; }};\n"
              "var Zabbix = {log: function (level, msg) { print('log ' + level + ' ' + msg); }};\n"
              f"var value = {json.dumps(json.dumps(params))};\n"
              f"try {{ print((function (value) {{\n{script}\n}})(value)); }} catch (e) {{ print('thrown ' + e); }}\n")
        f = tmp_path / "run.js"
        f.write_text(js)
        return subprocess.run(["duk", str(f)], capture_output=True, text=True, timeout=30)

    out = duk(200).stdout.splitlines()
    req = json.loads(out[0])
    assert out[1] == "OK" and req["url"] == "http://127.0.0.1:8766/zabbix"
    assert req["body"] == PROBLEM
    assert "Authorization: Bearer tok-0123456789abcdef" in req["headers"]
    out = duk(401).stdout.splitlines()
    assert out[-1].startswith("thrown wallboard answered HTTP 401") and out[1].startswith("log 3 ")
    assert (ROOT / "docs" / "integrations.md").read_text().count(script.strip()) == 1, \
        "docs/integrations.md must carry contrib/zabbix/wallboard-webhook.js verbatim"
