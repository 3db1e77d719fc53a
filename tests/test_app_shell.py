"""The wall shell with a scripted feed: layouts render, switching, drill-down, STALE,
hot reload of a bad layout, control events, shortcuts. (The real hub is in test_wall_e2e.)"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from wallboard import layout as L
from wallboard import protocol as P
from wallboard.app.controller import WallController
from wallboard.state import LiveState

NOW = time.time()


@dataclass
class FakeStatus:
    state: str = "LIVE"
    heartbeat_s: float = 1.0
    rejects: int = 0
    last_reject: str = ""
    last_message_at: float = 0.0


@dataclass
class FakeFeed:
    """Stands in for FeedClient: the test pushes items, the frame driver drains them."""

    items: list = field(default_factory=list)
    status: FakeStatus = field(default_factory=FakeStatus)
    sent: list = field(default_factory=list)
    resyncs: list = field(default_factory=list)

    @property
    def state(self):
        return self.status

    def drain(self, max_items):
        out, self.items = self.items[:max_items], self.items[max_items:]
        return out

    def resync(self, since):
        self.resyncs.append(since)

    def send_control(self, command, args):
        self.sent.append((command, args))


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def demo_events(now: float) -> list[dict]:
    evs: list[dict] = []
    cities = [("sh", "上海", "Shanghai", 31.23, 121.47), ("hz", "杭州", "Hangzhou", 30.27, 120.15)]
    for ci, (cid, cname, cen, lat, lon) in enumerate(cities):
        for k in range(3):
            sid = f"{cid}-00{k + 1}"
            evs.append({"type": "store", "id": sid, "ts": now, "name": f"{cname}{k + 1}号店",
                        "name_en": f"{cen} #{k + 1}", "city": {"id": cid, "name": cname, "name_en": cen},
                        "lat": lat + k * 0.03, "lon": lon + k * 0.03, "status": "open"})
            for d, kind in enumerate(["pos", "pos", "self_checkout", "scale", "camera", "ap"]):
                evs.append({"type": "device", "id": f"{sid}-{kind}-{d}", "ts": now, "store": sid, "kind": kind,
                            "name": f"{kind} {d}", "status": "crit" if (k == 1 and kind == "self_checkout") else "ok",
                            "metrics": {"cpu": 10 + d}, "ttl_s": 600})
    evs.append({"type": "change", "id": "chg-1", "ts": now, "title": "SCO config push", "system": "sco",
                "owner": "ops", "scope": {"stores": ["sh-002"]}, "status": "failed", "start": now - 600,
                "end": now - 300, "approved": False, "risk": "high"})
    evs.append({"type": "incident", "id": "inc-1", "ts": now, "title": "Self-checkout down", "severity": "P1",
                "status": "open", "stores": ["sh-002"], "owner": "duty", "opened_at": now - 200})
    for i in range(20):
        evs.append({"type": "kpi", "ts": now - 60 + i * 3, "metric": "orders_per_s", "scope": "global",
                    "value": 100 + i, "unit": "1/s"})
        evs.append({"type": "voice", "ts": now - 60 + i * 3, "channel": "app", "text": f"排队 {i}",
                    "sentiment": -0.5, "topic": "queue", "store": "sh-001"})
    for i, e in enumerate(evs):
        e["seq"] = i + 1
        P.validate_event(e)
    return evs


@pytest.fixture
def wall(qtbot, tmp_path):
    """A controller on the overview layout with a scripted feed, already fed."""
    clock = Clock(NOW)
    feed = FakeFeed()
    state = LiveState()
    lay_dir = tmp_path / "layouts"
    shutil.copytree(L.DEFAULT_LAYOUT_DIR, lay_dir)
    layout = L.load_layout(lay_dir / "overview.toml")
    ctl = WallController(state, feed, layout, size=(1600, 900), layout_dirs=[lay_dir], clock=clock)
    for w in ctl.windows:
        qtbot.addWidget(w)
    ctl.start()
    feed.items.append(("events", demo_events(NOW)))
    ctl.frame()
    yield ctl, feed, clock, lay_dir
    ctl.shutdown()


def test_frame_applies_feed_and_header_shows_live(wall):
    ctl, feed, clock, _ = wall
    assert ctl.state.seq > 0 and len(ctl.state.devices) == 36
    clock.t += 1.1
    feed.items.append(("heartbeat", P.Heartbeat(seq=ctl.state.seq, time=clock.t)))
    ctl.frame()
    title, clk, countdown, feed_text, counters = ctl.windows[0].header.texts()
    assert feed_text == "LIVE"
    assert "ev/s" in counters


@pytest.mark.parametrize("name", [p.stem for p in L.list_layouts(L.DEFAULT_LAYOUT_DIR)])
def test_every_shipped_layout_renders(qtbot, name, tmp_path):
    clock = Clock(NOW)
    feed = FakeFeed()
    layout = L.load_layout(L.find_layout(name))
    if layout.kind == "store":
        layout = L.bind_store(layout, "sh-002", "sh", "上海2号店")
    ctl = WallController(LiveState(), feed, layout, size=(1280, 720), clock=clock)
    for w in ctl.windows:
        qtbot.addWidget(w)
    ctl.start()
    feed.items.append(("events", demo_events(NOW)))
    ctl.frame()
    clock.t += 1.5
    ctl.frame()
    from wallboard.app import panels

    for w in ctl.windows:
        for page in w.pages:
            for frame in page.panels:
                assert frame.widget is not None, frame.error
                assert not frame.error, frame.error
        img = w.grab().toImage()
        assert img.width() >= 1000
        out = tmp_path / f"{name}.png"
        assert w.grab().save(str(out))
    assert not panels.build_failures, panels.build_failures
    ctl.shutdown()


def test_control_switch_layout_switches_and_old_controls_are_ignored(wall):
    """Replayed controls (seq up to the welcome's) are history, later ones orders: judged
    by seq, whatever the timestamps say (a hub or producer clock an hour off)."""
    ctl, feed, clock, _ = wall
    seq = ctl.state.seq
    welcome = P.Welcome(protocol=1, hub="h", seq=seq + 1, heartbeat_s=1.0)
    old = {"type": "control", "ts": NOW + 3600, "seq": seq + 1, "command": "switch_layout", "layout": "store"}
    new = {"type": "control", "ts": NOW - 3600, "seq": seq + 2, "command": "switch_layout", "layout": "double-11"}
    feed.items.append(("welcome", welcome))
    feed.items.append(("events", [old, new]))
    ctl.frame()
    assert ctl.layout.name == "double-11"
    assert ctl.controls_ignored == 1


def _hub_switch(ctl, feed, layout):
    seq = ctl.state.seq
    feed.items.append(("events", [{"type": "control", "ts": NOW, "seq": seq + 1, "command": "switch_layout",
                                   "layout": layout}]))
    ctl.frame()


@pytest.mark.parametrize("name", ["../../../etc/passwd", "/etc/passwd", "overview.toml", "..",
                                  "a\\b", "x" * 101, "layouts/double-11"])
def test_a_hub_switch_layout_takes_a_name_never_a_path(wall, monkeypatch, name):
    """Issue 13: a hub-pushed ``switch_layout "../../../etc/passwd"`` made the wall parse
    /etc/passwd (a 1 GB file: 1.1 GB RSS). Now a name only: refused before any file is
    opened, said on the status line, counted."""
    ctl, feed, clock, lay_dir = wall
    before = ctl.layout
    touched = []
    monkeypatch.setattr(L, "find_layout", lambda *a, **k: touched.append(a) or L.DEFAULT_LAYOUT_DIR)
    monkeypatch.setattr(L, "load_layout", lambda *a, **k: touched.append(a))
    _hub_switch(ctl, feed, name)
    assert ctl.layout is before and touched == []
    assert ctl.hub_layouts_refused == 1
    text = ctl.windows[0].status_line.text()
    shown = name if len(name) <= 80 else name[:77] + "..."
    assert f'layout from the hub refused "{shown}": not a layout name: expected letters, digits, ' in text
    assert "never a path or a file; known: " in text and "double-11" in text
    assert text.endswith("layouts from the hub refused: 1")


def test_a_hub_switch_to_an_unknown_name_or_the_store_template_is_refused_and_counted(wall):
    ctl, feed, clock, lay_dir = wall
    _hub_switch(ctl, feed, "doubel-11")
    text = ctl.windows[0].status_line.text()
    assert 'layout from the hub refused "doubel-11": no layout named "doubel-11" (did you mean' in text
    _hub_switch(ctl, feed, "store")
    text = ctl.windows[0].status_line.text()
    assert "layout from the hub refused \"store\": 'store' is the store page template" in text
    assert ctl.hub_layouts_refused == 2 and "layouts from the hub refused: 2" in text
    _hub_switch(ctl, feed, "double-11")                  # a good name still switches
    assert ctl.layout.name == "double-11" and "refused \"" not in ctl.windows[0].status_line.text()


def test_a_local_switch_may_still_name_a_file(wall):
    """The operator's own ``--layout PATH`` / keyboard are not the hub: paths stay allowed."""
    ctl, feed, clock, lay_dir = wall
    assert ctl.switch_layout(str(lay_dir / "double-11.toml"))
    assert ctl.layout.name == "double-11" and ctl.hub_layouts_refused == 0


def test_controls_before_a_new_welcome_in_the_same_frame_keep_their_connection(wall):
    ctl, feed, clock, _ = wall
    seq = ctl.state.seq
    feed.items.append(("welcome", P.Welcome(protocol=1, hub="h", seq=seq, heartbeat_s=1.0)))
    live = {"type": "control", "ts": NOW, "seq": seq + 1, "command": "switch_layout", "layout": "double-11"}
    feed.items.append(("events", [live]))                 # live on the first connection
    feed.items.append(("welcome", P.Welcome(protocol=1, hub="h", seq=seq + 5, heartbeat_s=1.0)))
    ctl.frame()                                            # all three in one frame
    assert ctl.layout.name == "double-11" and ctl.controls_ignored == 0


def test_control_banner_and_focus_store(wall):
    ctl, feed, clock, _ = wall
    seq = ctl.state.seq
    feed.items.append(("events", [
        {"type": "control", "ts": NOW, "seq": seq + 1, "command": "banner", "text": "Doors open in 5 min",
         "level": "warn", "ttl_s": 30},
        {"type": "control", "ts": NOW, "seq": seq + 2, "command": "focus_store", "store": "sh-002"},
    ]))
    ctl.frame()
    w = ctl.windows[0]
    assert w.banner.text == "Doors open in 5 min" and not w.banner.isHidden()
    assert len(w.drill) == 1
    clock.t += 31
    ctl.frame()
    assert w.banner.isHidden()


def test_drill_down_opens_on_store_click_and_esc_returns(wall, qtbot):
    ctl, feed, clock, _ = wall
    w = ctl.windows[0]
    base_page = w.current_page()
    assert ctl.open_store("sh-002", own_window=False)
    drill = w.current_page()
    assert drill is not base_page and "sh-002" in drill.title or "上海" in drill.title or "Shanghai" in drill.title
    kinds = {p.kind for p in drill.panels}
    assert "device_grid" in kinds
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert w.current_page() is base_page and not w.drill


def test_drill_down_in_own_window(wall, qtbot):
    ctl, feed, clock, _ = wall
    n = len(ctl.windows)
    assert ctl.open_store("hz-001", own_window=True)
    assert len(ctl.windows) == n + 1
    extra = ctl.windows[-1]
    qtbot.addWidget(extra)
    extra.close()


def test_stale_after_three_missed_heartbeats_dims_and_recovers(wall):
    ctl, feed, clock, _ = wall
    clock.t += 1.0
    ctl.frame()
    assert not ctl.stale
    clock.t += 3.5  # three heartbeat intervals with nothing
    ctl.frame()
    w = ctl.windows[0]
    assert ctl.stale
    assert not w.stale_banner.isHidden() and "STALE" in w.stale_banner.text
    assert all(p.dimmed for p in w.current_page().panels)
    assert w.header.texts()[3].startswith("STALE")
    clock.t += 1.0
    feed.items.append(("heartbeat", P.Heartbeat(seq=ctl.state.seq, time=clock.t)))
    ctl.frame()
    assert not ctl.stale and w.stale_banner.isHidden()
    assert not any(p.dimmed for p in w.current_page().panels)


def test_bad_layout_on_hot_reload_keeps_running_layout(wall):
    ctl, feed, clock, lay_dir = wall
    path = Path(ctl.layout.path)
    before = ctl.layout
    path.write_text(path.read_text() + "\n[event]\ntitel = 'x'\n")
    ctl._layout_file_changed(str(path))
    assert ctl.layout is before
    status = ctl.windows[0].status_line
    assert not status.isHidden()
    assert "layout not reloaded" in status.text()


def test_good_layout_on_hot_reload_applies(wall):
    ctl, feed, clock, lay_dir = wall
    path = Path(ctl.layout.path)
    text = path.read_text()
    assert 'title = "' in text
    path.write_text(text.replace('title = "', 'title = "RELOADED ', 1))
    ctl._layout_file_changed(str(path))
    assert "RELOADED" in ctl.layout.event.title or any("RELOADED" in s.title for s in ctl.layout.screens)


def test_switch_to_missing_layout_reports_and_keeps(wall):
    ctl, feed, clock, _ = wall
    before = ctl.layout
    assert not ctl.switch_layout("no-such-layout")
    assert ctl.layout is before and "no-such-layout" in ctl.layout_error


def test_shortcuts(wall, qtbot):
    ctl, feed, clock, _ = wall
    w = ctl.windows[0]
    qtbot.keyClick(w, Qt.Key.Key_M)
    assert ctl.alerts.muted
    qtbot.keyClick(w, Qt.Key.Key_Space)
    assert ctl.paused
    qtbot.keyClick(w, Qt.Key.Key_F1)
    assert w.overlay is not None
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert w.overlay is None
    qtbot.keyClick(w, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert w.overlay is not None
    ctl._close_overlay(w)
    names = ctl.layout_names()
    idx = names.index("double-11")
    qtbot.keyClick(w, getattr(Qt.Key, f"Key_{idx + 1}"))
    assert ctl.layout.name == "double-11"


def test_p1_sound_plays_until_acknowledged(wall):
    ctl, feed, clock, _ = wall
    clock.t += 1.1
    ctl.frame()
    assert ctl.sound.played[:1] == [ctl.layout.sound.p1]
    seq = ctl.state.seq
    feed.items.append(("events", [{"type": "incident", "id": "inc-1", "ts": clock.t, "seq": seq + 1,
                                    "status": "acknowledged", "acknowledged_at": clock.t}]))
    n = len(ctl.sound.played)
    for _ in range(3):
        clock.t += 40
        ctl.frame()
    assert len(ctl.sound.played) == n


def test_seq_gap_asks_for_resync(wall):
    ctl, feed, clock, _ = wall
    seq = ctl.state.seq
    feed.items.append(("events", [{"type": "kpi", "ts": NOW, "seq": seq + 5, "metric": "gmv", "scope": "global",
                                    "value": 1}]))
    ctl.frame()
    assert feed.resyncs == [seq]
    assert ctl.state.seq == seq


def test_snapshot_replaces_state_in_place(wall):
    ctl, feed, clock, _ = wall
    snap = ctl.state.snapshot()
    other = LiveState()
    other.apply([dict(e) for e in demo_events(NOW)[:3]], NOW)
    state_obj = ctl.state
    feed.items.append(("snapshot", other.snapshot()))
    ctl.frame()  # the snapshot is built on a worker thread; frames go on meanwhile
    for _ in range(100):
        if not ctl.driver.loading_snapshot:
            break
        ctl.driver._building.result(10)
        ctl.frame()
    assert ctl.state is state_obj
    assert len(ctl.state.stores) == 1 and ctl.state.seq == 3
    assert snap["seq"] > 3


def test_focus_store_with_an_unknown_id_says_so_and_opens_nothing(wall):
    ctl, feed, clock, _ = wall
    w = ctl.windows[0]
    base_page = w.current_page()
    feed.items.append(("events", [{"type": "control", "ts": NOW, "seq": ctl.state.seq + 1,
                                   "command": "focus_store", "store": "zz-999"}]))
    ctl.frame()
    assert not w.drill and w.current_page() is base_page
    assert ctl.stores_unknown == 1
    assert "unknown store 'zz-999'" in w.status_line.text() and not w.status_line.isHidden()
    assert ctl.open_store("sh-002", own_window=False)  # a known store opens and clears the message
    assert "unknown store" not in w.status_line.text()


def test_switch_layout_to_the_store_template_is_refused_like_an_unknown_layout(wall):
    ctl, feed, clock, _ = wall
    before = ctl.layout
    assert not ctl.switch_layout("store")
    assert ctl.layout is before
    assert "store page template" in ctl.layout_error and "layout store" in ctl.layout_error
    assert "store page template" in ctl.windows[0].status_line.text()
    seq = ctl.state.seq
    feed.items.append(("events", [{"type": "control", "ts": NOW, "seq": seq + 1, "command": "switch_layout",
                                   "layout": "store"}]))
    ctl.frame()
    assert ctl.layout is before


def test_hot_reload_survives_the_layout_file_deleted_and_written_again(wall, qtbot):
    ctl, feed, clock, lay_dir = wall
    path = Path(ctl.layout.path)
    text = path.read_text()
    path.unlink()
    qtbot.waitUntil(lambda: "file removed" in ctl.windows[0].status_line.text(), timeout=5000)
    assert ctl.layout.name == "overview"  # still showing what it had
    path.write_text(text.replace('title = "', 'title = "AGAIN ', 1))
    qtbot.waitUntil(lambda: "AGAIN" in ctl.layout.event.title, timeout=5000)
    assert str(path) in ctl.watcher.files()
    assert "layout not reloaded" not in ctl.windows[0].status_line.text()
    path.write_text(text.replace('title = "', 'title = "THIRD ', 1))  # and it keeps watching
    qtbot.waitUntil(lambda: "THIRD" in ctl.layout.event.title, timeout=5000)


def test_missing_cjk_font_and_audio_show_on_the_status_line_and_log_once(qtbot, monkeypatch, caplog):
    import logging

    from wallboard.widgets import base

    monkeypatch.setattr(base, "_CJK_FAMILY", [""])
    caplog.set_level(logging.WARNING, logger="wallboard.app.controller")
    clock = Clock(NOW)
    ctl = WallController(LiveState(), FakeFeed(), L.load_layout(L.find_layout("overview")), size=(1280, 720),
                         clock=clock)
    for w in ctl.windows:
        qtbot.addWidget(w)
    ctl.start()
    for _ in range(3):
        clock.t += 1.1
        ctl.frame()
    text = ctl.windows[0].status_line.text()
    assert "no CJK font" in text and "fonts-noto-cjk" in text
    assert "no audio: no audio on the offscreen platform" in text  # the tests run offscreen
    assert not ctl.windows[0].status_line.isHidden()
    logged = [r.getMessage() for r in caplog.records]
    assert sum("no CJK font" in m for m in logged) == 1 and sum("no audio" in m for m in logged) == 1
    ctl.shutdown()


def test_a_cjk_font_is_found_on_this_machine():
    from wallboard.widgets.base import cjk_font_family

    fam = cjk_font_family()
    if not fam:
        pytest.skip("no CJK font installed here (the wall says so on its status line)")
    from PySide6.QtGui import QFont, QFontMetrics

    assert QFontMetrics(QFont(fam)).inFont("上")


def test_a_burst_of_layout_switches_hands_the_freed_heap_back_once(wall, qtbot, monkeypatch):
    """Soak (issue 19): glibc kept the old layouts' freed pages (183 MB free beside 117 MB
    in use); a few seconds after the last switch of a burst the wall trims its heap."""
    from wallboard.app import memory

    monkeypatch.setattr(memory, "trim", lambda: True)
    ctl, feed, clock, _ = wall
    ctl.trimmer.timer.setInterval(50)
    qtbot.waitUntil(lambda: not ctl.trimmer.timer.isActive(), timeout=5000)   # the fixture's own layout
    before = ctl.trimmer.trims
    for name in ("double-11", "launch-928", "overview"):
        assert ctl.switch_layout(name)
    assert ctl.trimmer.timer.isActive() and ctl.trimmer.trims == before
    qtbot.waitUntil(lambda: ctl.trimmer.trims == before + 1, timeout=5000)
    qtbot.wait(200)
    assert ctl.trimmer.trims == before + 1 and not ctl.trimmer.timer.isActive()


def test_trim_is_glibc_malloc_trim_and_a_no_op_without_it(monkeypatch):
    from wallboard import heap
    from wallboard.app import memory

    assert memory.trim is heap.trim                   # one helper, shared with the hub
    assert memory.trim() is True                      # Linux with glibc (CI and the walls)
    monkeypatch.setattr(heap, "_LIBC", [None])
    assert memory.trim() is False


def test_the_hubs_failing_sources_show_on_the_status_line_until_they_recover(wall):
    """Issue 17: a hub's --sources Prometheus that fails (or a sink that cannot deliver)
    arrives in its stats notices; every window's status line says so, in the wall's language."""
    ctl, feed, clock, _ = wall
    failing = [{"kind": "source", "name": "prometheus/main", "error": "cannot connect to http://prom:9090: "
                "connection refused"}, {"kind": "sink", "name": "duty", "error": "errcode 310000: sign not match"}]
    feed.items.append(("notices", failing))
    ctl.frame()
    text = ctl.windows[0].status_line.text()
    assert "hub source failing: prometheus/main: cannot connect to http://prom:9090: connection refused" in text
    assert "hub notifications failing: duty: errcode 310000: sign not match" in text
    ctl.lang = "zh"  # the L key
    ctl._update_status_line()
    assert "集控数据源故障: prometheus/main" in ctl.windows[0].status_line.text()
    assert "集控通知发送失败: duty" in ctl.windows[0].status_line.text()
    feed.items.append(("notices", []))
    ctl.frame()
    assert "failing" not in ctl.windows[0].status_line.text() and "故障" not in ctl.windows[0].status_line.text()
