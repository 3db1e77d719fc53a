"""``wallboard record --from T1 --to T2``: a range of the hub's history into a tape.

Opens a replay connection (``hello`` with ``at`` = T1, ``until`` = T2, the fastest
``speed``), writes the state at T1 as one ``{"op":"snapshot",...}`` line and then every
event committed after T1 up to T2, one JSON line each (the format of ``wallboard record``,
so ``wallboard replay`` and ``wallboard --replay`` read it), and stops when the hub's
replay clock has reached T2.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wallboard import protocol as P
from wallboard.protocol.codec import MAX_REPLAY_SPEED

from .record import AuthFailed, Progress, Unreachable, _line, open_output

log = logging.getLogger("wallboard.hub.record")

#: Seconds without a frame before the range is given up (the hub sends heartbeats).
SILENCE_S = 30.0


class RangeRefused(RuntimeError):
    """The hub could not replay that range (not in its log, not a replaying hub)."""


async def record_range(feed_url: str, out: Path | str, t_from: float, t_to: float, *,
                       token: str | None = None, progress: Progress | None = None) -> int:
    """Write the history between ``t_from`` and ``t_to`` (epoch seconds) to ``out``;
    returns the events written (the snapshot line not counted)."""
    if t_to < t_from:
        raise ValueError(f"--to {t_to:.3f} is before --from {t_from:.3f}")
    prog = progress if progress is not None else Progress()
    headers = {"Authorization": f"Bearer {token}"} if token else None
    with open_output(out) as fh:
        try:
            async with connect(feed_url, additional_headers=headers, compression=None, max_size=None,
                               open_timeout=10) as ws:
                await ws.send(P.encode(P.Hello(token=token, at=t_from, until=t_to, speed=MAX_REPLAY_SPEED,
                                               wall="recorder")), text=True)
                parts: list[dict[str, Any]] = []
                welcomed = False
                while True:
                    try:
                        raw = await asyncio.wait_for(ws.recv(), SILENCE_S)
                    except asyncio.TimeoutError:
                        raise RangeRefused(f"{feed_url}: no frame for {SILENCE_S:.0f} s") from None
                    msg = P.decode(raw, max_size=1 << 30)
                    if isinstance(msg, P.Welcome):
                        if not msg.replay:
                            raise RangeRefused(f"{feed_url}: the hub does not replay history (an older version)")
                        welcomed = True
                        if msg.at is not None and msg.at > t_from + 0.001:
                            log.warning("the hub's log starts at %.3f, after --from %.3f: the range starts there",
                                        msg.at, t_from)
                    elif isinstance(msg, P.Snapshot):
                        parts.append(msg.data)
                        if msg.part + 1 == msg.parts:
                            _line(fh, {"op": "snapshot", "seq": msg.seq, "data": P.merge_snapshot_parts(parts)})
                            fh.flush()
                            parts = []
                    elif isinstance(msg, P.Events):
                        for ev in msg.events:
                            _line(fh, ev)
                        fh.flush()
                        prog.events += len(msg.events)
                    elif isinstance(msg, P.Heartbeat):
                        if msg.at is not None and msg.at >= t_to - 0.001:
                            return prog.events       # every event committed by t_to was sent
                    elif isinstance(msg, P.Error):
                        if not welcomed:
                            raise RangeRefused(f"{feed_url}: {msg.code}: {msg.message}")
                        log.error("hub error: %s: %s", msg.code, msg.message)
        except InvalidStatus as e:
            raise AuthFailed(f"{feed_url}: HTTP {e.response.status_code}") from None
        except ConnectionClosed as e:
            raise RangeRefused(f"{feed_url}: closed ({e.rcvd.code if e.rcvd else 'no code'}: "
                               f"{e.rcvd.reason if e.rcvd else ''})") from None
        except OSError as e:
            raise Unreachable(f"cannot reach {feed_url}: {e.strerror or e}") from None


__all__ = ["record_range", "RangeRefused"]
