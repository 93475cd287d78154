"""Pins and locks (the planner's edits), and the current plan a replan starts from.

A **pin** ties one 台区 to one manager: the optimizer puts it in the grid that manager gets, always.
A **lock** freezes one grid of the current plan: exactly its 台区 stay together under its current
manager (or the manager the lock names); nothing joins or leaves it.

Pin files (``gridplan plan COUNTY --pins FILE``)
------------------------------------------------
CSV or XLSX, one edit per row, English or Chinese headers::

    transformer_id,manager_id,lock_grid        台区编号,工号,锁定网格
    TQ000101,M0007,                            TQ000101,M0007,
    ,,T01-03                                   ,,T01-03
    ,M0009,T01-04                              ,M0009,T01-04

- ``transformer_id`` + ``manager_id``: pin that 台区 to that manager.
- ``lock_grid``: lock that grid of the current plan (``--current`` or the ledger's ``grid_id``);
  with ``manager_id`` the locked grid is handed to that manager.

Or GeoJSON (what the map's draw tool exports: ``pins.geojson``): polygons whose properties hold
``manager_id`` (every 台区 inside is pinned to it), and/or ``lock: true`` (every current grid with a
台区 inside is locked) or ``grid_id`` (that grid is locked). Coordinates are WGS84 unless the file
has a top-level ``"coords"`` member (e.g. ``"gcj02"`` for a polygon drawn over the 高德 basemap).

Every edit is named in messages by its file and row ("pins.csv 第3行", "pins.geojson 要素2").
Unknown 台区, managers or grids are input errors; pins that cannot all hold (one 台区 pinned to two
managers, a manager of another station, one manager's pins in two townships or in two unconnected
places, more pinned workload than the manager can take) raise :class:`~gridplan.InfeasibleError`
naming the pins and their 台区.

What the planner stages read: :func:`prepare` returns the county with these columns added to
``transformers``: ``current_grid_id`` / ``current_manager_id`` (the plan to stay close to),
``pin_manager_id`` (str or None), ``pin_grid_id`` (the locked grid, or None) and ``pin_source``
(the edits that pinned the row, for messages).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry import shape

from ..coords import parse_system, to_wgs84
from ..errors import InfeasibleError, Problems, natural_key
from ..io import normalize_header, read_table
from ..lv.workload import workload
from ..model import County, issued_numbers
from ..settings import Params
from .store import load_snapshot

__all__ = ["PIN_COLUMNS", "Pin", "Pins", "moved_summary", "prepare", "read_pins"]

log = logging.getLogger(__name__)

#: Columns :func:`prepare` adds to ``county.transformers``.
PIN_COLUMNS = ("pin_manager_id", "pin_grid_id", "pin_source")

_HEADERS = {
    "transformer_id": ("transformer_id", "台区编号", "台区id", "台区"),
    "manager_id": ("manager_id", "工号", "台区经理工号", "台区经理编号", "人员编号", "台区经理"),
    "lock_grid": ("lock_grid", "锁定网格", "锁定", "lock", "grid_id", "网格编号"),
}


@dataclass(frozen=True)
class Pin:
    """One edit of a pin file.

    Attributes
    ----------
    source
        Where it is, for messages: ``"pins.csv 第3行"`` or ``"pins.geojson 要素2"``.
    manager_id
        The manager the 台区 (or the locked grids) go to, or None.
    transformer_ids
        The 台区 pinned (a CSV row: one; a polygon: those inside, filled in by :func:`prepare`).
    lock_grids
        Current grid ids locked by this edit.
    geometry
        A polygon edit's polygon (WGS84 or the file's ``coords``), else None.
    lock_inside
        A polygon with ``lock: true``: lock the current grids of the 台区 inside.
    """

    source: str
    manager_id: str | None = None
    transformer_ids: tuple[str, ...] = ()
    lock_grids: tuple[str, ...] = ()
    geometry: Any = None
    lock_inside: bool = False


@dataclass
class Pins:
    """The edits of one pin file."""

    path: Path | None
    items: list[Pin] = field(default_factory=list)
    coords: str = "wgs84"


# --------------------------------------------------------------------------- reading

def read_pins(path: str | Path) -> Pins:
    """Read a pin file (CSV, XLSX or GeoJSON; see the module docstring for the format).

    Raises
    ------
    gridplan.InputError
        Unreadable file, missing columns, or rows that are neither a pin nor a lock.
    """
    path = Path(path)
    p = Problems()
    if not path.is_file():
        p.add(str(path), "pin file not found", "give a CSV/XLSX of pins or the pins.geojson exported from the map")
        p.raise_if_any()
    if path.suffix.lower() in (".geojson", ".json"):
        return _read_geojson(path, p)
    return _read_table(path, p)


def _cell(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _read_table(path: Path, p: Problems) -> Pins:
    frame = read_table(path).frame
    index = {normalize_header(a): canon for canon, names in _HEADERS.items() for a in names}
    rename: dict[str, str] = {}
    for col in frame.columns:
        canon = index.get(normalize_header(col))
        if canon and canon not in rename.values():
            rename[col] = canon
    frame = frame.rename(columns=rename)
    if not {"manager_id", "lock_grid"} & set(frame.columns):
        p.add(path.name, f"no pin columns found (columns: {', '.join(map(str, frame.columns))})",
              "use headers transformer_id,manager_id,lock_grid (or 台区编号,工号,锁定网格)")
        p.raise_if_any()
    pins = Pins(path)
    bad: list[str] = []
    for i, row in enumerate(frame.to_dict("records")):
        line = int(row.get("_row", i + 2))
        tid, mid, grid = (_cell(row.get(c)) for c in ("transformer_id", "manager_id", "lock_grid"))
        if tid is None and mid is None and grid is None:
            continue
        source = f"{path.name} 第{line}行"
        if grid is not None:
            pins.items.append(Pin(source, mid, (tid,) if tid else (), (grid,)))
        elif tid is not None and mid is not None:
            pins.items.append(Pin(source, mid, (tid,)))
        else:
            bad.append(str(line))
    if bad:
        p.add(path.name, "rows that are neither a pin (台区编号 + 工号) nor a lock (锁定网格)",
              "fill transformer_id and manager_id, or lock_grid", rows=bad)
    p.raise_if_any()
    return pins


def _read_geojson(path: Path, p: Problems) -> Pins:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        p.add(path.name, f"not a valid GeoJSON file ({exc})", "export the pins again from map.html")
        p.raise_if_any()
    feats = data.get("features", [data] if data.get("type") == "Feature" else []) if isinstance(data, dict) else []
    pins = Pins(path, coords=str(data.get("coords", "wgs84")) if isinstance(data, dict) else "wgs84")
    bad_geom: list[str] = []
    empty: list[str] = []
    for i, feat in enumerate(feats, 1):
        props = feat.get("properties") or {}
        try:
            geom = shape(feat.get("geometry"))
        except Exception:  # noqa: BLE001 - any malformed geometry is reported the same way
            geom = None
        if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            bad_geom.append(str(i))
            continue
        mid = _cell(props.get("manager_id"))
        grid = _cell(props.get("grid_id"))
        lock = props.get("lock") in (True, "true", "True", 1, "1", "是")
        if mid is None and grid is None and not lock:
            empty.append(str(i))
            continue
        pins.items.append(Pin(f"{path.name} 要素{i}", mid, (), (grid,) if grid else (),
                              shapely.make_valid(geom), lock))
    if bad_geom:
        p.add(path.name, "features that are not polygons", "draw pins as polygons or rectangles", rows=bad_geom)
    if empty:
        p.add(path.name, "polygons without manager_id, grid_id or lock",
              "give each polygon a manager_id (the map's draw tool asks for it), a grid_id, or lock: true",
              rows=empty)
    p.raise_if_any()
    return pins


# --------------------------------------------------------------------------- applying

def prepare(county: County, *, current: Any = None, pins: Any = None,
            params: Params | None = None) -> County:
    """Return a copy of ``county`` whose 台区 carry the current plan and the pins.

    Parameters
    ----------
    county
        The county to plan.
    current
        The plan to stay close to: a :class:`~gridplan.Plan`, a ``plan.gpkg`` (or its folder), a
        plan-store ref ``STORE.gpkg#3``, or a DataFrame with ``transformer_id``, ``grid_id``,
        ``manager_id``. Replaces the ledger's ``manager_id`` / ``grid_id`` columns. None keeps them.
    pins
        A :class:`Pins`, a pin file path, or None.
    params
        For the workload expression and capacity (default ``county.params``).

    Raises
    ------
    gridplan.InputError
        Unknown 台区, managers or grids in the pin file.
    gridplan.InfeasibleError
        Pins that cannot all hold (every offending pin is named).
    """
    params = params or county.params
    tr = county.transformers.copy()
    if current is not None:
        tr = _with_current(tr, current)
    for col in PIN_COLUMNS:
        tr[col] = None
    if pins is not None:
        if not isinstance(pins, Pins):
            pins = read_pins(pins)
        _apply(county, tr, pins, params)
    return dataclasses.replace(county, transformers=tr)


def _with_current(tr: gpd.GeoDataFrame, current: Any) -> gpd.GeoDataFrame:
    if isinstance(current, pd.DataFrame) and not hasattr(current, "county"):
        table = current
    else:
        table = load_snapshot(current).assignments
    tr.attrs["grid_numbers"] = issued_grid_numbers(current, table)
    cur = table.drop_duplicates("transformer_id").set_index(table["transformer_id"].astype(str)
                                                            .drop_duplicates().to_numpy())
    ids = tr["transformer_id"].astype(str)
    tr["current_grid_id"] = ids.map(cur["grid_id"]).astype(object)
    tr["current_manager_id"] = ids.map(cur["manager_id"]).astype(object)
    for col in ("current_grid_id", "current_manager_id"):
        tr[col] = tr[col].where(tr[col].notna(), None)
    n_new = int(tr["current_grid_id"].isna().sum())
    log.info("current plan: %d of %d 台区 known, %d new", len(tr) - n_new, len(tr), n_new)
    return tr


def issued_grid_numbers(current: Any, table: pd.DataFrame | None = None) -> dict[str, int]:
    """Highest grid number issued per township/station key by the plan ``current`` and its past.

    A Plan or ``plan.gpkg`` keeps the record in its ``meta`` layer (``grid_numbers``); a plan store
    knows every id of every version; a DataFrame may carry it in ``attrs["grid_numbers"]``. The ids
    in ``table`` (its ``grid_id`` column) always count. A replan numbers new grids above these, so
    an id is never reused for a different grid.
    """
    before: dict[str, int] = {}
    ids: list[str] = []
    if table is not None and "grid_id" in table.columns:
        ids += [str(g) for g in table["grid_id"].dropna()]
    if isinstance(current, pd.DataFrame):
        before = dict(current.attrs.get("grid_numbers") or {})
    elif hasattr(current, "grid_numbers"):
        before = dict(current.grid_numbers or {})
    elif isinstance(current, (str, Path)):
        before, more = _numbers_on_disk(Path(str(current).rpartition("#")[0] or str(current))
                                        if "#" in str(current) else Path(current))
        ids += more
    return issued_numbers(ids, before)


def _numbers_on_disk(path: Path) -> tuple[dict[str, int], list[str]]:
    """(``grid_numbers`` of a plan's meta, every grid id of a store's versions) of a file."""
    if path.is_dir():
        path = path / "plan.gpkg"
    try:
        names = {str(n) for n, _ in pyogrio.list_layers(path)}
        if "versions" in names and "grids" in names:
            df = pyogrio.read_dataframe(path, layer="grids", columns=["grid_id"], read_geometry=False)
            return {}, [str(g) for g in df["grid_id"].dropna()]
        if "meta" in names:
            meta = pyogrio.read_dataframe(path, layer="meta")
            for k, v in zip(meta["key"], meta["value"]):
                if k == "grid_numbers":
                    return {str(a): int(b) for a, b in (json.loads(v) or {}).items()}, []
    except Exception as exc:  # noqa: BLE001 - the record is an extra; the ids still count
        log.warning("could not read the grid numbers of %s: %s", path, exc)
    return {}, []


def _apply(county: County, tr: gpd.GeoDataFrame, pins: Pins, params: Params) -> None:
    """Resolve every edit onto the rows of ``tr`` (in place) and check the pins can hold."""
    label = pins.path.name if pins.path else "pins"
    p = Problems()
    ids = tr["transformer_id"].astype(str).to_numpy()
    row_of = {t: i for i, t in enumerate(ids)}
    roster = _roster_station(county)
    cur_grid = (tr["current_grid_id"].astype(object).to_numpy() if "current_grid_id" in tr
                else np.full(len(tr), None, dtype=object))
    cur_man = (tr["current_manager_id"].astype(object).to_numpy() if "current_manager_id" in tr
               else np.full(len(tr), None, dtype=object))
    inside = _inside(county, tr, pins)
    managers: dict[int, set[str]] = {}
    sources: dict[int, list[str]] = {}
    locked: dict[str, list[tuple[str | None, str]]] = {}
    unknown_t, unknown_m, unknown_g = [], [], []

    def pin_row(i: int, mid: str, src: str) -> None:
        managers.setdefault(i, set()).add(mid)
        sources.setdefault(i, []).append(src)

    for k, pin in enumerate(pins.items):
        if pin.manager_id is not None and roster is not None and pin.manager_id not in roster:
            unknown_m.append(f"{pin.source}({pin.manager_id})")
            continue
        if pin.manager_id is not None and roster is None:
            unknown_m.append(f"{pin.source}({pin.manager_id})")
            continue
        grids = set(pin.lock_grids)
        if pin.lock_inside:
            grids |= {g for g in cur_grid[inside[k]] if g is not None}
        for g in sorted(grids):
            if not (cur_grid == g).any():
                unknown_g.append(f"{pin.source}({g})")
                continue
            mid = pin.manager_id or _current_manager(cur_man[cur_grid == g], roster)
            locked.setdefault(g, []).append((mid, pin.source))
        if pin.manager_id is None or grids:
            continue
        rows = inside[k] if pin.geometry is not None else [row_of.get(t) for t in pin.transformer_ids]
        for t, i in zip(pin.transformer_ids or ids[rows], rows):
            if i is None:
                unknown_t.append(f"{pin.source}({t})")
            else:
                pin_row(int(i), pin.manager_id, pin.source)
        if pin.geometry is not None and not len(rows):
            log.warning("%s: no 台区 inside the polygon; it pins nothing", pin.source)
    if unknown_t:
        p.add(label, "pins name 台区 not in the ledger (or retired)", "check the 台区编号", rows=unknown_t)
    if unknown_m:
        p.add(label, "pins name managers not in the roster (managers.csv)",
              "check the 工号, or add the manager to managers.csv", rows=unknown_m)
    if unknown_g:
        fix = ("check the grid id against the current plan" if (cur_grid != None).any()
               else "a lock needs a current plan: pass --current PLAN.gpkg or a grid_id column in the ledger")
        p.add(label, "locks name grids not in the current plan", fix, rows=unknown_g)
    p.raise_if_any()
    pin_grid = np.full(len(tr), None, dtype=object)
    for g, edits in sorted(locked.items()):
        for i in np.flatnonzero(cur_grid == g):
            pin_grid[i] = g
            for mid, src in edits:
                if mid is not None:
                    pin_row(int(i), mid, src)
                else:
                    sources.setdefault(int(i), []).append(src)
    tr["pin_grid_id"] = pin_grid
    w = workload(tr, params.workload)
    _check(tr, ids, managers, sources, roster, w, params, county)
    pin_man = np.full(len(tr), None, dtype=object)
    pin_src = np.full(len(tr), None, dtype=object)
    for i, ms in managers.items():
        pin_man[i] = next(iter(ms))
    for i, src_list in sources.items():
        pin_src[i] = "、".join(dict.fromkeys(src_list))
    tr["pin_manager_id"] = pin_man
    tr["pin_source"] = pin_src
    log.info("pins: %d 台区 pinned, %d grids locked", len(managers), len(locked))


def _roster_station(county: County) -> dict[str, tuple[str, float]] | None:
    """manager_id -> (station_id, max_workload) of the roster, or None without a roster."""
    m = county.managers
    if m is None or not len(m):
        return None
    cap = pd.to_numeric(m.get("max_workload", pd.Series(np.nan, index=m.index)), errors="coerce")
    return {str(a): (str(b), float(c)) for a, b, c in zip(m["manager_id"], m["station_id"], cap)}


def _current_manager(values: np.ndarray, roster: dict | None) -> str | None:
    """The current manager of a grid when they are in the roster (placeholders are not)."""
    names = [v for v in values if v is not None and (roster is None or v in roster)]
    return max(sorted(set(names)), key=names.count) if names and roster is not None else None


def _inside(county: County, tr: gpd.GeoDataFrame, pins: Pins) -> list[np.ndarray]:
    """Rows of ``tr`` inside each polygon edit (empty arrays for table edits)."""
    out: list[np.ndarray] = []
    pts = tr.geometry.to_crs(4326) if len(tr) else tr.geometry
    system = parse_system(pins.coords, source=str(pins.path))

    def wgs84(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(to_wgs84(xy[:, 0], xy[:, 1], system))

    for pin in pins.items:
        if pin.geometry is None:
            out.append(np.empty(0, dtype=np.int64))
            continue
        geom = pin.geometry
        if system.kind not in ("wgs84", "cgcs2000"):
            geom = shapely.transform(geom, wgs84)
        hit = pts.intersects(geom).to_numpy() if len(pts) else np.zeros(0, dtype=bool)
        out.append(np.flatnonzero(hit))
    return out


def _check(tr, ids, managers, sources, roster, w, params: Params, county: County) -> None:
    """Raise one InfeasibleError listing every pin that cannot hold."""
    lines: list[str] = []

    def name(rows) -> str:
        rows = sorted(rows)
        srcs = sorted({s for i in rows for s in sources.get(i, [])}, key=natural_key)
        shown = "、".join(ids[rows[:10]]) + (f" 等{len(rows)}个" if len(rows) > 10 else "")
        return f"{'、'.join(srcs[:6])}{' 等' if len(srcs) > 6 else ''}(台区 {shown})"

    twice = sorted(i for i, ms in managers.items() if len(ms) > 1)
    for i in twice:
        lines.append(f"台区 {ids[i]} 被固定给多名台区经理({'、'.join(sorted(managers[i]))}):"
                     f"{'、'.join(sources[i])}")
    by_man: dict[str, list[int]] = {}
    for i, ms in managers.items():
        if len(ms) == 1:
            by_man.setdefault(next(iter(ms)), []).append(i)
    station = tr["station_id"].astype(str).to_numpy()
    town = tr["township_id"].astype(str).to_numpy()
    lock = tr["pin_grid_id"].astype(object).to_numpy()
    for mid, members in sorted(by_man.items()):
        rows = np.array(sorted(members))
        home, cap = roster[mid] if roster and mid in roster else ("", math.nan)
        wrong = rows[station[rows] != home]
        if len(wrong):
            lines.append(f"台区经理 {mid} 属于供电所 {home},不能负责其他供电所的台区:{name(wrong)}")
        key = town if params.scope == "township" else station
        if len(set(key[rows])) > 1:
            where = "乡镇" if params.scope == "township" else "供电所"
            lines.append(f"台区经理 {mid} 的固定台区分布在{len(set(key[rows]))}个{where}"
                         f"({'、'.join(sorted(set(key[rows])))}),一个网格不能跨{where}:{name(rows)}")
        grids = {g for g in lock[rows] if g is not None}
        if grids and (len(grids) > 1 or any(lock[r] is None for r in rows)):
            lines.append(f"台区经理 {mid} 的固定台区跨越锁定网格({'、'.join(sorted(grids))})"
                         f"与其他台区,锁定网格不能增减台区:{name(rows)}")
        limit = cap if np.isfinite(cap) else float(params.capacity)
        rows = rows[np.array([lock[r] is None for r in rows], dtype=bool)]  # a locked grid is as it is
        load = float(w[rows].sum())
        if load > limit * (1 + 1e-9) and not (len(rows) == 1 and not np.isfinite(cap)):
            lines.append(f"固定给台区经理 {mid} 的工作量 {load:g} 超过其上限 {limit:g}:{name(rows)}")
    if lines:
        raise InfeasibleError(f"{len(lines)} 处固定(pins)无法同时满足:\n"
                              + "\n".join(f"  {k}. {t}" for k, t in enumerate(lines, 1)))


# --------------------------------------------------------------------------- after the plan

def moved_summary(transformers: pd.DataFrame) -> dict[str, int]:
    """台区 and households whose manager differs from ``current_manager_id`` (new 台区 excluded)."""
    if "current_manager_id" not in transformers.columns:
        return {}
    cur = transformers["current_manager_id"]
    known = cur.notna()
    moved = known & (transformers["manager_id"].astype(str) != cur.astype(str))
    return {"moved_transformers": int(moved.sum()),
            "moved_households": int(transformers.loc[moved, "customers"].sum()),
            "new_transformers": int((~known).sum())}


def check_honoured(transformers: pd.DataFrame) -> None:
    """Raise InfeasibleError if a pinned 台区 did not get its manager (never expected)."""
    if "pin_manager_id" not in transformers.columns:
        return
    pinned = transformers["pin_manager_id"].notna()
    broken = pinned & (transformers["manager_id"].astype(str) != transformers["pin_manager_id"].astype(str))
    if broken.any():
        bad = transformers[broken]
        raise InfeasibleError("固定未能满足(台区 → 应属台区经理):" + "、".join(
            f"{t} → {m}({s})" for t, m, s in zip(bad["transformer_id"], bad["pin_manager_id"],
                                                 bad["pin_source"]))[:2000])
