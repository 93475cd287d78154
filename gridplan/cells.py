r"""Spreadsheet-safe cells: text from the data is never written as a formula (CSV and XLSX).

Names in the input (台区名称, 姓名, 乡镇名称 …) end up in roster.xlsx, the merge and diff tables and
the province summary. A name such as ``=HYPERLINK("http://x","y")`` or ``=cmd|' /C calc'!A0``
would run as a formula when a planner opens the file (spreadsheet formula injection, OWASP
"CSV Injection"). Every writer of a CSV or XLSX file in gridplan goes through this module:

- **XLSX**: a text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
  stored as a string cell (``t="s"``, never ``<f>``) with the ``quotePrefix`` style, so Excel and
  WPS show it as typed and never evaluate it. The cell's text is unchanged.
- **CSV**: such a cell is written with a single quote ``'`` in front (the OWASP recommendation),
  since a CSV cell has no type: ``=1+1`` is written ``'=1+1``.

Control characters that XLSX cannot hold (``\x00``-``\x08``, ``\x0b``, ``\x0c``, ``\x0e``-``\x1f``)
are written as ``\ufffd`` (�) instead of failing the whole workbook.

Numbers stay numbers: a negative number (``-3.5`` as a float or an int) is written as a number, and
a text cell that is just a number (``"-12"``, ``"+8613800000000"``) is not a formula and is left as
it is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["FORMULA_PREFIXES", "csv_safe_frame", "is_formula_like", "safe_csv_text",
           "safe_worksheet", "write_csv", "write_xlsx_cell", "xlsx_safe_frame", "xlsx_text"]

#: First characters that make a spreadsheet read a cell as a formula (OWASP CSV Injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Characters an XLSX cell cannot hold (openpyxl refuses them).
_ILLEGAL_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def is_formula_like(value: Any) -> bool:
    """Whether ``value`` is text a spreadsheet could take for a formula.

    Parameters
    ----------
    value
        Any cell value.

    Returns
    -------
    bool
        True for a ``str`` that begins with one of :data:`FORMULA_PREFIXES` and is not a plain
        number (``"-12"`` is a number, ``"-1+1"`` is not).
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return False
    return not (value[0] in "+-" and _PLAIN_NUMBER.match(value))


def safe_csv_text(value: Any) -> Any:
    """Return ``value`` with a leading ``'`` when it is formula-like text, else unchanged."""
    return "'" + value if is_formula_like(value) else value


def csv_safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``df`` whose formula-like text cells carry a leading ``'``.

    Column names are treated the same way. Only text cells change; numeric columns and every
    other value are kept as they are.
    """
    out = df.copy()
    for name in out.columns:
        col = out[name]
        is_text = (col.dtype == object or isinstance(col.dtype, pd.StringDtype)
                   or str(col.dtype) == "str")
        if is_text and any(is_formula_like(v) for v in col.tolist()):
            out[name] = pd.Series([safe_csv_text(v) for v in col.tolist()], index=col.index,
                                  dtype=object)
    out.columns = [safe_csv_text(c) for c in out.columns]
    return out


def write_csv(df: pd.DataFrame, path: str | Path, **kwargs: Any) -> Path:
    """Write ``df`` as CSV (UTF-8 with BOM, no index, unless ``kwargs`` say otherwise), cells made safe.

    The BOM lets Excel on Windows open Chinese text with the right encoding.
    """
    kwargs.setdefault("index", False)
    kwargs.setdefault("encoding", "utf-8-sig")
    csv_safe_frame(df).to_csv(path, **kwargs)
    return Path(path)


def xlsx_text(value: Any) -> Any:
    """``value`` with the control characters an XLSX cell cannot hold replaced by ``\ufffd``."""
    if isinstance(value, str) and _ILLEGAL_XLSX.search(value):
        return _ILLEGAL_XLSX.sub("\ufffd", value)
    return value


def xlsx_safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``df`` fit for ``to_excel``: text without illegal control characters.

    Formula-like text is then made safe by :func:`safe_worksheet` on the written sheet.
    """
    out = df.copy()
    for name in out.columns:
        col = out[name]
        if col.dtype == object or isinstance(col.dtype, pd.StringDtype) or str(col.dtype) == "str":
            values = col.tolist()
            if any(isinstance(v, str) and _ILLEGAL_XLSX.search(v) for v in values):
                out[name] = pd.Series([xlsx_text(v) for v in values], index=col.index, dtype=object)
    out.columns = [xlsx_text(c) for c in out.columns]
    return out


def _as_text(cell: Any) -> None:
    cell.data_type = "s"
    cell.quotePrefix = True


def write_xlsx_cell(ws: Any, row: int, column: int, value: Any) -> Any:
    """Set one openpyxl cell; formula-like text is stored as a string cell with ``quotePrefix``.

    Returns
    -------
    openpyxl.cell.Cell
        The cell written.
    """
    cell = ws.cell(row=row, column=column)
    value = xlsx_text(value)
    cell.value = value
    if is_formula_like(value):
        _as_text(cell)
    return cell


def safe_worksheet(ws: Any) -> int:
    """Turn every formula or formula-like text cell of an openpyxl worksheet into a text cell.

    For sheets written by ``DataFrame.to_excel`` (openpyxl stores any text starting with ``=`` as
    a formula). gridplan writes no formulas of its own, so none is lost.

    Returns
    -------
    int
        How many cells were changed.
    """
    n = 0
    for row in ws.iter_rows():
        for cell in row:
            if cell.data_type == "f" or is_formula_like(cell.value):
                if not isinstance(cell.value, str):  # a formula object: keep its text
                    cell.value = str(getattr(cell.value, "text", cell.value))
                _as_text(cell)
                n += 1
    return n
