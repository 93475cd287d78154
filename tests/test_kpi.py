import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from _plan_fixtures import small_county, split_grids

from gridplan.lv.territory import grid_polygons
from gridplan.metrics.kpi import (
    balance_stats,
    compute_kpis,
    medoid_distances,
    noncontiguous_grids,
    start_certificate,
)
from gridplan.model import make_plan
from gridplan.people.assign import assign_managers
from gridplan.people.roster import roster_tables, write_roster
from gridplan.pipeline import with_kpis, worker_pool


def _plan(per_township=2):
    county = small_county()
    tr = county.transformers.assign(grid_id=split_grids(county, per_township),
                                    workload=county.transformers["customers"].astype(float))
    grids, managers, notes = assign_managers(grid_polygons(county, tr), tr, county, params=county.params)
    tr["manager_id"] = tr["grid_id"].map(grids.set_index("grid_id")["manager_id"])
    p = make_plan(county=county, params=county.params, transformers=tr, grids=grids, managers=managers,
                  notes=notes)
    return with_kpis(p, compute_kpis(p, lower_bound=3))


def test_balance_stats_by_hand():
    s = balance_stats(np.array([90.0, 100.0, 110.0]))
    assert s["cv"] == round(np.std([90, 100, 110]) / 100, 4)
    assert s["max_over_mean"] == 1.1 and s["min_over_mean"] == 0.9


def test_medoid_distances_by_hand():
    xy = np.array([[0.0, 0], [3, 4], [6, 8]])
    idx, mean_d, max_d = medoid_distances(xy)
    assert idx == 1 and np.isclose(mean_d, 10 / 3) and np.isclose(max_d, 5)


def test_noncontiguous_detects_a_split_grid():
    xy = np.array([[0.0, 0], [1, 0], [2, 0], [3, 0]])
    edges = np.array([[0, 1], [1, 2], [2, 3]])
    assert noncontiguous_grids(xy, np.array(["a", "b", "a", "b"]), edges) == ["a", "b"]
    assert noncontiguous_grids(xy, np.array(["a", "a", "b", "b"]), edges) == []


def test_county_kpis_are_consistent_with_the_layers():
    p = _plan()
    c = p.kpi["county"]
    assert c["transformers"] == len(p.transformers)
    assert c["households"] == int(p.transformers["customers"].sum())
    assert c["grids"] == len(p.grids) == 6
    assert c["noncontiguous_grids"] == 0
    real = p.grids[p.grids["n_transformers"] > 0]
    assert c["cv"] == balance_stats(real["workload"].to_numpy())["cv"]
    assert set(p.kpi["stations"]) == {"S1", "S2"}
    assert (p.grids["polsby_popper"].between(0, 1)).all()
    assert sum(s["transformers"] for s in p.kpi["stations"].values()) == len(p.transformers)


def test_roster_sheets(tmp_path):
    p = _plan()
    managers, per_tr = roster_tables(p)
    assert list(managers.columns[:4]) == ["供电所", "网格编号", "台区经理", "工号"]
    assert len(per_tr) == len(p.transformers)
    assert managers["户数"].sum() == p.transformers["customers"].sum()
    path = write_roster(p, tmp_path / "roster.xlsx")
    from openpyxl import load_workbook
    wb = load_workbook(path)
    # issue 11 (乡乡有点、村村有人) adds the coverage sheet(s) after the two roster sheets
    assert wb.sheetnames[:3] == ["台区经理", "台区明细", "乡乡有点"]
    assert wb["台区经理"].freeze_panes == "A3"
    assert pd.read_excel(path, sheet_name="台区明细")["台区编号"].nunique() == len(p.transformers)


def test_group_medoids_are_medoid_distances_of_every_group():
    from gridplan.metrics.kpi import group_medoids

    rng = np.random.default_rng(4)
    sizes = [*rng.integers(1, 30, 200).tolist(), 1, 2, 3, 300, 1501]
    codes = np.repeat(np.arange(len(sizes)), sizes)
    rng.shuffle(codes)
    xy = rng.uniform(0, 5000, (len(codes), 2)) + 3e6
    rows, mean_m, max_m = group_medoids(xy, codes, len(sizes) + 1)  # the last group is empty
    assert rows[-1] == -1 and mean_m[-1] == 0 and max_m[-1] == 0
    for g in range(len(sizes)):
        mine = np.flatnonzero(codes == g)
        i, mean_d, max_d = medoid_distances(xy[mine])
        assert (rows[g], mean_m[g], max_m[g]) == (mine[i], mean_d, max_d)  # the same, bit for bit


def test_a_started_certificate_is_used_only_for_its_own_grids():
    """compute_kpis takes a certificate started earlier (start_certificate, the pipeline's
    overlap with the stages after the grid polygons) only when it was started for the plan's
    grids: started for the same grids, the same kpi.json; started before 台区 moved (as a
    reach repair would move them), ignored and computed anew."""
    p = _plan(per_township=3)
    fresh = compute_kpis(p, lower_bound=3)
    with ThreadPoolExecutor(2) as pool:
        same = compute_kpis(p, lower_bound=3, started=start_certificate(p.transformers, p.params,
                                                                          pool=pool))
        moved = p.transformers.assign(grid_id=np.roll(p.transformers["grid_id"].to_numpy(), 1))
        other = compute_kpis(p, lower_bound=3, started=start_certificate(moved, p.params, pool=pool))
    assert same.kpi == fresh.kpi and other.kpi == fresh.kpi
    assert start_certificate(moved, p.params, pool=None).result() != fresh.kpi["optimality"]


def test_certificate_bounds_not_started_are_taken_over_when_waited_for():
    """The pipeline starts the certificate in spare processes that only get idle cores; when
    the KPI stage waits for it, the townships whose task has not started go to the workers
    (``result(takeover=...)``): the same section as computed at once."""
    p = _plan(per_township=3)
    fresh = compute_kpis(p, lower_bound=3).kpi["optimality"]
    gate = threading.Event()
    with ThreadPoolExecutor(1) as stuck, ThreadPoolExecutor(2) as workers:
        blocker = stuck.submit(gate.wait, 120)  # the spare process is busy: nothing starts there
        try:
            pending = start_certificate(p.transformers, p.params, pool=stuck)
            assert pending.tasks is not None and len(pending.tasks) > 0
            futures = [t[2] for t in pending.tasks]
            assert pending.result(takeover=workers) == fresh
            assert all(f.cancelled() for f in futures)
        finally:
            gate.set()
        assert blocker.result() is True


def test_spare_workers_are_niced():
    base = os.nice(0)
    with worker_pool(2, nice=5) as spare, worker_pool(2) as pool:
        assert spare is not None and pool is not None
        assert spare.submit(os.nice, 0).result() == min(base + 5, 19)
        assert pool.submit(os.nice, 0).result() == base
