"""``LiveState`` <-> a JSON-serialisable dict, exactly.

Layout of a snapshot (list-valued keys can be split into parts by
``protocol.split_snapshot``; scalar keys travel in part 0)::

    {"version": 2, "seq": int, "clock": float | None, "feed_at": float | None,
     "counters": {name: int},
     "stores": [record], "devices": [record with last_seen], "expired_devices": [id],
     "changes": [record], "finished_changes": [[id, finish_time]],
     "incidents": [record], "resolved_incidents": [[id, resolve_time]],
     "voice": [item, oldest first], "voice_minutes": [[minute_start, count]],
     "voice_newest": int | None,
     "kpi": [{"metric", "scope", "unit", "ts": [...], "values": [...]}]}   # LRU order

Clocks: ``clock`` is the producing state's ``now`` at snapshot time; ``last_seen`` and
``feed_at`` are times of that same clock, so what a snapshot says about them is only
their *age* (``clock - last_seen``: seconds since the device was last heard, at the
producer, at snapshot time). A loader on another machine passes its own ``now`` to
``from_snapshot`` and gets ``last_seen = now - age``: its ttl keeps running from when the
producer last heard the device, and no clock skew between the two machines (a wall an
hour ahead of its hub) makes fresh devices look silent or dead ones fresh. Version 1
snapshots (no ``clock``, from older journals) load with their times as they are. The records are copied both ways: a snapshot never aliases a live state.
``encode_snapshot`` gives the same snapshot as JSON bytes, encoded straight from the
live records (for the hub's journal compaction, where the copies were the cost).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import orjson

from .. import protocol as P
from .config import FINISHED_CHANGE, SEVERITIES, STATUS_ORDER, StateConfig
from .dirty import Dirty, SnapshotError

SNAPSHOT_VERSION = 2
#: Versions ``from_snapshot`` loads (1: no ``clock``; times taken as they are).
LOADABLE_VERSIONS = (1, 2)
_LIST_KEYS = ("stores", "devices", "expired_devices", "changes", "finished_changes",
              "incidents", "resolved_incidents", "voice", "voice_minutes", "kpi")


def _copy(rec: dict[str, Any]) -> dict[str, Any]:
    out = dict(rec)
    m = out.get("metrics")
    if m is not None:
        out["metrics"] = dict(m)
    return out


def _layout(st: Any, records: Callable[[Iterable[dict[str, Any]]], list[Any]],
            devices: Callable[[Iterable[dict[str, Any]]], list[Any]],
            now: float | None = None, kpi_arrays: bool = False) -> dict[str, Any]:
    """The snapshot dict of ``st``; ``records``/``devices`` turn the live record views
    into lists (copying them, or not); ``now`` is the ``clock`` (default: the latest
    time the state saw); ``kpi_arrays``: the KPI points as numpy arrays (encode it with
    ``_NUMPY``). The one place that knows the layout."""
    fleet, voice = st._fleet, st._voice
    if fleet.cols is not None:
        fleet.cols.flush()          # the columns' pending values into the records first
    return {
        "version": SNAPSHOT_VERSION,
        "seq": st.seq,
        "clock": st._clock if now is None else now,
        "feed_at": st._last_msg,
        "counters": dict(st.counters),
        "stores": records(fleet.stores.values()),
        "devices": devices(fleet.devices.values()),
        "expired_devices": sorted(fleet.expired),
        "changes": records(st._changes.records.values()),
        "finished_changes": [[k, t] for k, t in st._changes.finished.items()],
        "incidents": records(st._incidents.records.values()),
        "resolved_incidents": [[k, t] for k, t in st._incidents.resolved.items()],
        "voice": records(voice.items),
        "voice_minutes": [[m, c] for m, c in voice.minutes.items()],
        "voice_newest": voice.newest,
        "kpi": st._kpi.to_records(kpi_arrays),
    }


#: orjson writes numpy float64 arrays as the same JSON as their ``tolist()``.
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def _copies(recs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(map(dict, recs))


def _device_copies(recs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(map(_copy, recs))


def to_snapshot(st: Any, now: float | None = None) -> dict[str, Any]:
    """See the module docstring; O(size of the state). Every record is a copy."""
    return _layout(st, _copies, _device_copies, now)


def encode_snapshot(st: Any, now: float | None = None) -> bytes:
    """``orjson.dumps(to_snapshot(st))`` without the per-record copies: the JSON bytes
    of the snapshot of ``st``, made by one ``orjson.dumps`` over lists of the live
    records (~60 ms and 24 MB at 100,000 devices, against ~160 ms for the copies alone).

    Call it on the thread that owns ``st`` (the records are read, not copied, and the
    GIL is held for the whole encode, so the bytes are consistent with ``st.seq``). The
    result decodes (``orjson.loads``) to exactly what ``to_snapshot`` returns; hand it to
    ``Journal.compact`` or load it with ``LiveState.from_snapshot(orjson.loads(b))``."""
    return orjson.dumps(_layout(st, list, list, now, kpi_arrays=True), option=_NUMPY)


def live_snapshot(st: Any, now: float | None = None) -> dict[str, Any]:
    """The snapshot dict of ``st`` over its **live** records (lists of them, no copies):
    ``to_snapshot`` without the cost of copying. Encode it (``orjson.dumps``, whole or
    split by ``protocol.split_snapshot``) before ``st`` changes again, and never keep or
    mutate it: the hub holds its state updates back while it encodes one in pieces."""
    return _layout(st, list, list, now)


_DEVICES_KEY = b'"devices":[]'


def encode_snapshot_pieces(st: Any, chunk: int = 10_000, now: float | None = None) -> Iterator[bytes]:
    """:func:`encode_snapshot` in pieces: the snapshot without its devices, then the
    devices ``chunk`` records at a time, so a caller can let its event loop run between
    pieces (~6 ms each at ``chunk`` 10,000) instead of holding it for the whole encode.

    ``b"".join(pieces) == encode_snapshot(st)`` provided ``st`` is not changed while the
    pieces are being taken: the caller holds its updates back until the iterator is done
    (the hub defers its ``apply`` and ``tick``, see ``Hub.compact``)."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk!r}")
    head = orjson.dumps(_layout(st, list, lambda _recs: [], now, kpi_arrays=True), option=_NUMPY)
    at = head.find(_DEVICES_KEY)
    if at < 0 or head.find(_DEVICES_KEY, at + 1) >= 0:  # not found once: no splicing
        yield encode_snapshot(st, now)
        return
    split = at + len(_DEVICES_KEY) - 1   # just after the list's "["
    yield head[:split]
    devices = list(st._fleet.devices.values())
    for i in range(0, len(devices), chunk):
        body = orjson.dumps(devices[i:i + chunk])[1:-1]
        yield b"," + body if i else body
    yield head[split:]


# ---------------------------------------------------------------------- validation

def _num(v: Any) -> bool:
    return type(v) in (int, float)


def _check_record(rec: Any, path: str, etype: str, extra: dict[str, Any], validate: bool) -> dict[str, Any]:
    """Check one entity/sample record; return a private copy."""
    if type(rec) is not dict:
        raise SnapshotError(path, f"is {type(rec).__name__}", "an object")
    if rec.get("type") != etype:
        raise SnapshotError(f"{path}.type", f"is {rec.get('type')!r}", repr(etype))
    for key, (check, what) in extra.items():
        if key not in rec or not check(rec[key]):
            raise SnapshotError(f"{path}.{key}", "missing" if key not in rec else f"is {rec[key]!r}", what)
    if validate:
        probe = {k: v for k, v in rec.items() if k != "last_seen"}   # the one state-only key
        try:
            P.validate_event(probe, require_seq=False, require_ts=True)
        except P.ProtocolError as e:
            where = f"{path}.{e.field}" if e.field else path
            raise SnapshotError(where, str(e)) from None
    return _copy(rec)


_ID = (lambda v: type(v) is str and 0 < len(v) <= P.MAX_ID, "a string id")
_DEVICE = {"id": _ID, "status": (lambda v: v in STATUS_ORDER, "a device status"),
           "last_seen": (_num, "a number")}
_STORE = {"id": _ID}
_CHANGE = {"id": _ID, "status": (lambda v: v in P.CHANGE_STATUSES, "a change status"),
           "start": (_num, "a number")}
_INCIDENT = {"id": _ID, "status": (lambda v: v in P.INCIDENT_STATUSES, "an incident status"),
             "severity": (lambda v: v in SEVERITIES, "P1..P4"), "opened_at": (_num, "a number")}
_VOICE: dict[str, Any] = {}


def _list(d: dict[str, Any], key: str) -> list[Any]:
    v = d.get(key, [])
    if type(v) is not list:
        raise SnapshotError(key, f"is {type(v).__name__}", "a list")
    return v


def _pairs(d: dict[str, Any], key: str, known: dict[str, Any], statuses: Any,
           what: str) -> list[tuple[str, float]]:
    out = []
    for i, p in enumerate(_list(d, key)):
        if type(p) is not list or len(p) != 2 or p[0] not in known or not _num(p[1]):
            raise SnapshotError(f"{key}[{i}]", f"is {p!r}", "[known id, number]")
        if known[p[0]]["status"] not in statuses:
            raise SnapshotError(f"{key}[{i}]", f"{p[0]!r} has status {known[p[0]]['status']!r}",
                                f"the id of a {what}")
        out.append((p[0], p[1]))
    return out


def _name_bad_device(recs: list[Any]) -> None:
    """Raise the precise ``SnapshotError`` of the first device record ``_check_record``
    refuses (after ``Fleet.load_devices`` refused one)."""
    for i, r in enumerate(recs):
        _check_record(r, f"devices[{i}]", "device", _DEVICE, False)
    raise AssertionError("load_devices refused a record that _check_record accepts")  # pragma: no cover


def from_snapshot(cls: Any, d: Any, config: StateConfig | None, validate: bool,
                  now: float | None = None, take: bool = False, settle_gc: bool = True) -> Any:
    """Build a ``cls`` (``LiveState``) from ``d``; raise ``SnapshotError`` on bad data.

    ``validate=False`` skips the per-field protocol check of every record (use only for
    snapshots this process made itself). ``now``: the loader's clock (see the module
    docstring); the state's times are moved by ``now - clock``, i.e. kept as ages.
    ``take=True`` (with ``validate=False``): the caller gives ``d`` away (fresh from
    ``orjson.loads``, kept by nobody): its device records become the state's own, without
    copies, loaded in one pass (~5x faster at 100,000 devices). ``settle_gc=False``: the
    state never runs ``gc.collect``/``gc.freeze`` (a short-lived state, e.g. a replay's,
    in a process whose own long-lived state manages the collector)."""
    if type(d) is not dict:
        raise SnapshotError("(root)", f"is {type(d).__name__}", "an object")
    if d.get("version") not in LOADABLE_VERSIONS:
        raise SnapshotError("version", f"is {d.get('version')!r}",
                            " or ".join(map(str, LOADABLE_VERSIONS)))
    clock = d.get("clock")
    if clock is not None and not _num(clock):
        raise SnapshotError("clock", f"is {clock!r}", "a number or null")
    if now is not None and not _num(now):
        raise TypeError(f"from_snapshot: now is {type(now).__name__}, expected epoch seconds")
    shift = now - clock if now is not None and clock is not None else 0.0
    seq = d.get("seq")
    if type(seq) is not int or seq < 0:
        raise SnapshotError("seq", f"is {seq!r}", "an integer >= 0")
    feed_at = d.get("feed_at")
    if feed_at is not None and not _num(feed_at):
        raise SnapshotError("feed_at", f"is {feed_at!r}", "a number or null")
    counters = d.get("counters", {})
    if type(counters) is not dict or not all(type(k) is str and type(v) is int for k, v in counters.items()):
        raise SnapshotError("counters", "is not a mapping of names to integers", "{str: int}")
    newest = d.get("voice_newest")
    if newest is not None and type(newest) is not int:
        raise SnapshotError("voice_newest", f"is {newest!r}", "an integer or null")

    st = cls(config, settle_gc=settle_gc)
    dirty = Dirty()
    fleet = st._fleet
    fleet.capped = False               # a snapshot holds what its state held: no evictions
    for i, rec in enumerate(_list(d, "stores")):
        fleet.upsert_store(_check_record(rec, f"stores[{i}]", "store", _STORE, validate), dirty)
    devices = _list(d, "devices")
    ids: dict[Any, Any] = {}
    taken = take and not validate
    if taken:   # the records as they are (checked while loaded), unless two share an id
        try:
            ids = {r["id"]: r for r in devices}
        except (TypeError, KeyError):
            _name_bad_device(devices)
        taken = len(ids) == len(devices)
    if not taken:
        devices = [_check_record(r, f"devices[{i}]", "device", _DEVICE, validate) for i, r in enumerate(devices)]
        ids = {r["id"]: r for r in devices}
    expired = set()
    for i, e in enumerate(_list(d, "expired_devices")):
        if e not in ids:
            raise SnapshotError(f"expired_devices[{i}]", f"is {e!r}", "the id of a device in 'devices'")
        expired.add(e)
    if shift:
        try:
            for rec in devices:
                rec["last_seen"] += shift  # the same age, on the loader's clock
        except (TypeError, KeyError):      # only a record taken unchecked can fail here
            _name_bad_device(devices)
    if taken:
        try:
            fleet.load_devices(devices, expired, P.MAX_ID)
        except (ValueError, KeyError, TypeError):
            _name_bad_device(devices)
    else:
        for rec in devices:
            fleet.restore_device(rec, rec["id"] in expired, dirty)
    fleet.capped = True
    fleet.reindex()
    changes = [_check_record(r, f"changes[{i}]", "change", _CHANGE, validate)
               for i, r in enumerate(_list(d, "changes"))]
    cmap = {r["id"]: r for r in changes}
    st._changes.restore(changes, _pairs(d, "finished_changes", cmap, FINISHED_CHANGE, "finished change"))
    incidents = [_check_record(r, f"incidents[{i}]", "incident", _INCIDENT, validate)
                 for i, r in enumerate(_list(d, "incidents"))]
    imap = {r["id"]: r for r in incidents}
    st._incidents.restore(incidents, _pairs(d, "resolved_incidents", imap, ("resolved",),
                                            "resolved incident"))
    for i, item in enumerate(_list(d, "voice")):
        st._voice.items.append(_check_record(item, f"voice[{i}]", "voice", _VOICE, validate))
    for i, p in enumerate(_list(d, "voice_minutes")):
        if type(p) is not list or len(p) != 2 or type(p[0]) is not int or type(p[1]) is not int:
            raise SnapshotError(f"voice_minutes[{i}]", f"is {p!r}", "[minute start, count] integers")
        st._voice.minutes[p[0]] = p[1]
    st._voice.newest = newest
    st._voice.trim()
    for i, k in enumerate(_list(d, "kpi")):
        path = f"kpi[{i}]"
        if type(k) is not dict:
            raise SnapshotError(path, f"is {type(k).__name__}", "an object")
        for key in ("metric", "scope"):
            if type(k.get(key)) is not str:
                raise SnapshotError(f"{path}.{key}", f"is {k.get(key)!r}", "a string")
        if k.get("unit") is not None and type(k["unit"]) is not str:
            raise SnapshotError(f"{path}.unit", f"is {k['unit']!r}", "a string or null")
        ts, vals = k.get("ts"), k.get("values")
        if type(ts) is not list or type(vals) is not list or len(ts) != len(vals):
            raise SnapshotError(f"{path}.ts", "ts/values are not lists of the same length",
                                "two lists of numbers")
        if not all(map(_num, ts)) or not all(map(_num, vals)):
            raise SnapshotError(f"{path}.values", "holds a non-number", "numbers")
        st._kpi.restore(k)
    st.seq = seq
    st._last_msg = feed_at + shift if feed_at is not None else None
    st._clock = now if now is not None else clock
    st._counters.update(counters)
    st._settle_gc(reclaim=True)        # freeze the loaded records out of gc scans (unless settle_gc=False)
    return st
