"""What one ``apply``/``tick`` changed, so widgets repaint only that.

A ``Dirty`` names changed keys per entity type and per store/city. Widgets read the sets
in ``refresh(dirty, now)``; the app merges the ``Dirty`` of every apply in a frame with
``merge`` and checks ``bool(dirty)`` to skip idle frames.
"""
from __future__ import annotations

from typing import Any


class SeqGap(Exception):
    """The next batch does not follow the last applied seq: the wall must resync.

    ``expected`` is the seq the state needed, ``got`` the one it was given. Nothing of the
    batch was applied; call ``feed.resync(since)`` with ``since`` (= ``expected - 1``).
    """

    def __init__(self, expected: int, got: int) -> None:
        self.expected = expected
        self.got = got
        self.since = expected - 1
        super().__init__(f"seq gap: expected seq {expected}, got {got}; resync since {expected - 1}")


class SnapshotError(ValueError):
    """A snapshot dict that ``LiveState.from_snapshot`` cannot load.

    ``path`` names the place (e.g. ``devices[12].status``), ``expected`` what should be
    there. The state being built is discarded; keep the old one and resync again.
    """

    def __init__(self, path: str, message: str, expected: str | None = None) -> None:
        self.path = path
        self.expected = expected
        text = f"snapshot {path}: {message}"
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)


class Dirty:
    """Keys changed by one or more ``apply``/``tick`` calls.

    Sets: ``stores``, ``devices``, ``cities``, ``kinds``, ``changes``, ``incidents``,
    ``kpi`` (``(metric, scope)`` pairs). Flags: ``voice`` (new voice items), ``all``
    (a snapshot was loaded: repaint everything). ``controls`` lists control events in
    order. A device change marks its store and the store's city too; ``kinds`` is marked
    when the per-kind counts change. ``moved`` (a subset of ``devices``) names the devices
    whose place in the fleet changed: created, deleted, or moved to another store or kind;
    a status update never lands there, so a view laid out by store and kind reads this
    set instead of looking every dirty device up again.

    A columnar ``devices`` frame marks its devices as dense indices (``device_index``:
    ``(names, indices)`` pairs, see ``wallboard.state.columns``): ``devices`` turns them
    into ids the first time it is read, so a view that reads the indices (or none at
    all) never pays for the id set.
    """

    __slots__ = ("stores", "_devices", "_dev_idx", "moved", "cities", "kinds", "changes", "incidents", "kpi",
                 "voice", "controls", "all")

    def __init__(self) -> None:
        self.stores: set[str] = set()
        self._devices: set[str] = set()
        self._dev_idx: list[tuple[list[Any], Any]] = []
        self.moved: set[str] = set()
        self.cities: set[str] = set()
        self.kinds: set[str] = set()
        self.changes: set[str] = set()
        self.incidents: set[str] = set()
        self.kpi: set[tuple[str, str]] = set()
        self.voice: bool = False
        self.controls: list[dict[str, Any]] = []
        self.all: bool = False

    @property
    def devices(self) -> set[str]:
        """Ids of the devices changed (the marked indices named first, once)."""
        if self._dev_idx:
            d = self._devices
            for names, idx in self._dev_idx:
                d.update(map(names.__getitem__, idx.tolist()))
            d.discard(None)          # an index freed since it was marked (its removal marked its id)
            self._dev_idx = []
        return self._devices

    @devices.setter
    def devices(self, value: set[str]) -> None:
        self._devices = value
        self._dev_idx = []

    def mark_device_index(self, names: list[Any], idx: Any) -> None:
        """Mark the devices ``names[i]`` for ``i`` in ``idx`` (an int array) dirty."""
        if len(idx):
            self._dev_idx.append((names, idx))

    @property
    def device_index(self) -> list[tuple[list[Any], Any]]:
        """The ``(names, indices)`` marked and not yet turned into ids (read-only)."""
        return self._dev_idx

    @classmethod
    def everything(cls) -> "Dirty":
        """A ``Dirty`` with ``all`` set (after a snapshot load)."""
        d = cls()
        d.all = True
        return d

    def merge(self, other: "Dirty") -> "Dirty":
        """Fold ``other`` into this one (in place) and return self."""
        self.stores |= other.stores
        self._devices |= other._devices
        self._dev_idx.extend(other._dev_idx)
        self.moved |= other.moved
        self.cities |= other.cities
        self.kinds |= other.kinds
        self.changes |= other.changes
        self.incidents |= other.incidents
        self.kpi |= other.kpi
        self.voice = self.voice or other.voice
        self.controls.extend(other.controls)
        self.all = self.all or other.all
        return self

    def __bool__(self) -> bool:
        return bool(self.all or self.voice or self.controls or self.stores or self._devices or self._dev_idx
                    or self.cities or self.kinds or self.changes or self.incidents or self.kpi)

    def __repr__(self) -> str:
        parts = [f"{k}={len(getattr(self, k))}" for k in
                 ("stores", "devices", "moved", "cities", "kinds", "changes", "incidents", "kpi", "controls")
                 if getattr(self, k)]
        if self.voice:
            parts.append("voice")
        if self.all:
            parts.append("all")
        return f"Dirty({', '.join(parts)})"
