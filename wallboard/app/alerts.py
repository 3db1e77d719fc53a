"""When to sound the alarm: a pure policy for new P1/P2 incidents (no Qt, no audio).

The shell asks :meth:`AlertPolicy.due` once per second with the unacknowledged severe
incidents; it answers which sound to play now, if any. A P2 chimes every ``repeat_s``
until acknowledged; a P1 plays the two-tone alarm, and after ``escalate_after_s`` without
acknowledgement it repeats twice as often at full volume. Muting silences everything
until unmuted; acknowledging an incident silences it for good.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Alert:
    sound: str  # "p1" or "p2"
    volume: float
    incident: str
    escalated: bool = False


@dataclass
class AlertPolicy:
    repeat_s: float = 30.0
    escalate_after_s: float = 120.0
    enabled: bool = True
    muted: bool = False
    _first_seen: dict[str, float] = field(default_factory=dict)
    _last_played: dict[str, float] = field(default_factory=dict)
    played: int = 0

    def due(self, severe: list[tuple[str, str]], now: float) -> Alert | None:
        """``severe``: (incident id, severity) of open, unacknowledged P1/P2 incidents.

        Returns the one alert to play now (P1 before P2), or None.
        """
        live = {i for i, _ in severe}
        for gone in [i for i in self._first_seen if i not in live]:
            self._first_seen.pop(gone, None)
            self._last_played.pop(gone, None)
        best: Alert | None = None
        for inc, sev in sorted(severe, key=lambda x: x[1]):
            first = self._first_seen.setdefault(inc, now)
            escalated = sev == "P1" and now - first >= self.escalate_after_s
            interval = self.repeat_s / (2.0 if escalated else 1.0)
            last = self._last_played.get(inc)
            if last is not None and now - last < interval:
                continue
            if best is None:
                best = Alert("p1" if sev == "P1" else "p2", 1.0 if (escalated or sev == "P1") else 0.7, inc,
                             escalated)
        if best is None or not self.enabled or self.muted:
            return None
        for inc, sev in severe:  # one sound covers every incident due at this moment
            last = self._last_played.get(inc)
            escalated = sev == "P1" and now - self._first_seen[inc] >= self.escalate_after_s
            if last is None or now - last >= self.repeat_s / (2.0 if escalated else 1.0):
                self._last_played[inc] = now
        self.played += 1
        return best
