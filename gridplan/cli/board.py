"""``gridplan board``: the service notice board (网格化服务公示牌) of one station, as a PDF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..pipeline import Plan
from ..render.board import render_board
from . import options


@click.command("board")
@options.station_print_options(
    station_help="Station id (or name).", sizes=("A4", "A3"), default_size="A4",
    size_help="Paper size (portrait): A4 holds 6 grids a page, A3 9.",
    out_help="Output file (.pdf). An existing file is replaced only if gridplan wrote it and "
             "it is unchanged since (or with --force).",
    between=(click.option("--photos", type=click.Path(file_okay=False, path_type=Path), default=None,
                          help="Folder of managers' photos named by 工号, e.g. M0042.jpg."),))
@options.verbosity
@options.quiet
@options.handle_errors
def board(plan_path: Path, station: str, size: str, photos: Path | None, out: Path, force: bool,
          verbose: int, quiet: bool) -> None:
    """Make the service notice board (公示牌) of one station of PLAN (a plan.gpkg or its folder)."""
    options.setup_logging(verbose, quiet)

    def draw(p: Plan, station_id: str, target: Any) -> Any:
        return render_board(p, station_id=station_id, size=size.upper(), photos=photos, out=target)

    path = options.write_station_print(out, command="gridplan board", plan_path=plan_path,
                                       force=force, draw=draw, station=station)
    if not quiet:
        click.echo(f"公示牌已生成 / notice board written: {path}")


COMMANDS = [board]
