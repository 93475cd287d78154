"""Measures a plan can balance besides the workload (``[plan] also_balance``, issue #16 part 1).

Planners balance more than one thing: households, but also the number of 台区, the 10 kV line a
manager patrols, or the area to cover. A weighted sum (``customers + 20*transformers``) balances
the sum, not each measure; ``also_balance = { transformers = 0.15, feeder_km = 0.25 }`` asks for
every grid to hold each named measure within its tolerance of the mean of its township (or
station, with ``scope = "station"``), on top of the workload within ``tolerance``.

Measures (one value per 台区; a grid's value is the sum over its 台区):

``customers``
    Households (户数, the ledger's ``customers``).
``transformers``
    1 per 台区 (a count of 台区).
``capacity``
    Transformer capacity in kVA (``capacity_kva``).
``feeder_km``
    km of 10 kV line nearest to the 台区 along its feeder: every line piece of the feeder graph
    (:func:`gridplan.hv.feeders.build_feeder_graph`) goes to the closest node (distance along
    the lines) where 台区 hang, shared equally by the 台区 hanging there. The sum over all 台区
    is the km of every feeder tree that feeds at least one 台区. Needs a feeders layer.
``area``
    km² of the 台区's territory cell (its Voronoi cell clipped to its township,
    :func:`gridplan.lv.territory.all_cells`): grids then cover similar areas.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from ..errors import Problems
from ..hv.feeders import build_feeder_graph
from ..model import County
from ..settings import ALSO_BALANCE_NAMES, Params
from .territory import all_cells

__all__ = ["COLUMNS", "LABELS", "MEASURES", "add_measure_columns", "feeder_km", "measure_matrix",
           "measure_values"]

log = logging.getLogger(__name__)

#: Names ``also_balance`` accepts.
MEASURES = ALSO_BALANCE_NAMES
#: Chinese names for notes, the summary and the map.
LABELS = {"customers": "户数", "transformers": "台区数", "capacity": "配变容量(kVA)",
          "feeder_km": "10千伏线路长度(km)", "area": "面积(km²)", "workload": "工作量"}
#: The 台区 column each measure is read from (``transformers`` is 1 per row).
COLUMNS = {"customers": "customers", "capacity": "capacity_kva", "feeder_km": "feeder_km",
           "area": "area_km2"}


def feeder_km(county: County, *, params: Params | None = None) -> np.ndarray:
    """Return the km of 10 kV line nearest to every 台区 along its feeder (see the module docstring).

    Parameters
    ----------
    county
        A county with a ``feeders`` layer.
    params
        ``snap_lines_m`` and ``attach_tolerance_m`` (default ``county.params``).

    Returns
    -------
    numpy.ndarray
        One value per row of ``county.transformers`` (0 for a 台区 attached to no line).
    """
    g = build_feeder_graph(county, params=params)
    n_tr = len(county.transformers)
    node = g.transformer_node.to_numpy(dtype=np.int64)
    out = np.zeros(n_tr)
    hanging = node >= 0
    if not hanging.any():
        return out
    child = np.flatnonzero(g.parent >= 0)
    length = np.maximum(g.length_m[child], 1e-6)
    adj = sparse.coo_matrix((length, (child, g.parent[child])), shape=(g.n, g.n)).tocsr()
    sources = np.unique(node[hanging])
    _, _, nearest = csgraph.dijkstra(adj, directed=False, indices=sources, min_only=True,
                                     return_predecessors=True)
    # the piece into node v goes to the 台区 node nearest to v (its far end)
    owner = nearest[child]
    ok = owner >= 0
    km_at = np.bincount(owner[ok], g.length_m[child][ok] / 1000.0, g.n)
    per_node = np.bincount(node[hanging], minlength=g.n)
    out[hanging] = km_at[node[hanging]] / per_node[node[hanging]]
    return out


def add_measure_columns(county: County, transformers: pd.DataFrame, names: Any, *,
                        cells: np.ndarray | None = None,
                        params: Params | None = None) -> pd.DataFrame:
    """Return ``transformers`` with the columns the measures ``names`` need (a copy when added).

    ``feeder_km`` adds a ``feeder_km`` column (:func:`feeder_km`), ``area`` an ``area_km2``
    column (the territory cells' areas; ``cells`` from :func:`gridplan.lv.territory.all_cells`,
    computed when not given). The other measures read existing ledger columns.

    Raises
    ------
    gridplan.InputError
        ``feeder_km`` without a feeders layer; a ledger column a measure needs is missing or empty.
    """
    names = list(names or [])
    p = Problems()
    tr = transformers
    if "feeder_km" in names and "feeder_km" not in tr.columns:
        if county.feeders is None or not len(county.feeders):
            p.add("also_balance", "feeder_km is to be balanced but the county has no feeders layer",
                  "add feeders.geojson (10 kV lines) to the county folder, or drop feeder_km "
                  "from [plan] also_balance")
        else:
            tr = tr.copy()
            tr["feeder_km"] = np.round(feeder_km(county, params=params), 6)
    if "area" in names and "area_km2" not in tr.columns:
        if cells is None:
            cells = all_cells(county, tr)
        tr = tr.copy() if tr is transformers else tr
        tr["area_km2"] = shapely.area(np.asarray(cells, dtype=object)) / 1e6
    for name in names:
        col = COLUMNS.get(name)
        if name in ("customers", "capacity") and (col not in tr.columns
                                                  or pd.to_numeric(tr[col], errors="coerce").isna().any()):
            p.add("also_balance", f"{name} is to be balanced but the ledger's {col!r} is missing "
                                  "or has empty values", f"fill in {col!r} or drop {name} from also_balance")
    p.raise_if_any()
    return tr


def measure_values(transformers: pd.DataFrame, name: str) -> np.ndarray:
    """One measure per 台区 (columns added by :func:`add_measure_columns` where needed)."""
    if name == "transformers":
        return np.ones(len(transformers))
    col = COLUMNS.get(name, name)
    vals = pd.to_numeric(transformers[col], errors="coerce").to_numpy(dtype=float)
    return np.where(np.isfinite(vals), np.maximum(vals, 0.0), 0.0)


def measure_matrix(transformers: pd.DataFrame, names: Any) -> np.ndarray:
    """``(n, m)`` measures of every 台区, one column per name (in the order given)."""
    names = list(names or [])
    if not names:
        return np.zeros((len(transformers), 0))
    return np.column_stack([measure_values(transformers, nm) for nm in names])
