"""Time the certificate of quality's township bounds on the generated county of bench_million.

Issue #16 part 2/4: the certificate (``metrics.kpi.township_bound`` for every township) was
41 CPU s of the 1,000,000-台区 plan. This script plans the county of
``scripts/bench_million.py`` once (seeded; the townships' ``(xy, k, value)`` are cached in an
``.npz`` so later runs skip the plan), then times ``township_bound`` with this process's CPU
time (``time.process_time()``), township by township in one process (no pool), and prints the
CPU seconds, the summed bound, value and gap. With ``--reference DIR`` the same timing is run
first in a child process whose ``PYTHONPATH`` is ``DIR`` (e.g. another checkout, the "before"),
on the same cached townships, so before and after come from one run on the same load.
``--curve`` prints the trade-off of :func:`gridplan.lv.solver.pmedian_lower_bound_knn`'s
subgradient steps (CPU s vs county gap) on the sampled townships.

Usage::

    PYTHONPATH=. .venv/bin/python scripts/bench_certificate.py --sample 8 --reference /work/main
    PYTHONPATH=. .venv/bin/python scripts/bench_certificate.py --sample 0 --curve
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def build_cache(path: Path, *, n: int, townships: int, side_km: float, seed: int) -> None:
    """Plan the generated county and save every township's ``xy``, ``k`` and plan value."""
    sys.path.insert(0, str(HERE))
    from bench_million import make_county

    import gridplan

    county = make_county(n, townships=townships, side_km=side_km, seed=seed)
    p = gridplan.plan(county)
    tr = p.transformers
    xy = np.column_stack([tr.geometry.x.to_numpy(), tr.geometry.y.to_numpy()])
    town = tr["township_id"].astype(str).to_numpy()
    gid = tr["grid_id"].astype(str).to_numpy()
    opt = p.kpi["optimality"]["townships"]
    keys = sorted(opt)
    k = np.array([len(set(gid[town == t].tolist())) for t in keys])
    value = np.array([opt[t]["value_m"] for t in keys])
    code = np.searchsorted(np.array(keys), town)
    grid = np.unique(gid, return_inverse=True)[1]
    np.savez(path, xy=xy, code=code, grid=grid, k=k, value=value, keys=np.array(keys),
             county_gap=p.kpi["optimality"]["county"]["gap"])


Task = tuple[np.ndarray, int, float, np.ndarray]


def load_tasks(path: Path, sample: int) -> list[Task]:
    """The cached townships' ``(xy, k, value, medoids)``, the first ``sample`` (0: all)."""
    from gridplan.metrics.kpi import group_medoids

    z = np.load(path)
    idx = range(len(z["k"])) if sample <= 0 else range(min(sample, len(z["k"])))
    out: list[Task] = []
    for t in idx:
        here = z["code"] == t
        xy = z["xy"][here]
        grid = np.unique(z["grid"][here], return_inverse=True)[1]
        rows = group_medoids(xy, grid, int(grid.max()) + 1)[0]  # as optimality() computes them
        out.append((xy, int(z["k"][t]), float(z["value"][t]), xy[rows]))
    return out


def time_bounds(tasks: list[Task]) -> dict[str, float]:
    """CPU seconds of ``township_bound`` over the tasks, and the summed bound and value.

    The medoids are passed as ``centres`` where ``township_bound`` takes them (this tree; not a
    checkout from before the warm start).
    """
    import inspect

    from gridplan.metrics.kpi import township_bound

    warm = "centres" in inspect.signature(township_bound).parameters

    def one(t: Task) -> float:
        return township_bound(*t[:3], centres=t[3]) if warm else township_bound(*t[:3])

    one(tasks[0])  # warm-up: imports, first-call allocations
    c0 = time.process_time()
    bounds = [one(t) for t in tasks]
    cpu = time.process_time() - c0
    value = sum(t[2] for t in tasks)
    return {"cpu_s": cpu, "bound_m": float(sum(bounds)), "value_m": value,
            "gap": (value - sum(bounds)) / value, "townships": len(tasks),
            "units": sum(len(t[0]) for t in tasks)}


def curve(tasks: list[Task]) -> None:
    """CPU s vs county gap of the warm-started kNN bound over steps and neighbours."""
    import math

    from gridplan.lv.solver import pmedian_lower_bound_knn
    from gridplan.metrics.kpi import OPTIMALITY_WARM_DECAY

    value = sum(t[2] for t in tasks)
    print("| neighbours (grid sizes) | steps | CPU s | gap |")
    print("|---|---|---|---|")
    for per in (1.0, 1.5, 2.0, 3.0):
        for it in (10, 15, 20, 25, 30, 40, 60):
            c0 = time.process_time()
            lb = 0.0
            for xy, k, v, med in tasks:
                m = int(min(96, max(16, math.ceil(per * len(xy) / k))))
                lb += min(v, pmedian_lower_bound_knn(xy, k, neighbours=m, upper=v, centres=med,
                                                     iterations=it, target=0.5,
                                                     decay=OPTIMALITY_WARM_DECAY))
            print(f"| {per} | {it} | {time.process_time() - c0:.2f} | {(value - lb) / value:.4f} |",
                  flush=True)
    print("\nAblation, 1.5 grid sizes of neighbours, 25 steps:\n")
    print("| start | Polyak target, decay | CPU s | gap |")
    print("|---|---|---|---|")
    for start, target, decay in (("nearest unit", 0.5, OPTIMALITY_WARM_DECAY),
                                 ("medoids", 1.0, 0.97), ("nearest unit", 1.0, 0.97)):
        c0 = time.process_time()
        lb = 0.0
        for xy, k, v, med in tasks:
            m = int(min(96, max(16, math.ceil(1.5 * len(xy) / k))))
            lb += min(v, pmedian_lower_bound_knn(
                xy, k, neighbours=m, upper=v, iterations=25, target=target, decay=decay,
                centres=med if start == "medoids" else None))
        print(f"| {start} | {target}, {decay} | {time.process_time() - c0:.2f} | "
              f"{(value - lb) / value:.4f} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--townships", type=int, default=80)
    ap.add_argument("--side-km", type=float, default=70.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=None,
                    help="npz of the planned townships (default /tmp/cert_<n>_<townships>_<seed>.npz)")
    ap.add_argument("--sample", type=int, default=8, help="townships timed (0: all)")
    ap.add_argument("--reference", type=Path, default=None,
                    help="a checkout timed first, in a child process, on the same townships")
    ap.add_argument("--curve", action="store_true", help="CPU s vs gap over subgradient steps")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    cache = args.cache or Path(f"/tmp/cert_{args.n}_{args.townships}_{args.seed}.npz")
    if not cache.exists():
        build_cache(cache, n=args.n, townships=args.townships, side_km=args.side_km,
                    seed=args.seed)
    tasks = load_tasks(cache, args.sample)
    if args.json:
        print(json.dumps(time_bounds(tasks)))
        return
    sys.path.insert(0, str(HERE))
    from _machine import describe

    rows: list[tuple[str, dict[str, float]]] = []
    if args.reference is not None:
        env = dict(os.environ, PYTHONPATH=str(args.reference))
        out = subprocess.run([sys.executable, __file__, "--cache", str(cache), "--sample",
                              str(args.sample), "--json"], env=env, check=True,
                             capture_output=True, text=True).stdout
        rows.append((f"reference {args.reference}", json.loads(out.splitlines()[-1])))
    rows.append(("this tree", time_bounds(tasks)))
    print(f"Machine: {describe()}; load average "
          f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min) at the end.\n")
    print(f"Command: `{' '.join([Path(sys.executable).name] + sys.argv)}`\n")
    r0 = rows[-1][1]
    print(f"{int(r0['townships'])} townships, {int(r0['units']):,} 台区 (cache {cache}).\n")
    print("| code | CPU s | bound km | value km | gap |")
    print("|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['cpu_s']:.2f} | {r['bound_m'] / 1000:,.1f} | "
              f"{r['value_m'] / 1000:,.1f} | {r['gap']:.4f} |")
    if args.curve:
        print()
        curve(tasks)


if __name__ == "__main__":
    main()
