"""Store map: marker repaint on change, clustering by zoom, click, pulse, blast, basemap."""
from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont

from wallboard.state import Dirty, LiveState
from wallboard.widgets.base import STATUS_COLORS, PanelContext
from wallboard.widgets.basemap import BasemapError, load_basemap, load_geojson
from wallboard.widgets.store_map import StoreMapPanel

from conftest import SeqFeed

NOW = 1000.0


def all_dirty() -> Dirty:
    d = Dirty()
    d.all = True
    return d


def make_state():
    st, f = LiveState(), SeqFeed()
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
    assert w.markers.data["sourceRect"]["w"][w.marker_row("s2")] > 0   # re-looked-up in the atlas
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
    import wallboard.widgets.store_map as mod

    from conftest import missing_font

    monkeypatch.setattr(mod, "ui_font", missing_font)
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
    assert any("store_map.options.bogus: unknown key" in e for e in w.errors)
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


# --------------------------------------------------------------------------- placement


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_merge_discs_groups_only_overlapping():
    from wallboard.widgets._map_items import DISC_GAP, disc_radius, merge_discs
    pts = [(0.0, 0.0, 2), (30.0, 0.0, 2), (500.0, 0.0, 2), (520.0, 10.0, 5), (1000.0, 0.0, 1)]
    groups = merge_discs(pts)
    assert sorted(sorted(g) for g in groups) == [[0, 1], [2, 3], [4]]
    assert groups[0] == [3, 2] or sorted(groups[0]) == [2, 3]       # biggest group first
    far = merge_discs([(0.0, 0.0, 1), (2 * disc_radius(1) + DISC_GAP + 1, 0.0, 1)])
    assert len(far) == 2


def test_merge_discs_leaves_no_overlap_property():
    import random

    from wallboard.widgets._map_items import DISC_GAP, disc_radius, merge_discs
    rnd = random.Random(3)
    for _ in range(20):
        pts = [(rnd.uniform(0, 600), rnd.uniform(0, 400), rnd.randint(1, 40)) for _ in range(30)]
        groups = merge_discs(pts)
        assert sorted(i for g in groups for i in g) == list(range(30))
        discs = []
        for g in groups:
            n = sum(pts[i][2] for i in g)
            x = sum(pts[i][0] * pts[i][2] for i in g) / n
            y = sum(pts[i][1] * pts[i][2] for i in g) / n
            discs.append((x, y, disc_radius(n)))
        for a in range(len(discs)):
            for b in range(a + 1, len(discs)):
                (x1, y1, r1), (x2, y2, r2) = discs[a], discs[b]
                assert ((x1 - x2) ** 2 + (y1 - y2) ** 2) ** 0.5 >= r1 + r2 + DISC_GAP - 1e-6


def test_place_labels_never_overlap_and_drop_when_full():
    import random

    from wallboard.widgets._map_items import place_labels
    rnd = random.Random(5)
    anchors = [(rnd.uniform(0, 800), rnd.uniform(0, 600), 8.0) for _ in range(80)]
    sizes = [(rnd.uniform(60, 200), 26.0) for _ in anchors]
    out = place_labels(anchors, sizes, (0, 0, 800, 600))
    rects = []
    for (x, y, r), (w, h), off in zip(anchors, sizes, out):
        if off is None:
            continue
        rect = (x + off[0], y + off[1], x + off[0] + w, y + off[1] + h)
        assert 0 <= rect[0] and rect[2] <= 800 and 0 <= rect[1] and rect[3] <= 600
        for ax, ay, ar in anchors:   # never over a marker
            assert not _overlap(rect, (ax - ar, ay - ar, ax + ar, ay + ar))
        rects.append(rect)
    for i in range(len(rects)):
        for j in range(i + 1, len(rects)):
            assert not _overlap(rects[i], rects[j])
    assert 0 < len(rects) < 80                      # crowded: some are dropped
    # alone, a label sits centred below its marker; a marker below pushes it aside
    out = place_labels([(100, 100, 8)], [(120, 26)], (0, 0, 400, 400))
    assert out == [(-60.0, 12.0, False)]
    out = place_labels([(100, 100, 8), (100, 130, 8)], [(120, 26), (120, 26)], (0, 0, 400, 400))
    assert out[0] is not None and out[1] is not None
    assert out[0][:2] != (-60.0, 12.0)
    # no room next to the marker: a leader-lined spot further out
    obstacles = [(100 + dx, 100 + dy, 10) for dx in (-22, 0, 22) for dy in (-22, 0, 22) if dx or dy]
    out = place_labels([(100, 100, 8)], [(40, 20)], (0, 0, 400, 400), obstacles)
    assert out[0] is not None and out[0][2] is True


# --------------------------------------------------------------------------- launch-928


def launch_928_state():
    import tomllib
    from pathlib import Path
    base = Path(__file__).resolve().parent.parent / "wallboard" / "hub" / "scenarios"
    sc = tomllib.loads((base / "launch-928.toml").read_text(encoding="utf-8"))
    cities = {c["id"]: c for c in tomllib.loads((base / "cities.toml").read_text(encoding="utf-8"))["cities"]}
    st, f = LiveState(), SeqFeed()
    evs = []
    for s in sc["stores"]:
        c = cities[s["city"]]
        evs.append(f.ev(type="store", id=s["id"], name=s["name"], name_en=s["name_en"],
                        city={"id": c["id"], "name": c["name"], "name_en": c["name_en"]},
                        lat=s["lat"], lon=s["lon"], status="open"))
        evs.append(f.ev(type="device", id=f"{s['id']}-pos", store=s["id"], kind="pos", status="ok",
                        ttl_s=3600.0))
    st.apply(evs, NOW)
    return st, f, list(sc["cities"])


@pytest.fixture
def launch(qtbot):
    st, f, cities = launch_928_state()
    w = StoreMapPanel(st, {}, PanelContext(clock=lambda: NOW, scope={"cities": cities}))
    qtbot.addWidget(w)
    w.resize(1920, 1080)
    w.show()
    w.refresh(all_dirty(), NOW)
    return w, st, f


def _assert_readable(w):
    rects = w.label_rects()
    keys = list(rects)
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            assert not _overlap(rects[keys[i]], rects[keys[j]]), (keys[i], keys[j])
    if w.clustered:
        discs = []
        for item in w._clusters.values():
            p = w.vb.mapViewToScene(item.pos())
            discs.append((p.x() - item.radius, p.y() - item.radius, p.x() + item.radius, p.y() + item.radius))
        for i in range(len(discs)):
            for j in range(i + 1, len(discs)):   # discs (circles) never touch
                (a0, b0, a1, b1), (c0, d0, c1, d1) = discs[i], discs[j]
                dist = (((a0 + a1) - (c0 + c1)) ** 2 + ((b0 + b1) - (d0 + d1)) ** 2) ** 0.5 / 2
                assert dist >= (a1 - a0) / 2 + (c1 - c0) / 2 - 0.5
            for r in rects.values():
                assert not _overlap(discs[i], r)
    return rects


def test_launch_928_fit_view_labels_do_not_overlap(launch):
    w, st, f = launch
    assert w.clustered
    rects = _assert_readable(w)
    assert set(rects) == {"shanghai", "hangzhou", "nanjing", "suzhou", "chengdu"}  # all named


def test_close_cities_merge_when_zoomed_out_and_split_when_zoomed_in(launch):
    w, st, f = launch
    w.zoom_to(100, 20, 125, 40)                       # the whole country
    sh, sz = w.cluster_of("shanghai"), w.cluster_of("suzhou")
    assert sh is sz and sh.name == "Shanghai +1"
    assert sh.counts == {"ok": 4}
    _assert_readable(w)
    d = st.apply([f.ev(type="device", id="sz-guanqian-pos", status="down")], NOW + 1)
    w.refresh(d, NOW + 1)
    w.refresh(Dirty(), NOW + 2.5)                      # shown within a second or so
    assert sh.counts == {"ok": 3, "down": 1}
    w.click_at(sh.pos().x(), sh.pos().y())            # a click zooms in: the group splits
    assert w.cluster_of("shanghai") is not w.cluster_of("suzhou") or not w.clustered
    w.fit_scope()
    assert w.cluster_of("shanghai") is not w.cluster_of("suzhou")


def test_store_labels_placed_without_overlap(launch):
    w, st, f = launch
    w.zoom_to(120.55, 31.1, 121.5, 31.35)             # shanghai + suzhou, declustered
    assert not w.clustered
    rects = _assert_readable(w)
    assert set(rects) == {"sh-xuhui", "sh-jingan", "sz-guanqian", "sz-jinjihu"}
    for s, r in rects.items():                        # and never over a marker
        for o in rects:
            p = w.marker_pos(o)
            m = 18 * 0.6
            assert not _overlap(r, (p.x() - m, p.y() - m, p.x() + m, p.y() + m)), (s, o)


def test_many_labels_crowded_drops_some(qtbot):
    st, f = LiveState(), SeqFeed()
    evs = []
    for i in range(40):   # 40 stores within a few hundred metres
        evs.append(f.ev(type="store", id=f"x{i}", name=f"Very long store name number {i}",
                        city={"id": "sh", "name": "上海"}, lat=31.2 + (i % 7) * 0.002,
                        lon=121.4 + (i // 7) * 0.002, status="open"))
    st.apply(evs, NOW)
    w = StoreMapPanel(st, {}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(800, 600)
    w.show()
    w.refresh(all_dirty(), NOW)
    assert not w.clustered
    rects = _assert_readable(w)
    assert 0 < len(rects) < 40


def test_changes_are_aggregated_but_shown_within_a_second(panel):
    w, st, f = panel
    d = st.apply([f.ev(type="device", id="s2-pos", status="crit")], NOW + 1)
    w.refresh(d, NOW + 1)                              # first change: shown at once
    assert w.marker_symbol("s2") == "t1"
    d = st.apply([f.ev(type="device", id="s4-pos", status="down")], NOW + 1.01)
    w.refresh(d, NOW + 1.01)                           # right after: aggregated
    assert w.pending_updates() == 1 and w.marker_symbol("s4") == "o"
    for k in range(1, 40):                             # plain frames, no new events
        w.refresh(Dirty(), NOW + 1.01 + k / 30)
        if not w.pending_updates():
            break
    assert w.marker_symbol("s4") == "x"
    assert k / 30 <= 1.0


def test_cluster_repaints_only_when_counts_change(panel):
    w, st, f = panel
    w.zoom_to(100, 20, 130, 45)
    item = w._clusters["sh"]
    assert not item.set_counts(item.name, dict(item.counts))   # same counts: no repaint
    renders = w.view.background_renders
    d = st.apply([f.ev(type="device", id="s0-pos", status="ok", metrics={"cpu": 3.0})], NOW + 1)
    w.refresh(d, NOW + 1)                               # worst unchanged: nothing stale
    assert w.pending_updates() <= 1 and not w._stale_groups
    d = st.apply([f.ev(type="device", id="s0-pos", status="warn")], NOW + 2)
    w.refresh(d, NOW + 2)
    assert item.counts == {"ok": 4, "warn": 1}
    w.grab()
    w.grab()
    assert w.view.background_renders <= renders + 1     # basemap came from the cache


# --------------------------------------------------------------------------- UI scale (4K wall)


def _launch_at(qtbot, scale, size):
    from wallboard.widgets.base import set_ui_scale
    set_ui_scale(scale)   # the shell sets it before building panels; conftest resets it
    st, f, cities = launch_928_state()
    w = StoreMapPanel(st, {}, PanelContext(clock=lambda: NOW, scope={"cities": cities}))
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    w.refresh(all_dirty(), NOW)
    return w, st, f


def _inside(inner, outer, slack=0.5) -> bool:
    return (inner.left() >= outer.left() - slack and inner.top() >= outer.top() - slack
            and inner.right() <= outer.right() + slack and inner.bottom() <= outer.bottom() + slack)


def test_scale_2_cluster_texts_inside_their_items_and_readable(qtbot):
    from wallboard.widgets._map_items import disc_min_radius, disc_radius
    w, st, f = _launch_at(qtbot, 2.0, (3840, 2160))
    assert w.k == 2.0 and w.legend_h == 80
    assert w.clustered
    rects = _assert_readable(w)                        # no label over a label or a disc
    assert set(rects) == {"shanghai", "hangzhou", "nanjing", "suzhou", "chengdu"}
    for item in w._clusters.values():
        assert item._name_font.pixelSize() == 44 and item._chip_font.pixelSize() == 40
        n = sum(item.counts.values())                 # sized by count, within the cap
        assert disc_min_radius(n, 2.0) <= item.radius <= disc_radius(n, 2.0, w._disc_cap()) + 1e-9
        assert item._total_ink.font.pixelSize() >= 16   # the total stays readable
        box = item.boundingRect()
        texts = item.text_rects()
        assert len(texts) == 2 + len(item._chips)     # total, name, chips
        for r in texts:                               # nothing clipped by the item's rect
            assert _inside(r, box), (item.key, r, box)
        label = item.label_rect()
        for r in texts[1:]:                           # name and chips inside the placed block
            assert _inside(r, label), (item.key, r, label)
    bottom = w.vb.sceneBoundingRect().bottom() - w.legend_h
    assert all(r[3] <= bottom + 0.5 for r in rects.values())   # labels stay off the legend
    w.grab()                                          # paints (cached items, legend) at scale 2


def test_scale_2_geometry_is_the_1080_geometry_doubled(qtbot):
    """Same data on a 1920x1080 panel at scale 1 and a 3840x2160 panel at scale 2: the
    same clusters, each label on the same side, every size about twice as big."""
    w1, _, _ = _launch_at(qtbot, 1.0, (1920, 1080))
    r1 = {k: (w1._clusters[k].radius, w1.label_rects()[k]) for k in w1.label_rects()}
    w2, _, _ = _launch_at(qtbot, 2.0, (3840, 2160))
    r2 = {k: (w2._clusters[k].radius, w2.label_rects()[k]) for k in w2.label_rects()}
    assert set(r1) == set(r2)
    for k in r1:
        (ra, a), (rb, b) = r1[k], r2[k]
        assert rb == pytest.approx(2 * ra)
        assert (b[2] - b[0]) == pytest.approx(2 * (a[2] - a[0]), rel=0.1)
        assert (b[3] - b[1]) == pytest.approx(2 * (a[3] - a[1]), rel=0.01)
        pa, pb = w1.vb.mapViewToScene(w1._clusters[k].pos()), w2.vb.mapViewToScene(w2._clusters[k].pos())
        assert (pb.x(), pb.y()) == pytest.approx((2 * pa.x(), 2 * pa.y()), abs=2)
        # the label sits on the same side of its disc
        side_a = ((a[0] + a[2]) / 2 > pa.x() + 1, (a[1] + a[3]) / 2 > pa.y() + 1)
        side_b = ((b[0] + b[2]) / 2 > pb.x() + 2, (b[1] + b[3]) / 2 > pb.y() + 2)
        assert side_a == side_b, k


def test_scale_2_store_labels_markers_and_clicks(qtbot):
    w, st, f = _launch_at(qtbot, 2.0, (3840, 2160))
    w.zoom_to(120.55, 31.1, 121.5, 31.35)             # shanghai + suzhou, declustered
    assert not w.clustered
    rects = _assert_readable(w)
    assert set(rects) == {"sh-xuhui", "sh-jingan", "sz-guanqian", "sz-jinjihu"}
    assert w.markers.data["size"][w.marker_row("sh-xuhui")] == 36     # marker_px 18 for 1080 lines
    for s, r in rects.items():                        # never over a (doubled) marker
        for o in rects:
            p = w.marker_pos(o)
            m = 36 * 0.6
            assert not _overlap(r, (p.x() - m, p.y() - m, p.x() + m, p.y() + m)), (s, o)
    for item in w._labels:
        if item.isVisible():
            assert item._font.pixelSize() == 40
            assert _inside(item.text_rect(), item.boundingRect()), item.text
    # a click 28 px beside a marker hits it on the 4K wall (radius 0.8 * 36 + 8 px) ...
    px, py = w.vb.viewPixelSize()
    x, y = w._xy[w._index["sz-jinjihu"]]
    with qtbot.waitSignal(w.store_clicked, timeout=1000) as sig:
        w.click_at(x + 28 * px, y)
    assert sig.args == ["sz-jinjihu"]


def test_scale_1_click_radius_unchanged(launch, qtbot):
    w, st, f = launch
    w.zoom_to(120.55, 31.1, 121.5, 31.35)
    px, py = w.vb.viewPixelSize()
    x, y = w._xy[w._index["sz-jinjihu"]]
    with qtbot.assertNotEmitted(w.store_clicked):
        w.click_at(x + 28 * px, y)                    # 28 px is off the marker at 1080 lines
    with qtbot.waitSignal(w.store_clicked, timeout=1000) as sig:
        w.click_at(x + 16 * px, y)
    assert sig.args == ["sz-jinjihu"]


def test_scale_2_cluster_click_zooms_from_the_ring_edge(qtbot):
    w, st, f = _launch_at(qtbot, 2.0, (3840, 2160))
    item = w.cluster_of("chengdu")
    px, py = w.vb.viewPixelSize()
    w.click_at(item.pos().x() + (item.radius + 8) * px, item.pos().y())  # beside the disc
    assert not w.clustered                            # zoomed to Chengdu's stores
    (x0, x1), _ = w.vb.viewRange()
    assert x0 < item.pos().x() < x1


def test_scale_2_merge_distance_and_label_gap_follow_the_scale():
    from wallboard.widgets._map_items import DISC_GAP, disc_radius, merge_discs, place_labels
    # two single-store discs 70 px apart: apart at 1080 lines, merged when twice as big
    pts = [(0.0, 0.0, 1), (2 * disc_radius(1) + DISC_GAP + 1, 0.0, 1)]
    assert len(merge_discs(pts)) == 2
    assert len(merge_discs(pts, 2 * DISC_GAP, lambda n: disc_radius(n, 2.0))) == 1
    (off,) = place_labels([(400, 100, 16)], [(240, 52)], (0, 0, 800, 800), scale=2.0)
    assert off == (-120, 16 + 8, False)               # below the marker, 8 px gap at scale 2
    (off,) = place_labels([(400, 100, 16)], [(240, 52)], (0, 0, 800, 800))
    assert off == (-120, 16 + 4, False)               # 4 px at 1080 lines


# --------------------------------------------------------------------------- double 11: chain-wide


def double_11_events():
    """The double-11 demo's stores (320 over 20 real cities) with one POS each, and its
    chain-wide change-freeze banner."""
    from wallboard.hub.simulator import Simulator, load_scenario
    sim = Simulator(load_scenario("double-11"), t0=NOW)
    f, evs = SeqFeed(), []
    for s in sim.stores.values():
        c = sim.cities[s["city"]]
        evs.append(f.ev(type="store", id=s["id"], name=s["name"], name_en=s["name_en"],
                        city={"id": c["id"], "name": c["name"], "name_en": c["name_en"]},
                        lat=s["lat"], lon=s["lon"], status="open"))
        evs.append(f.ev(type="device", id=f"{s['id']}-pos", store=s["id"], kind="pos", status="ok",
                        ttl_s=3600.0))
    evs.append(f.ev(type="change", id="freeze", title="Change freeze: Double 11 peak", status="running",
                    start=NOW - 60, scope={}))
    return evs, f


def _scene_of(w, store_id):
    from PySide6.QtCore import QPointF
    return w.vb.mapViewToScene(QPointF(*w._xy[w._index[store_id]]))


def _map_area(w):
    """Scene box stores must be in: the view minus banner and legend."""
    b = w.vb.sceneBoundingRect()
    return b.left(), b.top() + w.overlay._top_h(), b.right(), b.bottom() - w.legend_h


@pytest.mark.parametrize("scale,size", [(1.0, (640, 376)), (2.0, (1280, 753))])
def test_double_11_chain_wide_fit_shows_every_store_and_the_geography(qtbot, scale, size):
    from wallboard.widgets._map_items import disc_min_radius
    from wallboard.widgets.base import set_ui_scale
    set_ui_scale(scale)
    evs, f = double_11_events()
    st = LiveState()
    st.apply(evs, NOW)
    w = StoreMapPanel(st, {"cluster_span_deg": 8.0, "label_max": 30}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    w.refresh(all_dirty(), NOW)
    assert w.clustered and w.chain_wide_changes()
    x0, y0, x1, y1 = _map_area(w)
    m = 8 * scale
    for s in st.stores:                                   # every store, with a margin
        p = _scene_of(w, s)
        assert x0 + m <= p.x() <= x1 - m and y0 + m <= p.y() <= y1 - m, s
    rects = _assert_readable(w)                           # no disc or label over another
    assert set(rects) >= set(w._clusters)                 # every cluster is named
    for item in w._clusters.values():                     # discs inside the map area too
        p = w.vb.mapViewToScene(item.pos())
        assert x0 <= p.x() - item.radius and p.x() + item.radius <= x1 + 0.5
        assert y0 <= p.y() - item.radius and p.y() + item.radius <= y1 + 0.5
        assert item.radius >= disc_min_radius(sum(item.counts.values()), scale) - 1e-9
        assert item.radius <= 0.08 * min(size) + 1e-9   # capped by the panel size
    # the merge does not swallow the country: far-apart cities keep their own donuts
    assert len(w._clusters) >= 8
    assert max(len(cs) for cs in w._groups.values()) <= 6
    apart = ["kunming", "guangzhou", "chengdu", "shenyang", "beijing", "shanghai", "qingdao"]
    assert len({id(w.cluster_of(c)) for c in apart}) == len(apart)
    assert max(sum(c.counts.values()) for c in w._clusters.values()) < 320 // 2


def test_merged_cluster_is_named_after_its_biggest_city(qtbot):
    st, f = LiveState(), SeqFeed()
    evs = []
    for cid, name, n, dlon in (("aa", "Aacity", 2, 0.0), ("zz", "Zzcity", 9, 0.05), ("mm", "Mmcity", 4, 0.1)):
        for i in range(n):
            evs.append(f.ev(type="store", id=f"{cid}{i}", name=f"{name} {i}",
                            city={"id": cid, "name": name, "name_en": name},
                            lat=30.0 + i * 0.001, lon=110.0 + dlon, status="open"))
    evs.append(f.ev(type="store", id="far", name="Far", city={"id": "far", "name": "Far"},
                    lat=40.0, lon=90.0, status="open"))
    st.apply(evs, NOW)
    w = StoreMapPanel(st, {}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(800, 600)
    w.show()
    w.refresh(all_dirty(), NOW)
    assert w.clustered
    item = w.cluster_of("aa")
    assert item is w.cluster_of("zz") is w.cluster_of("mm") and item is not w.cluster_of("far")
    assert item.name == "Zzcity +2" and sum(item.counts.values()) == 15


def test_layout_discs_merges_only_close_pairs_and_shrinks_the_rest():
    from wallboard.widgets._map_items import DISC_GAP, disc_min_radius, disc_radius, layout_discs
    rmin = disc_min_radius(50)
    # a chain of cities each just far enough apart for their minimum discs: nothing merges
    # (the old rule merged the whole chain into one donut), every disc shrinks to fit
    step = 2 * rmin + DISC_GAP + 1
    pts = [(i * step, 0.0, 50) for i in range(8)]
    out = layout_discs(pts)
    assert len(out) == 8
    for mem, x, y, r in out:
        assert rmin - 1e-9 <= r < disc_radius(50)
    xs = sorted((x, r) for _, x, _, r in out)
    for (xa, ra), (xb, rb) in zip(xs, xs[1:]):
        assert xb - xa >= ra + rb + DISC_GAP - 1e-6
    # two cities almost on top of each other merge; the far one stays alone and keeps
    # its full size (capped)
    out = layout_discs([(0.0, 0.0, 30), (5.0, 0.0, 3), (400.0, 0.0, 7)],
                       radius=lambda n: disc_radius(n, 1.0, 25.0))
    assert [g[0] for g in out] == [[0, 1], [2]]          # members biggest first
    assert out[0][3] == 25.0 and out[1][3] == disc_radius(7, 1.0, 25.0)
    assert out[0][1] == pytest.approx(5.0 * 3 / 33)       # store-weighted centre
    # closest pairs merge first: a, b close; c a bit further from b; one round merges
    # (a, b) only, and c stays apart when the merged disc does not reach it
    out = layout_discs([(0.0, 0.0, 1), (20.0, 0.0, 1), (20.0 + 2 * disc_min_radius(2) + DISC_GAP + 20, 0.0, 1)])
    assert sorted(sorted(g[0]) for g in out) == [[0, 1], [2]]


def test_view_keeps_fitting_until_the_user_moves_it(qtbot):
    evs, f = double_11_events()
    st = LiveState()
    w = StoreMapPanel(st, {"cluster_span_deg": 8.0}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.show()                                              # built empty, default size
    w.refresh(all_dirty(), NOW)
    w.resize(900, 600)
    first = [e for e in evs if e["type"] == "store" and e["id"].startswith("beijing")]
    rest = [e for e in evs if e not in first]
    for seq, e in enumerate(first + rest, 1):
        e["seq"] = seq
    d = st.apply(first, NOW)                              # the first stores: Beijing only
    w.refresh(d, NOW)
    (vx0, vx1), _ = w.vb.viewRange()
    assert vx0 < 116.4 < vx1 and not (vx0 < 102.7 < vx1)   # fitted to Beijing
    d = st.apply(rest, NOW + 1)                           # then the rest of the chain
    w.refresh(d, NOW + 1)

    def all_in():
        x0, y0, x1, y1 = _map_area(w)
        for s in st.stores:
            p = _scene_of(w, s)
            if not (x0 <= p.x() <= x1 and y0 <= p.y() <= y1):
                return False
        return True

    assert w.auto_fit and all_in()                        # Kunming ... Shenyang
    w.resize(500, 700)                                    # a resize refits
    qtbot.waitUntil(lambda: w.vb.width() == 500, timeout=2000)
    assert all_in()
    w.handle_key(Qt.Key.Key_Plus)                         # the user zooms: the view stays
    assert not w.auto_fit
    r = w.vb.viewRange()
    w.resize(520, 700)
    qtbot.waitUntil(lambda: w.vb.width() == 520, timeout=2000)
    w.refresh(all_dirty(), NOW + 2)
    assert w.vb.viewRange()[1] == pytest.approx(r[1], rel=0.05)
    w.handle_key(Qt.Key.Key_Home)                         # Home fits and follows again
    assert w.auto_fit and all_in()
    w.vb.sigRangeChangedManually.emit([True, True])       # a mouse drag or wheel
    assert not w.auto_fit


def test_legend_and_banner_fit_a_narrow_map(qtbot):
    from PySide6.QtGui import QFontMetrics
    evs, f = double_11_events()
    st = LiveState()
    st.apply(evs, NOW)
    w = StoreMapPanel(st, {}, PanelContext(clock=lambda: NOW))
    qtbot.addWidget(w)
    w.resize(420, 400)
    w.show()
    w.refresh(all_dirty(), NOW)
    ov = w.overlay
    size = ov.legend_font_px()
    assert 9 <= size < 20
    font = QFont(w._font)
    font.setPixelSize(size)
    fm = QFontMetrics(font)
    entries = ov.legend_entries()
    assert entries[-1][0] == "320 stores"
    gap = round(18 * size / 20)                      # the gap shrinks with the font
    assert 12 + sum(fm.horizontalAdvance(t) for t, _ in entries) + gap * (len(entries) - 1) <= 420
    assert not w.grab().isNull()


@pytest.mark.parametrize("scale,size", [(1.0, (1115, 700)), (2.0, (2230, 1400))])
def test_launch_928_layout_fits_the_five_cities_and_names_every_store(qtbot, scale, size):
    """launch-928's map (cluster_span_deg 25, marker_px 22): the view fits the event's
    five cities -- not the whole country -- and every store gets its label, the ones at
    the edges too."""
    from wallboard.widgets.base import set_ui_scale
    set_ui_scale(scale)
    st, f, cities = launch_928_state()
    w = StoreMapPanel(st, {"cluster_span_deg": 25.0, "marker_px": 22, "label_max": 20},
                      PanelContext(clock=lambda: NOW, scope={"cities": cities}))
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    w.refresh(all_dirty(), NOW)
    assert not w.clustered
    (x0, x1), _ = w.vb.viewRange()
    assert 100 < x0 < 104.0 and 121.5 < x1 < 127                # Chengdu .. Shanghai
    rects = _assert_readable(w)
    # the stores at the edges (Chengdu, Shanghai) are named; in the crowded Yangtze delta
    # at most one label finds no free spot and is dropped (never drawn over another)
    assert {"cd-chunxi", "cd-gaoxin", "sh-xuhui", "sh-jingan"} <= set(rects)
    assert len(rects) >= len(st.stores) - 1
    ax0, ay0, ax1, ay1 = _map_area(w)
    for r in rects.values():
        assert ax0 <= r[0] and r[2] <= ax1 and ay0 <= r[1] and r[3] <= ay1


def test_store_moving_city_in_a_batch_of_status_changes_rebuilds_counts(panel):
    """Counting and the structural check share one pass: a store that changed city in the
    same frame as status changes of other stores still rebuilds, with exact counts."""
    w, st, f = panel
    evs = [f.ev(type="device", id=f"s{i}-pos", status="down") for i in (0, 2, 4)]
    evs.append(f.ev(type="store", id="s1", name="北京1号店", city={"id": "sh", "name": "上海"},
                    lat=31.3, lon=121.5))
    d = st.apply(evs, NOW + 1)
    assert {"s0", "s1", "s2", "s4"} <= d.stores
    w.refresh(d, NOW + 1)
    assert w._geo["s1"][2] == "sh"
    sh = w._city_counts["sh"]
    assert sh.get("down") == 3 and sum(sh.values()) == 6
    assert sum(w._city_counts["bj"].values()) == 4
    # a store without coordinates is not on the map and never forces a rebuild
    d = st.apply([f.ev(type="store", id="s99", name="x", city={"id": "sh", "name": "上海"})], NOW + 2)
    w.refresh(d, NOW + 2)
    assert "s99" not in w._geo and w.store_count() == 10


def test_blast_radius_one_outline_per_store_failed_wins(panel):
    w, st, f = panel
    d = st.apply([f.ev(type="change", id="c1", title="fw", status="running", scope={"cities": ["sh"]}),
                  f.ev(type="change", id="c2", title="pos", status="failed", scope={"stores": ["s0"]}),
                  f.ev(type="change", id="c3", title="pos2", status="running", scope={"stores": ["s0"]})], NOW)
    w.refresh(d, NOW)
    assert len(w.blast.data) == 5                      # s0 once, though three changes reach it
    pens = {round(p.widthF()) for p in w.blast.data["pen"]}
    assert pens == {2, 3}                              # s0 drawn as failed (3 px), the rest running
