"""End-to-end timing of `gridplan plan` (load, plan, write the four outputs), stage by stage.

Usage::

    .venv/bin/python scripts/bench_end_to_end.py                     # geodata/sample
    .venv/bin/python scripts/bench_end_to_end.py --transformers 10000  # a generated county too

Prints a markdown table (seconds per stage, peak memory) to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _counties import bench_counties  # scripts/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]


def run_one(folder: Path, out: Path) -> dict[str, float]:
    """Time each step of planning ``folder`` into ``out`` in this process."""
    import gridplan
    from gridplan.pipeline import STAGES

    times: dict[str, float] = {}
    t0 = time.perf_counter()
    county = gridplan.load_county(folder)
    times["load + validate"] = time.perf_counter() - t0
    last = [time.perf_counter(), None]

    def progress(stage: str, i: int, n: int) -> None:
        now = time.perf_counter()
        if last[1] is not None:
            times[last[1]] = now - last[0]
        last[:] = [now, stage]

    p = gridplan.plan(county, progress=progress)
    times[last[1]] = time.perf_counter() - last[0]
    t1 = time.perf_counter()
    p.to_file(out)
    times["write plan.gpkg, roster.xlsx, kpi.json, map.html"] = time.perf_counter() - t1
    times["total"] = time.perf_counter() - t0
    times["peak MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times["台区"] = len(county.transformers)
    times["grids"] = len(p.grids)
    _ = STAGES
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transformers", type=int, nargs="*", default=[],
                    help="also generate and plan counties of these sizes")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folders = bench_counties(Path(tmp), args.transformers)
        rows = []
        for label, folder in folders:
            # a fresh process per county, so imports and peak memory are not shared
            code = ("import json,sys; sys.path.insert(0, %r); from bench_end_to_end import run_one; "
                    "from pathlib import Path; print(json.dumps(run_one(Path(%r), Path(%r))))"
                    % (str(ROOT / "scripts"), str(folder), str(Path(tmp) / ("out_" + folder.name))))
            t = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
            wall = time.perf_counter() - t
            import json
            rows.append((label, json.loads(res.stdout.strip().splitlines()[-1]), wall))
    keys = [k for k in rows[0][1] if k not in ("peak MB", "台区", "grids", "total")]
    from _machine import describe

    print(f"Machine: {describe()}, load average {os.getloadavg()[0]:.1f}")
    print()
    print("| county | 台区 | grids | " + " | ".join(keys) + " | total s | process wall s (with imports) | peak MB |")
    print("|---" * (len(keys) + 6) + "|")
    for label, r, wall in rows:
        cells = " | ".join(f"{r.get(k, 0):.2f}" for k in keys)
        print(f"| {label} | {int(r['台区'])} | {int(r['grids'])} | {cells} | {r['total']:.2f} | {wall:.2f} | {r['peak MB']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
