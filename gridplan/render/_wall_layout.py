"""Wall map page furniture: paper sizes, page layout, grid colours, scale bar, north arrow, roster.

Everything here works in a figure whose size is the paper size; font sizes are in points scaled with
the paper (``Layout.scale`` is 1 on A1, √2 on A0, 1/2 on A3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from shapely import STRtree
from shapely.geometry.base import BaseGeometry

__all__ = [
    "PALETTE",
    "PAPER_MM",
    "Layout",
    "fit_text",
    "format_phone",
    "grid_colours",
    "nice_length_km",
    "page_layout",
    "text_width_em",
]

#: ISO 216 sizes, portrait (width, height) in millimetres.
PAPER_MM: dict[str, tuple[float, float]] = {
    "A0": (841.0, 1189.0), "A1": (594.0, 841.0), "A2": (420.0, 594.0), "A3": (297.0, 420.0),
}

#: Light, clearly different fills (ColorBrewer Set3 / Pastel, reordered so neighbours in the list
#: differ in hue); grids get the first colour their neighbours do not use.
PALETTE: tuple[str, ...] = ("#8dd3c7", "#fdb462", "#bebada", "#fb8072", "#b3de69", "#80b1d3",
                            "#fccde5", "#ffed6f", "#bc80bd", "#ccebc5", "#e5c494", "#a6cee3")

MM_PER_INCH = 25.4


@dataclass(frozen=True)
class Layout:
    """Where things go on the page (rectangles in figure fractions: left, bottom, width, height)."""

    width_in: float
    height_in: float
    scale: float
    title: tuple[float, float, float, float]
    map: tuple[float, float, float, float]
    side: tuple[float, float, float, float]
    landscape: bool

    def pt(self, size_a1: float) -> float:
        """Font size in points for this paper, given the size wanted on A1."""
        return size_a1 * self.scale


def page_layout(size: str, orientation: str) -> Layout:
    """Return the page layout for ISO ``size`` (A0–A3) and ``orientation``."""
    w_mm, h_mm = PAPER_MM[size]
    landscape = orientation == "landscape"
    if landscape:
        w_mm, h_mm = h_mm, w_mm
    scale = min(w_mm, h_mm) / PAPER_MM["A1"][0]
    margin_mm = 12.0 * scale  # 12 mm on A1
    m_x, m_y = margin_mm / w_mm, margin_mm / h_mm
    title_h = 0.085 if landscape else 0.065
    top = 1 - m_y
    title = (m_x, top - title_h, 1 - 2 * m_x, title_h)
    below = top - title_h - m_y * 0.6
    if landscape:
        map_w = 0.665
        mp = (m_x, m_y, map_w, below - m_y)
        side_x = m_x + map_w + m_x
        side = (side_x, m_y, 1 - m_x - side_x, below - m_y)
    else:
        side_h = 0.30
        mp = (m_x, m_y + side_h + m_y * 0.6, 1 - 2 * m_x, below - (m_y + side_h + m_y * 0.6))
        side = (m_x, m_y, 1 - 2 * m_x, side_h)
    return Layout(w_mm / MM_PER_INCH, h_mm / MM_PER_INCH, scale, title, mp, side, landscape)


def grid_colours(geoms: Sequence[BaseGeometry], *, palette: Sequence[str] = PALETTE) -> list[str]:
    """Greedy colouring: neighbouring (touching) grids get different colours.

    Grids are coloured in order of decreasing number of neighbours (ties: input order), each with
    the least-used palette colour that none of its coloured neighbours uses (so a small station
    gets all-different colours; any colour if the palette runs out).
    """
    n = len(geoms)
    if n == 0:
        return []
    tree = STRtree(list(geoms))
    nbrs: list[set[int]] = [set() for _ in range(n)]
    for i, g in enumerate(geoms):
        for j in tree.query(g.buffer(1.0), predicate="intersects"):
            if int(j) != i:
                nbrs[i].add(int(j))
                nbrs[int(j)].add(i)
    order = sorted(range(n), key=lambda i: (-len(nbrs[i]), i))
    colour: dict[int, int] = {}
    uses = [0] * len(palette)
    for i in order:
        used = {colour[j] for j in nbrs[i] if j in colour}
        free = [k for k in range(len(palette)) if k not in used] or list(range(len(palette)))
        c = min(free, key=lambda k: (uses[k], k))  # least-used free colour: more variety
        colour[i] = c
        uses[c] += 1
    return [palette[colour[i]] for i in range(n)]


def nice_length_km(width_m: float) -> float:
    """A round scale-bar length (km) near a fifth of the map width."""
    target = width_m / 5.0 / 1000.0
    if target <= 0:
        return 1.0
    exp = math.floor(math.log10(target))
    best = min((f * 10 ** exp for f in (1, 2, 2.5, 5, 10)), key=lambda v: abs(v - target))
    return float(best)


def format_phone(value: object) -> str:
    """Phone number as text; 11-digit mobiles grouped 3-4-4 for reading from a distance."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    text = str(value).strip()
    if len(text) == 11 and text.isdigit() and text.startswith("1"):
        return f"{text[:3]} {text[3:7]} {text[7:]}"
    return text or "—"


def text_width_em(text: str) -> float:
    """Approximate text width in ems (CJK and full-width characters 1, others about 0.55)."""
    return sum(1.0 if ord(ch) > 0x2E7F else 0.56 for ch in text)


def fit_text(text: str, width_em: float, *, max_lines: int = 2) -> str:
    """Wrap ``text`` to lines of at most ``width_em`` ems, at most ``max_lines`` (ellipsis after)."""
    lines: list[str] = []
    cur, cur_w = "", 0.0
    for ch in text:
        w = text_width_em(ch)
        if cur_w + w > width_em and cur:
            lines.append(cur)
            cur, cur_w = "", 0.0
            if len(lines) == max_lines:
                break
        cur += ch
        cur_w += w
    else:
        if cur:
            lines.append(cur)
        return "\n".join(lines)
    last = lines[-1]
    while last and text_width_em(last) + 1.0 > width_em:
        last = last[:-1]
    lines[-1] = last + "…"
    return "\n".join(lines)
