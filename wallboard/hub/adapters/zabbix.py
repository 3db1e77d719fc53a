"""``POST /zabbix``: Zabbix's Webhook media type (Zabbix 5.0 and later).

The media type's script (``contrib/zabbix/wallboard-webhook.js``, also in
``docs/integrations.md``) posts its parameters as one JSON object, minus ``URL`` and
``Token``; each is a Zabbix macro, so every value arrives as a string:

============================  ====================================  ==========================
parameter                     macro                                 use
============================  ====================================  ==========================
``event_id`` (required)       ``{EVENT.ID}``                        incident id ``zabbix-<id>``
``event_value`` (required)    ``{EVENT.VALUE}``                     ``1`` problem, ``0`` resolved
``event_name`` (required)     ``{EVENT.NAME}``                      incident title
``event_nseverity``           ``{EVENT.NSEVERITY}``                 0..5 -> P4 P4 P3 P3 P2 P1
``event_severity``            ``{EVENT.SEVERITY}``                  used when nseverity is absent
``event_tags``                ``{EVENT.TAGSJSON}``                  tags: ``store``, ``device`` ...
``host_host``                 ``{HOST.HOST}``                       the device when no ``device`` tag
``host_name``                 ``{HOST.NAME}``                       (kept as a label)
``event_timestamp``           ``{EVENT.TIMESTAMP}``                 opened_at
``event_recovery_timestamp``  ``{EVENT.RECOVERY.TIMESTAMP}``        resolved_at
``event_update_status``       ``{EVENT.UPDATE.STATUS}``             ``1`` for a problem update
``event_update_action``       ``{EVENT.UPDATE.ACTION}``             "acknowledged" acknowledges
``event_update_timestamp``    ``{EVENT.UPDATE.TIMESTAMP}``          acknowledged_at
``trigger_id``                ``{TRIGGER.ID}``                      (kept as a label)
``event_url``                 ``{$ZABBIX.URL}/tr_events.php?...``   the incident's link
============================  ====================================  ==========================

A macro Zabbix could not expand arrives as itself (``{EVENT.RECOVERY.TIMESTAMP}`` in a
problem): such a value counts as absent. Zabbix 6.0 has no ``*.TIMESTAMP`` macros: the
script derives them from the ``event_date`` / ``event_time`` (``{EVENT.DATE}``,
``{EVENT.TIME}``, and the recovery and update pairs) parameters, in the server's zone.
The bodies in ``tests/fixtures/zabbix-webhook-*.json`` were recorded from Zabbix 6.0.14. The event's tags and ``host``, ``alertname``
(the event name) and ``severity`` become the alert's labels, so the ``--mapping`` rules
(labels, severity names, ``[ignore]``) apply as to Alertmanager's alerts.
"""
from __future__ import annotations

import re
import time
from typing import Any, Mapping

import orjson

from wallboard.hub.alert_mapping import Mapped, MappingRules, PayloadError, map_webhook

from . import Adapter

#: {EVENT.NSEVERITY} -> the severity name Zabbix shows (lower case, as the mapping's keys)
NSEVERITY = {0: "not classified", 1: "information", 2: "warning", 3: "average", 4: "high", 5: "disaster"}
KNOWN = ("event_id", "event_value", "event_name", "event_nseverity", "event_severity", "event_tags", "host_host",
         "host_name", "event_timestamp", "event_recovery_timestamp", "event_update_status", "event_update_action",
         "event_update_timestamp", "trigger_id", "event_url")
_MACRO = re.compile(r"\{[A-Z0-9_.$#]+(?:\.[A-Za-z]+\(.*\))?\}")


def _value(payload: Mapping[str, Any], key: str, required: bool = False) -> str | None:
    v = payload.get(key)
    if v is None or (isinstance(v, str) and (not v.strip() or _MACRO.fullmatch(v.strip()))):
        if required:
            raise PayloadError(key, "missing: expected the value of " + {
                "event_id": "{EVENT.ID}", "event_value": "{EVENT.VALUE}", "event_name": "{EVENT.NAME}"}[key]
                + (f" (got the unexpanded macro {v!r})" if isinstance(v, str) and v.strip() else ""))
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(int(v)) if float(v).is_integer() else str(v)
    if not isinstance(v, str):
        raise PayloadError(key, f"expected a string, got {type(v).__name__}")
    return v.strip()


def _tags(payload: Mapping[str, Any]) -> dict[str, str]:
    raw = payload.get("event_tags")
    if raw is None or (isinstance(raw, str) and (not raw.strip() or _MACRO.fullmatch(raw.strip()))):
        return {}
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise PayloadError("event_tags", f"expected the JSON of {{EVENT.TAGSJSON}}: {e.msg}") from None
    if not isinstance(raw, list):
        raise PayloadError("event_tags", f"expected a list of {{\"tag\", \"value\"}} objects, got {type(raw).__name__}")
    out: dict[str, str] = {}
    for i, t in enumerate(raw):
        if not isinstance(t, dict) or not isinstance(t.get("tag"), str) or not isinstance(t.get("value", ""), str):
            raise PayloadError(f"event_tags[{i}]", "expected {\"tag\": string, \"value\": string}")
        if t["tag"]:
            out.setdefault(t["tag"], t.get("value", ""))  # a repeated tag keeps its first value
    return out


def _timestamp(payload: Mapping[str, Any], key: str) -> float | None:
    v = _value(payload, key)
    if v is None:
        return None
    try:
        ts = float(v)
    except ValueError:
        raise PayloadError(key, f"expected UNIX seconds, got {v[:40]!r}") from None
    if not 0 < ts < 32503680000:
        raise PayloadError(key, f"expected UNIX seconds, got {v[:40]!r}")
    return ts


def to_alert(payload: Any) -> tuple[dict[str, Any], bool]:
    """The Alertmanager-shaped alert of a Zabbix webhook body, and whether it acknowledges."""
    if not isinstance(payload, dict):
        raise PayloadError("", f"expected a JSON object (the Zabbix webhook's parameters), got {type(payload).__name__}")
    if "alerts" in payload:
        raise PayloadError("alerts", "an Alertmanager or Grafana body: post it to /alertmanager or /grafana")
    event_id = _value(payload, "event_id", True)
    value = _value(payload, "event_value", True)
    if value not in ("0", "1"):
        raise PayloadError("event_value", f"expected \"1\" (problem) or \"0\" (resolved), got {value!r}")
    name = _value(payload, "event_name", True)
    labels = {k: v for k, v in _tags(payload).items()}
    sev = _value(payload, "event_nseverity")
    if sev is not None:
        if sev not in ("0", "1", "2", "3", "4", "5"):
            raise PayloadError("event_nseverity", f"expected 0..5 ({{EVENT.NSEVERITY}}), got {sev!r}")
        labels.setdefault("severity", NSEVERITY[int(sev)])
    elif (name_sev := _value(payload, "event_severity")) is not None:
        labels.setdefault("severity", name_sev.lower())
    host = _value(payload, "host_host")
    if host:
        labels.setdefault("host", host)
        labels.setdefault("device", host)
    for key, label in (("host_name", "host_name"), ("trigger_id", "trigger_id")):
        v = _value(payload, key)
        if v:
            labels.setdefault(label, v)
    labels.setdefault("alertname", name or "")
    alert: dict[str, Any] = {"status": "firing" if value == "1" else "resolved", "labels": labels,
                             "annotations": {"summary": name or ""}, "fingerprint": f"zabbix-{event_id}"}
    opened = _timestamp(payload, "event_timestamp")
    if opened is not None:
        alert["startsAt"] = opened
    if value == "0":
        alert["endsAt"] = _timestamp(payload, "event_recovery_timestamp")
    url = _value(payload, "event_url")
    if url and url.startswith(("http://", "https://")):
        alert["generatorURL"] = url
    action = (_value(payload, "event_update_action") or "").lower()
    acks = (_value(payload, "event_update_status") == "1" and value == "1"
            and "acknowledged" in action.replace("unacknowledged", ""))
    # other parameters are allowed (a site's own): only the known ones are read
    return alert, acks


def map_zabbix(payload: Any, rules: MappingRules, incidents: Mapping[str, Mapping[str, Any]]) -> Mapped:
    """Events of one Zabbix webhook body (see the module docs); raises :class:`PayloadError`."""
    alert, acks = to_alert(payload)
    # alert_mapping reads RFC 3339 or epoch seconds; the zero time means "not resolved yet"
    out = map_webhook({"alerts": [alert]}, rules, source="zabbix", incidents=incidents)
    if acks:
        for ev in out.events:
            known = incidents.get(ev["id"]) if ev["type"] == "incident" else None
            if ev["type"] == "incident" and (known is None or known.get("status") in ("open", None)):
                ev["status"] = "acknowledged"
                ev["acknowledged_at"] = _timestamp(payload, "event_update_timestamp") or time.time()
    return out


ADAPTER = Adapter("zabbix", "Zabbix", map_zabbix, ("zabbix-webhook-problem.json", "zabbix-webhook-acknowledged.json",
                                                   "zabbix-webhook-resolved.json"))

__all__ = ["ADAPTER", "map_zabbix", "to_alert", "NSEVERITY"]
