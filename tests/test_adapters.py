"""The webhook adapter registry (wallboard.hub.adapters) and the Zabbix adapter: the
bodies recorded from Zabbix 6.0 open, acknowledge and resolve an incident on a real hub's
HTTP ingest; the media type's script runs in Duktape (the engine Zabbix embeds) and in
Zabbix's own zabbix_js against a real hub; bad bodies get precise 400s."""
from __future__ import annotations

import asyncio
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
ACKED = json.loads((FIXTURES / "zabbix-webhook-acknowledged.json").read_text())
RESOLVED = json.loads((FIXTURES / "zabbix-webhook-resolved.json").read_text())
#: The media type's parameters as Zabbix 6.0 expanded them for the recorded problem: no
#: {EVENT.TIMESTAMP} there, so the script derives it from {EVENT.DATE} {EVENT.TIME} (UTC).
EXPANDED = dict(PROBLEM, URL="http://127.0.0.1:8766/zabbix", Token="{$WALLBOARD.TOKEN}",
                event_timestamp="{EVENT.TIMESTAMP}", event_date="2026.12.02", event_time="07:39:13",
                event_recovery_date="{EVENT.RECOVERY.DATE}", event_recovery_time="{EVENT.RECOVERY.TIME}",
                event_update_date="{EVENT.UPDATE.DATE}", event_update_time="{EVENT.UPDATE.TIME}")


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


def test_zabbix_recorded_bodies_open_acknowledge_then_resolve_an_incident_and_its_device():
    async def main() -> None:
        async with Env() as env:
            status, reply = await env.post("/zabbix", PROBLEM)
            assert status == 200, reply
            assert reply["incidents"] == ["zabbix-32"] and reply["devices"] == ["hz-001/gw-1"]
            wall = await wall_state_until(env.hub, reply["last"])
            inc = wall.incidents["zabbix-32"]
            assert inc["status"] == "open" and inc["severity"] == "P2" and inc["stores"] == ["hz-001"]
            assert inc["title"] == "Gateway hz-001-gw: packet loss over 20% for 5m"
            assert inc["opened_at"] == 1796197153 and inc["owner"] == "network"
            assert inc["x_url"] == "https://zabbix.example/tr_events.php?triggerid=23133&eventid=32"
            dev = wall.devices["hz-001/gw-1"]
            assert dev["status"] == "crit" and dev["kind"] == "router"
            status, again = await env.post("/zabbix", PROBLEM)  # Zabbix repeats (escalation step)
            assert status == 200 and again["incidents"] == ["zabbix-32"]
            status, reply = await env.post("/zabbix", ACKED)  # "acknowledged and commented"
            wall = await wall_state_until(env.hub, reply["last"])
            inc = wall.incidents["zabbix-32"]
            assert inc["status"] == "acknowledged" and inc["acknowledged_at"] == 1796197161
            status, reply = await env.post("/zabbix", RESOLVED)
            assert status == 200, reply
            wall = await wall_state_until(env.hub, reply["last"])
            inc = wall.incidents["zabbix-32"]
            assert inc["status"] == "resolved" and inc["resolved_at"] == 1796197177
            assert wall.devices["hz-001/gw-1"]["status"] == "ok" and wall.open_incidents() == []
            assert env.hub.stats()["webhooks_zabbix"] == 4
    run(main())


def test_zabbix_acknowledge_update():
    mapped = map_zabbix(ACKED, MappingRules(), {"zabbix-32": {"status": "open"}})
    inc = next(e for e in mapped.events if e["type"] == "incident")
    assert inc["status"] == "acknowledged" and inc["acknowledged_at"] == 1796197161
    # an update on an incident already acknowledged (or a comment alone) changes nothing
    inc = next(e for e in map_zabbix(ACKED, MappingRules(), {"zabbix-32": {"status": "acknowledged"}}).events
               if e["type"] == "incident")
    assert "acknowledged_at" not in inc and inc.get("status") is None
    unack = dict(ACKED, event_update_action="unacknowledged")
    inc = next(e for e in map_zabbix(unack, MappingRules(), {"zabbix-32": {"status": "open"}}).events
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
@pytest.mark.parametrize("tz, clock", [("UTC", "07:39:13"), ("Asia/Shanghai", "15:39:13")])
def test_media_type_script_runs_in_duktape_and_posts_the_recorded_body(tmp_path, tz, clock):
    """The script in contrib/ (and docs/integrations.md) under Duktape with Zabbix's
    HttpRequest stubbed, given the parameters as Zabbix 6.0 expanded them: it posts exactly
    the recorded body (event_timestamp from the date and time in the server's zone), with
    the token as a bearer header, and fails loudly on a non-200 answer."""
    params = dict(EXPANDED, Token="tok-0123456789abcdef", event_time=clock)
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
        return subprocess.run(["duk", str(f)], capture_output=True, text=True, timeout=30, env={"TZ": tz})

    out = duk(200).stdout.splitlines()
    req = json.loads(out[0])
    assert out[1] == "OK" and req["url"] == "http://127.0.0.1:8766/zabbix"
    assert req["body"] == PROBLEM
    assert "Authorization: Bearer tok-0123456789abcdef" in req["headers"]
    out = duk(401).stdout.splitlines()
    assert out[-1].startswith("thrown wallboard answered HTTP 401") and out[1].startswith("log 3 ")
    assert (ROOT / "docs" / "integrations.md").read_text().count(script.strip()) == 1, \
        "docs/integrations.md must carry contrib/zabbix/wallboard-webhook.js verbatim"


@pytest.mark.skipif(shutil.which("zabbix_js") is None, reason="zabbix_js (Zabbix's own script runner, in Debian's "
                    "zabbix-server-pgsql) not installed")
def test_media_type_script_in_zabbix_js_posts_to_a_real_hub(tmp_path):
    """Zabbix's own embedded engine and HttpRequest run the script against a hub's real
    /zabbix: an open hub opens the incident; a hub with tokens and the token macro left
    undefined answers 401, which the script turns into an error Zabbix shows."""
    from wallboard.hub.auth import Auth

    async def zabbix_js(params: dict, url: str) -> tuple[int, str]:
        f = tmp_path / "params.json"
        f.write_text(json.dumps(dict(params, URL=url)))
        proc = await asyncio.create_subprocess_exec("zabbix_js", "-s", str(SCRIPT), "-i", str(f), "-t", "20",
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                    env={"TZ": "UTC"})
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        return proc.returncode or 0, out.decode()

    async def main() -> None:
        async with Env() as env:
            code, out = await zabbix_js(EXPANDED, env.url + "/zabbix")
            assert code == 0 and out.strip() == "OK", out
            assert env.hub.state.incidents["zabbix-32"]["opened_at"] == 1796197153
        async with Env(auth=Auth({"publish": "pub-token-0123456789"})) as env:
            code, out = await zabbix_js(EXPANDED, env.url + "/zabbix")
            assert code != 0 and "wallboard answered HTTP 401" in out and "a publish token is required" in out
            code, out = await zabbix_js(dict(EXPANDED, Token="pub-token-0123456789"), env.url + "/zabbix")
            assert code == 0 and "zabbix-32" in env.hub.state.incidents, out
    run(main())
