"""The roster workbook (台区经理名册): one row per manager, one per 台区, formatted for printing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from ..cells import write_xlsx_cell
from ..lv.groups import groups_layer
from ..metrics.kpi import coverage_kpis, township_coverage, village_coverage
from ..model import Plan

__all__ = ["coverage_tables", "group_table", "roster_tables", "write_roster"]

_HEAD_FILL = PatternFill("solid", fgColor="DDEBF7")
_THIN = Side(style="thin", color="999999")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
#: Widest column (characters); longer texts (village lists) wrap inside the cell.
_MAX_WIDTH = 40


def roster_tables(plan: Plan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the two sheets as DataFrames with Chinese headers: managers, and 台区."""
    g = plan.grids.set_index("grid_id")
    stations = plan.county.stations.set_index("station_id")["name"]
    tr = plan.transformers
    villages = (tr.dropna(subset=["village"]).groupby("grid_id")["village"]
                .agg(lambda v: "、".join(sorted(set(map(str, v))))) if "village" in tr.columns
                else pd.Series(dtype=str))
    m = plan.managers.copy()
    m = m[m["grid_id"].notna()].sort_values(["station_id", "grid_id"])
    managers = pd.DataFrame({
        "供电所": m["station_id"].map(stations).fillna(m["station_id"]),
        "网格编号": m["grid_id"],
        "台区经理": m["name"],
        "工号": m["manager_id"],
        "联系电话": m["phone"],
        "负责乡镇": m["grid_id"].map(g["townships"]),
        "负责村": m["grid_id"].map(villages).astype(object).fillna(""),
        "台区数": m["grid_id"].map(g["n_transformers"]).fillna(0).astype(int),
        "户数": m["grid_id"].map(g["customers"]).fillna(0).astype(int),
        "工作量": m["workload"].round(1),
        "高压线路(km)": _hv_km(m),
        "备注": m["placeholder"].map({True: "占位（名册缺人）", False: ""}),
    })
    if "group_name" in g.columns:  # service groups (#16 part 6): the group of each manager's grid
        managers.insert(2, "服务小组", m["grid_id"].map(g["group_name"]).astype(object).fillna(""))
    unassigned = plan.managers[plan.managers["grid_id"].isna()]
    hv = (unassigned["role"] == "hv") if "role" in unassigned.columns else pd.Series(False, unassigned.index)
    if len(unassigned):
        extra = pd.DataFrame({"供电所": unassigned["station_id"].map(stations).fillna(unassigned["station_id"]),
                              "网格编号": "", "台区经理": unassigned["name"], "工号": unassigned["manager_id"],
                              "联系电话": unassigned["phone"],
                              "高压线路(km)": _hv_km(unassigned),
                              "备注": hv.map({True: "高压线段负责人", False: "未分配网格"})})
        managers = pd.concat([managers, extra], ignore_index=True)
    per_tr = pd.DataFrame({
        "台区编号": tr["transformer_id"], "台区名称": tr["name"],
        "乡镇": tr["township_id"].map(plan.county.townships.set_index("township_id")["name"]),
        "村": tr["village"] if "village" in tr.columns else "",
        "户数": tr["customers"], "容量(kVA)": tr["capacity_kva"],
        "所属线路": tr["feeder_id"] if "feeder_id" in tr.columns else "",
        "线段": tr["segment_id"] if "segment_id" in tr.columns else "",
        "网格编号": tr["grid_id"], "台区经理": tr["grid_id"].map(g["manager_name"]),
        "联系电话": tr["grid_id"].map(g["phone"]),
    })
    if "current_manager_id" in tr.columns:  # a replan: show who looked after the 台区 before
        before = tr["current_manager_id"]
        per_tr["调整"] = [("新增台区" if pd.isna(b) else "" if str(b) == str(a) else f"由 {b} 调入")
                        for a, b in zip(tr["manager_id"], before)]
    per_tr = per_tr.sort_values(["网格编号", "台区编号"])
    return managers.reset_index(drop=True), per_tr.reset_index(drop=True)


def group_table(plan: Plan) -> pd.DataFrame | None:
    """The 服务小组 sheet: one row per service group (None when the plan has no groups)."""
    if "group_id" not in plan.grids.columns:
        return None
    groups = groups_layer(plan.grids)
    stations = plan.county.stations.set_index("station_id")["name"]
    source = {"roster": "名册组长", "heaviest-grid": "工作量最大网格的台区经理"}
    return pd.DataFrame({
        "供电所": groups["station_id"].map(stations).fillna(groups["station_id"]),
        "服务小组编号": groups["group_id"], "服务小组": groups["group_name"],
        "组长": groups["leader"], "组长工号": groups["leader_id"], "组长电话": groups["leader_phone"],
        "组长来源": groups["leader_source"].map(source).fillna(""),
        "网格数": groups["n_grids"], "网格": groups["grids"], "台区数": groups["n_transformers"],
        "户数": groups["customers"], "工作量": groups["workload"].round(1),
        "工作量与均值之比": groups["balance"],
    }).reset_index(drop=True)


def _hv_km(m: pd.DataFrame) -> pd.Series:
    """10 kV km each manager owns (0 for plans written before HV owners were recorded)."""
    km = m["hv_km"] if "hv_km" in m.columns else pd.Series(0.0, index=m.index)
    return pd.to_numeric(km, errors="coerce").fillna(0.0).round(2)


def coverage_tables(plan: Plan) -> tuple[pd.DataFrame, pd.DataFrame | None, dict]:
    """The 乡乡有点、村村有人 sheets: one row per township, one per village (None without villages).

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame or None, dict)
        Township and village tables with Chinese headers, and the county figures
        (``kpi["coverage"]["county"]``).
    """
    county = plan.county
    stations = county.stations.set_index("station_id")["name"]
    t = township_coverage(county.townships, county.stations)
    towns = pd.DataFrame({
        "乡镇": t["name"], "乡镇编号": t["township_id"],
        "所属供电所": t["station_id"].map(stations).fillna(t["station_id"]),
        "乡乡有点": t["has_point"].map({True: "是", False: "否"}),
        "辖区内服务点": t["points"].map(lambda ids: "、".join(str(stations.get(i, i)) for i in ids.split("、"))
                                    if ids else ""),
        "最近服务点": t["nearest_point_id"].map(lambda i: stations.get(i, i) if i is not None else ""),
        "最近服务点距离(m)": t["nearest_point_m"].round(0),
    }).sort_values(["乡乡有点", "乡镇编号"]).reset_index(drop=True)
    vil = None
    if county.villages is not None and len(county.villages):
        v = village_coverage(county.villages, plan.grids, county.townships)
        town_names = county.townships.set_index("township_id")["name"]
        vil = pd.DataFrame({
            "村": v["name"], "村编号": v["village_id"],
            "乡镇": v["township_id"].map(town_names).fillna(""),
            "网格编号": v["grid_id"].fillna(""), "台区经理": v["manager_name"].fillna(""),
            "工号": v["manager_id"].fillna(""),
            "村村有人": v["covered"].map({True: "是", False: "否"}),
            "实名经理覆盖面积占比": (v["named_share"] * 100).round(1).astype(str) + "%",
        }).sort_values(["村村有人", "乡镇", "村编号"]).reset_index(drop=True)
    return towns, vil, (plan.kpi.get("coverage") or coverage_kpis(plan))["county"]


def write_roster(plan: Plan, path: str | Path) -> Path:
    """Write ``roster.xlsx``: the sheets 台区经理, 台区明细, 服务小组, 乡乡有点 and 村村有人.

    One row per manager, per 台区, per service group (only when the plan has groups), per
    township and, with villages, per village.
    """
    managers, per_tr = roster_tables(plan)
    wb = Workbook()
    _sheet(wb.active, "台区经理", managers, title=f"{plan.county.name} 台区经理名册")
    _sheet(wb.create_sheet(), "台区明细", per_tr, title=None)
    groups = group_table(plan)
    if groups is not None:
        _sheet(wb.create_sheet(), "服务小组", groups, title=f"{plan.county.name} 供电服务小组")
    towns, vil, c = coverage_tables(plan)
    _sheet(wb.create_sheet(), "乡乡有点", towns,
           title=f"{plan.county.name} 乡乡有点：{c['townships_with_point']}/{c['townships']} 个乡镇"
                 "辖区内有供电所或供电服务站")
    if vil is not None:
        _sheet(wb.create_sheet(), "村村有人", vil,
               title=f"{plan.county.name} 村村有人：{c['villages_covered']}/{c['villages']} 个村"
                     "有实名台区经理（按村面积最大部分所在网格）")
    wb.save(path)
    return Path(path)


def _sheet(ws, name: str, df: pd.DataFrame, *, title: str | None) -> None:
    ws.title = name
    row0 = 1
    if title:
        write_xlsx_cell(ws, 1, 1, title).font = Font(bold=True, size=14)
        row0 = 2
    for j, col in enumerate(df.columns, 1):
        c = write_xlsx_cell(ws, row0, j, str(col))
        c.font, c.fill = Font(bold=True), _HEAD_FILL
        c.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for i, row in enumerate(df.itertuples(index=False), row0 + 1):
        for j, val in enumerate(row, 1):
            if isinstance(val, float) and pd.isna(val):
                val = None
            elif hasattr(val, "item"):
                val = val.item()
            c = write_xlsx_cell(ws, i, j, val)
            c.border = _BORDER
            c.alignment = Alignment(vertical="top", wrap_text=True)
    for j, col in enumerate(df.columns, 1):
        ws.cell(row=row0, column=j).border = _BORDER
        width = max([_width(col)] + [_width(v) for v in df.iloc[:, j - 1].head(500)])
        ws.column_dimensions[get_column_letter(j)].width = min(max(width + 2, 8), _MAX_WIDTH)
    ws.freeze_panes = ws.cell(row=row0 + 1, column=1)
    ws.print_title_rows = f"{row0}:{row0}"
    if len(df):
        ws.auto_filter.ref = f"A{row0}:{get_column_letter(len(df.columns))}{row0 + len(df)}"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape"
    ws.print_options.horizontalCentered = True
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


def _width(value) -> int:
    text = "" if value is None else str(value)
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)
