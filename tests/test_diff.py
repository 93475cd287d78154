"""Plan diffs: changed managers, workloads before/after, outputs (CSV, GeoPackage, escaped map)."""

from __future__ import annotations

import pandas as pd
import pyogrio
import pytest
from _plan_fixtures import small_county

import gridplan
from gridplan.replan.diff import diff_plans, write_diff


@pytest.fixture(scope="module")
def base():
    return gridplan.plan(small_county(), capacity=1000)


def _edited(p, moves: dict[str, str], drop: list[str]):
    """A copy of plan ``p`` with some 台区 handed to other managers and some removed."""
    import dataclasses

    tr = p.transformers.copy()
    for t, m in moves.items():
        tr.loc[tr["transformer_id"] == t, "manager_id"] = m
    return dataclasses.replace(p, transformers=tr[~tr["transformer_id"].isin(drop)])


def test_diff_lists_changes_and_workloads(base, tmp_path):
    tr = base.transformers
    a, b, c = tr["transformer_id"].iloc[:3]
    other = tr.loc[tr["manager_id"] != tr["manager_id"].iloc[0], "manager_id"].iloc[0]
    after = _edited(base, {a: other, b: other}, [c])
    d = diff_plans(base, after)
    moved = d.changes[d.changes["change"] == "改派"]
    assert set(moved["transformer_id"]) == {a, b} - ({a, b} & set(tr.loc[tr["manager_id"] == other, "transformer_id"]))
    assert d.changes.loc[d.changes["change"] == "移除", "transformer_id"].tolist() == [c]
    m = d.managers.set_index("manager_id")
    w = tr.set_index("transformer_id")["workload"]
    gained = sum(w[t] for t in moved["transformer_id"])
    assert m.loc[other, "workload_change"] == pytest.approx(gained)
    assert m["workload_before"].sum() == pytest.approx(tr["workload"].sum())
    assert d.summary()["moved_households"] == int(moved["customers"].sum())

    out = write_diff(d, tmp_path / "diff", basemap="none")
    csv = pd.read_csv(out / "changes.csv", encoding="utf-8-sig")
    assert set(csv["台区编号"]) == set(d.changes["transformer_id"])
    layer = pyogrio.read_dataframe(out / "diff.gpkg", layer="changes")
    assert {"from_manager", "to_manager"} <= set(layer.columns)
    assert (layer.geometry.geom_type == "Point").all()


def test_identical_plans_have_no_changes(base):
    d = diff_plans(base, base)
    assert len(d.changes) == 0 and d.summary()["managers_changed"] == 0


def test_map_escapes_names(base, tmp_path):
    tr = base.transformers.copy()
    t = tr["transformer_id"].iloc[0]
    tr.loc[tr["transformer_id"] == t, "name"] = "<script>alert(1)</script>"
    import dataclasses

    a = dataclasses.replace(base, transformers=tr)
    b = _edited(a, {t: "M2" if tr["manager_id"].iloc[0] != "M2" else "M1"}, [])
    d = diff_plans(a, b)
    write_diff(d, tmp_path / "d", basemap="none")
    html = (tmp_path / "d" / "diff.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)" in html.replace("\\u0026", "&")
