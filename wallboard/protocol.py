"""Wire protocol v1: decode, validate and encode the hub's messages (sans-I/O).

Bytes or str go in, typed message dataclasses come out; the events inside them stay plain
``dict``s, validated field by field and with ``ts`` normalised to float epoch seconds.
Every malformed input raises :class:`ProtocolError`, which names where (op, index in the
batch, field path, seq, byte offset) and what was expected. Nothing else escapes
:func:`decode`: callers catch ``ProtocolError``, count it by ``code`` and answer it.

Typical use::

    msg = decode(frame)                    # -> Events / Snapshot / Heartbeat / ...
    if isinstance(msg, Events):
        dirty = state.apply(msg.events, now)

The spec is ``docs/protocol.md``. This module imports only the stdlib and orjson.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, compress, repeat
from operator import eq, itemgetter, not_
from typing import Any, Callable, Iterable

import orjson

PROTOCOL_VERSION = 1
MAX_FRAME = 1 << 20  # 1 MiB
MAX_BATCH = 5000
MAX_ID = 200
MAX_TEXT = 4000

ENTITY_TYPES = ("store", "device", "change", "incident")
SAMPLE_TYPES = ("voice", "kpi")
EVENT_TYPES = ENTITY_TYPES + SAMPLE_TYPES + ("control",)

STORE_STATUSES = ("planned", "opening", "open", "closed", "maintenance")
DEVICE_STATUSES = ("ok", "warn", "crit", "down", "maint", "unknown")
CHANGE_STATUSES = ("planned", "running", "succeeded", "failed", "rolled_back")
INCIDENT_STATUSES = ("open", "acknowledged", "mitigated", "resolved")
SEVERITIES = ("P1", "P2", "P3", "P4")
RISKS = ("low", "medium", "high")
CONTROL_COMMANDS = ("switch_layout", "banner", "focus_store")
WALL_CONTROL_COMMANDS = CONTROL_COMMANDS + ("ack_incident",)
BANNER_LEVELS = ("info", "warn", "crit")

#: Reasons a frame or event can be refused; counters are keyed by these.
ERROR_CODES = (
    "not_json",
    "not_object",
    "unknown_op",
    "missing_field",
    "bad_type",
    "bad_value",
    "unknown_field",
    "too_large",
    "seq_gap",
    "bad_event",
    "auth",
    "forbidden",
    "rate_limited",
)


class ProtocolError(ValueError):
    """A frame or event that does not follow protocol v1.

    ``code`` is one of :data:`ERROR_CODES` (count by it); ``op``, ``index`` (position of
    the event in its batch), ``field`` (path inside the event or message), ``seq`` and
    ``offset`` (byte offset of a JSON syntax error) say where; ``expected`` says what.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        op: str | None = None,
        index: int | None = None,
        field: str | None = None,
        seq: int | None = None,
        offset: int | None = None,
        expected: str | None = None,
    ) -> None:
        self.code = code
        self.detail = message
        self.op = op
        self.index = index
        self.field = field
        self.seq = seq
        self.offset = offset
        self.expected = expected
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = []
        if self.op:
            where.append(f"op {self.op}")
        if self.index is not None:
            where.append(f"event {self.index}")
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        if self.field:
            where.append(f"field {self.field!r}")
        if self.offset is not None:
            where.append(f"byte {self.offset}")
        text = f"{self.code}: {self.detail}"
        if self.expected:
            text += f" (expected {self.expected})"
        if where:
            text += " at " + ", ".join(where)
        return text

    def to_message(self) -> "Error":
        """This error as an ``error`` message to send back to the peer."""
        return Error(
            code=self.code,
            message=str(self),
            index=self.index,
            field=self.field,
            seq=self.seq,
            offset=self.offset,
        )


# --------------------------------------------------------------------------- messages


@dataclass
class Welcome:
    protocol: int
    hub: str
    seq: int
    heartbeat_s: float
    roles: list[str] = field(default_factory=list)
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
    op: str = "events"


@dataclass
class Heartbeat:
    seq: int
    time: float
    op: str = "heartbeat"


@dataclass
class Stats:
    counters: dict[str, float]
    op: str = "stats"


@dataclass
class Error:
    code: str
    message: str
    index: int | None = None
    field: str | None = None
    seq: int | None = None
    offset: int | None = None
    op: str = "error"


@dataclass
class Hello:
    token: str | None = None
    since: int | None = None
    wall: str | None = None
    op: str = "hello"


@dataclass
class Control:
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    token: str | None = None
    op: str = "control"


@dataclass
class Publish:
    events: list[dict[str, Any]]
    producer: str | None = None
    batch: int | None = None
    token: str | None = None
    op: str = "publish"


@dataclass
class Ack:
    first: int
    last: int
    producer: str | None = None
    batch: int | None = None
    duplicate: bool = False
    op: str = "ack"


Message = Welcome | Snapshot | Events | Heartbeat | Stats | Error | Hello | Control | Publish | Ack

# --------------------------------------------------------------------------- timestamps


def parse_ts(value: Any, *, where: str = "ts") -> float:
    """Epoch seconds from an RFC 3339 string or a number; ``ProtocolError`` otherwise."""
    t = type(value)
    if t is float or t is int:
        v = float(value)
        if not math.isfinite(v) or v < 0 or v > 32503680000.0:  # year 3000
            raise ProtocolError(
                "bad_value", f"timestamp {value!r} out of range", field=where,
                expected="epoch seconds between 1970 and 3000",
            )
        return v
    if t is str:
        s = value
        if len(s) > 40:
            raise ProtocolError("bad_value", "timestamp too long", field=where, expected="RFC 3339")
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        # Python 3.11's fromisoformat takes RFC 3339 with any fraction length.
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            raise ProtocolError(
                "bad_value", f"cannot parse timestamp {value!r}", field=where,
                expected="RFC 3339 with offset, e.g. 2026-09-28T09:28:00+08:00",
            ) from None
        if dt.tzinfo is None:
            raise ProtocolError(
                "bad_value", f"timestamp {value!r} has no UTC offset", field=where,
                expected="RFC 3339 with offset, e.g. 2026-09-28T09:28:00+08:00",
            )
        try:
            v = dt.timestamp()
        except (OverflowError, OSError, ValueError):
            raise ProtocolError("bad_value", f"timestamp {value!r} out of range", field=where) from None
        if v < 0 or v > 32503680000.0:
            raise ProtocolError(
                "bad_value", f"timestamp {value!r} out of range", field=where,
                expected="a time between 1970 and 3000",
            )
        return v
    raise ProtocolError(
        "bad_type", f"timestamp is {_tname(value)}", field=where,
        expected="RFC 3339 string or epoch seconds",
    )


def _tname(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean", int: "an integer", float: "a number", str: "a string",
        list: "a list", dict: "an object",
    }.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------- field checks
# A checker takes (value, path) and returns the value to store (possibly normalised) or
# raises ProtocolError. Checkers are plain closures: this is the decoder's hot path.

Checker = Callable[[Any, str], Any]


def _str(max_len: int = MAX_TEXT, min_len: int = 0) -> Checker:
    def check(v: Any, path: str) -> Any:
        if type(v) is not str:
            raise ProtocolError("bad_type", f"is {_tname(v)}", field=path, expected="a string")
        n = len(v)
        if n > max_len or n < min_len:
            raise ProtocolError(
                "bad_value", f"length {n}", field=path,
                expected=f"a string of {min_len}..{max_len} characters",
            )
        return v

    return check


def _enum(values: tuple[str, ...]) -> Checker:
    allowed = frozenset(values)

    def check(v: Any, path: str) -> Any:
        if type(v) is not str or v not in allowed:
            hint = did_you_mean(v, values) if type(v) is str else ""
            raise ProtocolError(
                "bad_value" if type(v) is str else "bad_type",
                f"{v!r} is not allowed{hint}", field=path,
                expected="one of " + ", ".join(values),
            )
        return v

    return check


def _number(lo: float | None = None, hi: float | None = None, *, positive: bool = False) -> Checker:
    def check(v: Any, path: str) -> Any:
        t = type(v)
        if t is not float and t is not int:
            raise ProtocolError("bad_type", f"is {_tname(v)}", field=path, expected="a number")
        if t is float and not math.isfinite(v):
            raise ProtocolError("bad_value", "is not finite", field=path, expected="a finite number")
        if (lo is not None and v < lo) or (hi is not None and v > hi) or (positive and v <= 0):
            if positive:
                rng = "> 0"
            elif hi is None:
                rng = f">= {lo}"
            elif lo is None:
                rng = f"<= {hi}"
            else:
                rng = f"between {lo} and {hi}"
            raise ProtocolError("bad_value", f"{v!r} out of range", field=path, expected=f"a number {rng}")
        return v

    return check


def _bool(v: Any, path: str) -> Any:
    if type(v) is not bool:
        raise ProtocolError("bad_type", f"is {_tname(v)}", field=path, expected="true or false")
    return v


def _ts(v: Any, path: str) -> Any:
    return parse_ts(v, where=path)


def _ts_or_null(v: Any, path: str) -> Any:
    return None if v is None else parse_ts(v, where=path)


def _str_list(max_items: int = 10000) -> Checker:
    item = _str(MAX_ID, 1)

    def check(v: Any, path: str) -> Any:
        if type(v) is not list:
            raise ProtocolError("bad_type", f"is {_tname(v)}", field=path, expected="a list of strings")
        if len(v) > max_items:
            raise ProtocolError("bad_value", f"{len(v)} items", field=path, expected=f"at most {max_items}")
        for i, x in enumerate(v):
            item(x, f"{path}[{i}]")
        return v

    return check


def _object(fields: dict[str, Checker], required: tuple[str, ...] = ()) -> Checker:
    def check(v: Any, path: str) -> Any:
        if type(v) is not dict:
            raise ProtocolError("bad_type", f"is {_tname(v)}", field=path, expected="an object")
        for k in required:
            if k not in v:
                raise ProtocolError("missing_field", f"{k!r} is required", field=f"{path}.{k}")
        for k, x in v.items():
            c = fields.get(k)
            if c is None:
                raise ProtocolError(
                    "unknown_field", f"unknown key {k!r}{did_you_mean(k, fields)}", field=f"{path}.{k}",
                    expected="one of " + ", ".join(fields),
                )
            c(x, f"{path}.{k}")
        return v

    return check


def _metrics(v: Any, path: str) -> Any:
    if type(v) is not dict:
        raise ProtocolError("bad_type", f"is {_tname(v)}", field=path, expected="an object of name -> number")
    if len(v) > 200:
        raise ProtocolError("bad_value", f"{len(v)} metrics", field=path, expected="at most 200")
    for k, x in v.items():
        t = type(x)
        if (t is not float and t is not int) or (t is float and not math.isfinite(x)):
            raise ProtocolError("bad_type", f"is {_tname(x)}", field=f"{path}.{k}", expected="a finite number")
        if len(k) > MAX_ID:
            raise ProtocolError("bad_value", "metric name too long", field=f"{path}.{k[:40]}")
    return v


def _kpi_scope(v: Any, path: str) -> Any:
    if type(v) is not str:
        raise ProtocolError("bad_type", f"is {_tname(v)}", field=path, expected="global, city:ID or store:ID")
    if v == "global" or ((v.startswith("city:") or v.startswith("store:")) and len(v.split(":", 1)[1]) > 0):
        if len(v) <= MAX_ID + 6:
            return v
    raise ProtocolError("bad_value", f"{v!r} is not a KPI scope", field=path, expected="global, city:ID or store:ID")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to ``word``, or "" (the one
    hint every error message of the project appends)."""
    try:
        m = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    except Exception:  # pragma: no cover - defensive: difflib on odd input
        m = []
    return f" (did you mean {m[0]!r}?)" if m else ""


_ID = _str(MAX_ID, 1)
_NAME = _str(200)
_TEXT = _str(MAX_TEXT)

_COMMON: dict[str, Checker] = {"type": _ID, "id": _ID, "ts": _ts, "seq": lambda v, p: v, "deleted": _bool}

SCHEMAS: dict[str, dict[str, Checker]] = {
    "store": {
        "name": _NAME,
        "name_en": _NAME,
        "city": _object({"id": _ID, "name": _NAME, "name_en": _NAME}, required=("id",)),
        "lat": _number(-90, 90),
        "lon": _number(-180, 180),
        "status": _enum(STORE_STATUSES),
        "opens_at": _ts_or_null,
        "tags": _str_list(100),
    },
    "device": {
        "store": _ID,
        "kind": _str(64, 1),
        "name": _NAME,
        "status": _enum(DEVICE_STATUSES),
        "metrics": _metrics,
        "msg": _TEXT,
        "ttl_s": _number(positive=True),
    },
    "change": {
        "title": _NAME,
        "system": _str(100),
        "owner": _NAME,
        "scope": _object({"stores": _str_list(), "cities": _str_list(), "systems": _str_list()}),
        "status": _enum(CHANGE_STATUSES),
        "start": _ts,
        "end": _ts_or_null,
        "approved": _bool,
        "risk": _enum(RISKS),
    },
    "incident": {
        "title": _NAME,
        "severity": _enum(SEVERITIES),
        "status": _enum(INCIDENT_STATUSES),
        "stores": _str_list(),
        "owner": _NAME,
        "opened_at": _ts,
        "acknowledged_at": _ts_or_null,
        "resolved_at": _ts_or_null,
        "suspect_changes": _str_list(1000),
    },
    "voice": {
        "channel": _str(64, 1),
        "text": _TEXT,
        "sentiment": _number(-1, 1),
        "topic": _str(100),
        "store": _ID,
        "city": _ID,
    },
    "kpi": {
        "metric": _str(100, 1),
        "scope": _kpi_scope,
        "value": _number(),
        "unit": _str(20),
    },
    "control": {
        "command": _enum(CONTROL_COMMANDS),
        "layout": _str(200, 1),
        "text": _str(500),
        "level": _enum(BANNER_LEVELS),
        "ttl_s": _number(positive=True),
        "store": _ID,
    },
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "voice": ("channel", "text"),
    "kpi": ("metric", "scope", "value"),
    "control": ("command",),
}
CONTROL_ARGS: dict[str, tuple[str, ...]] = {
    "switch_layout": ("layout",),
    "banner": ("text",),
    "focus_store": ("store",),
}
_ALL_FIELDS = {t: {**_COMMON, **s} for t, s in SCHEMAS.items()}
_ENTITY = frozenset(ENTITY_TYPES)


def validate_event(
    ev: Any,
    index: int | None = None,
    *,
    require_seq: bool = True,
    require_ts: bool = True,
    op: str | None = None,
) -> dict[str, Any]:
    """Check one event against its type's schema and normalise its timestamps in place.

    Returns the event dict. Raises ``ProtocolError`` naming ``index`` and the field path.
    """
    if type(ev) is not dict:
        raise ProtocolError("bad_type", f"event is {_tname(ev)}", op=op, index=index, expected="an object")
    etype = ev.get("type")
    fields = _ALL_FIELDS.get(etype) if type(etype) is str else None
    seq = ev.get("seq")
    if fields is None:
        if etype is None:
            raise ProtocolError("missing_field", "'type' is required", op=op, index=index, field="type")
        if type(etype) is not str:
            raise ProtocolError("bad_type", f"type is {_tname(etype)}", op=op, index=index, field="type",
                                expected="one of " + ", ".join(EVENT_TYPES))
        raise ProtocolError(
            "bad_value", f"unknown event type {etype!r}{did_you_mean(str(etype), EVENT_TYPES)}",
            op=op, index=index, field="type", expected="one of " + ", ".join(EVENT_TYPES),
        )
    if require_seq:
        if type(seq) is not int or seq < 1:
            code = "missing_field" if seq is None else "bad_type"
            raise ProtocolError(code, "seq must be an integer >= 1", op=op, index=index, field="seq")
    elif seq is not None and (type(seq) is not int or seq < 1):
        raise ProtocolError("bad_type", "seq must be an integer >= 1", op=op, index=index, field="seq")
    if type(seq) is not int:
        seq = None
    try:
        if etype in _ENTITY and "id" not in ev:
            raise ProtocolError("missing_field", f"'id' is required for {etype} events", field="id")
        if "ts" not in ev:
            if require_ts:
                raise ProtocolError("missing_field", "'ts' is required", field="ts")
        for k, v in ev.items():
            c = fields.get(k)
            if c is None:
                if k.startswith("x_"):
                    continue
                raise ProtocolError(
                    "unknown_field", f"unknown field {k!r} for {etype}{did_you_mean(k, fields)}", field=k,
                    expected="one of " + ", ".join(f for f in fields if f != "seq"),
                )
            if c is _ts or c is _ts_or_null:
                ev[k] = c(v, k)
            else:
                c(v, k)
        req = REQUIRED.get(etype)
        if req:
            for k in req:
                if k not in ev:
                    raise ProtocolError("missing_field", f"{k!r} is required for {etype} events", field=k)
            if etype == "control":
                for k in CONTROL_ARGS[ev["command"]]:
                    if k not in ev:
                        raise ProtocolError(
                            "missing_field", f"{k!r} is required for control {ev['command']}", field=k
                        )
        if ev.get("deleted") and etype not in _ENTITY:
            raise ProtocolError("bad_value", f"'deleted' is only for entities, not {etype}", field="deleted")
    except ProtocolError as e:
        e.op = e.op or op
        e.index = index
        e.seq = seq
        e.args = (e._compose(),)
        raise
    return ev


# --------------------------------------------------------------------------- decoding


def _need(obj: dict, key: str, op: str, check: Checker) -> Any:
    if key not in obj:
        raise ProtocolError("missing_field", f"{key!r} is required", op=op, field=key)
    try:
        return check(obj[key], key)
    except ProtocolError as e:
        e.op = op
        e.args = (e._compose(),)
        raise


def _opt(obj: dict, key: str, op: str, check: Checker, default: Any = None) -> Any:
    v = obj.get(key)
    if v is None:
        return default
    try:
        return check(v, key)
    except ProtocolError as e:
        e.op = op
        e.args = (e._compose(),)
        raise


def _int(lo: int = 0) -> Checker:
    def check(v: Any, path: str) -> Any:
        if type(v) is not int or v < lo:
            raise ProtocolError("bad_type" if type(v) is not int else "bad_value",
                                f"is {v!r}", field=path, expected=f"an integer >= {lo}")
        return v

    return check


def _list(v: Any, path: str) -> Any:
    if type(v) is not list:
        raise ProtocolError("bad_type", f"is {_tname(v)}", field=path, expected="a list")
    return v


def _dict(v: Any, path: str) -> Any:
    if type(v) is not dict:
        raise ProtocolError("bad_type", f"is {_tname(v)}", field=path, expected="an object")
    return v


def _batch(obj: dict, op: str, *, require_seq: bool, require_ts: bool, max_batch: int) -> list[dict]:
    events = _need(obj, "events", op, _list)
    if len(events) > max_batch:
        raise ProtocolError("too_large", f"{len(events)} events in one batch", op=op,
                            field="events", expected=f"at most {max_batch}")
    if _batch_is_plainly_valid(events, require_seq, require_ts):
        return events
    return _validate_batch(events, op, require_seq=require_seq, require_ts=require_ts)


def _validate_batch(events: list, op: str, *, require_seq: bool, require_ts: bool) -> list[dict]:
    """The general path: each event through ``validate_event`` in order, then its seq
    against the previous one; the first fault raises its precise ``ProtocolError``."""
    prev = None
    for i, ev in enumerate(events):
        validate_event(ev, i, require_seq=require_seq, require_ts=require_ts, op=op)
        if require_seq:
            s = ev["seq"]
            if prev is not None and s != prev + 1:
                raise ProtocolError("seq_gap", f"seq {s} follows {prev}", op=op, index=i,
                                    seq=s, field="seq", expected=f"seq {prev + 1}")
            prev = s
    return events


# --------------------------------------------------------------------------- batch fast path
# The wall's hot path is an ``events`` frame of hundreds of device status updates. Checking
# them one field at a time costs ~1.7 us per event in Python; checking a whole column of
# the batch at once (all ids, all ts, ...) with builtins that loop in C (map, set, min,
# max) costs a fraction of that. The fast path only ever *accepts*: it answers "every event
# is valid and needs no normalisation" or "not sure", and on "not sure" the batch goes
# through the general path, which gives the precise error (or accepts what the fast path
# was too strict for: integer or RFC 3339 ts, extension fields of odd shape, ...).
# tests/test_protocol.py checks both paths agree on random and mutated batches.

_type_of = itemgetter("type")
_id_of = itemgetter("id")
_ts_of = itemgetter("ts")
_seq_of = itemgetter("seq")
_dict_get = dict.get
_ONLY_DICT = frozenset((dict,))
_ONLY_STR = frozenset((str,))
_ONLY_FLOAT = frozenset((float,))
_ONLY_INT = frozenset((int,))
_ONLY_BOOL = frozenset((bool,))
_NUMBER_TYPES = frozenset((int, float))
_TS_MAX = 32503680000.0
_NO_METRICS: dict[str, float] = {}
#: Device fields checked in columns, with a valid stand-in for events that lack the key.
_DEVICE_STR_FIELDS = (("store", 1, MAX_ID), ("kind", 1, 64), ("name", 0, 200), ("msg", 0, MAX_TEXT))
_DEVICE_KEYS = frozenset(_ALL_FIELDS["device"])
_DEVICE_STATUS_SET = frozenset(DEVICE_STATUSES)


def _column(events: list[dict], key: str, default: Any) -> list[Any]:
    """``[ev.get(key, default) for ev in events]``, looped in C (an itemgetter first:
    twice as fast when, as usual, every event has the key)."""
    try:
        return list(map(itemgetter(key), events))
    except KeyError:
        return list(map(_dict_get, events, repeat(key), repeat(default)))


def _strs_ok(values: list[Any], lo: int, hi: int) -> bool:
    """All strings (``join`` raises TypeError for anything else) of ``lo..hi`` chars."""
    "".join(values)
    lens = list(map(len, values))
    return min(lens) >= lo and max(lens) <= hi


def _finite_range(values: list[Any], lo: float, hi: float) -> bool:
    """All of ``values`` (already known to be int/float) finite and within [lo, hi]. NaN
    fails every comparison, so it could slip past min/max; it makes the sum NaN."""
    return min(values) >= lo and max(values) <= hi and math.isfinite(sum(values))


def _metrics_ok(ms: list[Any]) -> bool:
    """Every item a dict of at most 200 ``name -> finite int/float`` with names of at
    most ``MAX_ID`` characters. Usual batches give every device the same metric names:
    then one column per name (an itemgetter raises TypeError for a non-dict, KeyError
    for a missing name) and one key-count sum prove the shape; otherwise all values are
    checked in one flat list."""
    m0 = ms[0]
    if type(m0) is dict and 0 < len(m0) <= 200 and len(m0) * len(ms) == sum(map(len, ms)):
        try:
            for name in m0:
                values = list(map(itemgetter(name), ms))
                if not set(map(type, values)) <= _NUMBER_TYPES or not math.isfinite(sum(values)):
                    return False
            return max(map(len, m0)) <= MAX_ID
        except KeyError:
            pass                               # same count, other names: check it all
    if set(map(type, ms)) != _ONLY_DICT or max(map(len, ms)) > 200:
        return False
    values = list(chain.from_iterable(map(dict.values, ms)))
    if values:
        # ints and floats only (bool is its own type); one NaN or inf makes the sum
        # not finite (so does an overflowing sum of huge values: then "not sure")
        if not set(map(type, values)) <= _NUMBER_TYPES or not math.isfinite(sum(values)):
            return False
        if max(map(len, set().union(*ms))) > MAX_ID:   # few distinct names
            return False
    return True


def _devices_plainly_valid(devs: list[dict], require_ts: bool) -> bool:
    """Column checks of device events of any mix of shapes (the key union says which
    fields to check); False = not sure."""
    keys = set().union(*devs)
    if not keys <= _DEVICE_KEYS:
        if not all(type(k) is str and k.startswith("x_") for k in keys - _DEVICE_KEYS):
            return False
    return _device_columns_ok(devs, keys, require_ts, _column)


def _device_columns_ok(devs: list[dict], keys: Any, require_ts: bool,
                       column: Callable[[list[dict], str, Any], Any]) -> bool:
    """Check each device field in ``keys`` over all of ``devs`` (``type`` and ``seq`` are
    the caller's); ``column(devs, key, default)`` gives one field of every event, with
    ``default`` (a valid stand-in, or None where the field is required) for events
    without it."""
    if not _strs_ok(column(devs, "id", None), 1, MAX_ID):
        return False
    if require_ts or "ts" in keys:
        ts = column(devs, "ts", None if require_ts else 0.0)
        if set(map(type, ts)) != _ONLY_FLOAT or not _finite_range(ts, 0.0, _TS_MAX):
            return False                       # int or RFC 3339 ts: normalised by the general path
    if "status" in keys:
        if not _DEVICE_STATUS_SET.issuperset(column(devs, "status", "ok")):
            return False
    if "metrics" in keys and not _metrics_ok(column(devs, "metrics", _NO_METRICS)):
        return False
    for key, lo, hi in _DEVICE_STR_FIELDS:
        if key in keys and not _strs_ok(column(devs, key, "x"), lo, hi):
            return False
    if "ttl_s" in keys:
        ttl = column(devs, "ttl_s", 1.0)
        if not set(map(type, ttl)) <= _NUMBER_TYPES or not _finite_range(ttl, 0.0, math.inf) \
                or min(ttl) <= 0:                 # > 0, not just >= 0
            return False
    if "deleted" in keys and set(map(type, column(devs, "deleted", False))) != _ONLY_BOOL:
        return False
    return True


def _uniform_device_batch(events: list, require_seq: bool, require_ts: bool) -> bool | None:
    """The usual frame: device events that all have the keys of the first one (e.g.
    type, id, ts, seq, status, metrics). Reads one column per key (an ``itemgetter``
    pass: KeyError if an event lacks the key; with equal key counts, every event then
    has exactly those keys), checks the columns and returns True/False like
    :func:`_batch_is_plainly_valid`; None when the batch is not like that."""
    ev0 = events[0]
    if type(ev0) is not dict:
        return None
    k0 = tuple(ev0)
    n = len(events)
    if len(k0) < 2 or not _DEVICE_KEYS.issuperset(k0) or "id" not in ev0 \
            or len(k0) * n != sum(map(len, events)):
        return None
    try:
        cols = {k: list(map(itemgetter(k), events)) for k in k0}
    except KeyError:
        return None                            # mixed shapes with equal key counts
    types = cols.get("type")
    if types is None or types.count("device") != n:
        return None
    seqs = cols.get("seq")
    if require_seq:
        if seqs is None or not _seqs_ok(seqs):
            return False
    elif seqs is not None:
        return False                           # producers rarely send one; the general path checks it

    def column(devs: list[dict], key: str, default: Any) -> Any:
        c = cols.get(key)
        return c if c is not None else (default,) * n

    return _device_columns_ok(events, cols, require_ts, column)


def _seqs_ok(seqs: list[Any]) -> bool:
    """Contiguous ints from >= 1. Equal to a range of ints, each item is an int, a bool
    (possible only at index 0, as 1) or an integral float (then the sum is a float)."""
    first = seqs[0]
    n = len(seqs)
    return type(first) is int and first >= 1 and seqs == list(range(first, first + n)) \
        and type(sum(seqs)) is int


def _batch_is_plainly_valid(events: list, require_seq: bool, require_ts: bool) -> bool:
    """True when every event of the batch is valid and already normalised (float ``ts``),
    with contiguous seqs if ``require_seq``; False = not sure, use the general path.
    Never raises and never changes an event except by ``validate_event`` on non-device
    events (an idempotent normalisation the general path would do too)."""
    n = len(events)
    if n == 0:
        return False
    try:
        uniform = _uniform_device_batch(events, require_seq, require_ts)
        if uniform is not None:
            return uniform
        if set(map(type, events)) != _ONLY_DICT:
            return False
        types = list(map(_type_of, events))
        if require_seq:
            if not _seqs_ok(list(map(_seq_of, events))):
                return False
        elif any(map(dict.__contains__, events, repeat("seq"))):
            return False                       # producers rarely send one; the general path checks it
        n_dev = types.count("device")
        if n_dev == n:
            return _devices_plainly_valid(events, require_ts)
        is_dev = list(map(eq, types, repeat("device")))
        for ev in compress(events, map(not_, is_dev)):
            validate_event(ev, require_seq=require_seq, require_ts=require_ts)
        return n_dev == 0 or _devices_plainly_valid(list(compress(events, is_dev)), require_ts)
    except (ProtocolError, TypeError, KeyError, ValueError, AttributeError, OverflowError):
        return False


def _d_welcome(o: dict) -> Message:
    return Welcome(
        protocol=_need(o, "protocol", "welcome", _int(1)),
        hub=_need(o, "hub", "welcome", _str(200)),
        seq=_need(o, "seq", "welcome", _int(0)),
        heartbeat_s=_need(o, "heartbeat_s", "welcome", _number(positive=True)),
        roles=_opt(o, "roles", "welcome", _str_list(10), []),
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
                     time=float(_need(o, "time", "heartbeat", _number(0))))


def _d_stats(o: dict) -> Message:
    c = _need(o, "counters", "stats", _dict)
    for k, v in c.items():
        if type(v) not in (int, float):
            raise ProtocolError("bad_type", f"is {_tname(v)}", op="stats", field=f"counters.{k}",
                                expected="a number")
    return Stats(counters=c)


def _d_error(o: dict) -> Message:
    return Error(
        code=_need(o, "code", "error", _str(64)),
        message=_need(o, "message", "error", _str(MAX_TEXT)),
        index=_opt(o, "index", "error", _int(0)),
        field=_opt(o, "field", "error", _str(400)),
        seq=_opt(o, "seq", "error", _int(0)),
        offset=_opt(o, "offset", "error", _int(0)),
    )


def _d_hello(o: dict) -> Message:
    return Hello(token=_opt(o, "token", "hello", _str(1000)), since=_opt(o, "since", "hello", _int(0)),
                 wall=_opt(o, "wall", "hello", _str(200)))


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
    return Control(command=cmd, args=args, token=_opt(o, "token", "control", _str(1000)))


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
}
OPS = ("welcome", "snapshot", "events", "heartbeat", "stats", "error", "hello", "control", "publish", "ack")


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
        return Events(events=_batch(obj, op, require_seq=True, require_ts=True, max_batch=max_batch))
    if op == "publish":
        events = _batch(obj, op, require_seq=False, require_ts=False, max_batch=max_batch)
        return Publish(events=events, producer=_opt(obj, "producer", op, _str(200)),
                       batch=_opt(obj, "batch", op, _int(0)), token=_opt(obj, "token", op, _str(1000)))
    dec = _DECODERS.get(op)
    if dec is None:
        raise ProtocolError("unknown_op", f"unknown op {op[:40]!r}{did_you_mean(op, OPS)}", op=op[:40],
                            expected="one of " + ", ".join(OPS))
    return dec(obj)


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


__all__ = [
    "PROTOCOL_VERSION", "MAX_FRAME", "MAX_BATCH", "ProtocolError", "ERROR_CODES",
    "Welcome", "Snapshot", "Events", "Heartbeat", "Stats", "Error", "Hello", "Control",
    "Publish", "Ack", "Message", "decode", "encode", "encode_events", "to_dict",
    "validate_event", "parse_ts", "split_snapshot", "merge_snapshot_parts", "did_you_mean",
    "EVENT_TYPES", "ENTITY_TYPES", "SAMPLE_TYPES", "DEVICE_STATUSES", "STORE_STATUSES",
    "CHANGE_STATUSES", "INCIDENT_STATUSES", "SEVERITIES", "CONTROL_COMMANDS",
    "WALL_CONTROL_COMMANDS",
]
