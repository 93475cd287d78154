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
(an interrupted save) are ignored by readers and their number is not reused. With ``gridplan plan
--out DIR --store STORE`` the version and the output folder are committed together or not at all
(:class:`StoreVersion` gives the order). One run at a time writes a store: a second one, while the
lock file beside the store (``STORE.gpkg.lock``) is held, stops with a message naming the holder.

Plans are referred to by :func:`load_snapshot` refs: a ``plan.gpkg`` (or its output folder), or
``STORE.gpkg#3`` (version 3), ``STORE.gpkg#latest``; a store without ``#`` means its latest version.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import EllipsisType
from typing import Any, Self

import geopandas as gpd
import pandas as pd
import pyogrio
from pyproj import CRS

from ..errors import GridplanError, InputError, Problem
from ..files import (
    FileLock,
    OutputError,
    make_dirs,
    read_manifest,
    recover_folder,
    recovering,
    register_recovery,
    rmdir_quiet,
)
from ..io.planfile import read_plan
from ..model import Plan

__all__ = [
    "ASSIGNMENT_COLUMNS",
    "Snapshot",
    "StaleStoreError",
    "StoreVersion",
    "list_versions",
    "load_snapshot",
    "recover_store",
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

#: Table (plain SQLite, not a GeoPackage layer) of versions whose rows are written but whose
#: output folder was not yet swapped in: ``version``, ``run_id``, ``out`` (folder), ``row`` (JSON
#: of the ``versions`` row to write when the folder turns out committed).
PENDING = "gridplan_pending"


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
        if con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (PENDING,)).fetchone():
            top = max(top, con.execute(f"SELECT COALESCE(MAX(version), 0) FROM {PENDING}").fetchone()[0])
    return int(top) + 1


def _committed(store: Path) -> set[int]:
    if "versions" not in _layers(store):
        return set()
    with sqlite3.connect(store) as con:
        return {int(r[0]) for r in con.execute('SELECT version FROM "versions"')}


def _pending(store: Path) -> list[dict[str, Any]]:
    if not store.exists():
        return []
    with sqlite3.connect(store) as con:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (PENDING,)).fetchone():
            return []
        rows = con.execute(f"SELECT version, run_id, out, row FROM {PENDING} ORDER BY version")
        return [{"version": int(v), "run_id": r, "out": o, "row": json.loads(x)} for v, r, o, x in rows]


def _drop_pending(store: Path, version: int) -> None:
    with sqlite3.connect(store) as con:
        if con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (PENDING,)).fetchone():
            con.execute(f"DELETE FROM {PENDING} WHERE version = ?", (version,))


def _write_versions_row(store: Path, row: dict[str, Any]) -> None:
    pyogrio.write_dataframe(pd.DataFrame([row]), store, layer="versions",
                            append="versions" in _layers(store))


def _check_store_path(store: Path, label: str) -> None:
    if store.is_dir():
        raise OutputError([Problem(f"{label} {store}", "is a folder",
                                   "give a GeoPackage file name, e.g. plans.gpkg")])
    try:
        names = _layers(store) if store.exists() else set()
    except (pyogrio.errors.DataSourceError, OSError):
        names = {"?"}
    if store.exists() and "versions" not in names:
        raise OutputError([Problem(f"{label} {store}",
                                   "exists but is not a gridplan plan store (no versions table)",
                                   "give a new file name, or a store written by `gridplan plan --store`")])


def _open_lock(store: Path, command: str) -> FileLock:
    return FileLock(store.with_name(store.name + ".lock"), what=f"the plan store {store}",
                    command=command).acquire()


def recover_store(store: str | Path, *, locked: bool = False) -> list[str]:
    """Resolve versions of ``store`` left pending by killed runs (commit or drop them).

    A pending version is committed when its output folder holds its output (the folder's
    manifest carries the version's run id, after finishing an interrupted swap there), and
    dropped otherwise; its rows then stay unread and its number is not reused.

    Returns
    -------
    list of str
        What was done, one line per pending version.
    """
    store = Path(store)
    if not store.exists():
        return []
    with recovering(store, None if locked else _open_lock(store, "gridplan (clean-up)")) as done:
        committed = _committed(store)
        for item in _pending(store):
            v, out = item["version"], Path(item["out"])
            if v not in committed:
                recover_folder(out, stores=False)
                manifest = read_manifest(out) or {}
                if (manifest.get("store") or {}).get("run_id") == item["run_id"]:
                    _write_versions_row(store, item["row"])
                    done.append(f"committed version {v} (its output {out} was complete)")
                else:
                    done.append(f"dropped version {v} (its output {out} was never written)")
            _drop_pending(store, v)
    return done


class StoreVersion:
    """One new version of a plan store, committed together with its output folder.

    The order (each step survives a kill; :func:`recover_store` resolves what is left):

    1. :meth:`open` (before planning): check the store, take its lock, resolve earlier
       pending versions.
    2. :meth:`prepare` (the output's files are staged): write the version's rows and a
       *pending* record (run id, output folder) -- readers ignore rows without a ``versions`` row.
    3. The output folder is swapped in, its manifest (written last) carrying the run id.
    4. :meth:`commit`: write the ``versions`` row and drop the pending record. If this fails the
       folder is rolled back and the record dropped; if the process is killed between 3 and 4,
       the next run on the store finds the run id in the folder's manifest and commits.

    Parameters
    ----------
    store
        The store's GeoPackage (created when missing).
    plan
        The plan to save (may be given later through :attr:`plan`).
    note
        Free text kept with the version (``--note``).
    out
        The output folder the version belongs to (``None``: the version stands alone).
    """

    def __init__(self, store: str | Path, *, plan: Plan | None = None, note: str = "",
                 out: str | Path | None = None, command: str = "gridplan plan",
                 label: str = "--store"):
        self.store = Path(os.path.abspath(store))
        self.plan = plan
        self.note = note
        self.out = None if out is None else Path(os.path.abspath(out))
        self.command = command
        self.label = label
        self.version: int | None = None
        self.run_id = uuid.uuid4().hex
        self._row: dict[str, Any] | None = None
        self._lock: FileLock | None = None
        self._created: list[Path] = []

    def open(self) -> Self:
        """Check the store and its folder are usable, take the lock, resolve pending versions.

        Raises
        ------
        OutputError
            Not a store, a folder, not writable, or locked by another run.
        """
        if self.store.is_dir():  # the rest is checked under the lock: another writer may be creating it
            _check_store_path(self.store, self.label)
        self._created = make_dirs(self.store.parent)
        if self.store.exists() and not os.access(self.store, os.W_OK):
            raise OutputError([Problem(f"{self.label} {self.store}", "is not writable",
                                       "make it writable or give another store")])
        self._lock = _open_lock(self.store, self.command)
        try:
            _check_store_path(self.store, self.label)
            recover_store(self.store, locked=True)
        except BaseException:
            self.close()
            raise
        return self

    def prepare(self, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write the version's rows and its pending record; return the manifest entry."""
        assert self._lock is not None, "open() first"
        assert self.plan is not None, "a plan first"
        store, snap = self.store, snapshot_from_plan(self.plan)
        names = _layers(store)
        crs = snap.crs
        if "assignments" in names:
            crs = CRS.from_user_input(pyogrio.read_info(store, layer="assignments")["crs"])
        v = self.version = _next_version(store)
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
        self._row = {
            "version": v, "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "county": snap.county, "note": self.note or "",
            "params": json.dumps(snap.meta["params"], ensure_ascii=False, sort_keys=True, default=str),
            "checksums": json.dumps(snap.meta["checksums"], ensure_ascii=False, sort_keys=True),
            "kpi": json.dumps(snap.meta["kpi"], ensure_ascii=False, sort_keys=True, default=_plain),
            "crs": crs.to_wkt()}
        if self.out is not None:
            with sqlite3.connect(store) as con:
                con.execute(f"CREATE TABLE IF NOT EXISTS {PENDING} (version INTEGER PRIMARY KEY, "
                            "run_id TEXT NOT NULL, out TEXT NOT NULL, row TEXT NOT NULL)")
                con.execute(f"INSERT INTO {PENDING} VALUES (?, ?, ?, ?)",
                            (v, self.run_id, str(self.out), json.dumps(self._row, ensure_ascii=False)))
        return {"store": {"path": str(store), "version": v, "run_id": self.run_id}}

    def commit(self) -> None:
        """Write the ``versions`` row (the commit point of the store) and drop the pending record."""
        assert self._row is not None, "prepare() first"
        assert self.version is not None, "prepare() first"
        _write_versions_row(self.store, self._row)
        _drop_pending(self.store, self.version)
        log.info("plan saved as version %d of %s", self.version, self.store)

    def abort(self) -> None:
        """Forget the version (its rows stay, unread; its number is not reused)."""
        if self.version is not None and self.store.exists():
            try:
                _drop_pending(self.store, self.version)
            except sqlite3.Error:
                log.warning("could not drop pending version %s of %s", self.version, self.store)

    def close(self) -> None:
        """Release the store's lock."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if not self.store.exists():  # nothing saved: remove the folders open() made for it
            for d in reversed(self._created):
                rmdir_quiet(d)

    def __enter__(self) -> Self:
        return self.open() if self._lock is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StaleStoreError(GridplanError):
    """A save refused because the store holds a version newer than the caller has seen.

    Attributes
    ----------
    latest
        The store's newest version.
    expected
        The newest version the caller had seen (``None``: an empty store).
    """

    def __init__(self, latest: int, expected: int | None):
        super().__init__(f"the plan store has version {latest}, newer than {expected}")
        self.latest = latest
        self.expected = expected


def save_version(p: Plan, store: str | Path, *, note: str = "",
                 expect_latest: int | EllipsisType | None = ...) -> int:
    """Append ``p`` to the plan store ``store`` as a new version; return its number.

    Parameters
    ----------
    p
        The plan.
    store
        The store's GeoPackage (created when missing).
    note
        Free text kept with the version (``--note``).
    expect_latest
        The newest version the caller has seen (``None``: none). When given, the save is a
        compare-and-save: checked and written under the store's lock, it is refused with
        :class:`StaleStoreError` (nothing written) if the store holds a newer version.

    Raises
    ------
    gridplan.InputError
        ``store`` exists but is not a gridplan plan store, or another run is writing it
        (:class:`~gridplan.files.OutputError`).
    StaleStoreError
        With ``expect_latest``: another writer saved a newer version first.
    """
    with StoreVersion(store, plan=p, note=note) as sv:
        if expect_latest is not ...:
            done = _committed(sv.store)
            if done and (expect_latest is None or max(done) > expect_latest):
                raise StaleStoreError(max(done), expect_latest)
        sv.prepare()
        sv.commit()
    assert sv.version is not None
    return sv.version


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


register_recovery("store", recover_store)  # a killed swap of a folder commits its --store version
