"""``LiveState``: the wall's in-memory picture of the chain, fed by ``apply``.

Pure and deterministic: every time-dependent call takes ``now`` (epoch seconds of the
caller's clock); nothing here reads a clock, does I/O or imports Qt/asyncio.

Typical use (UI thread, once per frame)::

    dirty = state.apply(batch, now)      # may raise SeqGap -> feed.resync(gap.since)
    dirty.merge(state.tick(now))         # TTL expiry + retention, cheap
    panel.refresh(dirty, now)

Records in ``stores``/``devices``/``changes``/``incidents`` are the merged events (with
``type``, ``id``, and the ``ts``/``seq`` of the last event); devices also carry
``last_seen`` (state clock). They are read-only for callers, and the events given to
``apply`` must not be mutated afterwards (their nested values are shared).

Garbage collector: a wall holds 100,000+ long-lived record dicts, and CPython's full
collections (triggered by the steady churn of decoded events) would scan them all again
and again -- ~0.4 us per ingested event at 100,000 devices. So whenever the state has
grown by ``GC_FREEZE_STEP`` records since the last time (during the initial load by
``apply``, and once at the end of ``from_snapshot``), it runs ``gc.collect()`` and then
``gc.freeze()``: every object alive at that moment (records, but also the rest of the
process) moves to the permanent generation, which the collector no longer scans. They
are still freed normally by reference counting when dropped (records hold no cycles);
only reference cycles that die while frozen are kept, until the next snapshot load
(a resync), which unfreezes and collects everything before freezing again.
"""
from __future__ import annotations

import gc
import operator
from bisect import bisect_right
from itertools import islice
from sys import intern
from typing import TYPE_CHECKING, Any, Iterable, Mapping


from .. import protocol as P
from ..protocol.conflate import Span
from .changes import ChangeBook
from .columns import DeviceColumns, DeviceView
from .config import NO_KIND, STATUS_ORDER, StateConfig
from .correlate import rank_suspects
from .dirty import Dirty, SeqGap
from .fleet import Fleet
from .incidents import IncidentBook, IncidentStats
from wallboard.scope import Scope
from .series import KpiStore, VoiceLog

if TYPE_CHECKING:
    import numpy as np

_seq_of = operator.itemgetter("seq")
#: Device events made only of these keys take the inline path in ``apply`` (they cannot
#: change its ttl or delete it; a store or kind other than the record's takes the general
#: path, which moves the device).
_FAST_KEYS = frozenset(("type", "id", "ts", "seq", "status", "metrics", "msg", "name", "store", "kind"))
_SAME = object()   # "key absent" for apply's store/kind comparison
#: Records (stores + devices + changes + incidents) created since the last ``gc.freeze``
#: that trigger the next one; see the module docstring.
GC_FREEZE_STEP = 5_000

COUNTER_NAMES = (
    "applied", "skipped_duplicates", "batches", "deleted_unknown", "unknown_type",
    "expired_devices", "evicted_changes", "evicted_active_changes", "expired_changes",
    "evicted_incidents", "evicted_open_incidents", "expired_incidents",
    "evicted_kpi_series", "voice_outside_window", "controls",
)


def _mark_cities(dirty: Dirty, store_city: dict[str, str]) -> None:
    """Mark the cities of ``dirty.stores`` dirty (a C loop: up to a batch of stores)."""
    if dirty.stores:
        cities = set(map(store_city.get, dirty.stores))
        cities.discard(None)
        dirty.cities |= cities


class LiveState:
    """Entities, derived views, staleness and retention; see the module docstring."""

    def __init__(self, config: StateConfig | None = None, *, settle_gc: bool = True) -> None:
        """``settle_gc=False``: this state never runs ``gc.collect``/``gc.freeze`` (a
        short-lived one, e.g. a replay's, in a process whose own state manages them)."""
        self.config = config or StateConfig()
        self._counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self._fleet = Fleet(self.config.device_ttl_s, self._counters, self.config)
        self._changes = ChangeBook(self.config, self._counters)
        self._incidents = IncidentBook(self.config, self._counters, self._fleet.store_city.get)
        self._voice = VoiceLog(self.config, self._counters)
        self._kpi = KpiStore(self.config, self._counters)
        self.seq = 0
        self._last_msg: float | None = None
        self._clock: float | None = None   # the latest ``now`` given to apply/touch/tick
        self._frozen_size = 0          # records held at the last gc freeze
        self._gc_settles = settle_gc   # False: never gc.collect/freeze

    def _record_count(self) -> int:
        fleet = self._fleet
        return (len(fleet.devices) + len(fleet.stores) + len(self._changes.records)
                + len(self._incidents.records))

    def _settle_gc(self, reclaim: bool = False) -> None:
        """Freeze the long-lived records out of the collector's scans once the state has
        grown by ``GC_FREEZE_STEP`` records (called by ``apply`` and ``from_snapshot``).
        ``reclaim`` (a snapshot load, i.e. a resync) first unfreezes everything, so the
        full collection also frees reference cycles that died while frozen."""
        if not self._gc_settles:
            return
        size = self._record_count()
        grown = size - self._frozen_size
        if grown >= GC_FREEZE_STEP:
            if reclaim:
                gc.unfreeze()
            gc.collect()               # leave no cyclic garbage behind in the frozen set
            gc.freeze()
            self._frozen_size = size
        elif grown < 0:
            self._frozen_size = size   # shrunk: count new growth from here

    # ------------------------------------------------------------------ entities

    @property
    def stores(self) -> dict[str, dict[str, Any]]:
        return self._fleet.stores

    @property
    def devices(self) -> Mapping[str, dict[str, Any]]:
        """Device id -> record (read-only). Once ``apply_devices`` ran, a
        :class:`~wallboard.state.columns.DeviceView` that brings each record it hands out
        up to date with the columns."""
        f = self._fleet
        return f.devices if f.cols is None else DeviceView(f.devices, f.cols)

    def evictable(self, kind: str, when: float, k: int) -> int:
        """How many ``kind`` ("device" or "store") records the caps would evict, at most
        ``k``, to make room for new ones with event ``ts`` ``when``; evicts nothing."""
        f = self._fleet
        return f.evictable_devices(when, k) if kind == "device" else f.evictable_stores(when, k)

    @property
    def changes(self) -> dict[str, dict[str, Any]]:
        return self._changes.records

    @property
    def incidents(self) -> dict[str, dict[str, Any]]:
        return self._incidents.records

    @property
    def counters(self) -> dict[str, int]:
        """Counts of what happened (applied, skipped_duplicates, evictions...) and the
        gauge ``orphan_devices`` (devices whose store is not known yet)."""
        self._counters["orphan_devices"] = self._fleet.orphans
        return self._counters

    # ------------------------------------------------------------------ feeding

    def touch(self, now: float) -> None:
        """Record that a message of any kind (heartbeat too) arrived at ``now``."""
        self._last_msg = now
        self._see(now)

    def _see(self, now: float) -> None:
        c = self._clock
        if c is None or now > c:
            self._clock = now

    def feed_age(self, now: float) -> float | None:
        """Seconds since the last message (``apply`` or ``touch``); None if never."""
        return None if self._last_msg is None else now - self._last_msg

    def apply(self, events: list[dict[str, Any]], now: float, *, checked: bool = False) -> Dirty:
        """Apply a batch of events with contiguous seqs; return what changed.

        All or nothing: the whole batch is checked before anything changes, and when a
        check fails ``apply`` raises with the state exactly as before (``seq``, records,
        counters, ``feed_age``). It raises ``SeqGap(expected, got)`` when the batch does
        not continue ``self.seq`` (only checked once ``seq > 0``) or is not contiguous
        (resync), and ``protocol.ProtocolError`` naming the event and field when an event
        is not valid protocol (the checks of ``protocol.decode``: cheap, column-wise, for
        the usual device batches). Events with ``seq <= self.seq`` (replay overlap) are
        skipped and counted. ``now`` becomes ``last_seen`` of every device named in the
        batch.

        A conflated batch (``protocol.conflate.Span``: increasing seqs standing for
        ``first``..``last``, the missing seqs device updates a later event overwrote)
        continues ``self.seq`` from its ``first`` and leaves ``seq`` at its ``last``.

        ``checked=True``: the caller vouches that every event already passed the protocol's
        validation (``protocol.decode`` of a frame, or the hub's ingest for events its log
        returns), so the per-event checks are not run twice; seqs are still checked.
        """
        dirty = Dirty()
        n = len(events)
        if not n:
            self._last_msg = now
            self._see(now)
            return dirty
        span_last = None
        try:
            seqs = list(map(_seq_of, events))
            first = seqs[0]
            if type(events) is Span:        # conflated: increasing seqs standing for first..last
                span_last = events.last
                contiguous = (type(first) is int and events.first <= first and seqs[-1] <= span_last
                              and all(map(operator.lt, seqs, islice(seqs, 1, None))))
                if contiguous:
                    first = events.first
            else:
                contiguous = type(first) is int and seqs == list(range(first, first + n))
        except (KeyError, TypeError):       # not event dicts with seqs: say which and why
            P.check_batch(events, op="apply")
            raise                           # pragma: no cover - check_batch raised already
        if not contiguous:
            if type(first) is not int or not all(type(s) is int for s in seqs):
                P.check_batch(events, op="apply")
            if span_last is not None:
                raise SeqGap(events.first, seqs[0] if seqs[0] < events.first or seqs[0] > span_last
                             else next(b for a, b in zip(seqs, seqs[1:]) if b <= a or b > span_last))
            for i, s in enumerate(seqs):
                if s != first + i:
                    raise SeqGap(first + i, s)
        cur = self.seq
        if cur > 0 and first > cur + 1:
            raise SeqGap(cur + 1, first)
        if span_last is None:
            skip = cur + 1 - first if cur > 0 and first <= cur else 0
        else:
            skip = bisect_right(seqs, cur) if cur > 0 and first <= cur else 0
            if skip >= n and span_last > cur:   # nothing new to apply, but the seqs move on
                self.seq = span_last
                self._last_msg = now
                self._see(now)
                return dirty
        if skip < n and not checked:
            if span_last is None:
                P.check_batch(events[skip:] if skip else events, op="apply")
            else:
                P.check_batch(list(events[skip:]), op="apply", gaps=True)
        # ---- checked: from here on the batch is applied entirely
        if self._begin(skip, n, now):
            return dirty
        counters = self._counters
        if skip:
            events = events[skip:]
        fleet = self._fleet
        cols = fleet.cols
        if cols is not None:       # columns kept: the records named take their pending values
            named = [ev["id"] for ev in events if ev["type"] == "device"]
            cols.before(named)
        dget = fleet.devices.get
        expired = fleet.expired
        device_path = fleet.apply_device
        moved = fleet.status_moved
        ddev = dirty.devices.add
        dsto = dirty.stores.add
        other = self._apply_other
        fast_keys = _FAST_KEYS
        for ev in events:
            if ev["type"] != "device":
                other(ev, now, dirty)
                continue
            did = ev["id"]
            rec = dget(did)
            if rec is None or (expired and did in expired):
                device_path(ev, now, dirty)             # new, deleted, recovery
                continue
            t = ev.get("ts")
            x = ev.get("status")
            m = ev.get("metrics")
            # type, id and seq are there (read above): six keys with ts, status and metrics
            # set are exactly the usual status update; anything else is checked key by key
            if len(ev) == 6 and t is not None and x is not None and m is not None:
                extra = False
            elif ev.keys() <= fast_keys:
                # store / kind repeated unchanged (producers usually send both every
                # time) stay on this path; a move or a new kind takes the general one
                if (ev.get("store", _SAME) is not _SAME and ev["store"] != rec.get("store")) or \
                        (ev.get("kind", _SAME) is not _SAME and ev["kind"] != rec.get("kind")):
                    device_path(ev, now, dirty)
                    continue
                extra = True
            else:
                device_path(ev, now, dirty)             # ttl, deleted, x_*
                continue
            # Inline path: only keys of _FAST_KEYS, set one by one (cheaper than update(),
            # and the record keeps its interned type/id/store/kind/status objects).
            if t is not None:
                rec["ts"] = t
            rec["seq"] = ev["seq"]
            rec["last_seen"] = now
            if x is not None:
                old = rec["status"]
                if x != old:
                    rec["status"] = x = intern(x)
                    moved(rec.get("store"), rec.get("kind", NO_KIND), old, x, dirty)
            if m is not None:
                try:
                    rm = rec["metrics"]
                    rm |= m                             # merged into the record's own dict
                except (KeyError, TypeError):           # no metrics yet: a copy, never m itself
                    rec["metrics"] = dict(m)
            if extra:
                x = ev.get("msg")
                if x is not None:
                    rec["msg"] = x
                x = ev.get("name")
                if x is not None:
                    rec["name"] = x
            ddev(did)
            dsto(rec.get("store"))
        if cols is not None:
            cols.after(named)
        self.seq = events[-1]["seq"] if span_last is None else span_last
        counters["applied"] += len(events)
        dirty.stores.discard(None)
        _mark_cities(dirty, fleet.store_city)
        grown = self._record_count() - self._frozen_size
        if grown >= GC_FREEZE_STEP or grown < 0:
            self._settle_gc()
        return dirty

    def _skip(self, first: int) -> int:
        """How many leading events of a batch starting at seq ``first`` were applied
        already; ``SeqGap`` when it does not continue ``seq``."""
        cur = self.seq
        if cur > 0 and first > cur + 1:
            raise SeqGap(cur + 1, first)
        return cur + 1 - first if cur > 0 and first <= cur else 0

    def _begin(self, skip: int, n: int, now: float) -> bool:
        """A batch of ``n`` events (``skip`` of them seen) is being applied at ``now``:
        count it; True when there is nothing left to apply."""
        self._last_msg = now
        self._see(now)
        counters = self._counters
        counters["batches"] += 1
        if skip:
            counters["skipped_duplicates"] += min(skip, n)
        return skip >= n

    def keep_columns(self) -> None:
        """Keep the devices' hot fields in numpy columns from now on (``apply_devices``
        does it at its first call; a wall calls it where it builds a state, e.g. off the
        UI thread after a snapshot load: ~2-3 us per device)."""
        fleet = self._fleet
        if fleet.cols is None:
            fleet.cols = DeviceColumns(fleet)

    def apply_devices(self, batch: P.DeviceBatch, now: float) -> Dirty:
        """Apply a decoded columnar ``devices`` frame (``protocol.decode_devices``, its
        ``ids`` set by the session): the same state ``apply(batch.events(), now)`` gives,
        kept in numpy columns (``wallboard.state.columns``; the first call makes them).
        Seqs as in :meth:`apply`: ``SeqGap`` when the frame does not continue ``seq``,
        rows at or below ``seq`` skipped and counted."""
        dirty = Dirty()
        first, n = batch.seq, len(batch.dev)
        skip = self._skip(first)
        if self._begin(skip, n, now):
            return dirty
        fleet = self._fleet
        if fleet.cols is None:
            self.keep_columns()
        if fleet.cols.apply(batch, skip, now, dirty):     # rows took the object path
            dirty.stores.discard(None)
            _mark_cities(dirty, fleet.store_city)
        self.seq = first + n - 1
        self._counters["applied"] += n - skip
        grown = self._record_count() - self._frozen_size
        if grown >= GC_FREEZE_STEP or grown < 0:
            self._settle_gc()
        return dirty

    def _apply_other(self, ev: dict[str, Any], now: float, dirty: Dirty) -> None:
        t = ev["type"]
        if t == "store":
            self._fleet.upsert_store(ev, dirty)
        elif t == "change":
            self._changes.upsert(ev, dirty)
        elif t == "incident":
            self._incidents.upsert(ev, dirty)
        elif t == "kpi":
            self._kpi.add(ev["metric"], ev["scope"], ev["ts"], ev["value"], ev.get("unit"), dirty.kpi)
        elif t == "voice":
            self._voice.add(ev)
            dirty.voice = True
        elif t == "control":
            dirty.controls.append(ev)
            self._counters["controls"] += 1
        else:
            self._counters["unknown_type"] += 1

    def tick(self, now: float) -> Dirty:
        """Expire silent devices (they count as ``unknown`` until their next event) and
        drop resolved incidents / finished changes past their keep time. Cheap: call it
        every frame or every second."""
        dirty = Dirty()
        self._see(now)
        self._counters["expired_devices"] += self._fleet.expire(now, dirty)
        self._incidents.sweep(now, dirty)
        self._changes.sweep(now, dirty)
        _mark_cities(dirty, self._fleet.store_city)
        return dirty

    # ------------------------------------------------------------------ devices & stores

    def device_status(self, device_id: str, now: float) -> str:
        """Effective status: ``unknown`` once ``now - last_seen > ttl_s``, else the last
        reported one. Raises KeyError for an unknown device."""
        return self._fleet.effective_status(device_id, now)

    def store_worst(self, store_id: str) -> str:
        """Worst effective device status of the store (as of the last ``tick``); "ok"
        for a store without devices."""
        return self._fleet.store_worst(store_id)

    def store_counts(self, store_id: str) -> dict[str, int]:
        """Effective status -> device count for the store (every status present)."""
        c = self._fleet.scount.get(store_id)
        return dict(c) if c else dict.fromkeys(STATUS_ORDER, 0)

    def city_counts(self, city_id: str) -> dict[str, int]:
        """Effective status -> device count over the city's known stores."""
        c = self._fleet.ccount.get(city_id)
        return dict(c) if c else dict.fromkeys(STATUS_ORDER, 0)

    def city_stores(self, city_id: str) -> list[str]:
        """Ids of the known stores in the city, sorted."""
        return sorted(self._fleet.city_stores.get(city_id, ()))

    def cities(self) -> dict[str, dict[str, Any]]:
        """City id -> city object (``id``, ``name``, ``name_en``) of the known stores."""
        return dict(self._fleet.city_info)

    def kind_counts(self) -> dict[str, dict[str, int]]:
        """Device kind -> effective status -> count (kind "" = not given)."""
        return {k: dict(v) for k, v in self._fleet.kcount.items()}

    def total_counts(self) -> dict[str, int]:
        """Effective status -> count over all devices."""
        out = dict.fromkeys(STATUS_ORDER, 0)
        for c in self._fleet.kcount.values():
            for s, n in c.items():
                out[s] += n
        return out

    def store_devices(self, store_id: str) -> list[str]:
        """Ids of the devices that name this store, sorted."""
        return sorted(self._fleet.sdevs.get(store_id, ()))

    def orphan_store_ids(self) -> list[str]:
        """Store ids named by devices but not (yet) known as stores, sorted."""
        return sorted(s for s in self._fleet.sdevs if s is not None and s not in self._fleet.stores)

    # ------------------------------------------------------------------ incidents & changes

    def open_incidents(self, scope: Scope | None = None) -> list[dict[str, Any]]:
        """Incidents not resolved, by severity (P1 first), then ``opened_at``, then id;
        with ``scope``, only those in it (see :meth:`incidents_in_scope`)."""
        recs = self._incidents.open_sorted()
        ids = self.incidents_in_scope(scope)
        return recs if ids is None else [r for r in recs if r["id"] in ids]

    def incidents_in_scope(self, scope: Scope | None) -> set[str] | None:
        """Ids of the incidents in ``scope``: one of their stores is in it (by store or by
        its city), or they name no store (they belong to every scope). None for no scope
        or a chain-wide one: every incident. Read from the incidents' per-store index: the
        cost follows the scope's stores, never every incident."""
        if scope is None or scope.chain_wide:
            return None
        fleet = self._fleet
        return self._incidents.in_scope(scope, fleet.store_city.get,
                                        lambda c: fleet.city_stores.get(c, ()))

    def incident_stats(self, scope: Scope | None = None) -> IncidentStats:
        """MTTA / MTTR of the incidents held in ``scope`` (None: the whole chain, kept
        current as incidents change): ``n_acked``, ``mtta``, ``n_resolved``, ``mttr``."""
        return self._incidents.stats(self.incidents_in_scope(scope))

    def open_by_severity(self) -> dict[str, int]:
        """Severity -> number of open (not resolved) incidents."""
        return dict(self._incidents.sev_counts)

    def recent_resolved(self, now: float, keep_s: float, scope: Scope | None = None) -> list[dict[str, Any]]:
        """Resolved incidents still held, resolved within ``keep_s`` of ``now``, newest
        first; with ``scope``, only those in it."""
        recs = self._incidents.recent_resolved(now, keep_s)
        ids = self.incidents_in_scope(scope)
        return recs if ids is None else [r for r in recs if r["id"] in ids]

    def store_incidents(self, store_id: str, include_resolved: bool = False) -> list[dict[str, Any]]:
        """Incidents naming the store (open ones unless ``include_resolved``), newest first
        (from the per-store index)."""
        inc = self._incidents
        ids: Iterable[str] = inc.by_store.get(store_id, ())
        if not include_resolved:
            ids = [i for i in ids if i in inc.open]
        out = [inc.records[i] for i in ids]
        out.sort(key=lambda r: (-r["opened_at"], r["id"]))
        return out

    def changes_in_window(self, t0: float, t1: float) -> list[dict[str, Any]]:
        """Changes whose [start, end] overlaps [t0, t1] (no end = still going), by start."""
        return self._changes.window(t0, t1)

    def store_changes(self, store_id: str, t0: float, t1: float) -> list[dict[str, Any]]:
        """Changes in [t0, t1] whose scope reaches the store (directly, via its city, or
        chain-wide), by start."""
        recs = self._changes.records
        out = []
        for cid in self._changes.reaching(store_id, self._fleet.store_city.get(store_id)):
            ch = recs[cid]
            end = ch.get("end")
            if ch["start"] <= t1 and (end is None or end >= t0):
                out.append(ch)
        out.sort(key=lambda r: (r["start"], r["id"]))
        return out

    def store_active_changes(self, store_id: str) -> list[dict[str, Any]]:
        """Planned and running changes whose scope reaches the store (it, its city, or
        chain-wide), by start (from the changes' scope index)."""
        recs = self._changes.records
        out = [recs[c] for c in self._changes.reaching(store_id, self._fleet.store_city.get(store_id))
               if recs[c]["status"] in ("planned", "running")]
        out.sort(key=lambda r: (r["start"], r["id"]))
        return out

    def changes_with_status(self, *statuses: str) -> list[dict[str, Any]]:
        """Changes whose status is one of ``statuses`` (e.g. ``"running", "failed"``), by
        start (from the per-status index, never every change)."""
        return self._changes.with_status(statuses)

    def suspects(self, incident_id: str) -> list[tuple[str, float, list[str]]]:
        """Changes that may have caused the incident, best first: ``[(change_id, score,
        reasons)]``. See ``wallboard.state.correlate``. Unknown incident -> []."""
        inc = self._incidents.records.get(incident_id)
        if inc is None:
            return []
        w = self.config.correlation_window_s
        opened = inc["opened_at"]
        named = {c: self._changes.records[c] for c in inc.get("suspect_changes", ())
                 if c in self._changes.records}
        return rank_suspects(inc, self._changes.window(opened - w, opened),
                             self._fleet.store_city.get, w, named)

    # ------------------------------------------------------------------ samples

    def voice_items(self, n: int) -> list[dict[str, Any]]:
        """The newest ``n`` voice items, newest first."""
        items = self._voice.items
        n = max(0, min(n, len(items)))
        return [items[-1 - i] for i in range(n)]

    def voice_per_minute(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        """Minute starts (epoch s, float) covering [t0, t1] and the voice count of each."""
        return self._voice.per_minute(t0, t1)

    def kpi_series(self, metric: str, scope: str) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the series' timestamps and values in arrival order (empty if none)."""
        ring = self._kpi.series.get((metric, scope))
        if ring is None:
            import numpy

            return numpy.zeros(0), numpy.zeros(0)
        return ring.arrays()

    def kpi_keys(self) -> list[tuple[str, str]]:
        """Every ``(metric, scope)`` held, sorted."""
        return sorted(self._kpi.series)

    def latest_kpi(self, metric: str, scope: str) -> tuple[float, float, str | None] | None:
        """``(ts, value, unit)`` of the series' newest point, or None."""
        ring = self._kpi.series.get((metric, scope))
        if ring is None or ring.n == 0:
            return None
        ts, v = ring.last()
        return ts, v, ring.unit

    # ------------------------------------------------------------------ snapshots

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """A JSON-serialisable copy of the whole state (see ``wallboard.state.snapshot``).
        List-valued keys may be split into parts by ``protocol.split_snapshot``.

        ``now`` (this state's clock; default: the latest ``now`` it was given) is the
        snapshot's ``clock``: device ages are ``clock - last_seen``, so a loader on
        another machine never compares this clock with its own."""
        from .snapshot import to_snapshot
        return to_snapshot(self, now)

    @classmethod
    def from_snapshot(cls, data: dict[str, Any], config: StateConfig | None = None,
                      validate: bool = True, now: float | None = None, *, take: bool = False,
                      settle_gc: bool = True) -> "LiveState":
        """Build a state equal to the one that made ``data``; raises ``SnapshotError``
        naming the bad key. After loading, repaint everything (``Dirty.everything()``).

        ``now`` is the loader's clock at receipt: every device was last heard its age
        (at the producer, at snapshot time) before ``now``, whatever the two clocks say.
        Without ``now`` the producer's clock is kept (a process reloading its own
        snapshot, e.g. the hub from its journal). ``take`` and ``settle_gc``: see
        :func:`wallboard.state.snapshot.from_snapshot` (a replay's fast trusted load)."""
        from .snapshot import from_snapshot
        return from_snapshot(cls, data, config, validate, now, take, settle_gc)


__all__ = ["LiveState", "COUNTER_NAMES"]
