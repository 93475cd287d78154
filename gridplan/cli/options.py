"""Options shared by several commands, and the error handling every command uses."""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any, Callable

import click

from ..errors import GridplanError, InfeasibleError, InputError, Problem
from ..files import OutputError

#: Exit status for bad input (a problem the user can fix in their files or options).
EXIT_INPUT = 2

verbosity = click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
quiet = click.option("-q", "--quiet", is_flag=True, help="Only errors.")
seed = click.option("--seed", type=int, default=None, help="Random seed (default 0, or gridplan.toml).")
coords = click.option("--coords", default=None,
                      help="Input coordinate system: wgs84, cgcs2000, gk3[:zone], gcj02, bd09 or EPSG:nnnn "
                           "(wins over a file's lon/lat header such as CRS84; a projected header wins).")
layer_coords = click.option(
    "--layer-coords", "--coords-by-layer", "layer_coords", multiple=True, metavar="LAYER=SYSTEM",
    help="Coordinate system of one layer, e.g. --layer-coords transformers=gcj02 (repeat it, or "
         "separate with commas: townships=wgs84,transformers=gcj02). Wins over --coords, "
         "[input.coords_by_layer] of gridplan.toml and the file's own header.")


def parse_layer_coords(values: tuple[str, ...] | list[str] | None) -> dict[str, str] | None:
    """``("transformers=gcj02", "townships=wgs84,stations=gcj02")`` -> ``{layer: system}``.

    Raises
    ------
    gridplan.InputError
        An item that is not ``LAYER=SYSTEM`` (the layer names and systems are checked by the loader).
    """
    if not values:
        return None
    out: dict[str, str] = {}
    bad: list[str] = []
    for value in values:
        for item in str(value).split(","):
            item = item.strip()
            if not item:
                continue
            layer, sep, system = item.partition("=")
            if not sep or not layer.strip() or not system.strip():
                bad.append(item)
                continue
            out[layer.strip().lower()] = system.strip()
    if bad:
        raise InputError([Problem("--layer-coords", f"cannot read {', '.join(map(repr, bad))}",
                                  "write LAYER=SYSTEM, e.g. --layer-coords transformers=gcj02 "
                                  "(layers: townships, stations, transformers, feeders, switches, "
                                  "substations, managers, villages, barriers, roads)")])
    return out
also_balance = click.option(
    "--also-balance", default=None, metavar="NAME=TOL,...",
    help="Further measures to balance, each within its tolerance of the mean, e.g. "
         "'transformers=0.15,feeder_km=0.25' (customers, transformers, capacity, feeder_km, area).")


def parse_also_balance(value: str | None) -> dict[str, float] | None:
    """``"transformers=0.15,feeder_km=0.25"`` -> ``{"transformers": 0.15, "feeder_km": 0.25}``.

    Raises
    ------
    gridplan.InputError
        An item that is not ``NAME=NUMBER`` (names and ranges are checked with the parameters).
    """
    if value is None:
        return None
    out: dict[str, float] = {}
    bad: list[str] = []
    for item in str(value).split(","):
        name, sep, tol = item.strip().partition("=")
        try:
            out[name.strip().lower()] = float(tol)
        except ValueError:
            bad.append(item.strip())
            continue
        if not sep or not name.strip():
            bad.append(item.strip())
    if bad:
        raise InputError([Problem("--also-balance", f"cannot read {', '.join(map(repr, bad))}",
                                  "write NAME=TOLERANCE items joined by commas, e.g. "
                                  "--also-balance transformers=0.15,feeder_km=0.25")])
    return out


force = click.option("--force", is_flag=True,
                     help="Replace files gridplan wrote earlier even if they were changed since "
                          "(files gridplan did not write are never touched).")


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
        except OutputError as exc:
            click.secho("错误 / Error: the output location cannot be used; nothing was written.",
                        fg="red", err=True)
            click.echo(exc.format(), err=True)
            sys.exit(EXIT_INPUT)
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
        except OSError as exc:  # disk full, a file vanished under us: say so, no traceback
            logging.getLogger("gridplan").debug("I/O error", exc_info=True)
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            click.secho(f"错误 / Error: cannot read or write a file{where}: {exc.strerror or exc}; "
                        "earlier outputs were left as they were.", fg="red", err=True)
            sys.exit(1)

    return wrapper
