"""Tests of gridplan.lv.partition: the solver's invariants and plan_patches on small counties."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import CRS

from gridplan.lv.graph import components, neighbour_edges
from gridplan.lv.partition import balanced_contiguous, grid_count
from gridplan.lv.patches import PatchResult, plan_patches
from gridplan.model import County
from gridplan.settings import Params


def _n_broken(labels, edges, k):
    broken = 0
    for j in range(k):
        idx = np.flatnonzero(labels == j)
        loc = {v: i for i, v in enumerate(idx)}
        sub = np.array([[loc[a], loc[b]] for a, b in edges if a in loc and b in loc]).reshape(-1, 2)
        broken += int(components(len(idx), sub).max() > 0)
    return broken


def _instance(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 2)) * 5000, rng.integers(1, 101, n).astype(float)


def test_contiguous_balanced_and_compact():
    xy, w = _instance(1000)
    k = 20
    e = neighbour_edges(xy)
    lab = balanced_contiguous(xy, w, k, edges=e)
    assert sorted(set(lab.tolist())) == list(range(k))
    assert _n_broken(lab, e, k) == 0
    load = np.bincount(lab, w, k)
    assert load.std() / load.mean() <= 0.01
    assert np.abs(load / load.mean() - 1).max() <= 0.05


def test_deterministic_for_a_seed():
    xy, w = _instance(600, seed=3)
    a = balanced_contiguous(xy, w, 12, seed=5)
    b = balanced_contiguous(xy, w, 12, seed=5)
    assert np.array_equal(a, b)


def test_time_limit_returns_a_valid_plan_and_warns(caplog):
    xy, w = _instance(3000, seed=4)
    e = neighbour_edges(xy)
    with caplog.at_level(logging.WARNING, logger="gridplan.lv.partition"):
        lab = balanced_contiguous(xy, w, 60, edges=e, time_limit=0.0)
    assert "time limit" in caplog.text
    assert len(set(lab.tolist())) == 60
    assert _n_broken(lab, e, 60) == 0


def test_disconnected_graph_is_a_clear_error():
    xy = np.array([[0.0, 0], [1, 0], [0, 1], [100, 100], [101, 100], [100, 101]])
    e = np.array([[0, 1], [1, 2], [3, 4], [4, 5]])
    with pytest.raises(ValueError, match="disconnected"):
        balanced_contiguous(xy, np.ones(6), 2, edges=e)


def test_bad_arguments():
    xy, w = _instance(10)
    with pytest.raises(ValueError, match="k must be"):
        balanced_contiguous(xy, w, 11)
    with pytest.raises(ValueError, match="weights"):
        balanced_contiguous(xy, -w, 2)


def test_trivial_k():
    xy, w = _instance(7)
    assert balanced_contiguous(xy, w, 1).tolist() == [0] * 7
    assert sorted(balanced_contiguous(xy, w, 7).tolist()) == list(range(7))


def test_grid_count_adds_one_when_the_balanced_mean_is_too_close_to_capacity():
    assert grid_count(1000, 500, 0.05, 100) == 3  # 2 grids of 500 leave no room for +5%
    assert grid_count(900, 500, 0.05, 100) == 2
    assert grid_count(900, 500, 0.05, 1) == 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(40, 250), k=st.integers(2, 6), seed=st.integers(0, 10_000),
       clustered=st.booleans())
def test_property_labels_contiguity_balance(n, k, seed, clustered):
    rng = np.random.default_rng(seed)
    if clustered:
        c = rng.random((4, 2)) * 1000
        xy = c[rng.integers(4, size=n)] + rng.normal(scale=60, size=(n, 2))
    else:
        xy = rng.random((n, 2)) * 1000
    w = rng.integers(1, 4, n).astype(float)  # fine units: the tolerance is reachable
    e = neighbour_edges(xy)
    lab = balanced_contiguous(xy, w, k, edges=e, seed=seed)
    assert sorted(set(lab.tolist())) == list(range(k))
    assert _n_broken(lab, e, k) == 0
    load = np.bincount(lab, w, k)
    if w.max() <= 0.02 * load.mean():
        assert np.abs(load / load.mean() - 1).max() <= 0.05 + 1e-9


# ---------------------------------------------------------------- plan_patches on a small county

def _square(x0, y0, size):
    return shapely.box(x0, y0, x0 + size, y0 + size)


def _county(points_per_town=(120, 40), *, barriers=None, managers=None, extra=()):
    """Townships T1, T2 (10 km squares side by side) of station S1, random 台区 in each."""
    rng = np.random.default_rng(7)
    crs = CRS.from_epsg(4547)
    towns = gpd.GeoDataFrame(
        {"township_id": ["T1", "T2"], "name": ["东镇", "西镇"], "station_id": ["S1", "S1"],
         "area_class": ["农村", "农村"]},
        geometry=[_square(500_000, 3_000_000, 10_000), _square(510_000, 3_000_000, 10_000)], crs=crs)
    stations = gpd.GeoDataFrame({"station_id": ["S1"], "name": ["城关所"], "kind": ["供电所"],
                                 "parent_id": [None]},
                                geometry=[shapely.Point(505_000, 3_005_000)], crs=crs)
    rows = []
    for (tid, x0), m in zip([("T1", 500_000), ("T2", 510_000)], points_per_town):
        for i in range(m):
            rows.append((f"{tid}-{i:03d}", tid, x0 + 100 + rng.random() * 9800,
                         3_000_100 + rng.random() * 9800, int(rng.integers(20, 120))))
    rows += list(extra)
    df = pd.DataFrame(rows, columns=["transformer_id", "township_id", "x", "y", "customers"])
    tr = gpd.GeoDataFrame(df.drop(columns=["x", "y"]).assign(
        name=df["transformer_id"], capacity_kva=200.0, feeder_id=None, status="运行",
        station_id="S1", village=None), geometry=gpd.points_from_xy(df["x"], df["y"]), crs=crs)
    return County(name="测试县", crs=crs, townships=towns, stations=stations, transformers=tr,
                  barriers=barriers, managers=managers)


def _check_patches(county, res, w):
    assert isinstance(res, PatchResult)
    assert len(res.grid_id) == len(county.transformers)
    assert all(g.startswith(t + "-") for g, t in zip(res.grid_id, county.transformers["township_id"]))
    xy = np.column_stack([county.transformers.geometry.x, county.transformers.geometry.y])
    e = neighbour_edges(xy, groups=county.transformers["township_id"].to_numpy(),
                        barriers=county.barriers)
    ids, lab = np.unique(res.grid_id, return_inverse=True)
    return ids, lab, e


def test_plan_patches_small_county():
    county = _county()
    w = county.transformers["customers"].to_numpy(float)
    params = Params(capacity=1500, tolerance=0.05)
    res = plan_patches(county, w, params=params)
    ids, lab, e = _check_patches(county, res, w)
    t1 = w[county.transformers["township_id"] == "T1"].sum()
    t2 = w[county.transformers["township_id"] == "T2"].sum()
    assert res.lower_bound == int(np.ceil(t1 / 1500) + np.ceil(t2 / 1500))
    assert len(ids) == grid_count(t1, 1500, 0.05, 120) + grid_count(t2, 1500, 0.05, 40)
    assert _n_broken(lab, e, len(ids)) == 0
    load = np.bincount(lab, w)
    assert (load <= 1500).all()
    assert "T1-01" in ids and "T2-01" in ids
    # deterministic
    again = plan_patches(county, w, params=params)
    assert np.array_equal(res.grid_id, again.grid_id)


def test_heavy_unit_becomes_its_own_flagged_grid():
    heavy = ("T1-BIG", "T1", 505_000.0, 3_005_000.0, 5000)
    county = _county(extra=[heavy])
    w = county.transformers["customers"].to_numpy(float)
    res = plan_patches(county, w, params=Params(capacity=1500))
    gid = res.grid_id[county.transformers["transformer_id"] == "T1-BIG"][0]
    assert (res.grid_id == gid).sum() == 1
    assert res.flags == {gid: "heavy-unit"}
    assert any("T1-BIG" in note and "heavy-unit" in note for note in res.notes)


def test_islands_and_barriers_are_planned_separately_and_reported():
    # a river splits T1 in two: its 台区 graph has two components
    river = gpd.GeoDataFrame(geometry=[shapely.LineString([(505_000, 2_999_000),
                                                           (505_000, 3_011_000)])], crs=4547)
    county = _county(barriers=river)
    w = county.transformers["customers"].to_numpy(float)
    res = plan_patches(county, w, params=Params(capacity=1500))
    ids, lab, e = _check_patches(county, res, w)
    assert _n_broken(lab, e, len(ids)) == 0
    x = county.transformers.geometry.x.to_numpy()
    t1 = (county.transformers["township_id"] == "T1").to_numpy()
    for gid in ids[np.char.startswith(ids.astype(str), "T1-")]:
        side = x[res.grid_id == gid] < 505_000
        assert side.all() or not side.any()  # no grid crosses the river
    assert any("东镇(T1)" in note and "互不相连" in note for note in res.notes)
    assert t1.any()


def test_grids_from_roster():
    managers = gpd.GeoDataFrame({"manager_id": ["M1", "M2", "M3", "M4"], "name": list("甲乙丙丁"),
                                 "phone": [""] * 4, "station_id": ["S1"] * 4,
                                 "max_workload": [np.nan] * 4}, geometry=[None] * 4, crs=4547)
    county = _county(managers=managers)
    w = county.transformers["customers"].to_numpy(float)
    res = plan_patches(county, w, params=Params(capacity=1500, grids_from_roster=True))
    assert len(set(res.grid_id.tolist())) == 4
    assert {g.split("-")[0] for g in res.grid_id} == {"T1", "T2"}


def test_fewer_managers_than_townships_is_noted():
    managers = gpd.GeoDataFrame({"manager_id": ["M1"], "name": ["甲"], "phone": [""],
                                 "station_id": ["S1"], "max_workload": [np.nan]},
                                geometry=[None], crs=4547)
    county = _county(managers=managers)
    w = county.transformers["customers"].to_numpy(float)
    res = plan_patches(county, w, params=Params(capacity=1500, grids_from_roster=True))
    assert len(set(res.grid_id.tolist())) == 2
    assert any("少于" in note for note in res.notes)


def test_station_scope_lets_townships_share_a_grid():
    county = _county(points_per_town=(15, 10))
    w = county.transformers["customers"].to_numpy(float)
    res = plan_patches(county, w, params=Params(capacity=5000, scope="station"))
    assert set(res.grid_id.tolist()) == {"S1-01"}


# ------------------------------------------------------------------ warm starts, pins, stability

def _plan_and_heavier(n=1000, k=20, seed=0):
    """A plan, and the same points with 100 units made 3x heavier (the plan is now unbalanced)."""
    xy, w = _instance(n, seed=seed)
    e = neighbour_edges(xy)
    base = balanced_contiguous(xy, w, k, edges=e)
    w2 = w.copy()
    w2[:100] *= 3
    return xy, w2, e, base, k


def test_fixed_units_never_move_and_parts_stay_contiguous():
    xy, w, e, base, k = _plan_and_heavier()
    fixed = np.zeros(len(xy), bool)
    fixed[np.random.default_rng(1).choice(len(xy), 80, replace=False)] = True
    lab = balanced_contiguous(xy, w, k, edges=e, initial=base, fixed=fixed)
    assert np.array_equal(lab[fixed], base[fixed])
    assert sorted(set(lab.tolist())) == list(range(k))
    assert _n_broken(lab, e, k) == 0


def test_far_apart_pins_of_one_label_are_joined():
    xy, w = _instance(600, seed=2)
    e = neighbour_edges(xy)
    init = balanced_contiguous(xy, w, 12, edges=e)
    a, b = int(np.argmin(xy[:, 0])), int(np.argmax(xy[:, 0]))
    init[[a, b]] = 3
    fixed = np.zeros(len(xy), bool)
    fixed[[a, b]] = True
    lab = balanced_contiguous(xy, w, 12, edges=e, initial=init, fixed=fixed)
    assert lab[a] == lab[b] == 3
    assert _n_broken(lab, e, 12) == 0


def test_pins_that_cannot_be_joined_raise_naming_units_and_label():
    from gridplan import InfeasibleError
    xy = np.column_stack([np.arange(6.0) * 100, np.zeros(6)])  # a path 0-1-2-3-4-5
    e = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]])
    init = np.array([0, -1, 1, -1, 0, -1])
    fixed = np.array([True, False, True, False, True, False])
    with pytest.raises(InfeasibleError, match=r"label 0: units \[0, 4\]") as err:
        balanced_contiguous(xy, np.ones(6), 2, edges=e, initial=init, fixed=fixed)
    assert err.value.pins == [(0, [0, 4])]


def test_large_move_cost_moves_few_units_and_restores_balance():
    xy, w, e, base, k = _plan_and_heavier()
    free = balanced_contiguous(xy, w, k, edges=e, initial=base)
    sticky = balanced_contiguous(xy, w, k, edges=e, initial=base, move_cost=1e6)
    assert (sticky != base).sum() < 0.5 * (free != base).sum()
    for lab in (free, sticky):
        load = np.bincount(lab, w, k)
        assert np.abs(load / load.mean() - 1).max() <= 0.05 + 1e-9
        assert _n_broken(lab, e, k) == 0


def test_warm_start_keeps_labels_and_fills_unlabelled_units():
    xy, w = _instance(800, seed=6)
    e = neighbour_edges(xy)
    base = balanced_contiguous(xy, w, 16, edges=e)
    init = base.copy()
    init[::3] = -1
    lab = balanced_contiguous(xy, w, 16, edges=e, initial=init, move_cost=1e6)
    assert (lab >= 0).all() and _n_broken(lab, e, 16) == 0
    assert (lab == base).mean() > 0.9  # same label meaning as the initial plan, not renumbered


def test_warm_start_arguments_are_checked():
    xy, w = _instance(10)
    with pytest.raises(ValueError, match="initial labels must be in -1..1"):
        balanced_contiguous(xy, w, 2, initial=np.full(10, 5))
    with pytest.raises(ValueError, match="fixed needs initial"):
        balanced_contiguous(xy, w, 2, fixed=np.ones(10, bool))
    with pytest.raises(ValueError, match="move_cost needs initial"):
        balanced_contiguous(xy, w, 2, move_cost=5.0)
    with pytest.raises(ValueError, match="rows \\[0\\] have -1"):
        balanced_contiguous(xy, w, 2, initial=np.r_[-1, np.zeros(9, int)],
                            fixed=np.r_[True, np.zeros(9, bool)])
