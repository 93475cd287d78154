"""A manager's reach (issue #16 part 5): ``max_travel_min`` honoured where feasible, else named.

Travel is recomputed here from the raw 台区 points and the bases (the manager's home from the roster,
else the grid's medoid), as straight line × detour_factor at speed_kmh: the same rule as the
response times when a county has no roads.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import shapely

import gridplan
from gridplan.lv.territory import contiguity_edges
from gridplan.metrics.kpi import noncontiguous_grids


def _recomputed_minutes(p: gridplan.Plan) -> pd.Series:
    """Minutes from each 台区 to its grid's base, from the raw points and the roster homes."""
    tr, grids, prm = p.transformers, p.grids.set_index("grid_id"), p.params
    xy = pd.DataFrame(shapely.get_coordinates(tr.geometry.values), columns=["x", "y"], index=tr.index)
    homes = {}
    roster = p.county.managers
    if roster is not None:
        homes = {m: (g.x, g.y) for m, g in zip(roster["manager_id"], roster.geometry) if g is not None}
    out = pd.Series(np.nan, index=tr.index)
    for gid, idx in tr.groupby("grid_id").groups.items():
        pts = xy.loc[idx].to_numpy()
        man = grids.loc[gid, "manager_id"]
        if not bool(grids.loc[gid, "placeholder"]) and man in homes:
            base = np.array(homes[man])
        else:  # the medoid: least total distance to the grid's other 台区
            d = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
            base = pts[int(np.argmin(d.sum(axis=1)))]
        metres = np.hypot(*(pts - base).T) * prm.detour_factor
        out.loc[idx] = metres / (prm.speed_kmh * 1000 / 60)
    return out


def _contiguous(p: gridplan.Plan) -> bool:
    tr = p.transformers
    edges = contiguity_edges(p.county, tr, scope=p.params.scope)
    return not noncontiguous_grids(shapely.get_coordinates(tr.geometry.values),
                                   tr["grid_id"].astype(str).to_numpy(), edges)


def test_reach_honoured_where_feasible(small_county):
    county = small_county(n=300, seed=1)
    free = gridplan.plan(county, capacity=1500)
    limit = 10.0  # below the farthest 台区 of the free plan (11.8 min), and feasible
    before = _recomputed_minutes(free)
    assert (before > limit).any(), "the test needs a plan that breaks the limit before the repair"
    p = gridplan.plan(small_county(n=300, seed=1), capacity=1500, max_travel_min=limit)
    got = _recomputed_minutes(p)
    assert got.max() <= limit + 1e-6, got.sort_values().tail()
    assert np.allclose(got.round(1), p.transformers["reach_minutes"], atol=0.051)
    s = p.kpi["reach"]["summary"]
    assert s["met"] and s["transformers_beyond"] == 0 and s["moved_transformers"] >= 1
    assert s["bases_home"] == 3  # the three roster managers have homes
    assert not p.transformers["beyond_reach"].any()
    assert _contiguous(p) and p.kpi["county"]["noncontiguous_grids"] == 0
    assert len(p.grids) == len(free.grids)  # the repair moves 台区, never adds or removes grids
    # balance kept as far as possible: every grid within 15% of its station's mean
    assert (p.grids["balance"].between(0.85, 1.15)).all(), p.grids["balance"].describe()
    for gid, v in p.kpi["reach"]["grids"].items():
        assert v["farthest_min"] <= limit and not v["beyond"], gid


def _with_far_transformer(county):
    """Put one 台区 alone in the far corner of 北镇 (T4), 7 km and more from every other 台区."""
    tr = county.transformers
    far = shapely.Point(520_000 + 9_900, 3_700_000 + 14_900)
    keep = tr[tr.geometry.distance(far) > 7_000].copy()
    lone = keep.iloc[[0]].copy()
    lone["transformer_id"] = "TQFAR"
    lone["name"] = "远处台区"
    lone["township_id"], lone["station_id"] = "T4", "S2"
    lone = lone.set_geometry([far], crs=tr.crs)
    county.transformers = pd.concat([keep, lone], ignore_index=True).set_crs(tr.crs, allow_override=True)
    return county


def test_reach_infeasible_is_named(small_county):
    county = _with_far_transformer(small_county(n=300, seed=1))
    p = gridplan.plan(county, capacity=1500, max_travel_min=12.0)
    row = p.transformers.set_index("transformer_id").loc["TQFAR"]
    assert bool(row["beyond_reach"]) and row["reach_minutes"] > 12
    gid = row["grid_id"]
    reach = p.kpi["reach"]
    assert not reach["summary"]["met"]
    assert gid in reach["summary"]["grids_beyond_ids"]
    assert "TQFAR" in reach["grids"][gid]["beyond"]
    assert reach["grids"][gid]["farthest_min"] > 12
    assert any("TQFAR" in n and gid in n for n in p.notes)
    assert any("TQFAR" in n for n in p.kpi["notes"])
    # what is named is exactly what the raw points say is beyond, and nothing else is
    got = _recomputed_minutes(p)
    beyond = set(p.transformers.loc[got > 12 + 1e-6, "transformer_id"])
    named = {t for v in reach["grids"].values() for t in v["beyond"]}
    assert beyond == named and "TQFAR" in beyond


def test_no_limit_changes_nothing(small_county):
    a = gridplan.plan(small_county(n=200, seed=3), capacity=1500)
    assert "reach" not in a.kpi and "reach_minutes" not in a.transformers.columns
    b = gridplan.plan(small_county(n=200, seed=3), capacity=1500, max_travel_min=500.0)
    assert b.kpi["reach"]["summary"]["met"] and b.kpi["reach"]["summary"]["moved_transformers"] == 0
    assert b.transformers["grid_id"].tolist() == a.transformers["grid_id"].tolist()


def test_reach_over_roads(small_county):
    """With a roads layer, travel is over roads: the figures match travel_times from the bases."""
    import geopandas as gpd

    from gridplan.metrics.response import travel_times

    county = small_county(n=200, seed=4)
    x0, y0 = 500_000.0, 3_700_000.0
    lines = [shapely.LineString([(x0, y0 + y), (x0 + 30_000, y0 + y)]) for y in range(0, 15_001, 2_500)]
    lines += [shapely.LineString([(x0 + x, y0), (x0 + x, y0 + 15_000)]) for x in range(0, 30_001, 2_500)]
    county.roads = gpd.GeoDataFrame({"speed_kmh": [40.0] * len(lines)}, geometry=lines, crs=county.crs)
    p = gridplan.plan(county, capacity=1500, max_travel_min=15.0)
    assert p.kpi["reach"]["summary"]["method"] == "road"
    tr, grids = p.transformers, p.grids.set_index("grid_id")
    homes = dict(zip(county.managers["manager_id"], county.managers.geometry))
    at = tr.set_index("transformer_id").geometry
    for gid, grp in tr.groupby("grid_id"):
        base = (homes[grids.loc[gid, "manager_id"]] if grids.loc[gid, "reach_base"] == "home"
                else at[grids.loc[gid, "reach_base_transformer_id"]])
        sub = dataclasses.replace(county, transformers=grp)
        pts = gpd.GeoDataFrame({"point_id": ["b"], "name": ["b"]}, geometry=[base], crs=county.crs)
        minutes = travel_times(sub, pts, params=p.params).minutes[:, 0]
        assert np.allclose(minutes.round(1), grp["reach_minutes"], atol=0.051), gid
        assert ((minutes > 15 + 1e-6) == grp["beyond_reach"].to_numpy()).all(), gid


def test_reach_repair_never_piles_onto_one_grid(sample_county):
    """Homes far from their grids (the sample's roster): the repair names what it cannot fix and
    keeps every grid it changes within the balance slack of its township's mean."""
    from gridplan.people.reach import REACH_BALANCE_SLACK

    free = gridplan.plan(sample_county)
    p = gridplan.plan(sample_county, max_travel_min=20.0)
    s = p.kpi["reach"]["summary"]
    assert s["bases_home"] > 0 and s["moved_transformers"] > 0 and not s["met"]
    slack = max(REACH_BALANCE_SLACK, 3 * p.params.tolerance)
    before = free.grids.set_index("grid_id")["workload"]
    after = p.grids.set_index("grid_id")["workload"]
    town = p.grids.set_index("grid_id")["township_id"]
    mean = after.groupby(town).transform("mean")
    changed = (after - before.reindex(after.index)).abs() > 1e-9
    ratio = (after / mean)[changed]
    assert len(ratio) and ratio.between(1 - slack - 1e-9, 1 + slack + 1e-9).all(), ratio.describe()
    assert p.kpi["county"]["noncontiguous_grids"] == 0
    # what is named is beyond, what is not named is within
    tr = p.transformers
    assert (tr.loc[tr["beyond_reach"], "reach_minutes"] >= 20).all()  # rounded to 0.1 min
    assert (tr.loc[~tr["beyond_reach"], "reach_minutes"] <= 20).all()
    assert s["transformers_beyond"] == int(tr["beyond_reach"].sum())


def test_reach_keeps_pins_and_locked_grids(small_county, tmp_path):
    """A locked grid neither gives nor takes 台区 in the repair; pinned 台区 keep their manager."""
    county = small_county(n=300, seed=1)
    base = gridplan.plan(county, capacity=1500)
    tr = base.transformers
    free = gridplan.plan(small_county(n=300, seed=1), capacity=1500, max_travel_min=10.0)
    locked = sorted({m["to"] for m in free.kpi["reach"]["moved"]})  # grids the repair fed
    assert locked
    pins = tmp_path / "pins.csv"
    pins.write_text("transformer_id,manager_id,lock_grid\n" + "".join(f",,{g}\n" for g in locked),
                    encoding="utf-8")
    p = gridplan.plan(small_county(n=300, seed=1), capacity=1500, current=base, pins=pins,
                      stability=0.0, max_travel_min=10.0)
    for g in locked:
        before = set(tr.loc[tr["grid_id"] == g, "transformer_id"])
        after = set(p.transformers.loc[p.transformers["grid_id"] == g, "transformer_id"])
        assert after == before, g
    moved = {m["transformer_id"] for m in p.kpi["reach"]["moved"]}
    assert not moved & set(tr.loc[tr["grid_id"].isin(locked), "transformer_id"])
