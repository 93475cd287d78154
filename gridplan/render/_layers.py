"""The plan's layers as compact, escaped GeoJSON for the interactive map.

Every layer is simplified in metres (in the plan's metric CRS), reprojected to WGS84, shifted to the
basemap's datum (GCJ-02 for Amap) and rounded to 6 decimals (≈0.1 m). Every text that comes from a
ledger or roster is HTML-escaped here: folium's tooltips, popups and leaflet-search insert
properties as HTML.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any, cast

import folium
import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from ..coords import shift_for_tiles
from ..lv.groups import groups_layer
from .popups import esc, number, popup_html

log = logging.getLogger(__name__)

#: Grid fills: a qualitative palette (Tableau 10); neighbours get different colours.
GRID_PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
                "#ff9da7", "#9c755f", "#bab0ac")
#: Feeder segments: darker qualitative colours (ColorBrewer Dark2), readable over grid fills.
SEGMENT_PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
                   "#1f78b4")
#: Households shown by the smallest and largest 台区 circle (radius in pixels, sqrt scale).
RADIUS_MIN, RADIUS_MAX, RADIUS_REF = 2.0, 8.0, 400.0  # small enough to read a whole county
#: 10 kV segments: dark line colours drawn over a white casing, unlike any grid fill.
SEGMENT_LINE = ("#1a1a1a", "#8b1a1a", "#0b3d91", "#5b2a86", "#0f5e2e", "#7a4a00")

def _col(gdf: pd.DataFrame, name: str, default: Any = None) -> pd.Series:
    """Column ``name`` or a column of ``default``."""
    if name in gdf.columns:
        return gdf[name]
    return pd.Series([default] * len(gdf), index=gdf.index, dtype=object)


def to_display(gdf: gpd.GeoDataFrame, *, basemap: str, simplify_m: float = 0.0) -> gpd.GeoSeries:
    """Geometry of ``gdf`` simplified in metres, in WGS84 (shifted for ``basemap``), rounded."""
    geom = gdf.geometry
    if simplify_m > 0 and gdf.crs is not None and gdf.crs.is_projected:
        geom = geom.simplify(simplify_m, preserve_topology=True)
    shown = gpd.GeoDataFrame(geometry=geom, crs=gdf.crs)
    if shown.crs is None:
        shown = shown.set_crs(4326)
    shown = shift_for_tiles(shown.to_crs(4326), basemap)
    return gpd.GeoSeries(shapely.transform(shown.geometry.values, lambda c: np.round(c, 6)),
                         index=gdf.index, crs=4326)


def feature_collection(geoms: gpd.GeoSeries, props: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection dict (empty geometries are skipped)."""
    feats = []
    for geom, prop in zip(geoms.values, props):
        if geom is None or geom.is_empty:
            continue
        feats.append({"type": "Feature", "properties": prop,
                      "geometry": shapely.geometry.mapping(geom)})
    return {"type": "FeatureCollection", "features": feats}


def greedy_colours(gdf: gpd.GeoDataFrame, *, distance_m: float = 1.0) -> list[int]:
    """Colour index per row so that touching rows (within ``distance_m``) differ.

    Greedy colouring of the adjacency graph in smallest-last order (at most 6 colours on a
    planar graph such as a partition into polygons); deterministic for the same rows.
    """
    n = len(gdf)
    g = nx.Graph()
    g.add_nodes_from(range(n))
    if n > 1:
        geoms = gdf.geometry.reset_index(drop=True)
        left, right = geoms.sindex.query(geoms.values, predicate="dwithin", distance=distance_m)
        g.add_edges_from((int(a), int(b)) for a, b in zip(left, right) if a < b)
    colours = nx.greedy_color(g, strategy="smallest_last")
    return [colours[i] for i in range(n)]


def _geojson(data: dict, *, name: str, marker: folium.CircleMarker | None = None,
             **kwargs: Any) -> folium.GeoJson:
    return folium.GeoJson(data, name=name, control=False, marker=marker, **kwargs)


def township_layer(townships: gpd.GeoDataFrame, *, basemap: str, simplify_m: float) -> folium.FeatureGroup:
    """乡镇: township outlines (dashed, not clickable so the grids below stay clickable)."""
    fg = folium.FeatureGroup(name="乡镇", show=True)
    shown = to_display(townships, basemap=basemap, simplify_m=simplify_m)
    style = {"color": "#333333", "weight": 2.5, "dashArray": "8 5", "fill": False}
    props = [{"name": esc(n), "style": style} for n in _col(townships, "name")]
    data = feature_collection(shown.boundary, props)
    if data["features"]:
        _geojson(data, name="乡镇", interactive=False).add_to(fg)
    return fg


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts (attributes only; fast, unlike iterrows)."""
    return df.drop(columns=df.geometry.name).to_dict("records")


def grid_fills(grids: gpd.GeoDataFrame) -> dict[str, str]:
    """Fill colour per ``grid_id``: neighbouring grids get different palette colours."""
    if len(grids) == 0 or "grid_id" not in grids.columns:
        return {}
    grids = grids.sort_values("grid_id")
    colours = greedy_colours(grids)
    if max(colours) >= len(GRID_PALETTE):
        log.warning("%d colours needed for the grids; some neighbours may share one", max(colours) + 1)
    return {g: GRID_PALETTE[c % len(GRID_PALETTE)] for g, c in zip(grids["grid_id"], colours)}


def grid_properties(grids: gpd.GeoDataFrame, fills: dict[str, str]) -> list[dict[str, Any]]:
    """Popup/tooltip/search properties of every grid (strings escaped)."""
    out = []
    placeholder = _col(grids, "placeholder", False).fillna(False).astype(bool).to_numpy()
    for i, row in enumerate(_records(grids)):
        name = esc(row.get("manager_name"))
        if placeholder[i]:
            name = f"{name}（占位，待指定）" if name else "待指定"
        fill = fills.get(cast(str, row.get("grid_id")), "#888888")
        out.append({
            "grid_id": esc(row.get("grid_id")),
            "manager": name,
            "manager_id": esc(row.get("manager_id")),
            "phone": esc(row.get("phone")),
            "customers": number(row.get("customers"), 0),
            "n_transformers": number(row.get("n_transformers"), 0),
            "hv_km": number(row.get("hv_km"), 2),
            "balance": number(row.get("balance"), 2),
            "townships": esc(row.get("townships")),
            "villages": esc(row.get("villages")),
            "flags": esc(row.get("flags")),
            "search": " ".join(filter(None, (esc(row.get("grid_id")), name,
                                             esc(row.get("manager_id")), esc(row.get("phone"))))),
            "style": {"color": "#555555", "weight": 1.2, "fillColor": fill, "fillOpacity": 0.45},
        })
    return out


def grid_layer(grids: gpd.GeoDataFrame, fills: dict[str, str], *, basemap: str,
               simplify_m: float) -> tuple[folium.FeatureGroup, folium.GeoJson | None]:
    """服务网格: grid polygons, neighbours in different colours, popup with the manager."""
    fg = folium.FeatureGroup(name="服务网格", show=True)
    if len(grids) == 0:
        return fg, None
    grids = grids.sort_values("grid_id") if "grid_id" in grids.columns else grids
    data = feature_collection(to_display(grids, basemap=basemap, simplify_m=simplify_m),
                              grid_properties(grids, fills))
    gj = _geojson(data, name="服务网格")
    # popup: bound by the page script from GRID_FIELDS (rows with a value only)
    folium.GeoJsonTooltip(fields=["grid_id", "manager"], aliases=["网格", "台区经理"],
                          sticky=True).add_to(gj)
    gj.add_to(fg)
    return fg, gj


def radius(customers: pd.Series) -> np.ndarray:
    """台区 circle radius in pixels: area proportional to households, clipped."""
    c = pd.to_numeric(customers, errors="coerce").fillna(0).clip(lower=0).to_numpy(float)
    r = RADIUS_MIN + (RADIUS_MAX - RADIUS_MIN) * np.sqrt(c / RADIUS_REF)
    return np.round(np.clip(r, RADIUS_MIN, RADIUS_MAX), 1)


#: Outline of a 台区 that lies in no township polygon and was put in the nearest one (snapped).
SNAPPED_STYLE = {"color": "#d62728", "weight": 2.5, "dashArray": "3 2"}


def transformer_layer(tr: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, fills: dict[str, str], *,
                      basemap: str) -> tuple[folium.FeatureGroup, folium.GeoJson | None]:
    """台区: canvas circle markers sized by households, filled with their grid's colour."""
    fg = folium.FeatureGroup(name="台区", show=True)
    if len(tr) == 0:
        return fg, None
    names, phones = {}, {}
    if "manager_id" in grids.columns and "manager_name" in grids.columns:
        names = dict(zip(grids["manager_id"], grids["manager_name"]))
    if "manager_id" in grids.columns and "phone" in grids.columns:
        phones = dict(zip(grids["manager_id"], grids["phone"]))
    tr = tr.sort_values("transformer_id") if "transformer_id" in tr.columns else tr
    radii = radius(_col(tr, "customers", 0))
    props = []
    for i, row in enumerate(_records(tr)):
        manager = esc(names.get(row.get("manager_id"), row.get("manager_id")))
        name = esc(row.get("name"))
        props.append({
            "id": esc(row.get("transformer_id")),
            "name": name,
            "capacity": number(row.get("capacity_kva"), 0),
            "customers": number(row.get("customers"), 0),
            "feeder": esc(row.get("feeder_id")),
            "grid": esc(row.get("grid_id")),
            "manager": manager,
            "snapped": esc(row.get("snapped")),  # 已归入 <乡镇>，距边界 N 米 (outside every polygon)
            "phone": esc(phones.get(row.get("manager_id"))),
            "search": " ".join(filter(None, (name, esc(row.get("transformer_id")), manager,
                                             esc(phones.get(row.get("manager_id")))))),
            "style": {"radius": float(radii[i]),
                      "fillColor": fills.get(cast(str, row.get("grid_id")), "#888888"),
                      **(SNAPPED_STYLE if isinstance(row.get("snapped"), str)
                         and row.get("snapped") else {})},
        })
    data = feature_collection(to_display(tr, basemap=basemap), props)
    marker = folium.CircleMarker(radius=4, weight=1, color="#222222", fill=True,
                                 fill_opacity=0.9)
    gj = _geojson(data, name="台区", marker=marker)
    # popup: bound by the page script from TR_FIELDS (rows with a value only)
    folium.GeoJsonTooltip(fields=["name"], labels=False).add_to(gj)
    gj.add_to(fg)
    return fg, gj


def feeder_layer(segments: gpd.GeoDataFrame | None, feeders: gpd.GeoDataFrame | None, *,
                 basemap: str, simplify_m: float,
                 owners: dict[str, tuple[Any, Any]] | None = None) -> folium.FeatureGroup | None:
    """10kV线路: feeders by segment (dark lines on a white casing; plain grey without segments).

    ``owners`` maps ``manager_id`` to (name, phone): a segment's tooltip names its owner.
    """
    owners = owners or {}
    casing = None
    if segments is not None and len(segments):
        segs = segments.sort_values("segment_id") if "segment_id" in segments.columns else segments
        colours = greedy_colours(segs)
        props = []
        for i, row in enumerate(_records(segs)):
            name, phone = owners.get(cast(str, row.get("manager_id")), (None, None))
            tip = popup_html([("分段", row.get("segment_id")), ("线路", row.get("feeder_id")),
                              ("负责人", name if esc(name) else row.get("manager_id")),
                              ("电话", phone),
                              ("长度", _unit(number(row.get("length_km"), 2), " km")),
                              ("台区数", number(row.get("transformers"), 0)),
                              ("网格", row.get("grid_id"))])
            props.append({
                "segment": esc(row.get("segment_id")), "feeder": esc(row.get("feeder_id")),
                "km": number(row.get("length_km"), 2), "n": number(row.get("transformers"), 0),
                "grid": esc(row.get("grid_id")), "manager_id": esc(row.get("manager_id")),
                "owner": esc(name), "phone": esc(phone), "tip": tip,
                "style": {"color": SEGMENT_LINE[colours[i] % len(SEGMENT_LINE)],
                          "weight": 3, "opacity": 1, "lineCap": "butt"},
            })
        shown = to_display(segs, basemap=basemap, simplify_m=simplify_m)
        data = feature_collection(shown, props)
        casing = feature_collection(shown, [{"style": {"color": "#ffffff", "weight": 6,
                                                       "opacity": 0.9}}] * len(segs))
    elif feeders is not None and len(feeders):
        props = [{"feeder": esc(f), "name": esc(n),
                  "tip": popup_html([("线路", f), ("名称", n)]),
                  "style": {"color": "#555555", "weight": 2.5, "opacity": 0.9}}
                 for f, n in zip(_col(feeders, "feeder_id"), _col(feeders, "name"))]
        data = feature_collection(to_display(feeders, basemap=basemap, simplify_m=simplify_m), props)
    else:
        return None
    fg = folium.FeatureGroup(name="10kV线路", show=True)
    if data["features"]:
        if casing is not None:
            _geojson(casing, name="10kV线路底衬", interactive=False).add_to(fg)
        gj = _geojson(data, name="10kV线路")
        folium.GeoJsonTooltip(fields=["tip"], labels=False, sticky=True).add_to(gj)
        gj.add_to(fg)
    return fg


def _unit(value: float | None, unit: str) -> str:
    return "" if value is None else f"{value:g}{unit}"


def village_layer(villages: gpd.GeoDataFrame | None, *, basemap: str,
                  simplify_m: float) -> folium.FeatureGroup | None:
    """村: village outlines (thin, dotted, not clickable); their names are page-script labels."""
    if villages is None or len(villages) == 0:
        return None
    polys = villages[villages.geom_type.isin(["Polygon", "MultiPolygon"])]
    if len(polys) == 0:
        return None
    fg = folium.FeatureGroup(name="村", show=True)
    style = {"color": "#6d6d6d", "weight": 1, "dashArray": "2 4", "fill": False}
    data = feature_collection(to_display(polys, basemap=basemap, simplify_m=simplify_m).boundary,
                              [{"style": style}] * len(polys))
    if data["features"]:
        _geojson(data, name="村", interactive=False).add_to(fg)
    return fg


def label_points(gdf: gpd.GeoDataFrame, *, basemap: str, inscribed: bool = False
                 ) -> list[tuple[float, float, float]]:
    """(lat, lon, radius_m) of a label point inside each polygon (WGS84, shifted for tiles).

    With ``inscribed`` the point is the pole of inaccessibility of the largest part and
    ``radius_m`` its distance to the boundary (how much room a label has); otherwise a point on
    the surface (fast) and radius 0.
    """
    from shapely.ops import polylabel

    if len(gdf) == 0:
        return []
    geoms = gdf.geometry.values

    def anchor(g: Any) -> shapely.Point:
        if g is None or g.is_empty:
            return shapely.Point()
        part = max(g.geoms, key=lambda p: p.area) if g.geom_type == "MultiPolygon" else g
        try:  # a coarse pole of inaccessibility: a label point, not a survey
            return polylabel(part, tolerance=max(math.sqrt(part.area) / 40.0, 1.0))
        except (ValueError, shapely.errors.GEOSException):
            return part.representative_point()

    if inscribed:
        pts = [anchor(g) for g in geoms]
        radii = [float(g.boundary.distance(p)) if not p.is_empty else 0.0
                 for g, p in zip(geoms, pts)]
    else:
        pts = list(shapely.point_on_surface(geoms))
        radii = [0.0] * len(pts)
    shown = to_display(gpd.GeoDataFrame(geometry=pts, crs=gdf.crs), basemap=basemap)
    return [(float(p.y), float(p.x), round(r, 1)) if not p.is_empty else (math.nan, math.nan, 0.0)
            for p, r in zip(shown.values, radii)]


def switch_layer(switches: gpd.GeoDataFrame | None, *, basemap: str) -> folium.FeatureGroup | None:
    """开关: normally-open switches as red rings, closed ones as small dark dots."""
    if switches is None or len(switches) == 0:
        return None
    is_open = _col(switches, "normally_open", False).fillna(False).astype(bool)
    props = []
    for sid, op in zip(_col(switches, "switch_id"), is_open):
        style = ({"radius": 5, "color": "#d62728", "weight": 2.5, "fillColor": "#ffffff"} if op
                 else {"radius": 3, "color": "#222222", "weight": 1, "fillColor": "#222222"})
        state = "常开（联络）" if op else "常闭"
        props.append({"id": esc(sid), "state": state, "style": style,
                      "tip": popup_html([("开关", sid), ("状态", state)])})
    fg = folium.FeatureGroup(name="开关", show=True)
    data = feature_collection(to_display(switches, basemap=basemap), props)
    gj = _geojson(data, name="开关", marker=folium.CircleMarker(radius=3, fill=True, fill_opacity=1))
    folium.GeoJsonTooltip(fields=["tip"], labels=False).add_to(gj)
    gj.add_to(fg)
    return fg


STATION_ICON = ('<div style="width:22px;height:22px;line-height:20px;text-align:center;'
                'font-size:13px;font-weight:bold;color:#fff;background:{bg};border:1px solid #fff;'
                'border-radius:{br};box-shadow:0 0 3px #000">{ch}</div>')


def station_layer(stations: gpd.GeoDataFrame, *, basemap: str) -> folium.FeatureGroup:
    """供电所: stations (red squares "所") and service points (orange circles "站")."""
    fg = folium.FeatureGroup(name="供电所", show=True)
    if len(stations) == 0:
        return fg
    shown = to_display(stations, basemap=basemap)
    for (_, row), geom in zip(stations.iterrows(), shown.values):
        if geom is None or geom.is_empty:
            continue
        pt = geom if geom.geom_type == "Point" else geom.representative_point()
        kind = str(row.get("kind") or "供电所")
        service = "服务站" in kind
        icon = folium.DivIcon(html=STATION_ICON.format(bg="#f28e2b" if service else "#c0392b",
                                                       br="50%" if service else "3px",
                                                       ch="站" if service else "所"),
                              icon_size=(22, 22), icon_anchor=(11, 11))
        tip = popup_html([("类型", kind)], title=row.get("name"))
        folium.Marker([pt.y, pt.x], icon=icon, tooltip=folium.Tooltip(tip)).add_to(fg)
    return fg


#: Service-group outlines (#16 part 6): thick, dark, drawn over the grid fills.
GROUP_STYLE = {"color": "#222222", "weight": 4.5, "opacity": 0.85, "fill": False}
GROUP_LABEL = ('<div style="white-space:nowrap;font-size:12px;font-weight:bold;color:#222;'
               'background:rgba(255,255,255,0.8);border:1px solid #222;border-radius:3px;'
               'padding:1px 4px;transform:translate(-50%,-50%);display:inline-block">{text}</div>')


def group_layer(grids: gpd.GeoDataFrame, *, basemap: str,
                simplify_m: float) -> folium.FeatureGroup | None:
    """服务小组: each service group's outline (thick) and its name and leader as a label.

    None when the grids carry no ``group_id`` (no ``groups_per_station`` / ``grids_per_group``).
    Names are escaped; the outlines are not clickable, so the grids below stay clickable.
    """
    if len(grids) == 0 or "group_id" not in grids.columns:
        return None
    groups = groups_layer(grids)
    fg = folium.FeatureGroup(name="服务小组", show=True)
    data = feature_collection(to_display(groups, basemap=basemap, simplify_m=simplify_m).boundary,
                              [{"name": esc(n), "style": GROUP_STYLE} for n in groups["group_name"]])
    if data["features"]:
        _geojson(data, name="服务小组", interactive=False).add_to(fg)
    for (lat, lon, _), row in zip(label_points(groups, basemap=basemap, inscribed=True),
                                  groups.itertuples(index=False)):
        if math.isnan(lat):
            continue
        name, leader = esc(row.group_name), esc(row.leader)
        text = name + (f"<br>组长：{leader}" if leader else "")
        tip = popup_html([("组长", row.leader), ("电话", row.leader_phone), ("网格", row.grids),
                          ("户数", row.customers), ("工作量与均值之比", row.balance)],
                         title=row.group_name)
        folium.Marker([lat, lon], icon=folium.DivIcon(html=GROUP_LABEL.format(text=text),
                                                      icon_size=(0, 0), icon_anchor=(0, 0)),
                      tooltip=folium.Tooltip(tip)).add_to(fg)
    return fg
