"""Tokens and roles of the hub: publish, subscribe, control, metrics.

A token grants a *set* of roles. What each role allows (``docs/security.md``):

* ``publish``: send events on ``/publish`` and ``POST /events`` (not control events);
* ``subscribe``: connect a wall to ``/feed``; implies ``metrics``;
* ``control``: send control messages on ``/feed`` and control events on ``/publish`` and
  ``POST /events``; implies ``subscribe`` (a control wall connects with its one token);
* ``metrics``: ``GET /metrics`` only (for a monitoring system).

Tokens come from ``WALLBOARD_<ROLE>_TOKEN`` environment variables and a token file, in
either of two line formats (``#`` comments and blank lines are skipped)::

    publish = 7cbf0c51a8d1c4a5e2f9          # role = token: one role per line (old format)
    3f1e95c0b27d4e6a9c88 = subscribe,control  # token = roles: a comma-separated role set

The same token on several lines (or variables) gets the union of their roles. Every
token must be at least :data:`MIN_TOKEN` (16) characters, without spaces; a blank or
short token stops the hub at start (:class:`AuthConfigError` names it). A role that no
token grants directly is *open* (anyone has it; ``metrics`` only while ``subscribe`` is
open too) -- allowed only while the hub binds a loopback address; :meth:`Auth.check_bind` refuses any other bind with open roles. Tokens are
compared in constant time (``hmac.compare_digest``).

:class:`PeerLimiter` caps refusals per peer address and :class:`RefusalLog` logs them
once per peer per interval; :func:`printable` escapes peer strings for log lines.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

ROLES = ("publish", "subscribe", "control", "metrics")
ENV = {r: f"WALLBOARD_{r.upper()}_TOKEN" for r in ROLES}
#: Roles a role brings with it.
IMPLIES: dict[str, tuple[str, ...]] = {"control": ("subscribe", "metrics"), "subscribe": ("metrics",)}
#: Shortest token the hub starts with.
MIN_TOKEN = 16


class AuthConfigError(ValueError):
    """Token configuration that the hub must refuse to start with (message says why)."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; false for wildcards and anything else."""
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def expand(roles: Iterable[str]) -> frozenset[str]:
    """``roles`` plus every role they imply (control -> subscribe -> metrics)."""
    out: set[str] = set()
    todo = list(roles)
    while todo:
        r = todo.pop()
        if r not in out:
            out.add(r)
            todo.extend(IMPLIES.get(r, ()))
    return frozenset(out)


def check_token(token: str, where: str) -> str:
    """``token`` if it may be used; else :class:`AuthConfigError` saying why, at ``where``."""
    if not token.strip():
        raise AuthConfigError(f"{where}: blank token: use a random token of at least {MIN_TOKEN} characters "
                              "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))')")
    if token != token.strip() or any(c.isspace() for c in token):
        raise AuthConfigError(f"{where}: token contains whitespace: use a random token of at least "
                              f"{MIN_TOKEN} characters without spaces")
    if len(token) < MIN_TOKEN:
        raise AuthConfigError(f"{where}: token of {len(token)} characters is too short: at least {MIN_TOKEN} "
                              "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))')")
    return token


def _role_list(text: str, where: str) -> list[str]:
    roles = [r.strip() for r in text.split(",")]
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise AuthConfigError(f"{where}: unknown role {bad[0]!r} in 'token = roles': roles are "
                              + ", ".join(ROLES))
    return roles


def read_token_file(path: str | Path) -> dict[str, frozenset[str]]:
    """Token -> granted roles (as written, not expanded) of a token file.

    Lines are ``role = token`` or ``token = role[,role...]``; errors name the file, line
    and what was expected, never the token itself.
    """
    out: dict[str, frozenset[str]] = {}
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise AuthConfigError(f"{p}: cannot read token file: {e.strerror}") from None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{p}:{n}"
        left, sep, right = line.partition("=")
        if not sep:
            raise AuthConfigError(f"{where}: expected 'role = token' (role one of {', '.join(ROLES)}) or "
                                  "'token = role,role'; got a line without '='")
        if left.strip() in ROLES:  # role = token
            role, token = left.strip(), right.strip().strip('"')
            if not token:
                raise AuthConfigError(f"{where}: empty token for role {role!r}")
            roles = [role]
        else:  # token = roles (a token may itself end in '=' padding)
            left, _, right = line.rpartition("=")
            token = left.strip().strip('"')
            if not right.strip():
                raise AuthConfigError(f"{where}: expected 'role = token' with role one of {', '.join(ROLES)} "
                                      "or 'token = role,role'")
            roles = _role_list(right, where)
        check_token(token, where)
        out[token] = out.get(token, frozenset()) | frozenset(roles)
    return out


@dataclass(frozen=True)
class _Grant:
    token: bytes
    roles: frozenset[str]


class Auth:
    """Tokens and the roles they grant. Build with :meth:`from_env`, or directly::

        Auth({"publish": "p" * 16, "subscribe": None})          # role -> token (None = open)
        Auth(grants={"c" * 16: {"control"}})                     # token -> roles

    Raises :class:`AuthConfigError` for a blank, spaced or short token.
    """

    def __init__(self, tokens: Mapping[str, str | None] | None = None, *,
                 grants: Mapping[str, Iterable[str]] | None = None) -> None:
        merged: dict[str, set[str]] = {}
        for role, token in (tokens or {}).items():
            if role not in ROLES:
                raise AuthConfigError(f"unknown role {role!r}: roles are {', '.join(ROLES)}")
            if token is not None:
                check_token(token, f"{role} token")
                merged.setdefault(token, set()).add(role)
        for token, roles in (grants or {}).items():
            check_token(token, "token")
            merged.setdefault(token, set()).update(_role_list(",".join(roles), "token"))
        self._grants = [_Grant(t.encode(), expand(r)) for t, r in merged.items()]
        direct = set().union(*merged.values()) if merged else set()
        # open: no token grants the role itself (so a control token alone leaves subscribe
        # open); metrics is open only while subscribe is open too
        self._open = frozenset(r for r in ROLES if r not in direct
                               and (r != "metrics" or "subscribe" not in direct))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, token_file: str | Path | None = None) -> "Auth":
        """Tokens from ``WALLBOARD_<ROLE>_TOKEN`` plus every line of ``token_file``.

        A variable that is set but blank is refused (it would otherwise leave the role open).
        """
        env = os.environ if env is None else env
        grants: dict[str, set[str]] = {}
        for role in ROLES:
            value = env.get(ENV[role])
            if value is None:
                continue
            if value == "":
                raise AuthConfigError(f"{ENV[role]} is set but empty: unset it or give a token of at least "
                                      f"{MIN_TOKEN} characters")
            check_token(value, ENV[role])
            grants.setdefault(value, set()).add(role)
        if token_file:
            for token, roles in read_token_file(token_file).items():
                grants.setdefault(token, set()).update(roles)
        return cls(grants=grants)

    @property
    def tokens_set(self) -> bool:
        """True when at least one token is configured."""
        return bool(self._grants)

    def open_roles(self) -> list[str]:
        """Roles no token grants (anyone has them), in :data:`ROLES` order."""
        return [r for r in ROLES if r in self._open]

    def granted(self) -> dict[str, int]:
        """Role -> number of tokens granting it (for the start log; never the tokens)."""
        return {r: sum(r in g.roles for g in self._grants) for r in ROLES}

    def check_bind(self, host: str) -> None:
        """Raise :class:`AuthConfigError` if a role is open and ``host`` is not loopback."""
        open_ = self.open_roles()
        if open_ and not is_loopback(host):
            raise AuthConfigError(
                f"refusing to bind {host}: role(s) {', '.join(open_)} have no token; set "
                + ", ".join(ENV[r] for r in open_) + " or use --token-file (open roles are "
                "only allowed on a loopback address)")

    def roles_for(self, token: str | None) -> set[str]:
        """Roles this token grants: every open role plus the matching token's roles.

        Every configured token is compared (constant time each), so the time taken does
        not tell which token came close.
        """
        got = set(self._open)
        if token is not None:
            given = token.encode()
            for g in self._grants:
                if hmac.compare_digest(given, g.token):
                    got |= g.roles
        return got

    def known(self, token: str | None) -> bool:
        """True when ``token`` is one of the configured tokens."""
        if token is None:
            return False
        given = token.encode()
        return any([hmac.compare_digest(given, g.token) for g in self._grants])


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def empty_bearer(header: str | None) -> bool:
    """True for ``Authorization: Bearer`` with nothing after it (a script's unset token
    variable): it presents no token, the same as no header at all."""
    return header is not None and header.strip().lower() == "bearer"


def printable(value: object, limit: int = 120) -> str:
    """A peer-supplied string made safe for one log line: control characters (newlines,
    escapes) as ``\\n``/``\\x1b`` escapes, cut at ``limit`` characters with ``...``."""
    text = str(value)
    if text.isprintable() and len(text) <= limit:
        return text
    out = text.encode("unicode_escape", "backslashreplace").decode("ascii") if not text.isprintable() else text
    return out if len(out) <= limit else out[:limit] + "..."


def peer_host(peer: str) -> str:
    """The address part of ``host:port`` (IPv6 too): refusals are counted per address."""
    return peer.rsplit(":", 1)[0] if ":" in peer else peer


class RefusalLog:
    """Log a refusal once per peer address per ``interval`` seconds; the rest are counted
    and summed into the next line for that peer (so a flood writes few lines).

    ``log(peer, what)`` calls ``emit(message)`` when a line is due. Holds at most
    ``max_peers`` addresses (the oldest are forgotten first).
    """

    def __init__(self, emit: Callable[[str], None], interval: float = 60.0, max_peers: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.emit, self.interval, self.max_peers, self.clock = emit, interval, max_peers, clock
        self._peers: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def log(self, peer: str, what: str) -> bool:
        """Record one refusal; True when it was written."""
        host = peer_host(peer)
        now = self.clock()
        last, quiet = self._peers.get(host, (None, 0))
        if last is not None and now - last < self.interval:
            self._peers[host] = (last, quiet + 1)
            return False
        # the refusals not written came within ``interval`` after this address's previous
        # line, which may be long ago: say so, not "in the last N s"
        more = (f" (+{quiet} more refusals from this address, not logged, in the {self.interval:.0f} s after "
                "its previous line)") if quiet else ""
        self.emit(f"refused {printable(peer)}: {printable(what, 300)}{more}")
        self._peers[host] = (now, 0)
        self._peers.move_to_end(host)
        while len(self._peers) > self.max_peers:
            self._peers.popitem(last=False)
        return True


class PeerLimiter:
    """Refusals per peer address: after ``limit`` refusals within ``window`` seconds the
    address is *blocked* for ``block`` seconds (refused at the handshake, before any work).

    Call :meth:`refused` for each refusal and :meth:`blocked` at each new connection or
    request. Holds at most ``max_peers`` addresses (least recent forgotten first).
    """

    def __init__(self, limit: int = 10, window: float = 60.0, block: float = 60.0, max_peers: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window <= 0 or block < 0:
            raise ValueError(f"refusal limit {limit} per {window} s, block {block} s: expected limit >= 1, "
                             "window > 0, block >= 0")
        self.limit, self.window, self.block, self.max_peers, self.clock = limit, window, block, max_peers, clock
        self._peers: OrderedDict[str, tuple[float, int, float]] = OrderedDict()  # start, count, blocked until

    def refused(self, peer: str) -> bool:
        """Count one refusal of ``peer``; True when this one blocks the address."""
        host = peer_host(peer)
        now = self.clock()
        start, n, until = self._peers.get(host, (now, 0, 0.0))
        if now - start > self.window:
            start, n = now, 0
        n += 1
        blocks = n >= self.limit and until <= now
        if blocks:
            until = now + self.block
            start, n = now, 0
        self._peers[host] = (start, n, until)
        self._peers.move_to_end(host)
        while len(self._peers) > self.max_peers:
            self._peers.popitem(last=False)
        return blocks

    def blocked(self, peer: str) -> float:
        """Seconds ``peer``'s address stays blocked (0 = not blocked)."""
        entry = self._peers.get(peer_host(peer))
        if entry is None:
            return 0.0
        return max(0.0, entry[2] - self.clock())


def origin_allowed(origin: str, allowed: Iterable[str]) -> bool:
    """True when a browser ``Origin`` is in ``allowed`` (exact, case-insensitive; ``*``
    allows any). An empty list allows none: a request without ``Origin`` is not from a
    browser page and is not affected."""
    want = [a.rstrip("/").lower() for a in allowed]
    return "*" in want or origin.rstrip("/").lower() in want
