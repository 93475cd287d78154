"""The plan: run every stage on a County and hold the result; write it out atomically.

``plan(county, **params)`` is the library twin of ``gridplan plan``::

    county = gridplan.load_county("geodata/sample")
    p = gridplan.plan(county, capacity=1200)
    p.to_file("maps/sample")
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from .files import OutputDir, Transaction, atomic_dir, json_default, open_output
from .lv.groups import groups_kpi, groups_layer
from .model import County
from .people.assign import service_groups
from .people.reach import apply_reach
from .settings import Params

__all__ = ["PLAN_FILES", "Plan", "atomic_dir", "plan", "read_plan", "write_gpkg"]

log = logging.getLogger(__name__)

#: Called with (stage name, index, total) as the pipeline advances; the CLI draws a bar with it.
Progress = Callable[[str, int, int], None]

#: The files ``Plan.to_file`` writes.
PLAN_FILES = ("plan.gpkg", "kpi.json", "roster.xlsx", "map.html")

STAGES = ("workload", "graph", "patches", "territory", "feeders", "managers", "kpis")


@dataclass
class Plan:
    """The result of planning one county (see docs/architecture.md for every column)."""

    county: County
    params: Params
    transformers: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    managers: pd.DataFrame
    segments: gpd.GeoDataFrame | None = None
    kpi: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Highest grid number ever issued per township (or station) key, so that an id is never
    #: reused for a different grid (kept in the ``meta`` layer as ``grid_numbers``).
    grid_numbers: dict[str, int] = field(default_factory=dict)

    @property
    def crs(self):
        """The metric CRS of every layer."""
        return self.county.crs

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """Return the GeoPackage layers by name (metric CRS)."""
        out = {"grids": self.grids, "transformers": self.transformers,
               "townships": self.county.townships, "stations": self.county.stations}
        if self.segments is not None:
            out["segments"] = self.segments
        if "group_id" in self.grids.columns:  # service groups (#16 part 6): derived from the grids
            out["groups"] = groups_layer(self.grids)
        for extra in ("villages", "switches", "substations"):
            layer = getattr(self.county, extra)
            if layer is not None:
                out[extra] = layer
        return out

    def to_file(self, out_dir: str | Path | OutputDir, *, map_html: bool = True,
                roster: bool = True, basemap: str | None = None,
                transaction: Transaction | None = None) -> Path:
        """Write ``plan.gpkg``, ``kpi.json``, ``roster.xlsx`` and ``map.html`` to ``out_dir``.

        The files are staged in a hidden folder and swapped in at the end (see
        :mod:`gridplan.files`): a failure leaves no partial output and an older output untouched.
        ``out_dir`` must be new, empty or an earlier plan output; other files in it are kept.

        Parameters
        ----------
        out_dir
            The output folder, or an :class:`~gridplan.files.OutputDir` already opened (checked
            and locked before planning, as the CLI does).
        map_html, roster
            Write ``map.html`` / ``roster.xlsx``.
        basemap
            Basemap of ``map.html`` (default: the plan's parameter).
        transaction
            Committed together with the folder (a ``--store`` version,
            :class:`gridplan.replan.store.StoreVersion`).

        Returns
        -------
        pathlib.Path
            ``out_dir``.

        Raises
        ------
        gridplan.files.OutputError
            ``out_dir`` cannot be used (not empty and not a gridplan output, locked, read-only).
        """
        if isinstance(out_dir, OutputDir):
            assert out_dir.staging is not None, "open the OutputDir first"
            self.write_into(out_dir.staging, map_html=map_html, roster=roster, basemap=basemap)
            out_dir.commit(transaction=transaction)
            return out_dir.path
        with open_output(out_dir, command="Plan.to_file", expect=PLAN_FILES) as out:
            assert out.staging is not None
            self.write_into(out.staging, map_html=map_html, roster=roster, basemap=basemap)
            out.commit(transaction=transaction)
        return Path(out_dir)

    def write_into(self, folder: str | Path, *, map_html: bool = True, roster: bool = True,
                   basemap: str | None = None) -> None:
        """Write the plan's files into ``folder`` directly (a staging folder; not atomic)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_gpkg(self, folder / "plan.gpkg")
        (folder / "kpi.json").write_text(
            json.dumps(self.kpi, ensure_ascii=False, indent=2, default=json_default),
            encoding="utf-8")
        if roster:
            from .people.roster import write_roster
            write_roster(self, folder / "roster.xlsx")
        if map_html:
            from .render.map import save_map
            save_map(self, folder / "map.html", basemap=basemap or self.params.basemap)


def write_gpkg(p: Plan, path: Path) -> None:
    """Write every layer of ``p`` to one GeoPackage (in the county's metric CRS)."""
    for name, layer in p.layers().items():
        if layer is None or len(layer) == 0:
            continue
        out = layer.copy()
        for col in out.columns:
            if col != out.geometry.name and out[col].dtype == object:
                out[col] = out[col].map(lambda v: v if v is None or isinstance(v, (str, int, float, bool)) else str(v))
        out.to_file(path, layer=name, driver="GPKG", engine="pyogrio")
    import pyogrio

    managers = pd.DataFrame(p.managers).drop(columns="geometry", errors="ignore")
    pyogrio.write_dataframe(managers, path, layer="managers")
    meta = {"county": p.county.name, "crs": p.crs.to_wkt(), "params": dataclasses.asdict(p.params),
            "kpi": p.kpi, "checksums": p.county.checksums, "notes": p.notes,
            "grid_numbers": issued_numbers(p.grids["grid_id"], p.grid_numbers)}
    pyogrio.write_dataframe(
        pd.DataFrame({"key": list(meta),
                      "value": [json.dumps(v, ensure_ascii=False, default=json_default) for v in meta.values()]}),
        path, layer="meta")


def read_plan(path: str | Path) -> Plan:
    """Read a plan back from ``plan.gpkg`` (or the folder that holds it).

    Parameters
    ----------
    path
        A ``plan.gpkg`` file or a plan output folder.

    Returns
    -------
    Plan
        With its County rebuilt from the layers the GeoPackage holds.
    """
    import pyogrio
    from pyproj import CRS

    from .errors import InputError, Problem

    path = Path(path)
    if path.is_dir():
        path = path / "plan.gpkg"
    if not path.exists():
        raise InputError([Problem(str(path), "plan file not found",
                                  "give a plan.gpkg written by `gridplan plan`, or its folder")])
    names = {str(n) for n, _ in pyogrio.list_layers(path)}
    missing = {"grids", "transformers", "townships", "stations", "meta"} - names
    if missing:
        raise InputError([Problem(str(path), f"not a gridplan plan: layers missing: {', '.join(sorted(missing))}",
                                  "give a plan.gpkg written by `gridplan plan`")])
    meta_df = pyogrio.read_dataframe(path, layer="meta")
    meta = {k: json.loads(v) for k, v in zip(meta_df["key"], meta_df["value"])}
    crs = CRS.from_wkt(meta["crs"])

    def layer(name: str) -> gpd.GeoDataFrame | None:
        return gpd.read_file(path, layer=name, engine="pyogrio").set_crs(crs, allow_override=True) \
            if name in names else None

    prm = Params(**meta["params"])
    tr = layer("transformers")
    county = County(name=meta["county"], crs=crs, townships=layer("townships"),
                    stations=layer("stations"), transformers=tr, params=prm,
                    switches=layer("switches"), substations=layer("substations"),
                    villages=layer("villages"), checksums=meta.get("checksums", {}), source=path)
    managers = pyogrio.read_dataframe(path, layer="managers") if "managers" in names else pd.DataFrame()
    return Plan(county=county, params=prm, transformers=tr, grids=layer("grids"), managers=managers,
                segments=layer("segments"), kpi=meta.get("kpi", {}), notes=meta.get("notes", []),
                grid_numbers={str(k): int(v) for k, v in (meta.get("grid_numbers") or {}).items()})


def issued_numbers(grid_ids: Any, before: dict[str, int] | None = None) -> dict[str, int]:
    """Highest grid number per key (``"<key>-<nn>"`` ids) over ``grid_ids`` and ``before``."""
    import re

    out = {str(k): int(v) for k, v in (before or {}).items()}
    for gid in map(str, grid_ids):
        m = re.match(r"^(.*)-(\d+)$", gid)
        if m:
            out[m.group(1)] = max(out.get(m.group(1), 0), int(m.group(2)))
    return dict(sorted(out.items()))


def snapped_kpi(county: County) -> dict[str, Any]:
    """``kpi["input"]["snapped"]``: the 台区 and stations put in a township they lie outside of.

    ``{"tolerance_m", "count", "transformers", "stations", "rows": [{"layer", "id",
    "township_id", "township", "distance_m", "basis"}, ...]}`` (see :attr:`County.snapped`).
    """
    rows = [dict(r) for r in county.snapped]
    return {"tolerance_m": float(county.params.snap_tolerance_m), "count": len(rows),
            "transformers": sum(r["layer"] == "transformers" for r in rows),
            "stations": sum(r["layer"] == "stations" for r in rows), "rows": rows}


def _add_response_times(p: Plan) -> None:
    """Repair travel time from the nearest station to every 台区, against the 45/90/120-min commitments.

    Over ``county.roads`` when given, else straight-line distance × ``detour_factor`` at
    ``speed_kmh`` (see :mod:`gridplan.metrics.response`). Adds ``response_minutes`` and
    ``beyond_commitment`` to the 台区 and ``kpi["response"]`` plus headline figures to
    ``kpi["county"]``.
    """
    from .metrics.response import response_kpis, response_times

    rt = response_times(p.county, params=p.params).set_index("transformer_id")
    ids = p.transformers["transformer_id"]
    p.transformers["response_minutes"] = ids.map(rt["minutes"]).round(1).to_numpy()
    p.transformers["beyond_commitment"] = ids.map(rt["beyond"]).fillna(False).astype(bool).to_numpy()
    resp = response_kpis(rt.reset_index())
    p.kpi["response"] = resp
    c = resp["county"]
    p.kpi["county"].update({
        "transformers_beyond_commitment": int(c["transformers_beyond"]),
        "households_beyond_commitment": int(c["households_beyond"]),
        "p95_response_minutes": c["p95_minutes"], "max_response_minutes": c["max_minutes"]})
    if c["transformers_beyond"]:
        p.notes.append(f"有 {c['transformers_beyond']} 个台区（{c['households_beyond']} 户）超出抢修到达时限承诺"
                       "（城区45分钟、农村90分钟、特殊边远地区120分钟）")
        p.kpi["notes"] = list(p.notes)


def _villages_per_grid(tr: gpd.GeoDataFrame) -> pd.Series:
    """Names of the villages whose 台区 a grid holds, by grid_id ("、"-separated)."""
    if "village" not in tr.columns:
        return pd.Series(dtype=object)
    named = tr.dropna(subset=["village"])
    return named.groupby("grid_id")["village"].agg(lambda v: "、".join(sorted(set(map(str, v)))))


def _hv_owner_kpi(segments: gpd.GeoDataFrame, owned: pd.DataFrame, mode: str) -> dict[str, Any]:
    """kpi["hv"] entries on ownership: per manager km, segments and mean share in their area."""
    km = segments["length_km"].to_numpy()
    share = segments["owner_share"].to_numpy(dtype=float)
    return {"owner": mode,
            "mean_owner_share": round(float((share * km).sum() / km.sum()), 4) if km.sum() > 0 else 0.0,
            "per_manager": {str(m): {"role": r.role, "km": round(float(r.km), 3), "segments": int(r.segments),
                                     "mean_share": round(float(r.mean_share), 4)}
                            for m, r in owned.iterrows()}}


def plan(county: County, *, progress: Progress | None = None, current: Any = None,
         pins: Any = None, **params: Any) -> Plan:
    """Plan ``county``: LV patches, grid territories, HV segments, managers and KPIs.

    Parameters
    ----------
    county
        From :func:`gridplan.load_county`.
    progress
        Optional callback ``(stage, i, n)``; the CLI draws a progress bar with it.
    current
        The plan to stay close to (a Plan, ``plan.gpkg``, or ``STORE.gpkg#N``; see
        :func:`gridplan.replan.pins.prepare`); the ledger's ``manager_id``/``grid_id`` columns otherwise.
        Moves are traded against balance by ``stability``.
    pins
        A pin file (CSV/XLSX/GeoJSON) or :class:`gridplan.replan.pins.Pins`: 台区 pinned to managers,
        grids locked. Never broken; :class:`~gridplan.InfeasibleError` names pins that cannot hold.
    **params
        Overrides of :class:`~gridplan.settings.Params` fields (e.g. ``capacity=1200``).

    Returns
    -------
    Plan
    """
    from .lv import partition, territory
    from .lv import workload as wl
    from .metrics import kpi
    from .people import assign

    prm = county.params.replace(**params) if params else county.params
    notes: list[str] = list(county.report)
    if current is not None or pins is not None:
        from .replan.pins import prepare
        county = prepare(county, current=current, pins=pins, params=prm)

    def step(i: int) -> None:
        log.info("stage %s", STAGES[i])
        if progress is not None:
            progress(STAGES[i], i, len(STAGES))

    staff_rows = assign.hv_staff(county.managers)  # HV staff (role 高压) are no 台区经理
    from .people.staff import not_field
    no_grid = staff_rows | not_field(county.managers)  # nor are 所长, 内勤, 营业厅 staff
    lv_county = (dataclasses.replace(county, managers=county.managers[~no_grid])
                 if no_grid.any() else county)

    step(0)
    tr = county.transformers.copy()
    tr["workload"] = wl.workload(tr, prm.workload)
    step(1)
    cells = territory.all_cells(county, tr)  # shared by the graph and the territory stages
    edges = territory.contiguity_edges(county, tr, scope=prm.scope, cells=cells)
    step(2)
    patches = partition.plan_patches(lv_county, tr["workload"].to_numpy(), params=prm, edges=edges)
    tr["grid_id"] = patches.grid_id
    notes.extend(patches.notes)
    step(3)
    grids = territory.grid_polygons(county, tr, cells=cells)
    step(4)
    segments, hv_kpi = None, {}
    if county.feeders is not None and len(county.feeders):
        from .hv import segments as seg
        res = seg.segment_feeders(county, params=prm)
        segments = res.segments
        tr["segment_id"] = res.transformer_segment.reindex(tr.index)
        hv_kpi = res.kpi
        notes.extend(res.notes)
    step(5)
    grids, managers, more = assign.assign_managers(grids, tr, lv_county, params=prm,
                                                   flags=patches.flags)
    notes.extend(more)
    # #16 parts 5 and 6: the managers' reach (a repair pass), then service groups of the grids
    tr, grids, managers, reach_kpi, more = apply_reach(county, tr, grids, managers, params=prm,
                                                       edges=edges, cells=cells)
    grids, tr, more2 = service_groups(grids, tr, lv_county, params=prm)
    notes.extend(more + more2)
    tr["manager_id"] = tr["grid_id"].map(grids.set_index("grid_id")["manager_id"])
    grids["villages"] = _villages_per_grid(tr).reindex(grids["grid_id"]).fillna("").to_numpy()
    if segments is not None:
        from .hv import segments as seg
        staff = county.managers[staff_rows] if staff_rows.any() else None
        segments = seg.align_segments(segments, grids)
        segments, more = seg.assign_owners(segments, county.townships, mode=prm.hv_owner, staff=staff)
        notes.extend(more)
        hv = segments.groupby("grid_id")["length_km"].sum()
        grids["hv_km"] = grids["grid_id"].map(hv).fillna(0.0).round(3)
        if staff is not None:
            managers = pd.concat([managers, assign.hv_staff_rows(staff)], ignore_index=True)
        owned = seg.owner_summary(segments)
        managers["hv_km"] = managers["manager_id"].map(owned["km"]).fillna(0.0).round(3)
        hv_kpi = {**hv_kpi, **_hv_owner_kpi(segments, owned, prm.hv_owner)}
    from .replan.pins import check_honoured, moved_summary
    check_honoured(tr)
    moved = moved_summary(tr)
    if moved:
        notes.append(f"与现有方案相比:{moved['moved_transformers']}个台区"
                     f"({moved['moved_households']}户)更换了台区经理,新增台区{moved['new_transformers']}个。")
    step(6)
    p = Plan(county=county, params=prm, transformers=tr, grids=grids, managers=managers,
             segments=segments, notes=notes,
             grid_numbers=issued_numbers(grids["grid_id"], county.transformers.attrs.get("grid_numbers")))
    p.kpi = kpi.compute_kpis(p, lower_bound=patches.lower_bound, hv_kpi=hv_kpi, edges=edges)
    p.kpi.setdefault("input", {})["snapped"] = snapped_kpi(county)
    p.kpi["county"].update(moved)
    if reach_kpi is not None:
        p.kpi["reach"] = reach_kpi
    if "group_id" in p.grids.columns:
        p.kpi["groups"] = groups_kpi(p.grids, prm)
    _add_response_times(p)
    return p
