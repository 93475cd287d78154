import numpy as np
import shapely
from _plan_fixtures import small_county, split_grids

from gridplan.lv.territory import (
    _round_half_up,
    _strictly_convex,
    dissolve_groups,
    dissolve_wkb_groups,
    grid_polygons,
    snap_to_grid,
    snap_wkb_to_grid,
    township_cells,
)


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


def _cells_of_every_kind() -> np.ndarray:
    """Cells of a township with a hole, then an empty one, None, a multipolygon, a hole, slivers."""
    rng = np.random.default_rng(3)
    pts = rng.uniform(0, 2000, (300, 2)) + [412_345.6789, 3_301_234.5678]
    town = shapely.box(*pts.min(axis=0) - 50, *pts.max(axis=0) + 50).difference(
        shapely.Point(pts.mean(axis=0)).buffer(300))  # a hole: cells around it are not convex
    cells = list(township_cells(town, pts))
    x0, y0 = 412_000.0, 3_300_000.0
    cells += [
        shapely.Polygon(),  # empty
        None,
        shapely.MultiPolygon([shapely.box(x0, y0, x0 + 1, y0 + 1), shapely.box(x0 + 2, y0, x0 + 3, y0 + 1)]),
        shapely.box(x0, y0, x0 + 10, y0 + 10).difference(shapely.box(x0 + 4, y0 + 4, x0 + 6, y0 + 6)),
        shapely.Polygon([(x0, y0), (x0 + 10, y0), (x0 + 5, y0 + 0.0003)]),  # collapses when rounded
        shapely.Polygon([(x0, y0), (x0 + 10, y0), (x0 + 10, y0 + 10), (x0 + 5, y0 + 0.0004),
                         (x0, y0 + 10)]),  # a sliver notch: rounding makes it touch itself
        shapely.Polygon([(-0.0004, -0.0004), (0.0015, -0.0005), (0.0025, 0.0025), (-0.0005, 0.0015)]),
    ]
    return np.array(cells, dtype=object)


def test_snapping_in_the_wkb_gives_the_coordinates_of_set_precision():
    """snap_wkb_to_grid: the same geometries (WKB) as snap_to_grid, for every kind of record."""
    geoms = _cells_of_every_kind()
    want = shapely.to_wkb(snap_to_grid(geoms, grid_size=0.001))
    got = shapely.to_wkb(snap_wkb_to_grid(shapely.to_wkb(geoms), grid_size=0.001))
    assert list(got) == list(want)


def test_dissolving_from_wkb_gives_the_polygons_of_dissolve_groups():
    """Groups of cells, with empty, missing and invalid members and a line (a full union)."""
    geoms = _cells_of_every_kind()
    geoms = np.append(geoms, shapely.LineString([(412_000.0, 3_300_000.0), (412_001.0, 3_300_000.0)]))
    group = np.random.default_rng(5).integers(0, 40, len(geoms))
    group[-9:] = 40 + np.arange(9)  # each odd record on its own
    group[-3:] = 7  # and with others
    want = dissolve_groups(snap_to_grid(geoms, grid_size=0.001), group, 49, grid_size=0.001)
    got = dissolve_wkb_groups(shapely.to_wkb(geoms), group, 49, grid_size=0.001)
    assert list(shapely.to_wkb(got)) == list(shapely.to_wkb(want))


def test_strictly_convex_rings():
    rings = [[(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)],  # counter-clockwise
             [(0, 0), (0, 1), (1, 1), (1, 0), (0, 0)],  # clockwise
             [(np.cos(a), np.sin(a)) for a in np.arange(6) * 4 * np.pi / 5],  # a pentagram: twice around
             [(0, 0), (2, 0), (1, 0), (1, 1), (0, 0)],  # a spike
             [(0, 0), (2, 0), (1, 0.5), (2, 1), (0, 1), (0, 0)],  # not convex
             [(0, 0), (1, 0), (1, 0), (1, 1), (0, 0)],  # a repeated point
             [(0, 0), (1, 0), (0.5, 1e-12), (0, 0)]]  # all but flat
    rings[2][-1] = rings[2][0]
    coords = np.concatenate([np.asarray(r, dtype=float) for r in rings])
    got = _strictly_convex(coords, np.array([len(r) for r in rings]))
    assert got.tolist() == [True, True, False, False, False, False, False]


def test_rounding_is_the_rounding_of_set_precision():
    """_round_half_up(x * 1000) / 1000: set_precision's coordinates, half-way values and -0.0 too."""
    rng = np.random.default_rng(7)
    half = (np.arange(-5000, 5000) + 0.5) / 1000
    x = np.concatenate([rng.uniform(3e5, 5e5, 20000), rng.uniform(3.2e6, 3.4e6, 20000),
                        rng.uniform(-1e3, 1e3, 20000), half, np.nextafter(half, 1), np.nextafter(half, -1),
                        (np.arange(3_300_000_000, 3_300_010_000) + 0.5) / 1000, [0.0, -0.0, 0.0005, -0.0005]])
    want = shapely.get_coordinates(shapely.set_precision(shapely.points(np.column_stack([x, x])), 0.001,
                                                         mode="pointwise"))[:, 0]
    got = _round_half_up(x * 1000.0) / 1000.0
    assert (got.view(np.int64) == want.view(np.int64)).all()  # bit for bit
