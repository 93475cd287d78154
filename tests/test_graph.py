"""Tests of gridplan.lv.graph: Delaunay neighbours per group, degenerate inputs, barriers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from scipy.spatial import Delaunay

from gridplan.lv.graph import (
    adjacency,
    components,
    neighbour_edges,
    neighbour_edges_from,
    unique_rows,
)


def _as_set(edges):
    return {tuple(e) for e in edges.tolist()}


def test_square_is_triangulated():
    xy = np.array([[0, 0], [1, 0], [0, 1], [1, 1.1]])
    e = neighbour_edges(xy)
    assert len(e) == 5  # 4 sides + 1 diagonal
    assert (e[:, 0] < e[:, 1]).all()


def test_tiny_groups():
    assert neighbour_edges(np.array([[3.0, 4.0]])).shape == (0, 2)
    assert _as_set(neighbour_edges(np.array([[0.0, 0], [5, 5]]))) == {(0, 1)}
    assert neighbour_edges(np.empty((0, 2))).shape == (0, 2)


def test_collinear_points_form_a_chain_in_order():
    xy = np.array([[0.0, 0], [3, 3], [1, 1], [2, 2]])
    assert _as_set(neighbour_edges(xy)) == {(0, 2), (2, 3), (1, 3)}


def test_duplicates_are_joined():
    xy = np.array([[0.0, 0], [10, 0], [0, 10], [0, 0], [10, 0]])
    e = neighbour_edges(xy)
    assert {(0, 3), (1, 4)} <= _as_set(e)
    assert components(5, e).max() == 0


def test_groups_are_never_joined():
    rng = np.random.default_rng(1)
    xy = rng.random((60, 2)) * 1000
    groups = np.where(xy[:, 0] < 500, "t1", "t2")
    e = neighbour_edges(xy, groups=groups)
    assert (groups[e[:, 0]] == groups[e[:, 1]]).all()
    assert components(60, e).max() == 1


def test_barrier_edges_removed():
    rng = np.random.default_rng(2)
    xy = rng.random((200, 2)) * 1000
    river = gpd.GeoSeries([shapely.LineString([(500, -10), (500, 1010)])])
    full = neighbour_edges(xy)
    cut = neighbour_edges(xy, barriers=river)
    left = xy[:, 0] < 500
    crossing = left[full[:, 0]] != left[full[:, 1]]
    assert crossing.any()
    assert _as_set(cut) == _as_set(full[~crossing])
    # a GeoDataFrame and a bare geometry work the same
    assert _as_set(neighbour_edges(xy, barriers=gpd.GeoDataFrame(geometry=river))) == _as_set(cut)
    assert _as_set(neighbour_edges(xy, barriers=river.iloc[0])) == _as_set(cut)
    assert components(200, cut).max() == 1


def test_bad_input():
    with pytest.raises(ValueError):
        neighbour_edges(np.zeros((3, 3)))
    with pytest.raises(ValueError):
        neighbour_edges(np.array([[0.0, np.nan], [1, 1]]))
    with pytest.raises(ValueError):
        neighbour_edges(np.zeros((3, 2)), groups=["a"])


def test_components_numbered_by_first_vertex():
    labels = components(5, np.array([[3, 4], [0, 2]]))
    assert labels.tolist() == [0, 1, 0, 2, 2]
    a = adjacency(3, np.array([[0, 1], [1, 0], [0, 1]]))
    assert a.nnz == 2


def _rounded_delaunay(xy):
    uniq, first, inverse = unique_rows(np.round(xy, 3))
    tri = Delaunay(uniq)
    return first, inverse, tri.simplices, tri.neighbors


@pytest.mark.parametrize("seed", range(6))
def test_neighbour_edges_from_the_rounded_triangulation_are_neighbour_edges(seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 3_000, (800, 2)) + [500_000.0, 2_700_000.0]
    xy = np.vstack([xy, xy[:5], xy[3:4] + 2e-4])  # exact duplicates, one within 1 mm
    xy[:40, 0] = xy[:, 0].min()  # points exactly on the hull's left side
    first, inverse, s, nb = _rounded_delaunay(xy)
    got = neighbour_edges_from(xy, first=first, inverse=inverse, simplices=s, neighbors=nb)
    if got is not None:  # None: not provably the same (then neighbour_edges is called)
        np.testing.assert_array_equal(got, neighbour_edges(xy))


def test_neighbour_edges_from_refuses_cocircular_and_collinear_points():
    gx, gy = np.meshgrid(np.arange(10.0), np.arange(10.0))  # a square lattice: four on every circle
    xy = np.column_stack([gx.ravel(), gy.ravel()]) * 10.0
    first, inverse, s, nb = _rounded_delaunay(xy)
    assert neighbour_edges_from(xy, first=first, inverse=inverse, simplices=s, neighbors=nb) is None
    line = np.column_stack([np.arange(5.0), np.zeros(5)])
    assert neighbour_edges_from(line, first=np.arange(5), inverse=np.arange(5),
                                simplices=np.empty((0, 3), dtype=np.int64),
                                neighbors=np.empty((0, 3), dtype=np.int64)) is None


@pytest.mark.parametrize("seed", range(3))
def test_neighbour_edges_from_recognise_plain_points(seed):
    rng = np.random.default_rng(seed)
    xy = np.round(rng.uniform(0, 3_000, (800, 2)), 3)  # already on the millimetre: nothing moves
    xy = np.vstack([xy, xy[:5]])
    xy[:40, 0] = 0.0  # exactly on one line along the hull
    first, inverse, s, nb = _rounded_delaunay(xy)
    got = neighbour_edges_from(xy, first=first, inverse=inverse, simplices=s, neighbors=nb)
    assert got is not None
    np.testing.assert_array_equal(got, neighbour_edges(xy))
