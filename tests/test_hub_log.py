"""EventLog: the hub's one async log interface (append, read, follow, first_kept, snapshots)."""
from __future__ import annotations

import asyncio

import pytest

from wallboard.hub.batches import Batch, BatchRefused, batch_digest
from wallboard.hub.journal import SqliteJournal
from wallboard.hub.log import Compacted, EventLog


def kpi(i: int) -> dict:
    return {"type": "kpi", "metric": "m", "scope": "global", "value": float(i), "ts": 1000.0 + i}


def keyed(events: list[dict], producer: str, batch: int) -> Batch:
    return Batch(events, producer, batch, batch_digest(events))


def test_append_read_follow_and_snapshots(tmp_path):
    async def go() -> None:
        log = EventLog(SqliteJournal(tmp_path / "j.db"))
        try:
            assert await log.append(keyed([kpi(1), kpi(2)], "p", 1)) == (1, 2)
            assert await log.append(keyed([kpi(1), kpi(2)], "p", 1)) == (1, 2)   # a resend: its range
            with pytest.raises(BatchRefused) as e:
                await log.append(keyed([kpi(3)], "p", 1))
            assert e.value.code == "conflict"
            follow = log.follow(0)
            rows = await asyncio.wait_for(follow.__anext__(), 5)
            assert [(s, ev["value"]) for s, _, ev in rows] == [(1, 1.0), (2, 2.0)]
            waiting = asyncio.ensure_future(follow.__anext__())   # waits for the next commit
            await asyncio.sleep(0.05)
            assert not waiting.done()
            done = await log.append_group([Batch([kpi(4)]), Batch([kpi(5)])])
            assert done.ranges == [(3, 3), (4, 4)]
            rows = await asyncio.wait_for(waiting, 5)
            assert [s for s, _, _ in rows] == [3, 4] and rows[0][1] == b'{"type":"kpi","metric":"m","scope":"global",' \
                b'"value":4.0,"ts":1004.0,"seq":3}'
            assert [e["seq"] for e in await log.read(1, 10)] == [2, 3, 4]
            assert await log.snapshots.put(4, {"seq": 4}, keep=1) == 3 and log.first_kept() == 4
            assert log.snapshots.latest().snapshot_seq == 4
        finally:
            log.close()
    asyncio.run(go())


def test_follow_reads_back_from_the_journal_and_says_when_compacted(tmp_path):
    async def go() -> None:
        j = SqliteJournal(tmp_path / "j.db")
        j.append([Batch([kpi(i) for i in range(5)])])
        j.append([Batch([kpi(i)]) for i in range(5, 10)])  # compaction drops whole batches
        j.close()
        log = EventLog(SqliteJournal(tmp_path / "j.db"))   # nothing in memory: from the journal
        try:
            rows = await asyncio.wait_for(log.follow(5, limit=3).__anext__(), 5)
            assert [s for s, _, _ in rows] == [6, 7, 8] and rows[0][2]["value"] == 5.0
            await log.snapshots.put(10, {"seq": 10}, keep=2)
            with pytest.raises(Compacted) as e:
                await asyncio.wait_for(log.follow(1).__anext__(), 5)
            assert str(e.value) == "events after seq 1 are compacted away (first kept 9)"
        finally:
            log.close()
    asyncio.run(go())
