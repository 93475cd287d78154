"""Time what-if station merges on a county folder (default: the committed sample).

Measures: loading, the before-plan, travel times (straight line, and over a synthetic 1 km road
grid covering the county), ranking every neighbouring pair (``merge_candidates``, the before-plan
included) and one full merge scenario with every output file (maps included). Prints a Markdown
section for docs/benchmarks.md::

    .venv/bin/python scripts/bench_merge.py                      # geodata/sample
    .venv/bin/python scripts/bench_merge.py /tmp/big --road-step 2000
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

import gridplan
from gridplan.metrics.response import travel_times
from gridplan.scenarios import merge_candidates, merge_stations


def road_grid(county, step_m: float) -> gpd.GeoDataFrame:
    """Straight roads every ``step_m`` metres across the county (vertices at every crossing)."""
    x0, y0, x1, y1 = county.townships.total_bounds
    xs = np.arange(x0, x1 + step_m, step_m)
    ys = np.arange(y0, y1 + step_m, step_m)
    lines = [shapely.LineString([(x, y) for y in ys]) for x in xs]
    lines += [shapely.LineString([(x, y) for x in xs]) for y in ys]
    speed = [40.0 if i % 5 == 0 else np.nan for i in range(len(lines))]  # every 5th road faster
    return gpd.GeoDataFrame({"speed_kmh": speed}, geometry=lines, crs=county.crs)


def timed(f, *a, **k):
    t = time.perf_counter()
    out = f(*a, **k)
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("county", nargs="?", default="geodata/sample")
    ap.add_argument("--road-step", type=float, default=1000.0, help="synthetic road spacing (m)")
    ap.add_argument("--slow-kmh", type=float, default=8.0,
                    help="speed of the service-point run (low enough that 台区 fall beyond commitment)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    county, t_load = timed(gridplan.load_county, args.county)
    _, t_cands_cold = timed(merge_candidates, county)
    before, t_plan = timed(gridplan.plan, county)
    cands, t_cands = timed(merge_candidates, county, before=before)
    _, t_tt = timed(travel_times, county)
    roads = road_grid(county, args.road_step)
    with_roads = gridplan.County(**{**county.__dict__, "roads": roads})
    tt_road, t_tt_road = timed(travel_times, with_roads)
    best = cands.iloc[0]
    sc, t_merge = timed(merge_stations, county, [best["into"], best["absorbed"]], before=before)
    with tempfile.TemporaryDirectory() as tmp:
        _, t_write = timed(sc.to_file, Path(tmp) / "m", basemap="none")
    # a merge that breaks the commitment at a lower speed: service points (set covering + MCLP)
    slow = gridplan.County(**{**county.__dict__, "params": county.params.replace(speed_kmh=args.slow_kmh)})
    sc_slow, t_slow = timed(merge_stations, slow, [best["into"], best["absorbed"]], before=before,
                            service_points=2)
    sp = sc_slow.service_points

    print("## What-if merges\n")
    print(f"`.venv/bin/python scripts/bench_merge.py {args.county}` — {county.summary()}; "
          f"{len(cands)} neighbouring station pairs; {os.cpu_count()} cores, one run.\n")
    print("| step | seconds |\n|---|---|")
    print(f"| load county | {t_load:.2f} |")
    print(f"| **rank every neighbouring pair, before-plan included** (`merge_candidates(county)`) "
          f"| **{t_cands_cold:.2f}** |")
    print(f"| before-plan alone (`plan`) | {t_plan:.2f} |")
    print(f"| rank every pair given the before-plan | {t_cands:.2f} "
          f"({t_cands / max(len(cands), 1):.2f} per pair) |")
    print(f"| travel times, straight line ({len(county.stations)} stations × "
          f"{len(county.transformers)} 台区) | {t_tt:.3f} |")
    print(f"| travel times over a synthetic {args.road_step:.0f} m road grid ({len(roads)} roads; "
          f"{int(tt_road.via_road.any(axis=1).sum())} 台区 reached by road) | {t_tt_road:.2f} |")
    print(f"| one merge scenario ({best['absorbed']} → {best['into']}, given the before-plan) | {t_merge:.2f} |")
    print(f"| writing its outputs (comparison, report, compare.html, before/ and after/ plans with maps) "
          f"| {t_write:.2f} |")
    print(f"| one merge at {args.slow_kmh:g} km/h with service points (set covering"
          f"{'' if sp is None else f' over {sp.candidates} sites for {sp.beyond_before} 台区 beyond: {len(sp.sites)} points'}"
          f" + maximal coverage, K = 2) | {t_slow:.2f} |")
    import resource

    print(f"\nPeak memory of this process (getrusage RUSAGE_SELF): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB.")
    print("\nThe candidates reuse the before-plan and one travel-time matrix: with the township scope "
          "a merge keeps the grids and reassigns only the merged station's managers; no map is written.")


if __name__ == "__main__":
    main()
