"""Wall map page furniture: paper sizes, page layout, grid colours, scale bar, north arrow, roster.

Everything here works in a figure whose size is the paper size. Text sizes are fixed in millimetres,
the same on every paper (``Layout.pt`` returns points unchanged; ``scale`` is 1): a wall map is read
from about a metre away whatever its size, so a smaller sheet shows less, never smaller text. See
``TEXT_MM`` and the README for the sizes and their source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure, SubFigure
from shapely import STRtree
from shapely.geometry.base import BaseGeometry

__all__ = [
    "PALETTE",
    "PAPER_MM",
    "ROSTER_MIN_MM",
    "TEXT_MM",
    "Layout",
    "agg_renderer",
    "fit_text",
    "format_phone",
    "grid_colours",
    "mm_pt",
    "nice_length_km",
    "page_layout",
    "text_width_em",
]

def agg_renderer(fig: Figure | SubFigure) -> RendererAgg:
    """Return the Agg renderer that measures text on ``fig`` (wall-map pages are on Agg canvases).

    Raises
    ------
    TypeError
        The figure is not on an Agg canvas (it was not made by the wall-map code).
    """
    canvas = fig.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        raise TypeError(f"a wall-map page must be on an Agg canvas, not {type(canvas).__name__}")
    return canvas.get_renderer()


#: ISO 216 sizes, portrait (width, height) in millimetres.
PAPER_MM: dict[str, tuple[float, float]] = {
    "A0": (841.0, 1189.0), "A1": (594.0, 841.0), "A2": (420.0, 594.0), "A3": (297.0, 420.0),
    "A4": (210.0, 297.0),
}

#: Font sizes (em, mm) of the texts read from a metre. Noto Sans CJK's Han glyphs fill ≈ 0.92 em
#: and its digits ≈ 0.73 em, so 6 mm type gives 5.5 mm characters and 4.4 mm digits: above the
#: 4–5 mm (distance / 250 … / 200) that signage guidance asks for at 1 m.
TEXT_MM: dict[str, float] = {
    "title": 16.2, "subtitle": 6.0, "label_name": 6.35, "label_phone": 6.0, "label_grid": 4.2,
    "number": 6.0, "roster": 6.0, "roster_head": 7.8, "legend": 5.3, "legend_title": 7.0,
    "phones": 7.0, "village": 4.5, "station": 5.3, "scale": 4.2, "note": 3.5,
}
#: Width of the complete roster table at ``TEXT_MM["roster"]`` (No., 网格, 台区经理, 电话, 户数,
#: 台区数, 负责村): a sidebar narrower than this moves the roster to continuation pages.
ROSTER_MIN_MM = 232.0
#: Narrowest sidebar on page 1 (legend and phones only), millimetres.
SIDE_MIN_MM = 96.0

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
    #: Whether the roster table starts in the sidebar of page 1 (else on the next page).
    roster_here: bool = True
    #: Page margin, inches.
    margin_in: float = 0.5

    def pt(self, size: float) -> float:
        """Font size in points (fixed on every paper size)."""
        return size * self.scale


def page_layout(size: str, orientation: str) -> Layout:
    """Return the page layout for ISO ``size`` (A0–A4) and ``orientation``.

    Text sizes are fixed in millimetres, so the layout is in millimetres too: a margin of
    10–12 mm, a title band sized for the fixed title, and a sidebar (right, landscape; bottom,
    portrait) wide enough for the whole roster table when the sheet allows it while the map keeps
    at least 55 % of the width; otherwise the sidebar holds the legend and phones, and the roster
    goes to the continuation page(s).
    """
    w_mm, h_mm = PAPER_MM[size]
    landscape = orientation == "landscape"
    if landscape:
        w_mm, h_mm = h_mm, w_mm
    margin_mm = 12.0 if min(w_mm, h_mm) >= 594 else 10.0
    m_x, m_y = margin_mm / w_mm, margin_mm / h_mm
    title_mm = TEXT_MM["title"] * 1.25 + TEXT_MM["subtitle"] * 1.9
    title_h = title_mm / h_mm
    top = 1 - m_y
    title = (m_x, top - title_h, 1 - 2 * m_x, title_h)
    below = top - title_h - m_y * 0.6
    inner_w = w_mm - 2 * margin_mm
    if landscape:
        side_mm = max(0.3 * inner_w, SIDE_MIN_MM)
        roster_here = inner_w - ROSTER_MIN_MM - margin_mm >= 0.55 * inner_w
        if roster_here:
            side_mm = max(side_mm, ROSTER_MIN_MM)
        map_w = (inner_w - side_mm - margin_mm) / w_mm
        mp = (m_x, m_y, map_w, below - m_y)
        side_x = m_x + map_w + m_x
        side = (side_x, m_y, 1 - m_x - side_x, below - m_y)
    else:
        roster_here = 0.6 * inner_w >= ROSTER_MIN_MM
        side_mm = max(0.3 * (h_mm - 2 * margin_mm - title_mm), 108.0 if not roster_here else 0.0)
        side_h = side_mm / h_mm
        mp = (m_x, m_y + side_h + m_y * 0.6, 1 - 2 * m_x, below - (m_y + side_h + m_y * 0.6))
        side = (m_x, m_y, 1 - 2 * m_x, side_h)
    return Layout(w_mm / MM_PER_INCH, h_mm / MM_PER_INCH, 1.0, title, mp, side, landscape,
                  roster_here, margin_mm / MM_PER_INCH)


def mm_pt(mm: float) -> float:
    """Millimetres to points."""
    return mm / MM_PER_INCH * 72.0


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
    """Return a round scale-bar length (km) near a fifth of the map width."""
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
