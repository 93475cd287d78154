"""Who owns each HV segment: align segments with grids, then hand them to managers or HV staff.

The second half of 高压到段, after :func:`gridplan.hv.segments.segment_feeders` has cut the feeders:

* :func:`align_segments` gives every segment the grid holding most of its length and that grid's
  台区经理 (``grid_id``, ``manager_id``, ``share_in_grid``);
* :func:`assign_owners` keeps those owners (``hv_owner = "lv"``) or, per station, walks its segments
  feeder by feeder, depth first, and cuts the sequence into one balanced run per HV staff member
  (:func:`linear_partition`, an exact min-max dynamic programme);
* :func:`owner_summary` tallies km, segments and the in-territory share per owner.

:mod:`gridplan.hv.segments` re-exports every public name of this module.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["align_segments", "assign_owners", "linear_partition", "owner_summary"]


# ----------------------------------------------------------------------------- grids
def align_segments(segments: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Give every segment the grid holding most of its length, and that grid's manager.

    Parameters
    ----------
    segments
        Output of :func:`gridplan.hv.segments.segment_feeders` (``segments`` attribute).
    grids
        ``grid_id``, ``manager_id``, polygons, same metric CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``segments`` with ``grid_id``, ``manager_id`` (``None`` outside every grid) and
        ``share_in_grid`` (0–1, the share of the segment's length inside that grid).
    """
    out = segments.copy()
    sg = np.asarray(out.geometry.values)
    gg = np.asarray(grids.geometry.values)
    i, j = grids.sindex.query(sg, predicate="intersects") if len(out) else (np.empty(0, int),) * 2
    pairs = pd.DataFrame({"i": i, "j": j})
    pairs["len"] = shapely.length(shapely.intersection(sg[i], gg[j])) if len(i) else []
    pairs["grid_id"] = grids["grid_id"].astype(str).to_numpy()[j]
    pairs = pairs[pairs["len"] > 0].sort_values(["i", "len", "grid_id"], ascending=[True, False, True])
    best = pairs.drop_duplicates("i").set_index("i")
    total = shapely.length(sg)
    pos = np.arange(len(out))
    has = np.isin(pos, best.index)
    gid = np.full(len(out), None, dtype=object)
    mid = np.full(len(out), None, dtype=object)
    share = np.zeros(len(out))
    gid[has] = best.loc[pos[has], "grid_id"].to_numpy()
    mids = grids["manager_id"].to_numpy() if "manager_id" in grids.columns else np.full(len(grids), None)
    mid[has] = mids[best.loc[pos[has], "j"].to_numpy()]
    with np.errstate(invalid="ignore", divide="ignore"):
        share[has] = np.minimum(1.0, best.loc[pos[has], "len"].to_numpy() / total[has])
    # object columns, so that "outside every grid" stays None under pandas 3's str dtype
    out["grid_id"] = pd.Series(gid, index=out.index, dtype=object)
    out["manager_id"] = pd.Series(mid, index=out.index, dtype=object)
    out["share_in_grid"] = share
    return out


# ----------------------------------------------------------------------------- HV owners
def _station_lengths(segments: gpd.GeoDataFrame, townships: gpd.GeoDataFrame) -> pd.DataFrame:
    """Length (m) of every segment inside every station's townships: columns ``i``, ``station_id``, ``len``."""
    sg = np.asarray(segments.geometry.values)
    tg = np.asarray(townships.geometry.values)
    i, j = townships.sindex.query(sg, predicate="intersects") if len(sg) else (np.empty(0, int),) * 2
    pairs = pd.DataFrame({"i": i, "station_id": townships["station_id"].astype(str).to_numpy()[j]})
    pairs["len"] = shapely.length(shapely.intersection(sg[i], tg[j])) if len(i) else []
    return pairs.groupby(["i", "station_id"], as_index=False)["len"].sum()


def _feeder_stations(segments: gpd.GeoDataFrame, inside: pd.DataFrame) -> pd.Series:
    """Return the station of every segment: the one holding most of its feeder's length."""
    by = inside.assign(feeder_id=segments["feeder_id"].to_numpy()[inside["i"].to_numpy()])
    tot = by.groupby(["feeder_id", "station_id"], as_index=False)["len"].sum()
    best = (tot[tot["len"] > 0].sort_values(["feeder_id", "len", "station_id"], ascending=[True, False, True])
            .drop_duplicates("feeder_id").set_index("feeder_id")["station_id"])
    return segments["feeder_id"].map(best)


def _tree_order(seg: pd.DataFrame) -> list[int]:
    """Positions of ``seg`` rows walked feeder by feeder, depth first from the substation."""
    ids = seg["segment_id"].tolist()
    pos = dict(zip(ids, range(len(ids)), strict=True))
    kids: dict[object, list[str]] = {}
    for sid, up in zip(ids, seg["upstream_segment_id"].tolist(), strict=True):
        kids.setdefault(up if isinstance(up, str) and up in pos else None, []).append(sid)
    for v in kids.values():
        v.sort()
    out: list[int] = []
    feeder = dict(zip(ids, seg["feeder_id"].tolist(), strict=True))
    for top in sorted(kids.get(None, []), key=lambda s: (feeder[s], s)):
        stack = [top]
        while stack:
            s = stack.pop()
            out.append(pos[s])
            stack.extend(reversed(kids.get(s, [])))
    return out


def linear_partition(weights: np.ndarray, k: int, *, prefer_cut: np.ndarray | None = None) -> np.ndarray:
    """Cut a sequence into ``k`` consecutive non-empty runs minimising the heaviest run.

    Among the optimal cuttings, cuts at ``prefer_cut`` positions (a run may start there, e.g. at
    the first segment of a feeder) are preferred. Exact dynamic programme, ``O(k n^2)`` in numpy.

    Parameters
    ----------
    weights
        Non-negative weight of each item, in order.
    k
        Number of runs (at most ``len(weights)``).
    prefer_cut
        Boolean per item: starting a run here costs nothing (else one unit of the tie-break).

    Returns
    -------
    numpy.ndarray
        The run (0 .. k-1) of every item.
    """
    w = np.asarray(weights, dtype=float)
    n = len(w)
    k = max(1, min(int(k), n))
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    pref = np.ones(n, bool) if prefer_cut is None else np.asarray(prefer_cut, bool)
    S = np.r_[0.0, np.cumsum(w)]
    scale = max(float(S[-1]), 1e-300)
    val = np.where(np.arange(n + 1) > 0, S, np.inf)  # one run over the first i items
    val[0] = 0.0
    pen = np.zeros(n + 1)
    choice = np.zeros((k, n + 1), dtype=np.int64)
    for j in range(1, k):
        nv, npen = np.full(n + 1, np.inf), np.full(n + 1, np.inf)
        for i in range(j + 1, n + 1):
            t = np.arange(j, i)  # the last run is items t .. i-1
            v = np.round(np.maximum(val[t], S[i] - S[t]) / scale, 12)
            p = pen[t] + ~pref[t]
            best = np.lexsort((t, p, v))[0]
            nv[i], npen[i], choice[j, i] = v[best] * scale, p[best], t[best]
        val, pen = nv, npen
    runs = np.zeros(n, dtype=np.int64)
    i = n
    for j in range(k - 1, 0, -1):
        start = int(choice[j, i])
        runs[start:i] = j
        i = start
    return runs


def assign_owners(segments: gpd.GeoDataFrame, townships: gpd.GeoDataFrame, *, mode: str = "lv",
                  staff: pd.DataFrame | None = None) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Give every aligned segment its owner: the grid's manager, or HV staff of its station.

    Parameters
    ----------
    segments
        Output of :func:`align_segments`.
    townships
        ``station_id`` and polygons (a station's territory is its townships).
    mode
        ``"lv"``: the manager of the grid holding most of the segment (as aligned).
        ``"separate"``: within each station (the one holding most of the feeder's length), the
        station's HV staff share its segments: walked feeder by feeder, depth first from the
        substation, the sequence is cut into one consecutive run per person, balanced by km
        (:func:`linear_partition`, preferring runs that start at a feeder). A station without HV
        staff keeps the ``"lv"`` owners (a note says so).
    staff
        The HV staff (roster rows: ``manager_id``, ``station_id``), for ``"separate"``.

    Returns
    -------
    segments, notes
        ``segments`` with ``station_id``, ``manager_id`` (the owner), ``owner_role`` (``"lv"`` /
        ``"hv"``) and ``owner_share`` (0–1: the share inside the owner's grid, i.e.
        ``share_in_grid``, for a 台区经理; inside the station's townships for HV staff);
        ``grid_id`` and ``share_in_grid`` stay as aligned. Chinese notes.
    """
    out = segments.copy()
    notes: list[str] = []
    inside = _station_lengths(out, townships)
    out["station_id"] = _feeder_stations(out, inside).to_numpy() if len(out) else []
    out["owner_role"] = "lv"
    out["owner_share"] = out["share_in_grid"].astype(float)
    if mode != "separate" or not len(out):
        if staff is not None and len(staff):
            notes.append(f'名册中有高压人员 {len(staff)} 名，但 hv_owner = "lv"：线段由所在网格的台区经理负责。')
        return out, notes
    staff = staff if staff is not None else pd.DataFrame(columns=["manager_id", "station_id"])
    length = shapely.length(np.asarray(out.geometry.values))
    in_station = inside.set_index(["i", "station_id"])["len"]
    no_staff = []
    for sid in sorted(out["station_id"].dropna().unique()):
        people = sorted(staff.loc[staff["station_id"].astype(str) == sid, "manager_id"].astype(str))
        rows = np.flatnonzero((out["station_id"] == sid).to_numpy())
        if not people:
            no_staff.append(sid)
            continue
        order = rows[_tree_order(out.iloc[rows])]
        first = np.r_[True, out["feeder_id"].to_numpy()[order][1:] != out["feeder_id"].to_numpy()[order][:-1]]
        runs = linear_partition(out["length_km"].to_numpy()[order], len(people), prefer_cut=first)
        owner = np.array(people, dtype=object)[runs]
        out.loc[out.index[order], "manager_id"] = owner
        out.loc[out.index[order], "owner_role"] = "hv"
        share = [in_station.get((int(i), sid), 0.0) / length[i] if length[i] > 0 else 0.0 for i in order]
        out.loc[out.index[order], "owner_share"] = np.minimum(1.0, share)
        if len(people) > len(order):
            notes.append(f"供电所 {sid}：高压人员 {len(people)} 名，线段只有 {len(order)} 段，"
                         f"{'、'.join(people[len(order):])} 未分到线段。")
    if no_staff:
        notes.append(f"供电所 {'、'.join(no_staff)} 的名册中没有高压人员（岗位 = 高压）：其线段仍由所在网格的"
                     '台区经理负责（按 hv_owner = "lv" 处理）。')
    outside = out["station_id"].isna().sum()
    if outside:
        notes.append(f"{int(outside)} 段线路不在任何供电所的乡镇范围内，按所在网格确定负责人。")
    return out, notes


def owner_summary(segments: gpd.GeoDataFrame) -> pd.DataFrame:
    """Summarise the segments per owner (``manager_id``).

    Columns: ``km`` owned, ``segments``, ``mean_share`` (length-weighted ``owner_share``, or
    ``share_in_grid`` before :func:`assign_owners`) and ``role``.
    """
    s = segments[segments["manager_id"].notna()].copy()
    share = s["owner_share"] if "owner_share" in s.columns else s["share_in_grid"]
    s["_w"] = share.astype(float) * s["length_km"]
    if "owner_role" not in s.columns:
        s["owner_role"] = "lv"
    g = s.groupby("manager_id", sort=True)
    out = pd.DataFrame({"km": g["length_km"].sum(), "segments": g.size(), "role": g["owner_role"].first()})
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mean_share"] = np.where(out["km"] > 0, g["_w"].sum() / out["km"], 0.0)
    return out
