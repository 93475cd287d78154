"""Options shared by several commands, and the error handling every command uses."""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any, Callable

import click

from .._errors import GridplanError, InfeasibleError, InputError

#: Exit status for bad input (a problem the user can fix in their files or options).
EXIT_INPUT = 2

verbosity = click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
quiet = click.option("-q", "--quiet", is_flag=True, help="Only errors.")
seed = click.option("--seed", type=int, default=None, help="Random seed (default 0, or gridplan.toml).")
coords = click.option("--coords", default=None,
                      help="Input coordinate system: wgs84, cgcs2000, gk3[:zone], gcj02, bd09 or EPSG:nnnn.")
basemap = click.option("--basemap", type=click.Choice(["osm", "amap", "tianditu", "none"]),
                       default=None, help="Basemap of map.html (default osm; none = offline, no tiles).")


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Map -v/-q to the level of the ``gridplan`` logger."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("gridplan").setLevel(level)
    # Warnings of the libraries underneath (RuntimeWarning, FutureWarning, shapely, pyogrio) are
    # no message for the user: they go to the log, shown with -v only.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.WARNING if verbose and not quiet else logging.ERROR)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print a gridplan error as a readable message and exit with status 2 (input) or 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            click.secho("错误 / Error: the input has problems; nothing was written.", fg="red", err=True)
            click.echo(exc.format(), err=True)
            sys.exit(EXIT_INPUT)
        except InfeasibleError as exc:
            click.secho(f"无解 / Infeasible: {exc}", fg="red", err=True)
            sys.exit(EXIT_INPUT)
        except GridplanError as exc:
            click.secho(f"错误 / Error: {exc}", fg="red", err=True)
            sys.exit(1)

    return wrapper
