"""The plan store: every plan of a county kept as a version in one GeoPackage (SQLite, no server).

::

    gridplan plan geodata/sample --store plans.gpkg --note "2024 秋季调整"
    gridplan history plans.gpkg
    gridplan diff plans.gpkg#1 plans.gpkg#2 --out diff/

Layers of ``STORE.gpkg`` (each row of the data layers carries its ``version``):

``versions`` (attribute table)
    ``version`` (int, 1, 2, …), ``timestamp`` (UTC ISO 8601), ``county``, ``note``, ``params``
    (JSON of :class:`~gridplan.settings.Params`), ``checksums`` (JSON: sha256 of every input file),
    ``kpi`` (JSON of the county KPIs), ``crs`` (WKT).
``assignments`` (points: the 台区)
    ``version``, ``transformer_id``, ``name``, ``township_id``, ``station_id``, ``grid_id``,
    ``manager_id``, ``customers``, ``workload``.
``grids`` (polygons)
    ``version``, ``grid_id``, ``station_id``, ``township_id``, ``manager_id``, ``manager_name``,
    ``placeholder``, ``workload``, ``customers``, ``n_transformers``.
``managers`` (attribute table)
    ``version``, ``manager_id``, ``name``, ``phone``, ``station_id``, ``grid_id``, ``workload``,
    ``placeholder``.

A version is committed by its ``versions`` row, written last: rows of a version that never got one
(an interrupted save) are ignored by readers and their number is not reused. Saves from several
processes are serialised with a lock file beside the store.

Plans are referred to by :func:`load_snapshot` refs: a ``plan.gpkg`` (or its output folder), or
``STORE.gpkg#3`` (version 3), ``STORE.gpkg#latest``; a store without ``#`` means its latest version.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import pyogrio
from pyproj import CRS

from ._errors import InputError, Problem

if TYPE_CHECKING:
    from .plan import Plan

__all__ = [
    "ASSIGNMENT_COLUMNS",
    "Snapshot",
    "list_versions",
    "load_snapshot",
    "save_version",
    "snapshot_from_plan",
]

log = logging.getLogger(__name__)

ASSIGNMENT_COLUMNS = ["transformer_id", "name", "township_id", "station_id", "grid_id",
                      "manager_id", "customers", "workload"]
_GRID_COLUMNS = ["grid_id", "station_id", "township_id", "manager_id", "manager_name",
                 "placeholder", "workload", "customers", "n_transformers"]
_MANAGER_COLUMNS = ["manager_id", "name", "phone", "station_id", "grid_id", "workload",
                    "placeholder", "role", "hv_km"]


@dataclass
class Snapshot:
    """One plan as the store and the diff see it: who looks after which 台区, and the grids.

    Attributes
    ----------
    label
        How the user named it (``plan.gpkg``, ``plans.gpkg#3``).
    county
        County name.
    crs
        The metric CRS of the layers.
    assignments
        Points of the 台区 with :data:`ASSIGNMENT_COLUMNS`.
    grids
        Grid polygons.
    managers
        One row per manager (name, phone, station, grid, workload, placeholder).
    meta
        ``version``, ``timestamp``, ``note``, ``params``, ``checksums`` when known.
    """

    label: str
    county: str
    crs: CRS
    assignments: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    managers: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


def _columns(frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for c in cols:
        if c not in out.columns:
            out[c] = None
    return out


def snapshot_from_plan(p: Plan, *, label: str = "plan") -> Snapshot:
    """The :class:`Snapshot` of an in-memory plan."""
    tr = _columns(p.transformers, ASSIGNMENT_COLUMNS)
    assignments = gpd.GeoDataFrame(tr[ASSIGNMENT_COLUMNS], geometry=tr.geometry.values, crs=p.crs)
    gr = _columns(p.grids, _GRID_COLUMNS)
    grids = gpd.GeoDataFrame(gr[_GRID_COLUMNS], geometry=gr.geometry.values, crs=p.crs)
    managers = _columns(pd.DataFrame(p.managers), _MANAGER_COLUMNS)[_MANAGER_COLUMNS]
    meta = {"params": dataclasses.asdict(p.params), "checksums": dict(p.county.checksums),
            "kpi": p.kpi.get("county", {})}
    return Snapshot(label, p.county.name, p.crs, assignments, grids, managers, meta)


# --------------------------------------------------------------------------- writing

@contextmanager
def _locked(store: Path) -> Iterator[None]:
    store.parent.mkdir(parents=True, exist_ok=True)
    with open(store.with_name(store.name + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _layers(store: Path) -> set[str]:
    return {str(n) for n, _ in pyogrio.list_layers(store)} if store.exists() else set()


def _next_version(store: Path) -> int:
    if not store.exists():
        return 1
    with sqlite3.connect(store) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")}
        top = 0
        for t in ("versions", "assignments", "grids", "managers"):
            if t in tables:
                top = max(top, con.execute(f'SELECT COALESCE(MAX(version), 0) FROM "{t}"').fetchone()[0])
    return int(top) + 1


def save_version(p: Plan, store: str | Path, *, note: str = "") -> int:
    """Append ``p`` to the plan store ``store`` as a new version; return its number.

    Parameters
    ----------
    p
        The plan.
    store
        The store's GeoPackage (created when missing).
    note
        Free text kept with the version (``--note``).

    Raises
    ------
    gridplan.InputError
        ``store`` exists but is not a gridplan plan store.
    """
    store = Path(store)
    snap = snapshot_from_plan(p)
    with _locked(store):
        names = _layers(store)
        if names and "versions" not in names:
            raise InputError([Problem(str(store), "exists but is not a gridplan plan store (no versions table)",
                                      "give a new file name, or a store written by `gridplan plan --store`")])
        crs = snap.crs
        if "assignments" in names:
            crs = CRS.from_user_input(pyogrio.read_info(store, layer="assignments")["crs"])
        v = _next_version(store)
        for name, layer in (("assignments", snap.assignments), ("grids", snap.grids)):
            out = layer.to_crs(crs) if layer.crs != crs else layer.copy()
            out.insert(0, "version", v)
            for col in out.columns:
                if out[col].dtype == object and col != out.geometry.name:
                    out[col] = out[col].map(_text)
            pyogrio.write_dataframe(out, store, layer=name, append=name in names,
                                    promote_to_multi=name == "grids")
        man = snap.managers.copy()
        man.insert(0, "version", v)
        man["placeholder"] = man["placeholder"].fillna(False).astype(bool)
        for col in ("manager_id", "name", "phone", "station_id", "grid_id"):
            man[col] = man[col].map(_text)
        pyogrio.write_dataframe(man, store, layer="managers", append="managers" in names)
        row = pd.DataFrame([{
            "version": v, "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "county": snap.county, "note": note or "",
            "params": json.dumps(snap.meta["params"], ensure_ascii=False, sort_keys=True, default=str),
            "checksums": json.dumps(snap.meta["checksums"], ensure_ascii=False, sort_keys=True),
            "kpi": json.dumps(snap.meta["kpi"], ensure_ascii=False, sort_keys=True, default=_plain),
            "crs": crs.to_wkt()}])
        pyogrio.write_dataframe(row, store, layer="versions", append="versions" in names)
    log.info("plan saved as version %d of %s", v, store)
    return v


def _text(value: Any) -> str | None:
    """A cell as text for the GeoPackage (None for missing)."""
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _plain(obj: Any) -> Any:
    return obj.item() if hasattr(obj, "item") else str(obj)


# --------------------------------------------------------------------------- reading

def list_versions(store: str | Path) -> pd.DataFrame:
    """The ``versions`` table of a store (parsed ``params``/``checksums``/``kpi`` as dicts)."""
    store = Path(store)
    names = _layers(store)
    if "versions" not in names:
        raise InputError([Problem(str(store), "not a gridplan plan store (no versions table)",
                                  "give a store written by `gridplan plan --store STORE.gpkg`")])
    v = pyogrio.read_dataframe(store, layer="versions")
    for col in ("params", "checksums", "kpi"):
        v[col] = v[col].map(lambda s: json.loads(s) if isinstance(s, str) and s else {})
    return v.sort_values("version").reset_index(drop=True)


def _split_ref(ref: str | Path) -> tuple[Path, str | None]:
    text = str(ref)
    if "#" in text:
        path, _, version = text.rpartition("#")
        return Path(path), version.strip()
    return Path(text), None


def load_snapshot(ref: Any) -> Snapshot:
    """Load a plan by ref: a Plan, ``plan.gpkg`` or its folder, ``STORE.gpkg#3`` or ``#latest``.

    Raises
    ------
    gridplan.InputError
        Missing file, unknown version, or a file that is neither a plan nor a store.
    """
    if hasattr(ref, "transformers") and hasattr(ref, "grids"):
        return snapshot_from_plan(ref)
    if isinstance(ref, Snapshot):
        return ref
    path, version = _split_ref(ref)
    if path.is_dir():
        path = path / "plan.gpkg"
    if not path.exists():
        raise InputError([Problem(str(ref), "plan or store not found",
                                  "give a plan.gpkg, a plan folder, or STORE.gpkg#N")])
    names = _layers(path)
    if "versions" in names:
        return _from_store(path, version, str(ref))
    if version is not None:
        raise InputError([Problem(str(path), "is a plan, not a plan store: it has no versions",
                                  f"drop '#{version}', or give a store written by --store")])
    from .plan import read_plan

    snap = snapshot_from_plan(read_plan(path), label=str(ref))
    return snap


def _from_store(path: Path, version: str | None, label: str) -> Snapshot:
    versions = list_versions(path)
    if not len(versions):
        raise InputError([Problem(str(path), "the plan store has no versions yet", "")])
    if version in (None, "", "latest"):
        v = int(versions["version"].max())
    else:
        try:
            v = int(version)
        except ValueError:
            v = -1
        if v not in set(versions["version"].astype(int)):
            raise InputError([Problem(label, f"no version {version!r} in the store",
                                      f"versions: {', '.join(map(str, versions['version']))} "
                                      "(see `gridplan history`)")])
    row = versions[versions["version"] == v].iloc[0]
    crs = CRS.from_wkt(row["crs"])

    def read(layer: str) -> pd.DataFrame:
        df = pyogrio.read_dataframe(path, layer=layer, where=f"version = {v}")
        if isinstance(df, gpd.GeoDataFrame):
            df = df.set_crs(crs, allow_override=True)
        return df.drop(columns="version").reset_index(drop=True)

    meta = {k: row[k] for k in ("version", "timestamp", "note", "params", "checksums", "kpi")}
    meta["version"] = int(meta["version"])
    return Snapshot(label, str(row["county"]), crs, read("assignments"), read("grids"),
                    read("managers"), meta)
