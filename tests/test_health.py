"""The wall's health: sd_notify (READY=1, WATCHDOG=1) to a real datagram socket, the status
file (atomic, every key), burn-in shift. The real wall under X: test_real_x.py."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from wallboard.app.watchdog import SdNotify, watchdog_interval


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(0.5)
    yield s, str(path)
    s.close()


def recv_all(s: socket.socket, until: str, timeout: float) -> list[str]:
    """Datagrams received until one contains ``until`` (or the timeout)."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got.append(s.recv(4096).decode())
        except socket.timeout:
            continue
        if until in got[-1]:
            break
    return got


def test_sd_notify_sends_datagrams_and_is_off_without_socket(notify_socket):
    s, path = notify_socket
    n = SdNotify(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"})
    assert n.enabled and n.watchdog_s == 30.0
    assert n.send("READY=1", "STATUS=ok")
    assert s.recv(100) == b"READY=1\nSTATUS=ok"
    assert not SdNotify(env={}).send("READY=1")
    n.close()


def test_sd_notify_abstract_address():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"wallboard-test-{os.getpid()}"
    s.bind("\0" + name)
    try:
        assert SdNotify(env={"NOTIFY_SOCKET": "@" + name}).send("WATCHDOG=1")
        assert s.recv(100) == b"WATCHDOG=1"
    finally:
        s.close()


def test_sd_notify_failure_is_counted_not_raised(tmp_path, caplog):
    n = SdNotify(env={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert not n.send("WATCHDOG=1")
    assert not n.send("WATCHDOG=1")
    assert n.errors == 2 and n.last_error
    assert sum("sd_notify to" in r.message for r in caplog.records) == 1


def test_watchdog_interval_only_for_this_process():
    assert watchdog_interval({"WATCHDOG_USEC": "20000000"}) == 20.0
    assert watchdog_interval({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}) == 20.0
    assert watchdog_interval({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({}) is None


def test_running_wall_sends_ready_then_watchdog_and_writes_status(notify_socket, tmp_path):
    """The real `wallboard` (offscreen) under a fake service manager."""
    s, path = notify_socket
    status = tmp_path / "run" / "status.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", NOTIFY_SOCKET=path, WATCHDOG_USEC="4000000",
               XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen([sys.executable, "-m", "wallboard", "--no-sound", "--status-file", str(status),
                             "--burn-in-shift", "3"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=str(tmp_path))
    try:
        got = recv_all(s, "READY=1", 90)
        assert any(g.startswith("READY=1") for g in got), got
        got = recv_all(s, "WATCHDOG=1", 20)
        assert "WATCHDOG=1" in got, got
        deadline = time.monotonic() + 60
        st = {}
        while time.monotonic() < deadline:
            try:
                st = json.loads(status.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                st = {}
            if st.get("feed", {}).get("state") == "LIVE" and st["feed"]["seq"] > 0 and st["frames_per_s"] > 0:
                break
            time.sleep(0.3)
        assert st.get("feed", {}).get("state") == "LIVE", st
        assert st["feed"]["hub"].startswith("ws://127.0.0.1:")
        assert st["layout"]["name"] == "launch-928"
        assert st["last_paint"] and st["last_paint_age_s"] < 10
        assert st["frame_p95_ms"] is not None and st["rss_kb"] > 0
        assert st["watchdog"]["enabled"] and st["watchdog"]["sent"] >= 2
        assert [w["layout_screen"] for w in st["windows"]] == [0, 1]
        assert not [p for p in status.parent.iterdir() if p.name != "status.json"]  # no temp files left
    finally:
        proc.terminate()
        try:
            out = proc.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate(timeout=10)[0]
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]


def test_status_file_write_failure_is_counted(idle_wall, tmp_path, caplog):
    from wallboard.app.health import HealthMonitor

    ctl = idle_wall
    blocker = tmp_path / "file"
    blocker.write_text("x")
    h = HealthMonitor(ctl, status_path=str(blocker / "status.json"))
    assert not h.write(h.status_path)
    assert not h.write(h.status_path)
    assert h.write_errors == 2
    assert sum("--status-file" in r.message for r in caplog.records) == 1
    st = h.status()
    assert st["feed"]["state"] == "CONNECTING" and st["layout"]["name"] == "overview"
    ok = tmp_path / "ok" / "s.json"
    assert h.write(ok) and json.loads(ok.read_text())["pid"] == os.getpid()


def test_burn_in_shift_cycles_the_picture(idle_wall):
    from wallboard.app.screens import BurnInShifter, burn_in_offsets

    assert burn_in_offsets(0) == [(0, 0)]
    offs = burn_in_offsets(4)
    assert len(offs) == 9 and len(set(offs)) == 9 and max(abs(c) for o in offs for c in o) == 4
    ctl = idle_wall
    w = ctl.windows[0]
    sh = BurnInShifter(lambda: ctl.windows, 4)
    assert sh.shift() == (4, 0)
    m = w.centralWidget().layout().contentsMargins()
    assert (m.left(), m.top(), m.right(), m.bottom()) == (8, 4, 0, 4)
    for _ in range(8):
        sh.shift()
    m = w.centralWidget().layout().contentsMargins()
    assert (m.left(), m.top(), m.right(), m.bottom()) == (4, 4, 4, 4)  # back to the centre
