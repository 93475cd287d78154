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
@options.layer_coords
@click.option("--capacity", type=float, default=None, help="Maximum workload per manager (grid).")
@click.option("--workload", default=None,
              help="Workload of a 台区: customers, transformers, capacity or e.g. 'customers + 20*transformers'.")
@click.option("--tolerance", type=float, default=None, help="Allowed workload deviation from the mean (0.05 = ±5%).")
@click.option("--scope", type=click.Choice(["township", "station"]), default=None,
              help="Grids stay inside a township (default) or inside a station.")
@click.option("--segment-cap-km", type=float, default=None, help="Maximum 10 kV segment length (km).")
@click.option("--segment-weight", default=None,
              help="Weight of a 10 kV segment: km (default) or e.g. 'km + 0.02*poles + 0.3*transformers'.")
@click.option("--segment-cap", type=float, default=None,
              help="Maximum segment weight, in the units of --segment-weight (needed when it is not km).")
@click.option("--hv-owner", type=click.Choice(["lv", "separate"]), default=None,
              help="Who owns 10 kV segments: the grid's manager (lv, default) or the roster's HV staff (separate).")
@options.also_balance
@options.seed
@options.basemap
@click.option("--no-map", is_flag=True, help="Do not write map.html.")
@click.option("--current", default=None,
              help="Current plan to stay close to: a plan.gpkg (or its folder) or STORE.gpkg#N.")
@click.option("--stability", type=float, default=None,
              help="Weight of keeping 台区 with their current manager (default 1; 0 = replan freely).")
@click.option("--pins", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Pins and locks: CSV/XLSX (台区编号,工号,锁定网格) or pins.geojson from the map.")
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also save the plan as a new version in this plan store (GeoPackage; default: none).")
@click.option("--note", default="", help="Note kept with the version in --store.")
@options.force
@options.verbosity
@options.quiet
@options.handle_errors
def plan_cmd(county_dir: Path, out: Path | None, coords, layer_coords, capacity, workload, tolerance, scope,
             segment_cap_km, segment_weight, segment_cap, hv_owner, also_balance, seed, basemap, no_map, current, stability, pins, store, note,
             force, verbose, quiet) -> None:
    """Plan COUNTY_DIR: service grids, managers, 10 kV segments, KPIs and maps.

    Writes plan.gpkg, roster.xlsx, kpi.json and map.html to --out (atomically: nothing is written
    when the input has problems; they are listed and the exit status is 2). --out must be a new or
    empty folder or an earlier `gridplan plan` output (only its files are replaced; other files in
    it are kept), outside the county folder; it is checked and locked before planning.
    """
    options.setup_logging(verbose, quiet)
    out = out or Path("maps") / county_dir.resolve().name
    by_layer = options.parse_layer_coords(layer_coords)
    run_plan(county_dir, out, coords=coords, coords_by_layer=by_layer, basemap=basemap, map_html=not no_map,
             current=current, pins=pins, store=store, note=note, force=force,
             capacity=capacity, workload=workload, tolerance=tolerance, scope=scope,
             segment_cap_km=segment_cap_km, segment_weight=segment_weight, segment_cap=segment_cap,
             hv_owner=hv_owner, seed=seed, stability=stability, quiet=quiet,
             also_balance=options.parse_also_balance(also_balance))


COMMANDS = [plan_cmd]
