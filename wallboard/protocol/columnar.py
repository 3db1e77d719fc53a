"""The columnar ``devices`` frame (hub -> wall, negotiated in ``hello``/``welcome``).

A run of plain device status updates (``type``, ``id``, ``ts``, ``seq``, ``status`` and
optional float ``metrics``, nothing else) travels as columns instead of one JSON object
per event, and ids travel as small integers of a dictionary kept per connection::

    {"op": "devices", "seq": 1201, "ids_from": 17, "new_ids": ["dev-a", "dev-b"],
     "dev": [3, 17, 18], "ts": [1790000060.0, 1790000060.1, 1790000060.2],
     "status": [0, 1, 0], "metrics": {"cpu": [0.1, null, 0.3]}}

Event ``i`` of the frame has seq ``seq + i``, device ``dev[i]``, ``ts[i]``,
``DEVICE_STATUSES[status[i]]`` and, for each metric name, the value at ``i`` (``null``:
that event did not carry the metric). ``new_ids`` give the connection indices
``ids_from, ids_from + 1, ...``; ``ids_from`` is the number of ids announced before on
this connection (a wall checks it). A new connection starts an empty dictionary, so an
index is only ever valid on the connection that announced it (a wall failing over to
another hub, a resync, a replay connection: all start over).

Sans-I/O and pure: :class:`ColumnarEncoder` (the hub side: events -> frames) and
:func:`decode_devices` (the wall side: bytes -> :class:`DeviceBatch`, validated by
msgspec in C; every bad frame raises :class:`ProtocolError` naming the field path).
"""
from __future__ import annotations

from itertools import chain, repeat
from operator import contains, itemgetter
from typing import Annotated, Any

import msgspec
import orjson

from wallboard.protocol.errors import ProtocolError
from wallboard.protocol.limits import MAX_BATCH, MAX_ID
from wallboard.protocol.schema import DEVICE_STATUSES

#: The encoding name a wall offers in ``hello.encodings`` and a hub confirms in
#: ``welcome.encoding``.
COLUMNAR = "columnar"
#: Keys of the device events that travel in columns (anything else: an ``events`` frame).
COLUMN_KEYS = frozenset(("type", "id", "ts", "seq", "status", "metrics"))
#: Runs shorter than this stay in ``events`` frames (a frame per few events costs more
#: than it saves).
MIN_RUN = 8
STATUS_CODE = {s: i for i, s in enumerate(DEVICE_STATUSES)}
_TS_MAX = 32503680000.0   # year 3000, as parse_ts

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID)]
_Idx = Annotated[int, msgspec.Meta(ge=0)]
_Ts = Annotated[float, msgspec.Meta(ge=0.0, le=_TS_MAX)]
_Code = Annotated[int, msgspec.Meta(ge=0, lt=len(DEVICE_STATUSES))]
_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID)]


class DeviceBatch(msgspec.Struct, forbid_unknown_fields=True):
    """A decoded ``devices`` frame (lists as they came; see the module docstring).
    ``ids`` is filled by the session: the connection's whole dictionary (index -> id),
    shared and only ever appended to."""

    op: str
    seq: Annotated[int, msgspec.Meta(ge=1)]
    ids_from: _Idx
    new_ids: list[_Id]
    dev: list[_Idx]
    ts: list[_Ts]
    status: list[_Code]
    metrics: dict[_Name, list[float | None]] = {}
    ids: list[str] = []

    def __len__(self) -> int:
        """The number of events (rows) of the frame."""
        return len(self.dev)

    @property
    def last_seq(self) -> int:
        return self.seq + len(self.dev) - 1

    def events(self) -> list[dict[str, Any]]:
        """The same events as dicts (what an ``events`` frame would have carried)."""
        return [self.event(i) for i in range(len(self.dev))]

    def event(self, i: int) -> dict[str, Any]:
        ev: dict[str, Any] = {"type": "device", "id": self.ids[self.dev[i]], "ts": self.ts[i],
                              "seq": self.seq + i, "status": DEVICE_STATUSES[self.status[i]]}
        m = {k: v[i] for k, v in self.metrics.items() if v[i] is not None}
        if m:
            ev["metrics"] = m
        return ev


_DECODER = msgspec.json.Decoder(DeviceBatch)
_get_id, _get_ts, _get_status = itemgetter("id"), itemgetter("ts"), itemgetter("status")
_get_type = itemgetter("type")
_DEVICE, _DICT, _FLOAT = {"device"}, {dict}, {float}
_EMPTY: dict[str, Any] = {}


def _get_metrics(ev: dict[str, Any]) -> Any:
    return ev.get("metrics", _EMPTY)


def decode_devices(data: bytes | bytearray | memoryview | str, known: int) -> DeviceBatch:
    """Decode and check one ``devices`` frame on a connection that announced ``known``
    ids so far; raise ``ProtocolError`` (op ``devices``, the field path) when it is bad."""
    try:
        b = _DECODER.decode(data)
    except msgspec.ValidationError as e:
        text = str(e)
        path = text.rsplit(" - at `", 1)[1].rstrip("`") if " - at `" in text else None
        code = "missing_field" if text.startswith("Object missing required field") else \
            "unknown_field" if text.startswith("Object contains unknown field") else \
            "bad_type" if ", got `" in text else "bad_value"
        raise ProtocolError(code, text[:300], op="devices", field=path and path.removeprefix("$."),
                            expected="a devices frame as docs/protocol.md describes") from None
    except msgspec.DecodeError as e:
        raise ProtocolError("not_json", str(e)[:200], op="devices", expected="a UTF-8 JSON object") from None
    n = len(b.dev)
    if b.op != "devices":
        raise ProtocolError("bad_value", f"op {b.op[:40]!r}", op="devices", field="op", expected="devices")
    if not 0 < n <= MAX_BATCH:
        raise ProtocolError("bad_value", f"{n} events", op="devices", field="dev", seq=b.seq,
                            expected=f"1 to {MAX_BATCH} events")
    if len(b.ts) != n or len(b.status) != n:
        bad = "ts" if len(b.ts) != n else "status"
        raise ProtocolError("bad_value", f"{len(getattr(b, bad))} values for {n} events", op="devices",
                            field=bad, seq=b.seq, expected=f"{n} values, one per entry of dev")
    for name, col in b.metrics.items():
        if len(col) != n:
            raise ProtocolError("bad_value", f"{len(col)} values for {n} events", op="devices",
                                field=f"metrics.{name[:40]}", seq=b.seq, expected=f"{n} values (null: not sent)")
    if b.ids_from != known:
        raise ProtocolError("bad_value", f"ids_from {b.ids_from} after {known} ids on this connection",
                            op="devices", field="ids_from", seq=b.seq, expected=str(known))
    top = max(b.dev)
    if top >= known + len(b.new_ids):
        raise ProtocolError("bad_value", f"device index {top} was never announced on this connection",
                            op="devices", field=f"dev[{b.dev.index(top)}]", seq=b.seq,
                            expected=f"an index below {known + len(b.new_ids)}")
    return b


def is_columnar(ev: dict[str, Any]) -> bool:
    """Whether ``ev`` travels in a ``devices`` frame: a device status update made only of
    :data:`COLUMN_KEYS`, with a status and float metrics (if any; ints stay ints in an
    ``events`` frame)."""
    if ev.get("type") != "device" or "status" not in ev or not ev.keys() <= COLUMN_KEYS:
        return False
    m = ev.get("metrics")
    if m is None:
        return "metrics" not in ev
    return type(m) is dict and len(m) > 0 and all(type(v) is float for v in m.values())


def _all_columnar(events: list[dict[str, Any]]) -> bool:
    """:func:`is_columnar` for every event at once, in C loops (the usual device batch)."""
    if not events or not COLUMN_KEYS.issuperset(set().union(*events)):
        return False
    if set(map(_get_type, events)) != _DEVICE or not all(map(contains, events, repeat("status"))):
        return False
    ms = [m for m in map(_get_metrics, events) if m is not _EMPTY]
    if not ms:
        return True
    if set(map(type, ms)) != _DICT or not all(ms):
        return False
    return set(map(type, chain.from_iterable(map(dict.values, ms)))) == _FLOAT


class ColumnarEncoder:
    """The hub's side of one wall connection: its id dictionary and the frames for a
    chunk of committed events (make one per connection; a new connection, a new one)."""

    def __init__(self, min_run: int = MIN_RUN) -> None:
        self.min_run = min_run
        self.index: dict[str, int] = {}
        self.frames_sent = 0           # devices frames
        self.events_sent = 0           # events carried in them

    def encode(self, events: list[dict[str, Any]], encoded: list[bytes], max_frame: int) -> list[bytes]:
        """Frames for ``events`` (contiguous seqs; ``encoded`` their JSON, as in the
        tail), in order: runs of :func:`is_columnar` events of at least ``MIN_RUN`` as
        ``devices`` frames, the rest as ``events`` frames. A ``devices`` frame over
        ``max_frame`` bytes goes as an ``events`` frame instead (its new ids are
        withdrawn from the dictionary)."""
        out: list[bytes] = []
        n = len(events)
        if n >= self.min_run and _all_columnar(events):   # the usual device chunk: one run
            frame = self._devices_frame(events, max_frame)
            return [frame] if frame is not None else [_events_frame(encoded)]
        flags = list(map(is_columnar, events))
        i = 0
        pending_from: int | None = None    # start of the events not sent yet as objects
        while i < n:
            if not flags[i]:
                if pending_from is None:
                    pending_from = i
                i += 1
                continue
            j = i
            while j < n and flags[j]:
                j += 1
            if j - i < self.min_run:
                if pending_from is None:
                    pending_from = i
                i = j
                continue
            frame = self._devices_frame(events[i:j], max_frame)
            if frame is None:
                if pending_from is None:
                    pending_from = i
            else:
                if pending_from is not None:
                    out.append(_events_frame(encoded[pending_from:i]))
                    pending_from = None
                out.append(frame)
            i = j
        if pending_from is not None:
            out.append(_events_frame(encoded[pending_from:n]))
        return out

    def _devices_frame(self, run: list[dict[str, Any]], max_frame: int) -> bytes | None:
        index = self.index
        known = len(index)
        ids = list(map(_get_id, run))                 # the columns taken in C loops
        dev = list(map(index.get, ids))
        new_ids: list[str] = []
        if None in dev:
            for i, k in enumerate(dev):
                if k is None:
                    did = ids[i]
                    k = index.get(did)
                    if k is None:
                        k = index[did] = known + len(new_ids)
                        new_ids.append(did)
                    dev[i] = k
        n = len(run)
        metrics: dict[str, list[float | None]] = {}
        ms = list(map(_get_metrics, run))
        m0 = ms[0]
        try:                                          # usual: every event, the same names
            if m0 is None or len(m0) * n != sum(map(len, ms)):
                raise KeyError
            for name in m0:
                metrics[name] = list(map(itemgetter(name), ms))
        except (KeyError, TypeError):
            metrics = {}
            for i, m in enumerate(ms):
                if m:
                    for name, v in m.items():
                        col = metrics.get(name)
                        if col is None:
                            col = metrics[name] = [None] * n
                        col[i] = v
        frame = orjson.dumps({
            "op": "devices", "seq": run[0]["seq"], "ids_from": known, "new_ids": new_ids, "dev": dev,
            "ts": list(map(_get_ts, run)), "status": list(map(STATUS_CODE.__getitem__, map(_get_status, run))),
            "metrics": metrics})
        if len(frame) > max_frame:
            for did in new_ids:
                del index[did]
            return None
        self.frames_sent += 1
        self.events_sent += n
        return frame


def _events_frame(encoded: list[bytes]) -> bytes:
    return b'{"op":"events","events":[' + b",".join(encoded) + b"]}"


__all__ = ["COLUMNAR", "COLUMN_KEYS", "MIN_RUN", "STATUS_CODE", "DeviceBatch", "decode_devices",
           "is_columnar", "ColumnarEncoder"]
