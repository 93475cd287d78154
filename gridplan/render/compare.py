"""Pages of a station-merge scenario: the before | after map and the HTML reports (Chinese, offline).

``compare.html`` holds two Leaflet maps side by side whose panning and zooming are synced; grids
whose station, manager or shape changed are outlined in red on the after map (and the grids of the
merged stations on the before map); 台区 beyond their response commitment are red dots. Leaflet is
embedded from the vendored npm package (:mod:`gridplan.render.assets`), like ``map.html``, unless
``cdn=True``. Every text from a ledger or roster is HTML-escaped.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from . import _controls, assets
from ._layers import GRID_PALETTE, esc, feature_collection, greedy_colours, to_display

if TYPE_CHECKING:
    from ..plan import Plan
    from ..scenarios import Scenario

__all__ = ["candidates_html", "compare_map_html", "report_html"]

log = logging.getLogger(__name__)

SIMPLIFY_M = 5.0
_LEAFLET_JS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/leaflet.js"
_LEAFLET_CSS = "https://cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/leaflet.css"
_TILES = {
    "osm": ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "&copy; OpenStreetMap", ""),
    "amap": (("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
              "&x={x}&y={y}&z={z}"), "&copy; 高德地图 AutoNavi", "1234"),
}
_CHANGED = "#d62728"

_STYLE = """
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; margin: 0;
       color: #222; }
.wrap { max-width: 1100px; margin: 0 auto; padding: 16px 24px 40px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #ddebf7; } td.t, th.t { text-align: left; }
.flag { color: #b00020; font-weight: bold; } .ok { color: #1b7f3b; }
.up { color: #b00020; } .down { color: #1b7f3b; }
.small { color: #666; font-size: 12px; }
"""


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{_STYLE}</style></head>"
            f"<body><div class=\"wrap\">{body}</div></body></html>\n")


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return "是" if v else "否"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):,.0f}" if float(v).is_integer() else f"{float(v):,.3g}" \
            if abs(float(v)) < 1 else f"{float(v):,.1f}"
    return esc(v)


def _table(df: pd.DataFrame, headers: dict[str, str], *, text_cols: tuple[str, ...] = ()) -> str:
    cols = [c for c in headers if c in df.columns]
    head = "".join(f"<th class=\"{'t' if c in text_cols else ''}\">{esc(headers[c])}</th>" for c in cols)
    rows = []
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            val = r[c]
            cls = "t" if c in text_cols else ""
            if c == "change" and isinstance(val, (int, float, np.number)) and pd.notna(val) and val != 0:
                cls = "up" if val > 0 else "down"
                cells.append(f"<td class=\"{cls}\">{'+' if val > 0 else ''}{_fmt(val)}</td>")
                continue
            cells.append(f"<td class=\"{cls}\">{_fmt(val)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


# --------------------------------------------------------------------------- report

def report_html(sc: Scenario, *, with_map: bool = True, max_rows: int = 300) -> str:
    """The merge report (Chinese, self-contained): notes, comparison, 台区 beyond commitment."""
    county = sc.before.plan.county
    title = f"{county.name} 供电所合并方案评估"
    parts = [f"<h1>{esc(title)}</h1>"]
    verdict = ("<p class=\"flag\">⚠ 该方案使部分台区超出抢修到达承诺时间，见下表。</p>"
               if sc.breaks_commitment else "<p class=\"ok\">✔ 该方案未使任何台区新增超出抢修到达承诺时间。</p>")
    parts.append(verdict)
    parts.append("<ul>" + "".join(
        f"<li class=\"{'flag' if n.startswith('⚠') else ''}\">{esc(n)}</li>" for n in sc.notes) + "</ul>")
    if with_map:
        parts.append("<p><a href=\"compare.html\">合并前后对比地图（左：合并前，右：合并后）</a> · "
                     "<a href=\"before/map.html\">合并前规划图</a> · <a href=\"after/map.html\">合并后规划图</a></p>")
    parts.append("<h2>合并前后对比</h2>")
    for scope, grp in sc.comparison.groupby("scope", sort=False):
        parts.append(f"<h3>{esc(scope)}</h3>")
        parts.append(_table(grp, {"label": "指标", "before": "合并前", "after": "合并后", "change": "变化"},
                            text_cols=("label",)))
    b = sc.beyond
    parts.append(f"<h2>合并后超出承诺时间的台区（{len(b)} 个）</h2>")
    if len(b):
        shown = b.head(max_rows)
        parts.append(_table(shown, {"transformer_id": "台区编号", "name": "台区名称", "township_id": "乡镇",
                                    "customers": "户数", "area_class": "区域类别", "commitment": "承诺（分钟）",
                                    "point_name": "最近网点", "minutes": "合并后（分钟）",
                                    "minutes_before": "合并前（分钟）", "new": "合并造成"},
                            text_cols=("transformer_id", "name", "township_id", "area_class", "point_name")))
        if len(b) > max_rows:
            parts.append(f"<p class=\"small\">仅列出前 {max_rows} 个，完整清单见 beyond.csv。</p>")
    else:
        parts.append("<p class=\"ok\">无。</p>")
    parts.append(f"<h2>变动的网格（{len(sc.changed_grids)} 个）</h2>"
                 f"<p>{esc('、'.join(sc.changed_grids)) or '无'}</p>")
    prm = sc.after.plan.params
    parts.append(f"<p class=\"small\">抢修到达时间：{'沿道路网' if county.roads is not None else '直线距离'}"
                 f" × 绕行系数 {prm.detour_factor:g}，车速 {prm.speed_kmh:g} km/h；承诺时间："
                 + esc("，".join(f"{k} {v:g} 分钟" for k, v in prm.commitments.items())) + "。</p>")
    return _page(title, "".join(parts))


def candidates_html(df: pd.DataFrame, *, county_name: str = "", params: Any = None) -> str:
    """The ranked merge candidates as a short report (Chinese, self-contained)."""
    from .._compare import CANDIDATE_HEADERS

    title = f"{county_name} 相邻供电所合并候选方案".strip()
    ok = int(df["keeps_commitment"].sum()) if len(df) else 0
    parts = [f"<h1>{esc(title)}</h1>",
             f"<p>共评估 {len(df)} 对相邻供电所，其中 {ok} 对合并后所有台区仍在抢修到达承诺时间内。</p>",
             ("<p class=\"small\">排序：先列满足抢修承诺的方案；再按节省的台区经理（网格减少数）、补足的缺员、"
              "合并后名册富余人数从多到少；最后按合并后网格工作量变异系数从小到大。保留户数较多的供电所。</p>")]
    cols = ["rank", "verdict", "into_name", "absorbed_name", "households", "managers_saved",
            "shortage_covered", "surplus_after", "cv_after", "p95_before", "p95_after", "new_beyond",
            "new_beyond_ids", "changing_manager"]
    headers = {c: CANDIDATE_HEADERS[c] for c in cols}
    parts.append(_table(df, headers, text_cols=("verdict", "into_name", "absorbed_name", "new_beyond_ids")))
    if params is not None:
        parts.append(f"<p class=\"small\">车速 {params.speed_kmh:g} km/h，绕行系数 {params.detour_factor:g}；"
                     "完整数据见 candidates.csv / candidates.xlsx。</p>")
    return _page(title, "".join(parts))


# --------------------------------------------------------------------------- the side-by-side map

def _grid_data(p: Plan, highlight: set[str], *, basemap: str) -> dict[str, Any]:
    grids = p.grids.sort_values("grid_id").reset_index(drop=True)
    if len(grids) == 0:
        return {"type": "FeatureCollection", "features": []}
    colours = greedy_colours(grids)
    names = p.county.stations.set_index(p.county.stations["station_id"].astype(str))["name"]
    props = []
    for i, r in grids.iterrows():
        hit = str(r["grid_id"]) in highlight
        tip = (f"<b>{esc(r['grid_id'])}</b><br>供电所：{esc(names.get(str(r['station_id']), r['station_id']))}"
               f"<br>台区经理：{esc(r.get('manager_name'))}<br>户数：{esc(r.get('customers'))}"
               + ("<br><b>（有变动）</b>" if hit else ""))
        props.append({"tip": tip, "fill": GRID_PALETTE[colours[i] % len(GRID_PALETTE)], "hit": hit})
    return feature_collection(to_display(grids, basemap=basemap, simplify_m=SIMPLIFY_M), props)


def _point_data(gdf: gpd.GeoDataFrame, tips: list[str], *, basemap: str) -> dict[str, Any]:
    if len(gdf) == 0:
        return {"type": "FeatureCollection", "features": []}
    return feature_collection(to_display(gdf, basemap=basemap), [{"tip": t} for t in tips])


def _side(p: Plan, rt: pd.DataFrame, highlight: set[str], *, basemap: str) -> dict[str, Any]:
    st = p.county.stations
    st_tips = [f"<b>{esc(r['name'])}</b>（{esc(r.get('kind'))}）<br>{esc(r['station_id'])}"
               for _, r in st.iterrows()]
    tr = p.transformers
    beyond_ids = set(rt.loc[rt["beyond"], "transformer_id"])
    far = tr[tr["transformer_id"].astype(str).isin(beyond_ids)]
    mins = rt.set_index("transformer_id")
    far_tips = [f"<b>{esc(r['transformer_id'])} {esc(r.get('name'))}</b><br>抢修到达 "
                f"{mins.at[str(r['transformer_id']), 'minutes']:.0f} 分钟（承诺 "
                f"{mins.at[str(r['transformer_id']), 'commitment']:g} 分钟）" for _, r in far.iterrows()]
    return {"grids": _grid_data(p, highlight, basemap=basemap),
            "stations": _point_data(st, st_tips, basemap=basemap),
            "beyond": _point_data(far, far_tips, basemap=basemap)}


_MAP_TEMPLATE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<link rel="stylesheet" href="__CSS__"/>
<script src="__JS__"></script>
<style>
html, body { height: 100%; margin: 0; font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }
#bar { height: 34px; line-height: 34px; padding: 0 10px; background: #f4f2ec; font-size: 14px; }
#maps { display: flex; height: calc(100% - 34px); }
.pane { flex: 1; position: relative; border-left: 2px solid #888; }
.pane .map { position: absolute; inset: 0; background: #f4f2ec; }
.label { position: absolute; top: 8px; left: 50px; z-index: 1000; background: #fff; padding: 3px 8px;
         border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,.4); font-weight: bold; }
</style></head><body>
<div id="bar">__HEADER__</div>
<div id="maps"><div class="pane"><div id="mapA" class="map"></div><div class="label">合并前</div></div>
<div class="pane"><div id="mapB" class="map"></div><div class="label">合并后</div></div></div>
<script>
var DATA = __DATA__;
var TILES = __TILES__;
function build(id, side) {
  var m = L.map(id, {preferCanvas: true, zoomControl: true});
  if (TILES) { L.tileLayer(TILES.url, {attribution: TILES.attr, subdomains: TILES.sub || "abc",
                                       maxZoom: 18}).addTo(m); }
  var g = L.geoJSON(side.grids, {style: function (f) {
      var p = f.properties;
      return {color: p.hit ? "__RED__" : "#555", weight: p.hit ? 3.5 : 1, fillColor: p.fill,
              fillOpacity: 0.45};
    }, onEachFeature: function (f, l) { l.bindTooltip(f.properties.tip, {sticky: true}); }}).addTo(m);
  L.geoJSON(side.beyond, {pointToLayer: function (f, ll) {
      return L.circleMarker(ll, {radius: 4, color: "__RED__", fillColor: "__RED__", fillOpacity: 0.9,
                                 weight: 1}); },
    onEachFeature: function (f, l) { l.bindTooltip(f.properties.tip); }}).addTo(m);
  L.geoJSON(side.stations, {pointToLayer: function (f, ll) {
      return L.circleMarker(ll, {radius: 8, color: "#000", fillColor: "#ffd700", fillOpacity: 1,
                                 weight: 2}); },
    onEachFeature: function (f, l) { l.bindTooltip(f.properties.tip); }}).addTo(m);
  L.control.scale({imperial: false}).addTo(m);
  var b = g.getBounds();
  if (b.isValid()) { m.fitBounds(b); } else { m.setView([0, 0], 2); }
  return m;
}
var A = build("mapA", DATA.before), B = build("mapB", DATA.after), syncing = false;
function link(a, b) {
  a.on("move zoomend", function () {
    if (syncing) { return; }
    syncing = true; b.setView(a.getCenter(), a.getZoom(), {animate: false}); syncing = false;
  });
}
link(A, B); link(B, A);
</script></body></html>
"""


def compare_map_html(sc: Scenario, *, basemap: str | None = "osm", cdn: bool | None = None) -> str:
    """The side-by-side page: before | after, synced panning, changed grids outlined in red.

    Parameters
    ----------
    sc
        The scenario.
    basemap
        ``osm``, ``amap`` (data shifted to GCJ-02), ``tianditu`` (needs ``params.tianditu_key``) or
        ``none`` (no tiles).
    cdn
        Link Leaflet from a CDN instead of embedding it (default: ``not params.offline_assets``).

    Returns
    -------
    str
        The complete HTML page.
    """
    params = sc.after.plan.params
    base = _controls.normalise_basemap(basemap)
    if cdn is None:
        cdn = not getattr(params, "offline_assets", True)
    tiles = None
    if base in _TILES:
        url, attr, sub = _TILES[base]
        tiles = {"url": url, "attr": attr, "sub": sub}
    elif base == "tianditu":
        key = getattr(params, "tianditu_key", None)
        if not key:
            from .._errors import Problems

            p = Problems()
            p.add("basemap", "the 天地图 (tianditu) basemap needs a key, and none is set",
                  "put tianditu_key under [map] in gridplan.toml, or use basemap osm, amap or none")
            p.raise_if_any()
        tiles = {"url": _controls._TIANDITU.format(layer="vec", key=key).replace("{{", "{")
                 .replace("}}", "}"), "attr": "&copy; 天地图", "sub": "01234567"}
    merged = set(sc.stations)
    before_hit = {str(g) for g, s in zip(sc.before.plan.grids["grid_id"], sc.before.plan.grids["station_id"])
                  if str(s) in merged}
    data = {"before": _side(sc.before.plan, sc.before.response, before_hit, basemap=base),
            "after": _side(sc.after.plan, sc.after.response, set(sc.changed_grids), basemap=base)}
    county = sc.before.plan.county
    names = county.stations.set_index(county.stations["station_id"].astype(str))["name"]
    absorbed = "、".join(esc(names.get(s, s)) for s in sc.stations if s != sc.into)
    header = (f"<b>{esc(county.name)}</b>：{absorbed} 并入 {esc(names.get(sc.into, sc.into))} · "
              f"红框：变动的网格（左图为参与合并的网格） · 红点：超出抢修承诺时间的台区 · 黄点：供电所/服务站"
              + ("" if tiles is None else " · 底图需联网"))
    page = (_MAP_TEMPLATE.replace("__TITLE__", esc(f"{county.name} 合并前后对比"))
            .replace("__HEADER__", header).replace("__RED__", _CHANGED)
            .replace("__CSS__", _LEAFLET_CSS).replace("__JS__", _LEAFLET_JS)
            .replace("__TILES__", _js(tiles)).replace("__DATA__", _js(data)))
    if not cdn:
        page = assets.inline_assets(page, {_LEAFLET_JS: "leaflet", _LEAFLET_CSS: "leaflet_css"})
    return page


def _js(obj: Any) -> str:
    """JSON safe to embed in a <script> element."""
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
            .replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
