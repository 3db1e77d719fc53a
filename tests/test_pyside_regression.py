"""PySide6 6.12.0 on Python 3.11 dies with 'Fatal Python error: none_dealloc' after some
hundred thousand calls of a Qt method that returns nothing (None's refcount underflows;
3.12+ hides it because None is immortal). The pin in pyproject.toml keeps 3.11 below 6.12;
this test calls a void Qt method a million times in a subprocess and must exit 0."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

CODE = r"""
import sys
from PySide6.QtCore import QObject, QTimer
obj = QTimer()
for i in range(1_000_000):
    obj.setInterval(i & 1023)      # void method: returns None to Python
    obj.setObjectName("t")         # void method
print("ok", obj.interval())
"""


@pytest.mark.timeout(300)
def test_void_qt_calls_a_million_times_do_not_crash():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=280, env=env)
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-2000:]}"
    assert out.stdout.startswith("ok")


def test_pyside6_version_is_pinned_below_6_12_on_python_311():
    import PySide6

    if sys.version_info < (3, 12):
        major, minor = (int(x) for x in PySide6.__version__.split(".")[:2])
        assert (major, minor) < (6, 12), f"PySide6 {PySide6.__version__} crashes on Python 3.11"
