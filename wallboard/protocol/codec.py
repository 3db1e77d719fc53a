"""Decode frames into messages (:func:`decode`) and split/merge snapshot parts.

Bytes or str in, a message dataclass out, or a precise :class:`ProtocolError`. Pure:
stdlib and orjson only.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import orjson

from wallboard.protocol.errors import ProtocolError, _tname, did_you_mean
from wallboard.protocol.fastpath import _batch_is_plainly_valid
from wallboard.protocol.limits import MIN_WALL_FRAME
from wallboard.protocol.messages import (
    Ack, Control, Error, Events, Heartbeat, Hello, Message, Publish, Seek, Snapshot, Speed, Stats, Welcome,
)
from wallboard.protocol.schema import (
    _NAME, MAX_BATCH, MAX_FRAME, MAX_TEXT, WALL_CONTROL_COMMANDS, _bool, _dict, _enum, _int, _list,
    _need, _number, _opt, _str, _str_list, _ts, validate_event,
)

#: The fastest replay a wall may ask for (``hello.speed``, ``speed.x``).
MAX_REPLAY_SPEED = 1000.0

def _batch(obj: dict, op: str, *, require_seq: bool, require_ts: bool, max_batch: int,
           gaps: bool = False) -> list[dict]:
    events = _need(obj, "events", op, _list)
    if len(events) > max_batch:
        raise ProtocolError("too_large", f"{len(events)} events in one batch", op=op,
                            field="events", expected=f"at most {max_batch}")
    if _batch_is_plainly_valid(events, require_seq, require_ts, gaps):
        return events
    return _validate_batch(events, op, require_seq=require_seq, require_ts=require_ts, gaps=gaps)


def _d_events(obj: dict, max_batch: int) -> Events:
    """An ``events`` frame; with ``first``/``last`` a conflated one (increasing seqs
    within ``first..last``, the last event at most ``last``)."""
    if "first" not in obj and "last" not in obj:
        return Events(events=_batch(obj, "events", require_seq=True, require_ts=True, max_batch=max_batch))
    first = _need(obj, "first", "events", _int(1))
    last = _need(obj, "last", "events", _int(1))
    if last < first:
        raise ProtocolError("bad_value", f"last {last} before first {first}", op="events", field="last",
                            expected=f"last >= first ({first})")
    events = _batch(obj, "events", require_seq=True, require_ts=True, max_batch=max_batch, gaps=True)
    if events:
        lo, hi = events[0]["seq"], events[-1]["seq"]
        if lo < first or hi > last:
            bad, i = (lo, 0) if lo < first else (hi, len(events) - 1)
            raise ProtocolError("bad_value", f"seq {bad} outside first..last {first}..{last}", op="events",
                                index=i, seq=bad, field="seq", expected=f"a seq within {first}..{last}")
    return Events(events=events, first=first, last=last)


def check_batch(events: Any, *, require_seq: bool = True, require_ts: bool = True,
                op: str | None = None, gaps: bool = False) -> list[dict[str, Any]]:
    """Validate a batch of event dicts already in memory (not a frame) and return it.

    The same checks as :func:`decode` (the column-wise fast path first, then the general
    one for the precise error), normalising ``ts`` in place; raises ``ProtocolError``
    naming the first bad event. ``LiveState.apply`` calls it before it changes anything.
    ``gaps``: seqs need only increase (a conflated batch, ``protocol.conflate``).
    """
    if type(events) is not list:
        raise ProtocolError("bad_type", f"batch is {_tname(events)}", op=op, expected="a list of events")
    if _batch_is_plainly_valid(events, require_seq, require_ts, gaps):
        return events
    return _validate_batch(events, op, require_seq=require_seq, require_ts=require_ts, gaps=gaps)


def _validate_batch(events: list, op: str | None, *, require_seq: bool, require_ts: bool,
                    gaps: bool = False) -> list[dict]:
    """The general path: each event through ``validate_event`` in order, then its seq
    against the previous one (``gaps``: any greater one, a conflated frame); the first
    fault raises its precise ``ProtocolError``."""
    prev = None
    for i, ev in enumerate(events):
        validate_event(ev, i, require_seq=require_seq, require_ts=require_ts, op=op)
        if require_seq:
            s = ev["seq"]
            if gaps:
                if prev is not None and s <= prev:
                    raise ProtocolError("seq_gap", f"seq {s} follows {prev}", op=op, index=i, seq=s,
                                        field="seq", expected=f"a seq above {prev} (seqs increase)")
            elif prev is not None and s != prev + 1:
                raise ProtocolError("seq_gap", f"seq {s} follows {prev}", op=op, index=i,
                                    seq=s, field="seq", expected=f"seq {prev + 1}")
            prev = s
    return events


def _d_welcome(o: dict) -> Message:
    return Welcome(
        protocol=_need(o, "protocol", "welcome", _int(1)),
        hub=_need(o, "hub", "welcome", _str(200)),
        seq=_need(o, "seq", "welcome", _int(0)),
        heartbeat_s=_need(o, "heartbeat_s", "welcome", _number(positive=True)),
        roles=_opt(o, "roles", "welcome", _str_list(10), []),
        epoch=_opt(o, "epoch", "welcome", _str(200)),
        replay=_opt(o, "replay", "welcome", _bool),
        columnar=_opt(o, "columnar", "welcome", _bool),
        at=_opt(o, "at", "welcome", _ts),
    )


def _d_snapshot(o: dict) -> Message:
    parts = _need(o, "parts", "snapshot", _int(1))
    part = _need(o, "part", "snapshot", _int(0))
    if part >= parts:
        raise ProtocolError("bad_value", f"part {part} of {parts}", op="snapshot", field="part",
                            expected=f"0 <= part < {parts}")
    return Snapshot(seq=_need(o, "seq", "snapshot", _int(0)), part=part, parts=parts,
                    data=_need(o, "data", "snapshot", _dict))


def _d_heartbeat(o: dict) -> Message:
    return Heartbeat(seq=_need(o, "seq", "heartbeat", _int(0)),
                     time=float(_need(o, "time", "heartbeat", _number(0))),
                     at=_opt(o, "at", "heartbeat", _ts), speed=_opt(o, "speed", "heartbeat", _number(0)))


#: Notices a stats message may carry (failing sources and sinks of the hub).
MAX_NOTICES = 50


def _d_stats(o: dict) -> Message:
    c = _need(o, "counters", "stats", _dict)
    for k, v in c.items():
        if type(v) not in (int, float):
            raise ProtocolError("bad_type", f"is {_tname(v)}", op="stats", field=f"counters.{k}",
                                expected="a number")
    notices = o.get("notices")
    if notices is not None:
        if type(notices) is not list or len(notices) > MAX_NOTICES:
            raise ProtocolError("bad_type", f"is {_tname(notices)}", op="stats", field="notices",
                                expected=f"a list of at most {MAX_NOTICES} notices")
        for i, n in enumerate(notices):
            if type(n) is not dict or not all(type(n.get(k)) is str and len(n[k]) <= 500
                                              for k in ("kind", "name", "error")):
                raise ProtocolError("bad_type", f"is {_tname(n)}", op="stats", field=f"notices[{i}]",
                                    expected="an object of strings kind, name, error (each at most 500 characters)")
    return Stats(counters=c, notices=notices)


def _d_error(o: dict) -> Message:
    return Error(
        code=_need(o, "code", "error", _str(64)),
        message=_need(o, "message", "error", _str(MAX_TEXT)),
        index=_opt(o, "index", "error", _int(0)),
        field=_opt(o, "field", "error", _str(400)),
        seq=_opt(o, "seq", "error", _int(0)),
        offset=_opt(o, "offset", "error", _int(0)),
        retry_after=_opt(o, "retry_after", "error", _number(0)),
        ref=_opt(o, "ref", "error", _str(64)),
    )


def _d_hello(o: dict) -> Message:
    hello = Hello(token=_opt(o, "token", "hello", _str(1000)), since=_opt(o, "since", "hello", _int(0)),
                 wall=_opt(o, "wall", "hello", _str(200)), epoch=_opt(o, "epoch", "hello", _str(200)),
                 max_frame=_opt(o, "max_frame", "hello", _int(MIN_WALL_FRAME)),
                 at=_opt(o, "at", "hello", _ts),
                 speed=_opt(o, "speed", "hello", _number(0, MAX_REPLAY_SPEED)),
                 until=_opt(o, "until", "hello", _ts), conflate=_opt(o, "conflate", "hello", _bool),
                  columnar=_opt(o, "columnar", "hello", _bool))
    if hello.since is not None and hello.at is not None:
        raise ProtocolError("bad_value", "'since' and 'at' exclude each other", op="hello", field="at",
                            expected="since (the live feed from a seq) or at (a replay from a moment)")
    for name in ("speed", "until"):
        if getattr(hello, name) is not None and hello.at is None:
            raise ProtocolError("bad_value", f"{name!r} without 'at'", op="hello", field=name,
                                expected=f"{name} only with at (a replay)")
    if hello.until is not None and hello.at is not None and hello.until < hello.at:
        raise ProtocolError("bad_value", "'until' is before 'at'", op="hello", field="until",
                            expected="until >= at")
    return hello


def _d_seek(o: dict) -> Message:
    return Seek(at=_need(o, "at", "seek", _ts))


def _d_speed(o: dict) -> Message:
    return Speed(x=float(_need(o, "x", "speed", _number(0, MAX_REPLAY_SPEED))))


def _d_control(o: dict) -> Message:
    cmd = _need(o, "command", "control", _enum(WALL_CONTROL_COMMANDS))
    args = _opt(o, "args", "control", _dict, {})
    if cmd == "ack_incident":
        if type(args.get("incident")) is not str or not args["incident"]:
            raise ProtocolError("missing_field", "'incident' id is required", op="control", field="args.incident")
        if "owner" in args:
            _opt(args, "owner", "control", _NAME)
    else:
        ev = {"type": "control", "command": cmd, **args}
        try:
            validate_event(ev, require_seq=False, require_ts=False, op="control")
        except ProtocolError as e:
            e.index = None
            if e.field and e.field != "command":
                e.field = f"args.{e.field}"
            e.args = (e._compose(),)
            raise
    return Control(command=cmd, args=args, token=_opt(o, "token", "control", _str(1000)),
                   ref=_opt(o, "ref", "control", _str(64)))


def _d_ack(o: dict) -> Message:
    return Ack(first=_need(o, "first", "ack", _int(0)), last=_need(o, "last", "ack", _int(0)),
               producer=_opt(o, "producer", "ack", _str(200)), batch=_opt(o, "batch", "ack", _int(0)),
               duplicate=bool(_opt(o, "duplicate", "ack", _bool, False)))


_DECODERS: dict[str, Callable[[dict], Message]] = {
    "welcome": _d_welcome,
    "snapshot": _d_snapshot,
    "heartbeat": _d_heartbeat,
    "stats": _d_stats,
    "error": _d_error,
    "hello": _d_hello,
    "control": _d_control,
    "ack": _d_ack,
    "seek": _d_seek,
    "speed": _d_speed,
}
OPS = ("welcome", "snapshot", "events", "heartbeat", "stats", "error", "hello", "control", "publish", "ack",
       "seek", "speed")


def decode(
    data: bytes | bytearray | memoryview | str,
    *,
    max_size: int = MAX_FRAME,
    max_batch: int = MAX_BATCH,
    expect: Iterable[str] | None = None,
) -> Message:
    """Decode one frame into a message; raise ``ProtocolError`` for anything malformed.

    ``expect`` restricts the ops this endpoint accepts (others are ``unknown_op``).
    Events in an ``events`` frame must carry contiguous seqs; events in ``publish`` may
    omit ``seq`` and ``ts`` (the hub assigns them).
    """
    try:
        n = len(data)
    except TypeError:
        raise ProtocolError("not_json", f"frame is {type(data).__name__}", expected="bytes or str") from None
    if n > max_size:
        raise ProtocolError("too_large", f"frame of {n} bytes", expected=f"at most {max_size} bytes")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ProtocolError("not_json", e.msg, offset=e.pos, expected="a UTF-8 JSON object") from None
    except (TypeError, ValueError) as e:  # e.g. str with lone surrogates
        raise ProtocolError("not_json", str(e)[:200], expected="a UTF-8 JSON object") from None
    if type(obj) is not dict:
        raise ProtocolError("not_object", f"frame is {_tname(obj)}", expected="a JSON object with 'op'")
    op = obj.get("op")
    if type(op) is not str:
        if op is None:
            raise ProtocolError("missing_field", "'op' is required", field="op", expected="one of " + ", ".join(OPS))
        raise ProtocolError("bad_type", f"op is {_tname(op)}", field="op", expected="a string")
    if expect is not None and op not in expect:
        raise ProtocolError("unknown_op", f"op {op[:40]!r} not accepted here{did_you_mean(op, expect)}",
                            op=op[:40], expected="one of " + ", ".join(expect))
    if op == "events":
        return _d_events(obj, max_batch)
    if op == "publish":
        events = _batch(obj, op, require_seq=False, require_ts=False, max_batch=max_batch)
        return Publish(events=events, producer=_opt(obj, "producer", op, _str(200)),
                       batch=_opt(obj, "batch", op, _int(0)), token=_opt(obj, "token", op, _str(1000)))
    dec = _DECODERS.get(op)
    if dec is None:
        raise ProtocolError("unknown_op", f"unknown op {op[:40]!r}{did_you_mean(op, OPS)}", op=op[:40],
                            expected="one of " + ", ".join(OPS))
    return dec(obj)


# --------------------------------------------------------------------------- snapshots


def split_snapshot(data: dict[str, Any], max_records: int = 5000) -> list[dict[str, Any]]:
    """Split a state snapshot into parts of at most ``max_records`` list items each.

    List-valued keys are sliced across parts; other keys go into part 0. Reassemble with
    :func:`merge_snapshot_parts`.
    """
    max_records = max(1, max_records)
    scalars = {k: v for k, v in data.items() if not isinstance(v, list)}
    parts: list[dict[str, Any]] = []
    cur: dict[str, Any] = dict(scalars)
    room = max_records
    for key, value in data.items():
        if not isinstance(value, list):
            continue
        cur.setdefault(key, [])
        i = 0
        while i < len(value):
            if room == 0:
                parts.append(cur)
                cur, room = {key: []}, max_records
            take = value[i : i + room]
            cur[key].extend(take)
            i += len(take)
            room -= len(take)
    parts.append(cur)
    return parts


def merge_snapshot_parts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Reassemble :func:`split_snapshot`'s parts (in order) into one snapshot dict."""
    if not parts:
        return {}
    out: dict[str, Any] = {k: (list(v) if isinstance(v, list) else v) for k, v in parts[0].items()}
    for p in parts[1:]:
        for k, v in p.items():
            if isinstance(v, list):
                out.setdefault(k, []).extend(v)
    return out


