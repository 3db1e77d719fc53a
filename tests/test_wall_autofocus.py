"""Auto-focus on the wall (issue 16, a layout's ``[[rules]]``), offscreen with a scripted
feed: a matching P1 turns the rule's screen to its store page, the rotation pauses, the
header says why, the rule's sound repeats; the acknowledgement (an event from the feed)
turns it back and silences it; Esc, the time limit, a rule's own layout and the Chinese
header. (The real hub and X server: see the report of issue 16.)"""
from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent

from test_app_shell import NOW, Clock, FakeFeed, demo_events
from wallboard import layout as L
from wallboard import protocol as P
from wallboard.app.controller import WallController
from wallboard.state import LiveState

RULE = """
[[rules]]
name = "p1-shanghai"
screen = "devices"
for_min = 2
sound = "p1_urgent"
repeat_s = 10
[rules.match]
severity = ["P1"]
cities = ["sh"]
"""


class Wall:
    def __init__(self, ctl: WallController, feed: FakeFeed, clock: Clock) -> None:
        self.ctl, self.feed, self.clock = ctl, feed, clock
        self.seq = ctl.state.seq

    def send(self, *events: dict) -> None:
        out = []
        for e in events:
            self.seq += 1
            out.append(P.validate_event({"ts": self.clock.t, **e, "seq": self.seq}))
        self.feed.items.append(("events", out))

    def tick(self, seconds: float = 1.0) -> None:
        self.clock.t += seconds
        self.ctl.frame()

    @property
    def rotating(self):
        return next(w for w in self.ctl.windows if w.rotating)

    def key(self, w, key) -> None:
        w.keyPressEvent(QKeyEvent(QEvent.Type.KeyPress, key, Qt.KeyboardModifier.NoModifier))


def make_wall(qtbot, tmp_path, rules: str = RULE, lang: str = "en") -> Wall:
    lay_dir = tmp_path / "layouts"
    shutil.copytree(L.DEFAULT_LAYOUT_DIR, lay_dir)
    path = lay_dir / "launch-928.toml"
    path.write_text(path.read_text(encoding="utf-8") + rules, encoding="utf-8")
    clock = Clock(NOW)
    feed = FakeFeed()
    ctl = WallController(LiveState(), feed, L.load_layout(path), size=(1600, 900), layout_dirs=[lay_dir],
                         clock=clock, lang=lang)
    for w in ctl.windows:
        qtbot.addWidget(w)
    ctl.start()
    feed.items.append(("events", demo_events(NOW)))
    ctl.frame()                      # the first frame runs the once-a-second part too
    wall = Wall(ctl, feed, clock)
    wall.seq = ctl.state.seq
    return wall


@pytest.fixture
def wall(qtbot, tmp_path):
    w = make_wall(qtbot, tmp_path)
    yield w
    w.ctl.shutdown()


def test_a_matching_p1_turns_the_screen_until_an_ack_arrives(wall):
    ctl, w = wall.ctl, wall.rotating
    # demo_events holds inc-1: P1, open, in sh-002 (Shanghai)
    assert w.drill and w.current_page().title == "Store Shanghai #2"
    assert w.header.focus_text() == "P1 inc-1: auto-focus, Esc to return"
    assert "Store Shanghai #2" in w.header.texts()[0]
    command = ctl.windows[0]
    assert command is not w and not command.drill and command.header.focus_text() == ""
    assert ctl.sound.played == ["p1_urgent"]
    index = w.page_index
    for _ in range(70):              # 70 s: the rotation (60 s and 30 s pages) is paused
        wall.tick()
    assert w.page_index == index and w.drill
    assert ctl.sound.played.count("p1_urgent") == 8          # at 0, 10, ... 70 s
    assert "p1_alarm" not in ctl.sound.played                # the plain P1 alarm stays out
    wall.send({"type": "incident", "id": "inc-1", "status": "acknowledged", "acknowledged_at": wall.clock.t})
    wall.tick()
    assert not w.drill and w.auto_focus is None and w.header.focus_text() == ""
    assert ctl.focus.status() == {"focused": {}, "started": 1, "ended": 1}
    played = len(ctl.sound.played)
    for _ in range(30):
        wall.tick()
    assert len(ctl.sound.played) == played                   # silenced by the ack
    assert w.page_index == index                             # the page gets its full 60 s again
    for _ in range(31):
        wall.tick()
    assert w.page_index != index                             # and the rotation goes on


def test_time_limit_then_esc_and_another_incident(wall):
    ctl, w = wall.ctl, wall.rotating
    for _ in range(119):
        wall.tick()
    assert w.drill
    wall.tick()                                              # for_min = 2
    assert not w.drill and w.auto_focus is None
    wall.tick(5)
    assert not w.drill                                       # not again for the same incident
    wall.send({"type": "incident", "id": "inc-7", "title": "Payments down", "severity": "P1", "status": "open",
               "stores": ["sh-003"], "opened_at": wall.clock.t})
    wall.tick()
    assert w.current_page().title == "Store Shanghai #3"
    assert w.header.focus_text() == "P1 inc-7: auto-focus, Esc to return"
    ctl.open_store("hz-001", own_window=False)               # a store opened over it (window 0)
    wall.key(w, Qt.Key.Key_Escape)
    assert not w.drill and w.auto_focus is None
    wall.tick()
    assert not w.drill                                       # Esc: not again for this incident


def test_an_incident_elsewhere_or_less_severe_leaves_the_screen_alone(qtbot, tmp_path):
    wall = make_wall(qtbot, tmp_path, RULE.replace('cities = ["sh"]', 'cities = ["hz"]'))
    try:
        w = wall.rotating
        assert not w.drill
        wall.send({"type": "incident", "id": "inc-3", "title": "Scale down", "severity": "P3", "status": "open",
                   "stores": ["hz-001"], "opened_at": wall.clock.t})
        wall.tick()
        assert not w.drill
        wall.send({"type": "incident", "id": "inc-3", "severity": "P1"})     # raised to P1
        wall.tick()
        assert w.current_page().title == "Store Hangzhou #1"
    finally:
        wall.ctl.shutdown()


def test_a_rule_layout_and_the_chinese_header(qtbot, tmp_path):
    rules = RULE.replace('for_min = 2', 'for_min = 2\nlayout = "double-11"')
    wall = make_wall(qtbot, tmp_path, rules, lang="zh")
    try:
        w = wall.rotating
        first = L.load_layout(L.find_layout("double-11")).screens[0]
        assert w.drill and w.current_page().screen_spec.name == first.name
        assert w.header.focus_text() == "P1 inc-1：自动聚焦，按 Esc 返回"
    finally:
        wall.ctl.shutdown()


def test_a_missing_rule_layout_falls_back_to_the_store_page_and_says_why(qtbot, tmp_path):
    wall = make_wall(qtbot, tmp_path, RULE.replace('for_min = 2', 'for_min = 2\nlayout = "paymnets"'))
    try:
        w = wall.rotating
        assert w.current_page().title == "Store Shanghai #2"
        assert wall.ctl.focus.error.startswith('auto-focus p1-shanghai: no layout named "paymnets"')
        assert wall.ctl.focus.error in w.status_line.text()
    finally:
        wall.ctl.shutdown()


def test_focus_screenshot(wall, tmp_path):
    """The focused window as drawn (looked at when written: the red pill left of the clock)."""
    w = wall.rotating
    w.resize(1600, 900)
    wall.tick()
    img = w.grab().toImage()
    out = tmp_path / "focus.png"
    assert img.save(str(out)) and out.stat().st_size > 10_000


def test_an_incident_without_a_store_turns_the_rotation_to_the_rules_screen(qtbot, tmp_path):
    rules = RULE.replace('screen = "devices"', 'screen = "cities"').replace('cities = ["sh"]', 'tags = ["chain"]')
    wall = make_wall(qtbot, tmp_path, rules)
    try:
        w = wall.rotating
        names = [p.screen_spec.name for p in w.pages]
        assert names[w.page_index] == "devices" and not w.drill
        wall.send({"type": "incident", "id": "inc-9", "title": "Payments down chain-wide", "severity": "P1",
                   "status": "open", "stores": [], "opened_at": wall.clock.t, "tags": ["chain"]})
        wall.tick()
        assert names[w.page_index] == "cities" and not w.drill and w.auto_focus is not None
        for _ in range(40):                                   # the cities page is 30 s: paused
            wall.tick()
        assert names[w.page_index] == "cities"
        wall.send({"type": "incident", "id": "inc-9", "status": "resolved", "resolved_at": wall.clock.t})
        wall.tick()
        assert names[w.page_index] == "devices" and w.auto_focus is None   # back where it was
    finally:
        wall.ctl.shutdown()
