"""Columnar device state: the hot fields of every device as numpy arrays.

``DeviceColumns`` is made by the first ``LiveState.apply_devices`` (a wall that
negotiated the columnar ``devices`` frames; a hub never makes one) and belongs to the
state's ``Fleet``. Each device gets a dense index (``index``: id -> i, ``names``: i -> id;
an index freed by a removed device is reused). Per index:

* ``status``: the code (``protocol.DEVICE_STATUSES`` order) of the device's reported
  status (the fleet's counts follow it);
* ``sto`` / ``kin``: the codes of the record's store (``store_ids``) and kind
  (``kind_ids``): the counts to move and the stores (and their cities) to mark dirty;
* ``status``, ``ts``, ``seq``, ``seen`` (last_seen), one float array per metric name
  (NaN: nothing newer than the record), with ``pend[i]`` set: values a ``devices``
  frame wrote that the record does not hold yet.

A ``devices`` frame is applied with numpy: one translation of the connection's indices
to the state's, the last row of each device, the status moves counted by (store, kind,
old, new) (a Python loop over the distinct moves only), and plain array stores for the
rest; no device record is touched. The record is brought up to date
(``sync``) when someone reads it: ``LiveState.devices`` is then a :class:`DeviceView`
that syncs each record it hands out, ``snapshot()``, expiry and eviction sync first,
and an ``events`` batch syncs the devices it names before applying (and notes their new
status after). So every reader sees exactly the state the object path would have built.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from .. import protocol as P
from .config import NO_KIND
from .dirty import Dirty

if TYPE_CHECKING:  # pragma: no cover
    from ..protocol.columnar import DeviceBatch
    from .fleet import Fleet

#: Distinct metric names held in columns; a frame naming more applies those rows by the
#: object path (memory stays bounded by this x the device count).
MAX_METRIC_COLUMNS = 64
_CODE = {s: i for i, s in enumerate(P.DEVICE_STATUSES)}
_NAN = float("nan")


class DeviceColumns:
    """See the module docstring. Made from (and kept beside) ``fleet.devices``."""

    def __init__(self, fleet: "Fleet") -> None:
        from .fleet import _STATUS_OBJ

        self.fleet = fleet
        self._status_obj = [_STATUS_OBJ[s] for s in P.DEVICE_STATUSES]
        self.index: dict[str, int] = {}
        self.names: list[str | None] = []
        self.free: list[int] = []
        self.gen = 0                       # bumped when an index is freed (connection maps rebuild)
        cap = max(1024, len(fleet.devices) * 5 // 4)
        self.status = np.zeros(cap, np.int8)
        self.sto = np.full(cap, -1, np.int32)
        self.kin = np.zeros(cap, np.int32)
        self.ts = np.zeros(cap)
        self.seq = np.zeros(cap, np.int64)
        self.seen = np.zeros(cap)
        self.pend = np.zeros(cap, bool)
        self._last = np.full(cap, -1, np.int64)   # scratch: the last row of each index in a frame
        self.metrics: dict[str, np.ndarray] = {}
        self.store_code: dict[Any, int] = {}
        self.store_ids: list[Any] = []
        self.kind_code: dict[str, int] = {}
        self.kind_ids: list[str] = []
        self._city_code = np.full(0, -1, np.int64)   # store code -> city code, as of fleet.city_gen
        self._city_ids: list[str] = []
        self._city_gen = -1
        self.frames = 0                    # devices frames applied
        self.fallback_rows = 0             # rows applied by the object path (new, expired, ...)
        self._conn: list[str] | None = None   # the connection dictionary _cmap translates
        self._cmap = np.full(0, -1, np.int64)
        self._filled = 0
        self._cmap_gen = 0
        for did, rec in fleet.devices.items():
            self.note(did, rec)

    # ------------------------------------------------------------------ indices
    def _grow(self, need: int) -> None:
        cap = len(self.status)
        if need <= cap:
            return
        new = max(need, cap * 2)

        def grow(a: np.ndarray, fill: Any) -> np.ndarray:
            b = np.full(new, fill, a.dtype)
            b[:cap] = a
            return b

        self.status, self.sto, self.kin = grow(self.status, 0), grow(self.sto, -1), grow(self.kin, 0)
        self.ts, self.seq, self.seen = grow(self.ts, 0.0), grow(self.seq, 0), grow(self.seen, 0.0)
        self.pend, self._last = grow(self.pend, False), grow(self._last, -1)
        self.metrics = {k: grow(a, _NAN) for k, a in self.metrics.items()}

    def note(self, did: str, rec: dict[str, Any]) -> int:
        """Give ``did`` an index (if new) and copy its record's status and store code."""
        i = self.index.get(did)
        if i is None:
            if self.free:
                i = self.free.pop()
                self.names[i] = did
            else:
                i = len(self.names)
                self._grow(i + 1)
                self.names.append(did)
            self.index[did] = i
        self.status[i] = _CODE[rec["status"]]
        sid = rec.get("store")
        if sid is None:
            self.sto[i] = -1
        else:
            c = self.store_code.get(sid)
            if c is None:
                c = self.store_code[sid] = len(self.store_ids)
                self.store_ids.append(sid)
            self.sto[i] = c
        kind = rec.get("kind", NO_KIND)
        c = self.kind_code.get(kind)
        if c is None:
            c = self.kind_code[kind] = len(self.kind_ids)
            self.kind_ids.append(kind)
        self.kin[i] = c
        return i

    def drop(self, did: str) -> None:
        """The device is gone from the fleet: free its index (its pending values go too)."""
        i = self.index.pop(did, None)
        if i is None:
            return
        self.names[i] = None
        self.pend[i] = False
        for a in self.metrics.values():
            a[i] = _NAN
        self.free.append(i)
        self.gen += 1

    # ------------------------------------------------------------------ records
    def sync(self, did: str) -> None:
        """Write ``did``'s pending column values into its record (if any)."""
        i = self.index.get(did)
        if i is not None and self.pend[i]:
            self._sync(i)

    def _sync(self, i: int) -> None:
        rec = self.fleet.devices[self.names[i]]  # type: ignore[index]
        rec["status"] = self._status_obj[self.status.item(i)]
        rec["ts"] = self.ts.item(i)
        rec["seq"] = self.seq.item(i)
        rec["last_seen"] = self.seen.item(i)
        for name, a in self.metrics.items():
            v = a.item(i)
            if v == v:                           # not NaN: written by a frame
                m = rec.get("metrics")
                if m is None:
                    m = rec["metrics"] = {}
                m[name] = v
                a[i] = _NAN
        self.pend[i] = False

    def pending(self) -> int:
        return int(np.count_nonzero(self.pend))

    def flush(self) -> int:
        """Sync every pending record (before a snapshot, eviction, ``values()``); how many."""
        idx = np.flatnonzero(self.pend)
        for i in idx.tolist():
            self._sync(i)
        return len(idx)

    def hot(self, did: str, rec: dict[str, Any]) -> tuple[str, float]:
        """``did``'s reported status and last_seen, without syncing its record."""
        i = self.index.get(did)
        if i is not None and self.pend[i]:
            return self._status_obj[self.status.item(i)], self.seen.item(i)
        return rec["status"], rec["last_seen"]

    def _cities(self) -> tuple[np.ndarray, list[str]]:
        """Store code -> city code (-1: none; the last entry stands for "no store") and
        city code -> city id, remade when a store's city changed."""
        fleet = self.fleet
        if self._city_gen != fleet.city_gen or len(self._city_code) != len(self.store_ids) + 1:
            ids = sorted(set(fleet.store_city.values()))
            code = {c: i for i, c in enumerate(ids)}
            self._city_code = np.array([code.get(fleet.store_city.get(s), -1) for s in self.store_ids] + [-1],
                                       np.int64)
            self._city_ids = ids
            self._city_gen = fleet.city_gen
        return self._city_code, self._city_ids

    # ------------------------------------------------------------------ object batches
    def before(self, ids: list[str]) -> None:
        """An ``events`` batch names these devices: their records first take the pending
        values (so the object path merges into the newest record)."""
        index, pend = self.index, self.pend
        for did in ids:
            i = index.get(did)
            if i is not None and pend[i]:
                self._sync(i)

    def after(self, ids: list[str]) -> None:
        """... and after it: note their (maybe new) status, store and index."""
        devices = self.fleet.devices
        for did in ids:
            rec = devices.get(did)
            if rec is not None:
                self.note(did, rec)

    # ------------------------------------------------------------------ devices frames
    def _translate(self, ids: list[str], dev: np.ndarray) -> np.ndarray:
        """State indices of the connection indices ``dev`` (-1: not a device here)."""
        if ids is not self._conn or self._cmap_gen != self.gen:
            self._conn, self._filled, self._cmap_gen = ids, 0, self.gen
            self._cmap = np.full(max(1024, len(ids)), -1, np.int64)
        k = len(ids)
        if self._filled < k:
            if k > len(self._cmap):
                grown = np.full(max(k, 2 * len(self._cmap)), -1, np.int64)
                grown[:self._filled] = self._cmap[:self._filled]
                self._cmap = grown
            get = self.index.get
            self._cmap[self._filled:k] = [get(d, -1) for d in ids[self._filled:k]]
            self._filled = k
        return self._cmap[dev]

    def apply(self, b: "DeviceBatch", skip: int, now: float, dirty: Dirty) -> int:
        """Apply the rows ``skip:`` of a decoded ``devices`` frame (see the module
        docstring; the cities of the stores marked are marked too); the caller checked
        the seqs and counts the batch. Returns how many rows took the object path (the
        caller then marks the cities of the stores those marked)."""
        fleet = self.fleet
        self.frames += 1
        if skip:
            dev = np.array(b.dev[skip:], np.int64)
            codes, ts = np.array(b.status[skip:], np.int8), np.array(b.ts[skip:], np.float64)
            mcols = {name: np.array(col[skip:], np.float64) for name, col in b.metrics.items()}
        else:                                             # (no list copies)
            dev = np.array(b.dev, np.int64)
            codes, ts = np.array(b.status, np.int8), np.array(b.ts, np.float64)
            mcols = {name: np.array(col, np.float64) for name, col in b.metrics.items()}
        si = self._translate(b.ids, dev)
        first = b.seq + skip
        fb = si < 0                                       # not (yet) a device of this state
        if fleet.expired:                                 # recovering devices: the object path
            names, expired = self.names, fleet.expired
            known = np.flatnonzero(~fb)
            fb[known[[names[i] in expired for i in si[known].tolist()]]] = True
        extra = [k for k in mcols if k not in self.metrics]
        if len(self.metrics) + len(extra) > MAX_METRIC_COLUMNS:
            room = MAX_METRIC_COLUMNS - len(self.metrics)
            for k in extra[max(0, room):]:
                fb |= ~np.isnan(mcols.pop(k))             # rows naming a metric past the bound
        nfb = 0
        if fb.any():
            rows = np.flatnonzero(fb)
            gen = self.gen
            self._fallback(b, skip, rows.tolist(), dev, now, dirty)
            keep = np.flatnonzero(~fb)
            nfb = len(rows)
            if self.gen != gen and keep.size:             # a device was removed (evicted):
                self._fallback(b, skip, keep.tolist(), dev, now, dirty)   # indices moved
                return nfb + len(keep)
            if not keep.size:
                return nfb
            si, codes, ts = si[keep], codes[keep], ts[keep]
            mcols = {k: v[keep] for k, v in mcols.items()}
            rowseq = first + keep
        else:
            rowseq = None
        n = len(si)
        # the last row of each device (what it holds after the frame): the highest row
        # per index (ufunc.at is exact with repeated indices), then the rows holding it
        rows = np.arange(n)
        scratch = self._last
        np.maximum.at(scratch, si, rows)
        last = np.flatnonzero(scratch[si] == rows)
        u = si[last]
        scratch[u] = -1
        new = codes[last]
        changed = np.flatnonzero(new != self.status[u])
        if changed.size:
            cu = u[changed]
            self._move_counts(cu, self.status[cu], new[changed], dirty)
            self.status[cu] = new[changed]
        self.ts[u] = ts[last]
        self.seq[u] = (first + last) if rowseq is None else rowseq[last]
        self.seen[u] = now
        self.pend[u] = True
        for name, col in mcols.items():
            a = self.metrics.get(name)
            if a is None:
                a = self.metrics[name] = np.full(len(self.status), _NAN)
            if None not in b.metrics[name]:                # every row carries it (the usual case)
                a[u] = col[last]
                continue
            ok = ~np.isnan(col)
            if ok.any():
                r = np.flatnonzero(ok)
                dr = si[r]
                np.maximum.at(scratch, dr, r)
                lr = r[scratch[dr] == r]
                a[si[lr]] = col[lr]
                scratch[dr] = -1
        dirty.mark_device_index(self.names, u)
        sc = np.flatnonzero(np.bincount(self.sto[u] + 1)).tolist()    # store codes + 1, once each
        if sc[0] == 0:
            del sc[0]                                     # no store
        sc = [c - 1 for c in sc]
        store_ids = self.store_ids
        dirty.stores.update(map(store_ids.__getitem__, sc))
        city_code, city_ids = self._cities()
        cc = city_code[sc]
        dirty.cities.update(map(city_ids.__getitem__, np.flatnonzero(np.bincount(cc[cc >= 0])).tolist()))
        return nfb

    def _move_counts(self, idx: np.ndarray, old: np.ndarray, new: np.ndarray, dirty: Dirty) -> None:
        """Devices ``idx`` moved from status codes ``old`` to ``new``: the fleet's counts
        per store, city and kind follow (what ``Fleet.status_moved`` does per device), with
        one bincount over the three tables and one dict update per count that changed."""
        fleet, objs = self.fleet, self._status_obj
        city_code, city_ids = self._cities()
        ns, nc = len(self.store_ids) + 1, len(city_ids) + 1
        sto = self.sto[idx].astype(np.int64) + 1          # 0: no store
        cit = city_code[sto - 1]                          # -1: no city -> the spare slot nc - 1
        cit[cit < 0] = nc - 1
        kin = self.kin[idx].astype(np.int64)
        base = np.concatenate((sto * 6, (ns + cit) * 6, (ns + nc + kin) * 6))
        o, w = np.tile(old.astype(np.int64), 3), np.tile(new.astype(np.int64), 3)
        size = (ns + nc + len(self.kind_ids)) * 6
        delta = np.bincount(base + w, minlength=size) - np.bincount(base + o, minlength=size)
        nz = np.flatnonzero(delta)
        stores, cities, kinds = [None, *self.store_ids], city_ids, self.kind_ids
        scount, ccount, kcount = fleet.scount, fleet.ccount, fleet.kcount
        for key, d in zip(nz.tolist(), delta[nz].tolist()):
            slot, code = divmod(key, 6)
            if slot < ns:
                scount[stores[slot]][objs[code]] += d
            elif slot < ns + nc - 1:
                ccount[cities[slot - ns]][objs[code]] += d
            elif slot >= ns + nc:
                kcount[kinds[slot - ns - nc]][objs[code]] += d
        dirty.kinds.update(map(kinds.__getitem__, set(kin.tolist())))

    def _fallback(self, b: "DeviceBatch", skip: int, rows: list[int], dev: np.ndarray, now: float,
                  dirty: Dirty) -> None:
        """Rows of new, expired or (past the metric bound) unusual devices: as events, in
        seq order, by the fleet's object path; the new devices get their indices."""
        fleet = self.fleet
        apply_device, devices = fleet.apply_device, fleet.devices
        conn = dev.tolist()
        for r in rows:
            ev = b.event(skip + r)
            did = ev["id"]
            self.sync(did)
            apply_device(ev, now, dirty)
            rec = devices.get(did)
            if rec is not None:
                i = self.note(did, rec)
                if b.ids is self._conn and self._cmap_gen == self.gen:
                    self._cmap[conn[r]] = i
        self.fallback_rows += len(rows)


class DeviceView(Mapping):
    """``LiveState.devices`` while columns are kept: the records, each synced with its
    pending column values as it is handed out (``values()``/``items()`` sync all)."""

    __slots__ = ("_d", "_c")

    def __init__(self, devices: dict[str, dict[str, Any]], cols: DeviceColumns) -> None:
        self._d = devices
        self._c = cols

    def __getitem__(self, did: str) -> dict[str, Any]:
        rec = self._d[did]
        self._c.sync(did)
        return rec

    def get(self, did: str, default: Any = None) -> Any:
        rec = self._d.get(did)
        if rec is None:
            return default
        self._c.sync(did)
        return rec

    def __contains__(self, did: object) -> bool:
        return did in self._d

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def keys(self) -> Any:
        return self._d.keys()

    def values(self) -> Any:
        self._c.flush()
        return self._d.values()

    def items(self) -> Any:
        self._c.flush()
        return self._d.items()


__all__ = ["DeviceColumns", "DeviceView", "MAX_METRIC_COLUMNS"]
