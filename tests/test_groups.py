"""Service groups (供电服务小组, issue #16 part 6): nested, contiguous, balanced, one leader each.

Everything is recomputed from the plan's own layers: grid polygons (adjacency from shared borders),
grid workloads and the roster; the CLI test reads the files back.
"""

from __future__ import annotations

import json
import math

import geopandas as gpd
import networkx as nx
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner

import gridplan
from gridplan.cli import main
from gridplan.errors import InputError
from gridplan.lv.groups import group_count, plan_groups
from gridplan.settings import Params, read_params


def _shared_border_graph(grids: gpd.GeoDataFrame) -> nx.Graph:
    """Grids as nodes, an edge where two polygons share more than 10 m of border (independent check)."""
    g = nx.Graph()
    g.add_nodes_from(grids["grid_id"])
    rows = list(grids.itertuples(index=False))
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            common = shapely.intersection(a.geometry.buffer(1.0), b.geometry.buffer(1.0))
            if not common.is_empty and common.length / 2 > 10.0:  # a 2 m wide strip along the border
                g.add_edge(a.grid_id, b.grid_id)
    return g


def _check_groups(p: gridplan.Plan) -> None:
    """Nested exactly, contiguous on shared borders, one leader per group, layers consistent."""
    grids, tr = p.grids, p.transformers
    assert grids["group_id"].notna().all()
    # nested: each grid in one group, a group never crosses a station
    per_group = grids.groupby("group_id")["station_id"].nunique()
    assert (per_group == 1).all()
    assert all(str(gid).startswith(f"{sid}-G") for gid, sid in zip(grids["group_id"], grids["station_id"]))
    assert (tr["group_id"] == tr["grid_id"].map(grids.set_index("grid_id")["group_id"])).all()
    # contiguous: the grids of a group are connected through shared borders
    graph = _shared_border_graph(grids)
    for gid, g in grids.groupby("group_id"):
        assert nx.is_connected(graph.subgraph(g["grid_id"])), gid
    # the groups layer: the union of its grids, their workload, one leader
    layer = p.layers()["groups"]
    assert sorted(layer["group_id"]) == sorted(grids["group_id"].unique())
    for row in layer.itertuples(index=False):
        mine = grids[grids["group_id"] == row.group_id]
        assert row.n_grids == len(mine)
        assert math.isclose(row.workload, mine["workload"].sum(), rel_tol=1e-9)
        assert math.isclose(row.geometry.area, mine.geometry.area.sum(), rel_tol=1e-6)
        assert row.leader and row.leader_id
    assert grids.groupby("group_id")["group_leader_id"].nunique().eq(1).all()
    assert p.kpi["groups"]["county"]["noncontiguous_groups"] == 0


def test_groups_per_station_nested_contiguous_balanced(small_county):
    p = gridplan.plan(small_county(n=300, seed=1), capacity=1500, groups_per_station=2)
    _check_groups(p)
    for sid, g in p.grids.groupby("station_id"):
        loads = g.groupby("group_id")["workload"].sum()
        assert len(loads) == 2
        # balanced: 12-14 grids of nearly equal workload cut into two groups
        assert loads.max() / loads.mean() <= 1.10, loads.to_dict()
        k = p.kpi["groups"]["stations"][sid]
        assert math.isclose(k["cv"], loads.std(ddof=0) / loads.mean(), abs_tol=1e-4)
    # deterministic
    q = gridplan.plan(small_county(n=300, seed=1), capacity=1500, groups_per_station=2)
    assert q.grids["group_id"].tolist() == p.grids["group_id"].tolist()


def test_grids_per_group_counts(small_county):
    p = gridplan.plan(small_county(n=300, seed=2), capacity=1200, grids_per_group=3)
    _check_groups(p)
    for _sid, g in p.grids.groupby("station_id"):
        assert g["group_id"].nunique() == math.ceil(len(g) / 3)


def test_roster_leader_leads_the_group_of_their_grid(small_county):
    county = small_county(n=300, seed=1)
    county.managers["role"] = ["组长", "", "组长"]
    p = gridplan.plan(county, capacity=1500, groups_per_station=2)
    _check_groups(p)
    g = p.grids.set_index("grid_id")
    for mid in ("M1", "M3"):
        own = g[g["manager_id"] == mid]
        assert len(own) == 1  # a 组长 is still a 台区经理 with a grid
        group = own["group_id"].iloc[0]
        led = p.grids[p.grids["group_id"] == group]
        assert set(led["group_leader_id"]) == {mid}
        assert set(led["group_leader_source"]) == {"roster"}
    # the other groups: the manager of their heaviest grid
    for gid, grp in p.grids.groupby("group_id"):
        if grp["group_leader_source"].iloc[0] == "heaviest-grid":
            top = grp.sort_values(["workload", "grid_id"], ascending=[False, True]).iloc[0]
            assert grp["group_leader_id"].iloc[0] == top["manager_id"], gid
    assert p.kpi["groups"]["county"]["leaders_from_roster"] == 2


def test_station_pieces_that_share_no_border_are_grouped_apart():
    """Two blocks of grids 5 km apart in one station: no group spans both, even with one group asked."""
    box = shapely.box
    geoms = [box(0, 0, 1000, 1000), box(1000, 0, 2000, 1000), box(7000, 0, 8000, 1000)]
    grids = gpd.GeoDataFrame({"grid_id": ["A-01", "A-02", "A-03"], "station_id": "S",
                              "workload": [10.0, 10.0, 10.0]}, geometry=geoms, crs=4547)
    res = plan_groups(grids, pd.DataFrame({"station_id": ["S"], "name": ["某所"]}),
                      params=Params(groups_per_station=1))
    assert res.group_id.tolist() == ["S-G01", "S-G01", "S-G02"]
    assert res.notes and "2 块" in res.notes[0]


def test_group_count_rules():
    assert group_count(9, groups_per_station=3, grids_per_group=None) == 3  # 三区九格
    assert group_count(2, groups_per_station=3, grids_per_group=None) == 2
    assert group_count(10, groups_per_station=None, grids_per_group=3) == 4
    assert group_count(0, groups_per_station=3, grids_per_group=None) == 0


@pytest.mark.parametrize("text, needle", [
    ("groups_per_station = 3\ngrids_per_group = 2", "both set"),
    ("groups_per_station = 0", "groups_per_station must be >= 1"),
    ('grids_per_group = "three"', "grids_per_group must be a whole number"),
    ("max_travel_min = -5", "max_travel_min must be > 0"),
])
def test_bad_group_settings_are_named(tmp_path, text, needle):
    toml = tmp_path / "gridplan.toml"
    toml.write_text(f"[plan]\n{text}\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_params(toml)
    assert needle in str(exc.value)


def test_cli_end_to_end_groups_and_reach(county_dir, tmp_path):
    def roles(m: pd.DataFrame) -> pd.DataFrame:
        return m.assign(role=["组长", "", "组长", ""])

    folder = county_dir(toml='[plan]\ncapacity = 600\ngroups_per_station = 2\nmax_travel_min = 45\n',
                        edit_managers=roles)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["plan", str(folder), "-o", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    layers = {str(n) for n, _ in pyogrio.list_layers(out / "plan.gpkg")}
    assert "groups" in layers
    groups = gpd.read_file(out / "plan.gpkg", layer="groups")
    grids = gpd.read_file(out / "plan.gpkg", layer="grids")
    tr = gpd.read_file(out / "plan.gpkg", layer="transformers")
    assert {"group_id", "station_id", "leader", "workload", "n_grids"} <= set(groups.columns)
    assert set(grids["group_id"]) == set(groups["group_id"]) and tr["group_id"].notna().all()
    assert (groups["n_grids"].sum()) == len(grids)
    kpi = json.loads((out / "kpi.json").read_text(encoding="utf-8"))
    assert kpi["groups"]["county"]["groups"] == len(groups)
    assert kpi["groups"]["county"]["noncontiguous_groups"] == 0
    assert kpi["groups"]["county"]["leaders_from_roster"] == 2  # M1 (S1) and M3 (S2): 组长
    assert set(groups["leader_id"]) >= {"M1", "M3"}
    assert kpi["reach"]["summary"]["max_travel_min"] == 45
    assert "reach_minutes" in tr.columns
    assert (tr.loc[~tr["beyond_reach"].astype(bool), "reach_minutes"] <= 45 + 1e-6).all()
    wb = openpyxl.load_workbook(out / "roster.xlsx")
    assert "服务小组" in wb.sheetnames
    sheet = [[c for c in r] for r in wb["服务小组"].iter_rows(min_row=2, values_only=True)]
    assert sheet[0][:4] == ["供电所", "服务小组编号", "服务小组", "组长"]
    assert len(sheet) - 1 == len(groups)
    assert "服务小组" in [c.value for c in wb["台区经理"][2]]
    html = (out / "map.html").read_text(encoding="utf-8")
    assert '"服务小组"' in html or "服务小组" in html
    assert "第1服务小组" in html


def test_map_escapes_group_names(small_county, tmp_path):
    county = small_county(n=200, seed=1)
    county.stations.loc[0, "name"] = "<script>alert(1)</script>东镇"
    p = gridplan.plan(county, capacity=1500, groups_per_station=2)
    p.to_file(tmp_path / "out")
    html = (tmp_path / "out" / "map.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>东镇" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;东镇第1服务小组" in html
    # toggled in the layer control: an overlay named 服务小组 (folium writes it JSON-escaped)
    assert f"{json.dumps('服务小组')} : feature_group_" in html


@pytest.mark.slow
def test_real_county_groups(real_county_dir):
    folder = real_county_dir("10002_宜蘭縣", seed=0)
    folder = folder[0] if isinstance(folder, tuple) else folder
    county = gridplan.load_county(folder)
    p = gridplan.plan(county, grids_per_group=3)
    _check_groups(p)
    n = p.grids.groupby("station_id").size()
    got = p.grids.groupby("station_id")["group_id"].nunique()
    assert (got >= np.ceil(n / 3)).all()  # more only where a station's grids lie in pieces
