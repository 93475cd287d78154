"""gridplan.io.validate checks in isolation, and gridplan.lv.workload expressions."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from gridplan import InputError
from gridplan.errors import Problems
from gridplan.io import validate as V
from gridplan.lv.workload import parse_workload, workload


def frame(ids):
    return pd.DataFrame({"tid": ids, "_row": np.arange(2, len(ids) + 2)})


def test_row_labels_fall_back_to_row_numbers():
    assert V.row_labels(frame(["A", None, "C"]), "tid") == ["A", "row 3", "C"]
    assert V.row_labels(frame(["A", None]), "tid", [False, True]) == ["row 3"]


def test_check_ids_reports_missing_and_duplicates():
    p = Problems()
    V.check_ids(frame(["A", "B", "A", None]), "tid", "f.csv", p)
    assert [x.rows for x in p.items] == [("row 5",), ("A (×2)",)]


def test_check_coordinates_swaps_back_and_flags():
    fr = frame(["A", "B", "C", "D"])
    x = np.array([114.0, 30.0, 0.0, np.nan])
    y = np.array([30.0, 114.0, 30.0, 30.0])
    p, report = Problems(), []
    x2, y2, ok = V.check_coordinates(fr, x, y, np.zeros(4, bool), id_col="tid", file="f.csv",
                                     degrees=True, problems=p, report=report, what="台区")
    assert (x2[1], y2[1]) == (114.0, 30.0) and ok.tolist() == [True, True, False, False]
    assert "B" in report[0] and "经纬度填反" in report[0]
    assert {x.rows for x in p.items} == {("C",), ("D",)}


def test_projected_metres_are_not_swapped():
    fr = frame(["A"])
    p, report = Problems(), []
    V.check_coordinates(fr, np.array([500000.0]), np.array([3300000.0]), np.zeros(1, bool),
                        id_col="tid", file="f", degrees=False, problems=p, report=report)
    assert not p and not report


@pytest.mark.parametrize("value, expect", [("是", True), ("常开", True), ("TRUE", True), (1, True),
                                           ("否", False), ("常闭", False), ("0", False),
                                           ("false", False), ("1.0", True)])
def test_parse_bool(value, expect):
    vals, bad = V.parse_bool(pd.Series([value], dtype=object))
    assert vals[0] == expect and not bad[0]


def test_parse_bool_unknown():
    assert V.parse_bool(pd.Series(["maybe"]))[1].tolist() == [True]


def test_retired_statuses():
    status = pd.Series(["运行", "停运", "已拆除", "退运", "Retired", "out of service", None, "在运"])
    assert V.is_retired(status).tolist() == [False, True, True, True, True, True, False, False]


def test_area_classes_default_and_unknown():
    vals, bad = V.parse_area_class(pd.Series(["城市", None, "特殊边远地区", "山区"]), "农村")
    assert vals == ["城区", "农村", "特殊边远", "农村"] and bad.tolist() == [False, False, False, True]


def _towns():
    return gpd.GeoDataFrame({"township_id": ["T1", "T2"], "_row": [1, 2]},
                            geometry=[box(0, 0, 1000, 1000), box(1000, 0, 2000, 1000)], crs=4547)


def test_assign_townships_border_distance_and_snap():
    town = _towns()
    pts = gpd.GeoSeries([Point(500, 500), Point(1000, 500), Point(500, -120), Point(500, -50_000)],
                        crs=4547)
    fr = frame(["A", "B", "C", "D"])
    p, report = Problems(), []
    idx = V.assign_townships(pts, town, frame=fr, id_col="tid", file="t.csv", snap_m=0,
                             problems=p, report=report)
    assert idx.tolist() == [0, 0, -1, -1]  # B on the shared border: the first township
    assert p.items[0].rows == ("C (120 m from T1)",) and "snap_tolerance_m = 120" in p.items[0].fix
    assert p.items[1].rows == ("D (50.0 km from T1)",)
    p2, report2 = Problems(), []
    idx = V.assign_townships(pts, town, frame=fr, id_col="tid", file="t.csv", snap_m=200,
                             problems=p2, report=report2)
    assert idx.tolist() == [0, 0, 0, -1] and "C(120 米)" in report2[0]


def test_overlap_area_in_square_metres():
    town = _towns()
    town.loc[0, "geometry"] = box(0, 0, 1100, 1000)
    p = Problems()
    V.check_overlaps(town, file="t", problems=p)
    assert p.items[0].rows == ("T1 & T2 (100,000 m²)",)


def test_references():
    fr = frame(["A", "B"]).assign(station_id=["S1", "S9"])
    p = Problems()
    V.check_references(fr, "station_id", ["S1"], id_col="tid", file="t", target="stations.csv",
                       problems=p)
    assert p.items[0].rows == ("B (S9)",) and "S1" in p.items[0].fix


# ----------------------------------------------------------------------------- workload

LEDGER = pd.DataFrame({"transformer_id": ["a", "b"], "customers": [10, 20],
                       "capacity_kva": [100.0, 400.0]})


@pytest.mark.parametrize("expr, expect", [
    ("customers", [10, 20]), ("transformers", [1, 1]), ("capacity", [100, 400]),
    ("customers + 20*transformers + 0.1*capacity", [40, 80]), (" Customers+2 ", [12, 22]),
    ("2*customers*0.5", [10, 20]),
])
def test_workload_expressions(expr, expect):
    assert workload(LEDGER, expr).tolist() == pytest.approx(expect)


@pytest.mark.parametrize("expr, words", [
    ("__import__('os').system('x')", "unexpected"), ("customers - 1", "unexpected"),
    ("customers ++ 1", "both sides"), ("customers * capacity", "two names"), ("", "empty"),
    ("households", "unknown name"), ("customers +", "both sides"),
])
def test_bad_workload_expressions(expr, words):
    with pytest.raises(InputError) as exc:
        workload(LEDGER, expr)
    prob = exc.value.problems[0]
    assert words in prob.what and "customers + 20*transformers" in prob.fix


def test_workload_missing_column():
    with pytest.raises(InputError, match="no 'capacity_kva' column"):
        workload(LEDGER.drop(columns="capacity_kva"), "capacity")


def test_parse_workload_weights():
    assert parse_workload("customers + 3 + 2*transformers") == {"customers": 1.0, "transformers": 5.0}
