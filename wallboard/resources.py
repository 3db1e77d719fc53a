"""Where the wall's shipped data lives: layouts, basemap, sounds (pure: stdlib only).

Installed from a wheel, the data is inside the package (``wallboard/layouts``,
``wallboard/assets``, found with :mod:`importlib.resources`); in a source checkout it is in
the repository's top-level ``layouts/`` and ``assets/`` folders, which ``pyproject.toml``
maps to those package paths. :func:`data_dir` answers for both, so nothing else needs to
know how the wall was installed.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_SOURCE_ROOT = _PACKAGE.parent
KINDS = ("layouts", "assets")


def data_dir(kind: str) -> Path:
    """The directory of shipped ``kind`` (``"layouts"`` or ``"assets"``).

    The installed package's copy wins; a source checkout (``pyproject.toml`` beside the
    package) falls back to its top-level folder. Raises ``ValueError`` for another kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown data kind {kind!r}; expected one of {', '.join(KINDS)}")
    installed = Path(str(resources.files("wallboard"))) / kind
    if installed.is_dir():
        return installed
    return _SOURCE_ROOT / kind


def user_layout_dir() -> Path:
    """``$XDG_CONFIG_HOME/wallboard/layouts`` (``~/.config/wallboard/layouts`` when unset):
    where a user's own layouts are found by name, before the shipped ones."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "wallboard" / "layouts"
