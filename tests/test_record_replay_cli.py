"""``wallboard record`` / ``replay`` / ``hub`` as a person runs them: pacing from the
recording's own events, counts that survive SIGINT/SIGTERM, a dead hub, a missing
directory, missing TLS files, and WALLBOARD_LOG. Each error message has its test."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import orjson
import pytest

from conftest import ROOT, free_port
from wallboard.hub.record import Publisher, pace_origin, read_tape_lines, replay
from wallboard.hub.server import Hub, HubConfig


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "wallboard.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=e)


def popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "wallboard.cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@contextmanager
def hub_in_thread() -> Iterator[Hub]:
    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None))
    hub.start_in_thread()
    try:
        yield hub
    finally:
        hub.stop()


def wait_for(pred, what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout} s")


def kpi(ts: float, value: float) -> dict:
    return {"type": "kpi", "metric": "orders", "scope": "global", "value": value, "ts": ts}


def write_tape(path: Path, old: float, live: list[float]) -> None:
    """A recording as ``record`` writes it: a snapshot whose KPI sample is ``old`` seconds
    older than the first live event, then live KPI events at ``live`` offsets."""
    t0 = 1_800_000_000.0
    snap = {"op": "snapshot", "seq": 1, "data": {
        "stores": [{"id": "s1", "name": "Store 1", "ts": t0 - old}],
        "kpi": [{"metric": "orders", "scope": "global", "unit": "", "ts": [t0 - old], "values": [1.0]}]}}
    lines = [orjson.dumps(snap)] + [orjson.dumps(dict(kpi(t0 + dt, 2.0 + i), seq=2 + i))
                                   for i, dt in enumerate(live)]
    path.write_bytes(b"\n".join(lines) + b"\n")


# --------------------------------------------------------------------------- replay pacing


def test_replay_paces_from_the_first_event_after_the_snapshot(tmp_path):
    """A snapshot whose oldest KPI sample is 300 s old: replay time 0 is the first live
    event, the snapshot's records go at once (the old code waited the 300 s first), and
    every record keeps its age relative to the live events."""
    tape = tmp_path / "day.jsonl"
    write_tape(tape, old=300.0, live=[0.0, 0.1, 0.2])
    lines = read_tape_lines(tape)
    assert [snap for snap, _ in lines] == [True, True, False, False, False]
    assert pace_origin(lines) == 1_800_000_000.0
    with hub_in_thread() as hub:
        n = asyncio.run(asyncio.wait_for(replay(tape, hub.publish_url, speed=1.0), 60))
        assert n == 5
        wait_for(lambda: hub.seq == 5, "replayed events committed")
        ts, values = hub.state.kpi_series("orders", "global")
        assert list(values) == [1.0, 2.0, 3.0, 4.0]
        assert ts[1] - ts[0] == pytest.approx(300.0) and ts[3] - ts[1] == pytest.approx(0.2)
        assert abs(ts[1] - time.time()) < 120  # shifted to now, not left in 2027


def test_pace_origin_of_a_recording_with_only_a_snapshot_is_its_newest_record(tmp_path):
    tape = tmp_path / "snap.jsonl"
    write_tape(tape, old=300.0, live=[])
    assert pace_origin(read_tape_lines(tape)) == 1_800_000_000.0 - 300.0


def test_replay_of_an_empty_recording_exits_2(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    r = cli("replay", str(empty), "--hub", f"ws://127.0.0.1:{free_port()}")
    assert r.returncode == 2
    assert r.stderr.strip() == f"wallboard replay: {empty}: no events to replay (an empty recording)"


# --------------------------------------------------------------------------- interrupted


def test_replay_stopped_by_sigint_reports_what_it_sent(tmp_path):
    tape = tmp_path / "long.jsonl"
    write_tape(tape, old=1.0, live=[0.0, 60.0, 120.0])  # 2 live events far in the future
    with hub_in_thread() as hub:
        proc = popen("replay", str(tape), "--hub", hub.publish_url)
        try:
            wait_for(lambda: hub.seq >= 3, "snapshot records and the first event published")
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert f"wallboard replay: stopped by SIGINT: 3 of 5 events published to {hub.publish_url} (" in err
    assert err.rstrip().endswith("acknowledged)")


def test_record_stopped_by_sigterm_reports_what_it_wrote(tmp_path):
    out_file = tmp_path / "day.jsonl"

    async def publish(batches: int, producer: str) -> None:
        async with Publisher(hub.publish_url, producer=producer) as pub:
            for i in range(batches):
                await pub.publish([kpi(time.time(), float(j)) for j in range(50)])
            await pub.flush()

    with hub_in_thread() as hub:
        asyncio.run(asyncio.wait_for(publish(1, "before"), 30))  # the recorder starts with a snapshot
        proc = popen("record", "--feed", hub.url, "--out", str(out_file))
        try:
            wait_for(lambda: out_file.exists() and out_file.read_bytes().count(b"\n") >= 1, "snapshot line")
            asyncio.run(asyncio.wait_for(publish(4, "during"), 30))
            wait_for(lambda: out_file.read_bytes().count(b"\n") >= 201, "200 events recorded")
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip() == f"wallboard record: 200 events written to {out_file} (stopped by SIGTERM)"


# --------------------------------------------------------------------------- bad setups


def test_record_against_a_dead_hub_exits_1_after_its_attempts(tmp_path):
    out_file = tmp_path / "day.jsonl"
    url = f"ws://127.0.0.1:{free_port()}/feed"  # nothing listens there
    r = cli("record", "--feed", url, "--out", str(out_file), "--retries", "3")
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == (f"wallboard record: cannot reach {url}: connection refused (3 attempts); "
                                         f"0 events written to {out_file}")
    assert r.stderr.count("WARNING") == 2  # each retry said so
    assert not out_file.exists()  # no empty recording left behind


def test_replay_against_a_dead_hub_exits_1_after_its_attempts(tmp_path):
    tape = tmp_path / "day.jsonl"
    write_tape(tape, old=1.0, live=[0.0])
    url = f"ws://127.0.0.1:{free_port()}/publish"
    r = cli("replay", str(tape), "--hub", url, "--retries", "2")
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == (f"wallboard replay: cannot reach {url}: connection refused (2 attempts); "
                                         "0 of 3 events published (0 acknowledged)")


def test_record_out_in_a_missing_directory(tmp_path):
    out_file = tmp_path / "no" / "such" / "day.jsonl"
    r = cli("record", "--feed", f"ws://127.0.0.1:{free_port()}/feed", "--out", str(out_file))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (f"wallboard record: --out {out_file}: directory {str(out_file.parent)!r} "
                                "does not exist")


def test_record_out_that_is_a_directory(tmp_path):
    r = cli("record", "--feed", f"ws://127.0.0.1:{free_port()}/feed", "--out", str(tmp_path))
    assert r.returncode == 2 and r.stderr.strip() == f"wallboard record: --out {tmp_path}: cannot write: Is a directory"


def test_hub_tls_files_missing_unreadable_or_not_pem(tmp_path):
    missing = tmp_path / "hub.pem"
    r = cli("hub", "--port", "0", "--tls-cert", str(missing), "--tls-key", str(missing))
    assert r.returncode == 2 and r.stderr.strip() == f"wallboard hub: --tls-cert {missing}: no such file"
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n", encoding="utf-8")
    r = cli("hub", "--port", "0", "--tls-cert", str(junk), "--tls-key", str(tmp_path / "key.pem"))
    assert r.returncode == 2 and r.stderr.strip() == f"wallboard hub: --tls-key {tmp_path / 'key.pem'}: no such file"
    r = cli("hub", "--port", "0", "--tls-cert", str(junk), "--tls-key", str(junk))
    assert r.returncode == 2
    assert r.stderr.startswith(f"wallboard hub: --tls-cert {junk} / --tls-key {junk}: not a PEM certificate chain "
                               "and its private key (")
    r = cli("hub", "--port", "0", "--tls-cert", str(tmp_path), "--tls-key", str(junk))
    assert r.returncode == 2 and r.stderr.strip() == f"wallboard hub: --tls-cert {tmp_path}: not a file"
    r = cli("hub", "--port", "0", "--tls-cert", str(junk))
    assert r.returncode == 2
    assert r.stderr.strip() == "wallboard hub: --tls-cert and --tls-key go together: give both (PEM files)"


# --------------------------------------------------------------------------- log levels


def test_wallboard_log_any_case_and_a_precise_error():
    from argparse import ArgumentTypeError

    from wallboard.argtypes import log_level

    assert [log_level(x) for x in ("info", "Debug", "WARN", " error ")] == ["INFO", "DEBUG", "WARNING", "ERROR"]
    with pytest.raises(ArgumentTypeError, match=r"^'loud': expected a log level, one of DEBUG, INFO, WARNING, "
                       r"ERROR, CRITICAL \(any case\)$"):
        log_level("loud")
    r = cli("--screenshot", "x.png", env={"WALLBOARD_LOG": "loud"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("wallboard: WALLBOARD_LOG='loud': expected a log level, one of DEBUG, INFO, "
                                "WARNING, ERROR, CRITICAL (any case)")
    r = cli("hub", "--log-level", "loud")
    assert r.returncode == 2 and "argument --log-level: 'loud': expected a log level" in r.stderr


def test_record_at_a_wrong_path_says_what_the_hub_answered(tmp_path):
    out_file = tmp_path / "day.jsonl"
    with hub_in_thread() as hub:
        url = hub.url.replace("/feed", "/fed")
        r = cli("record", "--feed", url, "--out", str(out_file), "--retries", "2")
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == (f"wallboard record: cannot reach {url}: HTTP 404 (unknown path '/fed': use "
                                         f"/feed, /publish or /metrics) (2 attempts); 0 events written to {out_file}")
