"""Assign one transformer-area manager (台区经理) from the roster to each grid.

Within each station, managers and grids are matched by an exact assignment
(:func:`scipy.optimize.linear_sum_assignment`) that minimises the travel from each manager's home
to the grid's centre (when homes are given), never gives a manager a grid heavier than their
``max_workload``, and, when the ledger carries a current plan, prefers the manager who already looks
after most of the grid's households. Fewer managers than grids is reported per station with the
shortage; such grids get placeholder managers (``placeholder`` = True), as do all grids when there
is no roster.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from ..model import County
from ..settings import Params

__all__ = ["MANAGER_COLUMNS", "assign_managers", "hv_staff", "hv_staff_rows", "parse_roles"]

log = logging.getLogger(__name__)

MANAGER_COLUMNS = ["manager_id", "name", "phone", "station_id", "grid_id", "workload",
                   "max_workload", "placeholder", "hv_km", "role"]

#: ``role`` values (岗位 / 类型) of the roster: HV staff own 10 kV segments (``hv_owner = "separate"``),
#: everyone else is a 台区经理. Matched after stripping spaces, case-insensitively.
HV_ROLES = ("hv", "高压", "高压运维", "高压线路", "高压专责", "线路运维")
LV_ROLES = ("lv", "低压", "台区经理", "台区", "低压运维", "")

_FORBIDDEN = 1e12  # cost of a pair that breaks max_workload
_STABILITY_M = 50_000.0  # metres of travel one unit of "share of current households" is worth


def assign_managers(grids: gpd.GeoDataFrame, transformers: gpd.GeoDataFrame, county: County, *,
                    params: Params, flags: dict[str, str] | None = None
                    ) -> tuple[gpd.GeoDataFrame, pd.DataFrame, list[str]]:
    """Match roster managers to grids, station by station.

    Parameters
    ----------
    grids
        From :func:`gridplan.lv.territory.grid_polygons`.
    transformers
        The 台区 with ``grid_id`` and ``workload`` (and optionally ``current_manager_id``).
    county
        The county; ``county.managers`` is the roster (may be None).
    params
        Planning parameters (``stability`` weighs keeping current managers).
    flags
        Grid flags from the partition (e.g. ``heavy-unit``), copied into ``grids.flags``.

    Returns
    -------
    grids, managers, notes
        ``grids`` with ``manager_id``, ``manager_name``, ``phone``, ``placeholder``, ``workload``,
        ``customers``, ``n_transformers``, ``flags``; the roster with each manager's ``grid_id``
        (None when unassigned); Chinese notes on shortages and surpluses.
    """
    grids = grids.copy()
    stats = transformers.groupby("grid_id").agg(workload=("workload", "sum"),
                                                customers=("customers", "sum"),
                                                n_transformers=("transformer_id", "size"))
    for col in stats.columns:
        grids[col] = grids["grid_id"].map(stats[col]).fillna(0)
    grids["customers"] = grids["customers"].astype(int)
    grids["n_transformers"] = grids["n_transformers"].astype(int)
    grids["flags"] = grids["grid_id"].map(flags or {}).astype(object).fillna("")
    roster = _roster(county)
    current = _current_shares(transformers)
    holders = _current_holders(transformers)
    pinned = _pinned(transformers)
    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    picks: dict[str, dict[str, Any]] = {}
    for sid in sorted(grids["station_id"].dropna().unique()):
        g = grids[grids["station_id"] == sid]
        m = roster[roster["station_id"] == sid] if roster is not None else roster
        chosen, unassigned = _match_station(g, m, current, params, pinned, holders)
        picks.update(chosen)
        short = len(g) - len(chosen)
        if m is not None and len(m) and short > 0:
            notes.append(f"供电所 {sid}：网格 {len(g)} 个，台区经理 {len(m)} 人，缺 {short} 人（已生成占位经理）")
        if m is not None and len(unassigned):
            notes.append(f"供电所 {sid}：{len(unassigned)} 名台区经理未分配网格（{'、'.join(unassigned['manager_id'])}）")
        if m is not None:
            for _, r in unassigned.iterrows():
                rows.append(_manager_row(r, None, 0.0, placeholder=False))
    for _, grid in grids.iterrows():
        gid = grid["grid_id"]
        if gid in picks:
            man = picks[gid]
            rows.append(_manager_row(man, gid, grid["workload"], placeholder=False))
        else:
            man = {"manager_id": f"待定-{gid}", "name": f"待定（{gid}）", "phone": "",
                   "station_id": grid["station_id"], "max_workload": np.nan}
            picks[gid] = man
            rows.append(_manager_row(man, gid, grid["workload"], placeholder=True))
    if roster is None:
        notes.append("未提供台区经理名册：各网格使用占位经理")
    grids["manager_id"] = grids["grid_id"].map(lambda g: picks[g]["manager_id"])
    grids["manager_name"] = grids["grid_id"].map(lambda g: picks[g]["name"])
    grids["phone"] = grids["grid_id"].map(lambda g: picks[g]["phone"])
    grids["placeholder"] = grids["manager_id"].str.startswith("待定-")
    managers = pd.DataFrame(rows, columns=MANAGER_COLUMNS)
    return grids, managers, notes


def _roster(county: County) -> pd.DataFrame | None:
    if county.managers is None or len(county.managers) == 0:
        return None
    m = county.managers.copy()
    for col, default in (("phone", ""), ("max_workload", np.nan)):
        if col not in m.columns:
            m[col] = default
    m["phone"] = m["phone"].fillna("").astype(str)
    return m.sort_values("manager_id").reset_index(drop=True)


def _current_shares(tr: gpd.GeoDataFrame) -> pd.DataFrame | None:
    """Share of each grid's households currently looked after by each manager."""
    if "current_manager_id" not in tr.columns or tr["current_manager_id"].isna().all():
        return None
    w = tr.assign(w=tr["customers"].clip(lower=0) + 1)
    tab = w.groupby(["grid_id", "current_manager_id"])["w"].sum()
    return (tab / tab.groupby(level=0).transform("sum")).rename("share").reset_index()


def _current_holders(tr: gpd.GeoDataFrame) -> dict[str, str]:
    """grid_id of the current plan -> the manager who looks after most of its households now."""
    if "current_grid_id" not in tr.columns or "current_manager_id" not in tr.columns:
        return {}
    cur = tr[tr["current_grid_id"].notna() & tr["current_manager_id"].notna()]
    if not len(cur):
        return {}
    w = cur.assign(w=cur["customers"].clip(lower=0) + 1)
    tab = w.groupby(["current_grid_id", "current_manager_id"])["w"].sum().reset_index()
    tab = tab.sort_values(["current_grid_id", "w", "current_manager_id"], ascending=[True, False, True])
    top = tab.drop_duplicates("current_grid_id")
    return {str(g): str(m) for g, m in zip(top["current_grid_id"], top["current_manager_id"], strict=True)}


def _pinned(tr: gpd.GeoDataFrame) -> dict[str, str]:
    """grid_id -> the manager its 台区 are pinned to (see :mod:`gridplan.replan.pins`)."""
    if "pin_manager_id" not in tr.columns:
        return {}
    p = tr[tr["pin_manager_id"].notna()]
    return {str(g): str(m) for g, m in p.groupby("grid_id")["pin_manager_id"].first().items()}


def _match_station(g: gpd.GeoDataFrame, m: pd.DataFrame | None, current: pd.DataFrame | None,
                   params: Params, pinned: dict[str, str] | None = None,
                   holders: dict[str, str] | None = None
                   ) -> tuple[dict[str, dict[str, Any]], pd.DataFrame]:
    if m is None or len(m) == 0:
        return {}, pd.DataFrame(columns=["manager_id"])
    centres = g.geometry.representative_point()
    cost = np.zeros((len(m), len(g)))
    homes = m.geometry if isinstance(m, gpd.GeoDataFrame) else None
    if homes is not None:
        has = ~(homes.is_empty | homes.isna())
        for k in np.flatnonzero(has.to_numpy()):
            cost[k] = centres.distance(homes.iloc[k]).to_numpy()
    if current is not None:
        cur = current[current["grid_id"].isin(g["grid_id"])]
        col = {gid: j for j, gid in enumerate(g["grid_id"])}
        row = {mid: i for i, mid in enumerate(m["manager_id"])}
        for r in cur.itertuples(index=False):
            if r.current_manager_id in row:
                cost[row[r.current_manager_id], col[r.grid_id]] -= params.stability * _STABILITY_M * r.share
        # A grid that kept its id (it holds most of that current grid, see _patches) stays with
        # the manager of that grid: the id on a printed wall map keeps its meaning.
        for j, gid in enumerate(g["grid_id"].astype(str)):
            i = row.get((holders or {}).get(gid, ""))
            if i is not None:
                cost[i, j] -= params.stability * _STABILITY_M
    cap = pd.to_numeric(m["max_workload"], errors="coerce").to_numpy()
    load = g["workload"].to_numpy()
    over = np.isfinite(cap)[:, None] & (load[None, :] > cap[:, None] + 1e-9)
    cost[over] = _FORBIDDEN
    row_of = {mid: i for i, mid in enumerate(m["manager_id"].astype(str))}
    for j, gid in enumerate(g["grid_id"]):
        i = row_of.get((pinned or {}).get(gid, ""))
        if i is not None:  # a pin: this manager gets this grid, whatever it costs
            cost[i, :] = _FORBIDDEN
            cost[:, j] = _FORBIDDEN
            cost[i, j] = -_FORBIDDEN
    ri, ci = linear_sum_assignment(cost)
    ok = cost[ri, ci] < _FORBIDDEN
    for r, c in zip(ri[ok], ci[ok], strict=True):
        if over[r, c]:
            log.warning("pinned manager %s gets grid %s above their max_workload",
                        m["manager_id"].iloc[r], g["grid_id"].iloc[c])
    chosen = {g["grid_id"].iloc[c]: m.iloc[r].to_dict() for r, c in zip(ri[ok], ci[ok], strict=True)}
    taken = set(m["manager_id"].iloc[ri[ok]])
    return chosen, m[~m["manager_id"].isin(taken)]


def _manager_row(man: Mapping[str, Any] | pd.Series, grid_id: object, workload: float, *,
                 placeholder: bool) -> dict[str, Any]:
    get: Callable[[str], Any] = man.get if isinstance(man, dict) else man.__getitem__
    return {"manager_id": str(get("manager_id")), "name": str(get("name")),
            "phone": "" if pd.isna(get("phone")) else str(get("phone")),
            "station_id": get("station_id"), "grid_id": grid_id, "workload": float(workload),
            "max_workload": float(get("max_workload")) if pd.notna(get("max_workload")) else np.nan,
            "placeholder": placeholder, "hv_km": 0.0, "role": "lv"}


def parse_roles(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Read a roster's ``role`` column: ``"hv"`` / ``"lv"`` per row, and a mask of unreadable values.

    Empty values are ``"lv"`` (a 台区经理); see :data:`HV_ROLES` and :data:`LV_ROLES`.
    """
    text = values.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v))
                      else str(v).strip().lower())
    hv = text.isin(HV_ROLES).to_numpy()
    lv = text.isin(LV_ROLES).to_numpy()
    return np.where(hv, "hv", "lv").astype(object), ~(hv | lv)


def hv_staff_rows(staff: pd.DataFrame | None) -> pd.DataFrame:
    """Return the roster rows of HV staff as ``Plan.managers`` rows (no grid, ``role="hv"``)."""
    rows = [] if staff is None else [dict(_manager_row(r, None, 0.0, placeholder=False), role="hv")
                                     for _, r in staff.sort_values("manager_id").iterrows()]
    return pd.DataFrame(rows, columns=MANAGER_COLUMNS)


def hv_staff(managers: pd.DataFrame | None) -> np.ndarray:
    """Mask of the roster rows that are HV staff (``role`` 高压 / hv); all False without a role column."""
    if managers is None or "role" not in managers.columns:
        return np.zeros(0 if managers is None else len(managers), dtype=bool)
    roles, _ = parse_roles(managers["role"])
    mask: np.ndarray = roles == "hv"
    return mask
