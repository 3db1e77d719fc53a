"""``wallboard --replay TAPE --screenshot-every SECONDS OUTDIR`` (issue 16): a tape as
``wallboard record --from --to`` writes it, played with no hub into a PNG series; precise
errors for a missing or bad tape."""
from __future__ import annotations

import orjson
import pytest
from PySide6.QtGui import QColor, QImage

from test_app_shell import NOW, demo_events
from wallboard import cli
from wallboard import layout as L
from wallboard.app.replay import REPLAY_COLOR
from wallboard.app.tape import TapeError, load_tape, screenshot_series
from wallboard.state import LiveState

T0 = float(int(NOW))


def write_tape(path, *, extra_lines=()):
    st = LiveState()
    evs = [e for e in demo_events(T0) if e["type"] != "incident"]
    for i, e in enumerate(evs):
        e["seq"] = i + 1
    st.apply(evs, T0)
    lines = [{"op": "snapshot", "seq": st.seq, "data": st.snapshot(now=T0)}]
    seq = st.seq
    later = [(15, {"type": "incident", "id": "inc-9", "title": "Scales offline", "severity": "P1", "status": "open",
                   "stores": ["hz-001"], "owner": "duty"}),
             (25, {"type": "device", "id": "hz-001-scale-3", "store": "hz-001", "kind": "scale", "status": "down"})]
    for dt, ev in later:
        seq += 1
        lines.append({**ev, "seq": seq, "ts": T0 + dt})
    path.write_bytes(b"\n".join(orjson.dumps(x) for x in [*lines, *extra_lines]) + b"\n")
    return path


def test_a_tape_becomes_a_png_series_in_replay(qtbot, tmp_path):
    tape = load_tape(write_tape(tmp_path / "t.jsonl"))
    assert tape.start == T0 and tape.end == T0 + 25 and len(tape.events) == 2
    shots = screenshot_series(tape, 10, tmp_path / "out", L.load_layout(L.find_layout("overview")), size=(1280, 720))
    assert len(shots) == 4 and [p.name[:5] for p in shots] == ["0001-", "0002-", "0003-", "0004-"]
    imgs = [QImage(str(p)) for p in shots]
    assert all(i.width() == 1280 for i in imgs)
    assert QColor(imgs[0].pixel(2, 360)).name() == QColor(REPLAY_COLOR).name()     # the REPLAY frame
    assert imgs[0] != imgs[1]                                                     # the P1 opened at +15


def test_cli_writes_the_series_and_says_so(tmp_path, capsys):
    write_tape(tmp_path / "t.jsonl")
    code = cli.main(["--replay", str(tmp_path / "t.jsonl"), "--screenshot-every", "20", str(tmp_path / "o"),
                     "--size", "960x540"])
    assert code == 0
    assert "wrote 3 PNGs to" in capsys.readouterr().out          # +0, +20, +40 (the last event: +25)
    assert len(list((tmp_path / "o").glob("*.png"))) == 3


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"", "empty: no snapshot line and no events"),
    (b"{not json\n", ":1: not JSON ("),
    (b"[1, 2]\n", ":1: expected a JSON object"),
    (b'{"op":"snapshot","seq":"x","data":{}}\n', ":1: a snapshot line needs 'seq'"),
    (b'{"op":"snapshot","seq":3,"data":{}}\n', ":1: the snapshot's data has no 'clock'"),
    (b'{"op":"snapshot","seq":0,"data":{"clock":5}}\n{"type":"kpi","metric":"m","scope":"global","value":1,'
     b'"seq":2,"ts":6}\n', ":2: seq 2 where 1 was expected: the tape has a gap"),
    (b'{"type":"kpi","metric":"m","scope":"global","value":1}\n', ":1: missing_field: 'ts' is required"),
    (b'{"type":"kpi","metric":"m","scope":"global","value":"high","ts":1}\n', ":1: "),
    (b'{"type":"kpi","metric":"m","scope":"global","value":1,"ts":1}\n{"op":"snapshot","seq":0,"data":{"clock":5}}\n',
     ":2: a second snapshot line"),
])
def test_bad_tapes_get_precise_errors(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TapeError, match=None) as e:
        load_tape(path)
    assert message in str(e.value) and str(path) in str(e.value)


def test_cli_refusals(tmp_path, capsys):
    assert cli.main(["--replay", str(tmp_path / "missing.jsonl"), "--screenshot-every", "10", str(tmp_path)]) == 2
    assert "--replay " in capsys.readouterr().err
    write_tape(tmp_path / "t.jsonl")
    assert cli.main(["--replay", str(tmp_path / "t.jsonl")]) == 2
    assert "--replay needs --screenshot-every SECONDS OUTDIR" in capsys.readouterr().err
    assert cli.main(["--screenshot-every", "10", str(tmp_path)]) == 2
    assert "--screenshot-every needs --replay" in capsys.readouterr().err
    assert cli.main(["--replay", str(tmp_path / "t.jsonl"), "--screenshot-every", "0", str(tmp_path)]) == 2
    assert "expected seconds > 0" in capsys.readouterr().err


def test_a_tape_recorded_from_a_real_hub_plays(qtbot, tmp_path):
    """``wallboard record --from --to`` against a real hub, then the tape into PNGs."""
    import asyncio
    import time

    from wallboard.hub.auth import Auth
    from wallboard.hub.record_range import record_range
    from wallboard.hub.server import Hub, HubConfig

    hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=str(tmp_path / "j.db"), demo="launch-928", speed=10.0,
                        heartbeat_s=0.2), auth=Auth())
    hub.start_in_thread()
    try:
        time.sleep(1.0)
        t1 = time.time()
        time.sleep(2.5)
        t2 = time.time()
        n = asyncio.run(record_range(hub.url, tmp_path / "r.jsonl", t1, t2))
    finally:
        hub.stop()
    tape = load_tape(tmp_path / "r.jsonl")
    assert tape.snapshot is not None and len(tape.events) == n > 0
    assert tape.start == pytest.approx(t1) and tape.end <= t2 + 0.5
    shots = screenshot_series(tape, 1, tmp_path / "png", L.load_layout(L.find_layout("launch-928")), size=(960, 540))
    assert 3 <= len(shots) <= 5 and all(p.stat().st_size > 10_000 for p in shots)
