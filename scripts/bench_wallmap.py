"""Time the A1 wall map (墙图) of every station of a county and record it in docs/benchmarks.md.

Plans the county once, then renders each station's A1 landscape map to PDF and to a 300-dpi PNG,
``--repeat`` times each, and writes the best and median seconds to the "## Wall maps" section of
docs/benchmarks.md (that section only; it is replaced if present, appended otherwise).

    .venv/bin/python scripts/bench_wallmap.py                       # geodata/sample, or a fresh one
    .venv/bin/python scripts/bench_wallmap.py --county /tmp/wm/sample --repeat 3 --no-write
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Wall maps"
log = logging.getLogger("bench_wallmap")


def county_folder(arg: str | None, tmp: Path) -> Path:
    """The county to plan: ``--county``, else geodata/sample, else a generated sample (seed 7)."""
    if arg:
        return Path(arg)
    if (ROOT / "geodata" / "sample").is_dir():
        return ROOT / "geodata" / "sample"
    out = tmp / "sample"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_county.py"), "--out",
                    str(out), "--seed", "7"], check=True, capture_output=True)
    return out


def time_station(p, station: str, out_dir: Path, repeat: int) -> dict[str, list[float]]:
    from gridplan.render.wallmap import render_wallmap

    times: dict[str, list[float]] = {"pdf": [], "png": [], "pdf_cpu": [], "png_cpu": []}
    for _ in range(repeat):
        for ext in ("pdf", "png"):
            t0, c0 = time.perf_counter(), time.process_time()
            render_wallmap(p, station_id=station, size="A1", out=out_dir / f"{station}.{ext}",
                           date="2024-01-01")
            times[ext].append(time.perf_counter() - t0)
            times[f"{ext}_cpu"].append(time.process_time() - c0)
    return times


def section_text(folder: Path, p, rows: list[tuple[str, int, dict[str, list[float]]]],
                 repeat: int) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [SECTION, "",
             (f"`scripts/bench_wallmap.py`: A1 landscape wall map of each station of `{folder.name}` "
             f"({len(p.transformers)} 台区, {len(p.grids)} grids), best / median of {repeat} "
             f"run(s); {platform.python_version()}, {os.cpu_count()} cores, load average "
             f"{load:.1f} at the end. Target: ≤ 20 s per A1 map. CPU s: the process's own CPU time "
             "(steadier than wall time on a shared machine)."), "",
             ("| station | grids | PDF best s | PDF median s | PDF best CPU s | PNG 300 dpi best s | "
             "PNG median s | PNG best CPU s |"),
             "|---|---|---|---|---|---|---|---|"]
    for st, n, t in rows:
        lines.append(f"| {st} | {n} | {min(t['pdf']):.2f} | {statistics.median(t['pdf']):.2f} | "
                     f"{min(t['pdf_cpu']):.2f} | {min(t['png']):.2f} | "
                     f"{statistics.median(t['png']):.2f} | {min(t['png_cpu']):.2f} |")
    return "\n".join(lines) + "\n"


def write_section(text: str, path: Path) -> None:
    """Replace the "## Wall maps" section of ``path`` (up to the next "## "), or append it."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    start = old.find(SECTION + "\n")
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        nxt = old.find("\n## ", start + len(SECTION))
        new = old[:start] + text + ("" if nxt < 0 else "\n" + old[nxt + 1:])
    path.write_text(new, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--county", help="county folder (default: geodata/sample or a generated one)")
    ap.add_argument("--stations", nargs="*", help="station ids (default: all)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    import gridplan

    with tempfile.TemporaryDirectory() as tmp:
        folder = county_folder(args.county, Path(tmp))
        t0 = time.perf_counter()
        p = gridplan.plan(gridplan.load_county(folder))
        log.info("planned %s in %.1f s", folder, time.perf_counter() - t0)
        stations = args.stations or sorted(p.grids["station_id"].astype(str).unique())
        rows = []
        for st in stations:
            t = time_station(p, st, Path(tmp), args.repeat)
            n = int((p.grids["station_id"].astype(str) == st).sum())
            log.info("%s (%d grids): PDF %.2f s (CPU %.2f), PNG %.2f s (CPU %.2f)", st, n,
                     min(t["pdf"]), min(t["pdf_cpu"]), min(t["png"]), min(t["png_cpu"]))
            rows.append((st, n, t))
        text = section_text(folder, p, rows, args.repeat)
    print(text)
    if not args.no_write:
        write_section(text, ROOT / "docs" / "benchmarks.md")


if __name__ == "__main__":
    main()
