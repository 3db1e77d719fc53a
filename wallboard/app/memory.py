"""Give the heap's free pages back to the system after a layout switch (glibc only).

A layout switch builds the new layout's pages and images (70-90 MB at 4K) and frees the
old ones; glibc keeps freed pages inside its heap for reuse, so the wall's RSS carried
whatever the largest switch left free (a 10-minute soak saw 183 MB held free beside
117 MB in use, RSS 428 MB against a 316 MB floor). :func:`trim` hands them back
(``malloc_trim(0)``: every arena, a few milliseconds); :class:`TrimAfterSwitch` runs it
once, a few seconds after the last of a burst of switches, when the old pages are gone.
Elsewhere (musl, macOS, Windows) it does nothing and says so once
(:mod:`wallboard.heap`, shared with the hub).
"""
from __future__ import annotations

from typing import Any

from wallboard.heap import trim  # glibc's malloc_trim(0); False elsewhere


class TrimAfterSwitch:
    """Calls :func:`trim` ``delay_ms`` after the latest :meth:`switched` (a single-shot
    Qt timer, restarted by each switch: a burst of switches trims once)."""

    def __init__(self, parent: Any, delay_ms: int = 3000) -> None:
        from PySide6.QtCore import QTimer

        self.trims = 0
        self.timer = QTimer(parent)
        self.timer.setSingleShot(True)
        self.timer.setInterval(delay_ms)
        self.timer.timeout.connect(self._run)

    def switched(self) -> None:
        self.timer.start()

    def _run(self) -> None:
        if trim():
            self.trims += 1
