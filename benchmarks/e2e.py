"""Event-to-pixel benchmark: producer process -> hub process -> wall process (offscreen).

    python benchmarks/e2e.py                                  # 10,000 events/s for 60 s (~2.5 min)
    python benchmarks/e2e.py --rate 2000 --duration 20        # a quick run
    python benchmarks/e2e.py --screen 1                       # only the device-grid screen

Three processes on 127.0.0.1: ``wallboard hub`` (SQLite journal, unless ``--memory``), a
producer (this script with ``--producer``) and the wall (this process: QApplication on
the offscreen platform, ``double-11`` layout, every window 3840x2160). The producer first
publishes the world (2,000 stores x 50 devices = 100,000 devices) and the wall loads it
(a snapshot); then the producer publishes device status changes at ``--rate`` events/s,
each with its publish time as its ``ts`` (``time.time()``). Plain status updates (id, ts,
status; 90 % of them) reach a wall in columnar ``devices`` frames, as a real fleet's
would (docs/protocol.md); ``--x-field`` also stamps the extension field ``x_t0``, which
keeps every event off that path (the object path, as measured before the columnar feed).

Per event the wall measures ``ts`` -> the end of the paint of the frame that first
shows it: a frame observer (``WallController.frame_observers``) forces that frame's
pending paints (``sendPostedEvents(UpdateRequest)``: exactly the dirty regions Qt would
paint on the next loop turn) and then takes the time. Both clocks are ``time.time()`` on
one machine. ``frame_ms`` is the whole frame: drain + apply + refresh + paint.

Prints one JSON object. Targets at 10,000 events/s: p99 <= 100 ms (goal 50; 100 with
``--noise``), 30 frames/s held, the UI thread never blocked more than 50 ms (``frame_ms.max``,
``loop_block_ms_max``) and at most 0.5 core (``wall_ui_thread_cores``); ``ui_frame_ms_per_s``
says where the frames' time went. Events a conflating wall did not need (a later one of the
same device overwrote them, docs/protocol.md "Conflation") are counted in ``conflated``, not
shown: ``missing`` counts them too.

    python benchmarks/e2e.py --storm                          # the storm target (~2 minutes)

``--storm``: 100,000 device events/s for 30 s over the 100,000 devices (the hub with
``--max-lag 200000 --stats-interval 1``). ``storm`` in the JSON: events acked to the
producer vs journaled after the world (``lost``), every device's newest value -- the
producer's last ``ts`` for it -- timed to the frame that showed it (``newest_state_ms``;
``newest_not_shown``), conflation on the hub and in the wall's drain, resyncs; and
``storm_targets_met`` (0 lost, >= 25 frames/s, newest state p99 <= 1 s, no resync).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
from typing import Any
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, HubProcess, Noise, cpu_s, free_port, machine_busy_s, pct, rss_kb, world_events  # noqa: E402


# ---------------------------------------------------------------------- producer process
def producer_main(args: argparse.Namespace) -> int:
    """Publish the world, say ``loaded SEQ``, wait for ``go`` on stdin, then stream at
    ``--rate`` for ``--duration`` s and say ``done SENT LAST_SEQ ELAPSED REJECTED``."""
    from wallboard.hub.record import Publisher

    world = world_events(args.stores, args.devices_per_store)
    devices = [e["id"] for e in world if e["type"] == "device"]
    kinds = {e["id"]: e["kind"] for e in world if e["type"] == "device"}
    rng = random.Random(11)

    async def main() -> None:
        pub = Publisher(args.producer, producer=f"e2e-{os.getpid()}", window=256)
        pub.keep_acks = True
        async with pub:
            for i in range(0, len(world), 2000):
                await pub.publish(world[i:i + 2000])
            await pub.flush(300)
            print(f"loaded {max(a.last for a in pub.acks)}", flush=True)
            pub.acks.clear()
            pub.keep_acks = bool(args.final_file)    # storm: every ack counted (0 lost)
            newest: dict[str, float] = {}            # storm: device -> ts of its last event
            await asyncio.to_thread(sys.stdin.readline)  # "go"
            tick = 0.01
            acc = 0.0
            sent = 0
            start = time.time()
            cpu0 = time.process_time()
            k = 0
            while time.time() - start < args.duration:
                acc += args.rate * tick
                n = int(acc)
                acc -= n
                if n:
                    t = time.time()
                    batch = []
                    for _ in range(n):
                        did = devices[rng.randrange(len(devices))]
                        x = rng.random()
                        status = "ok" if x < 0.90 else "warn" if x < 0.96 else "crit" if x < 0.99 else "down"
                        ev = {"type": "device", "id": did, "status": status, "ts": t}
                        if status != "ok":
                            ev["msg"] = f"{kinds[did]} {status}"
                        if args.x_field:
                            ev["x_t0"] = t
                        batch.append(ev)
                    await pub.publish(batch)
                    sent += n
                    if args.final_file:
                        newest.update({ev["id"]: t for ev in batch})
                k += 1
                await asyncio.sleep(max(0.0, start + k * tick - time.time()))
            elapsed = time.time() - start
            cpu = time.process_time() - cpu0
            pub.keep_acks = True
            await pub.flush(120)
            last = max((a.last for a in pub.acks), default=0)
            if args.final_file:
                ranges = {(a.first, a.last) for a in pub.acks}
                Path(args.final_file).write_text(json.dumps({
                    "acked": sum(b - a + 1 for a, b in ranges), "ranges": sorted(ranges), "newest": newest}))
            print(f"done {sent} {last} {elapsed:.3f} {pub.rejected} {cpu:.3f}", flush=True)

    asyncio.run(main())
    return 0


# ---------------------------------------------------------------------- listener process
def listener_main(args: argparse.Namespace) -> int:
    """``--listen URL``: a plain subscriber (no Qt, no GIL shared with paint) that times
    publish -> received for every event from seq ``--since`` + 1 on; on stdin EOF it prints
    ``lat P50 P95 P99 N`` in ms. Separates the hub's leg from the wall process's."""
    import orjson
    import websockets

    lat: list[float] = []

    async def main() -> None:
        async with websockets.connect(args.listen, max_size=None, compression=None) as ws:
            await ws.send(orjson.dumps({"op": "hello", "since": args.since}))
            eof = asyncio.ensure_future(asyncio.to_thread(sys.stdin.read))
            while not eof.done():
                recv = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait({recv, eof}, return_when=asyncio.FIRST_COMPLETED)
                if recv not in done:
                    recv.cancel()
                    break
                t = time.time()
                msg = orjson.loads(recv.result())
                if msg.get("op") == "events":
                    lat.extend(t - ev["ts"] for ev in msg["events"] if ev.get("type") == "device" and "ts" in ev)

    asyncio.run(main())
    ms = sorted(x * 1000.0 for x in lat)
    print("lat", *(round(pct(ms, f), 1) for f in (0.5, 0.95, 0.99)), len(ms), flush=True)
    return 0


# ---------------------------------------------------------------------- wall process
def _owner_name(obj) -> str:
    """``Panel/.../Class`` of a QObject: its class, prefixed by the nearest ancestor whose
    class name ends in "Panel" (which widget of the layout it belongs to)."""
    name = obj.objectName() or type(obj).__name__
    cur, hops = obj, 0
    while hops < 8:
        parent = cur.parent() if hasattr(cur, "parent") else None
        if parent is None:
            break
        pname = type(parent).__name__
        if pname.endswith("Panel"):
            return f"{pname}/{name}"
        cur, hops = parent, hops + 1
    return name


class EventProbe:
    """Diagnostics (``--probe``): a QApplication whose ``notify`` times every event.

    Events delivered straight from the event loop (depth 0) are what can block it: they
    are summed by receiver class and event type; events taking >= 5 ms are also counted
    by nested receiver (a paint inside a timer) to show where the time goes.
    """

    _instance = None

    @classmethod
    def install(cls) -> "EventProbe":
        from PySide6.QtWidgets import QApplication

        probe = cls()

        class ProbedApp(QApplication):
            def notify(self, receiver, event):  # noqa: D102 - Qt override
                return probe.timed(super().notify, receiver, event)

        probe.app = ProbedApp([])
        cls._instance = probe
        return probe

    def __init__(self) -> None:
        self.depth = 0
        self.top: dict[tuple[str, str], list[float]] = {}
        self.nested: dict[tuple[str, str], list[float]] = {}

    def reset(self) -> None:
        self.top.clear()
        self.nested.clear()

    def timed(self, notify, receiver, event):
        kind = event.type()
        self.depth += 1
        t0 = time.perf_counter()
        try:
            return notify(receiver, event)
        finally:
            ms = (time.perf_counter() - t0) * 1000.0
            self.depth -= 1
            if self.depth == 0 or ms >= 5.0:
                try:
                    name = _owner_name(receiver)
                except RuntimeError:  # deleted by the event it just handled
                    name = type(receiver).__name__
                key = (name, str(kind).rsplit(".", 1)[-1])
                book = self.top if self.depth == 0 else self.nested
                rec = book.get(key)
                if rec is None:
                    rec = book[key] = [0, 0.0, 0.0, 0]
                rec[0] += 1
                rec[1] += ms
                rec[2] = max(rec[2], ms)
                rec[3] += ms >= 50.0

    def report(self, n: int = 15) -> dict:
        def rows(book):
            items = sorted(book.items(), key=lambda kv: -kv[1][1])[:n]
            return [{"receiver": k[0], "event": k[1], "count": v[0], "total_ms": round(v[1], 1),
                     "max_ms": round(v[2], 1), "over_50ms": v[3]} for k, v in items]
        return {"top_level": rows(self.top), "nested_over_5ms": rows(self.nested)}


class Measure:
    """Frame observer + timed frame wrapper: event-to-pixel latencies and frame times."""

    def __init__(self, ctl) -> None:
        from PySide6.QtCore import QEvent
        from PySide6.QtWidgets import QApplication

        self.ctl = ctl
        self.app = QApplication.instance()
        self.update_request = QEvent.Type.UpdateRequest
        self.active = False
        self.lat: list[float] = []
        self.frame_ms: list[float] = []
        self.frame_starts: list[float] = []
        self.frames = 0
        self.events = 0
        self.paint_ms = 0.0
        #: where the frames' time went (ms summed over the run): the driver's step (drain +
        #: conflation + apply + tick), the panels' refresh, the forced paint, the rest
        self.ui_ms = dict.fromkeys(("drain_apply", "panels_refresh", "paint", "rest_of_frame"), 0.0)
        self.slow: list[dict] = []  # frames over 40 ms: total, drain+apply, forced paint, per-second work
        #: garbage collections in the wall process while active: generation -> [count, total ms, max ms]
        self.gc_pauses: dict[int, list[float]] = {}
        self._gc_t0 = 0.0
        gc.callbacks.append(self._gc_event)
        #: storm: device id -> (ts, time) of the newest of its events a frame showed
        self.newest: dict[str, tuple[float, float]] | None = None
        #: id(batch) -> (time the feed thread queued it, the batch): a batch the drain
        #: conflated is never shown as such (the span that replaced it is not timed here)
        self.arrived: dict[int, tuple[float, Any]] = {}
        self.hub_leg: list[float] = []         # publish -> queued by the wall's feed thread
        client = ctl.client
        push = client._push

        def stamped_push(items, _push=push, _arrived=self.arrived):
            t = time.time()
            for it in items:
                if it[0] in ("events", "devices"):
                    _arrived[id(it[1])] = (t, it[1])
            if len(_arrived) > 20_000:    # conflated away: forget what waited over 30 s
                for k in [k for k, (ta, _) in list(_arrived.items()) if t - ta > 30.0]:
                    _arrived.pop(k, None)
            _push(items)

        client._push = stamped_push
        # per panel: time of its refresh in the current frame (for the slow-frame report)
        from wallboard.app.panels import PanelFrame

        self.panel_ms: dict[str, float] = {}
        refresh, panel_ms = PanelFrame.refresh, self.panel_ms

        def timed_refresh(frame, dirty, now, _refresh=refresh):
            t = time.perf_counter()
            _refresh(frame, dirty, now)
            panel_ms[frame.kind] = panel_ms.get(frame.kind, 0.0) + (time.perf_counter() - t) * 1000.0

        PanelFrame.refresh = timed_refresh
        ctl.frame_observers.append(self.observe)
        ctl.timer.timeout.disconnect(ctl.frame)
        ctl.timer.timeout.connect(self.timed_frame)

    def _gc_event(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_t0 = time.perf_counter()
        elif self.active:
            ms = (time.perf_counter() - self._gc_t0) * 1000.0
            rec = self.gc_pauses.setdefault(info["generation"], [0, 0.0, 0.0])
            rec[0] += 1
            rec[1] += ms
            rec[2] = max(rec[2], ms)

    def timed_frame(self) -> None:
        t0 = time.perf_counter()
        second = self.ctl._last_second
        self.panel_ms.clear()
        self.ctl.frame()
        if self.active:
            ms = (time.perf_counter() - t0) * 1000.0
            step = self.ctl.driver.stats.last_frame_ms
            refresh = sum(self.panel_ms.values())
            parts = self.ui_ms
            parts["drain_apply"] += step
            parts["panels_refresh"] += refresh
            parts["paint"] += self.paint_ms
            parts["rest_of_frame"] += max(0.0, ms - step - refresh - self.paint_ms)
            self.frame_ms.append(ms)
            self.frame_starts.append(t0)
            self.frames += 1
            if ms > 40.0:  # where a slow frame's time went
                self.slow.append({"ms": round(ms, 1), "step_ms": round(self.ctl.driver.stats.last_frame_ms, 1),
                                  "paint_ms": round(self.paint_ms, 1),
                                  "clock_second": self.ctl._last_second != second,
                                  "panels_ms": {k: round(v, 1) for k, v in sorted(
                                      self.panel_ms.items(), key=lambda kv: -kv[1])[:3]}})

    def observe(self, batches, dirty, now) -> None:
        # paint what this frame made dirty now (what Qt would do on the next loop turn)
        t = time.perf_counter()
        self.app.sendPostedEvents(None, self.update_request)
        self.paint_ms = (time.perf_counter() - t) * 1000.0
        if not self.active:
            return
        t = time.time()
        lat = self.lat
        arrived, hub_leg, newest = self.arrived, self.hub_leg, self.newest
        for batch in batches:  # comprehensions: this bookkeeping runs inside the frame
            rec = arrived.pop(id(batch), None)
            ta = rec[0] if rec is not None and rec[1] is batch else None
            if isinstance(batch, list):   # an events batch: its device events (world loads excepted)
                devs = [ev for ev in batch if ev.get("type") == "device" and "ts" in ev]
                t0s = [ev["ts"] for ev in devs]
                if newest is not None:
                    newest.update({ev["id"]: (ev["ts"], t) for ev in devs})
            else:                         # a columnar devices batch (protocol.columnar.DeviceBatch)
                t0s = list(batch.ts)
                if newest is not None:
                    ids = batch.ids
                    newest.update({ids[d]: (x, t) for d, x in zip(batch.dev, batch.ts)})
            lat.extend([t - x for x in t0s])
            if ta is not None:
                hub_leg.extend([ta - x for x in t0s])
            self.events += len(batch)


def journaled(journal: str | None, after: int) -> tuple[int, int] | None:
    """(events journaled after seq ``after``, rows), read from the SQLite journal read-only."""
    if journal is None:
        return None
    import sqlite3

    con = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=30)
    try:
        n, rows = con.execute("SELECT COALESCE(SUM(COALESCE(last, seq) - seq + 1), 0), COUNT(*) FROM events "
                              "WHERE seq > ?", (after,)).fetchone()
    finally:
        con.close()
    return int(n), int(rows)


def storm_report(m: "Measure", final_file: str, journal: str | None, world_seq: int, st, hub_conflated0: float,
                 hub_resyncs0: float, out: dict) -> dict:
    """The storm's own figures: acked vs journaled (0 lost), every device's newest value
    (the producer's last ``ts`` of it) -> the frame that showed it, conflation, resyncs."""
    final = json.loads(Path(final_file).read_text())
    acked = final["acked"]
    ranges = final["ranges"]
    covered = all(b + 1 == a2 for (_, b), (a2, _) in zip(ranges, ranges[1:])) and \
        (not ranges or ranges[0][0] == world_seq + 1)
    jn = journaled(journal, world_seq)
    newest_lat, not_shown = [], 0
    for did, t0 in final["newest"].items():
        got = m.newest.get(did)
        if got is None or got[0] != t0:
            not_shown += 1
        else:
            newest_lat.append((got[1] - t0) * 1000.0)
    newest_lat.sort()
    hub_conf = st.hub_counters.get("conflated", 0) - hub_conflated0
    sent = out["events_sent"]
    return {
        "storm": {
            "acked": acked, "acked_ranges_contiguous": covered,
            "journaled": jn[0] if jn else None, "lost": (acked - jn[0]) if jn else None,
            "devices_updated": len(final["newest"]),
            "newest_not_shown": not_shown,
            "newest_state_ms": {"p50": round(pct(newest_lat, 0.5), 1), "p99": round(pct(newest_lat, 0.99), 1),
                                "max": round(newest_lat[-1], 1) if newest_lat else None},
            "conflated_hub": hub_conf, "conflated_wall": out["conflated"]["wall_drain"],
            "not_shown_nor_conflated": sent - out["events_shown"] - hub_conf - out["conflated"]["wall_drain"]
            - out["conflated"]["wall_feed_queue"],
            "hub_resyncs": st.hub_counters.get("resyncs", 0) - hub_resyncs0,
            "targets": {"lost": 0, "frames_per_s": 25, "newest_state_p99_ms": 1000, "resyncs": 0},
        },
        "storm_targets_met": {
            "lost_0": bool(jn) and acked == jn[0] and covered and sent == acked,
            "fps": (out["frames_per_s"] or 0) >= 25,
            "newest_state_p99_1s": not_shown == 0 and bool(newest_lat) and pct(newest_lat, 0.99) <= 1000,
            "no_resync": out["resyncs"] == 0 and out["snapshots_during_load"] == 0
            and st.hub_counters.get("resyncs", 0) - hub_resyncs0 == 0,
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=None, help="offered device events/s (default 10000; storm 100000)")
    ap.add_argument("--duration", type=float, default=None, help="seconds of load (default 60; storm 30)")
    ap.add_argument("--stores", type=int, default=2000, help="stores (default 2000)")
    ap.add_argument("--devices-per-store", type=int, default=50, help="devices per store (default 50)")
    ap.add_argument("--layout", default="double-11", help="wall layout (default double-11)")
    ap.add_argument("--size", default="3840x2160", help="window size WxH (default 3840x2160)")
    ap.add_argument("--screen", type=int, default=None, help="show only this screen of the layout (default all)")
    ap.add_argument("--panel-option", action="append", default=[], metavar="TYPE.KEY=VALUE",
                    help="override a widget option for diagnosis, e.g. device_grid.order=fixed (repeatable)")
    ap.add_argument("--memory", action="store_true", help="in-memory hub journal instead of SQLite")
    ap.add_argument("--noise", action="store_true", help="keep one core busy with another process during the load")
    ap.add_argument("--hub-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for `wallboard hub` (repeat; e.g. --hub-arg=--compact-every=1000000)")
    ap.add_argument("--probe", action="store_true",
                    help="time every Qt event the wall delivers; report the slowest kinds (diagnostics, slows the wall)")
    ap.add_argument("--profile", metavar="FILE", help="cProfile (CPU time) the wall UI thread during the load into FILE")
    ap.add_argument("--listener", action="store_true",
                    help="also time publish -> receive in a separate plain subscriber process (one more process)")
    ap.add_argument("--storm", action="store_true",
                    help="the storm target: 100,000 device events/s for 30 s (unless --rate/--duration say "
                    "otherwise), every acked event checked against the journal, every device's newest state "
                    "timed to the frame that shows it; the hub with --max-lag 200000 --stats-interval 1")
    ap.add_argument("--x-field", action="store_true",
                    help="stamp every event with x_t0 too: keeps them off the columnar devices frames (the object path)")
    ap.add_argument("--producer", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--final-file", metavar="FILE", help=argparse.SUPPRESS)
    ap.add_argument("--listen", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--since", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rate is None:
        args.rate = 100_000.0 if args.storm else 10_000.0
    if args.duration is None:
        args.duration = 30.0 if args.storm else 60.0
    if args.producer:
        return producer_main(args)
    if args.listen:
        return listener_main(args)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    panel_options: dict[str, dict] = {}
    for item in args.panel_option:
        key, sep, value = item.partition("=")
        ptype, dot, opt = key.partition(".")
        if not sep or not dot:
            ap.error(f"--panel-option {item!r}: expected TYPE.KEY=VALUE, e.g. device_grid.order=fixed")
        try:
            panel_options.setdefault(ptype, {})[opt] = json.loads(value)
        except ValueError:
            panel_options.setdefault(ptype, {})[opt] = value
    w, h = (int(x) for x in args.size.lower().split("x"))
    tmp = tempfile.mkdtemp(prefix="wallboard-e2e-")
    journal = None if args.memory else os.path.join(tmp, "hub.db")
    storm_args = ["--max-lag", "200000", "--stats-interval", "1"] if args.storm else []
    hub = HubProcess(free_port(), journal=journal,
                     extra=["--rate-limit", "1000000", *storm_args, *args.hub_arg]).start()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    final_file = os.path.join(tmp, "final.json") if args.storm else None
    prod = subprocess.Popen([sys.executable, __file__, "--producer", hub.publish_url, "--rate", str(args.rate),
                             "--duration", str(args.duration), "--stores", str(args.stores),
                             "--devices-per-store", str(args.devices_per_store),
                             *(["--final-file", final_file] if final_file else []),
                             *(["--x-field"] if args.x_field else [])],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: [lines.append(ln.strip()) for ln in prod.stdout], daemon=True).start()
    try:
        t_load = time.monotonic()
        while not any(ln.startswith("loaded") for ln in lines):
            if prod.poll() is not None:
                raise SystemExit(f"producer exited with code {prod.returncode} before loading the world")
            if time.monotonic() - t_load > 300:
                raise SystemExit("producer did not load the world within 300 s")
            time.sleep(0.1)
        world_seq = int(next(ln for ln in lines if ln.startswith("loaded")).split()[1])

        from _common import OffscreenWall
        from PySide6.QtCore import QTimer

        probe = EventProbe.install() if args.probe else None

        wall = OffscreenWall(hub.feed_url, args.layout, size=(w, h), screen=args.screen, panel_options=panel_options)
        load_s = wall.wait_until(lambda: wall.state.seq >= world_seq, 300, "world loaded on the wall")
        wall.pump(2.0)  # first full paints, the layout settles
        m = Measure(wall.ctl)
        if args.storm:
            m.newest = {}
        stats0 = wall.ctl.driver.stats
        overruns0, resyncs0, snaps0 = stats0.overruns, stats0.resyncs, stats0.snapshots
        conflated0 = stats0.conflated
        hub_conflated0 = stats0.hub_counters.get("conflated", 0)
        hub_resyncs0 = stats0.hub_counters.get("resyncs", 0)
        rss_start = rss_kb()
        hub_rss_start = rss_kb(hub.pid)
        cpu0 = {"wall": cpu_s(), "hub": cpu_s(hub.pid), "producer": cpu_s(prod.pid)}
        ui_cpu0 = time.thread_time()
        busy0 = machine_busy_s()
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile(time.thread_time)  # UI-thread CPU, not waiting time
            profiler.enable()
        listener = None
        if args.listener:
            listener = subprocess.Popen([sys.executable, __file__, "--listen", hub.feed_url, "--since", str(world_seq)],
                                        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            time.sleep(1.0)
        m.active = True
        if probe is not None:
            probe.reset()
        noise = Noise(args.noise).__enter__()  # ended with the load (below)
        prod.stdin.write("go\n")
        prod.stdin.flush()
        t_start = time.monotonic()
        result: dict = {}

        def poll() -> None:
            done = next((ln for ln in lines if ln.startswith("done")), None)
            if done and not result:
                _, sent, last, elapsed, rejected, pcpu = done.split()
                result.update(sent=int(sent), last=int(last), elapsed=float(elapsed), rejected=int(rejected),
                              cpu=float(pcpu), at=time.monotonic())
            if result and (wall.state.seq >= result["last"] or time.monotonic() - result["at"] > 30):
                wall.app.quit()
            if time.monotonic() - t_start > args.duration + 180:
                wall.app.quit()

        poller = QTimer()
        poller.timeout.connect(poll)
        poller.start(100)
        wall.app.exec()
        poller.stop()
        noise.__exit__()
        m.active = False
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        run_s = time.monotonic() - t_start
        ui_cpu = time.thread_time() - ui_cpu0
        busy = machine_busy_s() - busy0
        cpu = {"wall": cpu_s() - cpu0["wall"], "hub": cpu_s(hub.pid) - cpu0["hub"],
               "producer": result.get("cpu")}  # the producer's own CPU while streaming
        rss_end = rss_kb()
        st = wall.ctl.driver.stats
        lat_ms = sorted(x * 1000.0 for x in m.lat)
        hub_ms = sorted(x * 1000.0 for x in m.hub_leg)
        gaps = [(b - a) * 1000.0 for a, b in zip(m.frame_starts, m.frame_starts[1:])]
        interval_ms = wall.ctl.timer.interval()
        sent = result.get("sent", 0)
        out = {
            "layout": args.layout, "panel_options": panel_options, "window_px": [w, h], "windows": len(wall.ctl.windows),
            "stores": len(wall.state.stores), "devices": len(wall.state.devices),
            "journal": "memory" if args.memory else "sqlite",
            "world_load_s": round(load_s, 2),
            "events_per_s_offered": round(sent / result["elapsed"], 1) if result else None,
            "events_sent": sent, "events_shown": len(lat_ms),
            "missing": sent - len(lat_ms) if result else None,
            "event_to_pixel_ms": {"p50": round(pct(lat_ms, 0.50), 1), "p95": round(pct(lat_ms, 0.95), 1),
                                  "p99": round(pct(lat_ms, 0.99), 1),
                                  "max": round(lat_ms[-1], 1) if lat_ms else None},
            # the two legs: publish -> queued by the wall's feed thread (producer, hub,
            # network, wall decode), queued -> painted (the wall's frame loop)
            "publish_to_wall_queue_ms": {**{q: round(pct(hub_ms, f), 1) for q, f in
                                            (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))},
                                         "events": len(hub_ms)},   # batches shown as they came
            "frames_per_s": round(m.frames / run_s, 1) if run_s else None,
            "frame_interval_ms": interval_ms,
            "frame_ms": {"p50": round(pct(m.frame_ms, 0.5), 2), "p95": round(pct(m.frame_ms, 0.95), 2),
                         "max": round(max(m.frame_ms), 1) if m.frame_ms else None},
            "loop_block_ms_max": round(max(gaps) - interval_ms, 1) if gaps else None,
            "frame_gap_ms_p99": round(pct(gaps, 0.99), 1),
            "gc_pauses": {f"gen{g}": {"count": int(v[0]), "total_ms": round(v[1], 1), "max_ms": round(v[2], 1)}
                          for g, v in sorted(m.gc_pauses.items())},
            "slow_frames": {"count": len(m.slow), "slowest": sorted(m.slow, key=lambda f: -f["ms"])[:6]},
            "coalesced_frames": st.overruns - overruns0,
            "feed_dropped_events": wall.client.dropped_events,
            "resyncs": st.resyncs - resyncs0, "snapshots_during_load": st.snapshots - snaps0,
            "publish_rejected": result.get("rejected"),
            "wall_rss_mb": {"start": round(rss_start / 1024, 1), "end": round(rss_end / 1024, 1)},
            "hub_rss_mb": {"start": round(hub_rss_start / 1024, 1), "end": round(rss_kb(hub.pid) / 1024, 1)},
            "run_s": round(run_s, 1),
            "cpu_cores_used": {k: (round(v / run_s, 2) if v is not None else None) for k, v in cpu.items()},
            "wall_ui_thread_cores": round(ui_cpu / run_s, 2),
            "ui_frame_ms_per_s": {k: round(v / run_s, 1) for k, v in m.ui_ms.items()},
            "machine_cores": os.cpu_count(),
            "machine_busy_cores": round(busy / run_s, 2),
            "other_processes_cores": round(max(0.0, busy - sum(v or 0 for v in cpu.values())) / run_s, 2),
            "noise": args.noise, "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
            "targets": {"p99_ms": 100, "p99_goal_ms": 100 if args.noise else 50, "frames_per_s": 30,
                        "ui_block_ms": 50, "ui_thread_cores": 0.5},
        }
        out["targets_met"] = {
            "p99": bool(lat_ms) and out["event_to_pixel_ms"]["p99"] <= 100,
            "fps": (out["frames_per_s"] or 0) >= 29.0,
            "ui_block": (out["frame_ms"]["max"] or 0) <= 50 and (out["loop_block_ms_max"] or 0) <= 50,
            "p99_goal": bool(lat_ms) and out["event_to_pixel_ms"]["p99"] <= (100 if args.noise else 50),
            "ui_thread_cpu": out["wall_ui_thread_cores"] <= 0.5,
        }
        if listener is not None:
            lout, _ = listener.communicate("", timeout=60)
            parts = (lout.strip().splitlines() or ["lat"])[-1].split()
            if len(parts) == 5:
                out["publish_to_listener_ms"] = {"p50": float(parts[1]), "p95": float(parts[2]),
                                                 "p99": float(parts[3]), "events": int(parts[4])}
        if probe is not None:
            out["slow_events"] = probe.report()
        out["conflated"] = {"wall_drain": st.conflated - conflated0, "wall_feed_queue": wall.client.conflated,
                            "hub_as_of_its_last_stats": st.hub_counters.get("conflated", 0) - hub_conflated0}
        if args.storm:
            wall.pump(2.5)        # the hub's stats (every 1 s) catch up with the end of the run
            out.update(storm_report(m, final_file, journal, world_seq, wall.ctl.driver.stats,
                                    hub_conflated0, hub_resyncs0, out))
        print(json.dumps(out))
        wall.close()
    finally:
        if prod.poll() is None:
            prod.kill()
        prod.wait(10)
        hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
