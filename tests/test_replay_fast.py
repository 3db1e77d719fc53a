"""The seek's fast paths (issue 16): a snapshot given away loads without copies and
equals the general load; a replay state leaves the collector alone; the SQLite journal
keeps every snapshot compressed within a byte budget, thinned evenly past it, and still
reads the raw snapshots of older files; a damaged or unknown stored snapshot is named."""
from __future__ import annotations

import gc
import sqlite3
import zlib

import orjson
import pytest

from test_state_helpers import public_view
from test_state_snapshot import sample_state
from wallboard.hub import journal as J
from wallboard.hub import replay as R
from wallboard.hub.journal import Batch, SqliteJournal
from wallboard.state import LiveState, SnapshotError, StateConfig


def _fresh(snap: dict) -> dict:
    return orjson.loads(orjson.dumps(snap))


def test_a_snapshot_given_away_loads_as_the_general_path_does() -> None:
    st, _ = sample_state()                    # an expired device, a ttl_s, an orphan
    snap = st.snapshot()
    cfg = StateConfig(device_ttl_s=30.0)
    slow = LiveState.from_snapshot(_fresh(snap), cfg, validate=False)
    d = _fresh(snap)
    fast = LiveState.from_snapshot(d, cfg, validate=False, take=True, settle_gc=False)
    for now in (110.0, 120.0, 131.0):
        assert public_view(fast, now) == public_view(slow, now)
    assert fast.snapshot() == slow.snapshot()
    assert fast.counters["orphan_devices"] == slow.counters["orphan_devices"] == 1
    assert fast.devices["d1"] is d["devices"][0]                 # taken, not copied
    fast.tick(131.0), slow.tick(131.0)                           # deadlines kept: ttl runs on
    assert fast.total_counts() == slow.total_counts()


@pytest.mark.parametrize("mutate, path, text", [
    (lambda s: s["devices"][1].__setitem__("type", "store"), "devices[1].type", "expected 'device'"),
    (lambda s: s["devices"][0].pop("last_seen"), "devices[0].last_seen", "missing (expected a number)"),
    (lambda s: s["devices"][2].__setitem__("status", ["ok"]), "devices[2].status", "expected a device status"),
    (lambda s: s["devices"][0].__setitem__("id", ""), "devices[0].id", "expected a string id"),
    (lambda s: s["devices"].__setitem__(1, 7), "devices[1]", "is int (expected an object)"),
])
def test_a_bad_device_given_away_gets_the_same_precise_error(mutate, path, text) -> None:
    st, _ = sample_state()
    snap = st.snapshot()
    mutate(snap)
    with pytest.raises(SnapshotError) as ei:
        LiveState.from_snapshot(snap, validate=False, take=True)
    assert ei.value.path == path and text in str(ei.value)


def test_a_bad_device_given_away_is_named_when_a_clock_moves_it_too() -> None:
    st, _ = sample_state()
    snap = st.snapshot()
    snap["devices"][2]["last_seen"] = "noon"
    with pytest.raises(SnapshotError, match=r"devices\[2\]\.last_seen: is 'noon'"):
        LiveState.from_snapshot(snap, validate=False, now=500.0, take=True)
    snap["devices"][2]["last_seen"] = True                        # a bool is not a number here
    with pytest.raises(SnapshotError, match=r"devices\[2\]\.last_seen"):
        LiveState.from_snapshot(snap, validate=False, take=True)
    snap["devices"][2]["id"] = ["d3"]                             # unhashable: no dict of ids
    with pytest.raises(SnapshotError, match=r"devices\[2\]\.id"):
        LiveState.from_snapshot(snap, validate=False, take=True)


def test_two_devices_with_one_id_take_the_general_path() -> None:
    st, _ = sample_state()
    snap = st.snapshot()
    snap["devices"].append(dict(snap["devices"][0], status="crit"))
    fast = LiveState.from_snapshot(_fresh(snap), validate=False, take=True)
    slow = LiveState.from_snapshot(_fresh(snap), validate=False)
    assert public_view(fast, 120.0) == public_view(slow, 120.0) and fast.devices["d1"]["status"] == "crit"


def test_a_replay_state_never_collects_or_freezes(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append("collect") or 0)
    st, f = sample_state()
    calls.clear()
    rs = LiveState.from_snapshot(_fresh(st.snapshot()), validate=False, take=True, settle_gc=False)
    rs.apply([f.ev("device", f"n{i}", store="s1", kind="pos", status="ok") for i in range(6000)], 130.0)
    assert calls == [] and len(rs.devices) == 6003
    empty = LiveState(settle_gc=False)                            # a replay from the log's start
    empty.apply([f.ev("device", f"e{i}", store="s1", status="ok") for i in range(6000)], 130.0)
    assert calls == []
    LiveState.from_snapshot(_fresh(rs.snapshot()))                # the default still settles
    assert calls == ["collect", "freeze"]


def test_gc_paused_nests_and_restores_the_collector() -> None:
    assert gc.isenabled()
    with R.gc_paused():
        with R.gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with R.gc_paused():
            pass
        assert not gc.isenabled()                                # it was off: left off
    finally:
        gc.enable()


def dev(i: int) -> dict:
    return {"type": "device", "id": f"d{i % 5}", "store": "s1", "kind": "pos", "status": "ok",
            "metrics": {"cpu": float(i)}, "ts": 1.0}


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _fill(j: SqliteJournal, clock: Clock, snapshots: int) -> list[int]:
    st, seqs = LiveState(), []
    for _ in range(snapshots):
        b = [dev(j.last_seq + k + 1) for k in range(4)]
        j.append([Batch(b)])
        st.apply(j.read(st.seq, 100), clock.t, checked=True)
        j.compact(st.seq, orjson.dumps(st.snapshot(now=clock.t)), keep=10_000)
        seqs.append(st.seq)
        clock.t += 10
    return seqs


@pytest.fixture
def clocked(tmp_path, monkeypatch):
    clock = Clock(1_800_000_000.0)
    monkeypatch.setattr(J.time, "time", clock)
    j = SqliteJournal(tmp_path / "j.db", retain_s=10_000.0)
    yield j, clock
    j.close()


def test_every_snapshot_is_kept_compressed_and_replays(clocked) -> None:
    j, clock = clocked
    seqs = _fill(j, clock, 6)
    rows = j._db.execute("SELECT seq, codec, size FROM snapshots ORDER BY seq").fetchall()
    assert [r[0] for r in rows] == seqs and {r[1] for r in rows} == {J.CODEC_ZLIB}
    h = j.history(1_800_000_000.0 + 25)                           # the snapshot of the third append
    assert h.snapshot["seq"] == seqs[2] and h.events == []
    assert j.recover().snapshot["seq"] == seqs[-1]


def test_past_the_budget_snapshots_are_thinned_evenly(clocked) -> None:
    j, clock = clocked
    seqs = _fill(j, clock, 3)
    size = j._db.execute("SELECT MAX(size) FROM snapshots").fetchone()[0]
    j.replay_budget = 5 * size + size // 2                     # room for five
    seqs += _fill(j, clock, 13)
    kept = [r[0] for r in j._db.execute("SELECT seq FROM snapshots ORDER BY seq")]
    assert len(kept) == 5 and kept[0] == seqs[0] and kept[-1] == seqs[-1]
    gaps = [b - a for a, b in zip(kept, kept[1:])]
    assert max(gaps) <= 3 * min(gaps) and j.snapshots_thinned == 11, gaps   # the newest gap grows back
    assert j._db.execute("SELECT COUNT(*) FROM snapshot_parts WHERE seq NOT IN "
                         "(SELECT seq FROM snapshots)").fetchone()[0] == 0
    for k in range(16):                                           # every moment still replays
        h = j.history(1_800_000_000.0 + 10 * k + 5)
        assert h is not None and h.seq == seqs[k]


def test_a_raw_snapshot_of_an_older_file_still_loads(tmp_path) -> None:
    j = SqliteJournal(tmp_path / "j.db")
    j.append([Batch([dev(1)])])
    j.compact(1, {"seq": 1, "raw": True}, keep=10)
    j._db.execute("UPDATE snapshot_parts SET data = ? WHERE seq = 1", (orjson.dumps({"seq": 1, "raw": True}),))
    j._db.execute("UPDATE snapshots SET codec = 0 WHERE seq = 1")
    try:
        assert j.recover().snapshot == {"seq": 1, "raw": True}
    finally:
        j.close()


@pytest.mark.parametrize("codec, data, text", [
    (1, b"not zlib", "snapshot at seq 1: compressed snapshot does not decompress"),
    (7, zlib.compress(b"{}"), "snapshot at seq 1: snapshot codec 7 unknown"),
])
def test_a_stored_snapshot_that_does_not_decode_is_named(tmp_path, codec, data, text) -> None:
    path = tmp_path / "j.db"
    j = SqliteJournal(path)
    j.append([Batch([dev(1)])])
    j.compact(1, {"seq": 1}, keep=10)
    j.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE snapshot_parts SET data = ? WHERE seq = 1", (data,))
    db.execute("UPDATE snapshots SET codec = ? WHERE seq = 1", (codec,))
    db.commit()
    db.close()
    j = SqliteJournal(path)
    try:
        with pytest.raises(RuntimeError, match=text):
            j.recover()
        with pytest.raises(RuntimeError, match=text):
            j.history(1e12)
    finally:
        j.close()


def test_hub_replay_budget_reaches_the_journal(tmp_path, monkeypatch) -> None:
    from test_hub_limits import cli_hub_config
    from wallboard.hub.server import Hub, HubConfig

    with pytest.raises(ValueError, match=r"hub option replay_budget_mb=0: expected >= 1 MB"):
        HubConfig(replay_budget_mb=0).validate()
    assert cli_hub_config(monkeypatch, "--port", "0", "--replay-budget", "64").replay_budget_mb == 64
    hub = Hub(HubConfig(port=0, journal=str(tmp_path / "j.db"), replay_budget_mb=64))
    hub.start_in_thread()
    try:
        assert hub.journal.replay_budget == 64 << 20
    finally:
        hub.stop()


def test_a_journal_from_before_compressed_snapshots_opens_and_recovers(tmp_path) -> None:
    path = tmp_path / "j.db"
    j = SqliteJournal(path)
    j.append([Batch([dev(1)])])
    j.close()
    db = sqlite3.connect(path)        # the snapshots table as the previous version made it
    db.executescript("DROP TABLE snapshots; CREATE TABLE snapshots (seq INTEGER PRIMARY KEY, data BLOB NOT NULL, "
                     "parts INTEGER NOT NULL DEFAULT 0, at REAL NOT NULL DEFAULT 0);")
    db.execute("INSERT INTO snapshots VALUES (1, ?, 0, 0)", (orjson.dumps({"seq": 1, "old": True}),))
    db.commit()
    db.close()
    j = SqliteJournal(path)
    try:
        assert j.recover().snapshot == {"seq": 1, "old": True}
        j.append([Batch([dev(2)])])
        j.compact(2, {"seq": 2}, keep=10)                          # new ones are compressed beside it
        assert j._db.execute("SELECT seq, codec FROM snapshots ORDER BY seq").fetchall() == [(1, 0), (2, 1)]
        assert j.history(1e12).snapshot == {"seq": 2}
    finally:
        j.close()


def test_thinnest_keeps_the_ends_and_drops_where_snapshots_are_densest() -> None:
    assert J.thinnest([0, 10, 20, 25, 40]) == 2          # 10..25 are the closest neighbours
    assert J.thinnest([0, 5, 100]) == 1


def test_a_hub_stores_no_replay_snapshot_close_after_another_hubs() -> None:
    from wallboard.hub.jetstream_replay import ReplaySnapshots

    r = ReplaySnapshots("s", budget=1 << 30, replicas=1)
    r.entries = [(100, 1.0, (5,), 10, 6), (200, 2.0, (7,), 10, 8)]
    assert r.near(205, 50) and r.near(200, 1) and not r.near(260, 50) and not r.near(99, 1000)
