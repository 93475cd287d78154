"""Invariants every plan must satisfy (issue 2): shared by the plan, property and real-data tests.

``assert_plan_invariants(plan)`` checks, in the county's metric CRS:

- every active 台区 is assigned exactly once (same ids as the county's ledger, unique, grid_id set);
- the grids tile each township: the areas of a township's pieces of grids sum to its area and
  the grids overlap by less than 1e-6 of it;
- no grid's 台区 span two townships (scope "township"), and a grid covers only its own township
  plus townships that have no 台区 (joined to a neighbouring grid of their station);
- every grid's workload is within the capacity unless the grid is flagged ``heavy-unit``;
- the KPIs count no non-contiguous grid (unless ``allow_noncontiguous`` lists the exceptions).

``assert_grids_connected(plan)`` checks the polygons themselves: a grid is in one piece inside
each part of its township (kept apart from the above while that bug is open: the KPI's graph
contiguity can hold while the polygon falls apart).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np
import shapely

from gridplan.pipeline import Plan

REL = 1e-6


def assert_plan_invariants(p: Plan, *, allow_noncontiguous: Iterable[str] = (),
                           capacity: bool = True) -> None:
    """Assert every invariant of the module docstring on ``p`` (``capacity=False``: all but one)."""
    assert_assigned_once(p)
    assert_tiles_townships(p)
    assert_no_grid_crosses_a_township(p)
    if capacity:
        assert_within_capacity(p)
    broken = set(p.kpi["county"]["noncontiguous_grid_ids"])
    assert p.kpi["county"]["noncontiguous_grids"] == len(broken)
    assert broken <= set(allow_noncontiguous), f"non-contiguous grids: {sorted(broken)}"


def assert_assigned_once(p: Plan) -> None:
    tr, ledger = p.transformers, p.county.transformers
    assert len(tr) == len(ledger)
    assert tr.index.is_unique and tr["transformer_id"].is_unique
    assert sorted(tr["transformer_id"]) == sorted(ledger["transformer_id"])
    gid = tr["grid_id"]
    assert gid.notna().all() and (gid.astype(str).str.len() > 0).all()
    assert set(gid) == set(p.grids["grid_id"][p.grids["n_transformers"] > 0])
    assert p.grids["grid_id"].is_unique
    counts = tr.groupby("grid_id").size()
    assert (p.grids.set_index("grid_id")["n_transformers"].reindex(counts.index) == counts).all()
    assert int(p.grids["n_transformers"].sum()) == len(tr)


def assert_tiles_townships(p: Plan) -> None:
    """Per township: its pieces of grids sum to its area; grids overlap each other by ~0.

    Only pairwise intersections and sums of areas, no union: grids whose shared borders agree to
    floating-point noise union into polygons with zero-area holes, on which GEOS overlays have been
    seen to return nonsense (intersection of 花蓮縣 瑞穗鄉 with such a union: 0 m²).
    """
    grids = p.grids.geometry.to_numpy()
    assert shapely.is_valid(grids).all(), "invalid grid polygons"
    tree = shapely.STRtree(grids)
    left, right = tree.query(grids, predicate="intersects")
    pair = left < right
    overlap = shapely.area(shapely.intersection(grids[left[pair]], grids[right[pair]]))
    smaller = np.minimum(shapely.area(grids[left[pair]]), shapely.area(grids[right[pair]]))
    bad = overlap > REL * smaller
    ids = p.grids["grid_id"].to_numpy()
    assert not bad.any(), f"overlapping grids: {list(zip(ids[left[pair]][bad], ids[right[pair]][bad], overlap[bad]))}"
    for tid, town in zip(p.county.townships["township_id"], p.county.townships.geometry):
        area = town.area
        hits = tree.query(town, predicate="intersects")
        covered = float(shapely.area(shapely.intersection(grids[hits], town)).sum())
        assert abs(covered - area) <= REL * area, f"{tid}: grids cover {covered:.3f} of {area:.3f} m²"
    total = float(shapely.area(grids).sum())
    county = float(shapely.area(p.county.townships.geometry.to_numpy()).sum())
    assert abs(total - county) <= REL * county, f"grids {total:.3f} m² vs county {county:.3f} m²"


def split_grids(p: Plan) -> dict[str, list[float]]:
    """Grids whose polygon falls apart inside one part of a township: grid id -> part areas (m²).

    A grid may be multi-part only along its township's own parts (islands, exclaves) or the
    townships without 台区 it absorbed; two of its parts in one township part are a split.
    """
    tparts = shapely.get_parts(p.county.townships.geometry.to_numpy())
    tree = shapely.STRtree(tparts)
    out: dict[str, list[float]] = {}
    for gid, geom in zip(p.grids["grid_id"], p.grids.geometry):
        parts = shapely.get_parts(geom)
        if len(parts) < 2:
            continue
        owners = []
        for part in parts:
            hits = tree.query(part, predicate="intersects")
            owners.append(int(hits[np.argmax(shapely.area(shapely.intersection(tparts[hits], part)))]))
        if len(set(owners)) < len(owners):
            out[str(gid)] = sorted(round(float(a)) for a in shapely.area(parts))
    return out


def assert_grids_connected(p: Plan) -> None:
    """No grid polygon is split inside one township part (see :func:`split_grids`)."""
    split = split_grids(p)
    assert not split, f"{len(split)} of {len(p.grids)} grids split inside one township part: {split}"


def assert_no_grid_crosses_a_township(p: Plan) -> None:
    tr = p.transformers
    if p.params.scope != "township":
        assert (tr.groupby("grid_id")["station_id"].nunique() == 1).all()
        return
    per = tr.groupby("grid_id")["township_id"].agg(["nunique", "first"])
    assert (per["nunique"] == 1).all(), f"grids spanning townships: {list(per.index[per['nunique'] > 1])}"
    g = p.grids.set_index("grid_id")
    real = g.loc[per.index]
    assert (real["township_id"] == per["first"]).all()
    towns = p.county.townships.set_index("township_id")
    empty = towns.index.difference(tr["township_id"].unique())
    served = set(real["station_id"])
    for gid, row in real.iterrows():
        # Its township, and 台区-less townships of its station (or of a station with no 台区).
        ok = [t for t in empty if towns.loc[t, "station_id"] in (row["station_id"], *(
            {towns.loc[t, "station_id"]} - served))]
        own = towns.geometry.loc[[row["township_id"], *ok]]
        outside = shapely.difference(row.geometry, shapely.union_all(own.to_numpy())).area
        assert outside <= REL * row.geometry.area, f"grid {gid} reaches {outside:.3f} m² outside its township"


def assert_within_capacity(p: Plan) -> None:
    g = p.grids
    heavy = g["flags"].fillna("").astype(str).str.contains("heavy-unit")
    over = g[~heavy & (g["workload"] > p.params.capacity * (1 + 1e-9))]
    assert over.empty, f"over capacity {p.params.capacity}: {over[['grid_id', 'workload']].values.tolist()}"
    if heavy.any():  # a heavy unit is a grid of one 台区 that alone exceeds the capacity
        assert (g.loc[heavy, "n_transformers"] == 1).all()
        assert (g.loc[heavy, "workload"] > p.params.capacity).all()


def assert_same_plan(a: Plan, b: Plan) -> None:
    """Identical outputs: grid ids, grid geometries, KPIs."""
    assert np.array_equal(a.transformers["grid_id"].to_numpy(), b.transformers["grid_id"].to_numpy())
    assert a.grids["grid_id"].tolist() == b.grids["grid_id"].tolist()
    assert shapely.equals_exact(a.grids.geometry.to_numpy(), b.grids.geometry.to_numpy(), 0).all()
    assert kpi_text(a) == kpi_text(b)


def kpi_text(p: Plan) -> str:
    """The KPIs as written to kpi.json (NaN-safe for comparison)."""
    return json.dumps(p.kpi, ensure_ascii=False, sort_keys=True, default=str)
