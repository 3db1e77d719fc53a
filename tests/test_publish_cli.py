"""``wallboard publish`` against a real hub on loopback (websocket and HTTP), plus the
retry/idempotency logic with a scripted transport."""
from __future__ import annotations

import argparse
import asyncio
import io
import sys
from pathlib import Path
from typing import Any

import pytest

from wallboard.hub import ingest_cli
from wallboard.hub.auth import Auth
from wallboard.hub.http_ingest import start_http_ingest
from wallboard.hub.ingest_cli import Publisher, Reply, Retry, make_transport
from wallboard.hub.server import Hub, HubConfig

from conftest import free_port

GOOD = [
    '{"type":"store","id":"s1","name":"One"}',
    '{"type":"device","id":"s1/pos-01","store":"s1","status":"ok"}',
    '{"type":"kpi","metric":"sales","scope":"global","value":3}',
]
BAD_FILE = "\n".join([
    GOOD[0],
    GOOD[1],
    "not json",
    '{"type":"device","id":"d2","stat":"ok"}',
    "",
    '{"type":"control","command":"banner","text":"hi"}',
    GOOD[2],
]) + "\n"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="wallboard")
    sub = p.add_subparsers(dest="command", required=True)
    ingest_cli.register(sub)
    return p.parse_args(argv)


def publish(argv: list[str], capsys: Any) -> tuple[int, str]:
    args = parse(["publish", *argv])
    code = args.func(args)
    return code, capsys.readouterr().err


@pytest.fixture
def hub():
    h = Hub(HubConfig(host="127.0.0.1", port=0, journal=None),
            auth=Auth({"publish": "pt-token-0123456789", "subscribe": None,
                      "control": "ct-token-0123456789"}))
    h.start_in_thread()
    yield h
    h.stop()


@pytest.fixture
def token(tmp_path: Path) -> str:
    f = tmp_path / "pub.token"
    f.write_text("pt-token-0123456789\n")
    return str(f)


def write(tmp_path: Path, text: str) -> str:
    f = tmp_path / "events.jsonl"
    f.write_text(text)
    return str(f)


def test_bad_lines_reported_with_line_numbers_over_websocket(hub, token, tmp_path, capsys):
    path = write(tmp_path, BAD_FILE)
    code, err = publish(["--hub", f"ws://127.0.0.1:{hub.port}", "--token-file", token, path], capsys)
    assert code == 1
    assert f"{path}:3: not_json: " in err
    assert f"{path}:4: unknown_field: unknown field 'stat' for device (did you mean 'status'?)" in err
    assert f"{path}:6: forbidden: control events need the control role" in err  # refused by the hub
    assert "published 3 events in 1 batches (seq 1..3); 3 lines rejected" in err
    assert hub.seq == 3 and hub.state.devices["s1/pos-01"]["status"] == "ok"


def test_http_transport_and_idempotent_rerun(hub, token, tmp_path, capsys):
    fut = asyncio.run_coroutine_threadsafe(start_http_ingest(hub, "127.0.0.1", 0), hub.loop)
    ingest = fut.result(10)
    try:
        path = write(tmp_path, BAD_FILE)
        argv = ["--hub", ingest.url, "--token-file", token, "--producer", "etl", "--batch-size", "2", path]
        code, err = publish(argv, capsys)
        assert code == 1 and f"{path}:6: forbidden: event 0: control events need the control role" in err
        assert "published 3 events in 2 batches (seq 1..3)" in err and hub.seq == 3
        code, err = publish(argv, capsys)  # same producer + same file: acknowledged, not applied again
        assert code == 1 and "2 duplicate acks" in err and hub.seq == 3
    finally:
        asyncio.run_coroutine_threadsafe(ingest.stop(), hub.loop).result(10)


def test_all_good_from_stdin_exits_zero(hub, token, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(GOOD) + "\n"))
    code, err = publish(["--hub", f"ws://127.0.0.1:{hub.port}/publish", "--token-file", token, "-"], capsys)
    assert code == 0 and "published 3 events in 1 batches (seq 1..3); 0 lines rejected" in err


def test_wrong_token_is_fatal(hub, tmp_path, capsys):
    bad = tmp_path / "bad.token"
    bad.write_text("publish = nope\n")
    path = write(tmp_path, GOOD[0] + "\n")
    code, err = publish(["--hub", f"ws://127.0.0.1:{hub.port}", "--token-file", str(bad), path], capsys)
    assert code == 2 and "STOPPED: hub refused the token (HTTP 401)" in err and hub.seq == 0


def test_unreachable_hub_gives_up_after_retries(tmp_path, capsys):
    path = write(tmp_path, GOOD[0] + "\n")
    code, err = publish(["--hub", f"ws://127.0.0.1:{free_port()}", "--retries", "2", "--timeout", "2", path], capsys)
    assert code == 2
    assert "retrying batch 1" in err
    assert "STOPPED: batch 1 (lines 1..1) not acknowledged after 3 attempts: cannot connect" in err


@pytest.mark.parametrize("argv, text", [
    (["--hub", "tcp://x:1", "f"], "--hub 'tcp://x:1': expected ws://HOST:PORT[/publish] or http://HOST:PORT[/events]"),
    (["--hub", "ws://", "f"], "missing host"),
    (["--hub", "ws://127.0.0.1:1", "--batch-size", "6000", "f"], "--batch-size 6000: at most 5000"),
    (["--hub", "ws://127.0.0.1:1", "/nonexistent/events.jsonl"], "cannot read /nonexistent/events.jsonl"),
    (["--hub", "ws://127.0.0.1:1", "--token-file", "/nonexistent/t", "f"], "cannot read --token-file /nonexistent/t"),
])
def test_usage_errors_exit_2(argv, text, capsys):
    code, err = publish(argv, capsys)
    assert code == 2 and text in err


def test_token_file_with_several_lines_but_no_publish_role(tmp_path, capsys):
    t = tmp_path / "t"
    t.write_text("a\nb\n")
    code, err = publish(["--hub", "ws://127.0.0.1:1", "--token-file", str(t), "f"], capsys)
    assert code == 2 and "expected the token alone, a 'publish = TOKEN' or 'control = TOKEN' line" in err


def test_transport_choice():
    assert make_transport("ws://h:1", None, 1).url == "ws://h:1/publish"  # type: ignore[union-attr]
    assert make_transport("ws://h:1/feed", None, 1).url == "ws://h:1/publish"  # type: ignore[union-attr]
    assert make_transport("http://h:1", None, 1).url == "http://h:1/events"  # type: ignore[union-attr]


class Scripted:
    """A transport answering from a script: Retry, Reply(index=...) or an ack."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.calls: list[tuple[list[str], str, int]] = []

    async def send(self, events: list[dict], producer: str, batch: int) -> Reply:
        self.calls.append(([e["id"] for e in events], producer, batch))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    async def close(self) -> None:
        pass


def test_retry_resends_the_same_batch_number_and_drops_rejected_events():
    t = Scripted([Retry("connection lost"), Reply(index=1, code="forbidden", message="no"), Reply(1, 2, True)])
    err = io.StringIO()
    lines = [f'{{"type":"store","id":"s{i}"}}\n' for i in range(3)]
    report = asyncio.run(ingest_cli.publish_stream(io.StringIO("".join(lines)), t, name="in", producer="p",
                                                   linger=None, err=err))
    assert len({c[2] for c in t.calls}) == 1 and len(t.calls) == 3 and {c[1] for c in t.calls} == {"p"}
    assert t.calls[-1][0] == ["s0", "s2"]  # line 2 was refused, the rest resent
    assert "in:2: forbidden: no" in err.getvalue() and "retrying batch 1" in err.getvalue()
    assert report.sent == 2 and report.duplicates == 1 and report.rejected == 1 and report.exit_code() == 1


def test_bad_index_from_hub_is_fatal():
    t = Scripted([Reply(index=9, code="bad_event", message="?")])
    pub = Publisher(t, name="in", producer="p", err=io.StringIO())

    async def main() -> None:
        await pub.add_line(1, '{"type":"store","id":"s"}')
        with pytest.raises(ingest_cli.Fatal, match="hub rejected event 9 of a batch of 1"):
            await pub.flush()
    asyncio.run(main())


def test_oversized_line_is_rejected_locally():
    err = io.StringIO()
    pub = Publisher(Scripted([]), name="in", producer="p", err=err)
    asyncio.run(pub.add_line(5, '{"type":"store","id":"s","name":"' + "x" * (1 << 20) + '"}'))
    assert "in:5: too_large: event of" in err.getvalue() and pub.report.rejected == 1
