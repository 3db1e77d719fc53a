"""kill -9 of a hub process mid-stream, restart on the same journal: no acked event lost,
final state == a reference state built from the producer's own log."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from websockets.asyncio.client import connect

from wallboard import protocol as P
from wallboard.hub.record import Publisher
from wallboard.state import LiveState

from conftest import ROOT, free_port

pytestmark = pytest.mark.timeout(90)


def start_hub(port: int, journal: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for k in ("WALLBOARD_PUBLISH_TOKEN", "WALLBOARD_SUBSCRIBE_TOKEN", "WALLBOARD_CONTROL_TOKEN"):
        env.pop(k, None)
    p = subprocess.Popen([sys.executable, "-m", "wallboard.hub", "hub", "--port", str(port), "--journal", journal,
                          "--log-level", "WARNING"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return p
        except OSError:
            if p.poll() is not None:
                raise AssertionError(p.stderr.read().decode())
            time.sleep(0.05)
    p.kill()
    raise AssertionError("hub did not start")


def make_batch(b: int) -> list[dict]:
    out = []
    for i in range(50):
        n = b * 50 + i
        out.append({"type": "device", "id": f"d{n % 300}", "store": f"s{n % 7}", "kind": "pos",
                    "status": ("ok", "warn", "crit")[n % 3], "metrics": {"cpu": float(n % 100)}, "ts": 1000.0 + n})
    out.append({"type": "store", "id": f"s{b % 7}", "name": f"店{b % 7}", "status": "open", "ts": 1000.0 + b})
    return out


def entities(st: LiveState) -> dict:
    def clean(rec: dict) -> dict:
        return {k: v for k, v in rec.items() if k != "last_seen"}
    return {name: {k: clean(v) for k, v in getattr(st, name).items()} for name in ("stores", "devices")}


def test_kill_9_and_restart_loses_no_acked_event(tmp_path):
    port = free_port()
    journal = str(tmp_path / "hub.db")
    url = f"ws://127.0.0.1:{port}/publish"
    sent: dict[int, list[dict]] = {}
    hub = start_hub(port, journal)
    try:
        async def produce() -> list[P.Ack]:
            nonlocal hub
            pub = Publisher(url, producer="crash-test", window=8)
            pub.keep_acks = True
            async with pub:
                for b in range(1, 121):
                    events = make_batch(b)
                    copy = [dict(e) for e in events]
                    sent[await pub.publish(events)] = copy  # keyed by the batch key
                    if b == 60:  # kill -9 with batches in flight, restart on the same journal
                        os.kill(hub.pid, signal.SIGKILL)
                        hub.wait(10)
                        acked_before = {a.batch for a in pub.acks}
                        hub = start_hub(port, journal)
                        assert acked_before  # some were acked before the crash
                await pub.flush(30)
            return pub.acks

        acks = asyncio.run(produce())
        # every batch acked (resent ones as duplicates with their original seqs)
        ranges = {}
        for a in acks:
            ranges.setdefault(a.batch, (a.first, a.last))
            assert ranges[a.batch] == (a.first, a.last)  # a resend never got new seqs
        assert set(ranges) == set(sent)
        # reference state from the producer's own log, in the hub's seq order
        ordered = []
        for b, (first, last) in sorted(ranges.items(), key=lambda kv: kv[1][0]):
            assert last - first + 1 == len(sent[b])
            for k, ev in enumerate(sent[b]):
                ordered.append({**ev, "seq": first + k})
        seqs = [e["seq"] for e in ordered]
        assert seqs == list(range(1, len(seqs) + 1))  # contiguous: nothing lost, nothing doubled
        ref = LiveState()
        ref.apply(ordered, 2000.0)

        async def fetch() -> dict:
            async with connect(f"ws://127.0.0.1:{port}/feed", max_size=None) as ws:
                await ws.send(P.encode(P.Hello(since=None)))
                parts = []
                while True:
                    m = P.decode(await asyncio.wait_for(ws.recv(), 10), max_size=1 << 30)
                    if isinstance(m, P.Snapshot):
                        parts.append(m.data)
                        if m.part + 1 == m.parts:
                            return P.merge_snapshot_parts(parts)

        hub_state = LiveState.from_snapshot(asyncio.run(fetch()))
        assert hub_state.seq == len(seqs)
        assert entities(hub_state) == entities(ref)
    finally:
        hub.kill()
        hub.wait(10)
