"""Spreadsheet formula injection: names from the data are written as text, never as formulas.

Every XLSX and CSV output is opened again (openpyxl for XLSX; the raw text for CSV) and checked:
no cell is a formula, formula-like names are shown as typed (XLSX) or carry a leading ``'`` (CSV),
and numbers (negative ones too) stay numbers.
"""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner
from countygen import make_county_dir

from gridplan.cells import csv_safe_frame, is_formula_like, write_csv
from gridplan.cli import main

EVIL = ['=HYPERLINK("http://x","y")', "=cmd|' /C calc'!A0", "+1+1", "@SUM(A1)", "-2+3", "\tTAB", "\rCR"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _no_formula_xlsx(path: Path) -> list[str]:
    """Every text value of the workbook; asserts no cell is a formula."""
    wb = openpyxl.load_workbook(path)
    texts = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", f"{path.name} {ws.title}!{c.coordinate} is a formula: {c.value!r}"
                if isinstance(c.value, str):
                    texts.append(c.value)
                    if is_formula_like(c.value):
                        assert c.quotePrefix, f"{path.name} {c.coordinate} {c.value!r} lacks quotePrefix"
    return texts


def _csv_cells(path: Path) -> list[str]:
    """Every cell of a CSV; asserts none begins like a formula."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    for c in cells:
        assert not is_formula_like(c), f"{path.name}: cell {c!r} would run as a formula"
    return cells


def _evil_ledger(df: pd.DataFrame) -> pd.DataFrame:
    # a carriage return inside a CSV cell is a line break to pandas' writer: tested in the helper
    for i, name in enumerate(EVIL[:-1]):
        df.loc[i, "name"] = name
    return df


def _evil_managers(df: pd.DataFrame) -> pd.DataFrame:
    df["name"] = EVIL[:len(df)]
    return df


def _evil_townships(df):
    df["name"] = [EVIL[1], EVIL[2], EVIL[3], "正常镇"]
    return df


def _evil_stations(df):
    df["name"] = [EVIL[0], EVIL[3]]
    return df


@pytest.fixture(scope="module")
def evil_county(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evil")
    return make_county_dir(tmp, edit_ledger=_evil_ledger, edit_managers=_evil_managers,
                           edit_townships=_evil_townships, edit_stations=_evil_stations,
                           toml='[input]\ncounty_name = "=HYPERLINK(\\"http://x\\",\\"县\\")"\n')


@pytest.fixture(scope="module")
def planned(evil_county, tmp_path_factory):
    out = tmp_path_factory.mktemp("plans") / "a"
    res = run("plan", evil_county, "--out", out, "--no-map")
    assert res.exit_code == 0, res.output
    return out


def test_helper_rules():
    assert all(is_formula_like(v) for v in EVIL)
    for v in ("-12", "+8613800000000", "-3.5e2", "张三", "", "a=b", 5, -3.5, None):
        assert not is_formula_like(v)
    df = pd.DataFrame({"name": ["=1+1", "ok", None], "n": [-1, 2, 3], "x": [-1.5, 0.0, 2.0]})
    safe = csv_safe_frame(df)
    assert safe["name"].tolist()[:2] == ["'=1+1", "ok"] and pd.isna(safe["name"].iloc[2])
    assert safe["n"].tolist() == [-1, 2, 3] and safe["x"].dtype == float
    assert df["name"].iloc[0] == "=1+1"  # the caller's frame is not changed


def test_csv_negative_numbers_stay_numbers(tmp_path):
    df = pd.DataFrame({"名称": ["-2+3", "@x"], "变化": [-5, 3], "km": [-1.25, 2.0]})
    path = write_csv(df, tmp_path / "t.csv")
    back = pd.read_csv(path, encoding="utf-8-sig")
    assert back["变化"].tolist() == [-5, 3] and back["km"].tolist() == [-1.25, 2.0]
    assert back["名称"].tolist() == ["'-2+3", "'@x"]


def test_roster_names_are_text(planned):
    texts = _no_formula_xlsx(planned / "roster.xlsx")
    for name in EVIL[:4]:
        assert name in texts, name  # shown exactly as typed
    assert any(t.startswith("=HYPERLINK") and "县" in t for t in texts)  # the title
    wb = openpyxl.load_workbook(planned / "roster.xlsx")
    ws = wb["台区明细"]
    header = [c.value for c in ws[1]]
    col = header.index("户数") + 1
    assert all(isinstance(ws.cell(row=r, column=col).value, int) for r in range(2, ws.max_row + 1))


def test_diff_csv_quotes_formula_names(evil_county, planned, tmp_path):
    b = tmp_path / "b"
    assert run("plan", evil_county, "--out", b, "--no-map", "--capacity", 600).exit_code == 0
    res = run("diff", planned / "plan.gpkg", b / "plan.gpkg", "--out", tmp_path / "d", "--no-map")
    assert res.exit_code == 0, res.output
    cells = _csv_cells(tmp_path / "d" / "changes.csv") + _csv_cells(tmp_path / "d" / "managers.csv")
    assert any(c.startswith(("'=", "'+", "'@")) for c in cells)
    changes = pd.read_csv(tmp_path / "d" / "changes.csv", encoding="utf-8-sig")
    assert pd.api.types.is_numeric_dtype(changes["户数"])


def test_merge_and_candidates_outputs(evil_county, tmp_path):
    res = run("merge", evil_county, "--stations", "S1,S2", "--out", tmp_path / "m", "--no-map")
    assert res.exit_code == 0, res.output
    m = tmp_path / "m"
    for name in ("comparison.csv", "beyond.csv", "response.csv"):
        _csv_cells(m / name)
    response = _csv_cells(m / "response.csv")
    assert "'" + EVIL[0] in response
    _no_formula_xlsx(m / "comparison.xlsx")
    for side in ("before", "after"):
        _no_formula_xlsx(m / side / "roster.xlsx")
    res = run("merge-candidates", evil_county, "--out", tmp_path / "c")
    assert res.exit_code == 0, res.output
    _csv_cells(tmp_path / "c" / "candidates.csv")
    _no_formula_xlsx(tmp_path / "c" / "candidates.xlsx")


def test_province_summary(tmp_path):
    from gridplan.scale import many
    from gridplan.scale.province import write_summary

    out = tmp_path / "province_out"
    out.mkdir()
    ok = many.CountyResult(county="@SUM(A1)", status="planned",
                           kpi={"townships": 2, "transformers": 10, "households": 500, "grids": 2,
                                "cv": 0.1, "max_over_mean": 1.1})
    bad = many.CountyResult(county="=1+1", status="failed", error="=cmd|' /C calc'!A0 is wrong",
                            error_type="InputError")
    result = many.ManyResult(out_dir=out, counties=[ok, bad], seconds=1.0)
    files = write_summary(result, maps=False)
    texts = _no_formula_xlsx(files["xlsx"])
    assert "@SUM(A1)" in texts and "=1+1" in texts
    cells = _csv_cells(files["csv"])
    assert "'@SUM(A1)" in cells and "'=1+1" in cells
