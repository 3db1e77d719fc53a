"""The --sources file: every error with file:line, key path and a did-you-mean hint;
`wallboard check-sources`; `wallboard hub --sources` refusing a bad file (exit 2)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from wallboard.hub.sources import SourcesError, load_sources, parse_sources

GOOD = '''
[[prometheus]]
name = "main"
url = "http://127.0.0.1:9090/"
interval_s = 5

[[prometheus.kpi]]
query = 'sum(rate(orders_total[1m]))'
metric = "orders_per_s"
unit = "/s"

[[prometheus.kpi]]
query = 'sum by (store) (queue_length)'
metric = "queue"
scope = "store:{store}"

[[sink]]
kind = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=abc"
secret = "SEC0123"
min_severity = "P2"
lang = "zh"
scopes = ["city:hz"]
'''


def issues(text: str) -> list[str]:
    with pytest.raises(SourcesError) as e:
        parse_sources(text, "s.toml")
    return [str(i) for i in e.value.issues]


def test_a_good_file_with_defaults():
    cfg = parse_sources(GOOD, "s.toml")
    (p,) = cfg.prometheus
    assert (p.name, p.url, p.interval_s, p.timeout_s) == ("main", "http://127.0.0.1:9090", 5.0, 5.0)
    assert [k.scope for k in p.kpis] == ["global", "store:{store}"] and p.kpis[0].unit == "/s"
    assert p.kpis[1].scope_label == "store" and p.kpis[1].scope_for({"store": "hz-001"}) == "store:hz-001"
    assert p.kpis[1].scope_for({"city": "hz"}) is None and p.kpis[0].scope_for({}) == "global"
    (s,) = cfg.sinks
    assert (s.name, s.kind, s.secret, s.min_severity, s.lang, s.scopes) == (
        "dingtalk-1", "dingtalk", "SEC0123", "P2", "zh", ("city:hz",))
    assert s.events == ("open", "acknowledge", "resolve") and s.rate_per_min == 20 and s.retries == 5


@pytest.mark.parametrize("text, want", [
    ('[[prometheus]]\nurl = "http://x:9090"\nintervl_s = 5\n[[prometheus.kpi]]\nquery = "up"\nmetric = "m"\n',
     ['s.toml:3: prometheus[0].intervl_s: unknown key (did you mean "interval_s"?); expected one of: name, url, '
      'interval_s, timeout_s, bearer_token_file, kpi']),
    ('[[prometheus]]\nurl = "http://x:9090"\n',
     ["s.toml:1: prometheus[0].kpi: missing required key (an array of [[prometheus.kpi]] tables)"]),
    ('[[prometheus]]\nurl = "x:9090"\n[[prometheus.kpi]]\nquery = "up"\nmetric = "m"\n',
     ['s.toml:2: prometheus[0].url: expected an http:// or https:// URL, got "x:9090"']),
    ('[[prometheus]]\nurl = "http://x"\n[[prometheus.kpi]]\nquery = "up"\nmetric = "m"\nscope = "store:store"\n',
     ['s.toml:6: prometheus[0].kpi[0].scope: expected "global", "city:{label}" or "store:{label}", got '
      '"store:store" (a label name in braces: "store:{store}")']),
    ('[[prometheus]]\nurl = "http://x"\n[[prometheus.kpi]]\nquery = "up"\nmetrc = "m"\n',
     ["s.toml:3: prometheus[0].kpi[0].metric: missing required key (a string)",
      's.toml:5: prometheus[0].kpi[0].metrc: unknown key (did you mean "metric"?); expected one of: query, '
      'metric, unit, scope']),
    ('[[prometheus]]\nurl = "http://x"\ninterval_s = 5\ntimeout_s = 9\n[[prometheus.kpi]]\nquery = "up"\nmetric = "m"\n',
     ["s.toml:4: prometheus[0].timeout_s: 9 s is longer than interval_s (5 s)"]),
    ('[[sink]]\nkind = "dingtlk"\nurl = "https://x"\n',
     ['s.toml:2: sink[0].kind: expected one of "dingtalk", "wecom", "webhook", got "dingtlk" (did you mean '
      '"dingtalk"?)']),
    ('[[sink]]\nkind = "wecom"\nurl = "https://x"\nsecret = "s"\n',
     ['s.toml:4: sink[0].secret: a signing secret is for kind "dingtalk" only, this sink is "wecom"']),
    ('[[sink]]\nkind = "webhook"\nurl = "https://x"\nevents = ["open", "close"]\nmin_severity = "P0"\n',
     ['s.toml:4: sink[0].events[1]: expected one of "open", "acknowledge", "resolve", got "close"',
      's.toml:5: sink[0].min_severity: expected one of "P1", "P2", "P3", "P4", got "P0"']),
    ('[[sink]]\nkind = "webhook"\nurl = "https://x"\nscopes = ["hz"]\n',
     ['s.toml:4: sink[0].scopes[0]: expected "store:ID" or "city:ID", got "hz"']),
    ('[[sink]]\nname = "a"\nkind = "webhook"\nurl = "https://x"\n[[sink]]\nname = "a"\nkind = "wecom"\nurl = "https://y"\n',
     ['s.toml:6: sink[1].name: name "a" is used twice (also at sink[0].name)']),
    ('[[sinks]]\nkind = "webhook"\n',
     ['s.toml:1: sinks: unknown key (did you mean "sink"?); expected one of: prometheus, sink']),
    ('', ["s.toml: no [[prometheus]] and no [[sink]] table: nothing to run"]),
    ('[[sink]\n', ["s.toml:1:7: TOML syntax error: Expected ']]' at the end of an array declaration"]),
])
def test_errors_name_line_path_and_hint(text, want):
    assert issues(text) == want


def test_secret_file_relative_to_the_file_and_its_errors(tmp_path):
    (tmp_path / "ding.secret").write_text("SECabc\n")
    f = tmp_path / "s.toml"
    f.write_text('[[sink]]\nkind = "dingtalk"\nurl = "https://x"\nsecret_file = "ding.secret"\n')
    assert load_sources(f).sinks[0].secret == "SECabc"
    f.write_text('[[sink]]\nkind = "dingtalk"\nurl = "https://x"\nsecret_file = "nope.secret"\n')
    with pytest.raises(SourcesError, match=r"s.toml:4: sink\[0\].secret_file: cannot read the secret file .*nope"
                                           r".secret': No such file or directory"):
        load_sources(f)
    (tmp_path / "empty.secret").write_text("\n")
    f.write_text('[[sink]]\nkind = "dingtalk"\nurl = "https://x"\nsecret_file = "empty.secret"\n')
    with pytest.raises(SourcesError, match="is empty"):
        load_sources(f)
    with pytest.raises(SourcesError, match="missing.toml: cannot read: No such file or directory"):
        load_sources(tmp_path / "missing.toml")


def test_check_sources_and_hub_refuse_a_bad_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[prometheus]]\nurl = "http://127.0.0.1:9"\nintervl_s = 5\n[[prometheus.kpi]]\nquery = "up"\n'
                   'metric = "m"\n')
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    r = subprocess.run([sys.executable, "-m", "wallboard.cli", "check-sources", str(good)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "ok: 1 Prometheus source(s) with 2 KPI queries, 1 sink(s)" in r.stdout
    r = subprocess.run([sys.executable, "-m", "wallboard.cli", "check-sources", str(bad)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and f"{bad}:3: prometheus[0].intervl_s: unknown key" in r.stderr
    r = subprocess.run([sys.executable, "-m", "wallboard.cli", "hub", "--port", "0", "--sources", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("wallboard hub: 1 error(s) in the sources file\n")
    assert "did you mean \"interval_s\"?" in r.stderr
