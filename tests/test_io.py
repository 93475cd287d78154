"""gridplan.io: what a file really is, encodings, header aliases, numbers stored as text."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from gridplan import io


@pytest.mark.parametrize("header, canon", [
    ("台区编号", "transformer_id"), ("台区编码", "transformer_id"), ("台区ID", "transformer_id"),
    (" 容量（kVA） ", "capacity_kva"), ("容量[KVA]", "capacity_kva"), ("配变容量", "capacity_kva"),
    ("户数", "customers"), ("用户数量", "customers"), ("所属线路", "feeder_id"), ("馈线", "feeder_id"),
    ("经度", "lon"), ("LNG", "lon"), ("Long", "lon"), ("x", "lon"), ("纬度", "lat"),
    ("运行状态", "status"), ("行政村", "village"), ("Transformer ID", "transformer_id"),
    ("capacity_k", "capacity_kva"),  # a shapefile's 10-character column name
])
def test_ledger_header_aliases(header, canon):
    frame = io.rename_columns(pd.DataFrame({header: [1]}), "transformers")
    assert list(frame.columns) == [canon]
    assert frame.attrs["source_columns"] == [header]


@pytest.mark.parametrize("header, canon", [("工号", "manager_id"), ("人员编号", "manager_id"),
                                           ("姓名", "name"), ("手机", "phone"), ("联系电话", "phone"),
                                           ("最大工作量", "max_workload"), ("所属供电所", "station_id")])
def test_manager_header_aliases(header, canon):
    assert list(io.rename_columns(pd.DataFrame({header: [1]}), "managers").columns) == [canon]


def test_first_alias_wins_when_two_columns_mean_the_same():
    frame = io.rename_columns(pd.DataFrame({"id": [1], "台区编号": [2]}), "transformers")
    assert list(frame.columns) == ["id", "transformer_id"]
    assert frame["transformer_id"].iloc[0] == 2


def test_no_alias_is_ambiguous_within_a_layer():
    for layer in io.ALIASES:
        seen: dict[str, str] = {}
        for canon, names in io.ALIASES[layer].items():
            for n in names:
                key = io.normalize_header(n)
                assert seen.setdefault(key, canon) == canon, (layer, n)


def test_numbers_stored_as_text():
    vals, bad = io.parse_numbers(pd.Series(["114.2", " 114.2 ", "114.2°", "114,2", "１１４.２",
                                            "114°12'00\"", "200kVA", None, "", "abc", 3]))
    assert np.allclose(vals[:7], [114.2, 114.2, 114.2, 114.2, 114.2, 114.2, 200.0])
    assert np.isnan(vals[7:10]).all() and vals[10] == 3
    assert bad.tolist() == [False] * 9 + [True, False]


def test_thousands_only_for_counts():
    assert io.parse_numbers(pd.Series(["1,234"]), thousands=True)[0][0] == 1234
    assert io.parse_numbers(pd.Series(["1,234"]))[0][0] == pytest.approx(1.234)


def test_ids_keep_text_and_drop_float_zeros():
    assert io.as_ids(pd.Series([1001.0, "007", " A1 ", None, np.nan, "12.0"])).tolist() == \
        ["1001", "007", "A1", None, None, "12"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_csv_encodings(tmp_path, encoding):
    path = tmp_path / "t.csv"
    pd.DataFrame({"台区编号": ["007"], "台区名称": ["城关1号"], "经度": ["114.2"]}).to_csv(
        path, index=False, encoding=encoding)
    rr = io.read_table(path, layer="transformers")
    assert rr.frame[["transformer_id", "name", "lon"]].iloc[0].tolist() == ["007", "城关1号", "114.2"]
    assert rr.frame["_row"].tolist() == [2]


def test_csv_semicolon_and_title_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("城关供电所台区台账\n\n台区编号;经度;纬度\nA;114,2;30,1\n", encoding="utf-8")
    frame = io.read_table(path, layer="transformers").frame
    assert frame[["transformer_id", "lon"]].iloc[0].tolist() == ["A", "114,2"]
    assert frame["_row"].tolist() == [4]  # the spreadsheet row the user sees


def test_xlsx_numbers_come_back_as_text(tmp_path):
    path = tmp_path / "t.xlsx"
    pd.DataFrame({"台区编号": [1001, 1002], "容量(kVA)": [200, 315.5]}).to_excel(path, index=False)
    frame = io.read_table(path, layer="transformers").frame
    assert frame["transformer_id"].tolist() == ["1001", "1002"]
    assert frame["capacity_kva"].tolist() == ["200", "315.5"]


@pytest.mark.parametrize("name, content, what", [
    ("a.xlsx", b"id,name\n1,a\n", "plain text / CSV"),
    ("a.xlsx", b"<!DOCTYPE html><html><table></table></html>", "HTML page"),
    ("a.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 100, "old-style .xls"),
    ("a.csv", b"PK\x03\x04" + b"\x00" * 100, "Excel .xlsx workbook"),
    ("a.geojson", b"id,name\n1,a\n", "plain text / CSV"),
    ("a.gpkg", b'{"type": "FeatureCollection"}', "JSON"),
    ("a.csv", b"", "empty"),
])
def test_sniff_refuses_a_file_that_is_not_what_its_name_says(tmp_path, name, content, what):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(io.FileKindError) as exc:
        io.sniff(path)
    assert what in exc.value.what and exc.value.fix


def test_shapefile_without_dbf(tmp_path):
    gpd.GeoDataFrame({"a": [1]}, geometry=[box(0, 0, 1, 1)], crs=4326).to_file(tmp_path / "t.shp")
    (tmp_path / "t.dbf").unlink()
    with pytest.raises(io.FileKindError) as exc:
        io.sniff(tmp_path / "t.shp")
    assert ".dbf" in exc.value.what


@pytest.mark.parametrize("keep_cpg", [True, False])
def test_gbk_shapefile(tmp_path, keep_cpg):
    gdf = gpd.GeoDataFrame({"乡镇编号": ["T1"], "乡镇名称": ["城关镇"], "供电所": ["城关供电所"]},
                           geometry=[box(114, 30, 114.1, 30.1)], crs=4326)
    gdf.to_file(tmp_path / "townships.shp", engine="pyogrio", encoding="GBK")
    assert (tmp_path / "townships.cpg").exists()
    if not keep_cpg:
        (tmp_path / "townships.cpg").unlink()
    rr = io.read_layer(tmp_path / "townships.shp", layer="townships")
    assert rr.frame[["township_id", "name", "station_id"]].iloc[0].tolist() == ["T1", "城关镇", "城关供电所"]
    assert rr.crs is not None and rr.crs.to_epsg() == 4326  # the .prj
    assert rr.encoding == "GB18030"


def test_geojson_declares_crs_only_with_a_crs_member(tmp_path):
    gdf = gpd.GeoDataFrame({"township_id": ["T1"]}, geometry=[box(114, 30, 114.1, 30.1)], crs=4326)
    (tmp_path / "plain.geojson").write_text(gdf.to_json(), encoding="utf-8")
    gdf.to_file(tmp_path / "with.geojson", driver="GeoJSON")
    assert io.read_layer(tmp_path / "plain.geojson").crs is None  # RFC 7946: follows coords
    assert io.read_layer(tmp_path / "with.geojson").crs is not None


def test_gpkg_layer_by_name(tmp_path):
    path = tmp_path / "all.gpkg"
    g = gpd.GeoDataFrame({"v": [1]}, geometry=[box(0, 0, 1, 1)], crs=4547)
    g.to_file(path, layer="other")
    g.assign(v=2).to_file(path, layer="townships")
    rr = io.read_layer(path, layer="townships")
    assert rr.frame["v"].tolist() == [2] and rr.crs.to_epsg() == 4547
