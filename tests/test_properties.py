"""Property tests (hypothesis): the plan invariants hold on random small counties.

Each example is a 20 km square cut into townships (a random grid of rectangles, or the Voronoi
cells of random seeds), served by 1-3 stations, with random 台区 (skewed household counts) inside
and a random capacity; some townships may have no 台区 and some 台区 may alone exceed the
capacity. Counties are built directly as :class:`gridplan.County` objects (no files).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from _invariants import assert_grids_connected, assert_plan_invariants, assert_same_plan
from _plan_fixtures import CRS_M, X0, Y0
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gridplan
from gridplan.model import County
from gridplan.settings import Params

SIDE = 20_000.0
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _rectangles(rng: np.random.Generator, nx: int, ny: int) -> list[shapely.Polygon]:
    def cuts(n: int) -> np.ndarray:
        inner = np.sort(rng.uniform(0.15, 0.85, n - 1)) * SIDE if n > 1 else np.empty(0)
        return np.concatenate([[0.0], np.round(inner, 1), [SIDE]])
    xs, ys = cuts(nx), cuts(ny)
    return [shapely.box(X0 + xs[i], Y0 + ys[j], X0 + xs[i + 1], Y0 + ys[j + 1])
            for j in range(ny) for i in range(nx)]


def _voronoi(rng: np.random.Generator, n: int) -> list[shapely.Polygon]:
    square = shapely.box(X0, Y0, X0 + SIDE, Y0 + SIDE)
    seeds = shapely.multipoints(np.column_stack([X0 + rng.uniform(0, SIDE, n), Y0 + rng.uniform(0, SIDE, n)]))
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=square, ordered=True))
    return [c for c in shapely.intersection(cells, square) if c.area > 0]


def random_county(seed: int, *, layout: str, n_towns: int, n_stations: int, n_transformers: int,
                  capacity: float) -> County:
    """A random county in metres (see the module docstring)."""
    rng = np.random.default_rng(seed)
    if layout == "grid":
        nx = int(rng.integers(1, n_towns + 1))
        polys = _rectangles(rng, nx, max(1, n_towns // nx))
    else:
        polys = _voronoi(rng, n_towns)
    k = len(polys)
    ids = [f"T{i + 1:02d}" for i in range(k)]
    n_stations = min(n_stations, k)
    station_of = [f"S{1 + i * n_stations // k}" for i in range(k)]  # neighbouring ids per station
    towns = gpd.GeoDataFrame({"township_id": ids, "name": [f"{i}镇" for i in ids],
                              "station_id": station_of, "area_class": "农村"}, geometry=polys, crs=CRS_M)
    sids = sorted(set(station_of))
    st_pts = [towns[towns["station_id"] == s].geometry.iloc[0].representative_point() for s in sids]
    stations = gpd.GeoDataFrame({"station_id": sids, "name": [f"{s}供电所" for s in sids],
                                 "kind": "供电所", "parent_id": None}, geometry=st_pts, crs=CRS_M)
    # Some townships hold no 台区: points fall only in a random non-empty subset of them.
    live = rng.random(k) < 0.85
    live[int(rng.integers(k))] = True
    xy = np.column_stack([X0 + rng.uniform(0, SIDE, 40 * n_transformers),
                          Y0 + rng.uniform(0, SIDE, 40 * n_transformers)])
    pts = shapely.points(xy)
    hit = shapely.STRtree(polys).query(pts, predicate="within")
    where = np.full(len(pts), -1)
    where[hit[0]] = hit[1]
    keep = np.flatnonzero((where >= 0) & live[np.maximum(where, 0)])[:n_transformers]
    cust = np.clip(np.round(rng.lognormal(4.3, 0.8, len(keep))), 1, 900).astype(np.int64)
    tr = gpd.GeoDataFrame({
        "transformer_id": [f"TQ{i:04d}" for i in range(len(keep))],
        "name": [f"{i}号台区" for i in range(len(keep))], "customers": cust,
        "capacity_kva": rng.choice([100.0, 200.0, 315.0, 400.0], len(keep)), "feeder_id": None,
        "status": "运行", "township_id": [ids[j] for j in where[keep]], "village": None,
    }, geometry=pts[keep], crs=CRS_M)
    tr["station_id"] = tr["township_id"].map(dict(zip(ids, station_of)))
    return County(name="随机县", crs=CRS_M, townships=towns, stations=stations, transformers=tr,
                  params=Params(capacity=capacity, workload="customers"))


counties = st.builds(
    random_county,
    seed=st.integers(0, 2**31 - 1),
    layout=st.sampled_from(["grid", "voronoi"]),
    n_towns=st.integers(1, 7),
    n_stations=st.integers(1, 3),
    n_transformers=st.integers(1, 90),
    capacity=st.sampled_from([400.0, 900.0, 1500.0, 4000.0]),
)


@pytest.mark.slow
@settings(SETTINGS, max_examples=30)
@given(county=counties)
def test_invariants_hold_on_random_counties(county):
    assert len(county.transformers) >= 1
    p = gridplan.plan(county)
    assert_plan_invariants(p)


@pytest.mark.slow
@settings(SETTINGS, max_examples=6)
@given(county=counties, seed=st.integers(0, 3))
def test_same_input_and_seed_give_identical_plans(county, seed):
    assert_same_plan(gridplan.plan(county, seed=seed), gridplan.plan(county, seed=seed))


@settings(SETTINGS, max_examples=6)
@given(county=counties)
def test_station_scope_invariants(county):
    p = gridplan.plan(county, scope="station")
    assert_plan_invariants(p)


def test_coarse_units_never_push_a_grid_over_capacity():
    county = random_county(0, layout="grid", n_towns=1, n_stations=1, n_transformers=11, capacity=400.0)
    assert int(county.transformers["customers"].sum()) == 1119
    assert_plan_invariants(gridplan.plan(county))


def test_grid_polygons_are_connected_in_a_square_township():
    county = random_county(0, layout="grid", n_towns=1, n_stations=1, n_transformers=5, capacity=400.0)
    p = gridplan.plan(county)
    assert p.kpi["county"]["noncontiguous_grids"] == 0
    assert_grids_connected(p)
