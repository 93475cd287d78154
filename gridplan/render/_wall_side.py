"""Wall map text blocks: title band, roster table, legend and data note (sidebar)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from ._wall_layout import Layout, fit_text, format_phone

__all__ = ["TEXT", "draw_sidebar", "draw_title", "roster_rows"]

#: Every text the wall map prints, by language.
TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "{station}供电服务网格图", "date": "{y}年{m}月{d}日",
        "subtitle": "{county}  ·  网格 {grids} 个  ·  台区 {transformers} 个  ·  {customers} 户",
        "roster": "网格台区经理名册", "cols": "网格|台区经理|电话|户数|台区数|负责村",
        "legend": "图例", "grid": "供电服务网格(颜色区分)", "village": "行政村界及村名",
        "township": "乡镇界", "transformer": "台区(配电变压器)", "feeder": "10kV线路",
        "station": "供电所", "other": "相邻供电所网格", "grid_label": "网格",
        "fault": "报修电话", "complaint": "投诉电话",
        "note": "数据来源:{source}\n生成日期:{date}    坐标系:{crs}    制图:gridplan {version}",
        "more": "另有 {n} 个网格见名册", "placeholder": "(待定)", "scale": "比例尺 1:{n}",
        "north": "北", "km": "公里",
    },
    "en": {
        "title": "{station} service grid map", "date": "{y}-{m:02d}-{d:02d}",
        "subtitle": "{county}  ·  {grids} grids  ·  {transformers} transformer areas  ·  "
                    "{customers} households",
        "roster": "Grid managers", "cols": "Grid|Manager|Phone|Households|Areas|Villages",
        "legend": "Legend", "grid": "Service grid", "village": "Village boundary and name",
        "township": "Township boundary", "transformer": "Transformer area", "feeder": "10 kV feeder",
        "station": "Power-supply station", "other": "Grids of other stations", "grid_label": "Grid",
        "fault": "Fault reports", "complaint": "Complaints",
        "note": "Source: {source}\nMade: {date}    CRS: {crs}    gridplan {version}",
        "more": "{n} more grids: see the roster", "placeholder": " (vacant)", "scale": "Scale 1:{n}",
        "north": "N", "km": "km",
    },
}

#: Relative column widths of the roster table.
_COL_WIDTHS = (0.15, 0.15, 0.20, 0.10, 0.09, 0.31)


def _inch_axes(fig: Figure, rect: Sequence[float], lay: Layout) -> Axes:
    """An invisible axes over ``rect`` whose data units are inches (origin bottom left)."""
    ax = fig.add_axes(rect)
    ax.set_axis_off()
    ax.set_xlim(0, rect[2] * lay.width_in)
    ax.set_ylim(0, rect[3] * lay.height_in)
    return ax


def draw_title(fig: Figure, lay: Layout, t: dict[str, str], *, title: str, subtitle: str,
               date_text: str, font: str) -> Axes:
    """Draw the title band: station title, summary line, date, and a rule under them."""
    ax = _inch_axes(fig, lay.title, lay)
    w, h = ax.get_xlim()[1], ax.get_ylim()[1]
    ax.text(0, h * 0.58, title, fontsize=lay.pt(46), fontweight="bold", family=font,
            va="center", ha="left", color="#1a1a1a")
    ax.text(0, h * 0.12, subtitle, fontsize=lay.pt(17), family=font, va="center", ha="left",
            color="#444444")
    ax.text(w, h * 0.58, date_text, fontsize=lay.pt(20), family=font, va="center", ha="right",
            color="#444444")
    ax.plot([0, w], [0, 0], color="#1f4e79", lw=lay.pt(3), solid_capstyle="butt")
    return ax


def roster_rows(grids: pd.DataFrame, t: dict[str, str]) -> list[list[str]]:
    """The roster table's cells, one row per grid (网格, 台区经理, 电话, 户数, 台区数, 负责村)."""
    rows = []
    for _, g in grids.iterrows():
        name = str(g.get("manager_name") or "—")
        if bool(g.get("placeholder", False)) and "待定" not in name:
            name += t["placeholder"]
        villages = g.get("villages")
        if isinstance(villages, (list, tuple, set)):
            villages = "、".join(sorted(str(v) for v in villages))
        elif villages is None or (isinstance(villages, float) and pd.isna(villages)):
            villages = ""
        customers = g.get("customers")
        n_tr = g.get("n_transformers")
        rows.append([str(g["grid_id"]), name, format_phone(g.get("phone")),
                     "—" if customers is None or pd.isna(customers) else f"{int(customers):,}",
                     "—" if n_tr is None or pd.isna(n_tr) else str(int(n_tr)),
                     str(villages).replace(",", "、")])
    return rows


def _draw_table(ax: Axes, rows: list[list[str]], colours: list[str], *, top: float, width: float,
                bottom: float, lay: Layout, t: dict[str, str], font: str) -> float:
    """Draw the roster table from ``top`` down (inches); return the y of its bottom edge."""
    ax.text(0, top, t["roster"], fontsize=lay.pt(22), fontweight="bold", family=font,
            va="top", color="#1f4e79")
    top -= lay.pt(22) / 72 * 1.6
    size = lay.pt(16)
    room = top - bottom
    # Two-line rows (village names wrap); shrink the font until every row fits, down to 10 pt;
    # then one-line rows if that lets more grids in.
    lines, spacing = 2, 2.9
    while size > lay.pt(10) and (len(rows) + 1) * size / 72 * spacing > room:
        size *= 0.92
    if (len(rows) + 1) * size / 72 * spacing > room:
        lines, spacing = 1, 1.7
    row_h = size / 72 * spacing
    fit = max(int(room // row_h) - 1, 0)
    shown, hidden = (rows, 0) if len(rows) <= fit else (rows[:max(fit - 1, 0)], len(rows) - fit + 1)
    xs = [0.0]
    for cw in _COL_WIDTHS:
        xs.append(xs[-1] + cw * width)
    header = t["cols"].split("|")
    y = top
    ax.add_patch(Rectangle((0, y - row_h), width, row_h, color="#1f4e79", lw=0))
    for k, label in enumerate(header):
        ax.text(xs[k] + size / 72 * 0.4, y - row_h / 2, label, fontsize=size, fontweight="bold",
                family=font, va="center", color="white")
    y -= row_h
    for i, row in enumerate(shown):
        ax.add_patch(Rectangle((0, y - row_h), width, row_h, lw=0,
                               color="#f3f6fa" if i % 2 else "white"))
        ax.add_patch(Rectangle((size / 72 * 0.3, y - row_h * 0.78), size / 72 * 0.55, row_h * 0.56,
                               facecolor=colours[i], edgecolor="#555555", lw=0.5))
        for k, cell in enumerate(row):
            x0 = xs[k] + size / 72 * (1.2 if k == 0 else 0.4)
            cw_em = (xs[k + 1] - x0) / (size / 72) - 0.3
            weight = "bold" if k in (1, 2) else "normal"
            text = fit_text(cell, cw_em / (0.85 if k == 5 else 1.0),
                            max_lines=lines if k == 5 else 1)
            ax.text(x0, y - row_h / 2, text, fontsize=size * (0.85 if k == 5 else 1.0),
                    fontweight=weight, family=font, va="center", linespacing=1.1,
                    color="#1a1a1a")
        y -= row_h
    ax.plot([0, width], [y, y], color="#1f4e79", lw=lay.pt(1.2))
    if hidden:
        ax.text(0, y - size / 72 * 0.4, t["more"].format(n=hidden), fontsize=size, family=font,
                va="top", color="#444444")
        y -= size / 72 * 1.6
    return y


def _draw_legend(ax: Axes, *, x: float, top: float, lay: Layout, t: dict[str, str], font: str,
                 have: dict[str, bool], colours: list[str]) -> None:
    handles: list[Any] = [Patch(facecolor=colours[0] if colours else "#8dd3c7", edgecolor="#333333",
                                label=t["grid"])]
    if have.get("other"):
        handles.append(Patch(facecolor="#eeeeee", edgecolor="#aaaaaa", label=t["other"]))
    handles.append(Line2D([], [], color="#333333", lw=2.2, label=t["township"]))
    if have.get("village"):
        handles.append(Line2D([], [], color="#777777", lw=0.8, ls=(0, (4, 2)), label=t["village"]))
    if have.get("feeder"):
        handles.append(Line2D([], [], color="#c0392b", lw=1.6, label=t["feeder"]))
    handles.append(Line2D([], [], color="#222222", marker="o", ls="none", markersize=lay.pt(4),
                          label=t["transformer"]))
    handles.append(Line2D([], [], color="#d62728", marker="*", markeredgecolor="white", ls="none",
                          markersize=lay.pt(16), label=t["station"]))
    leg = ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(x, top), ncol=2,
                    bbox_transform=ax.transData, frameon=False, title=t["legend"],
                    prop={"family": font, "size": lay.pt(14)}, borderaxespad=0,
                    handlelength=2.2, columnspacing=1.5)
    leg.get_title().set_fontproperties({"family": font, "size": lay.pt(20), "weight": "bold"})
    leg._legend_box.align = "left"  # title flush left with the entries


def draw_sidebar(fig: Figure, lay: Layout, t: dict[str, str], *, rows: list[list[str]],
                 colours: list[str], have: dict[str, bool], note: str, fault_phone: str,
                 complaint_phone: str, font: str) -> Axes:
    """Draw roster, legend, service phones and the data note into the sidebar rectangle."""
    ax = _inch_axes(fig, lay.side, lay)
    w, h = ax.get_xlim()[1], ax.get_ylim()[1]
    phone_h = lay.pt(30) / 72 * 1.8
    note_h = lay.pt(10) / 72 * 3.4
    legend_h = lay.pt(14) / 72 * 9.5
    if lay.landscape:
        table_w, legend_x, legend_top = w, 0.0, None
        table_bottom = note_h + phone_h + legend_h
    else:
        table_w, legend_x, legend_top = w * 0.6, w * 0.64, h
        table_bottom = note_h + 0.1
    y = _draw_table(ax, rows, colours, top=h, width=table_w, bottom=table_bottom, lay=lay, t=t,
                    font=font)
    if legend_top is None:
        legend_top = y - lay.pt(14) / 72 * 2.0
    _draw_legend(ax, x=legend_x, top=legend_top, lay=lay, t=t, font=font, have=have,
                 colours=colours)
    px = legend_x
    py = note_h + phone_h * 0.15
    ax.add_patch(Rectangle((px, py), w - px, phone_h * 0.8, facecolor="#fdecea", edgecolor="#c0392b",
                           lw=lay.pt(1.5)))
    ax.text(px + (w - px) / 2, py + phone_h * 0.4,
            f"{t['fault']} {fault_phone}      {t['complaint']} {complaint_phone}",
            fontsize=lay.pt(26 if lay.landscape else 22), fontweight="bold", family=font,
            ha="center", va="center", color="#c0392b")
    ax.text(0, 0, note, fontsize=lay.pt(10), family=font, va="bottom", ha="left", color="#555555",
            wrap=False)
    return ax
