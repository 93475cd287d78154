"""Writing a print (wall map, notice board) through the output rules of :mod:`gridplan.files`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import Problems
from ..files import OutputFile, open_output_file

__all__ = ["check_station_and_size", "print_output", "print_path"]


def check_station_and_size(problems: Problems, plan: Any, station_id: str, size: str, *,
                           sizes: Iterable[str], what: str) -> None:
    """Add to ``problems`` when ``station_id`` has no grids in ``plan`` or ``size`` is not one of
    ``sizes`` (the paper sizes the print ``what`` supports).
    """
    grids = plan.grids
    if "station_id" not in grids.columns or not (grids["station_id"].astype(str) == station_id).any():
        known = sorted(map(str, grids["station_id"].dropna().unique())) if "station_id" in grids else []
        problems.add("plan grids", f"station {station_id!r} has no grids in this plan",
                     f"pass one of the plan's stations: {', '.join(known[:30]) or '(none)'}")
    sizes = list(sizes)
    if size not in sizes:
        problems.add(what, f"paper size {size!r} is not supported", f"use one of {', '.join(sizes)}")


def print_path(out: str | os.PathLike[str] | OutputFile) -> Path:
    """The file a print goes to: ``out`` itself, or the path of an already opened output file."""
    return out.path if isinstance(out, OutputFile) else Path(out)


@contextmanager
def print_output(out: str | os.PathLike[str] | OutputFile, *, command: str) -> Iterator[OutputFile]:
    """The output file to write a print into (write to its ``tmp``), committed on success.

    ``out`` may be a path (opened here: never over a file gridplan did not write, see
    :class:`gridplan.files.OutputFile`; closed here, as failed on an exception) or an
    :class:`~gridplan.files.OutputFile` the caller opened (committed here, closed by the caller).
    """
    if isinstance(out, OutputFile):
        target, owned = out, False
    else:
        target, owned = open_output_file(Path(out), command=command), True
    try:
        yield target
        target.commit()
    except BaseException:
        if owned:
            target.close(failed=True)
        raise
    if owned:
        target.close()
