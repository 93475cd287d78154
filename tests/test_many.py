"""Province runs on Dask (gridplan.scale.many, ``gridplan plan-many``).

Two kinds of test:

* the orchestration (failure isolation, resume, summary, CLI exit codes) with a tiny stand-in
  for ``load_county``/``plan``, so it checks plan_many's own logic in a second;
* the real pipeline on a small generated province (3 counties of ~200 台区, one broken).

Both use an in-process Dask cluster (``processes=False``) to stay fast.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from click.testing import CliRunner

import gridplan
from gridplan.errors import Problems
from gridplan.scale import many

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as cl:
        yield cl


# -- a stand-in pipeline ---------------------------------------------------------------------------

SQUARE = ('{"type":"FeatureCollection","features":[{"type":"Feature","properties":'
          '{"township_id":"T1","name":"甲镇","station_id":"S1"},"geometry":{"type":"Polygon",'
          '"coordinates":[[[113.0,34.0],[113.1,34.0],[113.1,34.1],[113.0,34.1],[113.0,34.0]]]}}]}')


def _fake_county(folder: Path, n: int, *, broken: bool = False) -> None:
    folder.mkdir(parents=True)
    (folder / "townships.geojson").write_text(SQUARE, encoding="utf-8")
    if not broken:
        rows = "\n".join(f"TR{i},{10 + i}" for i in range(n))
        (folder / "transformers.csv").write_text(f"台区编号,户数\n{rows}\n", encoding="utf-8")


class _FakePlan:
    def __init__(self, county):
        self.kpi = {"county": {"townships": 1, "stations": 1, "transformers": county.n,
                               "households": county.households, "grids": max(1, county.n // 2),
                               "grid_lower_bound": 1, "cv": 0.05, "max_over_mean": 1.1}}

    def write_into(self, out_dir, *, map_html=True):
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "kpi.json").write_text(json.dumps(self.kpi), encoding="utf-8")
        if map_html:
            (out / "map.html").write_text("<html></html>", encoding="utf-8")


@pytest.fixture
def fake_pipeline(monkeypatch):
    """Replace load_county/plan by a stand-in; record which counties were planned."""
    import geopandas as gpd

    calls: list[str] = []

    def load_county(path, **params):
        path = Path(path)
        if not (path / "transformers.csv").exists():
            p = Problems()
            p.add(path.name, "the 台区 ledger transformers.* is missing", "add transformers.csv")
            p.raise_if_any()
        table = pd.read_csv(path / "transformers.csv")
        town = gpd.read_file(path / "townships.geojson").to_crs(4547)
        return SimpleNamespace(name=path.name, n=len(table), households=int(table["户数"].sum()),
                               townships=town, crs=town.crs, checksums={})

    def plan(county, **params):
        calls.append(county.name)
        if county.n == 13:
            raise ValueError("unlucky county")
        return _FakePlan(county)

    monkeypatch.setattr(gridplan, "load_county", load_county)
    monkeypatch.setattr(gridplan, "plan", plan)
    return calls


@pytest.fixture
def fake_province(tmp_path):
    root = tmp_path / "province"
    _fake_county(root / "county_001", 4)
    _fake_county(root / "county_002", 6)
    _fake_county(root / "county_003", 5, broken=True)
    (root / "not_a_county").mkdir()
    return root


def test_discover_counties_needs_townships(fake_province):
    names = [p.name for p in many.discover_counties(fake_province)]
    assert names == ["county_001", "county_002", "county_003"]


def test_failure_is_isolated_and_listed(fake_province, tmp_path, client, fake_pipeline):
    out = tmp_path / "out"
    seen = []
    res = many.plan_many(fake_province, out, client=client,
                         progress=lambda r, i, n: seen.append((r.county, i, n)))
    assert [c.status for c in res.counties] == ["planned", "planned", "failed"]
    bad = res.failed[0]
    assert bad.county == "county_003" and bad.error_type == "InputError"
    assert "transformers" in bad.error
    assert (out / "county_001" / "kpi.json").exists() and (out / "county_002" / "map.html").exists()
    assert not (out / "county_003").exists()
    assert sorted(i for _, i, _ in seen) == [1, 2, 3] and {n for *_, n in seen} == {3}

    table = pd.read_csv(out / "summary.csv", encoding="utf-8-sig")
    assert list(table.columns) == list(many.HEADERS)
    assert list(table["县"]) == ["county_001", "county_002", "county_003", "合计"]
    assert list(table["台区数"][:2]) == [4, 6] and table["台区数"].iloc[3] == 10
    assert table.loc[2, "状态"] == "失败" and "InputError" in table.loc[2, "错误信息"]
    assert table["超承诺台区数"].isna().all()  # no such KPI yet: blank, not 0
    xlsx = pd.read_excel(out / "summary.xlsx")
    assert list(xlsx["县"]) == list(table["县"])
    assert "county_003" in (out / "failures.txt").read_text(encoding="utf-8")
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "county_001/map.html" in page and "county_003" in page


def test_unexpected_exception_keeps_traceback(tmp_path, client, fake_pipeline):
    root = tmp_path / "p"
    _fake_county(root / "a", 13)
    _fake_county(root / "b", 3)
    res = many.plan_many(root, tmp_path / "out", client=client)
    assert [c.status for c in res.counties] == ["failed", "planned"]
    assert res.failed[0].error_type == "ValueError" and "unlucky county" in res.failed[0].error
    assert "Traceback" in res.failed[0].traceback


def test_resume_skips_unchanged_and_replans_changed(fake_province, tmp_path, client,
                                                    fake_pipeline):
    out = tmp_path / "out"
    many.plan_many(fake_province, out, client=client)
    assert sorted(fake_pipeline) == ["county_001", "county_002"]

    fake_pipeline.clear()
    again = many.plan_many(fake_province, out, client=client)
    assert [c.status for c in again.counties] == ["skipped", "skipped", "failed"]
    assert fake_pipeline == []  # failed counties are retried at load, never planned
    assert again.counties[0].kpi["transformers"] == 4  # KPIs come back from the manifest

    ledger = fake_province / "county_002" / "transformers.csv"
    ledger.write_text(ledger.read_text(encoding="utf-8") + "TR99,7\n", encoding="utf-8")
    third = many.plan_many(fake_province, out, client=client)
    assert fake_pipeline == ["county_002"]
    assert [c.status for c in third.counties] == ["skipped", "planned", "failed"]
    assert third.counties[1].kpi["transformers"] == 7

    fake_pipeline.clear()
    many.plan_many(fake_province, out, client=client, params={"capacity": 900})
    assert sorted(fake_pipeline) == ["county_001", "county_002"]  # new parameters: all again


def test_html_is_escaped(tmp_path, client, fake_pipeline):
    root = tmp_path / "p"
    _fake_county(root / "<i>x&y", 3)
    res = many.plan_many(root, tmp_path / "out", client=client)
    assert res.ok
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "<i>x&y" not in page and "&lt;i&gt;x&amp;y" in page


def test_empty_province_is_an_input_error(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(gridplan.InputError, match="no county folder"):
        many.plan_many(tmp_path / "empty", tmp_path / "out")


def test_cli_exit_codes(fake_province, tmp_path, client, fake_pipeline, monkeypatch):
    from gridplan.cli import main

    real = many.plan_many
    monkeypatch.setattr(many, "plan_many", lambda *a, **k: real(*a, **{**k, "client": client}))
    runner = CliRunner()
    out = tmp_path / "out"
    r = runner.invoke(main, ["plan-many", str(fake_province), "--out", str(out), "--no-maps"])
    assert r.exit_code == 1, r.output
    assert "county_003" in r.output and "failures.txt" in r.output
    assert not (out / "county_001" / "map.html").exists()

    shutil.rmtree(fake_province / "county_003")
    r = runner.invoke(main, ["plan-many", str(fake_province), "--out", str(out), "--no-maps", "-q"])
    assert r.exit_code == 0, r.output
    assert not (out / "failures.txt").exists()

    r = runner.invoke(main, ["plan-many", str(tmp_path / "missing"), "--out", str(out)])
    assert r.exit_code == 2
    r = runner.invoke(main, ["plan-many", str(fake_province), "--out", str(out), "--workers", "0"])
    assert r.exit_code == 2
    (tmp_path / "nothing").mkdir()
    r = runner.invoke(main, ["plan-many", str(tmp_path / "nothing"), "--out", str(out)])
    assert r.exit_code == 2 and "no county folder" in r.output


def test_cli_unreachable_scheduler_is_usage_error(fake_province, tmp_path, monkeypatch):
    from gridplan.cli import main

    def refuse(*a, **k):
        raise OSError("connection refused")

    monkeypatch.setattr(distributed, "Client", refuse)
    r = CliRunner().invoke(main, ["plan-many", str(fake_province), "--out", str(tmp_path / "o"),
                                  "--scheduler", "tcp://127.0.0.1:1"])
    assert r.exit_code == 2 and "scheduler" in r.output


# -- the real pipeline ---------------------------------------------------------------------------

GENERATOR = ROOT / "scripts" / "make_sample_county.py"


@pytest.fixture(scope="module")
def real_province(tmp_path_factory):
    if not GENERATOR.exists():
        pytest.fail("scripts/make_sample_county.py is missing")
    root = tmp_path_factory.mktemp("real") / "province"
    subprocess.run([sys.executable, str(GENERATOR), "--counties", "3", "--transformers", "200",
                    "--out", str(root)], check=True, capture_output=True)
    counties = many.discover_counties(root)
    assert len(counties) == 3
    broken = counties[2]
    for f in broken.glob("transformers.*"):
        f.unlink()
    return root


@pytest.mark.slow
def test_real_province_end_to_end(real_province, tmp_path, client):
    out = tmp_path / "out"
    res = many.plan_many(real_province, out, client=client)
    names = [c.county for c in res.counties]
    assert [c.status for c in res.counties] == ["planned", "planned", "failed"], res.failed
    assert res.failed[0].error_type == "InputError"
    for name in names[:2]:
        assert {"plan.gpkg", "kpi.json", "roster.xlsx", "map.html", many.MANIFEST} <= {
            p.name for p in (out / name).iterdir()}
    table = pd.read_csv(out / "summary.csv", encoding="utf-8-sig")
    assert len(table) == 4 and table["台区数"].iloc[0] > 0 and table["网格数"].iloc[1] > 0
    assert table["台区数"].iloc[3] == table["台区数"].iloc[:2].sum()
    assert res.counties[0].outline is not None
    assert f"{names[0]}/map.html" in (out / "index.html").read_text(encoding="utf-8")

    again = many.plan_many(real_province, out, client=client)
    assert [c.status for c in again.counties] == ["skipped", "skipped", "failed"]

    changed = min((real_province / names[1]).glob("transformers.*"))
    changed.write_bytes(changed.read_bytes() + (b"\n" if changed.suffix == ".csv" else b" "))
    third = many.plan_many(real_province, out, client=client)
    assert [c.status for c in third.counties] == ["skipped", "planned", "failed"]


def test_outputs_never_destroy_through_the_cli(fake_province, tmp_path, client, fake_pipeline,
                                               monkeypatch):
    """Issue #11: a foreign --out is refused; the user's files in an earlier output are kept;
    a county folder the user made is not written over (that county fails, the others go on)."""
    from gridplan.cli import main

    real = many.plan_many
    monkeypatch.setattr(many, "plan_many", lambda *a, **k: real(*a, **{**k, "client": client}))
    runner = CliRunner()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "keep.txt").write_text("x", encoding="utf-8")
    r = runner.invoke(main, ["plan-many", str(fake_province), "--out", str(theirs), "--no-maps"])
    assert r.exit_code == 2 and "not an earlier gridplan output" in r.output, r.output
    assert [p.name for p in theirs.iterdir()] == ["keep.txt"] and not fake_pipeline

    out = tmp_path / "out"
    (out / "county_002").mkdir(parents=True)
    (out / "county_002" / "mine.xlsx").write_bytes(b"the user's")
    r = runner.invoke(main, ["plan-many", str(fake_province), "--out", str(out), "--no-maps"])
    assert r.exit_code == 2 and "not an earlier gridplan output" in r.output  # out/ is not ours

    shutil.rmtree(out)
    assert runner.invoke(main, ["plan-many", str(fake_province), "--out", str(out),
                                "--no-maps"]).exit_code == 1  # county_003 is broken
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    shutil.rmtree(out / "county_002")
    (out / "county_002").mkdir()
    (out / "county_002" / "mine.xlsx").write_bytes(b"the user's")
    r = runner.invoke(main, ["plan-many", str(fake_province), "--out", str(out), "--no-maps"])
    assert r.exit_code == 1, r.output
    assert "county_002" in (out / "failures.txt").read_text(encoding="utf-8")
    assert [p.name for p in (out / "county_002").iterdir()] == ["mine.xlsx"]
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert (out / ".gridplan-manifest.json").exists() and (out / "county_001" / "kpi.json").exists()
