"""Flight recorder seek: how long a replay takes to show the state at a random moment.

    python benchmarks/seek.py                         # 5 synthetic minutes at 10,000 events/s
    python benchmarks/seek.py --minutes 5 --seeks 10 --noise      # one core kept busy meanwhile
    python benchmarks/seek.py --minutes 1440 --max-generate-s 3000 --dir /tmp/day   # a day, or what 50 min make
    python benchmarks/seek.py --existing /tmp/day --seeks 20 --noise   # seek that journal again
    python benchmarks/seek.py --journal nats --minutes 2   # a JetStream log (nats-server started here)

Writes a synthetic journal (generated, not published in real time): ``--rate`` device
events/s over ``--devices`` devices in 2,000 stores for ``--minutes`` of commit-clock time,
in batches of 500 committed every 50 ms of that clock, with the hub's compaction (a
snapshot every ``--compact-every`` events, every one kept for replays), as a hub with
``--keep`` would have written it (SQLite: the same file, written with ``synchronous=OFF``
instead of an fsync per synthetic commit; ``--raw-rows``: events rows uncompressed, the
format before ``events.codec``). Generation stops early, at a snapshot, after
``--max-generate-s`` seconds or when the disk of ``--dir`` has less than ``--min-free-gb``
free (``stopped_early`` says which; ``minutes`` is what was written). Then times
``state_at`` -- what a replay connection (``hello`` with ``at``, or ``seek``) does before
its first frame: the journal's ``history(T)``, the state rebuilt from the snapshot + the
events up to T, and its snapshot frames -- for ``--seeks`` random moments over the whole
range (``--noise``: while another process keeps one core busy). Prints one JSON object:
seek p50/p95/max wall seconds and CPU seconds of the seeking thread, the journal's size on
disk and bytes per event, events, snapshots kept, the generation time and rate, and the
load average (at generation start; at the seeks' start and end).
Target (issue 16): a seek anywhere in 24 h of a 10,000 events/s day within 2 s. A seek's
cost does not grow with the history: it finds its moment and its snapshot by index (SQLite
B-trees, log n), then rebuilds from one snapshot + at most ``--compact-every`` events;
``events_replayed_per_seek`` says how many it took.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="synthetic minutes of history (default 5)")
    ap.add_argument("--rate", type=int, default=10_000, help="device events/s (default 10,000)")
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--compact-every", type=int, default=100_000, help="events between snapshots (hub default)")
    ap.add_argument("--seeks", type=int, default=20)
    ap.add_argument("--dir", default=None, help="where to write the journal (default a temporary directory)")
    ap.add_argument("--journal", choices=("sqlite", "nats"), default="sqlite",
                    help="sqlite (default) or nats: a JetStream log on a nats-server started here (its store in --dir)")
    ap.add_argument("--noise", action="store_true", help="keep one core busy (another process) while seeking")
    ap.add_argument("--existing", default=None, metavar="DIR",
                    help="seek the SQLite journal a previous run left in DIR (its --dir) instead of writing one")
    ap.add_argument("--max-generate-s", type=float, default=0,
                    help="stop generating after this many seconds (at a snapshot; 0: no limit)")
    ap.add_argument("--min-free-gb", type=float, default=32.0,
                    help="stop generating when the disk of --dir has less free (default 32 GB)")
    ap.add_argument("--seed", type=int, default=16, help="of the moments --existing seeks (default 16)")
    ap.add_argument("--raw-rows", action="store_true",
                    help="store events rows uncompressed (the format before zlib rows), for comparison")
    args = ap.parse_args()
    if args.existing:
        return seek_existing(args)

    from wallboard.hub import journal as J
    from wallboard.hub.batches import Batch
    from wallboard.state import LiveState, StateConfig
    from wallboard.state.snapshot import encode_snapshot

    clock = [1_800_000_000.0]
    real_time = time.time
    J.time.time = lambda: clock[0]  # the journal's commit clock is the synthetic one
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="wallboard-seek-"))
    log = Log(args.journal, tmp, args.minutes * 60 + 3600, J.CODEC_RAW if args.raw_rows else J.CODEC_ZLIB)
    state = LiveState(StateConfig(max_devices=max(250_000, args.devices)))
    start = clock[0]
    per_batch, step = 500, 0.05
    batches_per_commit = max(1, round(args.rate * step / per_batch))
    statuses = ("ok", "ok", "ok", "warn", "crit")
    rnd = random.Random(16)
    load_gen = os.getloadavg()[0]
    if args.journal == "sqlite":   # the same file, written without an fsync per synthetic commit
        log.journal._db.execute("PRAGMA synchronous=OFF")
    ids = [f"d{d:06d}" for d in range(args.devices)]
    stores = [f"s{d // 50:04d}" for d in range(args.devices)]
    cpus = [float(c) for c in range(100)]
    t_gen = real_time()
    total, since_snap, k = 0, 0, 0
    end = start + args.minutes * 60
    stopped = None
    while clock[0] < end:
        group = []
        now = clock[0]
        for _ in range(batches_per_commit):
            evs = []
            for st in rnd.choices(statuses, k=per_batch):
                d = k % args.devices
                k += 1
                evs.append({"type": "device", "id": ids[d], "store": stores[d], "kind": "pos",
                            "status": st, "metrics": {"cpu": cpus[k % 100]}, "ts": now})
            group.append(Batch(evs))
        done = log.append(group)
        events = [ev for b in group for ev in b.events]
        state.apply(events, now, checked=True)
        total += len(events)
        since_snap += len(events)
        if since_snap >= args.compact_every:
            log.compact(state.seq, encode_snapshot(state))
            since_snap = 0
            if args.max_generate_s and real_time() - t_gen > args.max_generate_s:
                stopped = f"--max-generate-s {args.max_generate_s:g} reached"
            elif shutil.disk_usage(tmp).free < args.min_free_gb * 1e9:
                stopped = f"free disk below --min-free-gb {args.min_free_gb:g}"
            if stopped:
                end = clock[0] + step
        clock[0] += step
        assert done.last_seq == state.seq
    gen_s = real_time() - t_gen
    J.time.time = real_time
    del state
    size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    snaps, snap_bytes = log.snapshots()
    minutes = (end - start) / 60
    per_hour = size / (minutes / 60)
    out = {
        "journal": args.journal, "rows": ("raw" if args.raw_rows else "zlib") if args.journal == "sqlite" else "jetstream messages", "minutes": round(minutes, 2),
        "minutes_asked": args.minutes, "stopped_early": stopped,
        "rate": args.rate, "devices": args.devices, "events": total,
        "snapshots_kept": snaps, "snapshots_mb": round(snap_bytes / 1e6, 1), "journal_mb": round(size / 1e6, 1),
        "journal_bytes_per_event": round(size / max(1, total), 1),
        "journal_gb_per_hour": round(per_hour / 1e9, 2), "journal_gb_per_day": round(24 * per_hour / 1e9, 1),
        "generate_s": round(gen_s, 1), "generate_events_per_s": round(total / max(gen_s, 1e-9)),
        "load_avg_1m_generate": round(load_gen, 2),
    }
    out.update(measure(log.journal, log.snapshot_before, start, end, args.seeks, args.noise, rnd))
    log.close()
    print(json.dumps(out))
    if not args.dir:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(journal, snapshot_before, start: float, end: float, seeks: int, noise: bool,
            rnd: random.Random) -> dict:
    """Time ``state_at`` at ``seeks`` random moments of ``[start, end]`` (one core kept
    busy by another process with ``noise``); the figures as a dict."""
    from _common import Noise

    from wallboard.hub.replay import state_at
    from wallboard.hub.server import HubConfig
    from wallboard.state import StateConfig

    hub = SimpleNamespace(journal=journal, state_config=StateConfig(max_devices=250_000), config=HubConfig())
    lat, replayed, cpu = [], [], []
    with Noise(noise):
        load0 = os.getloadavg()[0]
        for _ in range(seeks):
            t = start + rnd.random() * (end - start)
            t0, c0 = time.perf_counter(), time.thread_time()
            seq, _shown, frames = state_at(hub, t)
            lat.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
            assert frames and seq > 0
            replayed.append(seq - snapshot_before(seq))      # events applied on top of the snapshot
        load1 = os.getloadavg()[0]
    lat.sort()
    replayed.sort()
    cpu.sort()

    def q(v: list, p: float) -> float:
        return round(v[min(len(v) - 1, int(p * len(v)))], 3)

    return {
        "events_replayed_per_seek": {"p50": replayed[len(replayed) // 2], "max": replayed[-1]},
        "seek_s": {"p50": q(lat, 0.5), "p95": q(lat, 0.95), "max": round(lat[-1], 3)},
        "seek_cpu_s": {"p50": q(cpu, 0.5), "p95": q(cpu, 0.95)},
        "seeks": seeks, "noise": noise, "range_h": round((end - start) / 3600, 2),
        "load_avg_1m": [round(load0, 2), round(load1, 2)], "cores": os.cpu_count(),
        "target": "seek <= 2 s anywhere in 24 h at 10,000 events/s",
    }


def seek_existing(args: argparse.Namespace) -> None:
    """``--existing DIR``: seek the journal a run with ``--dir DIR`` left there."""
    from wallboard.hub import journal as J

    tmp = Path(args.existing)
    journal = J.SqliteJournal(tmp / "seek.db", retain_s=1e12)
    db = journal._db
    start, end = db.execute("SELECT MIN(at), MAX(at) FROM events").fetchone()
    events = journal.last_seq - journal.first_kept + 1
    size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())

    def before(seq: int) -> int:
        return db.execute("SELECT COALESCE(MAX(seq), 0) FROM snapshots WHERE seq <= ?", (seq,)).fetchone()[0]

    out = {"journal": "sqlite", "existing": str(tmp), "events": events, "journal_gb": round(size / 1e9, 2),
           "journal_bytes_per_event": round(size / max(1, events), 1),
           "snapshots_kept": db.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]}
    out.update(measure(journal, before, start, end, args.seeks, args.noise, random.Random(args.seed)))
    journal.close()
    print(json.dumps(out))


class Log:
    """The journal under test: SQLite in ``tmp``, or a JetStream log on a nats-server of its
    own (its loop in a thread: ``history`` is called from the main thread, as from a hub's
    worker thread)."""

    def __init__(self, kind: str, tmp: Path, retain_s: float, row_codec: int) -> None:
        from wallboard.hub import journal as J

        self.kind, self.server, self.loop = kind, None, None
        if kind == "sqlite":
            self.journal = J.SqliteJournal(tmp / "seek.db", retain_s=retain_s, row_codec=row_codec)
            return
        from wallboard.hub.jetstream import JetStreamJournal
        from wallboard.hub.nats_local import LocalNats

        self.server = LocalNats(tmp / "nats").start()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.journal = JetStreamJournal(f"{self.server.url}/seek", retain_s=retain_s)
        self._run(self.journal.start())
        self._run(self.journal.arecover())   # hands over what start followed (nothing)

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(600)

    def _followed(self, seq: int) -> None:
        end = time.monotonic() + 60
        while self.journal.last_seq < seq and time.monotonic() < end:
            time.sleep(0.0005)

    def append(self, group):
        if self.kind == "sqlite":
            return self.journal.append(group)
        done = self._run(self.journal.append(group))
        self._followed(done.last_seq)   # numbers the next group after it (no CAS retries)
        return done

    def compact(self, seq: int, blob: bytes) -> None:
        if self.kind == "sqlite":
            self.journal.compact(seq, blob, 0)
        else:
            self._run(self.journal.compact(seq, blob, 1 << 40))

    def snapshot_before(self, seq: int) -> int:
        if self.kind == "sqlite":
            return self.journal._db.execute("SELECT COALESCE(MAX(seq), 0) FROM snapshots WHERE seq <= ?",
                                            (seq,)).fetchone()[0]
        return max([e[0] for e in self.journal.replay.entries if e[0] <= seq], default=0)

    def snapshots(self) -> tuple[int, int]:
        if self.kind == "sqlite":
            return self.journal._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM snapshots").fetchone()
        entries = self.journal.replay.entries
        return len(entries), sum(e[3] for e in entries)

    def close(self) -> None:
        if self.kind == "sqlite":
            self.journal.close()
            return
        self._run(self.journal.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.server.close()


if __name__ == "__main__":
    main()
