"""Plays the alert sounds in ``assets/sounds`` through QtMultimedia.

Sound is optional hardware: when QtMultimedia cannot load (no libpulse, a headless
machine, no audio output device, ``WALLBOARD_SOUND=off``, the offscreen platform), the
player stays silent, says
why in :attr:`SoundPlayer.unavailable`, and counts what it would have played, so the wall
and its tests work the same everywhere.
"""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QGuiApplication

from wallboard.layout import SOUND_NAMES  # noqa: E402
from wallboard.resources import data_dir  # noqa: E402

SOUNDS_DIR = data_dir("assets") / "sounds"

SOUND_FILES = {n: f"{n}.wav" for n in SOUND_NAMES if n != "none"}


class SoundPlayer:
    """``play("p1_alarm", volume)``; silent (but counting) where audio is unavailable."""

    def __init__(self, sounds_dir: Path = SOUNDS_DIR, files: dict[str, str] | None = None) -> None:
        self.unavailable = ""
        self.played: list[str] = []
        self._effects: dict = {}
        files = files or SOUND_FILES
        platform = QGuiApplication.platformName() if QGuiApplication.instance() else ""
        if os.environ.get("WALLBOARD_SOUND", "").lower() in ("off", "0", "no"):
            self.unavailable = "sound off (WALLBOARD_SOUND)"
            return
        if platform in ("offscreen", "minimal"):
            self.unavailable = f"no audio on the {platform} platform"
            return
        try:
            from PySide6.QtMultimedia import QMediaDevices, QSoundEffect
        except ImportError as e:  # e.g. libpulse missing
            self.unavailable = f"QtMultimedia unavailable: {e}"
            return
        if not QMediaDevices.audioOutputs():
            self.unavailable = "no audio output device"
            return
        for name, fname in files.items():
            path = sounds_dir / fname
            if not path.exists():
                self.unavailable = f"missing sound file {path}"
                continue
            eff = QSoundEffect()
            eff.setSource(QUrl.fromLocalFile(str(path)))
            self._effects[name] = eff

    def play(self, name: str, volume: float = 1.0) -> None:
        self.played.append(name)
        if len(self.played) > 100:
            del self.played[:50]
        eff = self._effects.get(name)
        if eff is not None:
            eff.setVolume(max(0.0, min(1.0, volume)))
            eff.play()
