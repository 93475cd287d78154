"""Territory: grid polygons that tile every township exactly.

Each 台区 gets its Voronoi cell (in metres), clipped to its township; cells are dissolved per grid.
Pieces of a grid that hold no 台区 and are cut off from it (a cell reaching across a bay of a
non-convex township) are handed to the grid they share the longest border with, so a grid is one
connected polygon unless its township is multi-part. Townships with no 台区 join the neighbouring
grid of the same station (the one sharing the longest border), so grids cover the whole territory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy.spatial import Delaunay, QhullError
from shapely.geometry.base import BaseGeometry

from ..model import County
from .graph import _barrier_geoms, group_members, label_codes, neighbour_edges, unique_rows

__all__ = ["PackedCells", "all_cells", "cell_adjacency", "contiguity_edges", "grid_polygons", "pooled_graph",
           "township_cells"]

log = logging.getLogger(__name__)

_GRID_SIZE_M = 0.001  # precision of grid polygons: 1 mm


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
    return _draw_cells(township, xy).cells


class _Drawn(NamedTuple):
    """:func:`township_cells` with what it found on the way (reused by the contiguity test)."""

    cells: np.ndarray  # per point
    uniq: np.ndarray  # the distinct points (rounded to 1 mm), as unique_rows gives them
    first: np.ndarray
    inverse: np.ndarray
    unclipped: np.ndarray | None  # per distinct point: its cell lay inside the township (kept as is)


def _draw_cells(township: BaseGeometry, xy: np.ndarray) -> _Drawn:
    """:func:`township_cells`, with the distinct points and which cells were not clipped."""
    n = len(xy)
    out = np.array([shapely.Polygon()] * n, dtype=object)
    uniq, first, inverse = unique_rows(np.round(xy, 3))
    if n == 0:
        return _Drawn(out, uniq, first, inverse, None)
    if len(uniq) == 1:
        out[first[0]] = township
        return _Drawn(out, uniq, first, inverse, None)
    if len(uniq) == 2 or _collinear(uniq):
        cells = _strip_cells(uniq, township)
    else:
        x0, y0, x1, y1 = township.bounds
        env = shapely.box(x0 - 1000.0, y0 - 1000.0, x1 + 1000.0, y1 + 1000.0)
        vor = shapely.voronoi_polygons(multipoint(uniq), extend_to=env, ordered=True)
        cells = np.asarray(shapely.get_parts(vor))
    clipped, inside = _clip(cells, township)
    out[first] = clipped
    return _Drawn(out, uniq, first, inverse, inside)


def clip_to(cells: np.ndarray, township: BaseGeometry) -> np.ndarray:
    """``shapely.intersection(cells, township)``, intersecting only the cells that cross its outline.

    A cell in the township's interior is its own intersection with it (returned as is).
    """
    return _clip(cells, township)[0]


def _clip(cells: np.ndarray, township: BaseGeometry) -> tuple[np.ndarray, np.ndarray]:
    """:func:`clip_to`, and which cells lay in the township's interior (returned as they were)."""
    shapely.prepare(township)
    inside = shapely.contains_properly(township, cells)
    out = np.asarray(cells, dtype=object).copy()
    cross = np.flatnonzero(~inside)
    if len(cross):
        out[cross] = shapely.intersection(out[cross], township)
    return out, np.asarray(inside, dtype=bool)


def multipoint(xy: np.ndarray) -> BaseGeometry:
    """``shapely.multipoints(xy)``, read from WKB built in numpy (no Python object per point)."""
    n = len(xy)
    rec = np.zeros((n, 21), dtype=np.uint8)
    rec[:, 0] = 1  # little endian
    rec[:, 1] = 1  # wkbPoint
    rec[:, 5:] = np.ascontiguousarray(xy, dtype="<f8").view(np.uint8).reshape(n, 16)
    head = b"\x01\x04\x00\x00\x00" + np.uint32(n).astype("<u4").tobytes()  # wkbMultiPoint
    geom: BaseGeometry = shapely.from_wkb(head + rec.tobytes())
    return geom


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


def all_cells(county: County, transformers: gpd.GeoDataFrame) -> np.ndarray:
    """Every 台区's Voronoi cell clipped to its township, aligned with the rows of ``transformers``.

    Computed once per plan and shared by the contiguity graph (:func:`contiguity_edges`) and the
    grid polygons (:func:`grid_polygons`). Duplicate points: the first gets the cell, the others an
    empty polygon.
    """
    xy = shapely.get_coordinates(transformers.geometry.values)
    names, codes = label_codes(transformers["township_id"].astype(str).to_numpy())
    towns = county.townships.assign(township_id=county.townships["township_id"].astype(str))
    towns = towns.set_index("township_id").geometry
    cells = np.empty(len(xy), dtype=object)
    for tid, idx in zip(names, group_members(codes)):
        cells[idx] = township_cells(towns.loc[tid], xy[idx])
    return cells


def grid_polygons(county: County, transformers: gpd.GeoDataFrame, *,
                  cells: np.ndarray | PackedCells | None = None,
                  pool: Executor | None = None,
                  grid_codes: tuple[np.ndarray, np.ndarray] | None = None) -> gpd.GeoDataFrame:
    """Dissolve the 台区' Voronoi cells into one polygon per grid, tiling every township.

    Parameters
    ----------
    county
        The county (townships in its metric CRS).
    transformers
        The county's 台区 with a ``grid_id`` column.
    cells
        Their cells from :func:`all_cells` (or :func:`pooled_graph`), if already computed.
    pool
        An executor the townships' pieces are dissolved in (one task per township; the same
        polygons). Used when ``cells`` is None (the tasks draw the cells) or
        :class:`PackedCells` (the tasks get their WKB, not decoded here).
    grid_codes
        ``label_codes(transformers["grid_id"].to_numpy())`` when already computed.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per grid: ``grid_id``, ``township_id``, ``station_id``, ``townships`` (names),
        geometry. Grids of one township tile it: no gaps, no overlaps.
    """
    towns = county.townships.set_index("township_id")
    pieces = None
    if pool is not None and (cells is None or isinstance(cells, PackedCells)):
        pieces = _pooled_pieces(transformers, cells, county, pool, grid_codes=grid_codes)
    if pieces is None:
        pieces = _pieces(county, transformers, cells, grid_codes=grid_codes)
    grids = _dissolve_across_townships(pieces, towns, county.crs)
    grids = _absorb_empty_townships(grids, county, set(transformers["township_id"]))
    return grids.sort_values("grid_id").reset_index(drop=True)


def _pieces(county: County, transformers: gpd.GeoDataFrame, cells: np.ndarray | PackedCells | None, *,
            grid_codes: tuple[np.ndarray, np.ndarray] | None = None) -> list[tuple[str, str, BaseGeometry]]:
    """(township, grid, polygon) of every grid's part in every township, sorted by both."""
    if cells is None:
        cells = all_cells(county, transformers)
    # Snapped to a millimetre grid, so borders shared by neighbouring cells coincide exactly and
    # unions of grids carry no sliver holes from floating-point noise: the cells of one township
    # then form a coverage, dissolved per grid by a coverage union.
    snapped = snap_to_grid(np.asarray(cells, dtype=object), grid_size=_GRID_SIZE_M)
    t_uniq, t_code = label_codes(transformers["township_id"].to_numpy())
    g_uniq, g_code = grid_codes if grid_codes is not None else label_codes(transformers["grid_id"].to_numpy())
    xy = shapely.get_coordinates(transformers.geometry.values)
    labelled = (t_code >= 0) & (g_code >= 0)  # a 台区 without township or grid holds no territory
    if not labelled.all():
        snapped, xy, t_code, g_code = (a[labelled] for a in (snapped, xy, t_code, g_code))
    key = t_code * len(g_uniq) + g_code
    pair, piece_of = np.unique(key, return_inverse=True)  # pieces sorted by (township, grid)
    piece_of = piece_of.ravel()
    geoms = dissolve_groups(snapped, piece_of, len(pair), grid_size=_GRID_SIZE_M)
    piece_t, piece_g = pair // len(g_uniq), pair % len(g_uniq)
    pieces = [(str(t_uniq[t]), str(g_uniq[g]), geom) for t, g, geom in zip(piece_t, piece_g, geoms)]
    by_piece = np.argsort(piece_of, kind="stable")
    first = np.searchsorted(piece_of[by_piece], np.arange(len(pair) + 1))

    def points_of(i: int) -> BaseGeometry:
        return shapely.multipoints(xy[by_piece[first[i]:first[i + 1]]])

    bounds = np.flatnonzero(np.diff(piece_t)) + 1
    for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(pair)]])):
        pieces = _reassign_orphans(pieces, range(int(lo), int(hi)), points_of)
    return pieces


def snap_to_grid(geoms: np.ndarray, *, grid_size: float) -> np.ndarray:
    """``shapely.set_precision(geoms, grid_size)``, by rounding coordinates where that stays valid.

    Every coordinate is rounded to the grid (``mode="pointwise"``: no overlay), and the geometries
    carry the grid's precision model, as ``set_precision`` gives them (overlays on them then snap
    to the grid). A geometry that rounding leaves invalid (a sliver collapsing onto itself) goes
    through the full ``shapely.set_precision``, and so does an empty one (pointwise, an empty
    polygon would come back as an empty ring, which a coverage union refuses).
    """
    out = shapely.set_precision(geoms, grid_size, mode="pointwise")
    bad = np.flatnonzero((~shapely.is_valid(out) | shapely.is_empty(geoms)) & ~shapely.is_missing(out))
    if len(bad):
        out[bad] = shapely.set_precision(geoms[bad], grid_size)
    result: np.ndarray = out
    return result


def dissolve_groups(geoms: np.ndarray, group: np.ndarray, n_groups: int, *,
                    grid_size: float = 0.0) -> np.ndarray:
    """The union of the polygons of every group (``group``: each geometry's group, 0..n-1).

    The polygons of a group are expected to form a coverage (edges shared exactly, no overlaps):
    they are dissolved by a coverage union, batched by group size. A group whose coverage union
    fails or loses area (a polygon that is not polygonal, edges that do not match) takes a full
    ``shapely.union_all``. ``grid_size``: the precision model of ``geoms`` (from
    :func:`snap_to_grid`), given to the coverage unions too (``union_all`` keeps it itself).
    """
    out = np.empty(n_groups, dtype=object)
    if n_groups == 0:
        return out
    order = np.argsort(group, kind="stable")
    size = np.bincount(group, minlength=n_groups)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    rank = np.arange(len(group)) - start[group[order]]
    types = shapely.get_type_id(geoms)
    polygonal = np.isin(types, (3, 6)) | shapely.is_empty(geoms) | shapely.is_missing(geoms)
    exact = np.bincount(group[~polygonal], minlength=n_groups) == 0
    area = np.bincount(group, weights=np.nan_to_num(shapely.area(geoms)), minlength=n_groups)
    size_class = np.ceil(np.log2(np.maximum(size, 1))).astype(np.int64)
    for c in np.unique(size_class[exact]):
        rows = np.flatnonzero(exact & (size_class == c))
        block = np.full((len(rows), 1 << int(c)), None, dtype=object)
        slot = np.full(n_groups, -1, dtype=np.int64)
        slot[rows] = np.arange(len(rows))
        mine = slot[group[order]] >= 0
        block[slot[group[order][mine]], rank[mine]] = geoms[order[mine]]
        res = _coverage_union_rows(block)
        out[rows] = shapely.set_precision(res, grid_size, mode="pointwise") if grid_size > 0 else res
    ok = exact & shapely.is_valid(out)
    ok &= np.abs(np.nan_to_num(shapely.area(out)) - area) <= 1e-9 * area + 1e-6
    redo = np.flatnonzero(~ok)
    if len(redo):
        log.debug("%d of %d groups dissolved by a full union", len(redo), n_groups)
        for g in redo:
            out[g] = shapely.union_all(geoms[order[start[g]:start[g] + size[g]]])
    return out


def _coverage_union_rows(block: np.ndarray) -> np.ndarray:
    """Coverage union of every row of ``block`` (None: no geometry); None where it fails."""
    try:
        res: np.ndarray = shapely.coverage_union_all(block, axis=1)
        return res
    except shapely.errors.GEOSException:
        out = np.empty(len(block), dtype=object)
        for i, row in enumerate(block):
            try:
                out[i] = shapely.coverage_union_all(row)
            except shapely.errors.GEOSException:
                out[i] = None
        return out


def _dissolve_across_townships(pieces: list[tuple[str, str, BaseGeometry]], towns: pd.DataFrame,
                               crs: CRS) -> gpd.GeoDataFrame:
    """One row per grid; a grid spanning several townships (scope "station") is dissolved.

    Its ``township_id`` is the township holding the largest share of its area, and ``townships``
    lists the names of every township it covers.
    """
    tids = [t for t, _, _ in pieces]
    gids = [g for _, g, _ in pieces]
    geoms = np.empty(len(pieces), dtype=object)
    geoms[:] = [geom for _, _, geom in pieces]
    multi = pd.Series(gids, dtype=object).duplicated(keep=False).to_numpy()
    single = np.flatnonzero(~multi)  # the common case (scope "township"): one piece, nothing to dissolve
    out_g = [gids[i] for i in single.tolist()]
    out_t = [tids[i] for i in single.tolist()]
    out_n = towns["name"].reindex(out_t).tolist()
    out_geom = geoms[single].tolist()
    if multi.any():
        frame = pd.DataFrame({"grid_id": [gids[i] for i in np.flatnonzero(multi).tolist()],
                              "township_id": [tids[i] for i in np.flatnonzero(multi).tolist()],
                              "geom": geoms[multi], "area": shapely.area(geoms[multi])})
        for gid, grp in frame.groupby("grid_id", sort=True):
            grp = grp.sort_values(["area", "township_id"], ascending=[False, True])
            out_g.append(gid)
            out_t.append(grp["township_id"].iloc[0])
            out_n.append("、".join(towns["name"].loc[t] for t in grp["township_id"]))
            out_geom.append(shapely.union_all(grp["geom"].to_numpy()))
    order = sorted(range(len(out_g)), key=out_g.__getitem__)  # by grid id (each grid once)
    rows = [(out_g[i], out_t[i], out_n[i]) for i in order]
    out = gpd.GeoDataFrame(pd.DataFrame(rows, columns=["grid_id", "township_id", "townships"]),
                           geometry=[out_geom[i] for i in order], crs=crs)
    out["station_id"] = out["township_id"].map(towns["station_id"])
    return out[["grid_id", "township_id", "station_id", "townships", "geometry"]]


def _reassign_orphans(pieces: list[tuple[str, str, BaseGeometry]], idx: range,
                      points_of: Callable[[int], BaseGeometry]) -> list[tuple[str, str, BaseGeometry]]:
    """Give each 台区-less, detached part of a grid to the grid it borders most (same township).

    ``idx``: the positions in ``pieces`` of one township's grids; ``points_of(i)``: the 台区 of
    piece ``i`` (a multipoint).
    """
    if len(idx) < 2:
        return pieces
    pts: dict[int, BaseGeometry] = {}
    for _ in range(3):  # an orphan may border only another orphan: a few passes settle it
        moved = False
        for i in idx:
            t, g, geom = pieces[i]
            if shapely.get_num_geometries(geom) < 2:
                continue
            parts = shapely.get_parts(geom)
            if i not in pts:
                pts[i] = points_of(i)
            holds = shapely.intersects(shapely.buffer(parts, 1e-6), pts[i])
            keep = [p for p, h in zip(parts, holds) if h]
            orphans = [p for p, h in zip(parts, holds) if not h]
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


def _absorb_empty_townships(grids: gpd.GeoDataFrame, county: County,
                            used: set[object]) -> gpd.GeoDataFrame:
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


def contiguity_edges(county: County, transformers: gpd.GeoDataFrame, *, scope: str = "township",
                     cells: np.ndarray | None = None) -> np.ndarray:
    """The neighbourhood graph on which grids must be contiguous.

    Delaunay neighbours within each township (or station, with ``scope="station"``), minus the
    edges that cross a barrier line (``county.barriers``), kept only where the two 台区' territory
    cells share a border (:func:`cell_adjacency`): a grid connected on this graph is one connected
    polygon.

    Returns
    -------
    numpy.ndarray
        (m, 2) int array of point indices (row positions in ``transformers``).
    """
    xy = shapely.get_coordinates(transformers.geometry.values)
    col = "township_id" if scope == "township" else "station_id"
    groups = transformers[col].astype(str).to_numpy()
    barriers = county.barriers.geometry.values if county.barriers is not None else None
    cand = neighbour_edges(xy, groups=groups, barriers=barriers)
    return cell_adjacency(county, transformers, cand, cells=cells)


def cell_adjacency(county: County, transformers: gpd.GeoDataFrame, candidates: np.ndarray, *,
                   min_border_m: float = 0.1, cells: np.ndarray | None = None) -> np.ndarray:
    """Keep the candidate edges whose 台区' territory cells share a border.

    Contiguity must hold for the grid *polygons*, not only for the points: two 台区 are neighbours
    when the parts of their Voronoi cells that hold them (clipped to their townships) share a border
    at least ``min_border_m`` long. Delaunay neighbours (``candidates``, from
    :func:`gridplan.lv.graph.neighbour_edges`) are a superset of the Voronoi neighbours, so filtering
    them is exact within a township; across townships (scope "station") the kept edges are a subset
    of the true adjacency, which is safe: contiguity on a subset implies contiguity on the whole.

    Within a township the shared border of two single-part cells is the Voronoi ridge between
    them clipped to the township, measured in one vectorised pass; cells split by the township's
    outline, cross-township pairs and degenerate townships take an exact (slower) polygon test.

    Parameters
    ----------
    county
        The county (townships in its metric CRS).
    transformers
        The 台区, with ``township_id``; row order defines the point indices of ``candidates``.
    candidates
        (m, 2) int array of candidate edges.
    min_border_m
        Shortest shared border (metres) that makes two cells neighbours.
    cells
        The 台区' cells from :func:`all_cells`, if already computed.

    Returns
    -------
    numpy.ndarray
        The subset of ``candidates`` that are territory neighbours. Edges between duplicate points
        (same location) are always kept.
    """
    candidates = np.asarray(candidates, dtype=np.int64).reshape(-1, 2)
    if len(candidates) == 0:
        return candidates
    xy = shapely.get_coordinates(transformers.geometry.values)
    names, tids = label_codes(transformers["township_id"].astype(str).to_numpy())
    towns = county.townships.assign(township_id=county.townships["township_id"].astype(str))
    towns = towns.set_index("township_id").geometry
    kept: np.ndarray = _adjacent(xy, tids, [towns.loc[t] for t in names], candidates,
                                 min_border_m=min_border_m,
                                 cells=None if cells is None else np.asarray(cells, dtype=object))
    return kept


def _adjacent(xy: np.ndarray, tids: np.ndarray, towns: list[BaseGeometry], candidates: np.ndarray, *,
              min_border_m: float, cells: np.ndarray | None,
              drawn: dict[int, _Drawn] | None = None) -> np.ndarray:
    """:func:`cell_adjacency` on arrays: ``tids`` numbers the points' townships ``towns``.

    ``drawn``: per township code, its cells as :func:`_draw_cells` drew them (then ``cells`` is
    not read): their distinct points and unclipped cells are not found again.
    """
    n = len(xy)
    rep = np.arange(n)
    main = np.empty(n, dtype=object)
    fast = np.zeros(n, dtype=bool)  # single-part cell in a township handled by ridges
    ok_pairs: list[np.ndarray] = []
    for idx in group_members(tids):
        town = towns[int(tids[idx[0]])]
        d = drawn[int(tids[idx[0]])] if drawn is not None else None
        if d is not None:
            uniq, first, inverse, mine = d.uniq, d.first, d.inverse, d.cells
        else:
            uniq, first, inverse = unique_rows(np.round(xy[idx], 3))
            mine = township_cells(town, xy[idx]) if cells is None else cells[idx]
        rep[idx] = idx[first[inverse]]
        single = shapely.get_num_geometries(mine) <= 1
        main[idx] = mine
        for i in np.flatnonzero(~single):
            main[idx[i]] = _part_holding(mine[i], shapely.Point(xy[idx[i]]))
        if len(uniq) >= 3 and not _collinear(uniq):
            interior = _interior(mine[first], town, unclipped=None if d is None else d.unclipped)
            ridges = _ridge_borders(uniq, town, interior=interior)
        else:
            ridges = None
        if ridges is None:
            continue
        pairs, length = ridges
        glob = idx[first[pairs]]
        fast[idx[first]] = single[first]
        both = single[first[pairs[:, 0]]] & single[first[pairs[:, 1]]]
        ok_pairs.append(glob[both & (length >= min_border_m)])
    a, b = rep[candidates[:, 0]], rep[candidates[:, 1]]
    keep = a == b
    decided = keep | (fast[a] & fast[b] & (tids[a] == tids[b]))
    if ok_pairs:
        ok = np.concatenate(ok_pairs)
        code_ok = np.minimum(ok[:, 0], ok[:, 1]) * n + np.maximum(ok[:, 0], ok[:, 1])
        code = np.minimum(a, b) * n + np.maximum(a, b)
        keep |= decided & _sorted_member(code, np.sort(code_ok))
    slow = np.flatnonzero(~decided)
    if len(slow):
        ga = shapely.boundary(main[a[slow]].astype(object))
        gb = shapely.boundary(main[b[slow]].astype(object))
        shared = shapely.length(shapely.intersection(shapely.buffer(ga, 0.01, quad_segs=1), gb))
        keep[slow] = np.nan_to_num(shared) >= min_border_m
    log.debug("cell adjacency keeps %d of %d candidate edges (%d tested exactly)",
              int(keep.sum()), len(candidates), len(slow))
    kept: np.ndarray = candidates[keep]
    return kept


def _interior(cells: np.ndarray, town: BaseGeometry, *, margin_m: float = 0.01,
              unclipped: np.ndarray | None = None) -> np.ndarray:
    """Whether each cell lies in ``town``'s interior, farther than ``margin_m`` from its outline.

    Such a cell was not clipped (a clipped cell reaches the outline, up to floating-point noise
    that the margin absorbs), so each of its Voronoi ridges lies inside the township.
    ``unclipped``: the cells known to lie properly inside ``town`` (:func:`_clip` kept them as
    they were): only the others are tested.
    """
    shapely.prepare(town)
    if unclipped is None:
        inside = shapely.contains_properly(town, cells)
    else:
        inside = unclipped.copy()
        cut = np.flatnonzero(~inside)
        if len(cut):
            inside[cut] = shapely.contains_properly(town, cells[cut])
    near = np.flatnonzero(inside)
    if len(near):
        outline = shapely.boundary(town)
        shapely.prepare(outline)
        inside[near] = ~shapely.dwithin(outline, cells[near], margin_m)
    result: np.ndarray = inside
    return result


def _sorted_member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_set)`` for a sorted ``sorted_set``, by binary search."""
    if not len(sorted_set):
        return np.zeros(len(values), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    hit: np.ndarray = sorted_set[pos] == values
    return hit


def _ridge_borders(uniq: np.ndarray, town: BaseGeometry, *,
                   interior: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Voronoi ridges of ``uniq`` points: (pairs, length of each ridge inside ``town``).

    The ridges come from the Delaunay triangulation: the ridge of an inner Delaunay edge joins the
    circumcentres of its two triangles; that of a hull edge is a ray from the circumcentre of its
    one triangle, away from the points, long enough to leave the township. ``interior``: per point,
    whether its cell lies in the township's interior (so do its ridges: their whole length counts,
    without a polygon test).
    """
    try:
        tri = Delaunay(uniq)
    except QhullError:
        return None
    s = np.asarray(tri.simplices, dtype=np.int64)
    nb = np.asarray(tri.neighbors, dtype=np.int64)
    cc = _circumcentres(uniq[s])
    # edge k of triangle t is opposite its vertex k; its other triangle is neighbors[t, k]
    t = np.repeat(np.arange(len(s)), 3)
    k = np.tile(np.arange(3), len(s))
    other = nb[t, k]
    once = (other < 0) | (t < other)  # every edge once: from its lower triangle, or a hull edge
    t, k, other = t[once], k[once], other[once]
    rp = np.column_stack([s[t, (k + 1) % 3], s[t, (k + 2) % 3]])
    seg = np.empty((len(rp), 2, 2))
    seg[:, 0] = cc[t]
    inner = other >= 0
    seg[inner, 1] = cc[other[inner]]
    hull = np.flatnonzero(~inner)
    if len(hull):
        start = cc[t[hull]]
        p0, p1 = uniq[rp[hull, 0]], uniq[rp[hull, 1]]
        d = (p1 - p0) / np.linalg.norm(p1 - p0, axis=1)[:, None]
        normal = np.column_stack([-d[:, 1], d[:, 0]])
        side = np.sign(np.einsum("ij,ij->i", (p0 + p1) / 2 - uniq.mean(axis=0), normal))
        side[side == 0] = 1.0
        x0, y0, x1, y1 = town.bounds
        reach = 4 * max(x1 - x0, y1 - y0, 1.0) + np.linalg.norm(start - uniq.mean(axis=0), axis=1)
        seg[hull, 1] = start + side[:, None] * normal * reach[:, None]
    ok = np.isfinite(seg).all(axis=(1, 2))
    length = np.zeros(len(rp))
    if interior is not None:
        within = ok & inner & (interior[rp[:, 0]] | interior[rp[:, 1]])
        length[within] = np.linalg.norm(seg[within, 1] - seg[within, 0], axis=1)
        ok &= ~within
    lines = shapely.linestrings(seg[ok])
    shapely.prepare(town)
    inside = shapely.contains_properly(town, lines)
    part = np.where(inside, shapely.length(lines), 0.0)
    cross = np.flatnonzero(~inside & shapely.intersects(town, lines))
    if len(cross):
        part[cross] = shapely.length(shapely.intersection(lines[cross], town))
    length[ok] = part
    return rp, length


def _circumcentres(tri: np.ndarray) -> np.ndarray:
    """Circumcentres of (m, 3, 2) triangles (relative to their first corner, for precision)."""
    a = tri[:, 0]
    b, c = tri[:, 1] - a, tri[:, 2] - a
    d = 2.0 * (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0])
    bb, cc = (b * b).sum(axis=1), (c * c).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ux = (c[:, 1] * bb - b[:, 1] * cc) / d
        uy = (b[:, 0] * cc - c[:, 0] * bb) / d
    out: np.ndarray = a + np.column_stack([ux, uy])
    return out


def _part_holding(cell: BaseGeometry, point: BaseGeometry) -> BaseGeometry:
    """The part of a (possibly multi-part) cell that holds ``point`` (else the nearest part)."""
    if cell is None or cell.is_empty:
        return shapely.Polygon()
    parts = shapely.get_parts(cell)
    if len(parts) == 1:
        return parts[0]
    return parts[int(np.argmin(shapely.distance(parts, point)))]


# --------------------------------------------------------------------------- in worker processes
#
# Townships are independent in both stages: their cells, candidate edges and cell adjacency (scope
# "township"; with scope "station" the unit is a station, whose townships are all in the task), and
# their grid pieces. The tasks below get numpy arrays and WKB and return the same; the results are
# put together in township order, so the outputs are the same for any number of workers.

class PackedCells:
    """The 台区' territory cells kept as WKB per township, as the worker processes return them.

    Decoded once, on first use as an array (``numpy.asarray(packed)``, :meth:`decode`): the grid
    polygons (:func:`grid_polygons` with a pool) send the WKB on to the workers without decoding.

    Parameters
    ----------
    n
        Number of 台区 (rows of the transformers frame).
    townships
        Township ids (str), one per entry of ``rows``.
    rows
        Per township, the row positions of its 台区 (ascending).
    wkb
        Per township, the WKB of their cells (object arrays of bytes, aligned with ``rows``).
    """

    def __init__(self, n: int, townships: list[str], rows: list[np.ndarray], wkb: list[np.ndarray]):
        self.n = n
        self.townships = townships
        self.rows = rows
        self.wkb = wkb
        self._cells: np.ndarray | None = None

    def __len__(self) -> int:
        return self.n

    def decode(self) -> np.ndarray:
        """Every 台区's cell, aligned with the rows (decoded once, then kept)."""
        if self._cells is None:
            out = np.empty(self.n, dtype=object)
            for rows, wkb in zip(self.rows, self.wkb):
                out[rows] = shapely.from_wkb(wkb)
            self._cells = out
        return self._cells

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        cells = self.decode()
        return cells if dtype is None else cells.astype(dtype, copy=False)


def pooled_graph(county: County, transformers: gpd.GeoDataFrame, *, scope: str, pool: Executor,
                 min_border_m: float = 0.1) -> tuple[PackedCells, np.ndarray] | None:
    """:func:`all_cells` and :func:`contiguity_edges` with one task per township (station) in ``pool``.

    The same cells (as :class:`PackedCells`) and the same edges, element for element, as the
    serial functions. With ``scope="station"`` a task takes a station with all its townships
    (candidate edges across them, cross-township pairs by the exact test, as serially). None (do
    it serially) when there are fewer than two such units, or when a township's 台区 belong to
    several stations.
    """
    xy = shapely.get_coordinates(transformers.geometry.values)
    n = len(xy)
    names, tids = label_codes(transformers["township_id"].astype(str).to_numpy())
    if scope == "township":
        units = tids
    else:
        units = label_codes(transformers["station_id"].astype(str).to_numpy())[1]
    pairs = unique_rows(np.column_stack([tids, units]))[0]
    if n == 0 or len(np.unique(pairs[:, 1])) < 2 or len(pairs) != len(names):
        return None
    towns = county.townships.assign(township_id=county.townships["township_id"].astype(str))
    town_wkb = shapely.to_wkb(towns.set_index("township_id").geometry.loc[names].to_numpy())
    barriers = None if county.barriers is None else _barrier_geoms(county.barriers.geometry.values)
    tree = None if barriers is None or not len(barriers) else shapely.STRtree(barriers)
    members = group_members(units)
    futures: dict[int, Future[tuple[list[np.ndarray], np.ndarray]]] = {}
    for u in sorted(range(len(members)), key=lambda u: (-len(members[u]), u)):
        idx = members[u]
        ts, local = np.unique(tids[idx], return_inverse=True)
        near = None
        if barriers is not None:  # an edge lies in its unit's bounding box: so do the barriers it crosses
            box = shapely.box(*xy[idx].min(axis=0), *xy[idx].max(axis=0))
            hit = np.zeros(0, dtype=np.int64) if tree is None else np.sort(tree.query(box))
            near = shapely.to_wkb(barriers[hit]) if len(hit) else np.empty(0, dtype=object)
        futures[u] = pool.submit(_graph_task, xy[idx], local.ravel(), town_wkb[ts], near, min_border_m)
    rows: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(names)
    wkb: list[np.ndarray] = [np.empty(0, dtype=object)] * len(names)
    parts = []
    for u, idx in enumerate(members):
        cells_wkb, local_edges = futures[u].result()
        ts, local = np.unique(tids[idx], return_inverse=True)
        for t, pos, w in zip(ts, group_members(local.ravel()), cells_wkb):
            rows[int(t)], wkb[int(t)] = idx[pos], w
        parts.append(idx[local_edges])
    edges = np.concatenate(parts) if parts else np.empty((0, 2), dtype=np.int64)
    edges = edges[np.argsort(edges[:, 0] * n + edges[:, 1], kind="stable")]  # rows in (i, j) order
    return PackedCells(n, [str(t) for t in names], rows, wkb), edges


def _graph_task(xy: np.ndarray, tcode: np.ndarray, towns_wkb: np.ndarray, barriers_wkb: np.ndarray | None,
                min_border_m: float) -> tuple[list[np.ndarray], np.ndarray]:
    """One township's (station's) cells (WKB, per township) and contiguity edges (local positions).

    ``tcode``: each point's township (0..m-1, into ``towns_wkb``); ``barriers_wkb``: the barrier
    lines near it (None: the county has none).
    """
    towns = list(shapely.from_wkb(towns_wkb))
    members = group_members(tcode)
    drawn = {t: _draw_cells(towns[t], xy[idx]) for t, idx in enumerate(members)}
    barriers = None if barriers_wkb is None else shapely.from_wkb(barriers_wkb)
    cand = neighbour_edges(xy, barriers=barriers)
    if len(cand):
        edges = _adjacent(xy, tcode, towns, cand, min_border_m=min_border_m, cells=None, drawn=drawn)
    else:
        edges = cand
    return [shapely.to_wkb(drawn[t].cells) for t in range(len(members))], edges


def _pooled_pieces(transformers: gpd.GeoDataFrame, cells: PackedCells | None, county: County,
                   pool: Executor, *, grid_codes: tuple[np.ndarray, np.ndarray] | None = None
                   ) -> list[tuple[str, str, BaseGeometry]] | None:
    """The grid pieces of :func:`grid_polygons`, one task per township in ``pool``.

    The same pieces as serially, in the same order. None (do it serially) when ``cells`` do not
    match the townships of ``transformers``.
    """
    xy = shapely.get_coordinates(transformers.geometry.values)
    t_uniq, t_code = label_codes(transformers["township_id"].to_numpy())
    g_uniq, g_code = grid_codes if grid_codes is not None else label_codes(transformers["grid_id"].to_numpy())
    if cells is None:
        names, tids = label_codes(transformers["township_id"].astype(str).to_numpy())
        groups: list[np.ndarray] = group_members(tids)
        towns = county.townships.assign(township_id=county.townships["township_id"].astype(str))
        town_wkb = shapely.to_wkb(towns.set_index("township_id").geometry.loc[names].to_numpy())
        cells_wkb: list[np.ndarray | None] = [None] * len(groups)
    else:
        if cells.n != len(xy):
            return None
        groups, cells_wkb, town_wkb = cells.rows, list(cells.wkb), np.full(len(cells.rows), None)
    t_of = np.array([t_code[g[0]] if len(g) else -1 for g in groups], dtype=np.int64)
    if any(len(g) == 0 or (t_code[g] != t_code[g[0]]).any() for g in groups) or (t_of < 0).any():
        return None
    futures: dict[int, Future[tuple[np.ndarray, np.ndarray]]] = {}
    for k in sorted(range(len(groups)), key=lambda k: (-len(groups[k]), k)):
        rows = groups[k]
        futures[k] = pool.submit(_territory_task, xy[rows], g_code[rows], cells_wkb[k], town_wkb[k])
    pieces: list[tuple[str, str, BaseGeometry]] = []
    for k in np.argsort(t_of, kind="stable"):  # serially: pieces sorted by (township, grid)
        grid, wkb = futures[int(k)].result()
        # WKB has no precision model: give the pieces back the 1 mm one (their coordinates are on it)
        geoms = shapely.set_precision(shapely.from_wkb(wkb), _GRID_SIZE_M, mode="pointwise")
        tid = str(t_uniq[t_of[k]])
        pieces.extend((tid, str(g_uniq[g]), geom) for g, geom in zip(grid, geoms))
    return pieces


def _territory_task(xy: np.ndarray, gcode: np.ndarray, cells_wkb: np.ndarray | None,
                    town_wkb: bytes | None) -> tuple[np.ndarray, np.ndarray]:
    """One township's grid pieces: (grid codes, ascending; WKB of their polygons), orphans given away.

    ``cells_wkb``: the 台区' cells (None: drawn here from ``town_wkb``); ``gcode``: each 台区's
    grid (-1: none, no territory).
    """
    if cells_wkb is None:
        cells = township_cells(shapely.from_wkb(town_wkb), xy)
    else:
        cells = shapely.from_wkb(cells_wkb)
    snapped = snap_to_grid(np.asarray(cells, dtype=object), grid_size=_GRID_SIZE_M)
    labelled = gcode >= 0
    if not labelled.all():
        snapped, xy, gcode = snapped[labelled], xy[labelled], gcode[labelled]
    grid, piece_of = np.unique(gcode, return_inverse=True)
    piece_of = piece_of.ravel()
    geoms = dissolve_groups(snapped, piece_of, len(grid), grid_size=_GRID_SIZE_M)
    by_piece = np.argsort(piece_of, kind="stable")
    first = np.searchsorted(piece_of[by_piece], np.arange(len(grid) + 1))

    def points_of(i: int) -> BaseGeometry:
        return shapely.multipoints(xy[by_piece[first[i]:first[i + 1]]])

    pieces = _reassign_orphans([("", "", g) for g in geoms], range(len(grid)), points_of)
    return grid, shapely.to_wkb(np.array([p[2] for p in pieces], dtype=object))
