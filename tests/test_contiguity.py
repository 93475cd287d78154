"""The contiguity graph: two 台区 are neighbours exactly when their territory cells share a border.

The graph reads the Voronoi ridges off the cells GEOS draws (``territory._voronoi_ridges``);
these tests recompute the adjacency from the cells themselves, pair by pair, with the polygon
test, and compare it with scipy's Voronoi diagram.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import shapely
from _plan_fixtures import X0, Y0, small_county
from scipy.spatial import Voronoi

from gridplan import pipeline
from gridplan.lv import territory
from gridplan.lv.territory import cell_adjacency, cells_and_edges, contiguity_edges


def _brute_force(county, tr, cells, *, min_border_m=0.1):
    """Every pair of one township whose cells' parts holding them share ≥ min_border_m of border,
    and every duplicate point joined to the first one at its place."""
    xy = shapely.get_coordinates(tr.geometry.values)
    tid = tr["township_id"].astype(str).to_numpy()
    key = np.round(xy, 3)
    out = set()
    for t in np.unique(tid):
        idx = np.flatnonzero(tid == t)
        first: dict[tuple[float, float], int] = {}
        reps = []
        for i in idx:
            k = (key[i, 0], key[i, 1])
            if k in first:
                out.add((min(first[k], i), max(first[k], i)))
            else:
                first[k] = i
                reps.append(i)
        parts = []
        for i in reps:
            pieces = shapely.get_parts(cells[i])
            if len(pieces) > 1:
                pieces = pieces[[int(np.argmin(shapely.distance(pieces, shapely.Point(xy[i]))))]]
            parts.append(pieces[0] if len(pieces) else shapely.Polygon())
        parts = np.array(parts, dtype=object)
        a, b = np.triu_indices(len(reps), 1)
        near = shapely.distance(parts[a], parts[b]) < 1e-6
        a, b = a[near], b[near]
        shared = shapely.length(shapely.intersection(
            shapely.buffer(shapely.boundary(parts[a]), 0.01, quad_segs=1), shapely.boundary(parts[b])))
        for i, j in zip(np.asarray(reps)[a[shared >= min_border_m]], np.asarray(reps)[b[shared >= min_border_m]]):
            out.add((min(i, j), max(i, j)))
    return out


def _messy_county():
    """A U-shaped township, a two-part one, duplicates, points a few mm apart, a row of points on
    a straight line along a township's edge (what clipping onto a boundary leaves)."""
    county = small_county(n=300, seed=5)  # T2 is U-shaped
    towns = county.townships.copy()
    t4 = towns["township_id"] == "T4"
    gap = shapely.box(X0 + 20_000, Y0 + 7_000, X0 + 30_000, Y0 + 8_000)
    towns.loc[t4, "geometry"] = towns.loc[t4, "geometry"].difference(gap)  # two parts
    tr = county.transformers
    tr = tr[~tr.intersects(gap)].reset_index(drop=True)
    xy = shapely.get_coordinates(tr.geometry.values)
    extra = [xy[0], xy[0], xy[7] + (0.0075, 0.0), xy[9] + (0.0, 0.0004)]  # the same twice, 7.5 mm, 0.4 mm
    edge = [(X0 + 1.0, Y0 + y) for y in np.linspace(500.0, 9_500.0, 6)]  # T1's west edge
    extra += edge + [(edge[0][0], edge[0][1] + 0.0075)]  # on the line, 7.5 mm from one of its points
    rows = tr.iloc[[0, 0, 7, 9] + [0] * 7].copy()
    rows["transformer_id"] = [f"EXTRA{i}" for i in range(len(rows))]
    rows["township_id"] = list(tr["township_id"].iloc[[0, 0, 7, 9]]) + ["T1"] * 7
    rows["station_id"] = list(tr["station_id"].iloc[[0, 0, 7, 9]]) + ["S1"] * 7
    rows = rows.set_geometry(shapely.points(np.asarray(extra)), crs=tr.crs)
    county = dataclasses.replace(county, townships=towns, transformers=pd.concat([tr, rows], ignore_index=True))
    return county, pipeline.workload_stage(county, county.params)


@pytest.fixture(scope="module")
def messy():
    return _messy_county()


def test_the_graph_is_exactly_the_cells_that_share_a_border(messy):
    county, tr = messy
    cells, edges = cells_and_edges(county, tr)
    assert (edges[:, 0] < edges[:, 1]).all()
    assert (np.diff(edges[:, 0] * len(tr) + edges[:, 1]) > 0).all()  # sorted, no repeats
    assert set(map(tuple, edges.tolist())) == _brute_force(county, tr, cells)
    np.testing.assert_array_equal(contiguity_edges(county, tr), edges)


def test_a_township_whose_ridges_cannot_be_read_falls_back_to_the_polygon_test(messy, monkeypatch):
    county, tr = messy
    edges = contiguity_edges(county, tr)
    monkeypatch.setattr(territory, "_voronoi_ridges", lambda cells: None)
    np.testing.assert_array_equal(contiguity_edges(county, tr), edges)


def test_cell_adjacency_keeps_the_candidates_that_are_edges(messy):
    county, tr = messy
    edges = contiguity_edges(county, tr)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, len(tr), size=(200, 2))
    cand = np.concatenate([edges[::3], noise[noise[:, 0] != noise[:, 1]]])
    kept = cell_adjacency(county, tr, cand)
    truth = set(map(tuple, edges.tolist()))
    assert [tuple(sorted(e)) in truth for e in kept.tolist()] == [True] * len(kept)
    assert {tuple(sorted(e)) for e in cand.tolist()} & truth == {tuple(sorted(e)) for e in kept.tolist()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ridges_read_off_the_cells_are_the_borders_the_cells_share(seed):
    rng = np.random.default_rng(seed)
    pts = np.round(rng.uniform(0, 5_000, (400, 2)), 3) + (500_000.0, 3_000_000.0)
    if seed == 2:  # a lattice: four cocircular points everywhere
        g = np.arange(20) * 100.0
        pts = np.column_stack([np.repeat(g, 20), np.tile(g, 20)]) + (500_000.0, 3_000_000.0)
    env = shapely.box(*(pts.min(axis=0) - 1000), *(pts.max(axis=0) + 1000))
    cells = np.asarray(shapely.get_parts(shapely.voronoi_polygons(territory.multipoint(pts), extend_to=env,
                                                                  ordered=True)))
    ridges = territory._voronoi_ridges(cells)
    assert ridges is not None
    mine = dict(zip(map(tuple, ridges.pairs.tolist()), np.linalg.norm(ridges.seg[:, 1] - ridges.seg[:, 0], axis=1)))
    a, b = np.triu_indices(len(cells), 1)
    touch = shapely.distance(cells[a], cells[b]) < 1e-9
    a, b = a[touch], b[touch]
    shared = shapely.length(shapely.intersection(shapely.boundary(cells[a]), shapely.boundary(cells[b])))
    truth = {(i, j): s for i, j, s in zip(a.tolist(), b.tolist(), shared) if s > 1e-6}
    assert set(mine) == set(truth)
    np.testing.assert_allclose([mine[k] for k in truth], list(truth.values()), rtol=1e-9)
    # and scipy's Voronoi ridges inside the frame are among them
    vor = Voronoi(pts)
    for (i, j), verts in zip(vor.ridge_points.tolist(), vor.ridge_vertices):
        ends = vor.vertices[verts] if -1 not in verts else None
        if ends is not None and env.contains(shapely.multipoints(ends)) and np.linalg.norm(ends[1] - ends[0]) > 1e-6:
            assert (min(i, j), max(i, j)) in mine
