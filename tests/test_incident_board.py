"""Incident board: ordering, live timers, flashing, resolved rows, ack, store clicks, MTTA/MTTR."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from wallboard.state import Dirty, LiveState
from wallboard.widgets.base import PanelContext
from wallboard.widgets.incident_board import IncidentBoardPanel, duration_text
from conftest import feed_events as feed

NOW = 1_760_000_000.0



def incident(iid, sev="P2", **kw):
    ev = {"type": "incident", "id": iid, "title": f"incident {iid}", "severity": sev, "status": "open",
          "opened_at": NOW - 600, "stores": ["s1"], "owner": "Li"}
    ev.update(kw)
    return ev


STORES = [{"type": "store", "id": "s1", "name": "静安店", "name_en": "Jing'an", "city": {"id": "sh", "name": "上海"}},
          {"type": "store", "id": "s2", "name": "徐汇店", "name_en": "Xuhui", "city": {"id": "sh", "name": "上海"}}]


def make(qtbot, events=(), options=None, now=NOW, **ctx_kw):
    st = LiveState()
    feed(st, STORES + list(events), now)
    panel = IncidentBoardPanel(st, options or {}, PanelContext(clock=lambda: now, **ctx_kw))
    qtbot.addWidget(panel)
    panel.resize(1100, 700)
    panel.show()
    panel.refresh(Dirty.everything(), now)
    return st, panel


def test_rows_by_severity_then_age(qtbot):
    st, panel = make(qtbot, [incident("a", "P3", opened_at=NOW - 100), incident("b", "P1", opened_at=NOW - 50),
                             incident("c", "P3", opened_at=NOW - 900)])
    assert [r.incident_id for r in panel.rows] == ["b", "c", "a"]
    assert panel.rows[0].stores == [("s1", "Jing'an")]


def test_timers_tick_once_per_second(qtbot):
    st, panel = make(qtbot, [incident("a", acknowledged_at=NOW - 60, status="acknowledged")])
    qtbot.waitExposed(panel)
    qtbot.wait(50)  # let the pending first paint happen
    paints = panel.paints
    panel.refresh(Dirty(), NOW + 0.3)  # same second: nothing to do
    qtbot.wait(30)
    assert panel.paints == paints
    panel.refresh(Dirty(), NOW + 1.0)
    qtbot.waitUntil(lambda: panel.paints > paints, timeout=2000)
    row = panel.rows[0]
    assert duration_text(NOW + 1.0 - row.opened_at) == "10:01"
    assert duration_text(NOW + 1.0 - row.acknowledged_at) == "1:01"


def test_duration_text():
    assert duration_text(None) == "-"
    assert duration_text(5) == "0:05"
    assert duration_text(3723) == "1:02:03"


def test_new_p1_flashes_then_stops(qtbot):
    st, panel = make(qtbot, [], {"flash_s": 120})
    d = feed(st, [incident("p1", "P1", opened_at=NOW)], NOW)
    panel.refresh(d, NOW)
    assert panel.is_flashing("p1", NOW + 1)
    assert panel.unacknowledged_severe() == [("p1", "P1")]
    # the row background alternates each second while flashing
    y = int(panel.height() * 0.12)
    x = panel.width() // 2
    panel.refresh(Dirty(), NOW + 2)
    a = panel.grab().toImage().pixelColor(x, y)
    panel.refresh(Dirty(), NOW + 3)
    b = panel.grab().toImage().pixelColor(x, y)
    assert a != b
    panel.refresh(Dirty(), NOW + 121)
    assert not panel.is_flashing("p1")


def test_resolved_rows_stay_then_leave(qtbot):
    st, panel = make(qtbot, [incident("a")], {"resolved_keep_s": 300})
    d = feed(st, [{"type": "incident", "id": "a", "status": "resolved", "resolved_at": NOW + 10}], NOW + 10)
    panel.refresh(d, NOW + 10)
    assert [(r.incident_id, r.status) for r in panel.rows] == [("a", "resolved")]
    panel.refresh(Dirty(), NOW + 200)
    assert panel.rows and panel.rows[0].status == "resolved"
    panel.refresh(Dirty(), NOW + 320)
    assert panel.rows == []


def test_mtta_and_mttr(qtbot):
    st, panel = make(qtbot, [
        incident("a", opened_at=NOW - 1000, acknowledged_at=NOW - 900, status="acknowledged"),
        incident("b", opened_at=NOW - 1000, acknowledged_at=NOW - 700, resolved_at=NOW - 400, status="resolved"),
    ])
    assert panel.mtta == pytest.approx(200.0)
    assert panel.mttr == pytest.approx(600.0)
    assert (panel.n_acked, panel.n_resolved) == (2, 1)


def test_ack_button_sends_control_on_a_workstation(qtbot):
    sent = []
    st, panel = make(qtbot, [incident("a", "P1")], send_control=lambda c, a: sent.append((c, a)))
    qtbot.waitExposed(panel)
    panel.grab()
    acks = [r for r, kind, ident in panel._hits if kind == "ack"]
    assert len(acks) == 1
    qtbot.mouseClick(panel, Qt.MouseButton.LeftButton, pos=acks[0].center().toPoint())
    assert sent == [("ack_incident", {"incident": "a"})]


def test_no_ack_without_control_role(qtbot):
    st, panel = make(qtbot, [incident("a", "P1")])
    panel.grab()
    assert not [1 for _r, kind, _i in panel._hits if kind == "ack"]
    assert panel.acknowledge("a") is False


def test_clicking_a_store_emits_store_clicked(qtbot):
    st, panel = make(qtbot, [incident("a", stores=["s1", "s2"])])
    qtbot.waitExposed(panel)
    panel.grab()
    stores = [(r, ident) for r, kind, ident in panel._hits if kind == "store"]
    assert [i for _r, i in stores] == ["s1", "s2"]
    with qtbot.waitSignal(panel.store_clicked, timeout=1000) as sig:
        qtbot.mouseClick(panel, Qt.MouseButton.LeftButton, pos=stores[1][0].center().toPoint())
    assert sig.args == ["s2"]
    row = [r for r, kind, _i in panel._hits if kind == "row"][0]
    with qtbot.waitSignal(panel.incident_selected, timeout=1000) as sig:
        qtbot.mouseClick(panel, Qt.MouseButton.LeftButton, pos=QPoint(int(row.left()) + 3, int(row.center().y())))
    assert sig.args == ["a"]


def test_scope_and_max_rows(qtbot):
    events = [incident(f"i{k}", "P3", opened_at=NOW - k) for k in range(5)]
    events.append(incident("other", "P1", stores=["elsewhere"]))
    st, panel = make(qtbot, events, {"max_rows": 3}, scope={"stores": ["s1"]})
    assert len(panel.rows) == 3 and panel.hidden_rows == 2
    assert "other" not in [r.incident_id for r in panel.rows]


@pytest.mark.parametrize("options, message", [
    ({"flash_s": "2m"}, 'incident_board.options.flash_s: expected an integer, got a string ("2m")'),
    ({"max_rows": 2.5}, "incident_board.options.max_rows: expected an integer, got a number (2.5)"),
    ({"max_rows": 0}, "incident_board.options.max_rows: out of range: 0; expected an integer at least 1 and at most 200"),
    ({"max_rows": True}, "incident_board.options.max_rows: expected an integer, got a boolean (true)"),
    ({"resolved_keep": 3}, 'incident_board.options.resolved_keep: unknown key (did you mean "resolved_keep_s"?)'),
])
def test_bad_options_name_the_key(qtbot, options, message):
    with pytest.raises(ValueError) as err:
        IncidentBoardPanel(LiveState(), options, PanelContext())
    assert message in str(err.value)


def test_renders_to_png(qtbot, tmp_path):
    st, panel = make(qtbot, [incident("a", "P1"), incident("b", "P4", status="resolved", resolved_at=NOW - 5)],
                     lang="zh", send_control=lambda c, a: None)
    panel.set_dimmed(True)
    path = tmp_path / "board.png"
    assert panel.grab().save(str(path))
    assert path.stat().st_size > 5000


def test_busy_stores_do_not_repaint_the_board_within_a_second(qtbot):
    """At 10,000 device events/s every frame names some store: the board repaints when its
    rows change, or once a second for its timers, not on every frame."""
    st, panel = make(qtbot, [incident("a", "P2")])
    qtbot.waitUntil(lambda: panel.paints > 0, timeout=2000)
    for _ in range(20):  # let the show/expose paints settle (bounded)
        base = panel.paints
        qtbot.wait(50)
        if panel.paints == base:
            break
    busy = Dirty()
    busy.stores = {"s1", "s2"}
    for k in range(5):  # same second, stores dirty (device changes), rows unchanged
        panel.refresh(busy, NOW + 0.1 + k * 0.1)
    qtbot.wait(50)
    assert panel.paints == base
    feed(st, [{"type": "store", "id": "s1", "name": "静安旗舰店", "name_en": "Jing'an flagship"}], NOW + 0.7)
    panel.refresh(busy, NOW + 0.7)  # a row's store was renamed: the row changed
    qtbot.waitUntil(lambda: panel.paints > base, timeout=2000)
    assert "Jing'an flagship" in [name for _, name in panel.rows[0].stores]
    base = panel.paints
    panel.refresh(busy, NOW + 1.2)  # next second: the timers move
    qtbot.waitUntil(lambda: panel.paints > base, timeout=2000)
