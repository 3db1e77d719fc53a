"""Protocol errors: :class:`ProtocolError` (code, where, expected) and the codes to count by.

Everything malformed raises ``ProtocolError``; callers catch it, count it by ``code``
and answer it with :meth:`ProtocolError.to_message`. Pure: stdlib only.
"""
from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from wallboard.protocol.messages import Error

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
    "conflict",
    "unavailable",
)

#: Error codes a producer answers by resending the same batch (same producer and batch
#: key) after ``retry_after`` seconds; every other code refused the batch for good.
RETRYABLE_CODES = ("rate_limited", "unavailable")


class ProtocolError(ValueError):
    """A frame or event that does not follow protocol v1.

    ``code`` is one of :data:`ERROR_CODES` (count by it); ``op``, ``index`` (position of
    the event in its batch), ``field`` (path inside the event or message), ``seq`` and
    ``offset`` (byte offset of a JSON syntax error) say where; ``expected`` says what.
    A refused limit (see ``wallboard.protocol.limits``) also sets ``limit`` (the bound)
    and ``got`` (what arrived; for nesting depth, the first level past the limit).
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
        limit: int | None = None,
        got: int | None = None,
    ) -> None:
        self.code = code
        self.detail = message
        self.op = op
        self.index = index
        self.field = field
        self.seq = seq
        self.offset = offset
        self.expected = expected
        self.limit = limit
        self.got = got
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
        from wallboard.protocol.messages import Error  # messages imports nothing of ours

        return Error(
            code=self.code,
            message=str(self),
            index=self.index,
            field=self.field,
            seq=self.seq,
            offset=self.offset,
        )


def _tname(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean", int: "an integer", float: "a number", str: "a string",
        list: "a list", dict: "an object",
    }.get(type(value), type(value).__name__)



def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to ``word``, or "" (the one
    hint every error message of the project appends)."""
    try:
        m = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    except Exception:  # pragma: no cover - defensive: difflib on odd input
        m = []
    return f" (did you mean {m[0]!r}?)" if m else ""

