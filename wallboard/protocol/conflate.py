"""Conflation: a device's status is "latest value wins" on the way to a wall.

Pure (stdlib only). The hub's per-wall sender (``wallboard.hub.fanout``) and the wall's
frame drain (``wallboard.app.frame``) use it when a wall has fallen behind: of a window of
committed events they keep only what a later event of the same window does not overwrite,
so the wall receives the newest state, not a growing backlog. The log keeps every event.

The rule is exact for the state, never a guess: a device event ``e`` is dropped only when
the device events after it in the window (same ``id``) together carry every key of ``e``
(and every metric name of its ``metrics``), so applying the kept events gives the same
device record as applying them all. A ``deleted`` device event covers everything before
it. Only ``device`` events are ever dropped: stores, incidents, changes, KPIs, voice and
controls are always kept, in order.

The seqs stay honest: the kept events go out in :class:`Span` batches that say the range
of seqs they stand for (``first``..``last``); every seq of the range that is not in the
batch was a device update overwritten by a later event of the batch or of a later span of
the same window. A wall sets its seq to ``last``; gap detection compares ``first``.

Typical use::

    keys = [conflation_key(ev) for ev in window]        # (the hub keeps them with its tail)
    kept = kept_indexes(keys)                           # indexes into window, in order
    spans = split_spans([window[i] for i in kept], first, last, max_n=5000)
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

#: A delete covers every key: everything before it for that device is overwritten.
_ALL = frozenset(("*all*",))

_sigs: dict[tuple, frozenset] = {}
_unions: dict[tuple[int, int], frozenset] = {}
_covers: dict[tuple[int, int], bool] = {}

Key = tuple[str, frozenset]


def conflation_key(ev: dict[str, Any]) -> Key | None:
    """``(device id, signature)`` of a device event that may be conflated, None for every
    other event. The signature (shared object per shape) is the set of its keys plus
    ``("metrics", name)`` for each metric it carries; ``_ALL`` for a delete."""
    if ev.get("type") != "device":
        return None
    did = ev.get("id")
    if type(did) is not str:
        return None
    if ev.get("deleted"):
        return did, _ALL
    m = ev.get("metrics")
    raw = (tuple(ev), tuple(m) if type(m) is dict else ())
    sig = _sigs.get(raw)
    if sig is None:
        if len(_sigs) > 4096:   # shapes are few; a flood of odd ones must not grow this
            _sigs.clear()
            _unions.clear()
            _covers.clear()
        sig = frozenset(raw[0]).union(("metrics", k) for k in raw[1])
        sig = _sigs.setdefault(raw, sig)
    return did, sig


def _union(a: frozenset, b: frozenset) -> frozenset:
    if a is b:
        return a
    k = (id(a), id(b))
    u = _unions.get(k)
    if u is None:
        u = _unions[k] = _ALL if (a is _ALL or b is _ALL) else a | b
    return u


def _covered(sig: frozenset, cover: frozenset) -> bool:
    if sig is cover or cover is _ALL:
        return True
    k = (id(sig), id(cover))
    c = _covers.get(k)
    if c is None:
        c = _covers[k] = sig is not _ALL and sig <= cover
    return c


def kept_indexes(keys: Sequence[Key | None]) -> list[int]:
    """Indexes (ascending) of the events to keep of a window whose conflation keys are
    ``keys``: every event whose key is None, and every device event not overwritten by
    the later device events of the same id (see the module docstring). The last event
    of the window is always kept."""
    cover: dict[str, frozenset] = {}
    get = cover.get
    out: list[int] = []
    append = out.append
    for i in range(len(keys) - 1, -1, -1):
        k = keys[i]
        if k is None:
            append(i)
            continue
        did, sig = k
        c = get(did)
        if c is None:
            cover[did] = sig
            append(i)
        elif not _covered(sig, c):
            cover[did] = _union(c, sig)
            append(i)
    out.reverse()
    return out


def conflate(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of ``events`` that :func:`kept_indexes` keeps (the same dicts, in order)."""
    keep = kept_indexes([conflation_key(ev) for ev in events])
    if len(keep) == len(events):
        return events
    return [events[i] for i in keep]


class Span(list):
    """A batch of events standing for the seqs ``first``..``last`` (see the module
    docstring): strictly increasing seqs within the range; the seqs missing from it were
    conflated away. ``dropped`` = how many."""

    __slots__ = ("first", "last")

    def __init__(self, events: Iterable[dict[str, Any]], first: int, last: int) -> None:
        super().__init__(events)
        self.first = first
        self.last = last

    @property
    def dropped(self) -> int:
        return self.last - self.first + 1 - len(self)


def split_ranges(seqs: Sequence[int], first: int, last: int, max_n: int,
                 sizes: Sequence[int] | None = None, max_bytes: int = 0) -> list[tuple[int, int, int, int]]:
    """Cut the kept events of a window ``first``..``last`` (``seqs``: their seqs, ascending)
    into pieces of at most ``max_n`` events (with ``sizes``: at most ``max_bytes`` of them,
    one event at least): ``(i, j, start, end)`` = kept items ``[i:j]`` standing for seqs
    ``start..end``. The ranges are contiguous and cover the window: each ends just before
    the next piece's first event, the last at ``last``."""
    out: list[tuple[int, int, int, int]] = []
    n = len(seqs)
    i, start, max_n = 0, first, max(1, max_n)
    while i < n:
        j = min(n, i + max_n)
        if sizes is not None:
            total, k = 0, i
            while k < j:
                total += sizes[k] + 1
                if total > max_bytes and k > i:
                    break
                k += 1
            j = k
        end = last if j == n else seqs[j] - 1
        out.append((i, j, start, end))
        start, i = end + 1, j
    return out


def split_spans(kept: list[dict[str, Any]], first: int, last: int, max_n: int) -> list[Span]:
    """:func:`split_ranges` of kept event dicts, as :class:`Span` batches."""
    seqs = [ev["seq"] for ev in kept]
    return [Span(kept[i:j], s, e) for i, j, s, e in split_ranges(seqs, first, last, max_n)]


def conflate_items(items: list[tuple[str, Any]], max_n: int) -> tuple[list[tuple[str, Any]], int]:
    """A queue of ``(kind, payload)`` items (a feed's: ``("events", batch)``, where a batch
    may be a :class:`Span`, and anything else) with each run of consecutive ``events``
    batches conflated into spans of at most ``max_n`` events; the other items stay where
    they are (a snapshot, a heartbeat, a columnar batch end a run). Returns the new items
    and how many events were dropped."""
    out: list[tuple[str, Any]] = []
    dropped = 0
    run: list[list[dict[str, Any]]] = []

    def flush() -> None:
        nonlocal dropped
        if not run:
            return
        if len(run) == 1 and len(run[0]) <= max_n:
            out.append(("events", run[0]))
            run.clear()
            return
        head, tail = run[0], run[-1]
        first = head.first if type(head) is Span else head[0]["seq"]
        last = tail.last if type(tail) is Span else tail[-1]["seq"]
        window = [ev for batch in run for ev in batch]
        kept = conflate(window)
        dropped += len(window) - len(kept)
        out.extend(("events", sp) for sp in split_spans(kept, first, last, max_n))
        run.clear()

    for kind, payload in items:
        if kind == "events" and payload:
            run.append(payload)
            continue
        flush()
        out.append((kind, payload))
    flush()
    return out, dropped


__all__ = ["conflation_key", "kept_indexes", "conflate", "Span", "split_ranges", "split_spans",
           "conflate_items"]
