"""Cost of spreadsheet-safe cells (gridplan/_cells.py) against plain writing, side by side in one run.

Writes the roster's per-台区 sheet shape (11 columns) for N rows, 1% of the names formula-like,
three ways each for XLSX (openpyxl cell by cell, as roster.xlsx) and CSV (pandas): plain, and
through the safe helpers. Peak memory is this process's own getrusage(RUSAGE_SELF).

Usage::

    .venv/bin/python scripts/bench_cells.py --rows 10000 --repeat 3

Prints a markdown table to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from _machine import describe

from gridplan.cells import write_csv, write_xlsx_cell


def table(rows: int, seed: int = 0) -> pd.DataFrame:
    """A per-台区 table like roster.xlsx's 台区明细 sheet."""
    rng = np.random.default_rng(seed)
    names = np.array([f"{i}号台区" for i in range(rows)], dtype=object)
    evil = rng.choice(rows, size=max(1, rows // 100), replace=False)
    names[evil] = '=HYPERLINK("http://x","y")'
    return pd.DataFrame({
        "台区编号": [f"TQ{i:06d}" for i in range(rows)], "台区名称": names,
        "乡镇": rng.choice(["城关镇", "河口乡", "新集镇"], rows), "村": rng.choice(["东村", "西村"], rows),
        "户数": rng.integers(20, 400, rows), "容量(kVA)": rng.choice([100.0, 200.0, 315.0, 400.0], rows),
        "所属线路": rng.choice(["F1", "F2"], rows), "线段": rng.choice(["F1-1", "F1-2"], rows),
        "网格编号": rng.choice(["G1", "G2", "G3"], rows), "台区经理": rng.choice(["张三", "李四"], rows),
        "联系电话": rng.choice(["13800000001", "13800000002"], rows)})


def _xlsx(df: pd.DataFrame, path: Path, *, safe: bool) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    for i, row in enumerate(df.itertuples(index=False), 1):
        for j, val in enumerate(row, 1):
            if hasattr(val, "item"):
                val = val.item()
            if safe:
                write_xlsx_cell(ws, i, j, val)
            else:
                ws.cell(row=i, column=j, value=val)
    wb.save(path)


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    df = table(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        res = {
            "XLSX plain (ws.cell)": timed(lambda: _xlsx(df, out / "a.xlsx", safe=False), args.repeat),
            "XLSX safe (write_xlsx_cell)": timed(lambda: _xlsx(df, out / "b.xlsx", safe=True), args.repeat),
            "CSV plain (DataFrame.to_csv)": timed(lambda: df.to_csv(out / "a.csv", index=False,
                                                                    encoding="utf-8-sig"), args.repeat),
            "CSV safe (write_csv)": timed(lambda: write_csv(df, out / "b.csv"), args.repeat),
        }
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {describe()}")
    print(f"command: python scripts/bench_cells.py --rows {args.rows} --repeat {args.repeat}\n")
    print("| writer | seconds (best of repeats) | vs plain |")
    print("|---|---:|---:|")
    plain = {"XLSX": res["XLSX plain (ws.cell)"], "CSV": res["CSV plain (DataFrame.to_csv)"]}
    for name, sec in res.items():
        print(f"| {name} | {sec:.3f} | {sec / plain[name.split()[0]]:.2f}× |")
    print(f"\npeak memory (this process, getrusage): {peak:.0f} MB")


if __name__ == "__main__":
    main()
