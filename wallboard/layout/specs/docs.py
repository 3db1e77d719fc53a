"""The widget tables of ``docs/layouts.md``, generated from the specs.

``docs/layouts.md`` holds, between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``
lines, the table of widget types (``NAME`` = ``widget-types``) and one options table per
widget (``NAME`` = ``options TYPE``). :func:`render_docs` returns the file with those parts
rewritten from the specs; ``tests/test_layout.py`` checks the file equals it, so the docs
cannot drift from what the layout accepts. After changing a spec::

    python -m wallboard.layout.specs.docs --write docs/layouts.md
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from wallboard.layout.specs import SPECS
from wallboard.layout.validators import REQUIRED, Bool, Choice, Field, ListOf, Num, Str, Validator

_BLOCK = re.compile(r"(<!-- generated: (?P<name>[^>]*?) -->\n)(?P<body>.*?)(<!-- end generated -->)",
                    re.S)


def _num(x: float) -> str:
    return f"{x:g}"


def type_text(v: Validator) -> str:
    """A validator as the docs' "type" column says it: ``integer 4..64``, ``"a" \\| "b"``."""
    if isinstance(v, Num):
        word = "integer" if v.integer else "number"
        if v.lo_open:
            return f"{word} > {_num(v.lo)} (at most {_num(v.hi)})"
        return f"{word} {_num(v.lo)}..{_num(v.hi)}"
    if isinstance(v, Choice):
        return " \\| ".join(f'"{c}"' for c in v.choices)
    if isinstance(v, Bool):
        return "boolean"
    if isinstance(v, Str):
        return "string"
    if isinstance(v, ListOf):
        return "array of " + type_text(v.item).removeprefix("a ") + "s"
    return v.doc.removeprefix("a ").removeprefix("an ")


def default_text(default: Any) -> str:
    """A default as the docs' "default" column says it."""
    if default is REQUIRED:
        return "required"
    if default is None:
        return "none"
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, str):
        return f'"{default}"'
    if isinstance(default, float):
        return _num(default)
    if isinstance(default, (list, dict)) and not default:
        return "[]" if isinstance(default, list) else "{}"
    return str(default)


def _row(name: str, f: Field) -> str:
    kind = f.kind or type_text(f.v)
    shown = f.shown or default_text(f.default)
    return f"| `{name}` | {kind} | {shown} | {f.doc} |"


def options_table(widget_type: str) -> str:
    """The ``| option | type | default | meaning |`` table of one widget type."""
    spec = SPECS[widget_type]
    rows = ["| option | type | default | meaning |", "|---|---|---|---|"]
    rows += [_row(k, f) for k, f in spec.options.fields.items()]
    return "\n".join(rows) + "\n"


def types_table() -> str:
    """The table of widget types: title, Chinese title, default ``stale_after_s``."""
    rows = ["| type | title | Chinese title | `stale_after_s` | shows |", "|---|---|---|---|---|"]
    for t, s in SPECS.items():
        stale = "0 (never)" if not s.stale_after_s else _num(s.stale_after_s)
        rows.append(f"| `{t}` | {s.title} | {s.title_zh} | {stale} | {s.summary} |")
    return "\n".join(rows) + "\n"


def generated(name: str) -> str:
    """What a ``<!-- generated: NAME -->`` block holds; ValueError for an unknown name."""
    if name == "widget-types":
        return types_table()
    if name.startswith("options ") and name[8:] in SPECS:
        return options_table(name[8:])
    raise ValueError(f"unknown generated block {name!r}: expected widget-types or "
                     f"options TYPE (TYPE one of {', '.join(SPECS)})")


def render_docs(text: str) -> str:
    """``text`` with every generated block rewritten from the specs."""
    return _BLOCK.sub(lambda m: m.group(1) + generated(m.group("name")) + m.group(4), text)


def block_names(text: str) -> list[str]:
    """The names of the generated blocks of ``text``, in order."""
    return [m.group("name") for m in _BLOCK.finditer(text)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", type=Path, help="the Markdown file (docs/layouts.md)")
    ap.add_argument("--write", action="store_true", help="rewrite the file (else: exit 1 when stale)")
    args = ap.parse_args(argv)
    text = args.file.read_text(encoding="utf-8")
    new = render_docs(text)
    if args.write:
        if new != text:
            args.file.write_text(new, encoding="utf-8")
        print(f"{args.file}: {len(block_names(text))} generated blocks"
              f"{' rewritten' if new != text else ', already current'}")
        return 0
    if new != text:
        print(f"{args.file}: generated blocks are stale; run with --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
