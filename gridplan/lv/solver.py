"""The engine behind :func:`gridplan.lv.partition.balanced_contiguous`.

Steps:

1. **Start**: METIS (pymetis, recursive bisection, no ``contig``) on the neighbour graph, vertex
   weights = workload: well balanced, not very compact (the Lloyd steps reshape it). With a
   warm start (``initial``) the given labels are used instead (unlabelled units grow from their
   neighbours).
2. **Balanced Lloyd** (cold starts only, :func:`balanced_lloyd`): centres at the parts' centroids,
   units assigned to the nearest centre minus a price per part, prices adjusted until workloads
   balance (a power diagram; capacity-constrained k-means). Compact, nearly contiguous parts.
3. **Repair**: fragments of a part join a neighbouring part (:func:`repair`); pinned units never
   move, and a part whose pins are split is joined along a shortest path first.
4. **Improve**: rounds of simultaneous boundary moves, fully vectorised with numpy. In each round
   every boundary unit proposes its best move to a neighbouring part, scored by the drop in its
   distance to the part centroids plus a quadratic workload-balance term whose weight grows over
   the rounds (plus, for cold starts, a per-part price that lets heavy regions pass units on
   along chains of parts; for warm starts, a charge per unit moved away from its initial
   part). A move is taken only if

   * it keeps the source part connected: the source-part neighbours of the unit, taken in angular
     order around it, must form one run joined by graph edges (a sufficient, local test),
   * no neighbour of the unit moves in the same round (so the local tests stay valid together),
   * each part gives and receives at most one unit per round, and loads stay inside the band
     (or the move reduces the band violation).

   Centroids are recomputed after every round (a contiguity-keeping Lloyd iteration).
5. **Rebalance** (warm starts): ejection chains pass units along a chain of neighbouring parts
   from a part outside the band to one with room (:func:`rebalance`).

Contiguity holds by construction; it is verified at the end and repaired if ever broken.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from .graph import adjacency

log = logging.getLogger(__name__)


@dataclass
class Graph:
    """CSR neighbour structure with the angular order of every vertex's neighbours."""

    n: int
    indptr: np.ndarray
    src: np.ndarray  # source vertex of every slot (directed edge)
    dst: np.ndarray  # neighbour, slots of a vertex sorted by angle
    prev: np.ndarray  # slot index of the previous neighbour (cyclic) around the same vertex
    link_prev: np.ndarray  # True if dst[prev[s]] and dst[s] are themselves neighbours
    length: np.ndarray  # edge length in metres


def build_graph(xy: np.ndarray, edges: np.ndarray) -> Graph:
    """Build the :class:`Graph` of ``edges`` over points ``xy``."""
    n = len(xy)
    a = adjacency(n, edges)
    indptr = a.indptr.astype(np.int64)
    src = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    dst = a.indices.astype(np.int64)
    keys_sorted = src * n + dst  # ascending: src, then dst ascending within a row (CSR)
    d = xy[dst] - xy[src]
    ang = np.arctan2(d[:, 1], d[:, 0])
    # slots by vertex, then angle: one stable argsort of a float key (vertex · 8 + angle + π,
    # the angle part < 8) instead of lexsort((ang, src)), 10 × faster; angles closer than the
    # key's resolution (≈ 2e-9 rad at a million vertices) keep their CSR order, and any cyclic
    # order gives a valid local test (link_prev only counts real edges)
    order = np.argsort(src * 8.0 + (ang + np.pi), kind="stable")
    dst = dst[order]
    d = d[order]
    slot = np.arange(len(src))
    start = indptr[src]
    deg = np.diff(indptr)[src]
    prev = np.where(slot == start, start + deg - 1, slot - 1)
    pair = dst[prev] * n + dst
    link_prev = np.zeros(len(pair), bool)
    if len(keys_sorted):
        qo = np.argsort(pair, kind="stable")  # sorted queries: a cache-friendly search
        pos = np.minimum(np.searchsorted(keys_sorted, pair[qo]), len(keys_sorted) - 1)
        link_prev[qo] = keys_sorted[pos] == pair[qo]
    link_prev &= dst[prev] != dst
    return Graph(n, indptr, src, dst, prev, link_prev, np.hypot(d[:, 0], d[:, 1]))


def graph_components(g: Graph) -> tuple[int, np.ndarray]:
    """Number of connected components of ``g`` and every vertex's component (scipy's labels)."""
    if g.n == 0:
        return 0, np.zeros(0, dtype=np.int64)
    a = csr_matrix((np.ones(len(g.dst), np.int8), g.dst, g.indptr), shape=(g.n, g.n))
    ncomp, comp = connected_components(a, directed=False)
    return int(ncomp), comp


def centroids(xy: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Weighted centroids of the ``k`` parts (unweighted where a part weighs 0)."""
    ww = np.where(w > 0, w, 1e-9)
    tot = np.bincount(labels, ww, k)
    cx = np.bincount(labels, ww * xy[:, 0], k) / np.maximum(tot, 1e-300)
    cy = np.bincount(labels, ww * xy[:, 1], k) / np.maximum(tot, 1e-300)
    return np.column_stack([cx, cy])


def _centroid_xy(labels: np.ndarray, ww: np.ndarray, wx: np.ndarray, wy: np.ndarray,
                 k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`centroids` as two columns (the same values).

    ``ww``: the weights with 0 replaced by 1e-9, ``wx``, ``wy``: ``ww · x``, ``ww · y``, computed
    once by the caller.
    """
    tot = np.maximum(np.bincount(labels, ww, k), 1e-300)
    return np.bincount(labels, wx, k) / tot, np.bincount(labels, wy, k) / tot


def mean_distance(xy: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean distance of a point to its part's weighted centroid."""
    c = centroids(xy, w, labels, k)
    return float(np.hypot(*(xy - c[labels]).T).mean())


def _same_label_components(g: Graph, labels: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of ``g`` without its edges between different labels.

    The kept slots are handed to scipy as CSR arrays (they are grouped by vertex already), not
    as (row, column) pairs, which scipy would sort again. Component numbers do not depend on
    the order of a vertex's slots (scipy numbers components by their lowest vertex).
    """
    keep = labels[g.src] == labels[g.dst]
    indptr = np.zeros(g.n + 1, dtype=np.int64)
    np.cumsum(np.bincount(g.src[keep], minlength=g.n), out=indptr[1:])
    sub = csr_matrix((np.ones(int(indptr[-1]), np.int8), g.dst[keep], indptr),
                     shape=(g.n, g.n))
    ncomp, comp = connected_components(sub, directed=False)
    return int(ncomp), comp


def n_broken(g: Graph, labels: np.ndarray, k: int) -> int:
    """Number of parts that are not connected (0 for a contiguous partition)."""
    _, comp = _same_label_components(g, labels)
    per_part = np.zeros(k, dtype=np.int64)
    first = np.unique(comp, return_index=True)[1]
    np.add.at(per_part, labels[first], 1)
    return int((per_part > 1).sum())


def metis_start(g: Graph, w: np.ndarray, k: int, *, seed: int, ufactor: int = 5,
                edge_weights: bool = False, contig: bool = True,
                recursive: bool | None = None) -> np.ndarray:
    """METIS partition with integer vertex weights, contiguous (``contig=1``) by default.

    ``recursive=True`` uses METIS' recursive bisection (``METIS_PartGraphRecursive``) instead
    of the k-way scheme (``None``: pymetis' choice, recursive for ``k <= 8`` only): 2-3 ×
    cheaper at K = 400-2,000 and as good a start for :func:`balanced_lloyd` (measured in
    docs/benchmarks.md); it ignores ``contig``.
    """
    import pymetis

    tot = float(w.sum())
    scale = 1e8 / tot if tot > 0 else 1.0
    vw = np.maximum(np.rint(w * scale), 1).astype(np.int64)
    ew = None
    if edge_weights and len(g.length):
        ref = np.median(g.length) or 1.0
        ew = np.clip(np.rint(100.0 * ref / np.maximum(g.length, 1e-9 * ref)), 1, 1000).astype(np.int64)
    opts = pymetis.Options(contig=int(contig), ufactor=ufactor, seed=seed)
    adj = pymetis.CSRAdjacency(g.indptr, g.dst)
    _, parts = pymetis.part_graph(k, adj, vweights=vw, eweights=ew, options=opts,
                                  recursive=recursive)
    return np.asarray(parts, dtype=np.int64)


def _local_safe(g: Graph, labels: np.ndarray, own: np.ndarray | None = None) -> np.ndarray:
    """Per vertex: removing it from its part certainly keeps the part connected.

    ``own``: per slot, whether both ends have the same label (computed when not given).
    """
    if own is None:
        own = labels[g.dst] == labels[g.src]
    start_run = own & ~(own.take(g.prev) & g.link_prev)
    # runs per vertex: differences of the running count at its slot range's ends (its slots are
    # contiguous), 5 × cheaper than a weighted bincount over the slots
    count = np.zeros(len(start_run) + 1, dtype=np.int64)
    np.cumsum(start_run, out=count[1:])
    safe: np.ndarray = (count.take(g.indptr[1:]) - count.take(g.indptr[:-1])) == 1
    return safe


#: Improvement rounds of a cold start: 30 give the same CV and distance as 150 (N = 20,000 and
#: 100,000, uniform and clustered) in a fifth of the time.
COLD_ROUNDS = 30
#: Improvement rounds with a ``home`` plan (re-planning: stability charge, pins).
WARM_ROUNDS = 150
#: Step of the per-part price of a cold start's :func:`improve` (``flow``): 200 lowers CV and
#: distance together at N = 2,500-100,000 (docs/benchmarks.md, "Speed").
COLD_FLOW = 200.0


def improve(xy: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int, g: Graph, *,
            tolerance: float, rounds: int | None = None, mu_start: float = 20.0,
            mu_end: float = 2e4,
            deadline: float | None = None, fixed: np.ndarray | None = None,
            home: np.ndarray | None = None, move_cost: float = 0.0,
            also: Bands | None = None, flow: float = 0.0) -> tuple[np.ndarray, bool]:
    """Improve compactness and balance of a contiguous partition by boundary moves.

    ``fixed`` units never move. ``home`` (labels of a current plan) and ``move_cost`` (metres)
    charge every unit that ends away from its home label; moves that bring a part back inside
    the workload band outrank that charge, so with a large ``move_cost`` only balance (and
    contiguity, restored before) moves units. ``also`` (:class:`Bands`) are further measures,
    each with its own band, second to the workload's: a move that brings the workload closer
    to its band is taken whatever they do; any other must keep the workload in its band and
    leave every measure's band violation no worse, or lower their sum (:meth:`Bands.score`).

    ``rounds`` defaults to :data:`COLD_ROUNDS` without ``home`` (a cold start: more rounds
    only spread the balance weight's growth thinner, measured in docs/benchmarks.md) and to
    :data:`WARM_ROUNDS` with it.

    ``flow`` > 0 adds a price per part, raised after every round by ``flow · (load −
    mean)/mean``, and credits a move from part a to part b with ``(price_a − price_b) ·
    w/mean``: a part heavier than its neighbours *and* theirs then passes units on along a
    chain of parts, which the quadratic term alone (it sees only the two parts of a move)
    never does (:data:`COLD_FLOW` for cold starts).

    Returns
    -------
    (labels, timed_out)
    """
    if rounds is None:
        rounds = COLD_ROUNDS if home is None else WARM_ROUNDS
    labels = labels.copy()
    movable = np.ones(g.n, bool) if fixed is None else ~np.asarray(fixed, bool)
    n = g.n
    target = float(w.sum()) / k
    lo, hi = target * (1 - tolerance), target * (1 + tolerance)
    load = np.bincount(labels, w, k)
    if also is not None:
        also.reset(labels, k)
    scale = max(mean_distance(xy, w, labels, k), 1e-12)
    growth = (mu_end / mu_start) ** (1.0 / max(rounds * 0.6, 1))
    mu = mu_start
    price = np.zeros(k)
    idle = 0
    timed_out = False
    # 1-D coordinates and weighted coordinates: gathers from them are cheaper than row gathers
    x, y = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
    ww = np.where(w > 0, w, 1e-9)
    wx, wy = ww * xy[:, 0], ww * xy[:, 1]
    for r in range(rounds):
        if deadline is not None and time.monotonic() > deadline:
            timed_out = True
            break
        cx, cy = _centroid_xy(labels, ww, wx, wy, k)
        same = labels.take(g.src) == labels.take(g.dst)
        # the proposals: boundary slots whose unit may leave its part (the local test, not fixed)
        safe = _local_safe(g, labels, same)
        if fixed is not None:
            safe &= movable
        cand = np.flatnonzero(~same & safe.take(g.src))
        s = g.src[cand]
        a = labels[s]
        b = labels[g.dst[cand]]
        ws = w[s]
        la, lb = load[a], load[b]
        vload = _violation(load, lo, hi)  # _band_gain(la, lb, ws, lo, hi), per part first
        viol = vload[a] + vload[b] - _violation(la - ws, lo, hi) - _violation(lb + ws, lo, hi)
        inside = (la - ws >= lo) & (lb + ws <= hi)
        if also is None:  # a move must keep the loads in the band or lower the violation
            keep = np.flatnonzero(inside | (viol > 0))
            s, a, b, ws, la, lb, viol = (v[keep] for v in (s, a, b, ws, la, lb, viol))
        bal = (2 * ws * (la - lb) - 2 * ws * ws) / (target * target)
        xs, ys = x[s], y[s]
        gain = (_dist(xs, ys, cx[a], cy[a]) - _dist(xs, ys, cx[b], cy[b])) / scale + mu * bal
        if flow > 0:
            gain += (price[a] - price[b]) * ws / target
        pen = move_cost / scale
        if home is not None and pen > 0:
            gain += pen * ((home[s] == b).astype(float) - (home[s] == a))
        gain += (2 * pen + 10.0) * viol / np.maximum(ws, 1e-12)
        if also is None:
            ok = gain > 1e-9
        else:
            x_gain, x_ok, x_drop = also.score(s, a, b, mu * tolerance ** 2, 2 * pen + 10.0)
            gain += x_gain
            # the workload band comes first: a move that brings it closer is taken whatever the
            # other measures; any other move keeps the workload in its band and the other
            # measures no worse, or lowers their summed violation
            ok = (gain > 1e-9) & ((viol > 0) | (inside & (x_ok | (x_drop > 1e-12))))
        if not ok.any():
            idle += 1
            if mu >= mu_end and idle > 1:
                break
            mu = min(mu * 4.0, mu_end)
            continue
        idle = 0
        s, b, gain = s[ok], b[ok], gain[ok]
        # best proposal per vertex
        order = np.lexsort((-gain, s))
        s, b, gain = s[order], b[order], gain[order]
        first = np.empty(len(s), bool)
        first[0] = True
        np.not_equal(s[1:], s[:-1], out=first[1:])
        s, b, gain = s[first], b[first], gain[first]
        # independent set: a proposer beats every proposing neighbour
        best = np.full(n, -np.inf)
        best[s] = gain
        win = gain > _neighbour_max(best, g, s)
        s, b, gain = s[win], b[win], gain[win]
        # at most one unit leaves and one enters each part
        order = np.argsort(-gain, kind="stable")
        s, b = s[order], b[order]
        a = labels[s]
        keep = np.zeros(len(s), bool)
        keep[np.unique(a, return_index=True)[1]] = True
        s, b, a = s[keep], b[keep], a[keep]
        keep = np.zeros(len(s), bool)
        keep[np.unique(b, return_index=True)[1]] = True
        s, b, a = s[keep], b[keep], a[keep]
        labels[s] = b
        np.subtract.at(load, a, w[s])
        np.add.at(load, b, w[s])
        if also is not None:
            also.move(s, a, b)
        mu = min(mu * growth, mu_end)
        if flow > 0:
            price += flow * (load - target) / target
    return labels, timed_out


def _dist(x: np.ndarray, y: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """``|(x, y) − (cx, cy)|`` elementwise: ``sqrt(dx² + dy²)``, 5 × cheaper than ``np.hypot``."""
    dx = x - cx
    dy = y - cy
    dx *= dx
    dy *= dy
    dx += dy
    out: np.ndarray = np.sqrt(dx, out=dx)
    return out


def _neighbour_max(values: np.ndarray, g: Graph, units: np.ndarray) -> np.ndarray:
    """Per unit of ``units`` (each with a neighbour), the max of ``values`` over its neighbours.

    The max of ``values[g.dst]`` over each unit's slots, looking at the slots of ``units`` alone
    (a ``reduceat`` over every slot of the graph cost ≈ 2.5 × more in :func:`improve`, where only
    the proposers need it).
    """
    starts = g.indptr[units]
    lens = g.indptr[units + 1] - starts
    offsets = np.r_[0, np.cumsum(lens)[:-1]]
    slots = np.repeat(starts - offsets, lens) + np.arange(int(lens.sum()))
    out: np.ndarray = np.maximum.reduceat(values[g.dst[slots]], offsets)
    return out


def band_repair(xy: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int, g: Graph, *,
                tolerance: float, bands: Bands, fixed: np.ndarray | None = None,
                max_moves: int | None = None, deadline: float | None = None) -> np.ndarray:
    """Bring every measure inside its band by single boundary moves, greedily.

    Each step takes the move (keeping the source part connected by the local test, ``fixed``
    units never moving) that lowers most the sum of normalised band violations of the workload
    ``w`` (band ``±tolerance``) and of every measure of ``bands``, without moving the workload
    out of its band or further from it; ties go to the unit closest to
    the receiving part's centroid, then to the lowest unit index. Stops when every band is met,
    no move lowers the violation, after ``max_moves`` moves (default ``n``) or at ``deadline``.
    """
    labels = labels.copy()
    movable = np.ones(g.n, bool) if fixed is None else ~np.asarray(fixed, bool)
    target = max(float(w.sum()) / k, 1e-12)
    lo, hi = target * (1 - tolerance), target * (1 + tolerance)
    load = np.bincount(labels, w, k)
    bands.reset(labels, k)
    for _ in range(g.n if max_moves is None else max_moves):
        if deadline is not None and time.monotonic() > deadline:
            break
        primary = float((np.maximum(load - hi, 0) + np.maximum(lo - load, 0)).sum()) / target
        if primary + float(bands.violation().sum()) <= 1e-12:
            break
        m = (labels[g.src] != labels[g.dst]) & movable[g.src]
        m[m] &= _local_safe(g, labels)[g.src[m]]
        s, b = g.src[m], labels[g.dst[m]]
        if not len(s):
            break
        a = labels[s]
        p_drop = _band_gain(load[a], load[b], w[s], lo, hi) / target
        inside = (load[a] - w[s] >= lo) & (load[b] + w[s] <= hi)
        drop = 10.0 * p_drop + bands.score(s, a, b, 0.0, 0.0)[2]  # the workload band first
        # never at the workload band's expense
        drop = np.where((p_drop > 1e-12) | ((p_drop >= -1e-12) & inside), drop, -np.inf)
        if not (drop > 1e-12).any():
            break
        c = centroids(xy, w, labels, k)
        d = np.hypot(xy[s, 0] - c[b, 0], xy[s, 1] - c[b, 1])
        j = int(np.lexsort((s, d, -np.round(drop, 12)))[0])
        u, pa, pb = int(s[j]), int(a[j]), int(b[j])
        labels[u] = pb
        load[pa] -= w[u]
        load[pb] += w[u]
        bands.move(np.array([u]), np.array([pa]), np.array([pb]))
    return labels


@dataclass
class Bands:
    """Further measures to balance, each within its own band around the parts' mean.

    ``values`` is ``(n, m)`` (one column per measure, e.g. 台区 count and feeder km) and
    ``tolerance`` ``m`` fractions: part ``p`` should hold ``mean_c · (1 ± tolerance_c)`` of
    column ``c``, ``mean_c = Σ_i values[i, c] / k``. :meth:`reset` computes the part loads of a
    labelling, :meth:`move` keeps them current as units move.
    """

    values: np.ndarray
    tolerance: np.ndarray
    load: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=float).reshape(len(self.values), -1)
        self.tolerance = np.asarray(self.tolerance, dtype=float).reshape(-1)

    @property
    def m(self) -> int:
        """Number of measures."""
        return int(self.values.shape[1])

    def reset(self, labels: np.ndarray, k: int) -> None:
        """Part loads ``(k, m)`` of ``labels``."""
        self.k = k
        self.target = np.maximum(self.values.sum(axis=0) / k, 1e-12)
        self.lo = self.target * (1 - self.tolerance)
        self.hi = self.target * (1 + self.tolerance)
        self.load = np.stack([np.bincount(labels, self.values[:, c], k) for c in range(self.m)],
                             axis=1) if self.m else np.zeros((k, 0))

    def move(self, s: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        """Units ``s`` moved from parts ``a`` to parts ``b``."""
        np.subtract.at(self.load, a, self.values[s])
        np.add.at(self.load, b, self.values[s])

    def violation(self) -> np.ndarray:
        """Per measure, the total load outside the band over all parts, relative to the mean."""
        v = np.maximum(self.load - self.hi, 0) + np.maximum(self.lo - self.load, 0)
        out: np.ndarray = v.sum(axis=0) / self.target
        return out

    def score(self, s: np.ndarray, a: np.ndarray, b: np.ndarray, mu_rel: float,
              band_weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gain terms of moving units ``s`` from ``a`` to ``b`` for every measure.

        Returns
        -------
        (gain, ok, drop)
            ``gain``: the quadratic balance term of every measure (weighted by
            ``mu_rel / tolerance_c²``, so a measure with a loose band weighs less) plus
            ``band_weight`` × its drop in band violation per unit moved; ``ok``: no measure's
            band violation grows; ``drop``: the drop of the summed normalised violations.
        """
        ws = self.values[s]
        la, lb = self.load[a], self.load[b]
        bal = (2 * ws * (la - lb) - 2 * ws * ws) / (self.target ** 2)
        gain = (bal * (mu_rel / self.tolerance ** 2)).sum(axis=1)
        lo, hi = self.lo, self.hi

        def v(x: np.ndarray) -> np.ndarray:
            out: np.ndarray = np.maximum(x - hi, 0) + np.maximum(lo - x, 0)
            return out

        dv = v(la) + v(lb) - v(la - ws) - v(lb + ws)
        gain += band_weight * (dv / np.maximum(ws, 1e-12 * self.target)).sum(axis=1)
        ok = (dv >= -1e-9 * self.target).all(axis=1)
        return gain, ok, (dv / self.target).sum(axis=1)


def _violation(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """How far each of ``x`` lies outside ``[lo, hi]`` (0 inside)."""
    out: np.ndarray = np.maximum(x - hi, 0) + np.maximum(lo - x, 0)
    return out


def _band_gain(la: np.ndarray, lb: np.ndarray, ws: np.ndarray, lo: float,
               hi: float) -> np.ndarray:
    """Drop in total band violation (workload outside ``[lo, hi]``) of moving ``ws`` from a to b."""
    def v(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.maximum(x - hi, 0) + np.maximum(lo - x, 0)
        return out
    gain: np.ndarray = v(la) + v(lb) - v(la - ws) - v(lb + ws)
    return gain


def _fragments(g: Graph, labels: np.ndarray) -> tuple[int, np.ndarray]:
    return _same_label_components(g, labels)


def repair(g: Graph, w: np.ndarray, labels: np.ndarray, k: int,
           fixed: np.ndarray | None = None) -> np.ndarray:
    """Make every part connected: fragments other than a part's main one join a neighbour part.

    The main fragment of a part is the one holding its ``fixed`` units (else its heaviest).
    Fixed units never change label; when a part's fixed units lie in several fragments, the
    shortest path of non-fixed units joining them is given to the part first.
    """
    labels = labels.copy()
    fixed = np.zeros(g.n, bool) if fixed is None else np.asarray(fixed, bool)
    for _ in range(50):
        ncomp, comp = _fragments(g, labels)
        if fixed.any() and _join_pinned(g, labels, fixed, comp, ncomp):
            continue
        cw = np.bincount(comp, np.where(w > 0, w, 1e-9), ncomp)
        cw += np.bincount(comp, fixed, ncomp) * (cw.sum() + 1.0)
        cpart = np.zeros(ncomp, np.int64)
        cpart[comp] = labels
        order = np.lexsort((np.arange(ncomp), -cw, cpart))
        main = np.zeros(ncomp, bool)
        main[order[np.r_[True, cpart[order][1:] != cpart[order][:-1]]]] = True
        if main.all():
            return labels
        stray = ~main[comp]
        # each stray vertex adjacent to a main component of another part adopts that part
        cross = stray[g.src] & main[comp[g.dst]] & (labels[g.dst] != labels[g.src])
        if not cross.any():
            break
        sv, dv = g.src[cross], g.dst[cross]
        frag = comp[sv]
        first = np.unique(frag, return_index=True)[1]
        new_part = dict(zip(frag[first].tolist(), labels[dv[first]].tolist()))
        move = stray & np.isin(comp, list(new_part)) & ~fixed
        labels[move] = np.array([new_part[c] for c in comp[move]], dtype=np.int64)
    log.warning("contiguity repair did not converge")
    return labels


def _join_pinned(g: Graph, labels: np.ndarray, fixed: np.ndarray, comp: np.ndarray,
                 ncomp: int) -> bool:
    """Give parts whose fixed units are split over fragments a path joining them; True if any."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path
    fc = np.unique(comp[fixed])
    cpart = np.zeros(ncomp, np.int64)
    cpart[comp] = labels
    parts, counts = np.unique(cpart[fc], return_counts=True)
    changed = False
    for p in parts[counts > 1].tolist():
        # walk through units of part p or free units; fixed units of other parts block
        ok = ~fixed | (labels == p)
        e = ok[g.src] & ok[g.dst]
        cost = np.where(labels[g.dst[e]] == p, 0.0, 1.0) + 1e-6
        a = csr_matrix((cost, (g.src[e], g.dst[e])), shape=(g.n, g.n))
        frags = [f for f in fc.tolist() if cpart[f] == p]
        src = np.flatnonzero(comp == frags[0])
        dist, pred = shortest_path(a, indices=src[:1], return_predecessors=True)
        for f in frags[1:]:
            v = int(np.flatnonzero(comp == f)[0])
            if not np.isfinite(dist[0, v]):
                continue
            while v >= 0 and comp[v] != frags[0]:
                if not fixed[v]:
                    labels[v] = p
                v = int(pred[0, v])
            changed = True
    return changed


def check_pins(g: Graph, initial: np.ndarray, fixed: np.ndarray) -> list[tuple[int, list[int]]]:
    """Labels whose fixed units cannot be joined through units free to take that label.

    Returns
    -------
    list of (label, fixed unit indices of that label) for every infeasible label.
    """
    bad = []
    free = ~fixed
    # components of the free units (fixed units removed)
    e_free = free[g.src] & free[g.dst]
    from scipy.sparse import csr_matrix
    a = csr_matrix((np.ones(e_free.sum(), np.int8), (g.src[e_free], g.dst[e_free])),
                   shape=(g.n, g.n))
    _, fcomp = connected_components(a, directed=False)
    fl = np.where(fixed, initial, -1)
    for p in np.unique(initial[fixed]).tolist():
        units = np.flatnonzero(fl == p)
        if len(units) < 2:
            continue
        # small graph: fixed units of p + free components touching them
        m = fl[g.src] == p
        s, d = g.src[m], g.dst[m]
        same = fl[d] == p
        touch = free[d]
        nodes = np.concatenate([units, g.n + np.unique(fcomp[d[touch]])])
        idx = {v: i for i, v in enumerate(nodes.tolist())}
        ss = [idx[v] for v in s[same | touch].tolist()]
        dd = [idx[int(v)] for v in np.where(same, d, g.n + fcomp[d])[same | touch].tolist()]
        sm = csr_matrix((np.ones(len(ss), np.int8), (ss, dd)), shape=(len(nodes), len(nodes)))
        _, c = connected_components(sm, directed=False)
        if len(np.unique(c[:len(units)])) > 1:
            bad.append((int(p), units.tolist()))
    return bad


def grow_fill(g: Graph, w: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Give every unlabelled (-1) unit the label of a neighbour, growing from labelled units.

    Each round, every unlabelled unit next to a labelled one joins the lightest neighbouring
    part (ties: lowest label). Units never reached keep -1.
    """
    labels = labels.copy()
    load = np.bincount(labels[labels >= 0], w[labels >= 0], k)
    while (labels < 0).any():
        m = (labels[g.src] < 0) & (labels[g.dst] >= 0)
        if not m.any():
            break
        s, p = g.src[m], labels[g.dst[m]]
        order = np.lexsort((p, load[p], s))
        s, p = s[order], p[order]
        first = np.r_[True, s[1:] != s[:-1]]
        labels[s[first]] = p[first]
        np.add.at(load, p[first], w[s[first]])
    return labels


def rebalance(xy: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int, g: Graph, *,
              tolerance: float, fixed: np.ndarray | None = None,
              home: np.ndarray | None = None, max_steps: int = 2000) -> np.ndarray:
    """Bring parts back inside the workload band by short ejection chains.

    The part farthest outside the band ``target·(1 ± tolerance)`` is served first. A part above
    the band passes one boundary unit to a neighbour, which passes one on, and so on until a part
    with room takes it: the shortest chain (breadth-first, at most ``_CHAIN_HOPS`` hops) in the
    graph of parts that can pass a unit to each other, built from the movable boundary units
    alone (units that keep their part connected by the local test and are not ``fixed``). A part
    below the band pulls units the same way. Each hop moves the unit whose workload best matches
    what is passed on (units going back ``home`` first, then the one nearest the receiving part's
    centroid). A chain is kept only if it lowers the total band violation (else it is undone),
    so the result is never worse than the start; a part no chain can help is left as it is.
    Only the parts out of the band and the few along their chains change: a warm start keeps
    everything else.

    Returns
    -------
    numpy.ndarray
        The new labels (contiguity kept: every move passes the local test).
    """
    labels = labels.copy()
    movable = np.ones(g.n, bool) if fixed is None else ~np.asarray(fixed, bool)
    target = float(w.sum()) / k
    lo, hi = target * (1 - tolerance), target * (1 + tolerance)
    load = np.bincount(labels, w, k)
    stuck = np.zeros(k, bool)
    boundary_src = g.src[w[g.src] > 0]
    boundary_dst = g.dst[w[g.src] > 0]

    def violation(x: np.ndarray) -> np.ndarray:
        return np.maximum(x - hi, 0) + np.maximum(lo - x, 0)

    for _ in range(max_steps):
        viol = np.where(stuck, 0.0, violation(load))
        if not (viol > 1e-9).any():
            break
        p = int(np.argmax(viol))
        over = bool(load[p] > hi)
        safe = _local_safe(g, labels) & movable
        la, lb = labels[boundary_src], labels[boundary_dst]
        m = (la != lb) & safe[boundary_src]
        codes = np.unique(la[m] * k + lb[m])
        before = float(violation(load).sum())
        helped = False
        for path in _chains(p, codes // k, codes % k, load, lo, hi, over, k):
            saved = labels.copy(), load.copy()
            c = centroids(xy, w, labels, k)
            hops = list(pairwise(path)) if over else [(y, x) for x, y in pairwise(path)][::-1]
            amount = (load[p] - hi) if over else (lo - load[p])
            done = True
            for giver, taker in hops:
                u = _pick_unit(g, xy, w, labels, movable, giver, taker, amount, c, home, target)
                if u < 0:
                    done = False
                    break
                labels[u] = taker
                load[giver] -= w[u]
                load[taker] += w[u]
                amount = w[u]
            if done and float(violation(load).sum()) < before - 1e-9:
                helped = True
                break
            labels, load = saved  # the chain could not run or did not help: undo it
        if not helped:
            stuck[p] = True
    return labels


#: Longest ejection chain (hops between parts) :func:`rebalance` tries.
_CHAIN_HOPS = 6


#: Chains (to different end parts) :func:`rebalance` tries for one part before giving up on it.
_CHAIN_TRIES = 6


def _chains(p: int, givers: np.ndarray, takers: np.ndarray, load: np.ndarray, lo: float, hi: float,
            over: bool, k: int) -> list[list[int]]:
    """Shortest chains of parts from ``p`` to parts with room (over) or to spare (under).

    Breadth-first over the part graph, at most ``_CHAIN_HOPS`` hops; the ends are ordered by
    hops, then by most room, and at most ``_CHAIN_TRIES`` chains are returned.
    """
    if not over:
        givers, takers = takers, givers  # pulling: walk from the taker back to givers
    order = np.argsort(givers, kind="stable")
    givers, takers = givers[order], takers[order]
    starts = np.searchsorted(givers, np.arange(k + 1))
    room = (hi - load) if over else (load - lo)
    prev = np.full(k, -2, dtype=np.int64)
    prev[p] = -1
    frontier = [p]
    ends: list[int] = []
    for _ in range(_CHAIN_HOPS):
        nxt: list[int] = []
        for x in frontier:
            for y in takers[starts[x]:starts[x + 1]].tolist():
                if prev[y] == -2:
                    prev[y] = x
                    nxt.append(y)
        ends += sorted((y for y in nxt if room[y] > 1e-9), key=lambda y: (-room[y], y))
        if len(ends) >= _CHAIN_TRIES or not nxt:
            break
        frontier = nxt
    out = []
    for y in ends[:_CHAIN_TRIES]:
        path = [y]
        while prev[path[-1]] >= 0:
            path.append(int(prev[path[-1]]))
        out.append(path[::-1])
    return out


def _pick_unit(g: Graph, xy: np.ndarray, w: np.ndarray, labels: np.ndarray, movable: np.ndarray,
               giver: int, taker: int, amount: float, c: np.ndarray, home: np.ndarray | None,
               target: float) -> int:
    """The boundary unit of ``giver`` to pass to ``taker`` (-1 if none can move)."""
    e = (labels[g.src] == giver) & (labels[g.dst] == taker)
    cand = np.unique(g.src[e])
    if not len(cand):
        return -1
    cand = cand[movable[cand] & (w[cand] > 0)]
    if not len(cand):
        return -1
    cand = cand[_local_safe_of(g, labels, cand)]
    if not len(cand):
        return -1
    d = np.hypot(*(xy[cand] - c[taker]).T)
    back = np.zeros(len(cand)) if home is None else (home[cand] == taker) * 1.0
    score = np.abs(w[cand] - amount) / max(target, 1e-12) + 1e-6 * d - back
    return int(cand[np.argmin(score)])


def _local_safe_of(g: Graph, labels: np.ndarray, units: np.ndarray) -> np.ndarray:
    """:func:`_local_safe` for a few ``units`` only (their slots alone are looked at)."""
    starts, ends = g.indptr[units], g.indptr[units + 1]
    lens = ends - starts
    slots = np.repeat(starts - np.r_[0, np.cumsum(lens)[:-1]], lens) + np.arange(int(lens.sum()))
    src = g.src[slots]
    own = labels[g.dst[slots]] == labels[src]
    own_prev = labels[g.dst[g.prev[slots]]] == labels[src]
    start_run = own & ~(own_prev & g.link_prev[slots])
    runs = np.bincount(np.repeat(np.arange(len(units)), lens), start_run, len(units))
    return np.asarray(runs == 1, dtype=bool)


def balanced_lloyd(xy: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int, *,
                   outer: int = 25, inner: int = 10, candidates: int = 8,
                   fixed: np.ndarray | None = None, step: float = 1.0,
                   also: Bands | None = None) -> np.ndarray:
    """Balanced k-means from ``labels``: Lloyd steps with a price per part (a power diagram).

    Each outer step puts the centres at the parts' weighted centroids; the inner steps assign
    every unit to the candidate centre (the ``candidates`` centres nearest the centre of the
    unit's current part: one k-d tree query per part, not per unit) minimising distance minus
    price and raise the price of light parts, lower that of heavy ones (a Lagrangian step on
    the workload balance). Parts come out compact and roughly balanced, not always connected:
    :func:`repair` and :func:`improve` finish the job. ``fixed`` units keep their label.
    With ``also`` (further measures) every part has a price per measure too, charged in
    proportion to a unit's share of that measure (one Lagrange multiplier per part and measure).

    The price step of an inner step ``it`` is ``step · median distance to the own centre ·
    (1 − it/inner) · (target − load)/target``; prices carry over from one outer step to the
    next, so a few inner steps per outer step suffice (10 steps of 1.0 give the same plans as
    40 of 0.5 at a quarter of the time; measured in docs/benchmarks.md).
    """
    from scipy.spatial import cKDTree
    n = len(xy)
    target = float(w.sum()) / k
    m = min(candidates, k)
    price = np.zeros(k)
    free = np.ones(n, bool) if fixed is None else ~fixed
    if also is not None:  # a unit's share of each measure, relative to the mean unit
        unit = also.values / np.maximum(also.values.mean(axis=0), 1e-12)
        a_target = np.maximum(also.values.sum(axis=0) / k, 1e-12)
        q = np.zeros((k, also.m))
    x, y = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
    cheapest = _Cheapest(m, n)
    ww = np.where(w > 0, w, 1e-9)
    wx, wy = ww * xy[:, 0], ww * xy[:, 1]
    for _ in range(outer):
        cx, cy = _centroid_xy(labels, ww, wx, wy, k)
        c = np.column_stack([cx, cy])
        # a unit's candidates are the centres nearest its own part's centre (k queries, not n);
        # candidate-major layout: the min over candidates is m vectorised passes over n
        near = cKDTree(c).query(c, k=m)[1].reshape(k, m)
        jt = np.ascontiguousarray(near.T).take(labels, axis=1)
        dt = _distances(x, y, cx, cy, jt)
        step0 = step * (_median(dt[0]) + 1e-9)
        cheapest.reset(dt, jt)
        for it in range(inner):
            if also is None:
                new = cheapest(price)
            else:
                cost = dt - price[jt]
                for col in range(also.m):
                    cost -= unit[None, :, col] * q[jt, col]
                new = jt[np.argmin(cost, axis=0), np.arange(n)]
            if fixed is not None:
                new = np.where(free, new, labels)
            load = np.bincount(new, w, k)
            dev = target - load
            if also is None:
                if np.abs(dev).max() <= 0.01 * target:
                    break
            else:
                rel = 1 - np.stack([np.bincount(new, also.values[:, c], k)
                                    for c in range(also.m)], axis=1) / a_target
                if (np.abs(dev).max() <= 0.02 * target
                        and (np.abs(rel) <= 0.8 * also.tolerance).all()):
                    break
                q += step0 * (1 - it / inner) * rel
            price += step0 * (1 - it / inner) * dev / target
        labels = new
    return labels


def _distances(x: np.ndarray, y: np.ndarray, cx: np.ndarray, cy: np.ndarray,
               jt: np.ndarray) -> np.ndarray:
    """``|(x, y) − (cx, cy)[jt]|`` per unit (columns) and candidate (rows), ``(m, n)``.

    ``sqrt(dx² + dy²)`` in place rather than ``np.hypot`` (5 × slower: it guards against
    overflow, which distances in metres never reach); equal to it within an ulp.
    """
    dx = x - cx.take(jt)
    dy = y - cy.take(jt)
    dx *= dx
    dy *= dy
    dx += dy
    out: np.ndarray = np.sqrt(dx, out=dx)
    return out


def _median(a: np.ndarray) -> float:
    """``np.median`` of a non-empty 1-D float array (the same value) from one ``np.partition``.

    ``np.median`` costs ≈ 0.1-0.3 ms a call at 2,500 values, mostly its generic machinery.
    """
    h = len(a) // 2
    if len(a) % 2:
        return float(np.partition(a, h)[h])
    part = np.partition(a, (h - 1, h))
    return float(np.mean(part[h - 1:h + 1]))


#: First set bit (from the most significant) of every byte: the first candidate on ties.
_FIRST_ROW = np.array([8 - v.bit_length() for v in range(256)], dtype=np.int64)


class _Cheapest:
    """Per unit, the candidate ``jt[c]`` minimising ``dt[c] − price[jt[c]]`` (first on ties).

    The same labels as ``jt[argmin(dt - price[jt], axis=0), arange(n)]`` at about half its cost
    (measured in docs/benchmarks.md, "Speed", fifth session): ``argmin`` along the first axis is
    numpy's slow path (it walks the candidates of one unit at a time), while a ``min`` along it
    is m vectorised passes. So the minimum is taken first, the candidates that reach it are
    marked with one bit each (candidate c: bit 7 − c of a byte, m ≤ 8), their bytes are OR-ed
    over the candidates and the highest bit set names the first candidate reaching the minimum.
    The (m, n) buffers live as long as the object: one allocation for all inner steps of
    :func:`balanced_lloyd` (fresh arrays of this size cost page faults every step).
    """

    def __init__(self, m: int, n: int):
        self.m, self.n = m, n
        self.cost = np.empty((m, n))
        self.tie = np.empty((m, n), bool)
        self.bits = np.empty((m, n), np.uint8)
        self.bit = (1 << (7 - np.arange(m))).astype(np.uint8)[:, None] if m <= 8 else None
        self.offset = np.arange(n, dtype=np.int64)
        self.dt = self.cost
        self.jt = np.zeros((m, n), dtype=np.int64)

    def reset(self, dt: np.ndarray, jt: np.ndarray) -> None:
        """Distances ``dt`` and candidate parts ``jt``, both ``(m, n)`` and C-contiguous."""
        self.dt, self.jt = dt, jt

    def __call__(self, price: np.ndarray) -> np.ndarray:
        """Labels for the prices ``price`` (a new array)."""
        if self.bit is None:  # more than 8 candidates: no byte holds a mark per candidate
            pick = (self.dt - price.take(self.jt)).argmin(axis=0)
            out: np.ndarray = self.jt.ravel().take(pick * self.n + self.offset)
            return out
        cost = self.cost
        price.take(self.jt, out=cost, mode="clip")  # indices are valid: "clip" is unbuffered
        np.subtract(self.dt, cost, out=cost)
        np.equal(cost, cost.min(axis=0), out=self.tie)
        np.multiply(self.tie, self.bit, out=self.bits)
        code: np.ndarray = np.bitwise_or.reduce(self.bits, axis=0)
        first: np.ndarray = _FIRST_ROW.take(code)
        np.multiply(first, self.n, out=first)
        np.add(first, self.offset, out=first)
        lab: np.ndarray = self.jt.ravel().take(first)
        return lab


#: Largest n bounded with the dense n × n distance matrix in :func:`pmedian_lower_bound`.
DENSE_BOUND_MAX = 500


def pmedian_lower_bound(xy: np.ndarray, k: int, *, weights: np.ndarray | None = None,
                        iterations: int = 300) -> float:
    """Lagrangian lower bound on the total distance of any ``k``-part plan of ``xy``.

    The value bounded is ``Σ_i w_i · |x_i − m(p_i)|``: every unit's (weighted) straight-line
    distance to the medoid (a unit of its own part) of its part. Every balanced, contiguous plan
    is a feasible solution of the uncapacitated p-median problem with *every* unit a candidate
    centre, so any lower bound of that problem bounds the plan too. The assignment constraints
    ``Σ_j x_ij = 1`` are relaxed with multipliers ``λ_i``; for any ``λ``

    ``L(λ) = Σ_i λ_i + Σ_{j in the k smallest ρ_j} ρ_j``, ``ρ_j = Σ_i min(0, w_i d_ij − λ_i)``

    is ≤ the p-median optimum (weak duality), hence ≤ the value of the plan. ``λ`` is improved
    by subgradient steps and the best ``L`` seen is returned, so the result is valid whatever
    the number of iterations. Balance and contiguity are relaxed (the bound ignores them).

    Parameters
    ----------
    xy
        ``(n, 2)`` coordinates in metres.
    k
        Number of parts, ``1 <= k <= n``.
    weights
        Optional ``n`` non-negative weights of the distances (default 1).
    iterations
        Subgradient steps.

    Returns
    -------
    float
        A lower bound in metres (0 when ``k >= n``).

    Above :data:`DENSE_BOUND_MAX` units the same bound is computed by
    :func:`pmedian_lower_bound_knn` (multipliers boxed to the nearest pairs: still valid, in
    O(n) memory instead of an n × n matrix and O(k n²) greedy start).
    """
    xy = np.asarray(xy, dtype=float)
    n = len(xy)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    if k == n:
        return 0.0
    if n > DENSE_BOUND_MAX:
        return pmedian_lower_bound_knn(xy, k, weights=weights, iterations=iterations)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)) * w[:, None]  # d[i, j]
    lam = np.sort(d, axis=1)[:, 1].copy()  # distance to the nearest other unit
    best = -np.inf
    ub = _greedy_pmedian(d, k)
    step = 1.0
    for _ in range(iterations):
        red = np.minimum(0.0, d - lam[:, None])  # reduced costs
        rho = red.sum(axis=0)
        open_ = np.argpartition(rho, k - 1)[:k]
        val = float(lam.sum() + rho[open_].sum())
        if not np.isfinite(best) or val > best + 1e-9 * max(1.0, abs(best)):
            best = val
        else:
            step *= 0.97
        # subgradient: 1 − Σ_j∈open x_ij, with x_ij = 1 where the reduced cost is negative
        g = 1.0 - (d[:, open_] < lam[:, None]).sum(axis=1)
        norm = float((g * g).sum())
        if norm == 0:
            break  # λ is optimal for the relaxation
        lam = np.maximum(0.0, lam + step * (ub - val) / norm * g)
    return max(0.0, best)


def pmedian_lower_bound_knn(xy: np.ndarray, k: int, *, weights: np.ndarray | None = None,
                            neighbours: int = 96, iterations: int = 150,
                            upper: float | None = None, centres: np.ndarray | None = None,
                            target: float = 1.0, decay: float = 0.97) -> float:
    """The Lagrangian bound of :func:`pmedian_lower_bound` in O(n · ``neighbours``) memory.

    Same relaxation, with every multiplier boxed: ``0 <= λ_i <= w_i r_i``, ``r_i`` the distance
    from unit ``i`` to its ``neighbours``-th nearest unit (itself included). Weak duality holds
    for *any* ``λ``, so the bound stays valid; the box only makes ``L(λ)`` computable from the
    ``neighbours`` nearest pairs of every unit, exactly: a pair farther than ``r_i`` has
    ``w_i d_ij − λ_i >= 0`` and adds nothing to ``ρ_j``. No candidate centre is left out.
    With about 50 units per part the box rarely binds (a part's units lie within about its
    radius of its medoid, and 96 neighbours reach ≈ 1.4 radii).

    The start and the steps only decide how fast ``L`` climbs, never whether it is a bound:
    ``λ`` starts at each unit's (weighted) distance to its nearest other unit or, given the
    ``centres`` of a known plan, halfway between its distances to the nearest and the
    second-nearest centre (both clipped into the box); each step moves ``λ`` along the
    subgradient ``g_i = 1 − #{open j : w_i d_ij < λ_i}`` by ``s (est − L) / |g|²`` (Polyak),
    ``est = best + target · (upper − best)``, and ``s`` (1 at first) is multiplied by ``decay``
    after every step that does not raise the best ``L``.

    Parameters
    ----------
    xy
        ``(n, 2)`` coordinates in metres.
    k
        Number of parts, ``1 <= k <= n``.
    weights
        Optional ``n`` non-negative weights of the distances (default 1).
    neighbours
        Pairs kept per unit.
    iterations
        Subgradient steps (the best ``L`` seen is returned: valid whatever the number).
    upper
        The value of a known plan (sizes the Polyak steps); default ``Σ_i w_i r_i``.
    centres
        Optional ``(c, 2)`` centres (e.g. medoids) of a known plan, for the start of ``λ``.
    target
        Fraction of the way from the best ``L`` to ``upper`` the Polyak steps aim at (1: at
        ``upper``; smaller values take shorter steps as the bound approaches ``upper``).
    decay
        Factor of the step size after a step that does not raise the best ``L``.

    Returns
    -------
    float
        A lower bound in metres (0 when ``k >= n``).
    """
    from scipy.spatial import cKDTree
    xy = np.asarray(xy, dtype=float)
    n = len(xy)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    if k == n:
        return 0.0
    m = min(neighbours, n)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    d, j = cKDTree(xy).query(xy, k=m)
    d, j = d.reshape(n, m), j.reshape(n, m)
    cap = w * d[:, -1]  # λ_i above this would need pairs beyond the m nearest
    vals = d * w[:, None]  # row i: w_i d_ij, ascending (the tree returns the nearest first)
    cols = j.ravel()
    lam = np.minimum(w * _start_distance(xy, d, centres), cap)
    best = -np.inf
    ub = float(cap.sum()) if upper is None else float(upper)
    step = 1.0
    for _ in range(iterations):
        # ρ_j = Σ_i min(0, w_i d_ij − λ_i): only pairs with w_i d_ij < λ_i add (a few per unit);
        # the others add +0, so the sums are those over the negative pairs, in table order
        red = vals - lam[:, None]
        np.minimum(red, 0.0, out=red)
        rho = np.bincount(cols, red.ravel(), n)
        open_ = np.zeros(n, bool)
        open_[np.argpartition(rho, k - 1)[:k]] = True
        val = float(lam.sum() + rho[open_].sum())
        if not np.isfinite(best) or val > best + 1e-9 * max(1.0, abs(best)):
            best = val
        else:
            step *= decay
        g = 1.0 - ((red < 0.0) & open_[j]).sum(axis=1)
        norm = float((g * g).sum())
        if norm == 0:
            break
        est = ub if target == 1.0 else best + target * (ub - best)
        lam = np.clip(lam + step * max(est - val, 1e-9 * ub) / norm * g, 0.0, cap)
    return max(0.0, best)


def _start_distance(xy: np.ndarray, d: np.ndarray, centres: np.ndarray | None) -> np.ndarray:
    """Start of ``λ / w`` in :func:`pmedian_lower_bound_knn`: a distance per unit.

    Without ``centres``, the distance to the nearest other unit (``d``: the sorted kNN table,
    itself first); with them, halfway between the distances to the nearest and the
    second-nearest centre (to the only centre when there is one).
    """
    if centres is None or len(centres) == 0:
        out: np.ndarray = d[:, 1] if d.shape[1] > 1 else d[:, 0]
        return out
    from scipy.spatial import cKDTree
    c = np.asarray(centres, dtype=float).reshape(-1, 2)
    if len(c) == 1:
        one: np.ndarray = np.sqrt(((xy - c[0]) ** 2).sum(axis=1))
        return one
    near = cKDTree(c).query(xy, k=2)[0]
    half: np.ndarray = 0.5 * (near[:, 0] + near[:, 1])
    return half


def _greedy_pmedian(d: np.ndarray, k: int) -> float:
    """Value of a greedy p-median (an upper bound, used only to size subgradient steps)."""
    n = d.shape[0]
    cur = np.full(n, np.inf)
    for _ in range(k):
        totals = np.minimum(cur[:, None], d).sum(axis=0)
        j = int(np.argmin(totals))
        cur = np.minimum(cur, d[:, j])
    return float(cur.sum())
