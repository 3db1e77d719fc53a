"""Shared test setup: headless Qt, repository paths, small helpers."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_QUICK_BACKEND", "software")

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"
FIXTURES = ROOT / "tests" / "fixtures"


def wait_until(qapp, pred, timeout: float, what: str) -> None:
    """Run the Qt loop until ``pred()``; fail naming ``what`` after ``timeout`` s."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        qapp.processEvents()
        if pred():
            return
        time.sleep(0.01)
    raise AssertionError(f"{what} not reached within {timeout} s")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (loopback only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture(autouse=True)
def _reset_ui_scale():
    """The wall's UI scale is process-wide; every test starts at 1.0."""
    yield
    mod = sys.modules.get("wallboard.widgets.base")
    if mod is not None:
        mod.set_ui_scale(1.0)


class SeqFeed:
    """Builds event dicts with contiguous seqs (``ts`` defaults to ``ts``), for tests that
    apply them to a LiveState themselves."""

    def __init__(self, ts: float = 1000.0) -> None:
        self.seq = 0
        self.ts = ts

    def ev(self, **kw):
        self.seq += 1
        kw.setdefault("ts", self.ts)
        kw["seq"] = self.seq
        return kw


def feed_events(state, events: list[dict], now: float):
    """Apply plain event dicts to a LiveState through the real validator, with fresh seqs
    (``ts`` defaults to ``now``); returns the Dirty set."""
    from wallboard import protocol as P

    batch = []
    for ev in events:
        ev = dict(ev, seq=state.seq + len(batch) + 1)
        ev.setdefault("ts", now)
        batch.append(P.validate_event(ev))
    return state.apply(batch, now)


def missing_font(size, bold=False, **_kw):
    """Stands in for ``ui_font`` as if no CJK (or any named) font were installed."""
    from PySide6.QtGui import QFont

    f = QFont("No Such Font Family 12345")
    f.setPointSizeF(size)
    f.setBold(bold)
    return f


@pytest.fixture
def idle_wall(qtbot):
    """A WallController on the overview layout (1280x720) whose feed never delivers
    anything; shut down after the test."""
    from wallboard import layout as L
    from wallboard.app.controller import WallController
    from wallboard.state import LiveState

    class IdleFeed:
        state = None

        def drain(self, max_items):
            return []

    ctl = WallController(LiveState(), IdleFeed(), L.load_layout(L.find_layout("overview")), size=(1280, 720))
    for w in ctl.windows:
        qtbot.addWidget(w)
    yield ctl
    ctl.shutdown()


def end_process(proc, timeout: float = 10.0) -> None:
    """Stop a child process this test started: SIGTERM, then SIGKILL after ``timeout`` s."""
    import subprocess

    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
