"""load_county on the small generated county: the good path, every bad input, real geometry."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from countygen import make_county_dir
from shapely.geometry import Polygon

from gridplan import InputError, coords
from gridplan.io.load import load_county

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
YILAN = SHARED / "townships" / "10002_宜蘭縣_towns.geojson"
YILAN_VILLAGES = SHARED / "townships" / "10002_宜蘭縣_villages.geojson"


def problems_of(folder: Path, **kw) -> list:
    with pytest.raises(InputError) as exc:
        load_county(folder, **kw)
    return exc.value.problems


def find(problems: list, text: str):
    hits = [p for p in problems if text in p.what]
    assert hits, f"no problem mentions {text!r}: {[p.what for p in problems]}"
    return hits[0]


def set_cell(df: pd.DataFrame, tid: str, col: str, value) -> pd.DataFrame:
    df[col] = df[col].astype(object)
    df.loc[df["transformer_id"] == tid, col] = value
    return df


# ----------------------------------------------------------------------------- good path

def test_good_county_loads_in_metres(tmp_path):
    county = load_county(make_county_dir(tmp_path))
    assert county.crs.is_projected and county.crs.to_epsg() == 4547  # CGCS2000 GK CM 114E
    assert len(county.townships) == 4 and len(county.transformers) == 24
    tr = county.transformers
    assert list(tr.columns[:9]) == ["transformer_id", "name", "customers", "capacity_kva",
                                     "feeder_id", "status", "township_id", "station_id", "village"]
    # TQ001 is in the south-west township T1 (station S1), TQ024 in the north-east T4 (S2).
    row = tr.set_index("transformer_id")
    assert row.loc["TQ001", "township_id"] == "T1" and row.loc["TQ001", "station_id"] == "S1"
    assert row.loc["TQ024", "township_id"] == "T4" and row.loc["TQ024", "station_id"] == "S2"
    # 0.1 degree of latitude is about 11.1 km: areas and distances are metres.
    assert county.townships.area.iloc[0] == pytest.approx(9.6e3 * 11.1e3, rel=0.02)
    assert county.report == []
    assert county.managers["station_id"].tolist() == ["S1", "S1", "S2", "S2"]
    assert county.switches["normally_open"].tolist() == [False, True]
    assert all(layer.crs == county.crs for layer in county.layers().values())


def test_checksums_are_sha256_of_every_file(tmp_path):
    folder = make_county_dir(tmp_path, toml="[plan]\ncapacity = 900\n")
    county = load_county(folder)
    assert county.params.capacity == 900
    names = sorted(p.name for p in folder.iterdir())
    assert sorted(county.checksums) == names
    want = hashlib.sha256((folder / "transformers.csv").read_bytes()).hexdigest()
    assert county.checksums["transformers.csv"] == want


def test_same_input_same_county(tmp_path):
    folder = make_county_dir(tmp_path)
    a, b = load_county(folder), load_county(folder)
    pd.testing.assert_frame_equal(a.transformers.to_wkt(), b.transformers.to_wkt())


def test_retired_are_excluded_and_counted(tmp_path):
    def retire(df):
        df.loc[:2, "status"] = ["停运", "已拆除", "Out of Service"]
        return df
    county = load_county(make_county_dir(tmp_path, edit_ledger=retire))
    assert len(county.transformers) == 21
    assert "已排除 3 个停运/拆除台区" in county.report[0]


def test_xlsx_with_chinese_headers_and_title_row(tmp_path):
    folder = make_county_dir(tmp_path, ledger_format="xlsx", chinese_headers=True)
    # Put a title row above the header, as exports from marketing systems do.
    df = pd.read_excel(folder / "transformers.xlsx", dtype=str)
    with pd.ExcelWriter(folder / "transformers.xlsx") as xw:
        pd.DataFrame([["城关供电所台区台账"]]).to_excel(xw, index=False, header=False)
        df.to_excel(xw, index=False, startrow=2)
    county = load_county(folder)
    assert len(county.transformers) == 24
    assert county.transformers["capacity_kva"].notna().all()


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk"])
def test_bom_and_gbk_csv_with_chinese_headers(tmp_path, encoding):
    folder = make_county_dir(tmp_path, encoding=encoding, chinese_headers=True)
    county = load_county(folder)
    assert county.transformers["name"].iloc[0] == "1号台区"
    assert county.transformers["village"].iloc[0] == "村1"
    assert county.managers["name"].tolist() == ["张三", "李四", "王五", "赵六"]


def test_text_coordinates(tmp_path):
    def text(df):
        df["lon"] = [f" {v} " if i % 3 == 0 else (f"{v}°" if i % 3 == 1 else str(v).replace(".", ","))
                     for i, v in enumerate(df["lon"])]
        df["lat"] = df["lat"].astype(str)
        return df
    good = load_county(make_county_dir(tmp_path / "a"))
    county = load_county(make_county_dir(tmp_path / "b", edit_ledger=text))
    assert np.allclose(county.transformers.geometry.x, good.transformers.geometry.x)


def test_swapped_lonlat_rows_are_swapped_back(tmp_path):
    def swap(df):
        df.loc[[3, 7], ["lon", "lat"]] = df.loc[[3, 7], ["lat", "lon"]].to_numpy()
        return df
    good = load_county(make_county_dir(tmp_path / "a"))
    county = load_county(make_county_dir(tmp_path / "b", edit_ledger=swap))
    assert np.allclose(county.transformers.geometry.y, good.transformers.geometry.y)
    assert any("经纬度填反" in r and "TQ004" in r and "TQ008" in r for r in county.report)


def test_gcj02_input_is_converted(tmp_path):
    good = load_county(make_county_dir(tmp_path / "a"))
    folder = make_county_dir(tmp_path / "b", coords="gcj02", toml='[input]\ncoords = "gcj02"\n')
    county = load_county(folder)
    moved = county.transformers.distance(good.transformers)
    assert moved.max() < 0.5  # metres: converted back onto the WGS84 positions
    # Read as if WGS84, the same file is hundreds of metres off.
    naive = load_county(folder, coords="wgs84")
    off = naive.transformers.distance(good.transformers)
    assert off.min() > 200 and off.max() < 1000


def test_coords_by_layer_wins_over_a_declared_crs(tmp_path):
    folder = make_county_dir(tmp_path)
    town = gpd.read_file(folder / "townships.geojson")
    x, y = coords.from_wgs84(*shapely.get_coordinates(town.geometry).T, "gcj02")
    moved = town.copy()
    moved.geometry = shapely.set_coordinates(town.geometry.to_numpy().copy(), np.column_stack([x, y]))
    moved.to_file(folder / "townships.geojson", driver="GeoJSON")  # GDAL writes a crs member
    county = load_county(folder, coords="gcj02", coords_by_layer={"transformers": "wgs84",
                                                                   "townships": "gcj02"})
    good = load_county(make_county_dir(tmp_path / "good"))
    assert county.townships.geometry.iloc[0].equals_exact(good.townships.geometry.iloc[0], 0.5)
    # Issue #11: without the override, the explicit coords beats the file's geographic (CRS84)
    # header, which cannot tell WGS84 from GCJ-02: the townships are converted too.
    stated = load_county(folder, coords="gcj02", coords_by_layer={"transformers": "wgs84"},
                         snap_tolerance_m=0)
    assert stated.townships.geometry.iloc[0].equals_exact(good.townships.geometry.iloc[0], 0.5)


@pytest.mark.filterwarnings("ignore:.*(truncated|[Ll]aundered).*")
def test_gbk_shapefile_townships(tmp_path):
    """Column names cut to 10 characters (township_i) and GBK text with no .cpg both read."""
    folder = make_county_dir(tmp_path)
    town = gpd.read_file(folder / "townships.geojson")
    (folder / "townships.geojson").unlink()
    town.to_file(folder / "townships.shp", engine="pyogrio", encoding="GBK")
    (folder / "townships.cpg").unlink()  # no .cpg: gridplan must guess GBK
    county = load_county(folder)
    assert county.townships["name"].tolist() == ["乡镇1", "乡镇2", "乡镇3", "乡镇4"]
    assert "townships.dbf" in county.checksums


def test_snap_tolerance_snaps_near_misses(tmp_path):
    def outside(df):  # ~300 m south of the county's southern border
        return set_cell(df, "TQ002", "lat", 29.9973)
    folder = make_county_dir(tmp_path, edit_ledger=outside)
    probs = problems_of(folder, snap_tolerance_m=0)  # the default (1 km, issue #11) snaps it
    p = find(probs, "lie in no township")
    assert p.rows[0].startswith("TQ002 (") and " m from T1" in p.rows[0]
    # ~300 m, measured from the point on the 10 m coordinate grid (issue #16: up to 7 m off)
    suggested = int(re.search(r"snap_tolerance_m = (\d+)", p.fix).group(1))
    assert 290 <= suggested <= 310, p.fix
    county = load_county(folder, snap_tolerance_m=500)
    assert county.transformers.set_index("transformer_id").loc["TQ002", "township_id"] == "T1"
    assert any("TQ002" in r and "最近的乡镇" in r for r in county.report)


def test_ledger_station_disagreeing_with_location_is_reported(tmp_path):
    def wrong(df):
        df["station_id"] = "S1"
        return df
    county = load_county(make_county_dir(tmp_path, edit_ledger=wrong))
    assert any("12 个台区台账中的所属供电所与其位置不符" in r for r in county.report)
    assert (county.transformers["station_id"] == "S2").sum() == 12


def test_managers_station_given_by_name(tmp_path):
    def by_name(df):
        df["station_id"] = ["城关供电所", "S1", "河口供电所", "S2"]
        return df
    county = load_county(make_county_dir(tmp_path, edit_managers=by_name))
    assert county.managers["station_id"].tolist() == ["S1", "S1", "S2", "S2"]


# ----------------------------------------------------------------------------- bad inputs

def test_not_a_folder(tmp_path):
    probs = problems_of(tmp_path / "nope")
    assert "is not a folder" in probs[0].what


def test_missing_file(tmp_path):
    folder = make_county_dir(tmp_path)
    (folder / "transformers.csv").unlink()
    p = find(problems_of(folder), "has no transformers file")
    assert ".csv" in p.fix and ".xlsx" in p.fix and "townships.geojson" in p.fix


def test_two_files_for_one_layer(tmp_path):
    folder = make_county_dir(tmp_path)
    (folder / "transformers.xlsx").write_bytes(b"")
    p = find(problems_of(folder), "more than one file")
    assert "transformers.csv" in p.what and "transformers.xlsx" in p.what


def test_missing_column_names_the_aliases(tmp_path):
    folder = make_county_dir(tmp_path, chinese_headers=True,
                             edit_ledger=lambda df: df.drop(columns="customers"))
    p = find(problems_of(folder), "missing column 'customers'")
    assert "用户数" in p.fix and "户数" in p.fix and "台区编号" in p.fix  # found columns listed


def test_duplicate_ids(tmp_path):
    def dup(df):
        return set_cell(df, "TQ005", "transformer_id", "TQ004")
    p = find(problems_of(make_county_dir(tmp_path, edit_ledger=dup)), "occur more than once")
    assert p.rows == ("TQ004 (×2)",) and "unique" in p.fix


def test_missing_ids_use_row_numbers(tmp_path):
    p = find(problems_of(make_county_dir(tmp_path, edit_ledger=lambda df: set_cell(
        df, "TQ003", "transformer_id", None))), "have no transformer_id")
    assert p.rows == ("row 4",)  # header is row 1, TQ001 row 2


def test_missing_zero_and_nonnumeric_coordinates(tmp_path):
    def bad(df):
        set_cell(df, "TQ001", "lon", None)
        set_cell(df, "TQ002", "lat", 0)
        return set_cell(df, "TQ003", "lon", "东经114度")
    probs = problems_of(make_county_dir(tmp_path, edit_ledger=bad))
    assert find(probs, "have no coordinates").rows == ("TQ001",)
    assert find(probs, "equal to 0").rows == ("TQ002",)
    p = find(probs, "not numbers")
    assert p.rows == ("TQ003",) and "decimal degrees" in p.fix


def test_point_outside_the_county(tmp_path):
    def far(df):
        return set_cell(df, "TQ010", "lon", 116.5)
    p = find(problems_of(make_county_dir(tmp_path, edit_ledger=far)), "outside the county")
    assert p.rows[0].startswith("TQ010 (") and "km from" in p.rows[0]
    assert "coordinate system" in p.fix


def test_projected_values_in_a_lonlat_ledger(tmp_path):
    def metres(df):
        return set_cell(df, "TQ010", "lon", 38500000.0)
    p = find(problems_of(make_county_dir(tmp_path, edit_ledger=metres)), "outside longitude")
    assert p.rows == ("TQ010",) and "gk3" in p.fix


def _edit_town(i: int, geom):
    def edit(gdf):
        gdf = gdf.copy()
        gdf.loc[i, "geometry"] = geom
        return gdf
    return edit


def test_invalid_township_repaired_when_area_unchanged(tmp_path):
    # T1 with a zero-width spike out of its southern edge: invalid, make_valid keeps the area.
    spiked = Polygon([(114.0, 30.0), (114.05, 30.0), (114.05, 29.99), (114.05, 30.0), (114.1, 30.0),
                      (114.1, 30.1), (114.0, 30.1)])
    assert not spiked.is_valid
    county = load_county(make_county_dir(tmp_path, edit_townships=_edit_town(0, spiked)))
    assert county.townships.is_valid.all()
    assert any("已修复 1 个无效的乡镇多边形" in r and "T1" in r for r in county.report)


def test_bowtie_township_is_an_error(tmp_path):
    bowtie = Polygon([(114.0, 30.0), (114.1, 30.1), (114.1, 30.0), (114.0, 30.1), (114.0, 30.0)])
    probs = problems_of(make_county_dir(tmp_path, edit_townships=_edit_town(0, bowtie)))
    p = find(probs, "cannot be repaired")
    assert p.rows[0].startswith("T1 (Self-intersection") and "Fix Geometries" in p.fix


def test_overlapping_townships(tmp_path):
    # T1 reaches 0.01° into T2 (keeping the vertex at T1's old corner, so T3's border is shared).
    grown = Polygon([(114.0, 30.0), (114.11, 30.0), (114.11, 30.1), (114.1, 30.1), (114.0, 30.1)])
    p = find(problems_of(make_county_dir(tmp_path, edit_townships=_edit_town(0, grown))),
             "overlap")
    assert len(p.rows) == 1 and p.rows[0].startswith("T1 & T2 (") and "m²" in p.rows[0]
    area = float(p.rows[0].split("(")[1].split(" m²")[0].replace(",", ""))
    assert area == pytest.approx(0.01 / 0.1 * 9.6e3 * 11.1e3, rel=0.03)


def test_township_with_unknown_station(tmp_path):
    def edit(gdf):
        gdf = gdf.copy()
        gdf.loc[3, "station_id"] = "S9"
        return gdf
    p = find(problems_of(make_county_dir(tmp_path, edit_townships=edit)), "not in stations")
    assert p.rows == ("T4 (S9)",) and "S1, S2" in p.fix


def test_negative_missing_and_nonnumeric_customers(tmp_path):
    def bad(df):
        set_cell(df, "TQ001", "customers", -5)
        set_cell(df, "TQ002", "customers", None)
        return set_cell(df, "TQ003", "customers", "很多")
    probs = problems_of(make_county_dir(tmp_path, edit_ledger=bad))
    assert find(probs, "negative 'customers'").rows == ("TQ001 (-5)",)
    assert find(probs, "have no 'customers'").rows == ("TQ002",)
    assert find(probs, "'customers' are not numbers").rows == ("TQ003 ('很多')",)


def test_empty_ledger_after_retired(tmp_path):
    folder = make_county_dir(tmp_path, edit_ledger=lambda df: df.assign(status="拆除"))
    p = find(problems_of(folder), "no 台区 in service")
    assert "all 24 are retired" in p.what and "运行" in p.fix


def test_unknown_coordinate_system(tmp_path):
    folder = make_county_dir(tmp_path, toml='[input]\ncoords = "mars2000"\n')
    p = find(problems_of(folder), "unknown coordinate system")
    assert "gcj02" in p.fix
    p = find(problems_of(make_county_dir(tmp_path / "b"), coords_by_layer={"roads": "xyz"}),
             "unknown coordinate system")
    assert "roads" in p.file


@pytest.mark.parametrize("content, words", [
    (b"transformer_id,name\nTQ1,a\n", ("plain text / CSV", "rename it to transformers.csv")),
    (b"<html><body><table><tr><td>1</td></tr></table></body></html>", ("HTML page", "Save As")),
])
def test_xlsx_that_is_not_xlsx(tmp_path, content, words):
    folder = make_county_dir(tmp_path)
    (folder / "transformers.csv").unlink()
    (folder / "transformers.xlsx").write_bytes(content)
    p = find(problems_of(folder), "is not a .xlsx file")
    assert p.file == "transformers.xlsx" and words[0] in p.what and words[1] in p.fix


def test_geojson_that_is_not_json(tmp_path):
    folder = make_county_dir(tmp_path)
    (folder / "stations.geojson").write_text("station_id,name\nS1,a\n", encoding="utf-8")
    p = find(problems_of(folder), "is not a .geojson file")
    assert p.file == "stations.geojson" and "rename it to stations.csv" in p.fix


def test_bad_managers(tmp_path):
    def edit(df):
        df.loc[1, "manager_id"] = "M1"
        df.loc[2, "station_id"] = "S7"
        df.loc[3, "max_workload"] = "无"
        return df
    probs = problems_of(make_county_dir(tmp_path, edit_managers=edit))
    assert find(probs, "manager_id value(s) occur more than once").rows == ("M1 (×2)",)
    assert find(probs, "station_id that is not in stations").rows == ("M3 (S7)",)
    assert find(probs, "'max_workload' are not numbers").rows == ("M4 ('无')",)


def test_every_problem_is_collected(tmp_path):
    def ledger(df):
        set_cell(df, "TQ001", "customers", -1)
        return set_cell(df, "TQ002", "lon", "x")
    folder = make_county_dir(tmp_path, edit_ledger=ledger,
                             edit_managers=lambda df: df.drop(columns="name"),
                             toml="[plan]\ncapacity = -1\n")
    with pytest.raises(InputError) as exc:
        load_county(folder)
    whats = [p.what for p in exc.value.problems]
    assert len(whats) >= 4, whats
    text = str(exc.value)
    for part in ("capacity must be > 0", "missing column 'name'", "negative 'customers'",
                 "not numbers", "managers.csv", "transformers.csv"):
        assert part in text


# ----------------------------------------------------------------------------- real geometry

@pytest.mark.skipif(not YILAN.exists(), reason="../shared/data not present (only in the dev workspace)")
def test_real_townships_of_yilan(tmp_path):
    """Real 宜蘭縣 townships (TOWNCODE/TOWNNAME columns) with 台区 seeded inside real villages."""
    towns = gpd.read_file(YILAN)
    villages = gpd.read_file(YILAN_VILLAGES)
    folder = tmp_path / "yilan"
    folder.mkdir()
    towns = towns[["TOWNCODE", "TOWNNAME", "geometry"]].assign(供电所="S1")
    towns.to_file(folder / "townships.geojson", driver="GeoJSON")
    gpd.GeoDataFrame({"station_id": ["S1"], "name": ["宜兰供电所"]},
                     geometry=[towns.union_all().representative_point()], crs=4326
                     ).to_file(folder / "stations.geojson", driver="GeoJSON")
    rng = np.random.default_rng(7)
    pick = villages.iloc[np.sort(rng.choice(len(villages), 60, replace=False))]
    pts = pick.geometry.representative_point()
    ledger = pd.DataFrame({"台区编号": [f"Y{i:03d}" for i in range(len(pick))],
                           "台区名称": pick["VILLNAME"].to_numpy(), "经度": pts.x.round(7),
                           "纬度": pts.y.round(7), "户数": rng.integers(10, 300, len(pick)),
                           "容量(kVA)": 200, "村": pick["VILLNAME"].to_numpy()})
    ledger.to_csv(folder / "transformers.csv", index=False, encoding="utf-8-sig")
    county = load_county(folder)
    assert len(county.townships) == len(towns) and len(county.transformers) == 60
    assert county.crs.to_epsg() == 4550  # centre ~121.6E: the 3-degree zone of CM 123E
    assert county.transformers["township_id"].tolist() == pick["TOWNCODE"].tolist()
    assert county.townships.is_valid.all() and county.report == []
