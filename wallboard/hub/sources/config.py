"""The ``--sources`` file: Prometheus KPI queries and notification sinks (pure: no I/O but
reading the file, no asyncio).

::

    cfg = load_sources("sources.toml")       # SourcesError lists every problem, with lines
    cfg.prometheus[0].kpis[0].query           # 'sum(rate(orders_total[1m]))'
    cfg.sinks[0].kind                         # "dingtalk"

The format (``docs/integrations.md``, "KPIs from Prometheus" and "Notifications")::

    [[prometheus]]
    url = "http://127.0.0.1:9090"
    interval_s = 15
    [[prometheus.kpi]]
    query = 'sum by (store) (rate(orders_total[1m]))'
    metric = "orders_per_s"
    unit = "/s"
    scope = "store:{store}"       # or "global", "city:{label}"

    [[sink]]
    kind = "dingtalk"             # dingtalk, wecom, webhook
    url = "https://oapi.dingtalk.com/robot/send?access_token=..."
    secret_file = "dingtalk.secret"

Every problem is reported with its file, line and key path, unknown keys with a "did you
mean" hint, like ``wallboard check-layout``.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wallboard import protocol as P
from wallboard.layout import _syntax_issue
from wallboard.layout.lines import LineIndex
from wallboard.layout.model import LayoutIssue
from wallboard.layout.validators import (BAD, REQUIRED, AnyTable, Check, Choice, Field, ListOf, Num, Str, Table,
                                         fmt_path, quote)

SINK_KINDS = ("dingtalk", "wecom", "webhook")
NOTIFY_EVENTS = ("open", "acknowledge", "resolve")
LANGS = ("en", "zh")
_SCOPE = re.compile(r"global|(city|store):\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = r"[A-Za-z0-9_.-]{1,64}"


class SourcesError(ValueError):
    """A sources file that cannot be used; ``issues`` lists every problem (file:line: path: what)."""

    def __init__(self, issues: list[LayoutIssue]) -> None:
        self.issues = issues
        super().__init__(f"{len(issues)} error(s) in the sources file\n" + "\n".join(map(str, issues)))


@dataclass(frozen=True)
class KpiQuery:
    """One PromQL instant query and the KPI its result series become."""

    query: str
    metric: str
    scope: str                 # "global", "city:{label}" or "store:{label}"
    unit: str = ""

    @property
    def scope_label(self) -> str | None:
        """The series label naming the city or store (None for "global")."""
        m = _SCOPE.fullmatch(self.scope)
        return m.group(2) if m and m.group(2) else None

    def scope_for(self, labels: dict[str, str]) -> str | None:
        """The KPI scope of one result series, None when it lacks the scope's label."""
        label = self.scope_label
        if label is None:
            return "global"
        value = labels.get(label)
        return f"{self.scope.split(':', 1)[0]}:{value}" if value else None


@dataclass(frozen=True)
class PrometheusSource:
    name: str
    url: str
    interval_s: float
    timeout_s: float
    kpis: tuple[KpiQuery, ...]
    bearer_token_file: str | None = None


@dataclass(frozen=True)
class SinkConfig:
    name: str
    kind: str                  # dingtalk, wecom, webhook
    url: str
    secret: str | None = None  # DingTalk signing secret (from secret_file or secret)
    events: tuple[str, ...] = NOTIFY_EVENTS
    min_severity: str = "P4"
    scopes: tuple[str, ...] = ()   # "store:ID" / "city:ID"; empty = every incident
    lang: str = "en"
    rate_per_min: float = 20.0
    queue: int = 100
    retries: int = 5
    timeout_s: float = 10.0


@dataclass
class SourcesConfig:
    prometheus: list[PrometheusSource] = field(default_factory=list)
    sinks: list[SinkConfig] = field(default_factory=list)
    file: str = "<sources>"


class _Url(Str):
    def __init__(self) -> None:
        super().__init__(1, 2000, doc="an http:// or https:// URL")

    def check(self, v, path, ck):
        v = super().check(v, path, ck)
        if v is BAD:
            return BAD
        u = urlsplit(v)
        if u.scheme not in ("http", "https") or not u.netloc:
            ck.error(path, f"expected {self.doc}, got {quote(v)}")
            return BAD
        return v


class _Scope(Str):
    def __init__(self) -> None:
        super().__init__(1, 200, doc='"global", "city:{label}" or "store:{label}"')

    def check(self, v, path, ck):
        v = super().check(v, path, ck)
        if v is BAD:
            return BAD
        if not _SCOPE.fullmatch(v):
            extra = ""
            if re.fullmatch(r"(city|store):[^{}]+", v):
                extra = f' (a label name in braces: "{v.split(":", 1)[0]}:{{{v.split(":", 1)[1]}}}")'
            ck.error(path, f"expected {self.doc}, got {quote(v)}{extra}")
            return BAD
        return v


class _FilterScope(Str):
    def __init__(self) -> None:
        super().__init__(1, 210, pattern=r"(store|city):[^\s{}]{1,200}", doc='"store:ID" or "city:ID"')


_KPI = Table({
    "query": Field(Str(1, 10_000, doc="a PromQL expression"), REQUIRED, "PromQL instant query"),
    "metric": Field(Str(1, 100), REQUIRED, "KPI metric name"),
    "unit": Field(Str(0, 20), "", "unit shown on tiles"),
    "scope": Field(_Scope(), "global", "global, city:{label}, store:{label}"),
})
_PROMETHEUS = Table({
    "name": Field(Str(1, 64, pattern=_NAME, doc="a name of letters, digits, _ . -"), None),
    "url": Field(_Url(), REQUIRED),
    "interval_s": Field(Num(1, 86_400), 15.0),
    "timeout_s": Field(Num(0.1, 300), None),
    "bearer_token_file": Field(Str(1, 4096, doc="a file path"), None),
    "kpi": Field(ListOf(AnyTable(), 1, 200, doc="an array of [[prometheus.kpi]] tables"), REQUIRED),
})
_SINK = Table({
    "name": Field(Str(1, 64, pattern=_NAME, doc="a name of letters, digits, _ . -"), None),
    "kind": Field(Choice(*SINK_KINDS), REQUIRED),
    "url": Field(_Url(), REQUIRED),
    "secret": Field(Str(1, 200), None, "DingTalk signing secret (prefer secret_file)"),
    "secret_file": Field(Str(1, 4096, doc="a file path"), None),
    "events": Field(ListOf(Choice(*NOTIFY_EVENTS), 1, 3, unique=True), list(NOTIFY_EVENTS)),
    "min_severity": Field(Choice(*P.SEVERITIES), "P4"),
    "scopes": Field(ListOf(_FilterScope(), 0, 1000, unique=True), []),
    "lang": Field(Choice(*LANGS), "en"),
    "rate_per_min": Field(Num(0.1, 6000), 20.0),
    "queue": Field(Num(1, 100_000, integer=True), 100),
    "retries": Field(Num(0, 20, integer=True), 5),
    "timeout_s": Field(Num(0.1, 120), 10.0),
})
_TOP = Table({
    "prometheus": Field(ListOf(AnyTable(), 0, 100, doc="an array of [[prometheus]] tables"), []),
    "sink": Field(ListOf(AnyTable(), 0, 100, doc="an array of [[sink]] tables"), []),
})


def _read_secret(path: str, base: Path | None, where: tuple, ck: Check, what: str) -> str | None:
    p = Path(path)
    if base is not None and not p.is_absolute():
        p = base / p
    try:
        text = p.read_text(encoding="utf-8").strip()
    except OSError as e:
        ck.error(where, f"cannot read the {what} file {str(p)!r}: {e.strerror}")
        return None
    if not text:
        ck.error(where, f"the {what} file {str(p)!r} is empty")
        return None
    return text


def parse_sources(text: str, file: str = "<sources>", base_dir: Path | None = None, *,
                  read_files: bool = True) -> SourcesConfig:
    """Validate a sources file's text; raises :class:`SourcesError` with every issue.

    ``base_dir`` resolves relative ``secret_file`` / ``bearer_token_file`` paths (the
    file's directory); a token file is read at every query (it may be rotated), a secret
    file now (``read_files=False``: not read, for checking an example)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SourcesError([_syntax_issue(file, str(exc), text)]) from None
    ck = Check(file, LineIndex(text), base_dir)
    top, ok = _TOP.check_fields(raw, (), ck)
    cfg = SourcesConfig(file=file)
    if not raw.get("prometheus") and not raw.get("sink") and ok:
        ck.error((), "no [[prometheus]] and no [[sink]] table: nothing to run")
    names: dict[str, tuple] = {}

    def unique(name: str, where: tuple) -> None:
        if name in names:
            ck.error(where, f"name {quote(name.split('/', 1)[1])} is used twice (also at {fmt_path(names[name])})")
        names[name] = where

    for i, src in enumerate(raw.get("prometheus") or [] if top.get("prometheus") is not BAD else []):
        path = ("prometheus", i)
        out = _PROMETHEUS.check(src, path, ck)
        kpis = []
        for j, k in enumerate(src.get("kpi") or [] if isinstance(src, dict) and isinstance(src.get("kpi"), list)
                              else []):
            kq = _KPI.check(k, path + ("kpi", j), ck)
            if kq is not BAD:
                kpis.append(KpiQuery(**kq))
        if out is BAD:
            continue
        name = out["name"] or f"prometheus-{i + 1}"
        unique(f"prometheus/{name}", path + ("name",))
        interval = out["interval_s"]
        timeout = out["timeout_s"] if out["timeout_s"] is not None else min(10.0, interval)
        if timeout > interval:
            ck.error(path + ("timeout_s",), f"{timeout:g} s is longer than interval_s ({interval:g} s)")
        token = out["bearer_token_file"]
        if token is not None and base_dir is not None and not Path(token).is_absolute():
            token = str(base_dir / token)
        cfg.prometheus.append(PrometheusSource(name, out["url"].rstrip("/"), interval, timeout, tuple(kpis), token))
    for i, s in enumerate(raw.get("sink") or [] if top.get("sink") is not BAD else []):
        path = ("sink", i)
        out = _SINK.check(s, path, ck)
        if out is BAD:
            continue
        name = out["name"] or f"{out['kind']}-{i + 1}"
        unique(f"sink/{name}", path + ("name",))
        secret = out["secret"]
        if out["secret_file"] is not None:
            if secret is not None:
                ck.error(path + ("secret_file",), "secret and secret_file go one at a time: keep secret_file")
            secret = (_read_secret(out["secret_file"], base_dir, path + ("secret_file",), ck, "secret")
                      if read_files else "not-read")
        if secret is not None and out["kind"] != "dingtalk":
            ck.error(path + ("secret",) if out["secret"] else path + ("secret_file",),
                     f"a signing secret is for kind \"dingtalk\" only, this sink is {quote(out['kind'])}")
        cfg.sinks.append(SinkConfig(name=name, kind=out["kind"], url=out["url"], secret=secret,
                                    events=tuple(out["events"]), min_severity=out["min_severity"],
                                    scopes=tuple(out["scopes"]), lang=out["lang"],
                                    rate_per_min=out["rate_per_min"], queue=out["queue"], retries=out["retries"],
                                    timeout_s=out["timeout_s"]))
    if ck.issues:
        raise SourcesError(sorted(ck.issues, key=lambda x: (x.line or 0)))
    return cfg


def load_sources(path: str | Path) -> SourcesConfig:
    """Read and validate a sources file (relative secret and token files resolve next to it)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise SourcesError([LayoutIssue(str(p), None, "", f"cannot read: {e.strerror}")]) from None
    except UnicodeDecodeError as e:
        raise SourcesError([LayoutIssue(str(p), None, "", f"not UTF-8 text (byte {e.start})")]) from None
    return parse_sources(text, str(p), p.resolve().parent)


__all__ = ["KpiQuery", "PrometheusSource", "SinkConfig", "SourcesConfig", "SourcesError", "load_sources",
           "parse_sources", "SINK_KINDS", "NOTIFY_EVENTS", "LANGS"]
