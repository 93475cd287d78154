"""The workload of each 台区: what a manager's capacity is measured in.

``workload(transformers, expr)`` evaluates a small expression over the ledger:

``customers``
    The 台区's households (用户数).
``transformers``
    1 per 台区 (a count of 台区).
``capacity``
    The transformer capacity in kVA (``capacity_kva``).
a weighted sum
    Terms joined by ``+``, each a name, a number, or a product of them:
    ``"customers + 20*transformers + 0.1*capacity"``.

The expression is parsed by hand (no ``eval``): only these names, non-negative numbers, ``+`` and
``*`` are accepted. Anything else is an :class:`~gridplan.InputError` saying what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, NoReturn, overload

import numpy as np
import pandas as pd

from ..errors import InputError, Problem, Problems

__all__ = ["NAMES", "parse_workload", "workload"]

#: Names an expression may use, and how each is read from the ledger.
NAMES = ("customers", "transformers", "capacity")
_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
                    r"|(?P<name>[A-Za-z_]+)|(?P<op>[+*]))")
_FIX = ('write a sum of terms such as "customers + 20*transformers + 0.1*capacity": names '
        f"{', '.join(NAMES)}, numbers, '+' and '*' only")


def _fail(expr: str, what: str, label: str = "workload", fix: str = _FIX) -> NoReturn:
    raise InputError([Problem(label, f"cannot read the {label} expression {expr!r}: {what}", fix)])


def parse_workload(expr: str, *, names: tuple[str, ...] = NAMES, constant: str | None = "transformers",
                   label: str = "workload", example: str = "customers + 20*transformers + 0.1*capacity"
                   ) -> dict[str, float]:
    """Parse ``expr`` into weights per name, e.g. ``{"customers": 1.0, "transformers": 20.0}``.

    A term without a name (a bare number) counts as ``constant`` (a constant per 台区 is
    ``transformers``); with ``constant=None`` such a term is an error.

    Parameters
    ----------
    expr
        The expression.
    names
        The names it may use (other parsers reuse this one with their own vocabulary, e.g. the
        HV segment weight ``km + 0.02*poles + 0.3*transformers``).
    constant
        The name a bare number counts as, or ``None``.
    label, example
        What the expression is called in error messages, and an example of a good one.

    Raises
    ------
    gridplan.InputError
        The expression uses anything but the names, numbers, ``+`` and ``*``.
    """
    fix = (f"write a sum of terms such as \"{example}\": names {', '.join(names)}, numbers, "
           "'+' and '*' only")

    def _bad(e: str, what: str) -> NoReturn:
        _fail(e, what, label, fix)

    if not isinstance(expr, str) or not expr.strip():
        _bad(str(expr), "it is empty")
    tokens: list[tuple[str, str]] = []
    pos, text = 0, expr.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            _bad(expr, f"unexpected {text[pos:].strip()[:10]!r} at character {pos + 1}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    weights: dict[str, float] = {}
    for term in _split(tokens, "+", expr, bad=_bad):
        coef, name = 1.0, None
        for kind, val in _split(term, "*", expr, flat=True, bad=_bad):
            if kind == "num":
                coef *= float(val)
            elif val.lower() in names:
                if name is not None:
                    _bad(expr, f"a term multiplies two names ({name} * {val.lower()})")
                name = val.lower()
            else:
                _bad(expr, f"unknown name {val!r}")
        if name is None and constant is None:
            _bad(expr, f"the number {coef:g} is not multiplied by a name")
        key = str(name or constant)
        weights[key] = weights.get(key, 0.0) + coef
    return weights


#: Reports a bad expression (``expr``, what is wrong) and raises.
_Bad = Callable[[str, str], NoReturn]
_Token = tuple[str, str]


@overload
def _split(tokens: list[_Token], op: str, expr: str, *, flat: Literal[False] = ...,
           bad: _Bad = ...) -> list[list[_Token]]: ...
@overload
def _split(tokens: list[_Token], op: str, expr: str, *, flat: Literal[True],
           bad: _Bad = ...) -> list[_Token]: ...
def _split(tokens: list[_Token], op: str, expr: str, *, flat: bool = False,
           bad: _Bad = _fail) -> list[list[_Token]] | list[_Token]:
    """Split tokens on ``op``; every part must be non-empty (no '++', no trailing '+')."""
    parts: list[list[tuple[str, str]]] = [[]]
    for tok in tokens:
        if tok == ("op", op):
            parts.append([])
        else:
            parts[-1].append(tok)
    if any(not p for p in parts):
        bad(expr, f"'{op}' needs a term on both sides")
    if flat:
        if any(len(p) != 1 or p[0][0] == "op" for p in parts):
            bad(expr, "a factor must be one name or one number")
        return [p[0] for p in parts]
    return parts


def workload(transformers: pd.DataFrame, expr: str = "customers") -> np.ndarray:
    """Return the workload of every 台区 under ``expr``.

    Parameters
    ----------
    transformers
        The ledger: ``customers`` and ``capacity_kva`` columns (as in :class:`gridplan.County`).
    expr
        ``"customers"``, ``"transformers"``, ``"capacity"`` or a weighted sum of them.

    Returns
    -------
    numpy.ndarray of float
        One value per row of ``transformers``.

    Raises
    ------
    gridplan.InputError
        A bad expression, or a name whose column is missing / has missing values.
    """
    weights = parse_workload(expr)
    n = len(transformers)
    out = np.zeros(n, dtype=float)
    columns = {"customers": "customers", "capacity": "capacity_kva"}
    p = Problems()
    for name in sorted(weights):
        if name == "transformers":
            out += weights[name]
            continue
        col = columns[name]
        if col not in transformers.columns:
            p.add("workload", f"the expression {expr!r} uses {name!r} but the ledger has no "
                              f"{col!r} column", f"add {col!r} to the ledger or drop {name!r}")
            continue
        vals = pd.to_numeric(transformers[col], errors="coerce").to_numpy(dtype=float)
        if np.isnan(vals).any():
            ids = transformers.get("transformer_id", pd.Series(range(1, n + 1)))
            p.add("workload", f"{name!r} is missing for some 台区", f"fill in {col!r}",
                  rows=np.asarray(ids)[np.isnan(vals)])
            continue
        out += weights[name] * vals
    p.raise_if_any()
    return out
