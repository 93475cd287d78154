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
import shapely
from scipy.optimize import linear_sum_assignment

from ..lv.groups import plan_groups
from ..model import County
from ..settings import Params

__all__ = [
    "LEADER_ROLES",
    "MANAGER_COLUMNS",
    "assign_group_leaders",
    "assign_managers",
    "hv_staff",
    "hv_staff_rows",
    "is_leader",
    "parse_roles",
    "service_groups",
]

log = logging.getLogger(__name__)

MANAGER_COLUMNS = ["manager_id", "name", "phone", "station_id", "grid_id", "workload",
                   "max_workload", "placeholder", "hv_km", "role"]

#: ``role`` values (岗位 / 类型) of the roster: HV staff own 10 kV segments (``hv_owner = "separate"``),
#: everyone else is a 台区经理. Matched after stripping spaces, case-insensitively.
HV_ROLES = ("hv", "高压", "高压运维", "高压线路", "高压专责", "线路运维")
LV_ROLES = ("lv", "低压", "台区经理", "台区", "低压运维", "")
#: ``role`` values of a service group leader (供电服务小组组长): a 台区经理 who also leads a group.
LEADER_ROLES = ("组长", "小组长", "服务小组组长", "供电服务小组组长", "网格组长", "leader",
                "groupleader", "group leader")

_FORBIDDEN = 1e12  # cost of a pair that breaks max_workload
_STABILITY_M = 50_000.0  # metres of travel one unit of "share of current households" is worth


def assign_managers(grids: gpd.GeoDataFrame, transformers: gpd.GeoDataFrame, county: County, *,
                    params: Params, flags: dict[str, str] | None = None,
                    grid_codes: tuple[np.ndarray, np.ndarray] | None = None
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
    grid_codes
        ``label_codes(transformers["grid_id"].to_numpy())`` (sorted grid ids, every 台区's
        code) when already computed: the 台区 are grouped by them.

    Returns
    -------
    grids, managers, notes
        ``grids`` with ``manager_id``, ``manager_name``, ``phone``, ``placeholder``, ``workload``,
        ``customers``, ``n_transformers``, ``flags``; the roster with each manager's ``grid_id``
        (None when unassigned); Chinese notes on shortages and surpluses.
    """
    grids = grids.copy()
    stats = _grid_stats(transformers, grid_codes)
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
    # without a roster no station has anyone to match: every grid gets a placeholder below
    for sid in sorted(grids["station_id"].dropna().unique()) if roster is not None else []:
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
    per_grid = _grid_rows(grids, picks)
    if roster is None:
        notes.append("未提供台区经理名册：各网格使用占位经理")
    for col, key in (("manager_id", "manager_id"), ("manager_name", "name"), ("phone", "phone")):
        grids[col] = _picked(grids, picks, key)
    ids = grids["manager_id"].tolist()
    grids["placeholder"] = (np.array([m.startswith("待定-") for m in ids], dtype=bool)
                            if ids and all(type(m) is str for m in ids)
                            else grids["manager_id"].str.startswith("待定-"))
    # column by column (as pd.DataFrame(rows) infers the dtypes; with no row at all, no column
    # would be inferred: object columns, as a frame of no rows has them)
    managers = (pd.DataFrame({c: [r[c] for r in rows] + per_grid[c] for c in MANAGER_COLUMNS},
                             columns=MANAGER_COLUMNS)
                if rows or len(grids) else pd.DataFrame([], columns=MANAGER_COLUMNS))
    return grids, managers, notes


def _grid_stats(transformers: gpd.GeoDataFrame,
                grid_codes: tuple[np.ndarray, np.ndarray] | None) -> pd.DataFrame:
    """``workload``, ``customers`` and ``n_transformers`` of every grid, by grid id.

    Grouped by the grid codes when given (integers, not a million strings to hash): the same
    groups with the same rows in the same order, so the same sums.
    """
    if grid_codes is not None and (grid_codes[1] < 0).any():
        grid_codes = None  # a 台区 without grid: not grouped (as groupby drops a missing key)
    stats = transformers.groupby("grid_id" if grid_codes is None else grid_codes[1]).agg(
        workload=("workload", "sum"), customers=("customers", "sum"),
        n_transformers=("transformer_id", "size"))
    if grid_codes is not None:
        stats = stats.set_axis(pd.Index(np.asarray(grid_codes[0])[stats.index.to_numpy()],
                                        dtype=object, name="grid_id"))
    return stats


def _picked(grids: gpd.GeoDataFrame, picks: dict[str, dict[str, Any]], key: str) -> pd.Series:
    """``grids["grid_id"].map(lambda g: picks[g][key])``, made from a list when every value is a str."""
    values = [picks[g][key] for g in grids["grid_id"].tolist()]
    if values and all(type(v) is str for v in values):
        return pd.Series(values, index=grids.index)
    return grids["grid_id"].map(lambda g: picks[g][key])


def _grid_rows(grids: gpd.GeoDataFrame, picks: dict[str, dict[str, Any]]) -> dict[str, list[Any]]:
    """The roster rows of the grids' managers, column by column, in grid order (:func:`_manager_row`).

    A grid without a pick gets a placeholder manager, added to ``picks``. The placeholders (every
    grid of a county without a roster) are made column by column, not one dict each.
    """
    gids, stations = grids["grid_id"].tolist(), grids["station_id"].tolist()
    loads = grids["workload"].tolist()
    made = {i: _manager_row(picks[g], g, load, placeholder=False)
            for i, (g, load) in enumerate(zip(gids, loads, strict=True)) if g in picks}
    n = len(gids)
    cols: dict[str, list[Any]] = {
        "manager_id": [f"待定-{g}" for g in gids], "name": [f"待定（{g}）" for g in gids],
        "phone": [""] * n, "station_id": list(stations), "grid_id": list(gids),
        "workload": [float(x) for x in loads], "max_workload": [np.nan] * n,
        "placeholder": [True] * n, "hv_km": [0.0] * n, "role": ["lv"] * n}
    for i, (g, station) in enumerate(zip(gids, stations, strict=True)):
        if i not in made:
            picks[g] = {"manager_id": cols["manager_id"][i], "name": cols["name"][i], "phone": "",
                        "station_id": station, "max_workload": np.nan}
    for i, row in made.items():
        for c in MANAGER_COLUMNS:
            cols[c][i] = row[c]
    return cols


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
    lv = (text.isin(LV_ROLES) | text.isin(LEADER_ROLES)).to_numpy()
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


def is_leader(values: pd.Series) -> np.ndarray:
    """Mask of the roster ``role`` values naming a service group leader (组长, see :data:`LEADER_ROLES`)."""
    text = values.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v))
                      else "".join(str(v).split()).lower())
    return np.asarray(text.isin([r.replace(" ", "") for r in LEADER_ROLES]), dtype=bool)


_IN_GROUP = 0.0  # cost of a leader who looks after a grid of the group
_AWAY = 1e7  # added to the distance (m) from a leader's home to a group they hold no grid of
_NO_HOME = 1e9  # a leader without home and without a grid in the group


def assign_group_leaders(grids: gpd.GeoDataFrame, county: County
                         ) -> tuple[gpd.GeoDataFrame, list[str]]:
    """One leader (组长) per service group, station by station.

    Roster rows whose ``role`` is 组长 / group leader (:data:`LEADER_ROLES`) lead the groups of
    their station: by an exact assignment that prefers a leader who looks after a grid of the group,
    then the nearest home to the group (by its grids' label points). A group left without one is led
    by the manager of its heaviest grid (ties: lowest grid id).

    Parameters
    ----------
    grids
        With ``group_id``, ``station_id``, ``workload``, ``manager_id``, ``manager_name``, ``phone``.
    county
        ``county.managers`` (``role`` 组长 / ``leader``, raw or as parsed by the loader).

    Returns
    -------
    grids, notes
        ``grids`` with ``group_leader``, ``group_leader_id``, ``group_leader_phone`` and
        ``group_leader_source`` (``roster`` or ``heaviest-grid``); Chinese notes on stations with
        more or fewer leaders than groups.
    """
    grids = grids.copy()
    roster = _roster(county)
    leaders = (roster[is_leader(roster["role"])] if roster is not None and "role" in roster.columns
               else None)
    grid_of = dict(zip(grids["manager_id"].astype(str), grids["grid_id"].astype(str)))
    picks: dict[str, tuple[str, str, str, str]] = {}
    notes: list[str] = []
    for sid, g in grids.groupby(grids["station_id"].astype(str), sort=True):
        groups = sorted(g["group_id"].astype(str).unique())
        mine = leaders[leaders["station_id"].astype(str) == sid] if leaders is not None else None
        if mine is not None and len(mine):
            chosen = _match_leaders(g, groups, mine, grid_of)
            picks.update(chosen)
            spare = sorted(set(mine["manager_id"].astype(str)) - {v[0] for v in chosen.values()})
            if spare:
                notes.append(f"供电所 {sid}：组长 {len(mine)} 人、服务小组 {len(groups)} 个，"
                             f"{'、'.join(spare)} 未担任组长")
            if len(chosen) < len(groups):
                notes.append(f"供电所 {sid}：服务小组 {len(groups)} 个、名册组长 {len(mine)} 人，"
                             f"{len(groups) - len(chosen)} 个小组由工作量最大网格的台区经理任组长")
        for group in groups:
            if group not in picks:
                top = g[g["group_id"].astype(str) == group].sort_values(
                    ["workload", "grid_id"], ascending=[False, True]).iloc[0]
                picks[group] = (str(top["manager_id"]), str(top["manager_name"]),
                                "" if pd.isna(top.get("phone")) else str(top.get("phone")), "heaviest-grid")
    key = grids["group_id"].astype(str)
    grids["group_leader_id"] = key.map(lambda k: picks[k][0])
    grids["group_leader"] = key.map(lambda k: picks[k][1])
    grids["group_leader_phone"] = key.map(lambda k: picks[k][2])
    grids["group_leader_source"] = key.map(lambda k: picks[k][3])
    return grids, notes


def _match_leaders(g: gpd.GeoDataFrame, groups: list[str], leaders: pd.DataFrame,
                   grid_of: dict[str, str]) -> dict[str, tuple[str, str, str, str]]:
    """Exact assignment of one station's roster leaders to its groups."""
    group_of_grid = dict(zip(g["grid_id"].astype(str), g["group_id"].astype(str)))
    centres = {k: shapely.union_all(np.asarray(v.geometry.values)).representative_point()
               for k, v in g.groupby(g["group_id"].astype(str))}
    homes = leaders.geometry if isinstance(leaders, gpd.GeoDataFrame) else None
    cost = np.full((len(leaders), len(groups)), _NO_HOME)
    for i, mid in enumerate(leaders["manager_id"].astype(str)):
        home = homes.iloc[i] if homes is not None else None
        for j, group in enumerate(groups):
            if group_of_grid.get(grid_of.get(mid, "")) == group:
                cost[i, j] = _IN_GROUP
            elif home is not None and not home.is_empty:
                cost[i, j] = _AWAY + float(home.distance(centres[group]))
    ri, ci = linear_sum_assignment(cost)
    out = {}
    for r, c in zip(ri, ci):
        row = leaders.iloc[r]
        phone = row.get("phone")
        out[groups[c]] = (str(row["manager_id"]), str(row["name"]),
                          "" if phone is None or pd.isna(phone) else str(phone), "roster")
    return out


def service_groups(grids: gpd.GeoDataFrame, transformers: gpd.GeoDataFrame, county: County, *,
                   params: Params) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, list[str]]:
    """The pipeline stage of service groups (供电服务小组): groups, then their leaders.

    Does nothing unless ``params.groups_per_station`` or ``params.grids_per_group`` is set.

    Returns
    -------
    grids, transformers, notes
        ``grids`` with ``group_id``, ``group_name`` and the leader columns of
        :func:`assign_group_leaders`; ``transformers`` with their grid's ``group_id``.
    """
    if params.groups_per_station is None and params.grids_per_group is None:
        return grids, transformers, []
    res = plan_groups(grids, county.stations, params=params)
    grids = grids.copy()
    grids["group_id"] = res.group_id
    grids["group_name"] = res.group_name
    grids, notes = assign_group_leaders(grids, county)
    transformers = transformers.copy()
    transformers["group_id"] = transformers["grid_id"].map(grids.set_index("grid_id")["group_id"])
    return grids, transformers, res.notes + notes
