"""``PublisherSession``: a producer's side of ``/publish`` as a sans-I/O state machine.

At-least-once delivery with exact resends: every batch gets a number (the idempotency
key is ``(producer, batch)``), stays *unacked* until the hub's ``ack`` names it, and is
resent -- the same bytes -- after a reconnect or when the hub says to retry. The driver
(an asyncio websocket loop, e.g. ``wallboard.hub.record.Publisher``) does the I/O::

    s = PublisherSession(producer="etl-2026-12-02T01:00Z-4f2a", token=t, window=64)
    for data in s.connect(): send(data)          # on every (re)connect: unacked, in order
    if s.has_room(): s.publish(events)           # queues the frame; returns the batch number
    for data in s.data_to_send(): send(data)
    s.receive(frame, now=time.monotonic())       # acks and errors; never raises
    for kind, payload in s.events(): ...         # ("ack", Ack), ("retry", (batch, delay_s)),
                                                 # ("failed", (batch, ProtocolError)),
                                                 # ("fatal", ProtocolError), ("error", ProtocolError)
    wait at most s.next_retry_in(now) seconds, then: for data in s.due(now): send(data)

Errors answer the oldest batch *in flight* (sent and not yet answered; the hub answers a
connection's batches in order) -- not the oldest unacked, which may be one waiting for
its retry. Retryable codes (:data:`RETRYABLE`: ``rate_limited``, ``unavailable``) keep
the batch and resend it after the error's ``retry_after`` (default :data:`RETRY_AFTER_S`);
``auth`` is fatal for the session (``fatal`` is set: stop and tell the operator); any
other code (``bad_value``, ``conflict``, ``forbidden``, ...) fails that batch for good: resending the
same bytes would be refused again.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any, Callable

from wallboard.protocol.codec import decode
from wallboard.protocol.errors import ProtocolError
from wallboard.protocol.limits import MAX_INT
from wallboard.protocol.messages import Ack, Error, Publish, encode

#: Error codes after which the same batch is resent (the hub could not take it *now*).
RETRYABLE = frozenset(("rate_limited", "unavailable"))
#: Codes that end the session (nothing it sends can succeed). ``forbidden`` is not one: it
#: refuses events of a type the token has no role for (control events), and fails that batch.
FATAL = frozenset(("auth",))
#: Delay before a retry when the error names none.
RETRY_AFTER_S = 1.0

Item = tuple[str, Any]


class WindowFull(RuntimeError):
    """``publish`` while ``window`` batches are unacked: wait for acks first."""


class PublisherSession:
    """The producer side of ``/publish``; see the module docstring."""

    def __init__(self, producer: str, *, token: str | None = None, window: int = 64,
                 batch_start: int = 1, batch_key: Callable[[int], int] | None = None) -> None:
        """``batch_key(n)``: the key of the ``n``-th batch (``n`` counts from ``batch_start``);
        default ``n`` itself. ``wallboard.hub.record.Publisher`` draws keys from its run's
        random id, so two runs under one producer name never share one."""
        if not producer or len(producer) > 200:
            raise ValueError(f"producer must be 1..200 characters, got {producer!r}")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window!r}")
        if not 0 <= batch_start <= MAX_INT:
            raise ValueError(f"batch_start must be within 0..{MAX_INT}, got {batch_start!r}")
        self.producer = producer
        self.token = token
        self.window = window
        self.sent = batch_start - 1                        # batches numbered so far
        self.batch = self.sent                             # the key of the last one
        self._key = batch_key or (lambda n: n)
        self.unacked: OrderedDict[int, bytes] = OrderedDict()
        self.acked = 0
        self.failed = 0
        self.fatal: ProtocolError | None = None
        self._in_flight: deque[int] = deque()              # sent, not answered, in order
        self._retry_at: dict[int, float] = {}              # batch -> monotonic time
        self._out: list[bytes] = []
        self._items: list[Item] = []

    # ------------------------------------------------------------------ driver -> session
    def connect(self) -> list[bytes]:
        """A new connection: every unacked batch, in batch order, to send first (the hub
        acks a resend of a committed batch with its original range)."""
        self._in_flight = deque(self.unacked)
        self._retry_at.clear()
        self._out = []
        return list(self.unacked.values())

    def has_room(self) -> bool:
        return len(self.unacked) < self.window and self.fatal is None

    def publish(self, events: list[dict[str, Any]]) -> int:
        """Queue one batch; returns its number. Raises ``WindowFull`` (wait for acks) or
        ``RuntimeError`` after a fatal error; events are checked by the hub, not here."""
        if self.fatal is not None:
            raise RuntimeError(f"publisher session ended: {self.fatal}")
        if len(self.unacked) >= self.window:
            raise WindowFull(f"{len(self.unacked)} batches unacked (window {self.window})")
        if self.sent >= MAX_INT:
            raise RuntimeError(f"batch numbers exhausted for producer {self.producer!r}")
        self.sent += 1
        self.batch = self._key(self.sent)
        if not 0 <= self.batch <= MAX_INT or self.batch in self.unacked:
            self.sent -= 1
            raise ValueError(f"batch key {self.batch!r} of batch {self.sent + 1}: expected a key within "
                             f"0..{MAX_INT} that no unacked batch has")
        data = encode(Publish(events=events, producer=self.producer, batch=self.batch, token=self.token))
        self.unacked[self.batch] = data
        self._in_flight.append(self.batch)
        self._out.append(data)
        return self.batch

    def receive(self, data: bytes | bytearray | memoryview | str, now: float) -> None:
        """One frame from the hub at ``now`` (monotonic seconds). Never raises."""
        try:
            msg = decode(data, max_size=1 << 30, expect=("ack", "error"))
        except ProtocolError as e:
            self._items.append(("error", e))
            return
        if isinstance(msg, Ack):
            self._ack(msg)
        else:
            assert isinstance(msg, Error)
            self._error(msg, now)

    def due(self, now: float) -> list[bytes]:
        """Frames whose retry time has come, in batch order (now in flight again)."""
        ready = sorted(b for b, t in self._retry_at.items() if t <= now)
        out = []
        for b in ready:
            del self._retry_at[b]
            data = self.unacked.get(b)
            if data is not None:
                self._in_flight.append(b)
                out.append(data)
        return out

    # ------------------------------------------------------------------ session -> driver
    def data_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def events(self) -> list[Item]:
        items, self._items = self._items, []
        return items

    def next_retry_in(self, now: float) -> float | None:
        """Seconds until the next retry is due (0: now), None when none waits."""
        if not self._retry_at:
            return None
        return max(0.0, min(self._retry_at.values()) - now)

    @property
    def pending(self) -> int:
        """Batches not acked yet (sent, in flight or waiting for a retry)."""
        return len(self.unacked)

    # ------------------------------------------------------------------ internals
    def _ack(self, msg: Ack) -> None:
        b = msg.batch
        if b is None or msg.producer not in (None, self.producer):
            self._items.append(("error", ProtocolError("bad_value", f"ack for {msg.producer!r}/{b!r}",
                                                       op="ack", expected=f"batch of {self.producer!r}")))
            return
        try:
            self._in_flight.remove(b)
        except ValueError:
            pass                                          # a late ack of a resent batch
        self._retry_at.pop(b, None)
        if self.unacked.pop(b, None) is not None:
            self.acked += 1
        self._items.append(("ack", msg))

    def _error(self, msg: Error, now: float) -> None:
        err = ProtocolError(msg.code, msg.message, index=msg.index, field=msg.field, seq=msg.seq,
                            offset=msg.offset)
        if msg.code in FATAL:
            self.fatal = err
            self._items.append(("fatal", err))
            return
        if not self._in_flight:
            self._items.append(("error", err))            # answers nothing we sent
            return
        b = self._in_flight.popleft()
        if msg.code in RETRYABLE:
            delay = RETRY_AFTER_S if msg.retry_after is None else float(msg.retry_after)
            self._retry_at[b] = now + delay
            self._items.append(("retry", (b, delay)))
            return
        self.unacked.pop(b, None)
        self.failed += 1
        self._items.append(("failed", (b, err)))


__all__ = ["PublisherSession", "WindowFull", "RETRYABLE", "FATAL", "RETRY_AFTER_S"]
