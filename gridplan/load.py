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
``coords`` (``gridplan.toml [input] coords``, or the ``coords=`` argument) applies to every file,
unless a GeoJSON / GPKG / SHP declares its own CRS (a ``.prj``, a GeoPackage SRS, a GeoJSON
``crs`` member), which then wins for that file. GCJ-02 and BD-09 cannot be declared by a file:
give them per layer with ``load_county(path, coords_by_layer={"townships": "gcj02"})``, which wins
over everything for that layer. Numbers stored as text (``" 114.2 "``, ``"114.2°"``, ``"114,2"``)
are read; lon/lat swapped in some rows (detected with
:func:`gridplan.coords.detect_swapped_lonlat`) are swapped back and reported. Every layer is
converted to WGS84 with :func:`gridplan.coords.to_wgs84`, then projected to
:func:`gridplan.coords.metric_crs_for` of the townships' centre.

Validation
----------
Every problem is collected and raised once as :class:`gridplan.InputError`, each naming the file,
the rows (ids, or ``row N`` = the spreadsheet row / feature number) and the fix: missing file or
column (with the accepted names), a file that is not what its extension says, duplicate or missing
ids, missing / zero / non-numeric / out-of-range coordinates, points in no township (with the
distance in metres; ``snap_tolerance_m`` snaps those within it) or outside the county, invalid
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
from pyproj import CRS, Transformer

from . import _validate as V
from . import coords as _coords
from . import io as _io
from ._errors import InputError, Problem, Problems
from ._specs import _ATTRS, _GEOM_TYPES, SPECS, LayerSpec
from .county import County
from .settings import Params, read_params

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
            if spec.required:
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


def _converter(ctx: _Ctx, spec: LayerSpec, declared: CRS | None, file: str) -> tuple[Converter, bool] | None:
    """How to take this layer's coordinates to WGS84, and whether they are in degrees."""
    system = ctx.by_layer.get(spec.name)
    if system is None and declared is not None:
        if ctx.default_system is not None and ctx.default_system.kind in ("gcj02", "bd09"):
            ctx.report.append(f"{file}:文件自带坐标系 {declared.to_string()},按其读取,未按 "
                              f"{ctx.default_system} 转换;若该文件实为 {ctx.default_system},"
                              f"请用 coords_by_layer={{'{spec.name}': '{ctx.default_system}'}} 指定")
        tr = Transformer.from_crs(declared, 4326, always_xy=True)
        return (lambda x, y: tr.transform(x, y)), declared.is_geographic
    system = system or ctx.default_system
    if system is None:
        return None
    degrees = system.kind in _DEGREE_KINDS or (system.kind == "epsg" and system.crs.is_geographic)
    return (lambda x, y: _coords.to_wgs84(x, y, system, source=file)), degrees


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
    frame = _ATTRS.get(spec.name, lambda c, f, fr: fr)(ctx, file, frame)
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
    keep = [c for c in frame.columns if c in (spec.columns + spec.optional + ("_row",))]
    keep += [c for c in ("lon", "lat") if c in frame.columns and spec.geom != "home"]
    out = gpd.GeoDataFrame(frame[keep].reset_index(drop=True), geometry=geom, crs=4326)
    return out.drop(columns=[c for c in ("lon", "lat") if c in out.columns])


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
    wrong = ~null & ~np.isin(types, _GEOM_TYPES[spec.geom])
    if wrong.any():
        found = ", ".join(sorted(set(types[wrong])))
        ctx.problems.add(file, f"{int(wrong.sum())} feature(s) are {found}, not "
                               f"{' / '.join(_GEOM_TYPES[spec.geom][:2])}",
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
    live = town_w.geometry[~(town_w.geometry.isna() | town_w.geometry.is_empty)]
    b = live.total_bounds if len(live) else np.array([np.nan] * 4)
    crs = _coords.metric_crs_for([b[0], b[2]], [b[1], b[3]])
    log.info("metric CRS: %s", crs.to_string())
    m = {k: (v.to_crs(crs) if v is not None else None) for k, v in layers.items()}
    p, rep = ctx.problems, ctx.report
    tfile, sfile, xfile = _file(ctx, "townships"), _file(ctx, "stations"), _file(ctx, "transformers")

    town = V.repair_townships(m["townships"], file=tfile, problems=p, report=rep)
    V.check_overlaps(town, file=tfile, problems=p)
    stations = m["stations"]
    V.check_references(town, "station_id", stations["station_id"].dropna(), id_col="township_id",
                       file=tfile, target=sfile, problems=p)
    geoms_ok = town.geometry.notna() & ~town.geometry.is_empty & town.geometry.is_valid
    town_ok = town.loc[geoms_ok].reset_index(drop=True)

    tr = m["transformers"]
    # swapped rows are named again if they still land outside (attrs do not survive every
    # pandas/geopandas version's copies, so set them here from the load's record)
    tr.attrs["swapped_rows"] = {r for rec in ctx.swapped if rec["file"] == xfile for r in rec["rows"]}
    if len(town_ok):
        idx = V.assign_townships(tr.geometry, town_ok, frame=tr, id_col="transformer_id",
                                 file=xfile, snap_m=ctx.params.snap_tolerance_m, problems=p,
                                 report=rep, what="台区")
    else:
        idx = np.full(len(tr), -1)
    tr = _join_townships(ctx, tr, town_ok, idx, xfile)

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
                  roads=clean(m.get("roads")), report=list(ctx.report),
                  input={"swapped": list(ctx.swapped)})


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
    cols = ["transformer_id", "name", "customers", "capacity_kva", "feeder_id", "status",
            "township_id", "station_id", "village"]
    cols += [c for c in ("current_manager_id", "current_grid_id") if c in tr.columns]
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
    cols = ["manager_id", "name", "phone", "station_id", "max_workload", "role", "_row", "geometry"]
    return man[cols]


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
