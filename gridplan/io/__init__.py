"""Reading the files of a county folder: tables (CSV / XLSX) and layers (GeoJSON / GPKG / SHP).

Everything here is about *reading* bytes into frames the way the users' files really are:

- **What a file really is.** :func:`sniff` looks at the first bytes and refuses a file that is not
  what its extension says (an ``.xlsx`` that is an HTML page or a CSV text, a ``.geojson`` that is
  not JSON, a ``.shp`` without its ``.dbf``) with a :class:`FileKindError` that says how to fix it.
- **Encodings.** CSV in UTF-16 (Excel's "Unicode text", with or without a BOM; recognised by its
  BOM or its zero bytes), UTF-8, UTF-8 with BOM, or GBK/GB18030 (tried in that order). Shapefiles use
  their ``.cpg`` when present; otherwise the ``.dbf`` is decoded as UTF-8 if it can be, else GB18030
  (a superset of GBK).
- **Headers.** Column names are matched to canonical names through per-layer alias tables
  (:data:`ALIASES`, derived from the schema of every layer, :mod:`gridplan.io.schema`,
  and re-exported here), insensitive to case, spaces, full-width forms and brackets: ``容量(kVA)``,
  ``容量（KVA）`` and ``容量`` all mean ``capacity_kva``. A title row above the header (common in
  exports: "XX供电所台区台账") is skipped: the header is the first of the first ten rows that names
  the most known columns.
- **Numbers stored as text.** :func:`parse_numbers` reads ``"114.2"``, ``" 114.2 "``, ``"114.2°"``,
  ``"114,2"`` (comma decimal), ``"114°12'30\\""`` (degrees-minutes-seconds), ``"200kVA"``, ``"1,234"``
  (thousands, for counts) and full-width digits, and tells which cells it could not read.

Every frame returned carries a ``_row`` column: the 1-based row number the user sees (the
spreadsheet row for CSV/XLSX, so the header is row 1 and the first record row 2; the feature number
for GeoJSON/GPKG/SHP), used in messages when a row has no id.
"""

from __future__ import annotations

import codecs
import csv
import io as _io
import logging
import re
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
from pyproj import CRS

from ..errors import GridplanError
from ..files import sha256
from .aliases import (  # noqa: F401  (re-exported: gridplan.io keeps every name)
    _BRACKETED,
    _BRACKETS,
    ALIASES,
    _alias_index,
    _key_without_brackets,
    _match,
    accepted_names,
    normalize_header,
    rename_columns,
)
from .network import from_network_geojson, from_pandapower
from .schema import GEO_EXTS, TABLE_EXTS

__all__ = [
    "ALIASES",
    "GEO_EXTS",
    "TABLE_EXTS",
    "FileKindError",
    "ReadResult",
    "as_ids",
    "from_network_geojson",
    "from_pandapower",
    "layer_files",
    "normalize_header",
    "parse_numbers",
    "read_any",
    "read_layer",
    "read_table",
    "rename_columns",
    "sha256",
    "sniff",
]

log = logging.getLogger(__name__)

SHP_SIDECARS = (".dbf", ".shx", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".qmd", ".shp.xml")

class FileKindError(GridplanError):
    """A file is not what its extension says, or cannot be read; ``what`` and ``fix`` say why."""

    def __init__(self, what: str, fix: str):
        self.what = what
        self.fix = fix
        super().__init__(f"{what} ({fix})")


@dataclass
class ReadResult:
    """A file read into a frame.

    Attributes
    ----------
    frame
        A DataFrame (tables) or GeoDataFrame (layers) with a ``_row`` column.
    path
        The file.
    crs
        The CRS the file itself declares (``.prj``, a GeoPackage SRS, a GeoJSON ``crs`` member), or
        ``None``. RFC 7946 GeoJSON without a ``crs`` member declares none: its coordinates follow the
        folder's ``coords`` setting (they may be GCJ-02 in practice).
    encoding
        The text encoding used, when there was a choice.
    """

    frame: pd.DataFrame
    path: Path
    crs: CRS | None = None
    encoding: str | None = None

    @property
    def is_geo(self) -> bool:
        """Whether the frame has geometry."""
        return isinstance(self.frame, gpd.GeoDataFrame)


# ----------------------------------------------------------------------------- values

_DMS = re.compile(r"^(-?\d+(?:\.\d+)?)\s*[°度]\s*(?:(\d+(?:\.\d+)?)\s*['′分]\s*)?"
                  r"(?:(\d+(?:\.\d+)?)\s*(?:\"|″|''|秒)?\s*)?([nsewNSEW]?)$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_SUFFIX = re.compile(r"^(-?\d+(?:\.\d*)?|-?\.\d+)\s*(?:kva|kw|户|台|个|°|度|[nsewNSEW])?$", re.IGNORECASE)


def _one_number(text: str, *, thousands: bool) -> float:
    s = unicodedata.normalize("NFKC", text).strip().replace("\u2212", "-")
    if s == "":
        return np.nan
    if thousands and _THOUSANDS.match(s):
        s = s.replace(",", "")
    elif s.count(",") == 1 and "." not in s:
        s = s.replace(",", ".")
    m = _SUFFIX.match(s.replace(" ", ""))
    if m:
        return float(m.group(1))
    m = _DMS.match(s)
    if m:
        deg, minutes, seconds, hemi = m.groups()
        sign = -1.0 if deg.startswith("-") or hemi.lower() in ("s", "w") else 1.0
        value = abs(float(deg)) + float(minutes or 0) / 60 + float(seconds or 0) / 3600
        return sign * value
    raise ValueError(text)


def parse_numbers(values: pd.Series, *, thousands: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Parse numbers that may be stored as text.

    Parameters
    ----------
    values
        Numbers, or text such as ``" 114.2 "``, ``"114.2°"``, ``"114,2"``, ``"200kVA"``.
    thousands
        Read ``"1,234"`` as 1234 (for counts) instead of 1.234 (a comma decimal, for coordinates).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The float values (NaN where empty or unreadable) and a boolean mask of the cells that were
        not empty but could not be read.
    """
    values = pd.Series(values, dtype=object).reset_index(drop=True)
    # fast path: plain numbers; a writable copy (pandas 3 hands out read-only views)
    out = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, copy=True)
    bad = np.zeros(len(values), dtype=bool)
    rest = np.flatnonzero(np.isnan(out) & values.notna().to_numpy())
    cache: dict[str, float | None] = {}
    for i in rest:
        text = str(values.iat[i])
        if text not in cache:
            try:
                cache[text] = _one_number(text, thousands=thousands)
            except ValueError:
                cache[text] = None
        val = cache[text]
        if val is None:
            bad[i] = True
        else:
            out[i] = val
    return out, bad


def as_ids(values: pd.Series) -> pd.Series:
    """Return ids as stripped strings (``1001.0`` -> ``"1001"``), ``None`` where empty."""
    def one(v: object) -> str | None:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return None
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        s = unicodedata.normalize("NFKC", str(v)).strip()
        if re.fullmatch(r"-?\d+\.0", s):
            s = s[:-2]
        return s or None
    vals = values.astype(object).where(values.notna(), None)
    seen = {v: one(v) for v in pd.unique(vals)}
    return pd.Series([seen[v] for v in vals.tolist()], index=values.index, dtype=object)


# ----------------------------------------------------------------------------- sniffing

def utf16_codec(head: bytes) -> str | None:
    """``"utf-16"`` (BOM), ``"utf-16-le"`` / ``"utf-16-be"`` (no BOM) if ``head`` is UTF-16 text, else None.

    Without a BOM, text of mostly ASCII or CJK characters is recognised by its zero bytes: in
    UTF-16LE the odd bytes of ASCII characters are zero, in UTF-16BE the even ones.
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    sample = head[: len(head) - len(head) % 2]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    n = len(even)
    zeros_even, zeros_odd = even.count(0), odd.count(0)
    for codec, zeros, other in (("utf-16-le", zeros_odd, zeros_even), ("utf-16-be", zeros_even, zeros_odd)):
        if zeros >= 0.3 * n and other <= zeros / 4:
            try:
                sample.decode(codec)
            except UnicodeDecodeError:
                continue
            return codec
    return None


def _kind_of(head: bytes) -> str:
    """Guess what a file is from its first bytes."""
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    codec = utf16_codec(head)
    if codec is not None:
        text16 = head[: len(head) - len(head) % 2].decode(codec, errors="ignore").lstrip("\ufeff").lstrip()
        return "json" if text16[:1] in ("{", "[") else "text"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "ole2"
    if head.startswith(b"SQLite format 3\x00"):
        return "sqlite"
    if head.startswith(b"\x00\x00\x27\x0a"):
        return "shp"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text[:1] in (b"{", b"["):
        return "json"
    low = text[:512].lower()
    if text[:1] == b"<" and any(t in low for t in (b"<html", b"<!doctype", b"<table", b"<meta",
                                                     b"<?xml", b"<head")):
        return "html"
    if b"\x00" in head:
        return "binary"
    return "text"


_LOOKS = {"zip": "an Excel .xlsx workbook (a zip file)", "ole2": "an old-style Excel .xls workbook",
          "sqlite": "a GeoPackage/SQLite database", "shp": "a shapefile .shp",
          "json": "a JSON/GeoJSON text", "html": "an HTML page (a web export)",
          "text": "a plain text / CSV file", "binary": "a binary file of unknown kind",
          "empty": "empty (0 bytes)"}
_EXPECT = {".xlsx": {"zip"}, ".xls": {"zip"}, ".csv": {"text"}, ".txt": {"text"},
           ".geojson": {"json"}, ".json": {"json"}, ".gpkg": {"sqlite"}, ".shp": {"shp"}}
_RENAME_TO = {"zip": ".xlsx", "text": ".csv", "json": ".geojson", "sqlite": ".gpkg"}


def sniff(path: Path) -> None:
    """Raise :class:`FileKindError` unless ``path`` is what its extension says.

    Parameters
    ----------
    path
        A CSV, XLSX, GeoJSON, GPKG or SHP file.
    """
    ext = path.suffix.lower()
    with open(path, "rb") as fh:
        head = fh.read(4096)
    kind = _kind_of(head)
    if kind == "empty":
        raise FileKindError("the file is empty (0 bytes)", "export the data again")
    if ext == ".xls" and kind == "ole2":
        raise FileKindError("is an old-style .xls workbook, which gridplan does not read",
                            "open it in Excel or WPS and save it as .xlsx (or export CSV)")
    if kind == "zip":
        _check_zip(path, ext)
        return
    if kind in _EXPECT.get(ext, {kind}):
        if ext == ".shp":
            missing = [s for s in (".dbf", ".shx") if _sidecar(path, s) is None]
            if missing:
                raise FileKindError(f"the shapefile has no {' / '.join(missing)} beside it",
                                    "copy every file of the shapefile (.shp, .shx, .dbf, .prj, "
                                    ".cpg) into the folder")
        return
    what = f"is not a {ext} file: it is {_LOOKS[kind]}"
    if kind == "html":
        fix = ("open it in Excel or WPS and 'Save As' .xlsx, or export the table as CSV "
               "(many web systems save an HTML table under an .xls/.xlsx name)")
    elif kind in _RENAME_TO and _RENAME_TO[kind] != ext:
        fix = f"rename it to {path.stem}{_RENAME_TO[kind]}"
    else:
        fix = "export the data again in the format its name says"
    raise FileKindError(what, fix)


def zip_contents(path: Path, limit: int = 8) -> str:
    """What a ZIP file holds, for messages: ``"it holds: a.shp, a.dbf"`` (or why it cannot be read)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return f"it cannot be read ({exc})"
    if not names:
        return "it is empty"
    more = f" … and {len(names) - limit} more" if len(names) > limit else ""
    return "it holds: " + ", ".join(names[:limit]) + more


def _check_zip(path: Path, ext: str) -> None:
    """A ZIP file: fine when it is an Excel workbook named .xlsx/.xls; otherwise say what it holds."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        head = "is" if ext in (".xlsx", ".xls") else f"is not a {ext} file: it is"
        raise FileKindError(f"{head} a damaged ZIP file or Excel .xlsx workbook (an .xlsx is a ZIP "
                            f"inside; {exc})",
                            "open it in Excel or WPS and save it again as .xlsx, or export it again") from exc
    lower = [n.lower() for n in names]
    if any(n.startswith("xl/") and "workbook" in n for n in lower):  # xl/workbook.xml (or .bin)
        if ext in (".xlsx", ".xls"):
            return
        raise FileKindError(f"is not a {ext} file: it is an Excel .xlsx workbook",
                            f"rename it to {path.stem}.xlsx")
    shown = ", ".join(names[:8]) + (f" … and {len(names) - 8} more" if len(names) > 8 else "")
    inside = f" (it holds: {shown})" if names else " (it is empty)"
    if any(n.startswith("word/") for n in lower):
        what, fix = "a Word document (.docx)", "export the table from it as .xlsx or CSV"
    elif any(n.startswith("ppt/") for n in lower):
        what, fix = "a PowerPoint file (.pptx)", "export the table from it as .xlsx or CSV"
    elif any(n.endswith(".shp") for n in lower):
        what = "a ZIP archive of a shapefile, not a workbook"
        fix = ("unzip it and put the shapefile's files (.shp, .shx, .dbf, .prj, .cpg) in the county "
               "folder, named after the layer (e.g. transformers.shp)")
    elif any(n.endswith((".csv", ".xlsx", ".geojson", ".json", ".gpkg", ".txt")) for n in lower):
        what = "a ZIP archive, not a workbook"
        fix = "unzip it and put the file it holds in the county folder, named after the layer"
    else:
        what = "a ZIP archive, not an Excel workbook"
        fix = "unzip it, or export the data again as .xlsx or CSV"
    raise FileKindError(f"is {what}{inside}", fix)


def _sidecar(path: Path, ext: str) -> Path | None:
    for cand in (path.with_suffix(ext), path.with_suffix(ext.upper())):
        if cand.exists():
            return cand
    return None


# ----------------------------------------------------------------------------- tables

def _decode(data: bytes) -> tuple[str, str]:
    codec = utf16_codec(data[:4096])
    if codec is not None:
        try:
            return data.decode(codec).lstrip("\ufeff"), codec
        except UnicodeDecodeError as exc:
            raise FileKindError(f"looks like UTF-16 text but cannot be decoded ({exc.reason} at byte "
                                f"{exc.start})", "save it as CSV UTF-8 (Excel: 另存为 → CSV UTF-8)") from exc
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise FileKindError("is neither UTF-8 nor GBK/GB18030 text",
                        "save it as CSV UTF-8 (Excel: 另存为 → CSV UTF-8)")


def _delimiter(text: str) -> str:
    lines = [ln for ln in text.splitlines()[:20] if ln.strip()]
    best, score = ",", 0
    for d in (",", "\t", ";", "|"):
        n = sum(ln.count(d) for ln in lines)
        if n > score:
            best, score = d, n
    return best


def _cell(v: object) -> object:
    if v is None:
        return np.nan
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(v)
    s = str(v)
    return np.nan if s.strip() == "" else s


def _frame_from_rows(rows: list[list[object]], layer: str | None, *,
                     text_cells: bool = False) -> pd.DataFrame:
    """Pick the header row among the first ten, and build a frame of text cells with ``_row``."""
    if not text_cells:
        rows = [[_cell(c) for c in r] for r in rows]
    else:  # CSV: every cell is already text; only blanks become NaN
        rows = [[c if cast(str, c).strip() else np.nan for c in r] for r in rows]
    width = max((len(r) for r in rows), default=0)
    rows = [r + [np.nan] * (width - len(r)) for r in rows]
    header_at = 0
    if layer is not None:
        index = _alias_index(layer)
        scores = [sum(1 for c in r if isinstance(c, str) and _match(c, index)) for r in rows[:10]]
        if scores and max(scores) > 0:
            header_at = int(np.argmax(scores))
    if not rows:
        return pd.DataFrame({"_row": pd.Series(dtype=int)})
    header = [str(c).strip() if isinstance(c, str) else f"column_{j + 1}"
              for j, c in enumerate(rows[header_at])]
    body = rows[header_at + 1:]
    frame = pd.DataFrame(body, columns=header, dtype=object)
    frame["_row"] = np.arange(header_at + 2, header_at + 2 + len(body))
    keep = frame.drop(columns="_row").notna().any(axis=1)
    frame = frame.loc[keep].reset_index(drop=True)
    # a boolean mask, not labels: a header may name a column twice (reported by the loader)
    frame = frame.loc[:, [not c.startswith("column_") or bool(frame.iloc[:, j].notna().any())
                          for j, c in enumerate(frame.columns)]]
    return frame


def read_table(path: str | Path, *, layer: str | None = None) -> ReadResult:
    """Read a CSV or XLSX table as text cells, with canonical column names for ``layer``.

    Parameters
    ----------
    path
        A ``.csv`` / ``.txt`` (comma, tab, semicolon or bar separated; UTF-8, UTF-8-BOM or GBK)
        or ``.xlsx`` file (its first non-empty sheet).
    layer
        The layer name in :data:`ALIASES` used to find the header row and rename the columns.

    Returns
    -------
    ReadResult
        Every cell is a string or NaN (numbers are parsed later, so that ids keep leading zeros).

    Raises
    ------
    FileKindError
        The file is not what its extension says, or cannot be decoded.
    """
    path = Path(path)
    sniff(path)
    encoding = None
    if path.suffix.lower() in (".xlsx", ".xls"):
        rows = _xlsx_rows(path)
    else:
        text, encoding = _decode(path.read_bytes())
        rows = cast("list[list[object]]", list(csv.reader(_io.StringIO(text, newline=""), delimiter=_delimiter(text))))
    frame = _frame_from_rows(rows, layer, text_cells=encoding is not None)
    if layer is not None:
        frame = rename_columns(frame, layer)
    log.debug("read %s: %d rows, columns %s", path.name, len(frame), list(frame.columns))
    return ReadResult(frame, path, None, encoding)


def _xlsx_rows(path: Path) -> list[list[object]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise FileKindError(f"cannot be opened as an Excel workbook ({exc})",
                            "open it in Excel or WPS and save it again as .xlsx") from exc
    try:
        for ws in wb.worksheets:
            rows = [list(r) for r in ws.iter_rows(values_only=True)]
            if any(any(c is not None for c in r) for r in rows):
                return rows
        return []
    finally:
        wb.close()


# ----------------------------------------------------------------------------- layers

_ENCODINGS = {"936": "GB18030", "cp936": "GB18030", "gbk": "GB18030", "gb2312": "GB18030",
              "gb18030": "GB18030", "65001": "UTF-8", "utf8": "UTF-8", "utf-8": "UTF-8"}


def _shapefile_encoding(path: Path) -> str:
    """The encoding of a shapefile's attributes: its ``.cpg``, else UTF-8 if valid, else GB18030."""
    cpg = _sidecar(path, ".cpg")
    if cpg is not None:
        name = cpg.read_text(encoding="ascii", errors="ignore").strip().lower()
        if name in _ENCODINGS:
            return _ENCODINGS[name]
        try:
            return codecs.lookup(name).name
        except LookupError:
            log.warning("%s: unknown encoding %r in .cpg; guessing", cpg.name, name)
    dbf = _sidecar(path, ".dbf")
    data = dbf.read_bytes() if dbf is not None else b""
    try:
        data.decode("utf-8")
        return "UTF-8"
    except UnicodeDecodeError:
        return "GB18030"


def _declared_crs(path: Path, gdf: gpd.GeoDataFrame) -> CRS | None:
    ext = path.suffix.lower()
    if gdf.crs is None:
        return None
    if ext in (".geojson", ".json"):
        with open(path, "rb") as fh:
            head = fh.read(65536)
        return gdf.crs if re.search(rb'"crs"\s*:', head) else None
    if ext == ".shp":
        return gdf.crs if _sidecar(path, ".prj") is not None else None
    return gdf.crs


def read_layer(path: str | Path, *, layer: str | None = None) -> ReadResult:
    """Read a GeoJSON, GeoPackage (its first layer, or the one named ``layer``) or shapefile.

    Parameters
    ----------
    path
        The file.
    layer
        The layer name in :data:`ALIASES` used to rename the columns.

    Returns
    -------
    ReadResult
        A GeoDataFrame with canonical column names, ``_row`` and the CRS the file declares.
    """
    path = Path(path)
    sniff(path)
    kwargs: dict[str, object] = {}
    encoding = None
    ext = path.suffix.lower()
    if ext == ".shp":
        encoding = _shapefile_encoding(path)
        kwargs["encoding"] = encoding
    if ext == ".gpkg":
        names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
        if not names:
            raise FileKindError("the GeoPackage has no layer", "export the layer again")
        kwargs["layer"] = layer if layer in names else names[0]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gdf = pyogrio.read_dataframe(path, **kwargs)
        for w in caught:  # GDAL's remarks (e.g. an unclosed ring) go to the log, not the console
            log.info("%s: %s", path.name, w.message)
    except Exception as exc:
        raise FileKindError(f"cannot be read ({exc})",
                            "open it in QGIS to check it, and export it again") from exc
    if not isinstance(gdf, gpd.GeoDataFrame):
        gdf = gpd.GeoDataFrame(gdf, geometry=gpd.GeoSeries([None] * len(gdf)))
    crs = _declared_crs(path, gdf)
    gdf["_row"] = np.arange(1, len(gdf) + 1)
    if layer is not None:
        gdf = rename_columns(gdf, layer)
    log.debug("read %s: %d features, crs %s, encoding %s", path.name, len(gdf), crs, encoding)
    return ReadResult(gdf, path, crs, encoding)


def read_any(path: str | Path, *, layer: str | None = None) -> ReadResult:
    """Read a table or a layer, whichever the extension says."""
    path = Path(path)
    if path.suffix.lower() in GEO_EXTS:
        return read_layer(path, layer=layer)
    return read_table(path, layer=layer)


# ----------------------------------------------------------------------------- folder

def layer_files(folder: Path, name: str, exts: tuple[str, ...]) -> list[Path]:
    """The files of ``folder`` named ``name.<ext>`` (case-insensitive), sorted."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.stem.lower() == name and p.suffix.lower() in exts)


def companions(path: Path) -> list[Path]:
    """The file and, for a shapefile, its sidecar files (for checksums)."""
    if path.suffix.lower() != ".shp":
        return [path]
    out = [path]
    for ext in SHP_SIDECARS:
        side = _sidecar(path, ext)
        if side is not None:
            out.append(side)
    return out
