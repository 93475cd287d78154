"""The data model: the County that goes in and the Plan that comes out.

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

A :class:`Plan` is what :func:`gridplan.plan` returns: frozen (stages return new values, nothing
writes into a plan once it is made), always built by :func:`make_plan`. Writing it out
(:meth:`Plan.to_file`) needs the roster and map writers, which sit above this module: they are
reached through the writer that :mod:`gridplan.output` registers with :func:`register_output`
(``import gridplan`` does it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import geopandas as gpd
import pandas as pd
from pyproj import CRS

from .settings import Params

if TYPE_CHECKING:
    from .files import OutputDir, Transaction

__all__ = ["PLAN_FILES", "County", "Plan", "PlanOutput", "issued_numbers", "make_plan",
           "register_output"]

#: The files ``Plan.to_file`` writes.
PLAN_FILES = ("plan.gpkg", "kpi.json", "roster.xlsx", "map.html")


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
    input: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
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


@dataclass(frozen=True)
class Plan:
    """The result of planning one county (see docs/architecture.md for every column).

    Frozen: a stage that changes a plan returns a new one (``dataclasses.replace``). Build one
    with :func:`make_plan`.
    """

    county: County
    params: Params
    transformers: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    managers: pd.DataFrame
    segments: gpd.GeoDataFrame | None = None
    kpi: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Highest grid number ever issued per township (or station) key, so that an id is never
    #: reused for a different grid (kept in the ``meta`` layer as ``grid_numbers``).
    grid_numbers: dict[str, int] = field(default_factory=dict)

    @property
    def crs(self) -> CRS:
        """The metric CRS of every layer."""
        return self.county.crs

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """Return the GeoPackage layers by name (metric CRS)."""
        out = {"grids": self.grids, "transformers": self.transformers,
               "townships": self.county.townships, "stations": self.county.stations}
        if self.segments is not None:
            out["segments"] = self.segments
        for extra in ("villages", "switches", "substations"):
            layer = getattr(self.county, extra)
            if layer is not None:
                out[extra] = layer
        return out

    def to_file(self, out_dir: str | Path | OutputDir, *, map_html: bool = True,
                roster: bool = True, basemap: str | None = None,
                transaction: Transaction | None = None) -> Path:
        """Write ``plan.gpkg``, ``kpi.json``, ``roster.xlsx`` and ``map.html`` to ``out_dir``.

        The files are staged in a hidden folder and swapped in at the end (see
        :mod:`gridplan.files`): a failure leaves no partial output and an older output untouched.
        ``out_dir`` must be new, empty or an earlier plan output; other files in it are kept.
        See :func:`gridplan.output.to_file`.

        Parameters
        ----------
        out_dir
            The output folder, or an :class:`~gridplan.files.OutputDir` already opened (checked
            and locked before planning, as the CLI does).
        map_html, roster
            Write ``map.html`` / ``roster.xlsx``.
        basemap
            Basemap of ``map.html`` (default: the plan's parameter).
        transaction
            Committed together with the folder (a ``--store`` version,
            :class:`gridplan.replan.store.StoreVersion`).

        Returns
        -------
        pathlib.Path
            ``out_dir``.

        Raises
        ------
        gridplan.files.OutputError
            ``out_dir`` cannot be used (not empty and not a gridplan output, locked, read-only).
        """
        return _output().to_file(self, out_dir, map_html=map_html, roster=roster,
                                 basemap=basemap, transaction=transaction)

    def write_into(self, folder: str | Path, *, map_html: bool = True, roster: bool = True,
                   basemap: str | None = None) -> None:
        """Write the plan's files into ``folder`` directly (a staging folder; not atomic)."""
        _output().write_into(self, folder, map_html=map_html, roster=roster, basemap=basemap)


class PlanOutput(Protocol):
    """What writes a plan's files (:mod:`gridplan.output` registers one)."""

    def to_file(self, plan: Plan, out_dir: str | Path | OutputDir, *, map_html: bool,
                roster: bool, basemap: str | None, transaction: Transaction | None) -> Path: ...

    def write_into(self, plan: Plan, folder: str | Path, *, map_html: bool, roster: bool,
                   basemap: str | None) -> None: ...


_OUTPUT: list[PlanOutput] = []


def register_output(output: PlanOutput) -> None:
    """Make ``output`` the writer behind :meth:`Plan.to_file` and :meth:`Plan.write_into`."""
    _OUTPUT[:] = [output]


def _output() -> PlanOutput:
    if not _OUTPUT:
        raise RuntimeError("no plan writer registered: import gridplan (gridplan.output registers it)")
    return _OUTPUT[0]


def issued_numbers(grid_ids: Iterable[Any], before: dict[str, int] | None = None) -> dict[str, int]:
    """Highest grid number per key (``"<key>-<nn>"`` ids) over ``grid_ids`` and ``before``."""
    out = {str(k): int(v) for k, v in (before or {}).items()}
    for gid in map(str, grid_ids):
        m = re.match(r"^(.*)-(\d+)$", gid)
        if m:
            out[m.group(1)] = max(out.get(m.group(1), 0), int(m.group(2)))
    return dict(sorted(out.items()))


def make_plan(*, county: County, params: Params, transformers: gpd.GeoDataFrame,
              grids: gpd.GeoDataFrame, managers: pd.DataFrame,
              segments: gpd.GeoDataFrame | None = None, kpi: dict[str, Any] | None = None,
              notes: Iterable[str] = (), grid_numbers: dict[str, int] | None = None) -> Plan:
    """Build a :class:`Plan`: the one constructor :func:`gridplan.plan`, ``read_plan`` and merges use.

    Parameters
    ----------
    county, params, transformers, grids, managers, segments
        The plan's inputs and layers (metric CRS).
    kpi
        Its figures (``kpi.json``); empty when not computed.
    notes
        Sentences for the user (Chinese), in order.
    grid_numbers
        Grid numbers issued before (a replan's history); the grids' own ids are always counted.

    Returns
    -------
    Plan
    """
    return Plan(county=county, params=params, transformers=transformers, grids=grids,
                managers=managers, segments=segments, kpi=dict(kpi or {}),
                notes=list(notes),
                grid_numbers=issued_numbers(grids["grid_id"] if "grid_id" in grids.columns else (),
                                            grid_numbers))
