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

Usage::

    PYTHONPATH=. .venv/bin/python scripts/bench_graph_territory.py --n 1000000
    PYTHONPATH=. .venv/bin/python scripts/bench_graph_territory.py --n 50000 --townships 20 \\
        --side-km 35 --grids plan
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
    args = ap.parse_args(argv)
    # bench_million puts its own tree first on sys.path: --tree goes in front of it, after
    from _machine import describe
    from bench_million import make_county

    sys.path.insert(0, str(args.tree.resolve()))
    from gridplan import pipeline
    from gridplan.lv import measures

    county = make_county(args.n, townships=args.townships, side_km=args.side_km, seed=args.seed)
    prm = county.params
    tr = pipeline.workload_stage(county, prm)
    c0, w0 = cpu_s(), time.perf_counter()
    graph = pipeline.graph_stage(county, tr, prm)
    graph_cpu, graph_wall, graph_mb = cpu_s() - c0, time.perf_counter() - w0, peak_mb()
    if args.grids == "plan":
        tr = measures.add_measure_columns(county, tr, prm.also_balance, cells=graph.cells, params=prm)
        tr["grid_id"] = pipeline.patches_stage(pipeline.lv_county(county), tr, prm, graph.edges).grid_id
    else:
        tr["grid_id"] = lattice_grids(tr, square_m=args.square_km * 1000.0)
    c0, w0 = cpu_s(), time.perf_counter()
    grids = pipeline.territory_stage(county, tr, graph.cells)
    terr_cpu, terr_wall = cpu_s() - c0, time.perf_counter() - w0
    print(f"Machine: {describe()}; load average {os.getloadavg()[0]:.1f} at the end.\n")
    print(f"Command: `{' '.join([Path(sys.executable).name] + sys.argv)}`\n")
    print(f"Tree: {Path(pipeline.__file__).resolve().parents[1]}.\n")
    print(f"County: {len(tr):,} 台区, {args.townships} townships; grids: {args.grids} "
          f"({len(grids):,}); {len(graph.edges):,} contiguity edges.\n")
    print("| stage | wall s | CPU s | peak MB so far |")
    print("|---|---|---|---|")
    print(f"| graph | {graph_wall:.2f} | {graph_cpu:.2f} | {graph_mb:.0f} |")
    print(f"| territory | {terr_wall:.2f} | {terr_cpu:.2f} | {peak_mb():.0f} |")


if __name__ == "__main__":
    main()
