"""The voice-of-customers feed's spec (drawn by ``widgets/voice_feed.py``)."""
from __future__ import annotations

from wallboard.layout.specs.spec import WidgetSpec
from wallboard.layout.validators import Field, ListOf, Num, Str, Table

SPEC = WidgetSpec(
    type="voice_feed", title="Voice of customers", title_zh="顾客之声", stale_after_s=300,
    module="wallboard.widgets.voice_feed",
    summary="customer messages with a per-minute volume and spike detection",
    options=Table({
        "spike_factor": Field(Num(1, 100, lo_open=True), 3.0,
                              "a minute with this many times the baseline rate is a spike"),
        "baseline_min": Field(Num(3, 1440, integer=True), 15, "minutes the baseline is taken over"),
        "topics": Field(ListOf(Str(1, 64), unique=True, doc="an array of topics"), [],
                        "topics shown", kind="array of strings", shown="[] (all)"),
    }),
)
