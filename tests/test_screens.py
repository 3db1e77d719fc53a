"""Monitor placement (pure plan), the `monitor` layout key, the xcb library diagnosis, the
layout picker's keyboard focus, `wallboard screens`. Real X windows: test_real_x.py."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from wallboard import layout as L
from wallboard.app import screens as S
from wallboard.app import syslibs


def mon(i, x, y, w=1920, h=1080, name=None):
    return S.Monitor(i, name or f"M{i}", (x, y, w, h), (x, y, w, h))


TWO = [mon(0, 0, 0, name="DP-1"), mon(1, 1920, 0, name="HDMI-1")]


# ---------------------------------------------------------------- order


def test_monitors_ordered_left_to_right_then_top_to_bottom():
    assert S.order_monitors([(1920, 0, 1920, 1080), (0, 0, 1920, 1080)]) == [1, 0]
    grid = [(1920, 1080, 1920, 1080), (0, 1080, 1920, 1080), (1920, 0, 1920, 1080), (0, 0, 1920, 1080)]
    assert S.order_monitors(grid) == [3, 2, 1, 0]
    # A row whose monitors are not aligned to the pixel is still one row.
    assert S.order_monitors([(1920, 40, 1920, 1080), (0, 0, 1920, 1080)]) == [1, 0]
    # Separate X screens all start at 0,0: Qt's order is kept.
    assert S.order_monitors([(0, 0, 1920, 1080), (0, 0, 1920, 1080)]) == [0, 1]


def test_find_monitor_by_number_name_and_case():
    assert S.find_monitor(TWO, "1").name == "HDMI-1"
    assert S.find_monitor(TWO, "HDMI-1").index == 1
    assert S.find_monitor(TWO, "hdmi-1").index == 1
    assert S.find_monitor(TWO, "2") is None
    assert S.find_monitor(TWO, "VGA-1") is None


# ---------------------------------------------------------------- plan


def test_layout_screen_n_goes_to_monitor_n_fullscreen_covers_it_exactly():
    p = S.plan([S.Target(0), S.Target(1)], TWO, mode="kiosk")
    assert [(x.monitor.name, x.geometry) for x in p] == [
        ("DP-1", (0, 0, 1920, 1080)), ("HDMI-1", (1920, 0, 1920, 1080))]
    assert all(x.note == "" for x in p)


def test_windowed_default_is_80_percent_centred_never_a_size_hint():
    p = S.plan([S.Target(0), S.Target(1)], TWO)
    assert p[0].geometry == (192, 108, 1536, 864)
    assert p[1].geometry == (1920 + 192, 108, 1536, 864)


def test_fewer_monitors_than_screens_cascade_on_the_one_there_is():
    laptop = [S.Monitor(0, "eDP-1", (0, 0, 1920, 1080), (0, 0, 1920, 1040))]
    p = S.plan([S.Target(0), S.Target(1)], laptop)
    assert p[0].geometry == (192, 104, 1536, 832)
    assert p[1].geometry == (192 + S.CASCADE_PX, 104 + S.CASCADE_PX, 1536, 832)
    assert p[1].note == "layout screen 1 shares monitor 0 (only 1 connected)"


def test_named_monitor_wins_over_index_and_missing_one_is_reported():
    p = S.plan([S.Target(0, "HDMI-1"), S.Target(1, "VGA-9")], TWO, mode="fullscreen")
    assert p[0].monitor.name == "HDMI-1"
    assert p[1].monitor.name == "HDMI-1"  # falls back to monitor 1 (its layout screen)
    assert p[1].note == 'the layout\'s monitor "VGA-9" is not connected (monitors: 0:DP-1, 1:HDMI-1)'


def test_command_line_monitor_overrides_the_layout():
    p = S.plan([S.Target(0, "DP-1")], TWO, monitor="HDMI-1", mode="kiosk")
    assert p[0].geometry == (1920, 0, 1920, 1080)
    p = S.plan([S.Target(0)], TWO, monitor="HDMI-7")
    assert p[0].note.startswith('--monitor "HDMI-7" is not connected')


def test_a_window_can_keep_its_own_mode():
    """F11 on one window: that window full screen, the other stays windowed."""
    p = S.plan([S.Target(0, mode="fullscreen"), S.Target(1)], TWO)
    assert (p[0].mode, p[0].geometry) == ("fullscreen", (0, 0, 1920, 1080))
    assert (p[1].mode, p[1].geometry) == ("window", (1920 + 192, 108, 1536, 864))


def test_explicit_size_is_kept_and_bad_mode_is_refused():
    p = S.plan([S.Target(0)], TWO, size=(1280, 720))
    assert p[0].geometry == (320, 180, 1280, 720)
    with pytest.raises(ValueError, match="mode 'tv': expected one of window, fullscreen, kiosk"):
        S.plan([S.Target(0)], TWO, mode="tv")
    assert S.plan([S.Target(0)], []) == []


def test_targets_follow_the_layout_and_the_screen_option():
    lay = L.load_layout(L.find_layout("launch-928"))
    specs = list(lay.windows())
    assert [t.layout_screen for t in S.targets_for(specs, specs)] == [0, 1]
    only = [s for i, s in enumerate(specs) if (s.screen if s.screen is not None else i) == 1]
    assert [t.layout_screen for t in S.targets_for(only, specs)] == [1]


def test_monitor_key_in_layout(tmp_path):
    src = L.find_layout("launch-928").read_text(encoding="utf-8")
    f = tmp_path / "m.toml"
    f.write_text(src.replace('name = "command"\n', 'name = "command"\nmonitor = "HDMI-1"\n', 1), encoding="utf-8")
    lay = L.load_layout(f)
    assert lay.windows()[0].monitor == "HDMI-1"
    f.write_text(src.replace('name = "command"\n', 'name = "command"\nmonitor = 1\n', 1), encoding="utf-8")
    with pytest.raises(L.LayoutError, match=r"screens\[0\]\.monitor"):
        L.load_layout(f)


def test_describe_names_every_monitor_and_screen():
    p = S.plan([S.Target(0), S.Target(1)], TWO, mode="kiosk")
    text = S.describe(TWO, p, ["command", "devices"])
    assert "1  HDMI-1       1920x1080+1920+0  scale 1  0 Hz" in text
    assert "screen 1 (devices) -> monitor 1 HDMI-1: kiosk 1920x1080+1920+0" in text


# ---------------------------------------------------------------- system libraries

LDD = """\tlinux-vdso.so.1 (0x00007ffd)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibfoo-bar.so.9 => not found
"""


def test_ldd_not_found_entries_become_the_apt_line():
    missing = syslibs.parse_ldd(LDD)
    assert missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libfoo-bar.so.9"]
    assert syslibs.apt_line(missing) == "sudo apt-get install libxcb-icccm4 libxcb-keysyms1"
    msg = syslibs.diagnose_xcb(missing)
    assert msg.startswith("wallboard: Qt's xcb platform plugin cannot load: missing system libraries "
                          "libxcb-icccm.so.4, libxcb-keysyms.so.1, libfoo-bar.so.9.")
    assert "On Debian/Ubuntu: sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in msg
    assert "find the package of libfoo-bar.so.9" in msg
    assert syslibs.diagnose_xcb([]) is None


def test_xcb_is_checked_only_when_qt_will_load_it():
    if not sys.platform.startswith("linux"):
        pytest.skip("xcb is Linux only")
    assert syslibs.xcb_will_load({"DISPLAY": ":0"})
    assert syslibs.xcb_will_load({"QT_QPA_PLATFORM": "xcb"})
    assert not syslibs.xcb_will_load({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"})
    assert not syslibs.xcb_will_load({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"})
    assert not syslibs.xcb_will_load({})


def test_every_library_of_the_installed_xcb_plugin_has_a_package():
    """The mapping (and so the README's apt line) covers what the plugin links here."""
    qt = syslibs.qt_dir()
    if qt is None or not (qt / "plugins" / "platforms" / "libqxcb.so").exists():
        pytest.skip("PySide6 has no xcb plugin here")
    out = subprocess.run(["ldd", str(qt / "plugins" / "platforms" / "libqxcb.so")],
                         capture_output=True, text=True, check=False).stdout
    linked = {ln.split()[0] for ln in out.splitlines() if ln.strip().startswith(("libxcb", "libxkb", "libX11"))}
    assert linked <= set(syslibs.SONAME_PACKAGES), linked - set(syslibs.SONAME_PACKAGES)
    for so in linked:
        pkg = syslibs.SONAME_PACKAGES[so]
        assert pkg in syslibs.XCB_PACKAGES or pkg in ("libxcb1", "libx11-6", "libx11-xcb1", "libxcb-randr0",
                                                      "libxcb-render0", "libxcb-shm0", "libxcb-sync1",
                                                      "libxcb-xfixes0", "libxcb-util1")


# ---------------------------------------------------------------- picker focus


def test_layout_picker_takes_typed_text_and_enter_without_a_click(idle_wall, qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    ctl = idle_wall
    w = ctl.windows[0]
    ctl.start()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.keyClick(w, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    picker = w.overlay
    assert picker is not None
    assert w.focusWidget() is picker.filter
    # Keys go where Qt sends them: the focus widget, as a user's typing would.
    target = QApplication.focusWidget() or w.focusWidget()
    qtbot.keyClicks(target, "double")
    assert picker.filter.text() == "double"
    qtbot.keyClick(target, Qt.Key.Key_Return)
    assert ctl.layout.name == "double-11"
    assert w.overlay is None


# ---------------------------------------------------------------- the command


def test_screens_command_prints_monitors_and_placement():
    r = subprocess.run([sys.executable, "-m", "wallboard", "screens", "--json", "--kiosk"],
                       capture_output=True, text=True, timeout=60, check=False,
                       env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["platform"] == "offscreen" and out["layout"] == "launch-928"
    assert out["monitors"][0]["geometry"][2] > 0
    assert [s["layout_screen"] for s in out["screens"]] == [0, 1]
    assert out["screens"][1]["note"].startswith("layout screen 1 shares monitor 0")
    r = subprocess.run([sys.executable, "-m", "wallboard", "screens", "--layout", "nope"],
                       capture_output=True, text=True, timeout=60, check=False,
                       env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 2 and 'no layout named "nope"' in r.stderr


def test_full_screen_windows_sharing_a_monitor_keep_the_command_screen_on_top():
    """One monitor, two layout screens, --fullscreen: both cover the monitor, and the
    lowest layout screen is raised last (on top), never hidden under screen 1."""
    from wallboard.app.screens import Monitor, Placement, ScreenPlacer

    class W:
        def __init__(self):
            self.raised = None

        def raise_(self):
            W.order.append(self)

    W.order = []
    m = Monitor(0, "screen", (0, 0, 1920, 1080), (0, 0, 1920, 1080), 1.0, 60.0, True, "")
    a, b, c = W(), W(), W()
    places = [Placement(0, 0, m, m.geometry, "fullscreen"),
              Placement(1, 1, m, m.geometry, "fullscreen", "layout screen 1 shares monitor 0"),
              Placement(2, 2, m, (10, 10, 800, 600), "window")]
    ScreenPlacer._stack([a, b, c], places)
    assert W.order == [b, a]
