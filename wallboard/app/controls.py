"""The wall's own controls in flight: sent, refused by the hub (with its reason), unanswered.

Pure (no Qt, no I/O). The shell numbers each ``control`` it sends (``ref``), the hub names
that ``ref`` in the ``error`` that refuses it, and a panel asks :meth:`ControlLedger.outcome`
what became of the command it sent. An accepted command has no reply of its own: its effect
arrives as an event (an acknowledged incident), which the panel sees in the state. A command
neither refused nor seen to take effect within ``timeout_s`` is ``no_answer``.
Bounded: the newest ``keep`` commands are remembered.
"""
from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Callable

PENDING, REFUSED, NO_ANSWER, UNKNOWN = "pending", "refused", "no_answer", "unknown"


class ControlLedger:
    """``ref = ledger.sent(command)``; ``ledger.refused(ref, reason)``; ``ledger.outcome(ref)``."""

    def __init__(self, clock: Callable[[], float], timeout_s: float = 10.0, keep: int = 256) -> None:
        self.clock = clock
        self.timeout_s = timeout_s
        self.keep = keep
        self.refusals = 0
        self._ids = itertools.count(1)
        self._sent: OrderedDict[str, tuple[str, float, str]] = OrderedDict()  # ref -> (command, at, reason)

    def sent(self, command: str) -> str:
        """Record a command about to be sent; returns its ``ref`` (unique in this process)."""
        ref = f"c{next(self._ids)}"
        self._sent[ref] = (command, self.clock(), "")
        while len(self._sent) > self.keep:
            self._sent.popitem(last=False)
        return ref

    def refused(self, ref: str | None, reason: str) -> bool:
        """The hub (or the feed, when not connected) refused ``ref``; False for an unknown ref."""
        if ref is None or ref not in self._sent:
            return False
        command, at, _ = self._sent[ref]
        self._sent[ref] = (command, at, reason or "refused")
        self.refusals += 1
        return True

    def outcome(self, ref: str | None) -> tuple[str, str]:
        """``(PENDING, "")``, ``(REFUSED, reason)``, ``(NO_ANSWER, "")`` or ``(UNKNOWN, "")``."""
        if ref is None or ref not in self._sent:
            return UNKNOWN, ""
        _, at, reason = self._sent[ref]
        if reason:
            return REFUSED, reason
        if self.clock() - at >= self.timeout_s:
            return NO_ANSWER, ""
        return PENDING, ""
