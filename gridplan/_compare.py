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

from ._cells import safe_worksheet, write_csv, xlsx_safe_frame
from ._files import OutputDir, output_folder
from .county import County
from .kpi import balance_stats
from .plan import Plan
from .response import response_kpis

if TYPE_CHECKING:
    from .scenarios import Scenario

__all__ = [
    "CANDIDATE_HEADERS",
    "COMPARISON_HEADERS",
    "SERVICE_STATION",
    "Snapshot",
    "beyond_table",
    "candidate_row",
    "compare",
    "rank_candidates",
    "station_pairs",
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
        """:func:`gridplan.response.response_kpis` of :attr:`response`."""
        return response_kpis(self.response)


# --------------------------------------------------------------------------- figures

#: (key, Chinese label, county-wide?, merged-scope?) of every comparison row, in order.
_ROWS: tuple[tuple[str, str, bool, bool], ...] = (
    ("stations", "供电所数（不含服务站）", True, True),
    ("service_points", "服务网点数（供电所+供电服务站）", True, True),
    ("grids", "所需台区经理（网格数）", True, True),
    ("roster", "名册台区经理人数", True, True),
    ("shortage", "缺员（占位经理）", True, True),
    ("surplus", "名册富余人数", True, True),
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

COMPARISON_HEADERS = {"scope": "范围", "metric": "指标代码", "label": "指标", "before": "合并前",
                      "after": "合并后", "change": "变化"}


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


# --------------------------------------------------------------------------- candidates

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
    "rank": "排名", "verdict": "结论", "into": "保留供电所", "into_name": "保留供电所名称",
    "absorbed": "并入供电所", "absorbed_name": "并入供电所名称", "households": "户数",
    "transformers": "台区数", "keeps_commitment": "满足抢修承诺", "new_beyond": "新增超时台区数",
    "households_new_beyond": "新增超时户数", "new_beyond_ids": "新增超时台区",
    "grids_before": "合并前网格数", "grids_after": "合并后网格数", "managers_saved": "节省台区经理",
    "roster": "名册人数", "shortage_before": "合并前缺员", "shortage_after": "合并后缺员",
    "shortage_covered": "补足缺员", "surplus_after": "合并后富余人数", "cv_before": "合并前变异系数",
    "cv_after": "合并后变异系数", "max_over_mean_after": "合并后最大/平均",
    "households_per_manager_after": "合并后每名经理户数", "changing_manager": "更换经理台区数",
    "p95_before": "合并前95%到达时间", "p95_after": "合并后95%到达时间",
    "max_minutes_after": "合并后最长到达时间", "beyond_before": "合并前超时台区数",
    "beyond_after": "合并后超时台区数",
}


def candidate_row(county: County, before: Plan, after: Plan, rt_before: pd.DataFrame,
                  rt_after: pd.DataFrame, into: str, other: str) -> dict[str, Any]:
    """The numbers behind one candidate merge (``other`` into ``into``)."""
    scope = {into, other}
    fb = _figures(Snapshot(before, rt_before), scope)
    fa = _figures(Snapshot(after, rt_after), scope)
    b = beyond_table(rt_before[rt_before["station_id"].isin(scope)],
                     rt_after[rt_after["station_id"].isin(scope)])
    new = b[b["new"]]
    names = county.stations.set_index(county.stations["station_id"].astype(str))["name"]
    return {
        "into": into, "into_name": names.get(into, into), "absorbed": other,
        "absorbed_name": names.get(other, other),
        "households": int(rt_after.loc[rt_after["station_id"] == into, "customers"].sum()),
        "transformers": int((rt_after["station_id"] == into).sum()),
        "keeps_commitment": bool(len(new) == 0), "new_beyond": len(new),
        "households_new_beyond": int(new["customers"].sum()),
        "new_beyond_ids": "、".join(new["transformer_id"].head(20)) + (" 等" if len(new) > 20 else ""),
        "grids_before": fb["grids"], "grids_after": fa["grids"],
        "managers_saved": fb["grids"] - fa["grids"], "roster": fa["roster"],
        "shortage_before": fb["shortage"], "shortage_after": fa["shortage"],
        "shortage_covered": fb["shortage"] - fa["shortage"], "surplus_after": fa["surplus"],
        "cv_before": fb["cv"], "cv_after": fa["cv"], "max_over_mean_after": fa["max_over_mean"],
        "households_per_manager_after": fa["households_per_manager"],
        "changing_manager": int(changing_manager(before, after, scope).sum()),
        "p95_before": fb["p95_minutes"], "p95_after": fa["p95_minutes"],
        "max_minutes_after": fa["max_minutes"],
        "beyond_before": fb["transformers_beyond"], "beyond_after": fa["transformers_beyond"],
    }


def rank_candidates(df: pd.DataFrame) -> pd.DataFrame:
    """Sort candidates (see :func:`gridplan.scenarios.merge_candidates`) and add ``rank``, ``verdict``."""
    if df.empty:
        return pd.DataFrame(columns=list(CANDIDATE_HEADERS))
    df = df.sort_values(["keeps_commitment", "managers_saved", "shortage_covered", "surplus_after",
                         "cv_after", "into", "absorbed"],
                        ascending=[False, False, False, False, True, True, True]).reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    df.insert(1, "verdict", [
        "可合并" if r.keeps_commitment else f"需保留为供电服务站（{r.new_beyond} 个台区将超出承诺时间）"
        for r in df.itertuples()])
    return df[[c for c in CANDIDATE_HEADERS if c in df.columns]]


# --------------------------------------------------------------------------- files

def _write_csv(df: pd.DataFrame, path: Path) -> None:
    write_csv(df, path)  # BOM: Excel opens Chinese text correctly; formula-like text quoted


def _write_xlsx(df: pd.DataFrame, path: Path, *, sheet: str, headers: dict[str, str]) -> None:
    from openpyxl.utils import get_column_letter

    out = xlsx_safe_frame(df.rename(columns=headers))
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        out.to_excel(xw, sheet_name=sheet, index=False)
        ws = xw.sheets[sheet]
        safe_worksheet(ws)
        ws.freeze_panes = "A2"
        for i, col in enumerate(out.columns, 1):
            width = max([len(str(col))] + [len(str(v)) for v in out[col].head(200)])
            ws.column_dimensions[get_column_letter(i)].width = min(60, 4 + 1.6 * width)


def _response_table(sc: Scenario) -> pd.DataFrame:
    b = sc.before.response.set_index("transformer_id")
    a = sc.after.response
    return pd.DataFrame({
        "transformer_id": a["transformer_id"], "name": a["name"], "township_id": a["township_id"],
        "station_before": a["transformer_id"].map(b["station_id"]), "station_after": a["station_id"],
        "customers": a["customers"], "area_class": a["area_class"], "commitment": a["commitment"],
        "point_before": a["transformer_id"].map(b["point_id"]), "point_after": a["point_id"],
        "minutes_before": a["transformer_id"].map(b["minutes"]), "minutes_after": a["minutes"],
        "beyond_before": a["transformer_id"].map(b["beyond"]), "beyond_after": a["beyond"]})


#: The files ``write_scenario`` writes (besides the ``before/`` and ``after/`` plans).
SCENARIO_FILES = ("comparison.csv", "comparison.xlsx", "beyond.csv", "response.csv",
                  "scenario.json", "compare.html", "report.html", "before", "after")
#: The files ``write_candidates`` writes.
CANDIDATE_FILES = ("candidates.csv", "candidates.xlsx", "candidates.html")


def write_scenario(sc: Scenario, out: Path | OutputDir, *, maps: bool = True,
                   basemap: str | None = None) -> Path:
    """Write every output of a merge scenario to ``out`` (atomically, see :mod:`gridplan._files`)."""
    from .render.compare import compare_map_html, report_html

    with output_folder(out, command="gridplan merge", expect=SCENARIO_FILES) as tmp:
        _write_csv(sc.comparison, tmp / "comparison.csv")
        _write_xlsx(sc.comparison.drop(columns="metric"), tmp / "comparison.xlsx", sheet="合并前后对比",
                    headers=COMPARISON_HEADERS)
        _write_csv(sc.beyond, tmp / "beyond.csv")
        _write_csv(_response_table(sc), tmp / "response.csv")
        summary = {"stations": list(sc.stations), "into": sc.into,
                   "keep_service_point": list(sc.keep_service_point),
                   "breaks_commitment": sc.breaks_commitment, "changed_grids": sc.changed_grids,
                   "notes": sc.notes, "comparison": sc.comparison.to_dict(orient="records")}
        (tmp / "scenario.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2,
                                                      default=_json), encoding="utf-8")
        base = basemap or sc.after.plan.params.basemap
        if maps:
            (tmp / "compare.html").write_text(compare_map_html(sc, basemap=base), encoding="utf-8")
        (tmp / "report.html").write_text(report_html(sc, with_map=maps), encoding="utf-8")
        sc.before.plan.write_into(tmp / "before", map_html=maps, basemap=base)
        sc.after.plan.write_into(tmp / "after", map_html=maps, basemap=base)
    return out.path if isinstance(out, OutputDir) else Path(out)


def write_candidates(df: pd.DataFrame, out: str | Path | OutputDir, *, county_name: str = "",
                     params: Any = None) -> Path:
    """Write ``candidates.csv``, ``candidates.xlsx`` and ``candidates.html`` to ``out`` (atomic)."""
    from .render.compare import candidates_html

    with output_folder(out, command="gridplan merge-candidates", expect=CANDIDATE_FILES) as tmp:
        _write_csv(df, tmp / "candidates.csv")
        _write_xlsx(df, tmp / "candidates.xlsx", sheet="合并候选", headers=CANDIDATE_HEADERS)
        (tmp / "candidates.html").write_text(candidates_html(df, county_name=county_name, params=params),
                                             encoding="utf-8")
    return out.path if isinstance(out, OutputDir) else Path(out)


def _json(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
