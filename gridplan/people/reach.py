"""A manager's reach (#16 part 5): no 台区 farther than ``max_travel_min`` from its grid's base.

The **base** of a grid is its manager's home when the roster gives one (a point geometry on a
real, not placeholder, manager), else the grid's **medoid by travel**: the 台区 of the grid with
the least total travel to the others. Travel is :func:`gridplan.metrics.response.travel_times`:
over ``county.roads`` when given (multi-source Dijkstra), else the straight line ×
``detour_factor`` at ``speed_kmh``, the same parameters as the response times. (With roads, the
medoid is searched among the :data:`ROAD_MEDOID_CANDIDATES` best straight-line medoids of each
grid, then chosen by road travel.)

:func:`enforce_reach` runs after the managers are assigned, as a **repair pass**: a 台区 beyond
reach moves to a neighbouring grid (one of its neighbours on the contiguity graph belongs to it)
of the same township (or station) whose base reaches it; its own grid must stay connected and
never empties; no move takes a grid's workload more than :data:`REACH_BALANCE_SLACK` (or
3 × ``tolerance``) from the township's mean; among the grids that reach it, the move that keeps
both grids' workloads inside ``tolerance`` of the mean is preferred, then the shortest travel. Sweeps repeat (a
chain of far 台区 moves one by one from the border inwards), medoids are recomputed between rounds
(:data:`MAX_ROUNDS`), and the final figures are measured from the final bases. What cannot be met
(a 台区 alone far away, a manager whose home is far from the whole grid) is named: per grid its
farthest minutes and the 台区 beyond, in ``kpi["reach"]`` and the notes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..lv import territory
from ..metrics.response import travel_times
from ..model import County
from ..settings import Params

__all__ = ["MAX_ROUNDS", "REACH_BALANCE_SLACK", "ROAD_MEDOID_CANDIDATES", "ReachResult", "enforce_reach", "grid_bases",
           "reach_minutes"]

log = logging.getLogger(__name__)

#: Repair rounds (bases recomputed between rounds).
MAX_ROUNDS = 6
#: A reach move may take a grid's workload this far from the township's mean (at least; or 3 ×
#: ``tolerance`` when that is more): reach comes first, but never by piling 台区 onto one grid.
REACH_BALANCE_SLACK = 0.15
#: With roads, the medoid is chosen by road travel among this many straight-line medoids.
ROAD_MEDOID_CANDIDATES = 4
_MEDOID_SAMPLE = 1500  # above this many 台区 in one grid, medoid sums use a seeded sample
_MAX_CELLS = 4_000_000  # largest 台区 × base block of one travel_times call
_EPS = 1e-9


@dataclass
class Bases:
    """The base of every grid: a point, its kind (``home`` / ``medoid``) and the medoid's 台区."""

    xy: dict[str, tuple[float, float]] = field(default_factory=dict)
    kind: dict[str, str] = field(default_factory=dict)
    transformer: dict[str, str] = field(default_factory=dict)


@dataclass
class ReachResult:
    """The outcome of :func:`enforce_reach`.

    Attributes
    ----------
    grid_id
        Grid of every 台区 row after the repair (same order as the input).
    minutes
        Travel (minutes) from each 台区's grid base.
    bases
        The final bases.
    moved
        ``(transformer_id, from grid, to grid)`` of every move.
    kpi
        ``kpi["reach"]``.
    notes
        Chinese sentences.
    """

    grid_id: np.ndarray
    minutes: np.ndarray
    bases: Bases
    moved: list[tuple[str, str, str]]
    kpi: dict[str, Any]
    notes: list[str]


def _homes(grids: gpd.GeoDataFrame, county: County) -> dict[str, tuple[float, float]]:
    """grid_id -> home of its (real) manager, when the roster gives one."""
    roster = county.managers
    if roster is None or not len(roster) or not isinstance(roster, gpd.GeoDataFrame) \
            or "manager_id" not in grids.columns:
        return {}
    geom = roster.geometry
    if roster.crs is not None and county.crs is not None and not roster.crs.equals(county.crs):
        geom = geom.to_crs(county.crs)
    ok = ~(geom.isna() | geom.is_empty).to_numpy()
    where = {str(m): (float(p.x), float(p.y)) for m, p, good in
             zip(roster["manager_id"], geom.representative_point(), ok) if good}
    placeholder = grids["placeholder"].fillna(False).astype(bool).to_numpy() \
        if "placeholder" in grids.columns else np.zeros(len(grids), bool)
    return {str(g): where[str(m)] for g, m, ph in zip(grids["grid_id"], grids["manager_id"], placeholder)
            if not ph and str(m) in where}


def _points(ids: list[str], xy: np.ndarray, crs: Any) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"point_id": ids, "name": ids}, geometry=shapely.points(xy), crs=crs)


def _travel(county: County, tr: gpd.GeoDataFrame, rows: np.ndarray, ids: list[str], xy: np.ndarray,
            params: Params) -> np.ndarray:
    """Minutes from every point (columns) to the 台区 ``rows`` of ``tr``."""
    sub = dataclasses.replace(county, transformers=tr.iloc[rows])
    return travel_times(sub, _points(ids, xy, county.crs), params=params).minutes


def _batches(blocks: list[tuple[Any, np.ndarray, int]]) -> list[list[tuple[Any, np.ndarray, int]]]:
    """Group (key, rows, n_points) blocks so that one travel call stays under ``_MAX_CELLS``."""
    out: list[list[tuple[Any, np.ndarray, int]]] = []
    rows = cols = 0
    for b in blocks:
        if out and (rows + len(b[1])) * (cols + b[2]) > _MAX_CELLS:
            rows = cols = 0
        if rows == 0:
            out.append([])
        out[-1].append(b)
        rows, cols = rows + len(b[1]), cols + b[2]
    return out


def _block_travel(county: County, tr: gpd.GeoDataFrame, blocks: list[tuple[Any, np.ndarray, list[str],
                                                                              np.ndarray]],
                  params: Params) -> dict[Any, np.ndarray]:
    """Key -> minutes (its rows × its points), over as few travel_times calls as memory allows."""
    out: dict[Any, np.ndarray] = {}
    info = {b[0]: b for b in blocks}
    for batch in _batches([(b[0], b[1], len(b[2])) for b in blocks]):
        rows = np.concatenate([info[k][1] for k, _, _ in batch])
        ids = [f"{k}|{p}" for k, _, _ in batch for p in info[k][2]]
        xy = np.vstack([info[k][3] for k, _, _ in batch]).reshape(-1, 2)
        m = _travel(county, tr, rows, ids, xy, params)
        r0 = c0 = 0
        for k, r, c in batch:
            out[k] = m[r0:r0 + len(r), c0:c0 + c]
            r0, c0 = r0 + len(r), c0 + c
    return out


def _medoid_order(xy: np.ndarray, n_best: int) -> np.ndarray:
    """Positions of the ``n_best`` points with the least total straight-line distance to the rest."""
    n = len(xy)
    cand = np.arange(n)
    ref = xy
    if n > _MEDOID_SAMPLE:
        ref = xy[np.random.default_rng(0).choice(n, _MEDOID_SAMPLE, replace=False)]
    sums = np.array([np.hypot(*(ref - xy[c]).T).sum() for c in cand])
    return cand[np.lexsort((cand, np.round(sums, 3)))][:n_best]


def grid_bases(county: County, tr: gpd.GeoDataFrame, labels: np.ndarray, *,
               homes: dict[str, tuple[float, float]], params: Params,
               only: set[str] | None = None, before: Bases | None = None) -> Bases:
    """The base of every grid: its manager's home, else its medoid by travel.

    Parameters
    ----------
    county
        The county (``roads``, CRS).
    tr
        The 台区 (row positions as in ``labels``).
    labels
        Grid id of every 台区 row.
    homes
        grid_id -> home point of its manager (grids without one use their medoid).
    params
        ``speed_kmh``, ``detour_factor`` (travel).
    only, before
        Recompute the medoids of the grids in ``only`` and keep the others from ``before``.

    Returns
    -------
    Bases
    """
    out = Bases() if before is None else dataclasses.replace(
        before, xy=dict(before.xy), kind=dict(before.kind), transformer=dict(before.transformer))
    xy = shapely.get_coordinates(tr.geometry.values)
    tid = tr["transformer_id"].astype(str).to_numpy()
    roads = county.roads is not None and len(county.roads) > 0
    blocks = []
    for g, idx in pd.Series(np.arange(len(tr))).groupby(labels, sort=True):
        g = str(g)
        if only is not None and g not in only:
            continue
        rows = idx.to_numpy()
        if g in homes:
            out.xy[g], out.kind[g], out.transformer[g] = homes[g], "home", ""
            continue
        best = rows[_medoid_order(xy[rows], ROAD_MEDOID_CANDIDATES if roads else 1)]
        if len(best) == 1 or not roads:
            out.xy[g], out.kind[g], out.transformer[g] = tuple(xy[best[0]]), "medoid", tid[best[0]]
        else:
            blocks.append((g, rows, [tid[b] for b in best], xy[best]))
    by_grid = {b[0]: b for b in blocks}
    for g, minutes in _block_travel(county, tr, blocks, params).items():
        cand = by_grid[g]
        j = int(np.lexsort((np.arange(minutes.shape[1]), np.round(minutes.sum(axis=0), 6)))[0])
        out.xy[g], out.kind[g], out.transformer[g] = tuple(cand[3][j]), "medoid", cand[2][j]
    return out


def reach_minutes(county: County, tr: gpd.GeoDataFrame, labels: np.ndarray, keys: np.ndarray,
                  bases: Bases, *, params: Params) -> tuple[np.ndarray, dict[str, tuple[np.ndarray,
                                                                                      list[str],
                                                                                      np.ndarray]]]:
    """Travel from each 台区's own base, and per key the (rows, grids, minutes) block.

    The block holds the minutes from the base of every grid of the key (township or station) to
    every 台区 of the key: what a move to a neighbouring grid would give.
    """
    own = np.full(len(tr), np.nan)
    blocks = []
    for key, idx in pd.Series(np.arange(len(tr))).groupby(keys, sort=True):
        rows = idx.to_numpy()
        gids = sorted(set(labels[rows].tolist()))
        blocks.append((str(key), rows, gids, np.array([bases.xy[g] for g in gids], dtype=float)))
    travel = _block_travel(county, tr, blocks, params)
    out = {}
    for key, rows, gids, _ in blocks:
        m = travel[key]
        col = {g: j for j, g in enumerate(gids)}
        own[rows] = m[np.arange(len(rows)), [col[g] for g in labels[rows]]]
        out[key] = (rows, gids, m)
    return own, out


def _neighbours(n: int, edges: np.ndarray) -> list[list[int]]:
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in np.asarray(edges, dtype=np.int64).reshape(-1, 2).tolist():
        if a != b:
            adj[a].append(b)
            adj[b].append(a)
    return [sorted(set(x)) for x in adj]


def _connected_without(members: set[int], drop: int, adj: list[list[int]]) -> bool:
    """Whether ``members`` minus ``drop`` is still connected on ``adj`` (and not empty)."""
    rest = members - {drop}
    if not rest:
        return False
    start = min(rest)
    seen = {start}
    todo = deque([start])
    while todo:
        v = todo.popleft()
        for u in adj[v]:
            if u in rest and u not in seen:
                seen.add(u)
                todo.append(u)
    return len(seen) == len(rest)


def _repair_key(rows: np.ndarray, gids: list[str], m: np.ndarray, labels: np.ndarray, w: np.ndarray,
                adj: list[list[int]], *, limit: float, tolerance: float,
                fixed: np.ndarray, locked: set[str]) -> list[tuple[int, str, str]]:
    """Move the 台区 beyond reach of one key to neighbouring grids that reach them (in place)."""
    col = {g: j for j, g in enumerate(gids)}
    rlist: list[int] = [int(r) for r in rows.tolist()]
    pos = {r: i for i, r in enumerate(rlist)}
    mm: list[list[float]] = m.tolist()
    lab: dict[int, str] = {r: str(labels[r]) for r in rlist}
    wt: dict[int, float] = {r: float(w[r]) for r in rlist}
    hold: set[int] = {r for r in rlist if bool(fixed[r])}
    members: dict[str, set[int]] = {g: set() for g in gids}
    for r in rlist:
        members[lab[r]].add(r)
    load = {g: sum(wt[r] for r in s) for g, s in members.items()}
    mean = sum(load.values()) / max(len(gids), 1)
    hi, lo = mean * (1 + tolerance), mean * (1 - tolerance)
    slack = max(REACH_BALANCE_SLACK, 3 * tolerance)
    cap_hi, cap_lo = mean * (1 + slack) + _EPS, mean * (1 - slack) - _EPS

    def minutes(r: int, g: str) -> float:
        return mm[pos[r]][col[g]]

    moves: list[tuple[int, str, str]] = []
    for _ in range(len(rlist)):
        far = [r for r in rlist if minutes(r, lab[r]) > limit + _EPS and r not in hold]
        far.sort(key=lambda r: (-minutes(r, lab[r]), r))
        moved = False
        for r in far:
            own = lab[r]
            if minutes(r, own) <= limit + _EPS:
                continue
            near = sorted({lab[u] for u in adj[r] if u in pos} - {own} - locked)
            ok = [g for g in near if minutes(r, g) <= limit + _EPS and load[g] + wt[r] <= cap_hi]
            if not ok or load[own] - wt[r] < cap_lo or not _connected_without(members[own], r, adj):
                continue

            def cost(g: str, r: int = r, own: str = own) -> tuple[float, float, str]:
                over = max(0.0, load[g] + wt[r] - hi) + max(0.0, lo - (load[own] - wt[r]))
                return (round(over, 9), minutes(r, g), g)

            to = min(ok, key=cost)
            members[own].discard(r)
            members[to].add(r)
            load[own] -= wt[r]
            load[to] += wt[r]
            lab[r] = to
            labels[r] = to
            moves.append((r, own, to))
            moved = True
        if not moved:
            break
    return moves


def enforce_reach(county: County, tr: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *,
                  params: Params, edges: np.ndarray) -> ReachResult | None:
    """Repair the plan so that every 台区 is within ``params.max_travel_min`` of its grid's base.

    Parameters
    ----------
    county
        The county (roster homes, roads, CRS).
    tr
        The 台区 with ``grid_id`` and ``workload`` (rows as in ``edges``); pinned 台区
        (``pin_manager_id`` / ``pin_grid_id``) never move, and locked grids take none.
    grids
        With ``grid_id``, ``manager_id``, ``placeholder`` (after the managers are assigned).
    params
        ``max_travel_min`` (None: nothing to do), ``scope``, ``tolerance``, ``speed_kmh``,
        ``detour_factor``.
    edges
        The contiguity graph (row positions of ``tr``).

    Returns
    -------
    ReachResult or None
        None when ``max_travel_min`` is not set.
    """
    limit = params.max_travel_min
    if limit is None or not len(tr):
        return None
    limit = float(limit)
    labels = tr["grid_id"].astype(str).to_numpy(dtype=object).copy()
    key_col = "station_id" if params.scope == "station" else "township_id"
    keys = tr[key_col].astype(str).to_numpy()
    w = pd.to_numeric(tr["workload"], errors="coerce").fillna(0.0).to_numpy(float)
    fixed = np.zeros(len(tr), bool)
    for c in ("pin_manager_id", "pin_grid_id"):
        if c in tr.columns:
            fixed |= tr[c].notna().to_numpy()
    # a locked grid (pins: pin_grid_id) is as it is: it neither gives nor takes 台区
    locked = ({str(g) for g in labels[tr["pin_grid_id"].notna().to_numpy()]}
              if "pin_grid_id" in tr.columns else set())
    adj = _neighbours(len(tr), edges)
    homes = _homes(grids, county)
    bases = grid_bases(county, tr, labels, homes=homes, params=params)
    moves: list[tuple[int, str, str]] = []
    for _ in range(MAX_ROUNDS):
        own, blocks = reach_minutes(county, tr, labels, keys, bases, params=params)
        if not (own > limit + _EPS).any():
            break
        done = []
        for key in sorted(blocks):
            rows, gids, m = blocks[key]
            if (own[rows] > limit + _EPS).any():
                done += _repair_key(rows, gids, m, labels, w, adj, limit=limit,
                                    tolerance=params.tolerance, fixed=fixed, locked=locked)
        if not done:
            break
        moves += done
        changed = {g for _, a, b in done for g in (a, b) if g not in homes}
        bases = grid_bases(county, tr, labels, homes=homes, params=params, only=changed, before=bases)
    own, _ = reach_minutes(county, tr, labels, keys, bases, params=params)
    tid = tr["transformer_id"].astype(str).to_numpy()
    moved = [(tid[r], a, b) for r, a, b in moves]
    kpi, notes = _reach_kpi(tr, labels, own, bases, moved, limit=limit, county=county, params=params)
    return ReachResult(labels, own, bases, moved, kpi, notes)


def _reach_kpi(tr: gpd.GeoDataFrame, labels: np.ndarray, own: np.ndarray, bases: Bases,
               moved: list[tuple[str, str, str]], *, limit: float, county: County,
               params: Params) -> tuple[dict[str, Any], list[str]]:
    """``kpi["reach"]`` and the notes."""
    tid = tr["transformer_id"].astype(str).to_numpy()
    hh = pd.to_numeric(tr["customers"], errors="coerce").fillna(0).to_numpy()
    beyond = own > limit + _EPS
    per: dict[str, Any] = {}
    for g, idx in pd.Series(np.arange(len(tr))).groupby(labels, sort=True):
        rows = idx.to_numpy()
        far = rows[beyond[rows]]
        far = far[np.lexsort((tid[far], -own[far]))]
        per[str(g)] = {"base": bases.kind[str(g)], "base_transformer_id": bases.transformer[str(g)] or None,
                       "farthest_min": round(float(own[rows].max()), 1),
                       "beyond": [str(t) for t in tid[far]],
                       "beyond_minutes": [round(float(x), 1) for x in own[far]]}
    bad = sorted(g for g, v in per.items() if v["beyond"])
    roads = county.roads is not None and len(county.roads) > 0
    summary = {"max_travel_min": limit, "method": "road" if roads else "straight",
               "speed_kmh": params.speed_kmh, "detour_factor": params.detour_factor,
               "grids": len(per), "grids_beyond": len(bad), "grids_beyond_ids": bad,
               "transformers_beyond": int(beyond.sum()), "households_beyond": int(hh[beyond].sum()),
               "moved_transformers": len({t for t, _, _ in moved}),
               "max_minutes": round(float(own.max()), 1) if len(own) else 0.0,
               "bases_home": sum(k == "home" for k in bases.kind.values()),
               "bases_medoid": sum(k == "medoid" for k in bases.kind.values()),
               "met": not bool(beyond.any())}
    kpi = {"summary": summary, "grids": per,
           "moved": [{"transformer_id": t, "from": a, "to": b} for t, a, b in moved]}
    notes = []
    if moved:
        notes.append(f"台区经理服务半径（{limit:g} 分钟）：{summary['moved_transformers']} 个台区调整到"
                     "可在时限内到达的相邻网格")
    if bad:
        shown = "；".join(f"{g}（最远 {per[g]['farthest_min']:g} 分钟：{'、'.join(per[g]['beyond'][:5])}"
                         + (" 等" if len(per[g]["beyond"]) > 5 else "") + "）" for g in bad[:10])
        notes.append(f"台区经理服务半径（{limit:g} 分钟）无法全部满足：{len(bad)} 个网格的 "
                     f"{summary['transformers_beyond']} 个台区（{summary['households_beyond']} 户）"
                     f"超出，相邻网格也无法在时限内到达：{shown}" + (" 等" if len(bad) > 10 else ""))
    log.info("reach %.0f min: %d moved, %d 台区 beyond in %d grids", limit, len(moved),
             summary["transformers_beyond"], len(bad))
    return kpi, notes


def apply_reach(county: County, tr: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, managers: pd.DataFrame,
                *, params: Params, edges: np.ndarray, cells: np.ndarray | None = None
                ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame, dict[str, Any] | None,
                           list[str]]:
    """The pipeline stage: :func:`enforce_reach`, then the grids redrawn where 台区 moved.

    Returns
    -------
    tr, grids, managers, kpi, notes
        ``tr`` with the new ``grid_id``, ``reach_minutes`` and ``beyond_reach``; ``grids`` redrawn
        (managers kept by grid id; ``workload``, ``customers``, ``n_transformers`` recounted) with
        ``reach_base`` (``home`` / ``medoid``), ``reach_base_transformer_id`` and
        ``reach_max_min``; ``managers`` with their grid's new workload; ``kpi["reach"]`` (None
        when ``max_travel_min`` is not set: everything is returned unchanged).
    """
    res = enforce_reach(county, tr, grids, params=params, edges=edges)
    if res is None:
        return tr, grids, managers, None, []
    tr = tr.copy()
    tr["grid_id"] = res.grid_id
    tr["reach_minutes"] = np.round(res.minutes, 1)
    tr["beyond_reach"] = res.minutes > float(params.max_travel_min or 0) + _EPS
    if res.moved:
        grids = _redraw(county, tr, grids, cells)
        managers = managers.copy()
        load = grids.set_index("grid_id")["workload"]
        has = managers["grid_id"].notna()
        managers.loc[has, "workload"] = managers.loc[has, "grid_id"].map(load).astype(float)
    grids = grids.copy()
    gid = grids["grid_id"].astype(str)
    grids["reach_base"] = gid.map(res.bases.kind).fillna("")
    grids["reach_base_transformer_id"] = gid.map(res.bases.transformer).fillna("")
    farthest = {g: v["farthest_min"] for g, v in res.kpi["grids"].items()}
    grids["reach_max_min"] = gid.map(farthest).astype(float)
    return tr, grids, managers, res.kpi, res.notes


def _redraw(county: County, tr: gpd.GeoDataFrame, grids: gpd.GeoDataFrame,
            cells: np.ndarray | None) -> gpd.GeoDataFrame:
    """Grid polygons of the repaired plan, with the old grids' attributes (by grid id) and new counts."""
    new = territory.grid_polygons(county, tr, cells=cells)
    keep = [c for c in grids.columns if c not in new.columns and c != grids.geometry.name]
    new = new.merge(pd.DataFrame(grids[["grid_id", *keep]]), on="grid_id", how="left")
    stats = tr.groupby("grid_id").agg(workload=("workload", "sum"), customers=("customers", "sum"),
                                      n_transformers=("transformer_id", "size"))
    for c in stats.columns:
        new[c] = new["grid_id"].map(stats[c]).fillna(0)
    new["customers"] = new["customers"].astype(int)
    new["n_transformers"] = new["n_transformers"].astype(int)
    return gpd.GeoDataFrame(new, geometry="geometry", crs=grids.crs)
