"""Feeder graph: cleaning messy line data into radial trees (build_feeder_graph)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString, MultiLineString, Point, box

from gridplan.hv.feeders import build_feeder_graph
from gridplan.model import County
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


# ----------------------------------------------------------------------------- double circuits

def test_double_circuit_is_kept_and_counted_true_duplicate_dropped():
    """Two circuits on one route (F1, F2: 3 km each), F1 going on 4 km, and F1's first line repeated.

    By hand: 3 + 4 (F1) + 3 (F2) = 10 km; the repeated row (same attributes, same geometry) is the
    only duplicate.
    """
    from gridplan.hv.segments import segment_feeders

    lines = [LineString([(0, 0), (3000, 0)]), LineString([(3000, 0), (3000, 4000)]),
             LineString([(0, 0), (3000, 0)]),   # F2: the second circuit, same two points
             LineString([(0, 0), (3000, 0)])]   # F1 again: a true duplicate
    county = make_county(lines, ["F1", "F1", "F2", "F1"], [(0, 0)])
    g = build_feeder_graph(county, params=Params(snap_lines_m=5))
    assert g.stats["duplicates"] == 1 and g.stats["parallel"] == 1 and g.stats["loops"] == 0
    assert g.length_m.sum() == pytest.approx(10_000)
    assert any("F1(第 4 行)" in n and "重复" in n for n in g.notes)
    assert any("并行" in n and "F2" in n and "3.00 km" in n for n in g.notes)
    res = segment_feeders(county, params=Params(snap_lines_m=5, segment_cut="anywhere"))
    assert res.segments["length_km"].sum() == pytest.approx(10.0)


def test_line_ids_decide_what_is_a_duplicate():
    """With a line_id column: same id = the same line (dropped), distinct ids = a double circuit."""
    lines = [LineString([(0, 0), (2000, 0)]), LineString([(0, 0), (2000, 0)]),
             LineString([(0, 0), (1000, 1), (2000, 0)])]  # L1 again, drawn a little differently
    county = make_county(lines, ["F1", "F1", "F1"], [(0, 0)])
    county.feeders["line_id"] = ["L1", "L2", "L1"]
    g = build_feeder_graph(county, params=Params(snap_lines_m=5))
    assert g.stats["duplicates"] == 1 and g.stats["parallel"] == 1
    assert g.length_m.sum() == pytest.approx(4000)
    assert any("重复" in n and "L1" in n for n in g.notes)
    assert any("并行" in n and "L2" in n for n in g.notes)


def test_identical_geometry_different_attributes_is_kept():
    lines = [LineString([(0, 0), (2000, 0)]), LineString([(0, 0), (2000, 0)])]
    county = make_county(lines, ["F1", "F1"], [(0, 0)])
    county.feeders["name"] = ["10kV甲线 I回", "10kV甲线 II回"]
    g = build_feeder_graph(county, params=Params(snap_lines_m=5))
    assert g.stats["duplicates"] == 0 and g.stats["parallel"] == 1
    assert g.length_m.sum() == pytest.approx(4000)


SHARED = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "data"
NET = SHARED / "networks" / "mv_oberrhein"


@pytest.mark.skipif(not NET.exists(), reason="../shared/data not present (only in the dev workspace)")
def test_oberrhein_with_a_duplicated_line_and_a_second_circuit():
    import pandas as pd

    from gridplan.hv.segments import segment_feeders
    from gridplan.io import from_network_geojson

    county = from_network_geojson(NET)
    base = build_feeder_graph(county)
    fl = county.feeders
    row = fl.iloc[[10]].copy()
    twin = row.copy()                                 # the same line exported twice
    second = row.copy()                               # a second circuit on the same poles
    second["line_id"] = 9999
    second["feeder_id"] = row["feeder_id"].iloc[0]
    county.feeders = pd.concat([fl, twin, second], ignore_index=True).set_geometry("geometry")
    g = build_feeder_graph(county)
    assert g.stats["duplicates"] == base.stats["duplicates"] + 1
    assert g.stats["parallel"] == base.stats.get("parallel", 0) + 1
    assert g.stats["loops"] == base.stats["loops"]
    assert any("重复" in n and str(int(row["line_id"].iloc[0])) in n for n in g.notes)
    assert any("并行" in n and "9999" in n for n in g.notes)
    extra = row.geometry.iloc[0].length
    assert g.length_m.sum() == pytest.approx(base.length_m.sum() + extra, rel=1e-9)
    res = segment_feeders(county, params=county.params.replace(segment_cut="anywhere"))
    assert res.segments["length_km"].sum() == pytest.approx((base.length_m.sum() + extra) / 1000, rel=1e-6)


def test_cli_double_circuit_km_in_segments_and_duplicate_listed(tmp_path):
    import json

    import pandas as pd
    import pyogrio
    from click.testing import CliRunner
    from countygen import make_county_dir

    from gridplan.cli import main
    from gridplan.io.load import on_grid

    base = make_county_dir(tmp_path, name="base")
    both = make_county_dir(tmp_path, name="both")
    fl = gpd.read_file(both / "feeders.geojson")
    f1 = fl[fl["feeder_id"] == "F1"]
    f3 = f1.assign(feeder_id="F3", name="10kV一线 II回")           # second circuit on F1's poles
    f2 = fl[fl["feeder_id"] == "F2"]                                  # F2 exported twice
    pd.concat([fl, f3, f2], ignore_index=True).to_file(both / "feeders.geojson", driver="GeoJSON")
    runner = CliRunner()
    km = {}
    for folder in (base, both):
        out = tmp_path / f"out_{folder.name}"
        res = runner.invoke(main, ["plan", str(folder), "--out", str(out), "--no-map"])
        assert res.exit_code == 0, res.output
        km[folder.name] = pyogrio.read_dataframe(out / "plan.gpkg", layer="segments")["length_km"].sum()
    kpi = json.loads((tmp_path / "out_both" / "kpi.json").read_text(encoding="utf-8"))
    # the county's lines are on the 1 m coordinate grid (issue #16): measure F1 on it too
    f1_km = on_grid(f1.to_crs(pyogrio.read_info(tmp_path / "out_both" / "plan.gpkg",
                                                layer="segments")["crs"])).length.sum() / 1000
    assert km["both"] == pytest.approx(km["base"] + f1_km, rel=1e-6)
    assert any("并行" in n and ("F3" in n or "F1(" in n) for n in kpi["notes"])
    assert not any("环路" in n for n in kpi["notes"])  # two circuits on one route are not a loop
    assert any("重复" in n and "F2(第 4 行)" in n for n in kpi["notes"])
