"""高压到段 on a real medium-voltage grid: mv_oberrhein planned end to end and drawn on the map."""

from pathlib import Path

import pytest

import gridplan
from gridplan.render.map import make_map

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
NET = SHARED / "networks" / "mv_oberrhein"

pytestmark = pytest.mark.skipif(not NET.exists(), reason="../shared/data not present (only in the dev workspace)")


@pytest.fixture(scope="module")
def plan():
    from gridplan.io import from_network_geojson

    county = from_network_geojson(NET)
    return gridplan.plan(county, segment_cap_km=5)


def test_every_transformer_attached_and_every_line_in_one_segment(plan):
    tr = plan.transformers
    assert tr["segment_id"].notna().all()
    assert set(tr["segment_id"]) <= set(plan.segments["segment_id"])
    hv = plan.kpi["hv"]
    assert hv["unattached_transformers"] == 0 and hv["loops"] == 0
    assert abs(plan.segments["length_km"].sum() - hv["feeder_length_km"]) < 1e-6
    assert plan.segments["length_km"].max() <= 5 + 1e-9


def test_segments_have_owners_from_the_grids(plan):
    s = plan.segments
    assert s["grid_id"].isin(plan.grids["grid_id"]).all()
    owner = plan.grids.set_index("grid_id")["manager_id"]
    assert (s["manager_id"] == s["grid_id"].map(owner)).all()
    assert s["share_in_grid"].between(0, 1).all()


def test_segments_and_switches_are_drawn_on_the_map(plan):
    html = make_map(plan, basemap="none").get_root().render()
    assert "10kV线路" in html and "开关" in html
    assert plan.county.switches is not None and len(plan.county.switches) == 6  # the 6 open sectioning switches
    for sw in plan.county.switches["switch_id"]:
        assert sw in html
    for sid in plan.segments["segment_id"].head(5):
        assert sid in html
