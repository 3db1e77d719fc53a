"""The wall's own leg: the whole wall fed in-process, no hub and no producer.

    python benchmarks/wall_frames.py [--rate 10000] [--duration 20] [--layout double-11]

The real ``WallController`` with every window of the layout at 3840x2160 (offscreen), fed
by an in-process source instead of a ``FeedClient``: first the world of
``benchmarks/e2e.py`` (2,000 stores x 50 devices and the first KPI samples), then device
status changes at ``--rate`` events/s in batches of 250, the same mix and fields as the
e2e producer (``x_t0`` included, so the state takes the same path). Events are built
before the run: the UI thread does only what a wall does (apply, refresh, paint). As in
``e2e.py`` each frame forces the paint of what it made dirty, so ``frame_ms`` is drain +
apply + refresh + paint.

Every figure is also given as **CPU time of the UI thread** (``time.thread_time``):
on a shared machine the wall clock of a frame grows with the other processes' load, its
CPU time much less, so ``*_cpu_ms`` compare code before and after a change where
``frame_ms`` cannot. ``events_cpu_ms_max``: the costliest Qt events delivered straight
from the event loop (frames, the plots' scene repaints...), i.e. the loop blocks.
Prints one JSON object; the 1-minute load average is printed beside the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import types
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import pct, world_events  # noqa: E402


class ReplaySource:
    """A frame driver source (see ``wallboard.app.frame.FeedSource``) replaying built events."""

    url = "replay://in-process"
    validated = True   # built to the protocol, as FeedClient's decoded events are

    def __init__(self, world: list[dict], stream: list[dict], rate: float) -> None:
        self.state = types.SimpleNamespace(state="LIVE", heartbeat_s=1.0, host_port="replay",
                                           error_kind="", last_error="")
        self.items: list[tuple] = [("events", world)]
        self.stream, self.rate, self.k = stream, rate, 0
        self.started: float | None = None
        self.streaming = False
        self.beat = 0.0

    def start_stream(self) -> None:
        self.streaming = True
        self.started = time.time()

    def resync(self, since) -> None:
        raise SystemExit(f"wall_frames: the replay asked for a resync since {since}")

    def drain(self, max_items: int = 64) -> list[tuple]:
        now = time.time()
        if self.streaming:
            due = min(len(self.stream), int((now - self.started) * self.rate))
            while self.k < due:
                batch = self.stream[self.k:min(due, self.k + 250)]
                self.k += len(batch)
                for ev in batch:
                    ev["ts"] = ev["x_t0"] = now
                self.items.append(("events", batch))
            if now - self.beat >= 1.0:   # the hub's heartbeat, once a second
                self.beat = now
                self.items.append(("heartbeat", {}))
        out, self.items = self.items[:max_items], self.items[max_items:]
        return out


def device_stream(world: list[dict], n: int, first_seq: int, seed: int = 11) -> list[dict]:
    """``n`` device status changes (the e2e producer's mix), seqs from ``first_seq``."""
    devices = [e["id"] for e in world if e["type"] == "device"]
    kinds = {e["id"]: e["kind"] for e in world if e["type"] == "device"}
    rng, out = random.Random(seed), []
    for i in range(n):
        did = devices[rng.randrange(len(devices))]
        x = rng.random()
        status = "ok" if x < 0.90 else "warn" if x < 0.96 else "crit" if x < 0.99 else "down"
        out.append({"type": "device", "id": did, "status": status, "ts": 0.0, "x_t0": 0.0,
                    "seq": first_seq + i, "msg": "" if status == "ok" else f"{kinds[did]} {status}"})
    return out


def owner_name(obj) -> str:
    """``Panel/Class`` of a QObject (the nearest ancestor whose class ends in Panel)."""
    name, cur = type(obj).__name__, obj
    for _ in range(8):
        parent = cur.parent() if hasattr(cur, "parent") else None
        if parent is None:
            break
        if type(parent).__name__.endswith("Panel"):
            return f"{type(parent).__name__}/{name}"
        cur = parent
    return name


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=10000.0)
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=8.0, help="seconds to load the world (not measured)")
    ap.add_argument("--layout", default="double-11")
    ap.add_argument("--stores", type=int, default=2000)
    ap.add_argument("--devices-per-store", type=int, default=50)
    args = ap.parse_args()

    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    from wallboard import layout as L
    from wallboard.app.controller import WallController
    from wallboard.app.panels import PanelFrame
    from wallboard.state import LiveState

    paint_type = QEvent.Type.Paint
    active = [False]
    paints: dict[str, float] = {}     # this frame: widget -> paint CPU ms
    events: dict[tuple, list] = {}    # run: (receiver, event type) -> [count, max CPU ms]
    depth = [0]

    class TimedApp(QApplication):
        def notify(self, receiver, event):  # noqa: D102 - Qt override
            depth[0] += 1
            c = time.thread_time()
            try:
                return super().notify(receiver, event)
            finally:
                depth[0] -= 1
                ms = (time.thread_time() - c) * 1e3
                if event.type() == paint_type:
                    k = owner_name(receiver)
                    paints[k] = paints.get(k, 0.0) + ms
                if depth[0] == 0 and active[0]:
                    rec = events.setdefault((owner_name(receiver), str(event.type()).rsplit(".", 1)[-1]), [0, 0.0])
                    rec[0] += 1
                    rec[1] = max(rec[1], ms)

    app = TimedApp([])
    world = world_events(args.stores, args.devices_per_store)
    t0 = time.time()
    for i, ev in enumerate(world):
        ev["seq"], ev["ts"] = i + 1, t0
    stream = device_stream(world, int(args.rate * (args.duration + 10)), len(world) + 1)
    source = ReplaySource(world, stream, args.rate)
    lay = L.load_layout(L.find_layout(args.layout, [L.DEFAULT_LAYOUT_DIR]))
    ctl = WallController(LiveState(), source, lay, size=(3840, 2160), muted=True)

    panel_cpu: dict[str, float] = {}
    refresh = PanelFrame.refresh

    def timed_refresh(frame, dirty, now, _refresh=refresh):
        c = time.thread_time()
        _refresh(frame, dirty, now)
        panel_cpu[frame.kind] = panel_cpu.get(frame.kind, 0.0) + (time.thread_time() - c) * 1e3

    PanelFrame.refresh = timed_refresh
    step = ctl.driver.step

    def timed_step():
        c = time.thread_time()
        dirty = step()
        panel_cpu["apply"] = (time.thread_time() - c) * 1e3
        return dirty

    ctl.driver.step = timed_step
    update_request = QEvent.Type.UpdateRequest
    frames: list[tuple] = []   # (wall ms, cpu ms, paint cpu ms, panels, paints, start)

    def frame() -> None:
        panel_cpu.clear()
        paints.clear()
        t, c = time.perf_counter(), time.thread_time()
        ctl.frame()
        c1 = time.thread_time()
        app.sendPostedEvents(None, update_request)  # what Qt paints on the next loop turn
        if active[0]:
            c2 = time.thread_time()
            frames.append(((time.perf_counter() - t) * 1e3, (c2 - c) * 1e3, (c2 - c1) * 1e3,
                           dict(panel_cpu), dict(paints), t))

    ctl.timer.timeout.disconnect(ctl.frame)
    ctl.timer.timeout.connect(frame)
    ctl.start()

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.001)

    pump(args.warmup)
    source.start_stream()
    pump(3.0)   # the first seconds of the stream (first re-sorts) are not measured
    load0 = os.getloadavg()[0]
    applied0 = ctl.driver.stats.applied
    active[0] = True
    c0, w0 = time.thread_time(), time.perf_counter()
    pump(args.duration)
    active[0] = False
    span = time.perf_counter() - w0
    busy = (time.thread_time() - c0) / span
    applied = ctl.driver.stats.applied - applied0
    ctl.shutdown()

    def dist(vals: list[float]) -> dict:
        return {"p50": round(pct(vals, 0.5), 2), "p95": round(pct(vals, 0.95), 2), "max": round(max(vals), 2)}

    def per_frame(col: int) -> dict:
        tot: dict[str, float] = {}
        for f in frames:
            for k, v in f[col].items():
                tot[k] = tot.get(k, 0.0) + v
        return {k: round(v / len(frames), 2) for k, v in sorted(tot.items(), key=lambda kv: -kv[1])[:8]}

    def top(d: dict, n: int) -> dict:
        return {k: round(v, 1) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:n]}

    if not frames:
        print(json.dumps({"error": "no frame was measured"}))
        return 1
    starts = [f[5] for f in frames]
    gaps = [(b - a) * 1e3 for a, b in zip(starts, starts[1:])] or [0.0]
    out = {
        "layout": args.layout, "windows": len(ctl.windows), "window_px": [3840, 2160],
        "devices": sum(1 for e in world if e["type"] == "device"), "rate": args.rate,
        "applied_per_s": round(applied / span, 1),
        "frames_per_s": round(len(frames) / span, 1),
        "ui_thread_cores": round(busy, 2),
        "frame_ms": dist([f[0] for f in frames]),
        "frame_cpu_ms": dist([f[1] for f in frames]),
        "apply_cpu_ms": dist([f[3].get("apply", 0.0) for f in frames]),
        "paint_cpu_ms": dist([f[2] for f in frames]),
        "frame_gap_ms": {"p99": round(pct(gaps, 0.99), 1), "max": round(max(gaps), 1)},
        "refresh_cpu_ms_per_frame": per_frame(3),   # "apply": the frame driver's step
        "paint_cpu_ms_per_frame": per_frame(4),
        "slowest_frames_cpu": [{"cpu_ms": round(f[1], 1), "paint_ms": round(f[2], 1),
                                "refresh_ms": top(f[3], 3), "paints_ms": top(f[4], 3)}
                               for f in sorted(frames, key=lambda f: -f[1])[:5]],
        "events_cpu_ms_max": [{"receiver": k[0], "event": k[1], "count": v[0], "max_ms": round(v[1], 1)}
                              for k, v in sorted(events.items(), key=lambda kv: -kv[1][1])[:6]],
        "load_avg_1m": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
