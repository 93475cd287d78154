"""``gridplan wallmap``: a print-ready wall map of one station from a written plan."""

from __future__ import annotations

from pathlib import Path

import click

from . import options


@click.command("wallmap")
@click.argument("plan_path", metavar="PLAN", type=click.Path(exists=True, path_type=Path))
@click.option("--station", "station", required=True, help="Station id (or name) to draw.")
@click.option("--size", type=click.Choice(["A0", "A1", "A2", "A3", "A4"], case_sensitive=False), default="A1",
              show_default=True, help="Paper size.")
@click.option("--orientation", type=click.Choice(["landscape", "portrait"]), default="landscape",
              show_default=True)
@click.option("--dpi", type=int, default=300, show_default=True, help="Resolution of PNG output.")
@click.option("--lang", "language", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file: .pdf, .png or .svg. An existing file is replaced only if gridplan "
                   "wrote it and it is unchanged since (or with --force).")
@click.option("--force", is_flag=True,
              help="Replace an existing --out file even if gridplan did not write it.")
@options.verbosity
@options.quiet
@options.handle_errors
def wallmap(plan_path: Path, station: str, size: str, orientation: str, dpi: int, language: str,
            out: Path, force: bool, verbose, quiet) -> None:
    """Draw the wall map (墙图) of one station of PLAN (a plan.gpkg or its folder)."""
    from ..files import open_output_file

    options.setup_logging(verbose, quiet)
    if out.suffix.lower() not in (".pdf", ".png", ".svg"):
        raise click.BadParameter("the file name must end in .pdf, .png or .svg", param_hint="--out")
    target = open_output_file(out, command="gridplan wallmap", inputs=[plan_path], force=force)
    try:
        path = _draw(plan_path, station, target, size=size, orientation=orientation, dpi=dpi,
                     language=language)
    except BaseException:
        target.close(failed=True)
        raise
    target.close()
    if not quiet:
        click.echo(f"墙图已生成 / wall map written: {path}")


def _draw(plan_path: Path, station: str, target, *, size: str, orientation: str, dpi: int,
          language: str) -> Path:
    from ..pipeline import read_plan
    from ..render.wallmap import render_wallmap

    p = read_plan(plan_path)
    st = p.county.stations
    match = st[(st["station_id"].astype(str) == station) | (st["name"].astype(str) == station)]
    if match.empty:
        known = "、".join(f"{r.station_id}（{r.name}）" for r in st.itertuples())
        raise click.BadParameter(f"no station {station!r} in the plan; stations: {known}", param_hint="--station")
    path = render_wallmap(p, station_id=str(match["station_id"].iloc[0]), size=size.upper(),
                          orientation=orientation, out=target, dpi=dpi, language=language)
    return Path(path)


COMMANDS = [wallmap]
