"""The pure layers stay pure: importing them loads no Qt, no websockets, no asyncio server."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

PURE = ["wallboard.protocol", "wallboard.state", "wallboard.layout", "wallboard.scope"]
FORBIDDEN = ["PySide6", "websockets", "pyqtgraph", "aiohttp"]


@pytest.mark.parametrize("module", PURE)
def test_pure_layer_imports_no_qt_and_no_network(module):
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{module} pulled in {out.stdout.strip()}"
