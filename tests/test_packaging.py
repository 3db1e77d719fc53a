"""The wheel is the product: built, installed (not editable) into a fresh venv, run elsewhere.

The venv sees the test environment's site-packages for PySide6 and friends
(``--system-site-packages``) but gets wallboard only from the wheel, and runs from a
directory outside the checkout, as a user's ``pip install .`` would.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_every_package_in_the_source_is_listed_in_pyproject():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "wallboard").rglob("__init__.py")}
    found |= {"wallboard.widgets"}
    assert found - listed == set(), "packages missing from [tool.setuptools] packages"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = out.glob("wallboard-*.whl")
    return whl


def test_wheel_carries_layouts_assets_and_licences_and_no_top_level_widgets(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"wallboard", next(t for t in tops if t.endswith(".dist-info"))}
    for need in ("wallboard/layouts/launch-928.toml", "wallboard/layouts/store.toml",
                 "wallboard/assets/basemap/basemap.json.gz", "wallboard/assets/sounds/p1_alarm.wav",
                 "wallboard/widgets/store_map.py", "wallboard/__main__.py"):
        assert need in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert any(n.endswith("licenses/NOTICE") for n in names)
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in meta


def test_installed_wheel_renders_a_screenshot_from_another_directory(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(QT_QPA_PLATFORM="offscreen", WALLBOARD_SOUND="off")
    where = subprocess.run([str(py), "-c", "import wallboard.widgets, wallboard.resources as r;"
                            "print(wallboard.widgets.__file__); print(r.data_dir('layouts'))"],
                           cwd=run_dir, env=env, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    assert str(venv) in where.stdout and str(ROOT) not in where.stdout
    shot = run_dir / "x.png"
    r = subprocess.run([str(venv / "bin" / "wallboard"), "--screenshot", str(shot), "--size", "1280x720",
                        "--after", "1"], cwd=run_dir, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert shot.stat().st_size > 20_000
    r = subprocess.run([str(py), "-m", "wallboard", "check-layout", "launch-928"], cwd=run_dir, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
