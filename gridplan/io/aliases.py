"""Column-name aliases: which header in a user's file means which canonical column of a layer.

:data:`ALIASES` lists, per layer, the accepted names of every column (canonical name first); it is
derived from the declarative schema (:data:`gridplan.io.schema.SPECS`), where a column's names are
declared with the rest of what gridplan knows about it.
Matching is insensitive to case, spaces, full-width forms and brackets (:func:`normalize_header`):
``容量(kVA)``, ``容量（KVA）`` and ``容量`` all mean ``capacity_kva``. A shapefile's ``.dbf`` keeps 10
characters of a name, so long ASCII aliases also match their first 10 characters.
:func:`rename_columns` renames a frame's columns; :func:`accepted_names` lists the names of one
column for messages. Everything here is re-exported by :mod:`gridplan.io`.
"""

from __future__ import annotations

import logging
import re
import unicodedata

import pandas as pd

from .schema import ALIASES

__all__ = ["ALIASES", "accepted_names", "normalize_header", "rename_columns"]

# The messages keep the logger of the public module that re-exports these functions.
log = logging.getLogger("gridplan.io")

_BRACKETS = "()[]{}<>（）【】〔〕《》「」"
_BRACKETED = re.compile(r"[(\[{<（【〔《「][^)\]}>）】〕》」]*[)\]}>）】〕》」]")


def normalize_header(text: object) -> str:
    """Return the matching key of a column name: NFKC, lower case, no spaces, no brackets.

    >>> normalize_header(" 容量（kVA） ")
    '容量kva'
    """
    s = unicodedata.normalize("NFKC", str(text)).lower()
    s = re.sub(r"[\s_\-.:：/]+", "", s)
    return "".join(ch for ch in s if ch not in _BRACKETS)


def _key_without_brackets(text: object) -> str:
    s = unicodedata.normalize("NFKC", str(text))
    return normalize_header(_BRACKETED.sub("", s))


def _alias_index(layer: str) -> dict[str, tuple[str, int]]:
    """Map normalized alias -> (canonical name, priority) for one layer."""
    out: dict[str, tuple[str, int]] = {}
    for canon, names in ALIASES.get(layer, {}).items():
        for prio, name in enumerate(names):
            out.setdefault(normalize_header(name), (canon, prio))
    for canon, names in ALIASES.get(layer, {}).items():
        for prio, name in enumerate(names):
            if name.isascii() and len(name) > 10:  # a shapefile's .dbf keeps 10 characters
                out.setdefault(normalize_header(name[:10]), (canon, prio + 100))
    return out


def _match(column: object, index: dict[str, tuple[str, int]]) -> tuple[str, int] | None:
    hit = index.get(normalize_header(column))
    if hit is None:
        hit = index.get(_key_without_brackets(column))
    return hit


def rename_columns(frame: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Rename the columns of ``frame`` to the canonical names of ``layer``.

    When several columns mean the same thing (``id`` and ``台区编号``), the one whose alias comes
    first in :data:`ALIASES` wins; the others keep their names.
    """
    index = _alias_index(layer)
    best: dict[str, tuple[int, object]] = {}
    for col in frame.columns:
        if col in ("_row", "geometry"):
            continue
        hit = _match(col, index)
        if hit is None:
            continue
        canon, prio = hit
        if canon not in best or prio < best[canon][0]:
            best[canon] = (prio, col)
    mapping = {col: canon for canon, (_, col) in best.items() if col != canon}
    # A column already named like a canonical target that is not chosen must step aside.
    clash = {c: f"{c}_orig" for c in frame.columns if c in mapping.values() and c not in mapping}
    if mapping:
        log.debug("%s: columns renamed %s", layer, mapping)
    out = frame.rename(columns={**clash, **mapping})
    out.attrs["source_columns"] = [str(c) for c in frame.columns if c not in ("_row", "geometry")]
    return out


def accepted_names(layer: str, column: str) -> str:
    """The accepted names of one column, for messages: ``台区编号 / 台区编码 / ...``."""
    return " / ".join(ALIASES.get(layer, {}).get(column, [column]))
