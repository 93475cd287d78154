"""Pins and locks: read from CSV/GeoJSON, never broken, infeasible sets named (file, row, 台区)."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
import shapely
from _plan_fixtures import small_county
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gridplan
from gridplan import InfeasibleError, InputError
from gridplan.cli import main
from gridplan.replan.pins import read_pins

CAP = 1000.0


def _csv(path, rows, header="transformer_id,manager_id,lock_grid"):
    path.write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _near(county, tid: str, township: str, k: int) -> list[str]:
    """``tid`` and its ``k - 1`` nearest 台区 of ``township`` (a compact blob)."""
    tr = county.transformers
    same = tr[tr["township_id"] == township]
    p = tr.loc[tr["transformer_id"] == tid].geometry.iloc[0]
    d = same.distance(p).sort_values()
    return same.loc[d.index[:k], "transformer_id"].tolist()


def _manager_of(p, tids):
    return p.transformers.set_index("transformer_id").loc[tids, "manager_id"].tolist()


def test_read_pins_csv_with_chinese_headers(tmp_path):
    f = _csv(tmp_path / "pins.csv", [("TQ0001", "M1", ""), ("", "", "T1-02"), ("", "M2", "T1-03")],
             header="台区编号,工号,锁定网格")
    pins = read_pins(f)
    assert [(x.source, x.manager_id, x.transformer_ids, x.lock_grids) for x in pins.items] == [
        ("pins.csv 第2行", "M1", ("TQ0001",), ()), ("pins.csv 第3行", None, (), ("T1-02",)),
        ("pins.csv 第4行", "M2", (), ("T1-03",))]


def test_read_pins_rejects_rows_that_are_neither(tmp_path):
    f = _csv(tmp_path / "pins.csv", [("TQ0001", "", ""), ("TQ0002", "M1", "")])
    with pytest.raises(InputError, match=r"neither a pin[\s\S]*rows: 2\n"):
        read_pins(f)


def test_csv_pins_are_honoured_and_unknown_ids_are_input_errors(tmp_path):
    c = small_county()
    t1 = c.transformers[c.transformers["township_id"] == "T1"]["transformer_id"].iloc[0]
    blob = _near(c, t1, "T1", 4)
    f = _csv(tmp_path / "pins.csv", [(t, "M2", "") for t in blob])
    p = gridplan.plan(c, capacity=CAP, pins=f)
    assert set(_manager_of(p, blob)) == {"M2"}
    assert p.transformers["pin_source"].notna().sum() == 4
    bad = _csv(tmp_path / "bad.csv", [("NOPE", "M1", ""), (t1, "M9", ""), ("", "", "T9-01")])
    with pytest.raises(InputError) as e:
        gridplan.plan(c, capacity=CAP, pins=bad)
    text = str(e.value)
    assert "bad.csv 第2行(NOPE)" in text and "第3行(M9)" in text and "第4行(T9-01)" in text


def test_geojson_polygon_pins_every_transformer_inside(tmp_path):
    c = small_county()
    tr = c.transformers
    t4 = tr[tr["township_id"] == "T4"]
    centre = t4.geometry.iloc[0]
    inside = t4[t4.distance(centre) < 1500]["transformer_id"].tolist()
    poly = gpd.GeoSeries([centre.buffer(1500)], crs=c.crs).to_crs(4326).iloc[0]
    f = tmp_path / "pins.geojson"
    f.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"manager_id": "M3"},
         "geometry": shapely.geometry.mapping(poly)}]}), encoding="utf-8")
    p = gridplan.plan(c, capacity=CAP, pins=f)
    assert len(inside) >= 2
    assert set(_manager_of(p, inside)) == {"M3"}
    assert set(p.transformers.loc[p.transformers["pin_source"].notna(), "transformer_id"]) == set(inside)


def test_lock_keeps_a_current_grid_exactly(tmp_path):
    c = small_county()
    base = gridplan.plan(c, capacity=CAP)
    g = base.grids[base.grids["township_id"] == "T1"]["grid_id"].iloc[1]
    members = set(base.transformers.loc[base.transformers["grid_id"] == g, "transformer_id"])
    f = _csv(tmp_path / "pins.csv", [("", "M1", g)])
    p = gridplan.plan(c, capacity=CAP, current=base, pins=f, stability=0.0)
    got = set(p.transformers.loc[p.transformers["grid_id"] == g, "transformer_id"])
    assert got == members
    assert set(_manager_of(p, sorted(members))) == {"M1"}


def _raises_naming(c, f, *needles, **kw):
    with pytest.raises(InfeasibleError) as e:
        gridplan.plan(c, capacity=CAP, pins=f, **kw)
    for n in needles:
        assert n in str(e.value), str(e.value)
    return str(e.value)


def test_infeasible_pin_sets_are_named(tmp_path):
    c = small_county()
    tr = c.transformers
    a = tr[tr["township_id"] == "T1"]["transformer_id"].iloc[0]
    b = tr[tr["township_id"] == "T2"]["transformer_id"].iloc[0]
    d = tr[tr["township_id"] == "T4"]["transformer_id"].iloc[0]
    # one manager in two townships
    _raises_naming(c, _csv(tmp_path / "two.csv", [(a, "M1", ""), (b, "M1", "")]),
                   "two.csv 第2行", "two.csv 第3行", a, b, "M1")
    # a manager of another station
    _raises_naming(c, _csv(tmp_path / "station.csv", [(d, "M1", "")]), "station.csv 第2行", d, "S1")
    # one 台区 pinned to two managers
    _raises_naming(c, _csv(tmp_path / "twice.csv", [(a, "M1", ""), (a, "M2", "")]), a, "M1", "M2")
    # more pinned workload than the capacity
    heavy = tr[tr["township_id"] == "T1"]["transformer_id"].tolist()[:15]
    _raises_naming(c, _csv(tmp_path / "load.csv", [(t, "M1", "") for t in heavy]),
                   "load.csv 第2行", "超过其上限")


def test_pins_in_two_unconnected_parts_are_named(tmp_path):
    c = small_county()
    x0, y0 = c.townships.total_bounds[:2]
    c.barriers = gpd.GeoDataFrame(geometry=[shapely.LineString([(x0 + 5_000, y0 - 10), (x0 + 5_000, y0 + 10_010)])],
                                  crs=c.crs)
    tr = c.transformers[c.transformers["township_id"] == "T1"]
    west = tr[tr.geometry.x < x0 + 4_000]["transformer_id"].iloc[0]
    east = tr[tr.geometry.x > x0 + 6_000]["transformer_id"].iloc[0]
    _raises_naming(c, _csv(tmp_path / "split.csv", [(west, "M2", ""), (east, "M2", "")]),
                   "互不相连", "split.csv 第2行", west, east)


def test_cli_infeasible_pins_exit_2(tmp_path):
    from countygen import make_county_dir

    folder = make_county_dir(tmp_path)
    f = _csv(tmp_path / "pins.csv", [("TQ001", "M1", ""), ("TQ024", "M1", "")])
    r = CliRunner().invoke(main, ["plan", str(folder), "-o", str(tmp_path / "out"), "--no-map", "-q",
                                  "--pins", str(f)])
    assert r.exit_code == 2, r.output
    assert "pins.csv 第2行" in r.output and "TQ024" in r.output
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- properties

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.mark.slow
@SETTINGS
@given(seed=st.integers(0, 50), n=st.integers(60, 160), picks=st.lists(
    st.tuples(st.sampled_from(["M1", "M2", "M3"]), st.integers(0, 10_000), st.integers(1, 5)),
    min_size=1, max_size=3))
def test_pins_are_honoured_or_named(tmp_path, seed, n, picks):
    """Blobs of nearby 台区 pinned to roster managers of their station: every pin holds, or the
    plan is infeasible and the error names pins of the file."""
    c = small_county(n=n, seed=seed)
    tr = c.transformers
    rows, taken = [], set()
    station_towns = {"M1": ["T1", "T2"], "M2": ["T1", "T2"], "M3": ["T4"]}
    for mid, r, k in picks:
        towns = station_towns[mid]
        town = towns[r % len(towns)]
        cand = tr[tr["township_id"] == town]["transformer_id"].tolist()
        blob = [t for t in _near(c, cand[r % len(cand)], town, k) if t not in taken]
        if any(m == mid for m, _ in rows):
            continue  # one blob per manager (two blobs may be in two townships: infeasible)
        taken.update(blob)
        rows += [(mid, t) for t in blob]
    f = _csv(tmp_path / f"pins{seed}_{n}.csv", [(t, m, "") for m, t in rows])
    try:
        p = gridplan.plan(c, capacity=CAP, pins=f)
    except InfeasibleError as exc:
        assert f.name in str(exc)
        assert len({m for m, _ in rows}) > 1  # a single compact blob is always feasible
        return
    got = p.transformers.set_index("transformer_id")["manager_id"]
    assert all(got[t] == m for m, t in rows)
    for m in {m for m, _ in rows}:  # each pinned manager has one grid, which holds all their pins
        assert p.transformers.loc[p.transformers["manager_id"] == m, "grid_id"].nunique() == 1
