"""Pure reconnect policy for the feed client (no I/O, no asyncio).

``backoff()`` is a generator of delays in the style of websockets' own ``backoff()``:
the first retry happens at once, then the delay grows exponentially with full jitter and
is capped (5 s by default). Create a fresh generator after each successful connection.
``classify_close()`` tells the client whether a failure is worth retrying at all.
:class:`Reconnects` decides each reconnect's delay from how long the link was up: a link
that was welcomed and lasted ``healthy_s`` starts the backoff over (the next attempt is at
once); any other end -- a refused connect, a hub that closes right after its welcome, a
resync asked for again and again (a seq gap, a snapshot that does not load, a new epoch)
-- waits the next delay, so a hub that always sends a gap or a bad snapshot costs one
reconnect every few seconds, not 132 a second.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterator

#: Close code the hub uses for refused auth and protocol violations.
POLICY_VIOLATION = 1008


def backoff(
    initial: float = 0.0,
    min_delay: float = 0.25,
    factor: float = 2.0,
    max_delay: float = 5.0,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Yield reconnect delays in seconds: ``initial`` (0 = at once), then jittered growth.

    The n-th later delay is drawn uniformly from ``[d/2, d]`` with
    ``d = min(max_delay, min_delay * factor**n)``, so many walls that lost the same hub
    do not come back in lock-step. Never ends; never exceeds ``max_delay``.
    """
    if min_delay <= 0 or factor < 1 or max_delay <= 0:
        raise ValueError("backoff needs min_delay > 0, factor >= 1, max_delay > 0")
    r = rng or random.Random()
    yield max(0.0, min(initial, max_delay))
    d = min_delay
    while True:
        yield min(max_delay, r.uniform(d / 2, d))
        d = min(max_delay, d * factor)


class Reconnects:
    """When to reconnect, given when the link came up and went down (pure: the driver
    passes its monotonic clock)::

        policy = Reconnects()
        ...welcome received:        policy.up(now)
        ...connection gone:         delay = policy.down(now)   # then sleep(delay), connect

    ``delays`` makes a fresh delay generator (default :func:`backoff`: 0 first, then
    jittered growth capped at 5 s). ``in_a_row`` counts the reconnects since the last
    healthy link (welcomed and up for at least ``healthy_s`` seconds)."""

    def __init__(self, delays: Callable[[], Iterator[float]] = backoff, healthy_s: float = 10.0) -> None:
        if not healthy_s > 0:
            raise ValueError(f"healthy_s must be > 0, got {healthy_s!r}")
        self._factory = delays
        self._delays = delays()
        self.healthy_s = healthy_s
        self.in_a_row = 0
        self._up_at: float | None = None

    def up(self, now: float) -> None:
        """The link works (the hub's welcome arrived) at ``now``."""
        self._up_at = now

    def down(self, now: float) -> float:
        """The link is gone at ``now``: the seconds to wait before the next connect."""
        up_at, self._up_at = self._up_at, None
        if up_at is not None and now - up_at >= self.healthy_s:
            self._delays = self._factory()      # it was healthy: start over, at once
            self.in_a_row = 0
        self.in_a_row += 1
        return next(self._delays)


def classify_close(code: int | None = None, reason: str = "", http_status: int | None = None) -> str:
    """``"auth"`` for a refused token (stop and show AUTH_FAILED), ``"retry"`` otherwise.

    The hub refuses auth with HTTP 401/403 on the handshake, or by closing with 1008
    and a reason starting with ``auth``/``forbidden``.
    """
    if http_status in (401, 403):
        return "auth"
    if code == POLICY_VIOLATION and reason.split(":", 1)[0].strip() in ("auth", "forbidden"):
        return "auth"
    return "retry"
