"""Label placement for the wall map: pure geometry, no matplotlib (so it can be tested alone).

Every label is a rectangle of known size (in map units, metres). A grid label goes at its polygon's
pole of inaccessibility (the interior point farthest from the boundary), or near it, shrunk down to
``min(scales)`` if needed; a label that still does not fit inside its grid goes outside it, as close
as possible, with a leader line back to the anchor. Labels never overlap each other when there is any
room to avoid it. Village names are secondary: each is kept only where it collides with nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import polylabel

__all__ = ["Box", "LabelRequest", "Placement", "PointLabel", "boxes_overlap", "label_anchor",
           "place_labels", "place_point_labels"]

log = logging.getLogger(__name__)

#: (minx, miny, maxx, maxy) in map units.
Box = tuple[float, float, float, float]

#: Directions tried for labels outside their grid (degrees; east first, then around).
_DIRECTIONS = tuple(range(0, 360, 30))


@dataclass(frozen=True)
class LabelRequest:
    """A label to place for one polygon; ``width``/``height`` are its size at scale 1."""

    key: str
    polygon: BaseGeometry
    width: float
    height: float


@dataclass(frozen=True)
class Placement:
    """Where a label went: box centre, font scale, and the anchor its leader line points to."""

    key: str
    x: float
    y: float
    scale: float
    anchor: tuple[float, float]
    leader: bool
    box: Box


@dataclass(frozen=True)
class PointLabel:
    """A secondary label (a village name) wanted at point ``(x, y)``."""

    key: str
    x: float
    y: float
    width: float
    height: float


def boxes_overlap(a: Box, b: Box, gap: float = 0.0) -> bool:
    """Return True when boxes ``a`` and ``b`` (grown by ``gap``/2 each) intersect."""
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])


def _box_at(x: float, y: float, w: float, h: float) -> Box:
    return (x - w / 2, y - h / 2, x + w / 2, y + h / 2)


def _inside(frame: Box, b: Box) -> bool:
    return frame[0] <= b[0] and frame[1] <= b[1] and b[2] <= frame[2] and b[3] <= frame[3]


def _largest_part(geom: BaseGeometry) -> Polygon:
    if isinstance(geom, MultiPolygon):
        return max(geom.geoms, key=lambda g: g.area)
    return geom  # type: ignore[return-value]


def label_anchor(geom: BaseGeometry) -> Point:
    """Return the pole of inaccessibility of the largest part of ``geom`` (a point inside it)."""
    part = _largest_part(geom)
    if part.is_empty or part.area <= 0:
        return geom.representative_point()
    tol = max(math.sqrt(part.area) / 200.0, 1e-9)
    try:
        return polylabel(part, tolerance=tol)
    except (ValueError, shapely.errors.GEOSException):  # degenerate rings: any interior point
        return part.representative_point()


def _collides(b: Box, placed: Sequence[Box], gap: float) -> bool:
    return any(boxes_overlap(b, p, gap) for p in placed)


def _inside_candidates(ax: float, ay: float, w: float, h: float,
                       centre: Point) -> np.ndarray:
    """(n, 2) points: the anchor, the centroid, then a spiral of nearby points (nearest first)."""
    step = max(min(w, h) / 4.0, 1e-9)
    i, j = np.meshgrid(np.arange(-12, 13), np.arange(-12, 13), indexing="ij")
    i, j = i.ravel(), j.ravel()
    order = np.lexsort((j, i, np.hypot(i, j)))  # by distance, then i, then j: deterministic
    spiral = np.column_stack([ax + i[order] * step, ay + j[order] * step])
    return np.vstack([[ax, ay], [centre.x, centre.y], spiral])


def _free(cand: np.ndarray, w: float, h: float, placed: list[Box], frame: Box,
          gap: float) -> np.ndarray:
    """Mask of candidate centres whose box is inside ``frame`` and clear of ``placed``."""
    x0, y0 = cand[:, 0] - w / 2, cand[:, 1] - h / 2
    x1, y1 = cand[:, 0] + w / 2, cand[:, 1] + h / 2
    ok = (x0 >= frame[0]) & (y0 >= frame[1]) & (x1 <= frame[2]) & (y1 <= frame[3])
    if placed:
        p = np.asarray(placed, dtype=float)
        hit = ~((x1[:, None] + gap <= p[None, :, 0]) | (p[None, :, 2] + gap <= x0[:, None])
                | (y1[:, None] + gap <= p[None, :, 1]) | (p[None, :, 3] + gap <= y0[:, None]))
        ok &= ~hit.any(axis=1)
    return ok


def _try_inside(req: LabelRequest, anchor: Point, scales: Sequence[float], placed: list[Box],
                frame: Box, gap: float) -> Placement | None:
    fit = req.polygon.buffer(0.04 * req.height)  # allow a hair of overhang at the edges
    shapely.prepare(fit)
    centre = _largest_part(req.polygon).centroid
    for s in scales:
        w, h = req.width * s, req.height * s
        cand = _inside_candidates(anchor.x, anchor.y, w, h, centre)
        idx = np.flatnonzero(_free(cand, w, h, placed, frame, gap))
        if not len(idx):
            continue
        c = cand[idx]
        boxes = shapely.box(c[:, 0] - w / 2, c[:, 1] - h / 2, c[:, 0] + w / 2, c[:, 1] + h / 2)
        inside = np.flatnonzero(shapely.contains(fit, boxes))
        if len(inside):
            x, y = (float(v) for v in c[inside[0]])
            return Placement(req.key, x, y, s, (anchor.x, anchor.y), False, _box_at(x, y, w, h))
    return None


def _try_outside(req: LabelRequest, anchor: Point, scale: float, placed: list[Box], frame: Box,
                 gap: float, avoid: Sequence[BaseGeometry]) -> tuple[float, Placement] | None:
    """Best position outside the polygon with a leader line: (cost, placement), or None."""
    w, h = req.width * scale, req.height * scale
    solid = req.polygon.buffer(gap)
    shapely.prepare(solid)
    step = max(min(w, h) / 2.0, 1e-9)
    reach = math.hypot(w, h) * 4 + math.sqrt(max(req.polygon.area, 0.0)) * 2
    best: tuple[float, Placement] | None = None
    for deg in _DIRECTIONS:
        dx, dy = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        r = step
        while r <= reach:
            x, y = anchor.x + dx * r, anchor.y + dy * r
            b = _box_at(x, y, w, h)
            r += step
            if solid.intersects(box(*b)):
                continue
            if not _inside(frame, b) or _collides(b, placed, gap):
                continue
            bb = box(*b)
            cover = sum(g.intersection(bb).area for g in avoid if g.intersects(bb))
            cost = r + 2.0 * cover / max(h, 1e-9)
            if best is None or cost < best[0]:
                best = (cost, Placement(req.key, x, y, scale, (anchor.x, anchor.y), True, b))
            break
    return best


def place_labels(requests: Sequence[LabelRequest], *, frame: Box,
                 scales: Sequence[float] = (1.0, 0.9, 0.8, 0.7), gap: float = 0.0,
                 obstacles: Sequence[Box] = ()) -> list[Placement]:
    """Place one label per polygon so that no two labels overlap.

    Parameters
    ----------
    requests
        One per polygon, with the label size at scale 1 in map units.
    frame
        The visible map extent; labels stay inside it.
    scales
        Font scales to try, largest first (labels shrink before they leave their polygon).
    gap
        Minimum distance kept between two labels (map units).
    obstacles
        Boxes no label may cover (scale bar, north arrow, ...).

    Returns
    -------
    list of Placement
        In the order of ``requests``. A label that fits nowhere without overlap is placed at the
        smallest scale where it overlaps least, and a warning is logged.
    """
    placed: list[Box] = list(obstacles)
    out: dict[str, Placement] = {}
    anchors = {r.key: label_anchor(r.polygon) for r in requests}
    order = sorted(requests, key=lambda r: (-r.polygon.area, r.key))
    pending = []
    for req in order:
        p = _try_inside(req, anchors[req.key], scales, placed, frame, gap)
        if p is None:
            pending.append(req)
        else:
            out[req.key] = p
            placed.append(p.box)
    # Outside labels: the most cramped (smallest) first, so they get the nearest free spots.
    for req in sorted(pending, key=lambda r: (r.polygon.area, r.key)):
        others = [r.polygon for r in requests if r.key != req.key]
        found = None
        for s in scales:
            found = _try_outside(req, anchors[req.key], s, placed, frame, gap, others)
            if found is not None:
                break
        if found is None:
            a = anchors[req.key]
            s = min(scales)
            b = _box_at(a.x, a.y, req.width * s, req.height * s)
            log.warning("label %s overlaps others: no free room on the map", req.key)
            p = Placement(req.key, a.x, a.y, s, (a.x, a.y), False, b)
        else:
            p = found[1]
        out[req.key] = p
        placed.append(p.box)
    return [out[r.key] for r in requests]


def place_point_labels(labels: Sequence[PointLabel], *, blocked: Sequence[Box], frame: Box,
                       gap: float = 0.0,
                       lines: Sequence[BaseGeometry] = ()) -> list[tuple[PointLabel, Box]]:
    """Keep each secondary label (centred on its point, else just above or below) that collides
    with nothing in ``blocked``, crosses none of ``lines`` (leader lines) and overlaps no label
    kept before it; drop the rest.

    Returns
    -------
    list of (PointLabel, Box)
        The labels kept, with their boxes, in input order.
    """
    taken: list[Box] = list(blocked)
    kept: list[tuple[PointLabel, Box]] = []
    for lab in labels:
        for dy in (0.0, lab.height, -lab.height):
            b = _box_at(lab.x, lab.y + dy, lab.width, lab.height)
            if _inside(frame, b) and not _collides(b, taken, gap) and \
                    not any(ln.intersects(box(*b)) for ln in lines):
                kept.append((lab, b))
                taken.append(b)
                break
    return kept
