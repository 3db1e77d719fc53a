"""What the incident, change and map panels cost per frame while incidents and changes
stream in: the state's views (incidents by scope with their MTTA / MTTR, changes by
status) against scanning every entity.

    python benchmarks/panel_views.py [--stores 2000] [--incidents 20000] [--changes 10000]

A state holds ``--stores`` stores in 20 cities, ``--incidents`` incidents (a quarter
open, the rest resolved within the keep window; 1..2 stores each) and ``--changes``
changes (every status; per store, per city, chain-wide). An incident board, a change
timeline and a store map are built for the whole chain and the incident board and change
timeline again for a two-city event scope (offscreen, 1920x1080 each); then each frame
applies ``--per-frame`` incident and change updates (acknowledge, resolve, new, running ->
failed) and calls every panel's ``refresh``. Prints ONE JSON object: the CPU time
(``time.thread_time``) of each panel's refresh per frame (p50, p95, mean over
``--frames`` frames), with the 1-minute load average at start and end. Uses only the
public panel and state API, so the same script measures an older checkout.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import pct  # noqa: E402

CITIES = [(f"c{k}", 22.0 + k * 1.3, 100.0 + k * 1.7) for k in range(20)]


def world(args, rnd: random.Random, now: float) -> list[dict]:
    evs: list[dict] = []
    for i in range(args.stores):
        cid, lat, lon = CITIES[i % len(CITIES)]
        evs.append({"type": "store", "id": f"s{i}", "ts": now, "name": f"Store {i}", "status": "open",
                    "city": {"id": cid, "name": cid}, "lat": lat + rnd.gauss(0, 0.2),
                    "lon": lon + rnd.gauss(0, 0.2)})
    for k in range(args.incidents):
        opened = now - rnd.uniform(60, 86_400)
        ev = {"type": "incident", "id": f"i{k}", "ts": opened, "title": f"incident {k}",
              "severity": rnd.choice(("P1", "P2", "P3", "P4")), "opened_at": opened,
              "stores": [f"s{rnd.randrange(args.stores)}" for _ in range(rnd.randint(1, 2))],
              "status": "open", "acknowledged_at": opened + rnd.uniform(30, 600)}
        if k % 4:
            ev["status"], ev["resolved_at"] = "resolved", opened + rnd.uniform(600, 3600)
        evs.append(ev)
    for k in range(args.changes):
        start = now - rnd.uniform(0, 6 * 3600)
        r = k % 10
        scope = ({} if r == 0 else {"cities": [rnd.choice(CITIES)[0]]} if r < 4
                 else {"stores": [f"s{rnd.randrange(args.stores)}"]})
        ev = {"type": "change", "id": f"ch{k}", "ts": start, "title": f"change {k}", "start": start,
              "system": f"sys{k % 12}", "status": rnd.choice(("planned", "running", "succeeded", "succeeded",
                                                              "succeeded", "failed"))}
        if scope:
            ev["scope"] = scope
        if ev["status"] in ("succeeded", "failed"):
            ev["end"] = start + rnd.uniform(60, 1800)
        evs.append(ev)
    return evs


def frame_updates(args, rnd: random.Random, now: float, k: int) -> list[dict]:
    out = []
    for j in range(args.per_frame):
        iid = f"i{rnd.randrange(args.incidents)}"
        if j % 3 == 0:
            out.append({"type": "incident", "id": f"new{k}-{j}", "ts": now, "title": "new", "severity": "P2",
                        "status": "open", "opened_at": now, "stores": [f"s{rnd.randrange(args.stores)}"]})
        elif j % 3 == 1:
            out.append({"type": "incident", "id": iid, "ts": now, "status": "resolved", "resolved_at": now})
        else:
            out.append({"type": "change", "id": f"ch{rnd.randrange(args.changes)}", "ts": now,
                        "status": rnd.choice(("running", "failed", "succeeded"))})
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stores", type=int, default=2000)
    ap.add_argument("--incidents", type=int, default=20_000)
    ap.add_argument("--changes", type=int, default=10_000)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--per-frame", type=int, default=6, help="incident/change updates per frame")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    from PySide6.QtWidgets import QApplication

    from wallboard.state import LiveState, StateConfig
    from wallboard.widgets.base import PanelContext
    from wallboard.widgets.change_timeline import ChangeTimelinePanel
    from wallboard.widgets.incident_board import IncidentBoardPanel
    from wallboard.widgets.store_map import StoreMapPanel

    app = QApplication.instance() or QApplication([])
    rnd = random.Random(11)
    clock = [1_800_000_000.0]
    evs = world(args, rnd, clock[0])
    for n, ev in enumerate(evs, 1):
        ev["seq"] = n
    st = LiveState(StateConfig(max_resolved_incidents=args.incidents, max_open_incidents=args.incidents,
                               max_finished_changes=args.changes, max_active_changes=args.changes))
    st.apply(evs, clock[0])
    seq = len(evs)
    chain = PanelContext(clock=lambda: clock[0])
    two = PanelContext(clock=lambda: clock[0], scope={"cities": ["c3", "c7"], "stores": []})
    panels = {
        "incident_board": IncidentBoardPanel(st, {}, chain),
        "incident_board_scoped": IncidentBoardPanel(st, {}, two),
        "change_timeline": ChangeTimelinePanel(st, {"window_min": 360}, chain),
        "change_timeline_scoped": ChangeTimelinePanel(st, {"window_min": 360}, two),
        "store_map": StoreMapPanel(st, {}, chain),
    }
    for p in panels.values():
        p.resize(1920, 1080)
        p.show()
    from wallboard.state import Dirty
    everything = Dirty.everything() if hasattr(Dirty, "everything") else None
    for p in panels.values():
        p.refresh(everything, clock[0])
    app.processEvents()
    cpu: dict[str, list[float]] = {k: [] for k in panels}
    apply_ms: list[float] = []
    for k in range(args.frames):
        clock[0] += 1 / 30
        batch = frame_updates(args, rnd, clock[0], k)
        for ev in batch:
            seq += 1
            ev["seq"] = seq
        t = time.thread_time()
        dirty = st.apply(batch, clock[0])
        dirty.merge(st.tick(clock[0]))
        apply_ms.append((time.thread_time() - t) * 1e3)
        for name, p in panels.items():
            t = time.thread_time()
            p.refresh(dirty, clock[0])
            cpu[name].append((time.thread_time() - t) * 1e3)
        app.processEvents()
    out = {
        "stores": args.stores, "incidents": len(st.incidents), "changes": len(st.changes),
        "frames": args.frames, "per_frame": args.per_frame,
        "apply_cpu_ms": {"p50": round(pct(apply_ms, 0.5), 3), "mean": round(sum(apply_ms) / len(apply_ms), 3)},
        "refresh_cpu_ms": {name: {"p50": round(pct(v, 0.5), 3), "p95": round(pct(v, 0.95), 3),
                                  "mean": round(sum(v) / len(v), 3)} for name, v in cpu.items()},
        "load_avg_1m": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
