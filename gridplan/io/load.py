"""Load a county folder into a checked :class:`~gridplan.County` in one metric CRS.

The input contract
------------------
A county folder holds one file per layer, named ``<layer>.<ext>`` (case-insensitive). Column names
may be English or Chinese (see :data:`gridplan.io.ALIASES`; matching ignores case, spaces, full-width
forms and brackets, so ``容量(kVA)`` = ``容量（KVA）`` = ``capacity_kva``).

Required layers:

``townships.*`` (GeoJSON / GeoPackage / Shapefile) — Polygon/MultiPolygon
    ``township_id`` (乡镇编号), ``name`` (乡镇名称), ``station_id`` (供电所编号 / 所属供电所),
    optional ``area_class`` (城区 / 农村 / 特殊边远; empty -> ``params.area_class``).
``stations.*`` (GeoJSON / GPKG / SHP, or CSV / XLSX with 经度/纬度) — Point
    ``station_id``, ``name``, optional ``kind`` (供电所 / 中心供电所 / 供电服务站; default 供电所),
    optional ``parent_id`` (the 中心供电所 of a 供电服务站).
``transformers.*`` (CSV / XLSX with lon/lat columns, or GeoJSON / GPKG / SHP points) — the 台区 ledger
    ``transformer_id`` (台区编号 / 台区编码 / 台区ID), ``name`` (台区名称), ``lon`` / ``lat`` (经度 / 纬度,
    or a point geometry), ``customers`` (用户数 / 户数), ``capacity_kva`` (容量 / 容量(kVA) / 配变容量),
    optional ``feeder_id`` (所属线路 / 线路编号 / 馈线), ``status`` (运行状态; 停运 / 拆除 / 退运 / 报废 /
    retired / out of service … are excluded and counted in ``County.report``), ``village`` (村 /
    行政村), ``manager_id`` / ``grid_id`` (a current plan; kept as ``current_manager_id`` /
    ``current_grid_id``). A ``township_id`` / ``station_id`` in the ledger is replaced by the
    spatial join (disagreements are counted in the report).

Optional layers:

``feeders.*`` — LineString/MultiLineString: ``feeder_id``, optional ``name``, ``substation_id``,
    ``poles`` (杆数; for a segment weight with poles, else line vertices count);
    one row per feeder or one per line section (GIS exports repeat ``feeder_id``; every row of a
    feeder must then name the same ``substation_id``, or leave it empty).
``switches.*`` — Point: ``switch_id``, ``normally_open`` (是/否, 常开/常闭, true/false, 1/0),
    optional ``feeder_id``.
``substations.*`` — Point: ``substation_id``, optional ``name``.
``managers.*`` (CSV / XLSX) — ``manager_id`` (工号 / 人员编号), ``name`` (姓名), ``station_id``
    (供电所; an id, or a station's name), optional ``phone`` (电话 / 联系电话 / 手机), home ``lon`` /
    ``lat``, ``max_workload`` (最大工作量), ``role`` (岗位 / 类型: 高压 = HV staff who own 10 kV
    segments with ``hv_owner = "separate"``; empty / 台区经理 = a 台区经理).
``villages.*`` — Polygon: ``village_id``, ``name``, optional ``township_id`` (else by location).
``barriers.*`` — lines (rivers, highways); polygons are taken by their outline.
``roads.*`` — LineString, optional ``speed_kmh``.
``gridplan.toml`` — parameters, read with :func:`gridplan.settings.read_params`.

Coordinates
-----------
Each layer is read in the first of: ``coords_by_layer`` for it (``gridplan.toml
[input.coords_by_layer]``, ``--layer-coords``, or the ``coords_by_layer=`` argument, which wins key
by key); a *projected* CRS the file declares (a ``.prj``, a GeoPackage SRS, a GeoJSON ``crs``
member); ``coords`` (``[input] coords`` / ``--coords`` / ``coords=``) when it is a longitude/latitude
system, also over a *geographic* header (CRS84, EPSG:4326, EPSG:4490 — what GDAL writes on every
GeoJSON, and unable to tell WGS84 from GCJ-02); a geographic header of another datum; WGS84.
Numbers stored as text (``" 114.2 "``, ``"114.2°"``, ``"114,2"``) are read; lon/lat swapped in some
rows (detected with :func:`gridplan.coords.detect_swapped_lonlat`) are swapped back and reported.
Every layer is converted to WGS84 with :func:`gridplan.coords.to_wgs84`, then projected to
:func:`gridplan.coords.metric_crs_for` of the townships' centre. A point layer (台区, stations)
that sits off the townships by a GCJ-02-like shift is a problem naming both files and the
``[input.coords_by_layer]`` line that fixes it.

Once projected, every coordinate is put on a fixed grid of the metric CRS (:func:`on_grid`):
points (台区, stations, substations, switches, manager homes, candidates) to the nearest multiple
of :data:`POINT_GRID_M` (10 m), the vertices of polygons and lines to :data:`LINE_GRID_M` (1 m).
The same geography given in another system (WGS84, CGCS2000, a Gauss-Krüger zone with or without
its prefix, GCJ-02, BD-09) differs by millimetres to a centimetre after conversion (iterated
inverses, ledgers with 6-7 decimals); on the grid it is the same County bit for bit, so cells,
graph, solver, territory polygons and the editor all see the same points and give the same plan.
10 m for points is below the accuracy of ledger positions (hand-held GPS, 3-10 m) yet makes a
grid step 1,000 times larger than centimetre noise (a point lands on another grid node only when
it lies within that noise of a half-way line: ~0.1% of coordinates at 1 cm, ~0.01% at 1 mm);
1 m keeps the shape of boundaries and feeder lines. ``ledger_lon`` / ``ledger_lat`` keep every
台区's WGS84 position as the ledger gives it (before the grid and any snapping).

Points outside the townships
----------------------------
A 台区 or station in no township polygon but within ``snap_tolerance_m`` (default 1000 m) of one
is snapped: to the nearest township of the station / township its row names when one is that
close, else to the nearest. Snapped 台区 are planned 1 m inside their township (columns
``snapped_m``, ``snapped``, ``ledger_lon``, ``ledger_lat``); every snapped row is in
:attr:`County.snapped` and one report sentence (id, distance, township).

Validation
----------
Every problem is collected and raised once as :class:`gridplan.InputError`, each naming the file,
the rows (ids, or ``row N`` = the spreadsheet row / feature number) and the fix: missing file or
column (with the accepted names), a file that is not what its extension says, duplicate or missing
ids, missing / zero / non-numeric / out-of-range coordinates, points in no township farther than
``snap_tolerance_m`` (with the distance in metres) or outside the county, layers off by a
GCJ-02-like shift, invalid
township polygons (repaired by ``shapely.make_valid`` when the area changes by < 1e-6, else an
error), overlapping townships (the pairs and the overlap in m²), unknown station / parent /
township / substation references, negative, missing or non-numeric customers and capacities, an
empty ledger after excluding retired 台区, an unknown coordinate system, bad manager rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.ops
from pyproj import CRS, Transformer

from .. import coords as _coords
from .. import io as _io
from ..errors import InputError, Problem, Problems
from ..model import County
from ..settings import Params, read_params
from . import validate as V
from .schema import GEOM_TYPES, SPECS, LayerSpec

__all__ = ["SPECS", "LayerSpec", "load_county"]

log = logging.getLogger(__name__)

Converter = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
_DEGREE_KINDS = ("wgs84", "cgcs2000", "gcj02", "bd09")


@dataclass
class _Ctx:
    """What every step of one load shares."""

    folder: Path
    params: Params
    problems: Problems
    report: list[str]
    default_system: _coords.CoordSystem | None
    by_layer: dict[str, _coords.CoordSystem]
    #: The system each layer was read in (for messages), e.g. ``{"townships": "gcj02"}``.
    used: dict[str, str] = field(default_factory=dict)
    #: Per file, the rows whose lon/lat were swapped back (County.input["swapped"]).
    swapped: list[dict] = field(default_factory=list)


def load_county(path: str | Path, *, coords: str | None = None,
                coords_by_layer: dict[str, str] | None = None, **params: Any) -> County:
    """Read, check and project a county folder (the contract is in this module's docstring).

    Parameters
    ----------
    path
        The county folder.
    coords
        The coordinate system of every file that does not declare one (overrides
        ``gridplan.toml [input] coords``): ``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09``, ``gk3``,
        ``gk3:<zone>``, ``EPSG:nnnn`` or a Chinese name such as ``国测局``.
    coords_by_layer
        Per-layer systems that win over everything, e.g. ``{"townships": "gcj02"}`` for a GeoJSON
        drawn on an Amap basemap.
    **params
        Overrides of :class:`~gridplan.settings.Params` fields (e.g. ``snap_tolerance_m=200``).

    Returns
    -------
    County
        Every layer in the metric CRS of the county's centre; ``report`` lists repairs and
        exclusions, ``checksums`` the sha256 of every input file.

    Raises
    ------
    gridplan.InputError
        Listing every problem found (file, rows, what, fix).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise InputError([Problem(str(path), "is not a folder",
                                  "give the path of a county folder holding townships.*, "
                                  "stations.* and transformers.*")])
    problems = Problems()
    toml = folder / "gridplan.toml"
    try:
        prm = read_params(toml if toml.exists() else None, coords=coords, **params)
    except InputError as exc:
        problems.items.extend(exc.problems)
        prm = Params()
    ctx = _Ctx(folder, prm, problems, [], None, {})
    # Forward-compatible: a Params.coords_by_layer table ([input.coords_by_layer]) if it exists.
    by_layer = {**(getattr(prm, "coords_by_layer", None) or {}), **(coords_by_layer or {})}
    _systems(ctx, coords, by_layer)
    files = _find_files(ctx)
    layers: dict[str, gpd.GeoDataFrame | None] = {}
    for name, file in files.items():
        layers[name] = _load_layer(ctx, SPECS[name], file)
    if any(layers.get(n) is None for n in ("townships", "stations", "transformers")):
        problems.raise_if_any()
    county = _assemble(ctx, layers)
    problems.raise_if_any()
    county.checksums = _checksums(folder, files)
    county.source = folder
    for line in county.report:
        log.info("%s", line)
    log.info("%s", county.summary())
    return county


# ----------------------------------------------------------------------------- files, systems

def _systems(ctx: _Ctx, coords: str | None, by_layer: dict[str, str]) -> None:
    source = "coords argument" if coords else "gridplan.toml [input] coords"
    try:
        ctx.default_system = _coords.parse_system(ctx.params.coords, source=source)
    except InputError as exc:
        ctx.problems.items.extend(exc.problems)
    for layer in sorted(by_layer):
        if layer not in SPECS:
            ctx.problems.add("coords_by_layer", f"unknown layer {layer!r}",
                             f"use one of: {', '.join(SPECS)}")
            continue
        try:
            ctx.by_layer[layer] = _coords.parse_system(by_layer[layer],
                                                       source=f"coords_by_layer[{layer!r}]")
        except InputError as exc:
            ctx.problems.items.extend(exc.problems)


def _find_files(ctx: _Ctx) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for spec in SPECS.values():
        found = _io.layer_files(ctx.folder, spec.name, spec.exts)
        if not found:
            zipped = _io.layer_files(ctx.folder, spec.name, (".zip",))
            if zipped:  # a zipped shapefile or table: say so even for an optional layer
                ctx.problems.add(zipped[0].name, f"is a ZIP archive, which gridplan does not open: "
                                 f"{_io.zip_contents(zipped[0])}",
                                 f"unzip it into the county folder so that {spec.name} is one of "
                                 f"{', '.join(spec.exts)}")
            elif spec.required:
                others = sorted(p.name for p in ctx.folder.iterdir() if p.is_file())
                ctx.problems.add(f"{spec.name}.*", f"the folder {ctx.folder} has no {spec.name} file",
                                 f"add {spec.name} as one of {', '.join(spec.exts)} (files present: "
                                 f"{', '.join(others) or 'none'})")
            continue
        if len(found) > 1:
            ctx.problems.add(f"{spec.name}.*", "more than one file for this layer: "
                             + ", ".join(p.name for p in found),
                             "keep only one of them in the folder")
            continue
        out[spec.name] = found[0]
    return out


def _checksums(folder: Path, files: dict[str, Path]) -> dict[str, str]:
    paths = [p for f in files.values() for p in _io.companions(f)]
    if (folder / "gridplan.toml").exists():
        paths.append(folder / "gridplan.toml")
    return {p.name: _io.sha256(p) for p in sorted(paths)}


#: Geographic CRSs a file header may name that are WGS84 for gridplan (CGCS2000 differs by cm).
_WGS84_LIKE = {("EPSG", "4326"), ("OGC", "CRS84"), ("EPSG", "4490"), ("OGC", "CRS84H")}


def _wgs84_like(crs: CRS) -> bool:
    """Whether a declared CRS is WGS84/CGCS2000 longitude/latitude (CRS84, EPSG:4326, EPSG:4490)."""
    if not crs.is_geographic:
        return False
    auth = crs.to_authority(min_confidence=90)
    if auth is not None and (auth[0].upper(), auth[1].upper()) in _WGS84_LIKE:
        return True
    return crs.to_epsg(min_confidence=90) in (4326, 4490)


def _is_degrees(system: _coords.CoordSystem) -> bool:
    return system.kind in _DEGREE_KINDS or (
        system.kind == "epsg" and (crs := system.crs) is not None and crs.is_geographic)


def _converter(ctx: _Ctx, spec: LayerSpec, declared: CRS | None, file: str) -> tuple[Converter, bool] | None:
    """How to take this layer's coordinates to WGS84, and whether they are in degrees.

    Precedence: ``coords_by_layer`` for the layer; a *projected* CRS the file declares (a
    ``.prj`` of a Gauss-Krüger zone, any projected GeoPackage SRS); ``coords`` (gridplan.toml
    ``[input] coords`` or ``--coords``) when it is a longitude/latitude system; a *geographic*
    CRS the file declares. A geographic header (CRS84, EPSG:4326, EPSG:4490: what GDAL, QGIS
    and geopandas write by default) cannot tell WGS84 from GCJ-02 or BD-09, so the user's
    statement wins over it.
    """
    system = ctx.by_layer.get(spec.name)
    default = ctx.default_system
    if system is None and declared is not None:
        header_wins = (not declared.is_geographic or default is None or not _is_degrees(default)
                         or not _wgs84_like(declared))
        if header_wins:
            if default is not None and default.kind in ("gcj02", "bd09"):
                ctx.report.append(f"{file}:文件自带坐标系 {declared.to_string()},按其读取,未按 "
                                  f"{default} 转换;若该文件实为 {default},请在 gridplan.toml 的 "
                                  f'[input.coords_by_layer] 中写 {spec.name} = "{default}"')
            tr = Transformer.from_crs(declared, 4326, always_xy=True)
            ctx.used[spec.name] = _crs_label(declared)
            return (lambda x, y: tr.transform(x, y)), declared.is_geographic
        if default is not None and default.kind not in ("wgs84", "cgcs2000"):
            log.info("%s: header %s read as %s (coords)", file, declared.to_string(), default)
    system = system or default
    if system is None:
        return None
    ctx.used[spec.name] = str(system)
    return (lambda x, y: _coords.to_wgs84(x, y, system, source=file)), _is_degrees(system)


def _crs_label(crs: CRS) -> str:
    """A short name of a declared CRS: ``wgs84``, ``cgcs2000`` or ``EPSG:nnnn``."""
    if _wgs84_like(crs):
        return "cgcs2000" if crs.to_epsg(min_confidence=90) == 4490 else "wgs84"
    code = crs.to_epsg(min_confidence=70)
    return f"EPSG:{code}" if code else crs.name


# ----------------------------------------------------------------------------- one layer

def _load_layer(ctx: _Ctx, spec: LayerSpec, path: Path) -> gpd.GeoDataFrame | None:
    """Read one layer, check its columns and values, and return it in WGS84 (or None)."""
    file = path.name
    try:
        rr = _io.read_any(path, layer=spec.name)
    except _io.FileKindError as exc:
        ctx.problems.add(file, exc.what, exc.fix)
        return None
    frame = rr.frame
    table = not rr.is_geo
    required = list(spec.columns)
    if table and spec.geom == "point":
        required += ["lon", "lat"]
    if not V.check_columns(frame, spec.name, file, required, ctx.problems):
        return None
    frame = frame.copy()
    for col in spec.optional:
        if col not in frame.columns:
            frame[col] = None
    if spec.id_col:
        frame[spec.id_col] = _io.as_ids(frame[spec.id_col])
        if spec.unique_id:
            V.check_ids(frame, spec.id_col, file, ctx.problems)
        else:
            _check_missing_ids(frame, spec.id_col, file, ctx.problems)
    frame = _attributes(ctx, spec, file, frame)
    if frame is None:
        return None
    conv = _converter(ctx, spec, rr.crs, file)
    if conv is None:
        return None
    try:
        if table:
            geom = _points_from_table(ctx, spec, frame, file, conv)
        else:
            geom = _geometry(ctx, spec, frame, file, conv)
    except InputError as exc:
        ctx.problems.items.extend(exc.problems)
        return None
    if geom is None:
        return None
    keep = [c for c in frame.columns if c in (*spec.kept, "_row")]
    keep += [c for c in ("lon", "lat") if c in frame.columns and spec.geom != "home"]
    out = gpd.GeoDataFrame(frame[keep].reset_index(drop=True), geometry=geom, crs=4326)
    return out.drop(columns=[c for c in ("lon", "lat") if c in out.columns])


def _attributes(ctx: _Ctx, spec: LayerSpec, file: str, frame: pd.DataFrame) -> pd.DataFrame | None:
    """Read and check the values of one layer: its own steps around the schema's typed columns."""
    before, after = V.LAYER_STEPS.get(spec.name, (None, None))
    if before is not None:
        frame = before(ctx, file, frame)
        if frame is None:
            return None
    frame = V.parse_columns(spec, frame, file=file, problems=ctx.problems)
    return after(ctx, file, frame) if after is not None else frame


def _check_missing_ids(frame: pd.DataFrame, id_col: str, file: str, problems: Problems) -> None:
    """Rows without an id, for layers whose ids repeat (one row per feeder section)."""
    missing = frame[id_col].isna().to_numpy()
    if missing.any():
        problems.add(file, f"{int(missing.sum())} row(s) have no {id_col}",
                     f"fill in the {id_col} of every row (the sections of one line share it)",
                     rows=V.row_labels(frame, None, missing))


def _coords_of(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, bad_x = _io.parse_numbers(frame["lon"])
    y, bad_y = _io.parse_numbers(frame["lat"])
    return x, y, bad_x | bad_y


def _points_from_table(ctx: _Ctx, spec: LayerSpec, frame: pd.DataFrame, file: str,
                       conv: tuple[Converter, bool]) -> np.ndarray | None:
    if spec.geom == "home":
        if "lon" not in frame.columns or "lat" not in frame.columns:
            return np.array([None] * len(frame), dtype=object)
        x, y, bad = _coords_of(frame)
        given = ~(np.isnan(x) & np.isnan(y)) | bad
        if not given.any():
            return np.array([None] * len(frame), dtype=object)
        sub = frame.loc[given]
        xs, ys, ok = V.check_coordinates(sub, x[given], y[given], bad[given], id_col=spec.id_col,
                                         file=file, degrees=conv[1], problems=ctx.problems,
                                         report=ctx.report, what=spec.what)
        _note_swapped(ctx, sub, file, spec.what)
        x[given], y[given] = xs, ys
        ok_all = np.zeros(len(frame), dtype=bool)
        ok_all[np.flatnonzero(given)[ok]] = True
    else:
        x, y, bad = _coords_of(frame)
        x, y, ok_all = V.check_coordinates(frame, x, y, bad, id_col=spec.id_col, file=file,
                                           degrees=conv[1], problems=ctx.problems,
                                           report=ctx.report, what=spec.what)
        _note_swapped(ctx, frame, file, spec.what)
    lon, lat = conv[0](np.where(ok_all, x, np.nan), np.where(ok_all, y, np.nan))
    pts = shapely.points(np.column_stack([lon, lat]))
    pts[~ok_all] = None
    return pts


def _note_swapped(ctx: _Ctx, checked: pd.DataFrame, file: str, what: str) -> None:
    """Record the rows :func:`_validate.check_coordinates` swapped back (it marks them in attrs)."""
    rows = checked.attrs.get("swapped_rows")
    if rows:
        ctx.swapped.append({"file": file, "what": what, "rows": sorted(rows)})


def _geometry(ctx: _Ctx, spec: LayerSpec, frame: gpd.GeoDataFrame, file: str,
              conv: tuple[Converter, bool]) -> np.ndarray | None:
    geoms = frame.geometry.to_numpy().copy()
    null = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    types = np.array([g.geom_type if g is not None else "" for g in geoms])
    wrong = ~null & ~np.isin(types, GEOM_TYPES[spec.geom])
    if wrong.any():
        found = ", ".join(sorted(set(types[wrong])))
        ctx.problems.add(file, f"{int(wrong.sum())} feature(s) are {found}, not "
                               f"{' / '.join(GEOM_TYPES[spec.geom][:2])}",
                         f"{spec.name} must hold {spec.geom} geometries: export the right layer",
                         rows=V.row_labels(frame, spec.id_col, wrong))
        return None
    if null.any() and spec.geom != "polygon":  # townships: reported by repair_townships
        ctx.problems.add(file, f"{int(null.sum())} feature(s) have no geometry",
                         "draw them, or remove these rows", rows=V.row_labels(frame, spec.id_col, null))
    if spec.geom == "point":
        x = np.where(null, np.nan, shapely.get_x(np.where(null, shapely.Point(0, 0), geoms)))
        y = np.where(null, np.nan, shapely.get_y(np.where(null, shapely.Point(0, 0), geoms)))
        fr = frame.loc[~null]
        xs, ys, ok = V.check_coordinates(fr, x[~null], y[~null], np.zeros(int((~null).sum()), bool),
                                         id_col=spec.id_col, file=file, degrees=conv[1],
                                         problems=ctx.problems, report=ctx.report, what=spec.what)
        _note_swapped(ctx, fr, file, spec.what)
        ok_all = np.zeros(len(frame), dtype=bool)
        ok_all[np.flatnonzero(~null)[ok]] = True
        x[~null], y[~null] = xs, ys
        lon, lat = conv[0](np.where(ok_all, x, np.nan), np.where(ok_all, y, np.nan))
        pts = shapely.points(np.column_stack([lon, lat]))
        pts[~ok_all] = None
        return pts
    if spec.geom == "line":
        poly = np.isin(types, ("Polygon", "MultiPolygon"))
        geoms[poly] = shapely.boundary(geoms[poly])
    fn = conv[0]

    def move(xy: np.ndarray) -> np.ndarray:
        lon, lat = fn(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    live = ~null
    if conv[1] and live.any():
        b = shapely.total_bounds(geoms[live])
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        if bool(np.asarray(_coords.detect_swapped_lonlat(cx, cy))):
            ctx.problems.add(file, f"the coordinates look swapped (latitude first): centre "
                                   f"({cx:.4f}, {cy:.4f})",
                             "export the layer with longitude as x and latitude as y")
            return None
    geoms[live] = shapely.transform(geoms[live], move)
    return geoms


# ----------------------------------------------------------------------------- whole county

def _file(ctx: _Ctx, layer: str) -> str:
    found = _io.layer_files(ctx.folder, layer, SPECS[layer].exts)
    return found[0].name if found else f"{layer}.*"


def _assemble(ctx: _Ctx, layers: dict[str, gpd.GeoDataFrame | None]) -> County:
    """Project every layer, run the spatial and cross-layer checks, build the County."""
    town_w = layers["townships"]
    assert town_w is not None  # a required layer: load_county raised before when it is missing
    live = town_w.geometry[~(town_w.geometry.isna() | town_w.geometry.is_empty)]
    b = live.total_bounds if len(live) else np.array([np.nan] * 4)
    crs = _coords.metric_crs_for([b[0], b[2]], [b[1], b[3]])
    log.info("metric CRS: %s", crs.to_string())
    m = {k: (on_grid(v.to_crs(crs)) if v is not None else None) for k, v in layers.items()}
    p, rep = ctx.problems, ctx.report
    tfile, sfile, xfile = _file(ctx, "townships"), _file(ctx, "stations"), _file(ctx, "transformers")

    town = on_grid(V.repair_townships(m["townships"], file=tfile, problems=p, report=rep))
    V.check_overlaps(town, file=tfile, problems=p)
    stations = m["stations"]
    assert stations is not None  # a required layer (see town_w)
    V.check_references(town, "station_id", stations["station_id"].dropna(), id_col="township_id",
                       file=tfile, target=sfile, problems=p)
    geoms_ok = town.geometry.notna() & ~town.geometry.is_empty & town.geometry.is_valid
    town_ok = town.loc[geoms_ok].reset_index(drop=True)

    tr = m["transformers"]
    assert tr is not None  # a required layer (see town_w)
    snapped: list[dict[str, Any]] = []
    # swapped rows are named again if they still land outside (attrs do not survive every
    # pandas/geopandas version's copies, so set them here from the load's record)
    tr.attrs["swapped_rows"] = {r for rec in ctx.swapped if rec["file"] == xfile for r in rec["rows"]}
    if len(town_ok):
        prefer = {"transformers": _ledger_townships(tr, town_ok, stations),
                  "stations": _own_townships(stations, town_ok)}
        shifted = _gcj_shifted_layers(ctx, layers, town_ok, crs, prefer)
        for name, frame, file, what in (("transformers", tr, xfile, "台区"),
                                        ("stations", stations, sfile, "供电所")):
            rows: list[dict[str, Any]] = []
            id_col = SPECS[name].id_col
            assert id_col is not None  # transformers and stations have an id column
            got = V.assign_townships(
                frame.geometry, town_ok, frame=frame, id_col=id_col, file=file,
                snap_m=ctx.params.snap_tolerance_m, problems=p, report=rep, what=what,
                prefer=prefer[name], snapped=rows,
                near_fix=_SHIFT_FIRST if name in shifted else None)
            snapped += [{"layer": name, **r} for r in rows]
            if name == "transformers":
                idx = got
    else:
        idx = np.full(len(tr), -1)
    tr = _join_townships(ctx, tr, town_ok, idx, xfile)
    tr = _mark_snapped(tr, [r for r in snapped if r["layer"] == "transformers"], town_ok)
    tr = _keep_ledger_lonlat(tr, layers["transformers"])

    managers = m.get("managers")
    if managers is not None:
        managers = _check_managers(ctx, managers, stations, _file(ctx, "managers"), sfile)
    feeders, subs = m.get("feeders"), m.get("substations")
    if feeders is not None and subs is not None:
        V.check_references(feeders.drop_duplicates(["feeder_id", "substation_id"]), "substation_id",
                           subs["substation_id"].dropna(),
                           id_col="feeder_id", file=_file(ctx, "feeders"),
                           target=_file(ctx, "substations"), problems=p)
    if feeders is not None and tr["feeder_id"].notna().any():
        unknown = tr["feeder_id"].notna() & ~tr["feeder_id"].isin(set(feeders["feeder_id"].dropna()))
        if unknown.any():
            rep.append(f"{xfile}:{int(unknown.sum())} 个台区的所属线路不在 {_file(ctx, 'feeders')} 中"
                       "(高压到段时按位置挂接)")
    villages = m.get("villages")
    if villages is not None:
        villages = _villages(ctx, villages, town_ok)

    def clean(g: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
        if g is None:
            return None
        return g.drop(columns=[c for c in ("_row",) if c in g.columns]).reset_index(drop=True)

    return County(name=ctx.params.county_name or ctx.folder.resolve().name, crs=crs, townships=clean(town),
                  stations=clean(stations), transformers=clean(tr), params=ctx.params,
                  feeders=clean(feeders), switches=clean(m.get("switches")), substations=clean(subs),
                  managers=clean(managers), villages=clean(villages), barriers=clean(m.get("barriers")),
                  roads=clean(m.get("roads")), candidates=clean(m.get("candidates")),
                  report=list(ctx.report), snapped=snapped, input={"swapped": list(ctx.swapped)})


def _join_townships(ctx: _Ctx, tr: gpd.GeoDataFrame, town: gpd.GeoDataFrame, idx: np.ndarray,
                    file: str) -> gpd.GeoDataFrame:
    tr = tr.copy()
    found = idx >= 0
    tid = np.where(found, town["township_id"].to_numpy(dtype=object)[np.where(found, idx, 0)], None) \
        if len(town) else np.full(len(idx), None, dtype=object)
    sid = np.where(found, town["station_id"].to_numpy(dtype=object)[np.where(found, idx, 0)], None) \
        if len(town) else np.full(len(idx), None, dtype=object)
    for col, new, word in (("township_id", tid, "乡镇"), ("station_id", sid, "供电所")):
        old = tr[col]
        differ = old.notna().to_numpy() & (idx >= 0) & (old.to_numpy() != new)
        if differ.any():
            ctx.report.append(f"{file}:{int(differ.sum())} 个台区台账中的所属{word}与其位置不符,"
                              f"已按位置归属")
        tr[col] = new
    cols = [c.name for c in SPECS["transformers"].fields
            if not c.derived and c.kind != "coord" and (c.name in tr.columns or not c.drop_if_empty)]
    return tr[cols + ["_row", "geometry"]]


def _check_managers(ctx: _Ctx, man: gpd.GeoDataFrame, stations: gpd.GeoDataFrame, file: str,
                    sfile: str) -> gpd.GeoDataFrame:
    man = man.copy()
    ids = set(stations["station_id"].dropna())
    by_name = {str(n).strip(): s for n, s in zip(stations["name"], stations["station_id"])
               if isinstance(n, str)}
    named = man["station_id"].notna() & ~man["station_id"].isin(ids) & man["station_id"].isin(by_name)
    if named.any():
        man.loc[named, "station_id"] = man.loc[named, "station_id"].map(by_name)
        log.info("%s: %d station names mapped to ids", file, int(named.sum()))
    V.check_references(man, "station_id", ids, id_col="manager_id", file=file, target=sfile,
                       problems=ctx.problems)
    return man[[*SPECS["managers"].kept, "_row", "geometry"]]


def _villages(ctx: _Ctx, vil: gpd.GeoDataFrame, town: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    vil = vil.copy()
    file = _file(ctx, "villages")
    V.check_references(vil, "township_id", town["township_id"].dropna(), id_col="village_id",
                       file=file, target=_file(ctx, "townships"), problems=ctx.problems)
    need = vil["township_id"].isna().to_numpy() & vil.geometry.notna().to_numpy()
    if need.any() and len(town):
        pts = gpd.GeoSeries(vil.geometry[need].representative_point().to_numpy(), crs=vil.crs)
        tree = shapely.STRtree(town.geometry.to_numpy())
        near = tree.query_nearest(pts.to_numpy(), all_matches=False)
        got = np.full(int(need.sum()), None, dtype=object)
        got[near[0]] = town["township_id"].to_numpy()[near[1]]
        vil.loc[need, "township_id"] = got
    return vil


# ----------------------------------------------------------------------------- points outside townships

def _ledger_townships(tr: gpd.GeoDataFrame, town: gpd.GeoDataFrame,
                      stations: gpd.GeoDataFrame) -> list[tuple[np.ndarray, str] | None]:
    """Per 台区, the townships its ledger row points to, for a 台区 outside every polygon.

    In order: the ledger's township (id or name), the townships of its station (id or name),
    the townships of the station that serves most 台区 of its feeder. None when the ledger
    says nothing usable.
    """
    tid = town["township_id"].to_numpy(dtype=object)
    by_town: dict[str, list[int]] = {}
    for i, (t, n) in enumerate(zip(tid, town["name"])):
        for key in {str(t), str(n).strip()} - {"None", "nan", ""}:
            by_town.setdefault(key, []).append(i)
    names = {str(n).strip(): str(sid) for n, sid in zip(stations["name"], stations["station_id"])
             if isinstance(n, str)}
    by_station: dict[str, list[int]] = {}
    for i, sid in enumerate(town["station_id"].to_numpy(dtype=object)):
        by_station.setdefault(str(sid), []).append(i)
    feeder_station = _feeder_stations(tr, town)
    out: list[tuple[np.ndarray, str] | None] = []
    for t, sid, fid in zip(tr["township_id"], tr["station_id"], tr["feeder_id"]):
        if isinstance(t, str) and t.strip() in by_town:
            out.append((np.array(by_town[t.strip()]), "台账所属乡镇"))
            continue
        sid = names.get(str(sid).strip(), str(sid)) if isinstance(sid, str) else None
        if sid in by_station:
            out.append((np.array(by_station[sid]), "台账所属供电所"))
        elif isinstance(fid, str) and feeder_station.get(fid) in by_station:
            out.append((np.array(by_station[feeder_station[fid]]), "所属线路的供电所"))
        else:
            out.append(None)
    return out


def _feeder_stations(tr: gpd.GeoDataFrame, town: gpd.GeoDataFrame) -> dict[str, str]:
    """The station serving most of each feeder's 台区 that lie inside a township."""
    if tr["feeder_id"].isna().all():
        return {}
    pts = tr.geometry.to_numpy()
    ok = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
    p_idx, t_idx = shapely.STRtree(town.geometry.to_numpy()).query(pts[ok], predicate="intersects")
    rows = pd.DataFrame({"feeder": tr["feeder_id"].to_numpy(dtype=object)[np.flatnonzero(ok)[p_idx]],
                         "station": town["station_id"].to_numpy(dtype=object)[t_idx]}).dropna()
    if rows.empty:
        return {}
    counts = rows.groupby(["feeder", "station"]).size().reset_index(name="n")
    counts = counts.sort_values(["feeder", "n", "station"], ascending=[True, False, True])
    return dict(zip(counts.drop_duplicates("feeder")["feeder"], counts.drop_duplicates("feeder")["station"]))


def _own_townships(stations: gpd.GeoDataFrame,
                   town: gpd.GeoDataFrame) -> list[tuple[np.ndarray, str] | None]:
    """Per station, the townships it serves (where a station outside every polygon goes first)."""
    own: dict[str, list[int]] = {}
    for i, sid in enumerate(town["station_id"].to_numpy(dtype=object)):
        own.setdefault(str(sid), []).append(i)
    return [(np.array(own[str(s)]), "本所供区") if str(s) in own else None
            for s in stations["station_id"]]


def _mark_snapped(tr: gpd.GeoDataFrame, rows: list[dict[str, Any]],
                  town: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Put every snapped 台区 just inside the township it was assigned to, and say so.

    A 台区 on an islet or across a simplified coast has no territory of its own outside the
    township polygons (its cell would be clipped away): it is planned at the nearest point 1 m
    inside its township. Columns added: ``snapped_m`` (its distance to that township; NaN when
    it lay inside one), ``snapped`` (the map's note, e.g. "已归入 头城镇，距边界 6 米"), and
    ``ledger_lon`` / ``ledger_lat`` (filled for every 台区 afterwards by :func:`_keep_ledger_lonlat`).
    """
    tr = tr.copy()
    tr["snapped_m"] = np.nan
    tr["snapped"] = None
    tr["ledger_lon"] = np.nan
    tr["ledger_lat"] = np.nan
    if not rows:
        return tr
    pos = {str(t): i for i, t in enumerate(tr["transformer_id"])}
    where = {str(t): i for i, t in enumerate(town["township_id"])}
    inner: dict[int, shapely.Geometry] = {}
    geoms = tr.geometry.to_numpy().copy()
    orig = gpd.GeoSeries(geoms, crs=tr.crs).to_crs(4326)
    snapped_m = tr["snapped_m"].to_numpy(dtype=float).copy()
    notes = tr["snapped"].to_numpy(dtype=object).copy()
    lon, lat = tr["ledger_lon"].to_numpy(dtype=float).copy(), tr["ledger_lat"].to_numpy(dtype=float).copy()
    for r in rows:
        i, t = pos.get(str(r["id"])), where.get(str(r["township_id"]))
        if i is None or t is None:
            continue
        if t not in inner:
            poly = town.geometry.iloc[t]
            shrunk = poly.buffer(-1.0)
            inner[t] = shrunk if not shrunk.is_empty else poly
        lon[i], lat[i] = orig.iloc[i].x, orig.iloc[i].y
        geoms[i] = shapely.ops.nearest_points(inner[t], geoms[i])[0]
        snapped_m[i] = r["distance_m"]
        notes[i] = f"已归入 {r['township']}，距边界 {r['distance_m']:.0f} 米"
    tr["snapped_m"], tr["snapped"], tr["ledger_lon"], tr["ledger_lat"] = snapped_m, notes, lon, lat
    tr[tr.geometry.name] = gpd.GeoSeries(geoms, index=tr.index, crs=tr.crs)
    return tr


_SHIFT_FIRST = ("declare the coordinate systems first (the GCJ-02-like shift above): these points "
                "may then lie inside; no snap tolerance is proposed for a shift")


def _gcj_shifted_layers(ctx: _Ctx, layers: dict[str, gpd.GeoDataFrame | None],
                        town: gpd.GeoDataFrame, crs: CRS,
                        prefer: dict[str, list[tuple[np.ndarray, str] | None]]) -> set[str]:
    """Point layers that sit off the townships by a GCJ-02-like shift; each is a problem.

    A GCJ-02 (高德/腾讯) layer read as WGS84, or the reverse, is off by a few hundred metres in
    one direction. Scored three ways: the layer as read, and as it would be if it were one step
    more or less GCJ-02 than the townships. The score counts points in no township plus points
    in a township other than the one their row names (the ledger's 所属乡镇 / 所属供电所; a
    station's own townships). When a shifted reading scores at most 60% of the reading as
    given (and at least 4 and 0.5% of the points fewer), the layers disagree by that shift: the
    problem names both files, the systems they were read in and how to declare them
    (``[input.coords_by_layer]``), instead of proposing a snap tolerance.
    """
    code = crs.to_epsg()
    to_metric = (_coords._transformer(4326, code) if code  # cached: building one costs ~0.4 s
                 else Transformer.from_crs(4326, crs, always_xy=True))
    tree = shapely.STRtree(town.geometry.to_numpy())
    flagged: set[str] = set()
    tfile = _file(ctx, "townships")
    for name, what in (("transformers", "台区"), ("stations", "供电所")):
        g = layers.get(name)
        if g is None or len(g) != len(prefer[name]):
            continue
        pts = g.geometry.to_numpy()
        live = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
        if live.sum() < 4:
            continue
        allowed = [set(p[0].tolist()) if p is not None and p[1] != "所属线路的供电所" else None
                   for p, ok in zip(prefer[name], live) if ok]
        lon, lat = shapely.get_x(pts[live]), shapely.get_y(pts[live])

        def score(x: np.ndarray, y: np.ndarray,
                  allowed: list[set[int] | None] = allowed) -> tuple[int, int]:
            mx, my = to_metric.transform(x, y)
            p_idx, t_idx = tree.query(shapely.points(np.column_stack([mx, my])),
                                      predicate="intersects")
            where: dict[int, set[int]] = {}
            for a, b in zip(p_idx.tolist(), t_idx.tolist()):
                where.setdefault(a, set()).add(b)
            out = len(x) - len(where)
            wrong = sum(1 for i, ts in where.items()
                        if (al := allowed[i]) is not None and not ts & al)
            return out, out + wrong

        (n_out, s0) = score(lon, lat)
        gx, gy = _coords.wgs84_to_gcj02(lon, lat)
        shift_m = float(np.median(np.hypot(*(np.subtract(to_metric.transform(gx, gy),
                                                         to_metric.transform(lon, lat))))))
        if s0 < 4 or shift_m < 100:  # nothing to explain, or outside China (GCJ-02 = WGS84 there)
            continue
        less = score(*_coords.gcj02_to_wgs84(lon, lat))[1]  # the layer is GCJ-02 read as WGS84
        more = score(gx, gy)[1]                             # the townships are GCJ-02 read as WGS84
        best = min(less, more)
        if not (best <= 0.6 * s0 and s0 - best >= max(4, 0.005 * len(lon))):
            continue
        flagged.add(name)
        file = _file(ctx, name)
        mine, theirs = ctx.used.get(name, "?"), ctx.used.get("townships", "?")
        wgs = ("wgs84", "cgcs2000")
        fixes: list[tuple[str, str, str]] = []
        if less <= more:  # this layer is shifted like GCJ-02 relative to the townships
            if mine in wgs:
                fixes.append((name, "gcj02", f"if the {name} were taken from a 高德/腾讯 map"))
            if theirs == "gcj02":
                fixes.append(("townships", "wgs84", "if the townships are GPS/WGS84"))
        else:             # the townships are shifted like GCJ-02 relative to this layer
            if theirs in wgs:
                fixes.append(("townships", "gcj02", "if the townships were drawn on a 高德/腾讯 map"))
            if mine == "gcj02":
                fixes.append((name, "wgs84", f"if the {name} are GPS/WGS84"))
        how = " or ".join(f'{lay} = "{sys_}" ({why})' for lay, sys_, why in fixes) \
            or f'{name} = "…" and townships = "…"'
        cli = " ".join(f"--layer-coords {lay}={sys_}" for lay, sys_, _ in fixes[:1])
        ctx.problems.add(
            f"{file}, {tfile}",
            f"{file} (read as {mine}) and {tfile} (read as {theirs}) disagree by a GCJ-02-like "
            f"shift of about {shift_m:.0f} m: as read, {n_out} of {len(lon)} {what} lie in no "
            f"township and {s0 - n_out} in another township than their row names; {best} in all "
            f"if {file if less <= more else tfile} were read as GCJ-02 relative to "
            f"{tfile if less <= more else file}",
            "declare the coordinate system of each layer in gridplan.toml, e.g. "
            f"[input.coords_by_layer] {how}" + (f"; on the command line {cli}" if cli else "")
            + ". A snap tolerance would not fix this: the points would go to the wrong townships")
    return flagged


# ----------------------------------------------------------------------------- the coordinate grid

#: Grid of point coordinates in the metric CRS (metres): see "Coordinates" in the module docstring.
POINT_GRID_M = 10.0
#: Grid of polygon and line vertices in the metric CRS (metres).
LINE_GRID_M = 1.0


def on_grid(layer: gpd.GeoDataFrame, *, point_m: float = POINT_GRID_M,
            line_m: float = LINE_GRID_M) -> gpd.GeoDataFrame:
    """Put a metric layer's coordinates on the fixed grid (a copy; idempotent).

    Points are rounded to the nearest multiple of ``point_m`` (halves to even), other geometries
    are snapped to ``line_m`` with :func:`shapely.set_precision` (valid output, parts that collapse
    are dropped). Missing, empty and invalid geometries stay as they are (townships are put on the
    grid again once repaired).

    Parameters
    ----------
    layer
        A layer in a metric CRS.
    point_m, line_m
        Grid steps in metres.

    Returns
    -------
    geopandas.GeoDataFrame
    """
    geoms = layer.geometry.to_numpy()
    if not len(geoms):
        return layer
    out = geoms.copy()
    live = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    point = live & (shapely.get_type_id(geoms) == 0)
    if point.any():
        xy = shapely.get_coordinates(geoms[point])
        out[point] = shapely.points(np.round(xy / point_m) * point_m)
    other = live & ~point & shapely.is_valid(geoms)  # invalid ones: after their repair
    if other.any():
        out[other] = shapely.set_precision(geoms[other], line_m)
    return layer.set_geometry(gpd.GeoSeries(out, index=layer.index, crs=layer.crs))


def _keep_ledger_lonlat(tr: gpd.GeoDataFrame, wgs84: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``ledger_lon`` / ``ledger_lat`` of every 台区: its WGS84 position before the grid and snapping."""
    pts = wgs84.geometry.reindex(tr.index).to_numpy()
    ok = ~(shapely.is_missing(pts) | shapely.is_empty(pts)) & (shapely.get_type_id(pts) == 0)
    lon = np.full(len(pts), np.nan)
    lat = np.full(len(pts), np.nan)
    if ok.any():
        lon[ok], lat[ok] = shapely.get_coordinates(pts[ok]).T
    tr = tr.copy()
    tr["ledger_lon"], tr["ledger_lat"] = lon, lat
    return tr
