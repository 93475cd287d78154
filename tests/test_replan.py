"""Done-when: replanning the sample county after adding 200 台区 in one township moves only 台区 of
that township and its neighbours, and the diff lists exactly the moved ones."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from _plan_fixtures import add_transformers, plan_written
from click.testing import CliRunner

import gridplan
from gridplan.cli import main
from gridplan.replan.diff import diff_plans

SAMPLE = Path(__file__).resolve().parents[1] / "geodata" / "sample"
TOWN = "T05"
pytestmark = pytest.mark.skipif(not (SAMPLE / "transformers.csv").exists(),
                                reason="geodata/sample not present")


def _add_transformers(src: Path, dst: Path, township: gridplan.County, n: int = 200) -> None:
    poly = township.to_crs(4326).geometry.iloc[0].buffer(-0.003)
    add_transformers(src, dst, poly, n, extra={"所属线路": "", "运行状态": "运行", "村": ""})


@pytest.fixture(scope="module")
def replan(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replan")
    c0, p0 = plan_written(SAMPLE, tmp / "before")
    _add_transformers(SAMPLE, tmp / "county", c0.townships[c0.townships["township_id"] == TOWN])
    c1 = gridplan.load_county(tmp / "county")
    p1 = gridplan.plan(c1, current=tmp / "before" / "plan.gpkg")
    p1.to_file(tmp / "after", map_html=False, roster=False)
    return tmp, c0, p0, p1


def test_moves_only_in_the_township_and_its_neighbours(replan):
    _, c0, p0, p1 = replan
    tr = p1.transformers
    assert int(tr["current_manager_id"].isna().sum()) == 200
    moved = tr[tr["current_manager_id"].notna() & (tr["manager_id"] != tr["current_manager_id"])]
    towns = c0.townships.set_index("township_id")
    near = set(towns.index[towns.intersects(towns.loc[TOWN, "geometry"].buffer(1.0))])
    assert len(moved) > 0  # 200 new 台区 (~15,000 households) must change something
    assert set(moved["township_id"]) <= near
    assert p1.kpi["county"]["moved_transformers"] == len(moved)
    assert p1.kpi["county"]["moved_households"] == int(moved["customers"].sum())
    # grids of the townships far away are kept exactly, ids included
    far = ~p0.transformers["township_id"].isin(near)
    before = p0.transformers.loc[far].set_index("transformer_id")["grid_id"]
    after = tr.set_index("transformer_id").loc[before.index, "grid_id"]
    assert (before == after).all()


def test_diff_lists_exactly_the_moved(replan):
    tmp, _, _, p1 = replan
    d = diff_plans(tmp / "before", tmp / "after")
    tr = p1.transformers
    moved = set(tr.loc[tr["current_manager_id"].notna() & (tr["manager_id"] != tr["current_manager_id"]),
                       "transformer_id"])
    assert set(d.changes.loc[d.changes["change"] == "改派", "transformer_id"]) == moved
    assert set(d.changes.loc[d.changes["change"] == "新增", "transformer_id"]) == \
        {f"NEW{i:04d}" for i in range(200)}
    assert d.summary()["moved_households"] == p1.kpi["county"]["moved_households"]


def test_two_plans_compared_from_the_command_line(replan):
    tmp, *_ = replan
    out = tmp / "diff"
    r = CliRunner().invoke(main, ["diff", str(tmp / "before" / "plan.gpkg"), str(tmp / "after"),
                                  "--out", str(out), "--basemap", "none"])
    assert r.exit_code == 0, r.output
    assert "改派台区" in r.output
    changes = pd.read_csv(out / "changes.csv", encoding="utf-8-sig")
    managers = pd.read_csv(out / "managers.csv", encoding="utf-8-sig")
    assert {"台区编号", "原台区经理工号", "新台区经理工号", "户数"} <= set(changes.columns)
    assert (changes["变化"] == "新增").sum() == 200
    assert {"原工作量", "新工作量"} <= set(managers.columns)
    html = (out / "diff.html").read_text(encoding="utf-8")
    assert "改派 " in html and "NEW0000" in html and "cdn.jsdelivr" not in html
    import pyogrio
    assert {"changes", "grids_before", "grids_after"} <= {n for n, _ in pyogrio.list_layers(out / "diff.gpkg")}


@pytest.mark.slow
def test_roster_of_a_replan(replan, tmp_path):
    import openpyxl

    from gridplan.people.roster import write_roster

    _, _, _, p1 = replan
    write_roster(p1, tmp_path / "roster.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "roster.xlsx")
    ws = wb["台区经理"]
    head = [c.value for c in ws[2]]
    for col in ("供电所", "网格编号", "负责乡镇", "负责村", "台区数", "户数", "高压线路(km)", "联系电话"):
        assert col in head
    assert ws.freeze_panes == "A3" and ws.print_title_rows == "$2:$2"
    detail = wb["台区明细"]
    head = [c.value for c in detail[1]]
    col = head.index("调整") + 1
    values = [detail.cell(row=i, column=col).value for i in range(2, detail.max_row + 1)]
    assert values.count("新增台区") == 200
    assert sum(1 for v in values if v and v.startswith("由 ")) == p1.kpi["county"]["moved_transformers"]
