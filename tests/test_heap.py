"""wallboard.heap: glibc's arena cap and fixed mmap threshold for the hub, and the trim
the hub and the wall share (issue 19, memory over days)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from wallboard import heap

from conftest import ROOT


def test_tune_malloc_sets_the_arena_cap_and_a_fixed_mmap_threshold_unless_the_environment_does():
    code = ("from wallboard import heap; import os; print(heap.tune_malloc(environ={}));"
            "print(heap.tune_malloc(environ={'MALLOC_ARENA_MAX': '4'}));"
            "print(heap.tune_malloc(environ={'MALLOC_ARENA_MAX': '4', 'MALLOC_MMAP_THRESHOLD_': '65536'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines == [f"{{'MALLOC_ARENA_MAX': {heap.ARENA_MAX}, 'MALLOC_MMAP_THRESHOLD_': {heap.MMAP_THRESHOLD}}}",
                     f"{{'MALLOC_MMAP_THRESHOLD_': {heap.MMAP_THRESHOLD}}}", "{}"]


def test_tune_malloc_refuses_settings_glibc_would_misread():
    with pytest.raises(ValueError, match=r"arena_max 0 must be >= 1 and mmap_threshold 1048576 >= 4096 bytes"):
        heap.tune_malloc(arena_max=0)
    with pytest.raises(ValueError, match=r"mmap_threshold 100 >= 4096 bytes"):
        heap.tune_malloc(mmap_threshold=100)


def test_without_glibc_both_do_nothing(monkeypatch):
    monkeypatch.setattr(heap, "_LIBC", [None])
    assert heap.trim() is False
    assert heap.tune_malloc(environ={}) == {}


def test_the_hub_command_tunes_malloc_before_it_starts():
    """``wallboard hub`` calls tune_malloc at start (beside the collector thresholds)."""
    import inspect

    from wallboard.hub import commands

    src = inspect.getsource(commands.cmd_hub)
    assert src.index("tune_malloc()") < src.index("Hub(cfg)")
