"""Give the heap's free pages back to the system after a layout switch (glibc only).

A layout switch builds the new layout's pages and images (70-90 MB at 4K) and frees the
old ones; glibc keeps freed pages inside its heap for reuse, so the wall's RSS carried
whatever the largest switch left free (a 10-minute soak saw 183 MB held free beside
117 MB in use, RSS 428 MB against a 316 MB floor). :func:`trim` hands them back
(``malloc_trim(0)``: every arena, a few milliseconds); :class:`TrimAfterSwitch` runs it
once, a few seconds after the last of a burst of switches, when the old pages are gone.
Elsewhere (musl, macOS, Windows) it does nothing and says so once.
"""
from __future__ import annotations

import ctypes
import logging
from typing import Any, Callable

log = logging.getLogger(__name__)

_TRIM: list[Any] = []       # [] before the lookup, [None] where there is no malloc_trim


def _malloc_trim() -> Callable[[int], int] | None:
    if not _TRIM:
        try:
            fn = ctypes.CDLL("libc.so.6").malloc_trim
            fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
        except (OSError, AttributeError):
            fn = None
            log.info("no glibc malloc_trim here: freed heap pages stay with the allocator")
        _TRIM.append(fn)
    return _TRIM[0]


def trim() -> bool:
    """Return free heap pages to the system; False where glibc's ``malloc_trim`` is missing."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True


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
