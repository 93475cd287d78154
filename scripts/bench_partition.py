"""Benchmark the LV partition (低压到片) against its peers on identical inputs, in one run.

Every (instance, method) runs in its own subprocess (a fresh interpreter: clean peak memory, and a
timeout that kills it). The parent computes every metric with the same code from the returned labels.

Instances: uniform and clustered random points in a 10 km square, N = 2,000 ... 100,000, K = N/50,
weights uniform integers 1-100, seed 0, Delaunay edges (gridplan.lv.graph.neighbour_edges).

Methods: gridplan.lv.partition.balanced_contiguous; scikit-learn KMeans; pymetis without and with
contig=1 (ufactor=5); GerryChain 1.0 recursive_tree_part (epsilon 0.05); spopt SKATER (floor =
half the mean part size, coordinates as attributes). GerryChain and spopt run with
``--peer-python`` (a separate virtualenv with the ``bench`` extra) when the main one lacks them.

Also N = 500: total distance against the LP relaxation of the capacitated p-median (HiGHS).

Certificate (issue #16): for every instance, a Lagrangian lower bound on the total distance of
any K-part plan to its parts' medoids (gridplan.lv.solver.pmedian_lower_bound_knn, valid for
every method's plan) and each method's gap (value − bound) / value, value = Σ distance to medoid.

Usage::

    .venv/bin/python scripts/bench_partition.py --out /tmp/bench_partition.md
    .venv/bin/python scripts/bench_partition.py --sizes 1000,2000 --kinds uniform --timeout 60
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = ("gridplan", "kmeans", "metis", "metis_contig", "gerrychain", "skater")
LABELS = {"gridplan": "**gridplan**", "kmeans": "scikit-learn KMeans", "metis": "pymetis",
          "metis_contig": "pymetis contig=1, ufactor=5",
          "gerrychain": "GerryChain recursive_tree_part ε=0.05",
          "skater": "spopt SKATER (floor ½·N/K)"}
PEERS_ELSEWHERE = {"gerrychain", "skater"}
#: Skipped above this N (SKATER's time grows about as K·N²; tree partition > 120 s at 20,000).
MAX_N = {"gerrychain": 20_000, "skater": 2_000}


# ----------------------------------------------------------------------------------- instances

def instance(kind: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points (metres, 10 km square) and integer weights 1-100."""
    rng = np.random.default_rng(seed)
    side = 10_000.0
    if kind == "uniform":
        xy = rng.random((n, 2)) * side
    elif kind == "clustered":  # villages: N/25 centres, 90% of points around them, 10% scattered
        m = max(n // 25, 4)
        centres = rng.random((m, 2)) * side
        spread = 0.25 * side / np.sqrt(m)
        near = rng.random(n) < 0.9
        xy = np.where(near[:, None], centres[rng.integers(m, size=n)]
                      + rng.normal(scale=spread, size=(n, 2)), rng.random((n, 2)) * side)
    else:
        raise ValueError(kind)
    w = rng.integers(1, 101, size=n).astype(float)
    return xy, w


def edges_of(xy: np.ndarray) -> np.ndarray:
    from gridplan.lv.graph import neighbour_edges
    return neighbour_edges(xy)


# ------------------------------------------------------------------------------------- workers

def run_method(method: str, xy: np.ndarray, w: np.ndarray, e: np.ndarray, k: int) -> np.ndarray:
    """Labels of one method (the timed part)."""
    n = len(xy)
    if method == "gridplan":
        from gridplan.lv.partition import balanced_contiguous
        return balanced_contiguous(xy, w, k, edges=e, tolerance=0.05, seed=0)
    if method == "kmeans":
        from sklearn.cluster import KMeans
        return KMeans(n_clusters=k, n_init=1, random_state=0).fit(xy).labels_
    if method in ("metis", "metis_contig"):
        import pymetis
        adj = [[] for _ in range(n)]
        for a, b in e.tolist():
            adj[a].append(b)
            adj[b].append(a)
        opts = pymetis.Options(contig=1, ufactor=5) if method == "metis_contig" else None
        _, parts = pymetis.part_graph(k, adjacency=adj, vweights=w.astype(int).tolist(),
                                      options=opts)
        return np.asarray(parts)
    if method == "gerrychain":
        import networkx as nx
        from gerrychain import Graph
        from gerrychain.tree import recursive_tree_part
        nxg = nx.Graph()
        nxg.add_nodes_from((i, {"pop": float(w[i])}) for i in range(n))
        nxg.add_edges_from(e.tolist())
        g = Graph.from_networkx(nxg)
        part = recursive_tree_part(g, range(k), float(w.sum()) / k, "pop", 0.05)
        return np.array([part[i] for i in range(n)])
    if method == "skater":
        import geopandas as gpd
        import libpysal
        from spopt.region import Skater
        neigh = {i: [] for i in range(n)}
        for a, b in e.tolist():
            neigh[a].append(b)
            neigh[b].append(a)
        wts = libpysal.weights.W(neigh, silence_warnings=True)
        gdf = gpd.GeoDataFrame({"x": xy[:, 0], "y": xy[:, 1]},
                               geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]))
        model = Skater(gdf, wts, ["x", "y"], n_clusters=k, floor=int(0.5 * n / k), trace=False)
        model.solve()
        return np.asarray(model.labels_)
    raise ValueError(method)


#: Modules imported before the clock starts (import time is not solver time).
PRELOAD = {"gridplan": ["gridplan.lv.partition", "pymetis", "scipy.spatial", "scipy.sparse.csgraph"], "kmeans": ["sklearn.cluster"], "metis": ["pymetis"],
           "metis_contig": ["pymetis"], "gerrychain": ["networkx", "gerrychain", "gerrychain.tree"],
           "skater": ["geopandas", "libpysal", "spopt.region"]}


def worker(args: argparse.Namespace) -> None:
    """Subprocess entry: build the instance, time the method, save labels, print JSON."""
    import importlib
    import resource
    for mod in PRELOAD[args.method]:
        importlib.import_module(mod)
    xy, w = instance(args.kind, args.n)
    e = np.load(args.edges)
    t = time.perf_counter()
    labels = run_method(args.method, xy, w, e, args.n // 50)
    sec = time.perf_counter() - t
    np.save(args.labels, np.asarray(labels, dtype=np.int64))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": sec, "peak_mb": peak_mb}))


def spawn(python: str, method: str, kind: str, n: int, edges_path: Path, timeout: float,
          tmp: Path) -> tuple[dict | None, np.ndarray | None, str]:
    """Run one method in a subprocess; kill its process group on timeout."""
    labels_path = tmp / f"{kind}-{n}-{method}.npy"
    cmd = [python, str(Path(__file__).resolve()), "--worker", "--method", method, "--kind", kind,
           "--n", str(n), "--edges", str(edges_path), "--labels", str(labels_path)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None, None, f"> {timeout:.0f} s (killed)"
    if proc.returncode != 0:
        last = (err.strip().splitlines() or ["?"])[-1]
        return None, None, f"failed: {last[:80]}"
    info = json.loads(out.strip().splitlines()[-1])
    return info, np.load(labels_path), ""


# ------------------------------------------------------------------------------------- metrics

def metrics(xy: np.ndarray, w: np.ndarray, e: np.ndarray, labels: np.ndarray, k: int) -> dict:
    from gridplan.lv import solver as _solver
    g = _solver.build_graph(xy, e)
    _, labels = np.unique(labels, return_inverse=True)
    used = int(labels.max()) + 1
    load = np.bincount(labels, w, k)
    mean = w.sum() / k
    return {"cv": float(load.std() / load.mean()), "max": float(load.max() / mean),
            "min": float(load.min() / mean), "broken": _solver.n_broken(g, labels, used),
            "empty": k - used, "dist": _solver.mean_distance(xy, w, labels, used)}


def medoid_total(xy: np.ndarray, labels: np.ndarray) -> float:
    """Σ over points of the distance to their part's medoid (the certificate's value), metres."""
    order = np.argsort(labels, kind="stable")
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    tot = 0.0
    for idx in np.split(order, cuts):
        p = xy[idx]
        tot += float(np.hypot(p[:, None, 0] - p[None, :, 0], p[:, None, 1] - p[None, :, 1])
                     .sum(axis=0).min())
    return tot


def certificate(xy: np.ndarray, k: int, upper: float | None) -> tuple[float, float]:
    """(Lagrangian p-median lower bound in metres, seconds): valid for every plan of k parts."""
    from gridplan.lv.solver import pmedian_lower_bound_knn
    t = time.perf_counter()
    bound = pmedian_lower_bound_knn(xy, k, upper=upper)
    return bound, time.perf_counter() - t


# ------------------------------------------------------------------------------- LP lower bound

def lp_bound(n: int = 500, kind: str = "uniform", cand: int = 60, tol: float = 0.05,
             time_limit: float | None = None) -> dict:
    """LP relaxation of the capacitated p-median vs gridplan's and k-means' total distance.

    Also the LP of the uncapacitated p-median (same candidates): the ratio of the two is a
    measure of the price of balance itself, whatever the solver. ``time_limit`` (seconds, per
    LP) is passed to HiGHS; an LP stopped by it has ``lp_status`` 1 and no bound.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix
    from scipy.spatial import cKDTree
    from sklearn.cluster import KMeans

    from gridplan.lv.partition import balanced_contiguous
    xy, w = instance(kind, n)
    k = n // 50
    d, j = cKDTree(xy).query(xy, k=cand)  # point i may go to its `cand` nearest candidate sites
    i = np.repeat(np.arange(n), cand)
    j, d = j.ravel(), d.ravel()
    nx = len(i)
    # variables: x (nx) then y (n); minimise sum d x
    c = np.r_[d, np.zeros(n)]
    a_eq = coo_matrix((np.ones(nx), (i, np.arange(nx))), shape=(n, nx + n)).tocsr()
    a_eq = __import__("scipy.sparse", fromlist=["vstack"]).vstack(
        [a_eq, coo_matrix((np.ones(n), (np.zeros(n), nx + np.arange(n))), shape=(1, nx + n))])
    b_eq = np.r_[np.ones(n), k]
    rows = np.arange(nx)  # x_ij - y_j <= 0
    link = coo_matrix((np.r_[np.ones(nx), -np.ones(nx)], (np.r_[rows, rows], np.r_[rows, nx + j])),
                      shape=(nx, nx + n))
    cap = (w.sum() / k) * (1 + tol)
    low = (w.sum() / k) * (1 - tol)
    capr = coo_matrix((np.r_[w[i], -cap * np.ones(n)], (np.r_[j, np.arange(n)],
                       np.r_[np.arange(nx), nx + np.arange(n)])), shape=(n, nx + n))
    lowr = coo_matrix((np.r_[-w[i], low * np.ones(n)], (np.r_[j, np.arange(n)],
                       np.r_[np.arange(nx), nx + np.arange(n)])), shape=(n, nx + n))
    sp = __import__("scipy.sparse", fromlist=["vstack"])
    a_ub = sp.vstack([link, capr, lowr]).tocsr()
    b_ub = np.zeros(a_ub.shape[0])
    t = time.perf_counter()
    opts = {} if time_limit is None else {"time_limit": float(time_limit)}
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, 1), method="highs",
                  options=opts)
    lp_sec = time.perf_counter() - t
    free = linprog(c, A_ub=link.tocsr(), b_ub=np.zeros(nx), A_eq=a_eq, b_eq=b_eq, bounds=(0, 1),
                   method="highs", options=opts)

    def medoid_cost(labels: np.ndarray) -> float:
        tot = 0.0
        for part in np.unique(labels):
            p = xy[labels == part]
            dd = np.hypot(*(p[:, None, :] - p[None, :, :]).transpose(2, 0, 1))
            tot += dd.sum(axis=0).min()
        return tot

    def centroid_cost(labels: np.ndarray) -> float:
        from gridplan.lv import solver as _solver
        _, lab = np.unique(labels, return_inverse=True)
        return _solver.mean_distance(xy, w, lab, int(lab.max()) + 1) * n

    t = time.perf_counter()
    gp = balanced_contiguous(xy, w, k, edges=edges_of(xy))
    gp_sec = time.perf_counter() - t
    km = KMeans(n_clusters=k, n_init=1, random_state=0).fit(xy).labels_
    return {"n": n, "k": k, "kind": kind, "cand": cand, "lp": float(res.fun) if res.status == 0 else float("nan"), "lp_status": res.status,
            "lp_free": float(free.fun) if free.status == 0 else float("nan"), "kmeans_centroid": centroid_cost(km),
            "lp_sec": lp_sec, "gridplan_medoid": medoid_cost(gp),
            "gridplan_centroid": centroid_cost(gp), "gridplan_sec": gp_sec,
            "kmeans_medoid": medoid_cost(km)}


# ---------------------------------------------------------------------------------------- main

def machine() -> str:
    """One line describing the machine (see scripts/_machine.py)."""
    from _machine import describe

    return describe()


def peer_python(arg: str | None) -> str:
    if arg:
        return arg
    try:
        import gerrychain  # noqa: F401
        import spopt  # noqa: F401
        return sys.executable
    except ImportError:
        alt = ROOT.parent / ".venv-bench" / "bin" / "python"
        return str(alt) if alt.exists() else sys.executable


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2000,20000,100000")
    ap.add_argument("--kinds", default="uniform,clustered")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per peer run")
    ap.add_argument("--peer-python", default=None,
                    help="interpreter with gerrychain 1.0 and spopt 0.7 (default: this one, "
                         "else ../.venv-bench/bin/python)")
    ap.add_argument("--no-lp", action="store_true")
    ap.add_argument("--lp-time-limit", type=float, default=900.0,
                    help="seconds per N = 500 LP (HiGHS time_limit); a stopped LP is reported")
    ap.add_argument("--out", default=None, help="also write the markdown here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for a in ("--method", "--kind", "--edges", "--labels"):
        ap.add_argument(a, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    peers_py = peer_python(args.peer_python)
    lines = [f"Machine: {machine()}.", "",
             f"Command: `{' '.join([Path(sys.executable).name] + sys.argv)}`", "",
             ("| instance | N | K | method | seconds | peak MB | CV | max/mean | min/mean "
             "| non-contiguous | distance vs k-means | gap to the p-median bound |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    methods = args.methods.split(",")
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for kind in args.kinds.split(","):
            for n in [int(s) for s in args.sizes.split(",")]:
                k = n // 50
                xy, w = instance(kind, n)
                e = edges_of(xy)
                ep = tmp / f"{kind}-{n}-edges.npy"
                np.save(ep, e)
                results = {}
                for m in methods:
                    if n > MAX_N.get(m, n):
                        results[m] = (None, None, f"skipped (N > {MAX_N[m]:,})")
                        continue
                    py = peers_py if m in PEERS_ELSEWHERE else sys.executable
                    results[m] = spawn(py, m, kind, n, ep, args.timeout, tmp)
                ref = None
                if results.get("kmeans", (None, None))[1] is not None:
                    ref = metrics(xy, w, e, results["kmeans"][1], k)["dist"]
                value = {m: medoid_total(xy, r[1]) for m, r in results.items() if r[1] is not None}
                bound, bound_sec = certificate(xy, k, value.get("gridplan"))
                for m in methods:
                    info, labels, msg = results[m]
                    if labels is None:
                        row = f"| {kind} | {n:,} | {k} | {LABELS[m]} | {msg} | | | | | | | |"
                    else:
                        mt = metrics(xy, w, e, labels, k)
                        rel = f"{mt['dist'] / ref:.3f}" if ref else "n/a"
                        broken = f"{mt['broken']}" + (f" ({mt['empty']} empty)" if mt["empty"] else "")
                        gap = (value[m] - bound) / value[m]
                        row = (f"| {kind} | {n:,} | {k} | {LABELS[m]} | {info['seconds']:.2f} | "
                               f"{info['peak_mb']:.0f} | {mt['cv']:.4f} | {mt['max']:.3f} | "
                               f"{mt['min']:.3f} | {broken} | {rel} | {100 * gap:.1f}% |")
                    lines.append(row)
                    print(row, flush=True)
                row = (f"| {kind} | {n:,} | {k} | *p-median lower bound* | {bound_sec:.2f} | | | | "
                       f"| | | {bound / 1000:.1f} km |")
                lines.append(row)
                print(row, flush=True)
    if not args.no_lp:
        lines += ["", ("Capacitated p-median, N = 500, K = 10 (LP relaxation, each 台区 restricted "
                  "to its 60 nearest candidate centres, loads within ±5%; HiGHS). Total distance "
                  'in metres; "free LP" = the same LP without the load constraints:'), "",
                  ("| instance | LP bound | gridplan, medoid centres | ratio to LP | gridplan, "
                  "weighted centroids | ratio to LP | k-means, medoid | k-means, weighted "
                  "centroids | free LP | LP / free LP | LP seconds |"),
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for kind in args.kinds.split(","):
            r = lp_bound(kind=kind, time_limit=args.lp_time_limit)
            if r["lp_status"] != 0:
                lines.append(f"| {kind} | not solved in {args.lp_time_limit:.0f} s (HiGHS status "
                             f"{r['lp_status']}) | {r['gridplan_medoid']:.0f} | | "
                             f"{r['gridplan_centroid']:.0f} | | {r['kmeans_medoid']:.0f} | "
                             f"{r['kmeans_centroid']:.0f} | | | {r['lp_sec']:.0f} |")
                print(lines[-1], flush=True)
                continue
            lines.append(f"| {kind} | {r['lp']:.0f} | {r['gridplan_medoid']:.0f} | "
                         f"{r['gridplan_medoid'] / r['lp']:.3f} | {r['gridplan_centroid']:.0f} | "
                         f"{r['gridplan_centroid'] / r['lp']:.3f} | {r['kmeans_medoid']:.0f} | "
                         f"{r['kmeans_centroid']:.0f} | {r['lp_free']:.0f} | "
                         f"{r['lp'] / r['lp_free']:.3f} | {r['lp_sec']:.0f} |")
            print(lines[-1], flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
