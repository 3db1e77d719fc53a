"""Alert webhooks -> wallboard events (pure: no I/O, no asyncio).

Prometheus Alertmanager (webhook payload version 4) and Grafana alerting (webhook
contact point) post the same shape: ``{"status", "alerts": [{"status", "labels",
"annotations", "startsAt", "endsAt", "fingerprint", ...}], ...}``. Each alert becomes

* one ``incident`` upsert whose id is ``id_prefix + fingerprint`` -- so a repeated
  notification updates the same incident instead of opening a new one; a firing alert
  opens (or re-opens) it, a resolved alert resolves it;
* one ``device`` upsert when the alert names a device (``device`` label by default):
  firing sets the status that matches the incident's severity (P1 -> ``down`` ...),
  resolved sets ``ok`` -- unless another still-firing alert holds the same device, in
  which case the device keeps the worst status of those.

Typical use (the HTTP ingest does this)::

    rules = load_mapping("alerts.toml")          # or MappingRules() for the defaults
    out = map_webhook(payload, rules, source="alertmanager", incidents=state.incidents)
    out.events      # validated-shape event dicts, ready for protocol.validate_event
    out.ignored     # alerts skipped: [ignore] rules and Grafana's test notification
    out.tests       # of those, Grafana test notifications (ignored by default)

Grafana's contact-point "Test" button posts one alert labelled ``alertname=TestAlert,
instance=Grafana`` (:data:`GRAFANA_TEST_LABELS`); on ``/grafana`` it is ignored and counted
(``[grafana] test_notifications = "open"`` maps it like any alert). A legacy (pre-unified
alerting) Grafana body (``ruleName``, ``evalMatches``, no ``alerts``) raises
:class:`PayloadError` with ``code == "unsupported"``.

Errors in the payload raise :class:`PayloadError` with the JSON path (``alerts[2].labels``)
and what was expected; errors in the mapping file raise :class:`MappingError` listing
every problem with its key path and a "did you mean" hint. The defaults and the file
format are documented in ``docs/integrations.md``.
"""
from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from wallboard import protocol as P

SOURCES = ("alertmanager", "grafana", "zabbix")

DEFAULT_LABELS: dict[str, list[str]] = {
    "store": ["store", "store_id", "site"],
    "device": ["device", "device_id"],
    "device_kind": ["device_kind", "kind"],
    "severity": ["severity", "priority"],
    "owner": ["owner", "team"],
    "device_status": ["device_status"],
}
DEFAULT_SEVERITY: dict[str, str] = {
    "critical": "P1", "page": "P1", "emergency": "P1", "disaster": "P1",
    "high": "P2", "error": "P2", "major": "P2",
    "warning": "P3", "warn": "P3", "medium": "P3", "minor": "P3", "average": "P3",
    "info": "P4", "low": "P4", "none": "P4", "informational": "P4", "information": "P4", "not classified": "P4",
    "p1": "P1", "p2": "P2", "p3": "P3", "p4": "P4",
}
DEFAULT_DEVICE_STATUS: dict[str, str] = {"P1": "down", "P2": "crit", "P3": "warn", "P4": "warn",
                                         "resolved": "ok"}
DEFAULT_TITLE = ["annotation:summary", "annotation:title", "label:alertname"]
DEFAULT_IGNORE: dict[str, list[str]] = {"alertname": ["Watchdog", "InfoInhibitor", "DatasourceNoData"]}

#: The labels of the alert Grafana's contact-point "Test" button sends (Grafana's alerting
#: code: notify ``newTestAlert``; annotation ``summary = "Notification test"``).
GRAFANA_TEST_LABELS: dict[str, str] = {"alertname": "TestAlert", "instance": "Grafana"}
#: Keys only a legacy Grafana alerting webhook body has (Grafana <= 8's old alerting).
LEGACY_GRAFANA_KEYS = ("ruleName", "ruleId", "evalMatches", "ruleUrl")
TEST_NOTIFICATIONS = ("ignore", "open")

_TOP_KEYS = ("labels", "severity", "device_status", "incident", "ignore", "grafana")
_GRAFANA_KEYS = ("test_notifications",)
_INCIDENT_KEYS = ("id_prefix", "title", "device_id", "default_severity")
# Alertmanager and Grafana send this for "not resolved yet".
_ZERO_TIME_PREFIX = "0001-01-01"


class MappingError(ValueError):
    """A mapping file that cannot be used; ``issues`` lists ``(key path, message)``."""

    def __init__(self, source: str, issues: list[tuple[str, str]]) -> None:
        self.source = source
        self.issues = issues
        lines = [f"{source}: {path}: {msg}" if path else f"{source}: {msg}" for path, msg in issues]
        super().__init__(f"{len(issues)} error(s) in alert mapping\n" + "\n".join(lines))


class PayloadError(ValueError):
    """A webhook body that is not an Alertmanager/Grafana payload: ``path`` + expectation."""

    def __init__(self, path: str, message: str, code: str = "bad_value") -> None:
        self.path = path
        self.detail = message
        self.code = code  # "bad_value", or "unsupported" for a kind of body the hub does not take
        super().__init__(f"{path}: {message}" if path else message)


@dataclass
class MappingRules:
    """How alert labels become incidents and device statuses (all fields have defaults)."""

    labels: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_LABELS.items()})
    severity: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SEVERITY))
    device_status: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_DEVICE_STATUS))
    id_prefix: str = ""
    title: list[str] = field(default_factory=lambda: list(DEFAULT_TITLE))
    device_id: str = "{store}/{device}"
    default_severity: str = "P3"
    ignore: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_IGNORE.items()})
    grafana_test: str = "ignore"  # Grafana's test notification on /grafana: "ignore" or "open"


@dataclass
class Mapped:
    """Result of :func:`map_webhook`: events to submit plus what they touch."""

    events: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    ignored: int = 0   # alerts skipped, tests included
    tests: int = 0     # Grafana test notifications skipped


# --------------------------------------------------------------------------- mapping file


def _str_list(v: Any, path: str, issues: list[tuple[str, str]]) -> list[str] | None:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) and x for x in v):
        return list(v)
    issues.append((path, f"expected a label name or a list of label names, got {v!r}"))
    return None


def parse_mapping(data: Mapping[str, Any], source: str = "<mapping>") -> MappingRules:
    """Build :class:`MappingRules` from a parsed TOML document (missing keys = defaults).

    Raises :class:`MappingError` with every problem found, not just the first.
    """
    rules = MappingRules()
    issues: list[tuple[str, str]] = []
    for key in data:
        if key not in _TOP_KEYS:
            issues.append((key, f"unknown table{P.did_you_mean(key, _TOP_KEYS)}; expected one of {', '.join(_TOP_KEYS)}"))

    def table(name: str) -> dict[str, Any]:
        t = data.get(name, {})
        if not isinstance(t, dict):
            issues.append((name, f"expected a table, got {type(t).__name__}"))
            return {}
        return t

    for k, v in table("labels").items():
        if k not in DEFAULT_LABELS:
            issues.append((f"labels.{k}", f"unknown role{P.did_you_mean(k, DEFAULT_LABELS)}; expected one of "
                           + ", ".join(DEFAULT_LABELS)))
            continue
        got = _str_list(v, f"labels.{k}", issues)
        if got is not None:
            rules.labels[k] = got
    for k, v in table("severity").items():
        if v not in P.SEVERITIES:
            issues.append((f"severity.{k}", f"expected one of {', '.join(P.SEVERITIES)}, got {v!r}"))
        else:
            rules.severity[k.lower()] = v
    for k, v in table("device_status").items():
        if k not in DEFAULT_DEVICE_STATUS:
            issues.append((f"device_status.{k}", f"unknown key{P.did_you_mean(k, DEFAULT_DEVICE_STATUS)}; expected "
                           + ", ".join(DEFAULT_DEVICE_STATUS)))
        elif v not in P.DEVICE_STATUSES:
            issues.append((f"device_status.{k}", f"expected one of {', '.join(P.DEVICE_STATUSES)}, got {v!r}"))
        else:
            rules.device_status[k] = v
    inc = table("incident")
    for k, v in inc.items():
        path = f"incident.{k}"
        if k not in _INCIDENT_KEYS:
            issues.append((path, f"unknown key{P.did_you_mean(k, _INCIDENT_KEYS)}; expected one of {', '.join(_INCIDENT_KEYS)}"))
        elif k == "id_prefix":
            if not isinstance(v, str) or len(v) > 50:
                issues.append((path, f"expected a string of at most 50 characters, got {v!r}"))
            else:
                rules.id_prefix = v
        elif k == "title":
            got = _str_list(v, path, issues)
            bad = [s for s in got or () if not s.startswith(("label:", "annotation:"))]
            if bad:
                issues.append((path, f"each entry must start with 'label:' or 'annotation:', got {bad[0]!r}"))
            elif got:
                rules.title = got
        elif k == "device_id":
            if not isinstance(v, str) or "{device}" not in v:
                issues.append((path, f"expected a template containing '{{device}}', got {v!r}"))
            else:
                try:
                    v.format(store="s", device="d")
                    rules.device_id = v
                except (KeyError, IndexError, ValueError):
                    issues.append((path, f"only {{store}} and {{device}} may appear in the template, got {v!r}"))
        elif k == "default_severity":
            if v not in P.SEVERITIES:
                issues.append((path, f"expected one of {', '.join(P.SEVERITIES)}, got {v!r}"))
            else:
                rules.default_severity = v
    for k, v in table("grafana").items():
        if k not in _GRAFANA_KEYS:
            issues.append((f"grafana.{k}", f"unknown key{P.did_you_mean(k, _GRAFANA_KEYS)}; expected one of "
                           + ", ".join(_GRAFANA_KEYS)))
        elif v not in TEST_NOTIFICATIONS:
            issues.append((f"grafana.{k}", f"expected one of {', '.join(map(repr, TEST_NOTIFICATIONS))}, got {v!r}"))
        else:
            rules.grafana_test = v
    ign = table("ignore")
    if "ignore" in data:
        rules.ignore = {}
    for k, v in ign.items():
        got = _str_list(v, f"ignore.{k}", issues)
        if got is not None:
            rules.ignore[k] = got
    if issues:
        raise MappingError(source, issues)
    return rules


def load_mapping(path: str | Path | None) -> MappingRules:
    """Read a TOML mapping file; ``None`` gives the documented defaults."""
    if path is None:
        return MappingRules()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise MappingError(str(p), [("", f"cannot read: {e.strerror}")]) from None
    except tomllib.TOMLDecodeError as e:
        raise MappingError(str(p), [("", f"not valid TOML: {e}")]) from None
    return parse_mapping(data, str(p))


# --------------------------------------------------------------------------- payloads


def _first_label(labels: Mapping[str, str], names: list[str]) -> str | None:
    for n in names:
        v = labels.get(n)
        if v:
            return v
    return None


def _time(v: Any, path: str) -> float | None:
    """Alert time or None for absent / the zero time ``0001-01-01T00:00:00Z``."""
    if v is None or v == "" or (isinstance(v, str) and v.startswith(_ZERO_TIME_PREFIX)):
        return None
    try:
        return P.parse_ts(v, where=path)
    except P.ProtocolError as e:
        raise PayloadError(path, f"expected an RFC 3339 time ({e.detail})") from None


def _str_map(v: Any, path: str, required: bool) -> dict[str, str]:
    if v is None and not required:
        return {}
    if not isinstance(v, dict):
        raise PayloadError(path, f"expected an object of strings, got {type(v).__name__}")
    for k, x in v.items():
        if not isinstance(x, str):
            raise PayloadError(f"{path}.{k}", f"expected a string, got {type(x).__name__}")
    return v


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit id from the label set (used when an alert has no fingerprint)."""
    text = "\xff".join(f"{k}\xfe{labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def severity_of(labels: Mapping[str, str], rules: MappingRules) -> str:
    """The P1..P4 severity of an alert from its severity label (default when unknown)."""
    raw = _first_label(labels, rules.labels["severity"])
    if raw is None:
        return rules.default_severity
    return rules.severity.get(raw.strip().lower(), rules.default_severity)


def _title(labels: Mapping[str, str], annotations: Mapping[str, str], rules: MappingRules) -> str:
    for src in rules.title:
        kind, _, name = src.partition(":")
        v = (labels if kind == "label" else annotations).get(name)
        if v:
            return v[: P.MAX_TEXT]
    return "alert " + ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))[: P.MAX_TEXT]


def is_grafana_test(labels: Mapping[str, str]) -> bool:
    """True for the alert of Grafana's contact-point "Test" button."""
    return all(labels.get(k) == v for k, v in GRAFANA_TEST_LABELS.items())


def _legacy_grafana(payload: Mapping[str, Any]) -> PayloadError | None:
    found = [k for k in LEGACY_GRAFANA_KEYS if k in payload]
    if "alerts" in payload or not found:
        return None
    return PayloadError("", f"a legacy Grafana alerting body ({', '.join(found)}; Grafana 8 and older without "
                        "unified alerting) is not supported: send it from a Grafana Alerting contact point of type "
                        "Webhook (Grafana 9 and later), whose body carries an 'alerts' list", code="unsupported")


def _ignored(labels: Mapping[str, str], rules: MappingRules) -> bool:
    return any(labels.get(k) in vals for k, vals in rules.ignore.items())


def _device_status_for(sev: str, labels: Mapping[str, str], rules: MappingRules) -> str:
    explicit = _first_label(labels, rules.labels["device_status"])
    if explicit in P.DEVICE_STATUSES:
        return explicit  # type: ignore[return-value]
    return rules.device_status.get(sev, "warn")


_STATUS_RANK = {s: i for i, s in enumerate(("ok", "maint", "warn", "unknown", "crit", "down"))}


def map_webhook(
    payload: Any,
    rules: MappingRules | None = None,
    *,
    source: str = "alertmanager",
    incidents: Mapping[str, Mapping[str, Any]] | None = None,
) -> Mapped:
    """Map one webhook body to events (see the module docstring for the rules).

    ``incidents`` is the hub's current incident table (read-only): with it a repeated
    firing notification keeps an acknowledged incident acknowledged, a firing alert on a
    resolved incident re-opens it, and a resolved alert leaves its device at the worst
    status of the other alerts still firing on it. Raises :class:`PayloadError`.
    """
    if source not in SOURCES:
        raise ValueError(f"source {source!r}: expected one of {', '.join(SOURCES)}")
    rules = rules or MappingRules()
    incidents = incidents if incidents is not None else {}
    if not isinstance(payload, dict):
        raise PayloadError("", f"expected a JSON object (the {source} webhook body), got {type(payload).__name__}")
    if source == "alertmanager" and "version" in payload and payload["version"] != "4":
        raise PayloadError("version", f"expected \"4\" (Alertmanager webhook payload v4), got {payload['version']!r}")
    legacy = _legacy_grafana(payload)
    if legacy is not None:
        raise legacy
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts", "expected a list of alerts" if alerts is not None else "missing: expected a list of alerts")
    out = Mapped()
    # incident id -> (device id, its status while firing or None if resolved), this payload
    overlay: dict[str, tuple[str | None, str | None]] = {}
    device_events: dict[str, dict[str, Any]] = {}
    for i, a in enumerate(alerts):
        where = f"alerts[{i}]"
        if not isinstance(a, dict):
            raise PayloadError(where, f"expected an object, got {type(a).__name__}")
        status = a.get("status")
        if status not in ("firing", "resolved"):
            raise PayloadError(f"{where}.status", f"expected \"firing\" or \"resolved\", got {status!r}")
        labels = _str_map(a.get("labels"), f"{where}.labels", required=True)
        annotations = _str_map(a.get("annotations"), f"{where}.annotations", required=False)
        starts = _time(a.get("startsAt"), f"{where}.startsAt")
        ends = _time(a.get("endsAt"), f"{where}.endsAt") if status == "resolved" else None
        fp = a.get("fingerprint")
        if fp is not None and (not isinstance(fp, str) or not fp):
            raise PayloadError(f"{where}.fingerprint", f"expected a non-empty string, got {fp!r}")
        if source == "grafana" and rules.grafana_test == "ignore" and is_grafana_test(labels):
            out.ignored += 1
            out.tests += 1
            continue
        if _ignored(labels, rules):
            out.ignored += 1
            continue
        iid = (rules.id_prefix + (fp or fingerprint(labels)))[: P.MAX_ID]
        sev = severity_of(labels, rules)
        store = _first_label(labels, rules.labels["store"])
        dev_label = _first_label(labels, rules.labels["device"])
        device = None
        if dev_label:
            device = dev_label if (store is None or "/" in dev_label) else rules.device_id.format(
                store=store, device=dev_label)
            device = device[: P.MAX_ID]
        title = _title(labels, annotations, rules)
        ev: dict[str, Any] = {"type": "incident", "id": iid, "title": title, "severity": sev,
                              "x_source": source, "x_labels": dict(labels)}
        if store:
            ev["stores"] = [store]
        owner = _first_label(labels, rules.labels["owner"])
        if owner:
            ev["owner"] = owner[:200]
        if device:
            ev["x_device"] = device
        kind = _first_label(labels, rules.labels["device_kind"])
        if kind:
            ev["kinds"] = [kind[:P.MAX_ID]]     # what layout [[rules]] match on (match.kinds)
        url = a.get("generatorURL")
        if isinstance(url, str) and url:
            ev["x_url"] = url
        known = incidents.get(iid)
        if status == "firing":
            if known is None or known.get("status") == "resolved":
                ev["status"] = "open"
                ev["resolved_at"] = None
                if known is not None:
                    ev["acknowledged_at"] = None
                if starts is not None:
                    ev["opened_at"] = starts
            # else: an open/acknowledged incident keeps its status and opened_at
        else:
            ev["status"] = "resolved"
            ev["resolved_at"] = ends
            if known is None and starts is not None:
                ev["opened_at"] = starts
        out.events.append(ev)
        if iid not in out.incidents:
            out.incidents.append(iid)
        firing_status = _device_status_for(sev, labels, rules) if status == "firing" else None
        overlay[iid] = (device, firing_status)
        if device:
            dev: dict[str, Any] = {"type": "device", "id": device, "msg": title[:P.MAX_TEXT]}
            if store:
                dev["store"] = store
            if kind:
                dev["kind"] = kind[:200]
            if firing_status is not None:
                dev["status"] = firing_status
            else:
                dev["status"] = rules.device_status["resolved"]
                dev["msg"] = ""
            device_events[device] = dev
    # a device keeps the worst status of the alerts still firing on it
    for device, dev in device_events.items():
        worst: str | None = None
        for iid, rec in incidents.items():
            if iid in overlay or rec.get("x_device") != device or rec.get("status") == "resolved":
                continue
            st = _device_status_for(rec.get("severity", rules.default_severity), rec.get("x_labels") or {}, rules)
            if worst is None or _STATUS_RANK[st] > _STATUS_RANK[worst]:
                worst = st
        for d, st in overlay.values():
            if d == device and st is not None and (worst is None or _STATUS_RANK[st] > _STATUS_RANK[worst]):
                worst = st
        if worst is not None and worst != dev["status"]:
            dev["status"] = worst
            if not dev["msg"]:
                dev["msg"] = "other alerts still firing"
        out.events.append(dev)
        out.devices.append(device)
    return out


__all__ = ["MappingError", "MappingRules", "Mapped", "PayloadError", "fingerprint", "load_mapping",
           "map_webhook", "parse_mapping", "severity_of", "DEFAULT_LABELS", "DEFAULT_SEVERITY",
           "DEFAULT_DEVICE_STATUS", "DEFAULT_TITLE", "DEFAULT_IGNORE", "GRAFANA_TEST_LABELS", "is_grafana_test"]
