"""``benchmarks/faults.py --drills producers``: issue 18's producer drills against real
``wallboard hub`` processes, each counting acked events lost and duplicated.

Every drill publishes kpi events tagged ``x_id`` (unique per event), remembers every ack
(producer, batch, first, last), and at the end a fresh subscriber replays the log from
seq 1 (``hello since=1``, after a seed event at seq 1): an acked event is **lost** when
its ``x_id`` is not at the seq it was acked with, **duplicated** when its ``x_id`` is in
the log more than once. Drills:

1. ``rate_limited``: ``--rate-limit 1000``; batch 1 acked, batch 2 ``rate_limited``,
   batch 3 acked, batch 2 resent (over /publish, and the same over HTTP: 429 then 200).
2. ``second_file``: ``wallboard publish --producer etl file1.jsonl``, then ``file2.jsonl``
   under the same producer, then file1 again (a rerun: duplicates, not applied twice).
3. ``many_producers``: a batch, 10,001 other producers, the batch resent.
4. ``bad_batch``: a bystander producer publishes throughout while another sends events
   nested 40 deep and a batch id of 2^63: those are refused, every bystander batch acked.
5. ``damaged_journal``: kill -9 and restart (WAL in place: nothing lost); then kill -9,
   the ``-wal`` deleted: the hub refuses to start with one line (exit 2); a deleted and
   a zero-length journal likewise; ``--new-epoch`` starts again.
6. ``two_hubs``: a second hub on the same journal refuses to start naming the first's pid.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from _common import HubProcess, free_port

ROOT = Path(__file__).resolve().parent.parent


def ev(tag: str, value: float = 1.0) -> dict:
    return {"type": "kpi", "metric": "drill", "scope": "global", "value": value, "x_id": tag}


class Ledger:
    """Acks a drill got, and the count against what a fresh subscriber reads."""

    def __init__(self) -> None:
        self.acked: dict[tuple[str, int], tuple[int, int, list[str]]] = {}
        self.duplicate_acks = 0
        self.refused: dict[str, int] = {}

    def ack(self, producer: str, batch: int, first: int, last: int, tags: list[str], duplicate: bool) -> None:
        key = (producer, batch)
        if key in self.acked:
            assert self.acked[key][:2] == (first, last), f"{key} acked as {first}..{last} and {self.acked[key][:2]}"
        else:
            self.acked[key] = (first, last, tags)
        self.duplicate_acks += int(duplicate)

    def refuse(self, code: str) -> None:
        self.refused[code] = self.refused.get(code, 0) + 1

    def count(self, port: int) -> dict[str, Any]:
        log = asyncio.run(read_log(port))
        at = {e["seq"]: e.get("x_id") for e in log}
        seen: dict[str, int] = {}
        for tag in at.values():
            if tag is not None:
                seen[tag] = seen.get(tag, 0) + 1
        acked = lost = 0
        for first, last, tags in self.acked.values():
            for seq, tag in zip(range(first, last + 1), tags):
                acked += 1
                lost += int(at.get(seq) != tag)
        duplicated = sum(n - 1 for n in seen.values() if n > 1)
        return {"acked_events": acked, "lost": lost, "duplicated": duplicated, "log_events": len(log),
                "duplicate_acks": self.duplicate_acks, "refused": dict(self.refused)}


async def read_log(port: int) -> list[dict]:
    """Every event after seq 1 as a fresh subscriber gets it (replay from the journal)."""
    from websockets.asyncio.client import connect

    from wallboard import protocol as P

    out: list[dict] = []
    async with connect(f"ws://127.0.0.1:{port}/feed", max_size=None) as ws:
        await ws.send(P.encode(P.Hello(since=1, wall="drill-counter")))
        welcome = P.decode(await asyncio.wait_for(ws.recv(), 10), max_size=1 << 30)
        end = welcome.seq
        while (out[-1]["seq"] if out else 1) < end:
            m = P.decode(await asyncio.wait_for(ws.recv(), 10), max_size=1 << 30)
            if isinstance(m, P.Events):
                out.extend(m.events)
            elif isinstance(m, P.Snapshot):
                raise RuntimeError("the log was compacted: the drill needs a replay from seq 1")
    return out


async def send(ws: Any, events: list[dict], producer: str | None = None, batch: int | None = None) -> Any:
    from wallboard import protocol as P

    await ws.send(orjson.dumps({"op": "publish", "events": events, "producer": producer, "batch": batch}
                               if producer is not None else {"op": "publish", "events": events}))
    return P.decode(await asyncio.wait_for(ws.recv(), 30), max_size=1 << 30)


def seed(port: int) -> None:
    """The event at seq 1 (the subscriber replays from there)."""
    async def go() -> None:
        from websockets.asyncio.client import connect

        async with connect(f"ws://127.0.0.1:{port}/publish") as ws:
            await send(ws, [ev("seed")])
    asyncio.run(go())


def note(ledger: Ledger, reply: Any, producer: str, batch: int, tags: list[str]) -> None:
    from wallboard import protocol as P

    if isinstance(reply, P.Ack):
        ledger.ack(producer, batch, reply.first, reply.last, tags, reply.duplicate)
    else:
        ledger.refuse(reply.code)


def hub(tmp: Path, name: str, *extra: str) -> HubProcess:
    return HubProcess(free_port(), journal=str(tmp / f"{name}.db"),
                      extra=["--compact-every", "10000000", *extra]).start()


# --------------------------------------------------------------------------- drills


def drill_rate_limited(tmp: Path) -> dict:
    import aiohttp
    from websockets.asyncio.client import connect

    http_port = free_port()
    h = hub(tmp, "rate", "--rate-limit", "1000", "--http-port", str(http_port))
    ledger = Ledger()
    try:
        seed(h.port)
        time.sleep(1.1)

        async def go() -> list[int]:
            tags = {n: [f"ws:{n}:{i}" for i in range(600 if n < 3 else 300)] for n in (1, 2, 3)}
            async with connect(h.publish_url) as ws:
                limited = []
                for n in (1, 2, 3):
                    reply = await send(ws, [ev(t) for t in tags[n]], "ws", n)
                    note(ledger, reply, "ws", n, tags[n])
                    if getattr(reply, "code", None) == "rate_limited":
                        limited.append(n)
                await asyncio.sleep(1.1)
                for n in limited:  # resent once the bucket has refilled: journaled, not a duplicate
                    note(ledger, await send(ws, [ev(t) for t in tags[n]], "ws", n), "ws", n, tags[n])
                ws_limited.extend(limited)
            statuses = []
            await asyncio.sleep(1.1)
            async with aiohttp.ClientSession() as s:
                url = f"http://127.0.0.1:{http_port}/events"
                for n, size in ((1, 600), (2, 600), (2, 600)):
                    if statuses and statuses[-1] == 429:
                        await asyncio.sleep(1.1)
                    body = [ev(f"http:{n}:{i}") for i in range(size)]
                    async with s.post(url, data=orjson.dumps(body),
                                      headers={"X-Wallboard-Producer": "http", "X-Wallboard-Batch": str(n),
                                               "Content-Type": "application/json"}) as r:
                        statuses.append(r.status)
                        data = orjson.loads(await r.read())
                        if r.status == 200:
                            ledger.ack("http", n, data["first"], data["last"], [e["x_id"] for e in body],
                                       data["duplicate"])
                        else:
                            ledger.refuse(data["error"])
            return statuses
        ws_limited: list[int] = []
        statuses = asyncio.run(go())
        return {**ledger.count(h.port), "ws_rate_limited_batches": ws_limited, "http_statuses": statuses}
    finally:
        h.stop()


def drill_second_file(tmp: Path) -> dict:
    h = hub(tmp, "files")
    ledger = Ledger()
    try:
        seed(h.port)
        runs = []
        files = {}
        for name, base in (("file1", 0), ("file2", 100)):
            f = tmp / f"{name}.jsonl"
            f.write_text("".join(orjson.dumps(ev(f"{name}:{i}", float(base + i))).decode() + "\n" for i in range(3)))
            files[name] = f
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for name in ("file1", "file2", "file1"):
            r = subprocess.run([sys.executable, "-m", "wallboard", "publish", "--hub", f"ws://127.0.0.1:{h.port}",
                                "--producer", "etl", str(files[name])], capture_output=True, text=True, env=env,
                               timeout=60)
            line = r.stderr.strip().splitlines()[-1]
            runs.append({"file": name, "exit": r.returncode, "summary": line})
            seqs = line.split("(seq ", 1)[1].split(")", 1)[0].split("..") if "(seq " in line else None
            if r.returncode == 0 and seqs:
                ledger.ack("etl", len(runs), int(seqs[0]), int(seqs[1]), [f"{name}:{i}" for i in range(3)],
                           "1 duplicate acks" in line)
        # a rerun's ack repeats file1's range: count it once
        ledger.acked.pop(("etl", 3), None)
        return {**ledger.count(h.port), "runs": runs}
    finally:
        h.stop()


def drill_many_producers(tmp: Path, others: int = 10_001) -> dict:
    from websockets.asyncio.client import connect

    from wallboard import protocol as P

    h = hub(tmp, "many")
    ledger = Ledger()
    try:
        seed(h.port)

        async def go() -> None:
            async with connect(h.publish_url, max_size=None) as ws:
                tags = ["first:1:0"]
                note(ledger, await send(ws, [ev(tags[0])], "first", 1), "first", 1, tags)
                for start in range(0, others, 500):  # pipelined, 500 frames in flight
                    n = min(500, others - start)
                    for i in range(start, start + n):
                        await ws.send(orjson.dumps({"op": "publish", "events": [ev(f"p{i}")], "producer": f"p{i}",
                                                    "batch": 1}))
                    for i in range(start, start + n):
                        note(ledger, P.decode(await asyncio.wait_for(ws.recv(), 30)), f"p{i}", 1, [f"p{i}"])
                note(ledger, await send(ws, [ev(tags[0])], "first", 1), "first", 1, tags)
        asyncio.run(go())
        return ledger.count(h.port)
    finally:
        h.stop()


def drill_bad_batch(tmp: Path) -> dict:
    from websockets.asyncio.client import connect

    h = hub(tmp, "bad")
    ledger = Ledger()
    try:
        seed(h.port)

        async def bystander(stop: asyncio.Event) -> int:
            n = 0
            async with connect(h.publish_url) as ws:
                while not stop.is_set():
                    n += 1
                    tags = [f"by:{n}:{i}" for i in range(50)]
                    note(ledger, await send(ws, [ev(t) for t in tags], "bystander", n), "bystander", n, tags)
            return n

        async def bad() -> None:
            deep: Any = 1
            for _ in range(40):
                deep = {"x": deep}
            for b in range(20):
                # a connection per frame: a bad batch id is a protocol violation, and the hub
                # closes a connection after 3 of them (the bystander's stays open)
                async with connect(h.publish_url) as ws:
                    ledger.refuse((await send(ws, [{**ev(f"bad:{b}"), "x_deep": deep}], "bad", b + 1)).code)
                    ledger.refuse((await send(ws, [ev(f"big:{b}")], "bad", 1 << 63)).code)
                await asyncio.sleep(0.05)

        async def go() -> int:
            stop = asyncio.Event()
            t = asyncio.create_task(bystander(stop))
            await bad()
            await asyncio.sleep(0.5)
            stop.set()
            return await t
        sent = asyncio.run(go())
        return {**ledger.count(h.port), "bystander_batches": sent}
    finally:
        h.stop()


def start_line(journal: Path, *extra: str) -> tuple[int, str]:
    """Run ``wallboard hub`` on ``journal``; (exit status, stderr) when it refuses, else
    (-1, "") after stopping it."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "wallboard", "hub", "--port", str(port), "--journal", str(journal),
                          "--log-level", "ERROR", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env)
    try:
        out = p.stdout.readline() if p.stdout else ""
        if "listening on" in out:
            return -1, ""
        p.wait(30)
        return p.returncode, (p.stderr.read() if p.stderr else "").strip()
    finally:
        if p.poll() is None:
            p.terminate()
            p.wait(30)


def drill_damaged_journal(tmp: Path) -> dict:
    from wallboard.hub.record import Publisher

    h = hub(tmp, "damaged")
    journal = Path(h.journal or "")
    ledger = Ledger()
    refusals: dict[str, dict] = {}
    try:
        seed(h.port)

        async def publish(n0: int, n: int) -> None:
            pub = Publisher(h.publish_url, producer="dmg", window=8)
            pub.keep_acks = True
            tags: dict[int, list[str]] = {}
            async with pub:
                for b in range(n0, n0 + n):
                    t = [f"dmg:{b}:{i}" for i in range(20)]
                    tags[await pub.publish([ev(x) for x in t])] = t
                await pub.flush(60)
            for a in pub.acks:
                ledger.ack("dmg", a.batch, a.first, a.last, tags[a.batch], a.duplicate)
        asyncio.run(publish(0, 50))
        h.kill9()
        h.restart()
        asyncio.run(publish(50, 50))
        result = ledger.count(h.port)      # after kill -9 with the WAL in place
        h.kill9()
        Path(f"{journal}-wal").unlink(missing_ok=True)
        Path(f"{journal}-shm").unlink(missing_ok=True)
        code, line = start_line(journal)
        refusals["wal_deleted_after_kill9"] = {"exit": code, "lines": len(line.splitlines()), "message": line}
        for what in ("deleted", "zero_length"):
            for s in ("", "-wal", "-shm"):
                Path(f"{journal}{s}").unlink(missing_ok=True)
            if what == "zero_length":
                journal.write_bytes(b"")
            code, line = start_line(journal)
            refusals[what] = {"exit": code, "lines": len(line.splitlines()), "message": line}
        code, _ = start_line(journal, "--new-epoch")
        refusals["new_epoch_starts"] = {"started": code == -1}
        return {**result, "refusals": refusals}
    finally:
        h.stop()


def drill_two_hubs(tmp: Path) -> dict:
    h = hub(tmp, "two")
    ledger = Ledger()
    try:
        seed(h.port)
        code, line = start_line(Path(h.journal or ""))
        from websockets.asyncio.client import connect

        async def go() -> None:
            async with connect(h.publish_url) as ws:
                for b in range(1, 21):
                    tags = [f"two:{b}:{i}" for i in range(10)]
                    note(ledger, await send(ws, [ev(t) for t in tags], "two", b), "two", b, tags)
        asyncio.run(go())
        return {**ledger.count(h.port), "second_hub": {"exit": code, "names_pid": f"pid {h.pid}" in line,
                                                       "message": line}}
    finally:
        h.stop()


DRILLS = {"rate_limited": drill_rate_limited, "second_file": drill_second_file, "many_producers": drill_many_producers,
          "bad_batch": drill_bad_batch, "damaged_journal": drill_damaged_journal, "two_hubs": drill_two_hubs}


def drill_producers(args: Any) -> dict:
    """Every producer drill; per drill the counts, and the totals (targets: 0 and 0)."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="wb-producers-") as d:
        for name, fn in DRILLS.items():
            t0 = time.monotonic()
            sub = Path(d) / name
            sub.mkdir()
            try:
                out[name] = fn(sub)
            except Exception as e:  # a drill that breaks is reported, the others still run
                out[name] = {"error": f"{type(e).__name__}: {e}"}
            out[name]["s"] = round(time.monotonic() - t0, 1)
    out["lost_total"] = sum(v.get("lost", 0) for v in out.values() if isinstance(v, dict))
    out["duplicated_total"] = sum(v.get("duplicated", 0) for v in out.values() if isinstance(v, dict))
    return out
