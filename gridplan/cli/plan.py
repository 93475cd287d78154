"""``gridplan plan``: plan one county folder."""

from __future__ import annotations

from pathlib import Path

import click

from . import options
from ._run import run_plan


@click.command("plan")
@click.argument("county_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: maps/<county folder name>).")
@options.coords
@click.option("--capacity", type=float, default=None, help="Maximum workload per manager (grid).")
@click.option("--workload", default=None,
              help="Workload of a 台区: customers, transformers, capacity or e.g. 'customers + 20*transformers'.")
@click.option("--tolerance", type=float, default=None, help="Allowed workload deviation from the mean (0.05 = ±5%).")
@click.option("--scope", type=click.Choice(["township", "station"]), default=None,
              help="Grids stay inside a township (default) or inside a station.")
@click.option("--segment-cap-km", type=float, default=None, help="Maximum 10 kV segment length (km).")
@options.seed
@options.basemap
@click.option("--no-map", is_flag=True, help="Do not write map.html.")
@options.verbosity
@options.quiet
@options.handle_errors
def plan_cmd(county_dir: Path, out: Path | None, coords, capacity, workload, tolerance, scope,
             segment_cap_km, seed, basemap, no_map, verbose, quiet) -> None:
    """Plan COUNTY_DIR: service grids, managers, 10 kV segments, KPIs and maps.

    Writes plan.gpkg, roster.xlsx, kpi.json and map.html to --out (atomically: nothing is written
    when the input has problems; they are listed and the exit status is 2).
    """
    options.setup_logging(verbose, quiet)
    out = out or Path("maps") / county_dir.resolve().name
    run_plan(county_dir, out, coords=coords, basemap=basemap, map_html=not no_map,
             capacity=capacity, workload=workload, tolerance=tolerance, scope=scope,
             segment_cap_km=segment_cap_km, seed=seed)


COMMANDS = [plan_cmd]
