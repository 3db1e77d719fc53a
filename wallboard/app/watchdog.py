"""systemd's notify protocol, spoken over a plain AF_UNIX datagram socket (no dependency).

Under a unit with ``Type=notify`` and ``WatchdogSec=``, systemd sets ``NOTIFY_SOCKET`` (and
``WATCHDOG_USEC``/``WATCHDOG_PID``). The wall sends ``READY=1`` once its first frame is
painted and ``WATCHDOG=1`` from its frame loop (at most every half watchdog interval), so a
UI that freezes stops pinging and systemd restarts it (``Restart=always``). See
contrib/wallboard.service and docs/deploy.md.

:class:`SdNotify` does nothing when ``NOTIFY_SOCKET`` is unset. A send that fails (socket
gone) is counted in ``errors`` and logged once, never raised: the wall keeps running.
"""
from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class SdNotify:
    """Send ``KEY=VALUE`` lines to the service manager.

    ``address`` defaults to ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract
    namespace). ``watchdog_s`` is the watchdog interval systemd asked for (``None``: none).
    """

    def __init__(self, address: str | None = None, env: dict | None = None) -> None:
        env = os.environ if env is None else env
        self.address = address if address is not None else env.get("NOTIFY_SOCKET") or None
        self.errors = 0
        self.sent = 0
        self.last_error = ""
        self.watchdog_s = watchdog_interval(env)
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *fields: str) -> bool:
        """Send one datagram of ``fields`` (e.g. ``"READY=1"``, ``"STATUS=LIVE"``); False
        when disabled or when the send failed (counted, logged once)."""
        if not self.address:
            return False
        addr = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(fields).encode("utf-8"), addr)
        except OSError as e:
            self.errors += 1
            if not self.last_error:
                log.warning("sd_notify to %s failed: %s (the watchdog will restart the wall)",
                            self.address, e.strerror or e)
            self.last_error = f"{e.strerror or e}"
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(env: dict | os._Environ) -> float | None:
    """The watchdog interval in seconds from ``WATCHDOG_USEC``, when it is meant for this
    process (``WATCHDOG_PID`` unset or ours); None otherwise or when malformed."""
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1e6 if value > 0 else None
