"""Pure reconnect policy for the feed client (no I/O, no asyncio).

``backoff()`` is a generator of delays in the style of websockets' own ``backoff()``:
the first retry happens at once, then the delay grows exponentially with full jitter and
is capped (5 s by default). Create a fresh generator after each successful connection.
``classify_close()`` tells the client whether a failure is worth retrying at all.
"""
from __future__ import annotations

import random
from collections.abc import Iterator

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
