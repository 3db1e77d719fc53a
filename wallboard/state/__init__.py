"""The pure live-state model of the wall: entities, derived views, staleness, retention.

``LiveState.apply(events, now)`` folds validated event batches (from
``wallboard.protocol``) into entities and incrementally kept views and returns a
``Dirty``; ``tick(now)`` expires silent devices and old records; ``snapshot()`` /
``LiveState.from_snapshot()`` round-trip exactly. No I/O, no Qt, no asyncio: every
time-dependent call takes ``now``.
"""
from .config import SEVERITIES, STATUS_ORDER, STATUS_RANK, StateConfig
from .correlate import rank_suspects
from .dirty import Dirty, SeqGap, SnapshotError
from .model import COUNTER_NAMES, LiveState
from .snapshot import SNAPSHOT_VERSION

__all__ = [
    "LiveState", "Dirty", "StateConfig", "SeqGap", "SnapshotError", "STATUS_ORDER",
    "STATUS_RANK", "SEVERITIES", "COUNTER_NAMES", "SNAPSHOT_VERSION", "rank_suspects",
]
