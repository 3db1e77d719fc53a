"""Typed validators for layout tables, in the manner of qutebrowser's config types.

Each validator's ``check(value, path, ck)`` returns the converted value, or ``BAD`` after
recording an issue (with key path and line) on the :class:`Check`. A :class:`Table`
refuses unknown keys with a did-you-mean hint, names missing required keys and fills in
defaults, so every problem of a file is collected in one pass.
"""
from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass
from datetime import date, datetime, time as dtime
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from wallboard.layout.lines import LineIndex
from wallboard.layout.model import LayoutIssue


BAD = object()        # a value that failed validation (already reported)
REQUIRED = object()   # a field without default


def fmt_path(path: Sequence[str | int]) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            key = p if re.fullmatch(r"[A-Za-z0-9_-]+", p) else '"' + p + '"'
            out += ("." if out else "") + key
    return out


def quote(v: Any) -> str:
    return '"' + v + '"' if isinstance(v, str) else repr(v)


def describe(v: Any) -> str:
    """A value's TOML type with the value, for messages: 'a string ("12")'."""
    if isinstance(v, bool):
        return f"a boolean ({'true' if v else 'false'})"
    if isinstance(v, int):
        return f"an integer ({v})"
    if isinstance(v, float):
        return f"a number ({v:g})"
    if isinstance(v, str):
        s = v if len(v) <= 40 else v[:37] + "..."
        return f'a string ("{s}")'
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, datetime):
        return f"a date-time ({v.isoformat()})"
    if isinstance(v, (date, dtime)):
        return f"a {'date' if isinstance(v, date) else 'time'} ({v.isoformat()})"
    return type(v).__name__


def hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


class Check:
    """Collects issues for one file; finds each key path's line in the source text.
    ``base_dir`` is the layout file's directory (relative paths in options resolve there)."""

    def __init__(self, file: str, lines: LineIndex | None, base_dir: Path | None = None):
        self.file = file
        self.lines = lines
        self.base_dir = base_dir
        self.issues: list[LayoutIssue] = []

    def error(self, path: Sequence[str | int], message: str) -> None:
        line = self.lines.line(tuple(path)) if self.lines else None
        self.issues.append(LayoutIssue(self.file, line, fmt_path(path), message))


class Validator:
    """A typed validator: ``check`` returns the converted value or ``BAD``."""

    doc = "a value"

    def check(self, v: Any, path: tuple, ck: Check) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _type_error(self, v: Any, path: tuple, ck: Check) -> Any:
        ck.error(path, f"expected {self.doc}, got {describe(v)}")
        return BAD


class Str(Validator):
    def __init__(self, min_len: int = 0, max_len: int = 500, pattern: str | None = None,
                 doc: str | None = None):
        self.min_len, self.max_len = min_len, max_len
        self.pattern = re.compile(pattern) if pattern else None
        self.doc = doc or "a string"

    def check(self, v, path, ck):
        if not isinstance(v, str):
            return self._type_error(v, path, ck)
        if len(v) < self.min_len:
            ck.error(path, "must not be empty" if self.min_len == 1
                     else f"must be at least {self.min_len} characters")
            return BAD
        if len(v) > self.max_len:
            ck.error(path, f"too long: {len(v)} characters, at most {self.max_len}")
            return BAD
        if self.pattern and not self.pattern.fullmatch(v):
            ck.error(path, f"expected {self.doc}, got {quote(v)}")
            return BAD
        return v


class Num(Validator):
    """A number in [lo, hi] (``lo_open``: strictly above lo); ``integer``: whole only."""

    def __init__(self, lo: float, hi: float, integer: bool = False, lo_open: bool = False):
        self.lo, self.hi, self.integer, self.lo_open = lo, hi, integer, lo_open
        self.doc = "an integer" if integer else "a number"

    def check(self, v, path, ck):
        ok = isinstance(v, int) if self.integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok:
            return self._type_error(v, path, ck)
        if v != v:  # nan
            ck.error(path, "expected a number, got nan")
            return BAD
        if v < self.lo or v > self.hi or (self.lo_open and v == self.lo):
            lo = f"above {self.lo:g}" if self.lo_open else f"at least {self.lo:g}"
            ck.error(path, f"out of range: {v:g}; expected {self.doc} {lo} and at most {self.hi:g}")
            return BAD
        return v if self.integer else float(v)


class Bool(Validator):
    doc = "a boolean (true or false)"

    def check(self, v, path, ck):
        return v if isinstance(v, bool) else self._type_error(v, path, ck)


class Choice(Validator):
    def __init__(self, *choices: str):
        self.choices = choices
        self.doc = "one of " + ", ".join(quote(c) for c in choices)

    def check(self, v, path, ck):
        if not isinstance(v, str):
            return self._type_error(v, path, ck)
        if v not in self.choices:
            ck.error(path, f"expected {self.doc}, got {quote(v)}{hint(v, self.choices)}")
            return BAD
        return v


class When(Validator):
    doc = "a date-time with a UTC offset (e.g. 2026-09-28T09:28:00+08:00)"

    def check(self, v, path, ck):
        if isinstance(v, str):
            try:
                v = datetime.fromisoformat(v)
            except ValueError:
                ck.error(path, f"expected {self.doc}, got {describe(v)}")
                return BAD
        if not isinstance(v, datetime):
            return self._type_error(v, path, ck)
        if v.tzinfo is None:
            ck.error(path, f"{v.isoformat()} has no UTC offset; write it as "
                           f"{v.isoformat()}+08:00 (or your zone's offset)")
            return BAD
        return v


class ListOf(Validator):
    """An array of ``item``. ``partial``: keep the valid items (bad ones stay ``BAD`` in
    place) so checks across items, such as panel overlaps, still run on the rest."""

    def __init__(self, item: Validator, min_len: int = 0, max_len: int = 1000, unique: bool = False,
                 doc: str | None = None, partial: bool = False):
        self.item, self.min_len, self.max_len, self.unique = item, min_len, max_len, unique
        self.partial = partial
        self.doc = doc or f"an array of {item.doc.removeprefix('a ').removeprefix('an ')}s"

    def check(self, v, path, ck):
        if not isinstance(v, list):
            return self._type_error(v, path, ck)
        if not self.min_len <= len(v) <= self.max_len:
            ck.error(path, f"expected {self.min_len} to {self.max_len} entries, got {len(v)}")
            return BAD
        out = [self.item.check(x, path + (i,), ck) for i, x in enumerate(v)]
        if self.unique:
            seen: set = set()
            for i, x in enumerate(out):
                if x is not BAD and x in seen:
                    ck.error(path + (i,), f"duplicate entry {quote(x)}")
                seen.add(x)
        return BAD if not self.partial and any(x is BAD for x in out) else out


class Pair(ListOf):
    """Two integers, e.g. ``at = [col, row]``."""

    def __init__(self, lo: int, names: str):
        super().__init__(Num(lo, 999, integer=True), doc=f"[{names}], two integers")

    def check(self, v, path, ck):
        if not isinstance(v, list):
            return self._type_error(v, path, ck)
        if len(v) != 2:
            ck.error(path, f"expected {self.doc}, got {len(v)} entries")
            return BAD
        out = super().check(v, path, ck)
        return BAD if out is BAD else tuple(out)


@dataclass
class Field:
    """A table field: validator, default (``REQUIRED`` if none) and its line of docs.
    ``kind`` and ``shown`` override the type and default the docs tables print (else
    derived from ``v`` and ``default``, see :func:`wallboard.layout.specs.docs.type_text`)."""

    v: Validator
    default: Any = None
    doc: str = ""
    kind: str = ""
    shown: str = ""


class Table(Validator):
    """A TOML table with known keys: unknown keys are refused with a did-you-mean hint,
    missing required keys are named, defaults are filled in. ``post(result, path, ck)``
    runs cross-field checks once every field was valid."""

    doc = "a table"

    def __init__(self, fields: dict[str, Field], post: Callable | None = None,
                 doc: str | None = None):
        self.fields, self.post = fields, post
        if doc:
            self.doc = doc

    def check(self, v, path, ck):
        if not isinstance(v, dict):
            return self._type_error(v, path, ck)
        out, ok = self.check_fields(v, path, ck)
        if not ok:
            return BAD
        return self.post(out, path, ck) if self.post is not None else out

    def check_fields(self, v: dict, path: tuple, ck: Check) -> tuple[dict, bool]:
        """Each field's converted value (``BAD`` where invalid) and whether all were ok."""
        out: dict[str, Any] = {}
        ok = True
        for key in v:
            if key not in self.fields:
                ck.error(path + (key,), f"unknown key{hint(key, self.fields)}; "
                         f"expected one of: {', '.join(self.fields)}")
                ok = False
        for name, f in self.fields.items():
            if name in v:
                out[name] = f.v.check(v[name], path + (name,), ck)
            elif f.default is REQUIRED:
                ck.error(path + (name,), f"missing required key ({f.v.doc})")
                out[name] = BAD
            else:
                out[name] = copy.deepcopy(f.default)
            ok = ok and out[name] is not BAD
        return out, ok


class Ref(Validator):
    """A tile's reference: ``"prev"`` (the previous sample) or a fixed number."""

    doc = '"prev" or a number'

    def check(self, v, path, ck):
        if v == "prev":
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return Num(-1e15, 1e15).check(v, path, ck)
        return self._type_error(v, path, ck)


class MapOf(Validator):
    """A table with free keys (e.g. device kinds), each value checked by ``value``."""

    def __init__(self, value: Validator, doc: str):
        self.value, self.doc = value, doc

    def check(self, v, path, ck):
        if not isinstance(v, dict):
            return self._type_error(v, path, ck)
        out = {k: self.value.check(x, path + (k,), ck) for k, x in v.items()}
        return BAD if any(x is BAD for x in out.values()) else out


class AnyTable(Validator):
    doc = "a table"

    def check(self, v, path, ck):
        return v if isinstance(v, dict) else self._type_error(v, path, ck)
