"""The shape of the package (issue #12): one error hierarchy, a frozen Plan, stages that return values."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import pkgutil
import warnings

import pandas as pd
import pytest
from _plan_fixtures import small_county, split_grids

import gridplan
from gridplan import files, model, output
from gridplan.errors import GridplanError
from gridplan.lv.territory import grid_polygons
from gridplan.metrics.kpi import KpiResult, compute_kpis
from gridplan.model import Plan, make_plan
from gridplan.people.assign import assign_managers
from gridplan.pipeline import with_kpis
from gridplan.replan import store

# Optional heavy dependencies some modules need at import time (skipped when not installed).
OPTIONAL = {"gridplan.edit.server": "starlette", "gridplan.scale.many": "distributed"}


def _modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(gridplan.__path__, "gridplan.")
             if "_vendor" not in m.name]
    return sorted(n for n in names if n not in OPTIONAL or importlib.util.find_spec(OPTIONAL[n]))


def test_every_gridplan_exception_is_a_gridplan_error() -> None:
    found = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in _modules():
            mod = importlib.import_module(name)
            for cls_name, cls in inspect.getmembers(mod, inspect.isclass):
                if cls.__module__ == name and issubclass(cls, BaseException):
                    found[f"{name}.{cls_name}"] = cls
    assert "gridplan.io.FileKindError" in found and "gridplan.files.OutputError" in found
    outside = sorted(n for n, cls in found.items() if not issubclass(cls, GridplanError))
    assert not outside, f"exceptions outside GridplanError: {outside}"


def _draft() -> Plan:
    county = small_county()
    tr = county.transformers.assign(grid_id=split_grids(county, 2),
                                    workload=county.transformers["customers"].astype(float))
    grids, managers, notes = assign_managers(grid_polygons(county, tr), tr, county, params=county.params)
    tr["manager_id"] = tr["grid_id"].map(grids.set_index("grid_id")["manager_id"])
    return make_plan(county=county, params=county.params, transformers=tr, grids=grids,
                     managers=managers, notes=notes)


def test_a_plan_is_frozen_and_compute_kpis_writes_nothing_into_it() -> None:
    draft = _draft()
    grid_columns, notes = list(draft.grids.columns), list(draft.notes)
    grids_before = draft.grids.copy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        draft.kpi = {}  # type: ignore[misc]
    res = compute_kpis(draft, lower_bound=3)
    assert isinstance(res, KpiResult)
    assert list(draft.grids.columns) == grid_columns and draft.notes == notes and draft.kpi == {}
    pd.testing.assert_frame_equal(draft.grids, grids_before)
    assert {"polsby_popper", "mean_dist_m", "max_dist_m", "contiguous", "balance"} <= set(res.grid_columns)
    assert res.grid_columns.index.equals(draft.grids.index)
    p = with_kpis(draft, res)
    assert p is not draft and p.kpi is res.kpi and p.notes == [*notes, *res.notes]
    assert res.kpi["notes"] == p.notes
    assert (p.grids["polsby_popper"] == res.grid_columns["polsby_popper"]).all()


def test_make_plan_counts_the_grid_numbers_of_its_grids() -> None:
    draft = _draft()
    again = make_plan(county=draft.county, params=draft.params, transformers=draft.transformers,
                      grids=draft.grids, managers=draft.managers, grid_numbers={"T1": 7, "T9": 2})
    assert again.grid_numbers["T1"] == 7 and again.grid_numbers["T9"] == 2
    assert again.grid_numbers["T2"] == draft.grid_numbers["T2"] >= 1


def test_plan_to_file_goes_through_the_registered_writer() -> None:
    assert model._output() is output
    assert callable(Plan.to_file) and callable(Plan.write_into)


def test_a_killed_store_version_is_resolved_through_the_registered_recovery() -> None:
    assert files._RECOVERY["store"] is store.recover_store
