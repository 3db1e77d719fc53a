"""The ``wallboard`` command: help, check-layout, option errors, headless screenshots."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, free_port
from wallboard import cli


def run(*args, env=None, timeout=120):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "wallboard.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=e)


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as ei:
        cli.main(["--help"])
    assert ei.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--feed", "--token-file", "--layout", "--screen", "--fullscreen", "--lang", "--scenario",
                "--speed", "--screenshot", "--after", "--size", "--connect-timeout", "--no-sound"):
        assert opt in out
    for sub in ("hub", "demo", "record", "replay", "publish", "check-layout"):
        assert sub in out


def test_check_layout_ok_and_bad(tmp_path, capsys):
    good = ROOT / "layouts" / "overview.toml"
    assert cli.main(["check-layout", str(good)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text().replace("[event]", "[event]\ntitel = 'x'", 1))
    assert cli.main(["check-layout", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.toml" in err and "titel" in err and 'did you mean "title"' in err


@pytest.mark.parametrize("args,text", [
    (["--size", "big"], "expected WIDTHxHEIGHT"),
    (["--size", "10x10"], "100..16384"),
    (["--speed", "0"], "must be > 0"),
    (["--lang", "fr"], "invalid choice"),
    (["--max-frame", "4096"], "'4096': expected at least 1048576 bytes (the largest frame a hub may need to send)"),
    (["--max-frame", "16M"], "'16M': expected a whole number of bytes, e.g. 16777216"),
])
def test_bad_options_are_named(args, text, capsys):
    with pytest.raises(SystemExit) as ei:
        cli.main(args)
    assert ei.value.code == 2
    assert text in capsys.readouterr().err


def test_bad_feed_url_exits_2():
    r = run("--feed", "http://example.invalid/feed", env={"QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 2 and "expected ws://HOST:PORT/feed" in r.stderr


def test_no_display_says_so():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    r = subprocess.run([sys.executable, "-m", "wallboard.cli"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 2 and "no display" in r.stderr


def test_unknown_layout_exits_2_and_lists_shipped():
    r = run("--layout", "nope", "--screenshot", "x.png", env={"QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 2 and "launch-928" in r.stderr


def test_screenshot_of_the_embedded_demo(tmp_path):
    out = tmp_path / "wall.png"
    r = run("--screenshot", str(out), "--after", "1", "--size", "1280x720", "--layout", "overview",
            env={"QT_QPA_PLATFORM": "offscreen"}, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.exists() and out.stat().st_size > 10_000


def test_screenshot_without_a_feed_fails_clearly(tmp_path):
    port = free_port()  # nothing listens there
    r = run("--feed", f"ws://127.0.0.1:{port}/feed", "--screenshot", str(tmp_path / "x.png"),
            "--connect-timeout", "2", env={"QT_QPA_PLATFORM": "offscreen"}, timeout=120)
    assert r.returncode == 3 and "never became LIVE" in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_demo_command_publishes_a_scenario_into_a_hub_and_record_keeps_it(tmp_path):
    """``wallboard demo --hub URL`` drives a separate hub; ``wallboard record`` captures the feed."""
    from wallboard.hub.server import Hub, HubConfig

    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None))
    hub.start_in_thread()
    try:
        out = tmp_path / "day.jsonl"
        rec = subprocess.Popen([sys.executable, "-m", "wallboard.cli", "record", "--feed", hub.url, "--out",
                                str(out), "--duration", "6"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        r = run("demo", "--hub", hub.publish_url, "--scenario", "launch-928", "--speed", "30",
                "--duration", "3", timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        assert len(hub.state.stores) == 10 and len(hub.state.devices) > 300
        rec.communicate(timeout=60)
        assert rec.returncode == 0
        assert out.exists() and out.stat().st_size > 10_000
    finally:
        hub.stop()
