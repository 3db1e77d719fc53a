"""Where each key of a TOML text is written: key path -> line, for error messages."""
from __future__ import annotations

import re
import tomllib
from bisect import bisect_right

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = re.compile(r"[^,\]\}\n#]*")


class LineIndex:
    """Maps key paths such as ``("screens", 0, "panels", 2, "options", "order")`` to the
    1-based line where that key (or table header, or array element) is written.

    A small scanner over text that ``tomllib`` has already accepted: it follows table
    headers, arrays of tables, dotted keys, inline tables and multi-line arrays. A path
    it cannot place falls back to its nearest placed parent."""

    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
        self.paths: dict[tuple, int] = {}
        self._aot: dict[tuple, int] = {}
        try:
            self._document()
        except (IndexError, ValueError, AttributeError, RecursionError):
            pass  # best effort: what was placed so far stays usable

    def line(self, path: tuple) -> int | None:
        while path:
            if path in self.paths:
                return self.paths[path]
            path = path[:-1]
        return None

    def _here(self) -> int:
        return bisect_right(self.starts, self.i)

    def _mark(self, path: tuple) -> None:
        """``path`` and every parent not placed yet start here: ``[panels.map.options]``
        also places ``panels`` (an unknown top-level key written only in a header)."""
        line = self._here()
        for n in range(1, len(path) + 1):
            self.paths.setdefault(path[:n], line)
        if not path:
            self.paths.setdefault(path, line)

    def _skip(self, newlines: bool) -> None:
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c == "#":
                j = s.find("\n", self.i)
                self.i = len(s) if j < 0 else j
            elif c in " \t\r" or (newlines and c == "\n"):
                self.i += 1
            else:
                return

    def _key(self) -> list[str]:
        s, parts = self.s, []
        while True:
            self._skip(False)
            c = s[self.i]
            if c in "\"'":
                j = self._string_end(self.i)
                parts.append(tomllib.loads("k = " + s[self.i:j])["k"])
                self.i = j
            else:
                m = _BARE_KEY.match(s, self.i)
                parts.append(m.group())
                self.i = m.end()
            self._skip(False)
            if self.i < len(s) and s[self.i] == ".":
                self.i += 1
                continue
            return parts

    def _resolve(self, parts: list[str]) -> tuple:
        out: tuple = ()
        for p in parts:
            out += (p,)
            if out in self._aot:
                out += (self._aot[out],)
        return out

    def _document(self) -> None:
        s, table = self.s, ()
        while True:
            self._skip(True)
            if self.i >= len(s):
                return
            start = self.i
            if s.startswith("[[", self.i):
                self.i += 2
                parts = self._key()
                arr = self._resolve(parts[:-1]) + (parts[-1],)
                self._mark(arr)
                self._aot[arr] = self._aot.get(arr, -1) + 1
                table = arr + (self._aot[arr],)
                self._mark(table)
                self.i = s.index("]]", self.i) + 2
            elif s[self.i] == "[":
                self.i += 1
                table = self._resolve(self._key())
                self._mark(table)
                self.i = s.index("]", self.i) + 1
            else:
                path = table + tuple(self._key())
                self._mark(path)
                self.i += 1  # "="
                self._value(path)
            if self.i <= start:
                return

    def _string_end(self, i: int) -> int:
        """Index just past the string literal (any of the four kinds) starting at ``i``."""
        s = self.s
        q = s[i] * 3 if s.startswith(s[i] * 3, i) else s[i]
        j = i + len(q)
        while not s.startswith(q, j):
            j += 2 if (q[0] == '"' and s[j] == "\\") else 1
            if j >= len(s):
                raise ValueError("unterminated string")
        j += len(q)
        while len(q) == 3 and s.startswith(q[0], j):  # """"" : quotes may end the content
            j += 1
        return j

    def _value(self, path: tuple) -> None:
        s = self.s
        self._skip(False)
        c = s[self.i]
        if c in "\"'":
            self.i = self._string_end(self.i)
        elif c in "[{":
            close = "]" if c == "[" else "}"
            self.i += 1
            n = 0
            while True:
                self._skip(c == "[")
                if s[self.i] == close:
                    self.i += 1
                    return
                start = self.i
                if c == "[":
                    sub = path + (n,)
                    self._mark(sub)
                else:
                    sub = path + tuple(self._key())
                    self._mark(sub)
                    self.i += 1  # "="
                self._value(sub)
                self._skip(c == "[")
                if s[self.i] == ",":
                    self.i += 1
                if self.i <= start:
                    raise ValueError("no progress")
                n += 1
        else:
            self.i = _SCALAR.match(s, self.i).end()
