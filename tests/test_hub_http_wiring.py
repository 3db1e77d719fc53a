"""HubConfig.http_port starts the HTTP ingest with the hub and stops it with the hub."""
from __future__ import annotations

import json
import urllib.request

import pytest

from wallboard.hub.server import Hub, HubConfig


def test_http_ingest_runs_with_the_hub():
    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, http_port=0))
    hub.start_in_thread()
    try:
        assert hub.http is not None and hub.http.port > 0
        base = f"http://127.0.0.1:{hub.http.port}"
        with urllib.request.urlopen(base + "/healthz", timeout=10) as r:
            assert r.status == 200
        body = json.dumps([{"type": "kpi", "metric": "gmv", "scope": "global", "value": 5}]).encode()
        req = urllib.request.Request(base + "/events", data=body, headers={"Content-Type": "application/json",
                                                                                "X-Wallboard-Client": "test"})
        with urllib.request.urlopen(req, timeout=10) as r:
            ack = json.loads(r.read())
        assert ack["first"] == ack["last"] >= 1
    finally:
        hub.stop()
    assert hub.http is None


def test_bad_mapping_file_stops_the_hub_from_starting(tmp_path):
    bad = tmp_path / "map.toml"
    bad.write_text("[incident]\nseverty = 'x'\n")
    with pytest.raises(ValueError):
        Hub(HubConfig(host="127.0.0.1", port=0, journal=None, http_port=0, mapping=str(bad)))
