"""HTTP side of the hub: JSON/JSONL ingest, alert webhooks, Prometheus metrics, health.

An aiohttp server that runs on the hub's own asyncio loop and feeds the same
``Hub.submit()`` path as the websocket ``/publish`` endpoint, so every accepted event is
journaled before it is answered. Start it after the hub::

    await hub.astart()
    ingest = await start_http_ingest(hub, "127.0.0.1", 8766, mapping=load_mapping(path))
    ingest.port                  # the bound port (port 0 picks a free one)
    ...
    await ingest.stop()          # before hub.astop()

Endpoints (see ``docs/integrations.md``):

* ``POST /events``: a JSON array of events or JSON Lines. Needs the publish role
  (``Authorization: Bearer <token>``). Optional ``X-Wallboard-Producer`` and
  ``X-Wallboard-Batch`` headers make a resend idempotent. Answers
  ``{"first", "last", "count", "duplicate"}``; ``400`` names the index (and line for
  JSONL) and field of the first bad event -- nothing of that request is applied.
* ``POST /alertmanager`` / ``/grafana`` / ``/zabbix``: alert webhooks, one adapter module
  each (:mod:`wallboard.hub.adapters`), mapped by :mod:`wallboard.hub.alert_mapping` to
  incident and device upserts.
* ``GET /metrics``: 404 naming the hub port, where the one metrics endpoint is
  (:mod:`wallboard.hub.metrics`).
* ``GET /healthz``: ``{"status": "ok", ...}``, no token needed.

Refusals: 401 no token, 403 a token without the role, 413 body over ``max_body`` (1 MiB)
or more events than the hub's ``max_batch``, 409 ``conflict`` (the producer/batch key was
committed with other events), 429 over the rate limit and 503 ``unavailable`` when the
journal could not commit or the hub's ingest queue is full (``max_ingest_bytes``) (both retryable: resend the same request after ``Retry-After``
seconds; nothing was applied). Every refusal is counted in the hub's ``rejects_<reason>``.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import math
import ssl
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from wallboard import protocol as P

from .adapters import ADAPTERS
from .admission import CONNECTION_RETRY_S, RateBuckets, counted
from .alert_mapping import MappingRules, PayloadError
from .auth import bearer, empty_bearer, origin_allowed, peer_host, printable
from .batches import BatchRefused, JournalUnavailable
from .budget import IngestFull, check_event_bytes

if TYPE_CHECKING:  # pragma: no cover
    from .server import Hub

log = logging.getLogger("wallboard.hub.http")

MAX_BODY = 1 << 20
#: Seconds a request may take to arrive (headers from the connection's start or its last
#: answer; the body from the handler's first read); the connection is closed after it.
READ_TIMEOUT = 10.0
#: Seconds the listener waits for running requests when it stops (SIGTERM).
SHUTDOWN_TIMEOUT = 2.0
#: Content types a POST may carry: a browser cannot send them cross-origin without asking.
POST_TYPES = ("application/json", "application/x-ndjson")
PRODUCER_HEADER = "X-Wallboard-Producer"
BATCH_HEADER = "X-Wallboard-Batch"
_JSON = "application/json"


def server_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    """A TLS server context from PEM certificate chain and key files (same as the hub's)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class _Refusal(Exception):
    """An HTTP refusal: status, error code (a protocol error code) and JSON details."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: float = 1, reason: str | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.reason = reason or code  # counted as rejects_<reason>
        self.retry_after = retry_after
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def response(self) -> web.Response:
        body = {"error": self.code, "message": str(self), **self.extra}
        headers = {}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="wallboard"'
        elif self.status in (429, 503):  # retryable: resend the same request after this delay
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return web.Response(status=self.status, body=orjson.dumps(body), content_type=_JSON, headers=headers)



def parse_event_body(body: bytes, max_batch: int) -> tuple[list[dict[str, Any]], list[int] | None]:
    """Events of a ``POST /events`` body and, for JSON Lines, each event's line number.

    A body whose first non-blank byte is ``[`` is a JSON array; anything else is JSON
    Lines (one event per line, blank lines skipped). Every event is validated (``seq``
    and ``ts`` optional). Raises :class:`_Refusal` (400/413) for the first problem.
    """
    text = body.lstrip()
    if not text:
        raise _Refusal(400, "missing_field", "empty body: expected a JSON array of events or JSON Lines")
    lines: list[int] | None = None
    if text[:1] == b"[":
        try:
            events = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise _Refusal(400, "not_json", f"not JSON: {e.msg} at line {e.lineno} column {e.colno}",
                           offset=e.pos, line=e.lineno) from None
        if not isinstance(events, list):
            raise _Refusal(400, "bad_type", "expected a JSON array of events")
    else:
        events, lines = [], []
        for n, raw in enumerate(body.split(b"\n"), 1):
            if not raw.strip():
                continue
            try:
                events.append(orjson.loads(raw))
            except orjson.JSONDecodeError as e:
                raise _Refusal(400, "not_json", f"line {n}: not JSON: {e.msg} at column {e.colno}",
                               line=n, index=len(events)) from None
            lines.append(n)
            if len(events) > max_batch:
                break
    if len(events) > max_batch:
        raise _Refusal(413, "too_large", f"more than {max_batch} events in one request: split it "
                       f"(at most {max_batch} events per request)")
    if not events:
        raise _Refusal(400, "missing_field", "no events in the body")
    for i, ev in enumerate(events):
        try:
            P.validate_event(ev, index=i, require_seq=False, require_ts=False, op="publish")
        except P.ProtocolError as e:
            line = lines[i] if lines is not None else None
            msg = f"line {line}: {e}" if line is not None else str(e)
            raise _Refusal(400, e.code, msg, index=i, line=line, field=e.field) from None
    return events, lines


class HttpIngest:
    """The running HTTP listener; create it with :func:`start_http_ingest`."""

    def __init__(self, hub: "Hub", *, mapping: MappingRules | None = None, max_body: int = MAX_BODY,
                 rate_limit: float | None = None, read_timeout: float = READ_TIMEOUT) -> None:
        if max_body < 1024:
            raise ValueError(f"max_body={max_body!r}: expected >= 1024 bytes")
        if not read_timeout > 0:
            raise ValueError(f"read_timeout={read_timeout!r}: expected > 0 seconds")
        self.read_timeout = read_timeout
        rate = hub.config.rate_limit if rate_limit is None else rate_limit
        if not rate > 0:
            raise ValueError(f"rate_limit={rate!r}: expected > 0 events/s")
        self.hub = hub
        self.mapping = mapping or MappingRules()
        self.max_body = max_body
        # one bucket per producer (address and token), shared with its websocket connections
        # unless this port was given its own rate
        self.buckets = hub.rate_buckets if rate_limit is None else RateBuckets(rate)
        self.requests: dict[tuple[str, int], int] = {}
        self.host = ""
        self.port = 0
        self.scheme = "http"
        self._runner: web.AppRunner | None = None
        self.app = web.Application(middlewares=[self._middleware], client_max_size=max_body)
        self.app.add_routes([
            web.post("/events", self._events),
            *(web.post(f"/{name}", functools.partial(self._webhook, source=name)) for name in ADAPTERS),
            web.get("/metrics", self._metrics),
            web.get("/healthz", self._healthz),
        ])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
        """Bind and serve (on the running loop, which must be the hub's)."""
        self.hub.auth.check_bind(host)
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=SHUTDOWN_TIMEOUT, keepalive_timeout=self.read_timeout,
                                     lingering_time=min(2.0, self.read_timeout),  # unread body after a refusal
                                     logger=_QuietLog(self.hub))
        await self._runner.setup()
        # every connection counted from its accept in the hub's connection caps (one count
        # with the hub port's): wrap the protocol factory the site binds with
        self._runner._server = _CountingFactory(self._runner.server, self.hub)  # type: ignore[assignment]
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        addr = self._runner.addresses[0]
        self.host, self.port = addr[0], addr[1]
        self.scheme = "https" if ssl_context is not None else "http"
        self.hub.metrics.ingests.append(self)  # its request counts in the hub's /metrics
        log.info("HTTP ingest on %s (/events, %s, /metrics, /healthz)", self.url, ", ".join(f"/{a}" for a in ADAPTERS))

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests (bounded), release the port."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self in self.hub.metrics.ingests:
            self.hub.metrics.ingests.remove(self)

    # ------------------------------------------------------------------ plumbing
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            self._guard(request)
            resp = await handler(request)
        except _Refusal as r:
            self.hub.reject(r.reason)
            if r.code in ("auth", "origin", "no_client_header"):
                self.hub._log_refusal(_remote(request), f"{request.method} {printable(request.path, 80)}: {r}")
            elif r.code in ("forbidden", "blocked"):
                self.hub._log_refusal(_remote(request), f"{request.method} {printable(request.path, 80)}: {r}",
                                      gate=False)
            resp = r.response()
            if r.code == "blocked":
                later = self.hub.tarpit(resp)
                resp = await later if later is not resp else resp
            if r.status == 408 and request.protocol is not None:
                resp.force_close()
                await resp.prepare(request)  # answer now, then drop the rest of the slow body
                await resp.write_eof()
                request.protocol.force_close()
        except web.HTTPException as e:  # 404 / 405 from routing
            code = "not_found" if e.status == 404 else "bad_method"
            self.hub.reject(code)
            msg = (f"unknown path {request.path!r}: use POST /events, {', '.join(f'/{a}' for a in ADAPTERS)} or GET "
                   "/metrics, /healthz") if e.status == 404 else f"{request.method} not allowed on {request.path}"
            resp = web.Response(status=e.status, body=orjson.dumps({"error": code, "message": msg}),
                                content_type=_JSON, headers={k: v for k, v in e.headers.items() if k == "Allow"})
        path = request.path if request.match_info.route.resource is not None else "other"
        key = (path, resp.status)
        if key in self.requests or len(self.requests) < 200:  # bounded label set
            self.requests[key] = self.requests.get(key, 0) + 1
        return resp

    def _guard(self, request: web.Request) -> None:
        """Refusals before any handler runs: a blocked address (429), a browser Origin not
        allowed (403); for a POST a content type other than JSON / JSON Lines (415) and
        neither ``Authorization`` nor an ``X-Wallboard-*`` header (401), which together
        keep a cross-origin page from posting without the browser asking first."""
        over = getattr(request.protocol, "wb_refusal", None)
        if over:  # past --max-connections(-per-address), counted at the TCP accept with the hub port's
            raise _Refusal(503, "unavailable", over, retry_after=CONNECTION_RETRY_S, reason="connections")
        wait = self.hub.gate.blocked(_remote(request))
        if wait > 0:
            raise _Refusal(429, "blocked", f"too many refused attempts from this address; retry in {wait:.0f} s",
                           retry_after=max(1, round(wait)))
        origin = request.headers.get("Origin")
        if origin is not None and not origin_allowed(origin, self.hub.config.origins):
            raise _Refusal(403, "origin", f"origin {printable(origin, 200)!r} is not allowed: start the hub with "
                           "--origin for it")
        if request.method != "POST":
            return
        ctype = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if ctype not in POST_TYPES:
            raise _Refusal(415, "content_type", f"Content-Type {printable(ctype or 'missing', 80)!r}: expected "
                           + " or ".join(POST_TYPES))
        if "Authorization" not in request.headers and set(self.hub.auth.open_roles()) & {"publish", "control"} \
                and not any(k.lower().startswith("x-wallboard-") for k in request.headers):
            # without tokens anyone may post, but only a client that can set headers
            raise _Refusal(401, "no_client_header", "this hub has no publish token: send any 'Authorization: Bearer "
                           "<token>' or an 'X-Wallboard-Client: <name>' header")

    def _authorize(self, request: web.Request, *need: str) -> set[str]:
        """The roles of the request's token; 401/403 unless one of ``need`` is among them."""
        header = request.headers.get("Authorization")
        token = bearer(header)
        empty = empty_bearer(header)
        if header is not None and token is None and not empty:
            raise _Refusal(401, "auth", "malformed Authorization header: expected 'Bearer <token>'")
        # 'Bearer' with nothing after it (a script's unset token variable) presents no token,
        # as on the websocket side: fine where the role is open, a precise 401 where it is not
        roles = self.hub.auth.roles_for(token)
        if not roles.intersection(need):
            want = " or ".join(need)
            if empty:
                raise _Refusal(401, "auth", f"'Authorization: Bearer' without a token (an unset token variable?): "
                               f"a {want} token is required")
            if token is None:
                raise _Refusal(401, "auth", f"a {want} token is required: send 'Authorization: Bearer <token>'")
            raise _Refusal(403, "auth", f"the token does not grant {want}")
        return roles

    async def _read(self, request: web.Request) -> bytes:
        size = request.content_length
        if size is not None and size > self.max_body:
            raise _Refusal(413, "too_large", f"body of {size} bytes: at most {self.max_body} bytes per request")
        lane = peer_host(_remote(request))
        if not self.hub.ingest_queue.room(size or 0, lane):  # full: refused before the body is read
            e = self.hub._ingest_full(size or 0, lane)
            raise _Refusal(503, "unavailable", f"not applied: {e.message}; resend after the Retry-After delay",
                           retry_after=e.retry_after)
        data = bytearray()
        try:
            async with asyncio.timeout(self.read_timeout):
                async for chunk in request.content.iter_chunked(1 << 16):
                    data += chunk
                    if len(data) > self.max_body:
                        raise _Refusal(413, "too_large", f"body over {self.max_body} bytes: at most "
                                       f"{self.max_body} bytes per request")
        except TimeoutError:
            raise _Refusal(408, "timeout", f"request body not received within {self.read_timeout:g} s "
                           f"({len(data)} bytes arrived)") from None
        return bytes(data)

    async def _submit(self, request: web.Request, events: list[dict[str, Any]], producer: str | None = None,
                      batch: int | None = None, *, nbytes: int | None = None) -> tuple[int, int, bool]:
        n = len(events)
        lane = peer_host(_remote(request))
        bucket = self.buckets.get(lane, bearer(request.headers.get("Authorization")))
        if bucket.over_burst(n):
            raise _Refusal(413, "too_large", bucket.over_burst_message(n, "per producer"), field="events")
        if not bucket.take(n):
            raise _Refusal(429, "rate_limited", f"over {bucket.rate:g} events/s for this producer (its address and "
                           "token, over its HTTP requests and websocket connections): nothing applied, resend after "
                           "the Retry-After delay", retry_after=bucket.retry_after(n))
        try:
            (first, last), dup = await self.hub.submit(events, producer, batch, nbytes=nbytes, lane=lane)
        except JournalUnavailable as e:  # nothing applied: the producer resends the same request
            if not isinstance(e, IngestFull):  # a full queue is logged by the hub, once per interval
                log.warning("HTTP ingest: journal unavailable: %s", e)
            raise _Refusal(503, "unavailable", f"not applied: {e.message}; resend after the Retry-After delay",
                           retry_after=e.retry_after) from None
        except BatchRefused as e:  # terminal: resending the same request would be refused again
            # 507: a batch adding devices / stores past the hub's caps (--max-devices, --max-stores)
            status = 409 if e.code == "conflict" else 507 if (e.code, e.field) == ("too_large", "id") else 400
            raise _Refusal(status, e.code, e.message, index=e.index, field=e.field) from None
        return first, last, dup

    # ------------------------------------------------------------------ handlers
    async def _events(self, request: web.Request) -> web.Response:
        roles = self._authorize(request, "publish", "control")
        producer = request.headers.get(PRODUCER_HEADER)
        batch_raw = request.headers.get(BATCH_HEADER)
        batch: int | None = None
        if producer is not None and not 1 <= len(producer) <= 200:
            raise _Refusal(400, "bad_value", f"header {PRODUCER_HEADER}: expected 1..200 characters",
                           field=PRODUCER_HEADER)
        if batch_raw is not None:
            try:
                batch = int(batch_raw)
                if batch < 0:
                    raise ValueError
            except ValueError:
                raise _Refusal(400, "bad_value", f"header {BATCH_HEADER}: expected an integer >= 0, got "
                               f"{batch_raw[:40]!r}", field=BATCH_HEADER) from None
        if (producer is None) != (batch is None):
            raise _Refusal(400, "missing_field", f"headers {PRODUCER_HEADER} and {BATCH_HEADER} go together",
                           field=BATCH_HEADER if batch is None else PRODUCER_HEADER)
        body = await self._read(request)
        events, lines = parse_event_body(body, self.hub.config.max_batch)
        try:
            check_event_bytes(events, self.hub.config.max_event_bytes, len(body))
        except P.ProtocolError as e:
            line = lines[e.index] if lines is not None and e.index is not None else None
            raise _Refusal(413, "too_large", f"line {line}: {e}" if line is not None else str(e), index=e.index,
                           line=line) from None
        for i, ev in enumerate(events):
            need = "control" if ev["type"] == "control" else "publish"
            if need not in roles:
                line = lines[i] if lines is not None else None
                where = f"line {line}, " if line is not None else ""
                what = "control events need the control role" if need == "control" else \
                    f"{ev['type']} events need the publish role (the token grants {', '.join(sorted(roles))})"
                raise _Refusal(403, "forbidden", f"{where}event {i}: {what}", index=i, line=line, field="type")
        first, last, dup = await self._submit(request, events, producer, batch, nbytes=len(body))
        self.hub.count("http_events", len(events))
        return _json({"first": first, "last": last, "count": len(events), "duplicate": dup})

    async def _webhook(self, request: web.Request, *, source: str) -> web.Response:
        self._authorize(request, "publish")
        body = await self._read(request)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise _Refusal(400, "not_json", f"not JSON: {e.msg} at line {e.lineno} column {e.colno}",
                           offset=e.pos) from None
        try:
            mapped = ADAPTERS[source].map(payload, self.mapping, self.hub.state.incidents)
        except PayloadError as e:
            if e.code == "unsupported":
                raise _Refusal(400, e.code, f"{source} webhook: {e}") from None
            raise _Refusal(400, "bad_value", f"not a valid {source} webhook payload: {e}", field=e.path) from None
        for i, ev in enumerate(mapped.events):
            try:
                P.validate_event(ev, index=i, require_seq=False, require_ts=False, op="publish")
            except P.ProtocolError as e:
                raise _Refusal(400, e.code, f"alert maps to a bad {ev.get('type')} event: {e}",
                               field=e.field) from None
        self.hub.count(f"webhooks_{source}")
        reply: dict[str, Any] = {"first": None, "last": None, "count": 0, "incidents": mapped.incidents,
                                 "devices": mapped.devices, "ignored": mapped.ignored}
        if mapped.ignored - mapped.tests:
            self.hub.count(f"ignored_alerts_{source}_rule", mapped.ignored - mapped.tests)
        if mapped.tests:  # Grafana's "Test" button: answered 200 so the contact point shows success
            self.hub.count(f"ignored_alerts_{source}_test", mapped.tests)
            reply["tests"] = mapped.tests
            reply["message"] = (f"Grafana test notification ignored ({mapped.tests} alert labelled alertname=TestAlert, "
                                "instance=Grafana): nothing opened; [grafana] test_notifications = \"open\" in the "
                                "--mapping file opens it as an incident")
        if mapped.events:
            first, last, _ = await self._submit(request, mapped.events, nbytes=len(body))
            reply.update(first=first, last=last, count=len(mapped.events))
        return _json(reply)

    async def _metrics(self, request: web.Request) -> web.Response:
        host = f"[{self.host}]" if ":" in self.host else self.host
        raise _Refusal(404, "not_found", f"metrics are served on the hub port only: GET "
                       f"{'https' if self.scheme == 'https' else 'http'}://{host}:{self.hub.port}/metrics")

    async def _healthz(self, request: web.Request) -> web.Response:
        return _json({"status": "ok", "hub": self.hub.hub_id, "seq": self.hub.seq, "walls": len(self.hub.walls)})


class _CountingFactory:
    """aiohttp's protocol factory (``web.Server``) making its connections counted in the
    hub's connection caps (:func:`wallboard.hub.admission.counted`), as ``web.Server.__call__``
    makes them; everything else is the wrapped server's."""

    def __init__(self, server: Any, hub: "Hub") -> None:
        self._wb_server = server
        self._wb_handler = counted(web.RequestHandler, hub.connections)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wb_server, name)

    def __call__(self) -> Any:
        server = self._wb_server
        return self._wb_handler(server, loop=server._loop, **server._kwargs)


def _remote(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"{peer[0]}:{peer[1]}" if peer else (request.remote or "?")


class _QuietLog:
    """aiohttp's server logger: a malformed request (bad request line, bad header,
    oversized header, bad chunked body) is counted and logged in one line per address per
    interval, without a traceback; anything else is a bug and keeps its traceback."""

    def __init__(self, hub: "Hub") -> None:
        self.hub = hub
        self.log = logging.getLogger("wallboard.hub.http.server")

    def exception(self, msg: str, *args: Any, exc_info: Any = None, **kw: Any) -> None:
        from aiohttp.http_exceptions import HttpProcessingError

        if isinstance(exc_info, HttpProcessingError):
            self.hub.reject("bad_http")
            peer = str(args[0]) if args else "?"
            self.hub._log_refusal(peer, f"malformed HTTP request: {type(exc_info).__name__}: "
                                  f"{printable(getattr(exc_info, 'message', exc_info), 200)}", gate=False)
            return
        self.log.error(msg, *args, exc_info=exc_info, **kw)

    def debug(self, msg: str, *args: Any, exc_info: Any = None, **kw: Any) -> None:
        if exc_info is not None and self.log.isEnabledFor(logging.DEBUG):
            self.log.debug(msg + ": %s", *args, printable(exc_info, 200))
        elif exc_info is None:
            self.log.debug(msg, *args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(obj), content_type=_JSON)


async def start_http_ingest(hub: "Hub", host: str, port: int, *, ssl_context: ssl.SSLContext | None = None,
                            max_body: int = MAX_BODY, mapping: MappingRules | None = None,
                            rate_limit: float | None = None, read_timeout: float = READ_TIMEOUT) -> HttpIngest:
    """Start the HTTP listener on the running loop (the hub's; after ``hub.astart()``).

    ``port`` 0 binds a free port (read it from ``.port``). ``mapping`` defaults to the
    documented alert mapping; without ``rate_limit`` each producer (address and token)
    takes from its one bucket of the hub's ``rate_limit``, shared with its websocket
    connections (given: buckets of this port's own, at that rate); ``read_timeout`` (10 s) bounds how long a request may take to
    arrive (408 for a slow body, the connection dropped for slow headers). Stop it with ``await ingest.stop()`` before ``hub.astop()``.
    Raises ``AuthConfigError`` for a non-loopback host while a role has no token.
    """
    ingest = HttpIngest(hub, mapping=mapping, max_body=max_body, rate_limit=rate_limit, read_timeout=read_timeout)
    await ingest.start(host, port, ssl_context)
    return ingest


__all__ = ["HttpIngest", "start_http_ingest", "parse_event_body", "server_ssl_context",
           "MAX_BODY", "PRODUCER_HEADER", "BATCH_HEADER"]
