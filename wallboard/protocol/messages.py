"""Protocol v1 messages as dataclasses, and their encoding to JSON bytes.

Build a message and send ``encode(msg)``; :func:`wallboard.protocol.decode` gives these
back from bytes. Pure: stdlib and orjson only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson



@dataclass
class Welcome:
    protocol: int
    hub: str
    seq: int
    heartbeat_s: float
    roles: list[str] = field(default_factory=list)
    #: The hub log's epoch: a new one means its seqs started over (resync, see session).
    epoch: str | None = None
    #: A replay connection (``hello.at``): what follows is the past, not the live feed.
    replay: bool | None = None
    #: Replay: the moment the snapshot shows (epoch seconds, the hub's commit clock); the
    #: earliest the log still holds when ``hello.at`` asked for an earlier one.
    at: float | None = None
    #: The hub sends this connection columnar ``devices`` frames (``hello.columnar``).
    columnar: bool | None = None
    op: str = "welcome"


@dataclass
class Snapshot:
    seq: int
    part: int
    parts: int
    data: dict[str, Any]
    op: str = "snapshot"


@dataclass
class Events:
    events: list[dict[str, Any]]
    #: A conflated frame (``protocol.conflate``): the seqs ``first``..``last`` it stands
    #: for; its events' seqs increase within them, the missing ones were device updates
    #: overwritten by a later event. None: a plain frame, contiguous seqs.
    first: int | None = None
    last: int | None = None
    op: str = "events"


@dataclass
class Heartbeat:
    seq: int
    time: float
    #: Replay connections: the replay clock (the commit time replayed up to) and its speed.
    at: float | None = None
    speed: float | None = None
    op: str = "heartbeat"


@dataclass
class Stats:
    counters: dict[str, float]
    #: What the hub wants walls to show on their status line: failing sources and sinks,
    #: ``{"kind": "source" | "sink", "name", "error"}`` (None: the hub runs none; [] all fine).
    notices: list[dict[str, str]] | None = None
    op: str = "stats"


@dataclass
class Error:
    code: str
    message: str
    index: int | None = None
    field: str | None = None
    seq: int | None = None
    offset: int | None = None
    #: Seconds to wait before resending (retryable codes: ``rate_limited``, ``unavailable``).
    retry_after: float | None = None
    #: The ``ref`` of the wall's ``control`` message this error answers (if it gave one).
    ref: str | None = None
    op: str = "error"


@dataclass
class Hello:
    token: str | None = None
    since: int | None = None
    wall: str | None = None
    #: The epoch of the log ``since`` counts in (from the last welcome), if any.
    epoch: str | None = None
    #: The largest frame (bytes) this wall takes: a larger one closes the connection
    #: (1009). A hub sends nothing larger (events frames, snapshot parts).
    max_frame: int | None = None
    #: Replay from this moment (epoch seconds or RFC 3339) instead of the live feed: the
    #: state as the hub had it then, then the events after it at ``speed`` x their pace.
    at: float | None = None
    speed: float | None = None
    #: Replay: the replay clock stops here (a range of history, ``wallboard record --to``).
    until: float | None = None
    #: This wall takes conflated ``events`` frames (``first``/``last``) when it falls
    #: behind; without it the hub sends every event (a recorder, an older client).
    conflate: bool | None = None
    #: This wall takes columnar ``devices`` frames (``protocol.columnar``) for runs of
    #: plain device status updates; without it every event comes in ``events`` frames.
    columnar: bool | None = None
    op: str = "hello"


@dataclass
class Control:
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    token: str | None = None
    #: The wall's own reference for this command; a refusal names it in ``Error.ref``.
    ref: str | None = None
    op: str = "control"


@dataclass
class Publish:
    events: list[dict[str, Any]]
    producer: str | None = None
    batch: int | None = None
    token: str | None = None
    op: str = "publish"


@dataclass
class Seek:
    """Replay connections: show the state at ``at`` and go on from there."""

    at: float
    op: str = "seek"


@dataclass
class Speed:
    """Replay connections: ``x`` times the recorded pace (0 = paused)."""

    x: float
    op: str = "speed"


@dataclass
class Ack:
    first: int
    last: int
    producer: str | None = None
    batch: int | None = None
    duplicate: bool = False
    op: str = "ack"


Message = Welcome | Snapshot | Events | Heartbeat | Stats | Error | Hello | Control | Publish | Ack | Seek | Speed

# --------------------------------------------------------------------------- encoding


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def to_dict(msg: Message) -> dict[str, Any]:
    """The JSON object of a message (``op`` first, optional empty fields left out)."""
    d = dict(msg.__dict__)
    op = d.pop("op")
    return {"op": op, **_drop_none(d)}


def encode(msg: Message) -> bytes:
    """JSON bytes of any message dataclass."""
    return orjson.dumps(to_dict(msg))


def encode_events(events: list[dict[str, Any]]) -> bytes:
    """An ``events`` frame (the hot path of the fan-out)."""
    return orjson.dumps({"op": "events", "events": events})

