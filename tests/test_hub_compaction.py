"""Journal compaction that does not stall delivery: the snapshot encoded in one call
(``encode_snapshot`` == ``to_snapshot``), compaction in short steps that appends and
reads interleave with, exact recovery after a stop at any step, and the hub running it
in the background."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading

import orjson
import pytest

from wallboard import protocol as P
from wallboard.hub import forked_encode
from wallboard.hub import journal as J
from wallboard.hub.auth import Auth
from wallboard.hub.journal import Batch, MemoryJournal, SqliteJournal
from wallboard.hub.server import Hub, HubConfig
from wallboard.state import LiveState, StateConfig
from wallboard.state.snapshot import encode_snapshot, to_snapshot

from conftest import ROOT

pytestmark = pytest.mark.timeout(60)

NOW = 5000.0


# ---------------------------------------------------------------- encode_snapshot

def rich_state() -> LiveState:
    """Stores, devices (some expired, one orphan, with metrics), finished and running
    changes, open and resolved incidents, voice, several KPI series."""
    st = LiveState(StateConfig(device_ttl_s=60.0))
    seq = 0
    events = []

    def ev(type_: str, id_: str | None = None, ts: float = NOW - 100, **fields):
        nonlocal seq
        seq += 1
        e = {"type": type_, "ts": ts, "seq": seq, **fields}
        if id_ is not None:
            e["id"] = id_
        events.append(e)

    for s in range(6):
        ev("store", f"s{s}", name=f"店{s}", city={"id": f"c{s % 3}", "name": f"City {s % 3}"},
           lat=30.0 + s, lon=120.0 + s, status="open")
    for d in range(40):
        extra = {"ttl_s": 5.0} if d % 7 == 0 else {}
        ev("device", f"d{d}", store=f"s{d % 7}", kind=("pos", "ap", "scale")[d % 3],
           status=("ok", "warn", "crit", "down")[d % 4], metrics={"cpu": d / 40, "temp": 30.0 + d},
           **extra)
    ev("change", "c1", start=NOW - 900, end=NOW - 800, status="failed", scope={"stores": ["s1"]})
    ev("change", "c2", start=NOW - 700, status="running", scope={"stores": ["s2", "s3"]})
    ev("change", "c3", start=NOW - 600, end=NOW - 500, status="succeeded")
    ev("incident", "i1", opened_at=NOW - 400, severity="P1", stores=["s1"], title="POS down")
    ev("incident", "i2", opened_at=NOW - 300, status="resolved", resolved_at=NOW - 200, severity="P3")
    for v in range(5):
        ev("voice", ts=NOW - 600 + 60 * v, channel="app", text=f"slow checkout {v}")
    for k in range(12):
        ev("kpi", ts=NOW - 120 + k, metric=("gmv", "orders")[k % 2], scope=("global", "store:s1", "city:c0")[k % 3],
           value=k * 1.25, **({"unit": "M"} if k % 2 == 0 else {}))
    for e in events:
        P.validate_event(e, require_seq=True)      # what the hub would have accepted
    st.apply(events, NOW - 50)
    st.tick(NOW)                                   # the ttl_s=5 devices expire
    return st


def test_encode_snapshot_decodes_to_exactly_to_snapshot():
    st = rich_state()
    snap = to_snapshot(st)
    assert snap["expired_devices"] and snap["finished_changes"] and snap["resolved_incidents"]
    assert snap["voice"] and snap["kpi"] and snap["counters"]["orphan_devices"] > 0
    blob = encode_snapshot(st)
    assert isinstance(blob, bytes)
    assert orjson.loads(blob) == snap
    assert blob == orjson.dumps(snap)              # same key order, same bytes
    again = LiveState.from_snapshot(orjson.loads(blob), StateConfig(device_ttl_s=60.0))
    assert encode_snapshot(again) == blob


def test_encode_snapshot_of_an_empty_state():
    st = LiveState()
    assert orjson.loads(encode_snapshot(st)) == to_snapshot(st)


# ---------------------------------------------------------------- journal contract

def ev(i: int) -> dict:
    return {"type": "kpi", "metric": "m", "scope": "global", "value": float(i), "ts": 1000.0 + i}


def fill(j, n: int, per: int = 10) -> None:
    for b in range(n // per):
        j.append([Batch([ev(b * per + k + 1) for k in range(per)], "p", b + 1)])


def snap_at(seq: int) -> dict:
    """A stand-in state at ``seq``: the values of events 1..seq."""
    return {"seq": seq, "values": [float(i) for i in range(1, seq + 1)]}


def assert_recovers_exactly(j) -> None:
    rec = j.recover()
    values = (rec.snapshot["values"] if rec.snapshot else []) + [e["value"] for e in rec.events]
    assert values == [float(i) for i in range(1, rec.last_seq + 1)]
    assert [e["seq"] for e in rec.events] == list(range(rec.snapshot_seq + 1, rec.last_seq + 1))
    if rec.last_seq >= j.first_kept:
        assert j.read(j.first_kept - 1, 1)[0]["seq"] == j.first_kept


@pytest.fixture(params=["sqlite", "memory"])
def journal(request, tmp_path):
    j = SqliteJournal(tmp_path / "j.db") if request.param == "sqlite" else MemoryJournal(keep=10_000)
    yield j
    j.close()


def test_compact_takes_encoded_bytes_or_a_dict(journal):
    fill(journal, 100)
    assert journal.compact(60, orjson.dumps(snap_at(60)), keep=20) == 40
    assert journal.first_kept == 41 and journal.read(39, 5) == []
    assert_recovers_exactly(journal)
    fill_more = [Batch([ev(101 + k) for k in range(10)], "p", 99)]
    journal.append(fill_more)
    # a dict is encoded; SQLite stores a batch per row and drops whole rows only, so it
    # keeps the batch 101..110 that holds seq 106 whole
    whole_rows = isinstance(journal, SqliteJournal)
    assert journal.compact(110, snap_at(110), keep=5) == (60 if whole_rows else 65)
    assert journal.first_kept == (101 if whole_rows else 106)
    assert journal.recover().snapshot_seq == 110
    assert_recovers_exactly(journal)


def test_compact_refuses_a_snapshot_that_is_neither_bytes_nor_dict(journal):
    fill(journal, 10)
    with pytest.raises(TypeError, match=r"snapshot is list, expected JSON bytes \(encode_snapshot\) or a dict"):
        journal.compact(10, [1, 2], keep=0)
    assert journal.first_kept == 1 and journal.recover().snapshot is None


def test_a_snapshot_at_the_same_or_a_newer_seq_is_kept(journal):
    fill(journal, 50)
    journal.compact(40, snap_at(40), keep=50)
    journal.compact(40, {"seq": 40, "other": True}, keep=50)
    journal.compact(30, {"seq": 30, "older": True}, keep=50)
    rec = journal.recover()
    assert rec.snapshot_seq == 40 and rec.snapshot == snap_at(40)


def test_appends_and_reads_interleave_with_a_compaction_without_holes(journal, monkeypatch):
    """A compaction in chunks of 7 rows, from another thread, while this thread appends
    and reads: every read at or above first_kept is contiguous, below it is []."""
    monkeypatch.setattr(J, "COMPACT_CHUNK", 7)
    monkeypatch.setattr(J, "SNAPSHOT_PART", 64)
    fill(journal, 600)
    done = threading.Event()
    failures: list[BaseException] = []

    def compact() -> None:
        try:
            journal.compact(600, orjson.dumps(snap_at(600)), keep=50)
        except BaseException as e:  # report to the test thread
            failures.append(e)
        finally:
            done.set()

    t = threading.Thread(target=compact)
    t.start()
    n = 600
    for b in range(2000):                      # bounded; ends when the compaction does
        if done.is_set() and b > 5:
            break
        journal.append([Batch([ev(n + k + 1) for k in range(3)], "q", b + 1)])
        n += 3
        fk = journal.first_kept
        got = journal.read(fk - 1, 20)
        if got:
            assert [e["seq"] for e in got] == list(range(got[0]["seq"], got[0]["seq"] + len(got)))
            assert got[0]["seq"] >= fk
        if fk >= 2:
            assert journal.read(fk - 2, 5) == []
    t.join(30)
    assert not t.is_alive() and not failures
    assert journal.first_kept == 551 and journal.last_seq == n
    rec = journal.recover()
    assert rec.snapshot_seq == 600
    assert [e["seq"] for e in rec.events] == list(range(601, n + 1))
    assert_recovers_exactly(journal)


# ---------------------------------------------------------------- crash safety (sqlite)

class Died(Exception):
    """Stands for the process dying right before a compaction commit."""


class DieAtCommit:
    """Wraps the journal's sqlite connection: the ``n``-th COMMIT raises ``Died``
    instead of committing (its transaction is rolled back, as a crash would leave it)."""

    def __init__(self, db, n: int) -> None:
        self.db, self.n, self.commits = db, n, 0

    def execute(self, sql, *args):
        if sql == "COMMIT":
            self.commits += 1
            if self.commits == self.n:
                raise Died(self.n)
        return self.db.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.db, name)


def compaction_commits(tmp_path) -> int:
    j = SqliteJournal(tmp_path / "count.db")
    fill(j, 300)
    j.compact(100, snap_at(100), keep=0)
    spy = DieAtCommit(j._db, 0)
    j._db = spy
    j.compact(250, snap_at(250), keep=20)
    j._db = spy.db
    j.close()
    return spy.commits


def test_a_stop_before_any_compaction_commit_recovers_exactly(tmp_path, monkeypatch):
    """Kill the compaction before each of its commits in turn (snapshot parts, the
    snapshot row, old snapshots, event chunks, batch rows), reopen: exact recovery,
    first_kept right, and the next compaction completes."""
    monkeypatch.setattr(J, "COMPACT_CHUNK", 40)
    monkeypatch.setattr(J, "SNAPSHOT_PART", 512)
    total = compaction_commits(tmp_path)
    assert total >= 8                           # several parts, chunks, ... to stop between
    for n in range(1, total + 1):
        path = tmp_path / f"j{n}.db"
        j = SqliteJournal(path)
        fill(j, 300)
        j.compact(100, snap_at(100), keep=0)
        j._db = DieAtCommit(j._db, n)
        with pytest.raises(Died):
            j.compact(250, snap_at(250), keep=20)
        j._db = j._db.db
        j.close()
        j = SqliteJournal(path)
        rec = j.recover()
        assert rec.snapshot_seq in (100, 250), n
        assert_recovers_exactly(j)
        assert j.first_kept in range(101, 232) and j.last_seq == 300
        assert j.read(j.first_kept - 2, 3) == []
        assert j._db.execute("SELECT COUNT(*) FROM snapshot_parts WHERE seq NOT IN "
                             "(SELECT seq FROM snapshots)").fetchone()[0] == 0   # orphans gone
        j.compact(250, snap_at(250), keep=20)
        assert j.first_kept == 231 and j.recover().snapshot_seq == 250
        assert_recovers_exactly(j)
        j.close()


_KILL_SCRIPT = """
import os, signal, sys
from wallboard import protocol as P
from wallboard.hub import journal as J
J.COMPACT_CHUNK = 30
J.SNAPSHOT_PART = 256
import orjson
path, stop_after = sys.argv[1], sys.argv[2]
j = J.SqliteJournal(path)
for b in range(30):
    j.append([J.Batch([{"type": "kpi", "metric": "m", "scope": "global", "value": float(b * 10 + k + 1),
                        "ts": 1000.0} for k in range(10)], "p", b + 1)])
blob = orjson.dumps({"seq": 250, "values": [float(i) for i in range(1, 251)]})
j.store_snapshot(250, blob)
if stop_after == "events_chunk":
    J.COMPACT_CHUNK = 30
    real = j._db
    class Once:
        n = 0
        def execute(self, sql, *a):
            if sql == "COMMIT":
                self.n += 1
                if self.n == 3:      # two chunks deleted, the third never commits
                    os.kill(os.getpid(), signal.SIGKILL)
            return real.execute(sql, *a)
        def __getattr__(self, k):
            return getattr(real, k)
    j._db = Once()
    j.drop_events_upto(230)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("stop_after", ["snapshot", "events_chunk"])
def test_kill_9_mid_compaction_recovers_exactly(tmp_path, stop_after):
    path = tmp_path / "k.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-c", _KILL_SCRIPT, str(path), stop_after], env=env,
                       capture_output=True, timeout=60)
    assert p.returncode == -signal.SIGKILL, p.stderr.decode()
    j = SqliteJournal(path)
    try:
        assert j.last_seq == 300 and j.recover().snapshot_seq == 250
        assert j.first_kept == (1 if stop_after == "snapshot" else 61)
        assert_recovers_exactly(j)
    finally:
        j.close()


def test_a_damaged_parted_snapshot_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(J, "SNAPSHOT_PART", 100)
    j = SqliteJournal(tmp_path / "d.db")
    fill(j, 50)
    j.compact(50, snap_at(50), keep=0)
    j._db.execute("DELETE FROM snapshot_parts WHERE part = 1")
    with pytest.raises(RuntimeError, match=r"snapshot at seq 50 has \d+ of its \d+ parts; expected all"):
        j.recover()
    j.close()


def test_a_journal_from_before_parted_snapshots_still_recovers(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE events (seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
        CREATE TABLE snapshots (seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);""")
    db.execute("INSERT INTO snapshots VALUES (2, ?)", (orjson.dumps(snap_at(2)),))
    db.execute("INSERT INTO events VALUES (3, ?)", (orjson.dumps({**ev(3), "seq": 3}),))
    db.execute("INSERT INTO meta VALUES ('last_seq', 3)")
    db.commit()
    db.close()
    j = SqliteJournal(path)
    assert j.recover().snapshot_seq == 2
    assert_recovers_exactly(j)
    j.append([Batch([ev(4)])])
    j.compact(4, snap_at(4), keep=0)
    assert j.recover().snapshot_seq == 4 and j.first_kept == 5
    j.close()


# ---------------------------------------------------------------- the hub

class SlowCompactJournal(MemoryJournal):
    """Its compaction waits until the test lets it go; records what it was given."""

    def __init__(self) -> None:
        super().__init__(keep=10_000)
        self.release = threading.Event()
        self.entered = threading.Event()
        self.given: list[tuple[int, object]] = []
        self.fail = False

    def compact(self, seq, snapshot, keep):
        self.given.append((seq, snapshot))
        self.entered.set()
        self.release.wait(20)
        if self.fail:
            raise OSError("disk full")
        return super().compact(seq, snapshot, keep)


def device(i: int) -> dict:
    return {"type": "device", "id": f"d{i % 50}", "store": "s1", "kind": "pos", "status": "ok",
            "metrics": {"cpu": float(i)}, "ts": 1000.0 + i}


def test_hub_commits_go_on_while_a_compaction_runs_and_failures_are_counted():
    journal = SlowCompactJournal()
    hub = Hub(HubConfig(port=0, compact_every=100, keep_events=10), auth=Auth(), journal=journal)

    async def go() -> None:
        await hub.astart()
        try:
            for b in range(4):
                await hub.submit([device(b * 30 + k) for k in range(30)], "p", b + 1)
            assert await asyncio.to_thread(journal.entered.wait, 10)
            seq, blob = journal.given[0]
            assert seq == 120 and isinstance(blob, bytes)      # encoded on the loop
            assert orjson.loads(blob)["seq"] == 120 and len(orjson.loads(blob)["devices"]) == 50
            for b in range(4, 12):                             # acked while it is stuck
                (first, last), dup = await asyncio.wait_for(
                    hub.submit([device(b * 30 + k) for k in range(30)], "p", b + 1), 10)
                assert last == (b + 1) * 30 and not dup
            assert len(journal.given) == 1                     # one compaction at a time
            journal.fail = True
            journal.release.set()
            for _ in range(200):                               # bounded wait for the task
                if hub._compaction is None:
                    break
                await asyncio.sleep(0.02)
            assert hub.counters.get("compaction_errors") == 1 and "compactions" not in hub.counters
            journal.fail = False
            await hub.submit([device(1000)], "p", 100)        # the next commit tries again
            for _ in range(200):
                if hub.counters.get("compactions"):
                    break
                await asyncio.sleep(0.02)
            assert hub.counters["compactions"] == 1 and journal.given[-1][0] == 361
            assert journal.recover().snapshot_seq == 361
        finally:
            journal.release.set()
            await hub.astop()

    asyncio.run(go())


def test_autocheckpoint_is_back_on_after_a_compaction_even_a_failed_one(tmp_path):
    j = SqliteJournal(tmp_path / "c.db")
    fill(j, 100)
    j.compact(100, snap_at(100), keep=10)
    assert j._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000 and j._side is None
    fill_more = [Batch([ev(101 + k) for k in range(10)])]
    j.append(fill_more)
    j._db = DieAtCommit(j._db, 2)
    with pytest.raises(Died):
        j.compact(110, snap_at(110), keep=0)
    j._db = j._db.db
    assert j._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000 and j._side is None
    assert_recovers_exactly(j)
    j.close()


# ---------------------------------------------------------------------- encode in pieces

def test_encode_snapshot_pieces_join_to_encode_snapshot():
    from wallboard.state.snapshot import encode_snapshot_pieces

    st = rich_state()
    for chunk in (1, 2, 3, 10_000):
        assert b"".join(encode_snapshot_pieces(st, chunk)) == encode_snapshot(st)
    empty = LiveState()
    assert b"".join(encode_snapshot_pieces(empty, 2)) == encode_snapshot(empty)
    with pytest.raises(ValueError, match="chunk must be >= 1, got 0"):
        next(encode_snapshot_pieces(st, 0))


def test_encode_chunk_option_is_checked():
    with pytest.raises(ValueError, match=r"hub option encode_chunk=0: expected >= 1"):
        HubConfig(encode_chunk=0).validate()


def test_commits_during_a_pieced_encode_wait_for_it_and_the_snapshot_is_exact(monkeypatch):
    """The hub encodes its state a few devices at a time with the loop running; commits
    in between are acked and fanned out but applied to the state only afterwards, so
    the stored snapshot is exactly the state at its seq."""
    journal = MemoryJournal(10_000)
    hub = Hub(HubConfig(port=0, compact_every=10_000_000, encode_chunk=50, commit_interval=0.0,
                        encode_in_child=False), auth=Auth(), journal=journal)
    seen_held: list[int] = []
    from wallboard.hub import server as hub_server

    real_pieces = hub_server.encode_snapshot_pieces

    def padded_pieces(st, chunk):
        """The real pieces, then empty ones (bounded) until a commit has been held: the
        loop runs between pieces, so this waits for one without timing luck."""
        it = real_pieces(st, chunk)
        yield next(it)
        for _ in range(200_000):
            if hub._held:
                break
            yield b""
        yield from it

    monkeypatch.setattr(hub_server, "encode_snapshot_pieces", padded_pieces)

    async def go() -> None:
        await hub.astart()
        try:
            await hub.submit([dict(device(k), id=f"w{k}") for k in range(2000)], "p", 1)  # 2,000 devices
            expected = orjson.loads(orjson.dumps(to_snapshot(hub.state)))

            async def publish_during() -> None:
                for b in range(2, 12):
                    await hub.submit([device(1000 + b * 7 + k) for k in range(7)], "p", b)
                    if hub._held is not None:
                        seen_held.append(len(hub._held))

            encode = asyncio.create_task(hub._encode_state())
            await publish_during()
            blob = await encode
            assert orjson.loads(blob) == expected   # the state as it was at seq 2,000
            assert hub._held is None and hub.state.seq == hub.seq == 2000 + 10 * 7  # held batches applied
            seq, frames = hub.snapshot_frames()
            assert seq == hub.state.seq
        finally:
            await hub.astop()

    asyncio.run(go())
    assert seen_held, "no commit landed while the encode was in pieces"


@pytest.mark.skipif(not forked_encode.available(), reason="no os.fork here")
def test_a_snapshot_encoded_in_a_child_is_the_state_at_its_seq_and_holds_nothing_back():
    """The default: the compaction's snapshot is encoded by a forked child from the state
    as it was at the fork; commits meanwhile are applied at once (nothing held)."""
    journal = MemoryJournal(10_000)
    hub = Hub(HubConfig(port=0, compact_every=10_000_000, commit_interval=0.0), auth=Auth(), journal=journal)

    async def go() -> None:
        await hub.astart()
        try:
            await hub.submit([dict(device(k), id=f"w{k}") for k in range(20_000)], "p", 1)
            expected = orjson.loads(orjson.dumps(to_snapshot(hub.state)))
            encode = asyncio.create_task(hub._encode_state())
            await asyncio.sleep(0)   # the fork happened: the child has the state at seq 20,000
            for b in range(2, 6):
                await hub.submit([device(30_000 + b * 7 + k) for k in range(7)], "p", b)
                assert hub._held is None
            blob = await encode
            assert hub._encoded_where == "in a child process"
            assert orjson.loads(blob) == expected
            assert hub.state.seq == 20_000 + 4 * 7     # applied meanwhile, not after
            assert not hub.counters.get("compaction_child_failures")
        finally:
            await hub.astop()

    asyncio.run(go())


@pytest.mark.skipif(not forked_encode.available(), reason="no os.fork here")
def test_a_failing_snapshot_child_falls_back_to_the_loop_and_is_counted(monkeypatch, caplog):
    from wallboard.hub import server as hub_server

    def broken(st, now=None):
        raise MemoryError("no room in the child")

    monkeypatch.setattr(hub_server, "encode_snapshot", broken)   # raises in the child only
    hub = Hub(HubConfig(port=0, compact_every=10_000_000), auth=Auth(), journal=MemoryJournal(1000))

    async def go() -> None:
        await hub.astart()
        try:
            await hub.submit([device(k) for k in range(50)], "p", 1)
            expected = orjson.loads(orjson.dumps(to_snapshot(hub.state)))
            blob = await hub._encode_state()
            assert orjson.loads(blob) == expected and hub._encoded_where == "on the loop"
            assert hub.counters["compaction_child_failures"] == 1
        finally:
            await hub.astop()

    with caplog.at_level("WARNING", logger="wallboard.hub"):
        asyncio.run(go())
    assert any("could not be encoded in a child process (the snapshot child exited with code 70); encoding it on "
               "the loop" in r.getMessage() for r in caplog.records)


def test_a_compaction_hands_the_freed_heap_back(tmp_path, monkeypatch):
    """Hub memory over days (issue 19): every compaction's buffers (snapshot pieces, their
    join, the zlib copy, the journal's pages) are freed; then the hub trims its heap once,
    in a worker thread, and counts it (wallboard_heap_trims_total)."""
    from wallboard import heap

    calls: list[str] = []
    monkeypatch.setattr(heap, "trim", lambda: calls.append(threading.current_thread().name) or True)
    hub = Hub(HubConfig(port=0, compact_every=100, keep_events=10, journal=str(tmp_path / "j.db")), auth=Auth())

    async def go() -> None:
        await hub.astart()
        try:
            for b in range(4):
                await hub.submit([device(b * 30 + k) for k in range(30)], "p", b + 1)
            for _ in range(250):                               # bounded wait for the task
                if hub.counters.get("heap_trims"):
                    break
                await asyncio.sleep(0.02)
        finally:
            await hub.astop()

    asyncio.run(go())
    assert hub.counters["compactions"] == 1 and hub.counters["heap_trims"] == 1
    assert calls and calls[0] != threading.main_thread().name   # off the loop's thread
    assert b"wallboard_heap_trims_total 1.0" in hub.metrics.render()


def test_encoded_kpi_points_are_the_lists_json_without_a_float_object_each():
    """Compaction encodes the KPI rings from their numpy arrays (orjson's numpy option):
    the same bytes as the lists' JSON for wrapped rings and awkward floats, with no
    float object per point (64 full series were 524,288 of them at every compaction)."""
    import random

    rng = random.Random(19)
    st = LiveState(StateConfig(kpi_points=64))
    events = [{"type": "kpi", "metric": f"m{k % 3}", "scope": f"city:c{k % 5}", "seq": k + 1, "ts": NOW + k * 0.37,
               "value": rng.choice((rng.uniform(0, 1e6), round(rng.uniform(0, 100), 3), 0.1 + 0.2, 1e-7, 12345678.9))}
              for k in range(2000)]                    # 15 series of ~133 points: every ring wrapped
    st.apply(events, NOW)
    snap = to_snapshot(st)
    assert len(snap["kpi"]) == 15 and all(len(r["ts"]) == 64 for r in snap["kpi"])
    assert encode_snapshot(st) == orjson.dumps(snap)
    records = st._kpi.to_records(arrays=True)
    assert all(type(r["ts"]).__name__ == "ndarray" and type(r["values"]).__name__ == "ndarray" for r in records)
