"""The ``wallboard`` command.

``wallboard`` with no arguments opens the wall on the embedded demo feed: an in-process
hub on a free loopback port, running the ``launch-928`` scenario, reached through the
real websocket client. Subcommands run the other parts: ``hub``, ``demo``, ``record``,
``replay``, ``publish``, ``check-layout``, ``check-sources``, ``screens`` (the monitors and where each layout
screen goes).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from wallboard import __version__
from wallboard.argtypes import positive as _positive

SUBCOMMANDS = ("hub", "demo", "record", "replay", "publish", "check-layout", "check-sources", "screens")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x", 1)
        size = int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected WIDTHxHEIGHT, e.g. 3840x2160") from None
    if not (100 <= size[0] <= 16384 and 100 <= size[1] <= 16384):
        raise argparse.ArgumentTypeError(f"size {text!r}: each side must be 100..16384 pixels")
    return size



def _frame_bytes(text: str) -> int:
    """``--max-frame``: bytes, at least the protocol's frame (every accepted event fits)."""
    from wallboard.protocol.limits import MIN_WALL_FRAME

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of bytes, e.g. 16777216") from None
    if n < MIN_WALL_FRAME:
        raise argparse.ArgumentTypeError(f"{text!r}: expected at least {MIN_WALL_FRAME} bytes "
                                         f"(the largest frame a hub may need to send)")
    return n


def _nonneg_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of pixels, e.g. 4") from None
    if not 0 <= n <= 64:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0..64 pixels")
    return n


def wall_parser() -> argparse.ArgumentParser:
    """Options of the wall itself (``wallboard [options]``)."""
    p = argparse.ArgumentParser(
        prog="wallboard",
        description=(
            "Live operations wall for retail command centers. With no options it opens the "
            "wall on the embedded demo feed (scenario launch-928). Other commands: "
            + ", ".join(SUBCOMMANDS)
            + " (run 'wallboard COMMAND --help')."
        ),
    )
    p.add_argument("--version", action="version", version=f"wallboard {__version__}")
    p.add_argument("--feed", metavar="URL[,URL...]", help="hub feed to subscribe to, e.g. ws://10.0.0.5:8765/feed "
                   "(default: the embedded demo hub on loopback); several hubs of one log comma-separated: on loss "
                   "of its hub the wall moves to the next and resumes from its last seq")
    p.add_argument("--token-file", metavar="F", help="file holding the subscribe (or control) token")
    p.add_argument("--layout", metavar="NAME|PATH", default=None,
                   help="layout name from layouts/ (overview, launch-928, double-11, store) or a .toml path "
                   "(default: launch-928 on the demo, overview otherwise)")
    p.add_argument("--layout-dir", action="append", default=[], metavar="DIR",
                   help="also look for layouts by name in DIR (repeatable; searched first, then "
                   "$XDG_CONFIG_HOME/wallboard/layouts, then the shipped layouts)")
    p.add_argument("--screen", type=int, metavar="N", default=None,
                   help="show only the layout's screen N (0-based) in this process, on monitor N "
                   "unless --monitor says otherwise")
    p.add_argument("--monitor", metavar="NAME|N", default=None,
                   help="put this process's windows on this monitor (a name such as HDMI-1, or a "
                   "number from 'wallboard screens'); default: layout screen N on monitor N")
    p.add_argument("--fullscreen", action="store_true",
                   help="each window covers exactly its monitor (F11 toggles)")
    p.add_argument("--kiosk", action="store_true",
                   help="frameless full screen on top, cursor hidden when idle; works without a "
                   "window manager")
    p.add_argument("--status-file", metavar="PATH", default=None,
                   help="rewrite this JSON file every second with the wall's health (feed state, "
                   "seq, frames/s, frame p95, last paint, layout, screens)")
    p.add_argument("--burn-in-shift", type=_nonneg_int, default=0, metavar="PX",
                   help="move the picture by up to PX pixels every few minutes against burn-in "
                   "(0: off, default)")
    p.add_argument("--lang", choices=("en", "zh"), default="en", help="UI language (default en)")
    p.add_argument("--scenario", default="launch-928", metavar="NAME",
                   help="demo scenario for the embedded hub: launch-928, double-11, scale (default launch-928)")
    p.add_argument("--speed", type=_positive, default=1.0, metavar="X", help="demo time acceleration (default 1)")
    p.add_argument("--fps", type=_positive, default=None, metavar="N",
                   help="frame rate (default: the layout's, 30 on walls)")
    p.add_argument("--screenshot", metavar="OUT.png",
                   help="render headless (offscreen) after the feed has settled, write the PNG and exit")
    p.add_argument("--after", type=_positive, default=4.0, metavar="SECONDS",
                   help="with --screenshot: seconds to let the feed settle after it is LIVE (default 4)")
    p.add_argument("--connect-timeout", type=_positive, default=20.0, metavar="SECONDS",
                   help="with --screenshot: give up (exit 3) when the feed is not LIVE within this time (default 20)")
    p.add_argument("--size", type=_size, default=None, metavar="WxH",
                   help="window size, e.g. 3840x2160 (default: the screen, or 1920x1080 offscreen)")
    p.add_argument("--wall-name", default=None, metavar="NAME", help="this wall's name, sent to the hub")
    p.add_argument("--max-frame", type=_frame_bytes, default=None, metavar="BYTES",
                   help="largest frame taken from the hub, announced in hello (default 16777216 = 16 MiB); "
                   "a larger one closes the connection")
    p.add_argument("--no-sound", action="store_true", help="start muted")
    p.add_argument("--replay", metavar="TAPE.jsonl", default=None,
                   help="play a tape from 'wallboard record --from T1 --to T2' with no hub, in REPLAY "
                   "(with --screenshot-every)")
    p.add_argument("--screenshot-every", nargs=2, metavar=("SECONDS", "OUTDIR"), default=None,
                   help="with --replay: write a PNG every SECONDS of tape time into OUTDIR (headless), then exit")
    return p


def _check_layout(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="wallboard check-layout",
                                description="Validate layout files; exit 1 if any has errors.")
    p.add_argument("files", nargs="+", metavar="FILE|NAME",
                   help="layout files, or names of layouts found as the wall finds them")
    args = p.parse_args(argv)
    from pathlib import Path

    from wallboard.layout import DEFAULT_LAYOUT_DIR, check_layout_files, list_layouts
    from wallboard.resources import user_layout_dir

    dirs = (user_layout_dir(), DEFAULT_LAYOUT_DIR)
    files = []
    for f in args.files:
        named = [d / f"{f}.toml" for d in dirs if "/" not in f and not f.endswith(".toml")]
        files.append(next((str(n) for n in named if n in list_layouts(n.parent)), f))
    ok, report = check_layout_files(files)
    print(report, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _check_sources(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="wallboard check-sources",
                                description="Validate 'wallboard hub --sources' files (Prometheus KPI queries, "
                                "notification sinks); exit 1 if any has errors.")
    p.add_argument("files", nargs="+", metavar="FILE", help="sources TOML files")
    args = p.parse_args(argv)
    from wallboard.hub.sources import SourcesError, load_sources

    bad = 0
    for f in args.files:
        try:
            cfg = load_sources(f)
        except SourcesError as e:
            bad += 1
            print(e, file=sys.stderr)
            continue
        kpis = sum(len(s.kpis) for s in cfg.prometheus)
        print(f"{f}: ok: {len(cfg.prometheus)} Prometheus source(s) with {kpis} KPI queries, "
              f"{len(cfg.sinks)} sink(s)" + "".join(f"\n  sink {s.name}: {s.kind}, {', '.join(s.events)}, "
                                                      f"{s.min_severity} and above, {s.lang}" for s in cfg.sinks))
    return 1 if bad else 0


def _screens(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="wallboard screens",
        description="List the monitors Qt sees (name, geometry, scale, refresh rate), numbered "
        "left to right then top to bottom, and which layout screen goes to which monitor.")
    p.add_argument("--layout", metavar="NAME|PATH", default="launch-928",
                   help="the layout to place (default launch-928)")
    p.add_argument("--layout-dir", action="append", default=[], metavar="DIR",
                   help="also look for layouts by name in DIR (as the wall does)")
    p.add_argument("--screen", type=int, metavar="N", default=None, help="as the wall's --screen")
    p.add_argument("--monitor", metavar="NAME|N", default=None, help="as the wall's --monitor")
    p.add_argument("--fullscreen", action="store_true", help="as the wall's --fullscreen")
    p.add_argument("--kiosk", action="store_true", help="as the wall's --kiosk")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = p.parse_args(argv)
    from wallboard.app.run import check_platform_libraries, screens_report

    code = check_platform_libraries()
    if code is not None:
        return code
    return screens_report(args)


def _subcommand(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="wallboard")
    sub = p.add_subparsers(dest="command", required=True)
    from wallboard.hub.commands import register

    register(sub)
    try:
        from wallboard.hub.ingest_cli import register as register_publish  # issue 8
    except ImportError:
        register_publish = None
    if register_publish is not None:
        register_publish(sub)
    args = p.parse_args(argv)
    return int(args.func(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "check-layout":
        return _check_layout(argv[1:])
    if argv and argv[0] == "check-sources":
        return _check_sources(argv[1:])
    if argv and argv[0] == "screens":
        return _screens(argv[1:])
    if argv and argv[0] in SUBCOMMANDS:
        return _subcommand(argv)
    args = wall_parser().parse_args(argv)
    from wallboard.app.run import run_wall

    return run_wall(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
