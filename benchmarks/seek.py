"""Flight recorder seek: how long a replay takes to show the state at a random moment.

    python benchmarks/seek.py                         # 5 synthetic minutes at 10,000 events/s
    python benchmarks/seek.py --minutes 60 --seeks 30
    python benchmarks/seek.py --journal nats --minutes 2   # a JetStream log (nats-server started here)

Writes a synthetic journal (generated, not published in real time): ``--rate`` device
events/s over ``--devices`` devices in 2,000 stores for ``--minutes`` of commit-clock time,
in batches of 500 committed every 50 ms of that clock, with the hub's compaction (a
snapshot every ``--compact-every`` events, kept a minute apart, ``--keep`` all of it), as
a hub with ``--keep`` would have written it. Then times ``state_at`` -- what a replay
connection (``hello`` with ``at``, or ``seek``) does before its first frame: the journal's
``history(T)``, the state rebuilt from the snapshot + the events up to T, and its snapshot
frames -- for ``--seeks`` random moments. Prints one JSON object: seek p50/p95/max (s),
the journal's size on disk, events, snapshots kept, the generation time and the load.
Target (issue 16): a seek anywhere in 24 h of a 10,000 events/s day within 2 s; a day is
864 M events and about 150 GB here, so the default run is a slice of it. A seek's cost does
not grow with the history: it finds its moment and its snapshot by index (SQLite B-trees,
log n), then rebuilds from one snapshot (every one the hub makes is kept, compressed) +
at most ``--compact-every`` events; ``events_replayed_per_seek`` says how many it took.
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
    args = ap.parse_args()

    from wallboard.hub import journal as J
    from wallboard.hub.batches import Batch
    from wallboard.hub.replay import state_at
    from wallboard.hub.server import HubConfig
    from wallboard.state import LiveState, StateConfig
    from wallboard.state.snapshot import encode_snapshot

    clock = [1_800_000_000.0]
    real_time = time.time
    J.time.time = lambda: clock[0]  # the journal's commit clock is the synthetic one
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="wallboard-seek-"))
    path = tmp / "seek.db"
    log = Log(args.journal, tmp, args.minutes * 60 + 3600)
    journal = log.journal
    state = LiveState(StateConfig(max_devices=max(250_000, args.devices)))
    start = clock[0]
    per_batch, step = 500, 0.05
    batches_per_commit = max(1, round(args.rate * step / per_batch))
    statuses = ("ok", "ok", "ok", "warn", "crit")
    rnd = random.Random(16)
    t_gen = real_time()
    total, since_snap, k = 0, 0, 0
    end = start + args.minutes * 60
    while clock[0] < end:
        group = []
        for _ in range(batches_per_commit):
            evs = []
            for _ in range(per_batch):
                d = k % args.devices
                k += 1
                evs.append({"type": "device", "id": f"d{d:06d}", "store": f"s{d // 50:04d}", "kind": "pos",
                            "status": statuses[rnd.randrange(5)], "metrics": {"cpu": float(k % 100)},
                            "ts": clock[0]})
            group.append(Batch(evs))
        done = log.append(group)
        events = [ev for b in group for ev in b.events]
        state.apply(events, clock[0], checked=True)
        total += len(events)
        since_snap += len(events)
        if since_snap >= args.compact_every:
            log.compact(state.seq, encode_snapshot(state))
            since_snap = 0
        clock[0] += step
        assert done.last_seq == state.seq
    gen_s = real_time() - t_gen
    J.time.time = real_time
    hub = SimpleNamespace(journal=journal, state_config=state.config, config=HubConfig())
    lat, replayed = [], []
    for _ in range(args.seeks):
        t = start + rnd.random() * (end - start)
        t0 = real_time()
        seq, _shown, frames = state_at(hub, t)
        lat.append(real_time() - t0)
        assert frames and seq > 0
        replayed.append(seq - log.snapshot_before(seq))      # events applied on top of the snapshot
    lat.sort()
    replayed.sort()
    size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    snaps, snap_bytes = log.snapshots()
    log.close()
    per_hour = size / (args.minutes / 60)
    print(json.dumps({
        "journal": args.journal, "minutes": args.minutes, "rate": args.rate, "devices": args.devices, "events": total,
        "snapshots_kept": snaps, "snapshots_mb": round(snap_bytes / 1e6, 1), "journal_mb": round(size / 1e6, 1),
        "journal_bytes_per_event": round(size / max(1, total), 1),
        "journal_gb_per_hour": round(per_hour / 1e9, 2), "journal_gb_per_day": round(24 * per_hour / 1e9, 1),
        "events_replayed_per_seek": {"p50": replayed[len(replayed) // 2], "max": replayed[-1]},
        "seek_s": {"p50": round(lat[len(lat) // 2], 3), "p95": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 3),
                   "max": round(lat[-1], 3)},
        "seeks": args.seeks, "generate_s": round(gen_s, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2), "cores": os.cpu_count(),
        "target": "seek <= 2 s anywhere in 24 h at 10,000 events/s",
    }))
    if not args.dir:
        shutil.rmtree(tmp, ignore_errors=True)


class Log:
    """The journal under test: SQLite in ``tmp``, or a JetStream log on a nats-server of its
    own (its loop in a thread: ``history`` is called from the main thread, as from a hub's
    worker thread)."""

    def __init__(self, kind: str, tmp: Path, retain_s: float) -> None:
        from wallboard.hub import journal as J

        self.kind, self.server, self.loop = kind, None, None
        if kind == "sqlite":
            self.journal = J.SqliteJournal(tmp / "seek.db", retain_s=retain_s)
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
