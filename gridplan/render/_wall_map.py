"""The map panel of the wall map: layers, grid labels, village names, scale bar, north arrow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox, TextArea, VPacker
from matplotlib.patches import Polygon as MplPolygon
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from shapely.geometry import box as shp_box

from ._wall_labels import (
    Box,
    LabelRequest,
    Placement,
    PointLabel,
    label_anchor,
    place_labels,
    place_point_labels,
)
from ._wall_layout import Layout, agg_renderer, format_phone, nice_length_km, text_width_em

__all__ = ["MapPanel", "StationLayers", "draw_map"]

#: Font scales tried for grid labels before they move outside their grid or become their
#: roster number: none below 1, the sizes are fixed in millimetres (see TEXT_MM).
LABEL_SCALES = (1.0,)
_HALO = [patheffects.withStroke(linewidth=2.5, foreground="white")]


@dataclass
class StationLayers:
    """The layers of one station, all in the plan's metric CRS (metres)."""

    grids: gpd.GeoDataFrame
    colours: list[str]
    others: gpd.GeoDataFrame | None
    townships: gpd.GeoDataFrame
    villages: gpd.GeoDataFrame | None
    transformers: gpd.GeoDataFrame
    other_transformers: gpd.GeoDataFrame | None
    lines: gpd.GeoDataFrame | None
    other_lines: gpd.GeoDataFrame | None
    station_xy: tuple[float, float] | None
    station_name: str


@dataclass
class MapPanel:
    """What the map panel drew: the axes, label placements and their artists (for tests)."""

    ax: Axes
    extent: Box
    metres_per_inch: float
    placements: list[Placement]
    grid_labels: list[AnnotationBbox]
    village_labels: list[Any]
    #: Boxes no label may cover (scale bar, north arrow, station name), in map units.
    obstacles: list[Box] = None  # type: ignore[assignment]
    #: Boxes of the village names kept, in map units.
    village_boxes: list[Box] = None  # type: ignore[assignment]


def _fit_extent(bounds: tuple[float, float, float, float], aspect: float) -> Box:
    """Pad ``bounds`` by 6 % and grow one side so width/height equals ``aspect``."""
    x0, y0, x1, y1 = bounds
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = w * 1.12, h * 1.12
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _label_box(name: str, phone: str, gid: str, *, lay: Layout, scale: float, font: str,
               grid_word: str) -> VPacker:
    def area(text: str, size: float, weight: str, colour: str) -> TextArea:
        return TextArea(text, textprops={"fontsize": lay.pt(size) * scale, "fontweight": weight,
                                         "family": font, "color": colour})
    return VPacker(children=[area(name, 18, "bold", "#111111"), area(phone, 17, "bold", "#111111"),
                             area(f"{grid_word} {gid}", 12, "normal", "#333333")],
                   align="center", pad=0, sep=lay.pt(1.5) * scale)


def _number_box(number: int, *, lay: Layout, font: str) -> TextArea:
    """Return the short form of a grid label: its roster number."""
    return TextArea(str(number), textprops={"fontsize": lay.pt(17), "fontweight": "bold",
                                            "family": font, "color": "#111111"})


def _annotation(box: Any, *, xy: tuple[float, float], at: tuple[float, float], lay: Layout,
                scale: float, edge: str, leader: bool, tight: bool = False) -> AnnotationBbox:
    # leader lines are drawn separately, from the anchor to the box's edge (see _grid_labels)
    arrow = None
    return AnnotationBbox(box, xy, xybox=at, xycoords="data", boxcoords="data",
                          box_alignment=(0.5, 0.5), frameon=True, pad=0.12 if tight else 0.35,
                          fontsize=lay.pt(12) * scale, arrowprops=arrow, annotation_clip=False,
                          bboxprops={"boxstyle": f"round,pad={0.12 if tight else 0.35}",
                                     "facecolor": "white",
                                     "edgecolor": edge, "alpha": 0.88,
                                     "linewidth": lay.pt(1.5)},
                          zorder=20)


def _draw_layers(ax: Axes, d: StationLayers, lay: Layout) -> None:
    if d.others is not None and len(d.others):
        d.others.plot(ax=ax, facecolor="#eeeeee", edgecolor="#aaaaaa", linewidth=lay.pt(0.6),
                      zorder=1)
    d.grids.plot(ax=ax, facecolor=d.colours, edgecolor="#4d4d4d", linewidth=lay.pt(1.0),
                 alpha=0.75, zorder=2)
    if d.villages is not None and len(d.villages):
        polys = d.villages[d.villages.geom_type.isin(["Polygon", "MultiPolygon"])]
        if len(polys):
            polys.boundary.plot(ax=ax, color="#777777", linewidth=lay.pt(0.7),
                                linestyle=(0, (4, 2)), zorder=3)
    d.townships.boundary.plot(ax=ax, color="#333333", linewidth=lay.pt(2.2), zorder=4)
    if d.other_lines is not None and len(d.other_lines):
        d.other_lines.plot(ax=ax, color="#e8b4ae", linewidth=lay.pt(0.8), zorder=5)
    if d.lines is not None and len(d.lines):
        d.lines.plot(ax=ax, color="#c0392b", linewidth=lay.pt(1.6), zorder=5)
    size = lay.pt(3.2) ** 2
    if d.other_transformers is not None and len(d.other_transformers):
        xy = np.column_stack([d.other_transformers.geometry.x, d.other_transformers.geometry.y])
        ax.scatter(xy[:, 0], xy[:, 1], s=size, c="#999999", linewidths=0, zorder=6)
    if len(d.transformers):
        xy = np.column_stack([d.transformers.geometry.x, d.transformers.geometry.y])
        ax.scatter(xy[:, 0], xy[:, 1], s=size, c="#222222", linewidths=0, zorder=6)


def _scale_bar(ax: Axes, ext: Box, mpi: float, lay: Layout, font: str, t: dict[str, str]) -> Box:
    """Draw a 4-part scale bar at the lower left; return the box it covers (map units)."""
    w = ext[2] - ext[0]
    km = nice_length_km(w)
    length = km * 1000.0
    x0, y0 = ext[0] + 0.6 * mpi, ext[1] + 0.75 * mpi
    bar_h = 0.09 * mpi * lay.scale
    fs = lay.pt(12)
    pad = 0.25 * mpi * lay.scale
    top = y0 + bar_h + fs / 72 * mpi * 1.6
    bottom = y0 - fs / 72 * mpi * 2.0
    ax.add_patch(Rectangle((x0 - pad, bottom - pad / 2), length + 2 * pad + fs / 72 * mpi * 2.5,
                           top - bottom + pad, facecolor="white", edgecolor="#999999",
                           alpha=0.9, lw=lay.pt(0.6), zorder=15))
    for i in range(4):
        ax.add_patch(Rectangle((x0 + i * length / 4, y0), length / 4, bar_h,
                               facecolor="#222222" if i % 2 == 0 else "white",
                               edgecolor="#222222", lw=lay.pt(0.8), zorder=16))

    def fmt(v: float) -> str:
        return f"{v:g}"
    for frac in (0.0, 0.5, 1.0):
        label = fmt(km * frac) + (f" {t['km']}" if frac == 1.0 else "")
        ax.text(x0 + frac * length, y0 + bar_h + fs / 72 * mpi * 0.3, label, fontsize=fs,
                family=font, ha="center", va="bottom",
                zorder=17)
    ratio = mpi / 0.0254
    nice = float(f"{ratio:.2g}")
    ax.text(x0, bottom, t["scale"].format(n=f"{nice:,.0f}"), fontsize=lay.pt(10), family=font,
            ha="left", va="bottom", color="#444444", zorder=17)
    return (x0 - pad, bottom - pad / 2, x0 + length + pad + fs / 72 * mpi * 2.5, top + pad / 2)


def _north_arrow(ax: Axes, ext: Box, mpi: float, lay: Layout, font: str, t: dict[str, str]) -> Box:
    """Draw a north arrow at the upper right; return the box it covers (map units)."""
    h = 0.9 * mpi * lay.scale
    w = 0.45 * h
    cx, top = ext[2] - 0.8 * mpi * lay.scale, ext[3] - 0.85 * mpi * lay.scale
    base, mid = top - h, top - 0.72 * h
    ax.add_patch(MplPolygon([(cx, top), (cx - w / 2, base), (cx, mid)], closed=True,
                            facecolor="#222222", edgecolor="#222222", lw=lay.pt(0.8), zorder=16))
    ax.add_patch(MplPolygon([(cx, top), (cx + w / 2, base), (cx, mid)], closed=True,
                            facecolor="white", edgecolor="#222222", lw=lay.pt(0.8), zorder=16))
    ax.text(cx, top + 0.05 * mpi, t["north"], fontsize=lay.pt(18), fontweight="bold", family=font,
            ha="center", va="bottom", zorder=17, path_effects=_HALO)
    fs = lay.pt(18) / 72 * mpi
    return (cx - w, base - 0.1 * mpi, cx + w, top + fs * 1.5)


def _station_marker(ax: Axes, d: StationLayers, mpi: float, lay: Layout, font: str) -> Box | None:
    if d.station_xy is None:
        return None
    x, y = d.station_xy
    ax.scatter([x], [y], s=lay.pt(16) ** 2, marker="*", c="#d62728", edgecolors="white",
               linewidths=lay.pt(1.0), zorder=18)
    fs = lay.pt(14)
    dx = lay.pt(12) / 72 * mpi
    ax.text(x + dx, y, d.station_name, fontsize=fs, fontweight="bold", family=font, ha="left",
            va="center", color="#a31515", zorder=18, path_effects=_HALO)
    tw = text_width_em(d.station_name) * fs / 72 * mpi
    th = fs / 72 * mpi * 1.3
    return (x - dx, y - th / 2, x + dx + tw, y + th / 2)


def _measure(ax: Axes, artist: Any, mpi: float) -> tuple[float, float]:
    """Width and height of ``artist`` in map units (drawn with the Agg renderer)."""
    fig = ax.get_figure(root=True)
    if fig is None:
        raise ValueError("the axes is not on a figure")
    bb = artist.get_window_extent(agg_renderer(fig))
    dpi = fig.dpi
    return bb.width / dpi * mpi, bb.height / dpi * mpi


def draw_map(fig: Figure, lay: Layout, d: StationLayers, *, font: str,
             t: dict[str, str]) -> MapPanel:
    """Draw the map panel of one station and place its labels."""
    ax = fig.add_axes(lay.map)
    rect_w, rect_h = lay.map[2] * lay.width_in, lay.map[3] * lay.height_in
    bounds = d.grids.total_bounds
    if d.station_xy is not None:
        sx, sy = d.station_xy
        bounds = (min(bounds[0], sx), min(bounds[1], sy), max(bounds[2], sx), max(bounds[3], sy))
    ext = _fit_extent(tuple(bounds), rect_w / rect_h)
    mpi = (ext[2] - ext[0]) / rect_w  # metres per inch of paper
    _draw_layers(ax, d, lay)
    ax.set_xlim(ext[0], ext[2])
    ax.set_ylim(ext[1], ext[3])
    ax.set_aspect("equal", adjustable="box")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_facecolor("#fbfbf8")
    for spine in ax.spines.values():
        spine.set_linewidth(lay.pt(1.5))
        spine.set_color("#333333")
    obstacles = [_scale_bar(ax, ext, mpi, lay, font, t), _north_arrow(ax, ext, mpi, lay, font, t)]
    station_box = _station_marker(ax, d, mpi, lay, font)
    if station_box is not None:
        obstacles.append(station_box)
    placements, artists = _grid_labels(ax, d, ext, mpi, lay, font, t, obstacles)
    blocked = [p.box for p in placements] + obstacles
    leaders = [p.leader_line.buffer(0.03 * mpi) for p in placements if p.leader_line is not None]
    villages, vboxes = _village_labels(ax, d, ext, mpi, lay, font, blocked, leaders)
    return MapPanel(ax, ext, mpi, placements, artists, villages, obstacles, vboxes)


def _grid_labels(ax: Axes, d: StationLayers, ext: Box, mpi: float, lay: Layout, font: str,
                 t: dict[str, str], obstacles: list[Box]) -> tuple[list[Placement], list[Any]]:
    texts = []
    requests = []
    for number, (_, g) in enumerate(d.grids.iterrows(), start=1):
        name, phone, gid = str(g.get("manager_name") or "—"), format_phone(g.get("phone")), \
            str(g["grid_id"])
        sizes = []
        for box in (_label_box(name, phone, gid, lay=lay, scale=1.0, font=font,
                               grid_word=t["grid_label"]), _number_box(number, lay=lay, font=font)):
            probe = _annotation(box, xy=(ext[0], ext[1]), at=(ext[0], ext[1]), lay=lay,
                                scale=1.0, edge="#333333", leader=False,
                                tight=isinstance(box, TextArea))
            ax.add_artist(probe)
            sizes.append(_measure(ax, probe, mpi))
            probe.remove()
        texts.append((name, phone, gid, number))
        (w, h), short = sizes
        requests.append(LabelRequest(gid, g.geometry, w, h, compact=short))
    frame = (ext[0] + 0.1 * mpi, ext[1] + 0.1 * mpi, ext[2] - 0.1 * mpi, ext[3] - 0.1 * mpi)
    placements = place_labels(requests, frame=frame, scales=LABEL_SCALES, gap=0.08 * mpi,
                              obstacles=obstacles)
    artists = []
    for (name, phone, gid, number), p, colour in zip(texts, placements, d.colours, strict=True):
        if not p.placed:
            continue
        content = (_number_box(number, lay=lay, font=font) if p.compact else
                   _label_box(name, phone, gid, lay=lay, scale=p.scale, font=font,
                              grid_word=t["grid_label"]))
        ab = _annotation(content, xy=p.anchor, at=(p.x, p.y), lay=lay, scale=p.scale,
                         edge="#333333" if p.leader else colour, leader=p.leader,
                         tight=p.compact)
        ax.add_artist(ab)
        artists.append(ab)
        line = p.leader_line
        if line is not None:
            (x0, y0), (x1, y1) = line.coords
            ax.plot([x0, x1], [y0, y1], color="#222222", lw=lay.pt(1.3), zorder=19,
                    solid_capstyle="butt")
            ax.scatter([p.anchor[0]], [p.anchor[1]], s=lay.pt(5) ** 2, c="#222222", zorder=19)
    return placements, artists


def _village_labels(ax: Axes, d: StationLayers, ext: Box, mpi: float, lay: Layout, font: str,
                    blocked: list[Box], leaders: list[Any]) -> tuple[list[Text], list[Box]]:
    if d.villages is None or not len(d.villages) or "name" not in d.villages.columns:
        return [], []
    fs = lay.pt(12.75)  # 4.5 mm
    h = fs / 72 * mpi * 1.3
    view = shp_box(*ext)
    labels: list[PointLabel] = []
    order = d.villages.assign(_a=d.villages.area).sort_values(["_a", "name"], ascending=[False, True])
    for _, v in order.iterrows():
        if v.geometry is None or v.geometry.is_empty or not v.geometry.intersects(view):
            continue
        pt = label_anchor(v.geometry) if v.geometry.area > 0 else v.geometry.centroid
        name = str(v["name"])
        labels.append(PointLabel(name, pt.x, pt.y, text_width_em(name) * fs / 72 * mpi + 0.04 * mpi,
                                 h))
    kept = place_point_labels(labels, blocked=blocked, frame=ext, gap=0.03 * mpi, lines=leaders)
    out: list[Text] = []
    for lab, b in kept:
        out.append(ax.text((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, lab.key, fontsize=fs, family=font,
                           ha="center", va="center", color="#555555", zorder=12,
                           path_effects=_HALO))
    return out, [b for _, b in kept]
