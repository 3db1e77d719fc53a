"""Protocol limits: what every peer, the journal and a snapshot can carry, checked at the door.

An event the hub accepts is journaled (SQLite, JSON via orjson), replayed, folded into
a snapshot that is encoded, stored, split into parts and decoded again by every wall.
Anything that one of those steps cannot carry must be refused when it arrives, with a
precise :class:`ProtocolError`, never found later (issue 18, item 4: a 253-deep ``x_``
field was acked, then every snapshot and every compaction failed for good). The limits:

* :data:`MAX_INT` -- every integer anywhere (fields, metrics, ``x_`` values, seqs,
  batch ids, ``since``) is within +-(2**53 - 1): exact as a JSON number in every peer
  (JavaScript, Go's float64 decoding), a SQLite INTEGER, an orjson int. Floats are any
  finite double.
* :data:`MAX_DEPTH` -- a field's value nests at most 32 lists/objects deep (orjson
  refuses 255 levels on encode; a snapshot adds 2 to 3 levels around each record).
* :data:`MAX_TEXT` / :data:`MAX_ID` -- strings: free text at most 4,000 characters,
  ids and names at most 200; ``x_`` strings and object keys count as free text / ids.
* :data:`MAX_EVENT` -- one event encodes (``orjson.dumps``, what the journal stores and
  the fan-out sends) to at most 512 KiB, so any accepted event fits alone in a frame
  of :data:`MAX_FRAME` (1 MiB) to any peer, with room for the envelope.
* :data:`MAX_BATCH` -- 5,000 events per ``events``/``publish`` frame.

The checks live where the values are read (``schema``, ``fastpath``); this module holds
the numbers and the walker for free-form ``x_`` values. Pure: stdlib and orjson only.
"""
from __future__ import annotations

import math
from typing import Any

import orjson

from wallboard.protocol.errors import ProtocolError, _tname

MAX_FRAME = 1 << 20          # bytes of one frame (1 MiB)
MAX_BATCH = 5000             # events per frame
MAX_ID = 200                 # characters of an id, a name, an object key
MAX_TEXT = 4000              # characters of free text
MAX_INT = (1 << 53) - 1      # |integer| anywhere in a message
MAX_DEPTH = 32               # lists/objects nested inside one field's value
MAX_EVENT = 1 << 19          # bytes of one encoded event (512 KiB)
#: The wall's side (issue 13): the largest frame a wall takes by default, announced in its
#: ``hello`` (``max_frame``) and enforced by its client (websockets ``max_size``); a wall
#: may announce no less than :data:`MAX_FRAME` (every accepted event fits in that).
WALL_MAX_FRAME = 16 << 20    # bytes (16 MiB: 16 default hub frames; snapshot parts of 5,000 records)
MIN_WALL_FRAME = MAX_FRAME
#: The longest heartbeat interval a wall believes: a hub announcing more (``1e9``) would
#: keep a silent feed LIVE for ever; the wall counts staleness with this instead.
WALL_MAX_HEARTBEAT_S = 30.0

#: Human-readable summary of the limits (for docs and ``--help`` texts).
LIMITS = {
    "max_frame_bytes": MAX_FRAME, "max_batch_events": MAX_BATCH, "max_id_chars": MAX_ID,
    "max_text_chars": MAX_TEXT, "max_abs_int": MAX_INT, "max_depth": MAX_DEPTH,
    "max_event_bytes": MAX_EVENT,
}


def int_out_of_range(v: int, path: str) -> ProtocolError:
    """The error for an integer beyond +-:data:`MAX_INT` at ``path``."""
    return ProtocolError("bad_value", f"integer {v} out of range", field=path,
                         expected=f"an integer within +-{MAX_INT} (2**53 - 1)", limit=MAX_INT, got=v)


def check_free_value(v: Any, path: str, depth: int = 0) -> None:
    """Check a free-form (``x_``) value: JSON types only, integers within :data:`MAX_INT`,
    finite floats, strings of at most :data:`MAX_TEXT` characters, object keys of at most
    :data:`MAX_ID`, at most :data:`MAX_DEPTH` nested lists/objects. Raises the first
    fault as ``ProtocolError`` naming its path (``x_a.b[3]``)."""
    t = type(v)
    if t is str:
        if len(v) > MAX_TEXT:
            raise ProtocolError("bad_value", f"string of {len(v)} characters", field=path,
                                expected=f"at most {MAX_TEXT}", limit=MAX_TEXT, got=len(v))
        return
    if t is int:
        if -MAX_INT <= v <= MAX_INT:
            return
        raise int_out_of_range(v, path)
    if t is float:
        if math.isfinite(v):
            return
        raise ProtocolError("bad_value", f"{v!r} is not finite", field=path, expected="a finite number")
    if t is bool or v is None:
        return
    if t is list or t is dict:
        if depth >= MAX_DEPTH:
            raise ProtocolError("too_large", f"nests more than {MAX_DEPTH} lists/objects deep",
                                field=path, expected=f"at most {MAX_DEPTH} levels",
                                limit=MAX_DEPTH, got=depth + 1)
        depth += 1
        if t is list:
            for i, x in enumerate(v):
                if not _plain(x):
                    check_free_value(x, f"{path}[{i}]", depth)
        else:
            for k, x in v.items():
                if type(k) is not str:
                    raise ProtocolError("bad_type", f"key {k!r} is {_tname(k)}", field=path,
                                        expected="string keys")
                if len(k) > MAX_ID:
                    raise ProtocolError("bad_value", f"key of {len(k)} characters", field=f"{path}.{k[:40]}",
                                        expected=f"keys of at most {MAX_ID}", limit=MAX_ID, got=len(k))
                if not _plain(x):
                    check_free_value(x, f"{path}.{k}", depth)
        return
    raise ProtocolError("bad_type", f"is {_tname(v)}", field=path,
                        expected="a JSON value (string, number, boolean, null, list, object)")


def _plain(x: Any) -> bool:
    """A scalar within the limits (the common case: checked without building a path)."""
    t = type(x)
    if t is str:
        return len(x) <= MAX_TEXT
    if t is int:
        return -MAX_INT <= x <= MAX_INT
    if t is float:
        return math.isfinite(x)
    return t is bool or x is None


def check_event_size(ev: dict[str, Any], index: int | None = None) -> None:
    """Raise ``too_large`` when ``ev`` encodes to more than :data:`MAX_EVENT` bytes (or
    ``bad_value`` when it cannot be encoded at all, e.g. a str with lone surrogates)."""
    try:
        n = len(orjson.dumps(ev))
    except (TypeError, ValueError) as e:
        raise ProtocolError("bad_value", f"cannot be encoded as JSON: {e}", index=index,
                            expected="JSON-encodable values") from None
    if n > MAX_EVENT:
        raise ProtocolError("too_large", f"event encodes to {n} bytes", index=index,
                            expected=f"at most {MAX_EVENT} bytes", limit=MAX_EVENT, got=n)


__all__ = ["WALL_MAX_FRAME", "MIN_WALL_FRAME", "WALL_MAX_HEARTBEAT_S", "MAX_FRAME", "MAX_BATCH", "MAX_ID", "MAX_TEXT", "MAX_INT", "MAX_DEPTH", "MAX_EVENT",
           "LIMITS", "check_free_value", "check_event_size", "int_out_of_range"]
