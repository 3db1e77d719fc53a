"""The store map's spec (drawn by ``widgets/store_map.py``)."""
from __future__ import annotations

from wallboard.layout.specs.common import PATH
from wallboard.layout.specs.spec import WidgetSpec
from wallboard.layout.validators import Bool, Field, ListOf, Num, Table

SPEC = WidgetSpec(
    type="store_map", title="Stores", title_zh="门店地图", stale_after_s=60,
    module="wallboard.widgets.store_map",
    summary="stores on the basemap by worst device status; city donuts when zoomed out",
    path_options=("provinces", "countries", "basemap_extra"),
    options=Table({
        "cluster_span_deg": Field(Num(0.01, 360), 3.0, "when the view is wider than this "
                                  "(degrees of longitude) the stores of a city gather into one donut"),
        "marker_px": Field(Num(6, 64, integer=True), 18, "store marker size"),
        "pulse_s": Field(Num(0, 3600), 10.0, "seconds a store pulses after an incident opens there"),
        "label_max": Field(Num(0, 5000, integer=True), 60, "at most this many store labels"),
        "show_countries": Field(Bool(), True, "draw the shipped country layer"),
        "show_provinces": Field(Bool(), True, "draw the shipped province layer"),
        "provinces": Field(PATH, None, "your own GeoJSON instead of the shipped province layer "
                           "(e.g. officially approved boundaries)", kind="path", shown="shipped"),
        "countries": Field(PATH, None, "your own GeoJSON instead of the shipped country layer",
                           kind="path", shown="shipped"),
        "basemap_extra": Field(ListOf(PATH, 0, 16, doc="an array of file paths"), [],
                               "more GeoJSON drawn on top of the basemap", kind="array of paths"),
    }),
)
