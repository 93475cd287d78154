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
import shapely

from .. import pages
from ..errors import Problems
from ..scenarios.comparison import (
    CANDIDATE_HEADERS,
    COMMITMENT_HEADERS,
    COMPARISON_HEADERS,
    MAX_P95_INCREASE,
    MAX_SERVICE_POINTS,
    SITE_HEADERS,
    STAFF_HEADERS,
    WORSE_HEADERS,
    site_table,
)
from . import _controls, assets
from ._layers import GRID_PALETTE, feature_collection, greedy_colours, to_display
from .popups import POPUP_CSS, esc, popup_html

if TYPE_CHECKING:
    from ..model import County
    from ..pipeline import Plan
    from ..scenarios import Scenario

__all__ = ["candidates_html", "candidates_map_html", "compare_map_html", "report_html"]

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
.flag { color: #b00020; font-weight: bold; } .ok { color: #1b7f3b; } .warn { color: #b36b00; }
.verdict { font-size: 20px; }
.up { color: #b00020; } .down { color: #1b7f3b; }
.small { color: #666; font-size: 12px; }
"""


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_STYLE}</style></head>"
            f'<body><div class="wrap">{body}</div></body></html>\n')


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
            cells.append(f'<td class="{cls}">{_fmt(val)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


# --------------------------------------------------------------------------- report

_VERDICT_CLASS = {"可合并": "ok", "需设服务站": "warn", "不宜合并": "flag"}
_VERDICT_COLOUR = {"可合并": "#1b7f3b", "需设服务站": "#e08a00", "不宜合并": "#b00020"}
_SOURCE_LABEL = {"data": "乡镇数据", "default": "默认"}


def _source(v: Any) -> str:
    v = "" if v is None else str(v)
    if v.startswith("rule:"):
        return f"规则：名称含“{v[5:]}”"
    return _SOURCE_LABEL.get(v, v)


def _absorbed_table(sc: Scenario) -> pd.DataFrame:
    t = sc.townships.copy()
    worst = sc.worsening.drop_duplicates("township_id").set_index("township_id")
    t["worst_id"] = t["township_id"].map(worst["transformer_id"])
    t["worst_name"] = t["township_id"].map(worst["name"])
    t["worst_before"] = t["township_id"].map(worst["minutes_before"])
    t["worst_after"] = t["township_id"].map(worst["minutes_after"])
    t["worst_change"] = t["township_id"].map(worst["change"])
    t["class_source"] = t["class_source"].map(_source)
    return t


def report_html(sc: Scenario, *, with_map: bool = True, max_rows: int = 300) -> str:
    """The page to decide from (Chinese, self-contained).

    Order: the verdict and its reasons; the absorbed townships before and after (first table);
    the commitments each 台区 is held to and where its area class came from; staff released and
    needed and the managers' travel; the proposed service points; then the details (every
    affected township, the 台区 that worsen most, county figures, 台区 beyond commitment).
    """
    county = sc.before.plan.county
    title = f"{county.name} 供电所合并方案评估"
    parts = [f"<h1>{esc(title)}</h1>"]
    cls = _VERDICT_CLASS.get(sc.verdict, "")
    parts.append(f'<p class="verdict {cls}">结论：<b>{esc(sc.verdict)}</b></p><ul>'
                 + "".join(f"<li>{esc(r)}</li>" for r in sc.reasons) + "</ul>")
    ab = _absorbed_table(sc)
    absorbed = ab[ab["township_id"].isin(sc.absorbed_townships)]
    heads = {c: COMPARISON_HEADERS[c] for c in ("township", "area_class", "transformers", "customers",
                                               "p95_before", "p95_after", "max_before", "max_after",
                                               "beyond_before", "beyond_after", "worst_id", "worst_name",
                                               "worst_before", "worst_after", "worst_change")}
    text = ("township", "area_class", "worst_id", "worst_name")
    parts.append(f"<h2>并入乡镇的变化（{len(absorbed)} 个乡镇）</h2>")
    parts.append(_table(absorbed, heads, text_cols=text))
    parts.append("<ul>" + "".join(
        f"<li class=\"{'flag' if n.startswith('⚠') else ''}\">{esc(n)}</li>" for n in sc.notes) + "</ul>")
    parts.append("<h2>抢修到达承诺</h2><p>合并后各类台区所适用的承诺时间及区域类别来源"
                 "（乡镇数据 / 默认规则：名称含街道、城关、城区、镇区为城区 / 默认类别）：</p>")
    parts.append(_table(sc.commitments.assign(class_source=sc.commitments["class_source"].map(_source)),
                        COMMITMENT_HEADERS, text_cols=("area_class", "class_source")))
    parts.append("<h2>人员</h2>")
    parts.append(_table(sc.staff, {k: v for k, v in STAFF_HEADERS.items() if k != "post"},
                        text_cols=("label", "note")))
    tb, ta = sc.travel_summary
    parts.append(f"<p>台区经理从驻点到所管台区的平均出行时间：{_fmt(tb)} → {_fmt(ta)} 分钟"
                 "（驻点：合并前为本所，合并后为保留供电所或保留的供电服务站）。</p>")
    sites = site_table(sc)
    parts.append("<h2>供电服务站建议</h2>")
    sp = sc.service_points
    if sp is None:
        parts.append('<p class="ok">合并后所有台区均在承诺时间内，无需新设服务站。</p>')
    else:
        parts.append(f"<p>合并后 {sp.beyond_before} 个台区超出承诺时间；在 {sp.candidates} 个候选站点"
                     f"（撤并供电所、乡镇驻地、候选站点文件）中，最少设 <b>{len(sp.sites)}</b> 个服务站"
                     f"（集合覆盖精确解），设站后超时台区 {sp.beyond_after} 个"
                     + (f"，其中 {len(sp.uncoverable)} 个台区任何候选站点都无法在承诺时间内到达"
                        if sp.uncoverable else "") + "。</p>")
    if sc.service_points_k is not None:
        k = sc.service_points_k
        parts.append(f"<p>限定 {k.k} 个服务站（最大覆盖精确解）：设站后超时台区 {k.beyond_after} 个"
                     f"（设站前 {k.beyond_before} 个）。</p>")
    if len(sites):
        parts.append(_table(sites, SITE_HEADERS, text_cols=("answer", "point_id", "name", "kind")))
    if with_map:
        parts.append('<p><a href="compare.html">合并前后对比地图（左：合并前，右：合并后；含供电所辖区与建议服务站）</a> · '
                     '<a href="before/map.html">合并前规划图</a> · <a href="after/map.html">合并后规划图</a></p>')
    parts.append("<h2>明细：合并范围内全部乡镇</h2>")
    detail = {c: COMPARISON_HEADERS[c] for c in ("township_id", "township", "transformers", "customers",
                                                "p95_before", "p95_after", "max_before", "max_after",
                                                "beyond_before", "beyond_after", "area_class",
                                                "class_source")}
    parts.append(_table(ab, detail, text_cols=("township_id", "township", "area_class", "class_source")))
    parts.append("<h2>明细：到达时间恶化最多的台区（每乡镇前 5 个）</h2>")
    parts.append(_table(sc.worsening, WORSE_HEADERS, text_cols=("township_id", "transformer_id", "name"))
                 if len(sc.worsening) else "<p>无。</p>")
    parts.append("<h2>明细：合并前后指标</h2>")
    for scope, grp in sc.comparison.groupby("scope", sort=False):
        parts.append(f"<h3>{esc(scope)}</h3>")
        parts.append(_table(grp, {"label": "指标", "before": "合并前", "after": "合并后", "change": "变化"},
                            text_cols=("label",)))
    b = sc.beyond
    parts.append(f"<h2>明细：合并后超出承诺时间的台区（{len(b)} 个）</h2>")
    if len(b):
        shown = b.head(max_rows)
        parts.append(_table(shown, {"transformer_id": "台区编号", "name": "台区名称", "township_id": "乡镇",
                                    "customers": "户数", "area_class": "区域类别", "commitment": "承诺（分钟）",
                                    "point_name": "最近网点", "minutes": "合并后（分钟）",
                                    "minutes_before": "合并前（分钟）", "new": "合并造成"},
                            text_cols=("transformer_id", "name", "township_id", "area_class", "point_name")))
        if len(b) > max_rows:
            parts.append(f'<p class="small">仅列出前 {max_rows} 个，完整清单见 beyond.csv。</p>')
    else:
        parts.append('<p class="ok">无。</p>')
    parts.append(f"<h2>变动的网格（{len(sc.changed_grids)} 个）</h2>"
                 f"<p>{esc('、'.join(sc.changed_grids)) or '无'}</p>")
    prm = sc.after.plan.params
    parts.append(f"<p class=\"small\">抢修到达时间：{'沿道路网' if county.roads is not None else '直线距离'}"
                 f" × 绕行系数 {prm.detour_factor:g}，车速 {prm.speed_kmh:g} km/h；承诺时间："
                 + esc("，".join(f"{k} {v:g} 分钟" for k, v in prm.commitments.items())) + "。</p>")
    return _page(title, "".join(parts))


def candidates_html(df: pd.DataFrame, *, county_name: str = "", params: Any = None) -> str:
    """The ranked merge candidates as a short report (Chinese, self-contained)."""
    title = f"{county_name} 相邻供电所合并候选方案".strip()
    counts = df["verdict"].value_counts() if len(df) else pd.Series(dtype=int)
    parts = [f"<h1>{esc(title)}</h1>",
             (f"<p>共评估 {len(df)} 对相邻供电所：可合并 {int(counts.get('可合并', 0))} 对，"
             f"需设服务站 {int(counts.get('需设服务站', 0))} 对，不宜合并 {int(counts.get('不宜合并', 0))} 对。"
             '<a href="candidates_map.html">候选方案地图</a></p>'),
             ('<p class="small">结论：无新增超时台区且并入乡镇95%到达时间增加不超过 '
              f"{MAX_P95_INCREASE:g} 分钟为“可合并”；否则，若最多 {MAX_SERVICE_POINTS} 个供电服务站"
              "（候选：撤并供电所、乡镇驻地、候选站点文件）即可使新增超时台区全部满足承诺，为“需设服务站”；"
              "其余为“不宜合并”。得分 = 10×释放岗位 − 200×新增超时台区占比 − 并入乡镇95%到达时间最大增加（分钟）"
              " + 20×并入所规模系数（1 − 并入所在户数、售电量、面积、乡镇数中的平均占比）。先按结论、再按得分排序；"
              "保留户数较多的供电所。</p>")]
    cols = ["rank", "verdict", "reasons", "score", "into_name", "absorbed_name", "households",
            "positions_released", "managers_saved", "worst_township", "p95_increase", "new_beyond",
            "points_needed", "service_point_sites", "p95_before", "p95_after"]
    headers = {c: CANDIDATE_HEADERS[c] for c in cols}
    parts.append(_table(df, headers, text_cols=("verdict", "reasons", "into_name", "absorbed_name",
                                                "worst_township", "service_point_sites")))
    if params is not None:
        parts.append(f'<p class="small">车速 {params.speed_kmh:g} km/h，绕行系数 {params.detour_factor:g}；'
                     "完整数据见 candidates.csv / candidates.xlsx。</p>")
    return _page(title, "".join(parts))


# --------------------------------------------------------------------------- the Leaflet pages

#: The head every Leaflet page here starts with (Leaflet from the CDN, inlined unless ``cdn``), the
#: popup style, and the top bar; each page's template goes on from its own styles.
_PAGE_HEAD = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<link rel="stylesheet" href="__CSS__"/>
<script src="__JS__"></script>
<style>
html, body { height: 100%; margin: 0; font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }
#bar { height: 34px; line-height: 34px; padding: 0 10px; background: #f4f2ec; font-size: 14px; }
__POPUP_CSS__
"""


def _leaflet_page(template: str, *, title: str, header: str, data: Any, cdn: bool,
                  tiles: dict[str, str] | None = None) -> str:
    """A complete page: :data:`_PAGE_HEAD` + ``template`` with the title, the top bar (``header``,
    HTML), the data and tiles as embedded JSON; Leaflet embedded unless ``cdn``.
    """
    page = ((_PAGE_HEAD + template).replace("__TITLE__", esc(title))
            .replace("__POPUP_CSS__", POPUP_CSS).replace("__HEADER__", header)
            .replace("__RED__", _CHANGED).replace("__CSS__", _LEAFLET_CSS)
            .replace("__JS__", _LEAFLET_JS).replace("__TILES__", _js(tiles))
            .replace("__DATA__", _js(data)))
    if not cdn:
        page = assets.inline_assets(page, {_LEAFLET_JS: "leaflet", _LEAFLET_CSS: "leaflet_css"})
    return page


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
        tip = popup_html([("供电所", names.get(str(r["station_id"]), r["station_id"])),
                          ("台区经理", r.get("manager_name")), ("户数", r.get("customers"))],
                         title=r["grid_id"], note="（有变动）" if hit else None)
        props.append({"tip": tip, "fill": GRID_PALETTE[colours[i] % len(GRID_PALETTE)], "hit": hit})
    return feature_collection(to_display(grids, basemap=basemap, simplify_m=SIMPLIFY_M), props)


def _point_data(gdf: gpd.GeoDataFrame, tips: list[str], *, basemap: str) -> dict[str, Any]:
    if len(gdf) == 0:
        return {"type": "FeatureCollection", "features": []}
    return feature_collection(to_display(gdf, basemap=basemap), [{"tip": t} for t in tips])


def _territories(p: Plan, *, basemap: str) -> dict[str, Any]:
    """Station territories (the union of each station's townships) with their names."""
    t = p.county.townships[["station_id", "name", "geometry"]].copy()
    t["station_id"] = t["station_id"].astype(str)
    if not len(t):
        return {"type": "FeatureCollection", "features": []}
    terr = t.dissolve("station_id", aggfunc={"name": lambda v: "、".join(map(str, v))}).reset_index()
    names = p.county.stations.set_index(p.county.stations["station_id"].astype(str))["name"]
    tips = [popup_html([("乡镇", r.name)], title=f"{names.get(r.station_id, r.station_id)} 辖区")
            for r in terr.itertuples(index=False)]
    return feature_collection(to_display(terr, basemap=basemap, simplify_m=SIMPLIFY_M),
                              [{"tip": tip} for tip in tips])


def _service_point_data(sc: Scenario, *, basemap: str) -> dict[str, Any]:
    """Proposed service points with the response times of the 台区 each would serve."""
    feats: list[gpd.GeoDataFrame] = []
    tips: list[str] = []
    for label, sp in (("最少服务站方案", sc.service_points), ("限定数量方案", sc.service_points_k)):
        if sp is None or not len(sp.sites):
            continue
        for i, r in sp.sites.reset_index(drop=True).iterrows():
            mine = sp.response[sp.response["point_id"] == r["point_id"]]["minutes"]
            tips.append(popup_html(
                [("方案", label), ("类型", r["kind"]),
                 ("最近服务台区", f"{int(r['transformers_served'])} 个"),
                 ("其中恢复达标", f"{int(r['newly_within'])} 个"),
                 ("抢修到达（平均）", f"{mine.mean():.0f} 分钟" if len(mine) else None),
                 ("抢修到达（最长）", f"{mine.max():.0f} 分钟" if len(mine) else None)],
                title=f"建议供电服务站：{r['name']}"))
            feats.append(sp.sites.iloc[[i]])
    if not feats:
        return {"type": "FeatureCollection", "features": []}
    return _point_data(gpd.GeoDataFrame(pd.concat(feats, ignore_index=True), crs=feats[0].crs), tips,
                       basemap=basemap)


def _beyond_tip(r: pd.Series, mins: pd.DataFrame, fixed: pd.Series | None) -> str:
    """Popup of a 台区 beyond its commitment: minutes, commitment, minutes with the service points."""
    t = str(r["transformer_id"])
    after = None if fixed is None else fixed.get(t, float("nan"))
    return popup_html([("抢修到达", f"{mins.at[t, 'minutes']:.0f} 分钟"),
                       ("承诺", f"{mins.at[t, 'commitment']:g} 分钟"),
                       ("设服务站后", None if after is None or pd.isna(after) else f"{after:.0f} 分钟")],
                      title=f"{t} {'' if pd.isna(r.get('name')) else r.get('name')}".strip())


def _side(p: Plan, rt: pd.DataFrame, highlight: set[str], *, basemap: str,
          with_points: pd.DataFrame | None = None) -> dict[str, Any]:
    st = p.county.stations
    st_tips = [popup_html([("类型", r.get("kind")), ("编号", r["station_id"])], title=r["name"])
               for _, r in st.iterrows()]
    tr = p.transformers
    beyond_ids = set(rt.loc[rt["beyond"], "transformer_id"])
    far = tr[tr["transformer_id"].astype(str).isin(beyond_ids)]
    mins = rt.set_index("transformer_id")
    fixed = with_points.set_index("transformer_id")["minutes"] if with_points is not None else None
    far_tips = [_beyond_tip(r, mins, fixed) for _, r in far.iterrows()]
    return {"territories": _territories(p, basemap=basemap),
            "grids": _grid_data(p, highlight, basemap=basemap),
            "stations": _point_data(st, st_tips, basemap=basemap),
            "beyond": _point_data(far, far_tips, basemap=basemap)}


_MAP_TEMPLATE = """#maps { display: flex; height: calc(100% - 34px); }
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
  L.geoJSON(side.territories, {style: {color: "#222", weight: 3.5, fill: false, dashArray: "8 4"},
    interactive: true, onEachFeature: function (f, l) { l.bindTooltip(f.properties.tip, {sticky: true}); }
  }).addTo(m);
  L.geoJSON(side.beyond, {pointToLayer: function (f, ll) {
      return L.circleMarker(ll, {radius: 4, color: "__RED__", fillColor: "__RED__", fillOpacity: 0.9,
                                 weight: 1}); },
    onEachFeature: function (f, l) { l.bindTooltip(f.properties.tip); }}).addTo(m);
  L.geoJSON(side.stations, {pointToLayer: function (f, ll) {
      return L.circleMarker(ll, {radius: 8, color: "#000", fillColor: "#ffd700", fillOpacity: 1,
                                 weight: 2}); },
    onEachFeature: function (f, l) { l.bindTooltip(f.properties.tip); }}).addTo(m);
  if (side.service_points) {
    L.geoJSON(side.service_points, {pointToLayer: function (f, ll) {
        return L.circleMarker(ll, {radius: 10, color: "#fff", fillColor: "#1f5fbf", fillOpacity: 1,
                                   weight: 3}); },
      onEachFeature: function (f, l) { l.bindTooltip(f.properties.tip); }}).addTo(m);
  }
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
            p = Problems()
            p.add("basemap", "the 天地图 (tianditu) basemap needs a key, and none is set",
                  "put tianditu_key under [map] in gridplan.toml, or use basemap osm, amap or none")
            p.raise_if_any()
        tiles = {"url": _controls._TIANDITU.format(layer="vec", key=key).replace("{{", "{")
                 .replace("}}", "}"), "attr": "&copy; 天地图", "sub": "01234567"}
    merged = set(sc.stations)
    before_hit = {str(g) for g, s in zip(sc.before.plan.grids["grid_id"], sc.before.plan.grids["station_id"])
                  if str(s) in merged}
    sp = sc.service_points or sc.service_points_k
    data = {"before": _side(sc.before.plan, sc.before.response, before_hit, basemap=base),
            "after": _side(sc.after.plan, sc.after.response, set(sc.changed_grids), basemap=base,
                           with_points=None if sp is None else sp.response)}
    data["after"]["service_points"] = _service_point_data(sc, basemap=base)
    county = sc.before.plan.county
    names = county.stations.set_index(county.stations["station_id"].astype(str))["name"]
    absorbed = "、".join(esc(names.get(s, s)) for s in sc.stations if s != sc.into)
    header = (f"<b>{esc(county.name)}</b>：{absorbed} 并入 {esc(names.get(sc.into, sc.into))} · "
              f"红框：变动的网格（左图为参与合并的网格） · 黑色虚线：供电所辖区 · 红点：超出抢修承诺时间的台区 · "
              f"黄点：供电所/服务站 · 蓝点：建议新设的供电服务站（悬停看到达时间）"
              + ("" if tiles is None else " · 底图需联网"))
    return _leaflet_page(_MAP_TEMPLATE, title=f"{county.name} 合并前后对比", header=header,
                         data=data, tiles=tiles, cdn=cdn)


def _js(obj: Any) -> str:
    """JSON safe to embed in a <script> element."""
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
            .replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# --------------------------------------------------------------------------- the candidates map

_CAND_TEMPLATE = """#map { height: calc(100% - 34px); background: #f4f2ec; }
</style></head><body>
<div id="bar">__HEADER__</div><div id="map"></div>
<script>
var DATA = __DATA__;
var m = L.map("map", {preferCanvas: true});
var t = L.geoJSON(DATA.territories, {style: {color: "#555", weight: 1.5, fillColor: "#d9d4c7",
    fillOpacity: 0.5}, onEachFeature: function (f, l) { l.bindTooltip(f.properties.tip, {sticky: true}); }
  }).addTo(m);
L.geoJSON(DATA.pairs, {style: function (f) { return {color: f.properties.colour, weight: 6,
    opacity: 0.9}; }, onEachFeature: function (f, l) { l.bindTooltip(f.properties.tip, {sticky: true}); }
  }).addTo(m);
L.geoJSON(DATA.stations, {pointToLayer: function (f, ll) {
    return L.circleMarker(ll, {radius: 6, color: "#000", fillColor: "#ffd700", fillOpacity: 1, weight: 1.5}); },
  onEachFeature: function (f, l) { l.bindTooltip(f.properties.tip); }}).addTo(m);
L.control.scale({imperial: false}).addTo(m);
var b = t.getBounds();
if (b.isValid()) { m.fitBounds(b); } else { m.setView([0, 0], 2); }
</script></body></html>
"""


def candidates_map_html(df: pd.DataFrame, county: County, *, cdn: bool | None = None) -> str:
    """A map of the candidate merges: a line between the two stations of each pair, coloured by
    verdict (green 可合并, orange 需设服务站, red 不宜合并), over the station territories.

    Parameters
    ----------
    df
        From :func:`gridplan.scenarios.merge_candidates`.
    county
        The county.
    cdn
        Link Leaflet from a CDN (default: ``not params.offline_assets``).

    Returns
    -------
    str
        The complete HTML page (offline unless ``cdn``).
    """
    if cdn is None:
        cdn = not getattr(county.params, "offline_assets", True)
    t = county.townships[["station_id", "name", "geometry"]].copy()
    t["station_id"] = t["station_id"].astype(str)
    terr = t.dissolve("station_id", aggfunc={"name": lambda v: "、".join(map(str, v))}).reset_index()
    names = county.stations.set_index(county.stations["station_id"].astype(str))["name"]
    spot = dict(zip(terr["station_id"], terr.geometry.representative_point()))
    st = county.stations.set_index(county.stations["station_id"].astype(str)).geometry
    where = {s: st.get(s, spot.get(s)) for s in set(spot) | set(st.index)}
    lines, props = [], []
    for r in df.itertuples(index=False):
        a, b = where.get(str(r.into)), where.get(str(r.absorbed))
        if a is None or b is None:
            continue
        lines.append(shapely.LineString([a, b]))
        props.append({"colour": _VERDICT_COLOUR.get(r.verdict, "#555"),
                      "tip": popup_html([("结论", r.verdict), ("得分", f"{float(r.score):.1f}"),
                                         ("理由", r.reasons)],
                                        title=f"{int(r.rank)}. {r.absorbed_name} → {r.into_name}")})
    pairs = gpd.GeoDataFrame(geometry=lines, crs=county.crs)
    terr_tips = [{"tip": popup_html([("乡镇", r.name)], title=names.get(r.station_id, r.station_id))}
                 for r in terr.itertuples(index=False)]
    st_tips = [popup_html([("编号", r["station_id"])], title=r["name"])
               for _, r in county.stations.iterrows()]
    data = {"territories": feature_collection(to_display(terr, basemap="none", simplify_m=SIMPLIFY_M),
                                              terr_tips),
            "pairs": feature_collection(to_display(pairs, basemap="none"), props) if lines
            else {"type": "FeatureCollection", "features": []},
            "stations": _point_data(county.stations, st_tips, basemap="none")}
    header = (f'<b>{esc(county.name)}</b> 相邻供电所合并候选：<span style="color:#1b7f3b">■ 可合并</span> '
              f'<span style="color:#e08a00">■ 需设服务站</span> <span style="color:#b00020">■ 不宜合并</span>'
              " · 悬停看理由与得分")
    return _leaflet_page(_CAND_TEMPLATE, title=f"{county.name} 合并候选地图", header=header,
                         data=data, cdn=cdn)


pages.register("scenario_report", report_html)
pages.register("scenario_map", compare_map_html)
pages.register("candidates", candidates_html)
pages.register("candidates_map", candidates_map_html)
