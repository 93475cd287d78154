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


# ------------------------------------------------------------------ warm start (fifth session)


def _centres_of(xy: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Medoids of a plan: ``k`` random units as centres, every unit to the nearest one."""
    return xy[rng.choice(len(xy), size=k, replace=False)]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 9), data=st.data())
def test_warm_started_knn_bound_never_above_the_exact_optimum(n: int, data: st.DataObject) -> None:
    """Any start (a plan's centres, one centre, none), step rule and box: still a bound."""
    from gridplan.lv.solver import pmedian_lower_bound_knn

    k = data.draw(st.integers(1, n))
    m = data.draw(st.integers(1, n))
    rng = np.random.default_rng(data.draw(st.integers(0, 10_000)))
    xy = rng.uniform(0, 5000, (n, 2))
    w = rng.uniform(0.5, 3.0, n)
    c = data.draw(st.integers(0, n))
    centres = _centres_of(xy, c, rng) if c else None
    opt = _pmedian_optimum(xy, k, w)
    target = data.draw(st.sampled_from([0.1, 0.5, 1.0]))
    decay = data.draw(st.sampled_from([0.5, 0.7, 0.97]))
    for upper in (None, opt, 0.5 * opt, 3 * opt + 1):
        for iterations in (1, 5, 25):
            lb = pmedian_lower_bound_knn(xy, k, weights=w, neighbours=m, upper=upper,
                                         centres=centres, iterations=iterations,
                                         target=target, decay=decay)
            assert 0.0 <= lb <= opt + 1e-6 * max(1.0, opt)


def _pmedian_milp(xy: np.ndarray, k: int) -> float:
    """The p-median optimum of ``xy`` with every unit a candidate, by HiGHS' MILP solver."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix, hstack, vstack

    n = len(xy)
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    # variables: x_ij (row-major, n²), then y_j (n)
    c = np.concatenate([d.ravel(), np.zeros(n)])
    rows = np.repeat(np.arange(n), n)
    assign = hstack([coo_matrix((np.ones(n * n), (rows, np.arange(n * n))), (n, n * n)),
                     coo_matrix((n, n))])  # Σ_j x_ij = 1
    link = hstack([coo_matrix((np.ones(n * n), (np.arange(n * n), np.arange(n * n)))),
                   -coo_matrix((np.ones(n * n), (np.arange(n * n), np.tile(np.arange(n), n))),
                               (n * n, n))])  # x_ij <= y_j
    count = hstack([coo_matrix((1, n * n)), coo_matrix(np.ones((1, n)))])  # Σ y_j = k
    a = vstack([assign, link, count]).tocsr()
    lo = np.concatenate([np.ones(n), np.full(n * n, -np.inf), [k]])
    hi = np.concatenate([np.ones(n), np.zeros(n * n), [k]])
    res = milp(c, constraints=LinearConstraint(a, lo, hi), integrality=np.ones(n * n + n),
               bounds=Bounds(0, 1))
    assert res.success
    return float(res.fun)


@pytest.mark.parametrize("seed", range(6))
def test_warm_started_bound_below_the_milp_optimum(seed: int) -> None:
    """Clustered instances of 30 units solved exactly: the warm start from a poor plan's and
    from a good plan's centres, with the certificate's step rule, stays below the optimum."""
    from gridplan.lv.solver import pmedian_lower_bound_knn

    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    xy = np.concatenate([rng.normal(rng.uniform(0, 5000, 2), 300, (6, 2)) for _ in range(5)])
    opt = _pmedian_milp(xy, k)
    for centres in (_centres_of(xy, k, rng), xy[:k], xy[::6][:k]):
        for m in (3, 8, 30):
            lb = pmedian_lower_bound_knn(xy, k, neighbours=m, upper=1.3 * opt, centres=centres,
                                         iterations=25, target=0.5, decay=0.7)
            assert 0.0 <= lb <= opt + 1e-6 * opt


def _feasible_value(xy: np.ndarray, k: int, rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """A p-median solution (k-means++-like seeds, a few medoid updates): value and medoids."""
    from scipy.spatial import cKDTree

    med = [int(rng.integers(len(xy)))]
    for _ in range(k - 1):
        dist = cKDTree(xy[med]).query(xy)[0]
        med.append(int(np.argmax(dist)))
    med_a = np.array(med)
    for _ in range(3):
        lab = cKDTree(xy[med_a]).query(xy)[1]
        for g in range(k):
            rows = np.flatnonzero(lab == g)
            dd = np.sqrt(((xy[rows, None] - xy[None, rows]) ** 2).sum(-1)).sum(1)
            med_a[g] = rows[int(np.argmin(dd))]
    value = float(cKDTree(xy[med_a]).query(xy)[0].sum())
    return value, xy[med_a]


@pytest.mark.parametrize("seed", range(8))
def test_township_bound_warm_path_below_any_plan(seed: int) -> None:
    """Above OPTIMALITY_WARM_MIN 台区 the warm path (the plan's medoids as the start) runs; its
    bound, uncapped (value 1e12), stays below a feasible p-median solution's value."""
    from gridplan.metrics.kpi import OPTIMALITY_WARM_MIN, township_bound

    rng = np.random.default_rng(100 + seed)
    n = OPTIMALITY_WARM_MIN + 100 + 150 * seed
    village = rng.uniform(0, 20_000, (n // 40, 2))
    xy = village[rng.integers(len(village), size=n)] + rng.normal(0, 250, (n, 2))
    k = max(2, n // 14)
    value, med = _feasible_value(xy, k, rng)
    lb = township_bound(xy, k, 1e12, centres=med)
    assert 0.0 < lb <= value
    assert township_bound(xy, k, value, centres=med) <= value
    assert township_bound(xy, k, value, centres=med) == township_bound(xy, k, value, centres=med)
    assert township_bound(xy, k, 10.0, centres=med) == 10.0


def test_optimality_with_a_pool_is_the_same() -> None:
    """Two townships above OPTIMALITY_WARM_MIN: the certificate with a spawned worker is the
    same, value for value, as without it, and every bound is at most its township's value."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from scipy.cluster.vq import kmeans2

    from gridplan.metrics.kpi import OPTIMALITY_WARM_MIN, optimality

    rng = np.random.default_rng(7)
    n = OPTIMALITY_WARM_MIN + 200
    xy = np.concatenate([rng.uniform(0, 8000, (n, 2)), rng.uniform(10_000, 18_000, (n, 2))])
    keys = np.array(["T1"] * n + ["T2"] * n)
    gid = np.empty(2 * n, dtype=object)
    for t, rows in enumerate((slice(0, n), slice(n, 2 * n))):
        lab = kmeans2(xy[rows], 40, seed=1, minit="++")[1]
        gid[rows] = [f"T{t}-{g:02d}" for g in lab]
    serial = optimality(xy, gid, keys)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pooled = optimality(xy, gid, keys, pool=pool)
    assert pooled == serial
    for o in serial["townships"].values():
        assert 0 < o["bound_m"] <= o["value_m"]
