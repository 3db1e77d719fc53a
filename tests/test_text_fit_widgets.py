"""Text that fits in the widgets that draw it (issue 12): at 3840x2160 nothing is cut
that the panel has room for; names follow the wall's language."""
from __future__ import annotations

from wallboard.state import Dirty, LiveState
from wallboard.widgets.base import PanelContext, set_ui_scale
from wallboard.widgets.device_grid import DeviceGridPanel
from wallboard.widgets.incident_board import IncidentBoardPanel

from conftest import SeqFeed, feed_events as feed

NOW = 1_760_000_000.0
LONG = [("nj-xjk", "鲜达·南京新街口旗舰店", "FreshDa Xinjiekou Flagship", "nanjing", "南京", "Nanjing"),
        ("sh-xh", "鲜达·上海徐汇滨江店", "FreshDa Xuhui Riverside", "shanghai", "上海", "Shanghai")]


def grid_state():
    st, f = LiveState(), SeqFeed(NOW)
    evs = []
    for sid, name, name_en, cid, cname, cname_en in LONG:
        evs.append(f.ev(type="store", id=sid, name=name, name_en=name_en,
                        city={"id": cid, "name": cname, "name_en": cname_en}, lat=31.0, lon=120.0, status="open"))
        for j in range(40):
            kind = ("pos", "self_checkout", "esl_gateway", "camera")[j % 4]
            evs.append(f.ev(type="device", id=f"{sid}/{kind}-{j}", store=sid, kind=kind, name=f"{kind} {j}",
                            status="ok", ttl_s=600.0, metrics={"tags_online_ratio": 98.2}))
    st.apply(evs, NOW)
    return st


def shown_grid(qtbot, size, options=None, lang="en"):
    w = DeviceGridPanel(grid_state(), options or {}, PanelContext(clock=lambda: NOW, lang=lang))
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    w.refresh(Dirty.everything(), NOW)
    w.grab()
    return w


def test_grid_store_names_fit_at_4k_in_english_and_chinese(qtbot):
    set_ui_scale(2.0)
    for lang, expect in (("en", "FreshDa Xinjiekou Flagship"), ("zh", "鲜达·南京新街口旗舰店")):
        w = shown_grid(qtbot, (2550, 1380), lang=lang)
        fit = w.label_fits["nj-xjk"]
        assert not fit.elided and "".join(fit.lines).replace(" ", "") == expect.replace(" ", "")


def test_grid_row_label_wraps_before_it_elides(qtbot):
    w = shown_grid(qtbot, (700, 500))
    fit = w.label_fits["nj-xjk"]
    assert fit.px >= 9
    if fit.elided:  # only at the floor and on every line the row holds
        assert fit.px == max(9, int(w._label_font.pixelSize() * 0.72))


def test_store_page_metric_not_cut_at_4k(qtbot):
    set_ui_scale(2.0)
    w = shown_grid(qtbot, (1900, 1300), {"mode": "store", "store": "sh-xh", "min_cell_px": 28, "max_cell_px": 64})
    fits = [w.cell_fits[d] for d in w.cell_fits if "esl_gateway" in d]
    assert fits and not any(f.elided for f in fits)
    assert fits[0].lines == ("tags_online_ratio 98.2",)


def test_incident_title_shrinks_and_wraps_instead_of_cutting(qtbot):
    st = LiveState()
    title = "Self-checkout payment SDK 4.2 rollout: card payments time out at 3 stores"
    feed(st, [{"type": "store", "id": "s1", "name": "静安店", "name_en": "Jing'an", "city": {"id": "sh", "name": "上海"}},
              {"type": "incident", "id": "i1", "title": title, "severity": "P1", "status": "open",
               "opened_at": NOW - 60, "stores": ["s1"], "owner": "Li"}], NOW)
    panel = IncidentBoardPanel(st, {}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(panel)
    panel.resize(1100, 700)
    panel.show()
    panel.refresh(Dirty.everything(), NOW)
    panel.grab()
    fit = panel.rows[0].title_fit
    assert not fit.elided and " ".join(fit.lines) == title
