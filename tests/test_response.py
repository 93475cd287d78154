"""Response times against hand-computed figures: straight line and a small road graph."""

from __future__ import annotations

import math

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from pyproj import CRS

from gridplan import InputError
from gridplan.metrics.response import response_kpis, response_times, road_network, travel_times
from gridplan.model import County
from gridplan.settings import Params

CRS_M = CRS.from_epsg(4547)
X0, Y0 = 500_000.0, 3_700_000.0


def _county(tq_xy, *, stations_xy=((0.0, 0.0),), area_class=("农村",), tq_town=None,
            roads=None, params=None) -> County:
    """Townships are 100 km squares side by side (T1, T2, ...), so every point fits one."""
    towns = gpd.GeoDataFrame(
        {"township_id": [f"T{i + 1}" for i in range(len(area_class))],
         "name": [f"乡{i + 1}" for i in range(len(area_class))],
         "station_id": "S1", "area_class": list(area_class)},
        geometry=[shapely.box(X0 - 50_000 + i * 100_000, Y0 - 50_000, X0 + 50_000 + i * 100_000,
                              Y0 + 50_000) for i in range(len(area_class))], crs=CRS_M)
    st = gpd.GeoDataFrame({"station_id": [f"S{i + 1}" for i in range(len(stations_xy))],
                           "name": [f"所{i + 1}" for i in range(len(stations_xy))],
                           "kind": "供电所", "parent_id": None},
                          geometry=[shapely.Point(X0 + x, Y0 + y) for x, y in stations_xy], crs=CRS_M)
    n = len(tq_xy)
    tr = gpd.GeoDataFrame({"transformer_id": [f"TQ{i}" for i in range(n)],
                           "name": [f"台区{i}" for i in range(n)], "customers": [100] * n,
                           "township_id": list(tq_town or ["T1"] * n), "station_id": "S1"},
                          geometry=[shapely.Point(X0 + x, Y0 + y) for x, y in tq_xy], crs=CRS_M)
    road_gdf = None
    if roads is not None:
        road_gdf = gpd.GeoDataFrame(
            {"speed_kmh": [s for _, s in roads]},
            geometry=[shapely.LineString([(X0 + x, Y0 + y) for x, y in pts]) for pts, _ in roads],
            crs=CRS_M)
    return County(name="测试县", crs=CRS_M, townships=towns, stations=st, transformers=tr,
                  params=params or Params(), roads=road_gdf)


def test_straight_line_by_hand():
    # 3-4-5 triangle: 5,000 m x 1.4 = 7,000 m at 30 km/h (500 m/min) = 14 min
    c = _county([(3_000, 4_000), (0, 40_000), (120_000, 0)], area_class=("农村", "特殊边远"),
                tq_town=["T1", "T1", "T2"])
    rt = response_times(c)
    assert rt.loc[0, "distance_m"] == pytest.approx(7_000.0)
    assert rt.loc[0, "minutes"] == pytest.approx(14.0)
    assert not rt.loc[0, "beyond"] and rt.loc[0, "commitment"] == 90
    # 40 km x 1.4 / 500 m/min = 112 min: beyond 90 (农村)
    assert rt.loc[1, "minutes"] == pytest.approx(112.0)
    assert rt.loc[1, "beyond"]
    # 120 km x 1.4 / 500 = 336 min, 特殊边远 commits 120 min: beyond
    assert rt.loc[2, "commitment"] == 120 and rt.loc[2, "beyond"]
    assert rt["point_id"].tolist() == ["S1"] * 3
    assert not rt["via_road"].any()


def test_parameters_change_the_figures():
    c = _county([(3_000, 4_000)], params=Params(speed_kmh=60, detour_factor=1.0,
                                                commitments={"城区": 45, "农村": 4, "特殊边远": 120}))
    rt = response_times(c)
    assert rt.loc[0, "minutes"] == pytest.approx(5.0)  # 5 km at 1 km/min
    assert rt.loc[0, "beyond"]  # commitment 4 min


def test_nearest_of_several_points_and_default_area_class():
    c = _county([(1_000, 0), (9_000, 0)], stations_xy=((0, 0), (10_000, 0)), area_class=("",))
    rt = response_times(c, params=Params(area_class="城区"))
    assert rt["point_id"].tolist() == ["S1", "S2"]
    assert rt["minutes"].tolist() == pytest.approx([1_400 / 500] * 2)
    assert (rt["area_class"] == "城区").all() and (rt["commitment"] == 45).all()


def test_unknown_area_class_is_an_input_error():
    c = _county([(1_000, 0)], area_class=("郊区",))
    with pytest.raises(InputError, match="郊区"):
        response_times(c)


# a fast road east (60 km/h), a default-speed road north (NaN -> 30 km/h) and a slow diagonal
# shortcut (10 km/h) that must not be taken
ROADS = [([(0, 0), (5_000, 0), (10_000, 0)], 60.0),
         ([(10_000, 0), (10_000, 5_000)], float("nan")),
         ([(0, 0), (10_000, 5_000)], 10.0)]


def test_small_road_graph_by_hand():
    c = _county([(10_000, 5_200)], stations_xy=((0, 100),), roads=ROADS)
    rt = response_times(c)
    # access 100 m x 1.4 / 500 = 0.28 min; 10 km at 1000 m/min = 10; 5 km at 500 m/min = 10;
    # access 200 m x 1.4 / 500 = 0.56 min
    assert rt.loc[0, "minutes"] == pytest.approx(0.28 + 10 + 10 + 0.56)
    assert rt.loc[0, "distance_m"] == pytest.approx(140 + 10_000 + 5_000 + 280)
    assert rt.loc[0, "via_road"]


def test_road_graph_agrees_with_networkx():
    c = _county([(10_000, 5_200)], stations_xy=((0, 100), (10_000, 5_000)), roads=ROADS)
    net = road_network(c.roads, params=c.params)
    g = net.to_networkx()
    assert g.number_of_nodes() == 4  # shared vertices (road ends, the origin) are one node each
    src = {i for i in g.nodes if math.isclose(g.nodes[i]["x"], X0) and math.isclose(g.nodes[i]["y"], Y0)}
    lengths = nx.multi_source_dijkstra_path_length(g, src, weight="minutes")
    far = next(i for i in g.nodes if math.isclose(g.nodes[i]["y"], Y0 + 5_000))
    assert lengths[far] == pytest.approx(20.0)
    tt = travel_times(c)
    assert tt.minutes.shape == (1, 2)
    assert tt.minutes[0, 0] == pytest.approx(0.28 + 20 + 0.56)
    assert tt.minutes[0, 1] == pytest.approx(0.56)  # the second station sits on the road's end


def test_snapping_connects_near_ends_only():
    gap = [([(0, 0), (10_000, 0)], 60.0), ([(10_003, 0), (10_003, 5_000)], 30.0)]
    rt = response_times(_county([(10_003, 5_000)], roads=gap))
    assert rt.loc[0, "via_road"]
    assert rt.loc[0, "minutes"] == pytest.approx(10 + 10, abs=0.02)
    far = [([(0, 0), (10_000, 0)], 60.0), ([(10_500, 0), (10_500, 5_000)], 30.0)]
    rt = response_times(_county([(10_500, 5_000)], roads=far))
    assert not rt.loc[0, "via_road"]  # unreachable over roads: straight line instead
    assert rt.loc[0, "minutes"] == pytest.approx(math.hypot(10_500, 5_000) * 1.4 / 500, abs=0.01)


def test_kpis_per_station_and_county():
    c = _county([(3_000, 4_000), (0, 40_000), (0, 20_000)])
    rt = response_times(c)
    k = response_kpis(rt)
    assert k["county"]["transformers_beyond"] == 1 and k["county"]["households_beyond"] == 100
    assert k["county"]["max_minutes"] == pytest.approx(112.0)
    assert k["county"]["p95_minutes"] == pytest.approx(float(np.percentile([14, 112, 56], 95)), abs=0.01)
    assert set(k["stations"]) == {"S1"}


def test_subset_removes_a_point():
    c = _county([(1_000, 0), (9_000, 0)], stations_xy=((0, 0), (10_000, 0)))
    tt = travel_times(c)
    rt = response_times(c, travel=tt.subset(["S1"]))
    assert rt["point_id"].tolist() == ["S1", "S1"]
    assert rt.loc[1, "minutes"] == pytest.approx(9_000 * 1.4 / 500)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nearest_without_a_matrix_is_the_matrix_argmin(seed):
    """Without roads response_times takes the nearest point from a k-d tree (no 台区 × point
    matrix): the same point, minutes and metres as the argmin over travel_times' rows, ties
    included (co-located stations, and 12 stations on one circle around a 台区: more tied
    points than the tree's candidates)."""
    rng = np.random.default_rng(seed)
    stations = [tuple(v) for v in rng.uniform(-40_000, 40_000, (30, 2))]
    stations += [stations[3], stations[3], stations[7]]  # co-located points: ties on every 台区 near them
    ring = [(20_000 + 5_000 * math.cos(a), -20_000 + 5_000 * math.sin(a))
            for a in np.linspace(0, 2 * math.pi, 12, endpoint=False)]
    tq = [tuple(v) for v in rng.uniform(-45_000, 45_000, (2_000, 2))] + [(20_000.0, -20_000.0)]
    county = _county(tq, stations_xy=stations + ring)
    fast = response_times(county)
    slow = response_times(county, travel=travel_times(county))
    assert fast.equals(slow)
    tt = travel_times(county)
    i = len(tq) - 1  # the ring's centre: every ring point equally far, the lowest index wins
    assert fast.loc[i, "point_id"] == tt.points["point_id"].iloc[int(np.argmin(tt.minutes[i]))]
