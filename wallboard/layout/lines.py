"""Where each key of a TOML text is written: key path -> line, for error messages."""
from __future__ import annotations

import re
from bisect import bisect_right


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
        except (IndexError, ValueError):  # pragma: no cover - best effort only
            pass

    def line(self, path: tuple) -> int | None:
        while path:
            if path in self.paths:
                return self.paths[path]
            path = path[:-1]
        return None

    def _here(self) -> int:
        return bisect_right(self.starts, self.i)

    def _mark(self, path: tuple) -> None:
        self.paths.setdefault(path, self._here())

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
                j = self.i + 1
                while s[j] != c:
                    j += 2 if (c == '"' and s[j] == "\\") else 1
                raw = s[self.i + 1:j]
                parts.append(raw if c == "'" else raw.encode().decode("unicode_escape"))
                self.i = j + 1
            else:
                m = re.compile(r"[A-Za-z0-9_-]+").match(s, self.i)
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

    def _value(self, path: tuple) -> None:
        s = self.s
        self._skip(False)
        for q in ('"""', "'''"):
            if s.startswith(q, self.i):
                j = self.i + 3
                while not s.startswith(q, j) or (q == '"""' and s[j - 1] == "\\"):
                    j += 1
                while s.startswith(q[0], j + 3):  # up to two quotes may end the content
                    j += 1
                self.i = j + 3
                return
        c = s[self.i]
        if c in "\"'":
            j = self.i + 1
            while s[j] != c:
                j += 2 if (c == '"' and s[j] == "\\") else 1
            self.i = j + 1
        elif c == "[":
            self.i += 1
            n = 0
            while True:
                self._skip(True)
                if s[self.i] == "]":
                    self.i += 1
                    return
                self._mark(path + (n,))
                self._value(path + (n,))
                self._skip(True)
                if s[self.i] == ",":
                    self.i += 1
                n += 1
        elif c == "{":
            self.i += 1
            while True:
                self._skip(False)
                if s[self.i] == "}":
                    self.i += 1
                    return
                sub = path + tuple(self._key())
                self._mark(sub)
                self.i += 1  # "="
                self._value(sub)
                self._skip(False)
                if s[self.i] == ",":
                    self.i += 1
        else:
            m = re.compile(r"[^,\]\}\n#]*").match(s, self.i)
            self.i = m.end()
