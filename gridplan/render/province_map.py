"""The overview map of a province run (``index.html``): one polygon per county, linking to its map.

Drawn from a :class:`gridplan.scale.many.ManyResult` and the summary columns of
:mod:`gridplan.scale.province`, which writes it (the ``province`` page of :mod:`gridplan.pages`).
Two colourings, switched in the layer control: 网格数 (grid count) and 工作量变异系数 (balance).
Each county's popup lists its numbers and links to ``<county>/map.html``; a panel gives the legend
and lists the counties that failed with their error. Every name is escaped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

import branca.colormap as cm
import folium
from branca.element import Figure
from shapely.geometry import shape

from .. import pages
from ..scale.province import COLUMNS, STATUS_ZH, kpi_value, one_line
from . import assets
from .popups import POPUP_CSS, esc, popup_html

if TYPE_CHECKING:
    from ..scale.many import CountyResult, ManyResult

__all__ = ["overview_html", "overview_map"]

log = logging.getLogger(__name__)


def overview_map(result: ManyResult, *, maps: bool = True) -> folium.Map:
    """Return the Folium overview map of a province run (see the module docstring).

    Parameters
    ----------
    result
        The run (:func:`gridplan.scale.many.plan_many`).
    maps
        Link each county's ``map.html`` (when it exists in ``result.out_dir``).
    """
    shaped = [c for c in result.counties if c.ok and c.outline]
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    folium.TileLayer("OpenStreetMap", name="OpenStreetMap 底图 (需联网)").add_to(m)
    grids = [float(kpi_value(c.kpi, COLUMNS["网格数"]) or 0) for c in shaped]
    cvs = [float(kpi_value(c.kpi, COLUMNS["工作量变异系数"]) or 0) for c in shaped]
    by_grids = cm.LinearColormap(["#ffffd9", "#41b6c4", "#081d58"],
                                 vmin=min(grids, default=0), vmax=max(max(grids, default=1), 1))
    by_cv = cm.LinearColormap(["#1a9850", "#fee08b", "#d73027"], vmin=0,
                              vmax=max(max(cvs, default=0.1), 0.1))
    layers = [("按网格数着色", by_grids, grids, True), ("按工作量均衡着色 (变异系数)", by_cv, cvs, False)]
    for name, cmap, values, show in layers:
        group = folium.FeatureGroup(name=name, show=show)
        for c, v in zip(shaped, values):
            has_map = maps and (result.out_dir / c.county / "map.html").exists()
            _county_shape(c, cmap(v), maps=has_map).add_to(group)
        group.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    bounds = _bounds([c.outline for c in shaped if c.outline])
    if bounds:
        m.fit_bounds(bounds)
    legend = [(f"网格数 {by_grids.vmin:.0f} → {by_grids.vmax:.0f}", by_grids),
              (f"变异系数 0 → {by_cv.vmax:.2f} (越小越均衡)", by_cv)]
    root = cast("Figure", m.get_root())
    root.header.add_child(folium.Element(f"<style>{POPUP_CSS}</style>"))
    root.html.add_child(folium.Element(_panel(result, legend)))
    return m


def overview_html(result: ManyResult, *, maps: bool = True) -> str:
    """The overview map as one self-contained page (assets inlined; CDN links if they are missing)."""
    figure = overview_map(result, maps=maps).get_root()
    page = figure.render()
    try:
        page = assets.inline_assets(page, assets.collect_links(figure))
    except assets.AssetsMissingError as exc:
        log.warning("index.html links its web assets online: %s", exc)
    return page


def _county_shape(c: CountyResult, colour: str, *, maps: bool) -> folium.GeoJson:
    style = {"fillColor": colour, "color": "#333333", "weight": 1, "fillOpacity": 0.7}
    shown = folium.GeoJson({"type": "Feature", "geometry": c.outline, "properties": {}},
                           style_function=lambda _f, s=style: s,
                           highlight_function=lambda _f: {"weight": 3, "color": "#000000"})
    folium.Tooltip(esc(c.county)).add_to(shown)
    folium.Popup(county_popup(c, maps=maps), max_width=320).add_to(shown)
    return shown


def county_popup(c: CountyResult, *, maps: bool) -> str:
    """A county's popup: its summary numbers (— where the planner reports none), status, link."""
    rows: list[tuple[str, Any]] = []
    for col, keys in COLUMNS.items():
        rows.append((col, _kpi_text(kpi_value(c.kpi, keys))))
    rows.append(("状态", STATUS_ZH[c.status]))
    if not maps:
        rows.append(("县地图", "未生成"))
    link = (f"{quote(c.county)}/map.html", f"打开 {c.county} 规划地图") if maps else None
    return popup_html(rows, title=c.county, link=link)


def _kpi_text(v: Any) -> str:
    """A summary number as the popup shows it (3 decimals for ratios, thousands separators)."""
    if v is None:
        return "—"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.3f}"
    return f"{v:,.0f}" if isinstance(v, (int, float)) else str(v)


def _panel(result: ManyResult, legend: list[tuple[str, Any]]) -> str:
    n = len(result.counties)
    head = (f"<b>省级规划总览</b><br>{n} 个县: 完成 {n - len(result.failed)}, "
            f"失败 {len(result.failed)}")
    bars = "".join(
        f"<div>{esc(label)}<div style='height:10px;width:200px;background:linear-gradient("
        f"to right,{cmap(cmap.vmin)},{cmap((cmap.vmin + cmap.vmax) / 2)},{cmap(cmap.vmax)})'></div></div>"
        for label, cmap in legend)
    items = "".join(f"<li><b>{esc(c.county)}</b>: {esc(c.error_type)}: "
                    f"{esc(one_line(c.error, 200))}</li>"
                    for c in result.failed)
    fails = (f"失败的县 (详见 failures.txt):<ul style='margin:0;padding-left:18px'>{items}</ul>"
             if items else "")
    return ("<div style='position:fixed;bottom:20px;left:10px;z-index:9999;background:white;"
            "padding:8px 10px;border:1px solid #999;max-width:420px;max-height:40%;overflow:auto;"
            f"font-size:13px'>{head}{bars}{fails}</div>")


def _bounds(outlines: list[dict[str, Any]]) -> list[list[float]] | None:
    boxes = [shape(o).bounds for o in outlines]
    if not boxes:
        return None
    return [[min(b[1] for b in boxes), min(b[0] for b in boxes)],
            [max(b[3] for b in boxes), max(b[2] for b in boxes)]]


pages.register("province", overview_html)
