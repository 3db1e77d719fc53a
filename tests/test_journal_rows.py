"""The SQLite journal's events rows: zlib-compressed batches (``events.codec`` 1) beside the
raw rows of older files (codec 0), read the same by read, read_timed, recover and history;
a damaged or unknown row is named, never decoded into something else."""
import zlib

import pytest

from wallboard.hub.journal import CODEC_RAW, CODEC_ZLIB, Batch, SqliteJournal


def dev(i, status="ok"):
    return {"type": "device", "id": f"d{i % 7}", "store": "s1", "status": status, "metrics": {"cpu": float(i)},
            "msg": "line\nbreak" if i == 3 else "x"}


def _batches(n, per, first=0):
    return [Batch([dev(first + b * per + k) for k in range(per)]) for b in range(n)]


def test_new_rows_are_compressed_and_read_back_exactly(tmp_path):
    j = SqliteJournal(tmp_path / "j.db")
    try:
        j.append(_batches(3, 50))
        rows = j._db.execute("SELECT seq, last, codec, length(data) FROM events ORDER BY seq").fetchall()
        assert [(r[0], r[1], r[2]) for r in rows] == [(1, 50, CODEC_ZLIB), (51, 100, CODEC_ZLIB), (101, 150, CODEC_ZLIB)]
        raw = j._db.execute("SELECT data FROM events WHERE seq = 1").fetchone()[0]
        assert zlib.decompress(raw).count(b"\n") == 49                 # one batch, newline-joined
        got = j.read(0, 1000)
        assert [e["seq"] for e in got] == list(range(1, 151))
        assert got[3]["msg"] == "line\nbreak"                          # a newline in a string survives
        assert [s for s, _, _ in j.read_timed(48, 4)] == [49, 50, 51, 52]   # across two rows
        h = j.history(j.read_timed(0, 1)[0][1])
        assert h.seq == 150 and [e["seq"] for e in h.events] == list(range(1, 151))
        assert len(h.ats) == len(h.events)
    finally:
        j.close()


def test_raw_rows_of_an_older_file_and_new_compressed_rows_read_as_one_log(tmp_path):
    j = SqliteJournal(tmp_path / "j.db", row_codec=CODEC_RAW)
    j.append(_batches(2, 10))
    j.close()
    j = SqliteJournal(tmp_path / "j.db")                               # this version: compressed rows
    try:
        j.append(_batches(2, 10, first=20))
        codecs = [c for (c,) in j._db.execute("SELECT codec FROM events ORDER BY seq")]
        assert codecs == [CODEC_RAW, CODEC_RAW, CODEC_ZLIB, CODEC_ZLIB]
        assert [e["seq"] for e in j.read(5, 100)] == list(range(6, 41))
        assert [e["seq"] for e in j.recover().events] == list(range(1, 41))
        h = j.history(1e12)
        assert [e["seq"] for e in h.events] == list(range(1, 41))
    finally:
        j.close()


@pytest.mark.parametrize("damage, message", [
    ("data = x'78010203'", r"events row at seq 11: compressed events row does not decompress .*the file is damaged"),
    ("codec = 7", r"events row at seq 11: events row codec 7 unknown .* expected 0 or 1"),
])
def test_a_damaged_or_unknown_row_is_named_with_its_seq(tmp_path, damage, message):
    j = SqliteJournal(tmp_path / "j.db")
    try:
        j.append(_batches(2, 10))
        j._db.execute(f"UPDATE events SET {damage} WHERE seq = 11")
        assert [e["seq"] for e in j.read(0, 10)] == list(range(1, 11))  # the row before is fine
        with pytest.raises(RuntimeError, match=message):
            j.read(0, 20)
        with pytest.raises(RuntimeError, match=message):
            j.history(1e12)
    finally:
        j.close()


def test_history_from_a_snapshot_inside_a_row_takes_the_rest_of_that_row(tmp_path):
    j = SqliteJournal(tmp_path / "j.db", retain_s=1e9)
    try:
        j.append(_batches(3, 10))
        j.compact(15, {"version": 2, "seq": 15, "marker": 1}, 0)   # a snapshot at a seq inside the second row
        h = j.history(1e12)
        assert h.snapshot["marker"] == 1
        assert [e["seq"] for e in h.events] == list(range(16, 31))
        assert len(h.ats) == 15
    finally:
        j.close()
