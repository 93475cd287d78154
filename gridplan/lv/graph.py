"""Neighbour graphs of points: Delaunay within groups, cut by barrier lines; grouping by sorts.

``neighbour_edges`` joins points whose Delaunay triangles share an edge, both in the same group
and with a straight segment between them that crosses no barrier (river, highway, railway). The
plan's contiguity graph (:func:`gridplan.lv.territory.contiguity_edges`) is the territory
cells' own adjacency; it uses these edges only between townships (``scope = "station"``) and
where a township's Voronoi ridges cannot be read. The solver's benchmarks and tests use them on
bare points.

All coordinates are metres in the county's metric CRS.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay, QhullError

__all__ = ["adjacency", "code_order", "components", "group_members", "label_codes", "neighbour_edges", "sorted_unique",
           "unique_rows"]

log = logging.getLogger(__name__)

#: Points on the same grid cell of this size (metres) are treated as one location.
_DUPLICATE_M = 1e-3


def neighbour_edges(xy: np.ndarray, *, groups: Any = None, barriers: Any = None) -> np.ndarray:
    """Return the undirected neighbour edges of ``xy``: Delaunay within each group, minus barriers.

    Parameters
    ----------
    xy
        ``(n, 2)`` coordinates in metres.
    groups
        Optional length-``n`` labels (e.g. township ids); edges only join points of one group.
    barriers
        Optional lines (or polygons) that edges may not cross: a GeoSeries, GeoDataFrame, shapely
        geometry (collection) or array of geometries, in the same metric CRS as ``xy``.

    Returns
    -------
    numpy.ndarray
        ``(m, 2)`` int64 array of vertex pairs ``i < j``, sorted, without duplicates.
        Duplicate points are chained to each other; a group of 1 point has no edge, 2 points one
        edge, collinear points a chain in order along the line.
    """
    xy = np.asarray(xy, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"xy must be an (n, 2) array, got shape {xy.shape}")
    if not np.isfinite(xy).all():
        bad = np.flatnonzero(~np.isfinite(xy).all(axis=1))
        raise ValueError(f"xy has non-finite coordinates at rows {bad[:20].tolist()}")
    n = len(xy)
    if groups is None:
        codes = np.zeros(n, dtype=np.int64)
    else:
        groups = np.asarray(groups)
        if len(groups) != n:
            raise ValueError(f"groups has {len(groups)} labels for {n} points")
        _, codes = label_codes(groups.astype(str) if groups.dtype == object else groups)
    parts = [_group_edges(xy[idx], idx) for idx in group_members(codes) if len(idx) > 1]
    edges = np.concatenate(parts) if parts else np.empty((0, 2), dtype=np.int64)
    edges = _canonical(edges)
    if barriers is not None and len(edges):
        edges = _drop_crossing(xy, edges, barriers)
    return edges


def label_codes(labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(labels, return_inverse=True)`` by hashing: (sorted distinct labels, codes).

    The codes number the labels in sorted order, as ``np.unique`` does, without sorting
    ``labels`` themselves (a sort of a million Python strings takes seconds).
    """
    codes, uniques = pd.factorize(np.asarray(labels), sort=True)
    return np.asarray(uniques), np.asarray(codes, dtype=np.int64)


def group_members(codes: np.ndarray) -> list[np.ndarray]:
    """The positions of every code (``0..k-1``, from :func:`label_codes`), ascending, by code."""
    codes = np.asarray(codes, dtype=np.int64)
    if not len(codes):
        return []
    order = code_order(codes)
    return np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)


def code_order(codes: np.ndarray) -> np.ndarray:
    """``np.argsort(codes, kind="stable")`` of non-negative integer codes, faster.

    Codes below 2**15 are sorted as 16-bit integers: numpy's stable sort is a radix sort for
    them (≈ 6 × faster at a million codes), and the order is the same.
    """
    codes = np.asarray(codes)
    small = len(codes) and int(codes.min()) >= 0 and int(codes.max()) < 2**15
    order: np.ndarray = np.argsort(codes.astype(np.int16) if small else codes, kind="stable")
    return order


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` of a 1-D array, by a sort.

    numpy 2.4 finds the distinct values of a plain ``np.unique`` with a hash table, ≈ 1.2 s for
    a million int64 (a sort takes ≈ 0.02 s): the same sorted values.
    """
    v = np.sort(np.asarray(values).ravel())
    out: np.ndarray = v[np.r_[True, v[1:] != v[:-1]]] if len(v) else v
    return out


def unique_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(a, axis=0, return_index=True, return_inverse=True)`` of an (n, 2) array.

    Rows sorted by the first column, then the second; ``first``: the first occurrence of each.
    One lexsort instead of numpy's structured sort.
    """
    a = np.asarray(a)
    order = np.lexsort((a[:, 1], a[:, 0]))
    s = a[order]
    new = np.ones(len(a), dtype=bool)
    new[1:] = (s[1:] != s[:-1]).any(axis=1)
    inverse = np.empty(len(a), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return s[new], order[new], inverse


def _canonical(edges: np.ndarray) -> np.ndarray:
    """Sort each pair, drop self-loops and duplicates, sort rows."""
    if not len(edges):
        return np.empty((0, 2), dtype=np.int64)
    edges = np.sort(np.asarray(edges, dtype=np.int64), axis=1)
    edges = edges[edges[:, 0] != edges[:, 1]]
    if not len(edges):
        return np.empty((0, 2), dtype=np.int64)
    n = int(edges.max()) + 1
    code = np.sort(edges[:, 0] * n + edges[:, 1])  # one int64 per pair: rows in (i, j) order
    code = code[np.concatenate([[True], code[1:] != code[:-1]])]
    return np.column_stack([code // n, code % n])


def _group_edges(pts: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Edges (global indices) of one group's points."""
    key = np.round((pts - pts.min(axis=0)) / _DUPLICATE_M).astype(np.int64)
    _, first, inv = unique_rows(key)
    uniq = pts[first]
    out = []
    rep = first[inv]
    dup = np.flatnonzero(rep != np.arange(len(pts)))
    if len(dup):  # join every duplicate to its representative
        out.append(np.column_stack([idx[rep[dup]], idx[dup]]))
    m = len(uniq)
    if m == 2:
        out.append(np.array([[idx[first[0]], idx[first[1]]]]))
    elif m > 2:
        local = _unique_edges(uniq)
        out.append(idx[first[local]])
    return np.concatenate(out) if out else np.empty((0, 2), dtype=np.int64)


def _unique_edges(pts: np.ndarray) -> np.ndarray:
    """Delaunay edges of distinct points (a chain if they are collinear)."""
    centred = pts - pts.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    if sv[1] <= 1e-9 * max(sv[0], 1e-12):
        return _chain(centred)
    try:
        tri = Delaunay(pts)
    except QhullError:
        try:
            tri = Delaunay(pts, qhull_options="QJ")
        except QhullError:
            return _chain(centred)
    s = tri.simplices
    out = [s[:, [0, 1]], s[:, [1, 2]], s[:, [0, 2]]]
    if len(tri.coplanar):  # points Qhull left out (nearly coincident): join to their nearest vertex
        out.append(tri.coplanar[:, [0, 2]])
    return np.concatenate(out)


def _chain(centred: np.ndarray) -> np.ndarray:
    """Edges joining points in order along their principal direction."""
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    order = np.argsort(centred @ vt[0], kind="stable")
    return np.column_stack([order[:-1], order[1:]])


def _barrier_geoms(barriers: Any) -> np.ndarray:
    """Flatten ``barriers`` into a 1-d array of non-empty shapely geometries."""
    if hasattr(barriers, "geometry") and not isinstance(barriers, shapely.Geometry):
        geoms = np.asarray(barriers.geometry.values, dtype=object)
    elif isinstance(barriers, shapely.Geometry):
        geoms = np.array([barriers], dtype=object)
    else:
        geoms = np.asarray(list(barriers), dtype=object)
    if not len(geoms):
        return geoms
    geoms = shapely.get_parts(geoms)
    kept: np.ndarray = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    return kept


def _drop_crossing(xy: np.ndarray, edges: np.ndarray, barriers: Any) -> np.ndarray:
    """Remove the edges whose straight segment intersects any barrier geometry."""
    geoms = _barrier_geoms(barriers)
    if not len(geoms):
        return edges
    lines = shapely.linestrings(np.stack([xy[edges[:, 0]], xy[edges[:, 1]]], axis=1))
    tree = shapely.STRtree(geoms)
    hit = tree.query(lines, predicate="intersects")[0]
    keep = np.ones(len(edges), dtype=bool)
    keep[hit] = False
    log.debug("barriers removed %d of %d edges", (~keep).sum(), len(edges))
    return edges[keep]


def adjacency(n: int, edges: np.ndarray) -> csr_matrix:
    """Return the symmetric ``n x n`` CSR adjacency matrix (ones) of undirected ``edges``."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    a = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n)).tocsr()
    a.sum_duplicates()
    a.data[:] = 1
    a.sort_indices()
    return a


def components(n: int, edges: np.ndarray) -> np.ndarray:
    """Return connected-component labels (0..c-1) of ``n`` vertices joined by ``edges``.

    Labels are numbered in order of each component's smallest vertex (deterministic).
    """
    if n == 0:
        return np.empty(0, dtype=np.int64)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    # each edge once: connected_components(directed=False) follows it both ways (no symmetric
    # adjacency to build for a partition)
    graph = csr_matrix((np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # renumber by first occurrence so that the numbering does not depend on scipy internals
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inv.ravel()]
