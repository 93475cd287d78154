"""Tests of gridplan.lv.graph: Delaunay neighbours per group, degenerate inputs, barriers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridplan.lv.graph import adjacency, components, neighbour_edges


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
