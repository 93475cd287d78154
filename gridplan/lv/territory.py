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
from shapely.geometry.base import BaseGeometry, BaseMultipartGeometry

from ..model import County
from .graph import (
    _barrier_geoms,
    _canonical,
    _drop_crossing,
    group_members,
    label_codes,
    neighbour_edges,
    unique_rows,
)

__all__ = ["PackedCells", "all_cells", "cell_adjacency", "cells_and_edges", "contiguity_edges", "grid_polygons",
           "pooled_graph", "township_cells"]

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
    ridges: _Ridges | None  # the Voronoi ridges between the distinct points' cells (when asked for)


class _Ridges(NamedTuple):
    """The Voronoi ridges of a township's distinct points, read off their (unclipped) cells."""

    pairs: np.ndarray  # (m, 2) int64: the two distinct points whose cells share the ridge, i < j
    seg: np.ndarray  # (m, 2, 2) float: the ridge's two ends


def _draw_cells(township: BaseGeometry, xy: np.ndarray, *, ridges: bool = False) -> _Drawn:
    """:func:`township_cells`, with the distinct points and which cells were not clipped.

    ``ridges``: also read the Voronoi ridges off the cells (:func:`_voronoi_ridges`; None for
    fewer than three distinct points, collinear ones, or cells whose edges do not pair up).
    """
    n = len(xy)
    out = np.array([shapely.Polygon()] * n, dtype=object)
    uniq, first, inverse = unique_rows(np.round(xy, 3))
    if n == 0:
        return _Drawn(out, uniq, first, inverse, None, None)
    if len(uniq) == 1:
        out[first[0]] = township
        return _Drawn(out, uniq, first, inverse, None, None)
    found = None
    if len(uniq) == 2 or _collinear(uniq):
        cells = _strip_cells(uniq, township)
    else:
        x0, y0, x1, y1 = township.bounds
        env = shapely.box(x0 - 1000.0, y0 - 1000.0, x1 + 1000.0, y1 + 1000.0)
        vor = shapely.voronoi_polygons(multipoint(uniq), extend_to=env, ordered=True)
        cells = np.asarray(shapely.get_parts(vor))
        if ridges:
            found = _voronoi_ridges(cells)
    clipped, inside = _clip(cells, township)
    out[first] = clipped
    return _Drawn(out, uniq, first, inverse, inside, found)


def _voronoi_ridges(cells: np.ndarray) -> _Ridges | None:
    """The ridges of a Voronoi diagram, from its cells (``cells[i]``: the cell of point ``i``).

    GEOS draws every cell from the one set of Voronoi vertices (the circumcentres of its Delaunay
    triangles), so the edge two neighbouring cells share has the same two vertices, bit for bit,
    in both rings: each ring edge that appears in two rings is the ridge between those two cells.
    The others lie on the frame GEOS clips the diagram to. Edges are matched by a hash of their
    two ends' bits, and every match is checked coordinate by coordinate. None when that does not
    hold (an edge found three times, a hash match of two different edges, an edge found once off
    the frame): the caller then tests candidate edges polygon by polygon.
    """
    coords, ring = shapely.get_coordinates(cells, return_index=True)  # cells have no holes
    if not len(coords):
        return None
    step = np.flatnonzero((ring[1:] == ring[:-1]) & (coords[1:] != coords[:-1]).any(axis=1))
    bits = np.ascontiguousarray(coords).view(np.uint64).reshape(-1, 2)
    vertex = _mix64(bits[:, 0] ^ _mix64(bits[:, 1]))
    lo_end = np.minimum(vertex[step], vertex[step + 1])  # the same for both directions of an edge
    hi_end = np.maximum(vertex[step], vertex[step + 1])
    order = np.lexsort((hi_end, lo_end))
    step, lo_end, hi_end = step[order], lo_end[order], hi_end[order]
    twice = (lo_end[1:] == lo_end[:-1]) & (hi_end[1:] == hi_end[:-1])
    if (twice[1:] & twice[:-1]).any():
        return None
    at = np.flatnonzero(twice)
    p0, p1 = coords[step[at]], coords[step[at] + 1]
    q0, q1 = coords[step[at + 1]], coords[step[at + 1] + 1]
    same = ((p0 == q1) & (p1 == q0)).all(axis=1) | ((p0 == q0) & (p1 == q1)).all(axis=1)
    if not same.all():
        return None
    paired = np.zeros(len(step), dtype=bool)
    paired[at] = True
    paired[at + 1] = True
    lone = step[~paired]
    a, b = coords[lone], coords[lone + 1]
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    on_frame = (((a[:, 0] == b[:, 0]) & ((a[:, 0] == lo[0]) | (a[:, 0] == hi[0])))
                | ((a[:, 1] == b[:, 1]) & ((a[:, 1] == lo[1]) | (a[:, 1] == hi[1]))))
    if not on_frame.all():
        return None
    i, j = ring[step[at]], ring[step[at + 1]]
    pairs = np.column_stack([np.minimum(i, j), np.maximum(i, j)]).astype(np.int64)
    return _Ridges(pairs, np.stack([p0, p1], axis=1))


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 values: a bijection whose output bits all depend on every input bit."""
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    out: np.ndarray = z ^ (z >> np.uint64(31))
    return out


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


def _round_half_up(v: np.ndarray) -> np.ndarray:
    """GEOS's ``util::round`` (Java's ``Math.round``: halves up, towards +inf), signed zeros kept."""
    n = np.trunc(v)
    f = np.abs(v - n)
    out: np.ndarray = np.where((v >= 0) & (f >= 0.5), n + 1.0, np.where((v < 0) & (f > 0.5), n - 1.0, n))
    return out


class _Rings(NamedTuple):
    """WKB records in one buffer, the single-ring polygons among them rounded in place."""

    buf: np.ndarray  # uint8: the records, each after a few bytes of padding (see _round_polygon_wkb)
    start: np.ndarray  # where each record starts in ``buf``
    end: np.ndarray  # and ends (== start: None)
    simple: np.ndarray  # bool per record: a polygon of one ring of >= 4 points, little endian
    coords: np.ndarray  # (m, 2) the rounded coordinates of the simple records, in order
    npts: np.ndarray  # their rings' point counts


_PADS = [b"\0" * k for k in range(8)]


def _round_polygon_wkb(wkb: np.ndarray, grid_size: float) -> _Rings:
    """Round the coordinates of the single-ring polygons in ``wkb`` to the grid, in their bytes.

    Exactly as ``set_precision(..., mode="pointwise")`` rounds them (``round(x / grid) * grid`` for
    grids above 1, ``round(x * scale) / scale`` below, GEOS's ``round``); other records untouched.
    Every record starts 3 bytes past a multiple of 8, so that a polygon's coordinates (13 bytes
    in) are doubles of the buffer seen as one float64 array.
    """
    data = [b"" if w is None else w for w in wkb]
    size = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
    pad = np.concatenate([[3], -size[:-1] % 8]) if len(data) else np.zeros(0, dtype=np.int64)
    end = np.cumsum(pad + size)
    start = end - size
    chunks: list[bytes] = [b""] * (2 * len(data) + 1)
    chunks[0:-1:2] = [_PADS[k] for k in pad.tolist()]
    chunks[1::2] = data
    chunks[-1] = _PADS[-int(end[-1]) % 8 if len(data) else 0]
    buf = np.frombuffer(b"".join(chunks), dtype=np.uint8).copy()
    rows = np.flatnonzero(size >= 13)
    hdr = buf[start[rows, None] + np.arange(13)]
    u32 = np.ascontiguousarray(hdr[:, 1:13]).view("<u4")
    npts = np.zeros(len(data), dtype=np.int64)
    npts[rows] = u32[:, 2]
    simple = np.zeros(len(data), dtype=bool)
    simple[rows] = (hdr[:, 0] == 1) & (u32[:, 0] == 3) & (u32[:, 1] == 1) & (u32[:, 2] >= 4)
    simple &= size == 13 + 16 * npts
    keep = np.flatnonzero(simple)
    view = buf.view("<f8")
    at = _ragged_ranges((start[keep] + 13) // 8, 2 * npts[keep])
    v = view[at]
    scale = 1.0 / grid_size
    coords = _round_half_up(v / grid_size) * grid_size if grid_size > 1 else _round_half_up(v * scale) / scale
    view[at] = coords
    return _Rings(buf, start, end, simple, coords.reshape(-1, 2), npts[keep])


def _ragged_ranges(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(start, count)])``."""
    total = int(count.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    step = np.ones(total, dtype=np.int64)
    at = np.cumsum(count)[:-1]
    step[0] = start[0]
    step[at] = start[1:] - (start[:-1] + count[:-1] - 1)
    out: np.ndarray = np.cumsum(step)
    return out


def _strictly_convex(coords: np.ndarray, npts: np.ndarray) -> np.ndarray:
    """Per closed ring (``coords``: the rings one after another): it turns the same way strictly at
    every vertex, once around. Such a ring is simple, so a polygon of it alone is valid.

    The rounded coordinates differ exactly (neighbours within a factor 2); a turn's sine must
    exceed 1e-9, far above the rounding of the cross product. Turning left by less than a half
    turn at each vertex, the edges' direction passes "east" (from pointing south to pointing
    north) once per time around; turning right, it passes it from north to south.
    """
    if not len(npts):
        return np.zeros(0, dtype=bool)
    end = np.cumsum(npts)
    edge = np.diff(coords, axis=0)
    keep = np.ones(len(edge), dtype=bool)
    keep[end[:-1] - 1] = False  # the step from one ring's last point to the next ring's first
    edge = edge[keep]
    k = npts - 1  # edges per ring
    lo = np.cumsum(k) - k
    nxt = np.arange(1, len(edge) + 1)
    nxt[lo + k - 1] = lo  # a ring's last edge turns into its first
    ax, ay = edge[:, 0], edge[:, 1]
    bx, by = ax[nxt], ay[nxt]
    cross = ax * by - ay * bx
    sharp = cross * cross > 1e-18 * (ax * ax + ay * ay) * (bx * bx + by * by)
    left = np.logical_and.reduceat(sharp & (cross > 0), lo)
    right = np.logical_and.reduceat(sharp & (cross < 0), lo)
    north = np.add.reduceat(((ay < 0) & (by >= 0)).astype(np.int64), lo)
    south = np.add.reduceat(((ay >= 0) & (by < 0)).astype(np.int64), lo)
    out: np.ndarray = (left & (north == 1)) | (right & (south == 1))
    return out


class _SnappedWkb(NamedTuple):
    """Geometries as WKB records with their coordinates on the grid (:func:`_snap_wkb`)."""

    buf: np.ndarray  # uint8: the records' bytes (the single-ring polygons rounded), then re-encoded ones
    start: np.ndarray  # per record, where its bytes start in ``buf``
    end: np.ndarray  # and end (== start: None)
    types: np.ndarray  # per record its geometry type id (-1: None)
    empty: np.ndarray  # per record: an empty geometry


def _snap_wkb(wkb: np.ndarray, *, grid_size: float) -> _SnappedWkb:
    """:func:`snap_to_grid` of the geometries in ``wkb``, done in their bytes where it can.

    The single-ring polygons (a 台区's cell, as a rule) are rounded in the WKB, as
    ``set_precision(..., mode="pointwise")`` rounds them. A strictly convex one is valid as rounded;
    the others are decoded and checked, and where rounding left them invalid they take the full
    ``set_precision``. Any other record (empty, several parts, holes) goes through
    :func:`snap_to_grid`. Those two kinds are re-encoded after the records' bytes.
    """
    wkb = np.asarray(wkb, dtype=object)
    rings = _round_polygon_wkb(wkb, grid_size)
    start = rings.start.copy()
    simple = np.flatnonzero(rings.simple)
    check = simple[~_strictly_convex(rings.coords, rings.npts)]
    data = rings.buf.tobytes()
    rounded = shapely.from_wkb([data[a:b] for a, b in zip(start[check].tolist(), rings.end[check].tolist())])
    bad = check[~shapely.is_valid(rounded)]
    other = np.union1d(np.flatnonzero(~rings.simple), bad)
    geoms = np.empty(len(other), dtype=object)
    if len(other):
        full = np.isin(other, bad)
        geoms[full] = shapely.set_precision(shapely.from_wkb(wkb[other[full]]), grid_size)
        geoms[~full] = snap_to_grid(shapely.from_wkb(wkb[other[~full]]), grid_size=grid_size)
    types = np.full(len(wkb), 3, dtype=np.int64)
    types[other] = shapely.get_type_id(geoms)
    empty = np.zeros(len(wkb), dtype=bool)
    empty[other] = shapely.is_empty(geoms)
    enc = [b"" if w is None else w for w in shapely.to_wkb(geoms)]
    size = np.fromiter(map(len, enc), dtype=np.int64, count=len(enc))
    end = rings.end.copy()
    end[other] = len(rings.buf) + np.cumsum(size)
    start[other] = end[other] - size
    buf = np.concatenate([rings.buf, np.frombuffer(b"".join(enc), dtype=np.uint8)])
    return _SnappedWkb(buf, start, end, types, empty)


def snap_wkb_to_grid(wkb: np.ndarray, *, grid_size: float) -> np.ndarray:
    """:func:`snap_to_grid` of the geometries in ``wkb``, rounded in their bytes before decoding.

    The same coordinates (WKB) as :func:`snap_to_grid`, but without its precision model where a
    single-ring polygon was rounded in its bytes: an overlay on them does not snap to the grid
    (give them the model with ``set_precision(..., mode="pointwise")`` first). See :func:`_snap_wkb`.
    """
    snapped = _snap_wkb(wkb, grid_size=grid_size)
    data = snapped.buf.tobytes()
    out: np.ndarray = shapely.from_wkb([data[a:b] if b > a else None
                                        for a, b in zip(snapped.start.tolist(), snapped.end.tolist())])
    return out


def dissolve_wkb_groups(wkb: np.ndarray, group: np.ndarray, n_groups: int, *, grid_size: float) -> np.ndarray:
    """``dissolve_groups(snap_to_grid(from_wkb(wkb)), group, n_groups, grid_size=grid_size)``, from WKB.

    The same polygons (coordinates), but with a floating precision model: give them the grid's
    (``set_precision(..., mode="pointwise")``, a no-op on their coordinates) before an overlay.
    Every group's snapped polygons are put in one GeometryCollection in WKB (no polygon decoded
    on its own, none copied into a collection), whose members' areas (summed in order, as
    :func:`dissolve_groups` sums them) check its coverage union.
    """
    out = np.empty(n_groups, dtype=object)
    if n_groups == 0:
        return out
    snapped = _snap_wkb(wkb, grid_size=grid_size)
    polygonal = np.isin(snapped.types, (3, 6)) | snapped.empty | (snapped.types < 0)
    exact = np.bincount(group[~polygonal], minlength=n_groups) == 0
    colls = _group_collections(snapped, group, n_groups)
    area = np.nan_to_num(shapely.area(colls))
    rows = np.flatnonzero(exact)
    out[rows] = _coverage_unions(colls[rows])
    # as dissolve_groups gives them the grid's model, pointwise: an empty polygon turns into an empty
    # ring; other unions' coordinates are on the grid already (their model they get when needed)
    blank = rows[shapely.is_empty(out[rows])]
    out[blank] = shapely.set_precision(out[blank], grid_size, mode="pointwise")
    _union_where_failed(out, exact, area, lambda g: shapely.set_precision(
        shapely.get_parts(colls[g]), grid_size, mode="pointwise"))
    return out


def _group_collections(snapped: _SnappedWkb, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group, a GeometryCollection of its records (in their order; None left out), from WKB."""
    order = np.argsort(group, kind="stable")
    mine = order[snapped.end[order] > snapped.start[order]]
    count = np.bincount(group[mine], minlength=n_groups)
    head = np.zeros((n_groups, 9), dtype=np.uint8)
    head[:, 0] = 1  # little endian
    head[:, 1] = 7  # wkbGeometryCollection
    head[:, 5:9] = count.astype("<u4").view(np.uint8).reshape(n_groups, 4)
    data = snapped.buf.tobytes()
    recs = [data[a:b] for a, b in zip(snapped.start[mine].tolist(), snapped.end[mine].tolist())]
    bounds = np.concatenate([[0], np.cumsum(count)]).tolist()
    heads = [h.tobytes() for h in head]
    out: np.ndarray = shapely.from_wkb([heads[g] + b"".join(recs[bounds[g]:bounds[g + 1]]) for g in range(n_groups)])
    return out


def _coverage_unions(colls: np.ndarray) -> np.ndarray:
    """The coverage union of every GeometryCollection's members; None where it fails.

    ``shapely.lib.coverage_union`` is the ufunc ``shapely.coverage_union_all`` ends in, called on
    the collections as they are (``coverage_union_all`` would copy their members into new ones).
    """
    try:
        res: np.ndarray = shapely.lib.coverage_union(colls)
        return res
    except shapely.errors.GEOSException:
        out = np.empty(len(colls), dtype=object)
        for i, coll in enumerate(colls):
            try:
                out[i] = shapely.lib.coverage_union(coll)
            except shapely.errors.GEOSException:
                out[i] = None
        return out

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
    _union_where_failed(out, exact, area, lambda g: geoms[order[start[g]:start[g] + size[g]]])
    return out


def _union_where_failed(out: np.ndarray, exact: np.ndarray, area: np.ndarray,
                        members: Callable[[int], np.ndarray]) -> None:
    """Redo by a full ``union_all`` of ``members(g)`` every group ``g`` whose coverage union failed.

    That is: not tried (``exact`` False), failed (None), invalid, or with less area than its
    members (``area``).
    """
    ok = exact & shapely.is_valid(out)
    ok &= np.abs(np.nan_to_num(shapely.area(out)) - area) <= 1e-9 * area + 1e-6
    redo = np.flatnonzero(~ok)
    if len(redo):
        log.debug("%d of %d groups dissolved by a full union", len(redo), len(out))
        for g in redo:
            out[g] = shapely.union_all(members(int(g)))


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
                      points_of: Callable[[int], BaseGeometry], *,
                      grid_size: float = 0.0) -> list[tuple[str, str, BaseGeometry]]:
    """Give each 台区-less, detached part of a grid to the grid it borders most (same township).

    ``idx``: the positions in ``pieces`` of one township's grids; ``points_of(i)``: the 台区 of
    piece ``i`` (a multipoint). ``grid_size``: a precision model the pieces (coordinates on its
    grid) are given before any overlay on them, if a grid has several parts (0: as they are).
    """
    if len(idx) < 2:
        return pieces
    geoms = np.array([pieces[i][2] for i in idx], dtype=object) if grid_size > 0 else None
    if geoms is not None and (shapely.get_num_geometries(geoms) >= 2).any():
        for i, geom in zip(idx, shapely.set_precision(geoms, grid_size, mode="pointwise")):
            pieces[i] = (pieces[i][0], pieces[i][1], geom)
    pts: dict[int, BaseGeometry] = {}
    for _ in range(3):  # an orphan may border only another orphan: a few passes settle it
        moved = False
        for i in idx:
            t, g, geom = pieces[i]
            if not isinstance(geom, BaseMultipartGeometry) or shapely.get_num_geometries(geom) < 2:
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


def cells_and_edges(county: County, transformers: gpd.GeoDataFrame, *, scope: str = "township",
                    min_border_m: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """:func:`all_cells` and :func:`contiguity_edges` at once: each township's cells drawn once.

    Returns
    -------
    tuple of numpy.ndarray
        The cells (as :func:`all_cells` gives them) and the edges (as :func:`contiguity_edges`).
    """
    xy, tids, geoms, drawn = _drawn_townships(county, transformers)
    cells = np.empty(len(xy), dtype=object)
    for t, idx in enumerate(group_members(tids)):
        cells[idx] = drawn[t].cells
    cross = None
    if scope != "township":
        units = label_codes(transformers["station_id"].astype(str).to_numpy())[1]
        cross = _across(neighbour_edges(xy, groups=units), tids)
    barriers = county.barriers.geometry.values if county.barriers is not None else None
    edges = _adjacent(xy, tids, geoms, drawn, cross=cross, barriers=barriers, min_border_m=min_border_m)
    return cells, edges


def contiguity_edges(county: County, transformers: gpd.GeoDataFrame, *, scope: str = "township",
                     min_border_m: float = 0.1) -> np.ndarray:
    """The neighbourhood graph on which grids must be contiguous.

    Two 台区 of one township are neighbours when the parts of their Voronoi cells that hold them
    (clipped to the township) share a border at least ``min_border_m`` long. The candidates are
    the Voronoi ridges themselves, read off the cells GEOS draws for the territory
    (:func:`_voronoi_ridges`): the graph and the grid polygons come from one diagram. With
    ``scope="station"`` 台区 of neighbouring townships of a station are neighbours too where
    their cells share such a border (candidates: Delaunay neighbours within the station, a
    subset of the true adjacency, which is safe: contiguity on a subset implies contiguity on
    the whole). Edges that cross a barrier line (``county.barriers``) are left out. A grid
    connected on this graph is one connected polygon.

    Returns
    -------
    numpy.ndarray
        (m, 2) int array of point indices (row positions in ``transformers``), ``i < j``, sorted.
        Duplicate points (the same location to 1 mm) are joined to the first of them.
    """
    return cells_and_edges(county, transformers, scope=scope, min_border_m=min_border_m)[1]


def cell_adjacency(county: County, transformers: gpd.GeoDataFrame, candidates: np.ndarray, *,
                   min_border_m: float = 0.1) -> np.ndarray:
    """Keep the ``candidates`` (m, 2) whose 台区' territory cells share a border.

    The same test as :func:`contiguity_edges` (at least ``min_border_m`` of shared border between
    the parts of the two cells that hold the 台区; pairs in two townships by a polygon test), on
    the given pairs; pairs at the same location are always kept.
    """
    candidates = np.asarray(candidates, dtype=np.int64).reshape(-1, 2)
    if len(candidates) == 0:
        return candidates
    xy, tids, geoms, drawn = _drawn_townships(county, transformers)
    found = _adjacent(xy, tids, geoms, drawn, cross=_across(candidates, tids), barriers=None,
                      min_border_m=min_border_m)
    n = max(len(xy), 1)
    lo, hi = np.minimum(candidates[:, 0], candidates[:, 1]), np.maximum(candidates[:, 0], candidates[:, 1])
    kept: np.ndarray = candidates[_sorted_member(lo * n + hi, found[:, 0] * n + found[:, 1])]
    return kept


def _drawn_townships(county: County, transformers: gpd.GeoDataFrame
                     ) -> tuple[np.ndarray, np.ndarray, list[BaseGeometry], dict[int, _Drawn]]:
    """The 台区' points, township codes, the townships (by code) and their cells with ridges."""
    xy = shapely.get_coordinates(transformers.geometry.values)
    names, tids = label_codes(transformers["township_id"].astype(str).to_numpy())
    towns = county.townships.assign(township_id=county.townships["township_id"].astype(str))
    towns = towns.set_index("township_id").geometry
    geoms = [towns.loc[t] for t in names]
    drawn = {t: _draw_cells(geoms[t], xy[idx], ridges=True) for t, idx in enumerate(group_members(tids))}
    return xy, tids, geoms, drawn


def _across(edges: np.ndarray, tids: np.ndarray) -> np.ndarray:
    """The ``edges`` whose two ends lie in different townships."""
    out: np.ndarray = edges[tids[edges[:, 0]] != tids[edges[:, 1]]]
    return out


def _adjacent(xy: np.ndarray, tids: np.ndarray, towns: list[BaseGeometry], drawn: dict[int, _Drawn], *,
              cross: np.ndarray | None, barriers: Any, min_border_m: float) -> np.ndarray:
    """:func:`contiguity_edges` on arrays.

    ``tids`` numbers the points' townships ``towns``; ``drawn``: per township code, its cells as
    :func:`_draw_cells` drew them with their ridges; ``cross``: candidate edges between
    townships (None: none). Within a township the candidates are the Voronoi ridges (a township
    whose ridges could not be read, or with fewer than three distinct or collinear points, takes
    its Delaunay edges), and every duplicate point is joined to the first at its location. A
    ridge between two single-part cells counts its length inside the township; pairs with a
    multi-part cell, and pairs across townships, take an exact polygon test.
    """
    n = len(xy)
    rep = np.arange(n)
    main = np.empty(n, dtype=object)
    fast = np.zeros(n, dtype=bool)  # single-part cell in a township handled by ridges
    found: list[np.ndarray] = []  # candidate edges
    ok_pairs: list[np.ndarray] = []  # ridge pairs long enough between single-part cells
    for idx in group_members(tids):
        t = int(tids[idx[0]])
        d = drawn[t]
        uniq, first, inverse, mine = d.uniq, d.first, d.inverse, d.cells
        rep[idx] = idx[first[inverse]]
        dup = np.flatnonzero(first[inverse] != np.arange(len(idx)))
        if len(dup):
            found.append(np.column_stack([idx[first[inverse[dup]]], idx[dup]]))
        single = shapely.get_num_geometries(mine) <= 1
        main[idx] = mine
        for i in np.flatnonzero(~single):
            main[idx[i]] = _part_holding(mine[i], shapely.Point(xy[idx[i]]))
        if d.ridges is None or d.unclipped is None:
            if len(uniq) >= 2:
                found.append(idx[first[neighbour_edges(uniq)]])
            continue
        pairs, length = _ridge_lengths(d.ridges, towns[t], inside=d.unclipped)
        glob = idx[first[pairs]]
        found.append(glob)
        fast[idx[first]] = single[first]
        both = single[first[pairs[:, 0]]] & single[first[pairs[:, 1]]]
        ok_pairs.append(glob[both & (length >= min_border_m)])
    if cross is not None:
        found.append(np.asarray(cross, dtype=np.int64).reshape(-1, 2))
    candidates = _canonical(np.concatenate(found)) if found else np.empty((0, 2), dtype=np.int64)
    if barriers is not None and len(candidates):
        candidates = _drop_crossing(xy, candidates, barriers)
    if not len(candidates):
        return candidates
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


def _sorted_member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_set)`` for a sorted ``sorted_set``, by binary search."""
    if not len(sorted_set):
        return np.zeros(len(values), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    hit: np.ndarray = sorted_set[pos] == values
    return hit


def _ridge_lengths(ridges: _Ridges, town: BaseGeometry, *,
                   inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pairs, length of their ridge inside ``town``), one row per pair of distinct points.

    ``inside``: per distinct point, whether its (unclipped) cell lies in the township's interior:
    so do its ridges, which count their whole length without a polygon test.
    """
    seg = ridges.seg
    length = np.zeros(len(seg))
    whole = inside[ridges.pairs[:, 0]] | inside[ridges.pairs[:, 1]]
    length[whole] = np.linalg.norm(seg[whole, 1] - seg[whole, 0], axis=1)
    rest = np.flatnonzero(~whole)
    if len(rest):
        lines = shapely.linestrings(seg[rest])
        shapely.prepare(town)
        within = shapely.contains_properly(town, lines)
        part = np.where(within, shapely.length(lines), 0.0)
        cross = np.flatnonzero(~within & shapely.intersects(town, lines))
        if len(cross):
            part[cross] = shapely.length(shapely.intersection(lines[cross], town))
        length[rest] = part
    m = int(ridges.pairs.max()) + 1 if len(seg) else 1
    code = ridges.pairs[:, 0] * m + ridges.pairs[:, 1]
    order = np.argsort(code, kind="stable")
    new = np.r_[True, code[order][1:] != code[order][:-1]] if len(code) else np.zeros(0, dtype=bool)
    if new.all():  # the usual case: one ridge per pair
        return ridges.pairs, length
    at = np.empty(len(code), dtype=np.int64)
    at[order] = np.cumsum(new) - 1
    total = np.bincount(at, weights=length)
    return ridges.pairs[order[new]], total


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
    edges = _canonical(edges)  # rows in (i, j) order (each pair is one already, once)
    return PackedCells(n, [str(t) for t in names], rows, wkb), edges


def _graph_task(xy: np.ndarray, tcode: np.ndarray, towns_wkb: np.ndarray, barriers_wkb: np.ndarray | None,
                min_border_m: float) -> tuple[list[np.ndarray], np.ndarray]:
    """One township's (station's) cells (WKB, per township) and contiguity edges (local positions).

    ``tcode``: each point's township (0..m-1, into ``towns_wkb``); ``barriers_wkb``: the barrier
    lines near it (None: the county has none).
    """
    towns = list(shapely.from_wkb(towns_wkb))
    members = group_members(tcode)
    drawn = {t: _draw_cells(towns[t], xy[idx], ridges=True) for t, idx in enumerate(members)}
    barriers = None if barriers_wkb is None else shapely.from_wkb(barriers_wkb)
    cross = _across(neighbour_edges(xy), tcode) if len(members) > 1 else None
    edges = _adjacent(xy, tcode, towns, drawn, cross=cross, barriers=barriers, min_border_m=min_border_m)
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
        cells_wkb = shapely.to_wkb(township_cells(shapely.from_wkb(town_wkb), xy))
    labelled = gcode >= 0
    if not labelled.all():
        cells_wkb, xy, gcode = cells_wkb[labelled], xy[labelled], gcode[labelled]
    grid, piece_of = np.unique(gcode, return_inverse=True)
    piece_of = piece_of.ravel()
    # snapped and dissolved in WKB: the pieces get the 1 mm model only for the orphans' overlays
    geoms = dissolve_wkb_groups(cells_wkb, piece_of, len(grid), grid_size=_GRID_SIZE_M)
    by_piece = np.argsort(piece_of, kind="stable")
    first = np.searchsorted(piece_of[by_piece], np.arange(len(grid) + 1))

    def points_of(i: int) -> BaseGeometry:
        return shapely.multipoints(xy[by_piece[first[i]:first[i + 1]]])

    pieces = _reassign_orphans([("", "", g) for g in geoms], range(len(grid)), points_of,
                               grid_size=_GRID_SIZE_M)
    return grid, shapely.to_wkb(np.array([p[2] for p in pieces], dtype=object))
