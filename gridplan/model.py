"""The County: every input layer of one county, checked and projected to one metric CRS.

A :class:`County` is what :func:`gridplan.load_county` returns and what every later stage reads.
All GeoDataFrames share ``County.crs``, a metric CRS (the CGCS2000 3-degree Gauss-Krüger zone of the
county's centre, chosen by :func:`gridplan.coords.metric_crs_for`), so lengths and areas are metres.

Columns (beyond ``geometry``) after loading:

``townships``
    ``township_id`` (str), ``name`` (str), ``station_id`` (str), ``area_class`` (城区/农村/特殊边远).
``stations``
    ``station_id``, ``name``, ``kind`` (供电所 / 中心供电所 / 供电服务站), ``parent_id`` (str or None).
``transformers`` (active 台区 only; retired ones are counted in ``report``)
    ``transformer_id``, ``name``, ``customers`` (int), ``capacity_kva`` (float), ``feeder_id``
    (str or None), ``status``, ``township_id``, ``station_id``, ``village`` (str or None),
    ``snapped_m`` (distance in metres to the township a 台区 lying in no township polygon was put
    in; NaN for the others), ``snapped`` (the map's note, e.g. "已归入 头城镇，距边界 6 米"), and when
    the ledger carries a current plan: ``current_manager_id`` / ``current_grid_id``.
``feeders`` (optional)
    ``feeder_id``, ``name``, ``substation_id``; LineString.
``switches`` (optional)
    ``switch_id``, ``normally_open`` (bool); Point.
``substations`` (optional)
    ``substation_id``, ``name``; Point.
``managers`` (optional; a GeoDataFrame whose geometry is the home point or empty)
    ``manager_id``, ``name``, ``phone``, ``station_id``, ``max_workload`` (float or NaN).
``villages``, ``barriers``, ``roads`` (optional)
    ``villages``: ``village_id``, ``name``, ``township_id``; ``roads``: ``speed_kmh`` (float or NaN).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
from pyproj import CRS

from .settings import Params

__all__ = ["County"]


@dataclass
class County:
    """All input layers of one county, validated and in one metric CRS."""

    name: str
    crs: CRS
    townships: gpd.GeoDataFrame
    stations: gpd.GeoDataFrame
    transformers: gpd.GeoDataFrame
    params: Params = field(default_factory=Params)
    feeders: gpd.GeoDataFrame | None = None
    switches: gpd.GeoDataFrame | None = None
    substations: gpd.GeoDataFrame | None = None
    managers: gpd.GeoDataFrame | None = None
    villages: gpd.GeoDataFrame | None = None
    barriers: gpd.GeoDataFrame | None = None
    roads: gpd.GeoDataFrame | None = None
    #: Optional candidate sites of service points (``candidate_id``, ``name``; Points).
    candidates: gpd.GeoDataFrame | None = None
    #: Notes for the user: repairs made, rows excluded, points snapped (one sentence each).
    report: list[str] = field(default_factory=list)
    #: 台区 and stations in no township polygon that were put in one (``snap_tolerance_m``):
    #: ``{"layer", "id", "township_id", "township", "distance_m", "basis"}`` each.
    snapped: list[dict[str, Any]] = field(default_factory=list)
    #: Structured records of what loading changed, by kind (``"swapped"``: per file, the rows
    #: whose lon/lat were swapped back); :func:`gridplan.metrics.kpi.input_kpis` reports them.
    input: dict[str, list[dict]] = field(default_factory=dict)
    #: Where the county was read from, if from a folder.
    source: Path | None = None
    #: sha256 of every input file, by file name (for plan history and resumable batch runs).
    checksums: dict[str, str] = field(default_factory=dict)

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """Return the layers that are present, by name."""
        names = ("townships", "stations", "transformers", "feeders", "switches", "substations",
                 "managers", "villages", "barriers", "roads")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def to_wgs84(self, layer: str) -> gpd.GeoDataFrame:
        """Return one layer in WGS84 (EPSG:4326), for maps."""
        return self.layers()[layer].to_crs(4326)

    def summary(self) -> str:
        """One line: township, station and 台区 counts."""
        return (f"{self.name}: {len(self.townships)} townships, {len(self.stations)} stations, "
                f"{len(self.transformers)} 台区, {int(self.transformers['customers'].sum())} households")
