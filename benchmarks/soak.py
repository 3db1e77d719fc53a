"""Soak: a wall under the ``double-11`` demo for N minutes that cover a simulated day.

    python benchmarks/soak.py --minutes 15                     # the reference run
    python benchmarks/soak.py --minutes 2 --warmup 0.5 --interval 10   # a smoke run

A ``wallboard hub --demo double-11 --speed 1440/N`` subprocess (SQLite journal) drives
a real wall in this process (offscreen, ``double-11`` layout, every window ``--size``).
Layout rotation is on: every ``--rotate-s`` seconds the wall sends a ``switch_layout``
control through the hub (launch-928 -> overview -> double-11 -> ...), so the journal ->
feed -> controller path switches the layout, as the staff would on the day.

Every ``--interval`` seconds it samples the wall's RSS, Python objects
(``len(gc.get_objects())`` after a collection), QObjects (top-level widgets' children,
recursively, plus the controller's; and every Python-wrapped QObject still alive in C++,
parentless ones included) with the layout shown at that moment, the hub's RSS
and the sizes of the live state. After ``--warmup`` minutes it fits a line to each series
and prints one JSON object: the growth over the post-warm-up window in percent (fit end vs
fit start) and per hour, overall and per layout shown at the sample (RSS and the QObject
count depend on the layout on screen; with ``--interval`` a multiple of 3 x ``--rotate-s``
every sample shows the same layout). Targets: RSS and Python objects grow <= 2 %, QObjects do not grow,
and the hub's RSS grows <= 2 % (its low envelope, ``hub_rss_after_warmup_low_envelope``).
RSS is judged on the low envelope of the post-warm-up samples (the minimum of each 3
consecutive ones: a sample taken while a layout is being built peaks 40-90 MB above the
floor and is freed right after; until 2026-12-02 the envelope's first points could be
warm-up samples, still printed as ``rss_low_envelope_with_warmup_samples``); Python
objects net of the stale wrappers the sampler itself creates:
``qobject_count``'s ``findChildren`` wraps every child QObject (gestures, scroll bars,
layouts...), and a child's wrapper stays referenced from its parent's wrapper after C++
deletes the child with its page (30 layout switches without ``qobject_count``: +48
objects; with it: +1,148, all wrappers of deleted QObjects). The raw series are printed too.
Each sample also has glibc's heap in use and free (``malloc_in_use_kb``,
``malloc_free_kb``) and Python's allocated blocks (``py_blocks``): when RSS climbs,
they tell a leak (in use grows) from the allocator keeping freed pages and Python from
Qt/numpy (``heap_after_warmup_low_envelope``). Free chunks count whether their pages are
resident or were handed back (the wall's ``malloc_trim`` after a layout switch keeps them
as free chunks but not in RSS).
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (HubProcess, OffscreenWall, free_port, linear_fit, object_census,  # noqa: E402
                     qobject_count, rss_kb)

class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_kb() -> dict[str, int]:
    """glibc's heap: bytes in use (``malloc_in_use_kb``: Python, Qt and numpy alike) and
    in free chunks (``malloc_free_kb``, resident or trimmed), in KiB; {} where there is no
    mallinfo2. RSS that grows while the in-use figure stays flat is the allocator, not a leak."""
    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _MallInfo2
    m = fn()
    return {"malloc_in_use_kb": (m.uordblks + m.hblkhd) // 1024, "malloc_free_kb": m.fordblks // 1024}


def type_histogram() -> Counter:
    """Live Python objects by type name, after a full collection."""
    gc.collect()
    return Counter(type(o).__name__ for o in gc.get_objects())


ROTATION = ("launch-928", "overview", "double-11")


def low_envelope(samples: list[dict], key: str, width: int = 3) -> list[dict]:
    """Each sample's ``key`` replaced by the minimum over it and the ``width - 1`` samples
    before it: transient peaks (a layout being built while sampled, freed right after)
    drop out, a steady climb stays."""
    out = []
    for i, smp in enumerate(samples):
        lo = min(x[key] for x in samples[max(0, i - width + 1):i + 1])
        out.append({**smp, key: lo})
    return out


def growth(samples: list[dict], key: str, t_from: float) -> dict:
    """Linear fit of ``key`` over samples at ``t >= t_from``: percent growth and per hour."""
    pts = [(s["t_s"], s[key]) for s in samples if s["t_s"] >= t_from]
    if len(pts) < 2:
        return {"samples": len(pts), "growth_pct": None, "per_hour": None}
    xs, ys = [p[0] for p in pts], [float(p[1]) for p in pts]
    slope, icpt = linear_fit(xs, ys)
    start, end = icpt + slope * xs[0], icpt + slope * xs[-1]
    return {"samples": len(pts), "first": ys[0], "last": ys[-1], "min": min(ys), "max": max(ys),
            "growth_pct": round((end - start) / start * 100.0, 2) if start else None,
            "per_hour": round(slope * 3600.0, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="real minutes of the run (a simulated day)")
    ap.add_argument("--warmup", type=float, default=5.0, help="minutes before the trend is measured (default 5)")
    ap.add_argument("--interval", type=float, default=60.0, help="seconds between samples (default 60)")
    ap.add_argument("--rotate-s", type=float, default=20.0, help="seconds between layout switches (0 = off)")
    ap.add_argument("--size", default="3840x2160", help="window size WxH (default 3840x2160)")
    ap.add_argument("--types", action="store_true",
                    help="also report the Python object types that grew most after the warm-up")
    ap.add_argument("--hub-arg", action="append", default=[],
                    help="extra hub CLI flag (repeatable), e.g. --hub-arg=--keep --hub-arg=15m")
    ap.add_argument("--speed", type=float, default=None, help="demo speed (default 1440 / minutes: a day)")
    args = ap.parse_args()
    if args.minutes <= 0 or args.interval <= 0 or args.warmup < 0:
        ap.error("--minutes and --interval must be > 0, --warmup >= 0")
    if args.warmup >= args.minutes:
        ap.error(f"--warmup {args.warmup} must be shorter than --minutes {args.minutes}")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    w, h = (int(x) for x in args.size.lower().split("x"))
    speed = args.speed or 1440.0 / args.minutes
    tmp = tempfile.mkdtemp(prefix="wallboard-soak-")
    hub = HubProcess(free_port(), journal=os.path.join(tmp, "hub.db"),
                     extra=["--demo", "double-11", "--speed", f"{speed:g}", *args.hub_arg]).start()
    try:
        from PySide6.QtCore import QEvent, QTimer

        wall = OffscreenWall(hub.feed_url, "double-11", size=(w, h))
        wall.wait_until(lambda: wall.state.seq > 0 and wall.feed_state == "LIVE", 60, "wall LIVE")
        app, ctl = wall.app, wall.ctl
        t0 = time.monotonic()
        samples: list[dict] = []
        switches = {"sent": 0, "seen": 0}
        ctl.layout_changed.connect(lambda _name: switches.__setitem__("seen", switches["seen"] + 1))

        types_at: dict[str, Counter] = {}

        def sample() -> None:
            app.sendPostedEvents(None, QEvent.Type.DeferredDelete)
            if args.types:
                t_s = time.monotonic() - t0
                if t_s >= args.warmup * 60.0 and "warm" not in types_at:
                    types_at["warm"] = type_histogram()
                types_at["last"] = type_histogram()
            st = wall.state
            py_objects, wrapped, stale = object_census()
            samples.append({"py_objects": py_objects,
                "t_s": round(time.monotonic() - t0, 1), "layout": ctl.layout.name,
                "rss_kb": rss_kb(), "qobjects": qobject_count(app, [ctl]),
                "qobjects_wrapped": wrapped, "stale_wrappers": stale,
                "hub_rss_kb": rss_kb(hub.pid), **malloc_kb(), "py_blocks": sys.getallocatedblocks(),
                "seq": st.seq, "devices": len(st.devices), "changes": len(st.changes),
                "incidents": len(st.incidents), "feed": wall.feed_state,
                "frames": ctl.driver.stats.frames, "feed_dropped": wall.client.dropped_events,
            })
            samples[-1]["py_objects_net"] = py_objects - samples[-1]["stale_wrappers"]
            print(json.dumps(samples[-1]), file=sys.stderr, flush=True)

        k = [0]

        def rotate() -> None:
            name = ROTATION[k[0] % len(ROTATION)]
            k[0] += 1
            wall.client.send_control("switch_layout", {"layout": name})
            switches["sent"] += 1

        sampler = QTimer()
        sampler.timeout.connect(sample)
        sampler.start(int(args.interval * 1000))
        rotator = QTimer()
        rotator.timeout.connect(rotate)
        if args.rotate_s > 0:
            rotator.start(int(args.rotate_s * 1000))
        sample()
        wall.run_for(args.minutes * 60.0)
        sampler.stop()
        rotator.stop()
        sample()
        warm = args.warmup * 60.0
        layouts = sorted({s["layout"] for s in samples if s["t_s"] >= warm})
        q_by_layout = {name: growth([s for s in samples if s["layout"] == name], "qobjects", warm)
                       for name in layouts}
        q_growth = [g["last"] - g["first"] for g in q_by_layout.values() if g.get("first") is not None]
        qw_by_layout = {name: growth([s for s in samples if s["layout"] == name], "qobjects_wrapped", warm)
                        for name in layouts}
        rss = growth(samples, "rss_kb", warm)
        rss_by_layout = {name: growth([s for s in samples if s["layout"] == name], "rss_kb", warm)
                         for name in layouts}
        rss_growth = [g["growth_pct"] for g in rss_by_layout.values() if g.get("growth_pct") is not None]
        # the envelope of the post-warm-up samples only: the first points of an envelope of
        # all samples were the minimum of warm-up samples (the 60-s one, before the state
        # and caches filled: 263-269 MB against a 279-302 MB post-warm-up range)
        post = [smp for smp in samples if smp["t_s"] >= warm]
        rss_low = growth(low_envelope(post, "rss_kb"), "rss_kb", warm)
        rss_low_incl = growth(low_envelope(samples, "rss_kb"), "rss_kb", warm)
        pyo = growth(samples, "py_objects_net", warm)
        hub_low = growth(low_envelope(post, "hub_rss_kb"), "hub_rss_kb", warm)
        heap = {key: growth(low_envelope(post, key), key, warm)
                for key in ("malloc_in_use_kb", "py_blocks") if key in samples[-1]}
        out = {
            "minutes": args.minutes, "warmup_min": args.warmup, "interval_s": args.interval,
            "demo": "double-11", "speed": round(speed, 2), "simulated_hours": round(args.minutes * speed / 60, 1),
            "window_px": [w, h], "rotate_s": args.rotate_s, "layout_switches_sent": switches["sent"],
            "layout_switches_applied": switches["seen"],
            "events_applied": samples[-1]["seq"], "frames": samples[-1]["frames"],
            "feed_dropped_events": samples[-1]["feed_dropped"], "resyncs": ctl.driver.stats.resyncs,
            "rss_mb": {"start": round(samples[0]["rss_kb"] / 1024, 1), "end": round(samples[-1]["rss_kb"] / 1024, 1),
                       "peak_hwm": round(rss_kb(None, "VmHWM") / 1024, 1)},
            "rss_after_warmup": rss, "rss_after_warmup_low_envelope": rss_low,
            "rss_low_envelope_with_warmup_samples": rss_low_incl,  # the figure before 2026-12-02 (4th)
            "rss_after_warmup_by_layout": rss_by_layout,
            "rss_growth_pct_max_by_layout": max(rss_growth) if rss_growth else None,
            "py_objects_after_warmup": pyo,  # net of the sampler's stale wrappers (see the docstring)
            "py_objects_raw_after_warmup": growth(samples, "py_objects", warm),
            "stale_wrappers_after_warmup": growth(samples, "stale_wrappers", warm),
            "qobjects_after_warmup_by_layout": q_by_layout,
            "qobject_growth_max": max(q_growth) if q_growth else None,
            "qobjects_wrapped_alive_after_warmup_by_layout": qw_by_layout,
            "hub_rss_after_warmup": growth(samples, "hub_rss_kb", warm),
            # the hub's floor, as the wall's: a compaction's buffers peak for a sample or two
            "hub_rss_after_warmup_low_envelope": hub_low,
            # what lifts RSS: the heap in use (any code) and Python's allocated blocks, low envelopes
            "heap_after_warmup_low_envelope": heap,
            "targets": {"growth_pct_max": 2.0, "qobject_growth": 0},
            "targets_met": {
                # the floor under transient peaks (low envelope) is what a leak lifts
                "rss": rss_low["growth_pct"] is not None and rss_low["growth_pct"] <= 2.0,
                "py_objects": pyo["growth_pct"] is not None and pyo["growth_pct"] <= 2.0,
                "qobjects": bool(q_growth) and max(q_growth) <= 0,
                "hub_rss": hub_low["growth_pct"] is not None and hub_low["growth_pct"] <= 2.0,
            },
            "samples": samples,
        }
        if args.types and "warm" in types_at:
            diff = types_at["last"] - types_at["warm"]
            out["py_types_grown_after_warmup"] = dict(diff.most_common(12))
        print(json.dumps(out))
        wall.close()
    finally:
        hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
