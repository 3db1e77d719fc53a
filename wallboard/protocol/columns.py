"""Column checks shared by the batch fast paths (:mod:`.fastpath`, :mod:`.fastpath_kpi`):
one field of every event of a batch, checked with builtins that loop in C. Each answers
"valid" or "not sure" (False), never raises but TypeError for a non-str in
:func:`strs_ok` (the fast path's caller treats it as "not sure"). Pure: stdlib only."""
from __future__ import annotations

import math
from typing import Any

from wallboard.protocol.limits import MAX_INT

ONLY_FLOAT = frozenset((float,))
NUMBER_TYPES = frozenset((int, float))
#: The latest ``ts`` the fast paths accept as already normalised (year 3000).
TS_MAX = 32503680000.0


def strs_ok(values: list[Any], lo: int, hi: int) -> bool:
    """All strings (``join`` raises TypeError for anything else) of ``lo..hi`` chars."""
    "".join(values)
    lens = list(map(len, values))
    return min(lens) >= lo and max(lens) <= hi


def finite_range(values: list[Any], lo: float, hi: float) -> bool:
    """All of ``values`` (already known to be int/float) finite and within [lo, hi]. NaN
    fails every comparison, so it could slip past min/max; it makes the sum NaN."""
    return min(values) >= lo and max(values) <= hi and math.isfinite(sum(values))


def ints_in_range(values: list[Any]) -> bool:
    """Every number within +-MAX_INT (floats beyond it too: then "not sure", and the
    general path, which bounds only integers, decides)."""
    return min(values) >= -MAX_INT and max(values) <= MAX_INT


def numbers_ok(values: list[Any]) -> bool:
    """ints and floats only (bool is its own type); one NaN or inf makes the sum not
    finite (so does an overflowing sum of huge values: then "not sure"); ints within
    MAX_INT."""
    types = set(map(type, values))
    if not types <= NUMBER_TYPES or not math.isfinite(sum(values)):
        return False
    return int not in types or ints_in_range(values)


def float_ts_ok(ts: list[Any]) -> bool:
    """Float timestamps in [0, TS_MAX] (an int or RFC 3339 ``ts`` is normalised by the
    general path)."""
    return set(map(type, ts)) == ONLY_FLOAT and finite_range(ts, 0.0, TS_MAX)


__all__ = ["ONLY_FLOAT", "NUMBER_TYPES", "TS_MAX", "strs_ok", "finite_range", "ints_in_range", "numbers_ok",
           "float_ts_ok"]
