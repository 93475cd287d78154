"""Plan one county of 1,000,000 台区 with the full ``gridplan.plan()`` and time every stage.

Issue #16 part 4: one county of 1,000,000 台区 planned in ≤ 60 s within 4 GB (a benchmark, not a
test). The county is generated in memory (no files: generating and loading are not timed), in
CGCS2000 / 3-degree Gauss-Kruger CM 114E (EPSG:4547, metres), seeded:

* a square of ``--side-km`` (default 150 km) cut into ``--townships`` (default 400) townships:
  the Voronoi cells of jittered grid seeds (a township = the 台区 nearest to its seed);
* stations: groups of 4 townships neighbouring in seed order;
* villages: N/40 centres, their sizes lognormal (a few big villages, many small ones); 90 % of the
  台区 around a village centre (normal, σ = 250 m), 10 % scattered uniformly; households per 台区
  lognormal (median 74, 1-900), capacities 100-400 kVA; workload = households, capacity 1,500;
* no feeders, managers or roads (the LV side of the plan: workload, territory cells and the
  contiguity graph, patches, grid polygons, manager placeholders, KPIs).

Every stage's wall time (and this process's CPU time, user + system, which a loaded machine
distorts less) comes from ``plan(progress=...)``; with ``--workers`` (``[plan] workers``; default
0 = auto: min(cores, 4) from 100,000 台区) the townships' solves and certificate bounds run in
worker processes, whose CPU per stage and own peak RSS are read from /proc (:class:`Descendants`:
they are forked from a fork server, so this process's grandchildren). Peak memory is this
process's own ``getrusage(RUSAGE_SELF).ru_maxrss`` read after every stage (a running maximum,
so the row where it jumps is the stage that needed it) and, for the fork server and the
workers, each one's own ``VmHWM``: the memory resident at once is bounded by the sum.

Usage::

    PYTHONPATH=. .venv/bin/python scripts/bench_million.py                 # 1,000,000 台区
    PYTHONPATH=. .venv/bin/python scripts/bench_million.py --n 100000 --townships 40
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

X0, Y0 = 400_000.0, 3_300_000.0  # EPSG:4547 false easting 500 km: west of CM 114E, ~29.8°N
CRS_M = CRS.from_epsg(4547)


def peak_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """CPU seconds (user + system) used by this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def make_county(n: int, *, townships: int, side_km: float, seed: int = 0):
    """A generated county of ``n`` 台区 (see the module docstring)."""
    from gridplan.model import County
    from gridplan.settings import Params

    rng = np.random.default_rng(seed)
    side = side_km * 1000.0
    g = int(np.ceil(np.sqrt(townships)))
    gx, gy = np.meshgrid((np.arange(g) + 0.5) / g, (np.arange(g) + 0.5) / g)
    seeds = np.column_stack([gx.ravel(), gy.ravel()])[:townships]
    seeds = np.clip(seeds + rng.uniform(-0.35, 0.35, seeds.shape) / g, 0.01, 0.99) * side
    seeds += (X0, Y0)
    square = shapely.box(X0, Y0, X0 + side, Y0 + side)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds),
                                                       extend_to=square, ordered=True))
    cells = shapely.intersection(cells, square)
    # villages: sizes lognormal; 90% of 台区 around a centre, 10% scattered
    nv = max(n // 40, 1)
    centres = np.column_stack([rng.uniform(X0, X0 + side, nv), rng.uniform(Y0, Y0 + side, nv)])
    size = rng.lognormal(0.0, 0.8, nv)
    near = rng.random(n) < 0.9
    vil = rng.choice(nv, size=n, p=size / size.sum())
    xy = np.where(near[:, None], centres[vil] + rng.normal(scale=250.0, size=(n, 2)),
                  np.column_stack([rng.uniform(X0, X0 + side, n), rng.uniform(Y0, Y0 + side, n)]))
    xy = np.clip(xy, (X0 + 1, Y0 + 1), (X0 + side - 1, Y0 + side - 1))
    town = cKDTree(seeds).query(xy)[1]  # Voronoi cell of the nearest seed = the township
    tids = np.array([f"T{i + 1:03d}" for i in range(townships)], dtype=object)
    sids = np.array([f"S{i // 4 + 1:03d}" for i in range(townships)], dtype=object)
    towns = gpd.GeoDataFrame({"township_id": tids, "name": [f"第{i + 1}镇" for i in range(townships)],
                              "station_id": sids, "area_class": "农村"}, geometry=cells, crs=CRS_M)
    st_ids = sorted(set(sids.tolist()))
    first = pd.Series(np.arange(townships)).groupby(sids).first()
    stations = gpd.GeoDataFrame(
        {"station_id": st_ids, "name": [f"{s}供电所" for s in st_ids], "kind": "供电所",
         "parent_id": None},
        geometry=shapely.points(seeds[first.loc[st_ids].to_numpy()]), crs=CRS_M)
    cust = np.clip(np.round(rng.lognormal(4.3, 0.8, n)), 1, 900).astype(np.int64)
    tr = gpd.GeoDataFrame({
        "transformer_id": [f"TQ{i:07d}" for i in range(n)],
        "name": [f"{i}号台区" for i in range(n)], "customers": cust,
        "capacity_kva": rng.choice([100.0, 200.0, 315.0, 400.0], n), "feeder_id": None,
        "status": "运行", "township_id": tids[town],
        "village": np.where(near, pd.Series(vil).map(lambda v: f"村{v}").to_numpy(), None),
        "station_id": sids[town],
    }, geometry=shapely.points(xy), crs=CRS_M)
    return County(name="百万台区县", crs=CRS_M, townships=towns, stations=stations,
                  transformers=tr, params=Params(capacity=1500.0, workload="customers"))


class Descendants:
    """CPU seconds and own peak RSS of every process descended from this one, polled every 0.1 s.

    The workers come from a fork server (``gridplan.pipeline.worker_context``): they are this
    process's grandchildren, so neither ``RUSAGE_CHILDREN`` (which counts waited-for children
    only) nor a ``PPid`` test sees them. A walk of all /proc every second finds them (and one at
    every stage's end); the ones found are read every 0.1 s. A descendant's CPU is its
    ``utime + stime`` (/proc/<pid>/stat) as last seen, so a worker's last < 0.1 s before it
    exits may be missed; its peak is ``VmHWM`` (/proc/<pid>/status), the high-water mark of its
    own address space (``RUSAGE_CHILDREN``'s ``ru_maxrss`` of a spawned child would include this
    process's RSS at the spawn, which Linux carries over the ``exec``).
    """

    def __init__(self) -> None:
        self.cpu: dict[int, float] = {}
        self.peak: dict[int, float] = {}
        self.name: dict[int, str] = {}
        self._tick = os.sysconf("SC_CLK_TCK")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        beat = 0
        while not self._stop.wait(0.1):
            beat += 1
            self.poll(walk=beat % 10 == 0)  # the known ones every 0.1 s, all of /proc every 1 s

    def poll(self, *, walk: bool = True) -> None:
        """Read the descendants' CPU and peak now (``walk``: look for new ones in all of /proc)."""
        parent: dict[int, int] = {}
        stat: dict[int, list[str]] = {}
        paths = (Path("/proc").glob("[0-9]*/stat") if walk
                 else [Path(f"/proc/{pid}/stat") for pid in list(self.cpu)])
        for path in paths:
            try:
                text = path.read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
            pid = int(path.parent.name)
            parent[pid], stat[pid] = int(fields[1]), fields
        me, mine = os.getpid(), set()
        for pid in parent:
            p, seen = pid, 0
            while p in parent and p != me and seen < 64:
                p, seen = parent[p], seen + 1
            if (p == me or (not walk and pid in self.cpu)) and pid != me:
                mine.add(pid)
        with self._lock:
            for pid in mine:
                f = stat[pid]
                self.cpu[pid] = (int(f[11]) + int(f[12])) / self._tick  # utime, stime
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                hwm = [ln for ln in status.splitlines() if ln.startswith("VmHWM")]
                if hwm:
                    self.peak[pid] = max(self.peak.get(pid, 0.0), int(hwm[0].split()[1]) / 1024)
                self.name.setdefault(pid, status.splitlines()[0].split()[-1])

    def cpu_s(self) -> float:
        """CPU seconds of every descendant so far (polled now)."""
        self.poll()
        with self._lock:
            return sum(self.cpu.values())

    def stop(self) -> tuple[float, list[float]]:
        """Stop polling; the CPU seconds of all descendants and each one's peak RSS (MB)."""
        self._stop.set()
        self._thread.join()
        return sum(self.cpu.values()), sorted(self.peak.values(), reverse=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="number of 台区")
    ap.add_argument("--townships", type=int, default=400)
    ap.add_argument("--side-km", type=float, default=150.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=0,
                    help="[plan] workers (default 0 = auto: min(cores, 4) from 100,000 台区)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log the library's INFO lines")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    from _machine import describe

    import gridplan
    from gridplan.pipeline import worker_count

    t = time.perf_counter()
    county = make_county(args.n, townships=args.townships, side_km=args.side_km, seed=args.seed)
    gen_s, gen_mb = time.perf_counter() - t, peak_mb()
    workers = worker_count(county.params.replace(workers=args.workers), county)
    rows: list[tuple[str, float, float, float, float]] = []
    family = Descendants()
    last: list = [time.perf_counter(), cpu_s(), family.cpu_s(), None]

    def progress(stage: str, i: int, n: int) -> None:
        now, cpu, wk = time.perf_counter(), cpu_s(), family.cpu_s()
        if last[3] is not None:
            rows.append((last[3], now - last[0], cpu - last[1], wk - last[2], peak_mb()))
            print(f"  {last[3]}: {now - last[0]:.2f} s wall, {cpu - last[1]:.2f} s CPU here, "
                  f"{wk - last[2]:.2f} s CPU in workers, peak {peak_mb():.0f} MB", flush=True)
        last[:] = [now, cpu, wk, stage]

    t0, c0, w0 = time.perf_counter(), cpu_s(), family.cpu_s()
    p = gridplan.plan(county, progress=progress, workers=args.workers)
    now, cpu = time.perf_counter(), cpu_s()
    wk_cpu, wk_peaks = family.stop()  # the pool is shut down: each worker as last seen
    rows.append((last[3], now - last[0], cpu - last[1], wk_cpu - last[2], peak_mb()))
    total, total_cpu, total_wk = now - t0, cpu - c0, wk_cpu - w0
    print(f"Machine: {describe()}; load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} "
          "(1 / 5 / 15 min) at the end.\n")
    print(f"Command: `{' '.join([Path(sys.executable).name] + sys.argv)}`\n")
    print(f"County: {len(county.transformers):,} 台区, {args.townships} townships, "
          f"{len(county.stations)} stations, {args.side_km:.0f} km square; generated in "
          f"{gen_s:.1f} s (not timed below; peak {gen_mb:.0f} MB after generating). "
          f"Plan: {len(p.grids):,} grids; {workers} worker process(es).\n")
    print("| stage | wall s | CPU s (this process) | CPU s (workers) | peak MB so far (this process) |")
    print("|---|---|---|---|---|")
    for name, sec, cs, wk, mb in rows:
        print(f"| {name} | {sec:.2f} | {cs:.2f} | {wk:.2f} | {mb:.0f} |")
    print(f"| **plan() total** | **{total:.2f}** | **{total_cpu:.2f}** | **{total_wk:.2f}** | "
          f"**{peak_mb():.0f}** |")
    print(f"\nWorker processes (every descendant of this process: the fork server and the "
          f"workers; /proc polled every 0.1 s): {total_wk:.2f} CPU s; their own peaks (VmHWM) "
          f"{', '.join(f'{m:.0f}' for m in wk_peaks)} MB. Resident at once ≤ this process's "
          f"peak {peak_mb():.0f} MB + theirs = {peak_mb() + sum(wk_peaks):.0f} MB "
          "(target 4,096 MB).")
    opt = p.kpi.get("optimality", {}).get("county", {})
    print(f"Certificate: bound {opt.get('bound_m', 0) / 1000:,.1f} km, value "
          f"{opt.get('value_m', 0) / 1000:,.1f} km, gap {opt.get('gap', 0):.4f} "
          f"({opt.get('covers')}; {len(p.kpi.get('optimality', {}).get('skipped', []))} skipped).")


if __name__ == "__main__":
    main()
