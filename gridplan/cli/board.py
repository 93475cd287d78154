"""``gridplan board``: the service notice board (网格化服务公示牌) of one station, as a PDF."""

from __future__ import annotations

from pathlib import Path

import click

from . import options


@click.command("board")
@click.argument("plan_path", metavar="PLAN", type=click.Path(exists=True, path_type=Path))
@click.option("--station", "station", required=True, help="Station id (or name).")
@click.option("--size", type=click.Choice(["A4", "A3"], case_sensitive=False), default="A4",
              show_default=True, help="Paper size (portrait): A4 holds 6 grids a page, A3 9.")
@click.option("--photos", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of managers' photos named by 工号, e.g. M0042.jpg.")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file (.pdf). An existing file is replaced only if gridplan wrote it and "
                   "it is unchanged since (or with --force).")
@click.option("--force", is_flag=True,
              help="Replace an existing --out file even if gridplan did not write it.")
@options.verbosity
@options.quiet
@options.handle_errors
def board(plan_path: Path, station: str, size: str, photos: Path | None, out: Path, force: bool,
          verbose, quiet) -> None:
    """Make the service notice board (公示牌) of one station of PLAN (a plan.gpkg or its folder)."""
    from ..files import open_output_file

    options.setup_logging(verbose, quiet)
    target = open_output_file(out, command="gridplan board", inputs=[plan_path], force=force)
    try:
        path = _draw(plan_path, station, target, size=size, photos=photos)
    except BaseException:
        target.close(failed=True)
        raise
    target.close()
    if not quiet:
        click.echo(f"公示牌已生成 / notice board written: {path}")


def _draw(plan_path: Path, station: str, target, *, size: str, photos: Path | None) -> Path:
    from ..pipeline import read_plan
    from ..render.board import render_board

    p = read_plan(plan_path)
    st = p.county.stations
    match = st[(st["station_id"].astype(str) == station) | (st["name"].astype(str) == station)]
    if match.empty:
        known = "、".join(f"{r.station_id}（{r.name}）" for r in st.itertuples())
        raise click.BadParameter(f"no station {station!r} in the plan; stations: {known}",
                                 param_hint="--station")
    path = render_board(p, station_id=str(match["station_id"].iloc[0]), size=size.upper(),
                        photos=photos, out=target)
    return Path(path)


COMMANDS = [board]
