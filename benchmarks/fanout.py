"""Fan-out benchmark: one hub process, N wall processes, one producer process, loopback.

    python benchmarks/fanout.py                       # quick sweep (~1 minute)
    python benchmarks/fanout.py --rates 10000 --duration 30 --walls 10   # the target run
    python benchmarks/fanout.py --journal nats --rates 10000   # JetStream log, then SQLite, same run

Prints one JSON object: walls, events_per_s offered and delivered (per wall), lost (must
be 0), p50/p99 publish-to-receive latency in ms, hub peak RSS (VmHWM) and RSS at the
start/end of each run (flat memory), and the highest offered rate whose p99 <= 100 ms.
The hub journals to SQLite (WAL, group commit) unless --memory; ``--journal nats`` runs
the sweep on a JetStream log first (a nats-server on a loopback port), then on SQLite, and
prints both (with the hub's CPU per event).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Noise, free_port, rss_kb  # noqa: E402


def wall_proc(url: str, run: str, out: "mp.Queue", ready: "mp.Event", done: "mp.Event", deadline: float) -> None:
    import orjson
    from websockets.asyncio.client import connect

    from wallboard import protocol as P

    async def main() -> None:
        lat: list[float] = []
        count = 0
        gaps = 0
        snapshots = 0
        last = None
        async with connect(url, compression=None, max_size=None) as ws:
            await ws.send(P.encode(P.Hello(since=None, wall="bench")))
            ready.set()
            while time.time() < deadline:
                if done.is_set() and count and time.time() > done_at[0]:
                    break
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except asyncio.TimeoutError:
                    if done.is_set():
                        if not done_at[0]:
                            done_at[0] = time.time() + 2.0
                        elif time.time() > done_at[0]:
                            break
                    continue
                now = time.time()
                # JSON only (no schema validation): this measures the hub, and ten
                # validating walls would compete with it for the machine's two cores
                msg = orjson.loads(raw)
                op = msg.get("op")
                if op == "snapshot":
                    snapshots += 1
                    last = msg["seq"]
                elif op == "events":
                    for ev in msg["events"]:
                        if last is not None and ev["seq"] != last + 1:
                            gaps += 1
                        last = ev["seq"]
                        if ev.get("x_run") == run:
                            count += 1
                            lat.append(now - ev["x_t"])
        lat.sort()
        out.put({"count": count, "gaps": gaps, "snapshots": snapshots,
                 "lat": lat[:: max(1, len(lat) // 20000)]})

    done_at = [0.0]
    asyncio.run(main())


def producer_proc(url: str, run: str, rate: float, duration: float, out: "mp.Queue") -> None:
    from wallboard.hub.record import Publisher

    async def main() -> None:
        tick = 0.01
        per = rate * tick
        acc = 0.0
        sent = 0
        async with Publisher(url, producer=f"bench-{run}", window=256) as pub:
            start = time.time()
            k = 0
            while time.time() - start < duration:
                acc += per
                n = int(acc)
                acc -= n
                if n:
                    t = time.time()
                    await pub.publish([{"type": "kpi", "metric": "bench", "scope": "global", "value": float(i),
                                        "x_run": run, "x_t": t} for i in range(n)])
                    sent += n
                k += 1
                await asyncio.sleep(max(0.0, start + k * tick - time.time()))
            elapsed = time.time() - start
            await pub.flush(60)
        out.put({"sent": sent, "elapsed": elapsed, "rejected": pub.rejected})

    asyncio.run(main())


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def one_run(base: str, hub_pid: int, walls: int, rate: float, duration: float) -> dict:
    ctx = mp.get_context("spawn")
    run = f"r{int(rate)}-{time.time():.0f}"
    out: mp.Queue = ctx.Queue()
    done = ctx.Event()
    deadline = time.time() + duration + 60
    readies = [ctx.Event() for _ in range(walls)]
    procs = [ctx.Process(target=wall_proc, args=(base + "/feed", run, out, readies[i], done, deadline))
             for i in range(walls)]
    for p in procs:
        p.start()
    for r in readies:
        r.wait(60)
    time.sleep(0.5)
    rss0 = rss_kb(hub_pid)
    pq: mp.Queue = ctx.Queue()
    prod = ctx.Process(target=producer_proc, args=(base + "/publish", run, rate, duration, pq))
    prod.start()
    rss_samples = []
    while prod.is_alive():
        rss_samples.append(rss_kb(hub_pid))
        prod.join(0.5)
    p_res = pq.get(timeout=30)
    done.set()
    results = [out.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(10)
    lat = sorted(x for r in results for x in r["lat"])
    delivered = sum(r["count"] for r in results)
    lost = p_res["sent"] * walls - delivered
    return {
        "rate_offered": rate, "events_sent": p_res["sent"],
        "events_per_s_offered": round(p_res["sent"] / p_res["elapsed"], 1),
        "events_per_s_delivered_per_wall": round(delivered / walls / p_res["elapsed"], 1),
        "lost": lost, "gaps": sum(r["gaps"] for r in results), "resyncs": sum(r["snapshots"] for r in results) - walls,
        "p50_ms": round(pct(lat, 0.50) * 1000, 2), "p99_ms": round(pct(lat, 0.99) * 1000, 2),
        "max_ms": round((lat[-1] if lat else float("nan")) * 1000, 2),
        "hub_rss_mb_start": round(rss0 / 1024, 1),
        "hub_rss_mb_end": round((rss_samples[-1] if rss_samples else 0) / 1024, 1),
        "hub_rss_mb_mid": round((rss_samples[len(rss_samples) // 2] if rss_samples else 0) / 1024, 1),
        "publish_rejected": p_res["rejected"],
    }


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (/proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def bench(args, journal: str | None) -> dict:
    """One hub on ``journal`` (None: memory), the rate sweep against it."""
    port = free_port()
    cmd = [sys.executable, "-m", "wallboard.hub", "hub", "--port", str(port), "--log-level", "WARNING",
           "--rate-limit", "1000000"]
    if journal:
        cmd += ["--journal", journal]
    if args.compression:
        cmd += ["--compression"]
    cmd += args.hub_arg
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    hub = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        base = f"ws://127.0.0.1:{port}"
        load0 = os.getloadavg()[0]
        cpu0 = cpu_s(hub.pid)
        with Noise(args.noise):
            runs = [one_run(base, hub.pid, args.walls, float(r), args.duration) for r in args.rates.split(",")]
        cpu = cpu_s(hub.pid) - cpu0
        ok = [r for r in runs if r["p99_ms"] <= 100 and r["lost"] == 0]
        last = runs[-1]
        events = sum(r["events_sent"] for r in runs)
        return {
            "walls": args.walls, "duration_s": args.duration,
            "journal": "memory" if not journal else "nats" if journal.startswith("nats://") else "sqlite",
            "compression": args.compression, "noise": args.noise,
            "load_avg_1m": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)},
            "events_per_s_offered": last["events_per_s_offered"],
            "events_per_s_delivered": last["events_per_s_delivered_per_wall"],
            "lost": sum(r["lost"] for r in runs), "p50_ms": last["p50_ms"], "p99_ms": last["p99_ms"],
            "hub_peak_rss_mb": round(rss_kb(hub.pid, "VmHWM") / 1024, 1),
            "hub_cpu_us_per_event": round(cpu / events * 1e6, 1) if events else None,
            "max_rate_p99_le_100ms": max((r["events_per_s_offered"] for r in ok), default=None),
            "runs": runs,
        }
    finally:
        hub.terminate()
        hub.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--walls", type=int, default=10, help="wall processes (default 10)")
    ap.add_argument("--rates", default="2000,5000,10000",
                    help="comma-separated offered rates in events/s, one run each (default 2000,5000,10000)")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per run (default 8; target run: 30)")
    ap.add_argument("--memory", action="store_true", help="in-memory journal instead of SQLite")
    ap.add_argument("--journal", metavar="nats[://HOST:PORT/STREAM]",
                    help="also run the sweep on a NATS JetStream log ('nats': a nats-server started here on a "
                    "loopback port), after the SQLite one: both results, hub CPU per event beside each other")
    ap.add_argument("--compression", action="store_true", help="enable permessage-deflate on the hub")
    ap.add_argument("--noise", action="store_true", help="keep one core busy with another process")
    ap.add_argument("--hub-arg", action="append", default=[],
                    help="extra hub CLI flag (repeatable), e.g. --hub-arg=--compact-every --hub-arg=1000000")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="wallboard-bench-")
    sqlite = None if args.memory else os.path.join(tmp, "bench.db")
    if not args.journal:
        print(json.dumps(bench(args, sqlite)))
        return 0
    if not args.journal.startswith("nats"):
        ap.error("--journal: expected nats or nats://HOST:PORT/STREAM")
    from wallboard.hub.nats_local import LocalNats, find_nats_server, missing_reason, server_version

    server = None
    url = args.journal
    if url == "nats":
        if find_nats_server() is None:
            ap.error(missing_reason())
        server = LocalNats(os.path.join(tmp, "nats")).start()
        url = f"{server.url}/fanout"
    try:
        out = {"nats": bench(args, url), "sqlite" if sqlite else "memory": bench(args, sqlite)}
        if server is not None:
            out["nats_server"] = server_version(server.binary)
        print(json.dumps(out))
    finally:
        if server is not None:
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
