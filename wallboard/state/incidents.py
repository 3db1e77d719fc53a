"""Incidents: the open set with counts by severity, and the resolved FIFO.

An incident's ``opened_at`` defaults to the ``ts`` of its first event, ``status`` to
``open`` and ``severity`` to ``P4`` (written into the record). Resolved incidents are
kept up to ``max_resolved_incidents`` and for ``resolved_keep_s`` after their resolve
time (``resolved_at``, else the ``ts`` of the event that resolved them), in the order
they were resolved.

Views kept as incidents come and go (no query scans every incident): the incidents of
each store (``by_store``; ``unscoped``: those naming no store, which belong to every
scope) and the chain-wide acknowledge / resolve sums behind MTTA and MTTR
(``chain_stats``). :meth:`IncidentBook.in_scope` and :meth:`IncidentBook.stats` read
them for one scope.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .config import RESOLVED, SEVERITIES, SEVERITY_RANK, StateConfig
from .dirty import Dirty
from wallboard.scope import Scope


@dataclass
class IncidentStats:
    """Acknowledge and resolve times of a scope's incidents: MTTA / MTTR and their counts."""

    n_acked: int = 0
    ack_s: float = 0.0        # sum of acknowledged_at - opened_at
    n_resolved: int = 0
    fix_s: float = 0.0        # sum of resolved_at - opened_at (resolved ones)

    @property
    def mtta(self) -> float | None:
        return self.ack_s / self.n_acked if self.n_acked else None

    @property
    def mttr(self) -> float | None:
        return self.fix_s / self.n_resolved if self.n_resolved else None

    def add(self, rec: dict[str, Any], sign: int = 1) -> None:
        """Count (``sign`` 1) or uncount (-1) one incident record."""
        opened = rec.get("opened_at")
        if opened is None:
            return
        acked = rec.get("acknowledged_at")
        if acked is not None:
            self.n_acked += sign
            self.ack_s += sign * (acked - opened)
        fixed = rec.get("resolved_at")
        if rec.get("status") == RESOLVED and fixed is not None:
            self.n_resolved += sign
            self.fix_s += sign * (fixed - opened)


class IncidentBook:
    """Incident records, open ids, counts of open incidents by severity."""

    def __init__(self, config: StateConfig, counters: dict[str, int],
                 store_city: Callable[[str], str | None]) -> None:
        self.config = config
        self.counters = counters
        self.store_city = store_city
        self.records: dict[str, dict[str, Any]] = {}
        self.open: set[str] = set()
        self.sev_counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
        self.resolved: OrderedDict[str, float] = OrderedDict()   # id -> resolve time
        self.by_store: dict[str, set[str]] = {}                  # store -> incident ids
        self.unscoped: set[str] = set()                          # ids naming no store
        self.chain_stats = IncidentStats()

    def upsert(self, ev: dict[str, Any], dirty: Dirty) -> None:
        """Create, merge or delete one incident; keep the open counts and the FIFO."""
        iid = ev["id"]
        rec = self.records.get(iid)
        if ev.get("deleted"):
            if rec is None:
                self.counters["deleted_unknown"] += 1
                return
            self._drop(iid, dirty)
            return
        if rec is not None:
            self._unindex(rec)
        if rec is None:
            rec = dict(ev)
            rec.pop("deleted", None)
            rec.setdefault("status", "open")
            rec.setdefault("severity", "P4")
            if rec.get("opened_at") is None:
                rec["opened_at"] = ev["ts"]
            self.records[iid] = rec
            old_stores: Any = ()
            was_open, old_sev = False, None
        else:
            old_stores = rec.get("stores", ())
            was_open, old_sev = iid in self.open, rec["severity"]
            rec.update(ev)
            rec.pop("deleted", None)
            if rec.get("opened_at") is None:
                rec["opened_at"] = ev["ts"]
        self._index(rec)
        is_open = rec["status"] != RESOLVED
        if was_open:
            self.sev_counts[old_sev] -= 1
        if is_open:
            self.sev_counts[rec["severity"]] += 1
            self.open.add(iid)
            self.resolved.pop(iid, None)
        else:
            self.open.discard(iid)
            if iid not in self.resolved:
                t = rec.get("resolved_at")
                self.resolved[iid] = t if t is not None else ev["ts"]
        self._mark(rec, old_stores, dirty)
        while len(self.resolved) > self.config.max_resolved_incidents:
            self._drop(next(iter(self.resolved)), dirty)
            self.counters["evicted_incidents"] += 1
        if len(self.open) > self.config.max_open_incidents:
            for old in self.records:
                if old in self.open:
                    break
            self._drop(old, dirty)
            self.counters["evicted_open_incidents"] += 1

    def _mark(self, rec: dict[str, Any], old_stores: Any, dirty: Dirty) -> None:
        dirty.incidents.add(rec["id"])
        for stores in (old_stores, rec.get("stores", ())):
            for sid in stores:
                dirty.stores.add(sid)
                city = self.store_city(sid)
                if city is not None:
                    dirty.cities.add(city)

    def _index(self, rec: dict[str, Any]) -> None:
        iid = rec["id"]
        stores = rec.get("stores") or ()
        if not stores:
            self.unscoped.add(iid)
        for sid in stores:
            self.by_store.setdefault(sid, set()).add(iid)
        self.chain_stats.add(rec)

    def _unindex(self, rec: dict[str, Any]) -> None:
        iid = rec["id"]
        self.unscoped.discard(iid)
        for sid in rec.get("stores") or ():
            ids = self.by_store.get(sid)
            if ids is not None:
                ids.discard(iid)
                if not ids:
                    del self.by_store[sid]
        self.chain_stats.add(rec, -1)

    def _drop(self, iid: str, dirty: Dirty) -> None:
        rec = self.records.pop(iid)
        self._unindex(rec)
        if iid in self.open:
            self.open.discard(iid)
            self.sev_counts[rec["severity"]] -= 1
        self.resolved.pop(iid, None)
        self._mark(rec, (), dirty)

    def restore(self, records: list[dict[str, Any]], resolved: list[tuple[str, float]]) -> None:
        """Load records and the resolved FIFO from a snapshot (ids already checked to be
        resolved incidents); enforce this config's cap."""
        for rec in records:
            iid = rec["id"]
            self.records[iid] = rec
            self._index(rec)
            if rec["status"] != RESOLVED:
                self.open.add(iid)
                self.sev_counts[rec["severity"]] += 1
        for iid, t in resolved:
            self.resolved[iid] = t
        for iid, rec in self.records.items():           # resolved ones the FIFO misses
            if rec["status"] == RESOLVED and iid not in self.resolved:
                t = rec.get("resolved_at")
                self.resolved[iid] = t if t is not None else rec["ts"]
        dirty = Dirty()
        while len(self.resolved) > self.config.max_resolved_incidents:
            self._drop(next(iter(self.resolved)), dirty)
            self.counters["evicted_incidents"] += 1

    def sweep(self, now: float, dirty: Dirty) -> int:
        """Drop resolved incidents older than ``resolved_keep_s`` (in resolve order)."""
        limit = now - self.config.resolved_keep_s
        n = 0
        while self.resolved:
            iid, t = next(iter(self.resolved.items()))
            if t >= limit:
                break
            self._drop(iid, dirty)
            n += 1
        self.counters["expired_incidents"] += n
        return n

    # ------------------------------------------------------------------ queries

    def in_scope(self, scope: Scope, store_city: Callable[[str], str | None],
                 city_stores: Callable[[str], Iterable[str]]) -> set[str] | None:
        """Ids of the incidents in ``scope`` (one of their stores in it, or naming no
        store); None for a chain-wide scope (every incident). Reads the per-store index:
        the cost follows the scope's stores and incidents, not every incident."""
        if scope.chain_wide:
            return None
        out = set(self.unscoped)
        by_store = self.by_store
        for sid in scope.stores:
            out.update(by_store.get(sid, ()))
        for city in scope.cities:
            for sid in city_stores(city):
                out.update(by_store.get(sid, ()))
        # stores named by incidents but not known as stores yet have no city: only
        # scope.stores can hold them (done above)
        return out

    def stats(self, ids: set[str] | None) -> IncidentStats:
        """The acknowledge / resolve sums of incidents ``ids`` (None: every incident, kept
        as incidents change)."""
        if ids is None:
            return IncidentStats(**vars(self.chain_stats))
        out = IncidentStats()
        recs = self.records
        for iid in ids:
            out.add(recs[iid])
        return out

    def open_sorted(self) -> list[dict[str, Any]]:
        recs = [self.records[i] for i in self.open]
        recs.sort(key=lambda r: (SEVERITY_RANK[r["severity"]], r["opened_at"], r["id"]))
        return recs

    def recent_resolved(self, now: float, keep_s: float) -> list[dict[str, Any]]:
        limit = now - keep_s
        out = [(t, self.records[i]) for i, t in self.resolved.items() if t >= limit]
        out.sort(key=lambda x: (-x[0], x[1]["id"]))
        return [r for _, r in out]
