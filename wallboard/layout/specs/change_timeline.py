"""The change timeline's spec (drawn by ``widgets/change_timeline.py``)."""
from __future__ import annotations

from wallboard.layout.specs.spec import WidgetSpec
from wallboard.layout.validators import Choice, Field, Num, Table

SPEC = WidgetSpec(
    type="change_timeline", title="Changes", title_zh="变更时间线", stale_after_s=900,
    module="wallboard.widgets.change_timeline",
    summary="changes as bars in swimlanes against incidents, with the event's freeze windows",
    shell_options=("freeze",),
    options=Table({
        "lanes": Field(Choice("system", "city"), "system", "one lane per system or per city"),
        "window_min": Field(Num(5, 10080, integer=True), 120,
                            "minutes shown (while the history is shorter, the view fits the "
                            "data's span, at least 5 min)"),
    }),
)
