import numpy as np
import shapely
from _plan_fixtures import small_county, split_grids

from gridplan.lv.territory import grid_polygons, township_cells


def _grids():
    county = small_county()
    tr = county.transformers.assign(grid_id=split_grids(county))
    return county, tr, grid_polygons(county, tr)


def test_grids_tile_every_township_without_gaps_or_overlaps():
    county, _, grids = _grids()
    total = county.townships.geometry.union_all()
    union = shapely.union_all(grids.geometry.values)
    assert abs(union.area - total.area) < 1e-6 * total.area
    assert abs(grids.geometry.area.sum() - total.area) < 1e-6 * total.area  # no overlaps


def test_each_grid_is_one_polygon_in_a_single_part_township():
    _, _, grids = _grids()
    assert (shapely.get_num_geometries(grids.geometry.values) == 1).all()


def test_grid_stays_in_its_township_except_absorbed_empty_ones():
    county, tr, grids = _grids()
    towns = county.townships.set_index("township_id")
    for g in grids.itertuples():
        own = towns.geometry.loc[g.township_id]
        if "空乡" in g.townships:
            own = own.union(towns.geometry.loc["T3"])
        assert g.geometry.difference(own).area < 1e-3


def test_township_without_transformers_joins_a_grid_of_its_station():
    _, _, grids = _grids()
    holder = grids[grids["townships"].str.contains("空乡")]
    assert len(holder) == 1
    assert holder["station_id"].iloc[0] == "S1"


def test_every_transformer_lies_in_its_grid():
    _, tr, grids = _grids()
    g = grids.set_index("grid_id").geometry
    inside = [g.loc[row.grid_id].buffer(1e-6).contains(row.geometry) for row in tr.itertuples()]
    assert all(inside)


def test_cells_of_duplicate_and_collinear_points():
    town = shapely.box(0, 0, 100, 100)
    cells = township_cells(town, np.array([[10.0, 50], [10.0, 50], [90, 50]]))
    assert cells[1].is_empty and abs(cells[0].area + cells[2].area - 10_000) < 1e-6
    cells = township_cells(town, np.array([[10.0, 10], [50, 50], [90, 90]]))
    assert abs(sum(c.area for c in cells) - 10_000) < 1e-6
    assert township_cells(town, np.array([[5.0, 5.0]]))[0].equals(town)


def test_station_scope_grid_spanning_townships_is_one_row():
    county = small_county()
    tr = county.transformers.copy()
    tr["grid_id"] = tr["station_id"] + "-01"  # one grid per station, across its townships
    grids = grid_polygons(county, tr)
    assert grids["grid_id"].is_unique and len(grids) == 2
    s1 = grids.set_index("grid_id").loc["S1-01"]
    assert "东镇" in s1["townships"] and "西乡" in s1["townships"]
    total = county.townships.geometry.union_all()
    assert abs(grids.geometry.area.sum() - total.area) < 1e-6 * total.area
