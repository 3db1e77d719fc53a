"""Render benchmark: store map + device grid on one 3840x2160 offscreen frame.

    python benchmarks/render.py [--stores 2000] [--devices-per-store 50] [--frames 150]

Prints one JSON object. ``full_frame_ms``: ``win.grab()`` of the whole 3840x2160 window,
i.e. every pixel of both panels painted (the map's basemap comes from its background
cache, as on any repaint that follows no pan or zoom); ``cold_frame_ms``: the same right
after the basemap cache was dropped (what the first frame after a pan or zoom costs).
Then ``rate`` device changes per second are applied at ``fps`` frames per second: each
frame applies its events to the LiveState, calls both panels' ``refresh(dirty, now)`` and
lets Qt paint the dirty regions into the window's backing store (``processEvents``);
``frame_ms`` times refresh + paint (``apply_ms`` the state's apply, reported apart),
``incremental_ratio`` is frame p95 over full frame p50. ``resort_frame_ms``: the frames in
which the grid's worst-first re-sort ran (every ``resort_s``, 5 s by default).
Targets: frame p95 <= 16.7 ms, ratio <= 0.3. ``--ui-scale 2`` builds the panels at the
UI scale of a 2160-line wall (the default 1.0 keeps the figures comparable).
``--grid-option KEY=VALUE`` (JSON values, repeatable) sets device grid options, e.g. the
double-11 wall's readable rows: ``--ui-scale 2 --grid-option min_cell_px=16 --grid-option
allow_unlabelled=false --grid-option 'kinds=["pos","self_checkout","scale","printer"]'``.
Each time is also given as CPU time of the UI thread (``*_cpu_ms``, ``time.thread_time``):
on a shared machine a frame's wall clock grows with the other processes' load, its CPU
time much less.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from wallboard.state import Dirty, LiveState  # noqa: E402
from wallboard.widgets.base import PanelContext  # noqa: E402
from wallboard.widgets.device_grid import DeviceGridPanel  # noqa: E402
from wallboard.widgets.store_map import StoreMapPanel  # noqa: E402

CITIES = [("sh", "上海", 31.23, 121.47), ("bj", "北京", 39.90, 116.40), ("gz", "广州", 23.13, 113.26),
          ("sz", "深圳", 22.54, 114.06), ("hz", "杭州", 30.27, 120.15), ("cd", "成都", 30.66, 104.07),
          ("wh", "武汉", 30.59, 114.30), ("xa", "西安", 34.34, 108.94), ("nj", "南京", 32.06, 118.80),
          ("cq", "重庆", 29.56, 106.55), ("tj", "天津", 39.13, 117.20), ("sy", "沈阳", 41.80, 123.43),
          ("km", "昆明", 25.04, 102.71), ("xm", "厦门", 24.48, 118.09), ("qd", "青岛", 36.07, 120.38)]
KINDS = ["pos"] * 8 + ["self_checkout"] * 4 + ["scale"] * 4 + ["esl_gateway"] * 2 + \
    ["camera"] * 16 + ["gate"] * 4 + ["printer"] * 4 + ["ap"] * 6 + ["router"] * 2
STATUSES = ["ok"] * 90 + ["warn"] * 4 + ["crit"] * 3 + ["down"] * 2 + ["maint"]


def pct(values, q):
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))], 3)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stores", type=int, default=2000)
    ap.add_argument("--devices-per-store", type=int, default=50)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--min-cell-px", type=int, default=4)
    ap.add_argument("--ui-scale", type=float, default=1.0,
                    help="the wall's UI scale (2.0 for a 2160-line wall without OS scaling)")
    ap.add_argument("--grid-option", action="append", default=[], metavar="KEY=VALUE",
                    help="a device grid option (JSON value), e.g. allow_unlabelled=false")
    args = ap.parse_args()
    grid_opts = {"min_cell_px": args.min_cell_px, "allow_unlabelled": True}
    for item in args.grid_option:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--grid-option {item!r}: expected KEY=VALUE, e.g. min_cell_px=16")
        try:
            grid_opts[key] = json.loads(value)
        except json.JSONDecodeError:
            grid_opts[key] = value
    from wallboard.widgets.base import set_ui_scale
    set_ui_scale(args.ui_scale)   # before the panels are built, as the shell does
    rnd = random.Random(7)
    app = QApplication.instance() or QApplication([])
    now, seq, evs = 1000.0, 0, []
    dev_ids = []
    for i in range(args.stores):
        cid, cname, lat, lon = CITIES[i % len(CITIES)]
        seq += 1
        evs.append({"type": "store", "id": f"s{i}", "seq": seq, "ts": now, "name": f"{cname}{i}号店",
                    "city": {"id": cid, "name": cname}, "lat": lat + rnd.gauss(0, 0.15),
                    "lon": lon + rnd.gauss(0, 0.15), "status": "open"})
        for j in range(args.devices_per_store):
            seq += 1
            did = f"s{i}-d{j}"
            dev_ids.append(did)
            evs.append({"type": "device", "id": did, "seq": seq, "ts": now, "store": f"s{i}",
                        "kind": KINDS[j % len(KINDS)], "name": f"dev{j}", "status": rnd.choice(STATUSES),
                        "ttl_s": 3600.0, "metrics": {"cpu": 20.0}})
    st = LiveState()
    st.apply(evs, now)
    ctx = PanelContext(clock=lambda: now)
    win = QWidget()
    win.resize(3840, 2160)
    smap = StoreMapPanel(st, {}, ctx, win)
    # allow_unlabelled: measure the dense 100,000-cell image (a wall layout would roll rows
    # up rather than draw cells whose store label cannot be read)
    grid = DeviceGridPanel(st, grid_opts, ctx, win)
    smap.setGeometry(0, 0, 1920, 2160)
    grid.setGeometry(1920, 0, 1920, 2160)
    win.show()
    app.processEvents()
    all_d = Dirty()
    all_d.all = True
    t = time.perf_counter()
    smap.refresh(all_d, now)
    grid.refresh(all_d, now)
    layout_ms = (time.perf_counter() - t) * 1e3
    app.processEvents()
    full, cold, full_cpu = [], [], []
    for _ in range(15):
        t, c = time.perf_counter(), time.thread_time()
        win.grab()  # every pixel of both panels painted
        full.append((time.perf_counter() - t) * 1e3)
        full_cpu.append((time.thread_time() - c) * 1e3)
    for _ in range(5):
        smap.view.resetCachedContent()
        t = time.perf_counter()
        win.grab()
        cold.append((time.perf_counter() - t) * 1e3)
    per_frame = max(1, args.rate // args.fps)
    frames, applies, resort_frames, frames_cpu, resort_cpu = [], [], [], [], []
    for k in range(args.frames):
        now += 1.0 / args.fps
        batch = []
        for _ in range(per_frame):
            seq += 1
            batch.append({"type": "device", "id": rnd.choice(dev_ids), "seq": seq, "ts": now,
                          "status": rnd.choice(STATUSES)})
        t0 = time.perf_counter()
        d = st.apply(batch, now)
        resorts = grid.resorts + grid.layouts
        t1, c1 = time.perf_counter(), time.thread_time()
        smap.refresh(d, now)
        grid.refresh(d, now)
        app.processEvents()
        t2, cpu = time.perf_counter(), (time.thread_time() - c1) * 1e3
        if grid.resorts + grid.layouts != resorts:
            resort_frames.append(round((t2 - t1) * 1e3, 1))
            resort_cpu.append(round(cpu, 1))
        applies.append((t1 - t0) * 1e3)
        frames.append((t2 - t1) * 1e3)
        frames_cpu.append(cpu)
    full_p50 = statistics.median(full)
    out = {
        "frame_px": [3840, 2160],
        "stores": args.stores,
        "devices": len(dev_ids),
        "grid_cells_drawn": int(grid._placed.sum()),
        "grid_stores_rolled_up": len(grid.rolled_up),
        "grid_cell_px": grid._cell,
        "map_clustered": smap.clustered,
        "layout_ms": round(layout_ms, 1),
        "full_frame_ms": {"p50": round(full_p50, 3), "p95": pct(full, 0.95)},
        "cold_frame_ms": {"p50": pct(cold, 0.5), "max": round(max(cold), 3)},
        "changes_per_s": args.rate, "fps": args.fps, "changes_per_frame": per_frame,
        "frame_ms": {"p50": pct(frames, 0.5), "p95": pct(frames, 0.95)},
        "full_frame_cpu_ms": {"p50": pct(full_cpu, 0.5), "p95": pct(full_cpu, 0.95)},
        "frame_cpu_ms": {"p50": pct(frames_cpu, 0.5), "p95": pct(frames_cpu, 0.95)},
        "resort_frame_cpu_ms": resort_cpu, "grid_options": grid_opts,
        "apply_ms": {"p50": pct(applies, 0.5), "p95": pct(applies, 0.95)},
        "incremental_ratio": round(pct(frames, 0.95) / full_p50, 3),
        "resort_frame_ms": resort_frames, "grid_full_layouts": grid.layouts,
        "ui_scale": args.ui_scale, "load_avg_1m": round(os.getloadavg()[0], 2),
        "targets": {"frame_p95_ms": 16.7, "incremental_ratio": 0.3},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
