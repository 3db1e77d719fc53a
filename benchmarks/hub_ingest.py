"""Durable hub ingest: how many events/s a real hub journals (SQLite, fsync) and acks.

    python benchmarks/hub_ingest.py                          # 2 producers, batches of 500, 10 s
    python benchmarks/hub_ingest.py --duration 20 --noise    # the same with one core kept busy

A ``wallboard hub`` subprocess (SQLite journal in a temporary directory, the default
group commit) takes ``--producers`` producer processes, each sending batches of
``--batch`` device-status events over ``/publish`` as fast as the acks come back (at most
``--window`` unacked batches each; every batch has its own key, as ``wallboard publish``
sends them), for ``--duration`` seconds. A plain subscriber process on ``/feed`` counts
what it receives. Frames are pre-encoded so the producers cost little of the machine.

Prints one JSON object: acked events/s (the figure: target >= 100,000 in batches of 500,
issue 18), ack latency p50/p99 (send -> ack), the events a subscriber received vs acked
(``missing``: must be 0), the hub's CPU (cores), the machine's other load (``uptime``'s
load average and busy cores not used by this benchmark), and ``noise`` (whether a core was
kept busy by another process, ``--noise``).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HubProcess, Noise, cpu_s, free_port, machine_busy_s, pct, rss_kb  # noqa: E402

STATUSES = ("ok", "warn", "crit", "ok", "ok")


def frames_of(n_arrays: int, batch: int, devices: int, seed: int) -> list[bytes]:
    """``n_arrays`` pre-encoded JSON arrays of ``batch`` device events each."""
    import orjson

    out = []
    k = seed * 7919
    for a in range(n_arrays):
        evs = []
        for i in range(batch):
            k += 1
            d = k % devices
            evs.append({"type": "device", "id": f"d{d:06d}", "store": f"s{d // 50:04d}", "kind": "pos",
                        "status": STATUSES[(k // devices + d) % 5], "metrics": {"cpu": float(k % 100)}})
        out.append(orjson.dumps(evs))
    return out


def producer_proc(url: str, name: str, args: argparse.Namespace, start_at: float, out: "mp.Queue") -> None:
    import orjson
    from websockets.asyncio.client import connect

    arrays = frames_of(20, args.batch, args.devices, hash(name) % 1000)

    async def main() -> None:
        sent: dict[int, float] = {}
        lat: list[float] = []
        acked = 0
        errors: dict[str, int] = {}
        room = asyncio.Semaphore(args.window)
        async with connect(url, compression=None, max_size=None) as ws:
            async def reader() -> None:
                nonlocal acked
                async for raw in ws:
                    msg = orjson.loads(raw)
                    b = msg.get("batch")
                    t = sent.pop(b, None)
                    if msg.get("op") == "ack":
                        acked += msg["last"] - msg["first"] + 1
                        if t is not None:
                            lat.append(time.perf_counter() - t)
                    else:
                        errors[msg.get("code", "?")] = errors.get(msg.get("code", "?"), 0) + 1
                    room.release()

            task = asyncio.create_task(reader())
            await asyncio.sleep(max(0.0, start_at - time.time()))
            t0 = time.time()
            n = 0
            while time.time() - t0 < args.duration:
                await room.acquire()
                n += 1
                head = b'{"op":"publish","producer":"%s","batch":%d,"events":' % (name.encode(), n)
                sent[n] = time.perf_counter()
                await ws.send(head + arrays[n % len(arrays)] + b"}", text=True)
            elapsed = time.time() - t0
            for _ in range(300):  # bounded wait for the last acks (30 s)
                if not sent:
                    break
                await asyncio.sleep(0.1)
            task.cancel()
        out.put({"acked": acked, "elapsed": elapsed, "batches": n, "unanswered": len(sent),
                 "errors": errors, "lat": lat})

    asyncio.run(main())


def subscriber_proc(url: str, ready: "mp.Event", stop: "mp.Event", out: "mp.Queue") -> None:
    import orjson
    from websockets.asyncio.client import connect

    async def main() -> None:
        got = 0
        first = None
        async with connect(url, compression=None, max_size=None) as ws:
            await ws.send(b'{"op":"hello","wall":"bench-sub"}', text=True)
            ready.set()
            idle_since = None
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except asyncio.TimeoutError:
                    if stop.is_set():
                        idle_since = idle_since or time.time()
                        if time.time() - idle_since > 2.0:
                            break
                    continue
                msg = orjson.loads(raw)
                if msg.get("op") == "events" and msg["events"]:
                    if first is None:
                        first = msg["events"][0]["seq"]
                    got += len(msg["events"])
                    idle_since = None
        out.put({"received": got, "first_seq": first})

    asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of publishing (default 10)")
    ap.add_argument("--producers", type=int, default=2, help="producer processes (default 2)")
    ap.add_argument("--batch", type=int, default=500, help="events per batch (default 500)")
    ap.add_argument("--window", type=int, default=8, help="unacked batches per producer (default 8)")
    ap.add_argument("--devices", type=int, default=100_000, help="distinct device ids (default 100,000)")
    ap.add_argument("--noise", action="store_true", help="keep one core busy with another process")
    ap.add_argument("--hub-arg", action="append", default=[], help="extra hub CLI flag (repeatable)")
    args = ap.parse_args()

    ctx = mp.get_context("spawn")
    tmp = tempfile.mkdtemp(prefix="wallboard-ingest-")
    port = free_port()
    hub = HubProcess(port, journal=os.path.join(tmp, "hub.db"),
                     extra=["--rate-limit", "100000000", *args.hub_arg]).start()
    noise = Noise(args.noise)
    try:
        noise.__enter__()
        q: mp.Queue = ctx.Queue()
        ready, stop = ctx.Event(), ctx.Event()
        sub = ctx.Process(target=subscriber_proc, args=(hub.feed_url, ready, stop, q))
        sub.start()
        ready.wait(30)
        start_at = time.time() + 2.0
        prods = [ctx.Process(target=producer_proc, args=(hub.publish_url, f"ingest-{i}", args, start_at, q))
                 for i in range(args.producers)]
        for p in prods:
            p.start()
        time.sleep(max(0.0, start_at - time.time()))
        load0 = os.getloadavg()
        hub_cpu0, busy0, t0 = cpu_s(hub.pid), machine_busy_s(), time.time()
        results = [q.get(timeout=args.duration + 120) for _ in prods]
        wall_s = time.time() - t0
        hub_cpu, busy = cpu_s(hub.pid) - hub_cpu0, machine_busy_s() - busy0
        stop.set()
        subres = q.get(timeout=60)
        for p in [*prods, sub]:
            p.join(10)
        acked = sum(r["acked"] for r in results)
        elapsed = max(r["elapsed"] for r in results)
        lat = sorted(x for r in results for x in r["lat"])
        errors: dict[str, int] = {}
        for r in results:
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
        print(json.dumps({
            "producers": args.producers, "batch": args.batch, "window": args.window,
            "duration_s": round(elapsed, 2),
            "events_acked": acked, "acked_events_per_s": round(acked / elapsed),
            "ack_p50_ms": round(pct(lat, 0.50) * 1000, 1), "ack_p99_ms": round(pct(lat, 0.99) * 1000, 1),
            "errors": errors, "unanswered_batches": sum(r["unanswered"] for r in results),
            "subscriber_received": subres["received"], "missing": acked - subres["received"],
            "hub_cores": round(hub_cpu / wall_s, 2), "hub_rss_mb": round(rss_kb(hub.pid) / 1024, 1),
            "machine_busy_cores": round(busy / wall_s, 2),
            "load_avg_1m_at_start": round(load0[0], 2), "noise": args.noise, "cores": os.cpu_count(),
        }))
    finally:
        noise.__exit__()
        hub.stop()


if __name__ == "__main__":
    main()
