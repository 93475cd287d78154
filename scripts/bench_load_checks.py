"""What the outside-township and mixed-coordinate-system checks cost in ``load_county``.

Builds real-shaped counties from ``../shared/data/townships`` (tests/realcounty.py: real township
and village polygons of 雲林縣, seeded 台区 in the villages, islets, points outside), scales the
ledger to about ``--n`` 台区 (copies jittered by ~30 m), and times ``load_county`` with the
checks as shipped and with the GCJ-02-shift check switched off (median of ``--repeat`` runs).
Peak memory is this process's own ``getrusage(RUSAGE_SELF)``.

    python scripts/bench_load_checks.py --n 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

from _machine import describe
from realcounty import TOWNS, make_real_county

import gridplan.io.load as L
from gridplan import load_county


def _scaled(folder: Path, n: int, seed: int = 1) -> int:
    """Grow the GBK ledger of ``folder`` to about ``n`` rows; return the row count."""
    path = folder / "transformers.csv"
    df = pd.read_csv(path, encoding="gbk", dtype=str)
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(max(1, round(n / len(df)))):
        d = df.copy()
        d["台区编号"] = d["台区编号"] + f"_{k}"
        for col in ("经度", "纬度"):
            d[col] = (d[col].astype(float) + rng.normal(0, 0.0003, len(d))).round(7).astype(str)
        parts.append(d)
    out = pd.concat(parts, ignore_index=True)
    out.to_csv(path, index=False, encoding="gbk")
    return len(out)


def _median_load(folder: Path, repeat: int) -> tuple[float, int]:
    times, snapped = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        county = load_county(folder)
        times.append(time.perf_counter() - t0)
        snapped = len(county.snapped)
    return statistics.median(times), snapped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not TOWNS.exists():
        sys.exit(f"{TOWNS} not found: this benchmark needs ../shared/data/townships")
    with tempfile.TemporaryDirectory() as tmp:
        folder, _ = make_real_county(Path(tmp), "10009_雲林縣")
        rows = _scaled(folder, args.n)
        load_county(folder)  # warm-up (imports, pyproj database)
        with_check, snapped = _median_load(folder, args.repeat)
        orig = L._gcj_shifted_layers
        L._gcj_shifted_layers = lambda *a, **k: set()
        try:
            without, _ = _median_load(folder, args.repeat)
        finally:
            L._gcj_shifted_layers = orig
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {describe()}")
    print(f"load_county 雲林縣 real-shaped, {rows:,} 台区 rows, {snapped} snapped: "
          f"{with_check:.2f} s with the GCJ-02-shift check, {without:.2f} s without "
          f"(+{with_check - without:.2f} s; median of {args.repeat}); peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
