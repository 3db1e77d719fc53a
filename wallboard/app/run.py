"""Start the wall: Qt application, embedded demo hub or a real feed, controller, windows.

``run_wall(args)`` is what ``wallboard`` runs (``args`` from ``cli.wall_parser``). It
returns the process exit code: 0 on a clean quit (window closed, Ctrl+C), 2 for a bad
layout or option, 3 when ``--screenshot`` could not reach a LIVE feed, 4 when Qt's xcb
platform plugin lacks a system library (the message names it and the apt-get line).
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("wallboard")

SCREENSHOT_CONNECT_TIMEOUT_S = 20.0


def _read_token(path: str | None) -> str | None:
    if not path:
        return os.environ.get("WALLBOARD_SUBSCRIBE_TOKEN") or None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise SystemExit(f"wallboard: cannot read --token-file {path}: {e.strerror}") from None
    if not token:
        raise SystemExit(f"wallboard: --token-file {path} is empty")
    return token


def _load_start_layout(name: str, dirs: list[Path]):
    from wallboard import layout as L

    try:
        return L.load_layout(L.find_layout(name, dirs))
    except L.LayoutError as e:
        print(f"wallboard: layout {name} has errors:\n{e}", file=sys.stderr)
    except (FileNotFoundError, KeyError) as e:
        names = ", ".join(p.stem for d in dirs for p in L.list_layouts(d))
        print(f"wallboard: no layout {name!r} ({e}); shipped layouts: {names}", file=sys.stderr)
    return None


def _demo_moment(scenario: str, speed: float) -> float | None:
    """When the demo's big moment (the opening, the peak) happens, in wall-clock time, so the
    header's countdown follows the demo rather than the layout's calendar date."""
    from wallboard.hub.simulator import load_scenario

    try:
        sc = load_scenario(scenario)
    except Exception:  # noqa: BLE001 - the hub reports bad scenarios itself
        return None
    at = float(sc.get("open_at") or 0)
    if not at:
        peaks = [float(k["peak_at"]) for k in sc.get("kpis", []) if "peak_at" in k]
        at = min(peaks) if peaks else 0.0
    return time.time() + at / speed if at else None


def check_platform_libraries() -> int | None:
    """Before Qt starts: when its xcb plugin would abort for a missing system library, say
    which one and the apt-get line, and return exit code 4; ``None`` when all is well."""
    from wallboard.app.syslibs import diagnose_xcb, xcb_will_load

    if not xcb_will_load():
        return None
    msg = diagnose_xcb()
    if msg is None:
        return None
    print(msg, file=sys.stderr)
    return 4


def run_wall(args: Any) -> int:
    """Run the wall until it is closed; see the module docstring for exit codes."""
    from argparse import ArgumentTypeError

    from wallboard.argtypes import log_level

    try:
        level = log_level(os.environ.get("WALLBOARD_LOG") or "WARNING")
    except ArgumentTypeError as e:
        print(f"wallboard: WALLBOARD_LOG={e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if getattr(args, "replay", None) or getattr(args, "screenshot_every", None):
        return run_tape(args)
    if args.screenshot and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if args.feed:
        from wallboard.feed import feed_urls

        try:
            feed_urls(args.feed)
        except ValueError:
            print(f"wallboard: --feed {args.feed!r}: expected ws://HOST:PORT/feed or wss://HOST:PORT/feed "
                  "(several hubs of one log: comma-separated)", file=sys.stderr)
            return 2
    if (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        print("wallboard: no display (DISPLAY/WAYLAND_DISPLAY unset): run it on a desktop session, "
              "or render headless with --screenshot OUT.png", file=sys.stderr)
        return 2
    if (code := check_platform_libraries()) is not None:
        return code
    from wallboard import layout as L

    from wallboard.resources import user_layout_dir

    dirs = [Path(d) for d in args.layout_dir] + [user_layout_dir(), L.DEFAULT_LAYOUT_DIR]
    demo = not args.feed
    layout_name = args.layout or ("launch-928" if demo and args.scenario == "launch-928" else
                                  "double-11" if demo and args.scenario == "double-11" else "overview")
    layout = _load_start_layout(layout_name, dirs)
    if layout is None:
        return 2
    token = _read_token(args.token_file)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from wallboard.app.controller import WallController
    from wallboard.feed import FeedClient
    from wallboard.state import LiveState

    from wallboard.gctune import tune_gc

    tune_gc()   # the feed's decoded events would otherwise trigger ~100 young collections/s
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("wallboard")

    hub = None
    starts_at = None
    url = args.feed
    if demo:
        from wallboard.hub.server import Hub, HubConfig

        hub = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, demo=args.scenario, speed=args.speed))
        hub.start_in_thread()
        starts_at = _demo_moment(args.scenario, args.speed)
        url = hub.url
        log.info("embedded demo hub on %s (scenario %s)", url, args.scenario)

    state = LiveState()
    try:
        frame = {"max_frame": args.max_frame} if getattr(args, "max_frame", None) else {}
        client = FeedClient(url, token=token, wall=args.wall_name or socket.gethostname(), columnar=True, **frame)
    except ValueError as e:
        print(f"wallboard: --feed: {e}", file=sys.stderr)
        if hub is not None:
            hub.stop()
        return 2
    size = args.size or ((1920, 1080) if app.platformName() == "offscreen" or args.screenshot else None)
    from wallboard.app.screens import ScreenPlacer

    mode = "window" if args.screenshot else "kiosk" if args.kiosk else "fullscreen" if args.fullscreen else "window"
    placer = ScreenPlacer(mode=mode, monitor=args.monitor, size=size if mode == "window" else None)
    ctl = WallController(state, client, layout, lang=args.lang, screen=args.screen, fps=args.fps,
                         fullscreen=mode != "window", size=size, muted=args.no_sound,
                         layout_dirs=dirs, starts_at=starts_at, placer=placer)
    client.start()
    ctl.start()
    health = shifter = None
    if not args.screenshot:
        from wallboard.app.health import HealthMonitor
        from wallboard.app.screens import BurnInShifter

        # Status file and systemd's watchdog (NOTIFY_SOCKET): see docs/deploy.md.
        health = HealthMonitor(ctl, status_path=args.status_file, hub_url=url)
        health.start()
        shifter = BurnInShifter(lambda: ctl.windows, args.burn_in_shift)
        shifter.start()

    # Let Python see Ctrl+C while Qt's loop runs.
    signal.signal(signal.SIGINT, lambda *_: app.quit())
    signal.signal(signal.SIGTERM, lambda *_: app.quit())
    keepalive = QTimer()
    keepalive.timeout.connect(lambda: None)
    keepalive.start(200)

    code = 0
    if args.screenshot:
        code = _screenshot(app, ctl, client, args)
    else:
        app.exec()
    keepalive.stop()
    if health is not None:
        health.stop()
    ctl.shutdown()
    client.stop()
    if hub is not None:
        hub.stop()
    return code


def screens_report(args: Any) -> int:
    """``wallboard screens``: print the monitors and the placement of ``args.layout``'s
    screens (text, or one JSON object with ``--json``); 2 for a bad layout, 2 without a display."""
    import json

    from wallboard import layout as L
    from wallboard.resources import user_layout_dir

    if (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        print("wallboard screens: no display (DISPLAY/WAYLAND_DISPLAY unset)", file=sys.stderr)
        return 2
    dirs = [Path(d) for d in args.layout_dir] + [user_layout_dir(), L.DEFAULT_LAYOUT_DIR]
    layout = _load_start_layout(args.layout, dirs)
    if layout is None:
        return 2
    from PySide6.QtGui import QGuiApplication

    from wallboard.app.screens import describe, plan, qt_monitors, select_screen, targets_for

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    mons, _ = qt_monitors(app)
    all_specs = list(layout.windows())
    specs = select_screen(all_specs, args.screen)
    mode = "kiosk" if args.kiosk else "fullscreen" if args.fullscreen else "window"
    placements = plan(targets_for(specs, all_specs), mons, mode=mode, monitor=args.monitor)
    names = ["+".join(p.screen.name for p in s.pages) for s in specs]
    if args.json:
        print(json.dumps({"platform": app.platformName(), "monitors": [m.as_dict() for m in mons],
                          "layout": layout.name,
                          "screens": [dict(p.as_dict(), name=n) for p, n in zip(placements, names)]}))
    else:
        print(f"platform {app.platformName()}; layout {layout.name}")
        print(describe(mons, placements, names))
    return 0


def run_tape(args: Any) -> int:
    """``--replay TAPE --screenshot-every SECONDS OUTDIR``: a PNG series, no hub (app/tape.py)."""
    if not args.replay:
        print("wallboard: --screenshot-every needs --replay TAPE.jsonl (a tape from 'wallboard record')",
              file=sys.stderr)
        return 2
    if not args.screenshot_every:
        print("wallboard: --replay needs --screenshot-every SECONDS OUTDIR (the tape is played headless into "
              "a PNG series; to show it on a wall, publish it to a hub with 'wallboard replay')", file=sys.stderr)
        return 2
    every_text, out_dir = args.screenshot_every
    try:
        every = float(every_text)
    except ValueError:
        every = float("nan")
    if not every > 0 or every == float("inf"):
        print(f"wallboard: --screenshot-every {every_text!r}: expected seconds > 0, e.g. 10", file=sys.stderr)
        return 2
    from wallboard.app.tape import TapeError, load_tape, screenshot_series

    try:
        tape = load_tape(args.replay)
    except TapeError as e:
        print(f"wallboard: --replay {e}", file=sys.stderr)
        return 2
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if (code := check_platform_libraries()) is not None:
        return code
    from wallboard import layout as L
    from wallboard.resources import user_layout_dir

    dirs = [Path(d) for d in args.layout_dir] + [user_layout_dir(), L.DEFAULT_LAYOUT_DIR]
    layout = _load_start_layout(args.layout or "overview", dirs)
    if layout is None:
        return 2
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("wallboard")
    try:
        written = screenshot_series(tape, every, out_dir, layout, lang=args.lang, size=args.size or (1920, 1080),
                                    layout_dirs=dirs)
    except (TapeError, OSError) as e:
        print(f"wallboard: --replay {e}", file=sys.stderr)
        return 1
    span = time.strftime("%H:%M:%S", time.localtime(tape.start)), time.strftime("%H:%M:%S", time.localtime(tape.end))
    print(f"wrote {len(written)} PNGs to {out_dir} ({span[0]} to {span[1]}, every {every:g} s of tape time, "
          f"{len(tape.events)} events)")
    return 0


def _screenshot(app, ctl, client, args) -> int:
    """Wait for LIVE, then ``--after`` seconds, then save each window as a PNG."""
    timeout = float(getattr(args, "connect_timeout", SCREENSHOT_CONNECT_TIMEOUT_S))
    deadline = time.monotonic() + timeout
    live_at = None
    while time.monotonic() < deadline or live_at is not None:
        app.processEvents()
        status = ctl._feed_status()
        if live_at is None and status is not None and getattr(status, "state", "") == "LIVE" and ctl.state.seq > 0:
            live_at = time.monotonic()
        if live_at is not None and time.monotonic() - live_at >= args.after:
            break
        time.sleep(0.01)
    if live_at is None:
        state = getattr(ctl._feed_status(), "state", "?")
        print(f"wallboard: --screenshot: the feed never became LIVE within {timeout:.0f} s "
              f"(feed {args.feed or 'embedded demo'}, state {state})", file=sys.stderr)
        return 3
    ctl.frame()
    ctl._second(ctl.clock())
    app.processEvents()
    out = Path(args.screenshot)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for i, w in enumerate(ctl.windows):
        target = out if i == 0 else out.with_name(f"{out.stem}-{i}{out.suffix}")
        if not w.grab().save(str(target)):
            print(f"wallboard: could not write {target}", file=sys.stderr)
            return 1
        written.append(str(target))
    print("wrote " + ", ".join(written))
    return 0
