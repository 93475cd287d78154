"""Feeder graph: turn 10 kV line data into radial trees rooted at substations.

Real line layers rarely share exact endpoints. :func:`build_feeder_graph` cleans them up, in order:

1. explode multi-part lines, drop empty and zero-length ones;
2. snap line ends lying within ``params.snap_lines_m`` of each other to one point (bridges tiny gaps);
3. split a line where another line's end lies on its interior (T-junctions) and where a switch lies
   on it; a *normally-open* switch cuts the line there (the two sides do not connect);
4. drop duplicated pieces: between the same two ends, a piece repeating another of the same
   ``line_id`` (when the layer has one), or coinciding with it (within the snap tolerance) and with
   identical attributes; the dropped ones are listed by id in the notes. Parallel pieces with
   distinct ids (a double circuit, 同杆双回) are kept, counted in ``stats["parallel"]`` and their km
   stay in the segments (they are not loops);
5. root every connected part at a substation (the substation point nearest a line vertex within
   ``params.attach_tolerance_m``, else the point of its feeders' ``substation_id``), and build a
   breadth-first spanning tree; every edge left over closes a loop and is reported (the loop is
   opened at that edge's far end);
6. attach every 台区 to the nearest vertex of its ``feeder_id``, else to the nearest line within
   ``params.attach_tolerance_m``;
7. count the poles of every piece: a ``poles`` column of the feeders layer (杆数) is shared among a
   row's pieces by length; without it, every vertex of the line geometry except the piece's start
   counts as one pole (its interior vertices plus its far end, so each junction counts once).

The result is a :class:`FeederGraph` of numpy arrays, one *node* per line piece (the piece's far
end), plus one root node per (substation, feeder). Everything the cleaning did or could not do is a
Chinese sentence in ``FeederGraph.notes``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from ..errors import InputError, Problem
from ..model import County
from ..settings import Params

__all__ = ["FeederGraph", "build_feeder_graph"]

log = logging.getLogger(__name__)

#: How many ids a note lists before "等".
_SHOW = 10


def _ids(items: Iterable[object]) -> str:
    names = [str(i) for i in items]
    more = f" 等 {len(names)} 处" if len(names) > _SHOW else ""
    return "、".join(names[:_SHOW]) + more


@dataclass
class FeederGraph:
    """Radial feeder forest as arrays (one node per line piece, plus root nodes).

    Attributes
    ----------
    xy
        ``(n, 2)`` node coordinates (the far end of the piece into the node), metric CRS.
    parent
        Parent node, ``-1`` at roots (one root per substation and feeder).
    length_m
        Length of the piece into each node (0 at roots).
    poles
        Poles along the piece into each node (0 at roots; see step 7 of the module docstring).
    feeder
        Index into ``feeder_ids`` of the piece into each node (roots: their feeder).
    feeder_ids
        Feeder ids, sorted.
    switch
        A closed switch (or a substation breaker, at roots) sits at the node: the pieces below it
        may be cut off there.
    line_row
        Position in ``county.feeders`` of the line each piece comes from (-1 at roots).
    edge_coords, edge_offsets
        Polyline of the piece into node ``v``, from its parent to ``v``:
        ``edge_coords[edge_offsets[v]:edge_offsets[v + 1]]`` (empty at roots).
    root_substation
        Substation id per root node (``None`` where no substation was found).
    transformer_node
        Node each 台区 hangs from (``-1`` if unattached), indexed like ``county.transformers``.
    notes
        Chinese sentences: repairs made, loops left, unrooted pieces, unattached 台区.
    stats
        Counts behind the notes (``snapped_ends``, ``t_junctions``, ``duplicates``, ``loops``, ...).
    """

    xy: np.ndarray
    parent: np.ndarray
    length_m: np.ndarray
    feeder: np.ndarray
    feeder_ids: list[str]
    switch: np.ndarray
    line_row: np.ndarray
    edge_coords: np.ndarray
    edge_offsets: np.ndarray
    root_substation: dict[int, str | None]
    transformer_node: pd.Series
    poles: np.ndarray = field(default_factory=lambda: np.empty(0))
    notes: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    crs: object = None

    def __post_init__(self) -> None:
        """Count the poles of a graph built by hand (one per vertex after each piece's start)."""
        if not len(self.poles) and len(self.parent):  # built by hand: a pole per vertex after the start
            counts = np.diff(self.edge_offsets)
            self.poles = np.where(self.parent >= 0, np.maximum(counts - 1, 0), 0).astype(float)

    @property
    def n(self) -> int:
        """Number of nodes."""
        return len(self.parent)

    def edge_lines(self, nodes: np.ndarray | None = None) -> np.ndarray:
        """Return the pieces into ``nodes`` (default: every non-root node) as shapely LineStrings."""
        if nodes is None:
            nodes = np.flatnonzero(self.parent >= 0)
        return _edge_lines(self.edge_coords, self.edge_offsets, nodes)


def _edge_lines(edge_coords: np.ndarray, edge_offsets: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Return the pieces into ``nodes`` as shapely LineStrings (see :meth:`FeederGraph.edge_lines`)."""
    starts, ends = edge_offsets[nodes], edge_offsets[nodes + 1]
    counts = ends - starts
    idx = np.repeat(np.arange(len(nodes)), counts)
    take = np.repeat(starts - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(counts.sum())
    lines: np.ndarray = shapely.linestrings(edge_coords[take], indices=idx)
    return lines


# ----------------------------------------------------------------------------- cleaning steps
def _explode(feeders: gpd.GeoDataFrame) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Return (coordinate arrays, feeder_id, source row) of every non-degenerate LineString part."""
    geoms = feeders.geometry.values
    parts, index = shapely.get_parts(np.asarray(geoms), return_index=True)
    parts = shapely.force_2d(parts)
    keep = (shapely.get_type_id(parts) == 1) & ~shapely.is_empty(parts) & (shapely.length(parts) > 0)
    parts, index = parts[keep], index[keep]
    coords = [np.asarray(shapely.get_coordinates(g)) for g in parts]
    fid = feeders["feeder_id"].astype(str).to_numpy()[index]
    return coords, fid, index


def _snap_ends(coords: list[np.ndarray], tol: float) -> int:
    """Move line ends within ``tol`` of each other to their cluster's mean; return how many moved."""
    if not coords or tol <= 0:
        return 0
    ends = np.array([[c[0], c[-1]] for c in coords]).reshape(-1, 2)
    pairs = cKDTree(ends).query_pairs(tol, output_type="ndarray")
    if not len(pairs):
        return 0
    g = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(ends),) * 2)
    _, lab = csgraph.connected_components(g, directed=False)
    # each cluster goes to its most frequent exact position (ties: the first), not to a mean
    _, pos_id, pos_n = np.unique(ends, axis=0, return_inverse=True, return_counts=True)
    score = pd.DataFrame({"lab": lab, "n": pos_n[pos_id.reshape(-1)], "i": np.arange(len(ends))})
    rep = score.sort_values(["lab", "n", "i"], ascending=[True, False, True]).drop_duplicates("lab")
    rep_of = np.empty(lab.max() + 1, dtype=np.int64)
    rep_of[rep["lab"].to_numpy()] = rep["i"].to_numpy()
    new = ends[rep_of[lab]]
    moved = np.any(new != ends, axis=1)
    for i, c in enumerate(coords):
        c[0], c[-1] = new[2 * i], new[2 * i + 1]
    return int(moved.sum())


def _split_coords(c: np.ndarray, cuts: list[tuple[float, np.ndarray, int]]) -> list[tuple[np.ndarray, int, int]]:
    """Split a polyline at distances; return pieces as (coords, start tag, end tag).

    ``cuts`` holds (distance along, exact point, tag): tag 0 joins both sides at the point, a
    positive tag gives the far side its own vertex (an open switch).
    """
    seg = np.hypot(*np.diff(c, axis=0).T)
    cum = np.r_[0.0, np.cumsum(seg)]
    out: list[tuple[np.ndarray, int, int]] = []
    cur = [c[0]]
    tag_start = 0
    j = 1
    for d, p, tag in sorted(cuts, key=lambda t: t[0]):
        while j < len(c) and cum[j] <= d:
            if cum[j] < d:
                cur.append(c[j])
            j += 1
        cur.append(p)
        out.append((np.array(cur), tag_start, 0))
        cur = [p]
        tag_start = tag
    cur.extend(c[j:])
    out.append((np.array(cur), tag_start, 0))
    return [(a, s, e) for a, s, e in out if len(a) >= 2 and np.hypot(*(np.diff(a, axis=0).T)).sum() > 0]


@dataclass
class _Pieces:
    coords: list[np.ndarray]
    fid: np.ndarray
    row: np.ndarray
    part: np.ndarray  # the exploded line part each piece comes from
    a: np.ndarray  # start vertex
    b: np.ndarray  # end vertex
    vxy: np.ndarray  # vertex coordinates


#: A switch at a line end: (exploded part or -1, point, normally open, switch id).
_SwitchAt = tuple[int, np.ndarray, bool, str]


def _node(coords: list[np.ndarray], fid: np.ndarray, row: np.ndarray,
          switches: gpd.GeoDataFrame | None, tol: float, notes: list[str],
          stats: dict[str, int]) -> tuple[_Pieces, list[_SwitchAt]]:
    """Split lines at T-junctions and switches; return pieces with vertex ids and switch vertices."""
    lines = np.array([shapely.linestrings(c) for c in coords], dtype=object)
    tree = shapely.STRtree(lines)
    cuts: dict[int, list[tuple[float, np.ndarray, int]]] = {}
    ends = np.array([[c[0], c[-1]] for c in coords]).reshape(-1, 2)
    uend, inv = np.unique(ends, axis=0, return_inverse=True)
    inv = inv.reshape(-1, 2)
    pts = shapely.points(uend)
    pi, li = tree.query(pts, predicate="dwithin", distance=tol)
    own = (inv[li, 0] == pi) | (inv[li, 1] == pi)
    pi, li = pi[~own], li[~own]
    tj: set[int] = set()
    for p, ln in zip(pi.tolist(), li.tolist(), strict=True):
        d = float(shapely.line_locate_point(lines[ln], pts[p]))
        if tol < d < shapely.length(lines[ln]) - tol:
            cuts.setdefault(ln, []).append((d, uend[p], 0))
            tj.add(p)
    stats["t_junctions"] = len(tj)
    # switches on line interiors
    sw_at_vertex: list[_SwitchAt] = []
    sw_tag = 0
    if switches is not None and len(switches):
        sp = shapely.force_2d(np.asarray(switches.geometry.values))
        stol = max(tol, 10.0)
        s_idx, l_idx = tree.query_nearest(sp, max_distance=stol, all_matches=False)
        found = np.zeros(len(sp), dtype=bool)
        found[s_idx] = True
        missing = switches["switch_id"].astype(str).to_numpy()[~found]
        if len(missing):
            notes.append(f"开关 {_ids(missing)} 距任何线路超过 {stol:g} 米，未参与分段。")
        for s, ln in zip(s_idx.tolist(), l_idx.tolist(), strict=True):
            is_open = bool(switches["normally_open"].iloc[s])
            sid = str(switches["switch_id"].iloc[s])
            d = float(shapely.line_locate_point(lines[ln], sp[s]))
            q = np.asarray(shapely.get_coordinates(shapely.line_interpolate_point(lines[ln], d)))[0]
            if tol < d < shapely.length(lines[ln]) - tol:
                if is_open:
                    sw_tag += 1
                cuts.setdefault(ln, []).append((d, q, sw_tag if is_open else 0))
                if not is_open:
                    sw_at_vertex.append((-1, q, False, sid))
            else:
                end = coords[ln][0] if d <= tol else coords[ln][-1]
                sw_at_vertex.append((ln, end, is_open, sid))
    pieces: list[np.ndarray] = []
    pf: list[str] = []
    pr: list[int] = []
    pp: list[int] = []
    tags: list[tuple[int, int]] = []
    for i, c in enumerate(coords):
        for arr, ts, te in (_split_coords(c, cuts[i]) if i in cuts else [(c, 0, 0)]):
            pieces.append(arr)
            pf.append(fid[i])
            pr.append(row[i])
            pp.append(i)
            tags.append((ts, te))
    tag_arr = np.array(tags, dtype=float).reshape(-1, 2)
    ends = np.array([[p[0], p[-1]] for p in pieces]).reshape(-1, 2)
    keys = np.c_[ends, tag_arr.reshape(-1)]
    ukeys, vid = np.unique(keys, axis=0, return_inverse=True)
    vid = vid.reshape(-1, 2)
    P = _Pieces(pieces, np.array(pf), np.array(pr), np.array(pp, dtype=np.int64), vid[:, 0].copy(),
                vid[:, 1].copy(), ukeys[:, :2])
    return P, sw_at_vertex


def _drop_twin_parts(coords: list[np.ndarray], fid: np.ndarray, row: np.ndarray,
                     feeders: gpd.GeoDataFrame,
                     ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """Drop exploded parts that repeat an earlier part exactly (same vertices, either direction).

    Done before the lines are split at junctions and switches, so that a line exported twice is
    dropped even where a switch would cut only one of the two copies. A repeat is a true duplicate
    when it is the same row, has the same ``line_id``, or has identical attributes (step 4).

    Returns
    -------
    (coords, fid, row, twins)
        The parts kept, and per dropped part (index of its kept twin among the parts kept, label).
    """
    ids, attrs, _ = _row_keys(feeders)
    seen: dict[bytes, list[int]] = {}
    keep: list[int] = []
    twin_of: list[tuple[int, str]] = []
    for i, c in enumerate(coords):
        key = min(np.ascontiguousarray(c).tobytes(), np.ascontiguousarray(c[::-1]).tobytes())
        ri = int(row[i])
        match = None
        for k in seen.get(key, []):
            rk = int(row[k])
            if rk == ri or (ids[ri] is not None and ids[ri] == ids[rk]) or \
                    ((ids[ri] is None or ids[rk] is None) and attrs[ri] == attrs[rk]):
                match = k
                break
        if match is None:
            seen.setdefault(key, []).append(i)
            keep.append(i)
        else:
            twin_of.append((match, _piece_label(feeders, ri, ids)))
    pos = {old: new for new, old in enumerate(keep)}
    twins = [(pos[k], label) for k, label in twin_of]
    return [coords[i] for i in keep], fid[keep], row[keep], twins


#: A feeders row's attributes, as text (None where missing).
_Attrs = tuple[str | None, ...]


def _row_keys(feeders: gpd.GeoDataFrame) -> tuple[list[str | None], list[_Attrs], bool]:
    """Per feeders row: its ``line_id`` (or None), its attributes as a tuple, whether ids exist."""
    cols = [c for c in feeders.columns if c not in ("geometry", "_row")]
    has_ids = "line_id" in feeders.columns
    ids: list[str | None] = [None] * len(feeders)
    if has_ids:
        ids = [None if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""
               else str(v).strip() for v in feeders["line_id"].astype(object).tolist()]
    attrs = [tuple(None if pd.isna(v) else str(v) for v in row)
             for row in feeders[cols].astype(object).itertuples(index=False, name=None)]
    return ids, attrs, has_ids


def _piece_label(feeders: gpd.GeoDataFrame, row: int, ids: list[str | None]) -> str:
    """How a dropped piece is named in the notes: its line_id, else feeder id and row number."""
    line_id = ids[row]
    if line_id is not None:
        return line_id
    return f"{feeders['feeder_id'].astype(str).iloc[row]}(第 {row + 1} 行)"


def _is_duplicate(P: _Pieces, i: int, j: int, tol: float, ids: list[str | None],
                  attrs: list[_Attrs]) -> bool:
    """Whether piece ``j`` repeats piece ``i`` (both join the same two vertices)."""
    ri, rj = int(P.row[i]), int(P.row[j])
    same_shape = bool(shapely.hausdorff_distance(shapely.linestrings(P.coords[i]),
                                                 shapely.linestrings(P.coords[j])) <= max(tol, 1e-6))
    if ri == rj:
        return same_shape  # one row drawing the same part twice
    if ids[ri] is not None and ids[rj] is not None:
        return ids[ri] == ids[rj]  # same id: the same line, even when drawn a little differently
    return same_shape and attrs[ri] == attrs[rj]


def _drop_duplicates(P: _Pieces, tol: float, feeders: gpd.GeoDataFrame) -> list[str]:
    """Remove pieces that truly repeat another (see step 4); return the labels of those dropped."""
    ids, attrs, _ = _row_keys(feeders)
    lo, hi = np.minimum(P.a, P.b), np.maximum(P.a, P.b)
    order = np.lexsort((np.arange(len(lo)), hi, lo))
    drop = np.zeros(len(P.a), dtype=bool)
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and lo[order[end]] == lo[order[start]] and hi[order[end]] == hi[order[start]]:
            end += 1
        kept: list[int] = []
        for j in sorted(order[start:end].tolist()):
            if any(_is_duplicate(P, i, j, tol, ids, attrs) for i in kept):
                drop[j] = True
            else:
                kept.append(j)
        start = end
    dropped = [_piece_label(feeders, int(P.row[k]), ids) for k in np.flatnonzero(drop)]
    self_loop = (P.a == P.b) & np.array([np.hypot(*np.diff(c, axis=0).T).sum() <= tol for c in P.coords])
    drop |= self_loop
    keep = np.flatnonzero(~drop)
    P.coords = [P.coords[i] for i in keep]
    P.fid, P.row, P.part, P.a, P.b = P.fid[keep], P.row[keep], P.part[keep], P.a[keep], P.b[keep]
    return dropped + ["" for _ in range(int(self_loop.sum()))]


def _open_at_vertices(P: _Pieces, sw_at_vertex: list[_SwitchAt], tol: float,
                      notes: list[str]) -> tuple[np.ndarray, int]:
    """Apply switches at line ends: open ones detach one piece, closed ones mark the vertex."""
    vtree = cKDTree(P.vxy)
    closed = np.zeros(len(P.vxy), dtype=bool)
    n_open = 0
    for _part, q, is_open, sid in sw_at_vertex:
        dist, v = vtree.query(q)
        if dist > max(tol, 1e-6):
            continue
        if not is_open:
            closed[v] = True
            continue
        inc = np.flatnonzero((P.a == v) | (P.b == v))
        if len(inc) < 2:
            continue  # a dead end: already open
        fids = P.fid[inc]
        vals, cnt = np.unique(fids, return_counts=True)
        odd = inc[fids == vals[cnt.argmin()]] if cnt.min() == 1 and len(vals) > 1 else inc
        e = int(odd.max())
        if len(inc) > 2:
            notes.append(f"常开开关 {sid} 位于多条线路交汇处，已断开其中第 {int(P.row[e]) + 1} 行线路在该点的连接。")
        new = len(P.vxy)
        P.vxy = np.vstack([P.vxy, P.vxy[v]])
        if P.a[e] == v:
            P.a[e] = new
        else:
            P.b[e] = new
        n_open += 1
    closed = np.r_[closed, np.zeros(len(P.vxy) - len(closed), dtype=bool)]
    return closed, n_open


def _roots(P: _Pieces, county: County, params: Params, comp: np.ndarray, ncomp: int,
           notes: list[str]) -> dict[int, str | None]:
    """Choose root vertices: substations near a vertex, else the feeders' substation_id point."""
    roots: dict[int, str | None] = {}
    subs = county.substations
    sub_xy: dict[str, np.ndarray] = {}
    if subs is not None and len(subs):
        sxy = shapely.get_coordinates(shapely.force_2d(np.asarray(subs.geometry.values)))
        sids = subs["substation_id"].astype(str).tolist()
        sub_xy = dict(zip(sids, sxy, strict=True))
        # every connected part with a vertex near a substation is rooted at its nearest such vertex
        near = cKDTree(P.vxy).query_ball_point(sxy, params.attach_tolerance_m)
        cand: list[tuple[int, float, str, int]] = []
        for sid, pt, vs in zip(sids, sxy, near, strict=True):
            cand.extend((int(comp[v]), float(np.hypot(*(P.vxy[v] - pt))), sid, int(v)) for v in vs)
        taken: set[int] = set()
        for c, _dist, sid, v in sorted(cand):
            if c not in taken:
                taken.add(c)
                roots[v] = sid
    has_root = np.zeros(ncomp, dtype=bool)
    if roots:
        has_root[comp[np.array(sorted(roots))]] = True
    fsub: dict[str, Any] = {}
    feeders = county.feeders
    if feeders is not None and "substation_id" in feeders.columns:
        fsub = dict(zip(feeders["feeder_id"].astype(str), feeders["substation_id"], strict=True))
    deg = np.bincount(np.r_[P.a, P.b], minlength=len(P.vxy))
    unrooted = []
    for part in np.flatnonzero(~has_root):
        verts = np.flatnonzero(comp == part)
        edges = np.flatnonzero(comp[P.a] == part)
        fids = sorted(set(P.fid[edges].tolist()))
        sid = next((str(fsub[f]) for f in fids if f in fsub and pd.notna(fsub[f]) and str(fsub[f]) in sub_xy), None)
        if sid is not None:
            d = np.hypot(*(P.vxy[verts] - sub_xy[sid]).T)
            v = int(verts[d.argmin()])
            roots[v] = sid
            notes.append(f"馈线 {_ids(fids)} 的线路未接到变电站 {sid} 附近（最近端点相距 {d.min():.0f} 米），"
                         "已以最近端点为起点。")
        else:
            leaves = verts[deg[verts] == 1]
            v = int((leaves if len(leaves) else verts).min())
            roots[v] = None
            length = sum(np.hypot(*np.diff(P.coords[e], axis=0).T).sum() for e in edges)
            unrooted.append((fids, length, P.vxy[v]))
    for fids, length, xy in unrooted:
        notes.append(f"馈线 {_ids(fids)} 有 {length / 1000:.2f} km 线路未连接到任何变电站"
                     f"（起点取 {xy[0]:.0f}, {xy[1]:.0f}），请检查线路是否断开或补充变电站位置。")
    return roots


def _spanning_tree(P: _Pieces, roots: dict[int, str | None],
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Breadth-first tree from every root; return (pred, order position, tree piece per vertex)."""
    nv = len(P.vxy)
    S = nv  # super source
    r = np.array(sorted(roots), dtype=np.int64)
    rows = np.r_[P.a, np.full(len(r), S)]
    cols = np.r_[P.b, r]
    g = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(nv + 1, nv + 1)).tocsr()
    order, pred = csgraph.breadth_first_order(g, S, directed=False, return_predecessors=True)
    pos = np.full(nv + 1, -1, dtype=np.int64)
    pos[order] = np.arange(len(order))
    pred = pred[:nv]
    pred[r] = -1
    # the piece joining every vertex to its predecessor (lowest piece index among parallels)
    key_p = np.minimum(P.a, P.b) * (nv + 1) + np.maximum(P.a, P.b)
    o = np.lexsort((np.arange(len(key_p)), key_p))
    v = np.flatnonzero(pred >= 0)
    key_v = np.minimum(pred[v], v) * (nv + 1) + np.maximum(pred[v], v)
    tree_piece = np.full(nv, -1, dtype=np.int64)
    tree_piece[v] = o[np.searchsorted(key_p[o], key_v)]
    return pred, pos[:nv], tree_piece


def _parallel_pieces(P: _Pieces, in_tree: np.ndarray, tol: float = 1.0) -> np.ndarray:
    """Mask of pieces outside the tree that run along tree pieces all their length (double circuits).

    Such a piece closes a cycle only because two circuits share a route (同杆双回); it is not a
    loop to open with a switch.
    """
    out = np.zeros(len(P.a), dtype=bool)
    extra = np.flatnonzero(~in_tree)
    if not len(extra):
        return out
    tree_idx = np.flatnonzero(in_tree)
    lines = np.array([shapely.linestrings(P.coords[e]) for e in range(len(P.coords))], dtype=object)
    tree = shapely.STRtree(lines[tree_idx])
    for e in extra:
        near = tree_idx[tree.query(lines[e], predicate="dwithin", distance=tol)]
        if len(near):
            zone = shapely.buffer(shapely.union_all(lines[near]), tol)
            out[e] = bool(shapely.covers(zone, lines[e]))
    return out


def _forest(P: _Pieces, roots: dict[int, str | None], pred: np.ndarray, pos: np.ndarray,
            tree_piece: np.ndarray, closed: np.ndarray, fids: list[str], notes: list[str],
            stats: dict[str, int], labels: list[str]) -> dict[str, Any]:
    """Build node arrays: root copies per (root, feeder), then one node per piece.

    ``labels`` names every piece in the notes (its ``line_id``, else feeder id and row).
    """
    fcode = {f: i for i, f in enumerate(fids)}
    pf = np.array([fcode[f] for f in P.fid], dtype=np.int64)
    ne = len(P.a)
    in_tree = np.zeros(ne, dtype=bool)
    in_tree[tree_piece[tree_piece >= 0]] = True
    # the upper end of every piece: for tree pieces its predecessor vertex, else the end seen first
    child_v = np.where(pos[P.a] <= pos[P.b], P.b, P.a)
    tp_v = np.flatnonzero(tree_piece >= 0)
    child_v[tree_piece[tp_v]] = tp_v
    upper_v = np.where(child_v == P.b, P.a, P.b)
    # root copies for every (root vertex, feeder) pair found on pieces leaving a root
    is_root = np.zeros(len(P.vxy), dtype=bool)
    is_root[list(roots)] = True
    pairs = sorted({(int(u), int(f)) for u, f in zip(upper_v[is_root[upper_v]], pf[is_root[upper_v]], strict=True)})
    for r in sorted(roots):
        if not any(u == r for u, _ in pairs):
            pairs.append((r, -1))
    root_node = {p: i for i, p in enumerate(pairs)}
    nr = len(pairs)
    piece_node = nr + np.arange(ne)
    vnode = np.full(len(P.vxy), -1, dtype=np.int64)
    vnode[child_v[in_tree]] = piece_node[in_tree]
    parent = np.empty(nr + ne, dtype=np.int64)
    parent[:nr] = -1
    up_is_root = is_root[upper_v]
    parent[nr:] = vnode[upper_v]
    for e in np.flatnonzero(up_is_root):
        parent[nr + e] = root_node[(int(upper_v[e]), int(pf[e]))]
    feeder = np.r_[[max(f, 0) for _, f in pairs], pf].astype(np.int64)
    xy = np.vstack([P.vxy[[u for u, _ in pairs]].reshape(-1, 2), P.vxy[child_v]])
    switch = np.r_[np.ones(nr, dtype=bool), closed[child_v] & in_tree]
    # orient every piece from its upper end to its child end
    coords = [c if P.a[e] == upper_v[e] else c[::-1] for e, c in enumerate(P.coords)]
    counts = np.r_[np.zeros(nr, dtype=np.int64), np.array([len(c) for c in coords], dtype=np.int64)]
    offsets = np.r_[0, np.cumsum(counts)]
    edge_coords = np.vstack(coords) if coords else np.empty((0, 2))
    length = np.r_[np.zeros(nr), [np.hypot(*np.diff(c, axis=0).T).sum() for c in coords]]
    # pieces outside the spanning tree: parallel to a tree piece (a double circuit), else loops
    parallel = _parallel_pieces(P, in_tree)
    stats["parallel"] = int(parallel.sum())
    if parallel.any():
        km = sum(np.hypot(*np.diff(P.coords[e], axis=0).T).sum() for e in np.flatnonzero(parallel)) / 1000
        notes.append(f"{int(parallel.sum())} 段与其他线路同路径的并行线路(双回/多回线路,编号或属性不同)"
                     f"已保留,共 {km:.2f} km 计入线段:{_ids([labels[e] for e in np.flatnonzero(parallel)])}。")
    extra = np.flatnonzero(~in_tree & ~parallel)
    stats["loops"] = len(extra)
    by_feeder: dict[str, list[str]] = {}
    for e in extra:
        x, y = P.vxy[child_v[e]]
        by_feeder.setdefault(P.fid[e], []).append(f"({x:.0f}, {y:.0f})")
    notes.extend(f"馈线 {f} 仍有 {len(by_feeder[f])} 处环路（未设常开开关），"
                 f"已在 {_ids(by_feeder[f])} 处按辐射状断开计算；请补充常开开关位置。"
                 for f in sorted(by_feeder))
    return {"xy": xy, "parent": parent, "length_m": length, "feeder": feeder, "switch": switch,
                "line_row": np.r_[np.full(nr, -1), P.row].astype(np.int64), "edge_coords": edge_coords,
                "edge_offsets": offsets, "root_substation": {root_node[p]: roots[p[0]] for p in pairs},
                "vnode": vnode, "root_node": root_node, "piece_node": piece_node}


def _attach(county: County, g: dict[str, Any], fids: list[str], params: Params,
            notes: list[str]) -> pd.Series:
    """Attach every 台区 to a node: nearest node of its feeder, else nearest piece within tolerance."""
    tr = county.transformers
    out = pd.Series(-1, index=tr.index, dtype=np.int64)
    if tr is None or not len(tr):
        return out
    txy = shapely.get_coordinates(shapely.force_2d(np.asarray(tr.geometry.values)))
    tf = tr["feeder_id"].astype("string").fillna("").to_numpy() if "feeder_id" in tr.columns else np.full(len(tr), "")
    fcode = {f: i for i, f in enumerate(fids)}
    far = []
    nodes_all = np.flatnonzero(g["parent"] >= 0)
    lines_all = _edge_lines(g["edge_coords"], g["edge_offsets"], nodes_all)
    for f in sorted(set(tf.tolist()) & set(fcode)):
        rows = np.flatnonzero(tf == f)
        mine = g["feeder"][nodes_all] == fcode[f]
        nodes, lines = nodes_all[mine], lines_all[mine]
        pts = shapely.points(txy[rows])
        ti, li = shapely.STRtree(lines).query_nearest(pts, all_matches=False)
        out.iloc[rows[ti]] = nodes[li]
        d = shapely.distance(pts[ti], lines[li])
        far += [str(tr["transformer_id"].iloc[r]) for r in rows[ti][d > params.attach_tolerance_m]]
    if far:
        notes.append(f"台区 {_ids(far)} 距其所属线路超过 {params.attach_tolerance_m:g} 米，已按线路编号挂接，请核对坐标。")
    rest = np.flatnonzero(out.to_numpy() < 0)
    if len(rest):
        nodes, lines = nodes_all, lines_all
        ti, li = shapely.STRtree(lines).query_nearest(shapely.points(txy[rest]),
                                                      max_distance=params.attach_tolerance_m, all_matches=False)
        out.iloc[rest[ti]] = nodes[li]
        lost = np.flatnonzero(out.to_numpy() < 0)
        if len(lost):
            notes.append(f"台区 {_ids(tr['transformer_id'].astype(str).iloc[lost])} 无法挂接到任何馈线"
                         f"（所属线路不存在，且 {params.attach_tolerance_m:g} 米内没有线路），未计入任何线段。")
    return out


def _piece_poles(P: _Pieces, feeders: gpd.GeoDataFrame, notes: list[str]) -> np.ndarray:
    """Poles per piece: the row's ``poles`` shared by length, else vertices after the piece's start."""
    lengths = np.array([np.hypot(*np.diff(c, axis=0).T).sum() for c in P.coords])
    out = np.array([len(c) - 1 for c in P.coords], dtype=float)
    if "poles" not in feeders.columns or not len(P.row):
        return out
    given = pd.to_numeric(feeders["poles"], errors="coerce").to_numpy(dtype=float)
    row_poles = given[P.row]
    has = np.isfinite(row_poles) & (row_poles >= 0)
    row_len = np.bincount(P.row, weights=lengths, minlength=len(feeders))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(row_len[P.row] > 0, lengths / row_len[P.row], 0.0)
    out[has] = row_poles[has] * share[has]
    missing = np.unique(P.row[~has])
    if len(missing) and has.any():
        notes.append(f"线路第 {_ids(missing + 1)} 行没有杆数（poles），按线路折点数估算。")
    return out


def _no_lines(why: str) -> NoReturn:
    """Raise the input error of a feeders layer with no usable line."""
    raise InputError([Problem("feeders.*", f"no usable 10 kV line: {why}",
                              "draw the feeder lines (in metres they must be longer than "
                              "snap_lines_m), lower snap_lines_m under [hv], or remove the feeders file")])


def build_feeder_graph(county: County, *, params: Params | None = None) -> FeederGraph:
    """Build radial feeder trees from ``county.feeders`` (see the module docstring for the steps).

    Parameters
    ----------
    county
        A county whose ``feeders`` layer holds LineStrings (``feeder_id``, ``substation_id``) in its
        metric CRS; ``switches`` and ``substations`` are used when present.
    params
        ``snap_lines_m`` and ``attach_tolerance_m`` are read (default: ``county.params``).

    Returns
    -------
    FeederGraph
        The forest and the notes on everything repaired or left unresolved.
    """
    params = params or county.params
    notes: list[str] = []
    stats: dict[str, int] = {}
    tol = float(params.snap_lines_m)
    if county.feeders is None or not len(county.feeders):
        raise ValueError("county has no feeders layer")
    coords, fid, row = _explode(county.feeders)
    if not coords:
        _no_lines("every line of the feeders layer is empty or has zero length")
    stats["parts"] = len(coords)
    stats["multipart_rows"] = int(len(coords) - len(np.unique(row)))
    stats["snapped_ends"] = _snap_ends(coords, tol)
    coords, fid, row, twins = _drop_twin_parts(coords, fid, row, county.feeders)
    P, sw_at_vertex = _node(coords, fid, row, county.switches, tol, notes, stats)
    # a dropped twin counts as many pieces as its kept twin was split into
    per_part = np.bincount(P.part, minlength=len(coords))
    dropped = [label for k, label in twins for _ in range(max(int(per_part[k]), 1))]
    dropped += _drop_duplicates(P, tol, county.feeders)
    stats["duplicates"] = len(dropped)
    if not len(P.a):
        _no_lines(f"every line of the feeders layer is shorter than snap_lines_m = {tol:g} m "
                  "(its ends were joined into one point)")
    closed, stats["open_switches_at_vertices"] = _open_at_vertices(P, sw_at_vertex, tol, notes)
    # drop vertices no piece uses (duplicates may leave some)
    used = np.unique(np.r_[P.a, P.b])
    remap = np.full(len(P.vxy), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    P.a, P.b, P.vxy, closed = remap[P.a], remap[P.b], P.vxy[used], closed[used]
    repairs = []
    if stats["snapped_ends"]:
        repairs.append(f"{stats['snapped_ends']} 个线路端点吸附到 {tol:g} 米内的相邻端点")
    if stats["t_junctions"]:
        repairs.append(f"{stats['t_junctions']} 处 T 接点处打断线路")
    if stats["duplicates"]:
        named = list(dict.fromkeys(d for d in dropped if d))
        repairs.append(f"删除 {stats['duplicates']} 段重复线路(同一编号,或几何与属性完全相同)"
                       + (f":{_ids(named)}" if named else ""))
    if stats["multipart_rows"]:
        repairs.append(f"多段线拆分出 {stats['multipart_rows']} 段")
    if repairs:
        notes.insert(0, "馈线拓扑修复：" + "；".join(repairs) + "。")
    nv = len(P.vxy)
    g = sparse.coo_matrix((np.ones(len(P.a)), (P.a, P.b)), shape=(nv, nv))
    ncomp, comp = csgraph.connected_components(g, directed=False)
    roots = _roots(P, county, params, comp, ncomp, notes)
    pred, pos, tree_piece = _spanning_tree(P, roots)
    fids = sorted(set(P.fid.tolist()))
    ids, _, _ = _row_keys(county.feeders)
    labels = [_piece_label(county.feeders, int(r), ids) for r in P.row]
    f = _forest(P, roots, pred, pos, tree_piece, closed, fids, notes, stats, labels)
    tnode = _attach(county, f, fids, params, notes)
    poles = np.r_[np.zeros(len(f["parent"]) - len(P.a)), _piece_poles(P, county.feeders, notes)]
    log.info("feeder graph: %d pieces, %d roots, %d loops", len(P.a), len(roots), stats["loops"])
    return FeederGraph(xy=f["xy"], parent=f["parent"], length_m=f["length_m"], feeder=f["feeder"],
                       feeder_ids=fids, switch=f["switch"], line_row=f["line_row"],
                       edge_coords=f["edge_coords"], edge_offsets=f["edge_offsets"],
                       root_substation=f["root_substation"], transformer_node=tnode, poles=poles, notes=notes,
                       stats=stats, crs=county.crs)
