"""Which change broke this? Rank the changes that may have caused an incident.

A change is a suspect when its scope overlaps the incident's stores (directly, through
the stores' cities, or because it names no store and no city: chain-wide) and it started
in the ``window_s`` (60 min) before the incident opened or was running when it opened.
Changes the incident itself names in ``suspect_changes`` are always listed, first.

Ranking: named > failed (or rolled back) > unapproved > running at open > others, then
closeness in time (start nearest to the opening first), then change id.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

#: Score weights; the closeness term is < 1 so it only orders within a tier.
W_NAMED, W_FAILED, W_UNAPPROVED, W_RUNNING = 16.0, 8.0, 4.0, 2.0


def rank_suspects(
    incident: dict[str, Any],
    candidates: Iterable[dict[str, Any]],
    store_city: Callable[[str], str | None],
    window_s: float = 3600.0,
    named: dict[str, dict[str, Any]] | None = None,
) -> list[tuple[str, float, list[str]]]:
    """Return ``[(change_id, score, reasons)]`` best first.

    ``candidates`` are the changes overlapping ``[opened - window_s, opened]`` (the state
    passes its time index); ``named`` maps the ids in ``suspect_changes`` to records.
    """
    opened = incident["opened_at"]
    stores = set(incident.get("stores", ()))
    cities = {c for c in map(store_city, stores) if c is not None}
    named_ids = set(incident.get("suspect_changes", ()))
    out: dict[str, tuple[float, list[str]]] = {}
    pool = list(candidates)
    if named:
        pool.extend(named.values())
    for ch in pool:
        cid = ch["id"]
        if cid in out:
            continue
        start = ch["start"]
        end = ch.get("end")
        status = ch.get("status", "planned")
        reasons: list[str] = []
        is_named = cid in named_ids
        in_window = opened - window_s <= start <= opened
        running_at_open = start <= opened and (end is None or end >= opened) and status != "planned"
        if not is_named and not (in_window or running_at_open):
            continue
        scope = ch.get("scope") or {}
        s_stores = set(scope.get("stores", ()))
        s_cities = set(scope.get("cities", ()))
        hit_stores = stores & s_stores
        hit_cities = cities & s_cities
        if hit_stores:
            reasons.append("stores: " + ", ".join(sorted(hit_stores)))
        elif hit_cities:
            reasons.append("cities: " + ", ".join(sorted(hit_cities)))
        elif not s_stores and not s_cities:
            reasons.append("chain-wide")
        elif not is_named:
            continue
        score = 0.0
        if is_named:
            score += W_NAMED
            reasons.insert(0, "named by the incident")
        if status in ("failed", "rolled_back"):
            score += W_FAILED
            reasons.append(status.replace("_", " "))
        if ch.get("approved") is False:                  # absent = not known, not counted
            score += W_UNAPPROVED
            reasons.append("not approved")
        if running_at_open:
            score += W_RUNNING
            reasons.append("running when the incident opened")
        dt = opened - start
        if dt >= 0:
            reasons.append(f"started {dt / 60:.0f} min before")
        else:
            reasons.append(f"started {-dt / 60:.0f} min after")
        score += max(0.0, 1.0 - abs(dt) / (window_s * 2)) * 0.999
        if ch.get("risk") == "high":
            reasons.append("high risk")
        out[cid] = (round(score, 6), reasons)
    ranked = sorted(out.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return [(cid, score, reasons) for cid, (score, reasons) in ranked]
