"""Which system libraries Qt's xcb platform plugin lacks, and the apt-get line that fixes it.

Qt aborts the process (``qFatal``: "Could not load the Qt platform plugin "xcb" in "" even
though it was found") when a library of its xcb plugin is missing, without naming it. So
the wall checks *before* it creates its QApplication: :func:`missing_xcb_libraries` runs
``ldd`` on PySide6's ``libqxcb.so`` (and ``libQt6XcbQpa``, which it links) and collects the
``=> not found`` entries; :func:`diagnose_xcb` turns them into a message with the Debian /
Ubuntu packages to install. This module imports no Qt (it must run when Qt cannot).

Call :func:`diagnose_xcb` only when the xcb plugin is the one Qt will load
(:func:`xcb_will_load`); it returns ``None`` when nothing is missing or when it cannot tell
(no ``ldd``, plugin not found): then Qt's own error is all there is.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

#: Shared object name -> Debian/Ubuntu package (the libraries PySide6's xcb plugin and
#: QtGui/QtWidgets link, checked with ``ldd`` on PySide6 6.11).
SONAME_PACKAGES: dict[str, str] = {
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
}

#: Everything the README's apt-get line installs for the xcb plugin (the closure above
#: minus what any X desktop already has); printed when the plugin itself is unreadable.
XCB_PACKAGES: tuple[str, ...] = (
    "libegl1", "libgl1", "libxkbcommon0", "libxkbcommon-x11-0", "libxcb-cursor0",
    "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0", "libxcb-render-util0",
    "libxcb-shape0", "libxcb-xkb1", "libfontconfig1", "libdbus-1-3", "libglib2.0-0",
)

_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found", re.MULTILINE)


def xcb_will_load(env: os._Environ | dict | None = None) -> bool:
    """True when Qt will pick its xcb plugin: Linux, and QT_QPA_PLATFORM is ``xcb`` or unset
    with DISPLAY set and no Wayland session."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return False
    qpa = (env.get("QT_QPA_PLATFORM") or "").split(":", 1)[0].strip()
    if qpa:
        return qpa == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def qt_dir() -> Path | None:
    """PySide6's bundled Qt directory (``.../PySide6/Qt``), found without importing Qt."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "Qt"
    return d if d.is_dir() else None


def parse_ldd(output: str) -> list[str]:
    """The shared objects ``ldd`` reported as ``not found``, each once, in order."""
    out: list[str] = []
    for name in _NOT_FOUND.findall(output):
        if name not in out:
            out.append(name)
    return out


def missing_xcb_libraries(qt: Path | None = None, timeout_s: float = 10.0) -> list[str] | None:
    """Sonames the xcb plugin cannot find; ``None`` when it cannot tell (no ldd, no plugin)."""
    qt = qt or qt_dir()
    ldd = shutil.which("ldd")
    if qt is None or ldd is None:
        return None
    targets = [qt / "plugins" / "platforms" / "libqxcb.so", *sorted((qt / "lib").glob("libQt6XcbQpa.so*"))[:1]]
    targets = [t for t in targets if t.exists()]
    if not targets:
        return None
    missing: list[str] = []
    for t in targets:
        try:
            r = subprocess.run([ldd, str(t)], capture_output=True, text=True, timeout=timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        for name in parse_ldd(r.stdout + r.stderr):
            if name not in missing:
                missing.append(name)
    return missing


def apt_line(missing: list[str]) -> str:
    """``sudo apt-get install ...`` for the packages providing ``missing`` (unknown sonames
    are named as they are, for the user to look up)."""
    pkgs: list[str] = []
    for so in missing:
        pkg = SONAME_PACKAGES.get(so)
        if pkg and pkg not in pkgs:
            pkgs.append(pkg)
    return "sudo apt-get install " + " ".join(pkgs) if pkgs else ""


def diagnose_xcb(missing: list[str] | None = None) -> str | None:
    """A message naming the missing libraries and the apt-get line; ``None`` when none is
    missing (or when :func:`missing_xcb_libraries` could not tell)."""
    if missing is None:
        missing = missing_xcb_libraries()
    if not missing:
        return None
    line = apt_line(missing)
    unknown = [so for so in missing if so not in SONAME_PACKAGES]
    msg = (f"wallboard: Qt's xcb platform plugin cannot load: missing system "
           f"librar{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)}.")
    if line:
        msg += f"\n  On Debian/Ubuntu: {line}"
    if unknown:
        msg += f"\n  (find the package of {', '.join(unknown)} with your distribution's file search, e.g. apt-file)"
    msg += ("\n  Every library the wall needs: sudo apt-get install " + " ".join(XCB_PACKAGES)
            + "\n  Or render headless without X: wallboard --screenshot wall.png")
    return msg
