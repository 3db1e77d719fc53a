"""Stores and devices with their incrementally kept roll-ups and device staleness.

``Fleet`` is owned by ``LiveState``; widgets use the ``LiveState`` queries. Counts are by
*effective* status: a device silent past its ttl counts as ``unknown`` from the ``tick``
that noticed it until its next event. ``last_seen`` is the state's own clock (the ``now``
of the ``apply`` that carried the device's last event), never the producer ``ts``, so a
producer with a skewed clock cannot make a dead device look fresh.

Staleness uses one heap of ``(deadline, device_id)`` with lazy deletion: ``_armed`` maps
each device to the deadline of its one authoritative entry; other entries are stale and
dropped when popped. An event only moves ``last_seen``; the entry is re-armed when it
comes due, so the hot path never touches the heap.
"""
from __future__ import annotations

import heapq
from itertools import islice
from sys import intern
from typing import Any

from .config import NO_KIND, STATUS_ORDER, StateConfig, zero_counts
from .dirty import Dirty


_SHARED = ("type", "store", "kind", "status")
#: Record keys written or read by every status update (``LiveState.apply``), put first
#: in a new device record.
_HOT_KEYS = ("ts", "seq", "status", "metrics", "store")
_STATUS_OBJ = {s: intern(s) for s in STATUS_ORDER}


def _share_strings(rec: dict[str, Any]) -> None:
    """Intern the few-valued strings of a device record: 100,000 devices then share a
    handful of "pos"/"ok"/store-id objects instead of holding one copy each."""
    for k in _SHARED:
        v = rec.get(k)
        if v is not None:
            rec[k] = intern(v)


def _merge_metrics(rec: dict[str, Any], old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
    """After ``rec.update(ev)``: metrics merge key by key into the record's own dict (the
    event's dict is never kept, so a later event cannot alias it)."""
    if new is None:
        return
    if old is None:
        rec["metrics"] = dict(new)
    else:
        old.update(new)
        rec["metrics"] = old



def heap_in_order(heap: list[Any]) -> Any:
    """The entries of the binary min-heap ``heap`` (a ``heapq`` list), smallest first,
    lazily: taking m of them costs O(m log m) and never looks at the rest, where
    ``heapq.nsmallest(m, heap)`` reads every entry (a 1,000-device batch under a full
    ``max_devices`` of 20,000 spent ~10 ms of the hub's loop in it per batch). The heap
    must not change while this is consumed."""
    if not heap:
        return
    n = len(heap)
    frontier = [(heap[0], 0)]
    pop, push = heapq.heappop, heapq.heappush
    while frontier:
        item, i = pop(frontier)
        yield item
        c = 2 * i + 1
        if c < n:
            push(frontier, (heap[c], c))
            if c + 1 < n:
                push(frontier, (heap[c + 1], c + 1))

class Fleet:
    """Stores, devices and their aggregates (per store, per city, per kind)."""

    def __init__(self, default_ttl_s: float, counters: dict[str, int], config: StateConfig | None = None) -> None:
        self.default_ttl = float(default_ttl_s)
        self.counters = counters
        cfg = config or StateConfig()
        self.max_devices, self.max_stores, self.evict_after = cfg.max_devices, cfg.max_stores, cfg.evict_after_s
        self.capped = True                              # off while a snapshot loads
        self.device_lru: list[tuple[int, str]] = []     # (seq, device id), lazy: entries <= the record's seq
        self.empty_stores: list[tuple[int, str]] = []   # (seq, store id) of stores without devices, lazy
        self.stores: dict[str, dict[str, Any]] = {}
        self.devices: dict[str, dict[str, Any]] = {}
        self.store_city: dict[str, str] = {}           # existing store -> its city id
        self.city_stores: dict[str, set[str]] = {}
        self.city_info: dict[str, dict[str, Any]] = {}  # city id -> {"id", "name", ...}
        self.scount: dict[Any, dict[str, int]] = {}     # store id (or None) -> counts
        self.sdevs: dict[Any, set[str]] = {}            # store id (or None) -> device ids
        self.ccount: dict[str, dict[str, int]] = {}
        self.kcount: dict[str, dict[str, int]] = {}
        self.expired: set[str] = set()
        self.heap: list[tuple[float, str]] = []
        self.armed: dict[str, float] = {}
        self.orphans = 0                                 # devices whose store is unknown
        #: Columnar hot fields (``wallboard.state.columns``), made by the first
        #: ``LiveState.apply_devices``; None: the records are all there is.
        self.cols: Any = None
        self.city_gen = 0                                # bumped when a store's city changes

    # ------------------------------------------------------------------ counting

    def status_moved(self, sid: Any, kind: str, old: str, new: str, dirty: Dirty, k: int = 1) -> None:
        """``k`` devices of ``sid``/``kind`` changed effective status ``old`` -> ``new``."""
        c = self.scount[sid]
        c[old] -= k
        c[new] += k
        city = self.store_city.get(sid)
        if city is not None:
            c = self.ccount[city]
            c[old] -= k
            c[new] += k
        c = self.kcount[kind]
        c[old] -= k
        c[new] += k
        dirty.kinds.add(kind)

    def _link(self, did: str, sid: Any, kind: str, eff: str, dirty: Dirty) -> None:
        devs = self.sdevs.get(sid)
        if devs is None:
            devs = self.sdevs[sid] = set()
            self.scount[sid] = zero_counts()
        devs.add(did)
        self.scount[sid][eff] += 1
        if sid not in self.stores:
            self.orphans += 1
        city = self.store_city.get(sid)
        if city is not None:
            self.ccount[city][eff] += 1
            dirty.cities.add(city)
        kc = self.kcount.get(kind)
        if kc is None:
            kc = self.kcount[kind] = zero_counts()
        kc[eff] += 1
        dirty.kinds.add(kind)
        if sid is not None:
            dirty.stores.add(sid)

    def _unlink(self, did: str, sid: Any, kind: str, eff: str, dirty: Dirty) -> None:
        devs = self.sdevs[sid]
        devs.discard(did)
        self.scount[sid][eff] -= 1
        if sid not in self.stores:
            self.orphans -= 1
        if not devs:
            del self.sdevs[sid]
            del self.scount[sid]
            rec = self.stores.get(sid)
            if rec is not None:
                heapq.heappush(self.empty_stores, (rec.get("seq", 0), sid))
        city = self.store_city.get(sid)
        if city is not None:
            self.ccount[city][eff] -= 1
            dirty.cities.add(city)
        kc = self.kcount[kind]
        kc[eff] -= 1
        if not any(kc.values()):
            del self.kcount[kind]
        dirty.kinds.add(kind)
        if sid is not None:
            dirty.stores.add(sid)

    def _ttl(self, rec: dict[str, Any]) -> float:
        return rec.get("ttl_s", self.default_ttl)

    def _arm(self, did: str, deadline: float) -> None:
        self.armed[did] = deadline
        heapq.heappush(self.heap, (deadline, did))

    # ------------------------------------------------------------------ devices

    def apply_device(self, ev: dict[str, Any], now: float, dirty: Dirty) -> None:
        """A device event that missed ``apply``'s inline path: take the short merge when
        it repeats store/kind/ttl_s unchanged, else the general path."""
        did = ev["id"]
        rec = self.devices.get(did)
        if rec is None or "deleted" in ev or did in self.expired:
            self.upsert_device(ev, now, dirty)
            return
        sid = rec.get("store")
        x = ev.get("store")
        if x is not None and x != sid:
            self.upsert_device(ev, now, dirty)
            return
        x = ev.get("kind")
        if x is not None and x != rec.get("kind"):
            self.upsert_device(ev, now, dirty)
            return
        x = ev.get("ttl_s")
        if x is not None and x != rec.get("ttl_s"):
            self.upsert_device(ev, now, dirty)
            return
        old = rec["status"]
        rm = rec.get("metrics")
        kind = rec.get("kind")
        rec.update(ev)
        # store and kind are unchanged here: put the shared objects back instead of
        # interning the event's copies again; only the status may be new
        rec["type"] = "device"
        if sid is not None:
            rec["store"] = sid
        if kind is not None:
            rec["kind"] = kind
        st = rec.get("status")
        if st is not None:
            rec["status"] = _STATUS_OBJ.get(st) or intern(st)
        _merge_metrics(rec, rm, ev.get("metrics"))
        rec["last_seen"] = now
        new = rec["status"]
        if new != old:
            self.status_moved(sid, rec.get("kind", NO_KIND), old, new, dirty)
        dirty.devices.add(did)
        if sid is not None:
            dirty.stores.add(sid)

    def upsert_device(self, ev: dict[str, Any], now: float, dirty: Dirty) -> None:
        """The general device path: create, delete, move, ttl change, recovery."""
        did = ev["id"]
        rec = self.devices.get(did)
        if ev.get("deleted"):
            if rec is None:
                self.counters["deleted_unknown"] += 1
                return
            self.remove_device(did, dirty)
            return
        dirty.devices.add(did)
        if rec is None:
            if self.capped and len(self.devices) >= self.max_devices and not self._evict_device(ev, dirty):
                self._count("refused_devices")
                dirty.devices.discard(did)
                return
            # the keys every status update writes first: their entries then share the
            # first cache lines of the record's hash table (fewer misses per event)
            rec = {k: ev[k] for k in _HOT_KEYS if k in ev}
            rec["last_seen"] = now
            rec.update(ev)
            rec.pop("deleted", None)
            m = rec.get("metrics")
            if m is not None:
                rec["metrics"] = dict(m)
            rec.setdefault("status", "unknown")
            _share_strings(rec)
            rec["last_seen"] = now
            self.devices[did] = rec
            dirty.moved.add(did)
            self._link(did, rec.get("store"), rec.get("kind", NO_KIND), rec["status"], dirty)
            self._arm(did, now + self._ttl(rec))
            heapq.heappush(self.device_lru, (rec.get("seq", 0), did))
            return
        was_expired = did in self.expired
        old_eff = "unknown" if was_expired else rec["status"]
        old_sid = rec.get("store")
        old_kind = rec.get("kind", NO_KIND)
        old_ttl = self._ttl(rec)
        rm = rec.get("metrics")
        rec.update(ev)
        rec.pop("deleted", None)
        _merge_metrics(rec, rm, ev.get("metrics"))
        _share_strings(rec)
        rec["last_seen"] = now
        new_sid = rec.get("store")
        new_kind = rec.get("kind", NO_KIND)
        new = rec["status"]
        if new_sid != old_sid or new_kind != old_kind:
            dirty.moved.add(did)
            self._unlink(did, old_sid, old_kind, old_eff, dirty)
            self._link(did, new_sid, new_kind, new, dirty)
        elif new != old_eff:
            self.status_moved(old_sid, old_kind, old_eff, new, dirty)
        if old_sid is not None:
            dirty.stores.add(old_sid)
        new_ttl = self._ttl(rec)
        if was_expired:
            self.expired.discard(did)
            self._arm(did, now + new_ttl)
        elif new_ttl < old_ttl:
            self._arm(did, now + new_ttl)

    def remove_device(self, did: str, dirty: Dirty) -> None:
        """Forget a device (``deleted: true``) and take it out of every count."""
        if self.cols is not None:
            self.cols.sync(did)                           # its status may be in the columns
        rec = self.devices.pop(did)
        if self.cols is not None:
            self.cols.drop(did)
        eff = "unknown" if did in self.expired else rec["status"]
        self.expired.discard(did)
        self.armed.pop(did, None)
        self._unlink(did, rec.get("store"), rec.get("kind", NO_KIND), eff, dirty)
        dirty.devices.add(did)
        dirty.moved.add(did)

    def restore_device(self, rec: dict[str, Any], expired: bool, dirty: Dirty) -> None:
        """Load one device record from a snapshot (``last_seen`` included)."""
        did = rec["id"]
        if did in self.devices:
            self.remove_device(did, dirty)
        _share_strings(rec)
        self.devices[did] = rec
        dirty.moved.add(did)
        eff = "unknown" if expired else rec["status"]
        self._link(did, rec.get("store"), rec.get("kind", NO_KIND), eff, dirty)
        if expired:
            self.expired.add(did)
        else:
            self._arm(did, rec["last_seen"] + self._ttl(rec))

    def load_devices(self, recs: list[dict[str, Any]], expired: set[str], max_id: int) -> None:
        """:meth:`restore_device` for every record of a snapshot at once, into a fleet that
        holds no device yet: the same records, counts and deadlines, without the per-record
        calls and dirty marks (a loaded state is repainted whole). The records are kept as
        they are (the caller gives them away; their ids are distinct). Each is checked on
        the way (a dict of type "device", a string id of 1..``max_id`` characters, a known
        status, a number ``last_seen``): a bad one raises ``ValueError``, ``KeyError`` or
        ``TypeError`` with the fleet half loaded -- the caller drops it and names the record."""
        assert not self.devices, "load_devices: only into an empty fleet"
        devices, sdevs, scount, ccount, kcount = self.devices, self.sdevs, self.scount, self.ccount, self.kcount
        stores, store_city, default, armed = self.stores, self.store_city, self.default_ttl, self.armed
        status_obj = _STATUS_OBJ
        deadlines: list[tuple[float, str]] = []
        per_store: dict[Any, tuple[set[str], dict[str, int], dict[str, int] | None, int]] = {}
        orphans = 0
        for rec in recs:
            did = rec["id"]
            seen = rec["last_seen"]
            if (rec["type"] != "device" or type(did) is not str or not 0 < len(did) <= max_id
                    or (type(seen) is not float and type(seen) is not int)):
                raise ValueError(did)
            eff = rec["status"] = status_obj[rec["status"]]
            sid = rec.get("store")
            if sid is not None:
                rec["store"] = sid = intern(sid)
            kind = rec.get("kind", NO_KIND)
            if kind is not None and kind is not NO_KIND:
                rec["kind"] = kind = intern(kind)
            devices[did] = rec
            if expired and did in expired:
                eff = "unknown"
            else:
                t = armed[did] = seen + rec.get("ttl_s", default)
                deadlines.append((t, did))
            slot = per_store.get(sid)
            if slot is None:
                city = store_city.get(sid)
                sdevs[sid] = set()
                slot = per_store[sid] = (sdevs[sid], scount.setdefault(sid, zero_counts()),
                                         ccount[city] if city is not None else None, sid not in stores)
            slot[0].add(did)
            slot[1][eff] += 1
            if slot[2] is not None:
                slot[2][eff] += 1
            orphans += slot[3]
            kc = kcount.get(kind)
            if kc is None:
                kc = kcount[kind] = zero_counts()
            kc[eff] += 1
        self.orphans += orphans
        self.expired |= expired
        self.heap.extend(deadlines)
        heapq.heapify(self.heap)

    def expire(self, now: float, dirty: Dirty) -> int:
        """Turn devices silent past their ttl into ``unknown``; return how many."""
        heap, armed, devices, cols = self.heap, self.armed, self.devices, self.cols
        n = 0
        while heap and heap[0][0] < now:
            deadline, did = heapq.heappop(heap)
            if armed.get(did) != deadline:
                continue                                  # stale entry
            if cols is not None:
                cols.sync(did)                            # last_seen may be in the columns
            rec = devices[did]
            actual = rec["last_seen"] + rec.get("ttl_s", self.default_ttl)
            if actual < now:
                del armed[did]
                self.expired.add(did)
                st = rec["status"]
                if st != "unknown":
                    self.status_moved(rec.get("store"), rec.get("kind", NO_KIND), st, "unknown", dirty)
                dirty.devices.add(did)
                sid = rec.get("store")
                if sid is not None:
                    dirty.stores.add(sid)
                n += 1
            else:
                armed[did] = actual
                heapq.heappush(heap, (actual, did))
        if len(heap) > 2 * len(armed) + 1024:            # too many stale entries: rebuild
            self.heap = [(d, i) for i, d in armed.items()]
            heapq.heapify(self.heap)
        return n

    def effective_status(self, did: str, now: float) -> str:
        rec = self.devices[did]
        status, seen = (rec["status"], rec["last_seen"]) if self.cols is None else self.cols.hot(did, rec)
        if did in self.expired or now > seen + rec.get("ttl_s", self.default_ttl):
            return "unknown"
        return status

    # ------------------------------------------------------------------ stores

    def upsert_store(self, ev: dict[str, Any], dirty: Dirty) -> None:
        """Create, merge or delete a store; attach waiting (orphan) devices to it."""
        # interned like the devices' "store" values, so the per-store dicts (store_city,
        # scount, ...) find them by identity without reading the key string (cold memory)
        sid = intern(ev["id"])
        rec = self.stores.get(sid)
        if ev.get("deleted"):
            if rec is None:
                self.counters["deleted_unknown"] += 1
                return
            self._set_city(sid, None, dirty)
            del self.stores[sid]
            self.orphans += len(self.sdevs.get(sid, ()))
            dirty.stores.add(sid)
            return
        if rec is None:
            if self.capped and len(self.stores) >= self.max_stores and not self._evict_store(ev, dirty):
                self._count("refused_stores")
                return
            rec = dict(ev)
            rec.pop("deleted", None)
            rec["id"] = sid
            self.stores[sid] = rec
            self.orphans -= len(self.sdevs.get(sid, ()))
            if not self.sdevs.get(sid):
                heapq.heappush(self.empty_stores, (rec.get("seq", 0), sid))
        else:
            rec.update(ev)
            rec.pop("deleted", None)
        city = rec.get("city")
        self._set_city(sid, city["id"] if city else None, dirty)
        if city:
            self.city_info[city["id"]] = city
        dirty.stores.add(sid)

    def _set_city(self, sid: str, city: str | None, dirty: Dirty) -> None:
        old = self.store_city.get(sid)
        if old == city:
            if city is not None:
                dirty.cities.add(city)
            return
        counts = self.scount.get(sid)
        self.city_gen += 1
        if old is not None:
            del self.store_city[sid]
            members = self.city_stores[old]
            members.discard(sid)
            if counts:
                oc = self.ccount[old]
                for s, n in counts.items():
                    oc[s] -= n
            if not members:
                del self.city_stores[old]
                del self.ccount[old]
                self.city_info.pop(old, None)
            dirty.cities.add(old)
        if city is not None:
            self.store_city[sid] = city
            self.city_stores.setdefault(city, set()).add(sid)
            cc = self.ccount.get(city)
            if cc is None:
                cc = self.ccount[city] = zero_counts()
            if counts:
                for s, n in counts.items():
                    cc[s] += n
            dirty.cities.add(city)

    # ------------------------------------------------------------------ entity caps

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _evict_device(self, ev: dict[str, Any], dirty: Dirty) -> bool:
        """Make room for the device of ``ev``: evict the least recently updated device
        (lowest seq) if its last ``ts`` is ``ttl_s + evict_after_s`` before ``ev``'s."""
        heap, devices = self.device_lru, self.devices
        if self.cols is not None:
            self.cols.flush()                          # seq and ts may be in the columns
        if len(heap) > 2 * len(devices) + 1024:       # many stale entries: rebuild
            self.reindex()
        when = ev.get("ts") or 0.0
        while heap:
            seq, did = heap[0]
            rec = devices.get(did)
            if rec is None:
                heapq.heappop(heap)                    # deleted or evicted since
                continue
            cur = rec.get("seq", 0)
            if cur != seq:
                heapq.heapreplace(heap, (cur, did))    # updated since: move it to its place
                continue
            if (rec.get("ts") or 0.0) + self._ttl(rec) + self.evict_after >= when:
                return False                           # the least recent one is not long silent
            heapq.heappop(heap)
            self.remove_device(did, dirty)
            self._count("evicted_devices")
            return True
        return False

    def _evict_store(self, ev: dict[str, Any], dirty: Dirty) -> bool:
        """Make room for the store of ``ev``: evict the least recently updated store that
        has no devices, if its last ``ts`` is ``evict_after_s`` before ``ev``'s."""
        heap, stores = self.empty_stores, self.stores
        if len(heap) > 2 * len(stores) + 1024:
            self.reindex()
        when = ev.get("ts") or 0.0
        while heap:
            seq, sid = heap[0]
            rec = stores.get(sid)
            if rec is None or self.sdevs.get(sid):
                heapq.heappop(heap)                    # gone, or has devices (pushed again when empty)
                continue
            cur = rec.get("seq", 0)
            if cur != seq:
                heapq.heapreplace(heap, (cur, sid))
                continue
            if (rec.get("ts") or 0.0) + self.evict_after >= when:
                return False
            heapq.heappop(heap)
            self.upsert_store({"type": "store", "id": sid, "deleted": True}, dirty)
            self._count("evicted_stores")
            return True
        return False

    def evictable_devices(self, when: float, k: int) -> int:
        """How many of the ``k`` least recently updated devices the caps would evict for
        new devices with event ``ts`` ``when`` (the silent ones at the head of the order,
        as ``_evict_device`` takes them), without evicting anything: the hub asks this
        before it queues a batch that adds devices past ``max_devices``."""
        if self.cols is not None:
            self.cols.flush()
        return self._evictable(self.device_lru, self.devices, when, k, lambda r: self._ttl(r) + self.evict_after,
                               lambda sid: True)

    def evictable_stores(self, when: float, k: int) -> int:
        """The same for stores (only stores without devices are evicted)."""
        return self._evictable(self.empty_stores, self.stores, when, k, lambda r: self.evict_after,
                               lambda sid: not self.sdevs.get(sid))

    @staticmethod
    def _evictable(heap: list[tuple[int, str]], records: dict[str, dict[str, Any]], when: float, k: int,
                   grace: Any, eligible: Any) -> int:
        if k <= 0 or not heap:
            return 0
        # the usual answer under a flood of new ids: the head is current and not silent
        seq, rid = heap[0]
        rec = records.get(rid)
        if rec is not None and rec.get("seq", 0) == seq and eligible(rid) and \
                (rec.get("ts") or 0.0) + grace(rec) >= when:
            return 0
        n = 0
        for seq, rid in islice(heap_in_order(heap), 2 * k + 64):
            rec = records.get(rid)
            if rec is None or rec.get("seq", 0) != seq or not eligible(rid):
                continue                               # gone, updated since, or not evictable
            if (rec.get("ts") or 0.0) + grace(rec) >= when:
                break                                  # the least recent one left is not long silent
            n += 1
            if n >= k:
                break
        return n

    def reindex(self) -> None:
        """Rebuild both eviction heaps from the records (after a snapshot load, or when
        stale entries pile up)."""
        if self.cols is not None:
            self.cols.flush()
        self.device_lru = [(r.get("seq", 0), d) for d, r in self.devices.items()]
        heapq.heapify(self.device_lru)
        self.empty_stores = [(r.get("seq", 0), s) for s, r in self.stores.items() if not self.sdevs.get(s)]
        heapq.heapify(self.empty_stores)

    # ------------------------------------------------------------------ queries

    def store_worst(self, sid: str) -> str:
        c = self.scount.get(sid)
        if c:
            for s in reversed(STATUS_ORDER):
                if c[s]:
                    return s
        return "ok"
