import numpy as np
from _plan_fixtures import small_county, split_grids

from gridplan.lv.territory import grid_polygons
from gridplan.people.assign import assign_managers


def _run(county, per_township=1):
    tr = county.transformers.assign(grid_id=split_grids(county, per_township), workload=county.transformers["customers"].astype(float))
    grids = grid_polygons(county, tr)
    return assign_managers(grids, tr, county, params=county.params)


def test_one_manager_per_grid_and_homes_nearest():
    county = small_county()
    grids, managers, notes = _run(county)
    assert grids["manager_id"].is_unique
    # M1 lives in T1's corner, M2 near T2, M3 in T4: the exact assignment keeps each at home.
    got = dict(zip(grids["township_id"], grids["manager_id"]))
    assert got == {"T1": "M1", "T2": "M2", "T4": "M3"}
    assert not grids["placeholder"].any() and notes == []


def test_shortage_gets_placeholders_and_is_reported():
    county = small_county()
    grids, managers, notes = _run(county, per_township=2)  # 6 grids, 3 managers
    assert grids["placeholder"].sum() == 3
    assert any("缺" in n and "S1" in n for n in notes)
    assert set(managers.loc[~managers["placeholder"], "manager_id"]) == {"M1", "M2", "M3"}


def test_max_workload_is_respected():
    county = small_county()
    county.managers.loc[county.managers["manager_id"] == "M1", "max_workload"] = 1.0
    grids, managers, notes = _run(county)
    assert "M1" not in set(grids["manager_id"])
    assert any("未分配" in n for n in notes)


def test_current_manager_is_kept_when_stability_weighs():
    county = small_county()
    tr = county.transformers
    # M2 currently looks after every 台区 of T1 although M1 lives closer.
    county.transformers["current_manager_id"] = np.where(tr["township_id"] == "T1", "M2", "M1")
    grids, _, _ = _run(county)
    assert dict(zip(grids["township_id"], grids["manager_id"]))["T1"] == "M2"


def test_no_roster_means_placeholders():
    county = small_county(managers=False)
    grids, managers, notes = _run(county)
    assert grids["placeholder"].all() and managers["placeholder"].all()
    assert any("名册" in n for n in notes)
