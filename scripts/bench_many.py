"""Benchmark ``gridplan plan-many``: counties per minute with 1 and 2 Dask workers.

Generates a synthetic province with ``scripts/make_sample_county.py`` (once; reused when present),
plans it end to end (maps included unless ``--no-maps``) with each worker count into a fresh output
folder, and prints a Markdown table: wall time, counties per minute, speed-up, scaling efficiency
(speed-up / workers) and peak resident memory per worker (``ru_maxrss`` measured in the tasks).

Usage::

    python scripts/bench_many.py --counties 100 --transformers 5000 --workers 1 2 \\
        --work /tmp/bench_many          # the full benchmark (docs/benchmarks.md)
    python scripts/bench_many.py --counties 6 --transformers 500 --workers 1 2   # quick check
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridplan.scale.many import plan_many


def machine() -> str:
    """One line describing the machine (see scripts/_machine.py)."""
    from _machine import describe

    return describe()


def _spin(n: int) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i
    return time.perf_counter() - t0


def calibrate(n: int = 30_000_000) -> float:
    """The speed-up two processes of pure Python arithmetic get on this machine right now.

    On an idle 2-core machine this is ~2.0; on a machine shared with other jobs it is lower, and
    no Dask run can scale better than it.
    """
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_spin, [1000, 1000]))  # start the processes
        t0 = time.perf_counter()
        list(pool.map(_spin, [n]))
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        list(pool.map(_spin, [n, n]))
        two = time.perf_counter() - t0
    return round(2 * one / two, 2)


def generate(province: Path, counties: int, transformers: int, seed: int) -> None:
    """Write the synthetic province unless a complete one is already there."""
    marker = province / ".bench-complete"
    if marker.exists() and marker.read_text() == f"{counties} {transformers} {seed}":
        return
    shutil.rmtree(province, ignore_errors=True)
    cmd = [sys.executable, str(ROOT / "scripts" / "make_sample_county.py"), "--counties", str(counties),
           "--transformers", str(transformers), "--out", str(province)]
    if seed:
        cmd += ["--seed", str(seed)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    marker.write_text(f"{counties} {transformers} {seed}")
    print(f"generated {counties} counties x {transformers} 台区 in {time.perf_counter() - t0:.0f} s",
          flush=True)


def run(province: Path, out: Path, workers: int, maps: bool) -> dict:
    """Plan the province from scratch with ``workers`` local worker processes."""
    shutil.rmtree(out, ignore_errors=True)
    done = []

    def progress(res, i, n):
        done.append(res)
        if i % 10 == 0 or i == n:
            print(f"  [{workers} worker(s)] {i}/{n} counties, last {res.county} {res.seconds:.1f} s",
                  flush=True)

    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    result = plan_many(province, out, workers=workers, progress=progress, maps=maps)
    wall = time.perf_counter() - t0
    peaks = result.peak_memory_by_worker()
    secs = [c.seconds for c in result.planned]
    cpu = [c.cpu_seconds for c in result.planned]
    return {"workers": workers, "wall_s": round(wall, 1), "counties": len(result.counties),
            "planned": len(result.planned), "failed": len(result.failed),
            "failures": [f"{c.county}: {c.error_type}: {c.error.splitlines()[0]}" for c in result.failed],
            "counties_per_min": round(len(result.counties) / wall * 60, 2),
            "task_s_mean": round(sum(secs) / len(secs), 2) if secs else None,
            "task_s_max": round(max(secs), 2) if secs else None,
            "task_cpu_s_mean": round(sum(cpu) / len(cpu), 2) if cpu else None,
            "task_cpu_s_total": round(sum(cpu), 1),
            "loadavg_1min_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)],
            "peak_rss_mb_per_worker": peaks}


def table(runs: list[dict]) -> str:
    """Markdown table of the runs, speed-up and efficiency relative to the first (fewest workers)."""
    runs = sorted(runs, key=lambda r: r["workers"])
    base = runs[0]
    lines = [("| workers | wall time | counties/min | speed-up | scaling efficiency | "
              "mean task (wall / CPU) | peak memory per worker | failed | load avg start→end | "
              "machine 2-process speed-up before/after |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        speed = base["wall_s"] / r["wall_s"]
        eff = speed / (r["workers"] / base["workers"])
        peak = max(r["peak_rss_mb_per_worker"].values(), default=0)
        lines.append(f"| {r['workers']} | {r['wall_s'] / 60:.1f} min | {r['counties_per_min']:.1f} | "
                     f"{speed:.2f}× | {eff:.0%} | {r['task_s_mean']} s / {r['task_cpu_s_mean']} s | "
                     f"{peak:.0f} MB | {r['failed']} | {r['loadavg_1min_start_end'][0]}→"
                     f"{r['loadavg_1min_start_end'][1]} | "
                     f"{'/'.join(str(x) for x in r.get('machine_speedup_2proc_before_after', ['—']))} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counties", type=int, default=100)
    ap.add_argument("--transformers", type=int, default=5000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_many"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-maps", action="store_true")
    ap.add_argument("--calibrate-only", action="store_true",
                    help="only measure the speed-up 2 CPU-bound processes get on this machine now")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.calibrate_only:
        print(f"2-process CPU speed-up available now: {calibrate()}x (load {os.getloadavg()[0]:.1f})")
        return
    import distributed  # noqa: F401 - configures its loggers on import; quiet them after that

    logging.getLogger("distributed").setLevel(logging.WARNING)

    province = args.work / f"province_{args.counties}x{args.transformers}"
    generate(province, args.counties, args.transformers, args.seed)
    runs = []
    for w in args.workers:  # in the order given (run the one that matters most first)
        print(f"planning with {w} worker(s) ...", flush=True)
        before = calibrate()
        runs.append(run(province, args.work / f"out_w{w}", w, maps=not args.no_maps))
        runs[-1]["machine_speedup_2proc_before_after"] = [before, calibrate()]
        print(json.dumps(runs[-1], ensure_ascii=False), flush=True)
        report = {"machine": machine(), "counties": args.counties, "transformers": args.transformers,
                  "maps": not args.no_maps, "runs": runs, "table": table(runs)}
        (args.work / "bench_many.json").write_text(json.dumps(report, ensure_ascii=False, indent=1))
    print(f"\nmachine: {report['machine']}")
    print(f"{args.counties} counties x {args.transformers} 台区, maps {'on' if not args.no_maps else 'off'}\n")
    print(report["table"])


if __name__ == "__main__":
    main()
