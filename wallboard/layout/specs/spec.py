"""``WidgetSpec``: everything the wall knows about one widget type, in one object.

A spec names the widget type, its default titles (English, Chinese), its default age
threshold, its options (a :class:`~wallboard.layout.validators.Table`: types, ranges,
defaults, cross-field checks, one line of docs each), which options hold file paths and
the Qt module that draws it. The layout schema, the panel registry of the shell, the
shell's translations of the type names and the tables of docs/layouts.md are all built
from the specs in :mod:`wallboard.layout.specs`; the widgets check their options with
:meth:`WidgetSpec.widget_options` (the same validators, so they cannot drift apart).
Pure: no Qt (the widget module is only named, never imported here).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from wallboard.layout.validators import BAD, REQUIRED, Check, Table, fmt_path


def unset_removed(value: Any) -> Any:
    """``value`` with unset (None) entries of its tables left out, at every depth: the
    layout fills unset options with None, which a widget takes as "the default"."""
    if isinstance(value, dict):
        return {k: unset_removed(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [unset_removed(v) for v in value]
    return value


@dataclass(frozen=True)
class WidgetSpec:
    """One widget type; see the module docstring."""

    type: str
    title: str
    title_zh: str
    #: The panel's default ``stale_after_s`` (0: never stale).
    stale_after_s: float
    options: Table
    #: The module in ``widgets/`` (``wallboard.widgets.NAME``) that draws it: the registry.
    module: str
    #: One line for the docs' table of widget types.
    summary: str
    #: Options holding file paths, resolved against the layout file's directory.
    path_options: tuple[str, ...] = ()
    #: Options the shell adds (never written in a layout), e.g. the event's freeze windows.
    shell_options: tuple[str, ...] = ()

    def check(self, raw: Any, path: tuple, ck: Check) -> Any:
        """Validate a layout panel's ``options`` (issues recorded on ``ck``); the options
        with defaults filled in, or ``BAD``."""
        return self.options.check(raw, path, ck)

    def widget_options(self, options: Any) -> tuple[dict, list[str]]:
        """Check options given to the widget itself (the shell passes the layout's, with
        unset entries left out; tests and benchmarks pass their own). Returns ``(clean,
        errors)``: unset (None) entries taken as absent, every default filled in, each bad key kept at its default and named in
        ``errors`` as ``TYPE.options.KEY: what was expected`` (the layout's messages)."""
        fields = self.options.fields
        clean = {k: (None if f.default is REQUIRED else copy.deepcopy(f.default))
                 for k, f in fields.items()}
        where = (self.type, "options")
        if options is None:
            options = {}
        if not isinstance(options, dict):
            return clean, [f"{fmt_path(where)}: expected a table of options, got "
                           f"{type(options).__name__}"]
        ck = Check("", None)
        out, ok = self.options.check_fields(unset_removed(options), where, ck)
        for k, v in out.items():
            if v is not BAD:
                clean[k] = v
        if ok and self.options.post is not None:
            post = self.options.post(dict(out), where, ck)
            if post is not BAD:
                clean = post
        return clean, [f"{i.path}: {i.message}" for i in ck.issues]

    def options_or_raise(self, options: Any) -> dict:
        """:meth:`widget_options`, raising ``ValueError`` with every error (one a line)."""
        clean, errors = self.widget_options(options)
        if errors:
            raise ValueError("\n".join(errors))
        return clean
