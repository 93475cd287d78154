"""Checks of a county's layers: every problem is collected, the loader raises once.

Each check takes the frame of one layer (with canonical column names and the ``_row`` column of
:mod:`gridplan.io`), the file name to show, and a :class:`~gridplan.errors.Problems` collector; it
appends one problem per kind of fault, naming the rows (ids, or ``row N`` when the id is missing),
what is wrong and the fix. Repairs are not problems: they append one Chinese sentence to the
``report`` list instead (it becomes :attr:`gridplan.County.report`).

The spatial checks (:func:`repair_townships`, :func:`check_overlaps`, :func:`assign_townships`) work
on layers already projected to the county's metric CRS, so every distance and area is in metres.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .. import coords as _coords
from ..errors import Problems
from ..metrics.response import classify_townships
from ..people.staff import parse_posts
from ..settings import Params
from . import ALIASES, accepted_names, as_ids, parse_numbers
from .schema import (
    AREA_CLASSES,
    CLOSED_WORDS,
    IN_SERVICE,
    MAX_CAPACITY_KVA,
    MAX_CUSTOMERS,
    OPEN_WORDS,
    RETIRED,
    STATION_KINDS,
    Column,
    LayerSpec,
)

__all__ = [
    "AREA_CLASSES",
    "FAR_M",
    "IN_SERVICE",
    "LAYER_STEPS",
    "MAX_CAPACITY_KVA",
    "MAX_CUSTOMERS",
    "RETIRED",
    "STATION_KINDS",
    "assign_townships",
    "check_columns",
    "check_coordinates",
    "check_counts",
    "check_ids",
    "check_numbers",
    "check_overlaps",
    "check_plausible",
    "check_references",
    "is_retired",
    "parse_area_class",
    "parse_bool",
    "parse_columns",
    "parse_status",
    "repair_townships",
    "row_labels",
]

log = logging.getLogger(__name__)

# The accepted words and the plausibility limits are declared with their columns in the schema.
_TRUE = set(OPEN_WORDS)
_FALSE = set(CLOSED_WORDS)
#: A point farther than this from every township is "outside the county", not a near miss.
FAR_M = 10_000.0


def _norm(v: object) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(v))).lower()


def row_labels(frame: pd.DataFrame, id_col: str | None, mask: Iterable[bool] | None = None) -> list[str]:
    """Labels of the rows where ``mask`` is true: the id, or ``row N`` when the id is missing."""
    sel = frame if mask is None else frame.loc[np.asarray(mask, dtype=bool)]
    ids = sel[id_col] if id_col and id_col in sel else pd.Series([None] * len(sel), index=sel.index)
    rows = sel["_row"] if "_row" in sel else pd.Series(np.arange(1, len(sel) + 1), index=sel.index)
    return [str(i) if isinstance(i, str) and i else f"row {int(r)}" for i, r in zip(ids, rows)]


def check_columns(frame: pd.DataFrame, layer: str, file: str, required: Iterable[str],
                  problems: Problems) -> bool:
    """Record one problem per missing required column; return whether all are present."""
    ok = True
    found = frame.attrs.get("source_columns") or [str(c) for c in frame.columns
                                                   if c not in ("_row", "geometry")]
    names = [str(c) for c in frame.columns if c not in ("_row", "geometry")]
    known = set(ALIASES.get(layer, {})) | {"lon", "lat"}
    for col in sorted({c for c in names if names.count(c) > 1 and c in known}):
        ok = False
        where = [f"{found[i]} (column {i + 1})" if i < len(found) else f"column {i + 1}"
                 for i, c in enumerate(names) if c == col]
        problems.add(file, f"{len(where)} columns mean {col!r}: {', '.join(where)}",
                     "keep one of them: rename or delete the others, so that gridplan knows which to read")
    for col in required:
        if col not in frame.columns:
            ok = False
            problems.add(file, f"missing column {col!r}",
                         f"add a column named one of: {accepted_names(layer, col)} "
                         f"(found: {', '.join(found)})")
    return ok


def check_ids(frame: pd.DataFrame, id_col: str, file: str, problems: Problems) -> None:
    """Missing and duplicate ids (``frame[id_col]`` already normalised by :func:`io.as_ids`)."""
    ids = frame[id_col]
    missing = ids.isna().to_numpy()
    if missing.any():
        problems.add(file, f"{int(missing.sum())} row(s) have no {id_col}",
                     f"give every row a unique {id_col}", rows=row_labels(frame, None, missing))
    dup = ids.notna() & ids.duplicated(keep=False)
    if dup.any():
        counts = ids[dup].value_counts()
        rows = [f"{i} (×{counts[i]})" for i in sorted(counts.index)]
        problems.add(file, f"{len(counts)} {id_col} value(s) occur more than once",
                     f"make every {id_col} unique (remove duplicated rows or renumber them)",
                     rows=rows)


def check_numbers(frame: pd.DataFrame, values: np.ndarray, bad: np.ndarray, *, column: str,
                  id_col: str | None, file: str, problems: Problems, required: bool = True,
                  minimum: float | None = 0.0) -> None:
    """Non-numeric, missing (when ``required``) and below-``minimum`` values of one column."""
    if bad.any():
        shown = frame.loc[bad, column].astype(str).tolist() if column in frame else []
        labels = [f"{lab} ({val!r})" for lab, val in zip(row_labels(frame, id_col, bad), shown)]
        problems.add(file, f"{int(bad.sum())} value(s) of {column!r} are not numbers",
                     f"write plain numbers in {column!r} (e.g. 120)", rows=labels)
    inf = np.isinf(values) & ~bad
    if inf.any():
        problems.add(file, f"{int(inf.sum())} value(s) of {column!r} are infinite",
                     f"write plain finite numbers in {column!r} (e.g. 120)",
                     rows=row_labels(frame, id_col, inf))
    missing = np.isnan(values) & ~bad
    if required and missing.any():
        problems.add(file, f"{int(missing.sum())} row(s) have no {column!r}",
                     f"fill in {column!r} for these rows", rows=row_labels(frame, id_col, missing))
    if minimum is not None:
        with np.errstate(invalid="ignore"):
            low = values < minimum
        if low.any():
            labels = [f"{lab} ({v:g})" for lab, v in zip(row_labels(frame, id_col, low), values[low])]
            problems.add(file, f"{int(low.sum())} row(s) have a negative {column!r}",
                         f"{column!r} must be ≥ {minimum:g}: correct these rows", rows=labels)


def check_counts(frame: pd.DataFrame, values: np.ndarray, *, column: str, id_col: str | None,
                 file: str, problems: Problems) -> None:
    """Counts (households) must be whole numbers: ``12.5`` is an error naming the rows.

    ``"12"`` as text and ``12.0`` are whole numbers. Missing, negative and non-numeric values are
    :func:`check_numbers`' job.
    """
    with np.errstate(invalid="ignore"):
        frac = np.isfinite(values) & (values >= 0) & (np.abs(values - np.round(values)) > 1e-9)
    if frac.any():
        labels = [f"{lab} ({v:g})" for lab, v in zip(row_labels(frame, id_col, frac), values[frac])]
        problems.add(file, f"{int(frac.sum())} row(s) have a {column!r} that is not a whole number",
                     f"{column!r} counts households: write a whole number (e.g. 12) in these rows",
                     rows=labels)


def _big(v: float) -> str:
    """A large number as people write it: ``1,000,000,000,000`` (not ``1e+12``)."""
    return f"{v:,.0f}" if np.isfinite(v) and float(v).is_integer() and abs(v) < 1e18 else f"{v:,.6g}"


def check_plausible(frame: pd.DataFrame, values: np.ndarray, *, column: str, maximum: float,
                    unit: str, id_col: str | None, file: str, problems: Problems) -> None:
    """Values above ``maximum`` (one 台区 cannot have them) are an error naming the rows."""
    with np.errstate(invalid="ignore"):
        high = values > maximum
    if high.any():
        labels = [f"{lab} ({_big(v)})" for lab, v in zip(row_labels(frame, id_col, high), values[high])]
        problems.add(file, f"{int(high.sum())} row(s) have an implausible {column!r} "
                           f"(more than {maximum:,.0f} {unit} for one 台区)",
                     f"correct these rows (a typo, or a unit mix-up?); gridplan accepts at most "
                     f"{maximum:,.0f} {unit} per 台区", rows=labels)


def check_coordinates(frame: pd.DataFrame, x: np.ndarray, y: np.ndarray, bad: np.ndarray, *,
                      id_col: str | None, file: str, degrees: bool, problems: Problems,
                      report: list[str], what: str = "点") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check point coordinates as given (before conversion) and swap swapped lon/lat back.

    Parameters
    ----------
    frame
        The layer (for row labels).
    x, y
        Longitude/latitude (or easting/northing) as parsed.
    bad
        Cells that were not empty but not numbers either.
    degrees
        Whether the system is longitude/latitude (swaps and ranges are checked only then).
    report
        Repairs are appended here (one Chinese sentence).
    what
        What a point is, in Chinese, for the report ("台区", "供电所").

    Returns
    -------
    (x, y, ok)
        The coordinates with swapped rows fixed, and the mask of rows whose coordinates are usable.
    """
    x, y = x.copy(), y.copy()
    if bad.any():
        problems.add(file, f"{int(bad.sum())} row(s) have coordinates that are not numbers",
                     "write decimal degrees such as 114.2 (or set coords in gridplan.toml for "
                     "projected coordinates)", rows=row_labels(frame, id_col, bad))
    missing = (np.isnan(x) | np.isnan(y)) & ~bad
    if missing.any():
        problems.add(file, f"{int(missing.sum())} row(s) have no coordinates",
                     "fill in the longitude and latitude (经度/纬度) of these rows",
                     rows=row_labels(frame, id_col, missing))
    zero = ((x == 0) | (y == 0)) & ~missing & ~bad
    if zero.any():
        problems.add(file, f"{int(zero.sum())} row(s) have a coordinate equal to 0 "
                           "(a placeholder, not a place)",
                     "fill in the real longitude and latitude of these rows",
                     rows=row_labels(frame, id_col, zero))
    ok = ~(missing | bad | zero)
    if degrees and ok.any():
        swapped = np.asarray(_coords.detect_swapped_lonlat(x, y), dtype=bool) & ok
        if swapped.any():
            x[swapped], y[swapped] = y[swapped].copy(), x[swapped].copy()
            labels = row_labels(frame, id_col, swapped)
            frame.attrs["swapped_rows"] = set(labels)  # named again if they still land outside
            shown = "、".join(labels[:10]) + (" 等" if len(labels) > 10 else "")
            report.append(f"{file}:{int(swapped.sum())} 个{what}的经纬度填反了,已自动对调({shown})")
            problems.note(file, f"{int(swapped.sum())} row(s) have longitude and latitude swapped "
                                "(swapped back for this run)",
                          "swap the 经度/纬度 of these rows in the file", rows=labels)
        out = ok & ((np.abs(x) > 180) | (np.abs(y) > 90))
        if out.any():
            problems.add(file, f"{int(out.sum())} row(s) have coordinates outside longitude "
                               "-180..180 / latitude -90..90",
                         'these look like projected metres: set coords = "gk3" (or the EPSG code) '
                         "in gridplan.toml, or correct the rows", rows=row_labels(frame, id_col, out))
            ok &= ~out
    return x, y, ok


def check_references(frame: pd.DataFrame, column: str, known: Iterable[str], *, id_col: str | None,
                     file: str, target: str, problems: Problems) -> np.ndarray:
    """Values of ``column`` that are not among ``known`` ids; returns the mask of unknown rows."""
    known = set(known)
    vals = frame[column]
    unknown = (vals.notna() & ~vals.isin(known)).to_numpy()
    if unknown.any():
        labels = [f"{lab} ({v})" for lab, v in zip(row_labels(frame, id_col, unknown), vals[unknown])]
        sample = ", ".join(sorted(known)[:8]) + (" …" if len(known) > 8 else "")
        problems.add(file, f"{int(unknown.sum())} row(s) name a {column} that is not in {target}",
                     f"use an id from {target} ({sample or 'none'}), or add it there", rows=labels)
    return unknown


def is_retired(status: pd.Series) -> np.ndarray:
    """Mask of statuses meaning retired / out of service (停运, 拆除, retired, …)."""
    words = [_norm(w) for w in RETIRED]

    def one(v: object) -> bool:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return False
        s = _norm(v)
        return any(w in s for w in words)
    values = status.astype(object).where(status.notna(), None)
    seen = {v: one(v) for v in pd.unique(values)}
    return values.map(seen).to_numpy(dtype=bool)


def parse_status(status: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Read 台区 statuses: returns (retired mask, unknown mask).

    Empty means in service; a status containing a :data:`RETIRED` word is retired; one containing
    an :data:`IN_SERVICE` word is in service; anything else is unknown (an error for the caller).
    """
    retired = is_retired(status)
    words = [_norm(w) for w in IN_SERVICE]

    def known(v: object) -> bool:
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "":
            return True
        s = _norm(v)
        return any(w in s for w in words)
    values = status.astype(object).where(status.notna(), None)
    seen = {v: known(v) for v in pd.unique(values)}
    unknown = ~values.map(seen).to_numpy(dtype=bool) & ~retired
    return retired, unknown


def parse_bool(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse yes/no values (是/否, 常开/常闭, true/false, 1/0); returns (values, unreadable mask)."""
    out = np.zeros(len(values), dtype=bool)
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values.tolist()):
        if isinstance(v, (bool, np.bool_)):
            out[i] = bool(v)
            continue
        if isinstance(v, (int, float, np.integer, np.floating)) and not (isinstance(v, float) and np.isnan(v)):
            out[i] = bool(v)
            continue
        s = _norm(v) if v is not None and not (isinstance(v, float) and np.isnan(v)) else ""
        s = s.removesuffix(".0")
        if s in _TRUE:
            out[i] = True
        elif s not in _FALSE:
            bad[i] = True
    return out, bad


def parse_area_class(values: pd.Series, default: str) -> tuple[list[str], np.ndarray]:
    """Map area classes to 城区/农村/特殊边远 (empty -> ``default``); returns (values, unknown mask)."""
    out: list[str] = []
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values.tolist()):
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "":
            out.append(default)
            continue
        key = _norm(v)
        out.append(AREA_CLASSES.get(key, default))
        bad[i] = key not in AREA_CLASSES
    return out, bad


# ----------------------------------------------------------------------------- spatial (metres)

def repair_townships(town: gpd.GeoDataFrame, *, file: str, problems: Problems,
                     report: list[str], rel_tol: float = 1e-6) -> gpd.GeoDataFrame:
    """Repair invalid township polygons with ``shapely.make_valid`` when the area barely changes.

    A polygon is repaired when the relative change of its area is below ``rel_tol``; otherwise
    (e.g. a bow-tie, whose two halves cancel) it is an error naming the township.
    """
    geoms = town.geometry.to_numpy()
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if empty.any():
        problems.add(file, f"{int(empty.sum())} township(s) have no geometry",
                     "draw the polygon of these townships", rows=row_labels(town, "township_id", empty))
    invalid = ~empty & ~shapely.is_valid(geoms)
    repaired, failed = [], []
    new = geoms.copy()
    for i in np.flatnonzero(invalid):
        fixed = shapely.make_valid(geoms[i])
        polys = [g for g in shapely.get_parts(fixed) if g.geom_type in ("Polygon", "MultiPolygon")]
        fixed = shapely.union_all(polys) if polys else shapely.Polygon()
        before, after = abs(geoms[i].area), fixed.area
        label = row_labels(town.iloc[[i]], "township_id")[0]
        reason = shapely.is_valid_reason(geoms[i])
        if before > 0 and abs(after - before) / before < rel_tol:
            new[i] = fixed
            repaired.append(label)
        else:
            failed.append(f"{label} ({reason}; area {before:,.0f} m² -> {after:,.0f} m² if repaired)")
    if failed:
        problems.add(file, f"{len(failed)} township polygon(s) are invalid and cannot be repaired "
                           "without changing their area",
                     "fix these polygons in QGIS (Vector > Geometry Tools > Check Validity / "
                     "Fix Geometries) and check their outline", rows=failed)
    if repaired:
        report.append(f"{file}:已修复 {len(repaired)} 个无效的乡镇多边形(面积不变):"
                      f"{'、'.join(repaired)}")
    out = town.copy()
    out.geometry.values[:] = new  # keeps the CRS
    return out


def check_overlaps(town: gpd.GeoDataFrame, *, file: str, problems: Problems,
                   rel_tol: float = 1e-6, min_m2: float = 1.0) -> None:
    """Pairs of townships that overlap by more than ``min_m2`` and ``rel_tol`` of the smaller one."""
    geoms = town.geometry.to_numpy()
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms)) & shapely.is_valid(geoms)
    idx = np.flatnonzero(ok)
    tree = shapely.STRtree(geoms[idx])
    left, right = tree.query(geoms[idx], predicate="intersects")
    pairs = []
    ids = row_labels(town, "township_id")
    for a, b in zip(idx[left], idx[right]):
        if a >= b:
            continue
        area = shapely.intersection(geoms[a], geoms[b]).area
        smaller = min(geoms[a].area, geoms[b].area)
        if area > min_m2 and area > rel_tol * smaller:
            pairs.append(f"{ids[a]} & {ids[b]} ({area:,.0f} m²)")
    if pairs:
        problems.add(file, f"{len(pairs)} pair(s) of townships overlap",
                     "townships must not overlap: fix the shared borders (QGIS: Vector > Geometry "
                     "Tools > Check Validity, or snap the boundaries)", rows=sorted(pairs))


def assign_townships(points: gpd.GeoSeries, town: gpd.GeoDataFrame, *, frame: pd.DataFrame,
                     id_col: str, file: str, snap_m: float, problems: Problems,
                     report: list[str], what: str = "台区",
                     prefer: Sequence[tuple[np.ndarray, str] | None] | None = None,
                     snapped: list[dict[str, Any]] | None = None,
                     near_fix: str | None = None) -> np.ndarray:
    """Index (into ``town``) of the township containing each point, or -1.

    A point on a shared border goes to the first township in file order. A point in no township
    polygon (a GPS point just across a simplified border, a coast, an islet the polygons leave out)
    is snapped when a township lies within ``snap_m`` metres: the nearest of its ``prefer``
    townships (the township or station the ledger names) when one is that close, else the nearest
    township. Every snapped point is named in ``report`` (id, distance, township) and appended to
    ``snapped``. Points farther than ``snap_m`` are a problem naming the distance in metres to the
    nearest township.

    Parameters
    ----------
    points
        The points, in the same metric CRS as ``town``.
    town
        Townships (``township_id``, optional ``name``), valid polygons.
    frame
        The points' layer (for row labels; ``attrs["swapped_rows"]`` names rows swapped back).
    id_col, file, what
        Id column, file name and what a point is (in Chinese) for the messages.
    snap_m
        Snap tolerance in metres.
    problems, report
        Collectors of problems and of repairs (one Chinese sentence).
    prefer
        Per point, ``(township indices, basis)``: the townships the ledger says the point belongs
        to (its township, the townships of its station or feeder) and a Chinese word for why; or
        None.
    snapped
        Snapped points are appended here as ``{"id", "township_id", "township", "distance_m",
        "basis"}``.
    near_fix
        The fix to give for points beyond ``snap_m`` but within :data:`FAR_M` (default: correct
        them or raise ``snap_tolerance_m``); e.g. "declare the coordinate systems" when the layer
        is off by a GCJ-02-like shift.

    Returns
    -------
    numpy.ndarray of int
    """
    geoms = town.geometry.to_numpy()
    pts = points.to_numpy()
    usable = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
    tree = shapely.STRtree(geoms)
    out = np.full(len(pts), -1, dtype=int)
    p_idx, t_idx = tree.query(pts[usable], predicate="intersects")
    order = np.lexsort((t_idx, p_idx))
    p_idx, t_idx = p_idx[order], t_idx[order]
    first = np.unique(p_idx, return_index=True)[1]
    usable_idx = np.flatnonzero(usable)
    out[usable_idx[p_idx[first]]] = t_idx[first]
    lost = np.flatnonzero(usable & (out < 0))
    if len(lost) == 0:
        return out
    near, dist = tree.query_nearest(pts[lost], return_distance=True, all_matches=False)
    nearest = np.full(len(lost), -1)
    distance = np.full(len(lost), np.inf)
    nearest[near[0]] = near[1]
    distance[near[0]] = dist
    tids = row_labels(town, "township_id")
    tnames = [str(n) if isinstance(n, str) and n else t
              for n, t in zip(town.get("name", tids), tids)]
    labels = np.asarray(row_labels(frame, id_col, np.isin(np.arange(len(pts)), lost)), dtype=object)
    chosen, chosen_d, basis = nearest.copy(), distance.copy(), ["最近乡镇"] * len(lost)
    for k, i in enumerate(lost.tolist()):
        pref = prefer[i] if prefer is not None else None
        if pref is None or len(pref[0]) == 0:
            continue
        cand = np.asarray(pref[0], dtype=int)
        d = shapely.distance(pts[i], geoms[cand])
        j = int(np.argmin(d))
        if d[j] <= snap_m:
            chosen[k], chosen_d[k], basis[k] = cand[j], float(d[j]), pref[1]
    snap = chosen_d <= snap_m
    if snap.any():
        out[lost[snap]] = chosen[snap]
        rows = [(lab, round(float(d), 1), int(t), b) for lab, d, t, b, s in
                zip(labels, chosen_d, chosen, basis, snap) if s]
        if snapped is not None:
            snapped.extend({"id": lab, "township_id": tids[t], "township": tnames[t],
                            "distance_m": d, "basis": b} for lab, d, t, b in rows)
        shown = "、".join(f"{lab}({d:.0f} 米)→{tnames[t]}" for lab, d, t, _ in rows)
        report.append(f"{file}:{len(rows)} 个{what}不在任何乡镇多边形内,距乡镇边界不超过 "
                      f"{snap_m:g} 米(snap_tolerance_m),已归入最近的乡镇(台账写明所属乡镇或供电所时,"
                      f"归入其中最近的):{shown}")
    near_miss = ~snap & (distance <= FAR_M)
    far = ~snap & (distance > FAR_M)
    swapped = frame.attrs.get("swapped_rows", set())

    def why(lab: str) -> str:
        return "; lon/lat were swapped in the file and swapped back" if lab in swapped else ""

    if near_miss.any():
        entries = [f"{lab} ({d:,.0f} m from {tids[t]}{why(lab)})" for lab, d, t in
                zip(labels[near_miss], distance[near_miss], nearest[near_miss])]
        need = float(np.ceil(distance[near_miss].max()))
        problems.add(file, f"{int(near_miss.sum())} point(s) lie in no township, farther than "
                           f"snap_tolerance_m = {snap_m:g} m from every township",
                     near_fix or "correct their coordinates, extend the township polygons, or set "
                     f"snap_tolerance_m = {need:.0f} (or more) in gridplan.toml [input] to snap "
                     "them to the nearest township", rows=entries)
    if far.any():
        entries = [f"{lab} ({d / 1000:,.1f} km from {tids[t]}{why(lab)})" for lab, d, t in
                zip(labels[far], distance[far], nearest[far])]
        problems.add(file, f"{int(far.sum())} point(s) lie outside the county (more than "
                           f"{FAR_M / 1000:g} km from every township)",
                     "check these coordinates: a typo, a wrong coordinate system (coords in "
                     "gridplan.toml) or a point of another county", rows=entries)
    return out


# ----------------------------------------------------------------------------- attributes

class LoadContext(Protocol):
    """What the attribute steps of one load read and add to (the loader's context)."""

    params: Params
    problems: Problems
    report: list[str]


def _clean_text(values: pd.Series, how: str) -> pd.Series:
    """Texts as a schema column says: ``blank`` (stripped, empty -> None), ``strip``, ``none``."""
    if how == "none":
        return values
    blank = how == "blank"

    def one(v: object) -> object:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        return str(v).strip() or None if blank else str(v).strip()
    return values.map(one)


def _parse_number_column(col: Column, fr: pd.DataFrame, *, id_col: str | None, file: str,
                         problems: Problems) -> np.ndarray:
    """Read one ``number`` / ``count`` column and record its problems; return the values to keep."""
    vals, bad = parse_numbers(fr[col.name], thousands=col.thousands)
    check_numbers(fr, vals, bad, column=col.name, id_col=id_col, file=file, problems=problems,
                  required=col.filled, minimum=col.minimum)
    if col.kind == "count":
        check_counts(fr, vals, column=col.name, id_col=id_col, file=file, problems=problems)
    if col.maximum is not None:
        check_plausible(fr, vals, column=col.name, maximum=col.maximum, unit=col.unit or "",
                        id_col=id_col, file=file, problems=problems)
    if col.kind != "count":
        return vals
    ok = np.isfinite(vals) & (vals >= (col.minimum or 0))
    if col.maximum is not None:
        ok &= vals <= col.maximum
    return np.where(ok, np.round(np.where(ok, vals, 0)), 0).astype(np.int64)


def parse_columns(spec: LayerSpec, fr: pd.DataFrame, *, file: str, problems: Problems) -> pd.DataFrame:
    """Read the ids, texts and numbers of one layer as its schema declares, checking them.

    Ids become text (:func:`gridplan.io.as_ids`), texts are cleaned (and an empty one may take
    another column's value, ``default_from``), numbers are parsed from text and checked
    (non-numeric, infinite, missing when ``filled``, below ``minimum``, whole for a ``count``,
    above ``maximum``); every fault is one problem naming the rows. ``class`` columns are only
    cleaned: their words are read by the layer's step in :data:`LAYER_STEPS`. Columns declared
    ``drop_if_empty`` are dropped when no row has a value.
    """
    for col in spec.fields:
        if col.derived or col.kind in ("coord", "flag") or col.name not in fr.columns:
            continue
        if col.kind == "id":
            fr[col.name] = as_ids(fr[col.name])
        elif col.kind in ("text", "class"):
            fr[col.name] = _clean_text(fr[col.name], col.clean)
            if col.default_from:
                text = fr[col.name].astype(object) if col.clean == "none" else fr[col.name]
                fr[col.name] = text.where(text.notna(), fr[col.default_from])
        else:
            fr[col.name] = _parse_number_column(col, fr, id_col=spec.id_col, file=file,
                                                problems=problems)
    empty = [c.name for c in spec.fields if c.drop_if_empty and c.name in fr.columns
             and fr[c.name].isna().all()]
    return fr.drop(columns=empty) if empty else fr


def _before_transformers(ctx: LoadContext, file: str, fr: pd.DataFrame) -> pd.DataFrame | None:
    """Statuses: an unknown one is a problem; retired 台区 are left out (and counted)."""
    retired, unknown = parse_status(fr["status"])
    if unknown.any():
        vals = fr.loc[unknown, "status"].astype(str).tolist()
        ctx.problems.add(file, f"{int(unknown.sum())} 台区 have an unknown status (运行状态)",
                         "write a status gridplan knows — in service: " + "、".join(IN_SERVICE)
                         + "; retired (left out of the plan): " + "、".join(RETIRED)
                         + " — or leave it empty (in service)",
                         rows=[f"{r} ({v!r})" for r, v in
                               zip(row_labels(fr, "transformer_id", unknown), vals)])
    if retired.any():
        ctx.report.append(f"{file}:已排除 {int(retired.sum())} 个停运/拆除台区")
        fr = fr.loc[~retired].reset_index(drop=True)
    if len(fr) == 0:
        ctx.problems.add(file, "the ledger has no 台区 in service"
                         + (f" (all {int(retired.sum())} are retired)" if retired.any() else ""),
                         "add the 台区 in service (运行) to the ledger")
        return None
    return fr


def _townships(ctx: LoadContext, file: str, fr: pd.DataFrame) -> pd.DataFrame:
    """Area classes (given, else from the name, else the default) and the serving station."""
    cls, bad = parse_area_class(fr["area_class"], ctx.params.area_class)
    if bad.any():
        vals = fr.loc[bad, "area_class"].astype(str).tolist()
        ctx.problems.add(file, f"{int(bad.sum())} township(s) have an unknown area_class",
                         "use 城区, 农村 or 特殊边远 (or leave it empty for the default "
                         f"{ctx.params.area_class})",
                         rows=[f"{r} ({v})" for r, v in zip(row_labels(fr, "township_id", bad), vals)])
    given = fr["area_class"].map(lambda v: v is not None and not (isinstance(v, float) and np.isnan(v))
                                 and str(v).strip() != "").to_numpy(dtype=bool)
    fr["area_class"], fr["class_source"] = classify_townships(
        fr["name"], pd.Series(cls, index=fr.index).where(given), default=ctx.params.area_class)
    missing = fr["station_id"].isna().to_numpy()
    if missing.any():
        ctx.problems.add(file, f"{int(missing.sum())} township(s) have no station_id",
                         "fill in the 供电所 that serves each township",
                         rows=row_labels(fr, "township_id", missing))
    return fr


def _stations(ctx: LoadContext, file: str, fr: pd.DataFrame) -> pd.DataFrame:
    """Station kinds (供电所 / 中心供电所 / 供电服务站) and the parents of service stations."""
    kinds = []
    bad = np.zeros(len(fr), dtype=bool)
    for i, v in enumerate(fr["kind"].tolist()):
        key = "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip().lower()
        kinds.append(STATION_KINDS.get(key, "供电所"))
        bad[i] = key != "" and key not in STATION_KINDS
    if bad.any():
        ctx.problems.add(file, f"{int(bad.sum())} station(s) have an unknown kind",
                         "use 供电所, 中心供电所 or 供电服务站", rows=row_labels(fr, "station_id", bad))
    fr["kind"] = kinds
    check_references(fr, "parent_id", fr["station_id"].dropna(), id_col="station_id", file=file,
                     target=file, problems=ctx.problems)
    return fr


def _managers(ctx: LoadContext, file: str, fr: pd.DataFrame) -> pd.DataFrame:
    """Every manager has a station; roles (岗位) are known posts."""
    missing = fr["station_id"].isna().to_numpy()
    if missing.any():
        ctx.problems.add(file, f"{int(missing.sum())} manager(s) have no station_id",
                         "fill in the 供电所 of each manager", rows=row_labels(fr, "manager_id", missing))
    fr["role"], bad_role = parse_posts(fr["role"])
    if bad_role.any():
        ctx.problems.add(file, f"{int(bad_role.sum())} manager(s) have an unknown role (岗位)",
                         "write 高压 (HV staff, owns 10 kV segments), 台区经理 / 低压, 所长, 内勤 / 综合 "
                         "or 营业厅 / 柜台, or leave it empty",
                         rows=row_labels(fr, "manager_id", bad_role))
    return fr


def _switches(ctx: LoadContext, file: str, fr: pd.DataFrame) -> pd.DataFrame:
    """``normally_open`` read as yes/no."""
    val, bad = parse_bool(fr["normally_open"])
    if bad.any():
        ctx.problems.add(file, f"{int(bad.sum())} switch(es) have an unreadable normally_open",
                         "write 是/否, 常开/常闭, true/false or 1/0", rows=row_labels(fr, "switch_id", bad))
    fr["normally_open"] = val
    return fr


def _feeders(ctx: LoadContext, file: str, fr: pd.DataFrame) -> pd.DataFrame:
    """One row per feeder or per line section: every row of a feeder names the same substation.

    Sections that leave ``substation_id`` empty take the one their feeder's other rows name.
    """
    named = fr.loc[fr["feeder_id"].notna() & fr["substation_id"].notna(), ["feeder_id", "substation_id"]]
    subs = named.drop_duplicates().groupby("feeder_id", sort=True)["substation_id"].agg(sorted)
    conflict = subs[subs.map(len) > 1]
    if len(conflict):
        ctx.problems.add(file, f"{len(conflict)} feeder(s) name more than one substation_id across "
                               "their rows (line sections)",
                         "give every section of a feeder the substation_id it leaves from "
                         "(or split it into feeders with their own feeder_id)",
                         rows=[f"{fid} ({', '.join(v)})" for fid, v in conflict.items()])
    one = subs[subs.map(len) == 1].map(lambda v: v[0])
    fill = fr["substation_id"].isna() & fr["feeder_id"].isin(one.index)
    if fill.any():
        fr.loc[fill, "substation_id"] = fr.loc[fill, "feeder_id"].map(one)
        logging.getLogger("gridplan.io.load").info(
            "%s: substation_id of %d section row(s) taken from their feeder's other rows",
            file, int(fill.sum()))
    return fr


Step = Callable[[LoadContext, str, pd.DataFrame], "pd.DataFrame | None"]

#: Per layer, the steps that read what a schema cannot declare: ``(before, after)``
#: :func:`parse_columns` (``before`` may drop rows, e.g. retired 台区; returning None stops).
LAYER_STEPS: dict[str, tuple[Step | None, Step | None]] = {
    "townships": (None, _townships),
    "stations": (None, _stations),
    "transformers": (_before_transformers, None),
    "managers": (None, _managers),
    "switches": (None, _switches),
    "feeders": (None, _feeders),
}
