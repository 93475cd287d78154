"""LV patches (低压到片): contiguous, balanced, compact groups of 台区, one per manager.

The solver (the planner's view, ``plan_patches``, is :mod:`gridplan.lv.patches`):

``balanced_contiguous(xy, weights, k)``
    The solver, usable on any weighted points (so it can be benchmarked against the peers):
    METIS with its contiguity option as a start, a balanced (price-per-part) k-means, a
    contiguity repair, then vectorised boundary moves that pull every part towards its centroid
    while keeping it connected and its workload within the tolerance (see
    :mod:`gridplan.lv.solver`). Warm starts, pinned units and a stability charge serve re-planning.
``grid_count(total, capacity, tolerance, n_units)``
    The fewest grids a balanced cut of one workload may have.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

from ..errors import InfeasibleError
from . import solver as _solver
from .graph import neighbour_edges

__all__ = ["HEAVY_FLAG", "balanced_contiguous", "grid_count"]

log = logging.getLogger(__name__)

#: Flag of a grid made of one 台区 whose workload alone exceeds the capacity.
HEAVY_FLAG = "heavy-unit"


def balanced_contiguous(xy: Any, weights: Any, k: int, *, edges: np.ndarray | None = None,
                        tolerance: float = 0.05, seed: int = 0,
                        time_limit: float | None = None, initial: Any = None,
                        fixed: Any = None, move_cost: float = 0.0, also: Any = None,
                        also_tolerance: Any = None) -> np.ndarray:
    """Partition weighted points into ``k`` contiguous, workload-balanced, compact parts.

    Parameters
    ----------
    xy
        ``(n, 2)`` coordinates in metres.
    weights
        ``n`` non-negative workloads.
    k
        Number of parts, ``1 <= k <= n``.
    edges
        ``(m, 2)`` neighbour pairs defining contiguity; ``None`` = Delaunay of ``xy``.
    tolerance
        Every part's workload should be within ``±tolerance`` of the mean (a hard bound for the
        improvement moves; the start may violate it where units are coarse).
    seed
        Seed of METIS; the result is identical for identical inputs and seed.
    time_limit
        Seconds; when reached, the best plan found so far is returned and a warning logged.
    initial
        Optional ``n`` int labels in ``0..k-1`` (``-1`` = no opinion): a warm start used instead
        of METIS (e.g. the current plan). Non-contiguous parts are repaired, unlabelled units
        join a neighbouring part, labels never used get one unit each.
    fixed
        Optional ``n`` bool mask (needs ``initial``): these units keep ``initial[i]`` exactly
        (pins and locks); the improvement and the repair never move them.
    move_cost
        Metres of distance-to-centroid charged for each unit whose final label differs from
        ``initial`` (stability). With a large value units move only to bring workloads back
        inside the tolerance band or to restore contiguity.
    also
        Optional ``(n, m)`` further measures to balance besides ``weights`` (e.g. 台区 count and
        feeder km): every part's sum of column ``c`` should be within ``±also_tolerance[c]`` of
        the mean. Moves never worsen a measure's band violation unless they lower the sum of
        all (normalised) violations, so the plan returned is the closest found when the bands
        cannot all be met; check it with the column sums.
    also_tolerance
        ``m`` tolerances in (0, 1), one per column of ``also`` (a number: the same for all).

    Returns
    -------
    numpy.ndarray
        ``n`` int labels in ``0..k-1``, every label used, every part connected on ``edges``.
        Without ``initial`` labels are numbered in order of each part's lowest point index;
        with ``initial`` they keep the meaning of the initial labels.

    Raises
    ------
    ValueError
        Bad shapes or values, or a disconnected graph (plan each component separately).
    gridplan.InfeasibleError
        The fixed units of one label cannot be joined into one contiguous part (every path
        between them crosses units fixed to other labels); the message names the units.
    """
    t0 = time.monotonic()
    xy = np.asarray(xy, dtype=float)
    w = np.asarray(weights, dtype=float)
    n = len(xy)
    _check_inputs(xy, w, k, tolerance)
    init, fix = _check_warm(n, k, initial, fixed, move_cost)
    bands = _check_also(n, also, also_tolerance)
    if edges is None:
        edges = neighbour_edges(xy)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if len(edges) and (edges.min() < 0 or edges.max() >= n):
        raise ValueError(f"edges refer to vertices outside 0..{n - 1}")
    g = _solver.build_graph(xy, edges)
    ncomp, comp = _solver.graph_components(g)
    if ncomp > 1:
        sizes = np.bincount(comp)
        raise ValueError(
            f"the neighbour graph is disconnected ({ncomp} components, sizes "
            f"{sorted(sizes.tolist(), reverse=True)[:10]}): a contiguous partition needs a "
            "connected graph; partition each component separately (plan_patches does this)")
    if fix is not None:
        assert init is not None  # _check_warm: fixed needs initial
        _raise_bad_pins(_solver.check_pins(g, init, fix))
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    if k == n and fix is None:
        return np.arange(n, dtype=np.int64) if init is None else _identity_like(init, k)
    if init is None or not (init >= 0).any():
        labels = _solver.metis_start(g, w, k, seed=seed, contig=False, recursive=True)
        labels = _solver.balanced_lloyd(xy, w, labels, k, also=bands)
    else:
        labels = _solver.grow_fill(g, w, init, k)
    labels = _solver.repair(g, w, labels, k, fix)
    labels = _fill_empty(g, xy, labels, k, fix)
    if init is not None:
        labels = _solver.rebalance(xy, w, labels, k, g, tolerance=tolerance, fixed=fix, home=init)
    deadline = None if time_limit is None else t0 + float(time_limit)
    flow = _solver.COLD_FLOW if init is None and bands is None else 0.0
    labels, timed_out = _solver.improve(xy, w, labels, k, g, tolerance=tolerance,
                                        deadline=deadline, fixed=fix, home=init,
                                        move_cost=float(move_cost), also=bands, flow=flow)
    if bands is not None and not timed_out:
        labels = _solver.band_repair(xy, w, labels, k, g, tolerance=tolerance, bands=bands,
                                     fixed=fix, deadline=deadline)
        labels, timed_out = _solver.improve(xy, w, labels, k, g, tolerance=tolerance,
                                            deadline=deadline, fixed=fix, home=init,
                                            move_cost=float(move_cost), also=bands,
                                            mu_start=2e4)
        if not timed_out:
            labels = _solver.band_repair(xy, w, labels, k, g, tolerance=tolerance, bands=bands,
                                         fixed=fix, deadline=deadline)
    if timed_out:
        log.warning("balanced_contiguous: time limit of %.1f s reached; returning the best plan "
                    "found so far (contiguous, balance and compactness not fully optimised)",
                    time_limit)
    if _solver.n_broken(g, labels, k):  # never expected: moves keep parts connected
        log.warning("balanced_contiguous: repairing a non-contiguous part")
        labels = _solver.repair(g, w, labels, k, fix)
    if init is not None and not timed_out:
        labels = _solver.rebalance(xy, w, labels, k, g, tolerance=tolerance, fixed=fix, home=init)
    return labels if init is not None else _renumber(labels, k)


def _check_inputs(xy: np.ndarray, w: np.ndarray, k: int, tolerance: float) -> None:
    n = len(xy)
    problems = []
    if xy.ndim != 2 or xy.shape[1] != 2:
        problems.append(f"xy must be (n, 2), got shape {xy.shape}")
    elif not np.isfinite(xy).all():
        problems.append("xy has non-finite coordinates")
    if w.shape != (n,):
        problems.append(f"weights must have shape ({n},), got {w.shape}")
    elif not (np.isfinite(w).all() and (w >= 0).all()):
        problems.append("weights must be finite and >= 0")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= max(n, 1) or n == 0:
        problems.append(f"k must be an integer in 1..{n} (the number of points), got {k!r}")
    if not 0 < tolerance < 1:
        problems.append(f"tolerance must be in (0, 1), got {tolerance}")
    if problems:
        raise ValueError("; ".join(problems))


def _check_also(n: int, also: Any, also_tolerance: Any) -> _solver.Bands | None:
    """Validate ``also``/``also_tolerance``; return them as :class:`~gridplan.lv.solver.Bands`."""
    if also is None:
        if also_tolerance is not None:
            raise ValueError("also_tolerance needs also (the measures it applies to)")
        return None
    a = np.asarray(also, dtype=float)
    a = a.reshape(n, -1) if a.ndim == 1 and len(a) == n else a
    problems = []
    if a.ndim != 2 or a.shape[0] != n:
        problems.append(f"also must be ({n}, m) measures, got shape {a.shape}")
    elif not (np.isfinite(a).all() and (a >= 0).all()):
        problems.append("also must be finite and >= 0")
    m = a.shape[1] if a.ndim == 2 else 0
    tol = np.broadcast_to(np.asarray(0.1 if also_tolerance is None else also_tolerance,
                                     dtype=float), (m,)) if m else np.zeros(0)
    if len(tol) and not ((tol > 0) & (tol < 1)).all():
        problems.append(f"also_tolerance must be in (0, 1), got {tol.tolist()}")
    if problems:
        raise ValueError("; ".join(problems))
    return _solver.Bands(a, tol.copy()) if m else None


def _check_warm(n: int, k: int, initial: Any, fixed: Any,
                move_cost: float) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Validate ``initial``/``fixed``/``move_cost``; return them as arrays (or None)."""
    problems = []
    init = fix = None
    if initial is not None:
        init = np.asarray(initial)
        if init.shape != (n,) or not np.issubdtype(init.dtype, np.integer):
            problems.append(f"initial must be {n} integer labels, got shape {init.shape} "
                            f"dtype {init.dtype}")
            init = None
        else:
            init = init.astype(np.int64)
            bad = np.flatnonzero((init < -1) | (init >= k))
            if len(bad):
                problems.append(f"initial labels must be in -1..{k - 1}; rows "
                                f"{bad[:20].tolist()} are not")
    if fixed is not None:
        fix = np.asarray(fixed)
        if fix.shape != (n,) or fix.dtype != bool:
            problems.append(f"fixed must be an ({n},) bool mask, got shape {fix.shape} "
                            f"dtype {fix.dtype}")
            fix = None
        elif initial is None:
            problems.append("fixed needs initial (the labels the fixed units keep)")
        elif init is not None:
            bad = np.flatnonzero(fix & (init < 0))
            if len(bad):
                problems.append(f"fixed units need an initial label >= 0; rows "
                                f"{bad[:20].tolist()} have -1")
    if not (np.isfinite(move_cost) and move_cost >= 0):
        problems.append(f"move_cost must be a finite number >= 0, got {move_cost}")
    elif move_cost > 0 and initial is None:
        problems.append("move_cost needs initial (the plan whose labels moves are counted from)")
    if problems:
        raise ValueError("; ".join(problems))
    if fix is not None and not fix.any():
        fix = None
    return init, fix


def _raise_bad_pins(bad: list[tuple[int, list[int]]]) -> None:
    if not bad:
        return
    parts = [f"label {p}: units {units[:20]}" + (f" and {len(units) - 20} more"
                                                  if len(units) > 20 else "")
             for p, units in bad]
    err = InfeasibleError(
        "the fixed units of these labels cannot form one contiguous part (every path between "
        "them crosses units fixed to another label): " + "; ".join(parts)
        + ". Unpin some of them or pin the units between them to the same label.")
    err.pins = bad  # type: ignore[attr-defined]  # [(label, [unit indices])] for the caller
    raise err


def _identity_like(init: np.ndarray, k: int) -> np.ndarray:
    """K == n without pins: one unit per label, keeping initial labels where they are unique."""
    out = np.full(len(init), -1, dtype=np.int64)
    seen = set()
    for i, p in enumerate(init.tolist()):
        if p >= 0 and p not in seen:
            out[i] = p
            seen.add(p)
    free = iter(sorted(set(range(k)) - seen))
    for i in np.flatnonzero(out < 0).tolist():
        out[i] = next(free)
    return out


def _fill_empty(g: _solver.Graph, xy: np.ndarray, labels: np.ndarray, k: int,
                fixed: np.ndarray | None = None) -> np.ndarray:
    """Give every unused label one vertex taken (safely) from the part with most free vertices."""
    labels = labels.copy()
    free = np.ones(len(labels), bool) if fixed is None else ~fixed
    for lab in np.flatnonzero(np.bincount(labels, minlength=k) == 0):
        sizes = np.bincount(labels[free], minlength=k)
        donor = int(np.argmax(sizes))
        safe = _solver._local_safe(g, labels) & (labels == donor) & free
        cand = np.flatnonzero(safe) if safe.any() else np.flatnonzero((labels == donor) & free)
        labels[cand[0]] = lab
    return labels


def _renumber(labels: np.ndarray, k: int) -> np.ndarray:
    """Renumber parts by their lowest point index (deterministic, independent of METIS ids)."""
    first = np.full(k, len(labels), dtype=np.int64)
    np.minimum.at(first, labels, np.arange(len(labels)))
    rank = np.empty(k, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(k)
    out: np.ndarray = rank[labels]
    return out


def grid_count(total: float, capacity: float, tolerance: float, n_units: int) -> int:
    """Fewest grids whose balanced workload (mean × (1 + tolerance)) respects ``capacity``."""
    if n_units == 0:
        return 0
    k = max(1, math.ceil(total / capacity - 1e-9))
    while k < n_units and total / k * (1 + tolerance) > capacity:
        k += 1
    return min(k, n_units)
