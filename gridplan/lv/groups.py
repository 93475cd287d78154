"""Service groups (供电服务小组): contiguous, workload-balanced groups of neighbouring grids.

The level between a station and its grids (national figures: 150,000 grids in 67,000 groups;
stations such as one cut into "三区九格" draw three groups of three grids). With
``[plan] groups_per_station = k`` each station's grids are cut into ``k`` groups, with
``grids_per_group = m`` into ``ceil(n_grids / m)``. Groups are:

* **nested exactly**: every grid is in exactly one group, and a group never crosses a station;
* **contiguous**: the grids of a group are connected through grid polygons that share a border
  (:func:`grid_adjacency`: at least :data:`MIN_SHARED_M` of common border, within
  :data:`TOUCH_M`, so simplified township outlines that leave hairline gaps still touch);
* **balanced** by workload: the grid adjacency graph is partitioned with
  :func:`gridplan.lv.partition.balanced_contiguous`, grid workloads as weights and the grids'
  label points as coordinates.

A station whose grids fall into several pieces that share no border (islands, enclaves) is cut
piece by piece: each piece gets groups in proportion to its workload, at least one, so the group
count may exceed the one asked for (said in the notes). The group leader (组长) is chosen in
:func:`gridplan.people.assign.assign_group_leaders`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..model import Plan, register_layer
from ..settings import Params
from .graph import components
from .partition import balanced_contiguous

__all__ = [
    "GROUP_LAYER_COLUMNS",
    "MIN_SHARED_M",
    "TOUCH_M",
    "GroupResult",
    "grid_adjacency",
    "group_count",
    "groups_kpi",
    "groups_layer",
    "plan_groups",
]

log = logging.getLogger(__name__)

#: Two grid polygons closer than this (metres) may be neighbours ...
TOUCH_M = 5.0
#: ... when they share at least this much border (metres): corners and hairlines do not count.
MIN_SHARED_M = 50.0
#: Columns of the ``groups`` layer of ``plan.gpkg`` (besides the geometry).
GROUP_LAYER_COLUMNS = ("group_id", "group_name", "station_id", "leader", "leader_id", "leader_phone",
                       "leader_source", "workload", "customers", "n_transformers", "n_grids",
                       "grids", "balance")


class GroupResult:
    """Service groups of a county's grids.

    Attributes
    ----------
    group_id
        The group of every row of ``grids`` (same order).
    group_name
        Its display name (Chinese): ``"<station name>第<n>服务小组"``.
    notes
        Sentences for the user (Chinese): pieces, groups added, groups of one grid.
    """

    def __init__(self, group_id: np.ndarray, group_name: np.ndarray, notes: list[str]) -> None:
        self.group_id = group_id
        self.group_name = group_name
        self.notes = notes


def group_count(n_grids: int, *, groups_per_station: int | None, grids_per_group: int | None) -> int:
    """Groups for a station of ``n_grids`` grids (between 1 and ``n_grids``; 0 without grids)."""
    if n_grids <= 0:
        return 0
    if groups_per_station is not None:
        k = int(groups_per_station)
    elif grids_per_group is not None:
        k = math.ceil(n_grids / int(grids_per_group))
    else:
        raise ValueError("give groups_per_station or grids_per_group")
    return max(1, min(k, n_grids))


def grid_adjacency(grids: gpd.GeoDataFrame, *, touch_m: float = TOUCH_M,
                   min_shared_m: float = MIN_SHARED_M) -> np.ndarray:
    """Pairs of row positions of ``grids`` whose polygons share a border.

    Parameters
    ----------
    grids
        Polygons in a metric CRS.
    touch_m
        Polygons closer than this are candidates.
    min_shared_m
        Length of one polygon's boundary within ``touch_m`` of the other needed to count as a
        shared border (so that touching corners do not make neighbours).

    Returns
    -------
    numpy.ndarray
        ``(m, 2)`` int pairs ``(a, b)`` with ``a < b``, sorted.
    """
    geoms = np.asarray(grids.geometry.values, dtype=object)
    if len(geoms) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="dwithin", distance=touch_m)
    keep = left < right
    a, b = left[keep], right[keep]
    if not len(a):
        return np.zeros((0, 2), dtype=np.int64)
    shared = shapely.length(shapely.intersection(shapely.boundary(geoms[a]),
                                                 shapely.buffer(geoms[b], touch_m)))
    ok = shared >= min_shared_m
    pairs = np.column_stack([a[ok], b[ok]]).astype(np.int64)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if len(pairs) else pairs


def _allocate(k: int, weights: list[float], sizes: list[int]) -> list[int]:
    """Groups per piece: at least 1 and at most its grid count, in proportion to workload."""
    n = len(weights)
    out = [1] * n
    total = sum(weights)
    for _ in range(max(0, k - n)):
        # the piece with the largest workload per group that can still take a group
        room = [i for i in range(n) if out[i] < sizes[i]]
        if not room:
            break
        share = [(weights[i] if total > 0 else sizes[i]) / out[i] for i in room]
        out[room[int(np.argmax(share))]] += 1
    return out


def _station_groups(xy: np.ndarray, w: np.ndarray, edges: np.ndarray, k: int, *,
                    params: Params) -> tuple[np.ndarray, int]:
    """Group label (0-based) of every grid of one station, and the number of pieces."""
    n = len(xy)
    comp = components(n, edges)
    pieces = [np.flatnonzero(comp == c) for c in range(int(comp.max()) + 1)] if n else []
    pieces.sort(key=lambda idx: int(idx[0]))
    ks = _allocate(k, [float(w[idx].sum()) for idx in pieces], [len(idx) for idx in pieces])
    labels = np.full(n, -1, dtype=np.int64)
    base = 0
    for idx, kp in zip(pieces, ks):
        pos = np.full(n, -1, dtype=np.int64)
        pos[idx] = np.arange(len(idx))
        inside = (comp[edges[:, 0]] == comp[idx[0]]) if len(edges) else np.zeros(0, bool)
        sub = pos[edges[inside]] if len(edges) else np.zeros((0, 2), np.int64)
        if kp == 1 or len(idx) == 1:
            part = np.zeros(len(idx), dtype=np.int64)
        else:
            part = balanced_contiguous(xy[idx], w[idx], kp, edges=sub, tolerance=params.tolerance,
                                       seed=params.seed, time_limit=params.time_limit)
        labels[idx] = base + part
        base += kp
    return _renumber(labels), len(pieces)


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Labels numbered in order of each group's first grid (grids are sorted by id)."""
    order: dict[int, int] = {}
    for lab in labels.tolist():
        order.setdefault(lab, len(order))
    return np.array([order[lab] for lab in labels.tolist()], dtype=np.int64)


def plan_groups(grids: gpd.GeoDataFrame, stations: pd.DataFrame | None, *,
                params: Params) -> GroupResult:
    """Cut every station's grids into contiguous, balanced service groups.

    Parameters
    ----------
    grids
        One row per grid: ``grid_id``, ``station_id``, ``workload``, polygon geometry (metric).
    stations
        ``station_id`` and ``name`` (for the group names); may be None.
    params
        ``groups_per_station`` or ``grids_per_group``; ``tolerance``, ``seed``, ``time_limit``
        of the balanced partition.

    Returns
    -------
    GroupResult
        Group ids ``"<station_id>-G<nn>"`` (numbered from the group holding the station's
        lowest grid id), names and notes, in the order of ``grids``.
    """
    names = ({} if stations is None else
             {str(s): str(n) for s, n in zip(stations["station_id"], stations["name"])})
    gid = np.full(len(grids), None, dtype=object)
    gname = np.full(len(grids), None, dtype=object)
    notes: list[str] = []
    pos = pd.Series(np.arange(len(grids)), index=grids.index)
    station = grids["station_id"].astype(object).where(grids["station_id"].notna(), "")
    for sid, grp in grids.assign(_s=station.astype(str)).groupby("_s", sort=True):
        grp = grp.sort_values("grid_id")
        k = group_count(len(grp), groups_per_station=params.groups_per_station,
                        grids_per_group=params.grids_per_group)
        geo = gpd.GeoDataFrame(geometry=grp.geometry.values, crs=grids.crs)
        edges = grid_adjacency(geo)
        xy = shapely.get_coordinates(shapely.point_on_surface(np.asarray(grp.geometry.values)))
        w = pd.to_numeric(grp["workload"], errors="coerce").fillna(0.0).clip(lower=0).to_numpy(float)
        labels, n_pieces = _station_groups(xy, w, edges, k, params=params)
        got = int(labels.max()) + 1
        label = names.get(str(sid), str(sid)) or "未归属供电所"
        if got > k:
            notes.append(f"供电所 {label}：网格分布在 {n_pieces} 块互不相邻的区域，"
                         f"服务小组由 {k} 个增至 {got} 个（小组不跨越不相邻的区域）")
        rows = pos.loc[grp.index].to_numpy()
        gid[rows] = [f"{sid}-G{lab + 1:02d}" for lab in labels]
        gname[rows] = [f"{label}第{lab + 1}服务小组" for lab in labels]
    log.info("service groups: %d groups over %d grids", len(set(gid.tolist())), len(grids))
    return GroupResult(gid, gname, notes)


def groups_layer(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The ``groups`` layer: one row per group, its geometry the union of its grids.

    Parameters
    ----------
    grids
        The plan's grids with ``group_id``, ``group_name``, ``group_leader``,
        ``group_leader_id``, ``group_leader_phone``, ``group_leader_source`` (see
        :func:`gridplan.people.assign.assign_group_leaders`), ``workload``, ``customers``,
        ``n_transformers``.

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`GROUP_LAYER_COLUMNS` and geometry, sorted by ``group_id``; ``balance`` is the
        group's workload over the mean of its station's groups.
    """
    rows: list[dict[str, Any]] = []
    geoms = []
    for group, g in grids.groupby("group_id", sort=True):
        first = g.sort_values("grid_id").iloc[0]
        rows.append({"group_id": str(group), "group_name": first.get("group_name"),
                     "station_id": first.get("station_id"), "leader": first.get("group_leader"),
                     "leader_id": first.get("group_leader_id"),
                     "leader_phone": first.get("group_leader_phone"),
                     "leader_source": first.get("group_leader_source"),
                     "workload": round(float(g["workload"].sum()), 3),
                     "customers": int(g["customers"].sum()) if "customers" in g else 0,
                     "n_transformers": int(g["n_transformers"].sum()) if "n_transformers" in g else 0,
                     "n_grids": len(g), "grids": "、".join(sorted(map(str, g["grid_id"])))})
        geoms.append(shapely.union_all(np.asarray(g.geometry.values)))
    out = gpd.GeoDataFrame(pd.DataFrame(rows, columns=[c for c in GROUP_LAYER_COLUMNS if c != "balance"]),
                           geometry=geoms, crs=grids.crs)
    mean = out.groupby("station_id")["workload"].transform("mean")
    out["balance"] = (out["workload"] / mean.where(mean > 0)).round(3)
    return out[[*GROUP_LAYER_COLUMNS, "geometry"]]


def groups_kpi(grids: gpd.GeoDataFrame, params: Params) -> dict[str, Any]:
    """``kpi["groups"]``: per station the CV of group workloads and the contiguity of its groups.

    Contiguity is recomputed from the grid polygons (:func:`grid_adjacency`) within each station.

    Returns
    -------
    dict
        ``{"rule": {...}, "county": {"groups", "grids", "grids_per_group", "mean_station_cv",
        "max_station_cv", "noncontiguous_groups", "noncontiguous_group_ids",
        "leaders_from_roster", "leaders_from_heaviest_grid"}, "stations": {station_id: {"groups",
        "grids", "cv", "max_over_mean", "min_over_mean", "workloads", "noncontiguous_group_ids"}}}``.
    """
    stations: dict[str, Any] = {}
    broken_all: list[str] = []
    for sid, grp in grids.groupby(grids["station_id"].astype(str), sort=True):
        grp = grp.sort_values("grid_id").reset_index(drop=True)
        loads = grp.groupby("group_id")["workload"].sum()
        broken = _broken_groups(grp)
        broken_all.extend(broken)
        w = loads.to_numpy(float)
        mean = float(w.mean()) if len(w) else 0.0
        stations[str(sid)] = {
            "groups": len(loads), "grids": len(grp),
            "cv": round(float(w.std() / mean), 4) if mean > 0 else 0.0,
            "max_over_mean": round(float(w.max() / mean), 4) if mean > 0 else 0.0,
            "min_over_mean": round(float(w.min() / mean), 4) if mean > 0 else 0.0,
            "workloads": {str(k): round(float(v), 2) for k, v in loads.items()},
            "noncontiguous_group_ids": broken}
    cvs = [s["cv"] for s in stations.values() if s["groups"] > 1]
    source = grids.drop_duplicates("group_id")["group_leader_source"] \
        if "group_leader_source" in grids.columns else pd.Series(dtype=object)
    n_groups = int(grids["group_id"].nunique())
    return {
        "rule": {"groups_per_station": params.groups_per_station,
                 "grids_per_group": params.grids_per_group,
                 "adjacency": f"grid polygons sharing >= {MIN_SHARED_M:g} m of border (within {TOUCH_M:g} m)"},
        "county": {"groups": n_groups, "grids": len(grids),
                   "grids_per_group": round(len(grids) / n_groups, 2) if n_groups else 0.0,
                   "mean_station_cv": round(float(np.mean(cvs)), 4) if cvs else 0.0,
                   "max_station_cv": round(float(np.max(cvs)), 4) if cvs else 0.0,
                   "noncontiguous_groups": len(broken_all),
                   "noncontiguous_group_ids": sorted(broken_all),
                   "leaders_from_roster": int((source == "roster").sum()),
                   "leaders_from_heaviest_grid": int((source == "heaviest-grid").sum())},
        "stations": stations}


def _broken_groups(grp: gpd.GeoDataFrame) -> list[str]:
    """Groups of one station whose grids are not connected through shared borders."""
    edges = grid_adjacency(grp)
    label = grp["group_id"].astype(str).to_numpy()
    same = edges[label[edges[:, 0]] == label[edges[:, 1]]] if len(edges) else edges
    comp = components(len(grp), same)
    per = pd.DataFrame({"g": label, "c": comp}).groupby("g")["c"].nunique()
    return sorted(per[per > 1].index.astype(str))


def _plan_groups_layer(plan: Plan) -> gpd.GeoDataFrame | None:
    """The ``groups`` layer of a plan with service groups (grids carrying ``group_id``)."""
    return groups_layer(plan.grids) if "group_id" in plan.grids.columns else None


register_layer("groups", _plan_groups_layer)
