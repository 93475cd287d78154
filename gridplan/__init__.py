"""gridplan: service-grid planning for China's township power-supply stations (供电所).

Township boundaries, stations and the transformer-area (台区) ledger go in; service grids
("高压到段, 低压到片"), the manager of each grid, KPIs and interactive maps come out.
"""

from __future__ import annotations

# imported for what they register: _compat, the deprecated aliases of the old module paths;
# output, the writer behind Plan.to_file; render, the pages stage outputs hold (gridplan.pages)
from . import _compat, output, render  # noqa: F401
from ._version import __version__
from .errors import GridplanError, InfeasibleError, InputError, Problem
from .io.load import load_county
from .model import County, Plan
from .pipeline import plan
from .settings import Params, read_params

__all__ = ["County", "GridplanError", "InfeasibleError", "InputError", "Params", "Plan",
           "Problem", "__version__", "load_county", "plan", "read_params"]
