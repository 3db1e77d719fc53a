"""The KPI chart's spec (drawn by ``widgets/kpi_chart.py``)."""
from __future__ import annotations

from wallboard.layout.specs.common import COLOR, NUMBER, fill_labels, kpi_fields
from wallboard.layout.specs.spec import WidgetSpec
from wallboard.layout.validators import BAD, REQUIRED, Choice, Field, ListOf, Num, Table

BAND_LEVELS = ("ok", "warn", "crit")


def _band_post(b, path, ck):
    if not b["from"] < b["to"]:
        ck.error(path + ("to",), f"to ({b['to']:g}) must be above from ({b['from']:g})")
        return BAD
    return b


def _chart_post(o, path, ck):
    seen: dict[tuple, int] = {}
    for i, s in enumerate(o["series"]):
        key = (s["metric"], s["scope"])
        if key in seen:
            ck.error(path + ("series", i), f"duplicate series {s['metric']} @ {s['scope']} "
                     f"(same as series[{seen[key]}])")
            return BAD
        seen[key] = i
    return o


SERIES = Table(kpi_fields("legend label"), lambda s, path, ck: fill_labels(s), doc="a table {metric, scope, label, label_zh}")

BAND = Table({
    "from": Field(NUMBER, REQUIRED, "lower edge"),
    "to": Field(NUMBER, REQUIRED, "upper edge"),
    "level": Field(Choice(*BAND_LEVELS), "warn", "band color by status"),
    "color": Field(COLOR, None, "explicit color instead of the level's"),
}, _band_post, doc="a table {from, to, level, color}")

SPEC = WidgetSpec(
    type="kpi_chart", title="Trend", title_zh="指标趋势", stale_after_s=30,
    module="wallboard.widgets.kpi_chart",
    summary="KPI lines over time, with shaded value bands",
    options=Table({
        "series": Field(ListOf(SERIES, 1, 8, doc="an array of series tables "
                                               "{metric, scope, label, label_zh}"), REQUIRED,
                        "1..8 lines; no duplicate metric + scope; `label` defaults to the metric, "
                        "`label_zh` (the legend on a Chinese wall) to `label`",
                        kind="array of `{metric, scope, label, label_zh}`"),
        "bands": Field(ListOf(BAND, 0, 12, doc="an array of band tables {from, to, level, color}"), [],
                       'shaded value ranges, `from` < `to` (both required); `level` "ok" \\| '
                       '"warn" \\| "crit" (default "warn") picks the color unless `color` '
                       '("#e0a106", "orange") is given', kind="array of `{from, to, level, color}`"),
        "window_min": Field(Num(1, 10080, integer=True), 60, "minutes shown"),
    }, _chart_post),
)
