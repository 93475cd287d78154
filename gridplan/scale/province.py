"""The province summary of a :func:`gridplan.scale.many.plan_many` run, and its overview map.

``write_summary(result)`` writes into ``result.out_dir`` (each file atomically): ``summary.csv`` and
``summary.xlsx`` (one row per county, then a 合计 totals row, see :func:`summary_table`),
``failures.txt`` (only when some county failed) and ``index.html`` (:func:`overview_map`: one
polygon per county, linking to its own ``map.html``).

The county statuses live here, next to the 状态 column that names them; :mod:`gridplan.scale.many`
imports them and re-exports every public name of this module.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..cells import safe_worksheet, write_csv, xlsx_safe_frame
from ..files import output_folder

if TYPE_CHECKING:
    import folium
    import pandas as pd

    from .many import CountyResult, ManyResult

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


def _kpi_value(kpi: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if kpi.get(k) is not None:
            return kpi[k]
    return None


def summary_table(result: ManyResult) -> pd.DataFrame:
    """Return the province summary: one row per county (name order), then a 合计 (totals) row.

    A KPI the planner does not report is left blank. Failed counties carry their error's first
    line in 错误信息 (the whole message is in ``failures.txt``).
    """
    import pandas as pd

    rows = []
    for c in result.counties:
        row: dict[str, Any] = {"县": c.county}
        for col, keys in COLUMNS.items():
            row[col] = _kpi_value(c.kpi, keys) if c.ok else None
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
    _save_map(overview_map(result, maps=maps), folder / "index.html")
    files["index"] = out / "index.html"
    return files


def _to_excel(table: pd.DataFrame, path: Path) -> None:
    import pandas as pd

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


# -- the overview map -----------------------------------------------------------------------------

def overview_map(result: ManyResult, *, maps: bool = True) -> folium.Map:
    """Return a Folium map with one polygon per county, coloured by grid count, linking to its map.

    Two colourings, switched in the layer control: 网格数 (grid count) and 工作量变异系数 (balance).
    Each polygon's popup lists the county's numbers and links to ``<county>/map.html``; a panel
    gives the legend and lists the counties that failed with their error. Names are HTML-escaped.
    """
    import branca.colormap as cm
    import folium

    shaped = [c for c in result.counties if c.ok and c.outline]
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    folium.TileLayer("OpenStreetMap", name="OpenStreetMap 底图 (需联网)").add_to(m)
    grids = [float(_kpi_value(c.kpi, COLUMNS["网格数"]) or 0) for c in shaped]
    cvs = [float(_kpi_value(c.kpi, COLUMNS["工作量变异系数"]) or 0) for c in shaped]
    by_grids = cm.LinearColormap(["#ffffd9", "#41b6c4", "#081d58"],
                                 vmin=min(grids, default=0), vmax=max(max(grids, default=1), 1))
    by_cv = cm.LinearColormap(["#1a9850", "#fee08b", "#d73027"], vmin=0,
                              vmax=max(max(cvs, default=0.1), 0.1))
    layers = [("按网格数着色", by_grids, grids, True), ("按工作量均衡着色 (变异系数)", by_cv, cvs, False)]
    for name, cmap, values, show in layers:
        group = folium.FeatureGroup(name=name, show=show)
        for c, v in zip(shaped, values):
            has_map = maps and (result.out_dir / c.county / "map.html").exists()
            _county_shape(c, cmap(v), maps=has_map).add_to(group)
        group.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    bounds = _bounds([c.outline for c in shaped])
    if bounds:
        m.fit_bounds(bounds)
    legend = [(f"网格数 {by_grids.vmin:.0f} → {by_grids.vmax:.0f}", by_grids),
              (f"变异系数 0 → {by_cv.vmax:.2f} (越小越均衡)", by_cv)]
    m.get_root().html.add_child(folium.Element(_panel(result, legend)))
    return m


def _save_map(m: folium.Map, path: Path) -> None:
    """Save ``m`` as one self-contained page (assets inlined); CDN links if assets are missing."""
    figure = m.get_root()
    page = figure.render()
    try:
        from ..render import assets
    except ImportError:  # pragma: no cover - the render package ships with gridplan
        assets = None
    if assets is not None:
        try:
            page = assets.inline_assets(page, assets.collect_links(figure))
        except assets.AssetsMissingError as exc:
            log.warning("index.html links its web assets online: %s", exc)
    path.write_text(page, encoding="utf-8")


def _county_shape(c: CountyResult, colour: str, *, maps: bool) -> folium.GeoJson:
    import folium

    style = {"fillColor": colour, "color": "#333333", "weight": 1, "fillOpacity": 0.7}
    shape = folium.GeoJson({"type": "Feature", "geometry": c.outline, "properties": {}},
                           style_function=lambda _f, s=style: s,
                           highlight_function=lambda _f: {"weight": 3, "color": "#000000"})
    folium.Tooltip(html.escape(c.county)).add_to(shape)
    folium.Popup(_popup_html(c, maps=maps), max_width=320).add_to(shape)
    return shape


def _popup_html(c: CountyResult, *, maps: bool) -> str:
    rows = []
    for col, keys in COLUMNS.items():
        v = _kpi_value(c.kpi, keys)
        text = "—" if v is None else (f"{v:.3f}" if isinstance(v, float) and not v.is_integer() else
                                      f"{v:,.0f}" if isinstance(v, (int, float)) else str(v))
        rows.append(f"<tr><th style='text-align:left'>{html.escape(col)}</th>"
                    f"<td style='text-align:right'>{html.escape(text)}</td></tr>")
    link = (f"<p><a href=\"{html.escape(quote(c.county))}/map.html\" target=\"_blank\">"
            f"打开 {html.escape(c.county)} 规划地图</a></p>" if maps else "<p>(未生成县地图)</p>")
    return (f"<h4>{html.escape(c.county)}</h4><table>{''.join(rows)}</table>"
            f"<p>{html.escape(STATUS_ZH[c.status])}</p>{link}")


def _panel(result: ManyResult, legend: list[tuple[str, Any]]) -> str:
    n = len(result.counties)
    head = (f"<b>省级规划总览</b><br>{n} 个县: 完成 {n - len(result.failed)}, "
            f"失败 {len(result.failed)}")
    bars = "".join(
        f"<div>{html.escape(label)}<div style='height:10px;width:200px;background:linear-gradient("
        f"to right,{cmap(cmap.vmin)},{cmap((cmap.vmin + cmap.vmax) / 2)},{cmap(cmap.vmax)})'></div></div>"
        for label, cmap in legend)
    items = "".join(f"<li><b>{html.escape(c.county)}</b>: {html.escape(c.error_type)}: "
                    f"{html.escape(one_line(c.error, 200))}</li>"
                    for c in result.failed)
    fails = (f"失败的县 (详见 failures.txt):<ul style='margin:0;padding-left:18px'>{items}</ul>"
             if items else "")
    return ("<div style='position:fixed;bottom:20px;left:10px;z-index:9999;background:white;"
            "padding:8px 10px;border:1px solid #999;max-width:420px;max-height:40%;overflow:auto;"
            f"font-size:13px'>{head}{bars}{fails}</div>")


def _bounds(outlines: list[dict[str, Any]]) -> list[list[float]] | None:
    from shapely.geometry import shape

    boxes = [shape(o).bounds for o in outlines]
    if not boxes:
        return None
    return [[min(b[1] for b in boxes), min(b[0] for b in boxes)],
            [max(b[3] for b in boxes), max(b[2] for b in boxes)]]
