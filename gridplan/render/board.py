"""The service notice board (网格化服务公示牌) of one station: a PDF to print and post.

One panel per grid: its map (grid, villages, 台区), the manager's photo (a framed placeholder when
none is given), name, phone and 工号, the duties, the repair commitment of the grid's area class
(城区 45 / 农村 90 / 特殊边远 120 minutes), and on every page the fault-report (95598), complaint
and station duty phones. A4 (6 panels a page) or A3 (9 a page), portrait; more pages as needed.
Photos are looked up as ``PHOTOS/<manager_id>.jpg`` (also ``.jpeg``/``.png``). Every name is fitted
into its panel: long names shrink, then wrap, and never run over. Chinese text is embedded as a
TrueType subset (see :func:`gridplan.render.fonts.embed_truetype`).

Example::

    from gridplan.render.board import render_board
    render_board(plan, station_id="S01", size="A4", photos="photos/", out="S01-board.pdf")
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from ..errors import Problems
from ..files import OutputFile
from ._print import check_station_and_size, print_output, print_path
from ._wall_layout import PAPER_MM, format_phone, grid_colours, mm_pt, text_width_em
from .fonts import embed_truetype, find_cjk_font

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

__all__ = ["BOARD_SIZES", "COMMITMENT_MIN", "DUTIES", "Board", "board_figures", "fit_name",
           "render_board"]

log = logging.getLogger(__name__)

#: Paper sizes of the board and their panel grid (columns, rows), portrait.
BOARD_SIZES: dict[str, tuple[int, int]] = {"A4": (2, 3), "A3": (3, 3)}
#: Repair arrival commitments in minutes, by area class (国家电网 service commitments).
COMMITMENT_MIN: dict[str, int] = {"城区": 45, "农村": 90, "特殊边远": 120}
#: What a 台区经理 answers for (营配融合, 一专多能).
DUTIES = "负责本网格抄表收费、用电报装、设备巡视运维、故障抢修、安全用电宣传及客户投诉处理"
_PHOTO_EXTS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")
_RC: dict[RcKeyType, Any] = {"pdf.fonttype": 42, "text.parse_math": False, "axes.unicode_minus": False}


@dataclasses.dataclass
class Board:
    """The drawn board: its pages and, per grid, the name's artist and the box it must fit."""

    pages: list[Figure]
    names: list[tuple[str, Text, tuple[float, float, float, float]]]


def fit_name(name: str, width_in: float, *, max_pt: float, min_pt: float,
             max_lines: int = 3) -> tuple[str, float]:
    """Fit ``name`` into ``width_in`` inches: one line from ``max_pt`` down to ``min_pt``, else
    wrapped into up to ``max_lines`` lines at the largest size that fits (never truncated).
    """
    em = max(text_width_em(name), 1.0)
    size = width_in * 72 / em
    if size >= min_pt:
        return name, min(size, max_pt)
    for lines in range(2, max_lines + 1):
        per = math.ceil(len(name) / lines)
        parts = [name[i:i + per] for i in range(0, len(name), per)]
        widest = max(text_width_em(p) for p in parts)
        size = width_in * 72 / max(widest, 1.0)
        if size >= min_pt or lines == max_lines:
            return "\n".join(parts), min(size, max_pt)
    return name, min_pt  # pragma: no cover


def _check(plan: Any, station_id: str, size: str, photos: Path | None, out: Path | None) -> None:
    problems = Problems()
    check_station_and_size(problems, plan, station_id, size, sizes=BOARD_SIZES, what="board")
    if photos is not None and not photos.is_dir():
        problems.add(str(photos), "the photo folder does not exist",
                     "pass a folder holding one photo per manager named by 工号, e.g. M0042.jpg")
    if out is not None and out.suffix.lower() != ".pdf":
        problems.add(str(out), f"the board is a PDF, not {out.suffix or 'no extension'}",
                     "name the output file .pdf")
    problems.raise_if_any()


def _photo(photos: Path | None, manager_id: Any) -> Path | None:
    if photos is None or manager_id is None:
        return None
    for ext in _PHOTO_EXTS:
        p = photos / f"{manager_id}{ext}"
        if p.is_file():
            return p
    return None


def _area_class(plan: Any, township_id: Any) -> str:
    tws = plan.county.townships
    if "area_class" in tws.columns:
        hit = tws.loc[tws["township_id"].astype(str) == str(township_id), "area_class"]
        if len(hit) and isinstance(hit.iloc[0], str) and hit.iloc[0] in COMMITMENT_MIN:
            return hit.iloc[0]
    return "农村"


def _draw_grid_map(ax: Axes, plan: Any, grid: Any, colour: str) -> None:
    import geopandas as gpd

    geom = grid.geometry
    gpd.GeoSeries([geom], crs=plan.crs).plot(ax=ax, facecolor=colour, edgecolor="#333333",
                                             linewidth=1.2, alpha=0.8, zorder=1)
    vil = plan.county.villages
    if vil is not None and len(vil):
        near = vil[vil.intersects(geom)]
        if len(near):
            near.boundary.intersection(geom.buffer(1.0)).plot(ax=ax, color="#666666",
                                                             linewidth=0.6,
                                                             linestyle=(0, (3, 2)), zorder=2)
    tr = plan.transformers
    if "grid_id" in tr.columns:
        mine = tr[tr["grid_id"].astype(str) == str(grid["grid_id"])]
        if len(mine):
            ax.scatter(mine.geometry.x, mine.geometry.y, s=6, c="#222222", linewidths=0, zorder=3)
    x0, y0, x1, y1 = geom.bounds
    pad = max(x1 - x0, y1 - y0) * 0.06 + 1.0
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_aspect("equal", adjustable="box")
    ax.set_axis_off()


def _draw_photo(fig: Figure, rect: tuple[float, float, float, float], path: Path | None,
                font: str) -> None:
    ax = fig.add_axes(rect)
    ax.set_xticks([])
    ax.set_yticks([])
    for sp in ax.spines.values():
        sp.set_linewidth(1.2)
        sp.set_color("#1f4e79")
    if path is None:
        ax.set_facecolor("#f2f2f2")
        ax.text(0.5, 0.5, "照片", transform=ax.transAxes, ha="center", va="center",
                fontsize=mm_pt(5.0), family=font, color="#888888")
        return
    from PIL import Image

    with Image.open(path) as im:
        img = np.asarray(im.convert("RGB"))
    h, w = img.shape[:2]
    want = 3 / 4  # width / height of the frame
    if w / h > want:  # crop the sides
        cw = int(h * want)
        img = img[:, (w - cw) // 2:(w - cw) // 2 + cw]
    else:
        ch = int(w / want)
        img = img[(h - ch) // 2:(h - ch) // 2 + ch]
    ax.imshow(img, interpolation="lanczos")
    ax.set_aspect("auto")


def board_figures(plan: Any, *, station_id: str, size: str = "A4", photos: str | Path | None = None,
                  fault_phone: str = "95598", complaint_phone: str = "95598",
                  date: dt.date | str | None = None, font_path: str | None = None) -> Board:
    """Draw the notice board of one station (see :func:`render_board`); nothing is written."""
    station_id, size = str(station_id), str(size).upper()
    photos = Path(photos) if photos is not None else None
    _check(plan, station_id, size, photos, None)
    cjk = find_cjk_font(font_path)
    font = cjk.family
    grids = plan.grids[plan.grids["station_id"].astype(str) == station_id].sort_values("grid_id")
    colours = grid_colours(list(grids.geometry))
    st = plan.county.stations
    st = st[st["station_id"].astype(str) == station_id]
    station = str(st.iloc[0]["name"]) if len(st) and st.iloc[0].get("name") else station_id
    duty = None
    if len(st) and "phone" in st.columns and isinstance(st.iloc[0]["phone"], str) and st.iloc[0]["phone"].strip():
        duty = st.iloc[0]["phone"].strip()
    w_mm, h_mm = PAPER_MM[size]
    cols, rows_n = BOARD_SIZES[size]
    per_page = cols * rows_n
    pages: list[Figure] = []
    names: list[tuple[str, Text, tuple[float, float, float, float]]] = []
    d = date or dt.date.today()
    date_text = d if isinstance(d, str) else f"{d.year}年{d.month}月{d.day}日"
    n_pages = max(1, math.ceil(len(grids) / per_page))
    records = list(grids.iterrows())
    with matplotlib.rc_context(_RC):
        for k in range(n_pages):
            fig = Figure(figsize=(w_mm / 25.4, h_mm / 25.4), dpi=72)
            FigureCanvasAgg(fig)
            fig.patch.set_facecolor("white")
            m = 10.0 / h_mm
            mx = 10.0 / w_mm
            fig.text(0.5, 1 - m, f"{station}网格化服务公示牌", ha="center", va="top",
                     fontsize=mm_pt(11.0 if size == "A4" else 14.0), fontweight="bold",
                     family=font, color="#1f4e79")
            phones = f"报修电话 {fault_phone}　　投诉电话 {complaint_phone}"
            if duty:
                phones += f"　　供电所值班电话 {duty}"
            fig.text(0.5, 1 - m - 16.0 / h_mm, phones, ha="center", va="top",
                     fontsize=mm_pt(5.5 if size == "A4" else 7.0), fontweight="bold",
                     family=font, color="#c0392b")
            fig.text(mx, m * 0.5, f"24 小时故障报修：{fault_phone}　　{date_text}　　"
                     f"第 {k + 1} 页 / 共 {n_pages} 页", fontsize=mm_pt(3.5), family=font,
                     color="#555555", va="bottom")
            top = 1 - m - 26.0 / h_mm
            bottom = m + 6.0 / h_mm
            cell_w = (1 - 2 * mx) / cols
            cell_h = (top - bottom) / rows_n
            for i, (_, g) in enumerate(records[k * per_page:(k + 1) * per_page]):
                idx = k * per_page + i
                c, r = i % cols, i // cols
                x0 = mx + c * cell_w
                y0 = top - (r + 1) * cell_h
                pad_x, pad_y = 2.5 / w_mm, 2.5 / h_mm
                frame = fig.add_artist(Rectangle((x0 + pad_x / 2, y0 + pad_y / 2), cell_w - pad_x,
                                                 cell_h - pad_y, transform=fig.transFigure,
                                                 facecolor="white", edgecolor="#1f4e79", lw=1.5))
                frame.set_zorder(0)
                inner_w, inner_h = cell_w - 2 * pad_x, cell_h - 2 * pad_y
                ix, iy = x0 + pad_x, y0 + pad_y
                # top half: map; bottom half: photo + texts
                map_h = inner_h * 0.46
                ax = fig.add_axes((ix, iy + inner_h - map_h, inner_w, map_h))
                _draw_grid_map(ax, plan, g, colours[idx])
                photo_h = inner_h * 0.36
                photo_w = photo_h * (h_mm / w_mm) * 0.75
                _draw_photo(fig, (ix, iy + inner_h - map_h - photo_h - 1.5 / h_mm, photo_w,
                                  photo_h), _photo(photos, g.get("manager_id")), font)
                tx = ix + photo_w + 2.0 / w_mm
                text_w_in = (ix + inner_w - tx) * w_mm / 25.4
                ty = iy + inner_h - map_h - 2.0 / h_mm
                name = str(g.get("manager_name") or "待指定")
                fitted, pt = fit_name(name, text_w_in * 0.92, max_pt=mm_pt(7.5), min_pt=mm_pt(3.2))
                t = fig.text(tx, ty, fitted, fontsize=pt, fontweight="bold", family=font,
                             va="top", ha="left", color="#111111", linespacing=1.1)
                names.append((name, t, (tx, iy, ix + inner_w, ty + 0.5 / h_mm)))
                lines = fitted.count("\n") + 1
                y = ty - (pt * 1.25 * lines) / 72 / (h_mm / 25.4)
                area = _area_class(plan, g.get("township_id"))
                info = [
                    (f"电话 {format_phone(g.get('phone'))}", mm_pt(5.0), "bold", "#c0392b"),
                    (f"工号 {g.get('manager_id') or '—'}　网格 {g['grid_id']}", mm_pt(3.4),
                     "normal", "#333333"),
                    (f"抢修承诺：{area}{COMMITMENT_MIN[area]}分钟到达现场", mm_pt(3.4), "bold",
                     "#1f4e79"),
                ]
                villages = g.get("villages")
                if isinstance(villages, str) and villages:
                    info.append((f"负责村：{villages}", mm_pt(3.2), "normal", "#333333"))
                for text, fs, weight, colour in info:
                    fitted_i, fs_i = fit_name(text, text_w_in * 0.92, max_pt=fs, min_pt=mm_pt(2.6),
                                              max_lines=2)
                    fig.text(tx, y, fitted_i, fontsize=fs_i, fontweight=weight, family=font,
                             va="top", color=colour, linespacing=1.1)
                    y -= fs_i * 1.35 * (fitted_i.count("\n") + 1) / 72 / (h_mm / 25.4)
                duty_text, dfs = fit_name(f"职责：{DUTIES}", inner_w * w_mm / 25.4 * 0.97,
                                          max_pt=mm_pt(3.0), min_pt=mm_pt(2.6), max_lines=3)
                fig.text(ix, iy + 0.5 / h_mm, duty_text, fontsize=dfs, family=font,
                         va="bottom", color="#444444", linespacing=1.1)
            pages.append(fig)
        embed_truetype(pages, cjk)
    return Board(pages=pages, names=names)


def render_board(plan: Any, *, station_id: str, size: str = "A4", photos: str | Path | None = None,
                 out: str | os.PathLike[str] | OutputFile, fault_phone: str = "95598",
                 complaint_phone: str = "95598", date: dt.date | str | None = None,
                 font_path: str | None = None) -> Path:
    """Write the service notice board (网格化服务公示牌) of one station to a PDF.

    Parameters
    ----------
    plan
        A :class:`gridplan.pipeline.Plan`.
    station_id
        The station whose grids are posted.
    size
        ``"A4"`` (6 grids a page) or ``"A3"`` (9 a page), portrait.
    photos
        Folder of managers' photos named by 工号 (``M0042.jpg``); a framed placeholder is printed
        for a manager without one.
    out
        The PDF to write (atomically: temporary file, then rename).
    fault_phone, complaint_phone
        The 报修 and 投诉 numbers (95598).
    date
        Date printed in the footer (today by default).
    font_path
        A CJK font file instead of the system's.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    gridplan.InputError
        Unknown station or size, missing photo folder, not a .pdf (all listed at once).
    """
    path = print_path(out)
    _check(plan, str(station_id), str(size).upper(), Path(photos) if photos else None, path)
    board = board_figures(plan, station_id=station_id, size=size, photos=photos,
                          fault_phone=fault_phone, complaint_phone=complaint_phone, date=date,
                          font_path=font_path)
    from matplotlib.backends.backend_pdf import PdfPages

    # same rules as the wall map: never replaces a file gridplan did not write
    with print_output(out, command="render_board") as target, matplotlib.rc_context(_RC), \
            PdfPages(target.tmp, metadata={"Title": "网格化服务公示牌", "Creator": "gridplan",
                                           "CreationDate": None}) as pdf:
        for f in board.pages:
            pdf.savefig(f, facecolor="white")
    log.info("notice board of %s written to %s (%d page(s))", station_id, path, len(board.pages))
    return path
