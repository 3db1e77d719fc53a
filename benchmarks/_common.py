"""Shared helpers of the end-to-end benchmarks (``e2e.py``, ``soak.py``, ``faults.py``).

Everything binds and connects to 127.0.0.1 only. Typical use::

    port = free_port()
    hub = HubProcess(port, journal=path).start()     # ``wallboard hub`` subprocess
    wall = OffscreenWall(hub.feed_url, "double-11", size=(3840, 2160))
    wall.wait_live(lambda: len(wall.state.devices) >= 100_000, timeout=120)
    ...                                              # run the Qt loop: wall.run_for(seconds)
    wall.close(); hub.stop()

``HubProcess.kill9()`` / ``restart()`` are the fault drills' tools; ``qobject_count``
and ``rss_kb`` are what the soak samples.
"""
from __future__ import annotations

import asyncio
import gc
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOKEN_ENV = ("WALLBOARD_PUBLISH_TOKEN", "WALLBOARD_SUBSCRIBE_TOKEN", "WALLBOARD_CONTROL_TOKEN",
             "WALLBOARD_METRICS_TOKEN")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int | None = None, key: str = "VmRSS") -> int:
    """Resident set size (or ``VmHWM`` peak) of ``pid`` (default: this process), in KiB."""
    try:
        for line in Path(f"/proc/{pid or os.getpid()}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds used so far by ``pid`` (default: this process)."""
    try:
        fields = Path(f"/proc/{pid or os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_busy_s() -> float:
    """CPU seconds all cores of the machine spent busy (not idle/iowait) since boot."""
    try:
        parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        vals = [int(x) for x in parts[:8]]
        return (sum(vals) - vals[3] - vals[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _spin(stop: Any) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


class Noise:
    """``--noise``: another process keeps one core busy while the benchmark runs (a
    spinning loop, as a busy neighbour would). ``with Noise(enabled): ...``"""

    def __init__(self, enabled: bool = True) -> None:
        import multiprocessing as mp

        self.enabled = enabled
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_spin, args=(self._stop,), daemon=True) if enabled else None

    def __enter__(self) -> "Noise":
        if self._proc is not None:
            self._proc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.kill()


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` (nearest rank); NaN when empty."""
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Wait until 127.0.0.1:``port`` accepts connections; raise RuntimeError naming why not."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"hub exited with code {proc.returncode}: {err[-2000:]}")
            time.sleep(0.05)
    raise RuntimeError(f"hub did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


class HubProcess:
    """``python -m wallboard.hub hub`` as a subprocess on 127.0.0.1:``port``.

    ``extra`` are more CLI flags (e.g. ``["--demo", "double-11", "--speed", "144"]``);
    ``env`` adds environment variables (tokens). Tokens from the caller's environment are
    removed unless given in ``env``, so every role is open on loopback by default.
    """

    def __init__(self, port: int, *, journal: str | None = None, extra: list[str] | None = None,
                 env: dict[str, str] | None = None, log_level: str = "WARNING") -> None:
        self.port = port
        self.journal = journal
        self.extra = list(extra or [])
        self.env = dict(env or {})
        self.log_level = log_level
        self.proc: subprocess.Popen | None = None

    @property
    def feed_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/feed"

    @property
    def publish_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/publish"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> "HubProcess":
        env = {k: v for k, v in os.environ.items() if k not in TOKEN_ENV}
        env.update(self.env)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [sys.executable, "-m", "wallboard.hub", "hub", "--host", "127.0.0.1", "--port", str(self.port),
               "--log-level", self.log_level, *self.extra]
        if self.journal:
            cmd += ["--journal", self.journal]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_port(self.port, timeout, self.proc)
        return self

    def kill9(self) -> None:
        """SIGKILL the hub (no flush, no goodbye) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def restart(self, timeout: float = 60.0) -> "HubProcess":
        """Start again on the same port and journal (after :meth:`kill9` or :meth:`stop`)."""
        return self.start(timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def world_events(stores: int, devices_per_store: int, seed: int = 928) -> list[dict[str, Any]]:
    """Every store and device (plus the first KPI samples) of the ``scale`` scenario."""
    from wallboard.hub.simulator import Simulator, load_scenario

    sim = Simulator(load_scenario("scale"), seed=seed,
                    options={"stores": stores, "devices_per_store": devices_per_store, "rate": 1.0})
    return sim.advance(0.0)


def publish_all(url: str, events: list[dict[str, Any]], *, batch: int = 2000, producer: str | None = None,
                token: str | None = None, timeout: float = 300.0) -> int:
    """Publish ``events`` in batches and wait for every ack; returns the last acked seq."""
    from wallboard.hub.record import Publisher

    async def go() -> int:
        pub = Publisher(url, producer=producer or f"load-{os.getpid()}-{time.time():.0f}", window=16, token=token)
        pub.keep_acks = True
        async with pub:
            for i in range(0, len(events), batch):
                await pub.publish(events[i:i + batch])
            await pub.flush(timeout)
        return max((a.last for a in pub.acks), default=0)

    return asyncio.run(go())


def qobject_count(app: Any = None, extra: list[Any] | None = None) -> int:
    """QObjects alive under the application's top-level widgets (recursively), the
    application's own children, plus each object in ``extra`` (e.g. the controller)."""
    from PySide6.QtCore import QObject
    from PySide6.QtWidgets import QApplication

    app = app or QApplication.instance()
    n = 0
    for w in QApplication.topLevelWidgets():
        n += 1 + len(w.findChildren(QObject))
    n += len(app.findChildren(QObject))
    for obj in extra or []:
        n += 1 + len(obj.findChildren(QObject))
    return n


def object_census() -> tuple[int, int, int]:
    """After a full collection, in one walk of the collector's objects: (Python objects
    tracked, QObjects Python holds a wrapper of whose C++ object still exists -- parentless
    ones included, which ``qobject_count`` cannot see --, wrappers whose C++ object is gone)."""
    import shiboken6
    from PySide6.QtCore import QObject

    gc.collect()
    objs = gc.get_objects()
    alive = stale = 0
    for o in objs:
        if isinstance(o, shiboken6.Object):
            if not shiboken6.isValid(o):
                stale += 1
            elif isinstance(o, QObject):
                alive += 1
    return len(objs), alive, stale


def fuzz_frames(rng: random.Random, n: int, valid: list[bytes]):
    """Yield ``n`` frames: random bytes, truncated valid, mutated valid (in turn)."""
    inserts = [b'"', b"{", b"]", b",", b"-1", b"null", b"\xff", b"1e999", b"[]", b"\\u0000"]
    for i in range(n):
        base = valid[rng.randrange(len(valid))]
        kind = i % 3
        if kind == 0:
            yield rng.randbytes(rng.randrange(1, 200))
        elif kind == 1:
            yield base[: rng.randrange(len(base))] or b"{"
        else:
            b = bytearray(base)
            for _ in range(rng.randrange(1, 4)):
                pos = rng.randrange(len(b))
                op = rng.randrange(3)
                if op == 0:
                    b[pos] = rng.randrange(256)
                elif op == 1:
                    b[pos:pos] = rng.choice(inserts)
                else:
                    del b[pos]
            yield bytes(b)


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares (slope, intercept); (0, mean) for fewer than two points."""
    n = len(xs)
    if n < 2:
        return 0.0, (ys[0] if ys else 0.0)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0, my
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return slope, my - slope * mx


class OffscreenWall:
    """A real wall in this process: QApplication, LiveState, FeedClient, WallController.

    ``size`` is each window's size; ``screen`` limits the wall to one of the layout's
    screens (None: every window, as a wall with several screens). ``panel_options``
    overrides widget options by panel type (diagnostics, e.g. ``{"device_grid":
    {"order": "fixed"}}``). Set
    ``QT_QPA_PLATFORM=offscreen`` before importing PySide6 when there is no display.
    """

    def __init__(self, feed_url: str, layout: str = "double-11", *, size: tuple[int, int] = (3840, 2160),
                 screen: int | None = None, token: str | None = None, fps: float | None = None,
                 muted: bool = True, panel_options: dict[str, dict[str, Any]] | None = None,
                 **feed_options: Any) -> None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtWidgets import QApplication

        from wallboard import layout as L
        from wallboard.app.controller import WallController
        from wallboard.feed import FeedClient
        from wallboard.gctune import tune_gc
        from wallboard.state import LiveState

        tune_gc()   # as the real wall does (wallboard.app.run)
        self.app = QApplication.instance() or QApplication([])
        self.state = LiveState()
        feed_options.setdefault("columnar", True)   # as the real wall (wallboard.app.run)
        self.client = FeedClient(feed_url, token=token, **feed_options)
        lay = L.load_layout(L.find_layout(layout, [L.DEFAULT_LAYOUT_DIR]))
        for screen_spec in lay.screens:  # diagnostics: override widget options by panel type
            for panel in screen_spec.panels:
                panel.options.update((panel_options or {}).get(panel.type, {}))
        self.ctl = WallController(self.state, self.client, lay, size=size, screen=screen, fps=fps, muted=muted)
        self.client.start()
        self.ctl.start()

    @property
    def feed_state(self) -> str:
        return self.client.state.state

    def pump(self, seconds: float) -> None:
        """Run the Qt event loop (frames, paints) for ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.002)

    def wait_until(self, pred: Callable[[], bool], timeout: float, what: str = "condition") -> float:
        """Pump until ``pred()`` is true; return the seconds it took, raise TimeoutError naming ``what``."""
        t0 = time.monotonic()
        end = t0 + timeout
        while time.monotonic() < end:
            self.app.processEvents()
            if pred():
                return time.monotonic() - t0
            time.sleep(0.005)
        raise TimeoutError(f"{what} not reached within {timeout:.0f} s (feed {self.feed_state}, "
                           f"seq {self.state.seq}, devices {len(self.state.devices)})")

    def run_for(self, seconds: float) -> None:
        """Run the real Qt event loop (``app.exec``) for ``seconds``."""
        from PySide6.QtCore import QTimer

        QTimer.singleShot(int(seconds * 1000), self.app.quit)
        self.app.exec()

    def close(self) -> None:
        self.ctl.shutdown()
        self.client.stop()
        for w in list(self.ctl.windows):
            w.deleteLater()
        self.app.processEvents()


class CutProxy:
    """A TCP proxy on 127.0.0.1 in its own thread, to cut a wall's link on purpose.

    ``proxy = CutProxy(target_port).start()``; point the wall at ``proxy.port``.
    ``pause()`` stops forwarding in both directions (a silent network: nothing is closed,
    nothing arrives); ``resume()`` forwards again; ``drop()`` closes every open
    connection (new ones are still accepted); ``stop()`` ends it.
    """

    def __init__(self, target_port: int) -> None:
        import threading

        self.target_port = target_port
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._open = threading.Event()
        self._open.set()
        self._gate: asyncio.Event | None = None
        self._writers: set[Any] = set()
        self._thread: Any = None

    def start(self) -> "CutProxy":
        import threading

        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._gate = asyncio.Event()
            self._gate.set()
            self._server = loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            self._server.close()
            for w in list(self._writers):
                w.close()
            loop.run_until_complete(asyncio.sleep(0.05))
            loop.close()

        self._thread = threading.Thread(target=main, name="cut-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_w))

        async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while True:
                    data = await r.read(65536)
                    if not data:
                        break
                    assert self._gate is not None
                    await self._gate.wait()
                    w.write(data)
                    await w.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                w.close()
                self._writers.discard(w)

        await asyncio.gather(pump(reader, up_w), pump(up_r, writer))

    def _call(self, fn: Callable[[], Any]) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(fn)

    def pause(self) -> None:
        assert self._gate is not None
        self._call(self._gate.clear)

    def resume(self) -> None:
        assert self._gate is not None
        self._call(self._gate.set)

    def drop(self) -> None:
        def close_all() -> None:
            for w in list(self._writers):
                w.close()
            self._writers.clear()
        self._call(close_all)

    def stop(self) -> None:
        if self._loop is not None:
            self._call(self._loop.stop)
            self._thread.join(10)
            self._loop = None
