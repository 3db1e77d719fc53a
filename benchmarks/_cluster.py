"""Cluster drill (issue 15, part a): two ``wallboard hub`` processes on one JetStream
stream of a real ``nats-server`` (one node, loopback), three headless walls split across
them (each given both hubs), a producer on each hub at ``--cluster-rate`` events/s in all;
after ``--cluster-s`` seconds hub A is killed with SIGKILL. Reports the seconds from the
kill to each of A's walls being LIVE on hub B (target <= 3 s), acked events missing from
the log (target 0), and whether every wall's state equals the state of the whole log.

Used by ``benchmarks/faults.py --drills cluster``.
"""
from __future__ import annotations

import asyncio
import os
import tempfile
import time

from _common import HubProcess, free_port


def _entities(st) -> dict:
    return {name: {k: {f: v for f, v in rec.items() if f not in ("last_seen", "ts", "seq")}
                   for k, rec in getattr(st, name).items()} for name in ("stores", "devices")}


def drill_cluster(args) -> dict:
    from faults import Headless, churn

    from wallboard.hub.nats_local import LocalNats, find_nats_server, missing_reason, server_version
    from wallboard.hub.record import Publisher
    from wallboard.state import LiveState

    binary = find_nats_server()
    if binary is None:
        return {"skipped": missing_reason()}
    tmp = tempfile.mkdtemp(prefix="wallboard-cluster-")
    nats = LocalNats(os.path.join(tmp, "nats"), binary=binary).start()
    url = f"{nats.url}/drill"
    a = HubProcess(free_port(), journal=url).start()
    b = HubProcess(free_port(), journal=url).start()
    feeds = f"{a.feed_url},{b.feed_url}"
    walls = [Headless(feeds), Headless(feeds), Headless(f"{b.feed_url},{a.feed_url}")]
    on_a = [0, 1]
    per_batch = 100
    interval = per_batch * 2 / args.cluster_rate    # two producers
    sent: dict[int, list[dict]] = {}
    result: dict = {"nats_server": server_version(binary), "walls": len(walls), "walls_on_killed_hub": len(on_a),
                    "rate_events_s": args.cluster_rate, "target_live_on_other_s": 3.0}
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 20 and not all(w.client.state.state == "LIVE" for w in walls):
            time.sleep(0.05)

        async def produce(pub: Publisher, tag: int, until: list[float]) -> None:
            n = 0
            nxt = time.monotonic()
            while time.monotonic() < until[0]:
                n += 1
                events = churn(tag * 1_000_000 + n, per_batch)
                key = await pub.publish([dict(e) for e in events])
                sent[key] = events
                nxt += interval
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))

        async def run() -> tuple[list, list, list]:
            pa = Publisher(a.publish_url, producer="drill-a", window=16)
            pb = Publisher(b.publish_url, producer="drill-b", window=16)
            pa.keep_acks = pb.keep_acks = True
            await pa.__aenter__()
            await pb.__aenter__()
            kill_at = [time.monotonic() + args.cluster_s]
            end_b = [kill_at[0] + args.cluster_after_s]
            ta = asyncio.create_task(produce(pa, 1, kill_at))
            tb = asyncio.create_task(produce(pb, 2, end_b))
            await ta
            connects = [w.client.state.connects for w in walls]
            result["walls_on_hub_at_kill"] = [w.client.state.host_port for w in walls]
            result["hubs"] = {"a": f"127.0.0.1:{a.port}", "b": f"127.0.0.1:{b.port}"}
            a.kill9()
            killed = time.monotonic()
            live: list = [None] * len(walls)
            while None in [live[i] for i in on_a] and time.monotonic() - killed < 30:
                for i in on_a:
                    s = walls[i].client.state
                    if (live[i] is None and s.state == "LIVE" and s.connects > connects[i]
                            and s.host_port == f"127.0.0.1:{b.port}"):
                        live[i] = round(time.monotonic() - killed, 3)
                await asyncio.sleep(0.01)
            await tb
            await pb.flush(60)
            acks_a = list(pa.acks)
            pa.session.unacked.clear()   # its hub is gone: what it did not ack is not counted
            await asyncio.wait_for(pb.close(), 10)
            try:
                await asyncio.wait_for(pa.close(), 2)
            except (Exception, asyncio.TimeoutError):
                pass
            return live, acks_a, list(pb.acks)

        t_run = time.monotonic()
        live, acks_a, acks_b = asyncio.run(run())
        result["run_s"] = round(time.monotonic() - t_run, 1)
        result["live_on_other_s"] = [live[i] for i in on_a]
        result["live_on_other_s_max"] = max((x for x in result["live_on_other_s"] if x is not None), default=None)
        log_events = asyncio.run(_read_log(url))
        by_seq = {e["seq"]: e for e in log_events}
        last = max(by_seq, default=0)
        acked = 0
        missing = 0
        for ack in acks_a + acks_b:
            events = sent.get(ack.batch, [])
            for k, ev in enumerate(events):
                acked += 1
                got = by_seq.get(ack.first + k)
                if got is None or any(got.get(f) != v for f, v in ev.items() if f not in ("ts",)):
                    missing += 1
        end = time.monotonic() + 60
        while time.monotonic() < end and any(w.state.seq < last for w in walls):
            time.sleep(0.05)
        ref = LiveState()
        ordered = [by_seq[s] for s in sorted(by_seq)]
        for i in range(0, len(ordered), 5000):
            ref.apply(ordered[i:i + 5000], time.time())
        result.update({
            "acked_events": acked, "acked_missing": missing, "log_events": len(ordered),
            "achieved_events_s": round(len(ordered) / (args.cluster_s + args.cluster_after_s)),
            "log_contiguous": sorted(by_seq) == list(range(1, last + 1)),
            "walls_at_last_seq": sum(w.state.seq == last for w in walls),
            "walls_state_equals_log": sum(_entities(w.state) == _entities(ref) for w in walls),
            "wall_snapshots": [w.driver.stats.snapshots for w in walls],
            "wall_resyncs": [w.driver.stats.resyncs for w in walls],
        })
        return result
    finally:
        for w in walls:
            w.stop()
        a.stop()
        b.stop()
        nats.close()


async def _read_log(url: str) -> list[dict]:
    """Every event of the stream, read by a journal of its own (what a new hub would see)."""
    from wallboard.hub.jetstream import JetStreamJournal

    j = JetStreamJournal(url)
    await j.start()
    try:
        out: list[dict] = []
        while True:
            more = await j.read(out[-1]["seq"] if out else 0, 5000)
            if not more:
                return out
            out.extend(more)
    finally:
        await j.aclose()
