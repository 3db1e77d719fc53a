"""Notification sinks on a real hub (--sources [[sink]]): incident open / acknowledge /
resolve reach a local DingTalk-shaped robot that checks the signature itself, WeCom and a
JSON webhook; filters, retries with back-off, permanent refusals on the walls' status
line and in /metrics, a full queue dropping and counting, messages in English and Chinese."""
from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from robot_receiver import TOKEN, RobotReceiver, expected_sign
from wallboard import protocol as P
from wallboard.hub.auth import Auth
from wallboard.hub.server import Hub, HubConfig
from wallboard.hub.sinks import Notification, dingtalk_sign, render, signed_url
from wallboard.hub.sinks import notifier as N
from wallboard.hub.sinks.robots import verdict
from wallboard.hub.sources import parse_sources

SECRET = "SEC7d3c0a9b1e2f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0"
STORES = [{"type": "store", "id": "hz-001", "name": "杭州西湖店", "name_en": "Hangzhou West Lake",
           "city": {"id": "hz", "name": "杭州"}},
          {"type": "store", "id": "sh-002", "name": "上海徐汇店", "name_en": "Shanghai Xuhui",
           "city": {"id": "sh", "name": "上海"}}]


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


async def until(pred: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.02)


def incident(iid: str, sev: str, status: str, stores: list[str], **kw: Any) -> dict[str, Any]:
    return {"type": "incident", "id": iid, "title": f"{iid} payment failures", "severity": sev, "status": status,
            "stores": stores, **kw}


@contextlib.asynccontextmanager
async def robot_and_hub(tmp_path: Path, sinks: Callable[[RobotReceiver], str],
                        **robot: Any) -> AsyncIterator[tuple[RobotReceiver, Hub]]:
    """A local robot, and a hub whose --sources file is ``sinks(robot)`` (with the stores)."""
    receiver = await RobotReceiver(**robot).start()
    f = tmp_path / "sources.toml"
    f.write_text(sinks(receiver))
    hub = Hub(HubConfig(host="127.0.0.1", port=0, sources=str(f)), auth=Auth())
    await hub.astart()
    try:
        await hub.submit([dict(s) for s in STORES])
        yield receiver, hub
    finally:
        await hub.astop()
        await receiver.stop()


def dingtalk(robot: RobotReceiver, secret: str, extra: str = "") -> str:
    return (f'[[sink]]\nname = "duty"\nkind = "dingtalk"\nurl = "{robot.base}/robot/send?access_token={TOKEN}"\n'
            f'secret = "{secret}"\n{extra}')


def test_dingtalk_signature_matches_dingtalk_docs_formula():
    ts = 1764658800123
    assert dingtalk_sign(SECRET, ts) == __import__("urllib.parse").parse.quote_plus(expected_sign(SECRET, str(ts)))
    url = signed_url("https://oapi.dingtalk.com/robot/send?access_token=x", SECRET, ts)
    assert url.startswith(f"https://oapi.dingtalk.com/robot/send?access_token=x&timestamp={ts}&sign=")
    assert "+" not in url.split("sign=")[1] and "/" not in url.split("sign=")[1]


def test_p1_reaches_a_dingtalk_shaped_robot_signed_in_chinese_then_ack_and_resolve(tmp_path, monkeypatch):
    monkeypatch.setattr(N, "BACKOFF_S", 0.01)

    async def main() -> None:
        async with robot_and_hub(tmp_path, lambda r: dingtalk(r, SECRET, 'min_severity = "P2"\nlang = "zh"\n'),
                                 secret=SECRET) as (robot, hub):
            await hub.submit([incident("inc-1", "P1", "open", ["hz-001"], owner="支付组", opened_at=time.time() - 600)])
            await hub.submit([incident("inc-2", "P3", "open", ["hz-001"])])  # below min_severity: not sent
            await until(lambda: len(robot.received) == 1, "the P1 at the robot")
            got = robot.received[0]
            assert got.signed is True and robot.refused == []
            md = got.body["markdown"]
            assert got.body["msgtype"] == "markdown" and md["title"] == "【P1】新事件：inc-1 payment failures"
            assert "门店：杭州西湖店" in md["text"] and "负责人：支付组" in md["text"] and "事件编号：inc-1" in md["text"]
            await hub.submit([{"type": "incident", "id": "inc-1", "status": "acknowledged",
                               "acknowledged_at": time.time()}])
            await hub.submit([{"type": "incident", "id": "inc-1", "status": "resolved", "resolved_at": time.time()}])
            await until(lambda: len(robot.received) == 3, "acknowledge and resolve at the robot")
            titles = [r.body["markdown"]["title"] for r in robot.received]
            assert titles[1:] == ["【P1】已确认：inc-1 payment failures", "【P1】已解决：inc-1 payment failures"]
            assert "持续：10 分钟" in robot.received[2].body["markdown"]["text"]
            assert all(r.signed for r in robot.received)
            w = hub.sources.notifier.workers[0]
            assert (w.health.sent, w.health.failed, w.health.dropped) == (3, 0, 0)
    run(main())


def test_wecom_webhook_scopes_and_retries(tmp_path, monkeypatch):
    monkeypatch.setattr(N, "BACKOFF_S", 0.01)

    def sinks(robot: RobotReceiver) -> str:
        return (f'[[sink]]\nkind = "wecom"\nurl = "{robot.base}/cgi-bin/webhook/send?key=k"\nscopes = ["city:sh"]\n'
                f'events = ["open"]\n\n[[sink]]\nkind = "webhook"\nurl = "{robot.base}/hook"\n')

    async def main() -> None:
        async with robot_and_hub(tmp_path, sinks, fail_first=2) as (robot, hub):
            await hub.submit([incident("inc-hz", "P2", "open", ["hz-001"])])   # webhook only (wecom: city sh)
            await hub.submit([incident("inc-sh", "P4", "open", ["sh-002"])])   # both
            await hub.submit([{"type": "incident", "id": "inc-sh", "status": "resolved"}])  # webhook only
            await until(lambda: len(robot.received) == 4, "four deliveries after two HTTP 500s")
            wecom = [r.body for r in robot.received if r.path == "wecom"]
            hook = [r.body for r in robot.received if r.path == "hook"]
            assert [b["markdown"]["content"].split("\n")[0] for b in wecom] == ["[P4] OPEN: inc-sh payment failures"]
            assert "Stores: Shanghai Xuhui" in wecom[0]["markdown"]["content"]
            assert sorted((b["kind"], b["incident"]["id"]) for b in hook) == [
                ("open", "inc-hz"), ("open", "inc-sh"), ("resolve", "inc-sh")]
            assert all(b["text"].startswith("[P") for b in hook)  # Slack-compatible {"text": ...}
            retried = sum(w.health.retried for w in hub.sources.notifier.workers)
            assert retried == 2 and all(w.health.failed == 0 for w in hub.sources.notifier.workers)
    run(main())


def test_a_wrong_secret_fails_at_once_and_shows_in_stats_notices_and_metrics(tmp_path, monkeypatch):
    monkeypatch.setattr(N, "BACKOFF_S", 0.01)

    async def main() -> None:
        async with robot_and_hub(tmp_path, lambda r: dingtalk(r, "SECwrong"), secret=SECRET) as (robot, hub):
            await hub.submit([incident("inc-1", "P1", "open", ["hz-001"])])
            w = hub.sources.notifier.workers[0]
            await until(lambda: w.health.failed == 1, "the refusal")
            assert robot.refused == ["sign"] and w.health.retried == 0  # not retried: a resend cannot fix it
            assert hub.sources.notices() == [{"kind": "sink", "name": "duty",
                                              "error": "errcode 310000: sign not match, more: [...]"}]
            fams = {f.name: f for f in text_string_to_metric_families(hub.metrics.render().decode())}
            value = {(s.name, s.labels.get("sink")): s.value for f in fams.values() for s in f.samples}
            assert value[("wallboard_sink_failed_total", "duty")] == 1
            assert value[("wallboard_sink_sent_total", "duty")] == 0
    run(main())


def test_a_full_queue_drops_and_counts_without_waiting():
    cfg = parse_sources('[[sink]]\nkind = "webhook"\nurl = "http://127.0.0.1:9/hook"\nqueue = 2\n').sinks[0]

    async def main() -> None:
        w = N.SinkWorker(cfg)  # not started: nothing drains the queue
        n = Notification("open", {"id": "i", "severity": "P1"})
        t0 = time.perf_counter()
        assert [w.offer(n) for _ in range(5)] == [True, True, False, False, False]
        assert time.perf_counter() - t0 < 1.0 and (w.health.queued, w.health.dropped) == (2, 3)
    run(main())


def test_filters_and_transitions():
    cfg = parse_sources('[[sink]]\nkind = "webhook"\nurl = "https://x/hook"\nmin_severity = "P2"\n'
                        'events = ["open", "resolve"]\nscopes = ["store:hz-001", "city:sh"]\n').sinks[0]

    async def main() -> None:
        w = N.SinkWorker(cfg)
        city_of = {"sh-002": "sh", "hz-001": "hz"}

        def wants(kind: str, sev: str, stores: list[str]) -> bool:
            return w.wants(Notification(kind, {"id": "i", "severity": sev, "stores": stores}), city_of)
        assert wants("open", "P1", ["hz-001"]) and wants("open", "P2", ["sh-002"])
        assert not wants("open", "P3", ["hz-001"]) and not wants("acknowledge", "P1", ["hz-001"])
        assert not wants("open", "P1", ["bj-003"]) and not wants("open", "P1", [])
    run(main())


def test_english_and_chinese_text():
    inc = {"id": "inc-9", "title": "Scales offline", "severity": "P2", "stores": [f"s{i}" for i in range(7)],
           "opened_at": 1000.0, "resolved_at": 1000.0 + 3 * 3600 + 5 * 60, "x_source": "zabbix"}
    title, text = render(Notification("resolve", inc, {"s0": "Store Zero"}), "en")
    assert title == "[P2] RESOLVED: Scales offline"
    assert text.split("\n")[1:] == ["Stores: Store Zero, s1, s2, s3, s4 (+2 more)", "Open for: 3 h 5 min",
                                    "Source: zabbix", "Incident: inc-9"]
    title, text = render(Notification("resolve", inc, {"s0": "零号店"}), "zh")
    assert title == "【P2】已解决：Scales offline"
    assert text.split("\n")[1:3] == ["门店：零号店、s1、s2、s3、s4 (+2 等)", "持续：3 小时 5 分钟"]


@pytest.mark.parametrize("kind, status, body, want", [
    ("dingtalk", 200, b'{"errcode":0,"errmsg":"ok"}', "ok"),
    ("dingtalk", 200, b'{"errcode":130101,"errmsg":"send too fast"}', "retry"),
    ("dingtalk", 200, b'{"errcode":310000,"errmsg":"sign not match"}', "fail"),
    ("wecom", 200, b'{"errcode":45009,"errmsg":"api freq out of limit"}', "retry"),
    ("wecom", 200, b"<html>", "fail"),
    ("webhook", 204, b"", "ok"),
    ("webhook", 429, b"", "retry"),
    ("webhook", 503, b"", "retry"),
    ("webhook", 404, b"no such hook", "fail"),
])
def test_verdicts(kind, status, body, want):
    assert verdict(kind, status, body)[0] == want


def test_stats_notices_round_trip_the_wire():
    frame = P.encode(P.Stats(counters={"seq": 1}, notices=[{"kind": "source", "name": "prometheus/main",
                                                            "error": "cannot connect"}]))
    msg = P.decode(frame)
    assert msg.notices == [{"kind": "source", "name": "prometheus/main", "error": "cannot connect"}]
    assert P.decode(P.encode(P.Stats(counters={}))).notices is None
    with pytest.raises(P.ProtocolError, match="notices"):
        P.decode(b'{"op":"stats","counters":{},"notices":[{"kind":1}]}')


def test_the_rate_limit_holds_notifications_back_until_the_bucket_refills():
    """rate_per_min = 6: a burst of one, then one per 10 s (a fake clock here)."""
    from wallboard.hub.budget import TokenBucket

    async def main() -> None:
        robot = await RobotReceiver().start()
        try:
            cfg = parse_sources(f'[[sink]]\nkind = "webhook"\nurl = "{robot.base}/hook"\nrate_per_min = 6\n').sinks[0]
            w = N.SinkWorker(cfg)
            assert (w.bucket.rate, w.bucket.burst) == (0.1, 1.0)
            now = [1000.0]
            w.bucket = TokenBucket(0.1, 1.0, clock=lambda: now[0])
            w.start()
            for i in range(2):
                w.offer(Notification("open", {"id": f"i{i}", "severity": "P1"}))
            await until(lambda: len(robot.received) == 1, "the first (the burst)")
            for _ in range(5):  # the clock stands still: the second waits
                await asyncio.sleep(0.1)
            assert len(robot.received) == 1 and w.queue.qsize() == 0  # taken, waiting for a token
            now[0] += 10.0
            await until(lambda: len(robot.received) == 2, "the second, 10 s of the fake clock later")
            await w.stop()
        finally:
            await robot.stop()
    run(main())
