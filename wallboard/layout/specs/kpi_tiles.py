"""The KPI tiles' spec (drawn by ``widgets/kpi_tiles.py``); a tile's meaning is judged
by :mod:`wallboard.layout.kpi`."""
from __future__ import annotations

from wallboard.layout.kpi import resolve_good
from wallboard.layout.specs.common import NUMBER, fill_labels, kpi_fields
from wallboard.layout.specs.spec import WidgetSpec
from wallboard.layout.validators import BAD, REQUIRED, Choice, Field, ListOf, Num, Ref, Str, Table


def _tile_post(t, path, ck):
    fill_labels(t)
    try:
        t["good"], t["direction"] = resolve_good(t["metric"], t["good"], t["direction"],
                                                   t["warn"], t["crit"])
    except ValueError as e:
        ck.error(path + ("good",), str(e))
        return BAD
    w, c = t["warn"], t["crit"]
    if w is not None and c is not None:
        if t["direction"] == "up_bad" and not w < c:
            ck.error(path + ("warn",), f'warn ({w:g}) must be below crit ({c:g}) when '
                     'direction = "up_bad" (higher is worse)')
            return BAD
        if t["direction"] == "down_bad" and not w > c:
            ck.error(path + ("warn",), f'warn ({w:g}) must be above crit ({c:g}) when '
                     'direction = "down_bad" (lower is worse)')
            return BAD
    return t


#: One tile: ``{metric, scope, label, ...}`` (docs/layouts.md explains what each means).
TILE = Table({
    **kpi_fields("tile label"),
    "unit": Field(Str(0, 16), None, 'unit after the value, e.g. "%" (default: the samples\' unit)'),
    "warn": Field(NUMBER, None, "value at which the tile turns warn"),
    "crit": Field(NUMBER, None, "value at which the tile turns crit"),
    "good": Field(Choice("up", "down"), None,
                  'which way is good: colours the delta (default: from direction, else by '
                  'the metric\'s kind: orders, GMV, footfall, success "up"; latency, queue, '
                  'errors "down")'),
    "direction": Field(Choice("up_bad", "down_bad"), None,
                       '"up_bad": higher is worse; "down_bad": lower is worse (thresholds; '
                       'default: the opposite of good, else the order of warn and crit, else '
                       'the opposite of the kind\'s good way)'),
    "dead_band": Field(Num(0, 1e15), None,
                       'a delta this small (in the unit) is neutral (default: 0.05 for "%")'),
    "dead_band_pct": Field(Num(0, 100), None,
                           "a delta this small (% of the reference) is neutral (default 0.5)"),
    "reference": Field(Ref(), "prev", 'delta against "prev" (previous sample) or a fixed number'),
}, _tile_post, doc="a table {metric, scope, label, ...}")

SPEC = WidgetSpec(
    type="kpi_tiles", title="KPIs", title_zh="业务指标", stale_after_s=30,
    module="wallboard.widgets.kpi_tiles",
    summary="big numbers with thresholds, delta and sparkline",
    options=Table({
        "tiles": Field(ListOf(TILE, 1, 32, doc="an array of tile tables {metric, scope, label, ...}"),
                       REQUIRED, "1..32 tiles, in order",
                       kind="array of tile tables"),
    }),
)
