"""Station merges: the merged organisation, commitments, stability, comparison, candidates, CLI."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from _plan_fixtures import CRS_M, X0, Y0, small_county
from click.testing import CliRunner

import gridplan
from gridplan import InputError
from gridplan.model import County
from gridplan.render import assets
from gridplan.scenarios import merge_candidates, merge_stations, merged_county
from gridplan.scenarios.comparison import TOWNSHIP_COLUMNS
from gridplan.settings import Params

NO_ASSETS = pytest.mark.skipif(bool(assets.missing_assets()),
                               reason="offline map assets not fetched (scripts/fetch_assets.sh)")


def row_county(widths_km, households, *, speed_kmh=30.0, per_township=12) -> County:
    """Townships side by side (10 km high), one station at the centre of each, 台区 on a grid."""
    towns, stations, pts, tids, cust = [], [], [], [], []
    x = 0.0
    for i, (w, hh) in enumerate(zip(widths_km, households)):
        w *= 1_000
        towns.append(shapely.box(X0 + x, Y0, X0 + x + w, Y0 + 10_000))
        stations.append(shapely.Point(X0 + x + w / 2, Y0 + 5_000))
        for j in range(per_township):
            pts.append(shapely.Point(X0 + x + w * (j % 4 + 0.5) / 4, Y0 + 10_000 * (j // 4 + 0.5) / 3))
            tids.append(f"T{i + 1}")
            cust.append(hh // per_township)
        x += w
    n = len(widths_km)
    t = gpd.GeoDataFrame({"township_id": [f"T{i + 1}" for i in range(n)],
                          "name": [f"乡{i + 1}" for i in range(n)],
                          "station_id": [f"S{i + 1}" for i in range(n)], "area_class": "农村"},
                         geometry=towns, crs=CRS_M)
    s = gpd.GeoDataFrame({"station_id": [f"S{i + 1}" for i in range(n)],
                          "name": [f"第{i + 1}供电所" for i in range(n)], "kind": "供电所", "parent_id": None},
                         geometry=stations, crs=CRS_M)
    tr = gpd.GeoDataFrame({"transformer_id": [f"TQ{k:03d}" for k in range(len(pts))],
                           "name": [f"台区{k}" for k in range(len(pts))], "customers": cust,
                           "capacity_kva": 200.0, "feeder_id": None, "status": "运行",
                           "township_id": tids, "village": None}, geometry=pts, crs=CRS_M)
    tr["station_id"] = tr["township_id"].str.replace("T", "S")
    return County(name="一排县", crs=CRS_M, townships=t, stations=s, transformers=tr,
                  params=Params(capacity=1000, speed_kmh=speed_kmh))


@pytest.fixture(scope="module")
def far():
    """small_county at 20 km/h: merged into S1, the 台区 of S2's township T4 are beyond 90 min."""
    c = small_county()
    c = County(**{**c.__dict__, "params": c.params.replace(speed_kmh=20.0)})
    return c, gridplan.plan(c)


def test_merged_county_moves_everything_and_keeps_input(far):
    c, _ = far
    m = merged_county(c, ["S1", "S2"], keep_service_point=["S2"])
    assert set(m.townships["station_id"]) == {"S1"}
    assert set(m.transformers["station_id"]) == {"S1"}
    assert set(m.managers["station_id"]) == {"S1"}
    st = m.stations.set_index("station_id")
    assert st.at["S2", "kind"] == "供电服务站" and st.at["S2", "parent_id"] == "S1"
    assert st.at["S1", "kind"] == "中心供电所"
    assert set(c.townships["station_id"]) == {"S1", "S2"}  # input untouched
    gone = merged_county(c, ["S1", "S2"], into="S2")
    assert gone.stations["station_id"].tolist() == ["S2"]


def test_bad_merge_lists_every_problem(far):
    c, _ = far
    with pytest.raises(InputError) as err:
        merged_county(c, ["S1", "S9"], into="S7", keep_service_point=["S3"])
    text = str(err.value)
    assert "S9" in text and "S7" in text and "--keep-service-point" in text


def test_merge_that_breaks_the_commitment_is_flagged(far):
    c, before = far
    sc = merge_stations(c, ["S1", "S2"], before=before)
    assert sc.before.response["beyond"].sum() == 0
    b = sc.beyond
    assert sc.breaks_commitment and len(b) > 0 and b["new"].all()
    t4 = set(c.transformers.loc[c.transformers["township_id"] == "T4", "transformer_id"])
    assert set(b["transformer_id"]) <= t4  # only the absorbed, far township
    # hand check of the worst one: straight line x 1.4 at 20 km/h (333.3 m/min) from S1
    worst = c.transformers.set_index("transformer_id").geometry[b["transformer_id"].iloc[0]]
    s1 = c.stations.geometry.iloc[0]
    assert b["minutes"].iloc[0] == pytest.approx(worst.distance(s1) * 1.4 / (20_000 / 60), abs=0.01)
    assert (b["minutes"] > 90).all() and (b["commitment"] == 90).all()
    assert sc.notes[0].startswith("⚠") and b["transformer_id"].iloc[0] in sc.notes[0]
    row = sc.comparison.set_index(["scope", "metric"])
    assert row.at[("全县", "transformers_beyond"), "after"] == len(b)
    assert row.at[("全县", "stations"), "before"] == 2 and row.at[("全县", "stations"), "after"] == 1


def test_keeping_a_service_point_keeps_the_commitment(far):
    c, before = far
    sc = merge_stations(c, ["S1", "S2"], keep_service_point=["S2"], before=before)
    assert not sc.breaks_commitment and len(sc.beyond) == 0
    row = sc.comparison.set_index(["scope", "metric"])
    assert row.at[("全县", "service_points"), "after"] == 2
    assert row.at[("全县", "stations"), "after"] == 1
    assert (sc.after.response["minutes"].to_numpy() == sc.before.response["minutes"].to_numpy()).all()


def test_stability_keeps_managers_even_against_travel(far):
    c, _ = far
    # M3 (S2) lives in T1 now: by travel alone the pooled assignment would move M3 to T1
    homes = c.managers.copy()
    homes.loc[homes["manager_id"] == "M3", "geometry"] = shapely.Point(X0 + 500, Y0 + 500)
    c2 = County(**{**c.__dict__, "managers": homes})
    before = gridplan.plan(c2)
    sc = merge_stations(c2, ["S1", "S2"], before=before)
    b = before.grids.set_index("grid_id")["manager_id"]
    a = sc.after.plan.grids.set_index("grid_id")["manager_id"]
    assert (a.reindex(b.index) == b).all()
    row = sc.comparison.set_index(["scope", "metric"])
    assert row.at[("全县", "transformers_changing_manager"), "after"] == 0
    assert row.at[("全县", "grids"), "after"] == row.at[("全县", "grids"), "before"]
    assert set(sc.changed_grids) == set(before.grids.loc[before.grids["station_id"] == "S2", "grid_id"])


def test_station_scope_replans_the_merged_station(far):
    c, _ = far
    cs = County(**{**c.__dict__, "params": c.params.replace(scope="station")})
    sc = merge_stations(cs, ["S1", "S2"], keep_service_point=["S2"])
    g = sc.after.plan.grids
    assert set(g["station_id"]) == {"S1"} and g["grid_id"].str.startswith("S1-").all()
    tr = sc.after.plan.transformers
    assert tr["grid_id"].isin(g["grid_id"]).all() and tr["manager_id"].notna().all()
    assert int(g["customers"].sum()) == int(c.transformers["customers"].sum())


def test_candidates_neighbours_only_and_ranked():
    # S1 | S2 | S3 (60 km wide, few households): S1-S3 do not touch; S3 into S2 breaks 90 min
    c = row_county([10, 10, 60], [3000, 6000, 1200])
    df = merge_candidates(c)
    assert list(zip(df["into"], df["absorbed"])) == [("S2", "S1"), ("S2", "S3")]
    assert df["rank"].tolist() == [1, 2]
    assert df["keeps_commitment"].tolist() == [True, False]
    bad = df.iloc[1]
    assert bad["new_beyond"] > 0 and "TQ" in bad["new_beyond_ids"] and "超出" in bad["reasons"]
    assert df["verdict"].tolist() == ["可合并", "需设服务站"]  # S3's own station as a 服务站 suffices
    assert bad["points_needed"] == 1 and bad["uncoverable"] == 0
    again = merge_candidates(c)
    pd.testing.assert_frame_equal(df, again)  # deterministic


def test_candidates_rank_by_verdict_then_score():
    df = pd.DataFrame({"into": ["A", "B", "C", "D"], "absorbed": ["X", "Y", "Z", "W"],
                       "verdict": ["可合并", "可合并", "不宜合并", "需设服务站"],
                       "score": [10.0, 25.0, 90.0, 50.0]})
    from gridplan.scenarios.comparison import rank_candidates

    out = rank_candidates(df)
    assert out["into"].tolist() == ["B", "A", "D", "C"] and out["rank"].tolist() == [1, 2, 3, 4]


@pytest.mark.slow
def test_outputs_are_written_escaped(far, tmp_path):
    c, before = far
    st = c.stations.copy()
    st.loc[st["station_id"] == "S2", "name"] = "<script>alert(1)</script>所"
    c2 = County(**{**c.__dict__, "stations": st})
    sc = merge_stations(c2, ["S1", "S2"], before=before)
    out = sc.to_file(tmp_path / "m", maps=False)
    names = {p.name for p in out.iterdir()}
    assert {"comparison.csv", "comparison.xlsx", "report.html", "beyond.csv", "response.csv",
            "scenario.json", "before", "after"} <= names
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in report and "&lt;script&gt;" in report
    assert "超出承诺时间的台区" in report and "http" not in report
    beyond = pd.read_csv(out / "beyond.csv", encoding="utf-8-sig")
    assert len(beyond) == len(sc.beyond) and beyond["new"].all()
    x = pd.read_excel(out / "comparison.xlsx")
    assert list(x.columns) == list(TOWNSHIP_COLUMNS)  # issue 15: one row per affected township
    assert x["township_id"].tolist() == ["T4", "T1", "T2", "T3"]  # the absorbed township first
    m = pd.read_excel(out / "report.xlsx", sheet_name="指标对比")
    assert list(m.columns) == ["范围", "指标", "合并前", "合并后", "变化"]
    assert json.loads((out / "scenario.json").read_text(encoding="utf-8"))["breaks_commitment"] is True
    assert (out / "after" / "plan.gpkg").exists()


@NO_ASSETS
def test_compare_map_is_offline_and_synced(far, tmp_path):
    from gridplan.render.compare import compare_map_html

    c, before = far
    sc = merge_stations(c, ["S1", "S2"], before=before)
    page = compare_map_html(sc, basemap="none")
    assert not re.search(r'<script[^>]*src="(https?:)?//', page)
    assert not re.search(r'<link[^>]*href="(https?:)?//', page)
    assert page.count("L.map(") == 1 and 'build("mapA"' in page and 'build("mapB"' in page
    assert "setView(a.getCenter()" in page and "合并后" in page
    assert sc.changed_grids[0] in page


@pytest.mark.slow
def test_cli_merge_and_candidates(tmp_path):
    from countygen import make_county_dir

    from gridplan.cli import main

    folder = make_county_dir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, ["merge", str(folder), "--stations", "S1,S2", "--keep-service-point", "S2",
                               "--out", str(tmp_path / "m"), "--no-map"])
    assert res.exit_code == 0, res.output
    assert "合并范围" in res.output and (tmp_path / "m" / "comparison.xlsx").exists()
    res = runner.invoke(main, ["merge-candidates", str(folder), "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "c" / "candidates.csv", encoding="utf-8-sig")
    assert len(df) == 1 and set(df[["into", "absorbed"]].iloc[0]) == {"S1", "S2"}
    assert (tmp_path / "c" / "candidates.html").exists()
    res = runner.invoke(main, ["merge", str(folder), "--stations", "S1,S9", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "S9" in res.output and not (tmp_path / "x").exists()
