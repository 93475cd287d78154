"""The engine behind :func:`gridplan.lv.partition.balanced_contiguous`.

Steps:

1. **Start**: METIS (pymetis) with ``contig=1`` on the neighbour graph, vertex weights = workload:
   contiguous, well balanced, not very compact. With a warm start (``initial``) the given labels
   are used instead (unlabelled units grow from their neighbours).
2. **Balanced Lloyd** (cold starts only, :func:`balanced_lloyd`): centres at the parts' centroids,
   units assigned to the nearest centre minus a price per part, prices adjusted until workloads
   balance (a power diagram; capacity-constrained k-means). Compact, nearly contiguous parts.
3. **Repair**: fragments of a part join a neighbouring part (:func:`repair`); pinned units never
   move, and a part whose pins are split is joined along a shortest path first.
4. **Improve**: rounds of simultaneous boundary moves, fully vectorised with numpy. In each round
   every boundary unit proposes its best move to a neighbouring part, scored by the drop in its
   distance to the part centroids plus a quadratic workload-balance term whose weight grows over
   the rounds (plus, for warm starts, a charge per unit moved away from its initial part). A move
   is taken only if

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
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
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
    d = xy[dst] - xy[src]
    ang = np.arctan2(d[:, 1], d[:, 0])
    order = np.lexsort((ang, src))
    dst = dst[order]
    d = d[order]
    slot = np.arange(len(src))
    start = indptr[src]
    deg = np.diff(indptr)[src]
    prev = np.where(slot == start, start + deg - 1, slot - 1)
    keys = src * n + dst  # sorted, as src ascending then dst ascending in CSR
    keys_sorted = np.sort(keys)
    pair = dst[prev] * n + dst
    pos = np.searchsorted(keys_sorted, pair)
    pos = np.minimum(pos, len(keys_sorted) - 1) if len(keys_sorted) else pos
    link_prev = (keys_sorted[pos] == pair) if len(keys_sorted) else np.zeros(0, bool)
    link_prev &= dst[prev] != dst
    return Graph(n, indptr, src, dst, prev, link_prev, np.hypot(d[:, 0], d[:, 1]))


def centroids(xy: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Weighted centroids of the ``k`` parts (unweighted where a part weighs 0)."""
    ww = np.where(w > 0, w, 1e-9)
    tot = np.bincount(labels, ww, k)
    cx = np.bincount(labels, ww * xy[:, 0], k) / np.maximum(tot, 1e-300)
    cy = np.bincount(labels, ww * xy[:, 1], k) / np.maximum(tot, 1e-300)
    return np.column_stack([cx, cy])


def mean_distance(xy: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean distance of a point to its part's weighted centroid."""
    c = centroids(xy, w, labels, k)
    return float(np.hypot(*(xy - c[labels]).T).mean())


def n_broken(g: Graph, labels: np.ndarray, k: int) -> int:
    """Number of parts that are not connected (0 for a contiguous partition)."""
    keep = labels[g.src] == labels[g.dst]
    from scipy.sparse import csr_matrix
    sub = csr_matrix((np.ones(keep.sum(), np.int8), (g.src[keep], g.dst[keep])), shape=(g.n, g.n))
    _, comp = connected_components(sub, directed=False)
    per_part = np.zeros(k, dtype=np.int64)
    first = np.unique(comp, return_index=True)[1]
    np.add.at(per_part, labels[first], 1)
    return int((per_part > 1).sum())


def metis_start(g: Graph, w: np.ndarray, k: int, *, seed: int, ufactor: int = 5,
                edge_weights: bool = False, contig: bool = True) -> np.ndarray:
    """METIS partition with integer vertex weights, contiguous (``contig=1``) by default."""
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
    _, parts = pymetis.part_graph(k, adj, vweights=vw, eweights=ew, options=opts)
    return np.asarray(parts, dtype=np.int64)


def _local_safe(g: Graph, labels: np.ndarray) -> np.ndarray:
    """Per vertex: removing it from its part certainly keeps the part connected."""
    own = labels[g.dst] == labels[g.src]
    start_run = own & ~(own[g.prev] & g.link_prev)
    runs = np.bincount(g.src, start_run, g.n)
    return runs == 1


def _segment_max(values: np.ndarray, g: Graph) -> np.ndarray:
    """Max of slot ``values`` over each vertex's neighbours (``-inf`` for isolated vertices)."""
    out = np.full(g.n, -np.inf)
    nonempty = np.flatnonzero(np.diff(g.indptr) > 0)
    if len(values):
        red = np.maximum.reduceat(values, g.indptr[nonempty])
        out[nonempty] = red
    return out


#: Improvement rounds of a cold start: 30 give the same CV and distance as 150 (N = 20,000 and
#: 100,000, uniform and clustered) in a fifth of the time.
COLD_ROUNDS = 30
#: Improvement rounds with a ``home`` plan (re-planning: stability charge, pins).
WARM_ROUNDS = 150


def improve(xy: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int, g: Graph, *,
            tolerance: float, rounds: int | None = None, mu_start: float = 20.0,
            mu_end: float = 2e4,
            deadline: float | None = None, fixed: np.ndarray | None = None,
            home: np.ndarray | None = None, move_cost: float = 0.0) -> tuple[np.ndarray, bool]:
    """Improve compactness and balance of a contiguous partition by boundary moves.

    ``fixed`` units never move. ``home`` (labels of a current plan) and ``move_cost`` (metres)
    charge every unit that ends away from its home label; moves that bring a part back inside
    the workload band outrank that charge, so with a large ``move_cost`` only balance (and
    contiguity, restored before) moves units.

    ``rounds`` defaults to :data:`COLD_ROUNDS` without ``home`` (a cold start: more rounds
    only spread the balance weight's growth thinner, measured in docs/benchmarks.md) and to
    :data:`WARM_ROUNDS` with it.

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
    scale = max(mean_distance(xy, w, labels, k), 1e-12)
    growth = (mu_end / mu_start) ** (1.0 / max(rounds * 0.6, 1))
    mu = mu_start
    idle = 0
    timed_out = False
    for r in range(rounds):
        if deadline is not None and time.monotonic() > deadline:
            timed_out = True
            break
        c = centroids(xy, w, labels, k)
        own_d = np.hypot(*(xy - c[labels]).T)
        bmask = labels[g.src] != labels[g.dst]
        s = g.src[bmask]
        a = labels[s]
        b = labels[g.dst[bmask]]
        to_d = np.hypot(xy[s, 0] - c[b, 0], xy[s, 1] - c[b, 1])
        ws = w[s]
        bal = (2 * ws * (load[a] - load[b]) - 2 * ws * ws) / (target * target)
        gain = (own_d[s] - to_d) / scale + mu * bal
        pen = move_cost / scale
        if home is not None and pen > 0:
            gain += pen * ((home[s] == b).astype(float) - (home[s] == a))
        viol = _band_gain(load[a], load[b], ws, lo, hi)
        gain += (2 * pen + 10.0) * viol / np.maximum(ws, 1e-12)
        ok = (gain > 1e-9) & (((load[a] - ws >= lo) & (load[b] + ws <= hi)) | (viol > 0))
        ok &= _local_safe(g, labels)[s] & movable[s]
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
        first = np.r_[True, s[1:] != s[:-1]]
        s, b, gain = s[first], b[first], gain[first]
        # independent set: a proposer beats every proposing neighbour
        best = np.full(n, -np.inf)
        best[s] = gain
        nb = _segment_max(best[g.dst], g)
        win = gain > nb[s]
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
        mu = min(mu * growth, mu_end)
    return labels, timed_out


def _band_gain(la: np.ndarray, lb: np.ndarray, ws: np.ndarray, lo: float,
               hi: float) -> np.ndarray:
    """Drop in total band violation (workload outside ``[lo, hi]``) of moving ``ws`` from a to b."""
    def v(x: np.ndarray) -> np.ndarray:
        return np.maximum(x - hi, 0) + np.maximum(lo - x, 0)
    return v(la) + v(lb) - v(la - ws) - v(lb + ws)


def _fragments(g: Graph, labels: np.ndarray) -> tuple[int, np.ndarray]:
    from scipy.sparse import csr_matrix
    keep = labels[g.src] == labels[g.dst]
    sub = csr_matrix((np.ones(keep.sum(), np.int8), (g.src[keep], g.dst[keep])), shape=(g.n, g.n))
    return connected_components(sub, directed=False)


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
    """Bring parts back inside the workload band by ejection chains.

    A part above the band passes a boundary unit to a neighbour, which passes one on, and so
    on until a part with room takes it (the shortest chain in the part adjacency graph);
    a part below the band pulls units the same way. Units that keep their part connected
    (local test), are not ``fixed`` and go back ``home`` or stay closest to the receiving
    part's centroid are preferred. Stops when every part is inside the band or no chain helps.
    """
    from collections import deque
    labels = labels.copy()
    movable = np.ones(g.n, bool) if fixed is None else ~np.asarray(fixed, bool)
    target = float(w.sum()) / k
    lo, hi = target * (1 - tolerance), target * (1 + tolerance)
    load = np.bincount(labels, w, k)
    stuck: set[int] = set()
    for _ in range(max_steps):
        viol = np.maximum(load - hi, 0) + np.maximum(lo - load, 0)
        viol[list(stuck)] = 0
        if not (viol > 1e-9).any():
            break
        p = int(np.argmax(viol))
        over = load[p] > hi
        c = centroids(xy, w, labels, k)
        safe = _local_safe(g, labels) & movable
        m = (labels[g.src] != labels[g.dst]) & safe[g.src] & (w[g.src] > 0)
        a, b = labels[g.src[m]], labels[g.dst[m]]
        # part graph: which part can pass a unit to which
        adj: dict[int, list[int]] = {}
        for aa, bb in set(zip(a.tolist(), b.tolist())):
            if over:
                adj.setdefault(aa, []).append(bb)
            else:
                adj.setdefault(bb, []).append(aa)
        need = load[p] - hi if over else lo - load[p]
        prev = {p: -1}
        queue = deque([p])
        end = -1
        while queue:
            x = queue.popleft()
            if x != p and ((over and load[x] + need <= hi) or (not over and load[x] - need >= lo)):
                end = x
                break
            for y in sorted(adj.get(x, [])):
                if y not in prev:
                    prev[y] = x
                    queue.append(y)
        if end < 0:
            stuck.add(p)
            continue
        path = [end]
        while prev[path[-1]] >= 0:
            path.append(prev[path[-1]])
        path.reverse()  # p ... end
        hops = list(pairwise(path)) if over else [(y, x) for x, y in pairwise(path)][::-1]
        amount = need
        before = float(viol[p])
        for giver, taker in hops:
            safe = _local_safe(g, labels) & movable
            e = (labels[g.src] == giver) & (labels[g.dst] == taker) & safe[g.src]
            cand = np.unique(g.src[e])
            if not len(cand):
                break
            d = np.hypot(*(xy[cand] - c[taker]).T)
            back = np.zeros(len(cand)) if home is None else (home[cand] == taker) * 1.0
            score = np.abs(w[cand] - amount) / max(target, 1e-12) + 1e-6 * d - back
            u = int(cand[np.argmin(score)])
            labels[u] = taker
            load[giver] -= w[u]
            load[taker] += w[u]
            amount = w[u]
        after = max(load[p] - hi, 0) + max(lo - load[p], 0)
        if after >= before - 1e-9:  # the chain could not start (pinned borders) or did not help
            stuck.add(p)
    return labels


def balanced_lloyd(xy: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int, *,
                   outer: int = 25, inner: int = 10, candidates: int = 8,
                   fixed: np.ndarray | None = None, step: float = 1.0,
                   refresh: int = 4) -> np.ndarray:
    """Balanced k-means from ``labels``: Lloyd steps with a price per part (a power diagram).

    Each outer step puts the centres at the parts' weighted centroids; the inner steps assign
    every unit to the candidate centre (its ``candidates`` nearest) minimising distance minus
    price and raise the price of light parts, lower that of heavy ones (a Lagrangian step on
    the workload balance). Parts come out compact and roughly balanced, not always connected:
    :func:`repair` and :func:`improve` finish the job. ``fixed`` units keep their label.

    The price step of an inner step ``it`` is ``step · median nearest-centre distance ·
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
    jt = np.empty((m, 0), np.int64)
    for o in range(outer):
        c = centroids(xy, w, labels, k)
        # candidate-major layout: the argmin over candidates is m vectorised passes over n
        if o % refresh == 0:  # centres move little between steps: re-query now and then
            jt = np.ascontiguousarray(cKDTree(c).query(xy, k=m)[1].reshape(n, m).T)
        dt = np.hypot(xy[:, 0] - c[jt, 0], xy[:, 1] - c[jt, 1])
        step0 = step * (float(np.median(dt[0])) + 1e-9)
        for it in range(inner):
            new = _cheapest(dt, jt, price)
            new = np.where(free, new, labels)
            load = np.bincount(new, w, k)
            if np.abs(load - target).max() <= 0.01 * target:
                break
            price += step0 * (1 - it / inner) * (target - load) / target
        labels = new
    return labels


def _cheapest(dt: np.ndarray, jt: np.ndarray, price: np.ndarray) -> np.ndarray:
    """Per unit, the candidate ``jt[c]`` minimising ``dt[c] − price[jt[c]]`` (first on ties)."""
    best = dt[0] - price[jt[0]]
    lab: np.ndarray = jt[0].astype(np.int64)
    for c in range(1, len(dt)):
        v = dt[c] - price[jt[c]]
        better = v < best
        np.copyto(best, v, where=better)
        np.copyto(lab, jt[c], where=better)
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
                            upper: float | None = None) -> float:
    """The Lagrangian bound of :func:`pmedian_lower_bound` in O(n · ``neighbours``) memory.

    Same relaxation, with every multiplier boxed: ``0 <= λ_i <= w_i r_i``, ``r_i`` the distance
    from unit ``i`` to its ``neighbours``-th nearest unit (itself included). Weak duality holds
    for *any* ``λ``, so the bound stays valid; the box only makes ``L(λ)`` computable from the
    ``neighbours`` nearest pairs of every unit, exactly: a pair farther than ``r_i`` has
    ``w_i d_ij − λ_i >= 0`` and adds nothing to ``ρ_j``. No candidate centre is left out.
    With about 50 units per part the box rarely binds (a part's units lie within about its
    radius of its medoid, and 96 neighbours reach ≈ 1.4 radii).

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
    rows = np.repeat(np.arange(n), m)
    cols = j.ravel()
    vals = (d * w[:, None]).ravel()
    lam = np.minimum(w * (d[:, 1] if m > 1 else d[:, 0]), cap)
    best = -np.inf
    ub = float(cap.sum()) if upper is None else float(upper)
    step = 1.0
    for _ in range(iterations):
        red = np.minimum(0.0, vals - lam[rows])
        rho = np.bincount(cols, red, n)
        open_ = np.zeros(n, bool)
        open_[np.argpartition(rho, k - 1)[:k]] = True
        val = float(lam.sum() + rho[open_].sum())
        if not np.isfinite(best) or val > best + 1e-9 * max(1.0, abs(best)):
            best = val
        else:
            step *= 0.97
        g = 1.0 - np.bincount(rows, (vals < lam[rows]) & open_[cols], n)
        norm = float((g * g).sum())
        if norm == 0:
            break
        lam = np.clip(lam + step * max(ub - val, 1e-9 * ub) / norm * g, 0.0, cap)
    return max(0.0, best)


def _greedy_pmedian(d: np.ndarray, k: int) -> float:
    """Value of a greedy p-median (an upper bound, used only to size subgradient steps)."""
    n = d.shape[0]
    cur = np.full(n, np.inf)
    for _ in range(k):
        totals = np.minimum(cur[:, None], d).sum(axis=0)
        j = int(np.argmin(totals))
        cur = np.minimum(cur, d[:, j])
    return float(cur.sum())
