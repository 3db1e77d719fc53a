"""The text of an incident notification, in English or Simplified Chinese (pure).

::

    n = Notification("open", incident_record, store_names={"SH-01": "徐汇店"})
    title, text = render(n, "zh")      # ("【P1】新事件：支付失败", "【P1】新事件：支付失败\n门店：徐汇店 ...")

``title`` is one line (DingTalk's markdown title, the chat preview); ``text`` is a few
lines of plain text, also valid markdown (no markup beyond line breaks).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

#: transition -> (English, Chinese) word
WORDS: dict[str, tuple[str, str]] = {
    "open": ("OPEN", "新事件"),
    "acknowledge": ("ACKNOWLEDGED", "已确认"),
    "resolve": ("RESOLVED", "已解决"),
}
_LABELS = {
    "stores": ("Stores", "门店"),
    "owner": ("Owner", "负责人"),
    "duration": ("Open for", "持续"),
    "id": ("Incident", "事件编号"),
    "source": ("Source", "来源"),
    "more": ("more", "等"),
}


@dataclass
class Notification:
    """One incident transition to announce: ``kind`` open / acknowledge / resolve."""

    kind: str
    incident: dict[str, Any]
    store_names: dict[str, str] = field(default_factory=dict)  # store id -> name in the message's language
    at: float = field(default_factory=time.time)

    @property
    def severity(self) -> str:
        return str(self.incident.get("severity") or "P4")


def _duration(seconds: float, lang: str) -> str:
    m = max(0, int(seconds // 60))
    if m < 60:
        return f"{m} 分钟" if lang == "zh" else f"{m} min"
    h, m = divmod(m, 60)
    return f"{h} 小时 {m} 分钟" if lang == "zh" else f"{h} h {m} min"


def render(n: Notification, lang: str = "en") -> tuple[str, str]:
    """(title, text) of a notification in ``lang`` ("en" or "zh")."""
    zh = lang == "zh"
    inc = n.incident
    word = WORDS[n.kind][1 if zh else 0]
    name = str(inc.get("title") or inc.get("id") or "?")
    title = f"【{n.severity}】{word}：{name}" if zh else f"[{n.severity}] {word}: {name}"

    def label(key: str) -> str:
        return _LABELS[key][1 if zh else 0] + ("：" if zh else ": ")

    lines = [title]
    stores = [str(s) for s in inc.get("stores") or []]
    if stores:
        shown = [n.store_names.get(s) or s for s in stores[:5]]
        more = f" (+{len(stores) - 5} {_LABELS['more'][1 if zh else 0]})" if len(stores) > 5 else ""
        lines.append(label("stores") + ("、" if zh else ", ").join(shown) + more)
    if inc.get("owner"):
        lines.append(label("owner") + str(inc["owner"]))
    opened = inc.get("opened_at")
    if n.kind != "open" and isinstance(opened, (int, float)):
        end = inc.get("resolved_at") if n.kind == "resolve" else inc.get("acknowledged_at")
        end = end if isinstance(end, (int, float)) else n.at
        lines.append(label("duration") + _duration(end - opened, lang))
    if inc.get("x_source"):
        lines.append(label("source") + str(inc["x_source"]))
    lines.append(label("id") + str(inc.get("id", "?")))
    return title[:200], "\n".join(lines)


__all__ = ["Notification", "render", "WORDS"]
