"""gridplan: service-grid planning for China's township power-supply stations (供电所).

Township boundaries, stations and the transformer-area (台区) ledger go in; service grids
("高压到段, 低压到片"), the manager of each grid, KPIs and interactive maps come out.
"""

from __future__ import annotations

from ._version import __version__

from . import _compat  # noqa: E402,F401 - deprecated aliases of the old module paths
from .errors import GridplanError, InfeasibleError, InputError, Problem  # noqa: E402
from .model import County  # noqa: E402
from .pipeline import Plan, plan  # noqa: E402
from .settings import Params, read_params  # noqa: E402
from . import render  # noqa: F401 - registers the pages stage outputs hold (gridplan.pages)


def load_county(path, **kwargs):
    """Load and validate a county folder; see :func:`gridplan.io.load.load_county`."""
    from .io.load import load_county as _load

    return _load(path, **kwargs)


__all__ = ["County", "GridplanError", "InfeasibleError", "InputError", "Params", "Plan",
           "Problem", "load_county", "plan", "read_params", "__version__"]
