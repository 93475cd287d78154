"""Merge decisions (issue 15): the absorbed area first, area classes, staff, service points, verdicts.

Hand-computed cases: a township whose worst 台区 worsens by a known amount, a set-covering case
that greedy gets wrong, a maximal-coverage case; then merges on the sample county and on real
township shapes (../shared/data, 台区 placed inside real village polygons).
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from _plan_fixtures import CRS_M, X0, Y0
from click.testing import CliRunner
from test_scenarios import row_county

import gridplan
from gridplan.cli import main
from gridplan.metrics.response import classify_townships, response_times
from gridplan.model import County
from gridplan.people.staff import parse_posts, staff_change
from gridplan.scenarios import merge_stations
from gridplan.scenarios.comparison import TOWNSHIP_COLUMNS, candidate_score, verdict
from gridplan.scenarios.coverage import (
    candidate_sites,
    propose_service_points,
    solve_lscp,
    solve_mclp,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "geodata" / "sample"
SHARED_TOWNS = ROOT.parent / "shared" / "data" / "townships"
M_PER_MIN = 30_000 / 60  # 30 km/h
DETOUR = 1.4


def minutes(dx: float, dy: float) -> float:
    """Straight line × detour at 30 km/h, by hand."""
    return float(np.hypot(dx, dy)) * DETOUR / M_PER_MIN


# --------------------------------------------------------------------------- the absorbed area

@pytest.fixture(scope="module")
def two():
    """T1 | T2, 10 km × 10 km each, a station at each centre; S2 merged into S1."""
    c = row_county([10, 10], [3000, 3000])
    return c, merge_stations(c, ["S1", "S2"])


def test_absorbed_township_worst_worsens_by_a_known_amount(two):
    c, sc = two
    w = sc.worsening
    worst = w[w["township_id"] == "T2"].iloc[0]
    # the 台区 of T2's middle row east of S2, (16 250 | 18 750, 5 000) from the county's corner, are
    # 1 250 | 3 750 m from S2 before and 11 250 | 13 750 m from S1 after: each +10 km × 1.4 at
    # 500 m/min = +28.0 min, the most of any (off the middle row the increase is smaller)
    tq = c.transformers.set_index("transformer_id").geometry[worst["transformer_id"]]
    dx = tq.x - X0
    assert dx in (16_250, 18_750) and tq.y - Y0 == pytest.approx(5_000)
    assert worst["minutes_before"] == pytest.approx(minutes(dx - 15_000, 0), abs=0.01)
    assert worst["minutes_after"] == pytest.approx(minutes(dx - 5_000, 0), abs=0.01)
    assert worst["change"] == pytest.approx(28.0, abs=0.01)
    assert w.loc[w["township_id"] == "T2", "change"].iloc[2] < 28.0 - 1
    t2 = sc.townships.set_index("township_id").loc["T2"]
    assert t2["max_before"] == pytest.approx(minutes(3_750, 10_000 / 3), abs=0.01)
    assert t2["max_after"] == pytest.approx(minutes(13_750, 10_000 / 3), abs=0.01)
    assert t2["transformers"] == 12 and t2["customers"] == 3000
    assert t2["beyond_before"] == 0 and t2["beyond_after"] == 0
    # p95 over the 12 台区, recomputed from the hand formula
    xs = np.array([1_250, 3_750, 6_250, 8_750]) + 10_000
    ys = np.array([1, 3, 5]) * 10_000 / 6
    after = sorted(minutes(x - 5_000, y - 5_000) for x in xs for y in ys)
    assert t2["p95_after"] == pytest.approx(np.percentile(after, 95), abs=0.01)
    # T1 keeps its station: nothing changes there
    t1 = sc.townships.set_index("township_id").loc["T1"]
    assert t1["p95_before"] == t1["p95_after"] and (w["township_id"] != "T1").all()


def test_comparison_has_one_row_per_affected_township_absorbed_first(two):
    _, sc = two
    assert list(sc.townships.columns) == list(TOWNSHIP_COLUMNS)
    assert sc.townships["township_id"].tolist() == ["T2", "T1"]
    assert sc.absorbed_townships == ["T2"]
    assert sc.notes[1].startswith("并入的乡2")  # the notes open with the absorbed township's change


def test_report_opens_with_the_absorbed_area(two, tmp_path):
    _, sc = two
    out = sc.to_file(tmp_path / "m", maps=False)
    html = (out / "report.html").read_text(encoding="utf-8")
    first_h2 = re.search(r"<h2>([^<]*)</h2>", html).group(1)
    assert first_h2.startswith("并入乡镇的变化")
    first_table = html[html.index("<table>"):html.index("</table>")]
    assert "乡2" in first_table and "乡1" not in first_table
    assert html.index("结论") < html.index("并入乡镇的变化") < html.index("抢修到达承诺") < html.index("人员")
    assert "名册富余" not in html
    wb = openpyxl.load_workbook(out / "report.xlsx")
    assert wb.sheetnames[:2] == ["决策摘要", "乡镇对比"]
    first = [[c.value for c in r] for r in wb["决策摘要"].iter_rows(min_row=2, max_row=3)]
    assert first[0][:2] == ["结论", "结论"] and first[0][2] == sc.verdict
    csv = pd.read_csv(out / "comparison.csv", encoding="utf-8-sig")
    assert list(csv.columns) == list(TOWNSHIP_COLUMNS) and csv["township_id"].tolist() == ["T2", "T1"]


# --------------------------------------------------------------------------- area classes

def test_area_class_rule_and_sources():
    names = pd.Series(["城关镇", "东湖街道", "石门乡", "老城区", "河口镇区", "北乡"])
    given = pd.Series([None, "", None, None, None, "特殊边远"])
    cls, src = classify_townships(names, given, default="农村")
    assert cls == ["城区", "城区", "农村", "城区", "城区", "特殊边远"]
    assert src == ["rule:城关", "rule:街道", "default", "rule:城区", "rule:镇区", "data"]


def test_township_without_class_is_held_to_the_rule(tmp_path):
    from countygen import make_county_dir

    def edit(t):
        t = t.copy()
        t["area_class"] = None
        t.loc[t["township_id"] == "T1", "name"] = "城关镇"
        return t

    county = gridplan.load_county(make_county_dir(tmp_path, edit_townships=edit))
    t = county.townships.set_index("township_id")
    assert t.at["T1", "area_class"] == "城区" and t.at["T1", "class_source"] == "rule:城关"
    assert t.at["T2", "area_class"] == "农村" and t.at["T2", "class_source"] == "default"
    rt = response_times(county)
    assert set(rt.loc[rt["township_id"] == "T1", "commitment"]) == {45.0}
    assert set(rt.loc[rt["township_id"] == "T1", "class_source"]) == {"rule:城关"}
    sc = merge_stations(county, ["S1", "S2"])
    ct = sc.commitments.set_index(["area_class", "class_source"])
    assert ct.at[("城区", "rule:城关"), "commitment"] == 45
    assert int(ct["transformers"].sum()) == len(county.transformers)


# --------------------------------------------------------------------------- staff

def test_roster_posts_are_read_and_counted(tmp_path):
    posts, bad = parse_posts(pd.Series(["所长", "内勤", "综合", "营业厅", "柜台", "台区经理", "高压", None, "司机"]))
    assert posts.tolist() == ["head", "office", "office", "counter", "counter", "lv", "hv", "lv", "lv"]
    assert bad.tolist() == [False] * 8 + [True]
    roster = pd.DataFrame({"station_id": ["A", "B", "B", "B", "B", "B", "B"],
                           "role": ["head", "head", "office", "office", "counter", "lv", "hv"]})
    closed = staff_change(roster, into="A", absorbed=["B"], kept=[], grids_before=5,
                          grids_after=4).set_index("post")
    assert closed.at["head", "released"] == 1 and closed.at["office", "released"] == 2
    assert closed.at["counter", "released"] == 1 and closed.at["lv", "released"] == 1
    assert closed.at["head", "needed_after"] == 1 and closed.at["lv", "needed_after"] == 4
    kept = staff_change(roster, into="A", absorbed=["B"], kept=["B"], grids_before=5,
                        grids_after=5).set_index("post")
    assert kept.at["counter", "released"] == 0 and kept.at["lv", "released"] == 0


def test_station_staff_hold_no_grid_and_are_released(tmp_path):
    from countygen import make_county_dir

    def edit(m):
        extra = pd.DataFrame({"manager_id": ["H2", "O2", "C2"], "name": ["钱所长", "孙内勤", "周柜员"],
                              "phone": ["", "", ""], "station_id": ["S2"] * 3, "max_workload": ["", "", ""],
                              "role": ["所长", "内勤", "营业厅"]})
        return pd.concat([m.assign(role="台区经理"), extra], ignore_index=True)

    county = gridplan.load_county(make_county_dir(tmp_path, edit_managers=edit))
    plan = gridplan.plan(county)
    assert not set(plan.grids["manager_id"]) & {"H2", "O2", "C2"}
    sc = merge_stations(county, ["S1", "S2"], before=plan)
    st = sc.staff.set_index("post")
    assert (st.at["head", "released"], st.at["office", "released"], st.at["counter", "released"]) == (1, 1, 1)
    assert not set(sc.after.plan.grids["manager_id"]) & {"H2", "O2", "C2"}
    tb, ta = sc.travel_summary
    assert tb is not None and ta is not None and ta >= tb  # managers of S2 now travel from S1


# --------------------------------------------------------------------------- service points

# greedy takes A (4 demands), then still needs B (for 3) and C (for 6): 3 sites; the optimum,
# unique, is B + C
GREEDY_TRAP = np.array([
    # A  B  C
    [1, 1, 0],
    [1, 1, 0],
    [0, 1, 0],
    [1, 0, 1],
    [1, 0, 1],
    [0, 0, 1],
], dtype=bool)


def test_set_covering_known_optimum():
    chosen, unc = solve_lscp(GREEDY_TRAP)
    assert chosen.tolist() == [1, 2] and not unc.any()
    with_far = np.vstack([GREEDY_TRAP, np.zeros((1, 3), dtype=bool)])  # a demand no site reaches
    chosen, unc = solve_lscp(with_far)
    assert chosen.tolist() == [1, 2] and unc.tolist() == [False] * 6 + [True]


def test_maximal_coverage_known_optimum():
    chosen, covered = solve_mclp(GREEDY_TRAP, np.ones(6), 1)
    assert chosen.tolist() == [0] and covered == 4.0                         # A: 4 demands
    chosen, covered = solve_mclp(GREEDY_TRAP, np.ones(6), 2)
    assert chosen.tolist() == [1, 2] and covered == 6.0                      # B + C: everything
    chosen, covered = solve_mclp(GREEDY_TRAP, np.array([1, 1, 10, 1, 1, 1]), 1)
    assert chosen.tolist() == [1] and covered == 12.0                        # B: 1 + 1 + 10


def test_service_points_bring_every_transformer_within_commitment():
    c = row_county([10, 10, 60], [3000, 6000, 1200])
    sc = merge_stations(c, ["S2", "S3"], service_points=1)
    assert sc.breaks_commitment
    sp = sc.service_points
    assert sp.beyond_before == int(sc.after.response["beyond"].sum()) > 0
    assert len(sp.sites) == 1 and sp.beyond_after == 0 and not sp.uncoverable
    assert sp.sites["newly_within"].iloc[0] == sp.beyond_before
    assert sc.verdict == "需设服务站"
    assert sc.service_points_k is not None and sc.service_points_k.beyond_after == 0


def test_candidate_file_sites_are_used():
    c = row_county([10, 10, 60], [3000, 6000, 1200])
    cand = gpd.GeoDataFrame({"candidate_id": ["P1"], "name": ["=东村卫生室"]},
                            geometry=[shapely.Point(X0 + 50_000, Y0 + 5_000)], crs=CRS_M)
    c2 = County(**{**c.__dict__, "candidates": cand})
    sites = candidate_sites(c2)
    assert sites["point_id"].tolist()[-1] == "点:P1" and sites["kind"].iloc[-1] == "候选站点"
    merged = gridplan.scenarios.merged_county(c2, ["S2", "S3"])
    sp = propose_service_points(merged, merged.stations, sites[sites["kind"] == "候选站点"])
    assert sp.sites["point_id"].tolist() == ["点:P1"] and sp.beyond_after == 0


def test_verdict_and_score_thresholds():
    assert verdict(new_beyond=0, p95_increase=12.0, points_needed=None, uncoverable=0)[0] == "可合并"
    assert verdict(new_beyond=0, p95_increase=31.0, points_needed=None, uncoverable=0)[0] == "需设服务站"
    assert verdict(new_beyond=5, p95_increase=40.0, points_needed=1, uncoverable=0)[0] == "需设服务站"
    v, why = verdict(new_beyond=5, p95_increase=40.0, points_needed=2, uncoverable=0)
    assert v == "不宜合并" and any("2 个服务站" in r for r in why)
    assert verdict(new_beyond=5, p95_increase=4.0, points_needed=1, uncoverable=1)[0] == "不宜合并"
    # 10 × 3 − 200 × 0.1 − 8 + 20 × 0.5
    assert candidate_score(released=3, new_beyond_share=0.1, p95_increase=8.0, smallness=0.5) == 12.0


# --------------------------------------------------------------------------- outputs

def test_names_are_text_in_xlsx_and_csv_and_escaped_in_html(tmp_path):
    c = row_county([10, 10], [3000, 3000])
    t = c.townships.copy()
    t.loc[t["township_id"] == "T2", "name"] = '=HYPERLINK("x")<b>乡</b>'
    c2 = County(**{**c.__dict__, "townships": t})
    out = merge_stations(c2, ["S1", "S2"]).to_file(tmp_path / "m", maps=False)
    ws = openpyxl.load_workbook(out / "comparison.xlsx")["乡镇对比"]
    cell = ws.cell(row=2, column=2)
    assert cell.value == '=HYPERLINK("x")<b>乡</b>' and cell.data_type == "s"
    raw = (out / "comparison.csv").read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in raw
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<b>乡</b>" not in html and "&lt;b&gt;乡&lt;/b&gt;" in html


def test_cli_merge_with_service_points_and_candidates_map(tmp_path):
    from countygen import make_county_dir

    folder = make_county_dir(tmp_path)
    r = CliRunner().invoke(main, ["merge", str(folder), "--stations", "S1,S2", "--service-points", "1",
                                  "--out", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    assert "结论：" in r.output and "并入乡镇" in r.output
    for name in ("report.html", "report.xlsx", "compare.html", "comparison.csv", "service_points.csv"):
        assert (tmp_path / "m" / name).exists(), name
    page = (tmp_path / "m" / "compare.html").read_text(encoding="utf-8")
    assert "territories" in page and "service_points" in page
    r = CliRunner().invoke(main, ["merge-candidates", str(folder), "--out", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "c" / "candidates_map.html").read_text(encoding="utf-8")
    assert '"pairs"' in page and "可合并" in page
    df = pd.read_csv(tmp_path / "c" / "candidates.csv", encoding="utf-8-sig")
    assert set(df["verdict"]) <= {"可合并", "需设服务站", "不宜合并"} and "score" in df.columns
    r = CliRunner().invoke(main, ["merge", str(folder), "--stations", "S1,S2", "--service-points", "0",
                                  "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and not (tmp_path / "x").exists()


@pytest.mark.skipif(not SAMPLE.exists(), reason="the sample county (geodata/sample) is not present")
def test_merge_on_the_sample_reports_the_absorbed_townships_first(tmp_path):
    county = gridplan.load_county(SAMPLE)
    sc = merge_stations(county, ["S01", "S02"])
    absorbed = county.townships.loc[county.townships["station_id"] == "S02", "township_id"].astype(str)
    assert sc.absorbed_townships == sorted(absorbed)
    first = sc.townships.head(len(absorbed))
    assert first["township_id"].tolist() == sorted(absorbed)
    assert (first["p95_after"] >= first["p95_before"]).all()
    out = sc.to_file(tmp_path / "m", maps=False)
    html = (out / "report.html").read_text(encoding="utf-8")
    first_table = html[html.index("<table>"):html.index("</table>")]
    for name in county.townships.loc[county.townships["station_id"] == "S02", "name"]:
        assert str(name) in first_table


@pytest.mark.skipif(not SHARED_TOWNS.exists(), reason="../shared/data not present (only in the dev workspace)")
def test_merge_on_real_township_shapes(tmp_path):
    from test_real_townships import make_real_county

    folder = make_real_county(tmp_path, "10002_宜蘭縣")
    r = CliRunner().invoke(main, ["merge", str(folder), "--stations", "S01,S02", "--no-map", "-q",
                                  "--out", str(tmp_path / "m")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    towns = gpd.read_file(folder / "townships.geojson")
    absorbed = towns.loc[towns["station_id"] == "S02"].sort_values("township_id")
    csv = pd.read_csv(tmp_path / "m" / "comparison.csv", encoding="utf-8-sig", dtype={"township_id": str})
    assert list(csv.columns) == list(TOWNSHIP_COLUMNS)
    assert csv["township_id"].head(len(absorbed)).tolist() == absorbed["township_id"].tolist()
    assert len(csv) == int(towns["station_id"].isin(["S01", "S02"]).sum())
    assert set(csv["class_source"]) <= {"default", "data"} or csv["class_source"].str.startswith("rule:").any()
    html = (tmp_path / "m" / "report.html").read_text(encoding="utf-8")
    first_table = html[html.index("<table>"):html.index("</table>")]
    for name in absorbed["name"]:
        assert name in first_table
    moved = csv.head(len(absorbed))
    assert (moved["max_after"] >= moved["max_before"]).all() and moved["transformers"].sum() > 0
