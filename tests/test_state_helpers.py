"""Shared helpers of the tests/test_state*.py files (no tests here).

``Feed`` numbers events with contiguous seqs; ``brute_*`` recompute the state's derived
views from its records, to compare with what ``LiveState`` keeps incrementally; and
``public_view`` gathers every public query for round-trip comparisons.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from wallboard.state import STATUS_ORDER, LiveState


class Feed:
    """Builds events with ``ts`` and contiguous ``seq`` numbers."""

    def __init__(self, seq: int = 0) -> None:
        self.seq = seq

    def ev(self, type_: str, id_: str | None = None, ts: float = 1000.0, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        e: dict[str, Any] = {"type": type_, "ts": ts, "seq": self.seq}
        if id_ is not None:
            e["id"] = id_
        e.update(fields)
        return e


def zero() -> dict[str, int]:
    return dict.fromkeys(STATUS_ORDER, 0)


def brute_counts(st: LiveState, now: float) -> dict[str, Any]:
    """Per-store, per-city, per-kind effective counts and orphans, from the records."""
    stores: dict[Any, dict[str, int]] = defaultdict(zero)
    cities: dict[str, dict[str, int]] = defaultdict(zero)
    kinds: dict[str, dict[str, int]] = defaultdict(zero)
    orphans = 0
    for did, rec in st.devices.items():
        eff = st.device_status(did, now)
        sid = rec.get("store")
        stores[sid][eff] += 1
        kinds[rec.get("kind", "")][eff] += 1
        srec = st.stores.get(sid)
        if srec is None:
            orphans += 1
        elif srec.get("city"):
            cities[srec["city"]["id"]][eff] += 1
    return {"stores": stores, "cities": cities, "kinds": kinds, "orphans": orphans}


def check_aggregates(st: LiveState, now: float) -> None:
    """Assert the incremental views equal a recomputation (call right after tick(now))."""
    b = brute_counts(st, now)
    for sid in set(b["stores"]) | set(st.stores):
        if sid is None:
            continue
        assert st.store_counts(sid) == b["stores"].get(sid, zero()), sid
        want = "ok"
        for s in STATUS_ORDER:
            if b["stores"].get(sid, zero())[s]:
                want = s
        assert st.store_worst(sid) == want, sid
        assert st.store_devices(sid) == sorted(d for d, r in st.devices.items() if r.get("store") == sid)
    city_ids = {r["city"]["id"] for r in st.stores.values() if r.get("city")}
    for cid in city_ids | set(b["cities"]):
        assert st.city_counts(cid) == b["cities"].get(cid, zero()), cid
        assert st.city_stores(cid) == sorted(s for s, r in st.stores.items()
                                             if r.get("city") and r["city"]["id"] == cid)
    assert set(st.cities()) == city_ids
    assert st.kind_counts() == {k: v for k, v in b["kinds"].items()}
    assert st.counters["orphan_devices"] == b["orphans"]
    sev = dict.fromkeys(("P1", "P2", "P3", "P4"), 0)
    for r in st.incidents.values():
        if r["status"] != "resolved":
            sev[r["severity"]] += 1
    assert st.open_by_severity() == sev
    assert [r["id"] for r in st.open_incidents()] == [
        r["id"] for r in sorted((r for r in st.incidents.values() if r["status"] != "resolved"),
                                key=lambda r: ("P1 P2 P3 P4".split().index(r["severity"]),
                                               r["opened_at"], r["id"]))]


def public_view(st: LiveState, now: float) -> dict[str, Any]:
    """Every public query of the state, as plain data (numpy arrays as lists)."""
    stores = sorted(st.stores)
    cities = sorted(st.cities())
    incidents = sorted(st.incidents)
    out: dict[str, Any] = {
        "seq": st.seq,
        "feed_age": st.feed_age(now),
        "stores": st.stores, "devices": st.devices, "changes": st.changes, "incidents": st.incidents,
        "device_status": {d: st.device_status(d, now) for d in st.devices},
        "store_worst": {s: st.store_worst(s) for s in stores},
        "store_counts": {s: st.store_counts(s) for s in stores},
        "store_devices": {s: st.store_devices(s) for s in stores},
        "city_counts": {c: st.city_counts(c) for c in cities},
        "city_stores": {c: st.city_stores(c) for c in cities},
        "cities": st.cities(),
        "kind_counts": st.kind_counts(),
        "total_counts": st.total_counts(),
        "orphan_store_ids": st.orphan_store_ids(),
        "open_incidents": st.open_incidents(),
        "open_by_severity": st.open_by_severity(),
        "recent_resolved": st.recent_resolved(now, 10 ** 9),
        "changes_in_window": st.changes_in_window(-1e12, 1e12),
        "suspects": {i: st.suspects(i) for i in incidents},
        "store_incidents": {s: st.store_incidents(s, include_resolved=True) for s in stores},
        "voice_items": st.voice_items(10 ** 6),
        "voice_per_minute": [a.tolist() for a in st.voice_per_minute(now - 7200, now)],
        "kpi_keys": st.kpi_keys(),
        "kpi_series": {k: [a.tolist() for a in st.kpi_series(*k)] for k in st.kpi_keys()},
        "latest_kpi": {k: st.latest_kpi(*k) for k in st.kpi_keys()},
        "counters": st.counters,
    }
    return out
