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
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import polylabel

__all__ = ["Box", "LabelRequest", "Placement", "PointLabel", "boxes_overlap", "label_anchor",
           "leader_segment", "place_labels", "place_point_labels"]

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
    #: Size (width, height) of the short form of the label (its roster number), tried when the
    #: full label finds no room; None: no short form.
    compact: tuple[float, float] | None = None


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
    #: True when the short form (roster number) was placed.
    compact: bool = False
    #: False when the label found no free room at all and was left off (the roster has it).
    placed: bool = True

    @property
    def leader_line(self) -> LineString | None:
        """The leader from the anchor to the nearest point of the label's box (None if none)."""
        if not self.leader or not self.placed:
            return None
        return leader_segment(self.anchor, self.box)


def leader_segment(anchor: tuple[float, float], b: Box) -> LineString:
    """Segment from ``anchor`` to the nearest point of box ``b`` (its boundary, from outside)."""
    ex = min(max(anchor[0], b[0]), b[2])
    ey = min(max(anchor[1], b[1]), b[3])
    return LineString([anchor, (ex, ey)])


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
    return geom


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
    gi, gj = np.meshgrid(np.arange(-12, 13), np.arange(-12, 13), indexing="ij")
    i, j = gi.ravel(), gj.ravel()
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
                frame: Box, gap: float, leaders: Sequence[LineString] = ()) -> Placement | None:
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
        blocked = np.zeros(len(c), dtype=bool)
        if leaders and len(inside):
            lines = np.array([_coords(ln) for ln in leaders])
            cb = np.column_stack([c[:, 0] - w / 2, c[:, 1] - h / 2, c[:, 0] + w / 2, c[:, 1] + h / 2])
            blocked[inside] = segments_hit_boxes(lines, cb[inside], gap / 2).any(axis=0)
        for k in inside:
            if blocked[k]:
                continue
            x, y = (float(v) for v in c[k])
            return Placement(req.key, x, y, s, (anchor.x, anchor.y), False, _box_at(x, y, w, h))
    return None


def segments_hit_boxes(segs: np.ndarray, boxes: np.ndarray, pad: float = 0.0) -> np.ndarray:
    """(m, n) mask: segment i (x0, y0, x1, y1) meets box j grown by ``pad`` (Liang–Barsky)."""
    segs = np.asarray(segs, dtype=float).reshape(-1, 4)
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    x0, y0 = segs[:, 0:1], segs[:, 1:2]
    dx, dy = segs[:, 2:3] - x0, segs[:, 3:4] - y0
    bx0, by0 = boxes[None, :, 0] - pad, boxes[None, :, 1] - pad
    bx1, by1 = boxes[None, :, 2] + pad, boxes[None, :, 3] + pad
    t0 = np.zeros((len(segs), len(boxes)))
    t1 = np.ones((len(segs), len(boxes)))
    ok = np.ones((len(segs), len(boxes)), dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for p_side, q_side in ((-dx, x0 - bx0), (dx, bx1 - x0), (-dy, y0 - by0), (dy, by1 - y0)):
            p = np.broadcast_to(p_side, t0.shape)
            q = np.broadcast_to(q_side, t0.shape)
            zero = p == 0
            ok &= ~(zero & (q < 0))
            t = np.where(zero, 0.0, q / np.where(zero, 1.0, p))
            t0 = np.where(~zero & (p < 0), np.maximum(t0, t), t0)
            t1 = np.where(~zero & (p > 0), np.minimum(t1, t), t1)
    return ok & (t0 <= t1)


def segments_cross(seg: tuple[float, float, float, float], others: np.ndarray) -> np.ndarray:
    """Mask: segment ``seg`` meets (crosses or touches) each of ``others`` (m, 4)."""
    return segments_cross_many(np.asarray([seg], dtype=float), others)[0]


def segments_cross_many(segs: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(n, m) mask: segment i of ``segs`` (n, 4) meets (crosses or touches) segment j of ``others``."""
    s = np.asarray(segs, dtype=float).reshape(-1, 4)
    o = np.asarray(others, dtype=float).reshape(-1, 4)
    ax, ay, bx, by = (s[:, k:k + 1] for k in range(4))
    ox0, oy0, ox1, oy1 = (o[None, :, k] for k in range(4))

    def orient(px, py, qx, qy, rx, ry):
        return np.sign((qx - px) * (ry - py) - (qy - py) * (rx - px))

    d1 = orient(ox0, oy0, ox1, oy1, ax, ay)
    d2 = orient(ox0, oy0, ox1, oy1, bx, by)
    d3 = orient(ax, ay, bx, by, ox0, oy0)
    d4 = orient(ax, ay, bx, by, ox1, oy1)
    proper = (d1 * d2 < 0) & (d3 * d4 < 0)
    # collinear or touching cases: fall back to the boxes of the two segments overlapping
    touch = ((d1 == 0) | (d2 == 0) | (d3 == 0) | (d4 == 0)) & \
        (np.minimum(ox0, ox1) <= np.maximum(ax, bx)) & (np.minimum(ax, bx) <= np.maximum(ox0, ox1)) & \
        (np.minimum(oy0, oy1) <= np.maximum(ay, by)) & (np.minimum(ay, by) <= np.maximum(oy0, oy1))
    return proper | touch


def _coords(seg: LineString) -> tuple[float, float, float, float]:
    (x0, y0), (x1, y1) = seg.coords
    return (x0, y0, x1, y1)


def _leader_array(leaders: Sequence[LineString]) -> np.ndarray:
    """The leader lines as an (m, 4) array of segments."""
    return np.array([_coords(ln) for ln in leaders], dtype=float).reshape(-1, 4)


def _boxes_at(cand: np.ndarray, w: float, h: float) -> np.ndarray:
    """(n, 4) boxes of size ``w`` x ``h`` centred on the (n, 2) points ``cand`` (as :func:`_box_at`)."""
    return np.column_stack([cand[:, 0] - w / 2, cand[:, 1] - h / 2,
                            cand[:, 0] + w / 2, cand[:, 1] + h / 2])


def _leaders_ok(a: tuple[float, float], boxes: np.ndarray, placed: Sequence[Box],
                lines: np.ndarray, gap: float) -> np.ndarray:
    """Mask over candidate ``boxes`` (n, 4): the box crosses no leader of ``lines``, and its own
    leader from ``a`` (:func:`leader_segment`) crosses no box of ``placed`` and no leader.
    """
    ex = np.minimum(np.maximum(a[0], boxes[:, 0]), boxes[:, 2])
    ey = np.minimum(np.maximum(a[1], boxes[:, 1]), boxes[:, 3])
    segs = np.column_stack([np.full(len(boxes), a[0]), np.full(len(boxes), a[1]), ex, ey])
    ok = np.ones(len(boxes), dtype=bool)
    if len(lines):
        ok &= ~segments_hit_boxes(lines, boxes, gap / 2).any(axis=0)
        ok &= ~segments_cross_many(segs, lines).any(axis=1)
    if placed:
        ok &= ~segments_hit_boxes(segs, np.asarray(placed, dtype=float), gap / 4).any(axis=1)
    return ok


def _clear_outside(solid: BaseGeometry, cand: np.ndarray, w: float, h: float, a: tuple[float, float],
                   placed: list[Box], leaders: np.ndarray, frame: Box, gap: float) -> np.ndarray:
    """Mask of candidate centres whose box is in ``frame``, clear of ``placed`` and of ``solid``
    and whose leader from ``a`` crosses nothing (the cheap tests first, on fewer candidates).
    """
    ok = _free(cand, w, h, placed, frame, gap)
    idx = np.flatnonzero(ok)
    if len(idx):
        b = _boxes_at(cand[idx], w, h)
        keep = ~shapely.intersects(solid, shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]))
        idx, b = idx[keep], b[keep]
    if len(idx):
        keep = _leaders_ok(a, b, placed, leaders, gap)
        idx = idx[keep]
    out = np.zeros(len(cand), dtype=bool)
    out[idx] = True
    return out


def _try_outside(req: LabelRequest, anchor: Point, size: tuple[float, float], scale: float,
                 placed: list[Box], leaders: list[LineString], frame: Box, gap: float,
                 avoid: Sequence[BaseGeometry], compact: bool) -> tuple[float, Placement] | None:
    """Best position outside the polygon with a leader line: (cost, placement), or None.

    Along each direction the first free spot (stepping out from the anchor) is a candidate; the
    cheapest candidate (distance, plus the other grids it covers) wins. Every spot of every
    direction is tested at once (numpy), in the same order and with the same tests as one by one.
    """
    w, h = size
    solid = req.polygon.buffer(gap)
    shapely.prepare(solid)
    step = max(min(w, h) / 2.0, 1e-9)
    reach = math.hypot(w, h) * 4 + math.sqrt(max(req.polygon.area, 0.0)) * 2
    radii: list[float] = []
    r = step
    while r <= reach:
        radii.append(r)
        r += step
    if not radii:
        return None
    after = np.array(radii[1:] + [r])  # the distance the cost counts (one step further out)
    rs = np.array(radii)
    a = (anchor.x, anchor.y)
    dirs = [math.radians(deg) for deg in _DIRECTIONS]
    dx = np.array([math.cos(t) for t in dirs])[:, None]
    dy = np.array([math.sin(t) for t in dirs])[:, None]
    cand = np.column_stack([(anchor.x + dx * rs).ravel(), (anchor.y + dy * rs).ravel()])
    ok = _clear_outside(solid, cand, w, h, a, placed, _leader_array(leaders), frame, gap)
    ok = ok.reshape(len(dirs), len(rs))
    best: tuple[float, Placement] | None = None
    for d in range(len(dirs)):
        hit = np.flatnonzero(ok[d])
        if not len(hit):
            continue
        k = int(hit[0])
        x, y = float(cand[d * len(rs) + k, 0]), float(cand[d * len(rs) + k, 1])
        b = _box_at(x, y, w, h)
        bb = box(*b)
        cover = sum(g.intersection(bb).area for g in avoid if g.intersects(bb))
        cost = float(after[k]) + 2.0 * cover / max(h, 1e-9)
        if best is None or cost < best[0]:
            best = (cost, Placement(req.key, x, y, scale, a, True, b, compact))
    return best


def _try_anywhere(req: LabelRequest, anchor: Point, size: tuple[float, float],
                  placed: list[Box], leaders: list[LineString], frame: Box,
                  gap: float) -> Placement | None:
    """Return the nearest free spot of the frame whose leader crosses nothing (short labels)."""
    w, h = size
    xs = np.arange(frame[0] + w / 2, frame[2] - w / 2, max(w * 0.75, 1e-9))
    ys = np.arange(frame[1] + h / 2, frame[3] - h / 2, max(h * 0.75, 1e-9))
    if not len(xs) or not len(ys):
        return None
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    cand = np.column_stack([gx.ravel(), gy.ravel()])
    d = np.hypot(cand[:, 0] - anchor.x, cand[:, 1] - anchor.y)
    cand = cand[np.lexsort((cand[:, 1], cand[:, 0], d))]
    free = cand[_free(cand, w, h, placed, frame, gap)][:4000]
    solid = req.polygon.buffer(gap)
    shapely.prepare(solid)
    a = (anchor.x, anchor.y)
    hit = np.flatnonzero(_clear_outside(solid, free, w, h, a, placed, _leader_array(leaders),
                                        frame, gap))
    if not len(hit):
        return None
    x, y = float(free[hit[0], 0]), float(free[hit[0], 1])
    return Placement(req.key, x, y, 1.0, a, True, _box_at(x, y, w, h), True)


def place_labels(requests: Sequence[LabelRequest], *, frame: Box,
                 scales: Sequence[float] = (1.0, 0.9, 0.8, 0.7), gap: float = 0.0,
                 obstacles: Sequence[Box] = ()) -> list[Placement]:
    """Place one label per polygon: no two labels overlap, no leader crosses a label or a leader.

    Parameters
    ----------
    requests
        One per polygon, with the label size at scale 1 in map units (and optionally the size
        of its short form, the roster number).
    frame
        The visible map extent; labels stay inside it.
    scales
        Font scales to try, largest first (labels shrink before they leave their polygon).
    gap
        Minimum distance kept between two labels (map units).
    obstacles
        Boxes no label or leader may cover (scale bar, north arrow, ...).

    Returns
    -------
    list of Placement
        In the order of ``requests``. In turn: the full label inside its polygon (shrunk down to
        ``min(scales)``); else the short form inside (or centred on a grid too small for it),
        upgraded to the full label outside with a leader where there is room; else the full
        label or the short form outside with a leader, or the short form anywhere free. A label that
        finds no room at all is left off (``placed=False``; a warning is logged): it never
        overlaps anything.
    """
    placed: list[Box] = list(obstacles)
    leaders: list[LineString] = []
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
    # Every grid first gets something on it: the short form (roster number) inside, or
    # centred on it overhanging a grid too small to hold it.
    rest = []
    for req in sorted(pending, key=lambda r: (r.polygon.area, r.key)):
        a = anchors[req.key]
        p = None
        if req.compact is not None:
            small = LabelRequest(req.key, req.polygon, req.compact[0], req.compact[1])
            p = _try_inside(small, a, (1.0,), placed, frame, gap)
            if p is None:
                p = _try_inside(LabelRequest(req.key, req.polygon.buffer(max(req.compact) * 1.0),
                                             req.compact[0], req.compact[1]), a, (1.0,), placed,
                                frame, gap)
        if p is None:
            rest.append(req)
        else:
            out[req.key] = Placement(p.key, p.x, p.y, 1.0, p.anchor, False, p.box, True)
            placed.append(p.box)
    # Then upgrade: where there is room, the full label (name and phone) beside the grid with a
    # leader replaces the number - the most cramped grids first, so they get the nearest spots.
    for req in sorted(pending, key=lambda r: (r.polygon.area, r.key)):
        if req.key not in out:
            continue
        own = out[req.key].box
        others_boxes = [b for b in placed if b is not own]
        others = [r.polygon for r in requests if r.key != req.key]
        found = None
        for s in scales:
            found = _try_outside(req, anchors[req.key], (req.width * s, req.height * s), s,
                                 others_boxes, leaders, frame, gap, others, False)
            if found is not None:
                break
        if found is None:
            continue
        placed.remove(own)
        out[req.key] = found[1]
        placed.append(found[1].box)
        leaders.append(found[1].leader_line)
    # Grids with nothing yet: full label outside, number outside, number anywhere free.
    for req in rest:
        a = anchors[req.key]
        others = [r.polygon for r in requests if r.key != req.key]
        found = None
        for s in scales:
            found = _try_outside(req, a, (req.width * s, req.height * s), s, placed, leaders,
                                 frame, gap, others, False)
            if found is not None:
                break
        if found is None and req.compact is not None:
            found = _try_outside(req, a, req.compact, 1.0, placed, leaders, frame, gap, others,
                                 True)
        p = found[1] if found is not None else None
        if p is None and req.compact is not None:
            p = _try_anywhere(req, a, req.compact, placed, leaders, frame, gap)
        if p is None:
            log.warning("label %s left off the map: no free room (the roster lists it)", req.key)
            b0 = _box_at(a.x, a.y, 0.0, 0.0)
            p = Placement(req.key, a.x, a.y, min(scales), (a.x, a.y), False, b0, True, False)
        else:
            placed.append(p.box)
            if p.leader_line is not None:
                leaders.append(p.leader_line)
        out[req.key] = p
    return [out[r.key] for r in requests]


def place_point_labels(labels: Sequence[PointLabel], *, blocked: Sequence[Box], frame: Box,
                       gap: float = 0.0,
                       lines: Sequence[BaseGeometry] = ()) -> list[tuple[PointLabel, Box]]:
    """Place the secondary labels that fit; drop the rest.

    A label is kept (centred on its point, else just above or below) when it collides with
    nothing in ``blocked``, crosses none of ``lines`` (leader lines) and overlaps no label kept
    before it.

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
