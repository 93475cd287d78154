"""``gridplan.plan`` on the shipped sample county: invariants, atomic output, round trip, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from _invariants import assert_grids_connected, assert_plan_invariants, assert_same_plan, kpi_text

import gridplan
from gridplan.pipeline import Plan, read_plan

SAMPLE = Path(__file__).resolve().parents[1] / "geodata" / "sample"


@pytest.fixture(scope="module")
def county():
    return gridplan.load_county(SAMPLE)


@pytest.fixture(scope="module")
def sample_plan(county) -> Plan:
    return gridplan.plan(county)


@pytest.fixture(scope="module")
def written(sample_plan, tmp_path_factory) -> Path:
    """The sample plan written once (without the map: the map has its own tests)."""
    return sample_plan.to_file(tmp_path_factory.mktemp("plan") / "sample", map_html=False)


def test_sample_plan_invariants(sample_plan):
    assert len(sample_plan.transformers) > 2000 and len(sample_plan.grids) > 50
    assert_plan_invariants(sample_plan)
    assert sample_plan.kpi["county"]["over_capacity_grids"] == 0


def test_sample_grid_polygons_are_connected(sample_plan):
    assert_grids_connected(sample_plan)


@pytest.mark.slow
def test_sample_plan_is_deterministic(county, sample_plan, written, tmp_path):
    again = gridplan.plan(county)
    assert_same_plan(sample_plan, again)
    out = again.to_file(tmp_path / "again", map_html=False)
    assert (out / "kpi.json").read_bytes() == (written / "kpi.json").read_bytes()
    names = sorted(str(n) for n, _ in pyogrio.list_layers(written / "plan.gpkg"))
    assert names == sorted(str(n) for n, _ in pyogrio.list_layers(out / "plan.gpkg"))
    for name in names:
        a = pyogrio.read_dataframe(written / "plan.gpkg", layer=name)
        b = pyogrio.read_dataframe(out / "plan.gpkg", layer=name)
        if isinstance(a, gpd.GeoDataFrame):
            assert shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), 0).all(), name
            a, b = a.drop(columns="geometry"), b.drop(columns="geometry")
        pd.testing.assert_frame_equal(a, b, obj=name)


def test_read_plan_round_trip(sample_plan, written):
    back = read_plan(written)
    assert kpi_text(back) == kpi_text(sample_plan)
    assert json.loads((written / "kpi.json").read_text(encoding="utf-8")) == json.loads(kpi_text(sample_plan))
    assert back.crs == sample_plan.crs
    for name, layer in sample_plan.layers().items():
        got = back.layers()[name]
        assert len(got) == len(layer), name
        assert set(got.columns) == set(layer.columns) - {"_row"}, name
        # GeoPackage layers are multi-typed: compare the shapes, not Polygon vs MultiPolygon.
        diff = shapely.symmetric_difference(got.geometry.to_numpy(), layer.geometry.to_numpy())
        assert (shapely.area(diff) <= 1e-6 * np.maximum(layer.geometry.area.to_numpy(), 1.0)).all(), name
    for col in ("transformer_id", "grid_id", "manager_id"):
        assert back.transformers[col].tolist() == sample_plan.transformers[col].tolist()
    for col in ("grid_id", "township_id", "station_id", "manager_id", "n_transformers", "flags"):
        assert back.grids[col].tolist() == sample_plan.grids[col].tolist(), col
    pd.testing.assert_series_equal(back.grids["workload"], sample_plan.grids["workload"],
                                   check_dtype=False, check_names=False)
    assert back.managers["manager_id"].tolist() == sample_plan.managers["manager_id"].tolist()
    assert back.params == sample_plan.params


def _broken_map(*args, **kwargs):
    raise RuntimeError("map step failed")


@pytest.mark.slow
def test_to_file_failure_writes_nothing(sample_plan, tmp_path, monkeypatch):
    monkeypatch.setattr("gridplan.render.map.save_map", _broken_map)
    out = tmp_path / "new"
    with pytest.raises(RuntimeError, match="map step failed"):
        sample_plan.to_file(out)
    assert list(tmp_path.iterdir()) == []  # no out folder, no temporary folder beside it


@pytest.mark.slow
def test_to_file_failure_keeps_the_older_output(sample_plan, tmp_path, monkeypatch):
    # Issue #11: the older output must be a gridplan output (a folder of other files is refused).
    out = tmp_path / "old"
    sample_plan.to_file(out, map_html=False, roster=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    monkeypatch.setattr("gridplan.render.map.save_map", _broken_map)
    with pytest.raises(RuntimeError):
        sample_plan.to_file(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*before, "notes.txt"])
    assert {n: (out / n).read_bytes() for n in before} == before
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_to_file_replaces_an_older_output(sample_plan, tmp_path):
    # Issue #11 changed this test: an older *gridplan* output is replaced, and only its files;
    # a file the user put there is kept (it used to be deleted).
    out = tmp_path / "old"
    sample_plan.to_file(out, map_html=False, roster=True)
    (out / "stale.txt").write_text("the user's", encoding="utf-8")
    sample_plan.to_file(out, map_html=False, roster=False)
    assert sorted(p.name for p in out.iterdir()) == [".gridplan-manifest.json", "kpi.json",
                                                     "plan.gpkg", "stale.txt"]
    assert (out / "stale.txt").read_text(encoding="utf-8") == "the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


def test_to_file_refuses_a_folder_it_did_not_write(sample_plan, tmp_path):
    from gridplan.files import OutputError

    out = tmp_path / "theirs"
    out.mkdir()
    (out / "stale.txt").write_text("the user's", encoding="utf-8")
    with pytest.raises(OutputError, match="not an earlier gridplan output"):
        sample_plan.to_file(out, map_html=False, roster=False)
    assert [p.name for p in out.iterdir()] == ["stale.txt"]
