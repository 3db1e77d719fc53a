"""REPLAY on a wall window (issue 16): keys, the frame and header, the replay clock as the
panels' "now", sounds off, Esc back to LIVE, rewind to an incident's opening. A scripted
replay client (the real one against a real hub: test_wall_replay_source.py and the last
test here)."""
from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from test_app_shell import NOW, Clock, FakeFeed, demo_events, wall  # noqa: F401 (the fixture)
from test_feed import wait_for
from wallboard import layout as L
from wallboard import protocol as P
from wallboard.app.controller import WallController
from wallboard.app.replay import REPLAY_COLOR, replay_clock_text
from wallboard.state import LiveState


class FakeReplay:
    """A replay client: the test pushes items; seek/speed are recorded."""

    def __init__(self, at: float, speed: float) -> None:
        self.at, self.speed = at, speed
        self.items: list = []
        self.seeks: list[float] = []
        self.speeds: list[float] = []
        self.started = self.stopped = False

    def start(self):
        self.started = True

    def stop(self, timeout=None):
        self.stopped = True

    def drain(self, n):
        out, self.items = self.items[:n], self.items[n:]
        return out

    def resync(self, since):
        pass

    def replay_clock(self):
        return self.at

    def seek(self, at):
        self.seeks.append(at)
        self.at = at

    def set_speed(self, x):
        self.speeds.append(x)
        self.speed = x


def past_snapshot(at: float) -> dict:
    """The state as it was: the demo without its P1 incident."""
    st = LiveState()
    evs = [e for e in demo_events(at) if e["type"] != "incident"]
    for i, e in enumerate(evs):
        e["seq"] = i + 1
    st.apply(evs, at)
    return st.snapshot(now=at)


@pytest.fixture
def replaying(wall):  # noqa: F811
    ctl, feed, clock, lay_dir = wall
    made: list[FakeReplay] = []

    def factory(at, speed):
        made.append(FakeReplay(at, speed))
        return made[-1]

    ctl.rewind.client_factory = factory
    feed.items.append(("heartbeat", P.Heartbeat(seq=ctl.state.seq, time=clock.t)))   # the hub's clock
    ctl.frame()
    return ctl, feed, clock, made


def press(w, key, mods=Qt.KeyboardModifier.NoModifier, qtbot=None):
    from PySide6.QtGui import QKeyEvent
    from PySide6.QtCore import QEvent

    ev = QKeyEvent(QEvent.Type.KeyPress, key, mods)
    w.keyPressEvent(ev)


def test_bracket_starts_replay_a_minute_ago_framed_and_labelled(replaying, tmp_path):
    ctl, feed, clock, made = replaying
    w = ctl.windows[0]
    live_page = w.current_page()
    press(w, Qt.Key.Key_BracketLeft)
    assert len(made) == 1 and made[0].started and made[0].at == pytest.approx(NOW - 60)
    assert w.replay is not None and w.stack.currentWidget() is w.replay.page
    assert w.current_page() is live_page                       # the live page is still there
    # until the state then arrives: NO DATA, saying why
    assert all("REPLAY: waiting for the state at" in f.no_data for f in w.replay.page.panels)
    made[0].state = type("S", (), {"state": "CONNECTING"})()
    assert w.replay.text("en").endswith(" x1 · CONNECTING")                  # the link, said
    made[0].state.state = "LIVE"
    made[0].items.append(("snapshot", past_snapshot(NOW - 60)))
    assert wait_for(lambda: (ctl.frame(), w.replay.driver.stats.snapshots == 1)[1])   # loaded off the UI thread
    ctl.frame()
    ctl._second(clock())
    assert not any(f.no_data for f in w.replay.page.panels)
    pill = replay_clock_text(NOW - 60, 1.0, "en")
    assert pill.startswith("REPLAY ") and pill.endswith(" x1")
    assert w.header.texts()[3] == pill
    assert {f.replay_text for f in w.replay.page.panels} == {pill}
    assert w.replay_frame.isVisible() and w.scrub.isVisible()
    # keys reach the window, not a panel (the map would take + / - as zoom)
    assert all(c.focusPolicy() == Qt.FocusPolicy.NoFocus for c in w.replay.page.findChildren(QWidget))
    # the replay state is the past (no incident yet), the live one the present
    assert not w.replay.state.incidents and "inc-1" in ctl.state.incidents
    # inside the window "now" is the replay clock
    board = next(f.widget for f in w.replay.page.panels if f.kind == "incident_board")
    assert board._now == pytest.approx(NOW - 60) and board.ctx.send_control is None
    img = w.grab().toImage()
    img.save(str(tmp_path / "replay.png"))
    assert QColor(img.pixel(2, img.height() // 2)).name() == QColor(REPLAY_COLOR).name()   # the frame
    assert QColor(img.pixel(img.width() // 2, img.height() - 3)).name() == QColor(REPLAY_COLOR).name()


def test_keys_move_pause_and_speed_the_replay_then_esc_is_live_at_once(replaying):
    ctl, feed, clock, made = replaying
    w = ctl.windows[0]
    press(w, Qt.Key.Key_BracketLeft)
    r = made[0]
    press(w, Qt.Key.Key_BracketLeft)                                         # another minute back
    press(w, Qt.Key.Key_BraceLeft, Qt.KeyboardModifier.ShiftModifier)        # Shift+[: ten
    press(w, Qt.Key.Key_BracketRight)
    assert r.seeks == pytest.approx([NOW - 120, NOW - 720, NOW - 660])
    press(w, Qt.Key.Key_BracketRight, Qt.KeyboardModifier.ShiftModifier)
    press(w, Qt.Key.Key_BracketRight, Qt.KeyboardModifier.ShiftModifier)     # never past the present
    assert r.seeks[-1] == pytest.approx(NOW)
    press(w, Qt.Key.Key_Space)
    assert r.speeds == [0.0] and w.header.texts()[3].endswith(" PAUSED")
    assert ctl.paused is False                                               # not the rotation's pause
    press(w, Qt.Key.Key_Plus)                                                # resumes, faster
    press(w, Qt.Key.Key_Plus)
    press(w, Qt.Key.Key_Minus)
    assert r.speeds == [0.0, 2.0, 4.0, 2.0] and w.header.texts()[3].endswith(" x2")
    played = []
    ctl.sound.play = lambda *a: played.append(a)
    ctl._alert(clock.t + 100)                                                # a P1 is open, live
    assert played == [] and "MUTED" in w.header.texts()[4]                   # sounds off while replaying
    press(w, Qt.Key.Key_Escape)
    assert w.replay is None and r.stopped and w.stack.currentWidget() is w.current_page()
    assert w.header.texts()[3] == "LIVE" and not w.replay_frame.isVisible() and not w.scrub.isVisible()
    ctl._alert(clock.t + 200)
    assert played                                                            # and on again


def test_a_click_on_the_scrub_bar_seeks_there(replaying, qtbot):
    ctl, feed, clock, made = replaying
    w = ctl.windows[0]
    press(w, Qt.Key.Key_BracketLeft)
    ctl._second(clock())
    bar = w.scrub
    track = bar._track()
    x = track.left() + track.width() / 2                      # the middle of the last hour
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=QPointF(x, track.center().y()).toPoint())
    assert made[0].seeks == pytest.approx([NOW - 1800], abs=60)


def test_rewind_to_an_incident_opening_from_the_board_menu_and_the_r_key(replaying, qtbot):
    ctl, feed, clock, made = replaying
    w = ctl.windows[0]
    page = w.current_page()
    board = next(f.widget for f in page.panels if f.kind == "incident_board")
    board.grab()                                                             # paints: rows get hit boxes
    row_rect = next(rect for rect, kind, ident in board._hits if ident == "inc-1")
    menu = board.context_menu(row_rect.center())
    labels = [a.text() for a in menu.actions()]
    assert labels == ["Acknowledge", "Rewind to its opening"]
    menu.actions()[1].trigger()
    opened = ctl.state.incidents["inc-1"]["opened_at"]
    assert len(made) == 1 and made[0].at == pytest.approx(opened - 60)
    press(w, Qt.Key.Key_R)                                                   # replaying: R seeks there again
    assert made[0].seeks == pytest.approx([opened - 60])
    press(w, Qt.Key.Key_Escape)
    press(w, Qt.Key.Key_R)                                                   # live: R starts it
    assert len(made) == 2 and made[1].at == pytest.approx(opened - 60)


def test_a_layout_switch_ends_the_replay_and_no_hub_feed_says_so(replaying):
    ctl, feed, clock, made = replaying
    w = ctl.windows[0]
    press(w, Qt.Key.Key_BracketLeft)
    press(w, Qt.Key.Key_PageDown)                                            # a live act: LIVE first
    assert w.replay is None and made[0].stopped
    ctl.rewind.client_factory = lambda at, speed: None
    press(w, Qt.Key.Key_BracketLeft)
    assert w.replay is None and ctl.rewind.error == "REPLAY needs a hub feed"
    assert "REPLAY needs a hub feed" in w.status_line.text()


def test_chinese_replay_texts():
    assert replay_clock_text(NOW, 4, "zh").startswith("回放 ") and replay_clock_text(NOW, 4, "zh").endswith(" x4")
    assert replay_clock_text(NOW, 0, "zh").endswith(" 已暂停")
    from wallboard.widgets.base import translate

    for text in ("[ / ] one minute (Shift: ten) · Space pause · + / - speed · Esc LIVE",
                 "REPLAY: waiting for the state at", "REPLAY needs a hub feed", "Rewind to its opening"):
        assert translate(text, "zh") != text


def test_replay_against_a_real_hub_beside_the_live_feed(qtbot, tmp_path):
    from wallboard.feed import FeedClient
    from wallboard.hub.auth import Auth
    from wallboard.hub.server import Hub, HubConfig

    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=str(tmp_path / "j.db"), demo="launch-928", speed=10.0,
                        heartbeat_s=0.2), auth=Auth())
    hub.start_in_thread()
    client = FeedClient(hub.url, wall="w1")
    ctl = None
    try:
        client.start()
        ctl = WallController(LiveState(), client, L.load_layout(L.find_layout("overview")), size=(1280, 720))
        for w in ctl.windows:
            qtbot.addWidget(w)
        ctl.start()
        assert wait_for(lambda: (ctl.frame(), ctl.state.seq > 50)[1], timeout=20)
        time.sleep(1.0)
        ctl.frame()
        w = ctl.windows[0]
        press(w, Qt.Key.Key_BracketLeft)                  # a minute ago: before the hub began, empty
        assert w.replay is not None
        assert wait_for(lambda: (ctl.frame(), w.replay.driver.stats.snapshots >= 1)[1], timeout=20)
        assert w.replay.state.seq == 0
        for _ in range(6):
            press(w, Qt.Key.Key_Plus)                     # x64: the minute passes in a second
        assert w.header.texts()[3].endswith(" x64")
        assert wait_for(lambda: (ctl.frame(), w.replay.state.seq > 0)[1], timeout=20)
        assert w.replay.state.seq < ctl.state.seq
        assert w.header.texts()[3].startswith("REPLAY ")
        seq = ctl.state.seq
        assert wait_for(lambda: (ctl.frame(), ctl.state.seq > seq)[1], timeout=20)   # live goes on
        press(w, Qt.Key.Key_Escape)
        assert w.replay is None and w.header.texts()[3] in ("LIVE", "STALE")
        assert hub.counters["replays"] == 1
    finally:
        if ctl is not None:
            ctl.shutdown()
        client.stop()
        hub.stop()


def test_replay_on_a_store_page_then_esc_is_the_live_store_page(replaying):
    ctl, feed, clock, made = replaying
    w = ctl.windows[0]
    assert ctl.open_store("sh-002", own_window=False)
    store_page = w.current_page()
    press(w, Qt.Key.Key_BracketLeft)
    assert w.replay is not None and w.replay.page.title == store_page.title
    assert w.replay.page.ctx.scope == store_page.ctx.scope                 # the store's scope
    press(w, Qt.Key.Key_Escape)                                             # LIVE first ...
    assert w.replay is None and w.current_page() is store_page and w.drill
    press(w, Qt.Key.Key_Escape)                                             # ... then the store page closes
    assert not w.drill
