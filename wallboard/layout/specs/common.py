"""Value types several widget specs share (ids, metric names, KPI scopes, colours...)."""
from __future__ import annotations

from typing import Any

from wallboard.layout.validators import REQUIRED, Field, Num, Str

ID = Str(1, 64, r"[^\s{}]+", doc="an id without spaces")
METRIC = Str(1, 100, r"[A-Za-z0-9_.:-]+", doc="a metric name (letters, digits, _ . : -)")
KPI_SCOPE = Str(1, 100, r"global|(city|store):([^\s:{}]+|\{city\}|\{store\})",
                doc='"global", "city:ID" or "store:ID"')
TEXT = Str(0, 200)
NUMBER = Num(-1e15, 1e15)
PATH = Str(1, 1000, doc="a file path")
COLOR = Str(1, 40, r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})|[a-z]+",
            doc='a color such as "#e0a106" or "orange"')


def kpi_fields(what: str) -> dict[str, Field]:
    """The fields naming one KPI line (a tile, a chart series): metric, scope and labels;
    ``what`` names the label ("tile label", "legend label")."""
    return {
        "metric": Field(METRIC, REQUIRED, "KPI metric name, e.g. orders_per_s"),
        "scope": Field(KPI_SCOPE, "global", '"global", "city:ID" or "store:ID"'),
        "label": Field(TEXT, "", f"{what} (default: the metric name)"),
        "label_zh": Field(TEXT, None, f"Chinese {what} (default: label)"),
    }


def fill_labels(t: dict[str, Any]) -> dict[str, Any]:
    """A KPI line's labels defaulted: ``label`` to the metric, ``label_zh`` to ``label``."""
    t["label"] = t["label"] or t["metric"]
    t["label_zh"] = t["label_zh"] or t["label"]
    return t
