"""The pipeline: the stages that turn a County into a Plan, and :func:`plan`, which runs them.

``plan(county, **params)`` is the library twin of ``gridplan plan``::

    county = gridplan.load_county("geodata/sample")
    p = gridplan.plan(county, capacity=1200)
    p.to_file("maps/sample")

Each stage is a function that returns new values (nothing is written into its arguments):
:func:`workload_stage` → :func:`graph_stage` (contiguity edges) → :func:`patches_stage` (低压到片)
→ :func:`territory_stage` (grid polygons) → :func:`feeders_stage` (feeders and segments, 高压到段)
→ :func:`managers_stage` (assignment) → :func:`owners_stage` (segment owners) →
:func:`response_stage` → :func:`kpi_stage`, then :func:`gridplan.model.make_plan`. Replanning
(``current``/``pins``), :func:`gridplan.scenarios.replan_merged` and the editor call the same
stages.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from .files import atomic_dir
from .hv import segments as seg
from .io.planfile import read_plan, write_gpkg
from .lv import measures, territory
from .lv import workload as wl
from .lv.graph import label_codes, sorted_unique
from .lv.groups import groups_kpi
from .lv.patches import PatchResult, plan_patches
from .metrics import kpi as kpis
from .metrics.response import response_kpis, response_times
from .model import PLAN_FILES, County, Plan, issued_numbers, make_plan
from .people import assign
from .people.assign import service_groups
from .people.reach import apply_reach
from .people.staff import not_field
from .replan.pins import check_honoured, moved_summary, prepare
from .settings import Params

__all__ = ["PLAN_FILES", "SPARE_NICE", "STAGES", "Plan", "atomic_dir", "feeders_stage", "graph_stage",
           "hv_staff_of", "issued_numbers", "kpi_stage", "managers_stage", "owners_stage", "patches_stage",
           "plan", "read_plan", "response_stage", "territory_stage", "with_kpis", "worker_context",
           "worker_count", "worker_pool", "workload_stage", "write_gpkg"]

log = logging.getLogger(__name__)

#: Called with (stage name, index, total) as the pipeline advances; the CLI draws a bar with it.
Progress = Callable[[str, int, int], None]

#: The stages as the progress callback names them, in order.
STAGES = ("workload", "graph", "patches", "territory", "feeders", "managers", "kpis")


# --------------------------------------------------------------------------- the stages

def workload_stage(county: County, params: Params) -> gpd.GeoDataFrame:
    """The county's 台区 with their ``workload`` (a new frame)."""
    tr = county.transformers.copy()
    tr["workload"] = wl.workload(tr, params.workload)
    return tr


#: Every 台区's grid as :func:`gridplan.lv.graph.label_codes` gives it: (sorted grid ids, codes).
GridCodes = tuple[np.ndarray, np.ndarray]


def grid_codes(transformers: pd.DataFrame) -> GridCodes:
    """The 台区' grid codes (:data:`GridCodes`): computed once, for every stage that groups by grid."""
    return label_codes(transformers["grid_id"].to_numpy())


@dataclass(frozen=True)
class Graph:
    """The 台区 territory cells and the contiguity edges between them (row positions).

    ``cells``: an array of geometries (serially) or :class:`gridplan.lv.territory.PackedCells`
    (from the worker processes: WKB, decoded on first use as an array).
    """

    cells: Any
    edges: np.ndarray


def graph_stage(county: County, transformers: gpd.GeoDataFrame, params: Params, *,
                pool: Executor | None = None) -> Graph:
    """Territory cells of the 台区 and the edges of cells that share a border (within ``scope``).

    ``pool``: an executor the townships (stations, with ``scope="station"``) are done in, one
    task each (the same cells and edges).
    """
    if pool is not None:
        done = territory.pooled_graph(county, transformers, scope=params.scope, pool=pool)
        if done is not None:
            return Graph(*done)
    cells, edges = territory.cells_and_edges(county, transformers, scope=params.scope)  # cells: for territory too
    return Graph(cells, edges)


def lv_county(county: County) -> County:
    """The county as the LV stages see it: roster rows that hold no grid left out.

    HV staff (role 高压) are no 台区经理, nor are 所长, 内勤 and 营业厅 staff.
    """
    if county.managers is None:
        return county
    no_grid = assign.hv_staff(county.managers) | not_field(county.managers)
    return dataclasses.replace(county, managers=county.managers[~no_grid]) if no_grid.any() else county


def hv_staff_of(county: County) -> pd.DataFrame | None:
    """The roster rows of HV staff (role 高压), who own segments with ``hv_owner = "separate"``."""
    if county.managers is None:
        return None
    rows = assign.hv_staff(county.managers)
    return county.managers[rows] if rows.any() else None


def patches_stage(county: County, transformers: gpd.GeoDataFrame, params: Params,
                  edges: np.ndarray, *, pool: Executor | None = None) -> PatchResult:
    """低压到片: the grid of every 台区 (``county``: as :func:`lv_county` returns it).

    ``transformers`` carries the columns of the ``also_balance`` measures
    (:func:`gridplan.lv.measures.add_measure_columns`), balanced with the workload. ``pool``:
    an executor the townships' parts are solved in (the same grids without it).
    """
    return plan_patches(county, transformers["workload"].to_numpy(), params=params, edges=edges,
                        also=measures.measure_matrix(transformers, params.also_balance), pool=pool)


def territory_stage(county: County, transformers: gpd.GeoDataFrame, cells: Any, *,
                    pool: Executor | None = None, grid_codes: GridCodes | None = None
                    ) -> gpd.GeoDataFrame:
    """Grid polygons from the 台区 cells (``transformers`` with ``grid_id``).

    ``pool``: an executor the townships' grid pieces are dissolved in (the same polygons);
    ``grid_codes``: :func:`grid_codes` of ``transformers``.
    """
    return territory.grid_polygons(county, transformers, cells=cells, pool=pool,
                                   grid_codes=grid_codes)


def feeders_stage(county: County, params: Params) -> seg.SegmentResult | None:
    """高压到段: the feeder graph cut into segments (None when the county has no feeders)."""
    if county.feeders is None or not len(county.feeders):
        return None
    return seg.segment_feeders(county, params=params)


def _villages_per_grid(tr: gpd.GeoDataFrame, *, grid_codes: GridCodes | None = None) -> pd.Series:
    """Names of the villages whose 台区 a grid holds, by grid_id ("、"-separated, sorted).

    ``grid_codes``: :func:`grid_codes` of ``tr`` (a grid without named villages then gets "").
    """
    if "village" not in tr.columns:
        return pd.Series(dtype=object)
    named = tr["village"].notna().to_numpy()
    village = np.asarray(tr["village"].to_numpy()[named], dtype=object)
    if pd.api.types.infer_dtype(village, skipna=False) != "string":  # str already: kept as is
        village = np.array([str(v) for v in village.tolist()], dtype=object)
    if grid_codes is None:
        gcode, gids = pd.factorize(tr["grid_id"].to_numpy()[named], sort=True)
    else:
        gids, gcode = grid_codes[0], grid_codes[1][named]
    vcode, vnames = pd.factorize(village, sort=True)
    keep = gcode >= 0
    pairs = sorted_unique(gcode[keep].astype(np.int64) * max(len(vnames), 1) + vcode[keep])
    pg, pv = pairs // max(len(vnames), 1), pairs % max(len(vnames), 1)
    ends = np.cumsum(np.bincount(pg, minlength=len(gids)))
    names = np.asarray(vnames, dtype=object)[pv].tolist()
    joined = ["、".join(names[(ends[i - 1] if i else 0):ends[i]]) for i in range(len(gids))]
    return pd.Series(joined, index=pd.Index(np.asarray(gids, dtype=object), name="grid_id"),
                     dtype=object, name="village")


def _by_grid(grid_id: pd.Series, values: pd.Series, *, grid_codes: GridCodes | None = None) -> pd.Series:
    """``grid_id.map(values)``, looking up each distinct grid once (a million 台区, 70,000 grids).

    ``grid_codes``: :func:`grid_codes` of ``grid_id``, used when no id is missing.
    """
    if grid_codes is not None and not (grid_codes[1] < 0).any():
        uniques, code = grid_codes
    else:
        code, uniques = pd.factorize(grid_id, use_na_sentinel=False)  # a missing id is a value too
    looked = pd.Series(uniques).map(values)
    return looked.iloc[code].set_axis(grid_id.index).rename(grid_id.name)


@dataclass(frozen=True)
class Managers:
    """The grids with their managers, the roster rows, the 台区' managers and the notes."""

    grids: gpd.GeoDataFrame
    managers: pd.DataFrame
    manager_id: pd.Series
    notes: list[str] = field(default_factory=list)


def managers_stage(grids: gpd.GeoDataFrame, transformers: gpd.GeoDataFrame, county: County,
                   params: Params, *, flags: dict[str, str],
                   grid_codes: GridCodes | None = None) -> Managers:
    """Assign a manager to every grid (exact assignment per station) and name its villages.

    ``grid_codes``: :func:`grid_codes` of ``transformers``.
    """
    grids, managers, notes = assign.assign_managers(grids, transformers, county, params=params,
                                                    flags=flags, grid_codes=grid_codes)
    manager_id = _by_grid(transformers["grid_id"], grids.set_index("grid_id")["manager_id"],
                          grid_codes=grid_codes)
    villages = (_villages_per_grid(transformers, grid_codes=grid_codes)
                .reindex(grids["grid_id"]).fillna("").to_numpy())
    return Managers(grids.assign(villages=villages), managers, manager_id, list(notes))


def _hv_owner_kpi(segments: gpd.GeoDataFrame, owned: pd.DataFrame, mode: str) -> dict[str, Any]:
    """kpi["hv"] entries on ownership: per manager km, segments and mean share in their area."""
    km = segments["length_km"].to_numpy()
    share = segments["owner_share"].to_numpy(dtype=float)
    return {"owner": mode,
            "mean_owner_share": round(float((share * km).sum() / km.sum()), 4) if km.sum() > 0 else 0.0,
            "per_manager": {str(m): {"role": r.role, "km": round(float(r.km), 3), "segments": int(r.segments),
                                     "mean_share": round(float(r.mean_share), 4)}
                            for m, r in owned.iterrows()}}


@dataclass(frozen=True)
class Owners:
    """Segments with their owners, the grids' and managers' HV km, notes and ``kpi["hv"]`` entries."""

    segments: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    managers: pd.DataFrame
    notes: list[str]
    kpi: dict[str, Any]


def owners_stage(segments: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, managers: pd.DataFrame,
                 county: County, params: Params, *, staff: pd.DataFrame | None) -> Owners:
    """Align the segments with the grids and give each an owner; HV km per grid and per person.

    ``managers`` holds every roster row that may own a segment (HV staff included); a person's
    ``hv_km`` is the km of the segments they own.
    """
    segments = seg.align_segments(segments, grids)
    segments, notes = seg.assign_owners(segments, county.townships, mode=params.hv_owner, staff=staff)
    hv = segments.groupby("grid_id")["length_km"].sum()
    grids = grids.assign(hv_km=grids["grid_id"].map(hv).fillna(0.0).round(3))
    owned = seg.owner_summary(segments)
    managers = managers.assign(hv_km=managers["manager_id"].map(owned["km"]).fillna(0.0).round(3))
    return Owners(segments, grids, managers, list(notes),
                  _hv_owner_kpi(segments, owned, params.hv_owner))


@dataclass(frozen=True)
class Response:
    """Repair travel times: the 台区' columns, ``kpi["response"]``, headline figures and notes."""

    columns: pd.DataFrame
    kpi: dict[str, Any]
    county: dict[str, Any]
    notes: list[str]


def response_stage(county: County, transformers: gpd.GeoDataFrame, params: Params) -> Response:
    """Repair travel time from the nearest station to every 台区, against the 45/90/120-min commitments.

    Over ``county.roads`` when given, else straight-line distance × ``detour_factor`` at
    ``speed_kmh`` (see :mod:`gridplan.metrics.response`): ``response_minutes`` and
    ``beyond_commitment`` for the 台区, ``kpi["response"]`` and headline figures for
    ``kpi["county"]``.
    """
    full = response_times(county, params=params)
    ids = transformers["transformer_id"]
    tid = pd.Index(full["transformer_id"])
    if tid.is_unique and np.array_equal(ids.to_numpy(dtype=object), tid.to_numpy(dtype=object)):
        minutes, beyond = full["minutes"], full["beyond"]  # the same 台区 in the same order: no lookup
    else:
        rt = full.set_index("transformer_id")
        minutes, beyond = ids.map(rt["minutes"]), ids.map(rt["beyond"]).fillna(False)
    columns = pd.DataFrame({"response_minutes": minutes.round(1).to_numpy(),
                            "beyond_commitment": beyond.astype(bool).to_numpy()},
                           index=transformers.index)
    resp = response_kpis(full)
    c = resp["county"]
    figures = {"transformers_beyond_commitment": int(c["transformers_beyond"]),
               "households_beyond_commitment": int(c["households_beyond"]),
               "p95_response_minutes": c["p95_minutes"], "max_response_minutes": c["max_minutes"]}
    notes = []
    if c["transformers_beyond"]:
        notes.append(f"有 {c['transformers_beyond']} 个台区（{c['households_beyond']} 户）超出抢修到达时限承诺"
                     "（城区45分钟、农村90分钟、特殊边远地区120分钟）")
    return Response(columns, resp, figures, notes)


def snapped_kpi(county: County) -> dict[str, Any]:
    """``kpi["input"]["snapped"]``: the 台区 and stations put in a township they lie outside of.

    ``{"tolerance_m", "count", "transformers", "stations", "rows": [{"layer", "id",
    "township_id", "township", "distance_m", "basis"}, ...]}`` (see :attr:`County.snapped`).
    """
    rows = [dict(r) for r in county.snapped]
    return {"tolerance_m": float(county.params.snap_tolerance_m), "count": len(rows),
            "transformers": sum(r["layer"] == "transformers" for r in rows),
            "stations": sum(r["layer"] == "stations" for r in rows), "rows": rows}


def kpi_stage(draft: Plan, *, lower_bound: int | None, hv_kpi: dict[str, Any],
              edges: np.ndarray | None, pool: Executor | None = None,
              started: kpis.PendingOptimality | None = None,
              grid_codes: GridCodes | None = None) -> Plan:
    """The plan with its KPIs: the per-grid figures added to a new grids frame, ``kpi`` set.

    ``pool``: an executor the certificate's township bounds are computed in (the same KPIs);
    ``started``: the certificate, already started (:func:`gridplan.metrics.kpi.start_certificate`);
    ``grid_codes``: :func:`grid_codes` of ``draft.transformers``.
    """
    res = kpis.compute_kpis(draft, lower_bound=lower_bound, hv_kpi=hv_kpi, edges=edges, pool=pool,
                            started=started, grid_codes=grid_codes)
    return with_kpis(draft, res)


def with_kpis(draft: Plan, res: kpis.KpiResult) -> Plan:
    """``draft`` with the grid columns, figures and notes of ``res`` (a new Plan)."""
    return dataclasses.replace(draft, grids=draft.grids.assign(**res.grid_columns),
                               kpi=res.kpi, notes=[*draft.notes, *res.notes])


# --------------------------------------------------------------------------- worker processes

#: ``[plan] workers = 0`` (auto) uses worker processes from this many 台区 on: below it, the
#: workers' start (each imports gridplan, ≈ 4 CPU s) costs more than the parallel solves save.
AUTO_WORKERS_MIN = 100_000
#: The most worker processes ``workers = 0`` (auto) starts.
AUTO_WORKERS_MAX = 4


def _cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_count(params: Params, county: County) -> int:
    """How many worker processes :func:`plan` uses for ``county`` (1: none).

    ``params.workers``: 1 (the default) = none; n >= 2 = n (at most one per township); 0 = auto:
    min(cores, :data:`AUTO_WORKERS_MAX`) for counties of :data:`AUTO_WORKERS_MIN` 台区 or more,
    else none. Never inside a daemonic process (e.g. a Dask worker), which may not start
    processes, nor for a county of one township (station). The workers start from a fresh
    interpreter (:func:`worker_context`): like any ``multiprocessing`` program, a script that
    plans with workers must guard its entry point with ``if __name__ == "__main__":`` (the
    workers import the main module), which is why the default is 1.
    """
    tr = county.transformers
    col = "station_id" if params.scope == "station" and "station_id" in tr else "township_id"
    keys = int(tr[col].nunique()) if col in tr else 1
    if params.workers == 1 or keys < 2 or multiprocessing.current_process().daemon:
        return 1
    if params.workers >= 2:
        return min(int(params.workers), keys)
    if len(tr) < AUTO_WORKERS_MIN:
        return 1
    return max(1, min(_cores(), AUTO_WORKERS_MAX, keys))


def _started() -> None:
    """A worker's first task: nothing (to run it, the worker has imported gridplan)."""


#: Modules the fork server imports once, before it forks the workers (see :func:`worker_context`).
FORKSERVER_PRELOAD = ["__main__", "gridplan.pipeline"]


def worker_context() -> multiprocessing.context.BaseContext:
    """How the workers start: from a fork server where the platform has one, else spawned.

    A fork server (Linux, macOS) is a small process started from a fresh interpreter once per
    program: it imports gridplan once (:data:`FORKSERVER_PRELOAD`) and forks every worker from
    itself, so a worker starts at once with gridplan imported, and exits without tearing down
    an interpreter. Like a spawned worker, and unlike a fork of this process, it holds nothing
    of the county: its memory is its own. Elsewhere (Windows) every worker is spawned.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


#: Niceness of the spare processes (:func:`worker_pool` ``nice``): they get a core only when
#: nothing else here wants it.
SPARE_NICE = 19


@contextmanager
def worker_pool(workers: int, *, nice: int = 0) -> Iterator[Executor | None]:
    """A pool of ``workers`` processes (``None`` for 1), shut down and joined on exit.

    The processes come from :func:`worker_context` (a fresh interpreter's, not forks of this
    one: nothing of the county is copied into them, and each one's memory is its own) and are
    started at once, so that they are ready while the first stages run here. Tasks get numpy
    arrays, never frames. ``nice``: raise the processes' niceness by this much (where the
    platform has ``os.nice``), for work that should only fill idle cores.
    """
    if workers <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=worker_context(),
                               initializer=_lower_priority, initargs=(nice,))
    # started from a thread: the first submit waits for the fork server's imports, which
    # would hold up the stages that run here meanwhile
    starter = threading.Thread(target=_start_workers, args=(pool, workers), daemon=True)
    starter.start()
    try:
        log.info("%d worker processes", workers)
        yield pool
    finally:
        starter.join()
        pool.shutdown(wait=True, cancel_futures=True)


def _lower_priority(nice: int) -> None:
    """A worker's initializer: lower its priority by ``nice`` (0, or no ``os.nice``: nothing)."""
    if nice and hasattr(os, "nice"):
        os.nice(nice)


def _start_workers(pool: Executor, workers: int) -> None:
    """Start the pool's processes (a first, empty task for each)."""
    for _ in range(workers):
        pool.submit(_started)


# --------------------------------------------------------------------------- the whole run

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

    With ``workers`` (``[plan] workers``, see :func:`worker_count`) above 1 the townships'
    territory cells and contiguity edges, solves, grid polygons and certificate bounds run in
    that many worker processes (:func:`worker_pool`; the bounds in as many spare ones, niced
    by :data:`SPARE_NICE`, while the territory, manager and KPI stages run here); the plan is
    the same for any number.
    """
    prm = county.params.replace(**params) if params else county.params
    workers = worker_count(prm, county)
    # the certificate's bounds go to spare processes that get only idle cores (this process and
    # the workers come first); once the KPI stage waits for them, the workers take over the rest
    spare = workers if prm.max_travel_min is None else 0
    with worker_pool(workers) as pool, worker_pool(spare, nice=SPARE_NICE) as idle:
        return _plan(county, prm, progress=progress, current=current, pins=pins, pool=pool, spare=idle)


def _plan(county: County, prm: Params, *, progress: Progress | None, current: Any, pins: Any,
          pool: Executor | None, spare: Executor | None = None) -> Plan:
    """:func:`plan` with its parameters made and its worker pools (or ``None``) open.

    ``spare``: niced processes for the early certificate (else it goes to ``pool``).
    """
    notes: list[str] = list(county.report)
    if current is not None or pins is not None:
        county = prepare(county, current=current, pins=pins, params=prm)

    def step(i: int) -> None:
        log.info("stage %s", STAGES[i])
        if progress is not None:
            progress(STAGES[i], i, len(STAGES))

    lv = lv_county(county)
    step(0)
    tr = workload_stage(county, prm)
    # repair travel times depend on the county alone: computed first, while the workers start
    resp = response_stage(county, tr, prm)
    step(1)
    graph = graph_stage(county, tr, prm, pool=pool)
    step(2)
    tr = measures.add_measure_columns(county, tr, prm.also_balance, cells=graph.cells, params=prm)
    patches = patches_stage(lv, tr, prm, graph.edges, pool=pool)
    tr["grid_id"] = patches.grid_id
    codes: GridCodes | None = grid_codes(tr)  # valid while no stage moves 台区
    notes.extend(patches.notes)
    step(3)
    # the certificate's township tasks (grid medoids and bounds), in the spare processes while
    # the stages below run here (only when no reach repair can move 台区 after this point;
    # compute_kpis checks the grids)
    started = (kpis.start_certificate(tr, prm, pool=spare or pool, grid_codes=codes)
               if pool is not None and prm.max_travel_min is None else None)
    grids = territory_stage(county, tr, graph.cells, pool=pool, grid_codes=codes)
    step(4)
    hv = feeders_stage(county, prm)
    hv_kpi: dict[str, Any] = {}
    if hv is not None:
        tr["segment_id"] = hv.transformer_segment.reindex(tr.index)
        hv_kpi = hv.kpi
        notes.extend(hv.notes)
    step(5)
    people = managers_stage(grids, tr, lv, prm, flags=patches.flags, grid_codes=codes)
    grids, managers = people.grids, people.managers
    notes.extend(people.notes)
    tr["manager_id"] = people.manager_id
    # #16 parts 5 and 6: the managers' reach (a repair pass), then service groups of the grids
    tr, grids, managers, reach_kpi, more = apply_reach(county, tr, grids, managers, params=prm,
                                                       edges=graph.edges, cells=graph.cells)
    grids, tr, more2 = service_groups(grids, tr, lv, params=prm)
    notes.extend([*more, *more2])
    if reach_kpi is not None:  # the reach repair moved 台区: their managers and villages follow
        codes = None
        tr["manager_id"] = _by_grid(tr["grid_id"], grids.set_index("grid_id")["manager_id"])
        grids = grids.assign(villages=_villages_per_grid(tr).reindex(grids["grid_id"]).fillna("").to_numpy())
    segments = None
    if hv is not None:
        staff = hv_staff_of(county)
        if staff is not None:
            managers = pd.concat([managers, assign.hv_staff_rows(staff)], ignore_index=True)
        owners = owners_stage(hv.segments, grids, managers, county, prm, staff=staff)
        segments, grids, managers = owners.segments, owners.grids, owners.managers
        notes.extend(owners.notes)
        hv_kpi = {**hv_kpi, **owners.kpi}
    check_honoured(tr)
    moved = moved_summary(tr)
    if moved:
        notes.append(f"与现有方案相比:{moved['moved_transformers']}个台区"
                     f"({moved['moved_households']}户)更换了台区经理,新增台区{moved['new_transformers']}个。")
    step(6)
    draft = make_plan(county=county, params=prm, transformers=tr, grids=grids, managers=managers,
                      segments=segments, notes=notes,
                      grid_numbers=county.transformers.attrs.get("grid_numbers"))
    p = kpi_stage(draft, lower_bound=patches.lower_bound, hv_kpi=hv_kpi, edges=graph.edges,
                  pool=pool, started=started, grid_codes=codes)
    notes = [*p.notes, *resp.notes]
    kpi = {**p.kpi, "county": {**p.kpi["county"], **moved, **resp.county},
           "input": {**p.kpi.get("input", {}), "snapped": snapped_kpi(county)}}
    kpi |= {"response": resp.kpi, "notes": list(notes),
            "measures": kpis.measure_kpis(p, unmet=patches.also_unmet, grid_codes=codes)}
    if reach_kpi is not None:
        kpi["reach"] = reach_kpi
    if "group_id" in p.grids.columns:
        kpi["groups"] = groups_kpi(p.grids, prm)
    for name, column in resp.columns.items():  # as tr.assign(**resp.columns), without a copy:
        tr[name] = column                      # tr is this run's own frame (workload_stage's)
    return dataclasses.replace(p, transformers=tr, kpi=kpi, notes=notes)
