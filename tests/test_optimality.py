"""The certificate's lower bound is never above the optimum (issue #16, part 2).

Small instances are solved exactly by brute force over every set of ``k`` medoids and every
partition into ``k`` contiguous parts is a p-median solution, so the p-median optimum is itself
≤ the best contiguous balanced plan: the bound must be ≤ the p-median optimum.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridplan.lv.solver import pmedian_lower_bound


def _pmedian_optimum(xy: np.ndarray, k: int, w: np.ndarray) -> float:
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)) * w[:, None]
    return min(float(d[:, list(c)].min(axis=1).sum()) for c in combinations(range(len(xy)), k))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 9), data=st.data())
def test_bound_never_above_the_exact_optimum(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, n))
    seed = data.draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 5000, (n, 2))
    w = rng.uniform(0.5, 3.0, n)
    opt = _pmedian_optimum(xy, k, w)
    lb = pmedian_lower_bound(xy, k, weights=w)
    assert 0.0 <= lb <= opt + 1e-6 * max(1.0, opt)


def test_bound_is_tight_enough_to_be_useful() -> None:
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 5000, (9, 2))
    opt = _pmedian_optimum(xy, 3, np.ones(9))
    assert pmedian_lower_bound(xy, 3) >= 0.8 * opt


def test_bad_k() -> None:
    with pytest.raises(ValueError):
        pmedian_lower_bound(np.zeros((3, 2)), 0)


def test_kpi_optimality_section_on_a_small_county() -> None:
    from gridplan.metrics.kpi import optimality

    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 3000, (8, 2))
    keys = np.array(["T1"] * 4 + ["T2"] * 4)
    gid = np.array(["a", "a", "b", "b", "c", "c", "c", "d"])
    out = optimality(xy, gid, keys)
    for key, rows, k in (("T1", slice(0, 4), 2), ("T2", slice(4, 8), 2)):
        o = out["townships"][key]
        assert o["bound_m"] <= _pmedian_optimum(xy[rows], k, np.ones(4)) + 0.1
        assert o["bound_m"] <= o["value_m"] and 0 <= o["gap"] <= 1
    c = out["county"]
    assert c["bound_m"] == pytest.approx(sum(v["bound_m"] for v in out["townships"].values()))
    assert out["skipped"] == []


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 9), data=st.data())
def test_knn_bound_never_above_the_exact_optimum(n: int, data: st.DataObject) -> None:
    from gridplan.lv.solver import pmedian_lower_bound_knn

    k = data.draw(st.integers(1, n))
    m = data.draw(st.integers(1, n))  # few neighbours: the box on the multipliers binds
    rng = np.random.default_rng(data.draw(st.integers(0, 10_000)))
    xy = rng.uniform(0, 5000, (n, 2))
    w = rng.uniform(0.5, 3.0, n)
    opt = _pmedian_optimum(xy, k, w)
    for upper in (None, opt, 3 * opt + 1):
        lb = pmedian_lower_bound_knn(xy, k, weights=w, neighbours=m, upper=upper)
        assert 0.0 <= lb <= opt + 1e-6 * max(1.0, opt)


def test_township_bound_is_valid_and_at_most_the_value() -> None:
    from gridplan.metrics.kpi import township_bound

    rng = np.random.default_rng(11)
    xy = rng.uniform(0, 5000, (9, 2))
    opt = _pmedian_optimum(xy, 3, np.ones(9))
    assert township_bound(xy, 3, opt) <= opt + 1e-6
    big = rng.uniform(0, 20_000, (600, 2))
    assert 0 < township_bound(big, 30, 1e12) <= 1e12
    assert township_bound(big, 30, 10.0) == 10.0  # never above the plan's own value
