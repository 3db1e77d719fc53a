"""The ``abuse`` drill of ``benchmarks/faults.py`` (issue 13): a real ``wallboard hub``
process with four separate tokens, probed on loopback the way an attacker and a careless
client would, with a bystander producer and wall measuring their latency during each probe.

Probes (each bounded in count and time):

* ``weak_tokens``: the hub started with a blank / short token on 0.0.0.0 (must not start).
* ``roles``: a wall with the control token (LIVE, its controls journaled), control events
  published with the control token over ``/publish`` and ``POST /events``, a subscribe
  wall's control (refused with a reason).
* ``flood`` / ``flood_wrong_token`` / ``flood_unblocked``: ``--flood`` (200)
  unauthenticated batches of ~414 KB of invalid events from 127.0.0.2, four connections
  at a time: without a token, with a wrong token (the hub must parse the frame to read
  it), and with a wrong token and the refusal cap off. Reports how many were parsed for a
  token, validated (must be 0), refused at the handshake; hub CPU; the bystanders' ack /
  delivery p50 and p99 before, during and after the flood, and the load average.
* ``browser``: a cross-origin ``text/plain`` POST of a control event and a websocket
  upgrade with a foreign Origin.
* ``metrics``: ``/metrics`` without and with the metrics token, checked with
  ``promtool check metrics`` when installed (else prometheus_client's parser); log lines
  per scrape at INFO.
* ``logs``: a wall named with a newline (forged lines in the log) and 500 malformed HTTP
  requests (tracebacks and log bytes).
* ``partial_http``: 450 partial requests held (how many are still open after the read
  timeout), then SIGTERM with a partial body open (seconds to exit).

``drill_abuse(args)`` returns one dict (``faults.py`` prints it as JSON).
"""
from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from _common import ROOT, cpu_s, free_port, pct, rss_kb, wait_port

ROLES = ("publish", "subscribe", "control", "metrics")
ATTACKER = "127.0.0.2"  # a different loopback address: blocking it leaves the bystanders alone


class Hub:
    """``python -m wallboard.hub hub`` with tokens, an HTTP port and its log in a file."""

    def __init__(self, tmp: Path, tokens: dict[str, str], extra: list[str] | None = None) -> None:
        self.port, self.http_port = free_port(), free_port()
        self.tokens = tokens
        self.log = tmp / f"hub-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("WALLBOARD_")}
        env.update({f"WALLBOARD_{r.upper()}_TOKEN": t for r, t in tokens.items()})
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self._err = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wallboard.hub", "hub", "--host", "127.0.0.1", "--port", str(self.port),
             "--http-port", str(self.http_port), "--log-level", "INFO", *(extra or [])],
            env=env, stdout=subprocess.DEVNULL, stderr=self._err)
        wait_port(self.port, 60, self.proc)
        wait_port(self.http_port, 30, self.proc)

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        self._err.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> float:
        """SIGTERM; seconds until it exited (SIGKILL after 30 s)."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._err.close()
        return round(time.monotonic() - t0, 2)


def http(port: int, raw: bytes, timeout: float = 10.0, src: str = "127.0.0.1") -> tuple[int, bytes]:
    """One raw HTTP/1.1 exchange; (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0)) as s:
        s.sendall(raw)
        data = b""
        while chunk := s.recv(1 << 16):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return (int(head.split()[1]) if head.startswith(b"HTTP/") else 0), body


def get(port: int, path: str, token: str | None = None, src: str = "127.0.0.1") -> tuple[int, bytes]:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return http(port, f"GET {path} HTTP/1.1\r\nHost: hub\r\n{auth}Connection: close\r\n\r\n".encode(), src=src)


def counters(hub: Hub) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    status, body = get(hub.port, "/metrics", hub.tokens["metrics"])
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            if fam.name == "wallboard_rejects":
                out[f"rejects_{s.labels['reason']}"] = s.value
            elif not s.labels and fam.name.startswith("wallboard_"):
                out[s.name] = s.value
    return out


# ---------------------------------------------------------------------- bystanders
class Bystanders:
    """A producer publishing 10 events every 20 ms (ack latency) and a wall receiving them
    (delivery latency: receipt - the event's ts stamped at send), tagged by phase. The wall
    runs in a process of its own (:func:`bystander_wall`), as a real wall would: parsing
    the flood's frames there does not delay the producer's acks here."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.acks: dict[str, list[float]] = {}
        self.delivery: dict[str, list[float]] = {}
        self._marks: list[tuple[float, str]] = [(0.0, "before")]
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()  # the wall is LIVE and the producer connected

    @property
    def phase(self) -> str:
        return self._marks[-1][1]

    @phase.setter
    def phase(self, name: str) -> None:
        self._marks.append((time.time(), name))

    def _phase_at(self, t: float) -> str:
        name = self._marks[0][1]
        for at, n in self._marks:
            if at > t:
                break
            name = n
        return name

    async def run(self) -> None:
        from websockets.asyncio.client import connect

        from wallboard import protocol as P

        t = self.hub.tokens
        wall = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "wall", self.hub.ws + "/feed", t["subscribe"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert wall.stdout is not None and wall.stdin is not None
        try:
            await asyncio.wait_for(wall.stdout.readline(), 60)  # "ready": LIVE
            async with connect(self.hub.ws + "/publish",
                               additional_headers={"Authorization": f"Bearer {t['publish']}"}) as prod:
                self.ready.set()
                b = 0
                while not self._stop.is_set():
                    b += 1
                    now = time.time()
                    evs = [{"type": "device", "id": f"by/d{i}", "store": "by", "status": "ok", "ts": now}
                           for i in range(10)]
                    t0 = time.perf_counter()
                    await prod.send(P.encode(P.Publish(events=evs, producer="bystander", batch=b)))
                    await asyncio.wait_for(prod.recv(), 10)
                    self.acks.setdefault(self.phase, []).append((time.perf_counter() - t0) * 1000)
                    try:
                        await asyncio.wait_for(self._stop.wait(), 0.02)
                    except asyncio.TimeoutError:
                        pass
            await asyncio.sleep(0.2)
            wall.stdin.write(b"stop\n")
            out, _ = await asyncio.wait_for(wall.communicate(), 30)
            for at, ms in orjson.loads(out):
                self.delivery.setdefault(self._phase_at(at), []).append(ms)
        finally:
            if wall.returncode is None:
                wall.kill()
                await wall.wait()

    def stop(self) -> None:
        self._stop.set()

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, series in (("ack_ms", self.acks), ("wall_ms", self.delivery)):
            for phase, vals in series.items():
                out[f"{name}_{phase}"] = {"n": len(vals), "p50": round(pct(vals, 0.5), 2),
                                          "p99": round(pct(vals, 0.99), 2)}
        return out


async def bystander_wall(url: str, token: str) -> list[tuple[float, float]]:
    """The bystander wall (``python _abuse.py wall URL TOKEN``): says "ready" once it has
    its welcome, then records ``(receipt time, ms since the event's ts)`` for each of the
    bystander producer's events until a line arrives on stdin."""
    from websockets.asyncio.client import connect

    from wallboard import protocol as P

    got: list[tuple[float, float]] = []
    async with connect(url, max_size=None, additional_headers={"Authorization": f"Bearer {token}"}) as wall:
        await wall.send(P.encode(P.Hello(wall="bystander")))
        await wall.recv()
        print("ready", flush=True)

        async def read() -> None:
            async for raw in wall:
                now = time.time()
                msg = orjson.loads(raw)
                if msg.get("op") == "events":
                    for ev in msg["events"]:
                        if ev.get("type") == "device" and ev.get("id", "").startswith("by/"):
                            got.append((now, (now - ev["ts"]) * 1000))
        reader = asyncio.create_task(read())
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        reader.cancel()
    return got


async def with_bystanders(hub: Hub, probe: Any, settle_s: float = 2.0) -> dict[str, Any]:
    """Run ``probe()`` (a coroutine function returning a dict) between two quiet phases
    (before, after) and add the bystanders' figures per phase, RSS and the load average."""
    by = Bystanders(hub)
    task = asyncio.create_task(by.run())
    await asyncio.wait_for(by.ready.wait(), 90)
    await asyncio.sleep(settle_s)
    rss0 = rss_kb(hub.proc.pid)
    res = await probe(by)  # sets by.phase = "during" when it starts
    by.phase = "after"  # a quiet control phase: on a busy machine the noise shows here too
    await asyncio.sleep(settle_s)
    by.stop()
    await asyncio.wait_for(task, 15)
    res.update(by.figures(), rss_kb_before=rss0, rss_kb_after=rss_kb(hub.proc.pid),
               load_avg_1m=round(os.getloadavg()[0], 2))
    return res


# ---------------------------------------------------------------------- probes
def weak_tokens() -> dict[str, Any]:
    out = {}
    for name, value in (("blank", " "), ("short", "x" * 8)):
        env = {k: v for k, v in os.environ.items() if not k.startswith("WALLBOARD_")}
        env.update(WALLBOARD_PUBLISH_TOKEN=value, PYTHONPATH=str(ROOT))
        r = subprocess.run([sys.executable, "-m", "wallboard.hub", "hub", "--host", "0.0.0.0", "--port", "0"],
                           env=env, capture_output=True, text=True, timeout=60)
        out[name] = {"exit": r.returncode, "message": r.stderr.strip()[-200:]}
    return out


async def roles(hub: Hub) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    from wallboard import protocol as P

    t = hub.tokens
    out: dict[str, Any] = {}
    async with connect(hub.ws + "/feed") as wall:
        await wall.send(P.encode(P.Hello(token=t["control"], wall="ops")))
        w = P.decode(await wall.recv())
        out["control_wall"] = {"welcome": type(w).__name__, "roles": getattr(w, "roles", None)}
        await wall.send(P.encode(P.Control(command="banner", args={"text": "from the control wall"})))
        got = None
        while got is None:
            m = orjson.loads(await asyncio.wait_for(wall.recv(), 10))
            if m.get("op") in ("events", "error"):
                got = m
        out["control_wall"]["control"] = "journaled" if got["op"] == "events" else got
    async with connect(hub.ws + "/publish", additional_headers={"Authorization": f"Bearer {t['control']}"}) as p:
        await p.send(P.encode(P.Publish(events=[{"type": "control", "command": "banner", "text": "ws"}])))
        out["publish_control_ws"] = orjson.loads(await p.recv()).get("op")
    ev = orjson.dumps([{"type": "control", "command": "banner", "text": "http"}])
    status, _ = http(hub.http_port, b"POST /events HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
                     + f"Authorization: Bearer {t['control']}\r\nContent-Length: {len(ev)}\r\n".encode()
                     + b"Connection: close\r\n\r\n" + ev)
    out["publish_control_http"] = status
    async with connect(hub.ws + "/feed") as wall:
        await wall.send(P.encode(P.Hello(token=t["subscribe"], wall="floor")))
        await wall.recv()
        await wall.send(P.encode(P.Control(command="ack_incident", args={"incident": "INC-1"})))
        while True:
            m = orjson.loads(await asyncio.wait_for(wall.recv(), 10))
            if m.get("op") == "error":
                out["subscribe_wall_control"] = {"code": m["code"], "message": m["message"]}
                break
    return out


def big_bad_batch(target: int = 414_000, token: str | None = None) -> bytes:
    """A publish frame of ~``target`` bytes of events with an unknown field each (and a
    wrong ``token``, which makes the hub parse the frame to read it)."""
    one = len(orjson.dumps({"type": "device", "id": "s0001/pos-0001", "store": "s0001", "stat": "x" * 64})) + 1
    n = target // one
    return orjson.dumps({"op": "publish", "events": [{"type": "device", "id": f"s{i % 9999:04d}/pos-{i:04d}",
                                                      "store": f"s{i % 9999:04d}", "stat": "x" * 64}
                                                     for i in range(n)], **({"token": token} if token else {})})


async def attack(url: str, batches: int, token: str | None = None) -> dict[str, Any]:
    """The attacker (run in a process of its own by :func:`flood`): ``batches``
    unauthenticated bad batches, four connections at a time, from :data:`ATTACKER`."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    frame = big_bad_batch(token=token)
    result = {"batches": batches, "batch_bytes": len(frame), "closed_1008": 0, "refused_at_handshake": 0,
              "other": 0}
    todo = list(range(batches))
    print("ready", flush=True)  # built: the caller starts its "during" phase, then says go
    sys.stdin.readline()

    async def attacker() -> None:
        while todo:
            todo.pop()
            try:
                async with connect(url, max_size=None, local_addr=(ATTACKER, 0),
                                   open_timeout=10) as ws:
                    await ws.send(frame)
                    try:
                        while True:
                            await asyncio.wait_for(ws.recv(), 10)
                    except ConnectionClosed as e:
                        result["closed_1008"] += e.rcvd is not None and e.rcvd.code == 1008
            except InvalidStatus as e:
                result["refused_at_handshake"] += e.response.status_code == 429
            except (OSError, asyncio.TimeoutError, ConnectionClosed):
                result["other"] += 1

    t0 = time.monotonic()
    await asyncio.gather(*(attacker() for _ in range(4)))
    result["flood_s"] = round(time.monotonic() - t0, 2)
    return result


async def flood(hub: Hub, by: "Bystanders", batches: int, token: str | None) -> dict[str, Any]:
    """:func:`attack` in a separate process (the bystanders here keep their own CPU); the
    bystanders' "during" phase starts once the attacker has built its frame."""
    proc = await asyncio.create_subprocess_exec(sys.executable, __file__, "attack", hub.ws + "/publish", str(batches),
                                                token or "", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    await asyncio.wait_for(proc.stdout.readline(), 120)
    before = counters(hub)
    cpu0 = cpu_s(hub.proc.pid)
    by.phase = "during"
    proc.stdin.write(b"go\n")
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    result = orjson.loads(out)
    wall_s = result["flood_s"]
    after = counters(hub)
    diff = {k: after.get(k, 0) - before.get(k, 0) for k in after if k.startswith("rejects_")}
    parsed = after.get("wallboard_hub_auth_frames_parsed", 0) - before.get("wallboard_hub_auth_frames_parsed", 0)
    result.update(
        hub_cpu_pct=round(100 * (cpu_s(hub.proc.pid) - cpu0) / max(wall_s, 1e-6), 1),
        refused_after_connect=int(diff.get("rejects_auth", 0)), parsed_for_token=int(parsed),
        validated=int(sum(v for k, v in diff.items() if k not in ("rejects_auth", "rejects_blocked"))),
        rejects=diff)
    return result


def browser(hub: Hub) -> dict[str, Any]:
    ev = orjson.dumps([{"type": "control", "command": "switch_layout", "layout": "overview"}])
    status, body = http(hub.http_port, b"POST /events HTTP/1.1\r\nHost: hub\r\nContent-Type: text/plain\r\n"
                        b"Origin: http://evil.example\r\n" + f"Content-Length: {len(ev)}\r\n".encode()
                        + b"Connection: close\r\n\r\n" + ev)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    ws_status, _ = http(hub.port, f"GET /feed HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n"
                        "\r\n".encode())
    return {"cross_origin_text_plain_post": status, "reason": orjson.loads(body).get("error"),
            "ws_upgrade_foreign_origin": ws_status}


def metrics(hub: Hub) -> dict[str, Any]:
    no_token, _ = get(hub.port, "/metrics")
    time.sleep(0.2)
    before = hub.log_text()
    for _ in range(5):
        status, body = get(hub.port, "/metrics", hub.tokens["metrics"])
    time.sleep(0.2)
    new = hub.log_text()[len(before):]
    out: dict[str, Any] = {"without_token": no_token, "with_metrics_token": status, "bytes": len(body),
                           "log_lines_per_scrape_at_info": new.count("\n") / 5, "log_sample": new[:300],
                           "http_port": get(hub.http_port, "/metrics", hub.tokens["metrics"])[0]}
    promtool = shutil.which("promtool")
    if promtool:
        r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
        out["promtool_exit"] = r.returncode
        out["promtool_output"] = (r.stdout + r.stderr).decode()[-300:]
    else:
        from prometheus_client.parser import text_string_to_metric_families

        out["parsed_families"] = len(list(text_string_to_metric_families(body.decode())))
    out["has"] = [n for n in ("process_resident_memory_bytes", "wallboard_ack_seconds_bucket",
                              "wallboard_fanout_seconds_bucket") if n.encode() in body]
    return out


async def logs(hub: Hub) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    from wallboard import protocol as P

    size0 = len(hub.log_text())
    async with connect(hub.ws + "/feed") as wall:
        await wall.send(P.encode(P.Hello(token=hub.tokens["subscribe"],
                                         wall="w1\n2026-12-02 00:00:00 INFO wallboard.hub: FORGED admin login")))
        await wall.recv()
    for i in range(500):
        junk = [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
                b"POST /events HTTP/1.1\r\nContent-Length: -5\r\n\r\n"][i % 3]
        try:
            http(hub.http_port, junk, timeout=5)
        except (OSError, ValueError, IndexError):
            pass
    await asyncio.sleep(0.5)
    text = hub.log_text()[size0:]
    return {"forged_lines": sum(ln.startswith("2026-12-02 00:00:00 INFO") for ln in text.splitlines()),
            "malformed_http_requests": 500, "tracebacks": text.count("Traceback"),
            "log_bytes": len(text.encode())}


def partial_http(hub: Hub, n: int = 450, hold_s: float = 15.0) -> dict[str, Any]:
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", hub.http_port), timeout=hold_s + 10)
        s.sendall(b"POST /events HTTP/1.1\r\nHost: hub\r\n" if i % 2 else
                  b"POST /events HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
                  b"X-Wallboard-Client: x\r\nContent-Length: 100000\r\n\r\n[")
        socks.append(s)
    time.sleep(hold_s)
    still_open = 0
    for s in socks:
        s.setblocking(False)
        try:
            s.recv(1 << 16)  # b"" (closed) or a 408 answer: not held any more
        except BlockingIOError:
            still_open += 1  # nothing from the hub: still held
        except OSError:
            pass
    for s in socks:
        s.close()
    # SIGTERM while a partial body is open
    s = socket.create_connection(("127.0.0.1", hub.http_port), timeout=10)
    s.sendall(b"POST /events HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nX-Wallboard-Client: x\r\n"
              b"Content-Length: 100000\r\n\r\n[")
    time.sleep(0.3)
    took = hub.stop()
    s.close()
    return {"held": n, "still_open_after_s": hold_s, "still_open": still_open, "sigterm_exit_s": took,
            "exit_code": hub.proc.returncode}


# ---------------------------------------------------------------------- the drill
def drill_abuse(args: Any) -> dict[str, Any]:
    part = getattr(args, "abuse_part", "all")
    tokens = {r: secrets.token_urlsafe(18) for r in ROLES}
    out: dict[str, Any] = {}
    if part in ("all", "access"):
        out.update(drill_access(args, tokens))
    if part in ("all", "limits"):
        from _abuse_limits import drill_limits

        with tempfile.TemporaryDirectory() as tmp:
            out["limits"] = drill_limits(Path(tmp), tokens, getattr(args, "abuse_probes", ""))
    return out


def drill_access(args: Any, tokens: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"weak_tokens": weak_tokens()}
    with tempfile.TemporaryDirectory() as tmp:
        hub = Hub(Path(tmp), tokens)
        try:
            out["roles"] = asyncio.run(roles(hub))
            out["flood"] = asyncio.run(with_bystanders(hub, lambda by: flood(hub, by, args.flood, None)))
            hub.stop()
            hub = Hub(Path(tmp), tokens)  # a fresh hub: the attacker's address is blocked on the first
            out["flood_wrong_token"] = asyncio.run(with_bystanders(
                hub, lambda by: flood(hub, by, args.flood, "not-the-token-" + "x" * 10)))
            out["browser"] = browser(hub)
            out["metrics"] = metrics(hub)
            out["logs"] = asyncio.run(logs(hub))
            out["partial_http"] = partial_http(hub)
        finally:
            hub.stop()
        hub = Hub(Path(tmp), tokens, ["--max-refusals", str(10 ** 6)])  # the refusal cap off: auth first only
        try:
            out["flood_unblocked"] = asyncio.run(with_bystanders(
                hub, lambda by: flood(hub, by, args.flood, "not-the-token-" + "x" * 10)))
        finally:
            hub.stop()
    return out


if __name__ == "__main__":  # the attacker process of flood(), the bystander wall
    if len(sys.argv) == 5 and sys.argv[1] == "attack":
        result = asyncio.run(attack(sys.argv[2], int(sys.argv[3]), sys.argv[4] or None))
        sys.stdout.write(orjson.dumps(result).decode())
    elif len(sys.argv) == 4 and sys.argv[1] == "wall":
        sys.stdout.write(orjson.dumps(asyncio.run(bystander_wall(sys.argv[2], sys.argv[3]))).decode())
    else:
        sys.exit("usage: python benchmarks/_abuse.py attack WS_URL BATCHES TOKEN | wall WS_URL TOKEN "
                 "(run by benchmarks/faults.py)")
