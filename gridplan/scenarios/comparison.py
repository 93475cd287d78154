"""Before/after figures of a station merge, candidate rows and ranking, and the output files.

Helpers of :mod:`gridplan.scenarios` (kept apart so each module reads in one sitting).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import pages
from ..cells import write_csv, write_xlsx_cell
from ..files import OutputDir, output_folder
from ..metrics.kpi import balance_stats
from ..metrics.response import response_kpis
from ..model import County
from ..people.staff import staff_change
from ..pipeline import Plan

if TYPE_CHECKING:
    from . import Scenario

__all__ = [
    "CANDIDATE_HEADERS",
    "COMPARISON_HEADERS",
    "MAX_P95_INCREASE",
    "MAX_SERVICE_POINTS",
    "METRIC_HEADERS",
    "SERVICE_STATION",
    "TOWNSHIP_COLUMNS",
    "VERDICTS",
    "Snapshot",
    "beyond_table",
    "candidate_row",
    "candidate_score",
    "commitment_table",
    "compare",
    "manager_travel",
    "rank_candidates",
    "station_pairs",
    "township_table",
    "verdict",
    "worst_worsening",
    "write_candidates",
    "write_scenario",
]

log = logging.getLogger(__name__)

SERVICE_STATION = "供电服务站"


@dataclass
class Snapshot:
    """One side of a comparison: a plan and the response time of every 台区 under it."""

    plan: Plan
    response: pd.DataFrame

    @property
    def response_kpi(self) -> dict[str, Any]:
        """:func:`gridplan.metrics.response.response_kpis` of :attr:`response`."""
        return response_kpis(self.response)


# --------------------------------------------------------------------------- figures

#: (key, Chinese label, county-wide?, merged-scope?) of every comparison row, in order.
_ROWS: tuple[tuple[str, str, bool, bool], ...] = (
    ("stations", "供电所数（不含服务站）", True, True),
    ("service_points", "服务网点数（供电所+供电服务站）", True, True),
    ("grids", "所需台区经理（网格数）", True, True),
    ("roster", "名册台区经理人数", True, True),
    ("shortage", "缺员（占位经理）", True, True),
    ("cv", "网格工作量变异系数", True, True),
    ("max_over_mean", "最大/平均工作量", True, True),
    ("households_per_manager", "每名台区经理户数", True, True),
    ("mean_minutes", "平均抢修到达时间（分钟）", True, True),
    ("p95_minutes", "95% 抢修到达时间（分钟）", True, True),
    ("max_minutes", "最长抢修到达时间（分钟）", True, True),
    ("transformers_beyond", "超出承诺时间的台区数", True, True),
    ("households_beyond", "超出承诺时间的户数", True, True),
    ("transformers_changing_manager", "更换台区经理的台区数", True, True),
)

METRIC_HEADERS = {"scope": "范围", "metric": "指标代码", "label": "指标", "before": "合并前",
                  "after": "合并后", "change": "变化"}

#: The columns of ``comparison.csv`` / ``comparison.xlsx``: one row per affected township.
TOWNSHIP_COLUMNS = ("township_id", "township", "transformers", "customers", "p95_before", "p95_after",
                    "max_before", "max_after", "beyond_before", "beyond_after", "area_class",
                    "class_source")
COMPARISON_HEADERS = {"township_id": "乡镇编号", "township": "乡镇", "transformers": "台区数",
                      "customers": "户数", "p95_before": "合并前95%到达（分钟）",
                      "p95_after": "合并后95%到达（分钟）", "max_before": "合并前最长（分钟）",
                      "max_after": "合并后最长（分钟）", "beyond_before": "合并前超时台区",
                      "beyond_after": "合并后超时台区", "area_class": "区域类别",
                      "class_source": "类别来源", "station_before": "合并前供电所",
                      "absorbed": "并入区域", "worst_id": "恶化最多的台区", "worst_name": "台区名称",
                      "worst_before": "其合并前（分钟）", "worst_after": "其合并后（分钟）",
                      "worst_change": "其变化（分钟）"}


def _figures(snap: Snapshot, scope: set[str] | None) -> dict[str, float]:
    """The comparison figures of one snapshot, county-wide (``scope`` None) or for some stations."""
    p = snap.plan
    g = p.grids
    st = p.county.stations
    rt = snap.response
    m = p.county.managers
    if scope is not None:
        g = g[g["station_id"].astype(str).isin(scope)]
        st = st[st["station_id"].astype(str).isin(scope)
                | st.get("parent_id", pd.Series(None, index=st.index)).astype(str).isin(scope)]
        rt = rt[rt["station_id"].astype(str).isin(scope)]
        if m is not None:
            m = m[m["station_id"].astype(str).isin(scope)]
    kinds = st["kind"].astype(str) if "kind" in st.columns else pd.Series("", index=st.index)
    real = g[g["n_transformers"] > 0] if "n_transformers" in g.columns else g
    bal = balance_stats(real["workload"].to_numpy()) if len(real) else balance_stats(np.zeros(0))
    roster = 0 if m is None else len(m)
    shortage = int(g["placeholder"].sum()) if "placeholder" in g.columns else len(g)
    resp = response_kpis(rt)["county"] if len(rt) else {}
    households = int(rt["customers"].sum())
    return {
        "stations": int((kinds != SERVICE_STATION).sum()), "service_points": len(st),
        "grids": len(g), "roster": roster, "shortage": shortage,
        "surplus": max(0, roster - (len(g) - shortage)),
        "cv": bal["cv"], "max_over_mean": bal["max_over_mean"],
        "households_per_manager": round(households / len(g), 1) if len(g) else 0.0,
        "mean_minutes": resp.get("mean_minutes"), "p95_minutes": resp.get("p95_minutes"),
        "max_minutes": resp.get("max_minutes"),
        "transformers_beyond": resp.get("transformers_beyond", 0),
        "households_beyond": resp.get("households_beyond", 0),
    }


def changing_manager(before: Plan, after: Plan, scope: set[str] | None = None) -> pd.Series:
    """Bool per 台区 (by ``transformer_id``): its manager differs after the merge."""
    b = before.transformers.set_index(before.transformers["transformer_id"].astype(str))["manager_id"]
    a = after.transformers.set_index(after.transformers["transformer_id"].astype(str))
    changed = a["manager_id"].astype(str) != b.reindex(a.index).astype(str)
    if scope is not None:
        changed = changed[a["station_id"].astype(str).isin(scope)]
    return changed


def compare(before: Snapshot, after: Snapshot, *, stations: list[str] | None = None) -> pd.DataFrame:
    """The before/after table of a merge.

    Parameters
    ----------
    before, after
        The county as it is, and after the merge.
    stations
        The merged stations: adds a second block of rows (范围 = 合并范围) for them alone.

    Returns
    -------
    pandas.DataFrame
        ``scope`` (全县 / 合并范围), ``metric``, ``label`` (Chinese), ``before``, ``after``,
        ``change`` (after − before).
    """
    scopes: list[tuple[str, set[str] | None]] = [("全县", None)]
    if stations:
        scopes.append(("合并范围", set(map(str, stations))))
    rows = []
    for name, scope in scopes:
        fb, fa = _figures(before, scope), _figures(after, scope)
        fb["transformers_changing_manager"] = 0
        fa["transformers_changing_manager"] = int(changing_manager(before.plan, after.plan, scope).sum())
        for key, label, county_wide, merged in _ROWS:
            if (scope is None and not county_wide) or (scope is not None and not merged):
                continue
            vb, va = fb.get(key), fa.get(key)
            change = None if vb is None or va is None else round(float(va) - float(vb), 4)
            rows.append({"scope": name, "metric": key, "label": label, "before": vb, "after": va,
                         "change": change})
    return pd.DataFrame(rows)


def beyond_table(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """台区 beyond their commitment after the merge, with their minutes before and ``new``."""
    prev = before.set_index("transformer_id")
    out = after[after["beyond"]].copy()
    out["minutes_before"] = out["transformer_id"].map(prev["minutes"])
    out["point_before"] = out["transformer_id"].map(prev["point_id"])
    out["new"] = ~out["transformer_id"].map(prev["beyond"]).fillna(False).astype(bool)
    cols = ["transformer_id", "name", "township_id", "station_id", "customers", "area_class",
            "commitment", "point_id", "point_name", "minutes", "distance_m", "point_before",
            "minutes_before", "new"]
    return out[cols].sort_values(["new", "minutes"], ascending=[False, False]).reset_index(drop=True)


def _p95(m: pd.Series) -> float | None:
    v = m.to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return round(float(np.percentile(v, 95)), 2) if len(v) else None


def _max(m: pd.Series) -> float | None:
    v = m.to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return round(float(v.max()), 2) if len(v) else None


def township_table(before: pd.DataFrame, after: pd.DataFrame, townships: pd.DataFrame,
                   township_ids: list[str]) -> pd.DataFrame:
    """Per township, before and after: 台区, households, response p95 / max, 台区 beyond commitment.

    Parameters
    ----------
    before, after
        :func:`gridplan.metrics.response.response_times` of the two sides (same 台区).
    townships
        The township layer (``township_id``, ``name``).
    township_ids
        The affected townships, in the order of the rows (absorbed first).

    Returns
    -------
    pandas.DataFrame
        Exactly :data:`TOWNSHIP_COLUMNS`. p95 is linear interpolation over the township's 台区; a
        township without 台区 has empty minutes and zero counts.
    """
    names = townships.set_index(townships["township_id"].astype(str))["name"]
    b = before.set_index("transformer_id")
    rows = []
    for tid in township_ids:
        a = after[after["township_id"].astype(str) == tid]
        pb = b.loc[a["transformer_id"]] if len(a) else b.iloc[:0]
        cls = a["area_class"].iloc[0] if len(a) else None
        src = a["class_source"].iloc[0] if len(a) and "class_source" in a.columns else None
        rows.append({"township_id": tid, "township": str(names.get(tid, tid)), "transformers": len(a),
                     "customers": int(a["customers"].sum()), "p95_before": _p95(pb["minutes"]),
                     "p95_after": _p95(a["minutes"]), "max_before": _max(pb["minutes"]),
                     "max_after": _max(a["minutes"]), "beyond_before": int(pb["beyond"].sum()),
                     "beyond_after": int(a["beyond"].sum()), "area_class": cls, "class_source": src})
    return pd.DataFrame(rows, columns=list(TOWNSHIP_COLUMNS))


def worst_worsening(before: pd.DataFrame, after: pd.DataFrame, township_ids: list[str], *,
                    per_township: int = 5) -> pd.DataFrame:
    """The 台区 whose response time worsens most, per township (largest increase first).

    Returns
    -------
    pandas.DataFrame
        ``township_id``, ``transformer_id``, ``name``, ``customers``, ``minutes_before``,
        ``minutes_after``, ``change`` (minutes), ``commitment``, ``beyond_after``; at most
        ``per_township`` rows per township, only 台区 that worsen.
    """
    prev = before.set_index("transformer_id")["minutes"]
    a = after[after["township_id"].astype(str).isin(township_ids)].copy()
    a["minutes_before"] = a["transformer_id"].map(prev)
    a["change"] = (a["minutes"] - a["minutes_before"]).round(2)
    a = a[a["change"] > 0]
    a["_order"] = a["township_id"].astype(str).map({t: i for i, t in enumerate(township_ids)})
    a = a.sort_values(["_order", "change", "transformer_id"], ascending=[True, False, True],
                      kind="stable")
    a = a.groupby("_order", sort=True).head(per_township)
    return a.rename(columns={"minutes": "minutes_after", "beyond": "beyond_after"})[
        ["township_id", "transformer_id", "name", "customers", "minutes_before", "minutes_after",
         "change", "commitment", "beyond_after"]].reset_index(drop=True)


def commitment_table(rt: pd.DataFrame) -> pd.DataFrame:
    """How many 台区 are held to which commitment, and where their class came from.

    Returns
    -------
    pandas.DataFrame
        ``area_class``, ``commitment`` (minutes), ``class_source``, ``transformers``,
        ``customers``, ``beyond``; one row per (class, source).
    """
    if not len(rt):
        return pd.DataFrame(columns=["area_class", "commitment", "class_source", "transformers",
                                     "customers", "beyond"])
    src = rt["class_source"] if "class_source" in rt.columns else pd.Series("data", index=rt.index)
    g = rt.assign(class_source=src).groupby(["area_class", "commitment", "class_source"], sort=True)
    return g.agg(transformers=("transformer_id", "size"), customers=("customers", "sum"),
                 beyond=("beyond", "sum")).reset_index()


def manager_travel(plan: Plan, travel: Any, *, base_of: dict[str, str] | None = None,
                   grid_base: dict[str, str] | None = None, stations: set[str] | None = None
                   ) -> pd.DataFrame:
    """Each 台区经理's mean travel from his base to the 台区 of his grid.

    Parameters
    ----------
    plan
        The plan (``transformers`` with ``grid_id``, ``manager_id``, ``station_id``).
    travel
        :class:`gridplan.metrics.response.TravelTimes` from every point that can be a base.
    base_of
        Base point per station id (a station is its own base when missing).
    grid_base
        Base point per grid id (overrides ``base_of``).
    stations
        Only the grids of these stations.

    Returns
    -------
    pandas.DataFrame
        ``grid_id``, ``manager_id``, ``station_id``, ``base``, ``transformers``, ``mean_minutes``,
        ``mean_km`` (mean route length).
    """
    tr = plan.transformers
    if stations is not None:
        tr = tr[tr["station_id"].astype(str).isin(stations)]
    base_of, grid_base = base_of or {}, grid_base or {}
    pos = {p: i for i, p in enumerate(travel.points["point_id"].astype(str))}
    row = {t: i for i, t in enumerate(travel.transformer_id)}
    rows = []
    for gid, g in tr.groupby("grid_id", sort=True):
        sid = str(g["station_id"].iloc[0])
        base = grid_base.get(str(gid), base_of.get(sid, sid))
        if base not in pos:
            continue
        r = np.array([row[t] for t in g["transformer_id"].astype(str)])
        rows.append({"grid_id": gid, "manager_id": g["manager_id"].iloc[0], "station_id": sid,
                     "base": base, "transformers": len(g),
                     "mean_minutes": round(float(travel.minutes[r, pos[base]].mean()), 2),
                     "mean_km": round(float(travel.metres[r, pos[base]].mean()) / 1000.0, 3)})
    return pd.DataFrame(rows, columns=["grid_id", "manager_id", "station_id", "base", "transformers",
                                       "mean_minutes", "mean_km"])


# --------------------------------------------------------------------------- candidates

#: Thresholds of the verdict (see the README): the largest increase of an absorbed township's p95
#: response (minutes) a merge may cause and still be 可合并, and the most service points a 需设服务站
#: merge may need.
MAX_P95_INCREASE = 30.0
MAX_SERVICE_POINTS = 1
VERDICTS = ("可合并", "需设服务站", "不宜合并")


def verdict(*, new_beyond: int, p95_increase: float, points_needed: int | None,
            uncoverable: int, max_p95_increase: float = MAX_P95_INCREASE,
            max_service_points: int = MAX_SERVICE_POINTS) -> tuple[str, list[str]]:
    """The verdict of a merge and its reasons (Chinese).

    * 可合并: no 台区 newly beyond its commitment, and no absorbed township's p95 response rises
      by more than ``max_p95_increase`` minutes;
    * 需设服务站: otherwise, if at most ``max_service_points`` service points (location set
      covering over the closed station, the township seats and ``candidates.*``) bring every
      newly-beyond 台区 back within its commitment and none is out of every site's reach;
    * 不宜合并: otherwise.

    Parameters
    ----------
    new_beyond
        台区 beyond their commitment after the merge that were within it before.
    p95_increase
        The largest p95 increase over the absorbed townships (minutes).
    points_needed
        Service points needed (None: not computed, as when ``new_beyond`` is 0).
    uncoverable
        Newly-beyond 台区 that no candidate site brings within the commitment.

    Returns
    -------
    verdict, reasons
    """
    reasons = []
    if new_beyond:
        reasons.append(f"{new_beyond} 个台区将超出抢修到达承诺时间")
    if p95_increase > max_p95_increase:
        reasons.append(f"并入乡镇95%到达时间最多增加 {p95_increase:.1f} 分钟（阈值 {max_p95_increase:g}）")
    if not reasons:
        return VERDICTS[0], [f"无新增超时台区；并入乡镇95%到达时间最多增加 {max(p95_increase, 0):.1f} 分钟"]
    if new_beyond == 0:
        return VERDICTS[1], reasons + ["宜保留服务站缩短到达时间"]
    if uncoverable:
        return VERDICTS[2], reasons + [f"{uncoverable} 个台区任何候选站点都无法在承诺时间内到达"]
    if points_needed is not None and points_needed <= max_service_points:
        return VERDICTS[1], reasons + [f"设 {points_needed} 个供电服务站即可全部满足承诺"]
    return VERDICTS[2], reasons + [f"需设 {points_needed} 个服务站（超过 {max_service_points} 个）"]


def candidate_score(*, released: int, new_beyond_share: float, p95_increase: float,
                    smallness: float) -> float:
    """The documented score of a merge (higher is better; see the README).

    ``10 × positions released − 200 × share of the merged 台区 newly beyond − 1 × worst p95
    increase of an absorbed township (minutes, ≥ 0) + 20 × smallness of the absorbed station``,
    where smallness = 1 − the absorbed station's mean share of the merged customers, sales
    (when the ledger has ``sales_kwh``), area and townships.

    Examples
    --------
    >>> candidate_score(released=4, new_beyond_share=0.0, p95_increase=12.5, smallness=0.75)
    42.5
    """
    return round(10.0 * released - 200.0 * new_beyond_share - max(p95_increase, 0.0)
                 + 20.0 * smallness, 2)


def station_pairs(county: County, *, touch_m: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of stations whose territories (union of their townships) come within ``touch_m``."""
    t = county.townships[["station_id", "geometry"]].copy()
    t["station_id"] = t["station_id"].astype(str)
    terr = t.dissolve("station_id").reset_index().sort_values("station_id").reset_index(drop=True)
    if len(terr) < 2:
        return []
    left, right = terr.sindex.query(terr.geometry.values, predicate="dwithin", distance=touch_m)
    ids = terr["station_id"].to_numpy()
    return sorted({(ids[i], ids[j]) for i, j in zip(left, right) if i < j})


CANDIDATE_HEADERS = {
    "rank": "排名", "verdict": "结论", "reasons": "理由", "score": "得分", "into": "保留供电所",
    "into_name": "保留供电所名称", "absorbed": "并入供电所", "absorbed_name": "并入供电所名称",
    "households": "合并后户数", "transformers": "合并后台区数", "sales_kwh": "合并后售电量（kWh）",
    "area_km2": "合并后供电面积（km²）", "townships": "合并后乡镇数", "smallness": "并入所规模系数",
    "new_beyond": "新增超时台区数", "households_new_beyond": "新增超时户数", "new_beyond_ids": "新增超时台区",
    "worst_township": "到达时间恶化最多的乡镇", "p95_increase": "并入乡镇95%到达时间最大增加（分钟）",
    "positions_released": "释放岗位", "head_released": "释放所长", "office_released": "释放内勤/综合",
    "counter_released": "释放营业厅/柜台", "managers_saved": "减少台区经理（网格）",
    "grids_before": "合并前网格数", "grids_after": "合并后网格数", "points_needed": "需设服务站数",
    "service_point_sites": "建议服务站位置", "uncoverable": "无法满足承诺的台区数",
    "shortage_before": "合并前缺员", "shortage_after": "合并后缺员", "cv_before": "合并前变异系数",
    "cv_after": "合并后变异系数", "changing_manager": "更换经理台区数",
    "p95_before": "合并前95%到达时间", "p95_after": "合并后95%到达时间",
    "max_minutes_after": "合并后最长到达时间", "beyond_before": "合并前超时台区数",
    "beyond_after": "合并后超时台区数", "keeps_commitment": "满足抢修承诺",
}


def _share(part: float, whole: float) -> float:
    return float(part) / float(whole) if whole and whole > 0 else 0.5


def station_size(county: County, station_id: str) -> dict[str, float]:
    """Customers, sales (kWh, NaN without ``sales_kwh``), area (km²) and townships of one station."""
    tr = county.transformers[county.transformers["station_id"].astype(str) == station_id]
    t = county.townships[county.townships["station_id"].astype(str) == station_id]
    sales = float(pd.to_numeric(tr["sales_kwh"], errors="coerce").sum()) \
        if "sales_kwh" in tr.columns else float("nan")
    return {"customers": float(tr["customers"].sum()), "sales_kwh": sales,
            "area_km2": float(t.geometry.area.sum()) / 1e6, "townships": float(len(t))}


def smallness(absorbed: dict[str, float], into: dict[str, float]) -> float:
    """1 − the absorbed station's mean share of the merged customers, sales, area and townships."""
    keys = ["customers", "area_km2", "townships"]
    if np.isfinite(absorbed["sales_kwh"]) and np.isfinite(into["sales_kwh"]):
        keys.append("sales_kwh")
    shares = [_share(absorbed[k], absorbed[k] + into[k]) for k in keys]
    return round(1.0 - float(np.mean(shares)), 4)


def candidate_row(county: County, before: Plan, after: Plan, rt_before: pd.DataFrame,
                  rt_after: pd.DataFrame, into: str, other: str, *,
                  points_needed: int | None = None, sites: str = "",
                  uncoverable: int = 0) -> dict[str, Any]:
    """The numbers behind one candidate merge (``other`` into ``into``), its verdict and score.

    Parameters
    ----------
    county
        The county before the merge.
    before, after
        The plans.
    rt_before, rt_after
        Response times (after: the absorbed station closed).
    into, other
        The remaining and the absorbed station.
    points_needed, sites, uncoverable
        The service-point answer for the newly-beyond 台区 (fewest points, their names, 台区 out
        of every site's reach).
    """
    scope = {into, other}
    fb = _figures(Snapshot(before, rt_before), scope)
    fa = _figures(Snapshot(after, rt_after), scope)
    b = beyond_table(rt_before[rt_before["station_id"].isin(scope)],
                     rt_after[rt_after["station_id"].isin(scope)])
    new = b[b["new"]]
    names = county.stations.set_index(county.stations["station_id"].astype(str))["name"]
    absorbed_t = sorted(county.townships.loc[county.townships["station_id"].astype(str) == other,
                                             "township_id"].astype(str))
    tt = township_table(rt_before, rt_after, county.townships, absorbed_t)
    inc = (tt["p95_after"] - tt["p95_before"]).astype(float)
    worst = int(inc.fillna(-np.inf).to_numpy().argmax()) if inc.notna().any() else None
    p95_increase = float(inc.max()) if inc.notna().any() else 0.0
    staff = staff_change(county.managers, into=into, absorbed=[other], kept=[],
                         grids_before=int(fb["grids"]), grids_after=int(fa["grids"])).set_index("post")
    released = int(staff["released"].sum())
    size_a, size_i = station_size(county, other), station_size(county, into)
    small = smallness(size_a, size_i)
    n_after = int((rt_after["station_id"] == into).sum())
    verdict_, reasons = verdict(new_beyond=len(new), p95_increase=p95_increase,
                                points_needed=points_needed, uncoverable=uncoverable)
    sales = size_a["sales_kwh"] + size_i["sales_kwh"]
    return {
        "verdict": verdict_, "reasons": "；".join(reasons),
        "score": candidate_score(released=released, new_beyond_share=len(new) / max(n_after, 1),
                                 p95_increase=p95_increase, smallness=small),
        "into": into, "into_name": names.get(into, into), "absorbed": other,
        "absorbed_name": names.get(other, other),
        "households": int(rt_after.loc[rt_after["station_id"] == into, "customers"].sum()),
        "transformers": n_after, "sales_kwh": round(sales, 1) if np.isfinite(sales) else None,
        "area_km2": round(size_a["area_km2"] + size_i["area_km2"], 2),
        "townships": int(size_a["townships"] + size_i["townships"]), "smallness": small,
        "new_beyond": len(new), "households_new_beyond": int(new["customers"].sum()),
        "new_beyond_ids": "、".join(new["transformer_id"].head(20)) + (" 等" if len(new) > 20 else ""),
        "worst_township": None if worst is None else str(tt["township"].iloc[worst]),
        "p95_increase": round(p95_increase, 2), "positions_released": released,
        "head_released": int(staff.at["head", "released"]),
        "office_released": int(staff.at["office", "released"]),
        "counter_released": int(staff.at["counter", "released"]),
        "managers_saved": fb["grids"] - fa["grids"], "grids_before": fb["grids"],
        "grids_after": fa["grids"], "points_needed": points_needed, "service_point_sites": sites,
        "uncoverable": uncoverable, "shortage_before": fb["shortage"], "shortage_after": fa["shortage"],
        "cv_before": fb["cv"], "cv_after": fa["cv"],
        "changing_manager": int(changing_manager(before, after, scope).sum()),
        "p95_before": fb["p95_minutes"], "p95_after": fa["p95_minutes"],
        "max_minutes_after": fa["max_minutes"],
        "beyond_before": fb["transformers_beyond"], "beyond_after": fa["transformers_beyond"],
        "keeps_commitment": bool(len(new) == 0),
    }


def rank_candidates(df: pd.DataFrame) -> pd.DataFrame:
    """Sort candidates by verdict (可合并, 需设服务站, 不宜合并), then score (high first); add ``rank``."""
    if df.empty:
        return pd.DataFrame(columns=list(CANDIDATE_HEADERS))
    order = {v: i for i, v in enumerate(VERDICTS)}
    df = df.assign(_v=df["verdict"].map(order)).sort_values(
        ["_v", "score", "into", "absorbed"], ascending=[True, False, True, True],
        kind="stable").drop(columns="_v").reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df[[c for c in CANDIDATE_HEADERS if c in df.columns]]


# --------------------------------------------------------------------------- files


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    write_csv(df, path)  # BOM: Excel opens Chinese text correctly; formula-like text quoted


def _cell_value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return None
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, (int, float, str)):
        return v
    return str(v)


def _write_sheets(path: Path, sheets: list[tuple[str, pd.DataFrame, dict[str, str] | None]]) -> None:
    """Write frames as sheets of one workbook; every text cell is a string, never a formula."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    for title, df, headers in sheets:
        ws = wb.create_sheet(title)
        cols = list(df.columns)
        head = [headers.get(c, c) if headers else c for c in cols]
        for j, h in enumerate(head, 1):
            cell = write_xlsx_cell(ws, 1, j, str(h))
            cell.font = Font(bold=True)
        for i, row in enumerate(df.itertuples(index=False), 2):
            for j, v in enumerate(row, 1):
                write_xlsx_cell(ws, i, j, _cell_value(v))  # formula-like text stays text
        ws.freeze_panes = "A2"
        for j, col in enumerate(head, 1):
            width = max([len(str(col))] + [len(str(v)) for v in df.iloc[:200, j - 1]]) if len(df) \
                else len(str(col))
            ws.column_dimensions[get_column_letter(j)].width = min(60, 4 + 1.6 * width)
    wb.save(path)


def _write_xlsx(df: pd.DataFrame, path: Path, *, sheet: str, headers: dict[str, str] | None) -> None:
    _write_sheets(path, [(sheet, df, headers)])


def _response_table(sc: Scenario) -> pd.DataFrame:
    b = sc.before.response.set_index("transformer_id")
    a = sc.after.response
    return pd.DataFrame({
        "transformer_id": a["transformer_id"], "name": a["name"], "township_id": a["township_id"],
        "station_before": a["transformer_id"].map(b["station_id"]), "station_after": a["station_id"],
        "customers": a["customers"], "area_class": a["area_class"],
        "class_source": a.get("class_source"), "commitment": a["commitment"],
        "point_before": a["transformer_id"].map(b["point_id"]), "point_after": a["point_id"],
        "minutes_before": a["transformer_id"].map(b["minutes"]), "minutes_after": a["minutes"],
        "change": (a["minutes"] - a["transformer_id"].map(b["minutes"])).round(2),
        "beyond_before": a["transformer_id"].map(b["beyond"]), "beyond_after": a["beyond"]})


#: The files ``write_scenario`` writes (besides the ``before/`` and ``after/`` plans).
SCENARIO_FILES = ("comparison.csv", "comparison.xlsx", "metrics.csv", "worsening.csv", "beyond.csv",
                  "response.csv", "service_points.csv", "report.xlsx", "scenario.json",
                  "compare.html", "report.html", "before", "after")
#: The files ``write_candidates`` writes.
CANDIDATE_FILES = ("candidates.csv", "candidates.xlsx", "candidates.html", "candidates_map.html")


#: Chinese headers of the decision workbook's detail sheets.
STAFF_HEADERS = {"post": "岗位代码", "label": "岗位", "before": "合并前人数", "released": "释放岗位",
                 "needed_after": "合并后需要", "note": "说明"}
COMMITMENT_HEADERS = {"area_class": "区域类别", "commitment": "承诺（分钟）", "class_source": "类别来源",
                      "transformers": "台区数", "customers": "户数", "beyond": "超时台区数"}
SITE_HEADERS = {"answer": "方案", "point_id": "站点编号", "name": "站点名称", "kind": "类型",
                "lon": "经度", "lat": "纬度", "transformers_served": "服务台区数",
                "newly_within": "恢复达标台区数"}
WORSE_HEADERS = {"township_id": "乡镇编号", "transformer_id": "台区编号", "name": "台区名称",
                 "customers": "户数", "minutes_before": "合并前（分钟）", "minutes_after": "合并后（分钟）",
                 "change": "变化（分钟）", "commitment": "承诺（分钟）", "beyond_after": "合并后超时"}


def site_table(sc: Scenario) -> pd.DataFrame:
    """The proposed service points of a scenario (LSCP, then MCLP), with lon/lat (WGS84)."""
    rows = []
    for label, sp in (("最少服务站（全部达标）", sc.service_points), ("限定数量（最大覆盖）", sc.service_points_k)):
        if sp is None or not len(sp.sites):
            continue
        ll = sp.sites.to_crs(4326)
        for r, g in zip(sp.sites.itertuples(index=False), ll.geometry):
            rows.append({"answer": label, "point_id": r.point_id, "name": r.name, "kind": r.kind,
                         "lon": round(g.x, 6), "lat": round(g.y, 6),
                         "transformers_served": int(r.transformers_served),
                         "newly_within": int(r.newly_within)})
    return pd.DataFrame(rows, columns=list(SITE_HEADERS))


def decision_table(sc: Scenario) -> pd.DataFrame:
    """The first sheet of the decision workbook: verdict, commitments, staff, the absorbed area."""
    rows: list[tuple[str, str, Any]] = [("结论", "结论", sc.verdict), ("结论", "理由", "；".join(sc.reasons))]
    for r in sc.commitments.itertuples(index=False):
        rows.append(("承诺", f"{r.area_class}（{r.commitment:g} 分钟，来源 {r.class_source}）",
                     f"{int(r.transformers)} 个台区，{int(r.customers)} 户，超时 {int(r.beyond)} 个"))
    for r in sc.staff.itertuples(index=False):
        rows.append(("人员", r.label, f"合并前 {r.before} 人，释放 {r.released}，合并后需要 {r.needed_after}"))
    tb, ta = sc.travel_summary
    rows.append(("人员", "台区经理平均出行时间（分钟）", f"{_fmt_num(tb)} → {_fmt_num(ta)}"))
    for r in sc.townships.itertuples(index=False):
        rows.append(("并入乡镇" if r.township_id in sc.absorbed_townships else "保留乡镇",
                     f"{r.township}（{r.township_id}）",
                     (f"95%到达 {_fmt_num(r.p95_before)} → {_fmt_num(r.p95_after)} 分钟；最长 "
                     f"{_fmt_num(r.max_before)} → {_fmt_num(r.max_after)}；超时台区 {r.beyond_before} → "
                     f"{r.beyond_after}")))
    if sc.service_points is not None:
        sp = sc.service_points
        rows.append(("服务站", "最少服务站数（全部达标）",
                     (f"{len(sp.sites)} 个：{'、'.join(sp.sites['name'].astype(str)) or '无需'}；"
                     f"设站后超时 {sp.beyond_after} 个")))
    return pd.DataFrame(rows, columns=["section", "item", "value"])


def _fmt_num(v: Any) -> str:
    return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{float(v):.1f}"


def write_scenario(sc: Scenario, out: Path | OutputDir, *, maps: bool = True,
                   basemap: str | None = None) -> Path:
    """Write every output of a merge scenario to ``out`` (atomically, see :mod:`gridplan.files`).

    ``comparison.csv`` / ``comparison.xlsx`` hold one row per affected township
    (:data:`TOWNSHIP_COLUMNS`); ``report.html`` and ``report.xlsx`` are the page to decide from
    (verdict, commitments, staff, the absorbed area, then the details); ``metrics.csv`` holds the
    county-wide and merged-scope figures; ``worsening.csv`` the 台区 that worsen most per township;
    ``service_points.csv`` the proposed 供电服务站. The pages are the ``scenario_report`` and
    ``scenario_map`` pages of :mod:`gridplan.pages` (drawn by :mod:`gridplan.render.compare`).
    """
    with output_folder(out, command="gridplan merge", expect=SCENARIO_FILES) as tmp:
        _write_csv(sc.townships, tmp / "comparison.csv")
        _write_xlsx(sc.townships, tmp / "comparison.xlsx", sheet="乡镇对比", headers=None)
        _write_csv(sc.comparison, tmp / "metrics.csv")
        _write_csv(sc.worsening, tmp / "worsening.csv")
        _write_csv(sc.beyond, tmp / "beyond.csv")
        _write_csv(_response_table(sc), tmp / "response.csv")
        sites = site_table(sc)
        _write_csv(sites, tmp / "service_points.csv")
        _write_sheets(tmp / "report.xlsx", [
            ("决策摘要", decision_table(sc), {"section": "部分", "item": "项目", "value": "内容"}),
            ("乡镇对比", sc.townships, COMPARISON_HEADERS),
            ("恶化台区", sc.worsening, WORSE_HEADERS),
            ("承诺时间", sc.commitments, COMMITMENT_HEADERS),
            ("人员", sc.staff, STAFF_HEADERS),
            ("服务站建议", sites, SITE_HEADERS),
            ("指标对比", sc.comparison.drop(columns="metric"), METRIC_HEADERS),
            ("超时台区", sc.beyond, None)])
        summary = {"stations": list(sc.stations), "into": sc.into,
                   "keep_service_point": list(sc.keep_service_point), "verdict": sc.verdict,
                   "reasons": sc.reasons, "breaks_commitment": sc.breaks_commitment,
                   "absorbed_townships": _records(sc.townships[sc.townships["township_id"].isin(
                       sc.absorbed_townships)]),
                   "commitments": _records(sc.commitments),
                   "staff": _records(sc.staff),
                   "manager_travel_minutes": {"before": sc.travel_summary[0],
                                              "after": sc.travel_summary[1]},
                   "service_points": _records(sites),
                   "changed_grids": sc.changed_grids,
                   "notes": sc.notes, "comparison": sc.comparison.to_dict(orient="records")}
        (tmp / "scenario.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2,
                                                      default=_json), encoding="utf-8")
        base = basemap or sc.after.plan.params.basemap
        if maps:
            (tmp / "compare.html").write_text(pages.draw("scenario_map", sc, basemap=base),
                                              encoding="utf-8")
        (tmp / "report.html").write_text(pages.draw("scenario_report", sc, with_map=maps),
                                         encoding="utf-8")
        sc.before.plan.write_into(tmp / "before", map_html=maps, basemap=base)
        sc.after.plan.write_into(tmp / "after", map_html=maps, basemap=base)
    return out.path if isinstance(out, OutputDir) else Path(out)


def write_candidates(df: pd.DataFrame, out: str | Path | OutputDir, *, county_name: str = "",
                     params: Any = None, county: County | None = None) -> Path:
    """Write ``candidates.csv``, ``candidates.xlsx``, ``candidates.html`` and (given ``county``)
    ``candidates_map.html`` (the pairs coloured by verdict) to ``out`` (atomic); the pages are the
    ``candidates`` and ``candidates_map`` pages of :mod:`gridplan.pages`.
    """
    with output_folder(out, command="gridplan merge-candidates", expect=CANDIDATE_FILES) as tmp:
        _write_csv(df, tmp / "candidates.csv")
        _write_xlsx(df, tmp / "candidates.xlsx", sheet="合并候选", headers=CANDIDATE_HEADERS)
        (tmp / "candidates.html").write_text(
            pages.draw("candidates", df, county_name=county_name, params=params), encoding="utf-8")
        if county is not None:
            (tmp / "candidates_map.html").write_text(pages.draw("candidates_map", df, county),
                                                     encoding="utf-8")
    return out.path if isinstance(out, OutputDir) else Path(out)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with missing values as None (valid JSON: no NaN)."""
    return [{k: _cell_value(v) for k, v in r.items()} for r in df.to_dict(orient="records")]


def _json(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
