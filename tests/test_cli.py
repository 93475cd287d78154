"""The ``gridplan`` command line: every bad input of the contract, the happy path, demo, wallmap.

Bad inputs: the command exits with status 2, the message names the file, the offending rows (ids)
and a fix, and nothing is written (no --out folder, no temporary folder beside it).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner
from countygen import make_county_dir
from shapely.geometry import LineString, Polygon

from gridplan import load_county
from gridplan.cli import main

ROOT = Path(__file__).resolve().parents[1]
PLAN_LAYERS = {"grids", "transformers", "segments", "townships", "stations"}
OUTPUTS = ("plan.gpkg", "roster.xlsx", "kpi.json", "map.html")


def run(*args: object) -> object:
    """Invoke the click group in-process; stdout and stderr both land in ``result.output``."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def gridplan_exe() -> list[str]:
    """The console script beside the interpreter, else the same entry point through ``-c``."""
    script = Path(sys.executable).with_name("gridplan")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from gridplan.cli import main; main()"]


def set_cell(df: pd.DataFrame, tid: str, col: str, value: object) -> pd.DataFrame:
    df[col] = df[col].astype(object)
    df.loc[df["transformer_id"] == tid, col] = value
    return df


def edit_town(i: int, **values: object) -> Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame]:
    def edit(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        gdf = gdf.copy()
        for col, v in values.items():
            gdf.loc[i, col] = v
        return gdf
    return edit


def assert_nothing_written(tmp_path: Path, out: Path) -> None:
    """No output folder, and no temporary or backup folder beside it."""
    assert not out.exists()
    assert not out.parent.exists() or not [p for p in out.parent.iterdir() if out.name in p.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["county"]


# ----------------------------------------------------------------------------- bad inputs

def _missing_file(tmp: Path) -> Path:
    folder = make_county_dir(tmp)
    (folder / "transformers.csv").unlink()
    return folder


def _xlsx_is_csv(tmp: Path) -> Path:
    folder = make_county_dir(tmp)
    text = (folder / "transformers.csv").read_bytes()
    (folder / "transformers.csv").unlink()
    (folder / "transformers.xlsx").write_bytes(text)
    return folder


def _geojson_not_json(tmp: Path) -> Path:
    folder = make_county_dir(tmp)
    (folder / "stations.geojson").write_text("station_id,name\nS1,城关供电所\n", encoding="utf-8")
    return folder


BOWTIE = Polygon([(114.0, 30.0), (114.1, 30.1), (114.1, 30.0), (114.0, 30.1), (114.0, 30.0)])
# T1 reaching 0.01° into T2 (T3's border with T1 unchanged).
GROWN = Polygon([(114.0, 30.0), (114.11, 30.0), (114.11, 30.1), (114.1, 30.1), (114.0, 30.1)])

#: id -> (make the folder, extra CLI args, the file named, texts the message must hold).
BAD_INPUTS: dict[str, tuple[Callable[[Path], Path], tuple[str, ...], str, tuple[str, ...]]] = {
    "missing file": (_missing_file, (), "transformers.*",
                     ("has no transformers file", ".csv", ".xlsx", "townships.geojson")),
    "missing column": (
        lambda t: make_county_dir(t, chinese_headers=True, edit_ledger=lambda df: df.drop(columns="customers")),
        (), "transformers.csv", ("missing column 'customers'", "用户数", "户数", "found: 台区编号")),
    "duplicate ids": (
        lambda t: make_county_dir(t, edit_ledger=lambda df: set_cell(df, "TQ005", "transformer_id", "TQ004")),
        (), "transformers.csv", ("occur more than once", "TQ004 (×2)", "unique")),
    "missing lon": (
        lambda t: make_county_dir(t, edit_ledger=lambda df: set_cell(df, "TQ001", "lon", None)),
        (), "transformers.csv", ("have no coordinates", "rows: TQ001", "经度/纬度")),
    "zero lat": (
        lambda t: make_county_dir(t, edit_ledger=lambda df: set_cell(df, "TQ002", "lat", 0)),
        (), "transformers.csv", ("equal to 0", "rows: TQ002", "real longitude")),
    "non-numeric lon": (
        lambda t: make_county_dir(t, edit_ledger=lambda df: set_cell(df, "TQ003", "lon", "东经114度")),
        (), "transformers.csv", ("not numbers", "rows: TQ003", "decimal degrees")),
    # (31.5, 116.5) is swapped back to (116.5E, 31.5N): still ~250 km from the county.
    "swapped, outside when swapped back": (
        lambda t: make_county_dir(t, edit_ledger=lambda df: set_cell(
            set_cell(df, "TQ007", "lon", 31.5), "TQ007", "lat", 116.5)),
        (), "transformers.csv", ("outside the county", "TQ007 (", "km from", "swapped back", "coordinate system")),
    "outside the county": (
        lambda t: make_county_dir(t, edit_ledger=lambda df: set_cell(df, "TQ010", "lon", 116.5)),
        (), "transformers.csv", ("outside the county", "TQ010 (", "km from T")),
    # 114.225E is ~2.4 km east of the county's edge (114.2E), beyond the 1 km default snap
    # tolerance (issue #11): a near miss, with the distance.
    "in no township": (
        lambda t: make_county_dir(t, edit_ledger=lambda df: set_cell(df, "TQ012", "lon", 114.225)),
        (), "transformers.csv", ("lie in no township", "TQ012 (", " m from T", "snap_tolerance_m")),
    "unrepairable township": (
        lambda t: make_county_dir(t, edit_townships=edit_town(0, geometry=BOWTIE)),
        (), "townships.geojson", ("cannot be repaired", "T1 (Self-intersection", "Fix Geometries")),
    "overlapping townships": (
        lambda t: make_county_dir(t, edit_townships=edit_town(0, geometry=GROWN)),
        (), "townships.geojson", ("townships overlap", "T1 & T2 (", "m²", "shared borders")),
    "unknown station": (
        lambda t: make_county_dir(t, edit_townships=edit_town(3, station_id="S9")),
        (), "townships.geojson", ("not in stations.geojson", "T4 (S9)", "S1, S2")),
    "negative customers": (
        lambda t: make_county_dir(t, edit_ledger=lambda df: set_cell(df, "TQ001", "customers", -5)),
        (), "transformers.csv", ("negative 'customers'", "TQ001 (-5)", "must be ≥ 0")),
    "missing customers": (
        lambda t: make_county_dir(t, edit_ledger=lambda df: set_cell(df, "TQ002", "customers", None)),
        (), "transformers.csv", ("have no 'customers'", "rows: TQ002", "fill in 'customers'")),
    "empty ledger": (
        lambda t: make_county_dir(t, edit_ledger=lambda df: df.assign(status="拆除")),
        (), "transformers.csv", ("no 台区 in service", "all 24 are retired", "运行")),
    "unknown coordinate system (toml)": (
        lambda t: make_county_dir(t, toml='[input]\ncoords = "mars2000"\n'),
        (), "gridplan.toml", ("unknown coordinate system", "mars2000", "gcj02")),
    "unknown coordinate system (--coords)": (
        make_county_dir, ("--coords", "mars2000"), "coords", ("unknown coordinate system", "mars2000", "gcj02")),
    "xlsx that is CSV text": (_xlsx_is_csv, (), "transformers.xlsx",
                              ("is not a .xlsx file", "plain text / CSV", "rename it to transformers.csv")),
    "geojson that is not JSON": (_geojson_not_json, (), "stations.geojson",
                                 ("is not a .geojson file", "rename it to stations.csv")),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_names_rows_and_writes_nothing(tmp_path, case):
    make, extra, file, texts = BAD_INPUTS[case]
    folder = make(tmp_path)
    out = tmp_path / "out" / "plan"
    result = run("plan", folder, "--out", out, *extra)
    assert result.exit_code == 2, result.output
    text = result.output
    assert "nothing was written" in text
    assert f"{file}:" in text or f"{file} " in text, text
    assert "fix:" in text, text
    for part in texts:
        assert part in text, f"{part!r} not in:\n{text}"
    assert_nothing_written(tmp_path, out)


def test_several_problems_are_all_listed(tmp_path):
    def ledger(df: pd.DataFrame) -> pd.DataFrame:
        set_cell(df, "TQ001", "customers", -1)
        set_cell(df, "TQ002", "lon", "x")
        return set_cell(df, "TQ006", "transformer_id", "TQ005")
    folder = make_county_dir(tmp_path, edit_ledger=ledger, edit_townships=edit_town(3, station_id="S9"),
                             edit_managers=lambda df: df.drop(columns="name"))
    out = tmp_path / "out"
    result = run("plan", folder, "--out", out)
    assert result.exit_code == 2, result.output
    text = result.output
    assert "problems in the input:" in text
    for part in ("TQ001 (-1)", "rows: TQ002", "TQ005 (×2)", "T4 (S9)", "missing column 'name'",
                 "managers.csv", "townships.geojson", "transformers.csv"):
        assert part in text, f"{part!r} not in:\n{text}"
    numbered = [line for line in text.splitlines() if line[:1].isdigit() and ". " in line[:4]]
    assert len(numbered) >= 5, text
    assert_nothing_written(tmp_path, out)


@pytest.mark.slow
def test_bad_input_through_the_real_console_script(tmp_path):
    folder = make_county_dir(tmp_path, edit_ledger=lambda df: set_cell(df, "TQ001", "customers", -5))
    out = tmp_path / "out"
    proc = subprocess.run([*gridplan_exe(), "plan", str(folder), "--out", str(out)],
                          check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "transformers.csv" in proc.stderr and "TQ001 (-5)" in proc.stderr
    assert_nothing_written(tmp_path, out)


def test_existing_output_is_left_untouched_on_bad_input(tmp_path):
    folder = make_county_dir(tmp_path, edit_ledger=lambda df: df.assign(status="拆除"))
    out = tmp_path / "old"
    out.mkdir()
    (out / "kpi.json").write_text("{}", encoding="utf-8")
    assert run("plan", folder, "--out", out).exit_code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["county", "old"]
    assert [p.name for p in out.iterdir()] == ["kpi.json"]


# ----------------------------------------------------------------------------- feeders per section

def _per_section_feeders(folder: Path, *, conflict: bool = False) -> None:
    """Rewrite feeders.geojson with one row per line section (feeder_id repeated)."""
    f = gpd.read_file(folder / "feeders.geojson")
    rows = []
    for r in f.itertuples():
        pts = list(r.geometry.coords)
        for k, (a, b) in enumerate(itertools.pairwise(pts)):
            sub = None if k == 1 else r.substation_id  # a section without its substation
            rows.append({"feeder_id": r.feeder_id, "name": r.name, "substation_id": sub,
                         "geometry": LineString([a, b])})
    if conflict:
        rows[-1]["substation_id"] = "B2"
    (folder / "feeders.geojson").unlink()
    gpd.GeoDataFrame(rows, crs=4326).to_file(folder / "feeders.geojson", driver="GeoJSON")


@pytest.mark.slow
def test_feeders_one_row_per_section_plan_the_same(tmp_path):
    whole = make_county_dir(tmp_path, name="whole")
    parts = make_county_dir(tmp_path, name="parts")
    _per_section_feeders(parts)
    c = load_county(parts)
    assert c.feeders["feeder_id"].duplicated().any()
    assert c.feeders["substation_id"].tolist() == ["B1"] * len(c.feeders)  # empty cells filled
    for folder in (whole, parts):
        assert run("plan", folder, "--out", tmp_path / f"out-{folder.name}", "--no-map").exit_code == 0
    kpi = [json.loads((tmp_path / f"out-{n}" / "kpi.json").read_text(encoding="utf-8")) for n in ("whole", "parts")]
    assert kpi[0]["hv"]["segments"] == kpi[1]["hv"]["segments"] > 0
    assert kpi[0]["hv"]["total_km"] == pytest.approx(kpi[1]["hv"]["total_km"], rel=1e-9)
    for a, b in (("grids", "grids"), ("transformers", "transformers")):
        ga = gpd.read_file(tmp_path / "out-whole" / "plan.gpkg", layer=a)
        gb = gpd.read_file(tmp_path / "out-parts" / "plan.gpkg", layer=b)
        assert ga.drop(columns="geometry").equals(gb.drop(columns="geometry"))


def test_feeder_sections_naming_two_substations(tmp_path):
    folder = make_county_dir(tmp_path)
    _per_section_feeders(folder, conflict=True)
    subs = gpd.read_file(folder / "substations.geojson")
    subs = pd.concat([subs, subs.assign(substation_id="B2", name="110kV城北站")], ignore_index=True)
    (folder / "substations.geojson").unlink()
    gpd.GeoDataFrame(subs, crs=4326).to_file(folder / "substations.geojson", driver="GeoJSON")
    result = run("plan", folder, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "feeders.geojson" in result.output and "F2 (B1, B2)" in result.output
    assert "more than one substation_id" in result.output and "F1 (" not in result.output
    assert_nothing_written(tmp_path, tmp_path / "out")


def test_feeder_section_without_feeder_id(tmp_path):
    folder = make_county_dir(tmp_path)
    _per_section_feeders(folder)
    f = gpd.read_file(folder / "feeders.geojson")
    f.loc[2, "feeder_id"] = None
    (folder / "feeders.geojson").unlink()
    f.to_file(folder / "feeders.geojson", driver="GeoJSON")
    result = run("plan", folder, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "1 row(s) have no feeder_id" in result.output and "rows: row 3" in result.output


# ----------------------------------------------------------------------------- happy paths

@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> Path:
    """The small county planned by the CLI (shared by the wall-map tests)."""
    tmp = tmp_path_factory.mktemp("cli")
    folder = make_county_dir(tmp)
    out = tmp / "out" / "plan"
    result = run("plan", folder, "--out", out, "--capacity", 800)
    assert result.exit_code == 0, result.output
    assert "规划完成" in result.output and str(out) in result.output
    return out


def test_plan_writes_the_four_outputs(planned):
    for name in OUTPUTS:
        assert (planned / name).stat().st_size > 0, name
    assert sorted(p.name for p in planned.parent.iterdir()) == ["plan"]  # no temp folder left
    layers = {str(n) for n, _ in pyogrio.list_layers(planned / "plan.gpkg")}
    assert layers >= PLAN_LAYERS
    tr = gpd.read_file(planned / "plan.gpkg", layer="transformers")
    grids = gpd.read_file(planned / "plan.gpkg", layer="grids")
    assert len(tr) == 24 and tr["grid_id"].notna().all() and tr["manager_id"].notna().all()
    assert set(tr["grid_id"]) == set(grids["grid_id"])
    kpi = json.loads((planned / "kpi.json").read_text(encoding="utf-8"))
    assert kpi["county"]["transformers"] == 24 and kpi["county"]["grids"] == len(grids)
    assert kpi["county"]["over_capacity_grids"] == 0 and kpi["county"]["noncontiguous_grids"] == 0
    roster = pd.read_excel(planned / "roster.xlsx", sheet_name=None)
    assert any(len(df) >= len(grids) for df in roster.values())
    assert "<html" in (planned / "map.html").read_text(encoding="utf-8")[:2000].lower()


@pytest.mark.slow
def test_wallmap_a3_pdf(planned, tmp_path):
    out = tmp_path / "S1.pdf"
    result = run("wallmap", planned, "--station", "S1", "--size", "A3", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:5] == b"%PDF-" and out.stat().st_size > 10_000


def test_wallmap_unknown_station_lists_the_stations(planned, tmp_path):
    out = tmp_path / "S7.pdf"
    result = run("wallmap", planned, "--station", "S7", "--out", out)
    assert result.exit_code == 2, result.output
    assert "S7" in result.output and "S1（城关供电所）" in result.output and "S2（河口供电所）" in result.output
    assert not out.exists()


@pytest.mark.slow
def test_demo_plans_the_sample_county(tmp_path):
    """The real console script, as a user runs it (the sample county: a few seconds)."""
    out = tmp_path / "demo"
    proc = subprocess.run([*gridplan_exe(), "demo", "--out", str(out), "--basemap", "none"],
                          check=False, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    assert str((out / "map.html").resolve()) in proc.stdout
    kpi = json.loads((out / "kpi.json").read_text(encoding="utf-8"))
    assert kpi["county"]["name"] == "示例县（虚构）" and kpi["county"]["transformers"] > 2000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


@pytest.mark.parametrize("command", [None, "plan", "demo", "wallmap", *sorted(
    set(main.commands) - {"plan", "demo", "wallmap"})])
def test_help(command):
    result = run(*([command] if command else []), "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    if command is None:
        for name in ("plan", "demo", "wallmap"):
            assert name in result.output
