"""Journal contract: contiguous seqs, durability across reopen, replay, idempotency, compaction."""
import pytest

from wallboard.hub.journal import Batch, MemoryJournal, SqliteJournal


def ev(i):
    return {"type": "kpi", "metric": "m", "scope": "global", "value": float(i), "ts": 1000.0 + i}


@pytest.fixture(params=["sqlite", "memory"])
def journal(request, tmp_path):
    j = SqliteJournal(tmp_path / "j.db") if request.param == "sqlite" else MemoryJournal()
    yield j
    j.close()


def test_append_assigns_contiguous_seqs_per_batch(journal):
    ranges = journal.append([Batch([ev(1), ev(2)], "p", 1), Batch([ev(3)], "p", 2)]).ranges
    assert ranges == [(1, 2), (3, 3)]
    assert journal.last_seq == 3
    assert [e["seq"] for e in journal.read(0, 10)] == [1, 2, 3]
    assert [e["seq"] for e in journal.read(1, 1)] == [2]
    assert journal.batch_range("p", 2) == (3, 3)
    assert journal.batch_range("p", 1) == (1, 2)
    assert journal.batch_range("p", 3) is None
    assert journal.batch_range("q", 1) is None


def test_compaction_bounds_the_log_and_recover_uses_the_snapshot(journal):
    for b in range(20):
        journal.append([Batch([ev(b * 10 + k) for k in range(10)], "p", b + 1)])
    assert journal.last_seq == 200
    dropped = journal.compact(200, {"seq": 200, "marker": True}, keep=30)
    assert dropped == 170
    assert journal.first_kept == 171
    assert journal.read(100, 10) == []  # compacted away: the caller must send a snapshot
    assert [e["seq"] for e in journal.read(170, 5)] == [171, 172, 173, 174, 175]
    rec = journal.recover()
    assert rec.snapshot_seq == 200 and rec.snapshot["marker"] is True
    assert rec.events == [] and rec.last_seq == 200
    journal.append([Batch([ev(1)], "p", 99)])
    rec = journal.recover()
    assert [e["seq"] for e in rec.events] == [201]
    assert journal.stats()["journal_events"] == 31
    # an old batch number is still recognised as a duplicate after compaction
    assert journal.batch_range("p", 1) is not None


def test_sqlite_survives_reopen_and_keeps_seq_after_full_compaction(tmp_path):
    j = SqliteJournal(tmp_path / "j.db")
    j.append([Batch([ev(1), ev(2), ev(3)], "p", 7)])
    j.compact(3, {"seq": 3}, keep=0)
    j.close()
    j = SqliteJournal(tmp_path / "j.db")
    assert j.last_seq == 3 and j.first_kept == 4
    assert j.batch_range("p", 7) == (1, 3)
    assert j.append([Batch([ev(4)])]).ranges == [(4, 4)]
    rec = j.recover()
    assert rec.snapshot_seq == 3 and [e["seq"] for e in rec.events] == [4]
    j.close()


def test_memory_journal_is_bounded():
    j = MemoryJournal(keep=50)
    for b in range(10):
        j.append([Batch([ev(k) for k in range(20)])])
    assert j.stats()["journal_events"] == 50
    assert j.first_kept == 151
    assert j.read(0, 10) == []
    assert j.read(150, 1)[0]["seq"] == 151


def test_sqlite_stores_a_batch_per_row_and_reads_from_inside_one(tmp_path):
    """One row per batch (first seq, the events' JSON joined by newlines, last seq): reads
    start inside a batch, stop at ``limit`` events, and old one-event rows mix in."""
    import sqlite3

    j = SqliteJournal(tmp_path / "j.db")
    j.append([Batch([ev(i) for i in range(5)], "p", 1), Batch([ev(9)], "p", 2)])
    j.append([Batch([{**ev(7), "x_note": "two\nlines"}, ev(8)], "p", 3)])
    rows = j._db.execute("SELECT seq, last FROM events ORDER BY seq").fetchall()
    assert rows == [(1, 5), (6, 6), (7, 8)]
    assert [e["seq"] for e in j.read(2, 3)] == [3, 4, 5]
    assert [e["seq"] for e in j.read(4, 100)] == [5, 6, 7, 8]
    assert j.read(6, 1)[0]["x_note"] == "two\nlines"     # a newline in a string is escaped
    j.close()
    db = sqlite3.connect(tmp_path / "j.db")                # a row as an older hub wrote it
    db.execute("INSERT INTO events (seq, data) VALUES (9, ?)", (b'{"type":"kpi","metric":"m","scope":"global",'
                                                          b'"value":1.0,"ts":1.0,"seq":9}',))
    db.execute("INSERT OR REPLACE INTO meta VALUES ('last_seq', 9)")
    db.commit()
    db.close()
    j = SqliteJournal(tmp_path / "j.db")
    assert j.last_seq == 9 and [e["seq"] for e in j.recover().events] == list(range(1, 10))
    # compaction drops whole rows only: the batch 7..8 holds seq 8, so it stays whole
    assert j.compact(7, {"seq": 7}, keep=0) == 6 and j.first_kept == 7
    assert [e["seq"] for e in j.read(6, 10)] == [7, 8, 9]
    assert j.compact(9, {"seq": 9}, keep=0) == 3 and j.first_kept == 10
    j.close()
