"""The batch fast path: accept a whole batch column by column, or answer "not sure".

Pure: stdlib only. See the comment below for the contract.
"""
from __future__ import annotations

from itertools import chain, compress, islice, repeat
from operator import eq, itemgetter, lt, not_
from typing import Any, Callable

from wallboard.protocol.columns import NUMBER_TYPES as _NUMBER_TYPES
from wallboard.protocol.columns import finite_range as _finite_range
from wallboard.protocol.columns import float_ts_ok, numbers_ok
from wallboard.protocol.columns import strs_ok as _strs_ok
from wallboard.protocol.errors import ProtocolError
from wallboard.protocol.fastpath_kpi import kpi_columns_ok
from wallboard.protocol.limits import MAX_INT
from wallboard.protocol.schema import _ALL_FIELDS, DEVICE_STATUSES, MAX_ID, MAX_TEXT, validate_event

# --------------------------------------------------------------------------- batch fast path
# The wall's hot path is an ``events`` frame of hundreds of device status updates. Checking
# them one field at a time costs ~1.7 us per event in Python; checking a whole column of
# the batch at once (all ids, all ts, ...) with builtins that loop in C (map, set, min,
# max) costs a fraction of that. The fast path only ever *accepts*: it answers "every event
# is valid and needs no normalisation" or "not sure", and on "not sure" the batch goes
# through the general path, which gives the precise error (or accepts what the fast path
# was too strict for: integer or RFC 3339 ts, extension fields of odd shape, ...).
# tests/test_protocol.py checks both paths agree on random and mutated batches.

_type_of = itemgetter("type")
_id_of = itemgetter("id")
_ts_of = itemgetter("ts")
_seq_of = itemgetter("seq")
_dict_get = dict.get
_ONLY_DICT = frozenset((dict,))
_ONLY_STR = frozenset((str,))
_ONLY_INT = frozenset((int,))
_ONLY_BOOL = frozenset((bool,))
_NO_METRICS: dict[str, float] = {}
#: Device fields checked in columns, with a valid stand-in for events that lack the key.
_DEVICE_STR_FIELDS = (("store", 1, MAX_ID), ("kind", 1, 64), ("name", 0, 200), ("msg", 0, MAX_TEXT))
_DEVICE_KEYS = frozenset(_ALL_FIELDS["device"])
_DEVICE_STATUS_SET = frozenset(DEVICE_STATUSES)


def _column(events: list[dict], key: str, default: Any) -> list[Any]:
    """``[ev.get(key, default) for ev in events]``, looped in C (an itemgetter first:
    twice as fast when, as usual, every event has the key)."""
    try:
        return list(map(itemgetter(key), events))
    except KeyError:
        return list(map(_dict_get, events, repeat(key), repeat(default)))


def _metrics_ok(ms: list[Any]) -> bool:
    """Every item a dict of at most 200 ``name -> finite int/float`` with names of at
    most ``MAX_ID`` characters. Usual batches give every device the same metric names:
    then one column per name (an itemgetter raises TypeError for a non-dict, KeyError
    for a missing name) and one key-count sum prove the shape; otherwise all values are
    checked in one flat list."""
    m0 = ms[0]
    if type(m0) is dict and 0 < len(m0) <= 200 and len(m0) * len(ms) == sum(map(len, ms)):
        try:
            for name in m0:
                if not numbers_ok(list(map(itemgetter(name), ms))):
                    return False
            return max(map(len, m0)) <= MAX_ID
        except KeyError:
            pass                               # same count, other names: check it all
    if set(map(type, ms)) != _ONLY_DICT or max(map(len, ms)) > 200:
        return False
    values = list(chain.from_iterable(map(dict.values, ms)))
    if values:
        if not numbers_ok(values):
            return False
        if max(map(len, set().union(*ms))) > MAX_ID:   # few distinct names
            return False
    return True


def _devices_plainly_valid(devs: list[dict], require_ts: bool) -> bool:
    """Column checks of device events of any mix of shapes (the key union says which
    fields to check); False = not sure (also for any ``x_`` field: free-form values
    are checked, depth, sizes and all, by the general path)."""
    keys = set().union(*devs)
    if not keys <= _DEVICE_KEYS:
        return False
    return _device_columns_ok(devs, keys, require_ts, _column)


def _device_columns_ok(devs: list[dict], keys: Any, require_ts: bool,
                       column: Callable[[list[dict], str, Any], Any]) -> bool:
    """Check each device field in ``keys`` over all of ``devs`` (``type`` and ``seq`` are
    the caller's); ``column(devs, key, default)`` gives one field of every event, with
    ``default`` (a valid stand-in, or None where the field is required) for events
    without it."""
    if not _strs_ok(column(devs, "id", None), 1, MAX_ID):
        return False
    if require_ts or "ts" in keys:
        ts = column(devs, "ts", None if require_ts else 0.0)
        if not float_ts_ok(ts):
            return False                       # int or RFC 3339 ts: normalised by the general path
    if "status" in keys:
        if not _DEVICE_STATUS_SET.issuperset(column(devs, "status", "ok")):
            return False
    if "metrics" in keys and not _metrics_ok(column(devs, "metrics", _NO_METRICS)):
        return False
    for key, lo, hi in _DEVICE_STR_FIELDS:
        if key in keys and not _strs_ok(column(devs, key, "x"), lo, hi):
            return False
    if "ttl_s" in keys:
        ttl = column(devs, "ttl_s", 1.0)
        if not set(map(type, ttl)) <= _NUMBER_TYPES or not _finite_range(ttl, 0.0, MAX_INT) \
                or min(ttl) <= 0:                 # > 0, not just >= 0
            return False
    if "deleted" in keys and set(map(type, column(devs, "deleted", False))) != _ONLY_BOOL:
        return False
    return True


def _uniform_device_batch(events: list, require_seq: bool, require_ts: bool, gaps: bool = False) -> bool | None:
    """The usual frame: device events (or KPI samples: :mod:`.fastpath_kpi`) that all
    have the keys of the first one (e.g. type, id, ts, seq, status, metrics). Reads one
    column per key (an ``itemgetter`` pass: KeyError if an event lacks the key; with equal key counts, every event then
    has exactly those keys), checks the columns and returns True/False like
    :func:`_batch_is_plainly_valid`; None when the batch is not like that."""
    ev0 = events[0]
    if type(ev0) is not dict:
        return None
    k0 = tuple(ev0)
    n = len(events)
    kind = "kpi" if ev0.get("type") == "kpi" else "device"
    if len(k0) < 2 or len(k0) * n != sum(map(len, events)) \
            or (kind == "device" and (not _DEVICE_KEYS.issuperset(k0) or "id" not in ev0)):
        return None
    try:
        cols = {k: list(map(itemgetter(k), events)) for k in k0}
    except KeyError:
        return None                            # mixed shapes with equal key counts
    types = cols.get("type")
    if types is None or types.count(kind) != n:
        return None
    seqs = cols.get("seq")
    if require_seq:
        if seqs is None or not _seqs_ok(seqs, gaps):
            return False
    elif seqs is not None:
        return False                           # producers rarely send one; the general path checks it

    if kind == "kpi":
        return kpi_columns_ok(cols, require_ts)

    def column(devs: list[dict], key: str, default: Any) -> Any:
        c = cols.get(key)
        return c if c is not None else (default,) * n

    return _device_columns_ok(events, cols, require_ts, column)


def _seqs_ok(seqs: list[Any], gaps: bool = False) -> bool:
    """Contiguous ints from >= 1. Equal to a range of ints, each item is an int, a bool
    (possible only at index 0, as 1) or an integral float (then the sum is a float).
    ``gaps``: strictly increasing ints from >= 1 (a conflated frame)."""
    first = seqs[0]
    n = len(seqs)
    if gaps:
        return type(first) is int and first >= 1 and set(map(type, seqs)) == _ONLY_INT \
            and seqs[-1] <= MAX_INT and all(map(lt, seqs, islice(seqs, 1, None)))
    return type(first) is int and first >= 1 and first + n - 1 <= MAX_INT \
        and seqs == list(range(first, first + n)) and type(sum(seqs)) is int


def _batch_is_plainly_valid(events: list, require_seq: bool, require_ts: bool, gaps: bool = False) -> bool:
    """True when every event of the batch is valid and already normalised (float ``ts``),
    with contiguous seqs if ``require_seq``; False = not sure, use the general path.
    Never raises and never changes an event except by ``validate_event`` on non-device
    events (an idempotent normalisation the general path would do too)."""
    n = len(events)
    if n == 0:
        return False
    try:
        uniform = _uniform_device_batch(events, require_seq, require_ts, gaps)
        if uniform is not None:
            return uniform
        if set(map(type, events)) != _ONLY_DICT:
            return False
        types = list(map(_type_of, events))
        if require_seq:
            if not _seqs_ok(list(map(_seq_of, events)), gaps):
                return False
        elif any(map(dict.__contains__, events, repeat("seq"))):
            return False                       # producers rarely send one; the general path checks it
        n_dev = types.count("device")
        if n_dev == n:
            return _devices_plainly_valid(events, require_ts)
        is_dev = list(map(eq, types, repeat("device")))
        for ev in compress(events, map(not_, is_dev)):
            validate_event(ev, require_seq=require_seq, require_ts=require_ts)
        return n_dev == 0 or _devices_plainly_valid(list(compress(events, is_dev)), require_ts)
    except (ProtocolError, TypeError, KeyError, ValueError, AttributeError, OverflowError):
        return False
