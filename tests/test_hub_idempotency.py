"""Exact idempotency owned by the log, batches that fail alone, retryable vs terminal errors.

Issue 18 items 1-3 (rate_limited then resend; a second file under the same producer;
10,001 producers) and the journal failure paths, on the journals and on real hubs."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import connect

from wallboard import protocol as P
from wallboard.hub import ingest_cli
from wallboard.hub.auth import Auth
from wallboard.hub.batches import Batch, BatchRefused, JournalUnavailable, batch_digest
from wallboard.hub.http_ingest import start_http_ingest
from wallboard.hub.journal import MemoryJournal, SqliteJournal, describe_error
from wallboard.hub.record import Publisher, run_batch_key
from wallboard.hub.server import Hub, HubConfig

from test_hub_journal import journal  # noqa: F401 - the fixture: each test on both journals

pytestmark = pytest.mark.timeout(60)


def kpi(i: int) -> dict:
    return {"type": "kpi", "metric": "m", "scope": "global", "value": float(i), "ts": 1000.0 + i}


def keyed(events: list[dict], producer: str, batch: int) -> Batch:
    return Batch(events, producer, batch, batch_digest(events))


# ---------------------------------------------------------------------- the log's decisions


def test_resend_is_a_duplicate_with_its_own_range_and_other_content_is_a_conflict(journal):
    a, b = [kpi(1), kpi(2)], [kpi(3)]
    assert journal.append([keyed(a, "p", 1), keyed(b, "p", 2)]).ranges == [(1, 2), (3, 3)]
    done = journal.append([keyed([kpi(1), kpi(2)], "p", 1)])
    assert done.outcomes[0].duplicate and done.ranges == [(1, 2)] and not done.rows
    done = journal.append([keyed([kpi(9)], "p", 1)])
    refused = done.outcomes[0]
    assert isinstance(refused, BatchRefused) and refused.code == "conflict"
    assert str(refused) == ("producer 'p' batch 1 was committed as seq 1..2 with other events; a new batch "
                            "needs a new key (nothing applied)")
    assert journal.last_seq == 3 and len(journal.read(0, 10)) == 3


def test_same_key_twice_in_one_group_commit(journal):
    done = journal.append([keyed([kpi(1)], "p", 5), keyed([kpi(1)], "p", 5), keyed([kpi(2)], "p", 5)])
    assert done.ranges[:2] == [(1, 1), (1, 1)] and done.outcomes[1].duplicate
    assert done.outcomes[2].code == "conflict" and journal.last_seq == 1


def test_many_producers_do_not_evict_keys(journal):
    journal.append([keyed([kpi(0)], "first", 1)])
    for chunk in range(0, 10_001, 1000):
        journal.append([keyed([kpi(i)], f"p{i}", 1) for i in range(chunk, min(chunk + 1000, 10_001))])
    done = journal.append([keyed([kpi(0)], "first", 1)])  # item 3: never journaled a second time
    assert done.outcomes[0].duplicate and done.ranges == [(1, 1)] and journal.last_seq == 10_002


def test_keys_survive_restart_and_expire_after_the_window(tmp_path):
    j = SqliteJournal(tmp_path / "j.db")
    j.append([keyed([kpi(1)], "p", 1)])
    j.close()
    j = SqliteJournal(tmp_path / "j.db")
    assert j.append([keyed([kpi(1)], "p", 1)]).outcomes[0].duplicate
    j.close()
    j = SqliteJournal(tmp_path / "j.db", dedupe_window=1e-9)  # everything is older than the window
    assert j.batch_range("p", 1) is None
    assert j.expire_keys() == 1
    assert j.append([keyed([kpi(1)], "p", 1)]).ranges == [(2, 2)]  # a key past the window is new
    j.close()


def test_a_batch_that_cannot_be_stored_fails_alone(journal):
    deep: Any = 1
    for _ in range(300):
        deep = {"x": deep}
    bad = {**kpi(2), "x_deep": deep}
    huge = {**kpi(3), "x_big": 1 << 70}
    done = journal.append([keyed([kpi(1)], "a", 1), Batch([kpi(5), bad], "b", 1), Batch([huge], "c", 1),
                           Batch([kpi(4)], "d", P.MAX_INT + 1), keyed([kpi(6)], "e", 1)])
    assert done.ranges[0] == (1, 1) and done.ranges[4] == (2, 2)
    assert [(o.code, o.index) for o in done.outcomes[1:4]] == [("bad_value", 1), ("bad_value", 0), ("bad_value", None)]
    assert str(done.outcomes[1]).startswith("event 1 cannot be stored: ")
    assert str(done.outcomes[3]) == f"batch key {P.MAX_INT + 1} out of range (expected 0..{P.MAX_INT})"
    assert "seq" not in bad and "seq" not in kpi(5)
    assert [e["seq"] for e in journal.read(0, 10)] == [1, 2]
    assert journal.batch_range("b", 1) is None  # a refused batch was never "seen"


class FailingDb:
    """A sqlite3 connection stand-in whose writes fail as a full disk does."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("INSERT INTO events"):
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def executemany(self, sql: str, rows: Any) -> Any:
        if sql.startswith("INSERT INTO events"):
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def test_a_failed_commit_is_unavailable_and_never_seen(tmp_path):
    j = SqliteJournal(tmp_path / "j.db")
    real = j._db
    j._db = FailingDb(real)  # type: ignore[assignment]
    batch = keyed([kpi(1)], "p", 1)
    with pytest.raises(JournalUnavailable) as e:
        j.append([batch])
    assert e.value.message == f"disk full: journal {tmp_path / 'j.db'}: database or disk is full"
    assert e.value.retry_after > 0 and "seq" not in batch.events[0] and not real.in_transaction
    j._db = real
    assert j.batch_range("p", 1) is None
    assert j.append([keyed([kpi(1)], "p", 1)]).ranges == [(1, 1)]  # the resend is fresh, not a duplicate
    j.close()


def test_describe_error_names_a_full_disk():
    err = sqlite3.OperationalError("database or disk is full")
    assert describe_error("/x/j.db", err) == "disk full: journal /x/j.db: database or disk is full"
    assert describe_error("/x/j.db", OSError(28, "No space left on device")).startswith("disk full: ")
    assert describe_error("/x/j.db", sqlite3.OperationalError("disk I/O error")) == \
        "journal /x/j.db: disk I/O error"


def test_protocol_carries_retry_after_and_epoch_and_producers_keys_fit_it():
    err = P.decode(P.encode(P.Error(code="unavailable", message="m", retry_after=1.5)))
    assert err.retry_after == 1.5 and "unavailable" in P.ERROR_CODES and "conflict" in P.ERROR_CODES
    assert P.decode(P.encode(P.Welcome(protocol=1, hub="h", seq=3, heartbeat_s=1.0, epoch="e1"))).epoch == "e1"
    assert run_batch_key(b"run-a", 1) != run_batch_key(b"run-b", 1) <= P.MAX_INT
    assert 0 <= ingest_cli.batch_key(b"", 1, [kpi(1)]) <= P.MAX_INT


# ---------------------------------------------------------------------- real hubs


async def recv(ws: Any) -> P.Message:
    return P.decode(await asyncio.wait_for(ws.recv(), 10), max_size=1 << 30)


def test_rate_limited_batch_resent_later_is_journaled_not_a_duplicate(tmp_path):
    """Item 1: batch 1 acked, batch 2 rate_limited, batch 3 acked, batch 2 resent -> journaled."""
    hub = Hub(HubConfig(port=0, journal=str(tmp_path / "j.db"), rate_limit=1000), auth=Auth())
    hub.start_in_thread()
    try:
        async def go() -> list[P.Message]:
            out = []
            async with connect(hub.publish_url) as ws:
                # the bucket holds 1000 events and refills 1000/s: batch 2 comes at once after
                # batch 1 emptied it, batch 3 after 0.35 s, the resend of 2 after another 1.1 s
                for n, size, pause in ((1, 1000, 0), (2, 600, 0.35), (3, 300, 1.1), (2, 600, 0)):
                    evs = [kpi(n * 1000 + i) for i in range(size)]
                    await ws.send(P.encode(P.Publish(events=evs, producer="p", batch=n)))
                    out.append(await recv(ws))
                    await asyncio.sleep(pause)
            return out
        replies = asyncio.run(go())
    finally:
        hub.stop()
    ack1, limited, ack3, ack2 = replies
    assert isinstance(limited, P.Error) and limited.code == "rate_limited"
    assert (ack1.first, ack1.last, ack3.first, ack3.last) == (1, 1000, 1001, 1300)
    assert isinstance(ack2, P.Ack) and not ack2.duplicate and (ack2.first, ack2.last) == (1301, 1900)
    j = SqliteJournal(tmp_path / "j.db")
    assert j.last_seq == 1900 and len(j.read(0, 2000)) == 1900
    j.close()


class Flaky(MemoryJournal):
    """A memory journal whose next ``fail`` appends raise as a full disk would."""

    fail = 0

    def append(self, batches: list[Batch]) -> Any:
        if self.fail:
            self.fail -= 1
            raise JournalUnavailable("disk full: journal test: database or disk is full", retry_after=0.1)
        return super().append(batches)


def test_journal_failure_is_unavailable_and_publisher_resends(tmp_path):
    journal = Flaky()
    hub = Hub(HubConfig(port=0, journal=None), auth=Auth(), journal=journal)
    hub.start_in_thread()
    try:
        async def raw() -> P.Message:
            journal.fail = 1
            async with connect(hub.publish_url) as ws:
                await ws.send(P.encode(P.Publish(events=[kpi(1)], producer="raw", batch=1)))
                return await recv(ws)
        err = asyncio.run(raw())
        assert isinstance(err, P.Error) and err.code == "unavailable" and err.retry_after == 0.1
        assert err.message == ("not applied: disk full: journal test: database or disk is full; resend the "
                               "batch later")

        async def publisher() -> Publisher:
            journal.fail = 2
            async with Publisher(hub.publish_url, producer="pub") as pub:
                await pub.publish([kpi(2)])
                await pub.flush(20)
            return pub
        pub = asyncio.run(publisher())
        assert pub.rejected == 2 and pub.refused == {} and pub.acked == 1
        assert [e["value"] for e in journal.read(0, 10)] == [2.0]
        assert hub.counters["journal_errors"] == 3
    finally:
        hub.stop()


def test_publisher_drops_a_conflicting_batch_as_terminal():
    hub = Hub(HubConfig(port=0, journal=None), auth=Auth())
    hub.start_in_thread()
    try:
        async def go() -> Publisher:
            async with Publisher(hub.publish_url, producer="p") as pub:
                await pub.publish([kpi(1)])
                await pub.flush(10)
                pub.sent_batches = 0  # a producer that restarts its numbering with other events
                await pub.publish([kpi(2)])
                await pub.flush(10)
            return pub
        pub = asyncio.run(go())
        assert pub.refused == {"conflict": 1} and pub.last_error.code == "conflict" and hub.seq == 1
        assert hub.counters["rejects_conflict"] == 1
    finally:
        hub.stop()


def test_http_ingest_503_retry_after_and_409_conflict():
    journal = Flaky()
    hub = Hub(HubConfig(port=0, journal=None), auth=Auth(), journal=journal)

    async def go() -> list[tuple[int, dict, str | None]]:
        await hub.astart()
        ingest = await start_http_ingest(hub, "127.0.0.1", 0)
        out = []
        try:
            async with aiohttp.ClientSession() as s:
                for body, batch, fail in (([kpi(1)], "1", 1), ([kpi(1)], "1", 0), ([kpi(2)], "1", 0)):
                    journal.fail = fail
                    async with s.post(ingest.url + "/events", data=orjson.dumps(body),
                                      headers={"X-Wallboard-Producer": "h", "X-Wallboard-Batch": batch,
                                               "Content-Type": "application/json"}) as r:
                        out.append((r.status, orjson.loads(await r.read()), r.headers.get("Retry-After")))
        finally:
            await ingest.stop()
            await hub.astop()
        return out
    (s1, b1, h1), (s2, b2, _), (s3, b3, _) = asyncio.run(go())
    assert (s1, b1["error"], h1) == (503, "unavailable", "1")
    assert (s2, b2["first"], b2["duplicate"]) == (200, 1, False)
    assert (s3, b3["error"]) == (409, "conflict") and "committed as seq 1..1 with other events" in b3["message"]


def publish_cli(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="wallboard")
    ingest_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["publish", *argv])
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = args.func(args)
    return code, err.getvalue()


def test_second_file_under_the_same_producer_is_published(tmp_path: Path):
    """Item 2: file2 under --producer etl is journaled; a rerun of file1 is not applied twice."""
    hub = Hub(HubConfig(port=0, journal=str(tmp_path / "j.db")), auth=Auth())
    hub.start_in_thread()
    try:
        f1, f2 = tmp_path / "file1.jsonl", tmp_path / "file2.jsonl"
        f1.write_text("".join(orjson.dumps(kpi(i)).decode() + "\n" for i in range(3)))
        f2.write_text("".join(orjson.dumps(kpi(i)).decode() + "\n" for i in range(10, 13)))
        argv = ["--hub", f"ws://127.0.0.1:{hub.port}", "--producer", "etl"]
        code, err = publish_cli([*argv, str(f1)])
        assert code == 0 and "published 3 events in 1 batches (seq 1..3)" in err
        code, err = publish_cli([*argv, str(f2)])
        assert code == 0 and "(seq 4..6)" in err and "0 duplicate acks" in err
        code, err = publish_cli([*argv, str(f1)])
        assert code == 0 and "1 duplicate acks" in err and "(seq 1..3)" in err
        assert hub.seq == 6
    finally:
        hub.stop()


def test_publish_cli_transports_stop_on_conflict_and_retry_unavailable():
    journal = Flaky()
    hub = Hub(HubConfig(port=0, journal=None), auth=Auth(), journal=journal)
    hub.start_in_thread()
    try:
        async def go() -> tuple[str, str, Any]:
            ws = ingest_cli.WsTransport(f"ws://127.0.0.1:{hub.port}/publish", None, 10)
            try:
                await ws.send([kpi(1)], "p", 7)
                with pytest.raises(ingest_cli.Fatal) as conflict:
                    await ws.send([kpi(2)], "p", 7)
                journal.fail = 1
                with pytest.raises(ingest_cli.Retry) as retry:
                    await ws.send([kpi(3)], "p", 8)
                return str(conflict.value), str(retry.value), retry.value.retry_after
            finally:
                await ws.close()
        conflict, retry, after = asyncio.run(go())
        assert conflict.startswith("hub refused batch 7: conflict: producer 'p' batch 7 was committed as seq 1..1")
        assert retry.startswith("unavailable: not applied: disk full: ") and after == 0.1
    finally:
        hub.stop()


def test_hub_own_producers_resend_after_unavailable():
    journal = Flaky()
    hub = Hub(HubConfig(port=0, journal=None), auth=Auth(), journal=journal)

    async def go() -> tuple[Any, str]:
        await hub.astart()
        try:
            journal.fail = 2
            ok = await hub.submit_retrying([kpi(1)])
            journal.fail = 5
            with pytest.raises(JournalUnavailable) as e:
                await hub.submit_retrying([kpi(2)], attempts=3)
            return ok, e.value.message
        finally:
            journal.fail = 0
            await hub.astop()
    ok, message = asyncio.run(go())
    assert ok == ((1, 1), False) and message.startswith("disk full: ")
    assert [e["value"] for e in journal.read(0, 10)] == [1.0]
