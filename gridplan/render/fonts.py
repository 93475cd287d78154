"""Find a CJK (Chinese) font on this machine for the printed wall maps.

Matplotlib's default font (DejaVu Sans) has no Chinese glyphs: labels would print as boxes. This
module looks for a Simplified-Chinese font by file path (Debian's ``fonts-noto-cjk`` or
``fonts-wqy-microhei``, then any font matplotlib already knows), registers it with
:mod:`matplotlib.font_manager` and returns its family name. When none exists it raises
:class:`FontNotFoundError` naming the Debian package to install.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from matplotlib import font_manager

from ..errors import GridplanError

__all__ = ["CANDIDATES", "CJKFont", "FontNotFoundError", "embed_truetype", "find_cjk_font",
           "truetype_subset"]

log = logging.getLogger(__name__)

#: (family name, regular file, bold file or None), in order of preference. Collections (.ttc)
#: hold several faces; matplotlib selects the face by family name ("Noto Sans CJK SC" is face 2).
CANDIDATES: tuple[tuple[str, str, str | None], ...] = (
    ("Noto Sans CJK SC", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
     "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"),
    ("WenQuanYi Micro Hei", "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", None),
    ("WenQuanYi Zen Hei", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", None),
    ("Noto Sans SC", "/usr/share/fonts/opentype/noto/NotoSansSC-Regular.otf",
     "/usr/share/fonts/opentype/noto/NotoSansSC-Bold.otf"),
)

#: Family names accepted when found among the fonts matplotlib has already cached.
_KNOWN_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "Source Han Sans CN", "Noto Sans SC",
                   "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "SimHei", "Microsoft YaHei",
                   "PingFang SC", "Heiti SC", "AR PL UMing CN")

_INSTALL_HINT = ("no Chinese (CJK) font was found, so the wall map cannot print Chinese labels. "
                 "Install one: on Debian/Ubuntu `sudo apt-get install fonts-noto-cjk` "
                 "(or `fonts-wqy-microhei`); elsewhere pass font_path= with a .ttf/.otf/.ttc file "
                 "of a Simplified-Chinese font.")


class FontNotFoundError(GridplanError):
    """No CJK font is available; the message names the package to install."""


@dataclass(frozen=True)
class CJKFont:
    """A registered CJK font: the family name to pass to matplotlib and its file(s)."""

    family: str
    path: Path
    bold_path: Path | None = None


def _register(path: Path) -> None:
    font_manager.fontManager.addfont(str(path))


@lru_cache(maxsize=8)
def find_cjk_font(font_path: str | None = None) -> CJKFont:
    """Return a CJK font registered with matplotlib.

    Parameters
    ----------
    font_path
        A font file to use instead of searching (``.ttf``, ``.otf`` or ``.ttc``).

    Returns
    -------
    CJKFont

    Raises
    ------
    FontNotFoundError
        When ``font_path`` does not exist, or no CJK font is installed.
    """
    if font_path is not None:
        path = Path(font_path)
        if not path.is_file():
            raise FontNotFoundError(f"font file {path} does not exist; " + _INSTALL_HINT)
        _register(path)
        family = font_manager.FontProperties(fname=str(path)).get_name()
        return CJKFont(family=family, path=path)
    for family, regular, bold in CANDIDATES:
        if Path(regular).is_file():
            _register(Path(regular))
            bold_path = Path(bold) if bold and Path(bold).is_file() else None
            if bold_path is not None:
                _register(bold_path)
            log.debug("CJK font %s from %s", family, regular)
            return CJKFont(family=family, path=Path(regular), bold_path=bold_path)
    cached = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    for family in _KNOWN_FAMILIES:
        if family in cached:
            return CJKFont(family=family, path=Path(cached[family]))
    raise FontNotFoundError(_INSTALL_HINT)


# --------------------------------------------------------------------------- clean embedding
#
# Noto Sans CJK ships as OpenType/CFF collections (.ttc). Embedded by matplotlib as TrueType/CID
# (pdf.fonttype 42), CFF outlines give a PDF that poppler flags with "Mismatch between font type
# and embedded font file" (a CIDFontType2 font whose file is OpenType/CFF). gridplan therefore
# subsets the font to the characters a document uses and converts those outlines to TrueType
# quadratic curves (fontTools cu2qu, within 1 font unit), so the PDF embeds a genuine TrueType
# subset. The converted subsets are cached by content hash.

_FACE_CACHE: dict[tuple[str, str], Path] = {}
_REGISTERED: set[str] = set()


def _cache_dir() -> Path:
    import os
    import tempfile

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    d = Path(base) / "gridplan" / "fonts"
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only home: a private temporary folder
        d = Path(tempfile.gettempdir()) / f"gridplan-fonts-{os.getuid()}"
        d.mkdir(parents=True, exist_ok=True)
    return d


def _open_face(path: Path, family: str) -> Any:
    from fontTools.ttLib import TTCollection, TTFont

    number = 0
    if path.suffix.lower() == ".ttc":
        names = [f["name"].getDebugName(1) for f in TTCollection(str(path), lazy=True).fonts]
        number = names.index(family) if family in names else 0
    return TTFont(str(path), fontNumber=number, lazy=False)


def _to_truetype(ttf: Any) -> None:
    """Replace the CFF outlines of ``ttf`` by TrueType (quadratic) ones, in place."""
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import newTable

    order = ttf.getGlyphOrder()
    glyph_set = ttf.getGlyphSet()
    glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyphs[name] = pen.glyph()
    ttf["loca"] = newTable("loca")
    ttf["glyf"] = glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = glyphs
    for tag in ("CFF ", "VORG"):
        if tag in ttf:
            del ttf[tag]
    glyf.compile(ttf)
    hmtx = ttf["hmtx"]
    for name, g in glyf.glyphs.items():
        if hasattr(g, "xMin"):
            hmtx[name] = (hmtx[name][0], g.xMin)
    maxp = ttf["maxp"] = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for attr in ("maxZones", "maxTwilightPoints", "maxStorage", "maxFunctionDefs",
                 "maxInstructionDefs", "maxStackElements", "maxSizeOfInstructions",
                 "maxComponentElements"):
        setattr(maxp, attr, 1 if attr == "maxZones" else 0)
    maxp.compile(ttf)
    post = ttf["post"]
    post.formatType = 3.0
    ttf.sfntVersion = "\x00\x01\x00\x00"
    ttf["head"].glyphDataFormat = 0


def truetype_subset(path: Path, family: str, chars: str, *, bold: bool,
                    sub_family: str) -> Path:
    """Make a TrueType subset of ``path`` holding ``chars``; return its file (in the cache).

    The subset of face ``family`` is named ``sub_family`` and registered with matplotlib.
    """
    import hashlib
    import os

    from fontTools.subset import Options, Subsetter

    chars = "".join(sorted(set(chars) | set(" 0123456789-—·:：")))
    key = hashlib.sha256(f"{path}|{family}|{int(bold)}|{sub_family}|{chars}".encode()).hexdigest()[:16]
    out = _cache_dir() / f"{key}.ttf"
    if not out.is_file():
        ttf = _open_face(path, family)
        opts = Options()
        opts.layout_features = []
        opts.name_IDs = ["*"]
        opts.notdef_outline = True
        opts.hinting = False
        opts.desubroutinize = True
        sub = Subsetter(opts)
        sub.populate(unicodes=[ord(c) for c in chars])
        sub.subset(ttf)
        if "CFF " in ttf:
            _to_truetype(ttf)
        style = "Bold" if bold else "Regular"
        ps = sub_family.replace(" ", "") + "-" + style
        name = ttf["name"]
        name.names = [n for n in name.names if n.nameID not in (1, 2, 4, 6, 16, 17)]
        for nid, text in ((1, sub_family), (2, style), (4, f"{sub_family} {style}"), (6, ps)):
            name.setName(text, nid, 3, 1, 0x409)
        ttf["OS/2"].usWeightClass = 700 if bold else 400
        tmp = out.with_name(f".{out.name}.{os.getpid()}")
        ttf.save(str(tmp))
        os.replace(tmp, out)
    if str(out) not in _REGISTERED:
        font_manager.fontManager.addfont(str(out))
        _REGISTERED.add(str(out))
    return out


def embed_truetype(figs: Any, font: CJKFont) -> None:
    """Switch every text of ``figs`` drawn in ``font`` to one TrueType subset of it.

    ``figs`` is a figure or a list of them; the subset has the same metrics, so nothing moves.

    Call after the figures are laid out and before saving: the PDF then embeds TrueType CID
    fonts that poppler reads without warnings, and only the glyphs used.
    """
    from matplotlib.text import Text

    figs = figs if isinstance(figs, (list, tuple)) else [figs]
    texts = [t for fig in figs for t in fig.findobj(Text) if t.get_text()]
    if not texts:
        return
    import hashlib

    chars = "".join(sorted(set("".join(t.get_text() for t in texts))))
    family = "GP CJK " + hashlib.sha256(f"{font.path}|{chars}".encode()).hexdigest()[:10]
    truetype_subset(font.path, font.family, chars, bold=False, sub_family=family)
    if font.bold_path is not None:
        truetype_subset(font.bold_path, font.family, chars, bold=True, sub_family=family)
    regular = bold = family
    for t in texts:
        fam = t.get_fontfamily()
        if fam and fam[0] == font.family:
            heavy = t.get_fontweight() in ("bold", "heavy", "black", "semibold", "demibold") or \
                (isinstance(t.get_fontweight(), (int, float)) and t.get_fontweight() >= 600)
            t.set_fontfamily(bold if heavy else regular)
