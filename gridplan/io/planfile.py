"""Plan files: ``plan.gpkg`` written from a :class:`~gridplan.model.Plan` and read back into one.

The layers (metric CRS, see docs/architecture.md "Plan layers"): :meth:`Plan.layers
<gridplan.model.Plan.layers>` (``grids``, ``transformers``, ``townships``, ``stations``, and
``segments``, ``villages``, ``switches``, ``substations`` when present), ``managers`` (no
geometry) and ``meta`` (``key``/``value`` rows, each value JSON: :data:`META_KEYS`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
from pyproj import CRS

from ..errors import InputError, Problem
from ..files import json_default
from ..model import County, Plan, issued_numbers, make_plan
from ..settings import Params

__all__ = ["META_KEYS", "REQUIRED_LAYERS", "read_plan", "write_gpkg"]

log = logging.getLogger(__name__)

#: Layers every plan file has (``read_plan`` refuses a file without them).
REQUIRED_LAYERS = ("grids", "transformers", "townships", "stations", "meta")
#: The rows of the ``meta`` layer.
META_KEYS = ("county", "crs", "params", "kpi", "checksums", "notes", "grid_numbers")


def _as_text(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def write_gpkg(p: Plan, path: Path) -> None:
    """Write every layer of ``p`` to one GeoPackage (in the county's metric CRS)."""
    for name, layer in p.layers().items():
        if layer is None or len(layer) == 0:
            continue
        out = layer.copy()
        for col in out.columns:
            if col != out.geometry.name and out[col].dtype == object:
                out[col] = out[col].map(_as_text)
        out.to_file(path, layer=name, driver="GPKG", engine="pyogrio")
    managers = pd.DataFrame(p.managers).drop(columns="geometry", errors="ignore")
    pyogrio.write_dataframe(managers, path, layer="managers")
    meta = {"county": p.county.name, "crs": p.crs.to_wkt(), "params": dataclasses.asdict(p.params),
            "kpi": p.kpi, "checksums": p.county.checksums, "notes": p.notes,
            "grid_numbers": issued_numbers(p.grids["grid_id"], p.grid_numbers)}
    values = [json.dumps(v, ensure_ascii=False, default=json_default) for v in meta.values()]
    pyogrio.write_dataframe(pd.DataFrame({"key": list(meta), "value": values}), path, layer="meta")


def _plan_path(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "plan.gpkg"
    if not path.exists():
        raise InputError([Problem(str(path), "plan file not found",
                                  "give a plan.gpkg written by `gridplan plan`, or its folder")])
    return path


def read_plan(path: str | Path) -> Plan:
    """Read a plan back from ``plan.gpkg`` (or the folder that holds it).

    Parameters
    ----------
    path
        A ``plan.gpkg`` file or a plan output folder.

    Returns
    -------
    Plan
        With its County rebuilt from the layers the GeoPackage holds.

    Raises
    ------
    gridplan.InputError
        No such file, or not a plan file (layers missing).
    """
    path = _plan_path(path)
    names = {str(n) for n, _ in pyogrio.list_layers(path)}
    missing = set(REQUIRED_LAYERS) - names
    if missing:
        raise InputError([Problem(str(path), f"not a gridplan plan: layers missing: {', '.join(sorted(missing))}",
                                  "give a plan.gpkg written by `gridplan plan`")])
    meta_df = pyogrio.read_dataframe(path, layer="meta")
    meta = {k: json.loads(v) for k, v in zip(meta_df["key"], meta_df["value"])}
    crs = CRS.from_wkt(meta["crs"])

    def layer(name: str) -> gpd.GeoDataFrame | None:
        return gpd.read_file(path, layer=name, engine="pyogrio").set_crs(crs, allow_override=True) \
            if name in names else None

    prm = Params(**meta["params"])
    tr = layer("transformers")
    county = County(name=meta["county"], crs=crs, townships=layer("townships"),
                    stations=layer("stations"), transformers=tr, params=prm,
                    switches=layer("switches"), substations=layer("substations"),
                    villages=layer("villages"), checksums=meta.get("checksums", {}), source=path)
    managers = pyogrio.read_dataframe(path, layer="managers") if "managers" in names else pd.DataFrame()
    return make_plan(county=county, params=prm, transformers=tr, grids=layer("grids"),
                     managers=managers, segments=layer("segments"), kpi=meta.get("kpi", {}),
                     notes=meta.get("notes", []),
                     grid_numbers={str(k): int(v) for k, v in (meta.get("grid_numbers") or {}).items()})
