"""Event schemas and field checkers: :func:`validate_event` and :func:`parse_ts`.

A checker takes ``(value, path)`` and returns the value to store (possibly normalised)
or raises :class:`ProtocolError` naming the field path. Pure: stdlib only.
"""
from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Callable

from wallboard.protocol.errors import ProtocolError, _tname, did_you_mean
from wallboard.protocol.limits import (
    MAX_BATCH, MAX_FRAME, MAX_ID, MAX_INT, MAX_TEXT, check_event_size, check_free_value,
    int_out_of_range,
)

PROTOCOL_VERSION = 1

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
                limit=max_len if n > max_len else None, got=n,
            )
        if not v.isascii():
            _utf8(v, path)
        return v

    return check


def _utf8(v: str, path: str) -> None:
    """Refuse a str that cannot be encoded as UTF-8 (lone surrogates: only a Python
    caller can make one, but then the journal's encode would fail after the ack)."""
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ProtocolError("bad_value", f"not valid Unicode at character {e.start}", field=path,
                            expected="a string without lone surrogates") from None


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
        if t is int and not -MAX_INT <= v <= MAX_INT:
            raise int_out_of_range(v, path)
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
        if t is int and not -MAX_INT <= x <= MAX_INT:
            raise int_out_of_range(x, f"{path}.{k}")
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
        "tags": _str_list(100),
        "kinds": _str_list(100),
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
#: Event types whose schema alone does not keep them under MAX_EVENT (long id lists):
#: their encoded size is measured; so is any event with an ``x_`` field.
_UNBOUNDED = frozenset(("change", "incident"))


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
    elif seq > MAX_INT:
        e = int_out_of_range(seq, "seq")
        e.op, e.index = op, index
        e.args = (e._compose(),)
        raise e
    sized = etype in _UNBOUNDED
    try:
        if etype in _ENTITY and "id" not in ev:
            raise ProtocolError("missing_field", f"'id' is required for {etype} events", field="id")
        if "ts" not in ev:
            if require_ts:
                raise ProtocolError("missing_field", "'ts' is required", field="ts")
        for k, v in ev.items():
            c = fields.get(k)
            if c is None:
                if type(k) is str and k.startswith("x_"):
                    if len(k) > MAX_ID:
                        raise ProtocolError("bad_value", f"field name of {len(k)} characters",
                                            field=k[:40], expected=f"at most {MAX_ID}",
                                            limit=MAX_ID, got=len(k))
                    check_free_value(v, k)
                    sized = True
                    continue
                if type(k) is not str:
                    raise ProtocolError("bad_type", f"field name {k!r} is {_tname(k)}",
                                        expected="string field names")
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
        if sized:
            check_event_size(ev)
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
    """An integer in ``lo ..`` :data:`MAX_INT` (seqs, batch ids, parts, offsets)."""
    def check(v: Any, path: str) -> Any:
        if type(v) is not int or v < lo:
            raise ProtocolError("bad_type" if type(v) is not int else "bad_value",
                                f"is {v!r}", field=path, expected=f"an integer >= {lo}")
        if v > MAX_INT:
            raise int_out_of_range(v, path)
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


