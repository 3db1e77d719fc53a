"""Fault drills, long versions with figures (the bounded ones: tests/test_fault_drills.py).

    python benchmarks/faults.py                      # every drill (~3 minutes)
    python benchmarks/faults.py --drills kill9,cut --rounds 3 --cut-s 30
    python benchmarks/faults.py --drills fuzz --fuzz 1000000
    python benchmarks/faults.py --drills producers
    python benchmarks/faults.py --drills cluster     # needs the cluster extra (nats-server)

Drills (all on 127.0.0.1):

* ``kill9``: a ``wallboard hub`` process with a SQLite journal, ``--walls`` headless walls
  (FeedClient + LiveState + FrameDriver) and a producer publishing throughout; the hub is
  killed with SIGKILL ``--rounds`` times and restarted on the same port and journal.
  Reports, per round, the seconds from the hub's return (port open) to each wall being
  LIVE again (target <= 5 s), and at the end acked events missing (target 0) and whether
  every wall's state equals the producer's log.
* ``cut``: a real wall (WallController, offscreen) behind a TCP proxy; the link goes
  silent for ``--cut-s`` seconds (nothing closed, nothing arrives) while the producer
  keeps publishing. Reports seconds to STALE (target <= 3 s with a 1 s heartbeat), that
  the panels were dimmed with the age shown, seconds to LIVE after the link returns and
  whether the state is exact.
* ``fuzz``: ``--fuzz`` fuzzed frames (random bytes, truncated and mutated valid messages)
  at a hub's /publish (pipelined on one connection) and the same number at the wall's
  decoder (``protocol.decode``, what FeedClient runs), plus ``--wall-frames`` of them
  through a real FeedClient socket. Reports crashes (target 0), frames answered or
  counted, and the counts by reason.
* ``auth``: publish, subscribe and control without / with wrong tokens: refusals.
* ``abuse``: issue 13's probes against a real hub process with four tokens (roles, weak
  tokens, an unauthenticated flood of ``--flood`` 414 KB batches with bystander latency,
  browser requests, /metrics, forged log lines, malformed and partial HTTP, SIGTERM; see
  ``benchmarks/_abuse.py``) and the memory bounds (events of 900 / 500 KB, an ingest flood,
  100,000 typo device ids, 100 ``hello since=0``, 40 walls that stop reading, a batch over
  the rate limit's burst; RSS against the configured bound and bystander p99; see
  ``benchmarks/_abuse_limits.py``); ``--abuse-part`` runs one half.
* ``producers``: issue 18's producer drills (rate-limited resend, a second file under one
  producer id, 10,001 producers, a bad batch next to a bystander, damaged journals after
  kill -9, two hubs on one journal), each against real ``wallboard hub`` processes,
  with acked events lost and duplicated per drill (target: all 0); see
  ``benchmarks/producer_drills.py``.
* ``cluster``: issue 15 (a): two hubs on one JetStream stream of a real nats-server,
  three walls across them, a producer on each; kill -9 one hub: seconds until its walls
  are LIVE on the other (target <= 3 s), acked events missing (target 0), walls' state
  equal to the log's; see ``benchmarks/_cluster.py``. Not in the default set.

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _abuse import drill_abuse  # noqa: E402
from _common import CutProxy, HubProcess, free_port, fuzz_frames  # noqa: E402


class Headless:
    """A wall without windows, stepped from a thread of its own."""

    def __init__(self, url: str, **opts) -> None:
        from wallboard.app.frame import FrameDriver
        from wallboard.feed import FeedClient
        from wallboard.state import LiveState

        self.state = LiveState()
        self.client = FeedClient(url, **opts)
        self.driver = FrameDriver(self.state, self.client, budget_s=0.02, max_items=256)
        self.client.start()
        self._run = True
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self) -> None:
        while self._run:
            self.driver.step()
            time.sleep(1 / 30)

    def stop(self) -> None:
        self._run = False
        self._t.join(5)
        self.client.stop()


def churn(b: int, n: int = 100, devices: int = 2000) -> list[dict]:
    return [{"type": "device", "id": f"d{(b * n + i) % devices}", "store": f"s{(b * n + i) % devices // 20}",
             "kind": "pos", "status": ("ok", "warn", "crit", "down")[(b + i) % 4],
             "metrics": {"cpu": float(i)}, "ts": 1_700_000_000.0 + b} for i in range(n)]


def entities(st) -> dict:
    return {name: {k: {f: v for f, v in rec.items() if f not in ("last_seen", "ts", "seq")}
                   for k, rec in getattr(st, name).items()} for name in ("stores", "devices")}


# ---------------------------------------------------------------------- kill -9
def drill_kill9(args) -> dict:
    from wallboard.hub.record import Publisher
    from wallboard.state import LiveState

    tmp = tempfile.mkdtemp(prefix="wallboard-faults-")
    hub = HubProcess(free_port(), journal=os.path.join(tmp, "hub.db")).start()
    walls = [Headless(hub.feed_url) for _ in range(args.walls)]
    rounds: list[dict] = []
    sent: dict[int, list[dict]] = {}
    try:
        async def produce() -> list:
            pub = Publisher(hub.publish_url, producer="kill9", window=16)
            pub.keep_acks = True
            async with pub:
                b = 0
                for r in range(args.rounds):
                    t_end = time.monotonic() + args.between_s
                    while time.monotonic() < t_end:
                        b += 1
                        events = churn(b)
                        sent[await pub.publish([dict(e) for e in events])] = events
                        await asyncio.sleep(0.01)
                    connects = [w.client.state.connects for w in walls]
                    hub.kill9()
                    await asyncio.sleep(args.down_s)
                    hub.restart()
                    back = time.monotonic()
                    live = [None] * len(walls)
                    while None in live and time.monotonic() - back < 60:
                        b += 1
                        events = churn(b)
                        sent[await pub.publish([dict(e) for e in events])] = events
                        for i, w in enumerate(walls):
                            s = w.client.state
                            if live[i] is None and s.state == "LIVE" and s.connects > connects[i]:
                                live[i] = round(time.monotonic() - back, 2)
                        await asyncio.sleep(0.01)
                    rounds.append({"round": r + 1, "live_again_s": live})
                await pub.flush(60)
            return pub.acks

        acks = asyncio.run(produce())
        ranges = {}
        for a in acks:
            ranges.setdefault(a.batch, (a.first, a.last))
        missing_batches = sorted(set(sent) - set(ranges))
        ordered = []
        for b, (first, _) in sorted(ranges.items(), key=lambda kv: kv[1][0]):
            ordered += [{**ev, "seq": first + k} for k, ev in enumerate(sent[b])]
        contiguous = [e["seq"] for e in ordered] == list(range(1, len(ordered) + 1))
        last = ordered[-1]["seq"] if ordered else 0
        end = time.monotonic() + 60
        while time.monotonic() < end and any(w.state.seq < last for w in walls):
            time.sleep(0.05)
        ref = LiveState()
        for i in range(0, len(ordered), 5000):
            ref.apply(ordered[i:i + 5000], time.time())
        worst = max((x for r in rounds for x in r["live_again_s"] if x is not None), default=None)
        return {
            "walls": args.walls, "rounds": rounds, "down_s": args.down_s,
            "live_again_s_max": worst, "target_live_again_s": 5.0,
            "batches_sent": len(sent), "batches_acked": len(ranges), "acked_events": len(ordered),
            "acked_missing_or_doubled": 0 if contiguous else "seq gap in the acked ranges",
            "unacked_batches": missing_batches,
            "walls_at_last_seq": sum(w.state.seq == last for w in walls),
            "walls_state_equals_producer_log": sum(entities(w.state) == entities(ref) for w in walls),
            "wall_resyncs": [w.driver.stats.resyncs for w in walls],
        }
    finally:
        for w in walls:
            w.stop()
        hub.stop()


# ---------------------------------------------------------------------- cut
def drill_cut(args) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from _common import OffscreenWall, publish_all

    hub = HubProcess(free_port(), extra=["--heartbeat", "1"]).start()
    proxy = CutProxy(hub.port).start()
    wall = OffscreenWall(f"ws://127.0.0.1:{proxy.port}/feed", "overview", size=(1920, 1080))
    other = Headless(hub.feed_url)
    stop = threading.Event()
    try:
        publish_all(hub.publish_url, [e for b in range(20) for e in churn(b)], producer="cut-world")
        wall.wait_until(lambda: wall.state.seq > 0 and wall.state.seq == other.state.seq, 30, "walls loaded")

        def produce() -> None:
            b = 1000
            while not stop.is_set():
                b += 1
                publish_all(hub.publish_url, churn(b, 50), producer=f"cut-{b}")
                time.sleep(0.05)

        th = threading.Thread(target=produce, daemon=True)
        th.start()
        wall.pump(1.0)
        proxy.pause()
        t_cut = time.monotonic()
        feed_stale = None
        while time.monotonic() - t_cut < 15 and not wall.ctl.stale:
            wall.app.processEvents()
            if feed_stale is None and wall.feed_state == "STALE":
                feed_stale = time.monotonic() - t_cut
            time.sleep(0.005)
        stale_s = time.monotonic() - t_cut if wall.ctl.stale else None
        wall.pump(1.2)
        win = wall.ctl.windows[0]
        dimmed = all(p.dimmed for p in win.current_page().panels)
        banner = win.stale_banner.text
        header_feed = win.header.texts()[3]
        wall.pump(max(0.0, args.cut_s - (time.monotonic() - t_cut)))
        states_during = wall.feed_state
        proxy.resume()
        t_back = time.monotonic()
        stop.set()
        th.join(30)
        target_seq = other.state.seq
        live = wall.wait_until(lambda: not wall.ctl.stale and wall.feed_state == "LIVE", 60, "LIVE after the cut")
        wall.wait_until(lambda: wall.state.seq >= other.state.seq, 60, "caught up")
        wall.pump(0.5)
        return {
            "cut_s": args.cut_s, "heartbeat_s": 1.0, "stale_after_s": round(stale_s, 2) if stale_s else None,
            "feed_stale_after_s": round(feed_stale, 2) if feed_stale else None, "target_stale_s": 3.0,
            "panels_dimmed": dimmed, "banner": banner, "header_feed": header_feed,
            "feed_state_end_of_cut": states_during,
            "live_again_s": round(live, 2), "events_published_during_cut": target_seq - 0,
            "state_exact": wall.state.seq == other.state.seq and entities(wall.state) == entities(other.state),
            "resyncs": wall.ctl.driver.stats.resyncs, "reconnects": wall.client.state.connects - 1,
        }
    finally:
        stop.set()
        wall.close()
        other.stop()
        proxy.stop()
        hub.stop()


# ---------------------------------------------------------------------- fuzz
def drill_fuzz(args) -> dict:
    from websockets.asyncio.client import connect

    from wallboard import protocol as P
    from wallboard.hub.auth import Auth
    from wallboard.hub.server import Hub, HubConfig

    out: dict = {"frames": args.fuzz}
    # 1) the wall's decoder, directly
    rng = random.Random(1)
    valid_feed = [P.encode(P.Heartbeat(seq=3, time=1.0)), P.encode(P.Stats(counters={"a": 1})),
                  P.encode_events([{**e, "seq": i + 1} for i, e in enumerate(churn(1, 3))]),
                  P.encode(P.Welcome(protocol=1, hub="h", seq=1, heartbeat_s=1.0, roles=["subscribe"])),
                  P.encode(P.Snapshot(seq=1, part=0, parts=1, data={"seq": 1}))]
    reasons: dict[str, int] = {}
    crashes: dict[str, int] = {}
    accepted = 0
    t0 = time.perf_counter()
    for f in fuzz_frames(rng, args.fuzz, valid_feed):
        try:
            P.decode(f, max_size=1 << 30)
            accepted += 1
        except P.ProtocolError as e:
            reasons[e.code] = reasons.get(e.code, 0) + 1
            if e.code not in P.ERROR_CODES or not str(e):
                crashes["bad_reason"] = crashes.get("bad_reason", 0) + 1
        except Exception as e:  # noqa: BLE001 - this is what the drill looks for
            crashes[type(e).__name__] = crashes.get(type(e).__name__, 0) + 1
    out["wall_decoder"] = {"crashes": crashes, "accepted_valid_mutants": accepted, "refused": sum(reasons.values()),
                           "refused_by_reason": reasons, "frames_per_s": round(args.fuzz / (time.perf_counter() - t0))}

    # 2) the hub's /publish, pipelined on one connection
    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, max_violations=10 ** 12, rate_limit=10 ** 9),
              auth=Auth())
    hub.start_in_thread()
    try:
        valid_pub = [P.encode(P.Publish(events=churn(b, 2), producer="fz", batch=b)) for b in range(50)]

        async def go() -> dict:
            got = {"ack": 0}
            async with connect(hub.publish_url, max_size=None, max_queue=None) as ws:
                done = asyncio.Event()
                n_recv = 0

                async def reader() -> None:
                    nonlocal n_recv
                    async for raw in ws:
                        msg = P.decode(raw)
                        key = "ack" if isinstance(msg, P.Ack) else msg.code
                        got[key] = got.get(key, 0) + 1
                        n_recv += 1
                        if n_recv >= args.fuzz:
                            done.set()
                            return

                task = asyncio.create_task(reader())
                sent = 0
                for f in fuzz_frames(random.Random(2), args.fuzz, valid_pub):
                    await ws.send(f)
                    sent += 1
                    while sent - n_recv > 200:  # bounded pipelining
                        await asyncio.sleep(0.001)
                await asyncio.wait_for(done.wait(), 120)
                task.cancel()
            return got

        t0 = time.perf_counter()
        got = asyncio.run(go())
        answered = sum(got.values())
        out["hub_publish"] = {
            "answered": answered, "acked_valid_mutants": got.get("ack", 0),
            "refused_by_reason": {k: v for k, v in got.items() if k != "ack"},
            "hub_rejects_counted": hub.counters.get("rejects", 0),
            "hub_alive": bool(hub._thread and hub._thread.is_alive()),
            "frames_per_s": round(args.fuzz / (time.perf_counter() - t0)),
        }
        out["hub_publish"]["every_frame_answered"] = answered == args.fuzz
        out["hub_publish"]["every_refusal_counted"] = \
            hub.counters.get("rejects", 0) == answered - got.get("ack", 0)
    finally:
        hub.stop()
    return out


# ---------------------------------------------------------------------- auth
def drill_auth(args) -> dict:
    from wallboard.hub.auth import Auth
    from wallboard.hub.record import AuthFailed, Publisher
    from wallboard.hub.server import Hub, HubConfig

    pub, sub, ctl = "pub-token-0123456789", "sub-token-0123456789", "ctl-token-0123456789"
    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None),
              auth=Auth({"publish": pub, "subscribe": sub, "control": ctl}))
    hub.start_in_thread()
    res: dict = {}
    try:
        walls = {t: Headless(hub.url, token=t, auth_retry_s=None) for t in (None, "wrong", pub, ctl)}
        ok = Headless(hub.url, token=sub)
        time.sleep(3)
        res["subscribe"] = {str(t): w.client.state.state for t, w in walls.items()}
        pubs = {}
        for t in (None, "wrong", sub, ctl):
            async def go(t=t):
                async with Publisher(hub.publish_url, token=t, producer=f"a-{t}") as p:
                    await p.publish(churn(1, 2))
                    await p.flush(5)
            try:
                asyncio.run(go())
                pubs[str(t)] = "accepted"
            except AuthFailed:
                pubs[str(t)] = "refused (auth)"
            except TimeoutError:
                pubs[str(t)] = "refused (no ack)"
        res["publish"] = pubs
        ok.client.send_control("banner", {"text": "x"})
        time.sleep(1)
        res["control_with_subscribe_token"] = ok.client.state.last_reject
        res["events_journaled"] = hub.seq
        res["hub_rejects"] = {k: v for k, v in hub.counters.items() if k.startswith("rejects")}
        for w in [*walls.values(), ok]:
            w.stop()
    finally:
        hub.stop()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--drills", default="kill9,cut,fuzz,auth,abuse,producers",
                    help="comma-separated: kill9, cut, fuzz, auth, abuse, producers")
    ap.add_argument("--walls", type=int, default=3, help="kill9: headless walls (default 3)")
    ap.add_argument("--rounds", type=int, default=3, help="kill9: kills (default 3)")
    ap.add_argument("--between-s", type=float, default=5.0, help="kill9: seconds of publishing between kills")
    ap.add_argument("--down-s", type=float, default=2.0, help="kill9: seconds the hub stays dead (default 2)")
    ap.add_argument("--cut-s", type=float, default=30.0, help="cut: seconds the link is silent (default 30)")
    ap.add_argument("--fuzz", type=int, default=1_000_000, help="fuzz: frames at each target (default 1,000,000)")
    ap.add_argument("--flood", type=int, default=200, help="abuse: unauthenticated 414 KB batches (default 200)")
    ap.add_argument("--abuse-part", choices=("all", "access", "limits"), default="all",
                    help="abuse: 'access' (roles, flood, browser, metrics, logs, partial HTTP), 'limits' (memory "
                    "bounded by configuration: big events, ingest flood, typo ids, snapshots, sleeping walls, rate "
                    "limit; benchmarks/_abuse_limits.py) or both (default)")
    ap.add_argument("--cluster-s", type=float, default=10.0, help="cluster: seconds of publishing before the kill")
    ap.add_argument("--cluster-after-s", type=float, default=5.0, help="cluster: seconds of publishing after it")
    ap.add_argument("--cluster-compact-every", type=int, default=20_000,
                    help="cluster: the hubs' --compact-every (a snapshot each N events; default 20000)")
    ap.add_argument("--cluster-rate", type=float, default=10_000.0, help="cluster: events/s over both producers")
    ap.add_argument("--abuse-probes", default="", metavar="LIST",
                    help="abuse limits: only these probes (comma-separated: big_events, ingest_flood, "
                    "ingest_flood_64mib, ingest_flood_4mib, ingest_flood_1mib, typo_ids, snapshots, sleepers, rate_limit, connections; default all)")
    args = ap.parse_args()
    from _cluster import drill_cluster
    from producer_drills import drill_producers

    drills = {"kill9": drill_kill9, "cut": drill_cut, "fuzz": drill_fuzz, "auth": drill_auth, "abuse": drill_abuse,
              "producers": drill_producers, "cluster": drill_cluster}
    out: dict = {}
    for name in args.drills.split(","):
        if name not in drills:
            ap.error(f"--drills: unknown drill {name!r}; expected some of {', '.join(drills)}")
        t0 = time.monotonic()
        out[name] = drills[name](args)
        out[name]["drill_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
