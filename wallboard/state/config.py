"""Constants and retention configuration of the live state.

``StateConfig`` fixes every bound the state keeps (rings, retention windows, caps), so
memory follows the configuration, never the uptime. Build one, pass it to
``LiveState(config=...)``; a bad value raises ``ValueError`` naming the field.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

#: Device statuses, best first; ``unknown`` (silent past its ttl) ranks above warn.
STATUS_ORDER: tuple[str, ...] = ("ok", "maint", "warn", "unknown", "crit", "down")
STATUS_RANK: dict[str, int] = {s: i for i, s in enumerate(STATUS_ORDER)}
SEVERITIES: tuple[str, ...] = ("P1", "P2", "P3", "P4")
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
FINISHED_CHANGE: frozenset[str] = frozenset({"succeeded", "failed", "rolled_back"})
RESOLVED: str = "resolved"
#: The kind a device is counted under when it never said what it is.
NO_KIND: str = ""


def zero_counts() -> dict[str, int]:
    """A fresh status -> count dict holding every status of ``STATUS_ORDER`` at 0."""
    return dict.fromkeys(STATUS_ORDER, 0)


@dataclass(frozen=True)
class StateConfig:
    """Bounds and defaults of a ``LiveState`` (all optional).

    Time fields are seconds, counts are items. Resolved incidents and finished changes are
    dropped when either their count cap or their age limit (measured from ``resolved_at``
    / ``end``, else the event ``ts``, against the ``now`` given to ``tick``) is exceeded.

    Devices and stores are capped by ``max_devices`` / ``max_stores``: an event that would
    create one more evicts the least recently updated one (lowest ``seq``; stores: only
    those without devices) when its last event's ``ts`` is more than ``ttl_s +
    evict_after_s`` (stores: ``evict_after_s``) before the new event's ``ts``; when none
    is, the new entity is not created (counted ``refused_devices`` / ``refused_stores``).
    Only event ``seq``/``ts`` decide, never a clock: the same log gives the same state.
    """

    device_ttl_s: float = 300.0          # default ttl_s of a device that sends none
    max_resolved_incidents: int = 2_000
    resolved_keep_s: float = 7 * 86_400.0
    max_open_incidents: int = 20_000     # safety cap; the oldest open one is dropped
    max_finished_changes: int = 10_000
    finished_keep_s: float = 7 * 86_400.0
    max_active_changes: int = 50_000     # planned/running; safety cap
    max_voice_items: int = 5_000
    voice_window_minutes: int = 1_440    # per-minute voice counts kept (24 h)
    kpi_points: int = 4_096              # points per KPI series (ring buffer)
    max_kpi_series: int = 2_000          # least recently updated series dropped first
    correlation_window_s: float = 3_600.0
    max_devices: int = 250_000           # entity caps (typo ids must not grow memory and every snapshot):
    max_stores: int = 25_000             # past them the least recently updated long-silent one is evicted
    evict_after_s: float = 3_600.0       # "long silent": by event ts, ttl_s + this before the new event's ts

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("int", int):
                if type(v) is not int or v < 1:
                    raise ValueError(f"StateConfig.{f.name}: expected an integer >= 1, got {v!r}")
            else:
                if type(v) not in (int, float) or not (v > 0) or v == float("inf"):
                    raise ValueError(f"StateConfig.{f.name}: expected a finite number > 0, got {v!r}")
