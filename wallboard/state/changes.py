"""Changes (deployments, config pushes...) with a start-time index and retention.

A change's ``start`` defaults to the ``ts`` of its first event (written into the record),
so every change has a place on the timeline. Finished changes (succeeded, failed,
rolled_back) are kept up to ``max_finished_changes`` and for ``finished_keep_s`` after
their finish time (``end``, else the ``ts`` of the event that finished them), oldest
finished first. Planned/running changes are capped by ``max_active_changes`` (a safety
net; the oldest is dropped and counted).

Views kept as changes come and go (no query scans every change): the changes reaching
each store and each city by their ``scope`` (``by_store``, ``by_city``; ``chain_wide``:
no scope, reaching every store) and the changes of each status (``by_status``).
"""
from __future__ import annotations

import bisect
from collections import OrderedDict
from typing import Any

from .config import FINISHED_CHANGE, StateConfig
from .dirty import Dirty

_INF = float("inf")


class ChangeBook:
    """Change records, the finished FIFO and a sorted ``(start, id)`` index."""

    def __init__(self, config: StateConfig, counters: dict[str, int]) -> None:
        self.config = config
        self.counters = counters
        self.records: dict[str, dict[str, Any]] = {}
        self.finished: OrderedDict[str, float] = OrderedDict()   # id -> finish time
        self._idx: list[tuple[float, str]] = []                 # sorted (start, id)
        self._start: dict[str, float] = {}
        self._open_ended: set[str] = set()                      # end is None
        self._max_dur = 0.0
        self.by_store: dict[str, set[str]] = {}                 # scope.stores -> ids
        self.by_city: dict[str, set[str]] = {}                  # scope.cities -> ids
        self.chain_wide: set[str] = set()                       # no scope
        self.by_status: dict[str, set[str]] = {}                # status -> ids
        self._where: dict[str, tuple] = {}                      # id -> (stores, cities, status) indexed

    # ------------------------------------------------------------------ index

    def _index(self, cid: str, rec: dict[str, Any]) -> None:
        start = rec["start"]
        old = self._start.get(cid)
        if old != start:
            if old is not None:
                i = bisect.bisect_left(self._idx, (old, cid))
                del self._idx[i]
            bisect.insort(self._idx, (start, cid))
            self._start[cid] = start
        end = rec.get("end")
        if end is None:
            self._open_ended.add(cid)
        else:
            self._open_ended.discard(cid)
            if end - start > self._max_dur:
                self._max_dur = end - start
        scope = rec.get("scope") or {}
        where = (tuple(scope.get("stores") or ()), tuple(scope.get("cities") or ()), rec["status"])
        if self._where.get(cid) != where:
            self._unindex_where(cid)
            stores, cities, status = self._where[cid] = where
            if not stores and not cities:
                self.chain_wide.add(cid)
            for s in stores:
                self.by_store.setdefault(s, set()).add(cid)
            for c in cities:
                self.by_city.setdefault(c, set()).add(cid)
            self.by_status.setdefault(status, set()).add(cid)

    def _unindex_where(self, cid: str) -> None:
        old = self._where.pop(cid, None)
        if old is None:
            return
        stores, cities, status = old
        self.chain_wide.discard(cid)
        for index, keys in ((self.by_store, stores), (self.by_city, cities), (self.by_status, (status,))):
            for k in keys:
                ids = index.get(k)
                if ids is not None:
                    ids.discard(cid)
                    if not ids:
                        del index[k]

    def _unindex(self, cid: str) -> None:
        old = self._start.pop(cid)
        i = bisect.bisect_left(self._idx, (old, cid))
        del self._idx[i]
        self._open_ended.discard(cid)
        self._unindex_where(cid)

    # ------------------------------------------------------------------ updates

    def upsert(self, ev: dict[str, Any], dirty: Dirty) -> None:
        """Create, merge or delete one change; keep the finished FIFO and caps."""
        cid = ev["id"]
        rec = self.records.get(cid)
        if ev.get("deleted"):
            if rec is None:
                self.counters["deleted_unknown"] += 1
                return
            self._drop(cid, dirty)
            return
        if rec is None:
            rec = dict(ev)
            rec.pop("deleted", None)
            rec.setdefault("status", "planned")
            if rec.get("start") is None:
                rec["start"] = ev["ts"]
            self.records[cid] = rec
            was_finished = False
        else:
            was_finished = rec["status"] in FINISHED_CHANGE
            rec.update(ev)
            rec.pop("deleted", None)
            if rec.get("start") is None:
                rec["start"] = ev["ts"]
        self._index(cid, rec)
        self._mark(rec, dirty)
        is_finished = rec["status"] in FINISHED_CHANGE
        if is_finished and not was_finished:
            end = rec.get("end")
            self.finished[cid] = end if end is not None else ev["ts"]
            while len(self.finished) > self.config.max_finished_changes:
                old = next(iter(self.finished))
                self._drop(old, dirty)
                self.counters["evicted_changes"] += 1
        elif was_finished and not is_finished:
            self.finished.pop(cid, None)
        if not is_finished and len(self.records) - len(self.finished) > self.config.max_active_changes:
            for old, r in self.records.items():
                if r["status"] not in FINISHED_CHANGE:
                    break
            self._drop(old, dirty)
            self.counters["evicted_active_changes"] += 1

    def _mark(self, rec: dict[str, Any], dirty: Dirty) -> None:
        dirty.changes.add(rec["id"])
        scope = rec.get("scope")
        if scope:
            dirty.stores.update(scope.get("stores", ()))
            dirty.cities.update(scope.get("cities", ()))

    def _drop(self, cid: str, dirty: Dirty) -> None:
        rec = self.records.pop(cid)
        self.finished.pop(cid, None)
        self._unindex(cid)
        self._mark(rec, dirty)

    def restore(self, records: list[dict[str, Any]], finished: list[tuple[str, float]]) -> None:
        """Load records and the finished FIFO from a snapshot (ids already checked to be
        finished changes); finished changes the FIFO misses are appended, and the caps of
        this state's config are enforced (a snapshot from a larger config shrinks)."""
        for rec in records:
            self.records[rec["id"]] = rec
            self._index(rec["id"], rec)
        for cid, t in finished:
            self.finished[cid] = t
        for cid, rec in self.records.items():
            if rec["status"] in FINISHED_CHANGE and cid not in self.finished:
                end = rec.get("end")
                self.finished[cid] = end if end is not None else rec["ts"]
        dirty = Dirty()
        while len(self.finished) > self.config.max_finished_changes:
            self._drop(next(iter(self.finished)), dirty)
            self.counters["evicted_changes"] += 1

    def sweep(self, now: float, dirty: Dirty) -> int:
        """Drop finished changes older than ``finished_keep_s`` (oldest finished first)."""
        limit = now - self.config.finished_keep_s
        n = 0
        while self.finished:
            cid, t = next(iter(self.finished.items()))
            if t >= limit:
                break
            self._drop(cid, dirty)
            n += 1
        self.counters["expired_changes"] += n
        return n

    # ------------------------------------------------------------------ queries

    def reaching(self, store_id: str, city_id: str | None) -> set[str]:
        """Ids of the changes whose scope reaches the store: it or its city is named, or
        the change is chain-wide."""
        out = set(self.chain_wide)
        out.update(self.by_store.get(store_id, ()))
        if city_id is not None:
            out.update(self.by_city.get(city_id, ()))
        return out

    def with_status(self, statuses) -> list[dict[str, Any]]:
        """The changes whose status is one of ``statuses``, by start then id."""
        recs = self.records
        out = [recs[c] for s in statuses for c in self.by_status.get(s, ())]
        out.sort(key=lambda r: (r["start"], r["id"]))
        return out

    def window(self, t0: float, t1: float) -> list[dict[str, Any]]:
        """Changes whose [start, end] (end None = still open) overlaps [t0, t1], by start."""
        idx = self._idx
        lo = bisect.bisect_left(idx, t0 - self._max_dur, key=lambda x: x[0])
        hi = bisect.bisect_right(idx, t1, key=lambda x: x[0])
        out = []
        seen = set()
        for start, cid in idx[lo:hi]:
            rec = self.records[cid]
            end = rec.get("end")
            if (end if end is not None else _INF) >= t0:
                out.append(rec)
                seen.add(cid)
        for cid in self._open_ended:
            if cid not in seen and self._start[cid] <= t1:
                out.append(self.records[cid])
        out.sort(key=lambda r: (r["start"], r["id"]))
        return out
