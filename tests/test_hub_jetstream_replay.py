"""The flight recorder on a JetStream log (issue 16): ``hello`` with ``at`` and ``seek``
on a hub whose journal is ``nats://.../STREAM`` show the state at that moment, from the
replay snapshots of ``<STREAM>_replay`` + the records after them; another hub on the
stream serves the same replay; compaction trims the replay stream with the log. A real
nats-server (one node, loopback), skipped only when no nats-server binary is found."""
from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from websockets.asyncio.client import connect

from test_hub_jetstream import caught_up, hub_on, nats_url, publish, store  # noqa: F401 (fixture)
from wallboard import protocol as P

pytestmark = pytest.mark.timeout(120)
_streams = itertools.count(1)


@pytest.fixture
def stream(nats_url) -> str:  # noqa: F811
    return f"{nats_url}/r{next(_streams)}"


async def replay_snapshot(ws) -> P.Snapshot:
    """The next whole snapshot on a replay connection (its parts merged)."""
    parts: list = []
    for _ in range(200):
        m = P.decode(await asyncio.wait_for(ws.recv(), 10), max_size=1 << 30)
        if isinstance(m, P.Snapshot):
            parts.append(m)
            if len(parts) == m.parts:
                return P.Snapshot(seq=m.seq, part=0, parts=1, data=P.merge_snapshot_parts([p.data for p in parts]))
    raise AssertionError("no snapshot")


def names_at(k: int) -> dict[str, str]:
    """Store id -> name after batches 1..k (batch i renames store i % 7 to v<i>)."""
    return {f"s{i % 7}": f"v{i}" for i in range(1, k + 1)}


async def publish_timed(hub, n: int, first: int = 1) -> dict[int, float]:
    """Batches first..n, one event each; the moment after each was acked (before the next)."""
    moments = {}
    for i in range(first, n + 1):
        [ack] = await publish(hub, [([store(i % 7, f"v{i}")], "p", i)])
        assert isinstance(ack, P.Ack) and ack.last == i
        await asyncio.sleep(0.003)
        moments[i] = time.time()
        await asyncio.sleep(0.003)
    return moments


def on_hub(stream: str, body, **kw) -> None:
    """Run ``await body(hub)`` with a hub on ``stream`` (compaction every 10 events)."""
    hub = hub_on(stream, **{"compact_every": 10, "keep_events": 10_000, **kw})

    async def go() -> None:
        await hub.astart()
        try:
            await body(hub)
        finally:
            await hub.astop()
    asyncio.run(go())


async def eventually(cond, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        await asyncio.sleep(0.05)
    assert cond()


def test_a_replay_on_jetstream_shows_the_state_at_a_moment_and_seeks(stream):
    async def body(a) -> None:
        moments = await publish_timed(a, 45)
        await caught_up([a], 45)
        await eventually(lambda: a.journal.replay.stored >= 3)
        h = await asyncio.to_thread(a.journal.history, moments[17])   # from a replay snapshot
        base = h.snapshot["seq"]
        assert 10 <= base <= 17 and [e["seq"] for e in h.events] == list(range(base + 1, 18))
        with pytest.raises(RuntimeError, match="call it from a worker thread"):
            a.journal.history(moments[17])                            # never on the loop
        async with connect(a.url) as ws:
            await ws.send(P.encode(P.Hello(at=moments[17], speed=0, wall="rewind")))
            welcome = P.decode(await asyncio.wait_for(ws.recv(), 10))
            assert welcome.replay is True and welcome.at == pytest.approx(moments[17])
            snap = await replay_snapshot(ws)
            assert snap.seq == 17
            assert {s["id"]: s["name"] for s in snap.data["stores"]} == names_at(17)
            for k in (3, 31, 44):
                await ws.send(P.encode(P.Seek(at=moments[k])))
                snap = await replay_snapshot(ws)
                assert snap.seq == k and {s["id"]: s["name"] for s in snap.data["stores"]} == names_at(k)
            await ws.send(P.encode(P.Seek(at=moments[1] - 30)))   # before the log: its start
            assert (await replay_snapshot(ws)).seq == 0
        # a hub that joins later follows the replay index and serves the same moments
        c = hub_on(stream)
        await c.astart()
        try:
            assert len(c.journal.replay.entries) >= 3
            async with connect(c.url) as ws:
                await ws.send(P.encode(P.Hello(at=moments[26], speed=0)))
                P.decode(await asyncio.wait_for(ws.recv(), 10))
                snap = await replay_snapshot(ws)
                assert snap.seq == 26 and {s["id"]: s["name"] for s in snap.data["stores"]} == names_at(26)
        finally:
            await c.astop()
    on_hub(stream, body)


def test_a_replay_on_jetstream_plays_the_events_after_its_moment(stream):
    async def body(a) -> None:
        moments = await publish_timed(a, 12)
        async with connect(a.url) as ws:
            await ws.send(P.encode(P.Hello(at=moments[5], speed=P.MAX_REPLAY_SPEED)))
            P.decode(await asyncio.wait_for(ws.recv(), 10))
            assert (await replay_snapshot(ws)).seq == 5
            got: list[int] = []
            end = time.monotonic() + 10
            while (not got or got[-1] < 12) and time.monotonic() < end:
                m = P.decode(await asyncio.wait_for(ws.recv(), 10))
                if isinstance(m, P.Events):
                    got.extend(e["seq"] for e in m.events)
            assert got == list(range(6, 13))
    on_hub(stream, body)


def test_compaction_trims_the_replay_stream_with_the_log(stream):
    async def body(a) -> None:
        await publish_timed(a, 60)
        await eventually(lambda: a.journal.first_kept >= 30 and a.journal.replay.stored >= 4)
        entries = a.journal.replay.entries
        assert entries and entries[0][0] < a.journal.first_kept        # the one the first kept event needs
        assert len(entries) < a.journal.replay.stored                   # older ones are gone
        info = await a.journal._js.stream_info(a.journal.replay.stream)
        assert info.state.first_seq >= min(entries[0][2])
    on_hub(stream, body, keep_events=5, keep_s=0)


def test_past_the_budget_replay_snapshots_are_thinned_and_early_moments_still_replay(stream):
    async def body(a) -> None:
        replay = a.journal.replay
        moments = await publish_timed(a, 12)
        await eventually(lambda: bool(replay.entries))
        first = replay.entries[0]
        replay.budget = int(3.5 * first[3])              # room for three of that size
        moments.update(await publish_timed(a, 60, first=13))
        await eventually(lambda: replay.stored >= 5)
        await asyncio.sleep(0.5)
        assert replay.thinned >= 2 and len(replay.entries) <= 3
        assert replay.entries[0] == first                  # the oldest stays
        for k in (11, 35, 59):
            h = await asyncio.to_thread(a.journal.history, moments[k])
            assert h.seq == k and h.snapshot is not None and h.snapshot["seq"] <= k
    on_hub(stream, body)



def test_a_new_epoch_of_the_log_purges_the_old_replay_snapshots(stream):
    import nats

    async def first(a) -> None:
        await publish_timed(a, 25)
        await eventually(lambda: a.journal.replay.stored >= 2)

    on_hub(stream, first)
    server, name = stream.rsplit("/", 1)

    async def recreate() -> None:
        nc = await nats.connect(server)
        try:
            await nc.jetstream().delete_stream(name)       # the log is made anew: a new epoch
        finally:
            await nc.close()
    asyncio.run(recreate())

    async def second(b) -> None:
        assert b.journal.replay.entries == []
        info = await b.journal._js.stream_info(b.journal.replay.stream)
        assert info.state.messages == 0 and info.config.description.endswith(b.journal.epoch)
    on_hub(stream, second)
