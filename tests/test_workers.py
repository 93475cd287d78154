"""``[plan] workers``: the townships' cells, contiguity edges, solves, grid polygons and certificate
bounds in worker processes (issue #16 part 4). The plan must be the same, value for value, for any
number of workers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from _plan_fixtures import small_county

import gridplan
from gridplan import pipeline
from gridplan.lv.territory import PackedCells
from gridplan.pipeline import AUTO_WORKERS_MIN, worker_count, worker_pool
from gridplan.settings import Params

SAMPLE = Path(__file__).resolve().parents[1] / "geodata" / "sample"


def _same(a: gridplan.Plan, b: gridplan.Plan) -> None:
    cols = [c for c in a.transformers.columns if c != "geometry"]
    pd.testing.assert_frame_equal(a.transformers[cols], b.transformers[cols])
    pd.testing.assert_frame_equal(a.grids.drop(columns="geometry"), b.grids.drop(columns="geometry"))
    assert a.grids.geometry.to_wkb().tolist() == b.grids.geometry.to_wkb().tolist()
    pd.testing.assert_frame_equal(a.managers, b.managers)
    assert a.notes == b.notes
    assert json.dumps(a.kpi, sort_keys=True, default=str) == json.dumps(b.kpi, sort_keys=True, default=str)


@pytest.fixture(scope="module")
def sample():
    return gridplan.load_county(SAMPLE)


@pytest.fixture(scope="module")
def serial(sample):
    return gridplan.plan(sample, workers=1)


def test_two_workers_give_the_same_plan(sample, serial):
    assert worker_count(sample.params.replace(workers=2), sample) == 2
    _same(serial, gridplan.plan(sample, workers=2))


def test_a_replan_with_workers_is_the_same(sample, serial):
    moved = gridplan.plan(sample, current=serial, workers=1, capacity=1400)
    _same(moved, gridplan.plan(sample, current=serial, workers=2, capacity=1400))


def test_also_balance_with_workers_is_the_same(sample):
    extra = {"also_balance": {"transformers": 0.2}, "tolerance": 0.08}
    _same(gridplan.plan(sample, workers=1, **extra), gridplan.plan(sample, workers=2, **extra))


def test_worker_count_rules():
    county = small_county()
    assert worker_count(Params(), county) == 1  # the default: none
    assert worker_count(Params(workers=0), county) == 1  # auto: too small a county
    assert worker_count(Params(workers=8), county) == 3  # at most one per township with 台区
    assert worker_count(Params(workers=8, scope="station"), county) == 2
    assert AUTO_WORKERS_MIN >= 10_000
    with pytest.raises(gridplan.InputError, match="workers"):
        Params(workers=-1)


def test_a_pool_runs_tasks_and_none_is_serial():
    with worker_pool(1) as none:
        assert none is None
    with worker_pool(2) as pool:
        assert pool is not None
        assert list(pool.map(np.sqrt, [4.0, 9.0])) == [2.0, 3.0]


# ------------------------------------------------------------ the graph and territory stages in the pool

def _awkward_county():
    """Several townships (one U-shaped, one empty, one in two parts), duplicate 台区, a barrier."""
    from _plan_fixtures import X0, Y0

    county = small_county(n=400, seed=3)
    towns = county.townships.copy()
    t4 = towns["township_id"] == "T4"
    gap = shapely.box(X0 + 20_000, Y0 + 7_000, X0 + 30_000, Y0 + 8_000)
    towns.loc[t4, "geometry"] = towns.loc[t4, "geometry"].difference(gap)  # two parts
    tr = county.transformers
    tr = tr[~tr.intersects(gap)]
    dup = tr.iloc[[0, 0, 5, 200]].copy()  # the same place twice, thrice
    dup["transformer_id"] = [f"DUP{i}" for i in range(len(dup))]
    tr = pd.concat([tr, dup], ignore_index=True)
    river = gpd.GeoDataFrame(geometry=[shapely.LineString([(X0 + 2_000, Y0 - 100), (X0 + 8_000, Y0 + 10_100)])],
                             crs=county.crs)
    return dataclasses.replace(county, townships=towns, transformers=tr, barriers=river)


@pytest.fixture(scope="module")
def awkward():
    county = _awkward_county()
    assert shapely.get_num_geometries(county.townships.geometry.values).max() == 2
    return county


@pytest.fixture(scope="module")
def pool():
    with worker_pool(2) as p:
        yield p


@pytest.mark.parametrize("scope", ["township", "station"])
def test_graph_and_territory_stages_in_a_pool_are_the_same(awkward, pool, scope):
    prm = awkward.params.replace(scope=scope)
    tr = pipeline.workload_stage(awkward, prm)
    alone = pipeline.graph_stage(awkward, tr, prm)
    pooled = pipeline.graph_stage(awkward, tr, prm, pool=pool)
    assert isinstance(pooled.cells, PackedCells)  # done in the workers, not serially
    assert pooled.edges.dtype == alone.edges.dtype
    np.testing.assert_array_equal(pooled.edges, alone.edges)
    assert shapely.to_wkb(np.asarray(pooled.cells)).tolist() == shapely.to_wkb(alone.cells).tolist()
    tr["grid_id"] = pipeline.patches_stage(pipeline.lv_county(awkward), tr, prm, alone.edges).grid_id
    serial = pipeline.territory_stage(awkward, tr, alone.cells)
    assert "空乡" in "".join(serial["townships"])  # the empty township was absorbed
    for cells in (pooled.cells, None):  # the cells' WKB sent on, or drawn in the workers
        grids = pipeline.territory_stage(awkward, tr, cells, pool=pool)
        pd.testing.assert_frame_equal(grids.drop(columns="geometry"), serial.drop(columns="geometry"))
        assert grids.geometry.to_wkb().tolist() == serial.geometry.to_wkb().tolist()
        # the 1 mm precision model came back with the polygons: overlays on them snap the same
        assert shapely.union_all(grids.geometry.values).equals_exact(
            shapely.union_all(serial.geometry.values), 0.0)


def test_packed_cells_decode_as_an_array(awkward, pool):
    prm = awkward.params
    tr = pipeline.workload_stage(awkward, prm)
    packed = pipeline.graph_stage(awkward, tr, prm, pool=pool).cells
    assert len(packed) == len(tr) and sum(len(r) for r in packed.rows) == len(tr)
    cells = np.asarray(packed, dtype=object)
    assert cells is packed.decode()  # decoded once
    assert shapely.area(cells).sum() == pytest.approx(awkward.townships.area.sum() - awkward.townships.area[
        awkward.townships["township_id"] == "T3"].sum())


@pytest.mark.parametrize("scope", ["township", "station"])
def test_a_county_with_awkward_townships_plans_the_same_with_two_workers(awkward, scope):
    extra = {"scope": scope, "capacity": 1500}
    _same(gridplan.plan(awkward, workers=1, **extra), gridplan.plan(awkward, workers=2, **extra))


def test_cells_from_the_workers_serve_the_area_measure_and_the_reach_repair(awkward):
    # the area measure decodes the workers' cells; the reach repair redraws grids from them
    extra = {"also_balance": {"area": 0.5}, "max_travel_min": 8.0, "capacity": 1500}
    one = gridplan.plan(awkward, workers=1, **extra)
    assert one.kpi["reach"]["summary"]["moved_transformers"] > 0
    _same(one, gridplan.plan(awkward, workers=2, **extra))
