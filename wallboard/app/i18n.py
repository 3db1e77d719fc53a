"""Simplified Chinese for the shell's own strings (widgets register theirs themselves)."""
from __future__ import annotations

from wallboard.widgets.base import register_translations

SHELL_ZH = {
    "LIVE": "实时",
    "CONNECTING": "连接中",
    "RECONNECTING": "重连中",
    "STALE": "数据过期",
    "AUTH_FAILED": "认证失败",
    "Opening": "距开业",
    "Since opening": "开业后",
    "data age": "数据时长",
    "ev/s": "事件/秒",
    "rejected": "已拒绝",
    "PAUSED": "轮播暂停",
    "MUTED": "静音",
    "no data for": "已无数据",
    "showing the last known state": "显示最后已知状态",
    "layout": "布局",
    "layout not reloaded": "布局未重新加载",
    "store page": "门店页面",
    "Store": "门店",
    "old control events ignored": "已忽略的过期控制指令",
    "Panel failed to load": "面板加载失败",
    "error": "错误",
    "Keyboard shortcuts": "快捷键",
    "Switch to layout 1 … 9": "切换到布局 1 … 9",
    "Previous / next rotation page (or layout)": "上一页 / 下一页（或布局）",
    "Pause / resume the rotation": "暂停 / 继续轮播",
    "Layout picker": "选择布局",
    "Back: close drill-down or overlay": "返回：关闭门店页或浮层",
    "Full screen on / off": "全屏开 / 关",
    "Mute / unmute alert sounds": "告警声音静音 / 取消静音",
    "Language: English / 中文": "语言：English / 中文",
    "This help": "本帮助",
    "Click a store": "点击门店",
    "Open its page (Shift+click: in its own window)": "打开门店页（Shift+点击：新窗口）",
    "Layout…": "布局…",
    "store_map": "门店地图",
    "device_grid": "设备健康",
    "change_timeline": "变更时间线",
    "incident_board": "事件看板",
    "voice_feed": "客户之声",
    "kpi_tiles": "关键指标",
    "kpi_chart": "指标趋势",
    "text": "说明",
    "refused": "被拒绝",
    "certificate not trusted": "证书不受信任",
    "not connected to": "未连接到",
    "connected, waiting for the first snapshot": "已连接，等待首个快照",
    "connection refused": "连接被拒绝",
    "timed out": "超时",
}


def register() -> None:
    register_translations(SHELL_ZH)
