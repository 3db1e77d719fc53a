"""Several hubs on one NATS JetStream stream (issue 15): a real nats-server (one node, on
a free loopback port) per module; each test its own stream. Skipped, naming where it
looked, only when no nats-server binary is found."""
from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect

from wallboard import protocol as P
from wallboard.hub.auth import Auth
from wallboard.hub.jetstream import parse_nats_url
from wallboard.hub.journal import open_journal
from wallboard.hub.journal_guard import JournalRefused
from wallboard.hub.nats_local import LocalNats, find_nats_server, missing_reason
from wallboard.hub.server import Hub, HubConfig

pytestmark = pytest.mark.timeout(90)
_streams = itertools.count(1)


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory):
    pytest.importorskip("nats", reason="nats-py is not installed (pip install -e '.[cluster]')")
    if find_nats_server() is None:
        pytest.skip(missing_reason())
    server = LocalNats(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server.url
    server.close()


@pytest.fixture
def stream(nats_url) -> str:
    return f"{nats_url}/t{next(_streams)}"


def store(i: int, name: str = "") -> dict[str, Any]:
    return {"type": "store", "id": f"s{i}", "name": name or f"Store {i}", "status": "open", "ts": 1000.0 + i}


def hub_on(url: str, **kw: Any) -> Hub:
    return Hub(HubConfig(port=0, journal=url, **kw), auth=Auth())


async def publish(hub: Hub, batches: list[tuple[list[dict], str | None, int | None]]) -> list[P.Message]:
    out = []
    async with connect(hub.publish_url) as ws:
        for events, producer, batch in batches:
            await ws.send(P.encode(P.Publish(events=events, producer=producer, batch=batch)))
            out.append(P.decode(await asyncio.wait_for(ws.recv(), 10)))
    return out


async def caught_up(hubs: list[Hub], seq: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while any(h.state.seq < seq for h in hubs) and time.monotonic() < end:
        await asyncio.sleep(0.02)
    assert [h.state.seq for h in hubs] == [seq] * len(hubs)


async def wall_events(hub: Hub, since: int, upto: int, epoch: str | None = None) -> tuple[P.Welcome, list[Any]]:
    """A wall on ``hub`` resuming after ``since``: the welcome and what it got up to ``upto``."""
    got: list[Any] = []
    async with connect(hub.url) as ws:
        await ws.send(P.encode(P.Hello(since=since, epoch=epoch)))
        welcome = P.decode(await asyncio.wait_for(ws.recv(), 10))
        assert isinstance(welcome, P.Welcome)
        end = time.monotonic() + 10
        while time.monotonic() < end and not (got and isinstance(got[-1], dict) and got[-1]["seq"] >= upto):
            m = P.decode(await asyncio.wait_for(ws.recv(), 10))
            if isinstance(m, P.Events):
                got.extend(m.events)
            elif isinstance(m, P.Snapshot):
                got.append(m)
    return welcome, got


# ---------------------------------------------------------------- no server needed
@pytest.mark.parametrize("url, message", [
    ("nats://127.0.0.1:4222", "no stream name"),
    ("nats://127.0.0.1:4222/", "no stream name"),
    ("nats://127.0.0.1:4222/bad.name", "stream name 'bad.name': expected 1-64 of A-Z a-z 0-9 _ -"),
    ("nats://127.0.0.1/wb", "server '127.0.0.1': expected HOST:PORT"),
    ("nats://127.0.0.1:4222,:99/wb", "server ':99': expected HOST:PORT"),
    ("nats://127.0.0.1:70000/wb", "server '127.0.0.1:70000': expected HOST:PORT"),
])
def test_bad_nats_urls_are_named(url, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_nats_url(url)
    with pytest.raises(ValueError, match="no stream name|stream name|expected HOST:PORT"):
        HubConfig(journal=url).validate()


def test_cluster_urls_parse():
    t = parse_nats_url("nats://127.0.0.1:4222,127.0.0.1:4223/wallboard")
    assert t.servers == ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"] and t.stream == "wallboard"
    HubConfig(journal="nats://127.0.0.1:4222/wallboard", replicas=3).validate()
    with pytest.raises(ValueError, match=r"hub option replicas=0: expected 1..5"):
        HubConfig(replicas=0).validate()


def test_other_urls_are_refused():
    with pytest.raises(JournalRefused, match="expected a SQLite file path or nats://HOST:PORT/STREAM"):
        open_journal("http://127.0.0.1/x")


def test_unreachable_nats_is_refused_in_one_line():
    from wallboard.hub.nats_local import free_port

    pytest.importorskip("nats")
    hub = Hub(HubConfig(port=0, journal=f"nats://127.0.0.1:{free_port()}/wb"), auth=Auth())
    hub.journal = open_journal(hub.config.journal)
    hub.journal.connect_timeout = 0.5   # type: ignore[attr-defined]

    async def go() -> None:
        with pytest.raises(JournalRefused, match="cannot reach NATS"):
            await hub.astart()
    asyncio.run(go())


# ---------------------------------------------------------------- a real server
def test_two_hubs_serve_one_sequence(stream):
    a, b = hub_on(stream), hub_on(stream)

    async def go() -> None:
        await a.astart()
        await b.astart()
        try:
            assert a.journal.epoch == b.journal.epoch
            # both take producers at once: the stream orders their batches
            acks = await asyncio.gather(publish(a, [([store(i)], "pa", i) for i in range(20)]),
                                        publish(b, [([store(100 + i)], "pb", i) for i in range(20)]))
            ranges = sorted((m.first, m.last) for ms in acks for m in ms)
            assert ranges == [(i, i) for i in range(1, 41)]   # contiguous, each seq once
            await caught_up([a, b], 40)
            assert a.state.snapshot()["stores"] == b.state.snapshot()["stores"]
            # a wall that was on a up to seq 25 resumes on b: the rest, no snapshot
            _, got = await wall_events(b, 25, 40, epoch=a.journal.epoch)
            assert [e["seq"] for e in got] == list(range(26, 41))
            _, got_a = await wall_events(a, 25, 40, epoch=a.journal.epoch)
            assert got_a == got
        finally:
            await a.astop()
            await b.astop()
    asyncio.run(go())


def test_a_resend_to_another_hub_is_a_duplicate_and_other_events_a_conflict(stream):
    a, b = hub_on(stream), hub_on(stream)

    async def go() -> None:
        await a.astart()
        await b.astart()
        try:
            [first] = await publish(a, [([store(1), store(2)], "p", 7)])
            assert isinstance(first, P.Ack) and (first.first, first.last, first.duplicate) == (1, 2, False)
            [again] = await publish(b, [([store(1), store(2)], "p", 7)])
            assert isinstance(again, P.Ack) and (again.first, again.last, again.duplicate) == (1, 2, True)
            [other] = await publish(b, [([store(3)], "p", 7)])
            assert isinstance(other, P.Error) and other.code == "conflict"
            assert "committed as seq 1..2 with other events" in other.message
            await caught_up([a, b], 2)
            assert b.journal.last_seq == 2
        finally:
            await a.astop()
            await b.astop()
    asyncio.run(go())


def test_concurrent_appends_race_and_stay_contiguous(stream):
    """Two logs append groups at once: each batch lands once, seqs contiguous (the loser
    of a race numbers its batch again after the winner's record)."""
    from wallboard.hub.batches import Batch, batch_digest
    from wallboard.hub.log import EventLog

    async def go() -> None:
        logs = [EventLog(open_journal(stream)) for _ in range(2)]
        for lg in logs:
            await lg.start()
        try:
            async def writer(k: int) -> list[tuple[int, int]]:
                out = []
                for g in range(15):
                    batch = [Batch([store(1000 * k + 10 * g + j)], f"w{k}", 10 * g + j,
                                   batch_digest([store(1000 * k + 10 * g + j)])) for j in range(3)]
                    done = await logs[k].append_group(batch)
                    out.extend(o.range for o in done.outcomes)
                return out
            got = await asyncio.gather(writer(0), writer(1))
            ranges = sorted(r for rs in got for r in rs)
            assert ranges == [(i, i) for i in range(1, 91)]
            events = await logs[0].read(0, 200)
            assert [e["seq"] for e in events] == list(range(1, 91))
            assert len({e["id"] for e in events}) == 90
        finally:
            for lg in logs:
                await lg.aclose()
    asyncio.run(go())


def test_a_new_hub_starts_from_the_snapshot_and_the_tail(stream):
    a = hub_on(stream, compact_every=50, keep_events=20, keep_s=0)

    async def go() -> None:
        await a.astart()
        try:
            acks = await publish(a, [([store(i % 30, f"v{i}")], "p", i) for i in range(1, 121)])
            assert all(isinstance(m, P.Ack) for m in acks), acks[0]
            await caught_up([a], 120)
            end = time.monotonic() + 10
            while a.counters.get("compactions", 0) < 2 and time.monotonic() < end:
                await asyncio.sleep(0.05)
            assert a.counters.get("compactions", 0) >= 2
            assert a.eventlog.first_kept() > 1
            c = hub_on(stream)
            t0 = time.monotonic()
            await c.astart()
            try:
                started = time.monotonic() - t0
                assert c.state.seq == 120 and c.state.snapshot()["stores"] == a.state.snapshot()["stores"]
                assert c._compacted_at >= 50, "the new hub started from the stored snapshot"
                assert started < 10
                # the key record came with the snapshot: a resend of batch 3 is a duplicate
                [dup] = await publish(c, [([store(3, "v3")], "p", 3)])
                assert isinstance(dup, P.Ack) and dup.duplicate and dup.first == 3
                # a wall that is far behind (compacted away) gets a snapshot
                _, got = await wall_events(c, 1, 120, epoch=c.journal.epoch)
                assert isinstance(got[0], P.Snapshot)
            finally:
                await c.astop()
        finally:
            await a.astop()
    asyncio.run(go())


def test_a_hub_restarted_on_the_stream_rebuilds_its_state(stream):
    async def go() -> None:
        a = hub_on(stream)
        await a.astart()
        try:
            await publish(a, [([store(i)], None, None) for i in range(5)])
            await caught_up([a], 5)
            epoch = a.journal.epoch
        finally:
            await a.astop()
        again = hub_on(stream)
        await again.astart()
        try:
            assert again.seq == 5 and again.journal.epoch == epoch and len(again.state.stores) == 5
        finally:
            await again.astop()
    asyncio.run(go())


def test_a_stream_that_is_not_a_wallboard_log_is_refused(nats_url):
    import nats

    async def go() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().add_stream(name="foreign1", subjects=["foreign.x"])
        finally:
            await nc.close()
        hub = hub_on(f"{nats_url}/foreign1")
        with pytest.raises(JournalRefused, match="stream foreign1 is not a wallboard log"):
            await hub.astart()
    asyncio.run(go())


# ---------------------------------------------------------------- walls and record on several hubs
def test_feed_urls_are_checked_one_by_one():
    from wallboard.feed import FeedClient, feed_urls

    assert feed_urls("ws://a:1/feed, ws://b:2/feed") == ["ws://a:1/feed", "ws://b:2/feed"]
    with pytest.raises(ValueError, match=r"feed URL 'http://b:2/feed': expected ws://HOST:PORT/feed or wss://\.\.\. "
                       r"\(several: comma-separated\)"):
        feed_urls("ws://a:1/feed,http://b:2/feed")
    with pytest.raises(ValueError, match="feed URL '': expected"):
        FeedClient("ws://a:1/feed,")


def test_a_wall_moves_to_another_hub_and_resumes_from_its_seq(stream):
    from wallboard.feed import FeedClient

    a, b = hub_on(stream, heartbeat_s=0.2), hub_on(stream, heartbeat_s=0.2)
    a.start_in_thread()
    b.start_in_thread()
    client = FeedClient(f"{a.url},{b.url}", healthy_s=0.1)
    items: list[tuple[str, Any]] = []

    def wait_seq(seq: int) -> None:
        end = time.monotonic() + 15
        while time.monotonic() < end and client.state.seq < seq:
            items.extend(client.drain(1000))
            time.sleep(0.02)
        items.extend(client.drain(1000))
        assert client.state.seq == seq

    try:
        client.start()
        asyncio.run_coroutine_threadsafe(publish(a, [([store(i)], "p", i) for i in range(1, 11)]), a.loop).result(20)
        wait_seq(10)
        assert client.state.hub == a.hub_id and client.state.host_port == f"127.0.0.1:{a.port}"
        snapshots_before = sum(1 for k, _ in items if k == "snapshot")
        a.stop()   # its walls lose it
        asyncio.run_coroutine_threadsafe(publish(b, [([store(i)], "p", i) for i in range(11, 21)]), b.loop).result(20)
        wait_seq(20)
        assert client.state.hub == b.hub_id and client.state.host_port == f"127.0.0.1:{b.port}"
        assert sum(1 for k, _ in items if k == "snapshot") == snapshots_before, "resumed, no snapshot"
        seqs = [e["seq"] for k, p in items if k == "events" for e in p]
        assert seqs[-10:] == list(range(11, 21)) and len(seqs) == len(set(seqs))
    finally:
        client.stop()
        a.stop()
        b.stop()


def test_record_goes_on_from_another_hub(stream, tmp_path):
    import orjson

    from wallboard.hub.record import record

    a, b = hub_on(stream), hub_on(stream)
    a.start_in_thread()
    b.start_in_thread()
    out = tmp_path / "rec.jsonl"
    try:
        asyncio.run_coroutine_threadsafe(publish(a, [([store(i)], "p", i) for i in range(1, 6)]), a.loop).result(20)

        async def go() -> int:
            task = asyncio.create_task(record(f"{a.url},{b.url}", out, max_events=10, duration=20))
            end = time.monotonic() + 10
            while time.monotonic() < end and (not out.exists() or len(out.read_text().splitlines()) < 2):
                await asyncio.sleep(0.05)
            await asyncio.to_thread(a.stop)
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
                publish(b, [([store(i)], "p", i) for i in range(6, 11)]), b.loop))
            return await task
        asyncio.run(go())
        lines = [orjson.loads(x) for x in out.read_text().splitlines()]
        seqs = [x["seq"] for x in lines if x.get("op") != "snapshot"]
        snap = [x["seq"] for x in lines if x.get("op") == "snapshot"]
        assert sorted(set(seqs)) == [s for s in range(1, 11) if not snap or s > snap[0]]
        assert len(seqs) == len(set(seqs)) and len(snap) <= 1
    finally:
        a.stop()
        b.stop()


def test_the_header_names_the_hub(qapp):
    from wallboard.app.i18n import register

    register()   # the shell's translations
    from wallboard.app.header import HeaderBar, HeaderStatus

    status = HeaderStatus(title="t", now=0.0, starts_at=None, feed_state="LIVE", data_age_s=None, events_per_s=0,
                          rejects=0, last_reject="", hub="hub-b (127.0.0.1:8766)")
    bar = HeaderBar(lang="en")
    bar.update_status(status)
    assert bar.texts()[3] == "LIVE · hub hub-b (127.0.0.1:8766)"
    zh = HeaderBar(lang="zh")
    zh.update_status(status)
    assert "服务节点 hub-b (127.0.0.1:8766)" in zh.texts()[3]


def test_without_nats_py_the_journal_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "nats", None)   # import nats -> ImportError
    with pytest.raises(JournalRefused, match=r"the JetStream log needs nats-py: pip install 'wallboard\[cluster\]'"):
        open_journal("nats://127.0.0.1:4222/wb")


def test_a_batch_larger_than_the_servers_max_payload_is_refused_alone(stream):
    from wallboard.hub.batches import Batch, BatchRefused
    from wallboard.hub.log import EventLog

    async def go() -> None:
        lg = EventLog(open_journal(stream))
        await lg.start()
        try:
            big = [dict(store(i), name="x" * 400_000) for i in range(25)]    # ~10 MB as one record
            done = await lg.append_group([Batch([store(1)]), Batch(big), Batch([store(2)])])
            small1, refused, small2 = done.outcomes
            assert isinstance(refused, BatchRefused) and refused.code == "too_large"
            assert "the NATS server takes at most 8388608 (max_payload): send smaller batches" in refused.message
            assert small1.range == (1, 1) and small2.range == (2, 2)
            assert all("seq" not in e for e in big)
        finally:
            await lg.aclose()
    asyncio.run(go())


def test_a_stream_trimmed_past_its_snapshot_is_refused(nats_url):
    import nats

    url = f"{nats_url}/trimmed1"

    async def go() -> None:
        a = hub_on(url)
        await a.astart()
        try:
            await publish(a, [([store(i)], None, None) for i in range(5)])
        finally:
            await a.astop()
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().purge_stream("trimmed1", seq=4)   # not the hub's compaction: no snapshot
        finally:
            await nc.close()
        again = hub_on(url)
        with pytest.raises(JournalRefused, match="the stream starts at record 4 but the newest snapshot covers "
                           "records up to 0 only"):
            await again.astart()
    asyncio.run(go())


def test_not_ready_answers_are_told_from_refusals():
    pytest.importorskip("nats", reason="nats-py is not installed (pip install -e '.[cluster]')")
    from nats.errors import NoRespondersError, TimeoutError as NatsTimeout
    from nats.js.errors import APIError, NoStreamResponseError, NotFoundError, ServiceUnavailableError

    from wallboard.hub.jetstream import _not_ready

    for e in (NatsTimeout(), NoRespondersError(), NoStreamResponseError(), ServiceUnavailableError(code=503),
              APIError(code=500, err_code=10008), APIError(code=500, err_code=10005)):
        assert _not_ready(e), e
    for e in (NotFoundError(code=404, err_code=10059), APIError(code=400, err_code=10074), ValueError("x")):
        assert not _not_ready(e), e


def test_a_stream_the_server_cannot_replicate_is_refused_at_once(nats_url):
    async def go() -> None:
        j = open_journal(f"{nats_url}/r{next(_streams)}", replicas=3)
        t0 = time.monotonic()
        with pytest.raises(JournalRefused, match=r"refused to create stream r\d+ with 3 replica\(s\): replicas > 1 "
                                                 r"not supported in non-clustered mode \(err_code 10074\)"):
            await j.start()
        assert time.monotonic() - t0 < 5   # a refusal, not a wait for a cluster that is forming

    asyncio.run(go())


def test_a_starting_hub_waits_for_a_forming_cluster_and_says_so(stream, monkeypatch, caplog):
    from nats.js.errors import NoStreamResponseError

    from wallboard.hub import jetstream

    real = jetstream.JetStreamJournal._ensure_stream
    calls = []

    async def forming(self, api):
        calls.append(1)
        if len(calls) < 3:   # the stream's leader is not elected yet
            raise NoStreamResponseError()
        return await real(self, api)

    monkeypatch.setattr(jetstream.JetStreamJournal, "_ensure_stream", forming)

    async def go() -> None:
        j = open_journal(stream)
        await j.start()
        await j.aclose()

    with caplog.at_level("WARNING", logger="wallboard.hub.jetstream"):
        asyncio.run(go())
    assert len(calls) == 3
    said = [r.getMessage() for r in caplog.records if "not ready" in r.getMessage()]
    assert len(said) == 1 and "NoStreamResponseError" in said[0] and "retrying for up to" in said[0]


def test_a_cluster_that_never_gets_ready_is_refused_after_the_wait(stream, monkeypatch):
    from nats.errors import NoRespondersError

    from wallboard.hub import jetstream

    async def never(self, api):
        raise NoRespondersError()

    monkeypatch.setattr(jetstream.JetStreamJournal, "_ensure_stream", never)

    async def go() -> None:
        j = jetstream.JetStreamJournal(stream, start_wait_s=1.0)
        with pytest.raises(JournalRefused, match=r"JetStream refused \(NoRespondersError: .*\) \(still not ready "
                                                 r"after 1 s\)"):
            await j.start()

    asyncio.run(go())


def test_a_hub_asking_other_replicas_than_the_stream_has_says_so(stream, caplog):
    async def go() -> None:
        first = open_journal(stream)             # creates it with 1 replica
        await first.start()
        await first.aclose()
        second = open_journal(stream, replicas=3)   # --replicas acts at creation only
        await second.start()
        await second.aclose()

    with caplog.at_level("WARNING", logger="wallboard.hub.jetstream"):
        asyncio.run(go())
    said = [r.getMessage() for r in caplog.records if "replica(s), not the 3 of --replicas" in r.getMessage()]
    assert len(said) == 1 and "kept as it is" in said[0]
