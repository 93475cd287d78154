"""Print-ready wall maps (墙图) of one station's service grids: PDF, PNG or SVG, A0–A4.

The page shows the station's grids in distinct colours with each manager's name and phone printed
inside the grid (or beside it with a leader line; where even that finds no room, the grid's roster
number), villages, 台区, feeders, the station, the roster table, legend, scale bar, north arrow, the
fault/complaint phones with the station's duty phone, and a data note. Text sizes are fixed in
millimetres for reading at a metre (``_wall_layout.TEXT_MM``): a smaller sheet shows fewer labels
and moves the roster to continuation pages, never prints smaller text. The whole roster is always
printed: what does not fit beside the map goes to page 2, 3, … (more pages of the PDF; for PNG and
SVG, files ``NAME-2.png`` … beside ``NAME.png``). Drawing is done with matplotlib (Agg, no network)
in the plan's metric CRS, so the scale bar is true; the Chinese font is embedded as a TrueType
subset (``pdf.fonttype = 42``, see :func:`gridplan.render.fonts.embed_truetype`).

Example::

    from gridplan.render.wallmap import render_wallmap
    render_wallmap(p, station_id="S01", size="A1", out="maps/S01.pdf")
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from shapely.geometry import box as shp_box

from .._version import __version__
from ..errors import Problems
from ..files import OutputFile
from ._print import check_station_and_size, print_output, print_path
from ._wall_layout import PAPER_MM, Layout, grid_colours, page_layout
from ._wall_map import MapPanel, StationLayers, draw_map
from ._wall_side import TEXT, _phone_lines, draw_roster_page, draw_sidebar, draw_title, roster_rows
from .fonts import embed_truetype, find_cjk_font

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

__all__ = ["FORMATS", "PAPER_MM", "WallMap", "render_wallmap", "wallmap_figure"]

log = logging.getLogger(__name__)

#: Output formats, by file extension.
FORMATS = {".pdf": "pdf", ".png": "png", ".svg": "svg"}

#: Matplotlib settings for every wall map: embedded TrueType/CID fonts, no mathtext parsing of
#: ledger text (a name with "$" must print as typed), deterministic SVG ids.
_RC: dict[RcKeyType, Any] = {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "path",
                       "text.parse_math": False, "svg.hashsalt": "gridplan",
                       "axes.unicode_minus": False}


@dataclass
class WallMap:
    """A drawn (not yet saved) wall map: the figure and what the map panel placed."""

    fig: Figure
    layout: Layout
    panel: MapPanel
    #: Continuation pages (the rest of the roster), in order.
    pages: list[Figure] = dataclasses.field(default_factory=list)
    #: The roster's rows (序号, 网格, 台区经理, 电话, 户数, 台区数, 负责村) and how many page 1 holds.
    rows: list[list[str]] = dataclasses.field(default_factory=list)
    rows_on_first: int = 0


def _check(plan: Any, station_id: str, size: str, orientation: str, language: str,
           out: Path | None, dpi: int) -> None:
    problems = Problems()
    check_station_and_size(problems, plan, station_id, size, sizes=PAPER_MM, what="wall map")
    if orientation not in ("landscape", "portrait"):
        problems.add("wall map", f"orientation {orientation!r} is not supported",
                     "use 'landscape' or 'portrait'")
    if language not in TEXT:
        problems.add("wall map", f"language {language!r} is not supported",
                     f"use one of {', '.join(TEXT)}")
    if out is not None and out.suffix.lower() not in FORMATS:
        problems.add(str(out), f"unknown output format {out.suffix!r}",
                     "name the file .pdf, .png or .svg")
    if dpi <= 0 or (size in PAPER_MM and max(PAPER_MM[size]) / 25.4 * dpi > 65000):
        problems.add("wall map", f"dpi {dpi} is out of range for {size}",
                     "use a dpi between 1 and 1000 (300 is print quality)")
    problems.raise_if_any()


def _station_layers(plan: Any, station_id: str) -> tuple[StationLayers, str | None]:
    """Return the station's layers and duty phone (``stations.phone`` / 值班电话, or None)."""
    county = plan.county
    all_grids = plan.grids
    mask = all_grids["station_id"].astype(str) == station_id
    grids = all_grids[mask].sort_values("grid_id").reset_index(drop=True)
    territory = grids.geometry.union_all()
    view = shp_box(*territory.buffer(max(territory.length * 0.02, 50.0)).bounds)
    others = all_grids[~mask]
    others = others[others.intersects(view)] if len(others) else None
    tws = county.townships
    if "station_id" in tws.columns and (tws["station_id"].astype(str) == station_id).any():
        townships = tws[tws["station_id"].astype(str) == station_id]
    else:
        townships = tws[tws.intersects(territory)]
    villages = county.villages
    if villages is not None and len(villages):
        villages = villages[villages.intersects(territory.buffer(-1.0))]
    tr = plan.transformers
    in_station = (tr["grid_id"].isin(grids["grid_id"]) if "grid_id" in tr.columns
                  else tr["station_id"].astype(str) == station_id)
    lines = plan.segments if plan.segments is not None else county.feeders
    other_lines = None
    if lines is not None and len(lines):
        lines = lines[lines.intersects(view)]
        mine = (lines["grid_id"].isin(grids["grid_id"]) if "grid_id" in lines.columns
                else lines.intersects(territory))
        lines, other_lines = lines[mine], lines[~mine]
    st = county.stations[county.stations["station_id"].astype(str) == station_id]
    xy, name = None, station_id
    if len(st):
        row = st.iloc[0]
        name = str(row.get("name") or station_id)
        if row.geometry is not None and not row.geometry.is_empty:
            pt = row.geometry if row.geometry.geom_type == "Point" else row.geometry.centroid
            xy = (float(pt.x), float(pt.y))
    others_tr = tr[~in_station]
    others_tr = others_tr[others_tr.intersects(view)] if len(others_tr) else None
    grids = _with_villages(grids, villages, tr[in_station])
    duty = None
    if len(st) and "phone" in st.columns:
        v = st.iloc[0]["phone"]
        duty = None if v is None or (isinstance(v, float) and math.isnan(v)) or not str(v).strip() \
            else str(v).strip()
    return StationLayers(grids=grids, colours=grid_colours(list(grids.geometry)), others=others,
                         townships=townships, villages=villages, transformers=tr[in_station],
                         other_transformers=others_tr, lines=lines, other_lines=other_lines,
                         station_xy=xy,
                         station_name=name), duty


def _with_villages(grids: gpd.GeoDataFrame, villages: gpd.GeoDataFrame | None,
                   transformers: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Fill the ``villages`` column (负责村; names, "、"-joined).

    With village polygons a grid answers for each village that has ≥ 20 % of its area in the
    grid (or covers ≥ 20 % of the grid); without them, for the villages its 台区 name in the
    ledger (the plan's column).
    """
    has_polys = villages is not None and len(villages) and "name" in villages.columns
    if not has_polys and "villages" in grids.columns and grids["villages"].map(
            lambda v: isinstance(v, (list, tuple)) or (isinstance(v, str) and v != "")).any():
        return grids
    names: dict[str, list[str]] = {}
    if has_polys and villages is not None:
        vil = gpd.GeoDataFrame({"name": villages["name"].astype(str).to_numpy(),
                                "v_area": villages.area.to_numpy()},
                               geometry=villages.geometry.to_numpy(), crs=villages.crs)
        hit = gpd.sjoin(vil, grids[["grid_id", "geometry"]], predicate="intersects", how="inner")
        geom_of = dict(zip(grids["grid_id"].astype(str), grids.geometry, strict=True))
        for (gid, name), grp in hit.groupby([hit["grid_id"].astype(str), "name"], sort=True):
            share = grp.geometry.iloc[0].intersection(geom_of[gid]).area
            if share >= 0.2 * max(grp["v_area"].iloc[0], 1.0) or \
                    share >= 0.2 * geom_of[gid].area:
                names.setdefault(gid, []).append(name)
    elif "village" in transformers.columns and "grid_id" in transformers.columns:
        for gid, grp in transformers.dropna(subset=["village"]).groupby("grid_id"):
            names[str(gid)] = sorted(grp["village"].astype(str).unique())
    grids = grids.copy()
    old = grids["villages"] if "villages" in grids.columns else None
    grids["villages"] = grids["grid_id"].astype(str).map(lambda g: "、".join(names.get(g, [])))
    if old is not None:  # a grid no polygon reaches keeps the ledger's villages
        grids["villages"] = [new or ("" if not isinstance(o, str) else o)
                             for new, o in zip(grids["villages"], old, strict=True)]
    return grids


#: Township columns that may carry the county's name (Chinese GIS exports, Taiwan's COUNTYNAME).
_COUNTY_COLUMNS = ("county_name", "county", "COUNTYNAME", "县", "县名", "县区", "所属县", "区县")


def county_name(plan: Any) -> str:
    """Return the county's name for print.

    That is ``county_name`` from gridplan.toml, else a county column of the townships, else the
    loaded name (which, without either, is the input folder's name).
    """
    county = plan.county
    name = str(county.name)
    if getattr(plan.params, "county_name", None):
        return str(plan.params.county_name)
    tws = county.townships
    for col in _COUNTY_COLUMNS:
        if col in tws.columns:
            vals = sorted({str(v).strip() for v in tws[col].dropna() if str(v).strip()})
            if vals:
                return "、".join(vals[:3])
    return name


def _date_text(date: dt.date | str | None, t: dict[str, str]) -> str:
    if isinstance(date, str):
        return date
    d = date or dt.date.today()
    return t["date"].format(y=d.year, m=d.month, d=d.day)


def _crs_text(crs: Any) -> str:
    epsg = crs.to_epsg() if hasattr(crs, "to_epsg") else None
    return f"EPSG:{epsg}" if epsg else str(getattr(crs, "name", crs))


def wallmap_figure(plan: Any, *, station_id: str, size: str = "A1", orientation: str = "landscape",
                   language: str = "zh", date: dt.date | str | None = None,
                   fault_phone: str = "95598", complaint_phone: str = "95598",
                   font_path: str | None = None) -> WallMap:
    """Draw the wall map of one station into a matplotlib figure (see :func:`render_wallmap`).

    Returns
    -------
    WallMap
        The figure (paper-sized, in inches) and the label placements of the map panel.
    """
    size = str(size).upper()
    station_id = str(station_id)
    _check(plan, station_id, size, orientation, language, None, 300)
    t = TEXT[language]
    font = find_cjk_font(font_path).family
    lay = page_layout(size, orientation)
    d, duty = _station_layers(plan, station_id)
    if duty is None:
        log.warning("station %s has no duty phone (a phone / 值班电话 column of stations): the "
                    "wall map prints 95598 only", station_id)
    county = county_name(plan)
    with mpl.rc_context(_RC):
        fig = _page(lay)
        date_text = _date_text(date, t)
        customers = int(d.grids["customers"].sum()) if "customers" in d.grids else 0
        subtitle = t["subtitle"].format(county=county, grids=len(d.grids),
                                        transformers=len(d.transformers), customers=f"{customers:,}")
        draw_title(fig, lay, t, title=t["title"].format(station=d.station_name), subtitle=subtitle,
                   date_text=date_text, font=font)
        panel = draw_map(fig, lay, d, font=font, t=t)
        note = t["note"].format(source=county, date=date_text, crs=_crs_text(plan.crs),
                                version=__version__)
        have = {"other": d.others is not None and len(d.others) > 0,
                "village": d.villages is not None and len(d.villages) > 0,
                "feeder": d.lines is not None and len(d.lines) > 0}
        rows = roster_rows(d.grids, t)
        shown = draw_sidebar(fig, lay, t, rows=rows, colours=d.colours, have=have, note=note,
                             fault_phone=str(fault_phone), complaint_phone=str(complaint_phone),
                             font=font, duty_phone=duty,
                             numbers=any(p.compact and p.placed for p in panel.placements),
                             unlabelled=sum(not p.placed for p in panel.placements))
        # continuation pages: first count them (a dry run), then draw
        starts = []
        nxt = shown
        while nxt < len(rows):
            starts.append(nxt)
            nxt = draw_roster_page(None, lay, t, rows=rows, colours=d.colours, first=nxt,
                                   title="", phones=[], page="", note="", font=font, draw=False)
        total = 1 + len(starts)
        phones = _phone_lines(t, str(fault_phone), str(complaint_phone), duty, 1e9)
        pages = []
        for k, first in enumerate(starts, start=2):
            page = _page(lay)
            draw_roster_page(page, lay, t, rows=rows, colours=d.colours, first=first,
                             title=t["roster_cont"].format(station=d.station_name),
                             phones=phones, page=t["page"].format(n=k, total=total), note=note,
                             font=font)
            pages.append(page)
        if total > 1:
            fig.text(1 - lay.margin_in / lay.width_in, lay.margin_in / lay.height_in * 0.35,
                     t["page"].format(n=1, total=total), fontsize=10, family=font, ha="right",
                     va="bottom", color="#555555")
        embed_truetype([fig, *pages], find_cjk_font(font_path))
    return WallMap(fig=fig, layout=lay, panel=panel, pages=pages, rows=rows, rows_on_first=shown)


def _page(lay: Layout) -> Figure:
    fig = Figure(figsize=(lay.width_in, lay.height_in), dpi=72)
    FigureCanvasAgg(fig)
    fig.patch.set_facecolor("white")
    return fig


def render_wallmap(plan: Any, *, station_id: str, size: str = "A1",
                   orientation: str = "landscape", out: str | os.PathLike[str] | OutputFile,
                   dpi: int = 300,
                   language: str = "zh", date: dt.date | str | None = None,
                   fault_phone: str = "95598", complaint_phone: str = "95598",
                   font_path: str | None = None) -> Path:
    """Render the print-ready wall map (墙图) of one station to PDF, PNG or SVG.

    Parameters
    ----------
    plan
        A :class:`gridplan.pipeline.Plan`.
    station_id
        The station whose grids are drawn.
    size
        ISO paper size: ``"A0"`` to ``"A4"``.
    orientation
        ``"landscape"`` or ``"portrait"``.
    out
        Output file; the format comes from its extension (``.pdf``, ``.png``, ``.svg``). Written
        into a staging folder beside it and moved into place, so a failure leaves no partial file.
        An existing file is replaced only when gridplan wrote it and it is unchanged since (see
        :class:`gridplan.files.OutputFile`; the CLI's ``--force`` overrides). An already opened
        :class:`~gridplan.files.OutputFile` may be given (checked before the plan is read).
    dpi
        Resolution of PNG output (300 for print); PDF and SVG are vector.
    language
        ``"zh"`` (default) or ``"en"`` for the map's own texts; ledger names print as they are.
    date
        Date printed on the map (a ``datetime.date`` or ready text); today by default.
    fault_phone, complaint_phone
        The 报修 and 投诉 phone numbers printed on the map (95598 by default).
    font_path
        A CJK font file to use instead of searching the system.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    gridplan.InputError
        Unknown station, paper size, orientation, language or file extension (all listed at once).
    gridplan.render.fonts.FontNotFoundError
        No CJK font is installed (the message names the Debian package to install).
    """
    path = print_path(out)
    _check(plan, str(station_id), str(size).upper(), orientation, language, path, dpi)
    fmt = FORMATS[path.suffix.lower()]
    wm = wallmap_figure(plan, station_id=station_id, size=size, orientation=orientation,
                        language=language, date=date, fault_phone=fault_phone,
                        complaint_phone=complaint_phone, font_path=font_path)
    meta = {"pdf": {"Title": "供电服务网格图", "Creator": "gridplan", "CreationDate": None},
            "svg": {"Title": "供电服务网格图", "Date": None, "Creator": "gridplan"},
            "png": {"Software": "gridplan"}}[fmt]
    figs = [wm.fig, *wm.pages]
    # PDF: one file, the roster's continuation as further pages; PNG/SVG: NAME-2.png, ... beside it
    extra = [] if fmt == "pdf" else \
        [path.with_name(f"{path.stem}-{k}{path.suffix}") for k in range(2, len(figs) + 1)]
    tmps: list[str] = []
    with print_output(out, command="render_wallmap") as target:
        try:
            for page in extra:
                fd, tmp = tempfile.mkstemp(prefix=f".{page.stem}.", suffix=page.suffix,
                                           dir=path.parent)
                os.close(fd)
                tmps.append(tmp)
            with mpl.rc_context(_RC):
                if fmt == "pdf":
                    with PdfPages(target.tmp, metadata=meta) as pdf:
                        for f in figs:
                            pdf.savefig(f, facecolor="white")
                else:
                    wm.fig.savefig(target.tmp, format=fmt, dpi=dpi, metadata=meta,
                                   facecolor="white")
                    for f, tmp in zip(figs[1:], tmps, strict=True):
                        f.savefig(tmp, format=fmt, dpi=dpi, metadata=meta, facecolor="white")
            for tmp, page in zip(tmps, extra, strict=True):
                os.chmod(tmp, 0o644)
                os.replace(tmp, page)
        except BaseException:
            for tmp in tmps:
                Path(tmp).unlink(missing_ok=True)
            raise
    log.info("wall map of %s written to %s (%d page(s))", station_id, path, len(figs))
    return path
