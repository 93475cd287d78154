"""Benchmark balancing several measures at once (``also_balance``, issue #16 part 1), in one run.

Instances as in ``scripts/bench_partition.py``: uniform and clustered random points in a 10 km
square, K = N/50, workload = uniform integers 1-100 (seed 0), Delaunay edges; two further
measures per unit: a count (1 each, like 台区) and a feeder-km-like value (lognormal, σ 0.5).

Methods, each on identical inputs in its own subprocess (clean peak memory, read with the
process's own ``getrusage(RUSAGE_SELF)``):

``workload only``
    ``balanced_contiguous(xy, w, k)`` (the single-measure path).
``weighted sum``
    One weight ``w + 20·count + 20·km``: what a planner does without ``also_balance``.
``also_balance``
    ``balanced_contiguous(xy, w, k, also=[count, km], also_tolerance=[0.15, 0.25])``.

Every metric is computed by the parent from the returned labels with the same code: per measure
the largest deviation of a part from the mean (max |load/mean − 1|) and the CV, the mean distance
of a unit to its part's centroid, parts that are not connected, seconds, peak RSS.

Usage::

    .venv/bin/python scripts/bench_measures.py --out /tmp/bench_measures.md
    .venv/bin/python scripts/bench_measures.py --sizes 2000 --kinds uniform
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe

from gridplan.lv import solver
from gridplan.lv.graph import neighbour_edges
from gridplan.lv.partition import balanced_contiguous

METHODS = ("single", "weighted", "also")
LABELS = {"single": "workload only", "weighted": "weighted sum w + 20·count + 20·km",
          "also": "**also_balance** count ±15%, km ±25%"}
TOL = {"workload": 0.05, "count": 0.15, "km": 0.25}


def instance(kind: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Points, workload, the two further measures ``(n, 2)`` and K of one instance (seed 0)."""
    rng = np.random.default_rng(0)
    if kind == "uniform":
        xy = rng.uniform(0, 10_000, (n, 2))
    else:
        centres = rng.uniform(0, 10_000, (max(n // 200, 4), 2))
        xy = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 400, (n, 2))
    w = rng.integers(1, 101, n).astype(float)
    also = np.column_stack([np.ones(n), rng.lognormal(0.0, 0.5, n)])
    return xy, w, also, max(n // 50, 2)


def worker(kind: str, n: int, method: str) -> None:
    """Solve one instance with one method; print labels, seconds and peak RSS as JSON."""
    xy, w, also, k = instance(kind, n)
    edges = neighbour_edges(xy)
    t0 = time.perf_counter()
    if method == "single":
        lab = balanced_contiguous(xy, w, k, edges=edges)
    elif method == "weighted":
        lab = balanced_contiguous(xy, w + 20 * also[:, 0] + 20 * also[:, 1], k, edges=edges)
    else:
        lab = balanced_contiguous(xy, w, k, edges=edges, also=also,
                                  also_tolerance=[TOL["count"], TOL["km"]])
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"labels": lab.tolist(), "seconds": secs, "peak_mb": peak}))


def metrics(kind: str, n: int, labels: np.ndarray) -> dict[str, float]:
    """Per measure max deviation and CV, mean distance to centroid, broken parts."""
    xy, w, also, k = instance(kind, n)
    out: dict[str, float] = {}
    for name, v in (("workload", w), ("count", also[:, 0]), ("km", also[:, 1])):
        loads = np.bincount(labels, v, k)
        out[f"{name}_dev"] = float(np.abs(loads / loads.mean() - 1).max())
        out[f"{name}_cv"] = float(loads.std() / loads.mean())
    out["dist"] = solver.mean_distance(xy, w, labels, k)
    out["broken"] = solver.n_broken(solver.build_graph(xy, neighbour_edges(xy)), labels, k)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2000,20000")
    ap.add_argument("--kinds", default="uniform,clustered")
    ap.add_argument("--out", default=None, help="also write the markdown here")
    ap.add_argument("--worker", nargs=3, metavar=("KIND", "N", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.worker[2])
        return
    lines = [f"Machine: {describe()} (shared with other jobs while measured).", "",
             ("| instance | method | workload max dev / CV | count max dev / CV | km max dev / CV "
              "| mean dist (m) | broken | s | peak MB |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for n in (int(s) for s in args.sizes.split(",")):
        for kind in args.kinds.split(","):
            for method in METHODS:
                res = subprocess.run([sys.executable, __file__, "--worker", kind, str(n), method],
                                     capture_output=True, text=True, check=True)
                got = json.loads(res.stdout.strip().splitlines()[-1])
                m = metrics(kind, n, np.asarray(got["labels"], dtype=np.int64))
                cells = " | ".join(f"{m[f'{x}_dev']:.3f} / {m[f'{x}_cv']:.3f}"
                                   for x in ("workload", "count", "km"))
                row = (f"| {kind} N={n:,} K={max(n // 50, 2)} | {LABELS[method]} | {cells} "
                       f"| {m['dist']:.0f} | {int(m['broken'])} | {got['seconds']:.2f} "
                       f"| {got['peak_mb']:.0f} |")
                print(row, flush=True)
                lines.append(row)
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
