"""Cost and outcome of the reach repair and the service groups (issue #16 parts 5 and 6).

For each county (the shipped sample, then generated counties of the given sizes), in a fresh
process: the plan without either option, then the two stages timed on their own on that plan's
grids (``people.reach.apply_reach`` with ``max_travel_min``; ``people.assign.service_groups`` with
``groups_per_station``), with what they achieve: 台区 moved and still beyond reach, group CV and
non-contiguous groups. Peak memory is the process's own ``getrusage(RUSAGE_SELF)``.

Usage::

    .venv/bin/python scripts/bench_groups.py --transformers 10000 20000 --minutes 20 --groups 3

Prints a markdown table to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _counties import bench_counties  # scripts/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]


def run_one(folder: Path, minutes: float, groups: int) -> dict[str, float]:
    """Plan ``folder``, then time the reach and groups stages on the result (this process)."""
    import gridplan
    from gridplan.lv import territory
    from gridplan.lv.groups import groups_kpi
    from gridplan.people.assign import service_groups
    from gridplan.people.reach import apply_reach

    county = gridplan.load_county(folder)
    t0 = time.perf_counter()
    p = gridplan.plan(county)
    out: dict[str, float] = {"plan s": time.perf_counter() - t0, "台区": len(p.transformers),
                             "grids": len(p.grids)}
    tr = p.transformers
    cells, edges = territory.cells_and_edges(county, tr, scope=p.params.scope)
    prm = p.params.replace(max_travel_min=minutes)
    t1 = time.perf_counter()
    tr2, _grids, _man, kpi, _notes = apply_reach(county, tr, p.grids, p.managers, params=prm,
                                                 edges=edges, cells=cells)
    out["reach s"] = time.perf_counter() - t1
    s = kpi["summary"] if kpi else {}
    out.update({"moved": s.get("moved_transformers", 0), "beyond": s.get("transformers_beyond", 0),
                "grids beyond": s.get("grids_beyond", 0)})
    prm = p.params.replace(groups_per_station=groups)
    t2 = time.perf_counter()
    g, _tr, _notes = service_groups(p.grids, tr2, county, params=prm)
    out["groups s"] = time.perf_counter() - t2
    k = groups_kpi(g, prm)["county"]
    out.update({"groups": k["groups"], "mean station CV": k["mean_station_cv"],
                "noncontiguous groups": k["noncontiguous_groups"]})
    out["peak MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transformers", type=int, nargs="*", default=[],
                    help="also generate and plan counties of these sizes")
    ap.add_argument("--minutes", type=float, default=20.0, help="max_travel_min of the reach stage")
    ap.add_argument("--groups", type=int, default=3, help="groups_per_station of the groups stage")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = bench_counties(Path(tmp), args.transformers)
        for label, folder in folders:
            code = ("import json,sys; sys.path.insert(0, %r); from bench_groups import run_one; "
                    "from pathlib import Path; print(json.dumps(run_one(Path(%r), %r, %r)))"
                    % (str(ROOT / "scripts"), str(folder), args.minutes, args.groups))
            res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
            rows.append((label, json.loads(res.stdout.strip().splitlines()[-1])))
    from _machine import describe

    print(f"Machine: {describe()}, load average {os.getloadavg()[0]:.1f}")
    print(f"max_travel_min = {args.minutes:g}, groups_per_station = {args.groups}")
    print()
    keys = ["台区", "grids", "plan s", "reach s", "moved", "beyond", "grids beyond", "groups s", "groups",
            "mean station CV", "noncontiguous groups", "peak MB"]
    print("| county | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for label, r in rows:
        cells = " | ".join(f"{r[k]:.2f}" if isinstance(r[k], float) and not float(r[k]).is_integer()
                           else f"{r[k]:.0f}" for k in keys)
        print(f"| {label} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
