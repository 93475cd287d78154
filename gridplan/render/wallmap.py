"""Print-ready wall maps (墙图) of one station's service grids: PDF, PNG or SVG, A0–A3.

The page shows the station's grids in distinct colours with each manager's name and phone printed
inside the grid (or beside it with a leader line), villages, 台区, feeders, the station, a roster
table, legend, scale bar, north arrow, the fault/complaint phones and a data note. Drawing is done
with matplotlib (Agg, no network) in the plan's metric CRS, so the scale bar is true; the Chinese
font is embedded in the PDF (TrueType/CID, ``pdf.fonttype = 42``).

Example::

    from gridplan.render.wallmap import render_wallmap
    render_wallmap(p, station_id="S01", size="A1", out="maps/S01.pdf")
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from shapely.geometry import box as shp_box

from .._errors import Problems
from .._files import OutputFile, open_output_file
from ._wall_layout import PAPER_MM, Layout, grid_colours, page_layout
from ._wall_map import MapPanel, StationLayers, draw_map
from ._wall_side import TEXT, draw_sidebar, draw_title, roster_rows
from .fonts import find_cjk_font

__all__ = ["FORMATS", "PAPER_MM", "WallMap", "render_wallmap", "wallmap_figure"]

log = logging.getLogger(__name__)

#: Output formats, by file extension.
FORMATS = {".pdf": "pdf", ".png": "png", ".svg": "svg"}

#: Matplotlib settings for every wall map: embedded TrueType/CID fonts, no mathtext parsing of
#: ledger text (a name with "$" must print as typed), deterministic SVG ids.
_RC: dict[str, Any] = {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "path",
                       "text.parse_math": False, "svg.hashsalt": "gridplan",
                       "axes.unicode_minus": False}


@dataclass
class WallMap:
    """A drawn (not yet saved) wall map: the figure and what the map panel placed."""

    fig: Figure
    layout: Layout
    panel: MapPanel


def _check(plan: Any, station_id: str, size: str, orientation: str, language: str,
           out: Path | None, dpi: int) -> None:
    problems = Problems()
    grids = plan.grids
    if "station_id" not in grids.columns or not (grids["station_id"].astype(str) == station_id).any():
        known = sorted(map(str, grids["station_id"].dropna().unique())) if "station_id" in grids else []
        problems.add("plan grids", f"station {station_id!r} has no grids in this plan",
                     f"pass one of the plan's stations: {', '.join(known[:30]) or '(none)'}")
    if size not in PAPER_MM:
        problems.add("wall map", f"paper size {size!r} is not supported",
                     f"use one of {', '.join(PAPER_MM)}")
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


def _station_layers(plan: Any, station_id: str) -> StationLayers:
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
    return StationLayers(grids=grids, colours=grid_colours(list(grids.geometry)), others=others,
                         townships=townships, villages=villages, transformers=tr[in_station],
                         other_transformers=others_tr, lines=lines, other_lines=other_lines,
                         station_xy=xy,
                         station_name=name)


def _with_villages(grids: gpd.GeoDataFrame, villages: gpd.GeoDataFrame | None,
                   transformers: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Fill the ``villages`` column (names, "、"-joined) when the plan does not carry it: a grid
    answers for each village that has ≥ 20 % of its area in the grid (or covers ≥ 20 % of the
    grid), else for the villages its 台区 name in the ledger."""
    if "villages" in grids.columns and grids["villages"].map(
            lambda v: isinstance(v, (list, tuple)) or (isinstance(v, str) and v != "")).any():
        return grids
    names: dict[str, list[str]] = {}
    if villages is not None and len(villages) and "name" in villages.columns:
        vil = gpd.GeoDataFrame({"name": villages["name"].astype(str).to_numpy(),
                                "v_area": villages.area.to_numpy()},
                               geometry=villages.geometry.to_numpy(), crs=villages.crs)
        hit = gpd.sjoin(vil, grids[["grid_id", "geometry"]], predicate="intersects", how="inner")
        geom_of = dict(zip(grids["grid_id"].astype(str), grids.geometry))
        for (gid, name), grp in hit.groupby([hit["grid_id"].astype(str), "name"], sort=True):
            share = grp.geometry.iloc[0].intersection(geom_of[gid]).area
            if share >= 0.2 * max(grp["v_area"].iloc[0], 1.0) or \
                    share >= 0.2 * geom_of[gid].area:
                names.setdefault(gid, []).append(name)
    elif "village" in transformers.columns and "grid_id" in transformers.columns:
        for gid, grp in transformers.dropna(subset=["village"]).groupby("grid_id"):
            names[str(gid)] = sorted(grp["village"].astype(str).unique())
    grids = grids.copy()
    grids["villages"] = grids["grid_id"].astype(str).map(lambda g: "、".join(names.get(g, [])))
    return grids


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
    from .. import __version__

    size = str(size).upper()
    station_id = str(station_id)
    _check(plan, station_id, size, orientation, language, None, 300)
    t = TEXT[language]
    font = find_cjk_font(font_path).family
    lay = page_layout(size, orientation)
    d = _station_layers(plan, station_id)
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(lay.width_in, lay.height_in), dpi=72)
        FigureCanvasAgg(fig)
        fig.patch.set_facecolor("white")
        date_text = _date_text(date, t)
        customers = int(d.grids["customers"].sum()) if "customers" in d.grids else 0
        subtitle = t["subtitle"].format(county=plan.county.name, grids=len(d.grids),
                                        transformers=len(d.transformers), customers=f"{customers:,}")
        draw_title(fig, lay, t, title=t["title"].format(station=d.station_name), subtitle=subtitle,
                   date_text=date_text, font=font)
        panel = draw_map(fig, lay, d, font=font, t=t)
        source = plan.county.name
        if plan.county.source is not None and Path(plan.county.source).name != source:
            source += f" ({Path(plan.county.source).name})"
        note = t["note"].format(source=source, date=date_text, crs=_crs_text(plan.crs),
                                version=__version__)
        have = {"other": d.others is not None and len(d.others) > 0,
                "village": d.villages is not None and len(d.villages) > 0,
                "feeder": d.lines is not None and len(d.lines) > 0}
        draw_sidebar(fig, lay, t, rows=roster_rows(d.grids, t), colours=d.colours, have=have,
                     note=note, fault_phone=str(fault_phone), complaint_phone=str(complaint_phone),
                     font=font)
    return WallMap(fig=fig, layout=lay, panel=panel)


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
        A :class:`gridplan.plan.Plan`.
    station_id
        The station whose grids are drawn.
    size
        ISO paper size: ``"A0"``, ``"A1"``, ``"A2"`` or ``"A3"``.
    orientation
        ``"landscape"`` or ``"portrait"``.
    out
        Output file; the format comes from its extension (``.pdf``, ``.png``, ``.svg``). Written
        into a staging folder beside it and moved into place, so a failure leaves no partial file.
        An existing file is replaced only when gridplan wrote it and it is unchanged since (see
        :class:`gridplan._files.OutputFile`; the CLI's ``--force`` overrides). An already opened
        :class:`~gridplan._files.OutputFile` may be given (checked before the plan is read).
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
    target = out if isinstance(out, OutputFile) else None
    out = target.path if target is not None else Path(out)
    _check(plan, str(station_id), str(size).upper(), orientation, language, out, dpi)
    fmt = FORMATS[out.suffix.lower()]
    wm = wallmap_figure(plan, station_id=station_id, size=size, orientation=orientation,
                        language=language, date=date, fault_phone=fault_phone,
                        complaint_phone=complaint_phone, font_path=font_path)
    meta = {"pdf": {"Title": "供电服务网格图", "Creator": "gridplan", "CreationDate": None},
            "svg": {"Title": "供电服务网格图", "Date": None, "Creator": "gridplan"},
            "png": {"Software": "gridplan"}}[fmt]
    owned = target is None
    if target is None:
        target = open_output_file(out, command="render_wallmap")
    try:
        with matplotlib.rc_context(_RC):
            wm.fig.savefig(target.tmp, format=fmt, dpi=dpi, metadata=meta, facecolor="white")
        target.commit()
    except BaseException:
        if owned:
            target.close(failed=True)
        raise
    if owned:
        target.close()
    log.info("wall map of %s written to %s", station_id, out)
    return out
