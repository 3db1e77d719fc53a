"""Auto-focus on a real X server (issue 16, ``[[rules]]``): the real ``wallboard`` on Xvfb,
full screen, with and without a window manager, on a real hub. A matching P1 turns the
command screen to its store page (the status file and the X window title say so); Esc
turns it back; a second P1 turns it again and its acknowledgement, published by a
producer, turns it back."""
from __future__ import annotations

import asyncio
import time

import pytest

from test_real_x import START_TIMEOUT_S, Wall, XServer, pytestmark  # noqa: F401  (skip without Xvfb)
from wallboard import layout as L
from wallboard import protocol as P
from wallboard.hub.server import Hub, HubConfig

RULE = """
[[rules]]
name = "p1-shanghai"
screen = "command"
for_min = 10
[rules.match]
severity = ["P1"]
cities = ["shanghai"]
"""


def publish(hub: Hub, events: list[dict]) -> None:
    async def go():
        return await hub.submit([P.validate_event(dict(e), require_seq=False) for e in events])

    asyncio.run_coroutine_threadsafe(go(), hub.loop).result(10)


def p1(iid: str, **kw) -> dict:
    now = time.time()
    return {"type": "incident", "id": iid, "ts": now, "title": f"POS down ({iid})", "severity": "P1",
            "status": "open", "stores": ["sh-001"], "opened_at": now, "kinds": ["pos"], **kw}


@pytest.fixture
def hub():
    h = Hub(HubConfig(host="127.0.0.1", port=0, journal=None, heartbeat_s=0.5))
    h.start_in_thread()
    now = time.time()
    publish(h, [{"type": "store", "id": "sh-001", "ts": now, "name": "南京西路店", "name_en": "West Nanjing Rd",
                 "city": {"id": "shanghai", "name": "上海", "name_en": "Shanghai"}, "lat": 31.23, "lon": 121.47,
                 "status": "open"}]
            + [{"type": "device", "id": f"sh-001-pos-{i}", "ts": now, "store": "sh-001", "kind": "pos",
                "status": "ok", "ttl_s": 600} for i in range(4)])
    yield h
    h.stop()


@pytest.mark.parametrize("wm", [False, True], ids=["no-wm", "openbox"])
def test_a_p1_turns_the_command_screen_and_esc_or_an_ack_turns_it_back(hub, tmp_path, wm):
    layout = tmp_path / "focus.toml"
    layout.write_text((L.DEFAULT_LAYOUT_DIR / "launch-928.toml").read_text(encoding="utf-8") + RULE,
                      encoding="utf-8")
    x = XServer("3840x2160x24")
    wall = None
    try:
        if wm:
            x.start_openbox()
        wall = Wall(x, tmp_path, "--fullscreen", "--feed", hub.url, "--layout", str(layout))
        st = wall.wait_live(2)
        assert st["windows"][0]["auto_focus"] is None
        win0 = st["windows"][0]["window_id"]

        publish(hub, [p1("INC-A")])
        st = wall.wait(lambda s: (s["windows"][0]["auto_focus"] or {}).get("incident") == "INC-A",
                       "the P1 to turn the command screen")
        w0 = st["windows"][0]
        assert w0["drill_depth"] == 1 and w0["page"] == "Store West Nanjing Rd", w0
        assert w0["auto_focus"]["rule"] == "p1-shanghai" and w0["auto_focus"]["severity"] == "P1"
        assert st["windows"][1]["auto_focus"] is None
        x.xdotool("windowactivate" if wm else "windowfocus", "--sync", win0)
        x.xdotool("key", "Escape")
        st = wall.wait(lambda s: s["windows"][0]["auto_focus"] is None and s["windows"][0]["drill_depth"] == 0,
                       "Esc to turn it back")

        publish(hub, [p1("INC-B")])
        wall.wait(lambda s: (s["windows"][0]["auto_focus"] or {}).get("incident") == "INC-B",
                  "a second P1 to turn it again")
        now = time.time()
        publish(hub, [{"type": "incident", "id": "INC-B", "ts": now, "status": "acknowledged",
                       "acknowledged_at": now}])
        wall.wait(lambda s: s["windows"][0]["auto_focus"] is None and s["windows"][0]["drill_depth"] == 0,
                  "the acknowledgement to turn it back")
    finally:
        if wall is not None:
            wall.stop()
        x.stop()
