"""高压到段: optimal tree cutting (against brute force), switch-only cuts, alignment, KPIs."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString, box
from test_feeders import CRS, make_county

from gridplan.segments import align_segments, cut_tree, segment_feeders
from gridplan.settings import Params


def brute_force(parent, w, cap, cuttable):
    """Fewest non-empty parts over every subset of cuttable edges (None if no subset fits)."""
    n = len(parent)
    edges = [v for v in range(n) if parent[v] >= 0 and cuttable[v]]
    for k in range(len(edges) + 1):
        for cut in itertools.combinations(edges, k):
            cut = set(cut)
            lab = list(range(n))
            for v in range(n):  # parents precede children
                if parent[v] >= 0 and v not in cut:
                    lab[v] = lab[parent[v]]
            tot: dict[int, float] = {}
            cnt: dict[int, int] = {}
            for v in range(n):
                tot[lab[v]] = tot.get(lab[v], 0.0) + w[v]
                cnt[lab[v]] = cnt.get(lab[v], 0) + int(parent[v] >= 0)
            if all(t <= cap + 1e-9 for t in tot.values()):
                return sum(1 for c in cnt.values() if c)
    return None


def random_tree(rng, n):
    parent = np.array([-1] + [int(rng.integers(0, v)) for v in range(1, n)])
    if rng.random() < 0.3:  # sometimes a forest
        parent[int(rng.integers(1, n))] = -1
    w = rng.uniform(1, 10, n)
    w[parent < 0] = 0.0
    return parent, w


@pytest.mark.parametrize("switch_share", [1.0, 0.5])
def test_greedy_count_equals_brute_force(switch_share):
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(150):
        n = int(rng.integers(2, 13))  # at most 12 edges
        parent, w = random_tree(rng, n)
        cap = float(rng.uniform(10, 30))
        cuttable = rng.random(n) < switch_share
        best = brute_force(parent, w, cap, cuttable)
        for balance in (False, True):
            r = cut_tree(parent, w, cap, cuttable=cuttable, balance=balance)
            if best is None:  # switch-only cuts cannot meet the cap: must be reported
                assert len(r.overlong) > 0
                continue
            assert len(r.overlong) == 0
            assert int((r.seg_edges > 0).sum()) == best
            assert r.seg_weight.max() <= cap + 1e-9
            assert r.seg_weight.sum() == pytest.approx(w.sum(), abs=1e-9)
            checked += 1
    assert checked > 100


def test_segments_are_connected_and_respect_cuttable():
    rng = np.random.default_rng(3)
    parent, w = random_tree(rng, 200)
    cuttable = rng.random(200) < 0.4
    r = cut_tree(parent, w, 40.0, cuttable=cuttable)
    for v in np.flatnonzero(parent >= 0):
        if r.label[v] != r.label[parent[v]]:
            assert cuttable[v]  # a segment boundary only where cutting is allowed
    # connected: exactly one node per segment whose parent is outside it
    tops = [v for v in range(200) if parent[v] < 0 or r.label[parent[v]] != r.label[v]]
    assert len(tops) == len(np.unique(r.label))


def test_balancing_keeps_the_count_and_evens_a_path():
    w = np.r_[0.0, np.full(10, 1.0)]          # a path of ten 1 km edges
    parent = np.arange(-1, 10)
    plain = cut_tree(parent, w, 6.0, balance=False)
    even = cut_tree(parent, w, 6.0, balance=True)
    assert (plain.seg_edges > 0).sum() == (even.seg_edges > 0).sum() == 2
    assert sorted(plain.seg_weight[plain.seg_edges > 0]) == [4.0, 6.0]
    assert sorted(even.seg_weight[even.seg_edges > 0]) == [5.0, 5.0]


def test_switch_only_cut_reports_where_a_switch_would_help():
    lines = [LineString([(0, 0), (8000, 0)]), LineString([(8000, 0), (20000, 0)])]
    county = make_county(lines, ["F1", "F1"], [(0, 0)], switches=[((8000, 0), False)])
    r = segment_feeders(county, params=Params(segment_cap_km=10, segment_cut="switches"))
    assert list(r.segments["length_km"].round(6)) == [8.0, 12.0]
    assert r.kpi["feeders_cap_unmet"] == 1
    assert any("F1" in n and "加装分段开关" in n and "12.00 km" in n for n in r.notes)
    anywhere = segment_feeders(county, params=Params(segment_cap_km=10, segment_cut="anywhere"))
    assert anywhere.kpi["feeders_cap_unmet"] == 0
    assert anywhere.segments["length_km"].max() <= 10 + 1e-9
    # the 12 km piece is split into 6 + 6 km; cuts at vertices only: 8 | 6 | 6
    assert list(anywhere.segments["length_km"].round(6)) == [8.0, 6.0, 6.0]
    assert anywhere.kpi["lower_bound"] == 2


def test_segment_feeders_conserves_length_and_counts_transformers():
    lines = [LineString([(0, 0), (9000, 0)]), LineString([(3000, 0), (3000, 7000)]),
             LineString([(9000, 0), (9000, 5000)])]
    trs = [("A", "F1", (3100, 6000)), ("B", "F1", (8000, 50)), ("C", None, (9050, 4000))]
    county = make_county(lines, ["F1"] * 3, [(0, 0)], transformers=trs)
    r = segment_feeders(county, params=Params(segment_cap_km=8, segment_cut="anywhere"))
    assert r.kpi["length_error_km"] < 1e-6
    assert r.segments["length_km"].sum() == pytest.approx(21.0)
    assert r.segments.geometry.length.sum() == pytest.approx(21000.0)
    assert r.segments["length_km"].max() <= 8 + 1e-9
    assert r.transformer_segment.notna().all()
    assert r.segments["transformers"].sum() == 3
    assert list(r.transformer_segment.index) == list(county.transformers.index)
    assert r.kpi["segments"] == len(r.segments) >= r.kpi["lower_bound"] == 3
    assert r.segments["segment_id"].is_unique
    again = segment_feeders(county, params=Params(segment_cap_km=8, segment_cut="anywhere"))
    assert again.segments.drop(columns="geometry").equals(r.segments.drop(columns="geometry"))


def test_align_segments_shares():
    segs = gpd.GeoDataFrame({"segment_id": ["a", "b", "c"]},
                            geometry=[LineString([(0, 0), (10, 0)]), LineString([(5, 5), (25, 5)]),
                                      LineString([(100, 100), (110, 100)])], crs=CRS)
    grids = gpd.GeoDataFrame({"grid_id": ["G1", "G2"], "manager_id": ["M1", "M2"]},
                             geometry=[box(-1, -1, 20, 20), box(20, -1, 40, 20)], crs=CRS)
    out = align_segments(segs, grids)
    assert list(out["grid_id"]) == ["G1", "G1", None]
    assert list(out["manager_id"]) == ["M1", "M1", None]
    assert out["share_in_grid"].tolist() == pytest.approx([1.0, 0.75, 0.0])
