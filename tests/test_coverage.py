"""乡乡有点、村村有人 and the input notes, through the CLI on a real-shaped county.

The county is 宜蘭縣 from ../shared/data/townships (real township and village polygons; 台区 seeded
inside the villages by ``make_real_county``), made messier the way data arrives: one township
has no 台区 (its territory is absorbed by a neighbouring grid), one station has no rows in the
roster (its grids get placeholder managers), one ledger row has lon/lat swapped, one 台区 lies a
little outside the coast, and a 供电服务站 is added. The coverage figures are then computed again
here, independently, from the raw files (geopandas joins and overlays, not gridplan's code).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner

from gridplan.cli import main

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TOWNS = SHARED / "townships"
CODE = "10002_宜蘭縣"

pytestmark = pytest.mark.skipif(not TOWNS.exists(),
                                reason="../shared/data not present (only in the dev workspace)")

METRIC = 4526  # CGCS2000 GK 3° zone 40 (lon 118.5-121.5), with the zone in the false easting


def _outside_point(towns: gpd.GeoDataFrame, *, metres: float) -> tuple[float, float, str]:
    """A lon/lat ``metres`` off the coast: outside every township, nearest to one of them."""
    m = towns.to_crs(METRIC)
    union = shapely.union_all(m.geometry.to_numpy())
    centre = union.centroid
    for poly in sorted(shapely.get_parts(union), key=lambda g: -g.area)[:1]:
        for x, y in shapely.get_coordinates(poly.exterior)[::7]:
            dx, dy = x - centre.x, y - centre.y
            norm = float(np.hypot(dx, dy))
            p = shapely.Point(x + dx / norm * metres, y + dy / norm * metres)
            d = m.distance(p)
            if d.min() > metres * 0.5 and d.min() < metres * 1.5:
                lon, lat = gpd.GeoSeries([p], crs=METRIC).to_crs(4326).iloc[0].coords[0]
                return lon, lat, str(m["township_id"].iloc[int(np.argmin(d.to_numpy()))])
    raise AssertionError("no coastal point found")


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> dict:
    from test_real_townships import make_real_county

    tmp = tmp_path_factory.mktemp("coverage")
    folder = make_real_county(tmp, CODE)
    towns = gpd.read_file(folder / "townships.geojson")
    ledger = pd.read_csv(folder / "transformers.csv")
    # 1. the smallest township of a station with several townships loses its 台区
    per_station = towns.groupby("station_id")["township_id"].transform("size")
    area = towns.to_crs(METRIC).area.where(per_station > 1)
    empty_town = str(towns["township_id"].iloc[int(np.nanargmax(-area.to_numpy()))])
    inside = gpd.GeoSeries(gpd.points_from_xy(ledger["经度"], ledger["纬度"]), crs=4326)
    drop = inside.within(towns.set_index("township_id").geometry[empty_town]).to_numpy()
    assert drop.any()
    ledger = ledger[~drop].reset_index(drop=True)
    # 2. one row with lon/lat swapped; 3. one 台区 280 m off the coast
    ledger.loc[3, ["经度", "纬度"]] = ledger.loc[3, ["纬度", "经度"]].to_numpy()
    lon, lat, snapped_town = _outside_point(towns, metres=280)
    ledger.loc[5, ["经度", "纬度"]] = [lon, lat]
    ledger.to_csv(folder / "transformers.csv", index=False, encoding="utf-8-sig")
    # 4. a service station (供电服务站) inside a township that has no station yet
    stations = gpd.read_file(folder / "stations.geojson")
    stations["kind"] = "供电所"
    stations["parent_id"] = None
    has = towns.geometry.apply(lambda g: bool(stations.within(g).any()))
    spare = towns[~has & (towns["township_id"] != empty_town)].iloc[0]
    stations = pd.concat([stations, gpd.GeoDataFrame(
        {"station_id": ["S99"], "name": [f"{spare['name']}供电服务站"], "kind": ["供电服务站"],
         "parent_id": [str(spare["station_id"])]},
        geometry=[spare.geometry.representative_point()], crs=4326)], ignore_index=True)
    stations.to_file(folder / "stations.geojson", driver="GeoJSON")
    # 5. a roster with 40 people for every station but the last one
    sids = sorted(towns["station_id"].unique())
    no_roster = sids[-1]
    rows = [{"工号": f"M{s}{i:02d}", "姓名": f"经理{s}{i:02d}", "电话": f"138{i:08d}", "供电所": s}
            for s in sids[:-1] for i in range(40)]
    pd.DataFrame(rows).to_csv(folder / "managers.csv", index=False, encoding="utf-8-sig")
    # 6. the real villages
    vil = gpd.read_file(TOWNS / f"{CODE}_villages.geojson")
    gpd.GeoDataFrame({"village_id": vil["VILLCODE"], "name": vil["VILLNAME"],
                      "township_id": vil["TOWNCODE"]}, geometry=vil.geometry, crs=4326
                     ).to_file(folder / "villages.geojson", driver="GeoJSON")
    (folder / "gridplan.toml").write_text(
        '[input]\nsnap_tolerance_m = 1000\n[plan]\nworkload = "customers"\ncapacity = 2500\n',
        encoding="utf-8")
    out = tmp / "out"
    result = CliRunner().invoke(main, ["plan", str(folder), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {"folder": folder, "out": out, "summary": result.output, "empty_town": empty_town,
            "swapped": str(ledger.loc[3, "台区编号"]), "snapped": str(ledger.loc[5, "台区编号"]),
            "snapped_town": snapped_town, "no_roster": no_roster,
            "kpi": json.loads((out / "kpi.json").read_text(encoding="utf-8"))}


def _raw_townships_with_point(folder: Path) -> pd.Series:
    """Township id -> whether a station of a service-point kind lies in it (from the raw files)."""
    towns = gpd.read_file(folder / "townships.geojson").to_crs(METRIC)
    st = gpd.read_file(folder / "stations.geojson").to_crs(METRIC)
    st = st[st["kind"].isin(["供电所", "中心供电所", "供电服务站"])]
    hit = gpd.sjoin(towns, st[["geometry"]], predicate="intersects", how="left")
    return hit.groupby("township_id")["index_right"].apply(lambda s: bool(s.notna().any()))


def _raw_village_cover(folder: Path, out: Path) -> pd.Series:
    """Village id -> whether the grid holding most of its area has a named manager."""
    grids = gpd.read_file(out / "plan.gpkg", layer="grids")
    vil = gpd.read_file(folder / "villages.geojson").to_crs(grids.crs)
    pieces = gpd.overlay(vil[["village_id", "geometry"]], grids[["grid_id", "placeholder", "geometry"]],
                         how="intersection", keep_geom_type=True)
    pieces["a"] = pieces.area
    top = pieces.sort_values(["village_id", "a", "grid_id"], ascending=[True, False, True]) \
        .drop_duplicates("village_id").set_index("village_id")
    named = ~top["placeholder"].astype(bool)
    return named.reindex(vil["village_id"]).fillna(False)


def test_township_coverage_matches_the_raw_layers(county):
    cov = county["kpi"]["coverage"]
    raw = _raw_townships_with_point(county["folder"])
    assert cov["county"]["townships"] == len(raw)
    assert cov["county"]["townships_with_point"] == int(raw.sum())
    assert sorted(t["township_id"] for t in cov["townships_without_point"]) == sorted(raw.index[~raw])
    # the 供电服务站 counts: its township has a point
    assert 0 < cov["county"]["townships_with_point"] < len(raw)
    for row in cov["townships_without_point"]:
        assert row["nearest_point_m"] > 0 and row["nearest_point_id"]
    # station figures add up to the county
    towns = gpd.read_file(county["folder"] / "townships.geojson")
    for sid, fig in cov["stations"].items():
        mine = towns.loc[towns["station_id"] == sid, "township_id"]
        assert fig["townships"] == len(mine)
        assert fig["townships_with_point"] == int(raw.reindex(mine).sum())
    assert sum(f["townships"] for f in cov["stations"].values()) == len(raw)


def test_village_coverage_matches_the_raw_layers(county):
    cov = county["kpi"]["coverage"]
    raw = _raw_village_cover(county["folder"], county["out"])
    assert cov["county"]["villages"] == len(raw)
    assert cov["county"]["villages_covered"] == int(raw.sum())
    assert sorted(v["village_id"] for v in cov["villages_uncovered"]) == sorted(raw.index[~raw.to_numpy()])
    # the station without roster rows leaves its villages without a named manager
    towns = gpd.read_file(county["folder"] / "townships.geojson")
    lost = set(towns.loc[towns["station_id"] == county["no_roster"], "township_id"])
    uncovered_towns = {v["township_id"] for v in cov["villages_uncovered"]}
    assert lost <= uncovered_towns | {county["empty_town"]}
    assert cov["stations"][county["no_roster"]]["villages_covered"] == 0
    assert sum(f["villages"] for f in cov["stations"].values()) == len(raw)


def test_coverage_in_summary_roster_and_map(county):
    c = county["kpi"]["coverage"]["county"]
    assert f"乡乡有点：{c['townships_with_point']}/{c['townships']}" in county["summary"]
    assert f"村村有人：{c['villages_covered']}/{c['villages']}" in county["summary"]
    wb = openpyxl.load_workbook(county["out"] / "roster.xlsx", read_only=True)
    towns = list(wb["乡乡有点"].iter_rows(values_only=True))
    assert f"{c['townships_with_point']}/{c['townships']}" in towns[0][0]
    assert len(towns) - 2 == c["townships"]
    assert sum(r[3] == "是" for r in towns[2:]) == c["townships_with_point"]
    vil = list(wb["村村有人"].iter_rows(values_only=True))
    assert len(vil) - 2 == c["villages"]
    assert sum(r[6] == "是" for r in vil[2:]) == c["villages_covered"]
    html = (county["out"] / "map.html").read_text(encoding="utf-8")
    assert f"村村有人：{c['villages_covered']}/{c['villages']} 个村有实名台区经理" in html


def test_input_notes_are_structured_and_in_the_summary(county):
    inp, notes = county["kpi"]["input"], county["kpi"]["notes"]
    absorbed = {r["township_id"]: r for r in inp["absorbed_townships"]}
    assert set(absorbed) == {county["empty_town"]} and absorbed[county["empty_town"]]["grid_id"]
    assert any(county["empty_town"] in n and "没有台区" in n for n in notes)
    assert [r["station_id"] for r in inp["stations_without_roster"]] == [county["no_roster"]]
    assert any(county["no_roster"] in n and "占位" in n for n in notes)
    snapped = {r["transformer_id"]: r for r in inp["snapped_transformers"]}
    assert county["snapped"] in snapped
    assert snapped[county["snapped"]]["township_id"] == county["snapped_town"]
    assert 100 < snapped[county["snapped"]]["distance_m"] < 1000
    swapped = [row for rec in inp["swapped_rows"] for row in rec["rows"]]
    assert county["swapped"] in swapped
    for needle in (county["snapped"], county["swapped"], "无台区的乡镇", "名册中没有人员的供电所"):
        assert needle in county["summary"]


def test_quiet_prints_nothing_on_success(county, tmp_path):
    result = CliRunner().invoke(main, ["plan", str(county["folder"]), "--out", str(tmp_path / "q"),
                                       "--no-map", "-q"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output == ""
    assert (tmp_path / "q" / "kpi.json").exists()


def test_quiet_still_prints_errors(county, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in county["folder"].iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    ledger = pd.read_csv(bad / "transformers.csv")
    ledger.loc[0, "户数"] = -5
    ledger.to_csv(bad / "transformers.csv", index=False, encoding="utf-8-sig")
    result = CliRunner().invoke(main, ["plan", str(bad), "--out", str(tmp_path / "o"), "-q"],
                                catch_exceptions=False)
    assert result.exit_code == 2
    assert "transformers.csv" in result.output and "规划完成" not in result.output


def test_console_script_quiet_run_prints_nothing_not_even_warnings(county, tmp_path):
    """The real console script under Python's default warning filters (what a user sees).

    RuntimeWarning, FutureWarning and UserWarning are shown by those filters; they must not reach
    the console. (Import-time DeprecationWarnings of old pandas/geopandas, at the lower bounds, are
    hidden by the same default filters.)
    """
    import os
    import subprocess
    import sys

    script = Path(sys.executable).with_name("gridplan")
    cmd = [str(script)] if script.exists() else [sys.executable, "-c", "from gridplan.cli import main; main()"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    for flags, show in ((["-q"], False), ([], True)):
        proc = subprocess.run([*cmd, "plan", str(county["folder"]), "--out", str(tmp_path / f"o{len(flags)}"),
                               "--no-map", *flags], capture_output=True, text=True, timeout=600,
                              cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        assert "Warning" not in proc.stderr, proc.stderr
        assert ("规划完成" in proc.stdout) is show
        if not show:
            assert proc.stdout == "" and proc.stderr == ""


def test_quiet_merge_and_wallmap_print_nothing(county, tmp_path):
    merge = CliRunner().invoke(main, ["merge", str(county["folder"]), "--stations", "S01,S02",
                                      "--out", str(tmp_path / "m"), "--no-map", "-q"],
                               catch_exceptions=False)
    assert merge.exit_code == 0 and merge.output == ""
    wall = CliRunner().invoke(main, ["wallmap", str(county["out"]), "--station", "S01",
                                     "--out", str(tmp_path / "w.png"), "--dpi", "20", "-q"],
                              catch_exceptions=False)
    assert wall.exit_code == 0 and wall.output == ""
    assert (tmp_path / "w.png").exists() and any((tmp_path / "m").iterdir())
