"""One-off conversion of the shipped basemap: registry packages -> ``assets/basemap/``.

Run once by a maintainer (never at wall run time)::

    cd /tmp && npm pack world-atlas@2.0.2 && npm pack echarts@4.9.0
    mkdir -p wa ec && tar xzf world-atlas-2.0.2.tgz -C wa && tar xzf echarts-4.9.0.tgz -C ec
    python3 tools/make_basemap.py --world /tmp/wa/package/countries-50m.json \\
        --china /tmp/ec/package/map/json/china.json --out assets/basemap/basemap.json.gz

It decodes Natural Earth country outlines from TopoJSON (arcs delta-quantised, shared
between neighbours), decodes ECharts' "UTF8Encoding" GeoJSON of China's provinces,
simplifies both with Douglas-Peucker to wall resolution (shared arcs are simplified once,
so neighbouring borders stay identical), drops slivers, and writes the compact format
read by :func:`widgets.basemap.load_basemap`:

``{"format": "wallboard-basemap", "version": 1, "scale": S, "layers": {name: {"source":
str, "licence": str, "features": [{"id", "name", "name_en"?, "label": [lon, lat],
"rings": [[x0, y0, dx1, dy1, ...], ...]}]}}}`` -- coordinates are integers in 1/S degree,
each ring delta-encoded after its first point. The file is gzip-compressed JSON.
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np

SCALE = 1000  # output units per degree (~110 m): finer than any wall pixel at chain zoom


def douglas_peucker(points: np.ndarray, tol: float) -> np.ndarray:
    """Keep the points of an (n, 2) polyline that deviate more than ``tol``; ends kept."""
    n = len(points)
    if n <= 2 or tol <= 0:
        return points
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        a, b = points[i], points[j]
        seg = points[i + 1 : j]
        d = b - a
        norm = float(np.hypot(d[0], d[1]))
        if norm == 0.0:
            dist = np.hypot(seg[:, 0] - a[0], seg[:, 1] - a[1])
        else:
            dist = np.abs(d[0] * (seg[:, 1] - a[1]) - d[1] * (seg[:, 0] - a[0])) / norm
        k = int(np.argmax(dist))
        if dist[k] > tol:
            m = i + 1 + k
            keep[m] = True
            stack.append((i, m))
            stack.append((m, j))
    return points[keep]


def ring_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def label_point(rings: list[np.ndarray]) -> list[float]:
    """Centroid of the largest ring: where a feature's name goes."""
    big = max(rings, key=ring_area)
    return [round(float(big[:, 0].mean()), 3), round(float(big[:, 1].mean()), 3)]


# --------------------------------------------------------------------------- TopoJSON


def topo_arcs(topo: dict, tol: float) -> list[np.ndarray]:
    """Decode (delta + quantised) TopoJSON arcs to lon/lat arrays, each simplified once."""
    tr = topo.get("transform")
    out = []
    for arc in topo["arcs"]:
        a = np.asarray(arc, dtype=np.float64)
        if tr:
            a = np.cumsum(a, axis=0)
            a[:, 0] = a[:, 0] * tr["scale"][0] + tr["translate"][0]
            a[:, 1] = a[:, 1] * tr["scale"][1] + tr["translate"][1]
        out.append(douglas_peucker(a, tol))
    return out


def topo_ring(indices: list[int], arcs: list[np.ndarray]) -> np.ndarray:
    """Stitch a ring from arc indices (``~i`` = arc ``i`` reversed), dropping the joints."""
    parts = []
    for k, idx in enumerate(indices):
        arc = arcs[idx] if idx >= 0 else arcs[~idx][::-1]
        parts.append(arc if k == 0 else arc[1:])
    return np.concatenate(parts) if parts else np.zeros((0, 2))


def topo_features(topo: dict, obj: str, tol: float, min_area: float) -> list[dict]:
    arcs = topo_arcs(topo, tol)
    feats = []
    for geom in topo["objects"][obj]["geometries"]:
        polys = []
        if geom["type"] == "Polygon":
            polys = [geom["arcs"]]
        elif geom["type"] == "MultiPolygon":
            polys = geom["arcs"]
        rings = []
        for poly in polys:
            for r, ring_idx in enumerate(poly):
                ring = topo_ring(ring_idx, arcs)
                if len(ring) >= 4 and ring_area(ring) >= min_area:
                    rings.append(ring)
        if not rings:
            continue
        name = (geom.get("properties") or {}).get("name", "")
        feats.append({"id": str(geom.get("id", name)), "name": name, "name_en": name, "rings": rings})
    return feats


# --------------------------------------------------------------------------- ECharts


def echarts_ring(encoded: str, offset: list[int], scale: float) -> np.ndarray:
    """ECharts 4 "UTF8Encoding": per char code - 64, zigzag, delta from ``offset``."""
    codes = np.frombuffer(encoded.encode("utf-32-le"), dtype=np.uint32).astype(np.int64) - 64
    z = (codes >> 1) ^ (-(codes & 1))
    xy = z.reshape(-1, 2)
    xy[0] += np.asarray(offset, dtype=np.int64)
    return np.cumsum(xy, axis=0).astype(np.float64) / scale


EN_PROVINCES = {
    "110000": "Beijing", "120000": "Tianjin", "130000": "Hebei", "140000": "Shanxi",
    "150000": "Inner Mongolia", "210000": "Liaoning", "220000": "Jilin",
    "230000": "Heilongjiang", "310000": "Shanghai", "320000": "Jiangsu",
    "330000": "Zhejiang", "340000": "Anhui", "350000": "Fujian", "360000": "Jiangxi",
    "370000": "Shandong", "410000": "Henan", "420000": "Hubei", "430000": "Hunan",
    "440000": "Guangdong", "450000": "Guangxi", "460000": "Hainan", "500000": "Chongqing",
    "510000": "Sichuan", "520000": "Guizhou", "530000": "Yunnan", "540000": "Tibet",
    "610000": "Shaanxi", "620000": "Gansu", "630000": "Qinghai", "640000": "Ningxia",
    "650000": "Xinjiang", "710000": "Taiwan", "810000": "Hong Kong", "820000": "Macao",
}


def echarts_features(gj: dict, tol: float, min_area: float) -> list[dict]:
    scale = float(gj.get("UTF8Scale") or 1024)
    feats = []
    for f in gj["features"]:
        geom = f["geometry"]
        coords, offs = geom["coordinates"], geom.get("encodeOffsets")
        polys = [coords] if geom["type"] == "Polygon" else coords
        poly_offs = [offs] if geom["type"] == "Polygon" else offs
        rings = []
        for poly, po in zip(polys, poly_offs):
            for ring, off in zip(poly, po):
                r = echarts_ring(ring, off, scale) if gj.get("UTF8Encoding") else np.asarray(ring, float)
                r = douglas_peucker(r, tol)
                if len(r) >= 4 and ring_area(r) >= min_area:
                    rings.append(r)
        if not rings:
            continue
        props = f.get("properties") or {}
        fid = str(props.get("id", f.get("id", "")))
        feat = {"id": fid, "name": props.get("name", ""), "name_en": EN_PROVINCES.get(fid, ""),
                "rings": rings}
        if props.get("cp"):
            feat["label"] = [round(float(props["cp"][0]), 3), round(float(props["cp"][1]), 3)]
        feats.append(feat)
    return feats


# --------------------------------------------------------------------------- output


def encode_ring(ring: np.ndarray) -> list[int]:
    q = np.round(ring * SCALE).astype(np.int64)
    keep = np.ones(len(q), dtype=bool)
    keep[1:] = np.any(q[1:] != q[:-1], axis=1)  # drop repeats after quantising
    q = q[keep]
    d = q.copy()
    d[1:] -= q[:-1]
    return d.ravel().tolist()


def encode_layer(feats: list[dict], source: str, licence: str) -> dict:
    out = []
    for f in feats:
        item = {"id": f["id"], "name": f["name"], "label": f.get("label") or label_point(f["rings"]),
                "rings": [encode_ring(r) for r in f["rings"]]}
        if f.get("name_en"):
            item["name_en"] = f["name_en"]
        out.append(item)
    return {"source": source, "licence": licence, "features": out}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", required=True, help="world-atlas countries-50m.json (TopoJSON)")
    ap.add_argument("--china", required=True, help="echarts 4 map/json/china.json")
    ap.add_argument("--out", required=True, help="output .json.gz")
    ap.add_argument("--world-tol", type=float, default=0.03, help="DP tolerance, degrees")
    ap.add_argument("--china-tol", type=float, default=0.01, help="DP tolerance, degrees")
    args = ap.parse_args(argv)

    world = json.loads(Path(args.world).read_text(encoding="utf-8"))
    china = json.loads(Path(args.china).read_text(encoding="utf-8"))
    countries = topo_features(world, "countries", args.world_tol, min_area=0.02)
    provinces = echarts_features(china, args.china_tol, min_area=0.002)
    doc = {
        "format": "wallboard-basemap",
        "version": 1,
        "scale": SCALE,
        "layers": {
            "countries": encode_layer(
                countries,
                "Natural Earth 1:50m Admin 0 countries v4.1.0 via npm world-atlas@2.0.2",
                "Natural Earth: public domain; world-atlas packaging: ISC (c) Michael Bostock",
            ),
            "provinces": encode_layer(
                provinces,
                "China provinces from npm echarts@4.9.0 map/json/china.json",
                "Apache-2.0 (Apache ECharts)",
            ),
        },
    }
    raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    Path(args.out).write_bytes(gzip.compress(raw, 9, mtime=0))
    pts = sum(len(r) // 2 for L in doc["layers"].values() for f in L["features"] for r in f["rings"])
    print(json.dumps({"countries": len(countries), "provinces": len(provinces), "points": pts,
                      "json_bytes": len(raw), "gz_bytes": Path(args.out).stat().st_size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
