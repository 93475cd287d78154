"""The province summary of a :func:`gridplan.scale.many.plan_many` run.

``write_summary(result)`` writes into ``result.out_dir`` (each file atomically): ``summary.csv`` and
``summary.xlsx`` (one row per county, then a 合计 totals row, see :func:`summary_table`),
``failures.txt`` (only when some county failed) and ``index.html`` (the ``province`` page of
:mod:`gridplan.pages`, drawn by :mod:`gridplan.render.province_map`: one polygon per county,
linking to its own ``map.html``).

The county statuses live here, next to the 状态 column that names them; :mod:`gridplan.scale.many`
imports them and re-exports every public name of this module.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import pages
from ..cells import safe_worksheet, write_csv, xlsx_safe_frame
from ..files import output_folder

if TYPE_CHECKING:
    from .many import ManyResult

log = logging.getLogger(__name__)

#: County statuses (what the summary's 状态 column says).
PLANNED, SKIPPED, FAILED = "planned", "skipped", "failed"


# -- the province summary -------------------------------------------------------------------------

#: Summary columns (Chinese headers) and the ``kpi["county"]`` keys each may come from (first found).
COLUMNS: dict[str, tuple[str, ...]] = {
    "乡镇数": ("townships", "n_townships"),
    "供电所数": ("stations", "n_stations"),
    "台区数": ("transformers", "n_transformers"),
    "户数": ("customers", "households"),
    "网格数": ("grids", "n_grids"),
    "网格下限": ("grid_lower_bound", "lower_bound", "grids_lower_bound"),
    "工作量变异系数": ("workload_cv", "cv"),
    "最大/均值": ("workload_max_over_mean", "max_over_mean", "max_mean"),
    "超承诺台区数": ("transformers_beyond_commitment", "beyond_commitment",
                 "n_beyond_commitment"),
}
#: Columns that add up in the totals row.
SUMMED = ("乡镇数", "供电所数", "台区数", "户数", "网格数", "网格下限", "超承诺台区数")
STATUS_ZH = {PLANNED: "完成", SKIPPED: "完成(输入未变,沿用)", FAILED: "失败"}
HEADERS = ("县", *COLUMNS, "状态", "错误信息")


def one_line(text: str, limit: int = 300) -> str:
    """The message on one line (lines joined), cut at ``limit`` characters."""
    flat = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def kpi_value(kpi: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The first of ``keys`` that ``kpi`` (a county's ``kpi["county"]``) has a value for, or None."""
    for k in keys:
        if kpi.get(k) is not None:
            return kpi[k]
    return None


def summary_table(result: ManyResult) -> pd.DataFrame:
    """Return the province summary: one row per county (name order), then a 合计 (totals) row.

    A KPI the planner does not report is left blank. Failed counties carry their error's first
    line in 错误信息 (the whole message is in ``failures.txt``).
    """
    rows = []
    for c in result.counties:
        row: dict[str, Any] = {"县": c.county}
        for col, keys in COLUMNS.items():
            row[col] = kpi_value(c.kpi, keys) if c.ok else None
        row["状态"] = STATUS_ZH[c.status]
        row["错误信息"] = f"{c.error_type}: {one_line(c.error)}" if c.error else ""
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(HEADERS))
    for col in SUMMED:
        table[col] = pd.to_numeric(table[col], errors="coerce").round().astype("Int64")
    for col in ("工作量变异系数", "最大/均值"):
        table[col] = pd.to_numeric(table[col], errors="coerce").astype("Float64")
    totals: dict[str, Any] = {"县": "合计"}
    for col in SUMMED:
        values = pd.to_numeric(table[col], errors="coerce")
        totals[col] = int(values.sum()) if values.notna().any() else None
    n_ok, n_failed = sum(c.ok for c in result.counties), len(result.failed)
    totals["状态"] = f"完成 {n_ok} 个县, 失败 {n_failed} 个县"
    totals["错误信息"] = ""
    total_row = pd.DataFrame([totals], columns=list(HEADERS)).astype(table.dtypes.to_dict())
    return pd.concat([table, total_row], ignore_index=True)


#: The province summary files (``failures.txt`` only when some county failed).
SUMMARY_FILES = ("summary.csv", "summary.xlsx", "failures.txt", "index.html")


def write_summary(result: ManyResult, *, maps: bool = True,
                  folder: Path | None = None) -> dict[str, Path]:
    """Write ``summary.csv``, ``summary.xlsx``, ``failures.txt`` and ``index.html`` atomically.

    Parameters
    ----------
    result
        The run; the files go to ``result.out_dir``.
    maps
        Link each county's ``map.html`` from the overview map.
    folder
        A staging folder of ``result.out_dir`` (opened by :func:`gridplan.scale.many.plan_many`) to
        write into; by default the files are swapped into ``result.out_dir`` here, as one
        gridplan output (see :mod:`gridplan.files`).

    Returns
    -------
    dict
        The files written (their final paths), by short name (``csv``, ``xlsx``, ``failures``,
        ``index``).
    """
    if folder is None:
        with output_folder(result.out_dir, command="gridplan plan-many",
                           expect=SUMMARY_FILES) as tmp:
            return write_summary(result, maps=maps, folder=tmp)
    out = result.out_dir
    table = summary_table(result)
    # utf-8-sig: Excel on Windows opens the CSV with the right encoding.
    write_csv(table, folder / "summary.csv")
    _to_excel(table, folder / "summary.xlsx")
    files = {"csv": out / "summary.csv", "xlsx": out / "summary.xlsx"}
    if result.failed:
        (folder / "failures.txt").write_text(_failures_text(result), encoding="utf-8")
        files["failures"] = out / "failures.txt"
    (folder / "index.html").write_text(pages.draw("province", result, maps=maps), encoding="utf-8")
    files["index"] = out / "index.html"
    return files


def _to_excel(table: pd.DataFrame, path: Path) -> None:
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        xlsx_safe_frame(table).to_excel(xw, sheet_name="省级汇总", index=False)
        ws = xw.sheets["省级汇总"]
        safe_worksheet(ws)
        ws.freeze_panes = "B2"
        for i, col in enumerate(table.columns, 1):
            width = 40 if col == "错误信息" else max(8, 2 * len(col) + 2)
            ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = width


def _failures_text(result: ManyResult) -> str:
    parts = [f"{len(result.failed)} 个县规划失败 (counties failed):\n"]
    for c in result.failed:
        parts.append(f"== {c.county} ({c.error_type}) ==\n{c.error}\n")
        if c.traceback:
            parts.append(c.traceback + "\n")
    return "\n".join(parts)
