"""The incident board's spec (drawn by ``widgets/incident_board.py``)."""
from __future__ import annotations

from wallboard.layout.specs.spec import WidgetSpec
from wallboard.layout.validators import Field, Num, Table

SPEC = WidgetSpec(
    type="incident_board", title="Incidents", title_zh="故障看板", stale_after_s=120,
    module="wallboard.widgets.incident_board",
    summary="open incidents by severity, recently resolved ones below",
    options=Table({
        "flash_s": Field(Num(0, 3600, integer=True), 120, "a new P1/P2 row flashes this long"),
        "resolved_keep_s": Field(Num(0, 86400, integer=True), 300,
                                 "a resolved incident stays listed this long"),
        "max_rows": Field(Num(1, 200, integer=True), 12, "rows shown; the rest is counted"),
    }),
)
