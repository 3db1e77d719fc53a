"""``[[rules]]`` in a layout (issue 16, "turning to what matters"): the schema with its
precise errors, and the pure auto-focus engine (wallboard.layout.focus): matching,
focus and return, acknowledgement, time limit, Esc, preemption, sound repeats."""
from __future__ import annotations

import pytest

from wallboard.layout import LayoutError, Rule, RuleMatch, check_layout_files, load_layout_text
from wallboard.layout.focus import (
    DISMISSED, GONE, PREEMPTED, TIMED_OUT, UNMATCHED, AutoFocus, IncidentFacts, focus_store,
    incident_facts, matches,
)

BASE = """\
[event]
title = "Test"

[[screens]]
name = "command"
[[screens.panels]]
type = "incident_board"
at = [0, 0]

[[screens]]
name = "devices"
[[screens.panels]]
type = "device_grid"
at = [0, 0]
"""

GOOD = BASE + """
[[rules]]
name = "p1-launch"
screen = "devices"
for_min = 5
sound = "p1_urgent"
repeat_s = 10
[rules.match]
severity = ["P1"]
cities = ["shanghai"]
kinds = ["self_checkout"]
tags = ["payments"]

[[rules]]
screen = "command"
match = { severity = ["P1", "P2"], stores = ["sh-001"] }
"""


def errors(text: str) -> list[str]:
    with pytest.raises(LayoutError) as exc:
        load_layout_text(text, "t.toml")
    return [str(i) for i in exc.value.issues]


def test_rules_load_with_defaults():
    lay = load_layout_text(GOOD, "t.toml")
    assert lay.rules == (
        Rule("p1-launch", "devices", RuleMatch(("P1",), (), ("shanghai",), ("self_checkout",), ("payments",)),
             None, 5.0, "p1_urgent", 10.0),
        Rule("rules[1]", "command", RuleMatch(("P1", "P2"), ("sh-001",)), None, 10.0, None, None),
    )
    assert load_layout_text(BASE, "t.toml").rules == ()


@pytest.mark.parametrize("rule,message", [
    ('screen = "devcies"\nmatch = { severity = ["P1"] }',
     't.toml:17: rules[0].screen: no screen named "devcies" (did you mean "devices"?); screens: command, devices'),
    ('screen = "devices"\nmatch = { severity = ["P5"] }',
     't.toml:18: rules[0].match.severity[0]: expected one of "P1", "P2", "P3", "P4", got "P5"'),
    ('screen = "devices"\nmatch = { severity = "P1" }',
     't.toml:18: rules[0].match.severity: expected an array of severities, e.g. ["P1", "P2"], got a string ("P1")'),
    ('screen = "devices"\nmatch = { citys = ["sh"] }',
     't.toml:18: rules[0].match.citys: unknown key (did you mean "cities"?); expected one of: severity, '
     'stores, cities, kinds, tags'),
    ('screen = "devices"\nmatch = {}',
     't.toml:18: rules[0].match: matches every incident: name at least one of severity, stores, cities, kinds, tags'),
    ('screen = "devices"',
     't.toml:16: rules[0].match: missing required key (a table {severity, stores, cities, kinds, tags})'),
    ('match = { severity = ["P1"] }', 't.toml:16: rules[0].screen: missing required key (a string)'),
    ('screen = "devices"\nmatch = { severity = ["P1"] }\nlayuot = "x"',
     't.toml:19: rules[0].layuot: unknown key (did you mean "layout"?); expected one of: name, screen, match, '
     'layout, for_min, sound, repeat_s'),
    ('screen = "devices"\nmatch = { severity = ["P1"] }\nlayout = "../etc/passwd"',
     't.toml:19: rules[0].layout: expected a layout name (not a path), got "../etc/passwd"'),
    ('screen = "devices"\nmatch = { severity = ["P1"] }\nsound = "p1_alarn"',
     't.toml:19: rules[0].sound: expected one of "p1_alarm", "p1_urgent", "p2_chime", "none", got "p1_alarn" '
     '(did you mean "p1_alarm"?)'),
    ('screen = "devices"\nmatch = { severity = ["P1"] }\nrepeat_s = 1',
     't.toml:19: rules[0].repeat_s: out of range: 1; expected a number at least 2 and at most 3600'),
    ('screen = "devices"\nmatch = { severity = ["P1"] }\nfor_min = -1',
     't.toml:19: rules[0].for_min: out of range: -1; expected a number at least 0 and at most 1440'),
    ('screen = "devices"\nmatch = { kinds = ["pos", "pos"] }',
     't.toml:18: rules[0].match.kinds[1]: duplicate entry "pos"'),
])
def test_rule_errors_are_precise(rule, message):
    assert errors(BASE + "\n[[rules]]\n" + rule + "\n") == [message]


def test_a_bad_rule_still_gets_its_screen_and_name_checked():
    text = BASE + """
[[rules]]
name = "p1"
screen = "devcies"
match = { severity = ["P9"] }

[[rules]]
name = "p1"
screen = "devices"
match = { severity = ["P1"] }
"""
    assert errors(text) == [
        't.toml:18: rules[0].screen: no screen named "devcies" (did you mean "devices"?); screens: command, devices',
        't.toml:19: rules[0].match.severity[0]: expected one of "P1", "P2", "P3", "P4", got "P9"',
        't.toml:22: rules[1].name: duplicate rule name "p1" (also rules[0])',
    ]


def test_rules_are_refused_in_the_store_page_and_when_not_tables():
    store = BASE.replace('[event]', 'kind = "store"\n[event]') + '\n[[rules]]\nscreen = "devices"\nmatch = { severity = ["P1"] }\n'
    assert errors(store) == ['t.toml:17: rules: a kind = "store" layout (the store page) has no [[rules]]: '
                             "put them in the wall's event layout"]
    assert errors("rules = [1]\n" + BASE) == ["t.toml:1: rules[0]: expected a table (one [[rules]]), got an integer (1)"]


def test_check_layout_finds_a_rule_layout_next_to_the_file_or_says_it_is_missing(tmp_path):
    good = tmp_path / "wall.toml"
    good.write_text(BASE + '\n[[rules]]\nscreen = "devices"\nlayout = "payments"\nmatch = { severity = ["P1"] }\n')
    ok, report = check_layout_files([good])
    assert not ok
    assert f'{good}:18: rules[0].layout: no layout named "payments"' in report
    (tmp_path / "payments.toml").write_text(BASE)
    ok, report = check_layout_files([good])
    assert ok, report
    shipped = tmp_path / "shipped.toml"       # a shipped layout's name is found too
    shipped.write_text(BASE + '\n[[rules]]\nscreen = "devices"\nlayout = "double-11"\nmatch = { severity = ["P1"] }\n')
    assert check_layout_files([shipped])[0]


# --------------------------------------------------------------------------- matching

STORES = {
    "sh-001": {"id": "sh-001", "city": {"id": "shanghai"}, "tags": ["launch"]},
    "hz-001": {"id": "hz-001", "city": {"id": "hangzhou"}},
}


def inc(iid="INC-1", severity="P1", status="open", stores=("sh-001",), opened_at=100.0, **kw):
    return {"type": "incident", "id": iid, "severity": severity, "status": status, "stores": list(stores),
            "opened_at": opened_at, "title": "t", **kw}


def facts(**kw) -> IncidentFacts:
    return incident_facts(inc(**kw), STORES)


def test_facts_take_cities_and_tags_from_the_stores():
    f = facts(stores=("sh-001", "hz-001", "nowhere"), tags=["payments"], kinds=["pos"])
    assert f.cities == {"shanghai", "hangzhou"} and f.tags == {"payments", "launch"} and f.kinds == {"pos"}
    assert f.stores == ("sh-001", "hz-001", "nowhere") and f.opened_at == 100.0


@pytest.mark.parametrize("m,hit", [
    (RuleMatch(severity=("P1",)), True),
    (RuleMatch(severity=("P2", "P3")), False),
    (RuleMatch(stores=("hz-001",)), False),
    (RuleMatch(stores=("hz-001",), cities=("shanghai",)), True),      # where: a store OR a city
    (RuleMatch(cities=("hangzhou",)), False),
    (RuleMatch(kinds=("self_checkout",)), True),
    (RuleMatch(kinds=("pos",)), False),
    (RuleMatch(tags=("launch",)), True),                              # the store's tag
    (RuleMatch(tags=("payments",)), True),                            # the incident's own
    (RuleMatch(tags=("vip",)), False),
    (RuleMatch(severity=("P1",), kinds=("pos",)), False),             # every criterion must hold
])
def test_match(m, hit):
    f = facts(kinds=["self_checkout"], tags=["payments"])
    assert matches(m, f) is hit


def test_focus_store_prefers_the_store_the_rule_names():
    rule = Rule("r", "devices", RuleMatch(cities=("hangzhou",)))
    f = facts(stores=("nowhere", "sh-001", "hz-001"))
    assert focus_store(rule, f, STORES) == "hz-001"
    assert focus_store(Rule("r", "devices", RuleMatch(severity=("P1",))), f, STORES) == "sh-001"
    assert focus_store(rule, facts(stores=()), STORES) is None


# --------------------------------------------------------------------------- the engine

P1_DEVICES = Rule("p1", "devices", RuleMatch(severity=("P1",)), for_min=5, repeat_s=10)


def test_focus_until_acknowledged_on_any_wall():
    af = AutoFocus([P1_DEVICES])
    ch = af.update([facts()], 1000.0)
    assert [(f.screen, f.incident.id, f.until) for f in ch.started] == [("devices", "INC-1", 1300.0)]
    assert af.focused["devices"].label == "P1 INC-1" and not ch.ended
    assert not af.update([facts()], 1001.0).started                 # holds, no second start
    ch = af.update([facts(status="acknowledged")], 1002.0)          # the ack event, from any wall
    assert [(f.screen, f.reason) for f in ch.ended] == [("devices", "acknowledged")] and not af.focused
    assert af.sounds_due(1003.0) == []                              # silenced with it


def test_resolved_deleted_or_no_longer_matching_ends_it():
    for later, reason in ([facts(status="resolved")], "resolved"), ([], GONE), ([facts(severity="P3")], UNMATCHED):
        af = AutoFocus([P1_DEVICES])
        af.update([facts()], 0.0)
        assert [f.reason for f in af.update(later, 1.0).ended] == [reason]


def test_time_limit_returns_and_does_not_refocus_until_opened_again():
    af = AutoFocus([P1_DEVICES])
    af.update([facts()], 0.0)
    assert not af.update([facts()], 299.0).ended
    ch = af.update([facts()], 300.0)
    assert [f.reason for f in ch.ended] == [TIMED_OUT] and not ch.started
    assert not af.update([facts()], 400.0).started
    assert [h.incident.id for h in af.sounds_due(400.0)] == ["INC-1"]  # the sound waits for the ack
    af.update([facts(status="acknowledged")], 500.0)
    assert [f.incident.id for f in af.update([facts()], 600.0).started] == ["INC-1"]  # opened again


def test_for_min_zero_holds_until_the_ack():
    af = AutoFocus([Rule("r", "devices", RuleMatch(severity=("P1",)), for_min=0)])
    af.update([facts()], 0.0)
    assert af.focused["devices"].until is None and not af.update([facts()], 86400.0).ended


def test_esc_dismisses_for_this_incident_only():
    af = AutoFocus([P1_DEVICES])
    af.update([facts()], 0.0)
    assert af.dismiss("devices").reason == DISMISSED and af.dismiss("devices") is None
    assert not af.update([facts()], 1.0).started
    ch = af.update([facts(), facts(iid="INC-2", opened_at=200.0)], 2.0)
    assert [f.incident.id for f in ch.started] == ["INC-2"]


def test_most_severe_first_and_only_a_more_severe_one_takes_over():
    rule = Rule("r", "devices", RuleMatch(severity=("P1", "P2")))
    af = AutoFocus([rule])
    p2_old, p2_new = facts(iid="A", severity="P2", opened_at=1.0), facts(iid="B", severity="P2", opened_at=2.0)
    assert [f.incident.id for f in af.update([p2_new, p2_old], 0.0).started] == ["A"]   # the oldest
    p1 = facts(iid="C", severity="P1", opened_at=3.0)
    ch = af.update([p2_new, p2_old, p1], 1.0)
    assert [(f.incident.id, f.reason) for f in ch.ended] == [("A", PREEMPTED)]
    assert [f.incident.id for f in ch.started] == ["C"]
    assert not af.update([p2_new, p2_old, p1], 2.0).started
    ch = af.update([p2_new, p2_old, facts(iid="C", severity="P1", status="acknowledged")], 3.0)
    assert [f.incident.id for f in ch.started] == ["A"]            # back to the P2, its time anew


def test_each_screen_its_own_focus_and_the_first_rule_names_the_sound():
    r1 = Rule("a", "devices", RuleMatch(severity=("P1",)), sound="p1_urgent", repeat_s=10)
    r2 = Rule("b", "command", RuleMatch(cities=("shanghai",)), sound="p2_chime", repeat_s=60)
    af = AutoFocus([r1, r2], default_repeat_s=30)
    ch = af.update([facts()], 0.0)
    assert sorted(f.screen for f in ch.started) == ["command", "devices"]
    due = af.sounds_due(0.0)
    assert [(h.incident.id, h.rule.name) for h in due] == [("INC-1", "a")]
    assert af.sounds_due(9.9) == [] and len(af.sounds_due(10.0)) == 1
    af2 = AutoFocus([Rule("c", "devices", RuleMatch(severity=("P1",)))], default_repeat_s=30)
    af2.update([facts()], 0.0)
    assert len(af2.sounds_due(0.0)) == 1 and af2.sounds_due(29.0) == [] and len(af2.sounds_due(30.0)) == 1


def test_sounds_most_severe_first_and_unmatched_incidents_are_not_held():
    af = AutoFocus([Rule("r", "devices", RuleMatch(severity=("P1", "P2")))])
    af.update([facts(iid="B", severity="P2", opened_at=1.0), facts(iid="A", severity="P1", opened_at=5.0),
               facts(iid="Z", severity="P4")], 0.0)
    assert [h.incident.id for h in af.sounds_due(0.0)] == ["A", "B"]
    assert set(af.holds) == {"A", "B"}



DOC_BAD_RULE = BASE.replace('title = "Test"', 'title = "9.28 Grand opening"') + """
[[rules]]
screen = "devcies"
sound = "p1_alarn"
[rules.match]
severity = ["P0"]
citys = ["shanghai"]
"""


def test_the_docs_rule_errors_are_real(tmp_path):
    """docs/layouts.md shows check-layout's report on a rule with four mistakes: the same."""
    from conftest import ROOT

    bad = tmp_path / "focus-bad.toml"
    bad.write_text(DOC_BAD_RULE, encoding="utf-8")
    ok, report = check_layout_files([bad])
    doc = (ROOT / "docs" / "layouts.md").read_text(encoding="utf-8")
    assert not ok and report.count("rules[0]") == 4
    assert "```text\n" + report.replace(str(bad), "focus-bad.toml") + "\n```" in doc
