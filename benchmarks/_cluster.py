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
    # snapshots every 20,000 events: a hub started later loads one and follows the rest
    opts = ["--compact-every", str(args.cluster_compact_every)]
    a = HubProcess(free_port(), journal=url, extra=opts).start()
    b = HubProcess(free_port(), journal=url, extra=opts).start()
    c = HubProcess(free_port(), journal=url, extra=opts)
    third: dict = {}
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
            await asyncio.sleep(args.cluster_s / 2)
            t_c = time.monotonic()       # (c) a third hub, started mid-run, serves a wall
            await asyncio.to_thread(c.start)
            third["port_open_s"] = round(time.monotonic() - t_c, 2)
            wall_c = Headless(c.feed_url)
            walls.append(wall_c)
            while time.monotonic() - t_c < 30 and not (wall_c.client.state.state == "LIVE" and wall_c.state.seq > 0):
                await asyncio.sleep(0.01)
            third["wall_live_s"] = round(time.monotonic() - t_c, 2)
            third["target_s"] = 5.0
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
        return {"a_failover": result, "c_third_hub": third, "b_leader_kill": drill_leader_kill(args)}
    finally:
        for w in walls:
            w.stop()
        a.stop()
        b.stop()
        c.stop()
        nats.close()


def drill_leader_kill(args) -> dict:
    """(b) a three-node NATS cluster, the stream at three replicas, one hub given all three
    servers, a producer publishing; kill -9 the stream's leader: the producer retries
    (``unavailable`` while the cluster elects another), 0 acked events lost, 0 stored twice."""
    from faults import churn

    from wallboard.hub.nats_local import LocalNats, free_port as fp
    from wallboard.hub.record import Publisher

    tmp = tempfile.mkdtemp(prefix="wallboard-cluster3-")
    cports = [fp() for _ in range(3)]
    nodes = [LocalNats(os.path.join(tmp, f"n{i}"), name=f"n{i}", cluster_port=cports[i], routes=cports)
             for i in range(3)]
    for n in nodes:
        n.start()
    servers = ",".join(f"127.0.0.1:{n.port}" for n in nodes)
    url = f"nats://{servers}/drill3"
    out: dict = {"nodes": 3, "replicas": 3}
    hub = None
    try:
        asyncio.run(_cluster_ready(nodes[0].url))
        hub = HubProcess(free_port(), journal=url, extra=["--replicas", "3"]).start()
        sent: dict[int, list[dict]] = {}
        per_batch = 100
        interval = per_batch / (args.cluster_rate / 2)

        async def run() -> tuple[list, Publisher]:
            pub = Publisher(hub.publish_url, producer="drill-b", window=16)
            pub.keep_acks = True
            async with pub:
                leader = await _leader(nodes[0].url, "drill3")
                out["leader"] = leader
                t0 = time.monotonic()
                killed = None
                nxt, n = time.monotonic(), 0
                while time.monotonic() - t0 < args.cluster_s + args.cluster_after_s:
                    if killed is None and time.monotonic() - t0 >= args.cluster_s:
                        victim = next(x for x in nodes if x.name == leader)
                        victim.kill()
                        killed = time.monotonic()
                        out["killed"] = leader
                    n += 1
                    events = churn(3_000_000 + n, per_batch)
                    sent[await pub.publish([dict(e) for e in events])] = events
                    nxt += interval
                    await asyncio.sleep(max(0.0, nxt - time.monotonic()))
                await pub.flush(120)
                survivor = next(x for x in nodes if x.name != leader)
                out["new_leader"] = await _leader(survivor.url, "drill3")
                return list(pub.acks), pub

        acks, pub = asyncio.run(run())
        out["producer_refusals_retried"] = pub.rejected
        survivor_url = "nats://" + ",".join(f"127.0.0.1:{x.port}" for x in nodes if x.proc and x.proc.poll() is None)
        log_events = asyncio.run(_read_log(survivor_url + "/drill3"))
        by_seq = {e["seq"]: e for e in log_events}
        acked = missing = 0
        for ack in acks:
            for k, ev in enumerate(sent.get(ack.batch, [])):
                acked += 1
                got = by_seq.get(ack.first + k)
                if got is None or got.get("id") != ev["id"] or got.get("ts") != ev["ts"]:
                    missing += 1
        seen: dict[tuple, int] = {}
        for e in log_events:
            seen[(e["id"], e["ts"])] = seen.get((e["id"], e["ts"]), 0) + 1
        out.update({"acked_events": acked, "acked_missing": missing, "log_events": len(log_events),
                    "events_stored_twice": sum(v - 1 for v in seen.values() if v > 1),
                    "log_contiguous": sorted(by_seq) == list(range(1, len(by_seq) + 1)),
                    "batches_unacked_at_end": len(pub.unacked)})
        return out
    finally:
        if hub is not None:
            hub.stop()
        for n in nodes:
            n.close()


async def _cluster_ready(url: str, timeout: float = 30.0) -> None:
    import nats

    end = time.monotonic() + timeout
    while True:
        try:
            nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
            try:
                await nc.jetstream().account_info()
                return
            finally:
                await nc.close()
        except Exception:
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.5)


async def _leader(url: str, stream: str) -> str:
    import nats

    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=3)
    try:
        end = time.monotonic() + 30
        while True:
            try:
                info = await nc.jetstream().stream_info(stream)
                if info.cluster and info.cluster.leader:
                    return info.cluster.leader
            except Exception:
                pass
            if time.monotonic() > end:
                return ""
            await asyncio.sleep(0.2)
    finally:
        await nc.close()


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
