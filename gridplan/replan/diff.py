"""Compare two plans of one county: which 台区 changed manager, and each manager's load before/after.

::

    d = diff_plans("maps/sample/plan.gpkg", "plans.gpkg#3")
    d.changes        # one row per 台区 that changed manager, was added or removed
    d.managers       # one row per manager: grid, 台区, households and workload before and after
    write_diff(d, "diff/")   # changes.csv, managers.csv, diff.gpkg, diff.html (atomically)

``changes`` columns: ``transformer_id``, ``name``, ``township_id``, ``change`` (改派 = manager
changed, 新增 = only in B, 移除 = only in A), ``from_manager``, ``from_name``, ``to_manager``,
``to_name``, ``from_grid``, ``to_grid``, ``customers``, ``workload``; geometry (the 台区 point).
A 台区 whose grid was renamed but whose manager stayed is not a change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from .. import pages
from ..cells import write_csv
from ..errors import InputError, Problem
from ..files import OutputDir, output_folder
from .store import Snapshot, load_snapshot

__all__ = ["CHANGE_LABELS", "PlanDiff", "diff_plans", "write_diff"]

log = logging.getLogger(__name__)

CHANGE_LABELS = {"moved": "改派", "added": "新增", "removed": "移除"}

_CHANGES_ZH = {"transformer_id": "台区编号", "name": "台区名称", "township_id": "乡镇",
               "change": "变化", "from_manager": "原台区经理工号", "from_name": "原台区经理",
               "to_manager": "新台区经理工号", "to_name": "新台区经理", "from_grid": "原网格",
               "to_grid": "新网格", "customers": "户数", "workload": "工作量"}
_MANAGERS_ZH = {"manager_id": "工号", "name": "台区经理", "station_id": "供电所",
                "grid_before": "原网格", "grid_after": "新网格", "transformers_before": "原台区数",
                "transformers_after": "新台区数", "households_before": "原户数",
                "households_after": "新户数", "workload_before": "原工作量",
                "workload_after": "新工作量", "workload_change": "工作量变化"}


@dataclass
class PlanDiff:
    """The differences between plan ``a`` (before) and plan ``b`` (after)."""

    a: Snapshot
    b: Snapshot
    changes: gpd.GeoDataFrame
    managers: pd.DataFrame

    def summary(self) -> dict[str, int]:
        """Counts: moved / added / removed 台区, households moved, managers whose load changed."""
        c = self.changes["change"]
        moved = c == CHANGE_LABELS["moved"]
        return {"moved_transformers": int(moved.sum()),
                "moved_households": int(self.changes.loc[moved, "customers"].sum()),
                "added_transformers": int((c == CHANGE_LABELS["added"]).sum()),
                "removed_transformers": int((c == CHANGE_LABELS["removed"]).sum()),
                "managers_changed": int((self.managers["workload_change"].abs() > 1e-9).sum())}

    def changed_grids(self) -> set[str]:
        """Grid ids (of either plan) that lost or gained a 台区."""
        ids = set(self.changes["from_grid"].dropna()) | set(self.changes["to_grid"].dropna())
        return {str(g) for g in ids}


def diff_plans(a: Any, b: Any) -> PlanDiff:
    """Compare two plans (refs as :func:`gridplan.replan.store.load_snapshot` takes them).

    Raises
    ------
    gridplan.InputError
        A ref cannot be read, or the plans share no 台区 (not the same county).
    """
    sa, sb = load_snapshot(a), load_snapshot(b)
    ta = sa.assignments.drop_duplicates("transformer_id").set_index("transformer_id")
    tb = sb.assignments.drop_duplicates("transformer_id").set_index("transformer_id")
    if sb.crs != sa.crs:
        tb = tb.to_crs(sa.crs)
    common = ta.index.intersection(tb.index)
    if len(common) == 0 and len(ta) and len(tb):
        raise InputError([Problem(f"{sa.label} / {sb.label}", "the two plans share no 台区",
                                  "compare two plans of the same county")])
    names_a = _manager_names(sa)
    names_b = _manager_names(sb)
    ma = ta["manager_id"].astype(object).where(ta["manager_id"].notna(), None)
    mb = tb["manager_id"].astype(object).where(tb["manager_id"].notna(), None)
    moved = [t for t in common if str(ma[t]) != str(mb[t])]
    added = [t for t in tb.index if t not in ta.index]
    removed = [t for t in ta.index if t not in tb.index]
    rows = []
    for kind, ids in (("moved", moved), ("added", added), ("removed", removed)):
        for t in sorted(ids, key=str):
            ra = ta.loc[t] if t in ta.index else None
            rb = tb.loc[t] if t in tb.index else None
            base = rb if rb is not None else ra
            assert base is not None  # every t is in ta or tb
            rows.append({
                "transformer_id": str(t), "name": base.get("name"), "township_id": base.get("township_id"),
                "change": CHANGE_LABELS[kind],
                "from_manager": None if ra is None else ma[t],
                "from_name": None if ra is None else names_a.get(str(ma[t])),
                "to_manager": None if rb is None else mb[t],
                "to_name": None if rb is None else names_b.get(str(mb[t])),
                "from_grid": None if ra is None else ra.get("grid_id"),
                "to_grid": None if rb is None else rb.get("grid_id"),
                "customers": int(base.get("customers") or 0),
                "workload": float(base.get("workload") or 0.0),
                "geometry": base.geometry})
    cols = list(_CHANGES_ZH)
    changes = gpd.GeoDataFrame(rows, columns=cols + ["geometry"], geometry="geometry", crs=sa.crs)
    return PlanDiff(sa, sb, changes, _manager_table(sa, sb, ta, tb, names_a, names_b))


def _manager_names(s: Snapshot) -> dict[str, str]:
    m = s.managers
    if m is None or not len(m) or "name" not in m.columns:
        return {}
    return {str(a): str(b) for a, b in zip(m["manager_id"], m["name"])}


def _manager_table(sa, sb, ta, tb, names_a, names_b) -> pd.DataFrame:
    def per(t: pd.DataFrame, suffix: str) -> pd.DataFrame:
        g = t.assign(manager_id=t["manager_id"].astype(str)).groupby("manager_id")
        return pd.DataFrame({f"grid_{suffix}": g["grid_id"].agg(lambda s: "、".join(sorted(set(map(str, s.dropna()))))),
                             f"transformers_{suffix}": g.size(),
                             f"households_{suffix}": g["customers"].sum(),
                             f"workload_{suffix}": g["workload"].sum()})

    out = per(ta, "before").join(per(tb, "after"), how="outer")
    for col in out.columns:
        if not col.startswith("grid_"):
            out[col] = out[col].fillna(0)
    out["grid_before"] = out["grid_before"].fillna("")
    out["grid_after"] = out["grid_after"].fillna("")
    out["workload_change"] = out["workload_after"] - out["workload_before"]
    out.index.name = "manager_id"
    out = out.reset_index()
    out["name"] = out["manager_id"].map(lambda m: names_b.get(m) or names_a.get(m) or "")
    st = {}
    for s in (sa, sb):
        if s.managers is not None and len(s.managers) and "station_id" in s.managers.columns:
            st.update({str(a): b for a, b in zip(s.managers["manager_id"], s.managers["station_id"])})
    out["station_id"] = out["manager_id"].map(st)
    for col in ("transformers_before", "transformers_after", "households_before", "households_after"):
        out[col] = out[col].astype(int)
    return out[list(_MANAGERS_ZH)].sort_values(["station_id", "manager_id"], na_position="last").reset_index(drop=True)


# --------------------------------------------------------------------------- output

#: The files ``write_diff`` writes.
DIFF_FILES = ("changes.csv", "managers.csv", "diff.gpkg", "diff.html")


def write_diff(d: PlanDiff, out_dir: str | Path | OutputDir, *, basemap: str = "osm",
               map_html: bool = True) -> Path:
    """Write ``changes.csv``, ``managers.csv`` (Chinese headers, UTF-8 with BOM for Excel),
    ``diff.gpkg`` (layers ``changes``: 台区 points with from/to; ``grids_before`` and
    ``grids_after``: the grids that changed) and ``diff.html`` (the ``diff`` page of
    :mod:`gridplan.pages`, drawn by :mod:`gridplan.render.diff_map`) to ``out_dir``, atomically.

    ``out_dir`` is a folder (new, empty or an earlier diff output; see :mod:`gridplan.files`)
    or an :class:`~gridplan.files.OutputDir` opened before the comparison.
    """
    with output_folder(out_dir, command="gridplan diff", expect=DIFF_FILES) as tmp:
        write_csv(d.changes.drop(columns="geometry").rename(columns=_CHANGES_ZH), tmp / "changes.csv")
        write_csv(d.managers.rename(columns=_MANAGERS_ZH), tmp / "managers.csv")
        _write_gpkg(d, tmp / "diff.gpkg")
        if map_html:
            (tmp / "diff.html").write_text(pages.draw("diff", d, basemap=basemap), encoding="utf-8")
    return out_dir.path if isinstance(out_dir, OutputDir) else Path(out_dir)


def changed_grid_layers(d: PlanDiff) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The grids of A and of B that lost or gained a 台区."""
    ids = d.changed_grids()
    ga = d.a.grids[d.a.grids["grid_id"].astype(str).isin(ids)]
    gb = d.b.grids[d.b.grids["grid_id"].astype(str).isin(ids)]
    if gb.crs != ga.crs and len(gb):
        gb = gb.to_crs(d.a.crs)
    return ga, gb


def _write_gpkg(d: PlanDiff, path: Path) -> None:
    ch = d.changes.copy()
    for col in ch.columns:
        if ch[col].dtype == object and col != "geometry":
            ch[col] = ch[col].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    pyogrio.write_dataframe(ch, path, layer="changes")
    ga, gb = changed_grid_layers(d)
    for name, layer in (("grids_before", ga), ("grids_after", gb)):
        if len(layer):
            pyogrio.write_dataframe(layer, path, layer=name, promote_to_multi=True)
