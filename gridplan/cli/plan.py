"""``gridplan plan``: plan one county folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from . import options
from ._run import run_plan


@click.command("plan")
@click.argument("county_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: maps/<county folder name>).")
@options.params_options()
@click.option("--no-map", is_flag=True, help="Do not write map.html.")
@click.option("--current", default=None,
              help="Current plan to stay close to: a plan.gpkg (or its folder) or STORE.gpkg#N.")
@click.option("--pins", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Pins and locks: CSV/XLSX (台区编号,工号,锁定网格) or pins.geojson from the map.")
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also save the plan as a new version in this plan store (GeoPackage; default: none).")
@click.option("--note", default="", help="Note kept with the version in --store.")
@options.force
@options.verbosity
@options.quiet
@options.handle_errors
def plan_cmd(county_dir: Path, out: Path | None, no_map: bool, current: str | None, pins: Path | None,
             store: Path | None, note: str, force: bool, verbose: int, quiet: bool,
             **params: Any) -> None:
    """Plan COUNTY_DIR: service grids, managers, 10 kV segments, KPIs and maps.

    Writes plan.gpkg, roster.xlsx, kpi.json and map.html to --out (atomically: nothing is written
    when the input has problems; they are listed and the exit status is 2). --out must be a new or
    empty folder or an earlier `gridplan plan` output (only its files are replaced; other files in
    it are kept), outside the county folder; it is checked and locked before planning.
    """
    options.setup_logging(verbose, quiet)
    out = out or Path("maps") / county_dir.resolve().name
    values = options.param_values(params)  # the options declared by Params (--capacity, ...)
    run_plan(county_dir, out, coords=values.pop("coords", None), basemap=values.pop("basemap", None),
             map_html=not no_map, current=current, pins=pins, store=store, note=note, force=force,
             quiet=quiet, **values)


COMMANDS = [plan_cmd]
