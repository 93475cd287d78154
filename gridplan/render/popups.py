"""Every popup and tooltip of every gridplan page: one builder, escaped, Chinese labels.

A popup is a title and (label, value) rows; rows without a value are left out, so a popup never
shows an empty line. :func:`popup_html` escapes the title and every value (names come from ledgers
and rosters); labels are gridplan's own Chinese texts. Every map uses it: the plan map's feeder,
switch and station tooltips (:mod:`.map`), the merge pages (:mod:`.compare`), the plan diff
(:mod:`.diff_map`) and the province overview (:mod:`.province_map`).

The plan map's grid and 台区 popups are the one exception in *where* they are built: 10,000 台区
would carry 10,000 copies of the same markup, so the page script builds them when one opens, from
:data:`GRID_FIELDS` / :data:`TR_FIELDS` and properties escaped here (:func:`esc`), into the same
markup as :func:`popup_html` (``<table class="gp-pop">``, one ``<tr><th>label</th><td>value``
row per field with a value).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["GRID_FIELDS", "POPUP_CSS", "TR_FIELDS", "esc", "fmt", "number", "popup_html"]

#: Popup rows (property, label) of a grid and of a 台区 on the plan map (built by the page script).
GRID_FIELDS = (("grid_id", "网格"), ("manager", "台区经理"), ("phone", "电话"),
               ("customers", "户数"), ("n_transformers", "台区数"), ("hv_km", "高压线路 (km)"),
               ("balance", "工作量与均值之比"), ("townships", "乡镇"), ("villages", "村"),
               ("flags", "提示"))
TR_FIELDS = (("name", "名称"), ("id", "编号"), ("capacity", "容量 (kVA)"), ("customers", "户数"),
             ("feeder", "线路"), ("grid", "网格"), ("manager", "台区经理"), ("phone", "电话"),
             ("snapped", "位置"))

#: The popup table's style, for pages that do not carry the plan map's stylesheet.
POPUP_CSS = (".gp-pop { border-collapse: collapse; font-size: 12px; }"
             " .gp-pop caption { text-align: left; font-weight: bold; padding-bottom: 2px; }"
             " .gp-pop th { text-align: left; color: #555; font-weight: normal; padding: 1px 8px 1px 0;"
             " white-space: nowrap; vertical-align: top; }"
             " .gp-pop td { padding: 1px 0; }"
             " .gp-pop td.note { color: #b00020; font-weight: bold; }")

#: Characters that also need escaping: folium writes some texts into JavaScript template literals.
_JS_UNSAFE = str.maketrans({"`": "&#96;", "$": "&#36;", "\\": "&#92;", "\n": " ", "\r": " "})


def _missing(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def esc(value: Any) -> str:
    """HTML-escape one value for a popup, tooltip or search list ("" for missing).

    Besides ``& < > " '``, backquote, dollar and backslash become entities too: folium puts
    tooltip text inside a JavaScript template literal, where they would be code.
    """
    if _missing(value):
        return ""
    return html.escape(str(value), quote=True).translate(_JS_UNSAFE)


def number(value: Any, digits: int = 2) -> float | int | None:
    """A JSON-safe number rounded to ``digits`` (an int for 0; None for missing or not a number)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(f) or math.isinf(f):
        return None
    return int(f) if digits == 0 else round(f, digits)


def fmt(value: Any, *, digits: int = 1, unit: str = "") -> str:
    """One popup value as escaped text ("" for missing: the row is then left out).

    Integers get thousands separators, other numbers ``digits`` decimals (trailing zeros dropped),
    booleans 是/否; ``unit`` follows a number (``" km"``, ``" 分钟"``).
    """
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "是" if value else "否"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}{esc(unit)}"
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return ""
        text = f"{float(value):,.{digits}f}".rstrip("0").rstrip(".") if digits else \
            f"{float(value):,.0f}"
        return f"{text}{esc(unit)}"
    return esc(value)


def popup_html(rows: Iterable[tuple[str, Any]], *, title: Any = None, note: Any = None,
               link: tuple[str, str] | None = None) -> str:
    """The one popup/tooltip markup: a titled table of the rows that have a value.

    Parameters
    ----------
    rows
        (Chinese label, value) pairs; a value is escaped and formatted by :func:`fmt` (pass a
        ready string to format it yourself: it is still escaped); missing or empty values are
        left out.
    title
        Shown bold above the rows (escaped).
    note
        A warning line under the rows (escaped), e.g. ``（有变动）``.
    link
        (href, text): a link under the rows; the href is attribute-escaped (quote it for URLs).

    Returns
    -------
    str
        ``<table class="gp-pop">…</table>``; style it with :data:`POPUP_CSS`.
    """
    parts = ['<table class="gp-pop">']
    if not _missing(title) and str(title).strip():
        parts.append(f"<caption>{esc(title)}</caption>")
    for label, value in rows:
        text = fmt(value)
        if text:
            parts.append(f"<tr><th>{esc(label)}</th><td>{text}</td></tr>")
    if not _missing(note) and str(note).strip():
        parts.append(f'<tr><td class="note" colspan="2">{esc(note)}</td></tr>')
    if link is not None:
        parts.append(f'<tr><td colspan="2"><a href="{esc(link[0])}" target="_blank">'
                     f"{esc(link[1])}</a></td></tr>")
    parts.append("</table>")
    return "".join(parts)
