"""``gridplan wallmap``: a print-ready wall map of one station from a written plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..pipeline import Plan
from ..render.wallmap import render_wallmap
from . import options


@click.command("wallmap")
@options.station_print_options(
    station_help="Station id (or name) to draw.", sizes=("A0", "A1", "A2", "A3", "A4"),
    default_size="A1", size_help="Paper size.",
    out_help="Output file: .pdf, .png or .svg. An existing file is replaced only if gridplan "
             "wrote it and it is unchanged since (or with --force).",
    between=(click.option("--orientation", type=click.Choice(["landscape", "portrait"]),
                          default="landscape", show_default=True),
             click.option("--dpi", type=int, default=300, show_default=True,
                          help="Resolution of PNG output."),
             click.option("--lang", "language", type=click.Choice(["zh", "en"]), default="zh",
                          show_default=True)))
@options.verbosity
@options.quiet
@options.handle_errors
def wallmap(plan_path: Path, station: str, size: str, orientation: str, dpi: int, language: str,
            out: Path, force: bool, verbose: int, quiet: bool) -> None:
    """Draw the wall map (墙图) of one station of PLAN (a plan.gpkg or its folder)."""
    options.setup_logging(verbose, quiet)
    if out.suffix.lower() not in (".pdf", ".png", ".svg"):
        raise click.BadParameter("the file name must end in .pdf, .png or .svg", param_hint="--out")

    def draw(p: Plan, station_id: str, target: Any) -> Any:
        return render_wallmap(p, station_id=station_id, size=size.upper(), orientation=orientation,
                              out=target, dpi=dpi, language=language)

    path = options.write_station_print(out, command="gridplan wallmap", plan_path=plan_path,
                                       force=force, draw=draw, station=station)
    if not quiet:
        click.echo(f"墙图已生成 / wall map written: {path}")


COMMANDS = [wallmap]
