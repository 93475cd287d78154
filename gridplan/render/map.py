"""The interactive plan map (``map.html``): Folium/Leaflet, self-contained, works with no network.

::

    m = make_map(plan)                      # a folium.Map; m.save("map.html") is offline too
    save_map(plan, "maps/x/map.html", basemap="none")

Layers (Chinese names, in the layer control): 乡镇, 服务网格, 台区, 10kV线路, 开关, 供电所. 台区 are
canvas-drawn circle markers (``prefer_canvas``), so 10,000 of them stay smooth. Every script and
stylesheet is embedded from the vendored npm packages (see :mod:`gridplan.render.assets`) unless
``cdn=True``. Basemap tiles always need the network: with none, the vector layers still render;
``basemap="none"`` asks for no tile at all.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import folium
from branca.element import Figure
from folium.plugins import Fullscreen, MeasureControl

from .._files import write_text_atomic
from ..coords import tiles_are_gcj02
from . import _controls, _layers, assets

if TYPE_CHECKING:
    from ..plan import Plan

__all__ = ["SIMPLIFY_M", "make_map", "map_html", "save_map"]

log = logging.getLogger(__name__)

#: Simplification tolerance (metres, in the plan's metric CRS) of polygons and lines.
SIMPLIFY_M = 5.0


class OfflineFigure(Figure):
    """A branca Figure whose rendered page embeds every script and stylesheet (no CDN)."""

    def render(self, **kwargs: Any) -> str:
        """Render the page, then inline the vendored assets in place of the CDN links."""
        html = super().render(**kwargs)
        return assets.inline_assets(html, assets.collect_links(self))


def make_map(plan: Plan, *, basemap: str | None = "osm", cdn: bool | None = None) -> folium.Map:
    """Build the interactive map of a plan.

    Parameters
    ----------
    plan
        A :class:`gridplan.Plan` (layers in its metric CRS).
    basemap
        ``"osm"`` (default), ``"amap"``/``"gaode"`` (高德, GCJ-02: the data is shifted to match),
        ``"tianditu"`` (needs ``plan.params.tianditu_key``) or ``"none"`` (no tiles, no requests).
    cdn
        ``True`` links Leaflet and the plugins from public CDNs (smaller file, needs network);
        ``False`` embeds them; ``None`` follows ``plan.params.offline_assets``.

    Returns
    -------
    folium.Map
        Its ``save()`` and notebook display embed the assets unless ``cdn`` is true.

    Raises
    ------
    gridplan.render.assets.AssetsMissingError
        Offline assets are not installed (run ``scripts/fetch_assets.sh``).
    gridplan.InputError
        Unknown basemap, or 天地图 without a key.
    """
    params = plan.params
    if cdn is None:
        cdn = not getattr(params, "offline_assets", True)
    base = _controls.normalise_basemap(basemap)
    if not cdn:
        missing = assets.missing_assets()
        if missing:
            raise assets.AssetsMissingError(
                f"offline map assets are not installed ({', '.join(missing)}): {assets.FETCH_HINT}.")
    county = plan.county
    bounds = county.townships.to_crs(4326).total_bounds if len(county.townships) else \
        plan.transformers.to_crs(4326).total_bounds
    m = folium.Map(location=[(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2],
                   zoom_start=11, tiles=None, prefer_canvas=True, control_scale=False)
    if not cdn:
        OfflineFigure().add_child(m)
    if base == "none":
        m.get_root().header.add_child(folium.Element(
            "<style>.leaflet-container { background: #f4f2ec; }</style>"), name="gp_background")
    _controls.add_basemap(m, base, tianditu_key=getattr(params, "tianditu_key", None))

    fills = _layers.grid_fills(plan.grids)
    grids_fg, grids_gj = _layers.grid_layer(plan.grids, fills, basemap=base, simplify_m=SIMPLIFY_M)
    grids_fg.add_to(m)
    _layers.township_layer(county.townships, basemap=base, simplify_m=SIMPLIFY_M).add_to(m)
    feeders = _layers.feeder_layer(plan.segments, county.feeders, basemap=base,
                                   simplify_m=SIMPLIFY_M)
    if feeders is not None:
        feeders.add_to(m)
    switches = _layers.switch_layer(county.switches, basemap=base)
    if switches is not None:
        switches.add_to(m)
    tr_fg, tr_gj = _layers.transformer_layer(plan.transformers, plan.grids, fills,
                                              basemap=base)
    tr_fg.add_to(m)
    _layers.station_layer(county.stations, basemap=base).add_to(m)

    _controls.add_search(m, tr_gj, geom_type="Point", placeholder="搜索台区名称或台区经理",
                         color="#ff0000", weight=3)
    _controls.add_search(m, grids_gj, geom_type="Polygon", placeholder="搜索网格编号或台区经理",
                         color="#ff0000", weight=4)
    Fullscreen(title="全屏", title_cancel="退出全屏").add_to(m)
    MeasureControl(position="topleft", primary_length_unit="meters",
                   secondary_length_unit="kilometers", primary_area_unit="sqmeters",
                   secondary_area_unit="hectares", localization="cn").add_to(m)
    _controls.PinDraw(coords="gcj02" if tiles_are_gcj02(base) else None).add_to(m)
    note = "" if base == "none" else "底图瓦片需要联网；离线时底图空白，图层照常显示。"
    _controls.Legend(title=_controls.legend_title(county.name, len(plan.grids), len(plan.transformers)),
                     basemap=base, feeders=feeders is not None, switches=switches is not None,
                     note=note, coverage=_controls.coverage_text(plan.kpi.get("coverage"))).add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    _controls.MetricScale().add_to(m)
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    return m


def map_html(m: folium.Map) -> str:
    """The complete page of ``m`` (assets embedded if ``m`` was made offline)."""
    return m.get_root().render()


def save_map(plan: Plan, path: str | Path, *, basemap: str | None = None,
             cdn: bool | None = None) -> Path:
    """Write the interactive map of ``plan`` to ``path`` (atomically: temp file, then rename).

    Parameters
    ----------
    plan
        A :class:`gridplan.Plan`.
    path
        The HTML file to write.
    basemap
        See :func:`make_map`; ``None`` uses ``plan.params.basemap``.
    cdn
        See :func:`make_map`.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    base = basemap if basemap is not None else getattr(plan.params, "basemap", "osm")
    html = map_html(make_map(plan, basemap=base, cdn=cdn))
    write_text_atomic(path, html)
    log.info("map written to %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path
