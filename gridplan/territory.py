"""Territory: grid polygons that tile every township exactly.

Each 台区 gets its Voronoi cell (in metres), clipped to its township; cells are dissolved per grid.
Pieces of a grid that hold no 台区 and are cut off from it (a cell reaching across a bay of a
non-convex township) are handed to the grid they share the longest border with, so a grid is one
connected polygon unless its township is multi-part. Townships with no 台区 join the neighbouring
grid of the same station (the one sharing the longest border), so grids cover the whole territory.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from .county import County

__all__ = ["grid_polygons", "township_cells"]

log = logging.getLogger(__name__)


def township_cells(township: BaseGeometry, xy: np.ndarray) -> np.ndarray:
    """Return the Voronoi cell of every point, clipped to ``township``.

    Parameters
    ----------
    township
        The township polygon (metric CRS).
    xy
        (n, 2) point coordinates in metres. Duplicate points share one cell: the first gets it and
        the others get an empty polygon.

    Returns
    -------
    numpy.ndarray
        n shapely geometries (possibly empty or multi-part).
    """
    n = len(xy)
    out = np.array([shapely.Polygon()] * n, dtype=object)
    if n == 0:
        return out
    uniq, first = np.unique(np.round(xy, 3), axis=0, return_index=True)
    if len(uniq) == 1:
        out[first[0]] = township
        return out
    if len(uniq) == 2 or _collinear(uniq):
        cells = _strip_cells(uniq, township)
    else:
        env = shapely.box(*township.buffer(1000.0).bounds)
        vor = shapely.voronoi_polygons(shapely.multipoints(uniq), extend_to=env, ordered=True)
        cells = np.asarray(shapely.get_parts(vor))
    out[first] = shapely.intersection(cells, township)
    return out


def _collinear(xy: np.ndarray) -> bool:
    centred = xy - xy.mean(axis=0)
    s = np.linalg.svd(centred, compute_uv=False)
    return bool(s[-1] <= 1e-9 * max(s[0], 1.0))


def _strip_cells(xy: np.ndarray, township: BaseGeometry) -> np.ndarray:
    """Cells of collinear points: strips cut by the perpendicular bisectors."""
    d = xy[-1] - xy[0]
    d = d / np.linalg.norm(d)
    t = (xy - xy[0]) @ d
    order = np.argsort(t)
    cuts = (t[order][1:] + t[order][:-1]) / 2
    x0, y0, x1, y1 = township.buffer(1000.0).bounds
    far = 4 * max(x1 - x0, y1 - y0) + 1.0
    normal = np.array([-d[1], d[0]])
    bounds = np.concatenate([[-far], cuts, [far]])
    cells = np.empty(len(xy), dtype=object)
    for rank, idx in enumerate(order):
        a, b = bounds[rank], bounds[rank + 1]
        corners = [xy[0] + a * d - far * normal, xy[0] + b * d - far * normal,
                   xy[0] + b * d + far * normal, xy[0] + a * d + far * normal]
        cells[idx] = shapely.Polygon(corners)
    return cells


def grid_polygons(county: County, transformers: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Dissolve the 台区' Voronoi cells into one polygon per grid, tiling every township.

    Parameters
    ----------
    county
        The county (townships in its metric CRS).
    transformers
        The county's 台区 with a ``grid_id`` column.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per grid: ``grid_id``, ``township_id``, ``station_id``, ``townships`` (names),
        geometry. Grids of one township tile it: no gaps, no overlaps.
    """
    towns = county.townships.set_index("township_id")
    pieces: list[tuple[str, str, BaseGeometry]] = []
    for tid, grp in transformers.groupby("township_id", sort=True):
        geom = towns.geometry.loc[tid]
        xy = shapely.get_coordinates(grp.geometry.values)
        cells = township_cells(geom, xy)
        gid = grp["grid_id"].to_numpy()
        for g in np.unique(gid):
            merged = shapely.union_all(cells[gid == g])
            pieces.append((str(tid), str(g), merged))
        pieces = _reassign_orphans(pieces, str(tid), grp)
    grids = _dissolve_across_townships(pieces, towns, county.crs)
    grids = _absorb_empty_townships(grids, county, set(transformers["township_id"]))
    return grids.sort_values("grid_id").reset_index(drop=True)


def _dissolve_across_townships(pieces: list, towns: pd.DataFrame, crs) -> gpd.GeoDataFrame:
    """One row per grid; a grid spanning several townships (scope "station") is dissolved.

    Its ``township_id`` is the township holding the largest share of its area, and ``townships``
    lists the names of every township it covers.
    """
    frame = pd.DataFrame([(g, t, geom, shapely.area(geom)) for t, g, geom in pieces],
                         columns=["grid_id", "township_id", "geom", "area"])
    rows = []
    for gid, grp in frame.groupby("grid_id", sort=True):
        grp = grp.sort_values(["area", "township_id"], ascending=[False, True])
        names = "、".join(towns["name"].loc[t] for t in grp["township_id"])
        rows.append((gid, grp["township_id"].iloc[0], names, shapely.union_all(grp["geom"].to_numpy())))
    out = gpd.GeoDataFrame(pd.DataFrame([r[:3] for r in rows], columns=["grid_id", "township_id", "townships"]),
                           geometry=[r[3] for r in rows], crs=crs)
    out["station_id"] = out["township_id"].map(towns["station_id"])
    return out[["grid_id", "township_id", "station_id", "townships", "geometry"]]


def _reassign_orphans(pieces: list, tid: str, grp: gpd.GeoDataFrame) -> list:
    """Give each 台区-less, detached part of a grid to the grid it borders most (same township)."""
    idx = [i for i, (t, _, _) in enumerate(pieces) if t == tid]
    if len(idx) < 2:
        return pieces
    pts = {g: shapely.multipoints(shapely.get_coordinates(sub.geometry.values))
           for g, sub in grp.groupby("grid_id")}
    for _ in range(3):  # an orphan may border only another orphan: a few passes settle it
        moved = False
        for i in idx:
            t, g, geom = pieces[i]
            parts = shapely.get_parts(geom)
            if len(parts) < 2:
                continue
            keep = [p for p in parts if shapely.intersects(p.buffer(1e-6), pts[g])]
            orphans = [p for p in parts if not shapely.intersects(p.buffer(1e-6), pts[g])]
            if not orphans or not keep:
                continue
            for orphan in orphans:
                best, best_len = None, 0.0
                for j in idx:
                    if j == i:
                        continue
                    shared = shapely.length(shapely.intersection(orphan.boundary, pieces[j][2].boundary))
                    if shared > best_len:
                        best, best_len = j, shared
                if best is None:
                    keep.append(orphan)  # a true island: no neighbour to give it to
                    continue
                tj, gj, geomj = pieces[best]
                pieces[best] = (tj, gj, shapely.union(geomj, orphan))
                moved = True
            pieces[i] = (t, g, shapely.union_all(keep))
        if not moved:
            break
    return pieces


def _absorb_empty_townships(grids: gpd.GeoDataFrame, county: County, used: set) -> gpd.GeoDataFrame:
    """Join every township without 台区 to the neighbouring grid of its station."""
    towns = county.townships
    empty = towns[~towns["township_id"].isin(used)]
    for _, town in empty.sort_values("township_id").iterrows():
        same = grids[grids["station_id"] == town["station_id"]]
        cand = same if len(same) else grids
        if len(cand) == 0:
            log.warning("township %s has no 台区 and no grid to join", town["township_id"])
            continue
        shared = cand.boundary.intersection(town.geometry.boundary).length.to_numpy()
        if np.nanmax(shared) > 0:
            pick = cand.index[int(np.nanargmax(shared))]
        else:
            pick = cand.index[int(np.argmin(cand.distance(town.geometry).to_numpy()))]
        grids.loc[pick, "geometry"] = shapely.union(grids.loc[pick, "geometry"], town.geometry)
        grids.loc[pick, "townships"] = f"{grids.loc[pick, 'townships']}、{town['name']}"
        log.info("township %s (no 台区) joined grid %s", town["township_id"], grids.loc[pick, "grid_id"])
    return grids
