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

``--county N,TOWNSHIPS,SIDE_KM`` times instead the solves of the townships of
``scripts/bench_million.make_county`` (``--draw`` of them, evenly spaced, every connected part
exactly as ``plan_patches`` hands it to the solver: its 台区, workloads, contiguity edges of the
territory cells, ``k``, tolerance and seed, captured through the ``pool`` argument), and reports
their total CPU seconds, mean and largest CV, non-contiguous grids, mean distance to the
weighted centroid and how many plans equal those of the first solver timed. The captured parts
are cached in ``--cache``.

``--baseline TREE`` times, alternately with this tree's solver and in the same process, the
solver of another source tree (e.g. ``/work/main``): its ``gridplan/lv`` is imported as a copy
under another package name (the solver's modules import each other relatively), and the table
gets a "before" and an "after" row per instance, plus the ratio of the mean distances.

Usage::

    PYTHONPATH=. .venv/bin/python scripts/bench_solver_cpu.py
    PYTHONPATH=. .venv/bin/python scripts/bench_solver_cpu.py --instances clustered:20000 --repeat 3
    PYTHONPATH=. .venv/bin/python scripts/bench_solver_cpu.py --county 200000,80,70 --draw 20 \\
        --baseline /work/main --repeat 3
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import os
import pickle
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
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


def baseline_solver(tree: Path) -> Callable[..., np.ndarray]:
    """``balanced_contiguous`` of another source tree, imported as a copy named ``gridplan_baseline``.

    The package is copied to a temporary directory under that name (``gridplan/lv`` imports its
    siblings relatively, so the copy runs its own solver, not this tree's).
    """
    tmp = Path(tempfile.mkdtemp(prefix="bench_solver_cpu_"))
    shutil.copytree(tree / "gridplan", tmp / "gridplan_baseline",
                    ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(tmp))
    mod = importlib.import_module("gridplan_baseline.lv.partition")
    fn: Callable[..., np.ndarray] = mod.balanced_contiguous
    return fn


def row(kind: str, n: int, *, repeat: int, cache: Path | None, label: str = "",
        solver: Callable[..., np.ndarray] = balanced_contiguous) -> str:
    """One table row: CPU seconds of both methods, their ratio and gridplan's quality."""
    k = n // 50
    xy, w = instance(kind, n)
    e = edges_of(xy)
    tm, _ = cpu_min(functools.partial(metis_contig, w, e, k), repeat)
    tg, lab = cpu_min(functools.partial(solver, xy, w, k, edges=e, tolerance=0.05, seed=0),
                      repeat)
    m = metrics(xy, w, e, np.asarray(lab), k)
    rel = "n/a" if cache is None else f"{m['dist'] / kmeans_distance(xy, w, e, k, kind, cache):.4f}"
    return (f"| {kind} {n:,}{label} | {tg:.3f} | {tm:.3f} | {tg / tm:.2f} | {m['cv']:.4f} | "
            f"{m['max']:.3f} | {m['min']:.3f} | {m['broken']} | {rel} |")


# --------------------------------------------------------------------- the 1M county's townships

class _Capture(Executor):
    """An executor that runs every task at once and keeps the solver tasks (``_Part``) it got."""

    def __init__(self) -> None:
        self.parts: list[Any] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.parts.extend(args)
        fut: Future[Any] = Future()
        fut.set_result(fn(*args, **kwargs))
        return fut


def county_parts(n: int, townships: int, side_km: float, cache: Path) -> list[dict[str, Any]]:
    """Every connected part ``plan_patches`` solves in ``make_county(n, ...)`` (cached on disk).

    Each part: ``xy``, ``w``, ``k``, ``edges``, ``tolerance``, ``seed`` and ``also`` (the
    keyword arguments of ``balanced_contiguous`` besides those), in the order they were submitted.
    """
    path = cache / f"county-{n}-{townships}-{side_km:g}.pkl"
    if path.exists():
        with path.open("rb") as fh:
            out: list[dict[str, Any]] = pickle.load(fh)
        return out
    from bench_million import make_county

    from gridplan import pipeline
    from gridplan.lv import measures
    from gridplan.lv.patches import plan_patches

    county = make_county(n, townships=townships, side_km=side_km)
    prm = county.params
    tr = pipeline.workload_stage(county, prm)
    graph = pipeline.graph_stage(county, tr, prm)
    cap = _Capture()
    plan_patches(pipeline.lv_county(county), tr["workload"].to_numpy(), params=prm,
                 edges=graph.edges, also=measures.measure_matrix(tr, prm.also_balance), pool=cap)
    out = [{"xy": p.xy, "w": p.w, "k": p.k, "edges": p.edges, "tolerance": p.setting.tol,
            "seed": p.setting.seed, "also": p.also} for p in cap.parts]
    cache.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        pickle.dump(out, fh)
    return out


def solve_part(solver: Callable[..., np.ndarray], part: dict[str, Any]) -> np.ndarray:
    """Labels of one captured part, called as ``plan_patches`` calls the solver."""
    return solver(part["xy"], part["w"], part["k"], edges=part["edges"],
                  tolerance=part["tolerance"], seed=part["seed"], **part["also"])


def county_rows(parts: list[dict[str, Any]], solvers: dict[str, Callable[..., np.ndarray]], *,
                repeat: int) -> list[str]:
    """Rows of the drawn townships' totals per solver, the solvers timed alternately per part."""
    cpu = dict.fromkeys(solvers, 0.0)
    equal = dict.fromkeys(solvers, 0)
    qual: dict[str, list[dict[str, Any]]] = {name: [] for name in solvers}
    for part in parts:
        first_labels = None
        for name, solver in solvers.items():
            t, lab = cpu_min(functools.partial(solve_part, solver, part), repeat)
            lab = np.asarray(lab)
            first_labels = lab if first_labels is None else first_labels
            equal[name] += int(np.array_equal(lab, first_labels))
            cpu[name] += t
            qual[name].append(metrics(part["xy"], part["w"], part["edges"], lab, part["k"]))
    first = next(iter(solvers))
    out = []
    for name in solvers:
        q = qual[name]
        ratio = np.mean([a["dist"] / b["dist"] for a, b in zip(q, qual[first], strict=True)])
        out.append(f"| {name} | {len(parts)} | {sum(len(p['w']) for p in parts):,} | "
                   f"{cpu[name]:.3f} | {cpu[name] / len(parts):.4f} | "
                   f"{np.mean([m['cv'] for m in q]):.4f} | {max(m['cv'] for m in q):.4f} | "
                   f"{max(m['max'] for m in q):.3f} | {min(m['min'] for m in q):.3f} | "
                   f"{sum(m['broken'] for m in q)} | {np.mean([m['dist'] for m in q]):.1f} | "
                   f"{ratio:.4f} | {equal[name]} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", default=DEFAULT, help="kind:N,... (K = N/50)")
    ap.add_argument("--repeat", type=int, default=1, help="calls per method (minimum reported)")
    ap.add_argument("--cache", default="/tmp/bench_solver_cpu", help="k-means labels cache")
    ap.add_argument("--no-kmeans", action="store_true", help="skip the distance column")
    ap.add_argument("--county", help="N,TOWNSHIPS,SIDE_KM: the townships of bench_million's county")
    ap.add_argument("--draw", type=int, default=20, help="townships' parts timed (with --county)")
    ap.add_argument("--baseline", type=Path, help="another source tree, timed alternately")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    solvers: dict[str, Callable[..., np.ndarray]] = {"this tree": balanced_contiguous}
    if args.baseline is not None:
        solvers = {f"before ({args.baseline})": baseline_solver(args.baseline), **solvers}
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if args.county:
        n_s, t_s, side_s = args.county.split(",")
        parts = county_parts(int(n_s), int(t_s), float(side_s), Path(args.cache))
        pick = np.unique(np.linspace(0, len(parts) - 1, min(args.draw, len(parts))).astype(int))
        print("| solver | parts | 台区 | CPU s | CPU s per part | mean CV | largest CV | max/mean "
              "| min/mean | non-contiguous | mean distance m | distance / first row's "
              "| plans equal to the first row's |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
        for line in county_rows([parts[i] for i in pick.tolist()], solvers, repeat=args.repeat):
            print(line, flush=True)
    else:
        print("| instance | gridplan CPU s | METIS-contig CPU s | ratio | CV | max/mean | min/mean "
              "| non-contiguous | distance vs k-means |")
        print("|---|---|---|---|---|---|---|---|---|", flush=True)
        for spec in args.instances.split(","):
            kind, n_s = spec.split(":")
            for name, solver in solvers.items():
                label = "" if len(solvers) == 1 else f" ({name})"
                print(row(kind, int(n_s), repeat=args.repeat, label=label, solver=solver,
                          cache=None if args.no_kmeans else Path(args.cache)), flush=True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
