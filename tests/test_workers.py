"""``[plan] workers``: the townships' solves and certificate bounds in worker processes (issue #16
part 4). The plan must be the same, value for value, for any number of workers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _plan_fixtures import small_county

import gridplan
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
