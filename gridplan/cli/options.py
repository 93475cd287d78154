"""Options shared by several commands, and the error handling every command uses.

The options that set a planning parameter are derived from its declaration in
:class:`gridplan.settings.Params` (``param(..., cli="--capacity", doc=...)``): name, help text,
type and choices are written once, there. :func:`param_option` makes one such option,
:func:`params_options` all of them (what ``gridplan plan`` takes), and :func:`param_values` turns
what click parsed into keyword arguments of :func:`gridplan.load_county` / ``read_params``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import GridplanError, InfeasibleError, InputError, Problem
from ..files import OutputError, open_output_file
from ..pipeline import Plan, read_plan
from ..settings import Params, field_kind

F = TypeVar("F", bound=Callable[..., Any])

#: Exit status for bad input (a problem the user can fix in their files or options).
EXIT_INPUT = 2

verbosity = click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
quiet = click.option("-q", "--quiet", is_flag=True, help="Only errors.")


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


# ----------------------------------------------------------------------------- parameters

#: The Params fields that have a command-line option, in declaration order.
CLI_PARAMS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Params) if f.metadata.get("cli"))
_FIELDS = {f.name: f for f in dataclasses.fields(Params)}
_CLICK_TYPES: dict[str, Any] = {"number": float, "integer": int, "text": str}


def param_option(name: str) -> Callable[[F], F]:
    """The click option of one :class:`~gridplan.settings.Params` field, from its declaration.

    The option's default is None (not given: ``gridplan.toml`` or the field's default applies).
    A table (``coords_by_layer``) is a repeatable ``KEY=VALUE`` option, read by :func:`param_values`.
    """
    f = _FIELDS[name]
    meta = f.metadata
    kind = field_kind(f)
    kwargs: dict[str, Any] = {"default": None, "help": meta["help"]}
    decls = list(meta["cli"])
    if meta.get("cli_choices"):
        kwargs["type"] = click.Choice(list(meta["cli_choices"]))
    elif kind == "flag":
        long = decls[0].removeprefix("--")
        decls = [f"--{long}/--no-{long}"]
    elif kind.endswith("table"):
        kwargs.update(multiple=True)
    elif kind in _CLICK_TYPES and kind != "text":
        kwargs["type"] = _CLICK_TYPES[kind]
    if meta.get("metavar"):
        kwargs["metavar"] = meta["metavar"]
    return click.option(*decls, name, **kwargs)


def params_options() -> Callable[[F], F]:
    """Every parameter option (:data:`CLI_PARAMS`), in the order the fields are declared."""
    def decorate(func: F) -> F:
        for name in reversed(CLI_PARAMS):
            func = param_option(name)(func)
        return func
    return decorate


def param_values(given: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments from parsed parameter options: tables read, unset options left out.

    Raises
    ------
    gridplan.InputError
        A table item that is not ``KEY=VALUE`` (e.g. ``--layer-coords transformers``).
    """
    out: dict[str, Any] = {}
    for name, value in given.items():
        if name == "coords_by_layer":
            value = parse_layer_coords(value)
        elif name == "also_balance":
            value = parse_also_balance(",".join(value)) if value else None
        if value is not None and value != ():
            out[name] = value
    return out


coords = param_option("coords")
layer_coords = param_option("coords_by_layer")
seed = param_option("seed")
basemap = param_option("basemap")
force = click.option("--force", is_flag=True,
                     help="Replace files gridplan wrote earlier even if they were changed since "
                          "(files gridplan did not write are never touched).")


# ----------------------------------------------------------------------------- station prints

def station_print_options(*, station_help: str, sizes: tuple[str, ...], default_size: str,
                          size_help: str, out_help: str,
                          between: tuple[Callable[[F], F], ...] = ()) -> Callable[[F], F]:
    """The options shared by the one-station prints (``wallmap``, ``board``).

    ``PLAN`` (a plan.gpkg or its folder), ``--station`` (id or name), ``--size`` (paper), the
    command's own options ``between``, ``-o/--out`` (the file) and ``--force`` (replace a file
    gridplan did not write); the help texts differ.
    """
    def decorate(func: F) -> F:
        func = click.option("--force", is_flag=True,
                            help="Replace an existing --out file even if gridplan did not write it.")(func)
        func = click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
                            required=True, help=out_help)(func)
        for option in reversed(between):
            func = option(func)
        func = click.option("--size", type=click.Choice(list(sizes), case_sensitive=False),
                            default=default_size, show_default=True, help=size_help)(func)
        func = click.option("--station", "station", required=True, help=station_help)(func)
        return click.argument("plan_path", metavar="PLAN",
                              type=click.Path(exists=True, path_type=Path))(func)
    return decorate


def station_id(plan: Plan, station: str) -> str:
    """The id of ``station`` (an id or a name) in ``plan``; a usage error listing them if none."""
    st = plan.county.stations
    match = st[(st["station_id"].astype(str) == station) | (st["name"].astype(str) == station)]
    if match.empty:
        known = "、".join(f"{r.station_id}（{r.name}）" for r in st.itertuples())
        raise click.BadParameter(f"no station {station!r} in the plan; stations: {known}",
                                 param_hint="--station")
    return str(match["station_id"].iloc[0])


def write_station_print(out: Path, *, command: str, plan_path: Path, force: bool,
                        draw: Callable[[Plan, str, Any], Any], station: str) -> Path:
    """Read ``plan_path``, find ``station`` and ``draw(plan, station_id, target)`` into ``out``.

    ``out`` is checked first (an existing file gridplan did not write is refused without
    ``force``) and written atomically, with its sidecar; nothing is left on failure.
    """
    target = open_output_file(out, command=command, inputs=[plan_path], force=force)
    try:
        p = read_plan(plan_path)
        path = draw(p, station_id(p, station), target)
    except BaseException:
        target.close(failed=True)
        raise
    target.close()
    return Path(path)
