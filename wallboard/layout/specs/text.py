"""The text note's spec (drawn by ``widgets/text_note.py``)."""
from __future__ import annotations

from wallboard.layout.specs.spec import WidgetSpec
from wallboard.layout.validators import REQUIRED, Field, Str, Table

SPEC = WidgetSpec(
    type="text", title="Notes", title_zh="备注", stale_after_s=0,
    module="wallboard.widgets.text_note",
    summary="a note (briefing, phone numbers, the run sheet), sized to fill its panel",
    options=Table({
        "text": Field(Str(1, 4000), REQUIRED, "the note"),
        "text_zh": Field(Str(0, 4000), "", "the note on a Chinese wall"),
    }),
)
