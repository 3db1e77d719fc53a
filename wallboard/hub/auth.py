"""Tokens and roles of the hub: publish, subscribe, control.

Tokens come from ``WALLBOARD_PUBLISH_TOKEN``, ``WALLBOARD_SUBSCRIBE_TOKEN``,
``WALLBOARD_CONTROL_TOKEN`` or a token file (``role = token`` lines, ``#`` comments).
A role with no token is *open* -- allowed only while the hub binds a loopback address;
:meth:`Auth.check_bind` refuses any other bind with open roles. Tokens are compared in
constant time (``hmac.compare_digest``).
"""
from __future__ import annotations

import hmac
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("publish", "subscribe", "control")
ENV = {r: f"WALLBOARD_{r.upper()}_TOKEN" for r in ROLES}


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


def read_token_file(path: str | Path) -> dict[str, str]:
    """Parse ``role = token`` lines; errors name the file, line and what was expected."""
    out: dict[str, str] = {}
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise AuthConfigError(f"{p}: cannot read token file: {e.strerror}") from None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        role, sep, token = line.partition("=")
        role, token = role.strip(), token.strip().strip('"')
        if not sep or role not in ROLES:
            raise AuthConfigError(
                f"{p}:{n}: expected 'role = token' with role one of {', '.join(ROLES)}, got {line[:40]!r}")
        if not token:
            raise AuthConfigError(f"{p}:{n}: empty token for role {role!r}")
        out[role] = token
    return out


@dataclass
class Auth:
    """Role -> token (``None`` = open). Build with :meth:`from_env`."""

    tokens: dict[str, str | None] = field(default_factory=lambda: {r: None for r in ROLES})

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, token_file: str | Path | None = None) -> "Auth":
        """Tokens from the environment, overridden by ``token_file`` entries."""
        env = os.environ if env is None else env
        tokens: dict[str, str | None] = {r: (env.get(ENV[r]) or None) for r in ROLES}
        if token_file:
            tokens.update(read_token_file(token_file))
        return cls(tokens)

    def open_roles(self) -> list[str]:
        return [r for r in ROLES if not self.tokens.get(r)]

    def check_bind(self, host: str) -> None:
        """Raise :class:`AuthConfigError` if a role is open and ``host`` is not loopback."""
        open_ = self.open_roles()
        if open_ and not is_loopback(host):
            raise AuthConfigError(
                f"refusing to bind {host}: role(s) {', '.join(open_)} have no token; set "
                + ", ".join(ENV[r] for r in open_) + " or use --token-file (open roles are "
                "only allowed on a loopback address)")

    def roles_for(self, token: str | None) -> set[str]:
        """Roles this token grants: every open role plus every role whose token matches."""
        got: set[str] = set()
        given = (token or "").encode()
        for role in ROLES:
            want = self.tokens.get(role)
            if not want:
                got.add(role)
            elif token is not None and hmac.compare_digest(given, want.encode()):
                got.add(role)
        return got


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None
