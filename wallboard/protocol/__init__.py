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

The spec is ``docs/protocol.md``. The package imports only the stdlib and orjson:
``errors`` (ProtocolError), ``limits`` (what every peer can carry), ``messages`` (dataclasses, encode), ``schema`` (event
schemas, validate_event), ``fastpath`` (whole-batch acceptance), ``codec`` (decode,
snapshot parts). Import from ``wallboard.protocol`` itself; the split is internal.
"""
from __future__ import annotations

from wallboard.protocol.codec import (
    OPS, _batch, _validate_batch, check_batch, decode, merge_snapshot_parts, split_snapshot,
)
from wallboard.protocol.columnar import COLUMNAR, MIN_RUN, ColumnarEncoder, DeviceBatch, decode_devices, is_columnar
from wallboard.protocol.errors import ERROR_CODES, RETRYABLE_CODES, ProtocolError, _tname, did_you_mean
from wallboard.protocol.fastpath import _batch_is_plainly_valid
from wallboard.protocol.limits import LIMITS, MAX_DEPTH, MAX_EVENT, MAX_INT
from wallboard.protocol.messages import (
    Ack, Control, Error, Events, Heartbeat, Hello, Message, Publish, Seek, Snapshot, Speed, Stats, Welcome,
    encode, encode_events, to_dict,
)
from wallboard.protocol.conflate import Span, conflate, conflate_items
from wallboard.protocol.publisher import PublisherSession, WindowFull
from wallboard.protocol.codec import MAX_REPLAY_SPEED
from wallboard.protocol.limits import MIN_WALL_FRAME, WALL_MAX_HEARTBEAT_S
from wallboard.protocol.session import WALL_MAX_FRAME, WallSession
from wallboard.protocol.schema import (
    _ALL_FIELDS, BANNER_LEVELS, CHANGE_STATUSES, CONTROL_ARGS, CONTROL_COMMANDS, DEVICE_STATUSES,
    ENTITY_TYPES, EVENT_TYPES, INCIDENT_STATUSES, MAX_BATCH, MAX_FRAME, MAX_ID, MAX_TEXT,
    PROTOCOL_VERSION, REQUIRED, RISKS, SAMPLE_TYPES, SCHEMAS, SEVERITIES, STORE_STATUSES,
    WALL_CONTROL_COMMANDS, parse_ts, validate_event,
)

__all__ = [
    "PROTOCOL_VERSION", "MAX_FRAME", "MAX_BATCH", "MAX_ID", "MAX_TEXT", "MAX_INT", "MAX_DEPTH",
    "MAX_EVENT", "LIMITS", "ProtocolError",
    "ERROR_CODES", "RETRYABLE_CODES", "Welcome", "Snapshot", "Events", "Heartbeat", "Stats", "Error", "Hello",
    "Control", "Publish", "Ack", "Seek", "Speed", "MAX_REPLAY_SPEED", "Message", "OPS", "decode", "check_batch", "encode", "encode_events",
    "to_dict", "validate_event", "parse_ts", "split_snapshot", "merge_snapshot_parts",
    "did_you_mean", "EVENT_TYPES", "ENTITY_TYPES", "SAMPLE_TYPES", "DEVICE_STATUSES",
    "STORE_STATUSES", "CHANGE_STATUSES", "INCIDENT_STATUSES", "SEVERITIES", "RISKS",
    "BANNER_LEVELS", "CONTROL_COMMANDS", "WALL_CONTROL_COMMANDS", "SCHEMAS", "REQUIRED",
    "CONTROL_ARGS", "WallSession", "WALL_MAX_FRAME", "MIN_WALL_FRAME", "WALL_MAX_HEARTBEAT_S",
    "PublisherSession", "WindowFull", "Span", "conflate", "conflate_items", "COLUMNAR", "MIN_RUN", "ColumnarEncoder", "DeviceBatch", "decode_devices",
    "is_columnar",
]
# Internal names some tests and benchmarks reach for (kept importable from here):
_INTERNAL = (_batch, _validate_batch, _batch_is_plainly_valid, _ALL_FIELDS, _tname)
