"""KPIs of a plan: balance, contiguity, compactness and grid counts, per grid, station and county.

Per-grid values are also written into the ``grids`` layer (``balance``, ``polsby_popper``,
``mean_dist_m``, ``max_dist_m``, ``contiguous``). All distances are metres in the county's CRS.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

if TYPE_CHECKING:
    from .plan import Plan

__all__ = ["compute_kpis", "balance_stats", "medoid_distances", "multipart_grids", "noncontiguous_grids"]

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


def noncontiguous_grids(xy: np.ndarray, grid_id: np.ndarray, edges: np.ndarray) -> list[str]:
    """Grids whose 台区 are not connected on the neighbourhood graph ``edges``."""
    if len(edges) == 0:
        same = np.zeros(0, dtype=bool)
    else:
        same = grid_id[edges[:, 0]] == grid_id[edges[:, 1]]
    e = edges[same] if len(edges) else edges
    n = len(xy)
    adj = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)) if len(e) else coo_matrix((n, n))
    _, comp = connected_components(adj, directed=False)
    per = pd.DataFrame({"g": grid_id, "c": comp}).groupby("g")["c"].nunique()
    return sorted(per[per > 1].index.astype(str))


def multipart_grids(grids, townships) -> list[str]:
    """Grids whose polygon has more parts than the townships it covers (which may be multi-part)."""
    town_parts = dict(zip(townships["township_id"].astype(str),
                          shapely.get_num_geometries(townships.geometry.values)))
    names = dict(zip(townships["name"].astype(str), townships["township_id"].astype(str)))
    out = []
    for g in grids.itertuples():
        parts = shapely.get_num_geometries(g.geometry)
        covered = {str(g.township_id)} | {names[n] for n in str(getattr(g, "townships", "")).split("、")
                                          if n in names}
        if parts > sum(town_parts.get(t, 1) for t in covered):
            out.append(str(g.grid_id))
    return sorted(out)


def compute_kpis(plan: "Plan", *, lower_bound: int | None = None,
                 hv_kpi: dict[str, Any] | None = None, edges: np.ndarray | None = None
                 ) -> dict[str, Any]:
    """Compute the KPIs of ``plan`` and add the per-grid ones to ``plan.grids``.

    Returns
    -------
    dict
        ``{"county": {...}, "stations": {station_id: {...}}, "hv": {...}, "notes": [...]}``.
    """
    from .territory import contiguity_edges

    tr, grids = plan.transformers, plan.grids
    xy = shapely.get_coordinates(tr.geometry.values)
    gid = tr["grid_id"].astype(str).to_numpy()
    if edges is None:
        edges = contiguity_edges(plan.county, tr, scope=plan.params.scope)
    broken = noncontiguous_grids(xy, gid, edges)
    split = multipart_grids(grids, plan.county.townships)

    per = {}
    for g, idx in pd.Series(np.arange(len(tr))).groupby(gid):
        _, mean_d, max_d = medoid_distances(xy[idx.to_numpy()])
        per[g] = (mean_d, max_d)
    grids["mean_dist_m"] = grids["grid_id"].map(lambda g: round(per.get(g, (0, 0))[0], 1))
    grids["max_dist_m"] = grids["grid_id"].map(lambda g: round(per.get(g, (0, 0))[1], 1))
    area, perim = grids.geometry.area.to_numpy(), grids.geometry.length.to_numpy()
    grids["polsby_popper"] = np.round(np.where(perim > 0, 4 * math.pi * area / perim**2, 0.0), 4)
    grids["contiguous"] = ~grids["grid_id"].isin(broken)
    grids["balance"] = (grids["workload"] / grids.groupby("station_id")["workload"].transform("mean")).round(3)
    if "hv_km" not in grids.columns:
        grids["hv_km"] = 0.0

    real = grids[grids["n_transformers"] > 0]
    county = {
        "name": plan.county.name,
        "townships": int(len(plan.county.townships)),
        "stations": int(len(plan.county.stations)),
        "transformers": int(len(tr)),
        "households": int(tr["customers"].sum()),
        "grids": int(len(grids)),
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
            "grids": int(len(sg)), "transformers": int(sg["n_transformers"].sum()),
            "households": int(sg["customers"].sum()), "workload": round(float(sg["workload"].sum()), 2),
            "placeholder_managers": int(sg["placeholder"].sum()),
            **balance_stats(sg_real["workload"].to_numpy())}
    hv: dict[str, Any] = dict(hv_kpi or {})
    if plan.segments is not None and len(plan.segments):
        s = plan.segments
        hv |= {"segments": int(len(s)), "feeders": int(s["feeder_id"].nunique()),
              "total_km": round(float(s["length_km"].sum()), 3),
              "max_segment_km": round(float(s["length_km"].max()), 3),
              "mean_segment_km": round(float(s["length_km"].mean()), 3)}
        if "share_in_grid" in s.columns:
            hv["mean_share_in_grid"] = round(float(np.average(s["share_in_grid"], weights=s["length_km"])), 4)
    return {"county": county, "stations": stations, "hv": hv,
            "optimality": optimality(xy, gid, _scope_keys(tr, plan.params.scope),
                                     scope=plan.params.scope),
            "notes": list(plan.notes)}


#: Above this many 台区 in one township (station) no bound is computed (it needs an n × n matrix).
OPTIMALITY_MAX_UNITS = 2500


def _scope_keys(tr: Any, scope: str) -> np.ndarray:
    col = "township_id" if scope == "township" or "station_id" not in tr else "station_id"
    return tr[col].astype(str).to_numpy()


def optimality(xy: np.ndarray, grid_id: np.ndarray, keys: np.ndarray, *,
               scope: str = "township") -> dict[str, Any]:
    """Certificate of quality: a lower bound on the total distance, and the plan's gap.

    The value of a plan is ``Σ`` over 台区 of the straight-line distance (metres) to the medoid of
    its grid. For each township (station, with ``scope="station"``) with ``k`` grids, the bound is
    :func:`gridplan._solver.pmedian_lower_bound`: a Lagrangian bound of the p-median problem with
    every 台区 a candidate centre. Every plan of that township with ``k`` grids, balanced and
    contiguous or not, is a p-median solution, so the bound is never above the best such plan
    (see docs/benchmarks.md). The county bound is the sum of the township bounds (grids never
    cross a township, so the county value is the sum of township values).

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

    Returns
    -------
    dict
        ``{"county": {"bound_m", "value_m", "gap"}, "<scope>s": {key: {...}}, "skipped": [...]}``;
        ``gap = (value − bound) / value`` (0 when the value is 0).
    """
    from ._solver import pmedian_lower_bound

    per: dict[str, dict[str, float]] = {}
    skipped: list[str] = []
    for key in sorted(set(keys.tolist())):
        rows = np.flatnonzero(keys == key)
        gids = grid_id[rows]
        k = len(set(gids.tolist()))
        value = 0.0
        for g in sorted(set(gids.tolist())):
            sub = xy[rows[gids == g]]
            _, mean_d, _ = medoid_distances(sub)
            value += mean_d * len(sub)
        if len(rows) > OPTIMALITY_MAX_UNITS:
            skipped.append(key)
            log.info("optimality: %s has %d 台区 (> %d), no bound computed", key, len(rows),
                     OPTIMALITY_MAX_UNITS)
            continue
        bound = min(pmedian_lower_bound(xy[rows], k, iterations=300 if len(rows) <= 500 else 100),
                    value)  # float rounding only: a valid bound never exceeds a feasible value
        per[key] = _gap(bound, value)
    county = _gap(sum(v["bound_m"] for v in per.values()),
                  sum(v["value_m"] for v in per.values()))
    county["covers"] = "all" if not skipped else "townships with a bound"
    return {"county": county, f"{scope}s": per, "skipped": skipped,
            "measure": "Σ straight-line distance from each 台区 to its grid's medoid (m)",
            "method": "Lagrangian relaxation of the p-median, every 台区 a candidate centre"}


def _gap(bound: float, value: float) -> dict[str, float]:
    return {"bound_m": round(float(bound), 1), "value_m": round(float(value), 1),
            "gap": round(float((value - bound) / value), 4) if value > 0 else 0.0}
