"""The process-wide tunings of the long-running processes (wallboard/gctune.py)."""
from __future__ import annotations

import sys

from wallboard.gctune import SWITCH_INTERVAL_S, tune_switch_interval


def test_tune_switch_interval_sets_it_and_returns_the_old_one():
    before = sys.getswitchinterval()
    try:
        assert tune_switch_interval() == before
        assert abs(sys.getswitchinterval() - SWITCH_INTERVAL_S) < 1e-9
        assert abs(tune_switch_interval(0.002) - SWITCH_INTERVAL_S) < 1e-9
    finally:
        sys.setswitchinterval(before)
