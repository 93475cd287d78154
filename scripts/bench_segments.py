"""Benchmark 高压到段 segmentation on a random feeder forest (1,000,000 vertices by default).

Each feeder is a random recursive tree (vertex ``i`` hangs under a uniformly random earlier vertex)
rooted at its substation, edge lengths uniform in 30–150 m, closed switches on ~10 % of the edges.
Prints the time to build the arrays and to segment them (anywhere / switch-only, with and without
balancing), and checks optimality against the per-feeder lower bound ceil(length / cap).

    .venv/bin/python scripts/bench_segments.py --vertices 1000000 --feeders 500 --cap-km 15
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gridplan.hv.segments import cut_tree


def random_forest(n: int, feeders: int, seed: int, switch_share: float = 0.1):
    """Return (parent, length_m, cuttable, feeder) for a forest of ``feeders`` random recursive trees."""
    rng = np.random.default_rng(seed)
    sizes = rng.multinomial(n - feeders, np.full(feeders, 1.0 / feeders)) + 1
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    feeder = np.repeat(np.arange(feeders), sizes)
    local = np.arange(n) - starts[feeder]
    # parent: a uniformly random earlier vertex of the same tree (root: -1)
    u = rng.random(n)
    parent = np.where(local > 0, starts[feeder] + np.floor(u * local).astype(np.int64), -1)
    length = np.where(parent >= 0, rng.uniform(30.0, 150.0, n), 0.0)
    switch = rng.random(n) < switch_share
    root_child = np.zeros(n, dtype=bool)
    root_child[parent >= 0] = parent[parent >= 0] == starts[feeder[parent >= 0]]
    cuttable = switch | root_child
    return parent, length, cuttable, feeder


def reference_count(parent, length, cap: float, cuttable) -> int:
    """Plain-Python Kundu–Misra on the contracted tree (an independent check; slow)."""
    n = len(parent)
    par = parent.tolist()
    w = length.tolist()
    cut_ok = cuttable.tolist()
    # contract: section of every vertex (parents precede children in this forest)
    sec = list(range(n))
    for v in range(n):
        if par[v] >= 0 and not cut_ok[v]:
            sec[v] = sec[par[v]]
    W: dict[int, float] = {}
    for v in range(n):
        W[sec[v]] = W.get(sec[v], 0.0) + w[v]
    kids: dict[int, list[int]] = {}
    for s in W:
        if par[s] >= 0:
            kids.setdefault(sec[par[s]], []).append(s)
    res: dict[int, float] = {}
    count = 0
    for s in sorted(W, reverse=True):  # children have larger indices than their parents
        ch = sorted((res[c] for c in kids.get(s, [])), reverse=True)
        tot = W[s] + sum(ch)
        if W[s] > cap:  # over-long section: its own segment, every child cut off
            count += 1 + sum(1 for r in ch if r > 0)
            res[s] = 0.0
            continue
        for r in ch:
            if tot <= cap + 1e-9 * cap:
                break
            tot -= r
            count += 1
        res[s] = tot
        if par[s] < 0 and tot > 0:
            count += 1
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vertices", type=int, default=1_000_000)
    ap.add_argument("--feeders", type=int, default=500)
    ap.add_argument("--cap-km", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true", help="also run the slow plain-Python reference")
    a = ap.parse_args()
    t0 = time.perf_counter()
    parent, length, cuttable, feeder = random_forest(a.vertices, a.feeders, a.seed)
    t_build = time.perf_counter() - t0
    cap = a.cap_km * 1000.0
    flen = np.bincount(feeder, weights=length)
    bound = int(np.ceil(flen / cap - 1e-12).sum())
    print(f"vertices {a.vertices:,}  feeders {a.feeders}  total {flen.sum() / 1000:,.0f} km  cap {a.cap_km} km")
    print(f"build arrays: {t_build:.2f} s")
    for mode, cut in (("anywhere", None), ("switches", cuttable)):
        for balance in (False, True):
            t0 = time.perf_counter()
            r = cut_tree(parent, length, cap, cuttable=cut, balance=balance)
            dt = time.perf_counter() - t0
            nseg = int((r.seg_edges > 0).sum())
            err = abs(r.seg_weight.sum() - length.sum())
            print(f"segment {mode:8s} balance={balance!s:5s}: {dt:.2f} s  segments {nseg:,}  "
                  f"bound {bound:,} (+{nseg - bound})  max {r.seg_weight.max() / 1000:.2f} km  "
                  f"mean {r.seg_weight[r.seg_edges > 0].mean() / 1000:.2f} km  overlong {len(r.overlong)}  "
                  f"length error {err:.1e} m")
            if a.check and not balance:
                t0 = time.perf_counter()
                ref = reference_count(parent, length, cap, cuttable if cut is not None else np.ones_like(cuttable))
                print(f"  reference plain-Python greedy: {ref:,} segments ({time.perf_counter() - t0:.1f} s)"
                      f" -> {'equal' if ref == nseg else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
