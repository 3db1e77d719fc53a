"""Alert webhook -> event mapping (pure): recorded payloads, rules file, every error."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from wallboard import protocol as P
from wallboard.hub.alert_mapping import (
    MappingError,
    MappingRules,
    PayloadError,
    fingerprint,
    load_mapping,
    map_webhook,
    parse_mapping,
    severity_of,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def am_payloads() -> list[dict]:
    lines = (FIXTURES / "alertmanager-0.25-webhooks.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if x.strip()]


def grafana_firing() -> dict:
    return json.loads((FIXTURES / "grafana-webhook-example.json").read_text())


def grafana_resolved() -> dict:
    """Grafana's documented firing body, turned into the resolved notification."""
    p = grafana_firing()
    p["status"] = "resolved"
    for a in p["alerts"]:
        a["status"] = "resolved"
        a["endsAt"] = "2021-10-12T10:30:00+02:00"
    return p


def by_type(events: list[dict], t: str) -> list[dict]:
    return [e for e in events if e["type"] == t]


def test_alertmanager_firing_opens_incident_and_marks_device():
    firing, _ = am_payloads()
    out = map_webhook(firing, source="alertmanager")
    [inc] = by_type(out.events, "incident")
    [dev] = by_type(out.events, "device")
    assert inc["id"] == "d46443f82f72b7c9"  # the alert fingerprint
    assert inc["status"] == "open" and inc["severity"] == "P1"
    assert inc["title"] == "POS terminal down"
    assert inc["stores"] == ["hz-001"]
    assert inc["opened_at"] == pytest.approx(P.parse_ts("2026-11-26T13:05:27.915735Z"))
    assert dev == {"type": "device", "id": "hz-001/pos-03", "store": "hz-001", "status": "down",
                   "msg": "POS terminal down"}
    assert out.incidents == [inc["id"]] and out.devices == ["hz-001/pos-03"] and out.ignored == 0
    for ev in out.events:  # every mapped event is a valid protocol event
        P.validate_event(ev, require_seq=False, require_ts=False)


def test_a_device_kind_label_names_the_incident_kinds_for_layout_rules():
    firing, _ = am_payloads()
    firing = copy.deepcopy(firing)
    for a in firing["alerts"]:
        a["labels"]["device_kind"] = "pos"
    out = map_webhook(firing, source="alertmanager")
    [inc] = by_type(out.events, "incident")
    [dev] = by_type(out.events, "device")
    assert inc["kinds"] == ["pos"] and dev["kind"] == "pos"
    P.validate_event(inc, require_seq=False, require_ts=False)
    assert "kinds" not in by_type(map_webhook(am_payloads()[0], source="alertmanager").events, "incident")[0]


def test_alertmanager_resolved_resolves_and_sets_device_ok():
    _, resolved = am_payloads()
    out = map_webhook(resolved, source="alertmanager")
    [inc] = by_type(out.events, "incident")
    [dev] = by_type(out.events, "device")
    assert inc["id"] == "d46443f82f72b7c9" and inc["status"] == "resolved"
    assert inc["resolved_at"] == P.parse_ts("2026-11-26T13:05:30Z")
    assert dev["status"] == "ok"


def test_repeat_firing_keeps_acknowledged_status():
    firing, _ = am_payloads()
    known = {"d46443f82f72b7c9": {"id": "d46443f82f72b7c9", "status": "acknowledged", "severity": "P1"}}
    [inc] = by_type(map_webhook(firing, incidents=known).events, "incident")
    assert "status" not in inc and "opened_at" not in inc


def test_firing_again_after_resolve_reopens():
    firing, _ = am_payloads()
    known = {"d46443f82f72b7c9": {"id": "d46443f82f72b7c9", "status": "resolved", "severity": "P1"}}
    [inc] = by_type(map_webhook(firing, incidents=known).events, "incident")
    assert inc["status"] == "open" and inc["resolved_at"] is None and inc["acknowledged_at"] is None


def test_resolved_alert_leaves_device_at_worst_other_firing_alert():
    _, resolved = am_payloads()
    other = {"id": "other", "status": "open", "severity": "P2", "x_device": "hz-001/pos-03", "x_labels": {}}
    [dev] = by_type(map_webhook(resolved, incidents={"other": other}).events, "device")
    assert dev["status"] == "crit"  # P2 still firing on the same device
    two = copy.deepcopy(resolved)
    second = copy.deepcopy(two["alerts"][0])
    second.update(status="firing", fingerprint="ffff", labels={**second["labels"], "severity": "warning"})
    two["alerts"].append(second)
    [dev] = by_type(map_webhook(two).events, "device")
    assert dev["status"] == "warn"


def test_ignore_rules_skip_watchdog():
    firing, _ = am_payloads()
    firing["alerts"][0]["labels"]["alertname"] = "Watchdog"
    out = map_webhook(firing)
    assert out.events == [] and out.ignored == 1


def test_missing_fingerprint_uses_stable_label_hash():
    firing, _ = am_payloads()
    del firing["alerts"][0]["fingerprint"]
    a = map_webhook(firing).events[0]["id"]
    assert a == fingerprint(firing["alerts"][0]["labels"]) and len(a) == 16
    assert map_webhook(copy.deepcopy(firing)).events[0]["id"] == a


def test_severity_mapping_and_default():
    rules = MappingRules()
    assert severity_of({"severity": "critical"}, rules) == "P1"
    assert severity_of({"priority": "P2"}, rules) == "P2"
    assert severity_of({"severity": "WARNING"}, rules) == "P3"
    assert severity_of({"severity": "mystery"}, rules) == "P3"
    assert severity_of({}, rules) == "P3"


def test_explicit_device_status_label_wins():
    firing, _ = am_payloads()
    firing["alerts"][0]["labels"]["device_status"] = "maint"
    [dev] = by_type(map_webhook(firing).events, "device")
    assert dev["status"] == "maint"


def test_grafana_documented_example_with_zone_as_store(tmp_path):
    f = tmp_path / "m.toml"
    f.write_text('[labels]\nstore = ["zone"]\n\n[incident]\nid_prefix = "grafana-"\n')
    rules = load_mapping(f)
    out = map_webhook(grafana_firing(), rules, source="grafana")
    incs = by_type(out.events, "incident")
    assert [i["id"] for i in incs] == ["grafana-c6eadffa33fcdf37", "grafana-bc97ff14869b13e3"]
    assert [i["stores"] for i in incs] == [["us-1"], ["eu-1"]]
    assert incs[0]["title"] == "This alert was triggered for zone us-1"
    assert incs[0]["owner"] == "blue" and incs[0]["severity"] == "P3"  # no severity label: default
    assert incs[0]["x_url"] == "https://play.grafana.org/alerting/1afz29v7z/edit"
    assert by_type(out.events, "device") == []  # no device label
    out = map_webhook(grafana_resolved(), rules, source="grafana")
    assert [i["status"] for i in out.events] == ["resolved", "resolved"]


def test_grafana_version_1_is_not_refused_but_alertmanager_v3_is():
    map_webhook(grafana_firing(), source="grafana")
    firing, _ = am_payloads()
    firing["version"] = "3"
    with pytest.raises(PayloadError, match=r'version: expected "4" \(Alertmanager webhook payload v4\)'):
        map_webhook(firing, source="alertmanager")


@pytest.mark.parametrize("mutate, path, text", [
    (lambda p: p.pop("alerts"), "alerts", "missing: expected a list of alerts"),
    (lambda p: p.update(alerts={}), "alerts", "expected a list of alerts"),
    (lambda p: p["alerts"].append(3), "alerts[1]", "expected an object, got int"),
    (lambda p: p["alerts"][0].update(status="pending"), "alerts[0].status", 'expected "firing" or "resolved"'),
    (lambda p: p["alerts"][0].pop("labels"), "alerts[0].labels", "expected an object of strings, got NoneType"),
    (lambda p: p["alerts"][0]["labels"].update(store=5), "alerts[0].labels.store", "expected a string, got int"),
    (lambda p: p["alerts"][0].update(annotations=[]), "alerts[0].annotations", "expected an object of strings"),
    (lambda p: p["alerts"][0].update(startsAt="yesterday"), "alerts[0].startsAt", "expected an RFC 3339 time"),
    (lambda p: p["alerts"][0].update(fingerprint=""), "alerts[0].fingerprint", "expected a non-empty string"),
])
def test_payload_errors_name_the_path(mutate, path, text):
    firing, _ = am_payloads()
    mutate(firing)
    with pytest.raises(PayloadError) as ei:
        map_webhook(firing)
    assert ei.value.path == path and text in str(ei.value)


def test_payload_not_an_object():
    with pytest.raises(PayloadError, match="expected a JSON object"):
        map_webhook([1, 2])
    with pytest.raises(ValueError, match="source 'nagios'"):
        map_webhook({}, source="nagios")


def test_mapping_file_overrides(tmp_path):
    f = tmp_path / "m.toml"
    f.write_text("""
[labels]
store = "shop"
device = ["dev"]
[severity]
sev1 = "P1"
[device_status]
P1 = "crit"
[incident]
title = ["label:alertname"]
device_id = "{device}"
default_severity = "P4"
[ignore]
env = ["staging"]
""")
    r = load_mapping(f)
    assert r.labels["store"] == ["shop"] and r.labels["device"] == ["dev"]
    assert r.severity["sev1"] == "P1" and r.severity["critical"] == "P1"  # defaults kept
    assert r.device_status["P1"] == "crit" and r.title == ["label:alertname"]
    assert r.ignore == {"env": ["staging"]}  # an [ignore] table replaces the default list
    payload = {"alerts": [{"status": "firing", "labels": {"alertname": "X", "shop": "s9", "dev": "s9/pos-1",
                                                         "severity": "sev1"}}]}
    inc, dev = map_webhook(payload, r).events
    assert inc["title"] == "X" and inc["stores"] == ["s9"] and dev["id"] == "s9/pos-1" and dev["status"] == "crit"
    payload["alerts"][0]["labels"]["env"] = "staging"
    assert map_webhook(payload, r).ignored == 1
    assert load_mapping(None) == MappingRules()


def test_mapping_errors_are_collected_with_paths_and_hints():
    with pytest.raises(MappingError) as ei:
        parse_mapping({
            "lables": {},
            "labels": {"stor": ["x"], "device": 3},
            "severity": {"critical": "P0"},
            "device_status": {"P1": "dead", "P9": "ok"},
            "incident": {"title": ["summary"], "device_id": "{store}", "default_severity": "P5",
                         "id_prefix": 7, "colour": "red"},
        }, "m.toml")
    issues = dict(ei.value.issues)
    assert "did you mean 'labels'?" in issues["lables"]
    assert "did you mean 'store'?" in issues["labels.stor"]
    assert "expected a label name or a list of label names" in issues["labels.device"]
    assert "expected one of P1, P2, P3, P4, got 'P0'" in issues["severity.critical"]
    assert "expected one of ok, warn" in issues["device_status.P1"]
    assert "unknown key" in issues["device_status.P9"]
    assert "must start with 'label:' or 'annotation:'" in issues["incident.title"]
    assert "containing '{device}'" in issues["incident.device_id"]
    assert "got 'P5'" in issues["incident.default_severity"]
    assert "at most 50 characters" in issues["incident.id_prefix"]
    assert "unknown key" in issues["incident.colour"]
    assert str(ei.value).startswith("11 error(s) in alert mapping\nm.toml: lables:")


def test_mapping_template_with_unknown_name_and_bad_table():
    with pytest.raises(MappingError) as ei:
        parse_mapping({"incident": {"device_id": "{city}/{device}"}, "labels": "store"})
    issues = dict(ei.value.issues)
    assert "only {store} and {device}" in issues["incident.device_id"]
    assert "expected a table, got str" in issues["labels"]


def test_load_mapping_file_errors(tmp_path):
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[labels\n")
    with pytest.raises(MappingError, match="not valid TOML"):
        load_mapping(bad)


# --------------------------------------------------------------------------- Grafana test, legacy


def grafana_test() -> dict:
    return json.loads((FIXTURES / "grafana-test-notification.json").read_text())


def test_grafana_test_notification_is_ignored_and_counted_by_default():
    out = map_webhook(grafana_test(), source="grafana")
    assert out.events == [] and (out.ignored, out.tests) == (1, 1)
    # the same alert from Alertmanager is an ordinary alert; "open" maps it on /grafana too
    assert map_webhook(dict(grafana_test(), version="4"), source="alertmanager").tests == 0
    rules = parse_mapping({"grafana": {"test_notifications": "open"}})
    out = map_webhook(grafana_test(), rules, source="grafana")
    assert out.tests == 0 and [e["title"] for e in out.events] == ["Notification test"]
    # only the test's own label pair: a real TestAlert rule on another instance still opens
    body = grafana_test()
    body["alerts"][0]["labels"]["instance"] = "pos-gw-01"
    assert map_webhook(body, source="grafana").tests == 0


def test_grafana_mapping_key_errors():
    with pytest.raises(MappingError) as ei:
        parse_mapping({"grafana": {"test_notification": "open"}}, "m.toml")
    assert ei.value.issues == [("grafana.test_notification", "unknown key (did you mean 'test_notifications'?); "
                                "expected one of test_notifications")]
    with pytest.raises(MappingError) as ei:
        parse_mapping({"grafana": {"test_notifications": "drop"}}, "m.toml")
    assert ei.value.issues == [("grafana.test_notifications", "expected one of 'ignore', 'open', got 'drop'")]


def test_legacy_grafana_body_is_unsupported():
    legacy = json.loads((FIXTURES / "grafana-legacy-webhook.json").read_text())
    with pytest.raises(PayloadError) as ei:
        map_webhook(legacy, source="grafana")
    assert ei.value.code == "unsupported"
    assert str(ei.value) == ("a legacy Grafana alerting body (ruleName, ruleId, evalMatches, ruleUrl; Grafana 8 and "
                             "older without unified alerting) is not supported: send it from a Grafana Alerting "
                             "contact point of type Webhook (Grafana 9 and later), whose body carries an 'alerts' "
                             "list")
