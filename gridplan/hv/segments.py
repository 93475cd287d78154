"""高压到段: cut every feeder tree into the fewest connected segments under a length cap.

The exact algorithm is the greedy of Kundu & Misra (1977): visit the tree bottom-up; at each node
add up its own weight and the residual weights of its children; while the sum exceeds the cap, cut
off the heaviest child. It yields the minimum number of connected parts of weight ``<= cap``.

The weight is the line length in km, or a workload mix ``params.segment_weight`` such as
``"km + 0.02*poles + 0.3*transformers"`` (capped by ``params.segment_cap`` in its own units): every
node carries the km and poles of the piece into it and the 台区 attached at it, so the greedy runs
unchanged on node weights.

When cuts are allowed only at switches, the same greedy runs on the *contracted* tree whose nodes
are the switch-free sections (a section's weight is the sum of its nodes'). A section heavier than
the cap cannot be fixed by switching: it becomes a segment on its own and the notes say where a new
switch would help (the vertex that splits the section most evenly).

Balancing: among partitions with the optimal count we minimise the longest segment. The count the
greedy reaches is non-increasing in the cap, so a bisection on a per-tree cap ``c <= cap`` (all
trees in one vectorised pass per step) finds the smallest cap that still gives the optimal count;
the greedy with that cap is returned. The mean segment length is fixed by the count, so a smaller
maximum means more even segments.

Everything is array code: the tree is a ``parent`` array (``-1`` at roots), sections and depths come
from pointer jumping (``O(n log depth)``) and the greedy runs one numpy step per tree level.

Who owns each segment (:func:`align_segments`, :func:`assign_owners`, :func:`linear_partition`,
:func:`owner_summary`) lives in :mod:`gridplan.hv.owners`; this module re-exports those names.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.ops import substring

from ..model import County
from ..settings import Params, parse_weight
from .feeders import FeederGraph, build_feeder_graph
from .owners import align_segments, assign_owners, linear_partition, owner_summary

__all__ = ["SegmentResult", "TreeCut", "Weight", "align_segments", "assign_owners", "cut_tree",
           "linear_partition", "owner_summary", "segment_feeders"]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- array helpers
def climb(parent: np.ndarray, is_top: np.ndarray) -> np.ndarray:
    """Return, for every node, its nearest ancestor-or-self with ``is_top`` (pointer jumping).

    Every root (``parent < 0``) must be a top.
    """
    n = len(parent)
    anc = np.where(is_top, np.arange(n), parent)
    while True:
        nxt = anc[anc]
        if np.array_equal(nxt, anc):
            return anc
        anc = nxt


def depth_of(parent: np.ndarray) -> np.ndarray:
    """Return the number of edges from every node up to its root (pointer jumping)."""
    d = (parent >= 0).astype(np.int64)
    anc = parent.astype(np.int64).copy()
    live = np.flatnonzero(anc >= 0)
    while len(live):
        a = anc[live]
        d[live] = d[live] + d[a]
        anc[live] = anc[a]
        live = live[anc[live] >= 0]
    return d


@dataclass
class TreeCut:
    """Result of :func:`cut_tree` (all arrays per input node unless stated).

    Attributes
    ----------
    label
        Segment number of every node (the segment of the edge into it); roots with no edge get
        the label of their segment too (possibly an empty segment, see ``seg_edges``).
    seg_top
        For each segment, the node at its top.
    seg_weight, seg_edges
        Total weight and number of weighted nodes (edges) of each segment.
    overlong
        Section-top nodes whose section alone exceeds the cap (switch-only cuts cannot fix them).
    tree
        Root node of every node's tree.
    cap_used
        The cap per tree that produced this cut (``<= cap`` after balancing).
    """

    label: np.ndarray
    seg_top: np.ndarray
    seg_weight: np.ndarray
    seg_edges: np.ndarray
    overlong: np.ndarray
    tree: np.ndarray
    cap_used: np.ndarray


def _contract(parent: np.ndarray, weight: np.ndarray, cuttable: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Contract non-cuttable edges: return (node of each vertex, section tops, W, P)."""
    top = (parent < 0) | cuttable
    sec = climb(parent, top)
    tops = np.flatnonzero(top)
    node_of = np.full(len(parent), -1, dtype=np.int64)
    node_of[tops] = np.arange(len(tops))
    node = node_of[sec]
    W = np.bincount(node, weights=weight, minlength=len(tops))
    ptop = parent[tops]
    P = np.where(ptop >= 0, node[np.maximum(ptop, 0)], -1)
    return node, tops, W, P


class _Levels:
    """Nodes of a forest grouped by depth, deepest first, with parents' local positions."""

    def __init__(self, P: np.ndarray) -> None:
        self.P = P
        depth = depth_of(P)
        order = np.argsort(depth, kind="stable")
        bounds = np.searchsorted(depth[order], np.arange(depth.max() + 2 if len(depth) else 1))
        self.levels = [order[bounds[d]:bounds[d + 1]] for d in range(len(bounds) - 1)][::-1]
        # position of each child's parent within the parent level (levels are sorted ascending)
        self.parent_pos: list[np.ndarray | None] = []
        for i, nodes in enumerate(self.levels):
            up = self.levels[i + 1] if i + 1 < len(self.levels) else np.empty(0, np.int64)
            self.parent_pos.append(np.searchsorted(up, P[nodes]) if len(up) else None)


def _greedy(lv: _Levels, W: np.ndarray, capN: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kundu–Misra greedy on a contracted forest (every edge cuttable); return (cut, overlong)."""
    P = lv.P
    m = len(W)
    cut = np.zeros(m, dtype=bool)
    overlong = capN < W
    res = np.zeros(m)
    acc = np.zeros(m)
    prev: np.ndarray | None = None  # children level (already resolved)
    prev_pos: np.ndarray | None = None
    for i, nodes in enumerate(lv.levels):
        tot = W[nodes] + acc[nodes]
        cap = capN[nodes]
        need = (tot > cap) | overlong[nodes]
        C = pc = np.empty(0, np.int64)
        r = np.empty(0)
        if prev is not None and prev_pos is not None and need.any():
            sel = need[prev_pos]
            C, pc = prev[sel], prev_pos[sel]
            r = res[C]
        if len(C):
            o = np.lexsort((C, -r, pc))
            C, pc, r = C[o], pc[o], r[o]
            before = np.cumsum(r) - r
            start = np.r_[True, pc[1:] != pc[:-1]]
            base = before[start][np.cumsum(start) - 1]
            before = before - base
            do = (tot[pc] - before > cap[pc]) | overlong[nodes][pc]
            cut[C[do]] = True
            tot = tot - np.bincount(pc[do], weights=r[do], minlength=len(nodes))
        ol = overlong[nodes]
        tot = np.where(ol, 0.0, tot)
        cut[nodes[ol & (P[nodes] >= 0)]] = True
        res[nodes] = tot
        pos = lv.parent_pos[i]
        if pos is not None:
            np.add.at(acc, P[nodes], tot)
        prev, prev_pos = nodes, pos
    return cut, overlong


def _label(P: np.ndarray, cut: np.ndarray, W: np.ndarray, wcount: np.ndarray, tree: np.ndarray,
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Segment labels per contracted node plus per-tree segment counts (non-empty segments)."""
    seg_top_node = climb(P, cut | (P < 0))
    tops, label = np.unique(seg_top_node, return_inverse=True)
    sw = np.bincount(label, weights=W, minlength=len(tops))
    se = np.bincount(label, weights=wcount, minlength=len(tops))
    return tops, label, sw, se


def cut_tree(parent: np.ndarray, weight: np.ndarray, cap: float, *,
             cuttable: np.ndarray | None = None, has_edge: np.ndarray | None = None,
             balance: bool = True, tol: float = 1e-3) -> TreeCut:
    """Cut a forest into the fewest connected segments of weight ``<= cap``, then balance.

    Parameters
    ----------
    parent
        Parent of every node, ``-1`` at roots (int array).
    weight
        Weight of the edge into every node (e.g. metres); roots usually 0.
    cap
        Largest allowed segment weight.
    cuttable
        Whether the edge into each node may be cut (default: all). Edges into roots are ignored.
    has_edge
        Nodes that carry an edge (default ``parent >= 0``); segments without one are empty.
    balance
        Minimise the longest segment among optimal partitions (bisection on a per-tree cap).
    tol
        Relative stopping width of the bisection.

    Returns
    -------
    TreeCut
    """
    parent = np.asarray(parent, dtype=np.int64)
    weight = np.asarray(weight, dtype=float)
    n = len(parent)
    if cuttable is None:
        cuttable = np.ones(n, dtype=bool)
    if has_edge is None:
        has_edge = parent >= 0
    node, tops, W, P = _contract(parent, weight, np.asarray(cuttable, bool))
    wcount = np.bincount(node, weights=has_edge.astype(float), minlength=len(tops))
    tree_node = climb(P, P < 0)
    lv = _Levels(P)
    capT = np.full(len(W), float(cap))  # indexed by tree root node
    cutm, overlong = _greedy(lv, W, capT[tree_node])
    seg_tops, label, sw, se = _label(P, cutm, W, wcount, tree_node)
    counts = _tree_counts(seg_tops, se, tree_node)
    if balance and len(W):
        fits = np.where(overlong, 0.0, W)
        lo = np.zeros(len(W))
        np.maximum.at(lo, tree_node, fits)
        hi = capT.copy()
        roots = np.flatnonzero(P < 0)
        active = roots[(hi[roots] - lo[roots]) > tol * cap]
        while len(active):
            mid = hi.copy()
            mid[active] = 0.5 * (lo[active] + hi[active])
            c2, _ = _greedy(lv, W, mid[tree_node])
            t2, _, _, se2 = _label(P, c2, W, wcount, tree_node)
            ok = _tree_counts(t2, se2, tree_node) <= counts
            hi[active] = np.where(ok[active], mid[active], hi[active])
            lo[active] = np.where(ok[active], lo[active], mid[active])
            active = active[(hi[active] - lo[active]) > tol * cap]
        if np.any(hi < capT):
            cutm, overlong = _greedy(lv, W, hi[tree_node])
            seg_tops, label, sw, se = _label(P, cutm, W, wcount, tree_node)
        capT = hi
    return TreeCut(label=label[node], seg_top=tops[seg_tops], seg_weight=sw, seg_edges=se.astype(np.int64),
                   overlong=tops[overlong], tree=tops[tree_node[node]], cap_used=capT[tree_node[node]])


def _tree_counts(seg_tops: np.ndarray, seg_edges: np.ndarray, tree_node: np.ndarray) -> np.ndarray:
    """Count the non-empty segments per tree, indexed by contracted node (valid at tree roots)."""
    out = np.zeros(len(tree_node), dtype=np.int64)
    np.add.at(out, tree_node[seg_tops], (seg_edges > 0).astype(np.int64))
    return out


# ----------------------------------------------------------------------------- feeders -> segments
@dataclass(frozen=True)
class Weight:
    """What a segment weighs: ``km * km + poles * poles + transformers * 台区``, capped at ``cap``.

    Attributes
    ----------
    expr
        The expression as given (``params.segment_weight``).
    km, poles, transformers
        Coefficients per km of line, per pole, per attached 台区.
    cap
        The largest weight of a segment, in the expression's units (km for plain ``"km"``).
    """

    expr: str
    km: float
    poles: float
    transformers: float
    cap: float

    @classmethod
    def from_params(cls, params: Params) -> Weight:
        """Read ``segment_weight`` with ``segment_cap`` (or ``segment_cap_km`` for plain km)."""
        c = parse_weight(params.segment_weight)
        plain = {k: v for k, v in c.items() if v} == {"km": 1.0}
        cap = params.segment_cap_km if plain or params.segment_cap is None else params.segment_cap
        return cls(expr=params.segment_weight, km=c.get("km", 0.0), poles=c.get("poles", 0.0),
                   transformers=c.get("transformers", 0.0), cap=float(cap))

    @property
    def is_km(self) -> bool:
        """Whether the weight is the line length in km alone."""
        return (self.km, self.poles, self.transformers) == (1.0, 0.0, 0.0)

    def fmt(self, value: float) -> str:
        """Return a weight for a note: ``"12.00 km"`` or ``"工作量 12.00"``."""
        return f"{value:.2f} km" if self.is_km else f"工作量 {value:.2f}"

    def node_weights(self, g: FeederGraph) -> tuple[np.ndarray, np.ndarray]:
        """Return (line weight, point weight) of every node of a FeederGraph.

        The line weight (km and poles of the piece into the node) can be split along the piece;
        the point weight (台区 attached at the node) cannot.
        """
        line = self.km * g.length_m / 1000.0 + self.poles * g.poles
        tnode = g.transformer_node.to_numpy()
        count = np.bincount(tnode[tnode >= 0], minlength=g.n).astype(float)
        return line, self.transformers * count


@dataclass
class SegmentResult:
    """Segments of every feeder, and where each 台区 belongs.

    Attributes
    ----------
    segments
        ``segment_id``, ``feeder_id``, ``length_km``, ``transformers`` (count of attached 台区),
        ``poles``, ``weight`` (under ``params.segment_weight``), ``upstream_segment_id`` (the
        segment it hangs from, ``None`` at the substation), geometry (MultiLineString, metric CRS).
    transformer_segment
        Segment id of every 台区 (``None`` if unattached), indexed like ``county.transformers``.
    notes
        Chinese sentences for the user (graph repairs, loops, caps that switches cannot meet).
    kpi
        See :func:`segment_feeders`.
    """

    segments: gpd.GeoDataFrame
    transformer_segment: pd.Series
    notes: list[str] = field(default_factory=list)
    kpi: dict[str, Any] = field(default_factory=dict)


def _pieces_needed(line_w: np.ndarray, point_w: np.ndarray, cap: float) -> np.ndarray:
    """Equal parts each piece must be cut into so that every part (the last carries the 台区) fits."""
    room = np.where(point_w < cap, cap - point_w, cap)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.ceil(line_w / room - 1e-12)
    return np.where((line_w + point_w > cap) & (line_w > 0), np.maximum(k, 1), 1).astype(np.int64)


def _split_long(g: FeederGraph, cap: float, line_w: np.ndarray, point_w: np.ndarray) -> FeederGraph:
    """Split pieces heavier than ``cap`` into equal parts (new nodes in the middle); return g copy.

    Length and poles are shared equally among the parts; the 台区 stay at the piece's far end.
    """
    need = _pieces_needed(line_w, point_w, cap)
    long = np.flatnonzero(need > 1)
    if not len(long):
        return g
    xy, parent, length, feeder, switch, row, poles = (
        list(a) for a in (g.xy, g.parent, g.length_m, g.feeder, g.switch, g.line_row, g.poles))
    pieces = [g.edge_coords[g.edge_offsets[v]:g.edge_offsets[v + 1]] for v in range(g.n)]
    for v in long.tolist():
        line = shapely.linestrings(pieces[v])
        k = int(need[v])
        cuts = [i * g.length_m[v] / k for i in range(k + 1)]
        parts = [shapely.get_coordinates(substring(line, a, b)) for a, b in itertools.pairwise(cuts)]
        up = parent[v]
        for part in parts[:-1]:  # new nodes above v
            xy.append(part[-1])
            parent.append(up)
            length.append(g.length_m[v] / k)
            poles.append(g.poles[v] / k)
            feeder.append(g.feeder[v])
            switch.append(False)
            row.append(g.line_row[v])
            pieces.append(part)
            up = len(parent) - 1
        parent[v] = up
        pieces[v] = parts[-1]
        length[v] = g.length_m[v] / k
        poles[v] = g.poles[v] / k
    counts = np.array([len(p) for p in pieces])
    return FeederGraph(xy=np.array(xy), parent=np.array(parent, dtype=np.int64), length_m=np.array(length),
                       feeder=np.array(feeder, dtype=np.int64), feeder_ids=g.feeder_ids,
                       switch=np.array(switch, dtype=bool), line_row=np.array(row, dtype=np.int64),
                       edge_coords=np.vstack(pieces), edge_offsets=np.r_[0, np.cumsum(counts)],
                       root_substation=g.root_substation, transformer_node=g.transformer_node,
                       poles=np.array(poles, dtype=float), notes=g.notes, stats=g.stats, crs=g.crs)


def _switch_advice(g: FeederGraph, parent_cut: np.ndarray, cuttable: np.ndarray,
                   overlong: np.ndarray, w: np.ndarray, wt: Weight) -> tuple[list[str], set[int]]:
    """For each section heavier than the cap, the vertex where one new switch splits it most evenly."""
    notes: list[str] = []
    feeders: set[int] = set()
    if not len(overlong):
        return notes, feeders
    top = (parent_cut < 0) | cuttable
    sec = climb(parent_cut, top)
    depth = depth_of(parent_cut)
    what = "长" if wt.is_km else ""
    for s in overlong.tolist():
        nodes = np.flatnonzero(sec == s)
        nodes = nodes[np.argsort(-depth[nodes], kind="stable")]
        sub = dict(zip(nodes.tolist(), w[nodes].tolist(), strict=True))
        for v in nodes.tolist():
            p = int(parent_cut[v])
            if v != s and p in sub:
                sub[p] += sub[v]
        total = sub[s]
        cand = [v for v in nodes.tolist() if v != s]
        fid = g.feeder_ids[int(g.feeder[s])]
        feeders.add(int(g.feeder[s]))
        x0, y0 = g.xy[s]
        text = (f"馈线 {fid} 自 ({x0:.0f}, {y0:.0f}) 起的一段{what} {wt.fmt(total)}，超过上限 "
                f"{wt.fmt(wt.cap)}，其间没有可断开的开关")
        if cand:
            best = min(cand, key=lambda v: (abs(sub[v] - total / 2), v))
            x, y = g.xy[int(parent_cut[best])]
            text += (f"；建议在 ({x:.0f}, {y:.0f}) 附近加装分段开关，可分为 {wt.fmt(total - sub[best])} "
                     f"和 {wt.fmt(sub[best])}")
        elif len(g.edge_coords[g.edge_offsets[s]:g.edge_offsets[s + 1]]) >= 2:  # one piece: its midpoint
            line = shapely.linestrings(g.edge_coords[g.edge_offsets[s]:g.edge_offsets[s + 1]])
            x, y = shapely.get_coordinates(shapely.line_interpolate_point(line, 0.5, normalized=True))[0]
            text += (f"；建议在该线路中点 ({x:.0f}, {y:.0f}) 附近加装分段开关，可分为两段各约 "
                     f"{wt.fmt(total / 2)}")
        notes.append(text + "。")
    return notes, feeders


def _heavy_points(g: FeederGraph, overlong: np.ndarray, point_w: np.ndarray,
                  wt: Weight) -> list[str]:
    """Vertices whose attached 台区 alone outweigh the cap (cutting anywhere cannot fix them)."""
    heavy = [int(v) for v in overlong.tolist() if point_w[v] > wt.cap]
    return [f"馈线 {g.feeder_ids[int(g.feeder[v])]} 在 ({g.xy[v][0]:.0f}, {g.xy[v][1]:.0f}) 处挂接的台区"
            f"{wt.fmt(point_w[v])}，超过上限 {wt.fmt(wt.cap)}，该处单独成段。" for v in heavy]


def segment_feeders(county: County, *, params: Params | None = None,
                    graph: FeederGraph | None = None) -> SegmentResult:
    """Cut every feeder into the fewest connected segments whose weight is at most the cap.

    Parameters
    ----------
    county
        A county with a ``feeders`` layer (``switches`` and ``substations`` optional).
    params
        ``segment_weight`` (``"km"``, or a mix of ``km``, ``poles``, ``transformers``) with its cap
        (``segment_cap_km`` for km, ``segment_cap`` otherwise; see :class:`Weight`),
        ``segment_cut`` (``"switches"``: cut only at closed switches and substation breakers when
        switches are given; ``"anywhere"``: at any vertex, pieces heavier than the cap are split
        evenly), plus what :func:`~gridplan.hv.feeders.build_feeder_graph` reads.
    graph
        A prebuilt :class:`~gridplan.hv.feeders.FeederGraph` (default: built from ``county``).

    Returns
    -------
    SegmentResult
        ``kpi`` holds ``weight`` (the expression), ``cap`` (in its units; ``cap_km`` too when the
        weight is plain km), ``feeders``, ``segments``, ``lower_bound`` (sum over feeders of
        ``ceil(weight / cap)``), ``per_feeder`` (``length_km``, ``weight``, ``lower_bound``,
        ``segments``), ``length_error_km``, ``max_segment_km``, ``mean_segment_km``,
        ``max_segment_weight``, ``mean_segment_weight``, ``poles``, ``feeders_cap_unmet``
        (switch-only cuts could not meet the cap), ``loops``, ``unattached_transformers``.
    """
    params = params or county.params
    wt = Weight.from_params(params)
    g = graph if graph is not None else build_feeder_graph(county, params=params)
    notes = list(g.notes)
    sw = county.switches
    has_closed = sw is not None and len(sw) and (~sw["normally_open"].astype(bool)).any()
    by_switch = params.segment_cut == "switches" and bool(has_closed)
    if params.segment_cut == "switches" and not has_closed:
        notes.append("未提供可断开的（常闭）开关位置，线段按任意节点划分。")
    if not by_switch:
        g = _split_long(g, wt.cap, *wt.node_weights(g))
    line_w, point_w = wt.node_weights(g)
    w = line_w + point_w
    parent = g.parent
    pp = parent >= 0
    up = np.maximum(parent, 0)
    parent_cut = np.where(pp & (g.feeder != g.feeder[up]), -1, parent)
    cuttable = pp & (g.switch[up] | (parent[up] < 0)) if by_switch else pp.copy()
    tc = cut_tree(parent_cut, w, wt.cap, cuttable=cuttable, has_edge=pp)
    if by_switch:
        advice, unmet = _switch_advice(g, parent_cut, cuttable, tc.overlong, w, wt)
    else:
        advice, unmet = _heavy_points(g, tc.overlong, point_w, wt), set()
    notes += advice
    seg, tr_seg = _segment_table(g, tc, county, parent_cut)
    kpi = _kpi(g, seg, wt, w, unmet, tr_seg)
    if kpi["length_error_km"] > 1e-9:
        log.warning("segment length differs from feeder length by %.3g km", kpi["length_error_km"])
    return SegmentResult(segments=seg, transformer_segment=tr_seg, notes=notes, kpi=kpi)


def _segment_table(g: FeederGraph, tc: TreeCut, county: County, parent_cut: np.ndarray,
                   ) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """Segment GeoDataFrame (ids by feeder, nearest the substation first) and 台区 mapping."""
    nonempty = tc.seg_edges > 0
    top = tc.seg_top
    depth = depth_of(g.parent)
    order = np.lexsort((top, depth[top], g.feeder[top]))
    order = order[nonempty[order]]
    fcode = g.feeder[top[order]]
    rank = np.arange(len(order)) - np.searchsorted(fcode, fcode)
    ids = np.full(len(top), None, dtype=object)
    nseg = np.bincount(fcode, minlength=len(g.feeder_ids))
    for s, f, r in zip(order.tolist(), fcode.tolist(), rank.tolist(), strict=True):
        width = max(2, len(str(nseg[f])))
        ids[s] = f"{g.feeder_ids[f]}-{r + 1:0{width}d}"
    # the segment each segment hangs from (None when its top hangs from a substation root)
    above = parent_cut[top]
    hangs = (above >= 0) & (g.parent[np.maximum(above, 0)] >= 0)
    upstream = np.full(len(top), None, dtype=object)
    upstream[hangs] = ids[tc.label[above[hangs]]]
    label = tc.label.copy()
    # root nodes carry no line: give them the segment of their first child with a line
    roots = np.flatnonzero(g.parent < 0)
    kids = np.flatnonzero(g.parent >= 0)
    first = pd.Series(kids).groupby(g.parent[kids]).min()
    has = np.isin(roots, first.index)
    label[roots[has]] = label[first.loc[roots[has]].to_numpy()]
    label[roots[~has]] = -1
    edges = kids
    lines = g.edge_lines(edges)
    el = label[edges]
    o = np.argsort(el, kind="stable")
    geoms_idx, inv = np.unique(el[o], return_inverse=True)
    multi = shapely.multilinestrings(lines[o], indices=inv)
    tnode = g.transformer_node.to_numpy()
    tlab = np.where(tnode >= 0, label[np.maximum(tnode, 0)], -1)
    tr_seg = pd.Series([ids[t] if t >= 0 else None for t in tlab.tolist()], index=g.transformer_node.index,
                       dtype=object)
    counts = np.bincount(tlab[tlab >= 0], minlength=len(top))
    length = np.bincount(tc.label, weights=g.length_m, minlength=len(top))
    poles = np.bincount(tc.label, weights=g.poles, minlength=len(top))
    seg = gpd.GeoDataFrame({
        "segment_id": ids[geoms_idx],
        "feeder_id": [g.feeder_ids[f] for f in g.feeder[top[geoms_idx]].tolist()],
        "length_km": length[geoms_idx] / 1000.0,
        "transformers": counts[geoms_idx].astype(np.int64),
        "poles": np.round(poles[geoms_idx], 3),
        "weight": tc.seg_weight[geoms_idx],
        "upstream_segment_id": upstream[geoms_idx],
    }, geometry=multi, crs=county.crs)
    seg = seg.sort_values("segment_id", kind="stable").reset_index(drop=True)
    return seg, tr_seg


def _kpi(g: FeederGraph, seg: gpd.GeoDataFrame, wt: Weight, w: np.ndarray, unmet: set[int],
         tr_seg: pd.Series) -> dict[str, Any]:
    """Return the counts, per-feeder bounds (in the weight's units) and length conservation."""
    nf = len(g.feeder_ids)
    flen = np.bincount(g.feeder, weights=g.length_m, minlength=nf)
    fw = np.bincount(g.feeder, weights=w, minlength=nf)
    nseg = seg.groupby("feeder_id").size()
    per: dict[str, dict[str, Any]] = {}
    for f, fid in enumerate(g.feeder_ids):
        per[fid] = {"length_km": round(float(flen[f]) / 1000.0, 6), "weight": round(float(fw[f]), 6),
                    "lower_bound": math.ceil(fw[f] / wt.cap - 1e-9) if fw[f] > 0 else 0,
                    "segments": int(nseg.get(fid, 0))}
    geom_len = float(shapely.length(seg.geometry.values).sum()) / 1000.0 if len(seg) else 0.0
    return {
        "weight": wt.expr,
        "cap": wt.cap,
        "cap_km": wt.cap if wt.is_km else None,
        "feeders": nf,
        "segments": len(seg),
        "lower_bound": int(sum(p["lower_bound"] for p in per.values())),
        "per_feeder": per,
        "feeder_length_km": float(flen.sum() / 1000.0),
        "length_error_km": float(abs(seg["length_km"].sum() - flen.sum() / 1000.0) + abs(geom_len - flen.sum() / 1000.0)),
        "max_segment_km": float(seg["length_km"].max()) if len(seg) else 0.0,
        "mean_segment_km": float(seg["length_km"].mean()) if len(seg) else 0.0,
        "max_segment_weight": float(seg["weight"].max()) if len(seg) else 0.0,
        "mean_segment_weight": float(seg["weight"].mean()) if len(seg) else 0.0,
        "poles": round(float(g.poles.sum()), 3),
        "feeders_cap_unmet": len(unmet),
        "loops": int(g.stats.get("loops", 0)),
        "unattached_transformers": int(tr_seg.isna().sum()),
    }
