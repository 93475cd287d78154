"""Values and errors through the CLI: households, plausibility, statuses, gridplan.toml types,
UTF-16 CSVs, ZIP files that are not workbooks, swapped rows listed with the other problems.

Every bad input exits with status 2, names the file and the rows (or the key), says how to fix it,
writes nothing and shows no traceback.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from countygen import make_county_dir

from gridplan.cli import main
from gridplan.io import validate as V


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def set_cell(df: pd.DataFrame, tid: str, col: str, value: object) -> pd.DataFrame:
    df[col] = df[col].astype(object)
    df.loc[df["transformer_id"] == tid, col] = value
    return df


def refused(folder: Path, tmp_path: Path, *parts: str) -> str:
    out = tmp_path / "out"
    res = run("plan", folder, "--out", out, "--no-map")
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    assert not out.exists()
    for part in parts:
        assert part in res.output, (part, res.output)
    return res.output


def planned(folder: Path, tmp_path: Path) -> str:
    res = run("plan", folder, "--out", tmp_path / "out", "--no-map")
    assert res.exit_code == 0, res.output
    return res.output


# ----------------------------------------------------------------------------- households, kVA

def test_fractional_households_name_the_rows(tmp_path):
    folder = make_county_dir(tmp_path, edit_ledger=lambda df: set_cell(
        set_cell(df, "TQ004", "customers", 12.5), "TQ009", "customers", "7.25"))
    refused(folder, tmp_path, "transformers.csv", "not a whole number", "TQ004 (12.5)", "TQ009 (7.25)")


def test_households_as_text_and_whole_floats_are_fine(tmp_path):
    def edit(df):
        df["customers"] = df["customers"].astype(object)
        df.loc[0, "customers"] = "12"
        df.loc[1, "customers"] = "1,200"
        df.loc[2, "customers"] = 30.0
        return df
    folder = make_county_dir(tmp_path, ledger_format="xlsx", edit_ledger=edit)
    planned(folder, tmp_path)
    import geopandas as gpd

    tr = gpd.read_file(tmp_path / "out" / "plan.gpkg", layer="transformers").set_index("transformer_id")
    assert tr.loc["TQ001", "customers"] == 12 and tr.loc["TQ002", "customers"] == 1200
    assert tr.loc["TQ003", "customers"] == 30


def test_implausible_values_name_the_rows(tmp_path):
    def edit(df):
        set_cell(df, "TQ002", "customers", "1e12")
        set_cell(df, "TQ003", "customers", V.MAX_CUSTOMERS + 1)
        set_cell(df, "TQ005", "customers", V.MAX_CUSTOMERS)  # the limit itself is accepted
        return set_cell(df, "TQ004", "capacity_kva", 20000)
    folder = make_county_dir(tmp_path, edit_ledger=edit)
    out = refused(folder, tmp_path, "implausible 'customers'", "more than 5,000 households",
                  "TQ002 (1,000,000,000,000)", "TQ003 (5,001)",
                  "implausible 'capacity_kva'", "10,000 kVA", "TQ004 (20,000)")
    assert "TQ005" not in out


def test_thresholds_are_in_the_readme():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"{V.MAX_CUSTOMERS:,}" in readme and f"{V.MAX_CAPACITY_KVA:,.0f}" in readme


def test_infinite_households_are_an_error(tmp_path):
    folder = make_county_dir(tmp_path, edit_ledger=lambda df: set_cell(df, "TQ001", "customers", "inf"))
    refused(folder, tmp_path, "'customers' are infinite", "TQ001")


# ----------------------------------------------------------------------------- status

def test_unknown_status_lists_the_accepted_ones(tmp_path):
    def edit(df):
        set_cell(df, "TQ001", "status", "待定")
        set_cell(df, "TQ002", "status", "foo")
        set_cell(df, "TQ003", "status", "停运")   # retired: left out, fine
        return set_cell(df, "TQ004", "status", "在运")
    folder = make_county_dir(tmp_path, edit_ledger=edit)
    out = refused(folder, tmp_path, "unknown status", "TQ001 ('待定')", "TQ002 ('foo')", "运行", "停运", "拆除")
    assert "TQ003" not in out.split("unknown status")[1].split("\n")[1]


def test_known_statuses_plan(tmp_path):
    words = ["运行", "在运", "正常运行", "投运", "", "备用", "In service", "拆除"]

    def edit(df):
        df["status"] = [words[i % len(words)] for i in range(len(df))]
        return df
    folder = make_county_dir(tmp_path, edit_ledger=edit)
    planned(folder, tmp_path)


# ----------------------------------------------------------------------------- gridplan.toml

@pytest.mark.parametrize("toml, parts", [
    ('[plan]\ncapacity = "abc"\n', ("[plan] capacity must be a number", "got str 'abc'", "capacity = 1500")),
    ("[plan]\nseed = 1.5\n", ("seed must be a whole number", "seed = 0")),
    ("[plan]\nscope = 3\n", ("scope must be a text", 'scope = "township"')),
    ('[map]\noffline_assets = "yes"\n', ("offline_assets must be true or false", "offline_assets = true")),
    ("[input]\nsnap_tolerance_m = [1, 2]\n", ("snap_tolerance_m must be a number", "snap_tolerance_m = ")),
    ("[plan]\ntolerance = nan\n", ("tolerance must be a number", "nan")),
    ("[plan]\ncapacty = 900\n", ("unknown parameter 'capacty' in [plan]", "capacity")),
    ("[planning]\ncapacity = 900\n", ("unknown section [planning]", "[plan]")),
    ("capacity = 900\n", ("'capacity' is outside every section", "[plan] capacity = 1500")),
    ("[hv]\ncapacity = 900\n", ("'capacity' belongs under [plan], not [hv]",)),
    ("plan = 3\n", ("plan must be a section",)),
    ('[response.commitments]\n"城区" = "fast"\n', ("commitments must be a table of numbers",)),
    ('[response.commitments]\n"郊区" = 60\n', ("unknown area class", "郊区")),
    ('[input.coords_by_layer]\ntownships = 4\n', ("coords_by_layer must be a table of texts",)),
    ("[plan]\ntime_limit = -5\n", ("time_limit must be > 0",)),
    ("[input]\nsnap_tolerance_m = -1\n", ("snap_tolerance_m must be >= 0",)),
    ('[response]\narea_class = "郊区"\n', ("area_class must be one of",)),
    ("[plan\ncapacity = 1\n", ("not a valid TOML file",)),
])
def test_every_toml_key_is_type_checked(tmp_path, toml, parts):
    folder = make_county_dir(tmp_path, toml=toml)
    refused(folder, tmp_path, "gridplan.toml", *parts)


def test_toml_problems_are_all_listed_at_once(tmp_path):
    folder = make_county_dir(tmp_path, toml='[plan]\ncapacity = "abc"\nseed = "x"\n[weird]\n')
    refused(folder, tmp_path, "capacity must be a number", "seed must be a whole number", "[weird]")


def test_good_toml_with_tables_plans(tmp_path):
    toml = ('[input]\ncounty_name = "测试县"\n[plan]\ncapacity = 2500\nseed = 3\n'
            '[response]\nspeed_kmh = 25\n[response.commitments]\n"农村" = 80\n')
    folder = make_county_dir(tmp_path, toml=toml)
    assert "测试县" in planned(folder, tmp_path)


def test_library_overrides_are_type_checked(tmp_path):
    import gridplan

    folder = make_county_dir(tmp_path)
    with pytest.raises(gridplan.InputError, match="capacity must be a number"):
        gridplan.load_county(folder, capacity="abc")
    county = gridplan.load_county(folder)
    with pytest.raises(gridplan.InputError, match="tolerance must be a number"):
        gridplan.plan(county, tolerance="5%")


# ----------------------------------------------------------------------------- files

@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_csv_is_read(tmp_path, encoding):
    folder = make_county_dir(tmp_path, chinese_headers=True)
    text = (folder / "transformers.csv").read_text(encoding="utf-8")
    (folder / "transformers.csv").write_bytes(text.encode(encoding))
    planned(folder, tmp_path)


def test_excel_unicode_text_tab_separated_utf16(tmp_path):
    folder = make_county_dir(tmp_path, chinese_headers=True)
    df = pd.read_csv(folder / "transformers.csv", dtype=str)
    (folder / "transformers.csv").unlink()
    (folder / "transformers.txt").write_bytes(df.to_csv(sep="\t", index=False, lineterminator="\r\n")
                                              .encode("utf-16"))
    planned(folder, tmp_path)


def test_zip_that_is_not_a_workbook(tmp_path):
    folder = make_county_dir(tmp_path)
    (folder / "transformers.csv").unlink()
    with zipfile.ZipFile(folder / "transformers.xlsx", "w") as zf:
        zf.writestr("transformers.shp", b"x")
        zf.writestr("transformers.dbf", b"x")
    refused(folder, tmp_path, "transformers.xlsx", "ZIP archive of a shapefile, not a workbook",
            "transformers.shp", "unzip it")


def test_zip_of_a_csv_and_a_damaged_workbook(tmp_path):
    folder = make_county_dir(tmp_path)
    with zipfile.ZipFile(folder / "managers.xlsx", "w") as zf:
        zf.writestr("managers.csv", "工号,姓名\n")
    (folder / "managers.csv").unlink()
    (folder / "stations.geojson").rename(folder / "stations.xlsx")
    (folder / "stations.xlsx").write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    refused(folder, tmp_path, "managers.xlsx", "ZIP archive, not a workbook", "managers.csv",
            "stations.xlsx", "damaged")


def test_word_document_named_xlsx(tmp_path):
    folder = make_county_dir(tmp_path)
    (folder / "managers.csv").unlink()
    with zipfile.ZipFile(folder / "managers.xlsx", "w") as zf:
        zf.writestr("word/document.xml", "<w/>")
    refused(folder, tmp_path, "managers.xlsx", "Word document")


# ----------------------------------------------------------------------------- swapped rows

def test_swapped_rows_are_listed_when_the_run_fails_for_another_reason(tmp_path):
    def edit(df):
        for tid in ("TQ003", "TQ007"):
            row = df["transformer_id"] == tid
            df.loc[row, ["lon", "lat"]] = df.loc[row, ["lat", "lon"]].to_numpy()
        return set_cell(df, "TQ010", "customers", -4)
    folder = make_county_dir(tmp_path, edit_ledger=edit)
    refused(folder, tmp_path, "negative 'customers'", "TQ010",
            "longitude and latitude swapped", "TQ003, TQ007", "swap the 经度/纬度")


def test_swapped_rows_alone_still_plan(tmp_path):
    def edit(df):
        row = df["transformer_id"] == "TQ003"
        df.loc[row, ["lon", "lat"]] = df.loc[row, ["lat", "lon"]].to_numpy()
        return df
    folder = make_county_dir(tmp_path, edit_ledger=edit)
    planned(folder, tmp_path)


# ----------------------------------------------------------------------------- found by the fuzz test

def test_snap_lines_beyond_a_drawing_gap_is_refused(tmp_path):
    folder = make_county_dir(tmp_path, toml="[hv]\nsnap_lines_m = 1e300\n")
    refused(folder, tmp_path, "snap_lines_m", "more than 1000 m")


def test_feeders_without_a_usable_line(tmp_path):
    import json

    folder = make_county_dir(tmp_path)
    data = json.loads((folder / "feeders.geojson").read_text(encoding="utf-8"))
    for f in data["features"]:
        f["geometry"]["coordinates"] = [[114.0, 30.0], [114.0, 30.0]]
    (folder / "feeders.geojson").write_text(json.dumps(data), encoding="utf-8")
    refused(folder, tmp_path, "feeders", "no usable 10 kV line")


def test_gdal_remarks_do_not_reach_the_console(tmp_path):
    import json

    folder = make_county_dir(tmp_path)
    data = json.loads((folder / "villages.geojson").read_text(encoding="utf-8"))
    ring = data["features"][0]["geometry"]["coordinates"][0]
    data["features"][0]["geometry"]["coordinates"][0] = ring[:-1]  # an unclosed ring
    (folder / "villages.geojson").write_text(json.dumps(data), encoding="utf-8")
    res = run("plan", folder, "--out", tmp_path / "out", "--no-map")
    assert res.exit_code in (0, 2), res.output
    assert "Warning" not in res.output and "ogr_read" not in res.output


def test_csv_cell_with_a_line_break_inside_quotes(tmp_path):
    folder = make_county_dir(tmp_path, edit_ledger=lambda df: set_cell(df, "TQ001", "name", "一号\r\n台区"))
    planned(folder, tmp_path)


def test_control_characters_in_names_do_not_break_the_workbook(tmp_path):
    import openpyxl

    folder = make_county_dir(tmp_path, edit_ledger=lambda df: set_cell(df, "TQ001", "name", "一号\x18台区"))
    planned(folder, tmp_path)
    ws = openpyxl.load_workbook(tmp_path / "out" / "roster.xlsx")["台区明细"]
    assert "一号\ufffd台区" in [c.value for row in ws.iter_rows() for c in row]


def test_a_header_naming_a_column_twice(tmp_path):
    folder = make_county_dir(tmp_path)
    text = (folder / "managers.csv").read_text(encoding="utf-8").splitlines()
    head = text[0].split(",")
    head[2] = "manager_id"  # phone's header now repeats manager_id
    (folder / "managers.csv").write_text("\n".join([",".join(head)] + text[1:]) + "\n", encoding="utf-8")
    refused(folder, tmp_path, "managers.csv", "2 columns mean 'manager_id'", "column 1", "column 3",
            "rename or delete the others")


def test_a_zipped_layer_in_the_folder(tmp_path):
    folder = make_county_dir(tmp_path)
    with zipfile.ZipFile(folder / "villages.zip", "w") as zf:
        zf.write(folder / "villages.geojson", "villages.geojson")
    (folder / "villages.geojson").unlink()
    refused(folder, tmp_path, "villages.zip", "ZIP archive", "it holds: villages.geojson", "unzip it")
