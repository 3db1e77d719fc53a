"""What a KPI means: which way is good, how small a move is noise, and when its stores
are not trading yet. Pure (no Qt): the layout schema fills the defaults with it and the
KPI tiles judge their deltas with it.

- :func:`good_default` -- ``"up"`` for throughput-like metrics (orders, GMV, footfall,
  payment success), ``"down"`` for latency, queue length, error/failure rates; ``None``
  (no judgement: the delta is shown neutral) for a metric of no known kind.
- :func:`resolve_good` -- the KPI's good direction and threshold direction from its
  ``good`` / ``direction`` options (either implies the other) or, when neither is given,
  from its kind and its thresholds' order.
- :func:`dead_band_default` / :func:`delta_tone` -- a move within the dead band is neutral
  ("=" in grey): 99.5 % against 99.5 % is not red.
- :func:`stores_phase` -- ``None`` while any of the KPI's stores trades, else
  ``"not_open"`` (planned, or opening before its ``opens_at``) or ``"closed"``.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

GOOD = ("up", "down")
DIRECTIONS = ("up_bad", "down_bad")

#: Words (between ``_ . : -``) that make a metric "lower is better"; checked first, so
#: ``error_rate`` and ``payment_fail_per_min`` are "down" although they are rates.
_DOWN_WORDS = frozenset((
    "latency", "lat", "ms", "p50", "p75", "p90", "p95", "p99", "p999", "queue", "queued",
    "backlog", "wait", "waiting", "error", "errors", "err", "fail", "failed", "failure",
    "failures", "timeout", "timeouts", "reject", "rejected", "rejects", "drop", "dropped",
    "drops", "retry", "retries", "refund", "refunds", "complaint", "complaints", "lag",
    "delay", "delays", "incident", "incidents", "down", "downtime", "abandon", "abandoned",
    "stockout", "stockouts", "outage", "outages", "loss",
))
#: Words that make a metric "higher is better" (throughput, business, availability).
_UP_WORDS = frozenset((
    "orders", "order", "gmv", "revenue", "sales", "footfall", "visitors", "visits",
    "customers", "throughput", "tps", "qps", "rps", "success", "ok", "uptime",
    "availability", "available", "conversion", "basket", "transactions", "checkouts",
    "members", "signups", "online", "paid", "payments",
))
_SPLIT = re.compile(r"[_.:\-\s/]+")

#: Default dead band by unit: absolute (in the unit) and relative (% of the reference).
#: Percentages move in tenths of a point, so their band is absolute; elsewhere 0.5 %.
_DEAD_BAND_BY_UNIT: dict[str, tuple[float, float]] = {
    "%": (0.05, 0.0),
    "ms": (1.0, 0.5),
    "s": (0.01, 0.5),
    "min": (0.1, 0.5),
}
DEFAULT_DEAD_BAND = (0.0, 0.5)


def good_default(metric: str) -> str | None:
    """``"up"``/``"down"`` by the metric's kind (its name's words), None when unknown."""
    words = [w for w in _SPLIT.split(metric.lower()) if w]
    if any(w in _DOWN_WORDS for w in words):
        return "down"
    if any(w in _UP_WORDS for w in words):
        return "up"
    return None


def resolve_good(metric: str, good: str | None, direction: str | None,
                 warn: float | None = None, crit: float | None = None) -> tuple[str | None, str]:
    """``(good, direction)`` of a KPI from its options (None = not given).

    ``good`` colours the delta, ``direction`` judges the thresholds; each given one implies
    the other (``good = "up"`` goes with ``direction = "down_bad"``: low is bad), and a
    contradiction raises ValueError. With neither given, ``good`` comes from the metric's
    kind (:func:`good_default`) and ``direction`` from the thresholds' order (warn below
    crit: ``"up_bad"``; above: ``"down_bad"``) -- a capacity alarm on orders/s stays one --
    else from the kind, else ``"up_bad"``."""
    if good is not None and good not in GOOD:
        raise ValueError(f"good must be one of {GOOD}, got {good!r}")
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    implied = {"up_bad": "down", "down_bad": "up"}
    if good is not None and direction is not None and implied[direction] != good:
        raise ValueError(f'good = "{good}" contradicts direction = "{direction}" '
                         f'(good = "{good}" means direction = "{"down_bad" if good == "up" else "up_bad"}")')
    if direction is None:
        if good is not None:
            direction = "down_bad" if good == "up" else "up_bad"
        elif warn is not None and crit is not None and warn != crit:
            direction = "up_bad" if warn < crit else "down_bad"
        else:
            direction = "down_bad" if good_default(metric) == "up" else "up_bad"
        return (good if good is not None else good_default(metric)), direction
    return (good if good is not None else implied[direction]), direction


def dead_band_default(unit: str | None) -> tuple[float, float]:
    """``(absolute, relative %)`` dead band for a unit (see ``_DEAD_BAND_BY_UNIT``)."""
    return _DEAD_BAND_BY_UNIT.get((unit or "").strip(), DEFAULT_DEAD_BAND)


def delta_tone(delta: float, reference: float, good: str | None, dead_abs: float, dead_pct: float) -> str:
    """``"neutral"`` when the move is within the dead band (``max(dead_abs, dead_pct % of
    |reference|)``) or the KPI has no good direction; else ``"good"`` or ``"bad"``."""
    band = max(dead_abs, abs(reference) * dead_pct / 100.0)
    if abs(delta) <= band or good is None:
        return "neutral"
    return "good" if (delta > 0) == (good == "up") else "bad"


def _store_phase(store: dict[str, Any], now: float) -> str | None:
    status = store.get("status")
    if status == "planned":
        return "not_open"
    if status == "opening":
        opens_at = store.get("opens_at")
        return "not_open" if not isinstance(opens_at, (int, float)) or opens_at > now else None
    if status == "closed":
        return "closed"
    return None  # open, maintenance, or no status: trading as far as the wall knows


def stores_phase(stores: Iterable[dict[str, Any] | None], now: float) -> str | None:
    """``None`` if any store trades (or none is known), else ``"not_open"`` when one of
    them is yet to open, else ``"closed"``."""
    phases = set()
    for s in stores:
        if s is None:
            continue
        ph = _store_phase(s, now)
        if ph is None:
            return None
        phases.add(ph)
    if not phases:
        return None
    return "not_open" if "not_open" in phases else "closed"


__all__ = ["GOOD", "DIRECTIONS", "good_default", "resolve_good", "dead_band_default",
           "delta_tone", "stores_phase", "DEFAULT_DEAD_BAND"]
