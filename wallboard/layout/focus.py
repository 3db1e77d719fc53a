"""Auto-focus (a layout's ``[[rules]]``): which incident each screen turns to, when it
turns back, and when a rule's sound repeats.

Pure: no Qt, no clock (every call takes ``now``), no I/O. An incident is "open" here when
its status is ``open`` (not yet acknowledged): an acknowledgement from any wall (it
arrives as an ``incident`` event with ``status = "acknowledged"``) ends every focus on it
and silences its sound, on every wall that applies the event.

Typical use by the shell, once a second::

    focus = AutoFocus(layout.rules, default_repeat_s=layout.sound.repeat_s)
    facts = [incident_facts(inc, state.stores) for inc in incidents]
    change = focus.update(facts, now)       # FocusChange(started, ended), ended first
    for f in change.ended: ...              # turn f.screen back (f.reason says why)
    for f in change.started: ...            # turn f.screen to focus_store(f) (or f.rule.layout)
    for hold in focus.sounds_due(now): ...  # most severe first: play one
    focus.dismiss("devices")                # Esc on that screen: back, not again for it

Rules are tried in file order: the first rule that matches an incident names its sound;
each screen takes the most severe matching incident (then the oldest), and a focus in
place gives way only to a strictly more severe one (it comes back after, its time anew).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from wallboard.layout.model import SEVERITIES, Rule, RuleMatch, Scope

SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
#: Why a focus ended (``Focus.reason``); a status of the incident otherwise
#: (``acknowledged``, ``mitigated``, ``resolved``).
GONE, TIMED_OUT, DISMISSED, PREEMPTED, UNMATCHED = (
    "gone", "timed out", "dismissed", "preempted", "no longer matches")


@dataclass(frozen=True)
class IncidentFacts:
    """What rules match on, for one incident (see :func:`incident_facts`)."""

    id: str
    severity: str
    status: str
    stores: tuple[str, ...] = ()
    cities: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()       # the incident's own and its stores'
    opened_at: float = 0.0
    title: str = ""


def incident_facts(incident: Mapping[str, Any], stores: Mapping[str, Mapping[str, Any]]) -> IncidentFacts:
    """Facts of an incident record; ``stores`` is the state's store table (a store's
    ``city.id`` gives the incident's cities, its ``tags`` join the incident's)."""
    sids = tuple(s for s in incident.get("stores") or () if isinstance(s, str))
    cities: set[str] = set()
    tags = set(incident.get("tags") or ())
    for sid in sids:
        rec = stores.get(sid) or {}
        city = (rec.get("city") or {}).get("id")
        if city:
            cities.add(city)
        tags.update(rec.get("tags") or ())
    opened = incident.get("opened_at")
    return IncidentFacts(
        id=str(incident.get("id", "")), severity=str(incident.get("severity") or "P4"),
        status=str(incident.get("status") or "open"), stores=sids, cities=frozenset(cities),
        kinds=frozenset(incident.get("kinds") or ()), tags=frozenset(tags),
        opened_at=float(opened) if isinstance(opened, (int, float)) else 0.0,
        title=str(incident.get("title") or ""))


def matches(m: RuleMatch, f: IncidentFacts) -> bool:
    """Whether ``f`` meets every criterion ``m`` gives (one value of each is enough;
    stores and cities together are one criterion: where)."""
    if m.severity and f.severity not in m.severity:
        return False
    where = Scope(m.cities, m.stores)
    if not where.chain_wide and not (any(where.contains(s, None) for s in f.stores)
                                     or any(where.contains(None, c) for c in f.cities)):
        return False
    if m.kinds and not f.kinds.intersection(m.kinds):
        return False
    return not m.tags or bool(f.tags.intersection(m.tags))


def focus_store(rule: Rule, f: IncidentFacts, stores: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The store a focus shows: the first of the incident's stores that the rule names (by
    store or by city) and ``stores`` (the state's) holds, else its first store held there;
    None when it has none."""
    where = [s for s in f.stores if s in stores]

    by_rule = Scope(rule.match.cities, rule.match.stores)

    def named(sid: str) -> bool:
        return not by_rule.chain_wide and by_rule.contains(sid, ((stores.get(sid) or {}).get("city") or {}).get("id"))

    return ([s for s in where if named(s)] or where or [None])[0]


@dataclass
class Focus:
    """One screen turned to one incident by one rule, since ``started`` (``until``: when
    it turns back by itself, None: only the acknowledgement or Esc)."""

    screen: str
    rule: Rule
    incident: IncidentFacts
    started: float
    until: float | None
    reason: str = ""                    # why it ended (empty while it lasts)

    @property
    def label(self) -> str:
        """``P1 INC-0928-01``: what the header names."""
        return f"{self.incident.severity} {self.incident.id}"


@dataclass
class Hold:
    """A matched, unacknowledged incident whose sound repeats (the first rule's)."""

    rule: Rule
    incident: IncidentFacts
    last_played: float | None = None


@dataclass
class FocusChange:
    started: list[Focus] = field(default_factory=list)
    ended: list[Focus] = field(default_factory=list)


class AutoFocus:
    """The rules' state on one wall (see the module docstring)."""

    def __init__(self, rules: Sequence[Rule], default_repeat_s: float = 30.0) -> None:
        self.rules = tuple(rules)
        self.default_repeat_s = default_repeat_s
        self.focused: dict[str, Focus] = {}
        self.holds: dict[str, Hold] = {}
        self._spent: set[tuple[str, str]] = set()   # (screen, incident): timed out / dismissed
        self.started = 0
        self.ended = 0

    def update(self, incidents: Iterable[IncidentFacts], now: float) -> FocusChange:
        """Judge ``incidents`` (every incident still in the state, at least the open ones
        and those focused now) at ``now``: the focuses that end and those that start."""
        every = {f.id: f for f in incidents}
        pending = {i: f for i, f in every.items() if f.status == "open"}
        change = FocusChange()
        for screen, foc in list(self.focused.items()):
            cur = every.get(foc.incident.id)
            if cur is None:
                foc.reason = GONE
            elif cur.status != "open":
                foc.reason = cur.status
            elif not matches(foc.rule.match, cur):
                foc.reason = UNMATCHED
            elif foc.until is not None and now >= foc.until:
                foc.reason = TIMED_OUT
                self._spent.add((screen, cur.id))
            else:
                foc.incident = cur
                continue
            self._end(foc, change)
        # an incident acknowledged (or gone) is forgotten: opened again, it turns screens again
        self._spent = {(s, i) for s, i in self._spent if i in pending}
        best: dict[str, tuple[tuple, Rule, IncidentFacts]] = {}
        holds: dict[str, Hold] = {}
        for f in pending.values():
            key = (SEVERITY_RANK.get(f.severity, len(SEVERITIES)), f.opened_at, f.id)
            for rule in self.rules:
                if not matches(rule.match, f):
                    continue
                if f.id not in holds:
                    old = self.holds.get(f.id)
                    holds[f.id] = Hold(rule, f, old.last_played if old is not None else None)
                if (rule.screen, f.id) in self._spent:
                    continue
                if rule.screen not in best or key < best[rule.screen][0]:
                    best[rule.screen] = (key, rule, f)
        self.holds = holds
        for screen, (key, rule, f) in best.items():
            cur = self.focused.get(screen)
            if cur is not None:
                if cur.incident.id == f.id or key[0] >= SEVERITY_RANK.get(cur.incident.severity, len(SEVERITIES)):
                    continue
                cur.reason = PREEMPTED
                self._end(cur, change)
            foc = Focus(screen, rule, f, now, now + rule.for_min * 60.0 if rule.for_min else None)
            self.focused[screen] = foc
            self.started += 1
            change.started.append(foc)
        return change

    def _end(self, foc: Focus, change: FocusChange) -> None:
        self.focused.pop(foc.screen, None)
        self.ended += 1
        change.ended.append(foc)

    def dismiss(self, screen: str) -> Focus | None:
        """Esc on ``screen``: its focus ends (reason ``dismissed``) and that incident does
        not turn it again until it is acknowledged or opened again. Its sound goes on
        until the acknowledgement (M mutes)."""
        foc = self.focused.get(screen)
        if foc is None:
            return None
        foc.reason = DISMISSED
        self._spent.add((screen, foc.incident.id))
        self._end(foc, FocusChange())
        return foc

    def repeat_s(self, hold: Hold) -> float:
        return hold.rule.repeat_s if hold.rule.repeat_s is not None else self.default_repeat_s

    def sounds_due(self, now: float) -> list[Hold]:
        """The holds whose sound is due now (never played, or ``repeat_s`` since), most
        severe first; each is marked played (the shell plays the first)."""
        due = [h for h in self.holds.values()
               if h.last_played is None or now - h.last_played >= self.repeat_s(h)]
        for h in due:
            h.last_played = now
        due.sort(key=lambda h: (SEVERITY_RANK.get(h.incident.severity, len(SEVERITIES)), h.incident.opened_at))
        return due


__all__ = ["AutoFocus", "Focus", "FocusChange", "Hold", "IncidentFacts", "incident_facts", "matches",
           "focus_store", "SEVERITY_RANK", "GONE", "TIMED_OUT", "DISMISSED", "PREEMPTED", "UNMATCHED"]
