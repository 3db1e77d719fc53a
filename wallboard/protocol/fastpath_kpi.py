"""The batch fast path for KPI samples (see :mod:`wallboard.protocol.fastpath`).

A metrics source sends batches of ``kpi`` events that all have the same keys (type,
metric, scope, value, often unit and ts, sometimes ``x_`` extension fields of plain
values). Checked one event at a time (``validate_event``, and the encoded-size measure
every event with an ``x_`` field gets), such a batch cost the hub ~10 us per event;
here every column is checked at once. Only ever *accepts*: "valid and needs no
normalisation", or "not sure" (the general path then decides, with the precise error).
Pure: stdlib only.
"""
from __future__ import annotations

from typing import Any

from wallboard.protocol.columns import float_ts_ok, numbers_ok, strs_ok
from wallboard.protocol.limits import MAX_EVENT, MAX_ID, MAX_TEXT
from wallboard.protocol.schema import _ALL_FIELDS

_KPI_KEYS = frozenset(_ALL_FIELDS["kpi"])
_PLAIN = frozenset((str, int, float, bool, type(None)))
#: Keys whose every value is at most MAX_TEXT characters (6 bytes each at worst, as JSON)
#: keep an event under MAX_EVENT without measuring it.
_MAX_KEYS = MAX_EVENT // (6 * (MAX_TEXT + MAX_ID) + 16)


def _scopes(values: list[Any]) -> bool:
    """``global``, ``city:ID`` or ``store:ID`` (few distinct values: checked once each)."""
    for v in set(values) if set(map(type, values)) == {str} else (None,):
        if type(v) is not str or len(v) > MAX_ID + 6:
            return False
        if v != "global" and not ((v.startswith("city:") or v.startswith("store:")) and v.split(":", 1)[1]):
            return False
    return True


def _free(values: list[Any]) -> bool:
    """An ``x_`` column of plain values: strings of at most MAX_TEXT characters, finite
    numbers, ints within MAX_INT, booleans, nulls (nested values: the general path)."""
    types = set(map(type, values))
    if not types <= _PLAIN:
        return False
    if str in types and max(len(v) for v in values if type(v) is str) > MAX_TEXT:
        return False
    if int in types or float in types:
        if not numbers_ok([v for v in values if type(v) is int or type(v) is float]):
            return False
    return True


def kpi_columns_ok(cols: dict[str, list[Any]], require_ts: bool) -> bool:
    """``cols``: key -> that field of every event of a batch whose events all are
    ``kpi`` with exactly these keys (``type`` and ``seq`` are the caller's)."""
    if len(cols) > _MAX_KEYS:
        return False
    for k in ("metric", "scope", "value"):
        if k not in cols:
            return False                       # required: the general path names it
    if not strs_ok(cols["metric"], 1, 100) or not _scopes(cols["scope"]) or not numbers_ok(cols["value"]):
        return False
    ts = cols.get("ts")
    if ts is None:
        if require_ts:
            return False
    elif not float_ts_ok(ts):
        return False
    for k, c in cols.items():
        if k in ("type", "seq", "metric", "scope", "value", "ts"):
            continue
        if k == "unit":
            if not strs_ok(c, 0, 20):
                return False
        elif k == "id":
            if not strs_ok(c, 1, MAX_ID):
                return False
        elif k == "deleted":   # a KPI sample is not an entity: only `false` is accepted
            if set(map(type, c)) != {bool} or any(c):
                return False
        elif k in _KPI_KEYS:
            return False                       # pragma: no cover - every kpi field is above
        elif type(k) is not str or not k.startswith("x_") or len(k) > MAX_ID or not _free(c):
            return False
    return True


__all__ = ["kpi_columns_ok"]
