"""The device grid's spec (drawn by ``widgets/device_grid.py``)."""
from __future__ import annotations

from wallboard.layout.specs.common import ID, METRIC
from wallboard.layout.specs.spec import WidgetSpec
from wallboard.layout.validators import BAD, Bool, Choice, Field, ListOf, MapOf, Num, Str, Table


def _grid_post(o, path, ck):
    if o["mode"] == "store" and o["store"] is None:
        ck.error(path + ("store",), 'missing: mode = "store" needs the store id '
                 '(in a kind = "store" layout: store = "{store}")')
        return BAD
    if o["mode"] == "scope" and o["store"] is not None:
        ck.error(path + ("store",), 'only used with mode = "store"')
        return BAD
    if o["max_cell_px"] < o["min_cell_px"]:
        ck.error(path + ("max_cell_px",), f"max_cell_px ({o['max_cell_px']}) is below "
                 f"min_cell_px ({o['min_cell_px']})")
        return BAD
    return o


SPEC = WidgetSpec(
    type="device_grid", title="Devices", title_zh="设备状态", stale_after_s=60,
    module="wallboard.widgets.device_grid",
    summary="one cell per device by status (unknown past its TTL); stores roll up when cells get small",
    options=Table({
        "mode": Field(Choice("scope", "store"), "scope",
                      "a row per store of the scope, or every device of one store"),
        "store": Field(Str(1, 64, r"[^\s{}]+|\{store\}", doc='a store id (or "{store}")'), None,
                       'the store, required with `mode = "store"` (`"{store}"` in the drill-down '
                       "template)", kind="store id"),
        "order": Field(Choice("worst", "fixed"), "worst", "worst stores first, or a stable order"),
        "min_cell_px": Field(Num(4, 64, integer=True), 10,
                             "below this cell size stores roll up; rows are also rolled up when "
                             "their store label would be under 14 px (on a 1080-line wall) unless "
                             "`allow_unlabelled`"),
        "max_cell_px": Field(Num(8, 128, integer=True), 36,
                             "largest cell size (not below `min_cell_px`)"),
        "resort_s": Field(Num(0, 3600), 5.0, "how often the worst-first order is recomputed"),
        "kinds": Field(ListOf(ID, unique=True, doc="an array of device kinds"), [],
                       "only these device kinds are shown and counted, in this column order",
                       kind="array of strings", shown="[] (every kind, standard order)"),
        "key_metric": Field(MapOf(METRIC, "a table {kind = metric}"), {},
                            "a device metric shown per kind in store mode", kind="table kind = metric"),
        "allow_unlabelled": Field(Bool(), False,
                                  "let rows shrink below the readable store label down to "
                                  "`min_cell_px` (unlabelled rows) instead of rolling stores up: "
                                  "a dense mosaic of every device"),
    }, _grid_post),
)
