"""The interactive plan map (``map.html``): Folium/Leaflet, self-contained, works with no network.

::

    m = make_map(plan)                      # a folium.Map; m.save("map.html") is offline too
    save_map(plan, "maps/x/map.html", basemap="none")

Layers (Chinese names, in the layer control): 服务网格, 服务小组 (with service groups), 村 (when given), 乡镇, 10kV线路, 开关, 台区,
供电所. 台区 are canvas-drawn circle markers (``prefer_canvas``), so 10,000 of them stay smooth; they
show from station zoom in. Managers' names (and phones, zoomed in), township and village names are
labels on the map (:mod:`gridplan.render._ui`). Every script and stylesheet is embedded from the
vendored npm packages (see :mod:`gridplan.render.assets`) unless ``cdn=True``. The page opens with
no basemap and requests nothing: the configured basemap is offered in the layer control and its
tiles load only once the user picks it (they need the network).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import folium
from branca.element import Figure
from folium.plugins import Fullscreen, MeasureControl

from ..coords import tiles_are_gcj02
from ..files import write_text_atomic
from . import _controls, _layers, _ui, assets
from .popups import GRID_FIELDS, TR_FIELDS, esc

if TYPE_CHECKING:
    from ..pipeline import Plan

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
    _controls.add_basemap(m, base, tianditu_key=getattr(params, "tianditu_key", None))

    fills = _layers.grid_fills(plan.grids)
    grids_fg, grids_gj = _layers.grid_layer(plan.grids, fills, basemap=base, simplify_m=SIMPLIFY_M)
    grids_fg.add_to(m)
    groups_fg = _layers.group_layer(plan.grids, basemap=base, simplify_m=SIMPLIFY_M)  # 服务小组
    if groups_fg is not None:
        groups_fg.add_to(m)
    villages_fg = _layers.village_layer(county.villages, basemap=base, simplify_m=SIMPLIFY_M)
    if villages_fg is not None:
        villages_fg.add_to(m)
    towns_fg = _layers.township_layer(county.townships, basemap=base, simplify_m=SIMPLIFY_M)
    towns_fg.add_to(m)
    feeders = _layers.feeder_layer(plan.segments, county.feeders, basemap=base,
                                   simplify_m=SIMPLIFY_M, owners=_owners(plan))
    if feeders is not None:
        feeders.add_to(m)
    switches = _layers.switch_layer(county.switches, basemap=base)
    if switches is not None:
        switches.add_to(m)
    tr_fg, tr_gj = _layers.transformer_layer(plan.transformers, plan.grids, fills,
                                              basemap=base)
    tr_fg.add_to(m)
    _layers.station_layer(county.stations, basemap=base).add_to(m)

    # topleft: zoom, search; topright: layers, full screen, measure; bottomright: scale, draw,
    # export; bottomleft: the legend. Nothing stacks over anything else, even at 390 x 844.
    Fullscreen(position="topright", title="全屏", title_cancel="退出全屏").add_to(m)
    MeasureControl(position="topright", primary_length_unit="meters",
                   secondary_length_unit="kilometers", primary_area_unit="sqmeters",
                   secondary_area_unit="hectares", localization="cn").add_to(m)
    _controls.MetricScale().add_to(m)
    _ui.DrawLocal().add_to(m)
    _controls.PinDraw(coords="gcj02" if tiles_are_gcj02(base) else None).add_to(m)
    note = "" if base == "none" else "底图瓦片需要联网：选中底图后才会请求瓦片。"
    _controls.Legend(title=_controls.legend_title(county.name, len(plan.grids), len(plan.transformers)),
                     basemap=base, feeders=feeders is not None, switches=switches is not None,
                     note=note, coverage=_controls.coverage_text(plan.kpi.get("coverage")),
                     villages=villages_fg is not None, tr_zoom=_ui.TR_MIN_ZOOM).add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    _ui.MapUI(grids_gj=grids_gj, tr_gj=tr_gj, grids_fg=grids_fg, tr_fg=tr_fg, town_fg=towns_fg,
              village_fg=villages_fg,
              config=_ui_config(plan, county, base)).add_to(m)
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    return m


def _owners(plan: Plan) -> dict[str, tuple[Any, Any]]:
    """manager_id -> (name, phone), from the roster, then the grids."""
    out: dict[str, tuple[Any, Any]] = {}
    g = plan.grids
    if {"manager_id", "manager_name"} <= set(g.columns):
        phones = g["phone"] if "phone" in g.columns else [None] * len(g)
        out.update({k: (n, ph) for k, n, ph in zip(g["manager_id"], g["manager_name"], phones)})
    mg = plan.managers
    if mg is not None and {"manager_id", "name"} <= set(mg.columns):
        phones = mg["phone"] if "phone" in mg.columns else [None] * len(mg)
        for k, n, ph in zip(mg["manager_id"], mg["name"], phones):
            old = out.get(k, (None, None))
            out[k] = (n if n is not None else old[0], ph if isinstance(ph, str) and ph else old[1])
    return out


def _ui_config(plan: Plan, county: Any, base: str) -> dict[str, Any]:
    """Label lists and popup fields for :class:`gridplan.render._ui.MapUI` (texts escaped)."""
    grids = plan.grids.sort_values("grid_id") if "grid_id" in plan.grids.columns else plan.grids
    grid_labels = []
    if len(grids):
        props = _layers.grid_properties(grids, {})
        for (lat, lon, r), p in zip(_layers.label_points(grids, basemap=base, inscribed=True), props):
            if not math.isnan(lat):
                grid_labels.append([lat, lon, r, p["manager"] or p["grid_id"], p["phone"],
                                    p["grid_id"]])
    towns = county.townships
    town_labels = [[lat, lon, esc(n)] for (lat, lon, _), n in
                   zip(_layers.label_points(towns, basemap=base), towns.get("name", []))
                   if not math.isnan(lat) and esc(n)]
    vil = county.villages
    village_labels = []
    if vil is not None and len(vil) and "name" in vil.columns:
        polys = vil[vil.geom_type.isin(["Polygon", "MultiPolygon"])]
        village_labels = [[lat, lon, esc(n)] for (lat, lon, _), n in
                          zip(_layers.label_points(polys, basemap=base), polys["name"])
                          if not math.isnan(lat) and esc(n)]
    return {"grid_labels": grid_labels, "town_labels": town_labels,
            "village_labels": village_labels,
            "grid_fields": [list(f) for f in GRID_FIELDS],
            "tr_fields": [list(f) for f in TR_FIELDS]}


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
