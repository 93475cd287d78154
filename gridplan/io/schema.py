"""The layers of a county folder: what each file must hold, and how its attributes are read.

:data:`SPECS` says, per layer, whether the file is required, which extensions it may have, its
geometry, its id column and its required and optional columns. ``_ATTRS`` holds, per layer, the
step that parses and checks the values of its columns (ids, numbers, kinds, roles, …), collecting
problems on the load's context. :mod:`gridplan.io.load` runs them; the input contract is in its
docstring. ``SPECS`` and ``LayerSpec`` are re-exported by :mod:`gridplan.io.load`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import io as _io
from . import validate as V

if TYPE_CHECKING:
    from .load import _Ctx

__all__ = ["SPECS", "LayerSpec"]

# The messages keep the logger of the public module that runs these steps.
log = logging.getLogger("gridplan.io.load")


@dataclass(frozen=True)
class LayerSpec:
    """What one layer file must hold."""

    name: str
    required: bool
    exts: tuple[str, ...]
    geom: str  # "polygon", "point" or "line"
    id_col: str | None
    columns: tuple[str, ...]
    optional: tuple[str, ...] = field(default=())
    what: str = "要素"
    #: Whether ``id_col`` must be unique (feeders: one row per line section repeats the feeder_id).
    unique_id: bool = True


_GEO = _io.GEO_EXTS
_ANY = _io.GEO_EXTS + _io.TABLE_EXTS
SPECS: dict[str, LayerSpec] = {s.name: s for s in (
    LayerSpec("townships", True, _GEO, "polygon", "township_id", ("township_id", "name", "station_id"),
              ("area_class", "class_source"), "乡镇"),
    LayerSpec("stations", True, _ANY, "point", "station_id", ("station_id", "name"),
              ("kind", "parent_id", "phone"), "供电所"),
    LayerSpec("transformers", True, _ANY, "point", "transformer_id",
              ("transformer_id", "name", "customers", "capacity_kva"),
              ("feeder_id", "status", "village", "current_manager_id", "current_grid_id",
               "station_id", "township_id", "sales_kwh"), "台区"),
    LayerSpec("feeders", False, _GEO, "line", "feeder_id", ("feeder_id",),
              ("name", "substation_id", "poles", "line_id"), "线路", unique_id=False),
    LayerSpec("switches", False, _ANY, "point", "switch_id", ("switch_id", "normally_open"),
              ("feeder_id",), "开关"),
    LayerSpec("substations", False, _ANY, "point", "substation_id", ("substation_id",), ("name",),
              "变电站"),
    LayerSpec("managers", False, _io.TABLE_EXTS, "home", "manager_id",
              ("manager_id", "name", "station_id"), ("phone", "max_workload", "role"), "台区经理"),
    LayerSpec("villages", False, _GEO, "polygon", "village_id", ("village_id", "name"),
              ("township_id",), "村"),
    LayerSpec("barriers", False, _GEO, "line", None, (), ("name", "kind"), "障碍线"),
    LayerSpec("roads", False, _GEO, "line", None, (), ("name", "speed_kmh"), "道路"),
    LayerSpec("candidates", False, _ANY, "point", "candidate_id", ("candidate_id",), ("name",),
              "候选服务站点"),
)}

_GEOM_TYPES = {"polygon": ("Polygon", "MultiPolygon"), "point": ("Point",),
               "line": ("LineString", "MultiLineString", "Polygon", "MultiPolygon"),
               "home": ("Point",)}


# ----------------------------------------------------------------------------- attributes

def _attrs_townships(ctx: _Ctx, file: str, fr: pd.DataFrame) -> pd.DataFrame:
    fr["station_id"] = _io.as_ids(fr["station_id"])
    fr["name"] = fr["name"].astype(object).where(fr["name"].notna(), fr["township_id"])
    cls, bad = V.parse_area_class(fr["area_class"], ctx.params.area_class)
    if bad.any():
        vals = fr.loc[bad, "area_class"].astype(str).tolist()
        ctx.problems.add(file, f"{int(bad.sum())} township(s) have an unknown area_class",
                         "use 城区, 农村 or 特殊边远 (or leave it empty for the default "
                         f"{ctx.params.area_class})",
                         rows=[f"{r} ({v})" for r, v in zip(V.row_labels(fr, "township_id", bad), vals)])
    from ..metrics.response import classify_townships

    given = fr["area_class"].map(lambda v: v is not None and not (isinstance(v, float) and np.isnan(v))
                                 and str(v).strip() != "").to_numpy(dtype=bool)
    fr["area_class"], fr["class_source"] = classify_townships(
        fr["name"], pd.Series(cls, index=fr.index).where(given), default=ctx.params.area_class)
    missing = fr["station_id"].isna().to_numpy()
    if missing.any():
        ctx.problems.add(file, f"{int(missing.sum())} township(s) have no station_id",
                         "fill in the 供电所 that serves each township",
                         rows=V.row_labels(fr, "township_id", missing))
    return fr


def _attrs_stations(ctx: _Ctx, file: str, fr: pd.DataFrame) -> pd.DataFrame:
    fr["parent_id"] = _io.as_ids(fr["parent_id"])
    fr["phone"] = _io.as_ids(fr["phone"])  # 值班电话: text, as written (leading zeros kept)
    kinds = []
    bad = np.zeros(len(fr), dtype=bool)
    for i, v in enumerate(fr["kind"].tolist()):
        key = "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip().lower()
        kinds.append(V.STATION_KINDS.get(key, "供电所"))
        bad[i] = key != "" and key not in V.STATION_KINDS
    if bad.any():
        ctx.problems.add(file, f"{int(bad.sum())} station(s) have an unknown kind",
                         "use 供电所, 中心供电所 or 供电服务站", rows=V.row_labels(fr, "station_id", bad))
    fr["kind"] = kinds
    V.check_references(fr, "parent_id", fr["station_id"].dropna(), id_col="station_id", file=file,
                       target=file, problems=ctx.problems)
    return fr


def _attrs_transformers(ctx: _Ctx, file: str, fr: pd.DataFrame) -> pd.DataFrame | None:
    retired, unknown = V.parse_status(fr["status"])
    if unknown.any():
        vals = fr.loc[unknown, "status"].astype(str).tolist()
        ctx.problems.add(file, f"{int(unknown.sum())} 台区 have an unknown status (运行状态)",
                         "write a status gridplan knows — in service: " + "、".join(V.IN_SERVICE)
                         + "; retired (left out of the plan): " + "、".join(V.RETIRED)
                         + " — or leave it empty (in service)",
                         rows=[f"{r} ({v!r})" for r, v in
                               zip(V.row_labels(fr, "transformer_id", unknown), vals)])
    if retired.any():
        ctx.report.append(f"{file}:已排除 {int(retired.sum())} 个停运/拆除台区")
        fr = fr.loc[~retired].reset_index(drop=True)
    if len(fr) == 0:
        ctx.problems.add(file, "the ledger has no 台区 in service"
                         + (f" (all {int(retired.sum())} are retired)" if retired.any() else ""),
                         "add the 台区 in service (运行) to the ledger")
        return None
    for col in ("feeder_id", "current_manager_id", "current_grid_id", "station_id", "township_id"):
        fr[col] = _io.as_ids(fr[col])
    for col in ("name", "village", "status"):
        fr[col] = fr[col].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
                              else str(v).strip() or None)
    fr["name"] = fr["name"].where(fr["name"].notna(), fr["transformer_id"])
    cust, bad = _io.parse_numbers(fr["customers"], thousands=True)
    V.check_numbers(fr, cust, bad, column="customers", id_col="transformer_id", file=file,
                    problems=ctx.problems)
    cap, bad_c = _io.parse_numbers(fr["capacity_kva"], thousands=True)
    V.check_numbers(fr, cap, bad_c, column="capacity_kva", id_col="transformer_id", file=file,
                    problems=ctx.problems)
    V.check_counts(fr, cust, column="customers", id_col="transformer_id", file=file,
                   problems=ctx.problems)
    V.check_plausible(fr, cust, column="customers", maximum=V.MAX_CUSTOMERS, unit="households",
                      id_col="transformer_id", file=file, problems=ctx.problems)
    V.check_plausible(fr, cap, column="capacity_kva", maximum=V.MAX_CAPACITY_KVA, unit="kVA",
                      id_col="transformer_id", file=file, problems=ctx.problems)
    ok = np.isfinite(cust) & (cust >= 0) & (cust <= V.MAX_CUSTOMERS)
    fr["customers"] = np.where(ok, np.round(np.where(ok, cust, 0)), 0).astype(np.int64)
    fr["capacity_kva"] = cap
    sales, bad_s = _io.parse_numbers(fr["sales_kwh"], thousands=True)
    V.check_numbers(fr, sales, bad_s, column="sales_kwh", id_col="transformer_id", file=file,
                    problems=ctx.problems, required=False)
    fr["sales_kwh"] = sales
    for col in ("current_manager_id", "current_grid_id", "sales_kwh"):
        if fr[col].isna().all():
            fr = fr.drop(columns=col)
    return fr


def _attrs_managers(ctx: _Ctx, file: str, fr: pd.DataFrame) -> pd.DataFrame:
    fr["station_id"] = _io.as_ids(fr["station_id"])
    fr["name"] = fr["name"].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
                                else str(v).strip())
    fr["phone"] = _io.as_ids(fr["phone"])
    missing = fr["station_id"].isna().to_numpy()
    if missing.any():
        ctx.problems.add(file, f"{int(missing.sum())} manager(s) have no station_id",
                         "fill in the 供电所 of each manager", rows=V.row_labels(fr, "manager_id", missing))
    mw, bad = _io.parse_numbers(fr["max_workload"], thousands=True)
    V.check_numbers(fr, mw, bad, column="max_workload", id_col="manager_id", file=file,
                    problems=ctx.problems, required=False)
    fr["max_workload"] = mw
    from ..people.staff import parse_posts

    fr["role"], bad_role = parse_posts(fr["role"])
    if bad_role.any():
        ctx.problems.add(file, f"{int(bad_role.sum())} manager(s) have an unknown role (岗位)",
                         "write 高压 (HV staff, owns 10 kV segments), 台区经理 / 低压, 所长, 内勤 / 综合 "
                         "or 营业厅 / 柜台, or leave it empty",
                         rows=V.row_labels(fr, "manager_id", bad_role))
    return fr


def _attrs_switches(ctx: _Ctx, file: str, fr: pd.DataFrame) -> pd.DataFrame:
    fr["feeder_id"] = _io.as_ids(fr["feeder_id"])
    val, bad = V.parse_bool(fr["normally_open"])
    if bad.any():
        ctx.problems.add(file, f"{int(bad.sum())} switch(es) have an unreadable normally_open",
                         "write 是/否, 常开/常闭, true/false or 1/0", rows=V.row_labels(fr, "switch_id", bad))
    fr["normally_open"] = val
    return fr


def _attrs_feeders(ctx: _Ctx, file: str, fr: pd.DataFrame) -> pd.DataFrame:
    """One row per feeder or per line section: every row of a feeder names the same substation.

    Sections that leave ``substation_id`` empty take the one their feeder's other rows name.
    """
    fr["substation_id"] = _io.as_ids(fr["substation_id"])
    fr["line_id"] = _io.as_ids(fr["line_id"])
    poles, bad = _io.parse_numbers(fr["poles"], thousands=True)
    V.check_numbers(fr, poles, bad, column="poles", id_col="feeder_id", file=file,
                    problems=ctx.problems, required=False)
    fr["poles"] = poles
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
        log.info("%s: substation_id of %d section row(s) taken from their feeder's other rows",
                 file, int(fill.sum()))
    return fr


def _attrs_villages(ctx: _Ctx, file: str, fr: pd.DataFrame) -> pd.DataFrame:
    fr["township_id"] = _io.as_ids(fr["township_id"])
    return fr


def _attrs_candidates(ctx: _Ctx, file: str, fr: pd.DataFrame) -> pd.DataFrame:
    fr["name"] = fr["name"].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
                                else str(v).strip() or None)
    fr["name"] = fr["name"].where(fr["name"].notna(), fr["candidate_id"])
    return fr


def _attrs_roads(ctx: _Ctx, file: str, fr: pd.DataFrame) -> pd.DataFrame:
    sp, bad = _io.parse_numbers(fr["speed_kmh"])
    V.check_numbers(fr, sp, bad, column="speed_kmh", id_col=None, file=file,
                    problems=ctx.problems, required=False)
    fr["speed_kmh"] = sp
    return fr


_ATTRS: dict[str, Callable[..., pd.DataFrame | None]] = {
    "townships": _attrs_townships, "stations": _attrs_stations, "transformers": _attrs_transformers,
    "managers": _attrs_managers, "switches": _attrs_switches, "feeders": _attrs_feeders,
    "villages": _attrs_villages, "roads": _attrs_roads,
    "candidates": _attrs_candidates,
}
