"""Offline basemap geometry: the shipped compact file and the user's own GeoJSON.

Pure helper (numpy + stdlib, no Qt, no network). Call :func:`load_basemap` for the shipped
layers (``countries``: Natural Earth outlines, ``provinces``: China's provinces; see
``assets/README.md`` for sources and licences) and :func:`load_geojson` for a layer of the
user's own (city districts, or an officially approved provinces map that replaces ours).
Both return :class:`MapLayer` objects whose rings are ``(n, 2)`` float arrays of lon/lat;
the store map turns them into painter paths.

Bad files raise :class:`BasemapError` (file, where, what was expected). Bad features inside
an otherwise good GeoJSON are skipped, counted and described in ``MapLayer.errors`` --
nothing good is dropped with them.
"""
from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wallboard.resources import data_dir

ASSETS = data_dir("assets") / "basemap"
DEFAULT_BASEMAP = ASSETS / "basemap.json.gz"
#: Most features reported per layer; the rest are only counted.
MAX_REPORTED_ERRORS = 20


class BasemapError(ValueError):
    """A basemap file that cannot be used at all: ``file``, ``where`` (key path), ``expected``."""

    def __init__(self, file: str, where: str, expected: str):
        self.file, self.where, self.expected = file, where, expected
        super().__init__(f"{file}: {where}: expected {expected}")


@dataclass(frozen=True)
class MapFeature:
    """One named area: outer and inner rings as lon/lat arrays, a point for its label."""

    id: str
    name: str
    name_en: str
    label: tuple[float, float]
    rings: tuple[np.ndarray, ...]


@dataclass
class MapLayer:
    """A named set of features. ``errors`` describes skipped features (first few),
    ``skipped`` counts them all."""

    name: str
    features: list[MapFeature]
    source: str = ""
    licence: str = ""
    errors: list[str] = field(default_factory=list)
    skipped: int = 0

    def bbox(self) -> tuple[float, float, float, float] | None:
        """``(lon_min, lat_min, lon_max, lat_max)`` of all rings, None when empty."""
        rings = [r for f in self.features for r in f.rings]
        if not rings:
            return None
        allp = np.concatenate(rings)
        return (float(allp[:, 0].min()), float(allp[:, 1].min()),
                float(allp[:, 0].max()), float(allp[:, 1].max()))

    def point_count(self) -> int:
        return sum(len(r) for f in self.features for r in f.rings)


# --------------------------------------------------------------------------- compact file


def load_basemap(path: str | Path | None = None) -> dict[str, MapLayer]:
    """Read the compact basemap (``.json.gz`` or ``.json``) written by tools/make_basemap.py.

    Returns ``{layer name: MapLayer}`` (``countries``, ``provinces`` for the shipped file).
    Raises :class:`BasemapError` when the file is missing or not in that format.
    """
    p = Path(path) if path is not None else DEFAULT_BASEMAP
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise BasemapError(str(p), "file", f"a readable basemap file ({exc.strerror})") from None
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        doc = json.loads(raw)
    except (OSError, EOFError, ValueError) as exc:
        raise BasemapError(str(p), "file", f"gzip'd or plain JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != "wallboard-basemap":
        raise BasemapError(str(p), "format", '"wallboard-basemap" (see tools/make_basemap.py)')
    scale = doc.get("scale")
    if not isinstance(scale, (int, float)) or scale <= 0:
        raise BasemapError(str(p), "scale", "a positive number (units per degree)")
    layers = doc.get("layers")
    if not isinstance(layers, dict):
        raise BasemapError(str(p), "layers", "an object of layer name -> layer")
    out: dict[str, MapLayer] = {}
    for name, layer in layers.items():
        feats_in = layer.get("features") if isinstance(layer, dict) else None
        if not isinstance(feats_in, list):
            raise BasemapError(str(p), f"layers.{name}.features", "a list of features")
        ml = MapLayer(name, [], str(layer.get("source", "")), str(layer.get("licence", "")))
        for i, f in enumerate(feats_in):
            where = f"layers.{name}.features[{i}]"
            try:
                rings = []
                for enc in f["rings"]:
                    a = np.asarray(enc, dtype=np.float64).reshape(-1, 2)
                    rings.append(np.cumsum(a, axis=0) / float(scale))
                lab = f.get("label") or [float(rings[0][:, 0].mean()), float(rings[0][:, 1].mean())]
                ml.features.append(MapFeature(str(f.get("id", "")), str(f.get("name", "")),
                                              str(f.get("name_en", "")),
                                              (float(lab[0]), float(lab[1])), tuple(rings)))
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                _skip(ml, f"{p}: {where}: expected rings of [x0, y0, dx, dy, ...] ints ({exc})")
        out[name] = ml
    return out


# --------------------------------------------------------------------------- GeoJSON


def load_geojson(path: str | Path, name: str = "extra") -> MapLayer:
    """Read a GeoJSON file (FeatureCollection, Feature or bare geometry) as a layer.

    Polygon, MultiPolygon, LineString and MultiLineString are drawn (lines as open
    rings are kept as-is); points are skipped and counted. Feature names come from
    ``properties.name`` (``name_en`` when present). Coordinates are lon/lat (WGS 84).
    Raises :class:`BasemapError` when the file is unreadable or not GeoJSON.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_bytes())
    except OSError as exc:
        raise BasemapError(str(p), "file", f"a readable GeoJSON file ({exc.strerror})") from None
    except ValueError as exc:
        raise BasemapError(str(p), "file", f"JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise BasemapError(str(p), "type", "a GeoJSON object with a 'type'")
    if doc["type"] == "FeatureCollection":
        feats = doc.get("features")
        if not isinstance(feats, list):
            raise BasemapError(str(p), "features", "a list of Feature objects")
        items = [(f"features[{i}]", f) for i, f in enumerate(feats)]
    elif doc["type"] == "Feature":
        items = [("", doc)]
    else:
        items = [("", {"type": "Feature", "properties": {}, "geometry": doc})]
    layer = MapLayer(name, [], source=str(p), licence="user supplied")
    for where, f in items:
        try:
            layer.features.append(_feature(f, where))
        except _Bad as exc:
            _skip(layer, f"{p}: {exc.where}: expected {exc.expected}")
    return layer


class _Bad(Exception):
    def __init__(self, where: str, expected: str):
        self.where, self.expected = where, expected


def _join(base: str, part: str) -> str:
    return f"{base}.{part}" if base else part


def _ring(coords, where: str) -> np.ndarray:
    if not isinstance(coords, list) or len(coords) < 2:
        raise _Bad(where, "a list of at least 2 [lon, lat] positions")
    out = np.empty((len(coords), 2), dtype=np.float64)
    for i, pos in enumerate(coords):
        if (not isinstance(pos, list) or len(pos) < 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pos[:2])):
            raise _Bad(f"{where}[{i}]", "[lon, lat] numbers")
        lon, lat = float(pos[0]), float(pos[1])
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0) or math.isnan(lon + lat):
            raise _Bad(f"{where}[{i}]", "lon in -180..180 and lat in -90..90 (WGS 84 degrees)")
        out[i] = (lon, lat)
    return out


def _feature(f, where: str) -> MapFeature:
    if not isinstance(f, dict) or f.get("type") != "Feature":
        raise _Bad(where or "(root)", 'an object with "type": "Feature"')
    geom = f.get("geometry")
    gw = _join(where, "geometry")
    if not isinstance(geom, dict):
        raise _Bad(gw, "a geometry object")
    gtype, coords = geom.get("type"), geom.get("coordinates")
    cw = _join(gw, "coordinates")
    if not isinstance(coords, list):
        raise _Bad(cw, f"a coordinates list for {gtype!r}")
    if gtype == "Polygon":
        rings = [_ring(r, f"{cw}[{i}]") for i, r in enumerate(coords)]
    elif gtype == "MultiPolygon":
        rings = [_ring(r, f"{cw}[{i}][{j}]") for i, poly in enumerate(coords)
                 for j, r in enumerate(poly if isinstance(poly, list) else [None])]
    elif gtype == "LineString":
        rings = [_ring(coords, cw)]
    elif gtype == "MultiLineString":
        rings = [_ring(r, f"{cw}[{i}]") for i, r in enumerate(coords)]
    else:
        raise _Bad(_join(gw, "type"), "Polygon, MultiPolygon, LineString or MultiLineString "
                   f"(got {gtype!r})")
    if not rings:
        raise _Bad(cw, "at least one ring")
    props = f.get("properties") if isinstance(f.get("properties"), dict) else {}
    name = str(props.get("name", "") or "")
    big = max(rings, key=len)
    return MapFeature(str(f.get("id", props.get("id", "")) or ""), name,
                      str(props.get("name_en", "") or ""),
                      (float(big[:, 0].mean()), float(big[:, 1].mean())), tuple(rings))


def _skip(layer: MapLayer, message: str) -> None:
    layer.skipped += 1
    if len(layer.errors) < MAX_REPORTED_ERRORS:
        layer.errors.append(message)


__all__ = ["BasemapError", "MapFeature", "MapLayer", "load_basemap", "load_geojson",
           "DEFAULT_BASEMAP"]
