"""Benchmark 高压到段 segmentation on a random feeder forest (1,000,000 vertices by default).

Each feeder is a random recursive tree (vertex ``i`` hangs under a uniformly random earlier vertex)
rooted at its substation, edge lengths uniform in 30–150 m, closed switches on ~10 % of the edges.
Prints the time to build the arrays and to segment them (anywhere / switch-only, with and without
balancing), and checks optimality against the per-feeder lower bound ceil(length / cap).

    .venv/bin/python scripts/bench_segments.py --vertices 1000000 --feeders 500 --cap-km 15
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from gridplan.segments import cut_tree


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vertices", type=int, default=1_000_000)
    ap.add_argument("--feeders", type=int, default=500)
    ap.add_argument("--cap-km", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=0)
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


if __name__ == "__main__":
    main()
