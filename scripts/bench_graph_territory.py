"""Time the graph and territory stages alone on the generated county of ``bench_million.py``.

Issue #16 part 4 (one county of 1,000,000 台区 in ≤ 60 s): ``pipeline.graph_stage`` (the 台区'
territory cells and the contiguity edges) and ``pipeline.territory_stage`` (the grid polygons) on
the county ``scripts/bench_million.py`` generates (same generator, same seed). The territory
stage needs a ``grid_id`` per 台区:

* ``--grids plan``: the plan's own grids (``patches_stage``, not timed: minutes at 1,000,000);
* ``--grids lattice`` (default): squares of ``--square-km`` per township, a stand-in that
  takes no solver time; its grids are larger than a plan's and may be multi-part where a
  township's outline cuts a square (the orphan pass then runs).

CPU seconds (user + system) and peak memory are this process's own ``getrusage(RUSAGE_SELF)``.
``--tree /other/checkout`` times that checkout's gridplan on the same county (side by side).

``--workers N`` (N >= 2) runs both stages in a pool of N spawned worker processes (one task per
township; the pool is started and warmed up before the clock starts, as ``plan()`` starts it
before the graph stage), their CPU read from the live processes (/proc:
``bench_million.Descendants``, as the workers are the fork server's children); the table then adds
the cells' transfer cost (``to_wkb`` / ``from_wkb`` of every cell, in this process) and, with
``--check``, the serial stages' outputs compared with the pool's (edges element for element,
cells and grid polygons by WKB).

Usage::

    PYTHONPATH=. .venv/bin/python scripts/bench_graph_territory.py --n 1000000
    PYTHONPATH=. .venv/bin/python scripts/bench_graph_territory.py --n 50000 --townships 20 \\
        --side-km 35 --grids plan
    PYTHONPATH=. .venv/bin/python scripts/bench_graph_territory.py --n 200000 --townships 80 \\
        --side-km 70 --workers 2 --check
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def cpu_s() -> float:
    """CPU seconds (user + system) used by this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def lattice_grids(tr, *, square_m: float) -> np.ndarray:
    """Grid ids: the township and the lattice square of ``square_m`` holding each 台区."""
    xy = shapely.get_coordinates(tr.geometry.values)
    sq = np.floor((xy - xy.min(axis=0)) / square_m).astype(np.int64)
    tids = tr["township_id"].astype(str).to_numpy()
    return np.array([f"{t}-{a}_{b}" for t, a, b in zip(tids, sq[:, 0], sq[:, 1])], dtype=object)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="number of 台区")
    ap.add_argument("--townships", type=int, default=400)
    ap.add_argument("--side-km", type=float, default=150.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grids", choices=("lattice", "plan"), default="lattice")
    ap.add_argument("--square-km", type=float, default=1.5, help="lattice square side")
    ap.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose gridplan is timed")
    ap.add_argument("--workers", type=int, default=1, help="worker processes (1: none)")
    ap.add_argument("--check", action="store_true",
                    help="with --workers: compare the pool's outputs with the serial stages'")
    args = ap.parse_args(argv)
    # bench_million puts its own tree first on sys.path: --tree goes in front of it, after
    from _machine import describe
    from bench_million import Descendants, make_county

    sys.path.insert(0, str(args.tree.resolve()))
    from gridplan import pipeline
    from gridplan.lv import measures

    county = make_county(args.n, townships=args.townships, side_km=args.side_km, seed=args.seed)
    prm = county.params
    tr = pipeline.workload_stage(county, prm)
    family = Descendants()  # the workers are grandchildren (fork server): read from /proc
    children_cpu_s = family.cpu_s
    with pipeline.worker_pool(args.workers) as pool:
        if pool is not None:  # started and warmed up (gridplan imported) before the clock starts
            list(pool.map(abs, range(4 * args.workers)))
        k0, c0, w0 = children_cpu_s(), cpu_s(), time.perf_counter()
        graph = pipeline.graph_stage(county, tr, prm, pool=pool)
        graph_cpu, graph_wall, graph_mb = cpu_s() - c0, time.perf_counter() - w0, peak_mb()
        graph_kids = children_cpu_s() - k0
        if args.grids == "plan":
            tr = measures.add_measure_columns(county, tr, prm.also_balance, cells=graph.cells, params=prm)
            tr["grid_id"] = pipeline.patches_stage(pipeline.lv_county(county), tr, prm, graph.edges,
                                                   pool=pool).grid_id
        else:
            tr["grid_id"] = lattice_grids(tr, square_m=args.square_km * 1000.0)
        k0, c0, w0 = children_cpu_s(), cpu_s(), time.perf_counter()
        grids = pipeline.territory_stage(county, tr, graph.cells, pool=pool)
        terr_cpu, terr_wall, terr_mb = cpu_s() - c0, time.perf_counter() - w0, peak_mb()
        terr_kids = children_cpu_s() - k0
    family.stop()
    transfer = []
    if pool is not None:
        c0 = cpu_s()
        cells = np.asarray(graph.cells, dtype=object)  # from_wkb of every cell
        transfer.append(("decode every cell (from_wkb)", cpu_s() - c0))
        c0 = cpu_s()
        wkb = shapely.to_wkb(cells)
        transfer.append(("encode every cell (to_wkb)", cpu_s() - c0))
        transfer.append((f"cells' WKB: {sum(map(len, wkb)) / 1e6:.0f} MB", float("nan")))
    same = None
    if args.check and pool is not None:
        alone = pipeline.graph_stage(county, tr, prm)
        serial = pipeline.territory_stage(county, tr, alone.cells)
        same = (np.array_equal(alone.edges, graph.edges) and alone.edges.dtype == graph.edges.dtype
                and shapely.to_wkb(alone.cells).tolist() == wkb.tolist()
                and serial.drop(columns="geometry").equals(grids.drop(columns="geometry"))
                and serial.geometry.to_wkb().tolist() == grids.geometry.to_wkb().tolist())
    print(f"Machine: {describe()}; load average {os.getloadavg()[0]:.1f} at the end.\n")
    print(f"Command: `{' '.join([Path(sys.executable).name] + sys.argv)}`\n")
    print(f"Tree: {Path(pipeline.__file__).resolve().parents[1]}.\n")
    print(f"County: {len(tr):,} 台区, {args.townships} townships; grids: {args.grids} "
          f"({len(grids):,}); {len(graph.edges):,} contiguity edges.\n")
    print(f"Workers: {args.workers}.\n")
    print("| stage | wall s | CPU s (this process) | CPU s (workers) | peak MB so far (this process) |")
    print("|---|---|---|---|---|")
    print(f"| graph | {graph_wall:.2f} | {graph_cpu:.2f} | {graph_kids:.2f} | {graph_mb:.0f} |")
    print(f"| territory | {terr_wall:.2f} | {terr_cpu:.2f} | {terr_kids:.2f} | {terr_mb:.0f} |")
    for what, sec in transfer:
        print(f"| {what} | | {sec:.2f} | | |" if sec == sec else f"| {what} | | | | |")
    if same is not None:
        print(f"\nSerial stages' outputs equal to the pool's (edges, cells, grid polygons): {same}.")


if __name__ == "__main__":
    main()
