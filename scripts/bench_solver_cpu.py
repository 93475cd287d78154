"""CPU time of the LV solver against METIS-contig, one process, the instances of bench_partition.

Wall time on a shared machine depends on when each method happened to run; CPU time
(``time.process_time()``) much less. For every instance this script times, one after the other in
one process, gridplan's ``balanced_contiguous`` and the METIS-contig peer exactly as
``scripts/bench_partition.py`` runs it (adjacency lists built in Python, then ``part_graph`` with
``contig=1, ufactor=5``), ``--repeat`` times each (the minimum is reported), and the quality of
gridplan's plan: CV, max/mean, min/mean of the workloads, non-contiguous parts, and the mean
distance to the weighted centroid relative to k-means' (scikit-learn, ``n_init=1``, seed 0;
its labels are cached in ``--cache`` as they take minutes at N = 100,000).

The instance ``small`` (N = 2,500, K = 50) is the size of one township of the 1M county: there the
solver's fixed per-call cost matters.

Usage::

    PYTHONPATH=. .venv/bin/python scripts/bench_solver_cpu.py
    PYTHONPATH=. .venv/bin/python scripts/bench_solver_cpu.py --instances clustered:20000 --repeat 3
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_partition import edges_of, instance, metrics

from gridplan.lv.partition import balanced_contiguous

DEFAULT = "uniform:2500,clustered:2500,uniform:20000,clustered:20000,uniform:100000,clustered:100000"


def metis_contig(w: np.ndarray, e: np.ndarray, k: int) -> np.ndarray:
    """The METIS-contig peer exactly as bench_partition runs it (adjacency lists built in Python)."""
    import pymetis
    n = len(w)
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in e.tolist():
        adj[a].append(b)
        adj[b].append(a)
    _, parts = pymetis.part_graph(k, adjacency=adj, vweights=w.astype(int).tolist(),
                                  options=pymetis.Options(contig=1, ufactor=5))
    return np.asarray(parts)


def kmeans_distance(xy: np.ndarray, w: np.ndarray, e: np.ndarray, k: int, kind: str,
                    cache: Path) -> float:
    """Mean distance to the weighted centroid of k-means' plan (labels cached on disk)."""
    path = cache / f"km-{kind}-{len(xy)}.npy"
    if not path.exists():
        from sklearn.cluster import KMeans
        cache.mkdir(parents=True, exist_ok=True)
        np.save(path, KMeans(n_clusters=k, n_init=1, random_state=0).fit(xy).labels_)
    return float(metrics(xy, w, e, np.load(path), k)["dist"])


def cpu_min(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Minimum CPU seconds of ``repeat`` calls of ``fn`` and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
    return best, out


def row(kind: str, n: int, *, repeat: int, cache: Path | None) -> str:
    """One table row: CPU seconds of both methods, their ratio and gridplan's quality."""
    k = n // 50
    xy, w = instance(kind, n)
    e = edges_of(xy)
    tm, _ = cpu_min(functools.partial(metis_contig, w, e, k), repeat)
    tg, lab = cpu_min(functools.partial(balanced_contiguous, xy, w, k, edges=e, tolerance=0.05,
                                        seed=0), repeat)
    m = metrics(xy, w, e, np.asarray(lab), k)
    rel = "n/a" if cache is None else f"{m['dist'] / kmeans_distance(xy, w, e, k, kind, cache):.4f}"
    return (f"| {kind} {n:,} | {tg:.3f} | {tm:.3f} | {tg / tm:.2f} | {m['cv']:.4f} | "
            f"{m['max']:.3f} | {m['min']:.3f} | {m['broken']} | {rel} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", default=DEFAULT, help="kind:N,... (K = N/50)")
    ap.add_argument("--repeat", type=int, default=1, help="calls per method (minimum reported)")
    ap.add_argument("--cache", default="/tmp/bench_solver_cpu", help="k-means labels cache")
    ap.add_argument("--no-kmeans", action="store_true", help="skip the distance column")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    print("| instance | gridplan CPU s | METIS-contig CPU s | ratio | CV | max/mean | min/mean "
          "| non-contiguous | distance vs k-means |")
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    for spec in args.instances.split(","):
        kind, n_s = spec.split(":")
        print(row(kind, int(n_s), repeat=args.repeat,
                  cache=None if args.no_kmeans else Path(args.cache)), flush=True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
