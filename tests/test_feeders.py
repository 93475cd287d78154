"""Feeder graph: cleaning messy line data into radial trees (build_feeder_graph)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString, MultiLineString, Point, box

from gridplan.county import County
from gridplan.feeders import build_feeder_graph
from gridplan.settings import Params

CRS = "EPSG:4547"  # CGCS2000 3-degree GK, metres


def make_county(lines, fids, subs, *, switches=None, transformers=()):
    """A minimal County around a feeders layer (substation ids S1, S2, ...; switches K0, K1, ...)."""
    feeders = gpd.GeoDataFrame({"feeder_id": fids, "name": fids, "substation_id": ["S1"] * len(fids)},
                               geometry=list(lines), crs=CRS)
    substations = gpd.GeoDataFrame({"substation_id": [f"S{i + 1}" for i in range(len(subs))],
                                    "name": [f"站{i + 1}" for i in range(len(subs))]},
                                   geometry=[Point(p) for p in subs], crs=CRS)
    tr = gpd.GeoDataFrame({"transformer_id": [t[0] for t in transformers],
                           "feeder_id": [t[1] for t in transformers], "customers": 10, "capacity_kva": 200.0},
                          geometry=[Point(t[2]) for t in transformers], crs=CRS)
    sw = None
    if switches is not None:
        sw = gpd.GeoDataFrame({"switch_id": [f"K{i}" for i in range(len(switches))],
                               "normally_open": [bool(s[1]) for s in switches]},
                              geometry=[Point(s[0]) for s in switches], crs=CRS)
    towns = gpd.GeoDataFrame({"township_id": ["T1"]}, geometry=[box(-1e5, -1e5, 1e5, 1e5)], crs=CRS)
    stations = gpd.GeoDataFrame({"station_id": ["S"]}, geometry=[Point(0, 0)], crs=CRS)
    return County(name="test", crs=feeders.crs, townships=towns, stations=stations, transformers=tr,
                  feeders=feeders, switches=sw, substations=substations)


def messy_lines():
    """A 12 km trunk drawn in pieces that do not meet exactly, a T branch, a duplicate, a multi-part line."""
    return [
        LineString([(0, 0), (5000, 0)]),
        LineString([(5003, 1), (10000, 0)]),                # 3 m gap to the previous end
        LineString([(7000, 2), (7000, 3000)]),              # T-junction: starts on the trunk's interior
        LineString([(5003, 1), (10000, 0)]),                # exact duplicate
        MultiLineString([[(10000, 0), (12000, 0)], [(12000, 0), (12000, 1000)]]),
    ]


def test_messy_lines_become_one_tree():
    county = make_county(messy_lines(), ["F1"] * 5, [(-2, 0)])
    g = build_feeder_graph(county, params=Params(snap_lines_m=5))
    assert g.stats["snapped_ends"] >= 1
    assert g.stats["t_junctions"] == 1
    assert g.stats["duplicates"] == 2  # the duplicate, split at the T-junction like its twin
    assert g.stats["multipart_rows"] == 1
    assert g.stats["loops"] == 0
    assert (g.parent < 0).sum() == 1  # one root: everything joined into one tree
    # total length: trunk 12 km (+ the 3 m snap) + 3 km branch + 1 km
    assert g.length_m.sum() == pytest.approx(16000, abs=10)
    assert g.root_substation[int(np.flatnonzero(g.parent < 0)[0])] == "S1"
    assert any("T 接点" in n for n in g.notes)


def test_gap_larger_than_tolerance_is_reported_as_unrooted():
    lines = [LineString([(0, 0), (1000, 0)]), LineString([(1050, 0), (2000, 0)])]
    county = make_county(lines, ["F1", "F2"], [(0, 0)])
    county.feeders["substation_id"] = [None, None]
    g = build_feeder_graph(county, params=Params(snap_lines_m=5, attach_tolerance_m=20))
    assert (g.parent < 0).sum() == 2
    assert any("F2" in n and "未连接到任何变电站" in n for n in g.notes)


def test_loop_is_reported_and_open_switch_removes_it():
    ring = [LineString([(0, 0), (1000, 0)]), LineString([(1000, 0), (1000, 1000)]),
            LineString([(1000, 1000), (0, 1000)]), LineString([(0, 1000), (0, 0)])]
    county = make_county(ring, ["F7"] * 4, [(0, 0)])
    g = build_feeder_graph(county, params=Params())
    assert g.stats["loops"] == 1
    assert any("F7" in n and "环路" in n for n in g.notes)
    # every line still in the forest exactly once
    assert g.length_m.sum() == pytest.approx(4000)
    opened = make_county(ring, ["F7"] * 4, [(0, 0)], switches=[((1000, 500), True)])
    g2 = build_feeder_graph(opened, params=Params())
    assert g2.stats["loops"] == 0
    assert not any("环路" in n for n in g2.notes)
    assert g2.length_m.sum() == pytest.approx(4000)


def test_transformers_attached_by_feeder_then_by_distance_else_reported():
    lines = [LineString([(0, 0), (3000, 0)]), LineString([(0, 0), (0, 3000)])]
    trs = [("A", "F2", (100, 2000)),      # by feeder id: nearest piece of F2
           ("B", None, (2500, 100)),      # no feeder: nearest line within tolerance
           ("C", "F9", (50000, 50000))]   # unknown feeder, far from every line
    county = make_county(lines, ["F1", "F2"], [(0, 0)], transformers=trs)
    g = build_feeder_graph(county, params=Params(attach_tolerance_m=300))
    node = g.transformer_node
    assert g.feeder_ids[g.feeder[node.iloc[0]]] == "F2"
    assert g.feeder_ids[g.feeder[node.iloc[1]]] == "F1"
    assert node.iloc[2] == -1
    assert any("C" in n and "无法挂接" in n for n in g.notes)


def test_closed_switch_inside_a_line_splits_it():
    county = make_county([LineString([(0, 0), (4000, 0)])], ["F1"], [(0, 0)], switches=[((1000, 2), False)])
    g = build_feeder_graph(county, params=Params())
    assert sorted(np.round(g.length_m[g.parent >= 0])) == [1000, 3000]
    child = np.flatnonzero(g.length_m.round() == 1000)[0]
    assert g.switch[child]  # the switch sits at the far end of the first piece
