"""The map of a plan diff (``diff.html``): the grids that changed and the 台区 that moved.

Drawn from a :class:`gridplan.replan.diff.PlanDiff`; :func:`gridplan.replan.diff.write_diff`
writes it (as the ``diff`` page of :mod:`gridplan.pages`). Self-contained and offline like
``map.html`` (Leaflet and plugins embedded) unless ``cdn``; every name is escaped.
"""

from __future__ import annotations

import logging
from typing import cast

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import Figure

from .. import pages
from ..replan.diff import PlanDiff, changed_grid_layers
from . import _controls
from ._layers import feature_collection, to_display
from .map import SIMPLIFY_M, OfflineFigure
from .popups import POPUP_CSS, esc, popup_html

__all__ = ["CHANGE_COLOURS", "diff_map_html"]

log = logging.getLogger(__name__)

#: Marker colour of each kind of change (改派 / 新增 / 移除).
CHANGE_COLOURS = {"改派": "#d62728", "新增": "#2ca02c", "移除": "#7f7f7f"}
#: Outline and fill of the grids before (dashed) and after (blue) the change.
_GRID_STYLES = (("调整前", {"color": "#555", "weight": 2, "dashArray": "6 4", "fillOpacity": 0.0}),
                ("调整后", {"color": "#1f77b4", "weight": 2, "fillColor": "#1f77b4",
                         "fillOpacity": 0.12}))


def _grid_tips(g: gpd.GeoDataFrame, when: str) -> list[dict[str, str]]:
    return [{"tip": popup_html([("台区经理", r.get("manager_name") or r.get("manager_id"))],
                               title=f"{when} 网格 {r.get('grid_id')}")}
            for r in g.to_dict("records")]


def _change_tips(sub: pd.DataFrame, kind: str) -> list[dict[str, str]]:
    def who(name: object, manager: object, grid: object) -> str | None:
        person = name or manager
        if person is None or (isinstance(person, float) and np.isnan(person)):
            return None
        return f"{person}（{grid}）" if grid is not None and not pd.isna(grid) else str(person)

    return [{"tip": popup_html([("变化", kind),
                                ("原台区经理", who(r["from_name"], r["from_manager"], r["from_grid"])),
                                ("新台区经理", who(r["to_name"], r["to_manager"], r["to_grid"])),
                                ("户数", int(r["customers"]))],
                               title=f"{r['transformer_id']} {r['name'] or ''}".strip())}
            for r in sub.to_dict("records")]


def _panel(d: PlanDiff) -> str:
    s = d.summary()
    title = (f"{esc(d.b.county)} 方案对比：{esc(d.a.label)} → {esc(d.b.label)}<br>"
             f"改派 {s['moved_transformers']} 个台区（{s['moved_households']} 户），"
             f"新增 {s['added_transformers']}，移除 {s['removed_transformers']}，"
             f"工作量变化的台区经理 {s['managers_changed']} 人")
    legend = "".join(f'<span style="color:{c}">●</span> {k} ' for k, c in CHANGE_COLOURS.items())
    return ('<div style="position:fixed;bottom:24px;left:10px;z-index:9999;'
            'background:rgba(255,255,255,.93);padding:8px 10px;border-radius:6px;font-size:12px;'
            "max-width:360px;font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;"
            'box-shadow:0 1px 6px rgba(0,0,0,.35)">'
            f"<b>{title}</b><br>{legend}<br>虚线：调整前的网格；蓝色：调整后的网格</div>")


def diff_map_html(d: PlanDiff, *, basemap: str = "osm", cdn: bool = False) -> str:
    """The page of a plan diff: grids that changed (before dashed, after filled) and the 台区
    that moved, were added or removed (tooltips: from → to, households).

    Parameters
    ----------
    d
        The diff (:func:`gridplan.replan.diff.diff_plans`).
    basemap
        As :func:`gridplan.render.map.make_map` (``none``: no tiles, no requests).
    cdn
        Link Leaflet and the plugins from public CDNs instead of embedding them.

    Returns
    -------
    str
        The complete HTML page.
    """
    base = _controls.normalise_basemap(basemap)
    ga, gb = changed_grid_layers(d)
    everything = pd.concat([d.b.assignments.geometry.to_crs(4326),
                            d.a.assignments.geometry.to_crs(4326)])
    b = everything.total_bounds if len(everything) else np.array([114.0, 30.0, 114.1, 30.1])
    m = folium.Map(location=[(b[1] + b[3]) / 2, (b[0] + b[2]) / 2], zoom_start=11, tiles=None,
                   prefer_canvas=True)
    if not cdn:
        OfflineFigure().add_child(m)
    _controls.add_basemap(m, base, tianditu_key=(d.b.meta.get("params") or {}).get("tianditu_key"))
    for g, (when, style) in zip((ga, gb), _GRID_STYLES):
        if not len(g):
            continue
        data = feature_collection(to_display(g, basemap=base, simplify_m=SIMPLIFY_M),
                                  _grid_tips(g, when))
        folium.GeoJson(data, name=f"{when}的网格({len(g)})", style_function=lambda _f, s=style: s,
                       tooltip=folium.GeoJsonTooltip(["tip"], labels=False)).add_to(m)
    ch = d.changes
    for kind, colour in CHANGE_COLOURS.items():
        sub = ch[ch["change"] == kind]
        if not len(sub):
            continue
        data = feature_collection(to_display(sub, basemap=base), _change_tips(sub, kind))
        folium.GeoJson(data, name=f"{kind}的台区({len(sub)})",
                       marker=folium.CircleMarker(radius=5, weight=1, color="#222", fill=True,
                                                  fill_color=colour, fill_opacity=0.9),
                       tooltip=folium.GeoJsonTooltip(["tip"], labels=False)).add_to(m)
    root = cast("Figure", m.get_root())
    root.header.add_child(folium.Element(f"<style>{POPUP_CSS}</style>"))
    root.html.add_child(folium.Element(_panel(d)))
    folium.LayerControl(collapsed=False).add_to(m)
    _controls.MetricScale().add_to(m)
    m.fit_bounds([[b[1], b[0]], [b[3], b[2]]])
    return root.render()


pages.register("diff", diff_map_html)
