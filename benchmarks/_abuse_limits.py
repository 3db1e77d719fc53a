"""Issue 13's "memory bounded by configuration" probes of ``benchmarks/faults.py --drills
abuse`` (see ``_abuse.py`` for the rest): each against a real ``wallboard hub`` process
with a SQLite journal and small configured bounds, with the bystander producer and wall
of ``_abuse.py`` measuring their latency, the hub's RSS sampled every 0.25 s.

* ``big_events``: 600 events of 900 KB under one device id (over ``--max-event-bytes``:
  all refused), then 600 of 500 KB (accepted): RSS peak against the configured bound
  ``rss_before + max_ingest_bytes + 3 x tail_bytes + 64 MiB`` (the tail's JSON, the log's
  recent rows' JSON and their event dicts).
* ``ingest_flood``: 4 producer connections from 127.0.0.2 sending 1 MB batches of 250
  events of 4 KB as fast as the hub reads them for ``FLOOD_S``, 32 unacked each: acked,
  ``unavailable`` (ingest queue full, answered before the frame is parsed), the queue's
  peak, RSS peak against the bound; again with the default 64 MiB queue, a 4 MiB and a
  1 MiB one (``ingest_flood_64mib``, ``ingest_flood_4mib``, ``ingest_flood_1mib``).
* ``typo_ids``: 100,000 distinct device ids under ``--max-devices 20000``: 50,000 with a
  timestamp 2 h old, then 50,000 fresh: devices held, evicted, batches refused before they
  are queued (`too_large` naming the event), events journaled but not kept, snapshot bytes.
* ``snapshots``: 100 ``hello since=0`` at once from 127.0.0.2 on a 50,000-device state:
  bytes sent, snapshots encoded / shared / refused by the budget.
* ``sleepers``: 40 walls from 127.0.0.2 that stop reading while 2,000 events/s flow
  (``--max-lag 2000 --wall-drop-after 5``): walls still connected over time, dropped.
* ``rate_limit``: ``--rate-limit 1000``: a 2,000-event batch, then 500-event batches
  every 0.5 s, over the websocket and HTTP.
* ``connections``: 300 slowloris connections (headers begun, never finished) from
  127.0.0.2 under ``--max-connections-per-address 64``, then a full handshake from there:
  connections the hub held, the 503 and when the rest were cut.

``drill_limits(tmp, tokens)`` returns one dict; ``python benchmarks/_abuse_limits.py
MODE ...`` is the attacker process of a probe.
"""
from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import orjson

from _abuse import ATTACKER, Bystanders, Hub, counters, http
from _common import cpu_s, rss_kb

MiB = 1 << 20
FLOOD_S = 10.0


def _mb(kb: int) -> float:
    return round(kb / 1024, 1)


async def measured(hub: Hub, probe: Callable[[Bystanders], Awaitable[dict[str, Any]]],
                   bound_extra_mb: float | None = None, settle_s: float = 2.0) -> dict[str, Any]:
    """``probe(by)`` between quiet phases, with bystanders and the hub's RSS sampled
    (peak); ``bound_extra_mb``: the configured bound above the RSS before the probe."""
    by = Bystanders(hub)
    task = asyncio.create_task(by.run())
    await asyncio.wait_for(by.ready.wait(), 90)
    await asyncio.sleep(settle_s)
    rss0 = rss_kb(hub.proc.pid)
    peak = [rss0]

    async def sample() -> None:
        while True:
            peak[0] = max(peak[0], rss_kb(hub.proc.pid))
            await asyncio.sleep(0.25)
    sampler = asyncio.create_task(sample())
    by.phase = "during"
    cpu0, t0 = cpu_s(hub.proc.pid), time.monotonic()
    res = await probe(by)
    hub_cpu, took = cpu_s(hub.proc.pid) - cpu0, time.monotonic() - t0
    by.phase = "after"
    await asyncio.sleep(settle_s)
    sampler.cancel()
    by.stop()
    await asyncio.wait_for(task, 30)
    res.update(by.figures(), hub_cpu_s_during=round(hub_cpu, 2), during_s=round(took, 1),
               rss_mb_before=_mb(rss0), rss_mb_peak=_mb(peak[0]),
               rss_mb_after=_mb(rss_kb(hub.proc.pid)), load_avg_1m=round(os.getloadavg()[0], 2))
    if bound_extra_mb is not None:
        res["rss_mb_bound"] = round(_mb(rss0) + bound_extra_mb, 1)
        res["rss_within_bound"] = res["rss_mb_peak"] <= res["rss_mb_bound"]
    by_p99 = [res.get(k, {}).get("p99", float("nan")) for k in ("ack_ms_during", "wall_ms_during")]
    res["bystander_p99_under_100ms"] = all(v < 100 for v in by_p99)
    return res


async def attacker(hub: Hub, mode: str, *args: str, timeout: float = 300) -> dict[str, Any]:
    """This file as a separate process (its CPU apart from the bystanders')."""
    proc = await asyncio.create_subprocess_exec(sys.executable, __file__, mode, hub.ws, hub.tokens["publish"],
                                                *args, stdout=subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return orjson.loads(out)


def delta(before: dict[str, float], after: dict[str, float], *names: str) -> dict[str, int]:
    return {n: int(after.get(n, 0) - before.get(n, 0)) for n in names}


# ---------------------------------------------------------------------- probes
async def big_events(hub: Hub, by: Bystanders) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    out: dict[str, Any] = {}
    async with connect(hub.ws + "/publish", max_size=None, local_addr=(ATTACKER, 0),
                       additional_headers={"Authorization": f"Bearer {hub.tokens['publish']}"}) as ws:
        for name, kb in (("events_900kb", 900), ("events_500kb", 500)):
            blob = ["b" * 4000] * (kb * 1000 // 4000)
            codes: dict[str, int] = {}
            t0 = time.monotonic()
            for i in range(600):
                ev = {"type": "device", "id": "big/d1", "store": "big", "status": "ok", "x_blob": blob, "x_i": i}
                await ws.send(orjson.dumps({"op": "publish", "events": [ev]}))
                reply = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
                key = reply["op"] if reply["op"] == "ack" else reply["code"]
                codes[key] = codes.get(key, 0) + 1
                if reply["op"] == "error":
                    out.setdefault(f"{name}_message", reply["message"][:160])
            out[name] = {"answers": codes, "seconds": round(time.monotonic() - t0, 1)}
    return out


async def ingest_flood(hub: Hub, by: Bystanders) -> dict[str, Any]:
    before = counters(hub)
    res = await attacker(hub, "ingest", str(FLOOD_S))
    after = counters(hub)
    res["hub"] = delta(before, after, "rejects_ingest_full", "wallboard_events_in_total")
    res["ingest_queue_peak_mb"] = round(after.get("wallboard_ingest_queue_peak_bytes", 0) / MiB, 1)
    return res


async def typo_ids(hub: Hub, by: Bystanders) -> dict[str, Any]:
    res = await attacker(hub, "typos", "100000")
    after = counters(hub)
    res.update({k: int(after.get(f"wallboard_{k}", 0)) for k in ("devices", "devices_cap")},
               evicted=int(after.get("wallboard_evicted_devices_total", 0)),
               batches_refused_before_queued=int(after.get("rejects_max_devices", 0)),
               events_journaled_not_kept=int(after.get("wallboard_refused_devices_total", 0)))
    res["snapshot_mb"] = round((await snapshot_bytes(hub)) / 1e6, 2)
    return res


async def snapshot_bytes(hub: Hub) -> int:
    from websockets.asyncio.client import connect

    from wallboard import protocol as P

    n = 0
    async with connect(hub.ws + "/feed", max_size=None,
                       additional_headers={"Authorization": f"Bearer {hub.tokens['subscribe']}"}) as ws:
        await ws.send(P.encode(P.Hello(wall="measure")))
        for _ in range(100_000):
            raw = await asyncio.wait_for(ws.recv(), 30)
            msg = orjson.loads(raw)
            if msg.get("op") == "snapshot":
                n += len(raw)
                if msg["part"] + 1 == msg["parts"]:
                    return n
    return n


async def snapshots(hub: Hub, by: Bystanders) -> dict[str, Any]:
    before = counters(hub)
    res = await attacker(hub, "hellos", "100")
    after = counters(hub)
    res["hub"] = delta(before, after, "wallboard_snapshots_sent_total", "wallboard_snapshots_encoded_total",
                       "wallboard_snapshots_shared_total", "rejects_snapshot_budget")
    return res


async def sleepers(hub: Hub, by: Bystanders) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    from wallboard import protocol as P

    socks = [raw_wall(hub.port) for _ in range(40)]
    seen: list[tuple[float, int, int]] = []
    t0 = time.monotonic()
    async with connect(hub.ws + "/publish", additional_headers={"Authorization": f"Bearer {hub.tokens['publish']}"}) as p:
        b = 0
        while time.monotonic() - t0 < 15:
            b += 1
            evs = [{"type": "kpi", "metric": "load", "scope": "global", "value": float(i), "x_pad": "p" * 400}
                   for i in range(100)]
            await p.send(P.encode(P.Publish(events=evs)))
            await asyncio.wait_for(p.recv(), 10)
            if b % 20 == 0:
                c = counters(hub)
                seen.append((round(time.monotonic() - t0, 1), int(c.get("wallboard_walls_connected", 0)),
                             int(c.get("wallboard_walls_dropped_total", 0))))
            await asyncio.sleep(0.05)
    for s in socks:
        s.close()
    return {"walls": 40, "connected_dropped_over_time": seen}


def raw_wall(port: int) -> socket.socket:
    """A wall from the attacker address that says hello (replaying from seq 1, so it needs
    no snapshot) and never reads again (a 4 KB receive buffer)."""
    from wallboard import protocol as P

    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.bind((ATTACKER, 0))
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    token = os.environ.get("WB_SUB", "")
    s.sendall(f"GET /feed HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    payload = P.encode(P.Hello(wall="sleeper", since=1))
    mask = os.urandom(4)
    s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))
    return s


async def rate_limit(hub: Hub, by: Bystanders) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    from wallboard import protocol as P

    kpis = lambda n, b: [{"type": "kpi", "metric": "m", "scope": "global", "value": float(i)}  # noqa: E731
                         for i in range(n)]
    out: dict[str, Any] = {}
    async with connect(hub.ws + "/publish", local_addr=(ATTACKER, 0),
                       additional_headers={"Authorization": f"Bearer {hub.tokens['publish']}"}) as ws:
        await ws.send(P.encode(P.Publish(events=kpis(2000, 0), producer="rl", batch=1)))
        big = orjson.loads(await ws.recv())
        out["batch_2000"] = {"code": big.get("code"), "message": big.get("message", "")[:200]}
        acked, limited, waits = 0, 0, []
        for b in range(2, 12):
            t0 = time.monotonic()
            for _ in range(10):  # resent after retry_after until acked
                await ws.send(P.encode(P.Publish(events=kpis(500, b), producer="rl", batch=b)))
                r = orjson.loads(await ws.recv())
                if r["op"] == "ack":
                    acked += 1
                    break
                limited += 1
                await asyncio.sleep(r.get("retry_after") or 1.0)
            waits.append(round(time.monotonic() - t0, 2))
            await asyncio.sleep(0.5)
        out["batches_500"] = {"acked": acked, "of": 10, "rate_limited_then_resent": limited,
                              "longest_wait_s": max(waits)}
    body = orjson.dumps(kpis(2000, 0))
    status, reply = http(hub.http_port, b"POST /events HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
                         + f"Authorization: Bearer {hub.tokens['publish']}\r\nContent-Length: {len(body)}\r\n".encode()
                         + b"Connection: close\r\n\r\n" + body, src=ATTACKER)
    out["http_batch_2000"] = {"status": status, "error": orjson.loads(reply).get("error")}
    return out


async def connections(hub: Hub, by: Bystanders) -> dict[str, Any]:
    """300 slowloris connections from the attacker address (request headers started, never
    finished) under ``--max-connections-per-address 64``, then a full websocket handshake
    from the same address: how many were held, refused, and when they were cut."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    conns = []
    for _ in range(300):
        r, w = await asyncio.open_connection("127.0.0.1", hub.port, local_addr=(ATTACKER, 0))
        w.write(b"GET /feed HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\n")  # and nothing more
        conns.append((r, w))
    t0 = time.monotonic()
    await asyncio.sleep(0.5)
    held = int(counters(hub).get("wallboard_hub_connections_open", 0))
    refusal: dict[str, Any] = {}
    try:
        async with connect(hub.ws + "/feed", local_addr=(ATTACKER, 0), open_timeout=10):
            refusal["status"] = 101
    except InvalidStatus as e:
        refusal = {"status": e.response.status_code, "retry_after": e.response.headers.get("Retry-After"),
                   "body": e.response.body.decode(errors="replace").strip()[:200]}

    async def closed_at(r: asyncio.StreamReader) -> float:
        try:
            await asyncio.wait_for(r.read(), 20)
        except (asyncio.TimeoutError, OSError):
            return float("inf")
        return time.monotonic() - t0
    times = sorted(await asyncio.gather(*(closed_at(r) for r, _ in conns)))
    for _, w in conns:
        w.close()
    after = counters(hub)
    return {"slowloris_connections": len(conns), "held_open_by_hub": held,
            "cut_within_3s": sum(t <= 3 for t in times), "cut_within_12s": sum(t <= 12 for t in times),
            "last_cut_s": round(max(times), 1), "full_handshake_from_that_address": refusal,
            "hub": {"rejects_connections": int(after.get("rejects_connections", 0)),
                    "connections_peak": int(after.get("wallboard_hub_connections_peak", 0))}}


# ---------------------------------------------------------------------- the drill
def drill_limits(tmp: Path, tokens: dict[str, str], only: str = "") -> dict[str, Any]:
    os.environ["WB_SUB"] = tokens["subscribe"]
    out: dict[str, Any] = {}
    tail, queue = 32 * MiB, 16 * MiB
    bounded = ["--tail-bytes", str(tail), "--max-ingest-bytes", str(queue)]
    # the ingest queue x 3 (each queued batch: its frame and its parsed events), the tail's
    # JSON and the log's recent rows (JSON and event dicts), the frames websockets reads ahead
    # (16 per connection, 4 flood connections of 1 MB), slack: nothing grows with the input
    def bound(q: int) -> float:
        return (3 * q + 3 * tail + 4 * 16 * MiB) / MiB + 32
    bound_mb = bound(queue)
    plan: list[tuple[str, list[str], Any, float | None]] = [
        ("big_events", bounded, big_events, bound_mb),
        ("ingest_flood", bounded, ingest_flood, bound_mb),
        # the default ingest queue (64 MiB: no --max-ingest-bytes)
        ("ingest_flood_64mib", ["--tail-bytes", str(tail)], ingest_flood, bound(64 * MiB)),
        ("ingest_flood_4mib", ["--tail-bytes", str(tail), "--max-ingest-bytes", str(4 * MiB)], ingest_flood,
         bound(4 * MiB)),
        ("ingest_flood_1mib", ["--tail-bytes", str(tail), "--max-ingest-bytes", str(MiB)], ingest_flood,
         bound(MiB)),
        ("typo_ids", ["--max-devices", "20000", "--evict-after", "60"], typo_ids, None),
        ("snapshots", [], snapshots, None),
        ("sleepers", ["--max-lag", "2000", "--wall-drop-after", "5"], sleepers, None),
        ("rate_limit", ["--rate-limit", "1000"], rate_limit, None),
        ("connections", ["--max-connections-per-address", "64"], connections, None),
    ]
    for name, flags, probe, bound in plan:
        if only and name not in only.split(","):
            continue
        hub = Hub(tmp, tokens, ["--journal", str(tmp / f"{name}.db"), *flags])
        try:
            if name == "snapshots":
                asyncio.run(attacker(hub, "world", "50000"))
            out[name] = asyncio.run(measured(hub, lambda by, p=probe, h=hub: p(h, by), bound))
            out[name]["flags"] = " ".join(flags)
        except Exception as e:  # report, go on with the next probe
            out[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
        finally:
            hub.stop()
    return out


# ---------------------------------------------------------------------- attacker process
async def _ingest(url: str, token: str, seconds: float) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    pad = "f" * 3900
    frame = orjson.dumps({"op": "publish", "events": [{"type": "kpi", "metric": "flood", "scope": "global",
                                                       "value": 1.0, "x_pad": pad} for _ in range(250)]})
    res = {"connections": 4, "batch_bytes": len(frame), "sent": 0, "acked": 0, "unavailable": 0, "other": 0}
    end = time.monotonic() + seconds

    async def one() -> None:
        async with connect(url + "/publish", max_size=None, local_addr=(ATTACKER, 0),
                           additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            window = asyncio.Semaphore(32)

            async def reader() -> None:
                async for raw in ws:
                    r = orjson.loads(raw)
                    key = "acked" if r["op"] == "ack" else ("unavailable" if r.get("code") == "unavailable"
                                                           else "other")
                    res[key] += 1
                    window.release()
            rt = asyncio.create_task(reader())
            while time.monotonic() < end:
                await window.acquire()
                await ws.send(frame)
                res["sent"] += 1
            for _ in range(32):
                await asyncio.wait_for(window.acquire(), 30)
            rt.cancel()

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(4)))
    took = time.monotonic() - t0
    res.update(seconds=round(took, 1), offered_events_per_s=round(res["sent"] * 250 / took),
               acked_events_per_s=round(res["acked"] * 250 / took))
    return res


async def _typos(url: str, token: str, n: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    now = time.time()
    answers: dict[str, int] = {}
    sample: dict[str, Any] | None = None
    async with connect(url + "/publish", local_addr=(ATTACKER, 0),
                       additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        for b in range(0, n, 1000):
            ts = now - 7200 if b < n // 2 else now
            evs = [{"type": "device", "id": f"typo/d{b + i}", "store": "typo", "status": "ok", "ts": ts}
                   for i in range(1000)]
            await ws.send(orjson.dumps({"op": "publish", "events": evs}))
            r = orjson.loads(await ws.recv())
            key = r["op"] if r["op"] == "ack" else r.get("code", "?")
            answers[key] = answers.get(key, 0) + 1
            if r["op"] == "error":
                sample = {"code": r.get("code"), "index": r.get("index"), "field": r.get("field"),
                          "message": r.get("message", "")[:240]}
    return {"ids_sent": n, "answers": answers, "refusal_sample": sample}


async def _world(url: str, token: str, n: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    async with connect(url + "/publish", additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        for b in range(0, n, 2000):
            evs = [{"type": "device", "id": f"s{(b + i) % 2500:04d}/d{b + i}", "store": f"s{(b + i) % 2500:04d}",
                    "kind": "pos", "status": "ok", "metrics": {"cpu": 0.5, "mem": 0.25}} for i in range(2000)]
            await ws.send(orjson.dumps({"op": "publish", "events": evs}))
            await ws.recv()
    return {"devices": n}


async def _hellos(url: str, token: str, n: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    res = {"hellos": n, "snapshots_complete": 0, "refused": 0, "other": 0, "bytes_received": 0,
           "refusal_sample": None}
    sent_bytes = 0

    async def one(i: int) -> None:
        nonlocal sent_bytes
        hello = orjson.dumps({"op": "hello", "wall": f"resync{i}", "since": 0})
        try:
            async with connect(url + "/feed", max_size=None, local_addr=(ATTACKER, 0),
                               additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                await ws.send(hello)
                sent_bytes += len(hello)
                while True:
                    raw = await asyncio.wait_for(ws.recv(), 60)
                    res["bytes_received"] += len(raw)
                    msg = orjson.loads(raw)
                    if msg.get("op") == "snapshot" and msg["part"] + 1 == msg["parts"]:
                        res["snapshots_complete"] += 1
                        return
                    if msg.get("op") == "error":
                        res["refused"] += 1
                        res["refusal_sample"] = {"code": msg["code"], "retry_after": msg.get("retry_after"),
                                                 "message": msg["message"][:160]}
        except ConnectionClosed:
            pass
        except (OSError, asyncio.TimeoutError):
            res["other"] += 1

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    res.update(seconds=round(time.monotonic() - t0, 2), mb_received=round(res.pop("bytes_received") / 1e6, 1),
               bytes_sent=sent_bytes)
    return res


if __name__ == "__main__":
    mode, url, token, arg = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    sub_token = os.environ.get("WB_SUB", token)
    run = {"ingest": lambda: _ingest(url, token, float(arg)), "typos": lambda: _typos(url, token, int(arg)),
           "world": lambda: _world(url, token, int(arg)), "hellos": lambda: _hellos(url, sub_token, int(arg))}[mode]
    sys.stdout.write(orjson.dumps(asyncio.run(run())).decode())
