"""``wallboard publish``: send events from JSON Lines (a file or stdin) to a hub.

    wallboard publish --hub ws://127.0.0.1:8765 events.jsonl
    tail -F feed.jsonl | wallboard publish --hub http://127.0.0.1:8766 --token-file pub.token -

Each line is one event (``docs/protocol.md``); blank lines are skipped. Lines are
checked locally first; good events go out in batches (``--batch-size``, and whatever has
arrived when the input pauses for ``--linger`` seconds) over the websocket ``/publish``
endpoint (``ws://``/``wss://`` URLs) or ``POST /events`` (``http://``/``https://``).
Every batch carries the producer id and a batch key (a hash of the batch's position and
content, plus a random salt of the run when reading a pipe), so a batch resent after a
lost connection is acknowledged as a duplicate instead of being applied twice, and
another file published under the same ``--producer`` never shares a key with the first;
``rate_limited`` and ``unavailable`` answers are retried (after the hub's
``retry_after``, with jittered exponential backoff); ``conflict`` and other refusals of
a whole batch stop the run (exit status 2). Rejected lines are reported on stderr as
``FILE:LINE: code: message`` and the rest of their batch is still published.

Exit status: 0 all lines published, 1 some lines rejected, 2 the hub refused the token,
could not be reached within ``--retries`` attempts, or the input could not be read.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from wallboard import protocol as P
from wallboard.backoff import backoff
from wallboard.argtypes import count
from wallboard.argtypes import positive as _positive

MAX_BATCH_BYTES = 512 * 1024


class Fatal(Exception):
    """Stop publishing: the hub refused the token or could not be reached."""


class Retry(Exception):
    """A transient failure: resend the same batch after a backoff delay (at least
    ``retry_after`` seconds when the hub named one)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def batch_key(salt: bytes, n: int, events: list[dict[str, Any]]) -> int:
    """The key of batch ``n``: 53 bits (the protocol's integer range) of a hash of ``salt``, ``n`` and the batch's
    content. With an empty salt (regular files) a rerun of the same file under the same
    ``--producer`` gives the same keys (acked as duplicates, not applied twice) while
    another file under that producer gives other keys; a stream uses a random salt."""
    h = hashlib.blake2b(salt + n.to_bytes(8, "big"), digest_size=8)
    h.update(orjson.dumps(events, option=orjson.OPT_SORT_KEYS))
    return int.from_bytes(h.digest(), "big") >> 11


@dataclass
class Reply:
    """The hub's answer to one batch: an ack, or the first bad event's index."""

    first: int | None = None
    last: int | None = None
    duplicate: bool = False
    index: int | None = None
    code: str = ""
    message: str = ""


@dataclass
class Report:
    """What a run did; ``exit_code()`` is the process status."""

    sent: int = 0
    batches: int = 0
    duplicates: int = 0
    rejected: int = 0
    first: int | None = None
    last: int | None = None
    failed: str = ""
    reject_lines: list[int] = field(default_factory=list)

    def exit_code(self) -> int:
        return 2 if self.failed else (1 if self.rejected else 0)

    def summary(self) -> str:
        seqs = f" (seq {self.first}..{self.last})" if self.first is not None else ""
        text = (f"published {self.sent} events in {self.batches} batches{seqs}; {self.rejected} lines rejected; "
                f"{self.duplicates} duplicate acks")
        return text + (f"; STOPPED: {self.failed}" if self.failed else "")


# --------------------------------------------------------------------------- transports


class WsTransport:
    """Batches over the websocket ``/publish`` endpoint (one batch in flight)."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        self.url, self.token, self.timeout = url, token, timeout
        self.ws: Any = None

    async def send(self, events: list[dict[str, Any]], producer: str, batch: int) -> Reply:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        if self.ws is None:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
            try:
                self.ws = await asyncio.wait_for(connect(self.url, additional_headers=headers, max_size=None,
                                                         open_timeout=self.timeout), self.timeout)
            except InvalidStatus as e:
                status = e.response.status_code
                if status in (401, 403):
                    raise Fatal(f"hub refused the token (HTTP {status})") from None
                raise Retry(f"handshake answered HTTP {status}") from None
            except (OSError, asyncio.TimeoutError) as e:
                raise Retry(f"cannot connect to {self.url}: {e or type(e).__name__}") from None
        msg = P.Publish(events=events, producer=producer, batch=batch, token=self.token)
        try:
            await self.ws.send(P.encode(msg).decode())
            while True:
                raw = await asyncio.wait_for(self.ws.recv(), self.timeout)
                reply = P.decode(raw, expect=("ack", "error"))
                if isinstance(reply, P.Ack):
                    if reply.batch not in (None, batch):
                        continue  # a late ack of an earlier attempt
                    return Reply(reply.first, reply.last, reply.duplicate)
                assert isinstance(reply, P.Error)
                if reply.code == "auth":
                    raise Fatal(f"hub refused the token: {reply.message}")
                if reply.code in P.RETRYABLE_CODES:
                    raise Retry(f"{reply.code}: {reply.message}", reply.retry_after)
                if reply.index is not None:
                    return Reply(index=reply.index, code=reply.code, message=reply.message)
                raise Fatal(f"hub refused batch {batch}: {reply.code}: {reply.message}")
        except (ConnectionClosed, OSError, asyncio.TimeoutError) as e:
            await self.close()
            raise Retry(f"connection lost: {e or type(e).__name__}") from None
        except P.ProtocolError as e:
            await self.close()
            raise Retry(f"unexpected reply: {e}") from None

    async def close(self) -> None:
        if self.ws is not None:
            ws, self.ws = self.ws, None
            try:
                await ws.close()
            except Exception:  # already gone
                pass


class HttpTransport:
    """Batches as ``POST /events`` with the idempotency headers."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        self.url, self.token, self.timeout = url, token, timeout
        self.session: Any = None

    async def send(self, events: list[dict[str, Any]], producer: str, batch: int) -> Reply:
        import aiohttp

        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        headers = {"Content-Type": "application/json", "X-Wallboard-Producer": producer,
                   "X-Wallboard-Batch": str(batch)}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            async with self.session.post(self.url, data=orjson.dumps(events), headers=headers) as r:
                body = await r.read()
                status = r.status
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
            raise Retry(f"cannot reach {self.url}: {e or type(e).__name__}") from None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if status == 200:
            return Reply(data.get("first"), data.get("last"), bool(data.get("duplicate")))
        if data.get("index") is not None and status in (400, 403, 413):
            return Reply(index=int(data["index"]), code=str(data.get("error", "")), message=str(data.get("message")))
        if status in (401, 403):
            raise Fatal(f"hub refused the token (HTTP {status}): {data.get('message', '')}")
        if status in (429, 502, 503, 504) or status >= 500:
            try:
                after: float | None = float(r.headers.get("Retry-After", ""))
            except ValueError:
                after = None
            raise Retry(f"HTTP {status}: {data.get('message', '')}", after)
        raise Fatal(f"HTTP {status}: {data.get('message', body[:200].decode('utf-8', 'replace'))}")

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


def make_transport(url: str, token: str | None, timeout: float) -> WsTransport | HttpTransport:
    """Pick the transport from the URL scheme; add the default path when there is none."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("ws", "wss", "http", "https"):
        raise ValueError(f"--hub {url!r}: expected ws://HOST:PORT[/publish] or http://HOST:PORT[/events]")
    host, slash, path = rest.partition("/")
    if not host:
        raise ValueError(f"--hub {url!r}: missing host")
    if scheme in ("ws", "wss"):
        path = "publish" if path in ("", "feed") else path
        return WsTransport(f"{scheme}://{host}/{path}", token, timeout)
    return HttpTransport(f"{scheme}://{host}/{path or 'events'}", token, timeout)


# --------------------------------------------------------------------------- publisher


class Publisher:
    """Validates lines, batches them, sends with retries; fills a :class:`Report`."""

    def __init__(self, transport: Any, *, name: str, producer: str, batch_size: int = 500,
                 retries: int = 10, err: TextIO = sys.stderr, salt: bytes = b"") -> None:
        self.transport = transport
        self.name = name
        self.producer = producer
        self.salt = salt
        self.batch_size = batch_size
        self.retries = retries
        self.err = err
        self.report = Report()
        self._batch_no = 0
        self._events: list[dict[str, Any]] = []
        self._lines: list[int] = []
        self._bytes = 0

    def _reject(self, line: int, code: str, message: str) -> None:
        self.report.rejected += 1
        if len(self.report.reject_lines) < 100_000:
            self.report.reject_lines.append(line)
        text = message if message.startswith(f"{code}:") else f"{code}: {message}"
        print(f"{self.name}:{line}: {text}", file=self.err)

    async def add_line(self, lineno: int, raw: str) -> None:
        """Check one input line and queue it; sends a batch when it is full."""
        if not raw.strip():
            return
        if len(raw) > P.MAX_FRAME:
            self._reject(lineno, "too_large", f"event of {len(raw)} bytes (expected at most {P.MAX_FRAME})")
            return
        try:
            ev = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            self._reject(lineno, "not_json", f"{e.msg} at column {e.colno}")
            return
        try:
            P.validate_event(ev, require_seq=False, require_ts=False, op="publish")
        except P.ProtocolError as e:
            self._reject(lineno, e.code, str(e))
            return
        self._events.append(ev)
        self._lines.append(lineno)
        self._bytes += len(raw) + 1
        if len(self._events) >= self.batch_size or self._bytes >= MAX_BATCH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        """Send what is queued as one batch (dropping rejected events and resending)."""
        events, lines = self._events, self._lines
        self._events, self._lines, self._bytes = [], [], 0
        if not events:
            return
        self._batch_no += 1
        key = batch_key(self.salt, self._batch_no, events)  # kept for every resend of this batch
        delays = backoff(initial=0.0, min_delay=0.25, max_delay=5.0)
        attempts = 0
        while events:
            try:
                reply = await self.transport.send(events, self.producer, key)
            except Retry as e:
                attempts += 1
                if attempts > self.retries:
                    raise Fatal(f"batch {self._batch_no} (lines {lines[0]}..{lines[-1]}) not acknowledged "
                                f"after {attempts} attempts: {e}") from None
                delay = max(next(delays), min(e.retry_after or 0.0, 30.0))
                print(f"{self.name}: {e}; retrying batch {self._batch_no} in {delay:.1f}s "
                      f"(attempt {attempts}/{self.retries})", file=self.err)
                await asyncio.sleep(delay)
                continue
            if reply.index is not None:
                i = reply.index
                if not 0 <= i < len(events):
                    raise Fatal(f"hub rejected event {i} of a batch of {len(events)}: {reply.message}")
                self._reject(lines[i], reply.code, reply.message)
                del events[i], lines[i]  # nothing was applied: resend the rest
                continue
            r = self.report
            r.sent += len(events)
            r.batches += 1
            r.duplicates += int(reply.duplicate)
            if reply.first is not None:
                r.first = reply.first if r.first is None else r.first
                r.last = reply.last
            return


def _read_token(path: str | None) -> str | None:
    """A token file holds the bare token, or lines of the hub's token file: ``publish =
    TOKEN`` (else ``control = TOKEN``, which may send control events) or ``TOKEN = roles``
    with publish or control among the roles. Without a file: ``WALLBOARD_PUBLISH_TOKEN``,
    else ``WALLBOARD_CONTROL_TOKEN``."""
    if not path:
        return os.environ.get("WALLBOARD_PUBLISH_TOKEN") or os.environ.get("WALLBOARD_CONTROL_TOKEN") or None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise Fatal(f"cannot read --token-file {path}: {e.strerror}") from None
    found: dict[str, str] = {}
    for line in text.splitlines():
        left, sep, value = line.partition("=")
        if sep and left.strip() in ("publish", "control"):
            found.setdefault(left.strip(), value.strip().strip('"'))
        elif sep:
            left, _, value = line.rpartition("=")
            if {"publish", "control"} & {r.strip() for r in value.split(",")}:
                found.setdefault("publish", left.strip().strip('"'))
    if found:
        return found.get("publish") or found.get("control") or None
    token = text.strip()
    if not token or "\n" in token:
        raise Fatal(f"--token-file {path}: expected the token alone, a 'publish = TOKEN' or "
                    "'control = TOKEN' line")
    return token


def _reader(stream: TextIO, loop: asyncio.AbstractEventLoop, q: "asyncio.Queue[tuple[int, str] | None]",
            stop: threading.Event) -> None:
    """Thread: put (line number, text) on the queue; None at the end (bounded queue)."""
    def put(item: tuple[int, str] | None) -> None:
        asyncio.run_coroutine_threadsafe(q.put(item), loop).result()

    try:
        try:
            for n, line in enumerate(stream, 1):
                if stop.is_set():
                    return
                put((n, line))
        except (OSError, UnicodeDecodeError) as e:
            put((-1, str(e)))
        if not stop.is_set():
            put(None)
    except RuntimeError:  # the loop has ended (publishing stopped early)
        return


async def publish_stream(stream: TextIO, transport: Any, *, name: str, producer: str, batch_size: int = 500,
                         linger: float | None = 0.2, retries: int = 10, err: TextIO = sys.stderr) -> Report:
    """Publish every line of ``stream``; returns the :class:`Report` (never raises Fatal).

    ``linger``: send a partial batch when no line arrived for this long (for pipes; the
    batch keys then carry a random salt of this run); ``None`` makes batch boundaries
    depend only on the input, and the keys only on the batches' position and content, so
    a rerun of the same file with the same producer id is acked as duplicates (used for
    regular files) while other content under that producer id is published.
    """
    salt = b"" if linger is None else uuid.uuid4().bytes
    pub = Publisher(transport, name=name, producer=producer, batch_size=batch_size, retries=retries, err=err,
                    salt=salt)
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[tuple[int, str] | None] = asyncio.Queue(maxsize=4 * batch_size)
    stop = threading.Event()
    t = threading.Thread(target=_reader, args=(stream, loop, q, stop), name="publish-reader", daemon=True)
    t.start()
    try:
        while True:
            try:
                item = await asyncio.wait_for(q.get(), linger) if pub._events and linger else await q.get()
            except asyncio.TimeoutError:  # input paused: send what we have
                await pub.flush()
                continue
            if item is None:
                break
            n, text = item
            if n < 0:
                raise Fatal(f"cannot read {name}: {text}")
            await pub.add_line(n, text)
        await pub.flush()
    except Fatal as e:
        pub.report.failed = str(e)
    finally:
        stop.set()
        while not q.empty():  # unblock the reader
            q.get_nowait()
        await transport.close()
    return pub.report




def run(args: argparse.Namespace) -> int:
    """Entry of ``wallboard publish`` (``args`` from :func:`register`)."""
    err = sys.stderr
    if args.batch_size > P.MAX_BATCH:
        print(f"wallboard publish: --batch-size {args.batch_size}: at most {P.MAX_BATCH}", file=err)
        return 2
    try:
        token = _read_token(args.token_file)
        transport = make_transport(args.hub, token, args.timeout)
    except (Fatal, ValueError) as e:
        print(f"wallboard publish: {e}", file=err)
        return 2
    producer = args.producer or f"publish-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    linger: float | None = args.linger
    if args.file == "-":
        stream, name = sys.stdin, "<stdin>"
    else:
        try:
            stream, name = open(args.file, encoding="utf-8"), args.file  # noqa: SIM115 - closed below
            if os.path.isfile(args.file):
                linger = None  # deterministic batches: a rerun with --producer is idempotent
        except OSError as e:
            print(f"wallboard publish: cannot read {args.file}: {e.strerror}", file=err)
            return 2
    try:
        report = asyncio.run(publish_stream(stream, transport, name=name, producer=producer,
                                            batch_size=args.batch_size, linger=linger,
                                            retries=args.retries, err=err))
    finally:
        if stream is not sys.stdin:
            stream.close()
    print(f"wallboard publish: {report.summary()}", file=err)
    return report.exit_code()


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``publish`` subcommand to ``wallboard``'s subparsers (sets ``func``)."""
    p = subparsers.add_parser(
        "publish", help="send events from JSON Lines (file or stdin) to a hub",
        description=("Send events from JSON Lines to a hub, batched, with retry and idempotent resends "
                     "(producer id + batch number). Rejected lines are reported as FILE:LINE: code: message; "
                     "the other lines are still published."),
        epilog="exit status: 0 all published, 1 some lines rejected, 2 refused/unreachable/unreadable")
    p.add_argument("--hub", required=True, metavar="URL",
                   help="ws://HOST:PORT (websocket /publish) or http://HOST:PORT (HTTP ingest POST /events)")
    p.add_argument("--token-file", metavar="F",
                   help="file with the publish token (default: $WALLBOARD_PUBLISH_TOKEN, or none)")
    p.add_argument("--producer", metavar="ID",
                   help="producer id for idempotent resends (default: publish-HOST-RANDOM); reuse it with the "
                        "same input to make a rerun acknowledge batches already applied instead of repeating them")
    p.add_argument("--batch-size", type=count, default=500, metavar="N",
                   help=f"events per batch (default 500, at most {P.MAX_BATCH})")
    p.add_argument("--linger", type=_positive, default=0.2, metavar="S",
                   help="send a partial batch when the input pauses this long (default 0.2 s)")
    p.add_argument("--retries", type=count, default=10, metavar="N",
                   help="attempts per batch before giving up (default 10)")
    p.add_argument("--timeout", type=_positive, default=10.0, metavar="S",
                   help="seconds to wait for a connection or an ack (default 10)")
    p.add_argument("file", metavar="FILE|-", help="JSON Lines file, or - for stdin")
    p.set_defaults(func=run)
    return p


__all__ = ["register", "run", "publish_stream", "make_transport", "Publisher", "Report"]
