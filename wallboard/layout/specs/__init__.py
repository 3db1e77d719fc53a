"""One :class:`WidgetSpec` per widget type: the single source of what the layout accepts
for it, its default titles and age threshold, which Qt module draws it and its docs.

``SPECS`` (type -> spec, in the order the docs list them) is what the layout schema
(:mod:`wallboard.layout.schema`), the shell's panel registry
(:mod:`wallboard.app.panels`), the shell's translations of the type names and the tables
of ``docs/layouts.md`` (:mod:`wallboard.layout.specs.docs`) are built from. A new widget:
a module here with its ``SPEC``, one line below, a module in ``widgets/``; then
``python -m wallboard.layout.specs.docs --write docs/layouts.md``.
"""
from __future__ import annotations

from wallboard.layout.specs import (
    change_timeline, device_grid, incident_board, kpi_chart, kpi_tiles, store_map, text,
    voice_feed,
)
from wallboard.layout.specs.spec import WidgetSpec

SPECS: dict[str, WidgetSpec] = {s.type: s for s in (
    store_map.SPEC, device_grid.SPEC, change_timeline.SPEC, incident_board.SPEC,
    voice_feed.SPEC, kpi_tiles.SPEC, kpi_chart.SPEC, text.SPEC,
)}

#: Derived from ``SPECS`` (kept for callers of the layout package's names).
WIDGET_TYPES: tuple[str, ...] = tuple(SPECS)
#: A panel's default age threshold (seconds) per widget type; 0 means "never stale".
STALE_DEFAULTS: dict[str, float] = {t: s.stale_after_s for t, s in SPECS.items()}
#: Title shown when a panel names none (English, Chinese).
DEFAULT_TITLES: dict[str, tuple[str, str]] = {t: (s.title, s.title_zh) for t, s in SPECS.items()}
#: Options holding file paths: resolved against the layout file's directory.
PATH_OPTIONS: dict[str, tuple[str, ...]] = {t: s.path_options for t, s in SPECS.items() if s.path_options}


def spec_of(widget_type: str) -> WidgetSpec:
    """The spec of a widget type (KeyError for an unknown one)."""
    return SPECS[widget_type]


__all__ = ["SPECS", "WidgetSpec", "spec_of", "WIDGET_TYPES", "STALE_DEFAULTS", "DEFAULT_TITLES",
           "PATH_OPTIONS"]
