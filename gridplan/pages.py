"""The HTML pages that stage outputs hold but :mod:`gridplan.render` draws, by name.

A plan diff folder holds ``diff.html``, a merge scenario ``report.html`` and ``compare.html``, a
province run ``index.html``. The stages that write those folders (:mod:`gridplan.replan.diff`,
:mod:`gridplan.scenarios.comparison`, :mod:`gridplan.scale.province`) sit below ``render`` in the
layering, so they do not import it: they write their tables and ask :func:`draw` for a page by
name, handing it their own data; each ``render`` module registers what it draws when it is
imported (``import gridplan`` imports :mod:`gridplan.render`). ``render`` depends on the stages'
data, never the reverse.

========================  ===========================================  ===============================
name                      drawn from                                   by
========================  ===========================================  ===============================
``diff``                  a :class:`~gridplan.replan.diff.PlanDiff`    :mod:`gridplan.render.diff_map`
``scenario_report``       a :class:`~gridplan.scenarios.Scenario`      :mod:`gridplan.render.compare`
``scenario_map``          a :class:`~gridplan.scenarios.Scenario`      :mod:`gridplan.render.compare`
``candidates``            the ranked candidates (DataFrame)            :mod:`gridplan.render.compare`
``candidates_map``        the ranked candidates and the county         :mod:`gridplan.render.compare`
``province``              the overview rows of a province run          :mod:`gridplan.render.province_map`
========================  ===========================================  ===============================
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["PAGES", "draw", "register"]

#: The page names a stage may ask for (see the table above).
PAGES = ("diff", "scenario_report", "scenario_map", "candidates", "candidates_map", "province")

_DRAWERS: dict[str, Callable[..., str]] = {}


def register(name: str, drawer: Callable[..., str]) -> None:
    """Make ``drawer`` (data, keywords -> the complete HTML page) the one that draws page ``name``."""
    if name not in PAGES:
        raise ValueError(f"unknown page {name!r}; one of {', '.join(PAGES)}")
    _DRAWERS[name] = drawer


def draw(name: str, *args: object, **kwargs: object) -> str:
    """The complete HTML of page ``name`` drawn from ``args``/``kwargs`` (the stage's data).

    Raises
    ------
    LookupError
        Nothing registered ``name``: :mod:`gridplan.render` was not imported (a program error:
        ``import gridplan`` imports it).
    """
    try:
        drawer = _DRAWERS[name]
    except KeyError:
        raise LookupError(f"no drawer registered for the {name!r} page: import gridplan.render "
                          "(import gridplan does)") from None
    return drawer(*args, **kwargs)
