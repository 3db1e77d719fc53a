"""The flight recorder's hub side (issue 16): the log keeps commit times; ``history(at)``
gives the state at a moment; a replay connection (``hello`` with ``at``) sends the state
then and the events after it at their pace times ``speed``; ``seek`` / ``speed`` move it;
controls are refused there. Real hub in a thread, real websocket client, loopback."""
from __future__ import annotations

import asyncio
import time

import pytest
from websockets.asyncio.client import connect

from wallboard import protocol as P
from wallboard.hub import journal as J
from wallboard.hub.auth import Auth
from wallboard.hub.journal import Batch, MemoryJournal, SqliteJournal
from wallboard.hub.server import Hub, HubConfig
from wallboard.state import LiveState


def dev(i: int, status: str = "ok") -> dict:
    return {"type": "device", "id": f"d{i % 7}", "store": "s1", "kind": "pos", "status": status,
            "metrics": {"cpu": float(i)}}


class Clock:
    """``time.time`` of the journal module, moved by hand."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["sqlite", "memory"])
def timed(request, tmp_path, monkeypatch):
    clock = Clock(1_800_000_000.0)
    monkeypatch.setattr(J.time, "time", clock)
    j = (SqliteJournal(tmp_path / "j.db", retain_s=100.0) if request.param == "sqlite"
         else MemoryJournal(keep=10_000))
    yield j, clock
    j.close()


def test_history_is_the_log_up_to_a_moment(timed):
    j, clock = timed
    for b in range(10):                      # batch b committed at t0 + 10 b
        j.append([Batch([{**dev(b * 3 + k), "ts": clock.t} for k in range(3)])])
        clock.t += 10
    t0 = 1_800_000_000.0
    h = j.history(t0 + 25)                   # batches 0, 1, 2
    assert h.seq == 9 and h.seq_at == t0 + 20 and h.snapshot is None
    assert [e["seq"] for e in h.events] == list(range(1, 10)) and h.ats == [t0] * 3 + [t0 + 10] * 3 + [t0 + 20] * 3
    assert j.history(t0 - 1).seq == 0        # before the first event: the empty log
    assert [(s, a) for s, a, _ in j.read_timed(7, 3)] == [(8, t0 + 20), (9, t0 + 20), (10, t0 + 30)]
    # a snapshot at seq 15 (stored "later"): history after it starts from it
    st = LiveState()
    st.apply(j.read(0, 15), t0 + 40, checked=True)
    j.compact(15, st.snapshot(), keep=100)
    h = j.history(t0 + 55)
    assert h.seq == 18 and h.snapshot["seq"] == 15 and [e["seq"] for e in h.events] == [16, 17, 18]
    assert j.history(t0 + 25).snapshot is None   # before the snapshot: from the start


def test_sqlite_keeps_events_within_the_retention_and_the_snapshot_they_need(tmp_path, monkeypatch):
    """Retention by time: whatever ``keep``, every event of the last ``retain_s`` stays
    and can be replayed (the snapshot it needs stays too); older ones go at a later
    compaction; older snapshots are kept (compressed) at least ``SNAPSHOT_GAP_S`` apart."""
    t0 = 1_800_000_000.0
    clock = Clock(t0)
    monkeypatch.setattr(J.time, "time", clock)
    j = SqliteJournal(tmp_path / "j.db", retain_s=100.0)
    snaps = lambda: [tuple(r) for r in j._db.execute("SELECT seq, at FROM snapshots ORDER BY seq")]  # noqa: E731
    try:
        for b in range(60):                  # 3 events every 10 s, a snapshot every 30 s
            j.append([Batch([dev(b * 3 + k) for k in range(3)])])
            clock.t += 10
            if b % 3 == 2:
                j.compact(j.last_seq, {"seq": j.last_seq}, keep=0)
                horizon = clock.t - 100
                for s, at, _ in j.read_timed(j.first_kept - 1, 1000):
                    if at >= horizon:        # within the retention: kept and replayable
                        assert j.history(at) is not None and j.history(at).seq >= s
                first_at = j.read_timed(j.first_kept - 1, 1)[0][1]     # and not much more than needed:
                assert first_at >= horizon - J.SNAPSHOT_GAP_S - 40       # back to a kept snapshot
                kept = snaps()[:-1]
                assert all(b2[1] - a2[1] >= J.SNAPSHOT_GAP_S for a2, b2 in zip(kept, kept[1:])), kept
        assert j.first_kept > 100 and j.history(t0 + 100) is None          # the old part is gone
        assert len(snaps()) <= 5                 # those of the last 100 s + the one before
    finally:
        j.close()


def test_a_journal_from_before_commit_times_opens_and_replays_its_rows_as_old(tmp_path):
    import sqlite3

    from wallboard.hub.journal import CODEC_RAW

    j = SqliteJournal(tmp_path / "j.db", row_codec=CODEC_RAW)   # rows as that version wrote them
    j.append([Batch([dev(1)])])
    j.close()
    db = sqlite3.connect(tmp_path / "j.db")
    db.executescript("CREATE TABLE e2 AS SELECT seq, data, last FROM events; DROP TABLE events; "
                     "ALTER TABLE e2 RENAME TO events; DROP INDEX IF EXISTS events_at;")
    db.close()
    j = SqliteJournal(tmp_path / "j.db")
    try:
        assert j.read_timed(0, 5)[0][:2] == (1, 0.0)    # a row from before: committed "at 0", no codec (raw)
        j.append([Batch([dev(2)])])
        assert j.history(time.time()).seq == 2
    finally:
        j.close()


# ------------------------------------------------------------------ the replay connection

async def recv(ws) -> P.Message:
    return P.decode(await asyncio.wait_for(ws.recv(), 10), max_size=1 << 30)


async def until(ws, op: str, limit: int = 200) -> P.Message:
    for _ in range(limit):
        msg = await recv(ws)
        if msg.op == op:
            return msg
    raise AssertionError(f"no {op} in {limit} messages")


def test_replay_connection_sends_the_state_then_the_events_at_their_pace(tmp_path):
    hub = Hub(HubConfig(port=0, journal=str(tmp_path / "j.db"), heartbeat_s=0.2), auth=Auth())
    hub.start_in_thread()
    try:
        async def go() -> None:
            async with connect(hub.publish_url) as pub:
                async def publish(evs, n):
                    await pub.send(P.encode(P.Publish(events=evs, producer="p", batch=n)))
                    assert (await recv(pub)).op == "ack"
                await publish([dev(i, "ok") for i in range(7)], 1)
                await asyncio.sleep(0.3)
                t_mid = time.time()
                await asyncio.sleep(0.3)
                await publish([dev(0, "crit")], 2)
                await asyncio.sleep(0.3)
                await publish([dev(1, "warn")], 3)
            async with connect(hub.url) as ws:
                await ws.send(P.encode(P.Hello(at=t_mid, speed=1.0, wall="rewind")))
                welcome = await recv(ws)
                assert welcome.op == "welcome" and welcome.replay is True and welcome.at == pytest.approx(t_mid)
                snap = await recv(ws)
                assert snap.op == "snapshot" and snap.seq == 7        # the state at t_mid: batch 1 only
                statuses = {d["id"]: d["status"] for d in snap.data["devices"]}
                assert statuses["d0"] == "ok"
                t0 = time.monotonic()
                ev = await until(ws, "events")
                assert [e["seq"] for e in ev.events] == [8] and ev.events[0]["status"] == "crit"
                assert 0.15 <= time.monotonic() - t0 <= 5       # ~0.3 s later, at speed 1
                await ws.send(P.encode(P.Speed(x=0)))           # paused: a heartbeat says so
                beat = await until(ws, "heartbeat")
                while beat.speed != 0:
                    beat = await until(ws, "heartbeat")
                await ws.send(P.encode(P.Control(command="ack_incident", args={"incident": "i1"})))
                err = await until(ws, "error")
                assert err.message == "a replay connection takes no control: send it on the live connection"
                await ws.send(P.encode(P.Seek(at=t_mid + 0.45)))  # after batch 2, before batch 3
                snap = await until(ws, "snapshot")
                assert snap.seq == 8
                await ws.send(P.encode(P.Speed(x=50)))
                ev = await until(ws, "events")
                assert [e["seq"] for e in ev.events] == [9]
            # a live wall on the same hub is unaffected
            assert hub.counters["replays"] == 1 and hub.counters["replay_snapshots"] == 2
        asyncio.run(go())
    finally:
        hub.stop()


def test_a_replay_before_the_log_starts_at_its_first_moment_and_hello_checks(tmp_path):
    hub = Hub(HubConfig(port=0, journal=str(tmp_path / "j.db")), auth=Auth())
    hub.start_in_thread()
    try:
        async def go() -> None:
            async with connect(hub.publish_url) as pub:
                await pub.send(P.encode(P.Publish(events=[dev(1)], producer="p", batch=1)))
                await recv(pub)
            async with connect(hub.url) as ws:  # long before: the empty log at its start
                await ws.send(P.encode(P.Hello(at=1_000_000_000.0)))
                welcome = await recv(ws)
                assert welcome.replay and (await recv(ws)).seq == 0
            async with connect(hub.url) as ws:
                await ws.send(b'{"op":"hello","at":1000000000,"since":3}')
                err = await recv(ws)
                assert err.code == "bad_value" and "'since' and 'at' exclude each other" in err.message
        asyncio.run(go())
    finally:
        hub.stop()


def test_record_a_range_of_history_to_a_tape(tmp_path):
    """``wallboard record --from T1 --to T2``: the state at T1 as a snapshot line, then
    exactly the events committed in (T1, T2], and it ends by itself."""
    from wallboard.hub.record_range import RangeRefused, record_range

    hub = Hub(HubConfig(port=0, journal=str(tmp_path / "j.db")), auth=Auth())
    hub.start_in_thread()
    try:
        async def go() -> None:
            async with connect(hub.publish_url) as pub:
                stamps = []
                for n in range(1, 6):
                    await pub.send(P.encode(P.Publish(events=[dev(n)], producer="p", batch=n)))
                    assert (await recv(pub)).op == "ack"
                    await asyncio.sleep(0.15)
                    stamps.append(time.time())
            out = tmp_path / "range.jsonl"
            n = await asyncio.wait_for(record_range(hub.url, out, stamps[0], stamps[3]), 20)
            lines = [__import__("orjson").loads(x) for x in out.read_text().splitlines()]
            assert lines[0]["op"] == "snapshot" and lines[0]["seq"] == 1
            assert n == 3 and [e["seq"] for e in lines[1:]] == [2, 3, 4]
            with pytest.raises(ValueError, match=r"--to 1\.000 is before --from 2\.000"):
                await record_range(hub.url, tmp_path / "x.jsonl", 2.0, 1.0)
            with pytest.raises(ValueError, match="directory .* does not exist"):
                await record_range(hub.url, tmp_path / "no" / "x.jsonl", 1.0, 2.0)
        asyncio.run(go())
    finally:
        hub.stop()


def test_record_range_refusals_are_precise(tmp_path):
    from wallboard.hub.record import Unreachable
    from wallboard.hub.record_range import record_range

    with pytest.raises(Unreachable, match="cannot reach ws://127.0.0.1:9/feed"):
        asyncio.run(record_range("ws://127.0.0.1:9/feed", tmp_path / "x.jsonl", 1.0, 2.0))


def test_the_replayed_state_at_a_moment_is_the_live_state_then(tmp_path):
    """``state_at(T)`` (snapshot + events from the journal, a compaction in between) equals
    what the live hub's state was at T: the same seq, devices, stores, incidents."""
    from wallboard.hub.replay import state_at

    hub = Hub(HubConfig(port=0, journal=str(tmp_path / "j.db"), compact_every=40, keep_events=0), auth=Auth())
    hub.start_in_thread()
    try:
        seen: list[tuple[float, dict]] = []

        async def go() -> None:
            async with connect(hub.publish_url) as pub:
                for n in range(1, 13):
                    evs = [dev(n * 5 + k, ["ok", "warn", "crit"][(n + k) % 3]) for k in range(9)]
                    if n == 4:
                        evs.append({"type": "incident", "id": "i1", "severity": "P2", "stores": ["s1"],
                                    "title": "pos down", "opened_at": time.time()})
                    await pub.send(P.encode(P.Publish(events=evs, producer="p", batch=n)))
                    assert (await recv(pub)).op == "ack"
                    await asyncio.sleep(0.05)
                    seen.append((time.time(), P.decode(P.encode(P.Snapshot(seq=0, part=0, parts=1,
                                                                           data=hub.state.snapshot()))).data))
                    await asyncio.sleep(0.05)
        asyncio.run(go())
        assert hub.counters.get("compactions", 0) >= 1
        for t, live in seen:
            seq, _, frames = state_at(hub, t)
            parts = [P.decode(f).data for f in frames]
            replayed = P.merge_snapshot_parts(parts)
            assert seq == live["seq"]
            strip = lambda recs: sorted(({k: v for k, v in r.items() if k not in ("last_seen", "age")}  # noqa: E731
                                         for r in recs), key=lambda r: r["id"])
            for key in ("devices", "stores", "incidents"):
                assert strip(replayed[key]) == strip(live[key]), (t, key)
    finally:
        hub.stop()
