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


def count(text: str) -> int:
    """A whole number >= 1 (batch sizes, retries)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return v
