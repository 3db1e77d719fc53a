"""KPIs from Prometheus (--sources [[prometheus]]): result series -> kpi samples; a
failing source on the walls' stats notices and in /metrics; and the real thing: Debian's
prometheus scraping a tiny exporter this test starts, the hub's source querying it, the
KPI samples reaching a /feed subscriber."""
from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from conftest import end_process
from wallboard import protocol as P
from wallboard.hub.auth import Auth
from wallboard.hub.server import Hub, HubConfig
from wallboard.hub.sources import KpiQuery
from wallboard.hub.sources.prometheus import kpi_samples

PROMETHEUS = shutil.which("prometheus")


def run(coro: Any, timeout: float = 60) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- results -> samples


def test_vector_by_store_scalar_and_what_is_dropped():
    kq = KpiQuery("sum by (store) (q)", "queue", "store:{store}", "people")
    data = {"resultType": "vector", "result": [
        {"metric": {"store": "hz-001"}, "value": [1764658800.5, "12"]},
        {"metric": {"store": "sh-002"}, "value": [1764658800.5, "3.5"]},
        {"metric": {"city": "hz"}, "value": [1764658800.5, "1"]},
        {"metric": {"store": "bj-003"}, "value": [1764658800.5, "NaN"]},
        {"metric": {"store": "hz-001"}, "value": [1764658800.5, "13"]}]}
    got = kpi_samples(kq, data)
    assert got.events == [
        {"type": "kpi", "metric": "queue", "scope": "store:hz-001", "value": 12.0, "ts": 1764658800.5, "unit": "people"},
        {"type": "kpi", "metric": "queue", "scope": "store:sh-002", "value": 3.5, "ts": 1764658800.5, "unit": "people"}]
    assert got.dropped == 3 and got.problems == [
        "a series without the label 'store' ({city=\"hz\"})", "store:bj-003: value NaN is not a finite number",
        "several series for store:hz-001: aggregate by store (e.g. sum by (store) (...))"]
    for ev in got.events:
        P.validate_event(ev, require_seq=False, op="publish")
    scalar = kpi_samples(KpiQuery("scalar(x)", "m", "global"), {"resultType": "scalar", "result": [1.0, "7"]})
    assert [(e["scope"], e["value"]) for e in scalar.events] == [("global", 7.0)]
    with pytest.raises(ValueError, match="result type 'matrix': expected an instant vector or a scalar"):
        kpi_samples(KpiQuery("x[5m]", "m", "global"), {"resultType": "matrix", "result": []})


# --------------------------------------------------------------------------- a failing source


async def _feed_items(hub: Hub, want: Any, timeout: float = 20) -> Any:
    """Read a /feed connection until ``want(msg)`` returns something (returned)."""
    async with connect(hub.url) as ws:
        await ws.send(P.encode(P.Hello(token=None, since=None, wall="test-wall")).decode())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = P.decode(await asyncio.wait_for(ws.recv(), timeout))
            got = want(msg)
            if got:
                return got
    raise AssertionError(f"not on the feed within {timeout:g} s")


def _metrics(hub: Hub) -> dict[tuple[str, str], float]:
    fams = text_string_to_metric_families(hub.metrics.render().decode())
    return {(s.name, s.labels.get("source", "")): s.value for f in fams for s in f.samples}


def test_an_unreachable_prometheus_shows_on_the_walls_and_in_metrics(tmp_path):
    dead = free_port()  # nothing listens there
    f = tmp_path / "sources.toml"
    f.write_text(f'[[prometheus]]\nname = "main"\nurl = "http://127.0.0.1:{dead}"\ninterval_s = 1\n'
                 '[[prometheus.kpi]]\nquery = "sum(up)"\nmetric = "up"\n')

    async def main() -> None:
        hub = Hub(HubConfig(host="127.0.0.1", port=0, sources=str(f), stats_s=0.2), auth=Auth())
        await hub.astart()
        try:
            notices = await _feed_items(hub, lambda m: isinstance(m, P.Stats) and m.notices)
            assert notices[0]["kind"] == "source" and notices[0]["name"] == "prometheus/main"
            assert notices[0]["error"].startswith(f"cannot connect to http://127.0.0.1:{dead}")
            m = _metrics(hub)
            assert m[("wallboard_source_up", "prometheus/main")] == 0
            assert m[("wallboard_source_failures_total", "prometheus/main")] >= 1
        finally:
            await hub.astop()
    run(main())


# --------------------------------------------------------------------------- the real Prometheus


class _Exporter(BaseHTTPRequestHandler):
    queue = {"hz-001": 12, "sh-002": 4}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        lines = ["# TYPE shop_queue_length gauge"]
        lines += [f'shop_queue_length{{store="{s}"}} {v}' for s, v in self.queue.items()]
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def prometheus(tmp_path: Path) -> Any:
    if PROMETHEUS is None:
        pytest.skip("no prometheus binary (apt-get install prometheus; .ci/run installs it)")
    exporter = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
                   "  - job_name: shop\n    static_configs:\n"
                   f"      - targets: ['127.0.0.1:{exporter.server_address[1]}']\n")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        end_process(proc)
        exporter.shutdown()
        exporter.server_close()


@pytest.mark.timeout(90)
def test_real_prometheus_kpis_reach_a_subscriber(prometheus, tmp_path):
    url, proc = prometheus
    f = tmp_path / "sources.toml"
    f.write_text(f'''
[[prometheus]]
name = "shop"
url = "{url}"
interval_s = 1

[[prometheus.kpi]]
query = 'sum by (store) (shop_queue_length)'
metric = "queue_len"
unit = "people"
scope = "store:{{store}}"

[[prometheus.kpi]]
query = 'sum(shop_queue_length)'
metric = "queue_total"
''')

    async def main() -> None:
        hub = Hub(HubConfig(host="127.0.0.1", port=0, sources=str(f)), auth=Auth())
        await hub.astart()
        try:
            def kpis(msg: Any) -> Any:
                if isinstance(msg, P.Events):
                    got = {(e["metric"], e["scope"]): e["value"] for e in msg.events if e["type"] == "kpi"}
                    return got if len(got) == 3 else None
                return None
            got = await _feed_items(hub, kpis, timeout=60)  # Prometheus starts, scrapes, answers
            assert got == {("queue_len", "store:hz-001"): 12.0, ("queue_len", "store:sh-002"): 4.0,
                           ("queue_total", "global"): 16.0}
            poller = hub.sources.pollers[0]
            assert poller.health.ok is True and poller.health.error == ""
            m = _metrics(hub)
            assert m[("wallboard_source_up", "prometheus/shop")] == 1
            assert m[("wallboard_source_samples_total", "prometheus/shop")] >= 3
            # the samples went through the log under the source's own batch keys
            assert poller.producer.startswith("prometheus/shop/") and poller.batch >= 1
            # a query Prometheus refuses names itself; the source is failing, the others go on
            poller.cfg = type(poller.cfg)(**{**poller.cfg.__dict__, "kpis": poller.cfg.kpis + (
                KpiQuery("sum(", "broken", "global"),)})
            await poller.run_once()
            assert poller.health.ok is False
            assert poller.health.error.startswith("kpi[2] broken: HTTP 400: bad_data: ")
        finally:
            await hub.astop()
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    run(main(), timeout=80)


def test_bearer_token_file_and_refusals_of_a_prometheus_api(tmp_path):
    """A stand-in for Prometheus' /api/v1/query behind a bearer token: the token file is
    read at every run (rotation), a 401 and a missing token file are named."""
    from aiohttp import web

    seen: list[str] = []

    async def query(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != "Bearer tok-2":
            return web.Response(status=401, text="Unauthorized")
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [time.time(), "5"]}]}})

    token = tmp_path / "prom.token"
    token.write_text("tok-1\n")
    f = tmp_path / "sources.toml"

    async def main() -> None:
        app = web.Application()
        app.add_routes([web.get("/api/v1/query", query)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        f.write_text(f'[[prometheus]]\nurl = "http://127.0.0.1:{port}"\ninterval_s = 3600\n'
                     'bearer_token_file = "prom.token"\n[[prometheus.kpi]]\nquery = "sum(up)"\nmetric = "up"\n')
        hub = Hub(HubConfig(host="127.0.0.1", port=0, sources=str(f)), auth=Auth())
        await hub.astart()
        try:
            poller = hub.sources.pollers[0]
            await until(lambda: poller.health.runs >= 1)
            assert poller.health.ok is False and seen == ["Bearer tok-1"]
            assert poller.health.error.startswith("HTTP 401, not a Prometheus API answer: b'Unauthorized'")
            token.write_text("tok-2\n")  # rotated: the next run reads it
            assert await poller.run_once() == 1 and poller.health.ok is True
            token.unlink()
            assert await poller.run_once() == 0
            assert poller.health.error.startswith(f"cannot read bearer_token_file '{token}': No such file")
        finally:
            await hub.astop()
            await runner.cleanup()
    run(main())


async def until(pred: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.02)
