"""LV patches (低压到片): contiguous, balanced, compact groups of 台区, one per manager.

Two public functions:

``balanced_contiguous(xy, weights, k)``
    The solver, usable on any weighted points (so it can be benchmarked against the peers):
    METIS with its contiguity option as a start, then vectorised boundary moves that pull every
    part towards its centroid while keeping it connected and its workload within the tolerance
    (see :mod:`gridplan._solver`).
``plan_patches(county, workload, params=...)``
    The planner's view: grids per township (or per station), their number from the capacity or
    the manager roster, heavy 台区 and disconnected parts handled, notes in Chinese.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _solver
from .county import County
from .graph import components, neighbour_edges
from .settings import Params

__all__ = ["balanced_contiguous", "plan_patches", "PatchResult", "HEAVY_FLAG"]

log = logging.getLogger(__name__)

#: Flag of a grid made of one 台区 whose workload alone exceeds the capacity.
HEAVY_FLAG = "heavy-unit"


def balanced_contiguous(xy: Any, weights: Any, k: int, *, edges: np.ndarray | None = None,
                        tolerance: float = 0.05, seed: int = 0,
                        time_limit: float | None = None) -> np.ndarray:
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

    Returns
    -------
    numpy.ndarray
        ``n`` int labels in ``0..k-1``, every label used, every part connected on ``edges``.
        Labels are numbered in order of each part's lowest point index.

    Raises
    ------
    ValueError
        Bad shapes or values, or a disconnected graph (plan each component separately).
    """
    t0 = time.monotonic()
    xy = np.asarray(xy, dtype=float)
    w = np.asarray(weights, dtype=float)
    n = len(xy)
    _check_inputs(xy, w, k, tolerance)
    if edges is None:
        edges = neighbour_edges(xy)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if len(edges) and (edges.min() < 0 or edges.max() >= n):
        raise ValueError(f"edges refer to vertices outside 0..{n - 1}")
    comp = components(n, edges)
    ncomp = int(comp.max()) + 1 if n else 0
    if ncomp > 1:
        sizes = np.bincount(comp)
        raise ValueError(
            f"the neighbour graph is disconnected ({ncomp} components, sizes "
            f"{sorted(sizes.tolist(), reverse=True)[:10]}): a contiguous partition needs a "
            "connected graph; partition each component separately (plan_patches does this)")
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    if k == n:
        return np.arange(n, dtype=np.int64)
    g = _solver.build_graph(xy, edges)
    labels = _solver.metis_start(g, w, k, seed=seed)
    labels = _solver.repair(g, w, labels, k)
    labels = _fill_empty(g, xy, labels, k)
    deadline = None if time_limit is None else t0 + float(time_limit)
    labels, timed_out = _solver.improve(xy, w, labels, k, g, tolerance=tolerance,
                                        deadline=deadline)
    if timed_out:
        log.warning("balanced_contiguous: time limit of %.1f s reached; returning the best plan "
                    "found so far (contiguous, balance and compactness not fully optimised)",
                    time_limit)
    if _solver.n_broken(g, labels, k):  # never expected: moves keep parts connected
        log.warning("balanced_contiguous: repairing a non-contiguous part")
        labels = _solver.repair(g, w, labels, k)
    return _renumber(labels, k)


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


def _fill_empty(g: _solver.Graph, xy: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Give every unused label one vertex taken (safely) from the part with most vertices."""
    labels = labels.copy()
    for lab in np.flatnonzero(np.bincount(labels, minlength=k) == 0):
        sizes = np.bincount(labels, minlength=k)
        donor = int(np.argmax(sizes))
        safe = _solver._local_safe(g, labels) & (labels == donor)
        cand = np.flatnonzero(safe) if safe.any() else np.flatnonzero(labels == donor)
        labels[cand[0]] = lab
    return labels


def _renumber(labels: np.ndarray, k: int) -> np.ndarray:
    """Renumber parts by their lowest point index (deterministic, independent of METIS ids)."""
    first = np.full(k, len(labels), dtype=np.int64)
    np.minimum.at(first, labels, np.arange(len(labels)))
    rank = np.empty(k, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(k)
    return rank[labels]


# --------------------------------------------------------------------------------------------
# plan_patches: the planner's view
# --------------------------------------------------------------------------------------------

@dataclass
class PatchResult:
    """LV patches of a county.

    Attributes
    ----------
    grid_id
        Grid id of every row of ``county.transformers`` (same order).
    notes
        Sentences for the user (Chinese): components, heavy 台区, tolerance not met, roster.
    flags
        ``grid_id -> flag`` (e.g. ``"heavy-unit"``).
    lower_bound
        Σ over townships of ceil(W_t / capacity): no plan inside townships has fewer grids.
    """

    grid_id: np.ndarray
    notes: list[str] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)
    lower_bound: int = 0


def grid_count(total: float, capacity: float, tolerance: float, n_units: int) -> int:
    """Fewest grids whose balanced workload (mean × (1 + tolerance)) respects ``capacity``."""
    if n_units == 0:
        return 0
    k = max(1, math.ceil(total / capacity - 1e-9))
    while k < n_units and total / k * (1 + tolerance) > capacity:
        k += 1
    return min(k, n_units)


def plan_patches(county: County, workload: Any, *, params: Params | None = None) -> PatchResult:
    """Cut every township's (or station's) 台区 into contiguous, balanced grids.

    Parameters
    ----------
    county
        The county; ``transformers`` (points), ``townships``, optional ``managers`` and
        ``barriers`` are used.
    workload
        Workload of every transformer row (see :func:`gridplan.workload.workload`).
    params
        ``capacity``, ``tolerance``, ``scope``, ``grids_from_roster``, ``seed``, ``time_limit``.

    Returns
    -------
    PatchResult
    """
    from ._patches import plan_patches_impl

    return plan_patches_impl(county, np.asarray(workload, dtype=float),
                             params if params is not None else county.params)
