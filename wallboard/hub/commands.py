"""Command-line subcommands of the hub side: ``hub``, ``demo``, ``record``, ``replay``.

``register(subparsers)`` adds them to the ``wallboard`` console script's argparse
subparsers; each sets ``func(args) -> exit code``. ``python -m wallboard.hub ...`` runs
them without the wall. Exit codes: 0 ok, 1 runtime failure (e.g. auth refused),
2 bad option or configuration.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence
from wallboard.argtypes import duration
from wallboard.argtypes import positive as _positive
from wallboard.argtypes import count as _count
from wallboard.argtypes import count0 as _count0
from wallboard.argtypes import log_level as _log_level

log = logging.getLogger("wallboard.hub")

DEFAULT_PORT = 8765




def _add_log_level(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-level", default="INFO", type=_log_level, metavar="LEVEL",
                   help="logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL, any case (default INFO)")


def _add_retries(p: argparse.ArgumentParser) -> None:
    p.add_argument("--retries", type=_count, default=10, metavar="N",
                   help="failed connects to the hub in a row before giving up with exit code 1 (default 10: "
                   "11-23 s of retrying)")


def _add_token_file(p: argparse.ArgumentParser, role: str) -> None:
    p.add_argument("--token-file", metavar="F",
                   help=f"{role} token file (default: WALLBOARD_{role.upper()}_TOKEN from the environment)")


def _add_scale(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scale scenario")
    g.add_argument("--stores", type=_count, metavar="N", help="scale: number of stores (up to 2000; default 200)")
    g.add_argument("--devices-per-store", type=_count, metavar="N",
                   help="scale: devices per store (up to 50; default 20)")
    g.add_argument("--rate", type=_positive, metavar="EV/S",
                   help="scale: device events per second (up to 20000; default 1000)")


def _scale_options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k in ("stores", "devices_per_store", "rate") if (v := getattr(args, k, None)) is not None}


def client_token(token_file: str | None, role: str) -> str | None:
    """A client's token: ``--token-file`` (``role = token`` lines, or just the token),
    else ``WALLBOARD_<ROLE>_TOKEN`` from the environment."""
    if token_file:
        text = Path(token_file).read_text(encoding="utf-8")
        pairs = [ln.split("=", 1) for ln in text.splitlines() if "=" in ln and not ln.lstrip().startswith("#")]
        if pairs:
            table = {k.strip(): v.strip().strip('"') for k, v in pairs}
            return table.get(role) or None
        return text.strip() or None
    return os.environ.get(f"WALLBOARD_{role.upper()}_TOKEN") or None


def register(subparsers: Any) -> None:
    """Add ``hub``, ``demo``, ``record`` and ``replay`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "hub", help="run the hub (fan-out server with a durable journal)",
        description="Run the hub: /feed for walls, /publish for producers, GET /metrics for counters. "
        "Tokens come from WALLBOARD_PUBLISH_TOKEN, WALLBOARD_SUBSCRIBE_TOKEN, WALLBOARD_CONTROL_TOKEN or "
        "--token-file; a role without a token is open, which is only allowed on a loopback bind.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to bind (default {DEFAULT_PORT}; 0 = any)")
    p.add_argument("--journal", metavar="PATH|URL",
                   help="SQLite journal file (WAL); events survive restarts and kill -9 (default: in memory); or "
                   "nats://HOST:PORT[,HOST:PORT...]/STREAM: a NATS JetStream stream that several hubs share "
                   "(pip install 'wallboard[cluster]')")
    p.add_argument("--replicas", type=int, default=1, metavar="N",
                   help="replicas of the JetStream stream (and snapshot bucket) when the hub creates them "
                   "(default 1; 3 on a three-node cluster)")
    p.add_argument("--new-epoch", action="store_true",
                   help="start a new epoch of the log when the journal is missing, damaged or ends before what "
                   "was committed (a damaged file is moved aside; walls resync); without it the hub refuses")
    p.add_argument("--demo", metavar="SCENARIO", help="also run a simulator scenario in-process: "
                   "launch-928, double-11, scale, or a path to a scenario .toml")
    p.add_argument("--speed", type=_positive, default=1.0, metavar="X", help="demo time acceleration (default 1)")
    p.add_argument("--seed", type=int, default=928, help="demo random seed (default 928)")
    _add_scale(p)
    p.add_argument("--heartbeat", type=_positive, default=1.0, metavar="S",
                   help="seconds between heartbeats to walls (default 1)")
    p.add_argument("--stats-interval", type=_positive, default=5.0, metavar="S",
                   help="seconds between stats messages to walls (default 5)")
    p.add_argument("--max-frame", type=_count, default=1 << 20, metavar="BYTES",
                   help="largest accepted frame (default 1 MiB); larger ones are refused as too_large")
    p.add_argument("--max-batch", type=_count, default=5000, metavar="N",
                   help="most events per publish batch (default 5000)")
    p.add_argument("--rate-limit", type=_positive, default=50_000.0, metavar="EV/S",
                   help="events per second per producer (its address and token, over its websocket connections "
                   "and HTTP requests), with a burst of one second's worth (default 50000; excess batches get rate_limited with retry_after, a batch "
                   "larger than the burst too_large)")
    p.add_argument("--max-event-bytes", type=_count, default=1 << 19, metavar="BYTES",
                   help="largest event, encoded (default 512 KiB, also the most allowed); larger ones are "
                   "refused as too_large")
    p.add_argument("--max-ingest-bytes", type=_count, default=64 << 20, metavar="BYTES",
                   help="bytes of accepted events waiting for their commit, over all producers (default 64 MiB); "
                   "past it batches are answered unavailable with retry_after (HTTP 503)")
    p.add_argument("--max-lag", type=_count, default=20_000, metavar="N",
                   help="events a wall may fall behind before its backlog is dropped and it gets a "
                   "snapshot (default 20000)")
    p.add_argument("--conflate-after", type=_count0, default=2000, metavar="N",
                   help="a wall with more than N events waiting gets them conflated: of each device only the "
                   "updates no later one overwrites (seqs stay honest: docs/protocol.md); 0: never (default 2000)")
    p.add_argument("--tail-bytes", type=_count, default=256 << 20, metavar="BYTES",
                   help="bytes of recent encoded events kept in memory for walls, in the fan-out tail and in the "
                   "log's recent rows each (default 256 MiB; at least 4 x --max-frame); older ones are read from "
                   "the journal")
    p.add_argument("--max-devices", type=_count, default=250_000, metavar="N",
                   help="devices the hub keeps (default 250000); past it a new device evicts the least recently "
                   "updated one silent for its ttl + --evict-after, else it is not kept (counted)")
    p.add_argument("--max-stores", type=_count, default=25_000, metavar="N",
                   help="stores the hub keeps (default 25000); a new one evicts the least recently updated store "
                   "without devices silent for --evict-after, else it is not kept (counted)")
    p.add_argument("--evict-after", type=_positive, default=3600.0, metavar="S",
                   help="seconds past its ttl (by event timestamps) a device or store must have been silent to be "
                   "evicted under --max-devices / --max-stores (default 3600)")
    p.add_argument("--snapshot-budget", type=_count, default=20, metavar="N",
                   help="snapshots per wall address per minute (default 20); past it a hello that needs one is "
                   "answered unavailable with retry_after and closed (1013); replays need none")
    p.add_argument("--wall-drop-after", type=_positive, default=30.0, metavar="S",
                   help="close a wall (code 1013, counted walls_dropped) that stays past --max-lag, or does not "
                   "read a frame, for this many seconds (default 30); it reconnects and resyncs")
    p.add_argument("--max-connections", type=_count, default=4096, metavar="N",
                   help="open connections on the hub port, handshakes included (default 4096); past it a new one "
                   "is answered 503 with Retry-After (counted rejects_connections)")
    p.add_argument("--max-connections-per-address", type=_count, default=256, metavar="N",
                   help="open connections from one address (default 256; behind a proxy every client has its "
                   "address); past it 503 with Retry-After")
    p.add_argument("--compact-every", type=_count, default=100_000, metavar="N",
                   help="events between journal snapshots (default 100000)")
    p.add_argument("--keep-events", type=int, default=100_000, metavar="N",
                   help="events kept after a snapshot for replay to reconnecting walls (default 100000)")
    p.add_argument("--keep", type=duration, default=3600.0, metavar="DURATION",
                   help="keep every event committed within this long (e.g. 90m, 24h, 7d; default 1h) and "
                   "every snapshot made meanwhile (compressed, within --replay-budget), for replays (hello "
                   "with at; wallboard record --from); 0: only --keep-events decides. Disk: about 150 bytes "
                   "per event, a compressed snapshot of 100,000 devices ~1-5 MB")
    p.add_argument("--replay-budget", type=_count, default=32768, metavar="MB",
                   help="MB of compressed snapshots kept for replays (default 32768: a day of one every 10 s "
                   "at 1-4 MB each); past it they are thinned evenly, so a seek far back replays more events "
                   "(is slower) but the disk stays bounded")
    p.add_argument("--dedupe-window", type=_positive, default=24 * 3600.0, metavar="S",
                   help="seconds the journal remembers each committed (producer, batch) key, so a resend "
                   "within it is acked as a duplicate, never applied twice (default 86400 = 24 h)")
    p.add_argument("--compression", action="store_true",
                   help="enable permessage-deflate (off by default: CPU cost per wall outweighs the "
                   "bandwidth saved on a LAN)")
    p.add_argument("--origin", action="append", default=[], metavar="URL",
                   help="allowed browser Origin (repeatable; '*' = any); without it a request carrying an "
                   "Origin header (a browser page) is refused, clients without one are not affected")
    p.add_argument("--token-file", metavar="F", help="file of 'role = token' or 'token = role,role' lines "
                   "(roles publish, subscribe, control, metrics; tokens of 16+ characters)")
    p.add_argument("--max-refusals", type=_count, default=10, metavar="N",
                   help="auth/origin refusals of one address within 60 s before it is blocked (default 10)")
    p.add_argument("--refusal-block", type=float, default=60.0, metavar="S",
                   help="seconds a blocked address is refused at the handshake (HTTP 429; default 60)")
    p.add_argument("--tls-cert", metavar="F", help="TLS certificate chain (PEM); serve wss://")
    p.add_argument("--tls-key", metavar="F", help="TLS private key (PEM), with --tls-cert")
    p.add_argument("--http-port", type=int, default=None, metavar="PORT",
                   help="also serve HTTP ingest on this port: POST /events, /alertmanager, /grafana, /zabbix, GET /metrics, "
                   "/healthz (same host, tokens and TLS; default off; 0 = any free port)")
    p.add_argument("--mapping", metavar="FILE",
                   help="alert mapping TOML for /alertmanager and /grafana (default: the rules in docs/integrations.md)")
    p.add_argument("--sources", metavar="FILE",
                   help="sources TOML: [[prometheus]] KPI queries run on schedule, [[sink]] incident notifications "
                   "to DingTalk, WeCom or a JSON webhook (docs/integrations.md; check it with "
                   "'wallboard check-sources FILE')")
    _add_log_level(p)
    p.set_defaults(func=cmd_hub)

    p = subparsers.add_parser("demo", help="publish a simulator scenario into a running hub",
                              description="Run a demo scenario and publish it to a hub's /publish endpoint.")
    p.add_argument("--hub", default=f"ws://127.0.0.1:{DEFAULT_PORT}/publish", metavar="URL",
                   help=f"hub URL (/publish or /feed of the hub; default ws://127.0.0.1:{DEFAULT_PORT}/publish)")
    p.add_argument("--scenario", default="launch-928", metavar="NAME",
                   help="launch-928 (default), double-11, scale, or a path to a scenario .toml")
    p.add_argument("--speed", type=_positive, default=1.0, metavar="X", help="time acceleration (default 1)")
    p.add_argument("--seed", type=int, default=928, help="random seed (default 928)")
    p.add_argument("--duration", type=_positive, metavar="S", help="stop after S real seconds (default: run until "
                   "interrupted)")
    _add_scale(p)
    _add_token_file(p, "publish")
    _add_log_level(p)
    p.set_defaults(func=cmd_demo)

    p = subparsers.add_parser("record", help="record a hub's feed into a JSON-lines file",
                              description="Subscribe to a hub's /feed and append every event (and snapshot) "
                              "as one JSON line to --out; resumes after a dropped connection, gives up after "
                              "--retries failed connects in a row (exit 1). Ctrl+C / SIGTERM end it (exit 0) with "
                              "the count of events written.")
    p.add_argument("--feed", required=True, metavar="URL[,URL...]",
                   help="hub feed URL, e.g. ws://127.0.0.1:8765/feed; several hubs of one log comma-separated (on "
                   "loss of one the recording goes on from the next, from the same seq)")
    p.add_argument("--out", required=True, metavar="FILE.jsonl", help="output file (appended to)")
    p.add_argument("--duration", type=_positive, metavar="S", help="stop after S seconds (default: until Ctrl+C)")
    p.add_argument("--from", dest="t_from", type=_moment, metavar="TIME",
                   help="record a range of the hub's history instead of the live feed: the state at TIME "
                   "(RFC 3339 or epoch seconds) and every event after it up to --to")
    p.add_argument("--to", dest="t_to", type=_moment, metavar="TIME",
                   help="end of the --from range (default: now)")
    _add_retries(p)
    _add_token_file(p, "subscribe")
    _add_log_level(p)
    p.set_defaults(func=cmd_record)

    p = subparsers.add_parser("replay", help="publish a recording into a hub",
                              description="Publish a recording made by 'wallboard record' into a hub, paced "
                              "by its events' timestamps from the first event after the opening snapshot (whose "
                              "records go at once); timestamps are shifted to now unless --keep-ts. Stopped by "
                              "Ctrl+C / SIGTERM it says how many events it sent (exit 130 / 143).")
    p.add_argument("file", metavar="FILE.jsonl", help="recording to replay")
    p.add_argument("--hub", default=f"ws://127.0.0.1:{DEFAULT_PORT}/publish", metavar="URL",
                   help=f"hub URL (default ws://127.0.0.1:{DEFAULT_PORT}/publish)")
    p.add_argument("--speed", type=_positive, default=1.0, metavar="X",
                   help="replay speed factor (default 1 = as recorded)")
    p.add_argument("--keep-ts", action="store_true", help="keep the recorded timestamps instead of shifting "
                   "them to now")
    _add_retries(p)
    _add_token_file(p, "publish")
    _add_log_level(p)
    p.set_defaults(func=cmd_replay)


def _run(coro: Any, stopped_by: list[str] | None = None) -> Any:
    """Run a coroutine; Ctrl+C / SIGTERM end it cleanly (None is returned, and the
    signal's name appended to ``stopped_by``)."""
    async def main() -> Any:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()

        def stop(sig: signal.Signals) -> None:
            if stopped_by is not None:
                stopped_by.append(sig.name)
            task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop, sig)
            except (NotImplementedError, RuntimeError):  # not the main thread / Windows
                pass
        try:
            return await task
        except asyncio.CancelledError:
            return None

    return asyncio.run(main())


def cmd_hub(args: argparse.Namespace) -> int:
    from .auth import AuthConfigError
    from .journal_guard import JournalRefused
    from .server import Hub, HubConfig, configure_logging
    from .simulator import ScenarioError, load_scenario
    from ..gctune import tune_gc, tune_switch_interval
    from ..heap import tune_malloc

    configure_logging(args.log_level)
    tune_gc()
    tune_switch_interval()  # the journal's worker thread gets the GIL back sooner
    tune_malloc()   # before any worker thread: fixed mmap threshold, 2 arenas (wallboard/heap.py)
    try:
        if args.demo:
            load_scenario(args.demo)
        check_tls_files(args.tls_cert, args.tls_key)
        cfg = HubConfig(host=args.host, port=args.port, journal=args.journal, demo=args.demo, speed=args.speed,
                        replicas=args.replicas, seed=args.seed, demo_options=_scale_options(args), heartbeat_s=args.heartbeat,
                        stats_s=args.stats_interval, max_frame=args.max_frame, max_batch=args.max_batch,
                        rate_limit=args.rate_limit, max_lag=args.max_lag, conflate_after=args.conflate_after,
                        tail_events=max(args.max_lag, 50_000), compact_every=args.compact_every,
                        keep_events=args.keep_events, keep_s=args.keep, replay_budget_mb=args.replay_budget,
                        compression=args.compression, origins=args.origin,
                        token_file=args.token_file, tls_cert=args.tls_cert, tls_key=args.tls_key,
                        http_port=args.http_port, mapping=args.mapping, sources=args.sources, max_refusals=args.max_refusals,
                        refusal_block=args.refusal_block, dedupe_window=args.dedupe_window,
                        new_epoch=args.new_epoch, max_event_bytes=args.max_event_bytes,
                        max_ingest_bytes=args.max_ingest_bytes, wall_drop_s=args.wall_drop_after,
                        snapshot_budget=args.snapshot_budget, max_devices=args.max_devices,
                        max_stores=args.max_stores, evict_after_s=args.evict_after,
                        tail_bytes=args.tail_bytes, max_connections=args.max_connections,
                        max_connections_per_address=args.max_connections_per_address)
        hub = Hub(cfg)
    except (AuthConfigError, ScenarioError, ValueError) as e:
        print(f"wallboard hub: {e}", file=sys.stderr)
        return 2

    async def serve() -> None:
        await hub.astart()
        print(f"wallboard hub: listening on {hub.url} (publish: {hub.publish_url})", flush=True)
        if hub.http is not None:
            print(f"wallboard hub: HTTP ingest on {hub.http.url} (/events, /alertmanager, /grafana, /zabbix, "
                  "/metrics)", flush=True)
        if hub.sources is not None:
            cfg = hub.sources.cfg
            print(f"wallboard hub: sources from {cfg.file}: {len(cfg.prometheus)} Prometheus, {len(cfg.sinks)} sinks",
                  flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await hub.astop()

    try:
        _run(serve())
    except JournalRefused as e:
        print(f"wallboard hub: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"wallboard hub: cannot bind {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


def _publish_url(url: str) -> str:
    u = url.rstrip("/")
    if u.endswith("/feed"):
        return u[: -len("/feed")] + "/publish"
    if not u.endswith("/publish"):
        u += "/publish"
    return u


def cmd_demo(args: argparse.Namespace) -> int:
    from .record import AuthFailed
    from .server import configure_logging
    from .simulator import ScenarioError, load_scenario, run_to_url

    configure_logging(args.log_level)
    try:
        load_scenario(args.scenario)
    except ScenarioError as e:
        print(f"wallboard demo: {e}", file=sys.stderr)
        return 2
    try:
        rejected = _run(run_to_url(_publish_url(args.hub), args.scenario, speed=args.speed, seed=args.seed,
                                   token=client_token(args.token_file, "publish"),
                                   options=_scale_options(args), duration=args.duration))
    except AuthFailed as e:
        print(f"wallboard demo: {e}", file=sys.stderr)
        return 1
    return 1 if rejected else 0


def check_tls_files(cert: str | None, key: str | None) -> None:
    """ValueError naming the option and file when ``--tls-cert`` / ``--tls-key`` cannot be
    used: missing, unreadable, not PEM, or a key that does not match the certificate."""
    import ssl

    if bool(cert) != bool(key):
        raise ValueError("--tls-cert and --tls-key go together: give both (PEM files)")
    if not cert or not key:
        return
    for opt, f in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(f).exists():
            raise ValueError(f"{opt} {f}: no such file")
        if not Path(f).is_file():
            raise ValueError(f"{opt} {f}: not a file")
        try:
            Path(f).open("rb").close()
        except OSError as e:
            raise ValueError(f"{opt} {f}: cannot read: {e.strerror or e}") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as e:
        raise ValueError(f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate chain and its private "
                         f"key ({getattr(e, 'reason', None) or e})") from None


def _moment(text: str) -> float:
    """``--from`` / ``--to``: RFC 3339 or epoch seconds."""
    from wallboard import protocol as P

    try:
        return P.parse_ts(float(text) if text.replace(".", "", 1).isdigit() else text, where="time")
    except P.ProtocolError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: {e.detail}; expected RFC 3339 (2026-09-28T09:31:00+08:00) "
                                         "or epoch seconds") from None


def cmd_record_range(args: argparse.Namespace) -> int:
    from .record import AuthFailed, Progress, Unreachable
    from .record_range import RangeRefused, record_range

    prog = Progress()
    t_to = args.t_to if args.t_to is not None else time.time()
    try:
        asyncio.run(record_range(args.feed, args.out, args.t_from, t_to,
                                 token=client_token(args.token_file, "subscribe"), progress=prog))
    except ValueError as e:
        print(f"wallboard record: {e}", file=sys.stderr)
        return 2
    except (AuthFailed, Unreachable, RangeRefused) as e:
        print(f"wallboard record: {e}; {prog.events} events written to {args.out}", file=sys.stderr)
        return 1
    span = " .. ".join(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) for t in (args.t_from, t_to))
    print(f"wallboard record: {prog.events} events written to {args.out} (history {span}, "
          f"{args.t_from:.3f} .. {t_to:.3f})")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from .record import AuthFailed, Progress, Unreachable, record
    from .server import configure_logging

    configure_logging(args.log_level)
    if args.t_from is not None:
        return cmd_record_range(args)
    if args.t_to is not None:
        print("wallboard record: --to needs --from", file=sys.stderr)
        return 2
    prog, stopped = Progress(), []
    created = not Path(args.out).exists()
    try:
        _run(record(args.feed, args.out, token=client_token(args.token_file, "subscribe"),
                    duration=args.duration, retries=args.retries, progress=prog), stopped)
    except ValueError as e:  # --out cannot be written
        print(f"wallboard record: {e}", file=sys.stderr)
        return 2
    except (AuthFailed, Unreachable) as e:
        if created and prog.events == 0:
            Path(args.out).unlink(missing_ok=True)  # leave no empty recording behind
        print(f"wallboard record: {e}; {prog.events} events written to {args.out}", file=sys.stderr)
        return 1
    except OSError as e:  # writing the file failed (disk full, ...)
        print(f"wallboard record: writing {args.out}: {e.strerror or e}; {prog.events} events written",
              file=sys.stderr)
        return 1
    how = f" (stopped by {stopped[0]})" if stopped else ""
    print(f"wallboard record: {prog.events} events written to {args.out}{how}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .record import AuthFailed, Progress, Unreachable, replay
    from .server import configure_logging

    configure_logging(args.log_level)
    prog, stopped = Progress(), []
    url = _publish_url(args.hub)
    try:
        _run(replay(args.file, url, speed=args.speed, token=client_token(args.token_file, "publish"),
                    keep_ts=args.keep_ts, retries=args.retries, progress=prog), stopped)
    except (ValueError, OSError) as e:
        print(f"wallboard replay: {e}", file=sys.stderr)
        return 2
    except (AuthFailed, Unreachable) as e:
        print(f"wallboard replay: {e}; {prog.events} of {prog.total} events published ({prog.acked} acknowledged)",
              file=sys.stderr)
        return 1
    if stopped:
        print(f"wallboard replay: stopped by {stopped[0]}: {prog.events} of {prog.total} events published to "
              f"{url} ({prog.acked} acknowledged)", file=sys.stderr)
        return 130 if stopped[0] == "SIGINT" else 143
    print(f"wallboard replay: {prog.events} events published to {url}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wallboard.hub COMMAND ...`` (same as ``wallboard COMMAND ...``)."""
    p = argparse.ArgumentParser(prog="python -m wallboard.hub")
    register(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    return int(args.func(args) or 0)
