"""argparse value types shared by the ``wallboard`` commands: each names the bad value."""
from __future__ import annotations

import argparse


def positive(text: str) -> float:
    """A number > 0 (``--speed``, ``--after``, timeouts)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return v


def _whole(text: str, least: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < least:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= {least}")
    return v


def count(text: str) -> int:
    """A whole number >= 1 (batch sizes, retries)."""
    return _whole(text, 1)


def count0(text: str) -> int:
    """A whole number >= 0 (0: off, e.g. ``--conflate-after``)."""
    return _whole(text, 0)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level(text: str) -> str:
    """A logging level name in any case (``info``, ``WARNING``, ``warn``) -> its upper-case
    name; ``--log-level`` and ``WALLBOARD_LOG``."""
    import logging

    name = text.strip().upper()
    if name == "WARN":
        name = "WARNING"
    if name not in LOG_LEVELS or not isinstance(logging.getLevelName(name), int):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a log level, one of {', '.join(LOG_LEVELS)} "
                                         "(any case)")
    return name


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``24h`` or ``7d`` (``--keep``); 0 allowed."""
    t = text.strip().lower()
    scale = _UNITS.get(t[-1:], None) if t else None
    num = t[:-1] if scale is not None else t
    try:
        v = float(num) * (scale or 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a duration such as 3600, 90s, 15m, 24h or 7d") from None
    if not 0 <= v < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a duration >= 0")
    return v
