"""Store map: marker repaint on change, clustering by zoom, click, pulse, blast, basemap."""
from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont

from wallboard.state import Dirty, LiveState
from widgets.base import STATUS_COLORS, PanelContext
from widgets.basemap import BasemapError, load_basemap, load_geojson
from widgets.store_map import StoreMapPanel

NOW = 1000.0


class Feed:
    def __init__(self):
        self.seq = 0

    def ev(self, **kw):
        self.seq += 1
        kw.setdefault("ts", NOW)
        kw["seq"] = self.seq
        return kw


def all_dirty() -> Dirty:
    d = Dirty()
    d.all = True
    return d


def make_state():
    st, f = LiveState(), Feed()
    evs = []
    cities = [("sh", "上海", 31.23, 121.47), ("bj", "北京", 39.90, 116.40)]
    for i in range(10):
        cid, cname, lat, lon = cities[i % 2]
        sid = f"s{i}"
        evs.append(f.ev(type="store", id=sid, name=f"{cname}{i}号店", city={"id": cid, "name": cname},
                        lat=lat + (i // 2) * 0.02, lon=lon + (i // 2) * 0.02,
                        status="planned" if i == 8 else "open"))
        evs.append(f.ev(type="device", id=f"{sid}-pos", store=sid, kind="pos", status="ok", ttl_s=60.0))
    st.apply(evs, NOW)
    return st, f


@pytest.fixture
def panel(qtbot):
    st, f = make_state()
    w = StoreMapPanel(st, {}, PanelContext(clock=lambda: NOW, scope={"cities": ["sh"]}))
    qtbot.addWidget(w)
    w.resize(800, 600)
    w.show()
    w.refresh(all_dirty(), NOW)
    return w, st, f


def test_status_change_repaints_marker(panel):
    w, st, f = panel
    assert w.marker_brush("s2") == QColor(STATUS_COLORS["ok"])
    d = st.apply([f.ev(type="device", id="s2-pos", status="crit")], NOW + 1)
    w.refresh(d, NOW + 1)
    assert w.marker_brush("s2") == QColor(STATUS_COLORS["crit"])
    assert w.marker_symbol("s2") == "t1"                 # second cue: a triangle
    assert w.markers.data["sourceRect"]["w"][w._index["s2"]] > 0   # re-looked-up in the atlas
    d = st.apply([f.ev(type="device", id="s2-pos", status="down")], NOW + 2)
    w.refresh(d, NOW + 2)
    assert w.marker_symbol("s2") == "x"


def test_ttl_expiry_turns_marker_unknown(panel):
    w, st, f = panel
    d = st.tick(NOW + 120)
    w.refresh(d, NOW + 120)
    assert w.marker_brush("s0") == QColor(STATUS_COLORS["unknown"])


def test_planned_store_is_hollow(panel):
    w, st, f = panel
    assert w.marker_brush("s8").alpha() == 0


def test_fits_scope_and_declusters_when_zoomed_in(panel):
    w, st, f = panel
    (x0, x1), (y0, y1) = w.vb.viewRange()
    assert x0 < 121.47 < x1 and y0 < 31.23 < y1 and not (y0 < 39.9 < y1)   # shanghai only
    assert not w.clustered
    assert w._labelled                                    # each store gets its label
    w.zoom_to(100, 20, 130, 45)                           # zoom out: whole country
    assert w.clustered
    assert set(w._clusters) == {"sh", "bj"}
    assert sum(w._clusters["sh"].counts.values()) == 5
    assert not w.markers.isVisible()


def test_cluster_counts_follow_changes(panel):
    w, st, f = panel
    w.zoom_to(100, 20, 130, 45)
    d = st.apply([f.ev(type="device", id="s1-pos", status="down")], NOW + 1)
    w.refresh(d, NOW + 1)
    assert w._clusters["bj"].counts == {"ok": 4, "down": 1}


def test_click_store_emits_and_cluster_zooms(panel, qtbot):
    w, st, f = panel
    pos = w.marker_pos("s4")
    with qtbot.waitSignal(w.store_clicked, timeout=1000) as sig:
        qtbot.mouseClick(w.view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert sig.args == ["s4"]
    w.zoom_to(100, 20, 130, 45)
    item = w._clusters["bj"]
    w.click_at(item.pos().x(), item.pos().y())
    assert not w.clustered
    (x0, x1), _ = w.vb.viewRange()
    assert x0 < 116.45 < x1


def test_keys_pan_and_zoom(panel):
    w, st, f = panel
    (x0, x1), _ = w.vb.viewRange()
    assert w.handle_key(Qt.Key.Key_Right)
    (a0, a1), _ = w.vb.viewRange()
    assert a0 > x0
    assert w.handle_key(Qt.Key.Key_Minus)
    (b0, b1), _ = w.vb.viewRange()
    assert b1 - b0 > a1 - a0
    assert w.handle_key(Qt.Key.Key_Home)
    assert not w.handle_key(Qt.Key.Key_A)


def test_incident_pulses_then_stops(panel):
    w, st, f = panel
    d = st.apply([f.ev(type="incident", id="i1", title="POS", severity="P1", status="open",
                       stores=["s0"], opened_at=NOW)], NOW)
    w.refresh(d, NOW + 0.5)
    assert w.pulsing() == ["s0"]
    assert len(w.pulses.data) == 1
    w.refresh(Dirty(), NOW + 60)
    assert w.pulsing() == [] and len(w.pulses.data) == 0


def test_blast_radius_outline(panel):
    w, st, f = panel
    d = st.apply([f.ev(type="change", id="c1", title="fw", status="running",
                       scope={"cities": ["sh"]}),
                  f.ev(type="change", id="c2", title="global price sync", status="failed")], NOW)
    w.refresh(d, NOW)
    assert len(w.blast.data) == 5
    assert w.chain_wide_changes() == [("global price sync", "failed")]
    d = st.apply([f.ev(type="change", id="c1", status="succeeded")], NOW + 1)
    w.refresh(d, NOW + 1)
    assert len(w.blast.data) == 0


def test_no_cjk_font_renders(qtbot, monkeypatch):
    import widgets.store_map as mod

    def fake_font(size, bold=False):
        f = QFont("No Such Font Family 12345")
        f.setPointSizeF(size)
        f.setBold(bold)
        return f

    monkeypatch.setattr(mod, "ui_font", fake_font)
    st, f = make_state()
    w = StoreMapPanel(st, {}, PanelContext(lang="zh", clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(640, 400)
    w.show()
    w.refresh(all_dirty(), NOW)
    w.set_dimmed(True)
    assert not w.grab().isNull()


def test_user_geojson_layers_and_errors(tmp_path, qtbot):
    good = tmp_path / "districts.geojson"
    good.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "黄浦区"},
         "geometry": {"type": "Polygon", "coordinates": [[[121.4, 31.2], [121.5, 31.2], [121.5, 31.3], [121.4, 31.2]]]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[[200, 31.2], [1, 1]]]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [121, 31]}},
    ]}), encoding="utf-8")
    layer = load_geojson(good)
    assert [f.name for f in layer.features] == ["黄浦区"]
    assert layer.skipped == 2
    assert layer.errors[0].endswith("features[1].geometry.coordinates[0][0]: expected lon in -180..180 "
                                    "and lat in -90..90 (WGS 84 degrees)")
    assert layer.errors[1].endswith("features[2].geometry.type: expected Polygon, MultiPolygon, "
                                    "LineString or MultiLineString (got 'Point')")
    st, f = make_state()
    w = StoreMapPanel(st, {"basemap_extra": [str(good), str(tmp_path / "missing.json")],
                           "provinces": str(good), "bogus": 1},
                      PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    assert [lay.name for lay in w.layers] == ["countries", "provinces", "extra0"]
    assert w.layers[1].features[0].name == "黄浦区"          # replaced the shipped layer
    assert any("store_map.options.bogus: unknown option" in e for e in w.errors)
    assert any("basemap_extra[1]" in e and "missing.json: file: expected a readable GeoJSON file" in e
               for e in w.errors)


def test_geojson_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(BasemapError, match="bad.json: file: expected JSON"):
        load_geojson(bad)
    bad.write_text('{"type": "FeatureCollection", "features": 3}', encoding="utf-8")
    with pytest.raises(BasemapError, match="features: expected a list of Feature objects"):
        load_geojson(bad)
    bad.write_text('[1]', encoding="utf-8")
    with pytest.raises(BasemapError, match="type: expected a GeoJSON object with a 'type'"):
        load_geojson(bad)
    with pytest.raises(BasemapError, match="format: expected \"wallboard-basemap\""):
        load_basemap(tmp_path / "bad.json")
    with pytest.raises(BasemapError, match="file: expected a readable basemap file"):
        load_basemap(tmp_path / "nope.json.gz")


def test_shipped_basemap():
    layers = load_basemap()
    assert len(layers["countries"].features) > 150
    names = {f.name for f in layers["provinces"].features}
    assert {"上海", "北京", "广东"} <= names
    lon0, lat0, lon1, lat1 = layers["provinces"].bbox()
    assert 70 < lon0 < 80 and 130 < lon1 < 140 and 15 < lat0 < 25 and 50 < lat1 < 56
