"""Writing a plan's output folder: ``plan.gpkg``, ``kpi.json``, ``roster.xlsx`` and ``map.html``.

The writers are called through their modules (``render_map.save_map``), so that a test can
replace one. This module sits above every writer it calls (:mod:`gridplan.io.planfile`,
:mod:`gridplan.people.roster`, :mod:`gridplan.render.map`) and below the front ends. It registers
itself as the writer behind :meth:`gridplan.model.Plan.to_file` and
:meth:`~gridplan.model.Plan.write_into` when imported (``import gridplan`` imports it), so that the
data model needs no import of the roster or map code.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from .files import OutputDir, Transaction, json_default, open_output
from .io import planfile
from .model import PLAN_FILES, Plan, register_output
from .people import roster as roster_sheet
from .render import map as render_map

__all__ = ["to_file", "write_into"]

log = logging.getLogger(__name__)


def write_into(plan: Plan, folder: str | Path, *, map_html: bool = True, roster: bool = True,
               basemap: str | None = None) -> None:
    """Write the plan's files into ``folder`` directly (a staging folder; not atomic).

    Parameters
    ----------
    plan
        The plan.
    folder
        Created when missing.
    map_html, roster
        Write ``map.html`` / ``roster.xlsx``.
    basemap
        Basemap of ``map.html`` (default: the plan's parameter).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    planfile.write_gpkg(plan, folder / "plan.gpkg")
    (folder / "kpi.json").write_text(
        json.dumps(plan.kpi, ensure_ascii=False, indent=2, default=json_default), encoding="utf-8")
    if roster:
        roster_sheet.write_roster(plan, folder / "roster.xlsx")
    if map_html:
        render_map.save_map(plan, folder / "map.html", basemap=basemap or plan.params.basemap)


def to_file(plan: Plan, out_dir: str | Path | OutputDir, *, map_html: bool = True,
            roster: bool = True, basemap: str | None = None,
            transaction: Transaction | None = None) -> Path:
    """Write the plan's files to ``out_dir`` atomically (see :meth:`gridplan.model.Plan.to_file`).

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    if isinstance(out_dir, OutputDir):
        assert out_dir.staging is not None, "open the OutputDir first"
        write_into(plan, out_dir.staging, map_html=map_html, roster=roster, basemap=basemap)
        out_dir.commit(transaction=transaction)
        return out_dir.path
    with open_output(out_dir, command="Plan.to_file", expect=PLAN_FILES) as out:
        assert out.staging is not None
        write_into(plan, out.staging, map_html=map_html, roster=roster, basemap=basemap)
        out.commit(transaction=transaction)
    return Path(out_dir)


register_output(sys.modules[__name__])
