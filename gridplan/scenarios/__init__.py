"""What-if station merges: the merged organisation, its plan, and what changes.

::

    county = gridplan.load_county("geodata/sample")
    sc = merge_stations(county, ["S03", "S04"], keep_service_point=["S04"])
    sc.comparison                 # before | after table (see gridplan.scenarios.comparison.compare)
    sc.beyond                     # 台区 beyond their response commitment after the merge
    sc.to_file("out/merge-S03-S04")
    merge_candidates(county)      # every pair of neighbouring stations, ranked

A merge moves the townships, 台区 and roster managers of the absorbed stations to the ``into``
station (default: the first). Each absorbed station disappears, or stays as a service point
(供电服务站, ``parent_id`` = ``into``, which becomes a 中心供电所) when listed in
``keep_service_point``. Grids are then replanned over the merged territory and managers are
reassigned with the stability objective: the before-plan's manager of each 台区 becomes its
``current_manager_id``, so the assignment keeps managers where it can.

Replanning is incremental: with the default township scope the grids stay as they are (they never
cross a township border, and the townships keep their 台区) and only the merged station's managers
are reassigned; with ``scope = "station"`` (or ``grids_from_roster``) the merged station alone is
replanned and spliced into the before-plan. Travel times are computed once for every station
(:func:`gridplan.metrics.response.travel_times`) and a merge only drops columns.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import Problems
from ..files import OutputDir
from ..metrics.response import TravelTimes, response_times, travel_times
from ..model import County, Plan, make_plan
from ..people.staff import staff_change
from ..pipeline import hv_staff_of, kpi_stage, lv_county, managers_stage, owners_stage
from ..pipeline import plan as run_plan
from ..settings import Params
from .comparison import (
    SERVICE_STATION,
    Snapshot,
    beyond_table,
    candidate_row,
    commitment_table,
    compare,
    manager_travel,
    rank_candidates,
    station_pairs,
    township_table,
    verdict,
    worst_worsening,
    write_candidates,
    write_scenario,
)
from .coverage import ServicePoints, candidate_sites, propose_service_points

__all__ = [
    "Scenario",
    "Snapshot",
    "compare",
    "merge_candidates",
    "merge_stations",
    "merged_county",
    "write_candidates",
]

log = logging.getLogger(__name__)

CENTRAL_STATION = "中心供电所"


@dataclass
class Scenario:
    """One merge: the organisation and plan before and after, and their comparison."""

    stations: tuple[str, ...]
    into: str
    keep_service_point: tuple[str, ...]
    before: Snapshot
    after: Snapshot
    comparison: pd.DataFrame
    #: Grids of the after-plan whose station, manager or shape changed.
    changed_grids: list[str] = field(default_factory=list)
    #: Chinese notes for the report; the first ones flag broken commitments.
    notes: list[str] = field(default_factory=list)
    #: One row per affected township (absorbed first): see ``_compare.TOWNSHIP_COLUMNS``.
    townships: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Township ids that move to ``into``.
    absorbed_townships: list[str] = field(default_factory=list)
    #: The 台区 that worsen most, per affected township.
    worsening: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: 台区 per area class, commitment and class source, after the merge (merged stations).
    commitments: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Positions released and needed, per roster post (``_staff.staff_change``).
    staff: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Each manager's mean travel before and after (``side`` = before / after).
    manager_travel: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Mean of the managers' mean travel minutes (before, after) in the merged stations.
    travel_summary: tuple[float | None, float | None] = (None, None)
    #: The fewest service points bringing every 台区 within its commitment (None: none beyond).
    service_points: ServicePoints | None = None
    #: The best ``k`` service points (``--service-points K``), if asked for.
    service_points_k: ServicePoints | None = None
    #: 可合并 / 需设服务站 / 不宜合并 and why.
    verdict: str = ""
    reasons: list[str] = field(default_factory=list)

    @property
    def beyond(self) -> pd.DataFrame:
        """台区 beyond their commitment after the merge (``new`` = within it before)."""
        return beyond_table(self.before.response, self.after.response)

    @property
    def breaks_commitment(self) -> bool:
        """True when the merge puts some 台区 beyond its commitment that were within it before."""
        b = self.beyond
        return bool(len(b) and b["new"].any())

    def to_file(self, out_dir: str | Path | OutputDir, *, maps: bool = True,
                basemap: str | None = None) -> Path:
        """Write the comparison, report, maps, beyond list and both plans to ``out_dir`` (atomic).

        Files: ``comparison.csv``, ``comparison.xlsx``, ``report.html``, ``compare.html`` (when
        ``maps``), ``beyond.csv``, ``response.csv``, ``scenario.json``, ``before/`` and ``after/``.
        """
        if not isinstance(out_dir, OutputDir):
            out_dir = Path(out_dir)
        return write_scenario(self, out_dir, maps=maps, basemap=basemap)


# --------------------------------------------------------------------------- the merged county

def _check_merge(county: County, stations: Sequence[str], into: str,
                 keep: Sequence[str]) -> None:
    p = Problems()
    known = set(county.stations["station_id"].astype(str))
    unknown = [s for s in stations if s not in known]
    if unknown:
        p.add("--stations", f"unknown station(s): {', '.join(unknown)}",
              f"use station_id values of stations.*: {', '.join(sorted(known))}", rows=unknown)
    if len(set(stations)) < 2:
        p.add("--stations", "a merge needs at least two different stations",
              "give two or more station ids separated by commas, e.g. --stations S01,S02")
    if into not in stations:
        p.add("--into", f"station {into!r} is not one of the merged stations",
              f"choose one of {', '.join(stations)}")
    bad = [s for s in keep if s not in stations or s == into]
    if bad:
        p.add("--keep-service-point", f"{', '.join(bad)} is not an absorbed station",
              "list only merged stations other than --into", rows=bad)
    p.raise_if_any()


def merged_county(county: County, stations: Sequence[str], *, into: str | None = None,
                  keep_service_point: Iterable[str] = ()) -> County:
    """The county with ``stations`` merged into ``into`` (see the module docstring).

    Parameters
    ----------
    county
        The county before the merge.
    stations
        Station ids to merge (two or more).
    into
        The station that remains (default: the first of ``stations``).
    keep_service_point
        Absorbed stations kept as 供电服务站 service points under ``into``.

    Returns
    -------
    County
        A new County; its layers are copies (the input is not changed).
    """
    stations = [str(s) for s in stations]
    into = str(into) if into is not None else stations[0]
    keep = [str(s) for s in keep_service_point]
    _check_merge(county, stations, into, keep)
    absorbed = set(stations) - {into}
    remap = dict.fromkeys(absorbed, into)

    def move(df: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
        if df is None or "station_id" not in df.columns:
            return df
        out = df.copy()
        out["station_id"] = out["station_id"].map(lambda s: remap.get(str(s), s) if pd.notna(s) else s)
        return out

    st = county.stations.copy()
    st = st[~st["station_id"].astype(str).isin(absorbed - set(keep))].copy()
    sid = st["station_id"].astype(str)
    if "parent_id" not in st.columns:
        st["parent_id"] = None
    st["parent_id"] = st["parent_id"].astype(object)
    st.loc[st["parent_id"].astype(str).isin(absorbed), "parent_id"] = into
    st.loc[sid.isin(keep), "kind"] = SERVICE_STATION
    st.loc[sid.isin(keep), "parent_id"] = into
    if keep:
        st.loc[sid == into, "kind"] = CENTRAL_STATION
    st = st.reset_index(drop=True)
    merged = dataclasses.replace(
        county, stations=st, townships=move(county.townships), transformers=move(county.transformers),
        managers=move(county.managers), report=list(county.report))
    return merged


# --------------------------------------------------------------------------- replanning

def _needs_full_replan(params: Params) -> bool:
    return params.scope == "station" or bool(params.grids_from_roster)


def _sub_county(county: County, station_id: str) -> County:
    """Only the townships, 台区 and roster of one station (for replanning it alone)."""
    t = county.townships[county.townships["station_id"] == station_id]
    tr = county.transformers[county.transformers["station_id"] == station_id]
    m = county.managers
    if m is not None:
        m = m[m["station_id"] == station_id]
    return dataclasses.replace(county, townships=t, transformers=tr, managers=m, feeders=None,
                               switches=None, substations=None, report=[],
                               stations=county.stations[county.stations["station_id"] == station_id])


def replan_merged(before: Plan, merged: County, into: str, stations: Sequence[str], *,
                  kpis: bool = True) -> Plan:
    """The after-plan: ``before`` with the merged station replanned and its managers reassigned.

    Parameters
    ----------
    before
        The plan of the county before the merge.
    merged
        From :func:`merged_county`.
    into
        The remaining station.
    stations
        Every merged station (``into`` included).
    kpis
        Compute the full KPIs (skipped when ranking candidates).

    Returns
    -------
    Plan
    """
    prm = before.params
    involved = set(map(str, stations))
    tr = before.transformers.copy()
    tr["station_id"] = merged.transformers["station_id"].to_numpy()
    tr["current_manager_id"] = before.transformers["manager_id"].to_numpy()
    grids = before.grids.copy()
    grids["station_id"] = grids["station_id"].map(lambda s: into if str(s) in involved else s)
    flags = dict(zip(before.grids["grid_id"], before.grids.get("flags", pd.Series("", index=grids.index))))
    notes = list(before.notes)
    mask = tr["station_id"].astype(str) == into
    if _needs_full_replan(prm):
        sub_county = _sub_county(dataclasses.replace(merged, transformers=tr[mask]), into)
        sub = run_plan(sub_county, **_plain(prm))
        tr.loc[mask, "grid_id"] = sub.transformers["grid_id"].to_numpy()
        keep_cols = [c for c in ("grid_id", "township_id", "station_id", "townships", "geometry")
                     if c in sub.grids.columns]
        grids = pd.concat([grids[grids["station_id"] != into], sub.grids[keep_cols]], ignore_index=True)
        flags.update(dict(zip(sub.grids["grid_id"], sub.grids.get("flags", ""))))
    mine = grids[grids["station_id"] == into]
    people = managers_stage(
        mine.drop(columns=[c for c in ("manager_id", "manager_name", "phone", "placeholder")
                           if c in mine.columns]),
        tr[mask], lv_county(dataclasses.replace(merged, transformers=tr)), prm,
        flags={g: flags.get(g, "") or "" for g in mine["grid_id"]})
    notes.extend(people.notes)
    grids = pd.concat([grids[grids["station_id"] != into], people.grids], ignore_index=True)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=before.crs)
    grids = grids.sort_values("grid_id", kind="stable").reset_index(drop=True)
    old_m = before.managers
    hv_rows = old_m[old_m["station_id"].astype(str).isin(involved)
                    & (old_m.get("role", pd.Series("lv", index=old_m.index)) == "hv")].assign(station_id=into)
    managers = pd.concat([old_m[~old_m["station_id"].astype(str).isin(involved)], people.managers, hv_rows],
                         ignore_index=True)
    tr["manager_id"] = tr["grid_id"].map(grids.set_index("grid_id")["manager_id"])
    segments = before.segments
    hv_kpi = dict(before.kpi.get("hv") or {})
    if segments is not None and len(segments):
        owners = owners_stage(segments.drop(columns=["grid_id", "manager_id", "share_in_grid"],
                                            errors="ignore"),
                              grids, managers, merged, prm, staff=hv_staff_of(merged))
        segments, grids, managers = owners.segments, owners.grids, owners.managers
        notes.extend(n for n in owners.notes if n not in notes)
        hv_kpi |= owners.kpi
    after = make_plan(county=merged, params=prm,
                      transformers=gpd.GeoDataFrame(tr, geometry="geometry", crs=before.crs),
                      grids=grids, managers=managers, segments=segments, notes=notes,
                      grid_numbers=before.grid_numbers)
    if not kpis:
        return after
    lb = before.kpi.get("county", {}).get("grid_lower_bound") if not _needs_full_replan(prm) else None
    return kpi_stage(after, lower_bound=lb, hv_kpi=hv_kpi, edges=None)


def _plain(params: Params) -> dict[str, Any]:
    """Params as plan() keyword overrides."""
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


def changed_grids(before: Plan, after: Plan) -> list[str]:
    """Grids of ``after`` that are new, or whose station or manager differs from ``before``."""
    b = before.grids.set_index("grid_id")
    out = []
    for r in after.grids.itertuples(index=False):
        gid = r.grid_id
        if gid not in b.index or str(b.at[gid, "station_id"]) != str(r.station_id) \
                or str(b.at[gid, "manager_id"]) != str(r.manager_id):
            out.append(str(gid))
    return sorted(out)


# --------------------------------------------------------------------------- the scenario

def merge_stations(county: County, stations: Sequence[str], *, into: str | None = None,
                   keep_service_point: Iterable[str] = (), params: Params | None = None,
                   before: Plan | None = None, travel: TravelTimes | None = None,
                   service_points: int | None = None) -> Scenario:
    """Merge ``stations`` into one, replan, and compare with the county as it is.

    Parameters
    ----------
    county
        The county before the merge.
    stations
        Station ids to merge (two or more).
    into
        The remaining station (default: the first of ``stations``).
    keep_service_point
        Absorbed stations kept as 供电服务站 service points under ``into``.
    params
        Planning and response parameters (default ``county.params``).
    before
        The plan of ``county`` if already computed (planned here otherwise).
    travel
        Travel times from every station of ``county`` (computed here otherwise).
    service_points
        Also give the maximal-coverage answer with this many service points.

    Returns
    -------
    Scenario
        With the absorbed townships' change first (:attr:`Scenario.townships`), the commitments,
        staff, the managers' travel, the service points proposed when 台区 are beyond their
        commitment (location set covering) and the verdict.
    """
    params = params or county.params
    if params is not county.params:
        county = dataclasses.replace(county, params=params)
    stations = [str(s) for s in stations]
    into = str(into) if into is not None else (stations[0] if stations else "")
    keep = tuple(str(s) for s in keep_service_point)
    merged = merged_county(county, stations, into=into, keep_service_point=keep)
    before = before if before is not None else run_plan(county)
    travel = travel if travel is not None else travel_times(county, params=params)
    after = replan_merged(before, merged, into, stations)
    snap_b = Snapshot(before, response_times(county, params=params, travel=travel))
    snap_a = Snapshot(after, response_times(
        merged, params=params, travel=travel.subset(merged.stations["station_id"].astype(str))))
    table = compare(snap_b, snap_a, stations=stations)
    sc = Scenario(tuple(stations), into, keep, snap_b, snap_a, table, changed_grids(before, after))
    _decision_figures(sc, county, merged, travel, k=service_points)
    sc.notes = _scenario_notes(sc, county)
    for n in sc.notes:
        log.info("%s", n)
    return sc


def _affected_townships(county: County, stations: Sequence[str], into: str) -> tuple[list[str], list[str]]:
    """(absorbed township ids, in station order then id; the remaining station's township ids)."""
    t = county.townships.assign(_s=county.townships["station_id"].astype(str),
                                _t=county.townships["township_id"].astype(str))
    absorbed = [tid for s in stations if s != into for tid in sorted(t.loc[t["_s"] == s, "_t"])]
    kept = sorted(t.loc[t["_s"] == into, "_t"])
    return absorbed, kept


def _decision_figures(sc: Scenario, county: County, merged: County, travel: TravelTimes, *,
                      k: int | None) -> None:
    """Fill the township table, commitments, staff, travel, service points and verdict of ``sc``."""
    rb, ra = sc.before.response, sc.after.response
    absorbed, kept = _affected_townships(county, sc.stations, sc.into)
    sc.absorbed_townships = absorbed
    sc.townships = township_table(rb, ra, county.townships, absorbed + kept)
    sc.worsening = worst_worsening(rb, ra, absorbed + kept)
    scope = set(sc.stations)
    sc.commitments = commitment_table(ra[ra["station_id"].astype(str).isin(scope)])
    gb = int(sc.before.plan.grids["station_id"].astype(str).isin(scope).sum())
    ga = int((sc.after.plan.grids["station_id"].astype(str) == sc.into).sum())
    absorbed_st = [s for s in sc.stations if s != sc.into]
    sc.staff = staff_change(county.managers, into=sc.into, absorbed=absorbed_st,
                            kept=list(sc.keep_service_point), grids_before=gb, grids_after=ga)
    # a manager works from his station before; after, from the remaining station, or from the
    # service point kept where his grid's station was
    prev_station = sc.before.plan.grids.set_index("grid_id")["station_id"].astype(str)
    kept_sp = set(sc.keep_service_point)
    grid_base = {str(g): prev_station[g] for g in sc.after.plan.grids["grid_id"]
                 if g in prev_station.index and prev_station[g] in kept_sp}
    mb = manager_travel(sc.before.plan, travel, stations=scope).assign(side="before")
    ma = manager_travel(sc.after.plan, travel, stations={sc.into}, grid_base=grid_base).assign(side="after")
    sc.manager_travel = pd.concat([mb, ma], ignore_index=True)
    mean = lambda d: round(float(d["mean_minutes"].mean()), 2) if len(d) else None
    sc.travel_summary = (mean(mb), mean(ma))
    existing = merged.stations
    closed = county.stations[county.stations["station_id"].astype(str).isin(set(absorbed_st) - kept_sp)]
    sites = candidate_sites(merged, closed=closed)
    base_tt = travel.subset(existing["station_id"].astype(str))
    if int(ra["beyond"].sum()):
        sc.service_points = propose_service_points(merged, existing, sites, travel=base_tt)
    if k:
        sc.service_points_k = propose_service_points(merged, existing, sites, travel=base_tt, k=k)
    new = sc.beyond
    new = new[new["new"]]
    inc = (sc.townships["p95_after"] - sc.townships["p95_before"]).astype(float)
    inc = inc[sc.townships["township_id"].isin(absorbed)]
    sp = sc.service_points
    needed = unc = None
    if len(new) and sp is not None:
        new_ids = set(new["transformer_id"])
        unc = sum(1 for t in sp.uncoverable if t in new_ids)
        needed = len(sp.sites)
    sc.verdict, sc.reasons = verdict(new_beyond=len(new), p95_increase=float(inc.max()) if inc.notna().any()
                                     else 0.0, points_needed=needed, uncoverable=unc or 0)


def _scenario_notes(sc: Scenario, county: County) -> list[str]:
    names = county.stations.set_index(county.stations["station_id"].astype(str))["name"]
    label = lambda s: f"{names.get(s, s)}（{s}）"
    absorbed = [s for s in sc.stations if s != sc.into]
    notes = [f"{'、'.join(label(s) for s in absorbed)} 并入 {label(sc.into)}"
             + (f"；保留 {'、'.join(label(s) for s in sc.keep_service_point)} 为供电服务站"
                if sc.keep_service_point else "")]
    t = sc.townships[sc.townships["township_id"].isin(sc.absorbed_townships)]
    fmt = lambda v: "—" if v is None or pd.isna(v) else f"{float(v):.1f}"
    for r in t.itertuples(index=False):
        notes.append(f"并入的{r.township}（{r.area_class}，承诺 {sc.after.plan.params.commitments.get(r.area_class, 0):g}"
                     f" 分钟）：{r.transformers} 个台区、{r.customers} 户，95% 到达 {fmt(r.p95_before)} → "
                     f"{fmt(r.p95_after)} 分钟，最长 {fmt(r.max_before)} → {fmt(r.max_after)} 分钟，"
                     f"超时台区 {r.beyond_before} → {r.beyond_after} 个")
    b = sc.beyond
    new = b[b["new"]]
    if len(new):
        for cls, grp in new.groupby("area_class", sort=True):
            ids = "、".join(grp["transformer_id"].head(20))
            more = f" 等 {len(grp)} 个" if len(grp) > 20 else ""
            notes.insert(0, f"⚠ 合并后 {len(grp)} 个{cls}台区（{int(grp['customers'].sum())} 户）超出"
                            f"抢修到达承诺 {grp['commitment'].iloc[0]:g} 分钟：{ids}{more}")
    elif len(b):
        notes.append(f"合并后仍有 {len(b)} 个台区超出承诺时间，但合并前已超出（非合并造成）")
    else:
        notes.append("合并后所有台区均在抢修到达承诺时间内")
    return notes


# --------------------------------------------------------------------------- candidates

def merge_candidates(county: County, *, params: Params | None = None, before: Plan | None = None,
                     keep_service_point: bool = False, touch_m: float = 1.0,
                     progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Evaluate and rank the merge of every pair of neighbouring stations.

    Two stations are neighbours when their territories (the union of their townships) come within
    ``touch_m`` metres. The station with more households is ``into``. Each pair gets a verdict
    (:func:`gridplan.scenarios.comparison.verdict`: 可合并 / 需设服务站 / 不宜合并, with its reasons) and a score
    (:func:`gridplan.scenarios.comparison.candidate_score`: positions released, 台区 newly beyond the
    commitment, the absorbed townships' worst p95 change, and the absorbed station's size in
    customers, sales, area and townships). When a merge puts 台区 beyond their commitment, the
    fewest service points that bring them back (the closed station, the township seats and
    ``candidates.*``; exact set covering) decide between 需设服务站 and 不宜合并. Ranking: verdict,
    then score.

    Parameters
    ----------
    county
        The county.
    params
        Parameters (default ``county.params``).
    before
        The county's plan if already computed.
    keep_service_point
        Keep each absorbed station as a 供电服务站 (the default removes it).
    touch_m
        Territories closer than this (metres) touch.
    progress
        Optional callback ``(done, total)`` after each pair (the CLI draws a bar with it).

    Returns
    -------
    pandas.DataFrame
        One row per pair, best first: ``rank``, ``into``, ``absorbed``, names, and the numbers
        behind the ranking (see :func:`gridplan.scenarios.comparison.candidate_row`).
    """
    params = params or county.params
    if params is not county.params:
        county = dataclasses.replace(county, params=params)
    before = before if before is not None else run_plan(county)
    travel = travel_times(county, params=params)
    rt_before = response_times(county, params=params, travel=travel)
    households = county.transformers.groupby("station_id")["customers"].sum()
    all_sites = candidate_sites(county, closed=county.stations)
    site_tt = travel_times(county, all_sites, params=params)
    rows = []
    pairs = station_pairs(county, touch_m=touch_m)
    for i, (a, b) in enumerate(pairs, 1):
        into, other = (a, b) if households.get(a, 0) >= households.get(b, 0) else (b, a)
        merged = merged_county(county, [into, other], into=into,
                               keep_service_point=[other] if keep_service_point else [])
        after = replan_merged(before, merged, into, [into, other], kpis=False)
        base_tt = travel.subset(merged.stations["station_id"].astype(str))
        rt_after = response_times(merged, params=params, travel=base_tt)
        extra = _pair_service_points(merged, rt_before, rt_after, all_sites, site_tt, base_tt,
                                     other=other, scope={into, other}, params=params)
        rows.append(candidate_row(county, before, after, rt_before, rt_after, into, other, **extra))
        log.info("candidate %s <- %s evaluated", into, other)
        if progress is not None:
            progress(i, len(pairs))
    return rank_candidates(pd.DataFrame(rows))


def _pair_service_points(merged: County, rt_before: pd.DataFrame, rt_after: pd.DataFrame,
                         sites: gpd.GeoDataFrame, site_tt: TravelTimes, base_tt: TravelTimes, *,
                         other: str, scope: set[str], params: Params) -> dict[str, Any]:
    """Fewest service points for the 台区 a candidate merge newly puts beyond their commitment."""
    prev = rt_before.set_index("transformer_id")["beyond"]
    new = rt_after["beyond"] & ~rt_after["transformer_id"].map(prev).fillna(False).astype(bool) \
        & rt_after["station_id"].isin(scope)
    if not new.any():
        return {}
    keep = sites["kind"].ne("撤并供电所") | sites["source_id"].eq(other)
    sub = sites[keep].reset_index(drop=True)
    only = dataclasses.replace(merged, transformers=merged.transformers[new.to_numpy()].reset_index(drop=True))
    rows = np.flatnonzero(new.to_numpy())
    cut = lambda tt, cols: TravelTimes(tt.points.iloc[cols].reset_index(drop=True),
                                       tt.transformer_id[rows], tt.minutes[np.ix_(rows, cols)],
                                       tt.metres[np.ix_(rows, cols)], tt.via_road[np.ix_(rows, cols)],
                                       tt.method)
    sp = propose_service_points(only, merged.stations, sub, params=params,
                                travel=cut(base_tt, np.arange(len(base_tt.points))),
                                site_travel=cut(site_tt, np.flatnonzero(keep.to_numpy())))
    return {"points_needed": len(sp.sites), "sites": "、".join(sp.sites["name"].astype(str)),
            "uncoverable": len(sp.uncoverable)}
