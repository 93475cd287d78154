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

from matplotlib import font_manager

from .._errors import GridplanError

__all__ = ["CANDIDATES", "CJKFont", "FontNotFoundError", "find_cjk_font"]

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
