"""KPIs of a plan: balance, contiguity, compactness and grid counts, per grid, station and county.

Nothing is written into the plan: :func:`compute_kpis` returns the figures and the per-grid values
(``balance``, ``polsby_popper``, ``mean_dist_m``, ``max_dist_m``, ``contiguous``) that the pipeline
puts into the ``grids`` layer it builds. All distances are metres in the county's CRS.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..lv.graph import group_members, label_codes, sorted_unique
from ..lv.measures import COLUMNS, LABELS, measure_values
from ..lv.solver import pmedian_lower_bound, pmedian_lower_bound_knn
from ..lv.territory import contiguity_edges
from ..model import Plan

__all__ = [
    "COVERAGE_RULE",
    "SERVICE_POINT_KINDS",
    "KpiResult",
    "PendingOptimality",
    "absorbed_townships",
    "balance_stats",
    "compute_kpis",
    "coverage_kpis",
    "coverage_line",
    "grid_figures",
    "grid_medoids",
    "group_medoids",
    "input_kpis",
    "measure_kpis",
    "measures_line",
    "medoid_distances",
    "multipart_grids",
    "noncontiguous_grids",
    "optimality",
    "snapped_transformers",
    "start_certificate",
    "start_optimality",
    "stations_without_roster",
    "township_bound",
    "township_coverage",
    "village_coverage",
]

log = logging.getLogger(__name__)

_MEDOID_SAMPLE = 1500  # above this many 台区 in one grid, the medoid is searched among a sample


def balance_stats(workloads: np.ndarray) -> dict[str, float]:
    """Coefficient of variation, max/mean and min/mean of grid workloads."""
    w = np.asarray(workloads, dtype=float)
    if len(w) == 0 or w.mean() == 0:
        return {"cv": 0.0, "max_over_mean": 0.0, "min_over_mean": 0.0, "mean": 0.0}
    mean = w.mean()
    return {"cv": round(float(w.std() / mean), 4), "max_over_mean": round(float(w.max() / mean), 4),
            "min_over_mean": round(float(w.min() / mean), 4), "mean": round(float(mean), 2)}


def medoid_distances(xy: np.ndarray) -> tuple[int, float, float]:
    """Return (index of the medoid, mean and max distance from it to every point), in metres."""
    n = len(xy)
    if n == 1:
        return 0, 0.0, 0.0
    cand = np.arange(n)
    if n > _MEDOID_SAMPLE:
        cand = np.random.default_rng(0).choice(n, _MEDOID_SAMPLE, replace=False)
    sums = np.array([np.hypot(*(xy - xy[c]).T).sum() for c in cand])
    best = int(cand[int(np.argmin(sums))])
    d = np.hypot(*(xy - xy[best]).T)
    return best, float(d.mean()), float(d.max())


#: Pairwise distances computed at once by :func:`group_medoids` (three float arrays of this size).
_MEDOID_BATCH = 2_000_000


def group_medoids(xy: np.ndarray, codes: np.ndarray, n_groups: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`medoid_distances` of every group at once: medoid row, mean and max distance.

    Groups of the same size are stacked and their pairwise distances computed in one array, with
    the same operations in the same order as :func:`medoid_distances` on the group's rows (in
    ascending order), so the results are the same, bit for bit; groups above the sample size go
    through :func:`medoid_distances` one by one.

    Parameters
    ----------
    xy
        ``(n, 2)`` metric coordinates.
    codes
        Group of every row, ``0 .. n_groups - 1``.
    n_groups
        Number of groups (an empty group gets row -1 and distances 0).

    Returns
    -------
    rows, mean_m, max_m
        Per group: the row of its medoid, the mean and the max distance from it (metres).
    """
    codes = np.asarray(codes, dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=n_groups)
    starts = np.cumsum(sizes) - sizes
    best = np.full(n_groups, -1, dtype=np.int64)
    mean_m, max_m = np.zeros(n_groups), np.zeros(n_groups)
    for s in np.unique(sizes[sizes > 0]).tolist():
        groups = np.flatnonzero(sizes == s)
        if s == 1:
            best[groups] = order[starts[groups]]
            continue
        if s > _MEDOID_SAMPLE:
            for g in groups.tolist():
                rows = order[starts[g]:starts[g] + s]
                i, mean_m[g], max_m[g] = medoid_distances(xy[rows])
                best[g] = rows[i]
            continue
        step = max(1, _MEDOID_BATCH // (s * s))
        for a in range(0, len(groups), step):
            gs = groups[a:a + step]
            rows = order[starts[gs][:, None] + np.arange(s)]
            pts = xy[rows]  # (b, s, 2)
            # d[b, c, i] = |x_i - x_c|: candidate c's distances, as medoid_distances computes them
            d = np.hypot(pts[:, None, :, 0] - pts[:, :, None, 0], pts[:, None, :, 1] - pts[:, :, None, 1])
            pick = d.sum(axis=2).argmin(axis=1)
            at = np.arange(len(gs))
            dist = d[at, pick]
            best[gs], mean_m[gs], max_m[gs] = rows[at, pick], dist.mean(axis=1), dist.max(axis=1)
    return best, mean_m, max_m


def noncontiguous_grids(xy: np.ndarray, grid_id: np.ndarray, edges: np.ndarray, *,
                        grid_codes: tuple[np.ndarray, np.ndarray] | None = None) -> list[str]:
    """Grids whose 台区 are not connected on the neighbourhood graph ``edges``.

    ``grid_codes``: ``label_codes(grid_id)`` (sorted ids, codes) when already computed.
    """
    if grid_codes is not None:
        gids, gcode = grid_codes
    else:
        gcode, gids = pd.factorize(np.asarray(grid_id, dtype=object))  # compared as integer codes
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    e = edges[gcode[edges[:, 0]] == gcode[edges[:, 1]]]
    n = len(xy)
    adj = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)) if len(e) else coo_matrix((n, n))
    ncomp, comp = connected_components(adj, directed=False)
    ok = gcode >= 0
    pairs = sorted_unique(gcode[ok].astype(np.int64) * max(int(ncomp), 1) + comp[ok])
    per = np.bincount(pairs // max(int(ncomp), 1), minlength=len(gids))  # components per grid
    return sorted(str(g) for g in np.asarray(gids, dtype=object)[per > 1].tolist())


def multipart_grids(grids: gpd.GeoDataFrame, townships: gpd.GeoDataFrame) -> list[str]:
    """Grids whose polygon has more parts than the townships it covers (which may be multi-part)."""
    town_parts = dict(zip(townships["township_id"].astype(str),
                          shapely.get_num_geometries(townships.geometry.values)))
    names = dict(zip(townships["name"].astype(str), townships["township_id"].astype(str)))
    parts = shapely.get_num_geometries(grids.geometry.values)
    own = grids["township_id"].astype(str).map(town_parts).fillna(1).to_numpy()
    out = []
    # a grid's townships include its own: a grid of no more parts than that one is never listed
    for g in grids[parts > own].itertuples():
        n_parts = shapely.get_num_geometries(g.geometry)
        covered = {str(g.township_id)} | {names[n] for n in str(getattr(g, "townships", "")).split("、")
                                          if n in names}
        if n_parts > sum(town_parts.get(t, 1) for t in covered):
            out.append(str(g.grid_id))
    return sorted(out)


@dataclass(frozen=True)
class KpiResult:
    """What :func:`compute_kpis` finds; nothing is written into the plan.

    Attributes
    ----------
    kpi
        ``kpi.json``: ``{"county": {...}, "stations": {...}, "hv": {...}, "input": {...},
        "coverage": {...}, "optimality": {...}, "notes": [...]}``.
    grid_columns
        Per-grid figures, indexed like ``plan.grids``: ``mean_dist_m``, ``max_dist_m``,
        ``polsby_popper``, ``contiguous``, ``balance`` (and ``hv_km`` = 0 when the grids have none).
    notes
        Sentences to add to the plan's notes (absorbed townships, stations without roster rows).
    """

    kpi: dict[str, Any]
    grid_columns: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def grid_figures(transformers: Any, grids: Any, xy: np.ndarray, broken: list[str], *,
                 medoids: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per-grid figures (see :attr:`KpiResult.grid_columns`), indexed like ``grids``.

    ``medoids``: :func:`grid_medoids` of the 台区 when already computed.
    """
    per = grid_medoids(xy, transformers["grid_id"].astype(str).to_numpy()) if medoids is None else medoids
    area, perim = grids.geometry.area.to_numpy(), grids.geometry.length.to_numpy()
    ids = grids["grid_id"]
    cols = pd.DataFrame({
        "mean_dist_m": _rounded(ids, per["mean_m"]),
        "max_dist_m": _rounded(ids, per["max_m"]),
        "polsby_popper": np.round(np.where(perim > 0, 4 * math.pi * area / perim**2, 0.0), 4),
        "contiguous": ~grids["grid_id"].isin(broken),
        "balance": (grids["workload"] / grids.groupby("station_id")["workload"].transform("mean")).round(3),
    }, index=grids.index)
    if "hv_km" not in grids.columns:
        cols["hv_km"] = 0.0
    return cols


def _rounded(ids: pd.Series, values: pd.Series) -> np.ndarray:
    """``values`` (by grid id) for ``ids``, rounded to 0.1 by Python's ``round`` (0 when absent)."""
    if not values.index.is_unique:  # a table by id: the last value of an id counts
        table = {k: round(float(v), 1) for k, v in values.items()}
        return np.array([table.get(g, 0.0) for g in ids.tolist()], dtype=float)
    rounded = np.array([round(v, 1) for v in values.to_numpy(dtype=float).tolist()] + [0.0])
    out: np.ndarray = rounded[values.index.get_indexer(ids)]  # -1 (absent): the 0.0 at the end
    return out


def grid_medoids(xy: np.ndarray, grid_id: np.ndarray, *,
                 grid_codes: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """Medoid of every grid (:func:`group_medoids`): ``row``, ``n``, ``mean_m``, ``max_m`` by grid id.

    Indexed by the grid ids in sorted order. ``grid_codes``: ``label_codes(grid_id)`` (sorted
    ids, codes) when already computed.
    """
    if grid_codes is None:
        code, ids = pd.factorize(np.asarray(grid_id, dtype=object), sort=True)
    else:
        ids, code = grid_codes
    rows, mean_m, max_m = group_medoids(xy, code, len(ids))
    return pd.DataFrame({"row": rows, "n": np.bincount(code, minlength=len(ids)),
                         "mean_m": mean_m, "max_m": max_m}, index=pd.Index(ids, dtype=object))


def compute_kpis(plan: Plan, *, lower_bound: int | None = None,
                 hv_kpi: dict[str, Any] | None = None, edges: np.ndarray | None = None,
                 pool: Executor | None = None,
                 started: PendingOptimality | None = None,
                 grid_codes: tuple[np.ndarray, np.ndarray] | None = None) -> KpiResult:
    """Compute the KPIs of ``plan`` and its per-grid figures (``plan`` is not changed).

    ``grid_codes``: ``label_codes(plan.transformers["grid_id"].to_numpy())`` (sorted grid ids,
    every 台区's code) when already computed.

    ``pool``: an optional executor the certificate's township bounds are computed in (the same
    KPIs with or without it; see :func:`optimality`). ``started``: the certificate, started
    earlier (:func:`start_optimality`, e.g. while other stages ran); used when it was started
    for the plan's grids, else computed anew.

    Returns
    -------
    KpiResult
        ``kpi``: ``{"county": {...}, "stations": {station_id: {...}}, "hv": {...}, "input": {...},
        "coverage": {...}, "notes": [...]}``: ``input`` lists what was done to the input (snapped
        and swapped rows, townships without 台区, stations without roster rows; see
        :func:`input_kpis`), ``coverage`` the 乡乡有点、村村有人 figures (:func:`coverage_kpis`);
        ``grid_columns`` the per-grid figures; ``notes`` what to add to the plan's notes.
        :func:`gridplan.pipeline.with_kpis` makes the plan with them.
    """
    tr = plan.transformers
    xy = shapely.get_coordinates(tr.geometry.values)
    gid = tr["grid_id"].astype(str).to_numpy()
    if edges is None:
        edges = contiguity_edges(plan.county, tr, scope=plan.params.scope)
    broken = noncontiguous_grids(xy, gid, edges, grid_codes=_str_codes(grid_codes))
    split = multipart_grids(plan.grids, plan.county.townships)
    # what needs no medoids first: a certificate started earlier may still be finding them
    hv: dict[str, Any] = dict(hv_kpi or {})
    if plan.segments is not None and len(plan.segments):
        s = plan.segments
        hv |= {"segments": len(s), "feeders": int(s["feeder_id"].nunique()),
              "total_km": round(float(s["length_km"].sum()), 3),
              "max_segment_km": round(float(s["length_km"].max()), 3),
              "mean_segment_km": round(float(s["length_km"].mean()), 3)}
        if "share_in_grid" in s.columns:
            hv["mean_share_in_grid"] = round(float(np.average(s["share_in_grid"], weights=s["length_km"])), 4)
    inp, more = input_kpis(plan, swapped=(getattr(plan.county, "input", None) or {}).get("swapped"))
    notes: list[str] = []
    for n in more:
        if n not in plan.notes and n not in notes:
            notes.append(n)
    coverage = coverage_kpis(plan)
    if started is not None and not np.array_equal(started.grid_id, gid):
        started = None  # started for other grids (a repair moved 台区 since): not this plan's
    medoids = started.grid_medoids(takeover=pool) if started is not None else None
    medoids = medoids if medoids is not None else grid_medoids(xy, gid)
    columns = grid_figures(tr, plan.grids, xy, broken, medoids=medoids)
    grids = plan.grids.assign(**columns)

    real = grids[grids["n_transformers"] > 0]
    county = {
        "name": plan.county.name,
        "townships": len(plan.county.townships),
        "stations": len(plan.county.stations),
        "transformers": len(tr),
        "households": int(tr["customers"].sum()),
        "grids": len(grids),
        "grid_lower_bound": int(lower_bound) if lower_bound is not None else None,
        "capacity": plan.params.capacity,
        "workload": plan.params.workload,
        "over_capacity_grids": int((real["workload"] > plan.params.capacity + 1e-9).sum()),
        "noncontiguous_grids": len(broken),
        "noncontiguous_grid_ids": broken,
        "multipart_grid_polygons": len(split),
        "multipart_grid_ids": split,
        "polsby_popper_mean": round(float(grids["polsby_popper"].mean()), 4),
        "mean_dist_to_medoid_m": round(float(np.average(real["mean_dist_m"], weights=real["n_transformers"])), 1)
        if len(real) else 0.0,
        "max_dist_to_medoid_m": round(float(real["max_dist_m"].max()), 1) if len(real) else 0.0,
        "managers_placeholder": int(grids["placeholder"].sum()),
        **balance_stats(real["workload"].to_numpy()),
    }
    stations = {}
    for sid, sg in grids.groupby("station_id"):
        sg_real = sg[sg["n_transformers"] > 0]
        stations[str(sid)] = {
            "grids": len(sg), "transformers": int(sg["n_transformers"].sum()),
            "households": int(sg["customers"].sum()), "workload": round(float(sg["workload"].sum()), 2),
            "placeholder_managers": int(sg["placeholder"].sum()),
            **balance_stats(sg_real["workload"].to_numpy())}
    kpi = {"county": county, "stations": stations, "hv": hv, "input": inp,
           "coverage": coverage,
           "optimality": (started.result(takeover=pool) if started is not None else
                          optimality(xy, gid, _scope_keys(tr, plan.params.scope),
                                     scope=plan.params.scope, pool=pool, medoids=medoids)),
           "notes": [*plan.notes, *notes]}
    return KpiResult(kpi, columns, notes)


# --------------------------------------------------------------------------- several measures

def measure_kpis(plan: Plan, *, unmet: list[dict[str, Any]] | None = None,
                 grid_codes: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """``kpi["measures"]``: the workload and every ``also_balance`` measure, grid by grid.

    Each measure's grid values are summed from the 台区 columns (``workload``, ``customers``,
    ``capacity_kva``, ``feeder_km``, ``area_km2``; ``transformers`` counts rows), never taken
    from the plan's own figures.

    Returns
    -------
    dict
        ``{name: {"label", "tolerance", "county": {cv, max_over_mean, min_over_mean, mean},
        "stations": {station_id: {...}}, "within_tolerance": bool, "unmet": [{"key", "name",
        "tolerance", "max_deviation", "why"}, ...]}}``; ``unmet`` lists the townships (or
        stations) whose grids hold the measure outside its tolerance of their mean (from
        :class:`gridplan.lv.partition.PatchResult` ``also_unmet``; the workload's own band is
        in the notes).
    """
    tr = plan.transformers
    wanted = {"workload": float(plan.params.tolerance), **{str(k): float(v) for k, v in
                                                            plan.params.also_balance.items()}}
    station = (tr["station_id"].astype(str).to_numpy() if "station_id" in tr.columns
               else np.full(len(tr), ""))
    given = _str_codes(grid_codes)
    if given is not None:
        gids, gcode = given  # the plan's grid ids are str: as factorized below
    else:  # grouped by integer codes: strings once only
        gcode, gids = pd.factorize(tr["grid_id"].astype(str).to_numpy(), sort=True)
    grid_index = pd.Index(np.asarray(gids, dtype=object))
    grid_station = pd.Series(station).groupby(gcode).first().set_axis(grid_index)
    out: dict[str, Any] = {}
    for name, tol in wanted.items():
        if name not in ("transformers", "workload") and COLUMNS.get(name, name) not in tr.columns:
            continue
        vals = tr["workload"].to_numpy(dtype=float) if name == "workload" else measure_values(tr, name)
        per_grid = pd.Series(vals).groupby(gcode).sum().set_axis(grid_index)
        rows = [dict(r) for r in (unmet or []) if r.get("measure") == name]
        out[name] = {
            "label": LABELS.get(name, name), "tolerance": tol,
            "county": balance_stats(per_grid.to_numpy()),
            "stations": {str(sid): balance_stats(g.to_numpy())
                         for sid, g in per_grid.groupby(grid_station.reindex(per_grid.index).to_numpy())},
            "within_tolerance": not rows,
            "unmet": [{k: v for k, v in r.items() if k != "measure"} for r in rows]}
    return out


def measures_line(measures: dict[str, Any]) -> str | None:
    """The summary line of the ``also_balance`` measures (``None`` when none was asked for)."""
    parts = []
    for name, m in measures.items():
        if name == "workload":
            continue
        c = m["county"]
        state = "达标" if m["within_tolerance"] else f"未达标 {len(m['unmet'])} 处"
        parts.append(f"{m['label']} CV {c['cv']:.3f} 最大/均值 {c['max_over_mean']:.2f} "
                     f"（容差 ±{m['tolerance']:.0%}，{state}）")
    return "均衡指标：" + "；".join(parts) if parts else None


# --------------------------------------------------------------------------- 乡乡有点、村村有人

#: Station kinds that count as a service point for 乡乡有点 (every kind a station may have).
SERVICE_POINT_KINDS = ("供电所", "中心供电所", "供电服务站")

#: How coverage is decided (kpi["coverage"]["rule"]; the README and docs say the same).
COVERAGE_RULE = {
    "township": "乡镇多边形内（含边界）有一个供电所、中心供电所或供电服务站的站点",
    "village": "村多边形面积最大的一部分所在网格的台区经理为名册中的实名经理（非占位）",
}

#: A 台区 further than this from its township polygon was placed there by snapping (metres).
SNAPPED_MIN_M = 0.5


def _service_points(stations: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Geometries and ids of the stations that count as service points (usable points only)."""
    kind = stations["kind"] if "kind" in stations.columns else pd.Series("供电所", index=stations.index)
    geoms = stations.geometry.to_numpy()
    ok = kind.fillna("供电所").isin(SERVICE_POINT_KINDS).to_numpy() \
        & ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    return geoms[ok], stations["station_id"].astype(str).to_numpy()[ok]


def township_coverage(townships: gpd.GeoDataFrame, stations: gpd.GeoDataFrame) -> pd.DataFrame:
    """乡乡有点: per township, the service points inside it and the nearest one.

    Parameters
    ----------
    townships, stations
        County layers in one metric CRS.

    Returns
    -------
    pandas.DataFrame
        One row per township: ``township_id``, ``name``, ``station_id``, ``has_point`` (bool),
        ``points`` (ids of the service points inside, "、"-separated), ``nearest_point_id`` and
        ``nearest_point_m`` (distance in metres to the nearest service point, 0 when inside).
    """
    pts, ids = _service_points(stations)
    geoms = townships.geometry.to_numpy()
    inside: list[list[str]] = [[] for _ in range(len(geoms))]
    nearest_id = np.full(len(geoms), None, dtype=object)
    nearest_m = np.full(len(geoms), np.nan)
    if len(pts):
        tree = shapely.STRtree(pts)
        live = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        t_idx, p_idx = tree.query(geoms[live], predicate="covers")
        rows = np.flatnonzero(live)
        for t, p in sorted(zip(rows[t_idx], p_idx)):
            inside[t].append(str(ids[p]))
        near, dist = tree.query_nearest(geoms[live], return_distance=True, all_matches=False)
        nearest_id[rows[near[0]]] = ids[near[1]]
        nearest_m[rows[near[0]]] = np.round(dist, 1)
    return pd.DataFrame({
        "township_id": townships["township_id"].astype(str).to_numpy(),
        "name": townships["name"].astype(str).to_numpy(),
        "station_id": townships["station_id"].astype(object).to_numpy(),
        "has_point": np.array([bool(x) for x in inside], dtype=bool),
        "points": ["、".join(sorted(x)) for x in inside],
        "nearest_point_id": nearest_id,
        "nearest_point_m": nearest_m,
    })


def village_coverage(villages: gpd.GeoDataFrame, grids: gpd.GeoDataFrame,
                     townships: gpd.GeoDataFrame) -> pd.DataFrame:
    """村村有人: per village, the grid holding most of its area and whether its manager is named.

    Parameters
    ----------
    villages
        The villages layer (metric CRS).
    grids
        Grid polygons with ``grid_id``, ``station_id``, ``manager_id``, ``manager_name``,
        ``placeholder``.
    townships
        For the station of each village (through its ``township_id``).

    Returns
    -------
    pandas.DataFrame
        One row per village: ``village_id``, ``name``, ``township_id``, ``station_id``,
        ``grid_id``, ``manager_id``, ``manager_name`` (of the grid holding the largest part of the
        village; None when no grid overlaps it), ``named_share`` (share of the village's area in
        grids of named managers), ``covered`` (bool: the largest part's manager is named).
    """
    vg = villages.geometry.to_numpy()
    gg = grids.geometry.to_numpy()
    best = np.full(len(vg), -1)
    best_area = np.zeros(len(vg))
    named_area = np.zeros(len(vg))
    named = ~grids["placeholder"].fillna(True).astype(bool).to_numpy()
    if len(vg) and len(gg):
        v_idx, g_idx = shapely.STRtree(gg).query(vg, predicate="intersects")
        areas = shapely.area(shapely.intersection(vg[v_idx], gg[g_idx]))
        order = np.lexsort((g_idx, -areas, v_idx))  # per village: largest overlap first, then grid order
        for v, g, a in zip(v_idx[order], g_idx[order], areas[order]):
            if a <= 0:
                continue
            if best[v] < 0:
                best[v], best_area[v] = g, a
            if named[g]:
                named_area[v] += a
    total = shapely.area(vg)
    hit = best >= 0

    def col(name: str) -> np.ndarray:
        values = grids[name].astype(object).to_numpy() if name in grids.columns \
            else np.full(len(gg), None, dtype=object)
        none = np.array(None, dtype=object)
        return np.where(hit, values[np.where(hit, best, 0)] if len(gg) else none, none)

    town_station = dict(zip(townships["township_id"].astype(str), townships["station_id"]))
    tid = villages["township_id"].astype(object).to_numpy() if "township_id" in villages.columns \
        else np.full(len(vg), None, dtype=object)
    grid_station = col("station_id")
    station = [town_station.get(str(t), s) if t is not None and not pd.isna(t) else s
               for t, s in zip(tid, grid_station)]
    return pd.DataFrame({
        "village_id": villages["village_id"].astype(str).to_numpy(),
        "name": villages["name"].astype(object).to_numpy(),
        "township_id": tid,
        "station_id": np.asarray(station, dtype=object),
        "grid_id": col("grid_id"),
        "manager_id": col("manager_id"),
        "manager_name": col("manager_name"),
        "named_share": np.round(np.where(total > 0, named_area / np.where(total > 0, total, 1), 0.0), 4),
        "covered": hit & named[np.where(hit, best, 0)] if len(gg) else np.zeros(len(vg), dtype=bool),
    })


def _share(k: int, n: int) -> float | None:
    return round(k / n, 4) if n else None


def coverage_kpis(plan: Plan) -> dict[str, Any]:
    """kpi["coverage"]: 乡乡有点 per township, 村村有人 per village, county and station figures.

    A township has a service point when a station of kind 供电所, 中心供电所 or 供电服务站 lies
    inside its polygon (on the border counts). A village is covered when the grid holding the
    largest part of its area has a named manager (not a placeholder); villages are counted only
    when the county has a villages layer (``villages`` is then None in the figures).
    """
    county = plan.county
    towns = township_coverage(county.townships, county.stations)
    vil = village_coverage(county.villages, plan.grids, county.townships) \
        if county.villages is not None and len(county.villages) else None

    def figures(t: pd.DataFrame, v: pd.DataFrame | None) -> dict[str, Any]:
        out: dict[str, Any] = {"townships": len(t), "townships_with_point": int(t["has_point"].sum()),
                               "township_share": _share(int(t["has_point"].sum()), len(t))}
        if v is None:
            out |= {"villages": None, "villages_covered": None, "village_share": None}
        else:
            out |= {"villages": len(v), "villages_covered": int(v["covered"].sum()),
                    "village_share": _share(int(v["covered"].sum()), len(v))}
        return out

    stations = {}
    for sid in sorted({str(s) for s in county.stations["station_id"].dropna()}):
        t = towns[towns["station_id"].astype(str) == sid]
        v = vil[vil["station_id"].astype(str) == sid] if vil is not None else None
        stations[sid] = figures(t, v)
    missing = towns[~towns["has_point"]]
    result: dict[str, Any] = {
        "rule": dict(COVERAGE_RULE),
        "county": figures(towns, vil),
        "stations": stations,
        "townships_without_point": [
            {"township_id": r.township_id, "name": r.name, "station_id": _text(r.station_id),
             "nearest_point_id": _text(r.nearest_point_id),
             "nearest_point_m": None if pd.isna(r.nearest_point_m) else float(r.nearest_point_m)}
            for r in missing.itertuples(index=False)],
        "villages_uncovered": [],
    }
    if vil is not None:
        result["villages_uncovered"] = [
            {"village_id": r.village_id, "name": _text(r.name), "township_id": _text(r.township_id),
             "grid_id": _text(r.grid_id), "manager_id": _text(r.manager_id),
             "reason": "不在任何网格内" if r.grid_id is None else "网格台区经理为占位（名册缺人）"}
            for r in vil[~vil["covered"]].itertuples(index=False)]
    return result


def coverage_line(coverage: dict[str, Any]) -> str:
    """One Chinese sentence with the county figures (summary screen, map legend)."""
    c = coverage["county"]
    text = f"乡乡有点：{c['townships_with_point']}/{c['townships']} 个乡镇有供电所或服务站"
    if c.get("villages") is not None:
        text += f"；村村有人：{c['villages_covered']}/{c['villages']} 个村有实名台区经理"
    return text


def _text(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


# --------------------------------------------------------------------------- input notes

def snapped_transformers(transformers: gpd.GeoDataFrame, townships: gpd.GeoDataFrame, *,
                         min_m: float = SNAPPED_MIN_M) -> pd.DataFrame:
    """台区 that lie outside the township they were assigned to (placed there by snapping).

    Returns
    -------
    pandas.DataFrame
        ``transformer_id``, ``township_id``, ``distance_m`` (to that township's polygon), sorted
        by id.
    """
    geom = dict(zip(townships["township_id"].astype(str), townships.geometry.to_numpy()))
    tid = transformers["township_id"].astype(str).to_numpy()
    pts = transformers.geometry.to_numpy()
    names, code = label_codes(tid)
    dist = np.zeros(len(pts))
    present = ~shapely.is_missing(pts)
    for name, rows in zip(names.tolist(), group_members(code)):
        poly = geom.get(name)
        if poly is None or poly.is_empty:
            continue
        rows = rows[present[rows]]
        shapely.prepare(poly)
        out_rows = rows[~shapely.covers(poly, pts[rows])]  # a point the polygon covers: 0 m
        if len(out_rows):
            dist[out_rows] = shapely.distance(pts[out_rows], poly)
    far = dist > min_m
    out = pd.DataFrame({"transformer_id": transformers["transformer_id"].astype(str).to_numpy()[far],
                        "township_id": tid[far], "distance_m": np.round(dist[far], 1)})
    return out.sort_values("transformer_id").reset_index(drop=True)


def absorbed_townships(townships: gpd.GeoDataFrame, transformers: gpd.GeoDataFrame,
                       grids: gpd.GeoDataFrame) -> pd.DataFrame:
    """Townships without 台区, and the grid that took in their territory (most of their area).

    Returns
    -------
    pandas.DataFrame
        ``township_id``, ``name``, ``station_id``, ``grid_id`` (None when no grid covers it).
    """
    used = set(transformers["township_id"].astype(str))
    empty = townships[~townships["township_id"].astype(str).isin(used)].sort_values("township_id")
    gg = grids.geometry.to_numpy()
    picks: list[str | None] = []
    for geom in empty.geometry.to_numpy():
        area = shapely.area(shapely.intersection(gg, geom)) if len(gg) and geom is not None \
            else np.zeros(0)
        picks.append(str(grids["grid_id"].iloc[int(np.argmax(area))]) if len(area) and area.max() > 0
                     else None)
    return pd.DataFrame({"township_id": empty["township_id"].astype(str).to_numpy(),
                         "name": empty["name"].astype(str).to_numpy(),
                         "station_id": empty["station_id"].astype(object).to_numpy(),
                         "grid_id": np.asarray(picks, dtype=object)})


def stations_without_roster(grids: gpd.GeoDataFrame,
                            managers_in: pd.DataFrame | None) -> pd.DataFrame:
    """Stations whose grids all got placeholder managers because the roster has no row for them.

    Parameters
    ----------
    grids
        Planned grids (``station_id``, ``placeholder``).
    managers_in
        The county's roster (``County.managers``) or None.

    Returns
    -------
    pandas.DataFrame
        ``station_id``, ``grids``, ``placeholders``, sorted.
    """
    listed = set() if managers_in is None else set(managers_in["station_id"].dropna().astype(str))
    rows = []
    for sid, g in grids.groupby(grids["station_id"].astype(str)):
        if sid not in listed:
            rows.append((sid, len(g), int(g["placeholder"].astype(bool).sum())))
    return pd.DataFrame(rows, columns=["station_id", "grids", "placeholders"])


def input_kpis(plan: Plan, *, swapped: list[dict[str, Any]] | None = None
               ) -> tuple[dict[str, Any], list[str]]:
    """kpi["input"]: what the plan did with the input that the user should know, and notes.

    Parameters
    ----------
    plan
        The plan (grids with managers).
    swapped
        ``County.input["swapped"]``: per file, the rows whose lon/lat were swapped back.

    Returns
    -------
    (dict, list of str)
        ``{"snapped_transformers": [...], "swapped_rows": [...], "absorbed_townships": [...],
        "stations_without_roster": [...]}`` and Chinese sentences for the notes (only on what
        :attr:`County.report` does not already say).
    """
    county = plan.county
    recorded = [r for r in (getattr(county, "snapped", None) or []) if r.get("layer") == "transformers"]
    if recorded:  # the loader snapped them (and planned them 1 m inside): its record is the truth
        snapped = pd.DataFrame(
            [{"transformer_id": str(r["id"]), "township_id": str(r["township_id"]),
              "distance_m": round(float(r["distance_m"]), 1)} for r in recorded]
        ).sort_values("transformer_id").reset_index(drop=True)
    else:
        snapped = snapped_transformers(plan.transformers, county.townships)
    absorbed = absorbed_townships(county.townships, plan.transformers, plan.grids)
    no_roster = stations_without_roster(plan.grids, county.managers)
    names = dict(zip(county.stations["station_id"].astype(str), county.stations["name"]))
    notes: list[str] = []
    for r in absorbed.itertuples(index=False):
        where = f"并入网格 {r.grid_id}" if r.grid_id else "未能并入任何网格"
        notes.append(f"乡镇 {r.name}（{r.township_id}）没有台区，其辖区{where}")
    if county.managers is not None:
        for r in no_roster.itertuples(index=False):
            notes.append(f"供电所 {names.get(r.station_id, r.station_id)}（{r.station_id}）在台区经理名册中"
                         f"没有人员：{r.grids} 个网格使用占位经理")
    data = {
        "snapped_transformers": snapped.to_dict("records"),
        "swapped_rows": list(swapped or []),
        "absorbed_townships": [{k: _text(v) for k, v in r.items()}
                               for r in absorbed.to_dict("records")],
        "stations_without_roster": [dict(r, name=_text(names.get(r["station_id"])))
                                    for r in no_roster.to_dict("records")],
    }
    return data, notes


#: Above this many 台区 in one township (station) no bound is computed (the kNN bound holds
#: O(n · neighbours) pairs: ≈ 200 MB at this size).
OPTIMALITY_MAX_UNITS = 50_000
#: Up to this many 台区 the bound uses the dense n × n matrix (:func:`pmedian_lower_bound`).
OPTIMALITY_DENSE_MAX = 100
#: Above this many 台区 :func:`township_bound` starts from the plan's medoids (warm start).
OPTIMALITY_WARM_MIN = 500
#: Subgradient steps of the warm start.
OPTIMALITY_WARM_STEPS = 25
#: Step-size factor of the warm start after a step that does not raise the bound.
OPTIMALITY_WARM_DECAY = 0.7
#: Neighbours per 台区 of the warm start, in grid sizes (n / k).
OPTIMALITY_WARM_NEIGHBOURS = 1.5


def _scope_keys(tr: Any, scope: str) -> np.ndarray:
    col = "township_id" if scope == "township" or "station_id" not in tr else "station_id"
    keys: np.ndarray = tr[col].astype(str).to_numpy()
    return keys


def township_bound(xy: np.ndarray, k: int, value: float, *,
                   centres: np.ndarray | None = None) -> float:
    """The certificate's lower bound for one township (station) of ``k`` grids, plan value ``value``.

    Up to :data:`OPTIMALITY_DENSE_MAX` 台区 :func:`pmedian_lower_bound` (dense, 300 subgradient
    steps); above, :func:`pmedian_lower_bound_knn` with the plan's own value as the upper
    estimate of its Polyak steps (any estimate keeps the bound valid; a good one makes it
    converge in fewer steps). Up to :data:`OPTIMALITY_WARM_MIN` 台区, or without ``centres``:
    200 steps up to 500 台区 and 100 above, 4 grid sizes of neighbours per 台区 (32 to 96).
    Above it, given the plan's grid ``centres`` (medoids), the warm start: ``λ`` starts halfway
    between every 台区's distances to its nearest and second-nearest medoid, and
    :data:`OPTIMALITY_WARM_STEPS` shorter steps (Polyak estimate halfway between the best
    bound and ``value``, step size × :data:`OPTIMALITY_WARM_DECAY` after a step that does not
    raise the bound) over :data:`OPTIMALITY_WARM_NEIGHBOURS` grid sizes of neighbours (16 to
    96). Start, steps and neighbours only change how close the bound gets: every ``λ`` gives a
    valid bound. Never above ``value`` (that would be float rounding only).
    """
    n = len(xy)
    if n <= OPTIMALITY_DENSE_MAX:
        bound = pmedian_lower_bound(xy, k, iterations=300)
    elif centres is not None and n > OPTIMALITY_WARM_MIN:
        m = int(min(96, max(16, math.ceil(OPTIMALITY_WARM_NEIGHBOURS * n / k))))
        bound = pmedian_lower_bound_knn(xy, k, neighbours=m, upper=value, centres=centres,
                                        iterations=OPTIMALITY_WARM_STEPS, target=0.5,
                                        decay=OPTIMALITY_WARM_DECAY)
    else:
        m = int(min(96, max(32, math.ceil(4 * n / k))))
        bound = pmedian_lower_bound_knn(xy, k, neighbours=m, upper=value,
                                        iterations=200 if n <= 500 else 100)
    return min(bound, value)


def _medoid_bound_task(task: tuple[np.ndarray, np.ndarray, int, bool]
                       ) -> tuple[float | None, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """One township's grid medoids (:func:`group_medoids`), its value and (``bound``) its bound.

    ``task``: the township's coordinates, its 台区' grids (``0 .. k - 1``, in grid id order),
    ``k``, whether to bound it. Returns the bound (None), each grid's medoid (a position in the
    township's rows), mean and max distance and size, and the value: the numbers
    :func:`start_optimality` computes for it from the county's medoids, in the same order.
    """
    xy, codes, k, bound = task
    best, mean_m, max_m = group_medoids(xy, codes, k)
    size = np.bincount(codes, minlength=k)
    value = 0.0
    for p_ in range(k):  # in grid id order, as a sum over the sorted grids
        value += float(mean_m[p_]) * int(size[p_])
    found = township_bound(xy, k, float(value), centres=xy[best]) if bound else None
    return found, best, mean_m, max_m, size, float(value)


def _bound_task(task: tuple[np.ndarray, int, float, np.ndarray | None]) -> float:
    """:func:`township_bound` of one ``(xy, k, value, centres)`` (a picklable task for a pool)."""
    xy, k, value, centres = task
    return township_bound(xy, k, value, centres=centres)


def optimality(xy: np.ndarray, grid_id: np.ndarray, keys: np.ndarray, *,
               scope: str = "township", pool: Executor | None = None,
               medoids: pd.DataFrame | None = None) -> dict[str, Any]:
    """Certificate of quality: a lower bound on the total distance, and the plan's gap.

    ``start_optimality(...).result()``: see :func:`start_optimality`.
    """
    return start_optimality(xy, grid_id, keys, scope=scope, pool=pool, medoids=medoids).result()


@dataclass
class PendingOptimality:
    """The certificate of :func:`start_optimality` while its township bounds are computed.

    ``grid_id`` and ``medoids``: the grids it was started for and their :func:`grid_medoids`
    (:func:`compute_kpis` uses the certificate only for the same grids, and reuses the medoids).
    ``tasks``: when the medoids are found in the pool with the bounds (one task per township:
    its rows, its grids' codes, the future of :func:`_medoid_bound_task` and its arguments) and
    ``gids`` the grid ids; ``medoids``, ``values`` and ``bounds`` are then filled from the tasks'
    results when first asked for (:meth:`grid_medoids`, :meth:`result`).
    """

    grid_id: np.ndarray
    medoids: pd.DataFrame | None
    scope: str
    names: list[str]
    values: list[float]
    bounds: Iterator[float]
    skipped: list[str]
    tasks: list[tuple[np.ndarray, np.ndarray, Future[Any], tuple[Any, ...]]] | None = None
    gids: Any = None

    def grid_medoids(self, *, takeover: Executor | None = None) -> pd.DataFrame | None:
        """The grids' :func:`grid_medoids` (waits for the tasks that find them).

        ``takeover``: an executor that runs the townships' tasks that have not started yet (the
        pipeline starts the certificate in spare processes that get only idle cores; once the
        KPI stage waits for it, the rest should not wait for idle cores). The same numbers.
        """
        if self.tasks is not None:
            self._collect(self.tasks, takeover)
        return self.medoids

    def _collect(self, tasks: list[tuple[np.ndarray, np.ndarray, Future[Any], tuple[Any, ...]]],
                 takeover: Executor | None) -> None:
        """Medoids, values and bounds from the tasks' results, as computed here otherwise."""
        self.tasks = None
        if takeover is not None:
            tasks = [(rows, grids, takeover.submit(_medoid_bound_task, args) if future.cancel() else future, args)
                     for rows, grids, future, args in tasks]
        n = len(self.gids)
        row, size = np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
        mean_m, max_m = np.zeros(n), np.zeros(n)
        bounds: list[float] = []
        for rows, grids, future, _ in tasks:
            bound, best, mean, far, count, value = future.result()
            row[grids], mean_m[grids], max_m[grids], size[grids] = rows[best], mean, far, count
            if bound is not None:
                self.values.append(value)
                bounds.append(bound)
        self.bounds = iter(bounds)
        self.medoids = pd.DataFrame({"row": row, "n": size, "mean_m": mean_m, "max_m": max_m},
                                    index=pd.Index(self.gids, dtype=object))

    def result(self, *, takeover: Executor | None = None) -> dict[str, Any]:
        """The ``kpi["optimality"]`` section (waits for the bounds; ``takeover``: see :meth:`grid_medoids`)."""
        self.grid_medoids(takeover=takeover)
        per = {key: _gap(bound, value) for key, bound, value in zip(self.names, self.bounds,
                                                                     self.values)}
        county: dict[str, Any] = _gap(sum(v["bound_m"] for v in per.values()),
                                      sum(v["value_m"] for v in per.values()))
        county["covers"] = "all" if not self.skipped else "townships with a bound"
        return {"county": county, f"{self.scope}s": per, "skipped": self.skipped,
                "measure": "Σ straight-line distance from each 台区 to its grid's medoid (m)",
                "method": "Lagrangian relaxation of the p-median, every 台区 a candidate centre"}


def start_optimality(xy: np.ndarray, grid_id: np.ndarray, keys: np.ndarray, *,
                     scope: str = "township", pool: Executor | None = None,
                     medoids: pd.DataFrame | None = None,
                     grid_codes: tuple[np.ndarray, np.ndarray] | None = None) -> PendingOptimality:
    """Start the certificate of quality: a lower bound on the total distance, and the plan's gap.

    With ``pool`` the township bounds are submitted at once and computed while the caller goes
    on (:meth:`PendingOptimality.result` waits for them); without, they are computed when the
    result is asked for. The same result either way.

    The value of a plan is ``Σ`` over 台区 of the straight-line distance (metres) to the medoid of
    its grid. For each township (station, with ``scope="station"``) with ``k`` grids, the bound is
    :func:`township_bound`: a Lagrangian bound of the p-median problem with every 台区 a
    candidate centre (:func:`gridplan.lv.solver.pmedian_lower_bound`, and its kNN form above
    :data:`OPTIMALITY_DENSE_MAX` 台区, started from the plan's grid medoids above
    :data:`OPTIMALITY_WARM_MIN`). Every plan of that township with ``k`` grids, balanced and
    contiguous or not, is a p-median solution, so the bound is never above the best such plan
    (see docs/benchmarks.md); weak duality holds for any multipliers, so neither the start nor
    the number of steps can make it invalid. The county bound is the sum of the township bounds
    (grids never cross a township, so the county value is the sum of township values).

    Parameters
    ----------
    xy
        ``(n, 2)`` metric coordinates of the 台区.
    grid_id
        Grid of every 台区.
    keys
        Township (station) of every 台区.
    scope
        ``"township"`` or ``"station"``, only used to name the section.
    pool
        Optional executor (e.g. a ``ProcessPoolExecutor``) the townships' bounds are computed
        in; the result is the same with or without it.
    medoids
        :func:`grid_medoids` of ``xy`` by ``grid_id`` when already computed.
    grid_codes
        ``label_codes(grid_id)`` (sorted ids, codes) of the grid ids as str, when already computed.

    Returns
    -------
    PendingOptimality
        Its :meth:`~PendingOptimality.result`: ``{"county": {"bound_m", "value_m", "gap"},
        "<scope>s": {key: {...}}, "skipped": [...]}``; ``gap = (value − bound) / value`` (0 when
        the value is 0).
    """
    grid_id = _str_values(grid_id)
    kcode, kids = pd.factorize(_str_values(keys), sort=True)
    if grid_codes is None:
        gcode, gids = pd.factorize(grid_id, sort=True)
    else:
        gids, gcode = grid_codes
    pair, pairs = pd.factorize(kcode.astype(np.int64) * max(len(gids), 1) + gcode, sort=True)
    # every grid in one township: the medoids are reused, or found in the pool with the bounds
    in_tasks = medoids is None and pool is not None and len(pairs) == len(gids)
    if medoids is not None and len(pairs) == len(gids):
        mean_m = medoids["mean_m"].reindex(gids).to_numpy()
        med_row = medoids["row"].reindex(gids).to_numpy().astype(np.int64)
    elif not in_tasks:
        med_row, mean_m, _ = group_medoids(np.asarray(xy, dtype=float), pair, len(pairs))
    size = np.bincount(pair, minlength=len(pairs))
    pair_key = pairs // max(len(gids), 1)  # pairs are sorted: by township, then grid id
    order = np.argsort(kcode, kind="stable")
    ends = np.cumsum(np.bincount(kcode, minlength=len(kids)))
    skipped: list[str] = []
    tasks: list[tuple[np.ndarray, int, float, np.ndarray | None]] = []
    names: list[str] = []
    values: list[float] = []
    first = np.searchsorted(pair_key, np.arange(len(kids)))
    pending: list[tuple[np.ndarray, np.ndarray, Future[Any], tuple[Any, ...]]] = []
    for t, key in enumerate(kids.tolist()):
        rows = order[(ends[t - 1] if t else 0):ends[t]]
        mine = np.arange(first[t], first[t + 1] if t + 1 < len(kids) else len(pairs))
        if in_tasks:
            assert pool is not None  # in_tasks: the pool finds the medoids
            big = len(rows) > OPTIMALITY_MAX_UNITS
            if big:
                skipped.append(key)
                log.info("optimality: %s has %d 台区 (> %d), no bound computed", key, len(rows),
                         OPTIMALITY_MAX_UNITS)
            else:
                names.append(key)
            local = (pair[rows] - first[t]).astype(np.int64)  # its grids, 0 .. k - 1
            args = (xy[rows], local, len(mine), not big)
            pending.append((rows, pairs[mine] % max(len(gids), 1), pool.submit(_medoid_bound_task, args), args))
            continue
        value = 0.0
        for p_ in mine.tolist():  # in grid id order, as a sum over the sorted grids
            value += float(mean_m[p_]) * int(size[p_])
        k = len(mine)
        if len(rows) > OPTIMALITY_MAX_UNITS:
            skipped.append(key)
            log.info("optimality: %s has %d 台区 (> %d), no bound computed", key, len(rows),
                     OPTIMALITY_MAX_UNITS)
            continue
        tasks.append((xy[rows], k, float(value), xy[med_row[mine]]))  # centres: the medoids
        names.append(key)
        values.append(float(value))
    if in_tasks:
        return PendingOptimality(grid_id, None, scope, names, values, iter(()), skipped,
                                 tasks=pending, gids=gids)
    bounds = (map(_bound_task, tasks) if pool is None  # Executor.map submits them all now
              else pool.map(_bound_task, tasks, chunksize=max(1, len(tasks) // 64)))
    return PendingOptimality(grid_id, medoids, scope, names, values, iter(bounds), skipped)


def start_certificate(transformers: Any, params: Any, *, pool: Executor | None,
                      grid_codes: tuple[np.ndarray, np.ndarray] | None = None) -> PendingOptimality:
    """:func:`start_optimality` of the 台区 as planned (``grid_id``), with their grids' medoids.

    For :func:`gridplan.pipeline.plan`, which starts the certificate in its worker pool once the
    grids are drawn and passes it to :func:`compute_kpis` (``started``). ``grid_codes``:
    ``label_codes(transformers["grid_id"].to_numpy())`` when already computed.
    """
    xy = shapely.get_coordinates(transformers.geometry.values)
    gid = _str_values(transformers["grid_id"].to_numpy())
    # one factorization for the medoids and the bounds
    codes = _str_codes(grid_codes) or label_codes(gid)
    # with a pool, the medoids are found there with the bounds (one task per township)
    medoids = None if pool is not None else grid_medoids(xy, gid, grid_codes=codes)
    return start_optimality(xy, gid, _scope_keys(transformers, params.scope), scope=params.scope,
                            pool=pool, medoids=medoids, grid_codes=codes)


def _str_codes(grid_codes: tuple[np.ndarray, np.ndarray] | None
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """``grid_codes`` when they are those of the grid ids as str (every id a str, none missing).

    Else None: the ids are to be made str (``astype(str)``) and factorized anew.
    """
    if grid_codes is None or (grid_codes[1] < 0).any():
        return None
    ids = np.asarray(grid_codes[0], dtype=object)
    return grid_codes if pd.api.types.infer_dtype(ids, skipna=False) == "string" or not len(ids) else None


def _str_values(values: Any) -> np.ndarray:
    """``values`` as an object array of str (``np.asarray(values, dtype=object).astype(str)``'s values).

    Values that are all str already are kept as they are (no unicode array, whose strings
    would be made anew by every lookup).
    """
    arr = np.asarray(values, dtype=object)
    if pd.api.types.infer_dtype(arr, skipna=False) == "string" or not len(arr):
        return arr
    out: np.ndarray = arr.astype(str).astype(object)
    return out


def _gap(bound: float, value: float) -> dict[str, float]:
    return {"bound_m": round(float(bound), 1), "value_m": round(float(value), 1),
            "gap": round(float((value - bound) / value), 4) if value > 0 else 0.0}
