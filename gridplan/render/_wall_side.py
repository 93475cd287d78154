"""Wall map text blocks: title band, roster table, legend and data note (sidebar)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from ._wall_layout import (
    ROSTER_MIN_MM,
    TEXT_MM,
    Layout,
    agg_renderer,
    fit_text,
    format_phone,
    mm_pt,
    text_width_em,
)

log = logging.getLogger(__name__)

__all__ = ["TEXT", "draw_roster_page", "draw_sidebar", "draw_title", "roster_rows"]

#: Every text the wall map prints, by language.
TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "{station}供电服务网格图", "date": "{y}年{m}月{d}日",
        "subtitle": "{county}  ·  网格 {grids} 个  ·  台区 {transformers} 个  ·  {customers} 户",
        "roster": "网格台区经理名册", "cols": "序号|网格|台区经理|电话|户数|台区数|负责村",
        "roster_cont": "{station}网格台区经理名册(续)", "page": "第 {n} 页 / 共 {total} 页",
        "roster_next": "名册(共 {n} 个网格)见第 2 页", "duty": "供电所值班电话",
        "numbers": "图中单独的数字为名册序号(网格太小时)",
        "unlabelled": "{n} 个网格在本图幅上过小、未标注,名册中全部列出",
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
        "roster": "Grid managers", "cols": "No.|Grid|Manager|Phone|Households|Areas|Villages",
        "roster_cont": "{station}: grid managers (continued)", "page": "Page {n} of {total}",
        "roster_next": "Roster ({n} grids) on page 2", "duty": "Station duty phone",
        "numbers": "A lone number on the map is the grid's roster number",
        "unlabelled": "{n} grids too small to label at this size (all are in the roster)",
        "legend": "Legend", "grid": "Service grid", "village": "Village boundary and name",
        "township": "Township boundary", "transformer": "Transformer area", "feeder": "10 kV feeder",
        "station": "Power-supply station", "other": "Grids of other stations", "grid_label": "Grid",
        "fault": "Fault reports", "complaint": "Complaints",
        "note": "Source: {source}\nMade: {date}    CRS: {crs}    gridplan {version}",
        "more": "{n} more grids: see the roster", "placeholder": " (vacant)", "scale": "Scale 1:{n}",
        "north": "N", "km": "km",
    },
}

def _inch_axes(fig: Figure, rect: tuple[float, float, float, float], lay: Layout) -> Axes:
    """Add an invisible axes over ``rect`` whose data units are inches (origin bottom left)."""
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
    date_pt = mm_pt(TEXT_MM["subtitle"])
    room = w - text_width_em(date_text) * date_pt / 72 - 0.3
    size = min(mm_pt(TEXT_MM["title"]), room / max(text_width_em(title), 1.0) * 72)
    ax.text(0, h * 0.62, title, fontsize=max(size, mm_pt(8.0)), fontweight="bold", family=font,
            va="center", ha="left", color="#1a1a1a")
    sub_pt = min(mm_pt(TEXT_MM["subtitle"]), w / max(text_width_em(subtitle), 1.0) * 72)
    ax.text(0, h * 0.14, subtitle, fontsize=sub_pt, family=font, va="center", ha="left",
            color="#444444")
    ax.text(w, h * 0.62, date_text, fontsize=date_pt, family=font, va="center", ha="right",
            color="#444444")
    ax.plot([0, w], [0, 0], color="#1f4e79", lw=lay.pt(3), solid_capstyle="butt")
    return ax


def roster_rows(grids: pd.DataFrame, t: dict[str, str]) -> list[list[str]]:
    """Return the roster table's cells, one row per grid (序号, 网格, 台区经理, 电话, 户数, 台区数, 负责村)."""
    rows = []
    for number, (_, g) in enumerate(grids.iterrows(), start=1):
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
        rows.append([str(number), str(g["grid_id"]), name, format_phone(g.get("phone")),
                     "—" if customers is None or pd.isna(customers) else f"{int(customers):,}",
                     "—" if n_tr is None or pd.isna(n_tr) else str(int(n_tr)),
                     str(villages).replace(",", "、")])
    return rows


#: Column widths of the roster table in ems of its text (序号, 网格, 台区经理, 电话, 户数, 台区数);
#: 负责村 takes the rest (at least 12 em).
_COL_EM = (2.7, 4.5, 5.2, 7.9, 3.8, 3.5)
_SHRINK = (1.0, 0.9, 0.8, 0.7, 0.6)


def _fit_cell(text: str, width_em: float, max_lines: int) -> tuple[str, float]:
    """Wrap ``text`` into ``max_lines`` lines of ``width_em``, shrinking it if needed."""
    for s in _SHRINK:
        wrapped = fit_text(text, width_em / s, max_lines=max_lines)
        if not wrapped.endswith("…") or s == _SHRINK[-1]:
            return wrapped, s
    return text, 1.0  # pragma: no cover


def _columns(width: float, size: float) -> list[float]:
    em = size / 72
    xs = [0.0]
    for cw in _COL_EM:
        xs.append(xs[-1] + cw * em)
    xs.append(width)
    return xs


def _layout_rows(rows: list[list[str]], width: float, size: float) -> list[tuple[list[tuple[str, float]], float]]:
    """Each row's fitted cells (text, scale) and height (inches) at font ``size`` (points)."""
    em = size / 72
    xs = _columns(width, size)
    out = []
    for row in rows:
        cells = []
        lines = 1
        for k, cell in enumerate(row):
            cw_em = (xs[k + 1] - xs[k]) / em - 0.5
            if k == 2:
                text, sc = _fit_cell(cell, cw_em, 2)
            elif k == 6:
                text, sc = _fit_cell(cell, cw_em / 0.85, 3)
                sc *= 0.85
            else:
                text, sc = _fit_cell(cell, cw_em, 1)
            cells.append((text, sc))
            lines = max(lines, text.count("\n") + 1)
        out.append((cells, em * (1.2 * lines + 0.36)))
    return out


def _draw_table(ax: Axes | None, rows: list[list[str]], colours: list[str], *, first: int, top: float,
                x: float, width: float, bottom: float, lay: Layout, t: dict[str, str], font: str,
                heading: str | None, draw: bool = True, at_least_one: bool = False) -> int:
    """Draw roster rows from ``first``; return the index of the first row not drawn.

    Rows go down from ``top`` (inches) while they fit above ``bottom``.

    With ``draw=False`` (or no axes) nothing is drawn: the rows that would fit are only counted.
    """
    size = mm_pt(TEXT_MM["roster"])
    em = size / 72
    if heading:
        if draw and ax is not None:
            ax.text(x, top, heading, fontsize=mm_pt(TEXT_MM["roster_head"]), fontweight="bold",
                    family=font, va="top", color="#1f4e79")
        top -= mm_pt(TEXT_MM["roster_head"]) / 72 * 1.5
    head_h = em * 1.7
    laid = _layout_rows(rows[first:], width, size)
    xs = [x + v for v in _columns(width, size)]
    y = top - head_h
    n = 0
    for _, h in laid:
        if y - h < bottom:
            break
        y -= h
        n += 1
    if n == 0 and at_least_one and laid:
        n = 1  # a row taller than a whole page still prints (it runs into the footer)
    if not draw or ax is None or n == 0:
        return first + n
    y = top
    ax.add_patch(Rectangle((x, y - head_h), width, head_h, color="#1f4e79", lw=0))
    for k, label in enumerate(t["cols"].split("|")):
        ax.text(xs[k] + em * 0.25, y - head_h / 2, label, fontsize=size * 0.92, fontweight="bold",
                family=font, va="center", color="white")
    y -= head_h
    for i, (cells, h) in enumerate(laid[:n]):
        idx = first + i
        ax.add_patch(Rectangle((x, y - h), width, h, lw=0, color="#eef3f9" if idx % 2 else "white"))
        ax.add_patch(Rectangle((x + em * 0.15, y - h / 2 - em * 0.4), em * 0.45, em * 0.8,
                               facecolor=colours[idx], edgecolor="#555555", lw=0.5))
        for k, (text, sc) in enumerate(cells):
            x0 = xs[k] + em * (0.75 if k == 0 else 0.25)
            ax.text(x0, y - h / 2, text, fontsize=size * sc, fontweight="bold" if k in (0, 2, 3)
                    else "normal", family=font, va="center", linespacing=1.15, color="#1a1a1a")
        y -= h
    ax.plot([x, x + width], [y, y], color="#1f4e79", lw=1.2)
    return first + n


def _legend_height(n_entries: int, ncol: int) -> float:
    rows = -(-n_entries // ncol)
    return (rows * mm_pt(TEXT_MM["legend"]) * 1.95 + mm_pt(TEXT_MM["legend_title"]) * 2.0) / 72


def _draw_legend(ax: Axes, *, x: float, top: float, lay: Layout, t: dict[str, str], font: str,
                 have: dict[str, bool], colours: list[str], ncol: int) -> Any:
    handles: list[Any] = [Patch(facecolor=colours[0] if colours else "#8dd3c7", edgecolor="#333333",
                                label=t["grid"])]
    if have.get("other"):
        handles.append(Patch(facecolor="#eeeeee", edgecolor="#aaaaaa", label=t["other"]))
    handles.append(Line2D([], [], color="#333333", lw=2.2, label=t["township"]))
    if have.get("village"):
        handles.append(Line2D([], [], color="#777777", lw=0.8, ls=(0, (4, 2)), label=t["village"]))
    if have.get("feeder"):
        handles.append(Line2D([], [], color="#c0392b", lw=1.6, label=t["feeder"]))
    handles.append(Line2D([], [], color="#222222", marker="o", ls="none", markersize=4,
                          label=t["transformer"]))
    handles.append(Line2D([], [], color="#d62728", marker="*", markeredgecolor="white", ls="none",
                          markersize=16, label=t["station"]))
    leg = ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(x, top), ncol=ncol,
                    bbox_transform=ax.transData, frameon=False, title=t["legend"],
                    prop={"family": font, "size": mm_pt(TEXT_MM["legend"])}, borderaxespad=0,
                    handlelength=2.2, columnspacing=1.5, alignment="left")  # title flush left
    leg.get_title().set_fontproperties(FontProperties(family=font, weight="bold",
                                                      size=mm_pt(TEXT_MM["legend_title"])))
    return leg


def _phone_lines(t: dict[str, str], fault: str, complaint: str, duty: str | None,
                 width: float) -> list[str]:
    size = mm_pt(TEXT_MM["phones"]) / 72
    one = f"{t['fault']} {fault}    {t['complaint']} {complaint}"
    lines = [one] if text_width_em(one) * size <= width * 0.94 else \
        [f"{t['fault']} {fault}", f"{t['complaint']} {complaint}"]
    if duty:
        lines.append(f"{t['duty']} {duty}")
    return lines


def _draw_phones(ax: Axes, lines: list[str], *, x: float, y: float, width: float,
                 font: str) -> float:
    """Draw the phone box with its bottom at ``y``; return its height (inches)."""
    size = mm_pt(TEXT_MM["phones"])
    line_h = size / 72 * 1.5
    h = line_h * len(lines) + size / 72 * 0.6
    ax.add_patch(Rectangle((x, y), width, h, facecolor="#fdecea", edgecolor="#c0392b", lw=1.5))
    for i, line in enumerate(lines):
        ax.text(x + width / 2, y + h - size / 72 * 0.3 - line_h * (i + 0.5), line, fontsize=size,
                fontweight="bold", family=font, ha="center", va="center", color="#c0392b")
    return h


def _note_height() -> float:
    return mm_pt(TEXT_MM["note"]) / 72 * 1.45 * 2 + 0.05


def draw_sidebar(fig: Figure, lay: Layout, t: dict[str, str], *, rows: list[list[str]],
                 colours: list[str], have: dict[str, bool], note: str, fault_phone: str,
                 complaint_phone: str, font: str, duty_phone: str | None = None,
                 numbers: bool = False, unlabelled: int = 0) -> int:
    """Draw roster (as far as it fits), legend, service phones and the data note.

    Returns
    -------
    int
        How many roster rows this page holds; the rest go to :func:`draw_roster_page`.
    """
    ax = _inch_axes(fig, lay.side, lay)
    w, h = ax.get_xlim()[1], ax.get_ylim()[1]
    note_h = _note_height()
    ax.text(0, 0, note, fontsize=mm_pt(TEXT_MM["note"]), family=font, va="bottom", ha="left",
            color="#555555", wrap=False)
    if lay.landscape:
        col_w, col_x = w, 0.0
        table_w = w
    else:
        table_w = w * 0.6 if lay.roster_here else 0.0
        col_x = table_w + (0.3 if table_w else 0.0)
        col_w = w - col_x
    phones = _phone_lines(t, fault_phone, complaint_phone, duty_phone, col_w)
    ph_h = _draw_phones(ax, phones, x=col_x, y=note_h + 0.08, width=col_w, font=font)
    ncol = 2 if col_w * 25.4 >= 150 else 1
    leg = _draw_legend(ax, x=col_x, top=h, lay=lay, t=t, font=font, have=have, colours=colours,
                       ncol=ncol)
    leg_h = leg.get_window_extent(agg_renderer(fig)).height / fig.dpi + 0.12
    extra = []
    if numbers:
        extra.append(t["numbers"])
    if unlabelled:
        extra.append(t["unlabelled"].format(n=unlabelled))
    if not lay.roster_here:
        extra.append(t["roster_next"].format(n=len(rows)))
    line_h = mm_pt(TEXT_MM["legend"]) / 72 * 1.7
    floor = note_h + ph_h + 0.25  # above the phones
    leg_top = h
    shown = 0
    if lay.roster_here and lay.landscape:
        leg_top = floor + len(extra) * line_h + leg_h
        shown = _draw_table(ax, rows, colours, first=0, top=h, x=0.0, width=table_w,
                            bottom=leg_top + 0.2, lay=lay, t=t, font=font, heading=t["roster"])
    elif lay.roster_here:
        shown = _draw_table(ax, rows, colours, first=0, top=h, x=0.0, width=table_w,
                            bottom=note_h + 0.05, lay=lay, t=t, font=font, heading=t["roster"])
    leg.set_bbox_to_anchor((col_x, leg_top), transform=ax.transData)
    y = leg_top - leg_h
    if y - len(extra) * line_h < floor - 0.2:
        log.warning("the wall map's sidebar is crowded: legend and phones may touch")
    for line in extra:
        ax.text(col_x, y, line, fontsize=mm_pt(TEXT_MM["legend"]), family=font, va="top",
                color="#1f4e79", fontweight="bold")
        y -= line_h
    return shown


def roster_page_capacity(lay: Layout) -> tuple[int, float, float]:
    """(columns, column width, gap) of a continuation page's tables, in inches."""
    inner = lay.width_in - 2 * lay.margin_in
    gap = 0.4
    min_w = ROSTER_MIN_MM / 25.4
    ncols = max(1, int((inner + gap) // (min_w + gap)))
    width = min((inner - (ncols - 1) * gap) / ncols, min_w * 1.6)
    return ncols, width, gap


def draw_roster_page(fig: Figure | None, lay: Layout, t: dict[str, str], *, rows: list[list[str]],
                     colours: list[str], first: int, title: str, phones: list[str], page: str,
                     note: str, font: str, draw: bool = True) -> int:
    """Draw a continuation page: the roster from row ``first`` on, in as many columns as fit.

    Returns the index of the first row not on this page. With ``draw=False`` (``fig`` may then be
    None) nothing is drawn: the rows that would fit are only counted.
    """
    if draw and fig is None:
        raise ValueError("draw_roster_page: a figure is needed to draw on (or pass draw=False)")
    rect = (0.0, 0.0, 1.0, 1.0)
    ax = _inch_axes(fig, rect, lay) if draw and fig is not None else None
    m = lay.margin_in
    w, h = lay.width_in, lay.height_in
    title_pt = mm_pt(TEXT_MM["roster_head"]) * 1.3
    if ax is not None:
        ax.text(m, h - m, title, fontsize=title_pt, fontweight="bold", family=font, va="top",
                color="#1a1a1a")
        ax.text(w - m, h - m, page, fontsize=mm_pt(TEXT_MM["subtitle"]), family=font, va="top",
                ha="right", color="#444444")
        size = mm_pt(TEXT_MM["phones"])
        ax.text(w / 2, m + _note_height() + 0.1, "    ".join(phones), fontsize=size,
                fontweight="bold", family=font, ha="center", va="bottom", color="#c0392b")
        ax.text(m, m, note, fontsize=mm_pt(TEXT_MM["note"]), family=font, va="bottom",
                color="#555555")
    top = h - m - title_pt / 72 * 1.6
    bottom = m + _note_height() + mm_pt(TEXT_MM["phones"]) / 72 * 2.0
    ncols, cw, gap = roster_page_capacity(lay)
    nxt = first
    for c in range(ncols):
        if nxt >= len(rows):
            break
        nxt = _draw_table(ax, rows, colours, first=nxt, top=top, x=m + c * (cw + gap), width=cw,
                          bottom=bottom, lay=lay, t=t, font=font, heading=None, draw=draw,
                          at_least_one=c == 0)
    return nxt
