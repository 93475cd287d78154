"""Benchmark gridplan on different dependency sets (pandas 2 / pandas 3 / the lower bounds), and
the cost of the coverage and input KPIs, side by side in one run.

    python3 scripts/bench_deps.py --python .venv/bin/python --python .venv-pandas3/bin/python \\
        --python .venv-lower/bin/python [--county geodata/sample] [--runs 1]

Each interpreter runs the same child (this file with ``--child``) in a fresh process: load the
county, plan it, then time :func:`gridplan.metrics.kpi.coverage_kpis` and :func:`gridplan.metrics.kpi.input_kpis`
again on the finished plan, and write the outputs (map included) to a temporary folder. The
child reports its own peak memory (``getrusage(RUSAGE_SELF)``) and the versions it ran on. The
runs are sequential, so the ratios between interpreters are comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(county: str) -> dict:
    """Time one load + plan + KPIs + write in this process; return the figures."""
    import resource
    from importlib.metadata import version

    sys.path.insert(0, str(ROOT))  # this checkout's gridplan, whatever the interpreter has installed
    import gridplan
    from gridplan.metrics import kpi

    t0 = time.perf_counter()
    c = gridplan.load_county(county)
    t1 = time.perf_counter()
    p = gridplan.plan(c)
    t2 = time.perf_counter()
    kpi.coverage_kpis(p)
    kpi.input_kpis(p)
    t3 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        p.to_file(Path(tmp) / "out")
    t4 = time.perf_counter()
    return {"versions": {n: version(n) for n in ("pandas", "numpy", "geopandas", "shapely", "scipy")},
            "transformers": len(p.transformers), "grids": len(p.grids),
            "load_s": round(t1 - t0, 2), "plan_s": round(t2 - t1, 2),
            "coverage_input_kpis_s": round(t3 - t2, 3), "write_s": round(t4 - t3, 2),
            "total_s": round(t4 - t0 - (t3 - t2), 2),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
            "coverage": p.kpi["coverage"]["county"]}


def main(argv: list[str] | None = None) -> int:
    """Run the child under every ``--python`` and print one table row each."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", action="append", default=[], help="interpreter (repeatable)")
    ap.add_argument("--county", default=str(ROOT / "geodata" / "sample"))
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        sys.stdout.write(json.dumps(child(args.county)) + "\n")
        return 0
    sys.path.insert(0, str(ROOT / "scripts"))
    from _machine import describe

    print(f"machine: {describe()}")
    print(f"county: {args.county}")
    print("| python | pandas | numpy | load s | plan s | coverage+input KPIs s | write s | total s | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for py in args.python or [sys.executable]:
        for _ in range(args.runs):
            out = subprocess.run([py, __file__, "--child", "--county", args.county], cwd=ROOT,
                                 capture_output=True, text=True, check=False)
            if out.returncode != 0:
                print(f"| {py} | failed: {out.stderr.strip().splitlines()[-1:]} |")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            v = r["versions"]
            print(f"| {py} | {v['pandas']} | {v['numpy']} | {r['load_s']} | {r['plan_s']} | "
                  f"{r['coverage_input_kpis_s']} | {r['write_s']} | {r['total_s']} | {r['peak_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
