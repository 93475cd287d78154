"""``gridplan demo``: plan the shipped sample county."""

from __future__ import annotations

from pathlib import Path

import click

from . import options
from ._run import run_plan


def sample_dir() -> Path:
    """The sample county shipped with gridplan (``geodata/sample`` of the source tree)."""
    here = Path(__file__).resolve().parents[2] / "geodata" / "sample"
    if not here.exists():
        raise click.ClickException(f"sample county not found at {here}: run gridplan from its source checkout")
    return here


@click.command("demo")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("maps/sample"),
              show_default=True, help="Output folder.")
@options.basemap
@options.force
@options.verbosity
@options.quiet
@options.handle_errors
def demo(out: Path, basemap, force, verbose, quiet) -> None:
    """Plan the synthetic sample county (geodata/sample) into maps/sample/."""
    options.setup_logging(verbose, quiet)
    run_plan(sample_dir(), out, coords=None, basemap=basemap, force=force, quiet=quiet, command="gridplan demo")
    click.secho(f"\n打开地图 / open the map: {(out / 'map.html').resolve()}", fg="green")


COMMANDS = [demo]
