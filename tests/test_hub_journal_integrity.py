"""Journal integrity at start (issue 18 items 5-6): a journal that existed and is gone,
empty, short of what was committed (lost or garbled -wal after kill -9), damaged or
foreign refuses to start with one line naming the file, the damage and the way out; a
journal belongs to one hub process; the log's epoch travels in ``welcome``."""
from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from wallboard import protocol as P
from wallboard.hub.auth import Auth
from wallboard.hub.batches import Batch
from wallboard.hub.journal import SqliteJournal, open_journal
from wallboard.hub.journal_guard import JournalRefused, refusing
from wallboard.hub.server import Hub, HubConfig

pytestmark = pytest.mark.timeout(60)


def kpi(i: int) -> dict:
    return {"type": "kpi", "metric": "m", "scope": "global", "value": float(i), "ts": 1000.0 + i, "x_pad": "p" * 200}


def filled(path: Path, n: int = 3) -> str:
    j = SqliteJournal(path)
    j.append([Batch([kpi(i) for i in range(n)])])
    epoch = j.epoch
    j.close()
    return epoch


def refused(path: Path, **kw) -> str:
    with pytest.raises(JournalRefused) as e:
        SqliteJournal(path, **kw).close()
    return str(e.value)


def test_epoch_is_kept_across_restarts_and_new_epoch_changes_it(tmp_path):
    path = tmp_path / "j.db"
    epoch = filled(path)
    j = SqliteJournal(path)
    assert j.epoch == epoch and j.last_seq == 3
    j.close()
    j = SqliteJournal(path, new_epoch=True)
    assert j.epoch != epoch and j.last_seq == 3  # what the file holds is kept
    j.close()


def test_second_opener_is_refused_naming_the_pid(tmp_path):
    path = tmp_path / "j.db"
    j = SqliteJournal(path)
    try:
        assert refused(path) == (f"journal {path} is in use by another hub (pid {os.getpid()} holds {path}.lock); "
                                 "stop that hub first, or give this one another --journal")
    finally:
        j.close()
    SqliteJournal(path).close()  # released with close


def test_deleted_or_emptied_journal_is_refused_and_new_epoch_starts_over(tmp_path):
    path = tmp_path / "j.db"
    epoch = filled(path)
    for name in ("j.db", "j.db-wal", "j.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    assert refused(path) == (f"journal {path}: missing, but the hub had committed seq 1..3 of epoch {epoch} to it; "
                             "restore it, or start a new epoch with --new-epoch (walls resync)")
    path.write_bytes(b"")
    assert refused(path).startswith(f"journal {path}: empty (0 bytes), but the hub had committed seq 1..3 ")
    j = SqliteJournal(path, new_epoch=True)
    assert j.last_seq == 0 and j.epoch != epoch
    j.close()


KILL = textwrap.dedent("""
    import os, sys
    from wallboard.hub.journal import SqliteJournal
    from wallboard.hub.batches import Batch
    j = SqliteJournal(sys.argv[1])
    for b in range(20):
        j.append([Batch([{"type": "kpi", "metric": "m", "scope": "global", "value": float(i), "ts": 1.0}
                         for i in range(50)])])
    os._exit(0)   # as kill -9: no close, no checkpoint
""")


def killed(path: Path) -> None:
    subprocess.run([sys.executable, "-c", KILL, str(path)], check=True, timeout=60)
    assert Path(f"{path}-wal").stat().st_size > 0


def test_wal_lost_or_garbled_after_kill_is_refused(tmp_path):
    path = tmp_path / "j.db"
    killed(path)
    Path(f"{path}-wal").unlink()
    Path(f"{path}-shm").unlink(missing_ok=True)
    text = refused(path)
    assert text.startswith(f"journal {path}: ends at seq ") and "had committed up to seq 1000 (its -wal file " \
        "was lost or damaged after a crash, or an older copy was restored); restore it, or start a new " \
        "epoch with --new-epoch (walls resync)" in text

    other = tmp_path / "k.db"
    killed(other)
    wal = Path(f"{other}-wal")
    data = bytearray(wal.read_bytes())
    for i in range(len(data) // 2, len(data), 997):  # garble the second half of the frames
        data[i] ^= 0xFF
    wal.write_bytes(bytes(data))
    assert "had committed up to seq 1000" in refused(other)
    j = SqliteJournal(other, new_epoch=True)   # the way out: what survived, in a new epoch
    assert 0 <= j.last_seq < 1000
    j.close()


def test_kill_and_restart_with_the_wal_in_place_is_fine(tmp_path):
    path = tmp_path / "j.db"
    killed(path)
    j = SqliteJournal(path)
    assert j.last_seq == 1000
    j.close()


def test_foreign_and_non_sqlite_files_are_refused_and_left_untouched(tmp_path):
    foreign = tmp_path / "app.db"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    db.commit()
    db.close()
    before = foreign.read_bytes()
    for kw in ({}, {"new_epoch": True}):
        assert refused(foreign, **kw) == (f"journal {foreign}: an SQLite file that is not a wallboard journal "
                                          "(tables users); it is left untouched: give --journal another path")
    assert foreign.read_bytes() == before
    db = sqlite3.connect(foreign)
    assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["users"]
    db.close()
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a database\n")
    assert refused(text, new_epoch=True) == (
        f"journal {text}: not an SQLite database (it starts with b'hello, this is n'); it is not a wallboard "
        "journal and is left untouched: give --journal another path")
    assert text.read_text() == "hello, this is not a database\n"


def test_truncated_journal_is_damaged_and_new_epoch_moves_it_aside(tmp_path):
    path = tmp_path / "j.db"
    filled(path, 2000)
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(size // 2)
    text = refused(path)
    assert text.startswith(f"journal {path}: damaged (") and text.endswith(
        "restore it, or start a new epoch with --new-epoch (the damaged file is moved aside; walls resync)")
    j = SqliteJournal(path, new_epoch=True)
    assert j.last_seq == 0
    j.close()
    aside = [p.name for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert aside and all(n.startswith("j.db.damaged-") for n in aside)


def test_disk_full_while_opening_is_named():
    with pytest.raises(JournalRefused) as e, refusing(Path("/x/j.db")):
        raise sqlite3.OperationalError("database or disk is full")
    assert str(e.value) == "disk full: journal /x/j.db: database or disk is full; free space and start again"


def test_url_journal_is_refused_without_creating_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(JournalRefused) as e:
        open_journal("http://127.0.0.1:4222/wallboard")
    assert "expected a SQLite file path or nats://HOST:PORT/STREAM" in str(e.value)
    with pytest.raises(JournalRefused) as e:
        open_journal("nats://127.0.0.1:4222")   # a nats URL without a stream
    assert "no stream name" in str(e.value)
    with pytest.raises(ValueError) as e2:
        HubConfig(journal="nats://127.0.0.1:4222/a.b").validate()
    assert str(e2.value).startswith("journal 'nats://127.0.0.1:4222/a.b': stream name 'a.b'")
    assert list(tmp_path.iterdir()) == []


def test_welcome_carries_the_epoch(tmp_path):
    hub = Hub(HubConfig(port=0, journal=str(tmp_path / "j.db")), auth=Auth())
    hub.start_in_thread()
    try:
        async def go() -> P.Message:
            async with connect(hub.url) as ws:
                await ws.send(P.encode(P.Hello()))
                return P.decode(await asyncio.wait_for(ws.recv(), 10))
        welcome = asyncio.run(go())
        assert isinstance(welcome, P.Welcome) and welcome.epoch == hub.journal.epoch and len(welcome.epoch) == 16
    finally:
        hub.stop()


def test_wallboard_hub_refuses_with_one_line(tmp_path):
    """Two `wallboard hub` processes on one journal; then a damaged journal."""
    path = tmp_path / "hub.db"
    cmd = [sys.executable, "-m", "wallboard", "hub", "--port", "0", "--journal", str(path)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening on" in first.stdout.readline()
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert second.stderr.strip() == (f"wallboard hub: journal {path} is in use by another hub (pid {first.pid} "
                                         f"holds {path}.lock); stop that hub first, or give this one another --journal")
    finally:
        first.terminate()
        first.wait(30)
    path.write_bytes(b"garbage that is not a journal")
    third = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert third.returncode == 2 and len(third.stderr.strip().splitlines()) == 1
    assert "not an SQLite database" in third.stderr
