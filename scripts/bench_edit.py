"""Benchmark the editor's server side: open, a 200-台区 edit on a 10,000-台区 county, 自动平衡.

    .venv/bin/python scripts/bench_edit.py [--transformers 10000] [--moves 200] [--runs 7]
                                            [--work /tmp/bench_edit]

Steps: generate a synthetic county (scripts/make_sample_county.py, seed 7) and plan it (cached in
--work); open an editing session on it (the 台区 cells and contiguity graph, computed once) and
build ``GET /api/state``; then, through the HTTP API (Starlette's TestClient, in process: the
server's own work plus JSON), reassign ``--moves`` 台区 — the nearest ones of one township to a
grid that is not theirs — to that grid's manager and undo, ``--runs`` times. The edit's time is
``POST /api/reassign``: validation, re-dissolving the changed grids, their statistics, the KPIs
and the delta JSON. Last, 自动平衡 (``POST /api/rebalance``) of the sample county's station S01,
``--runs`` times, then once after a planner's edit there that overloads a grid (15 台区 of a
neighbouring grid lassoed into it). Targets (issue 13): edit ≤ 150 ms (server + page), rebalance ≤ 3 s.
Wall and CPU time (time.process_time of this process, which is the server's work plus the client's
JSON decoding) are both printed: on a shared machine the CPU time is the steadier figure.
Peak memory is this process's getrusage(RUSAGE_SELF).ru_maxrss.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

TOKEN = "bench"
H = {"X-Gridplan-Token": TOKEN}


def county_plan(work: Path, n: int) -> Path:
    """Plan folder of a synthetic n-台区 county (generated and planned once, then reused)."""
    import gridplan

    folder = work / f"county{n}"
    out = work / f"plan{n}"
    if not (folder / "transformers.csv").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_county.py"), "--out", str(folder),
                        "--transformers", str(n), "--seed", "7", "-q"], check=True)
    if not (out / "plan.gpkg").exists():
        t0 = time.perf_counter()
        gridplan.plan(gridplan.load_county(folder)).to_file(out, map_html=False, roster=False)
        print(f"planned the {n}-台区 county in {time.perf_counter() - t0:.1f} s")
    return out


def client_for(plan, store: Path):
    from starlette.testclient import TestClient

    from gridplan.edit.server import create_app
    from gridplan.edit.session import EditSession

    t0 = time.perf_counter()
    session = EditSession(plan, store=store, label=str(store), journal=store.parent / "journal.json")
    t_session = time.perf_counter() - t0
    app = create_app(session, token=TOKEN, port=8765)
    return TestClient(app, base_url="http://127.0.0.1:8765"), session, t_session


def pick_moves(session, k: int, *, station: str | None = None) -> tuple[list[str], str]:
    """The ``k`` 台区 of one township nearest to a grid's centre that are not in it, and its manager."""
    import numpy as np

    ctx = session.context
    p = session.current
    gid = p.transformers["grid_id"].astype(str).to_numpy()
    towns = set(ctx.township[ctx.station == station].tolist()) if station else set(ctx.township.tolist())
    counts = {t: int((ctx.township == t).sum()) for t in sorted(towns)}
    town = max(counts, key=counts.get)
    rows = np.flatnonzero(ctx.township == town)
    target = sorted(set(gid[rows].tolist()))[len(set(gid[rows].tolist())) // 2]
    centre = ctx.xy[gid == target].mean(axis=0)
    cand = rows[gid[rows] != target]
    order = cand[np.argsort(np.hypot(*(ctx.xy[cand] - centre).T))][:k]
    manager = str(p.grids.set_index("grid_id").loc[target, "manager_id"])
    return ctx.ids[order].tolist(), manager


def overloading_edit(session, *, station: str, n_move: int = 15) -> tuple[list[str], str, str]:
    """``n_move`` 台区 of a neighbouring grid lassoed into one grid of ``station`` (over capacity).

    Returns (the 台区 ids, the receiving grid's manager, the receiving grid).
    """
    import numpy as np

    ctx = session.context
    p = session.current
    gid = p.transformers["grid_id"].astype(str).to_numpy()
    man = p.transformers["manager_id"].astype(str).to_numpy()
    cap = float(p.params.capacity)
    for b in sorted(set(gid[ctx.station == station].tolist())):
        rb = np.flatnonzero(gid == b)
        a = ctx.main_neighbour(gid, b)
        if a is None:
            continue
        ra = np.flatnonzero(gid == a)
        if len(ra) < n_move + 3:
            continue
        near = ra[np.argsort(np.hypot(*(ctx.xy[ra] - ctx.xy[rb].mean(0)).T), kind="stable")][:n_move]
        extra = float(ctx.workload[near].sum())
        if float(ctx.workload[rb].sum()) + extra > cap and extra < 1.2 * cap:
            return ctx.ids[near].tolist(), str(man[rb[0]]), b
    raise SystemExit(f"no grid of {station} with a big enough neighbour")


def main() -> None:
    from _machine import describe

    from gridplan.pipeline import read_plan

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--transformers", type=int, default=10_000)
    ap.add_argument("--moves", type=int, default=200)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_edit"))
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {describe()}; load average {os.getloadavg()[0]:.2f}")

    big = read_plan(county_plan(a.work, a.transformers))
    client, session, t_session = client_for(big, a.work / "big-plans.gpkg")
    t0, c0 = time.perf_counter(), time.process_time()
    r = client.get("/api/state", headers=H)
    t_state, c_state = time.perf_counter() - t0, time.process_time() - c0
    assert r.status_code == 200
    print(f"{len(big.transformers)} 台区, {len(big.grids)} grids: session {t_session:.2f} s "
          f"(cells + graph), GET /api/state {t_state:.2f} s wall / {c_state:.2f} s CPU, "
          f"{len(r.content) / 1e6:.1f} MB")
    ids, manager = pick_moves(session, a.moves)
    edit, cpu, undo, sizes = [], [], [], []
    for _ in range(a.runs):
        t0, c0 = time.perf_counter(), time.process_time()
        r = client.post("/api/reassign", headers=H, json={"transformer_ids": ids, "manager_id": manager})
        edit.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        assert r.status_code == 200, r.text
        sizes.append((len(r.content), len(r.json()["grids"]["features"]), len(r.json()["transformers"])))
        t0 = time.perf_counter()
        assert client.post("/api/undo", headers=H).status_code == 200
        undo.append(time.perf_counter() - t0)
    b, g, t = sizes[0]
    print(f"reassign {len(ids)} 台区 to {manager} ({t} changed, {g} grids re-dissolved, delta {b / 1e3:.0f} KB): "
          f"median {statistics.median(edit) * 1000:.0f} ms wall (min {min(edit) * 1000:.0f}, max {max(edit) * 1000:.0f}), "
          f"{statistics.median(cpu) * 1000:.0f} ms CPU; undo median {statistics.median(undo) * 1000:.0f} ms wall")

    import gridplan

    sample_dir = a.work / "sample-plan"
    if not (sample_dir / "plan.gpkg").exists():
        gridplan.plan(gridplan.load_county(ROOT / "geodata" / "sample")).to_file(sample_dir, map_html=False,
                                                                                 roster=False)
    sample = read_plan(sample_dir)
    client, session, t_session = client_for(sample, a.work / "sample-plans.gpkg")
    times, cpu, changes = [], [], 0
    for _ in range(a.runs):
        t0, c0 = time.perf_counter(), time.process_time()
        r = client.post("/api/rebalance", headers=H, json={"station_id": "S01"})
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        assert r.status_code == 200, r.text
        changes = len(r.json()["changes"])
    # then once after a planner's edit that overloads a grid (15 台区 of a neighbouring grid lassoed
    # into one grid of S01: over capacity)
    ids, manager, grid = overloading_edit(session, station="S01")
    r = client.post("/api/reassign", headers=H, json={"transformer_ids": ids, "manager_id": manager})
    assert r.status_code == 200, r.text
    over = {f["id"]: f["properties"]["workload"] for f in r.json()["grids"]["features"]}[grid]
    t0, c0 = time.perf_counter(), time.process_time()
    r = client.post("/api/rebalance", headers=H, json={"station_id": "S01"})
    t_edit, c_edit = time.perf_counter() - t0, time.process_time() - c0
    assert r.status_code == 200, r.text
    after = r.json()["kpi_after"]
    print(f"自动平衡 of S01 after an edit of {len(ids)} 台区 that put {grid} at {over:g} "
          f"(capacity {session.current.params.capacity:g}): {t_edit:.2f} s wall, {c_edit:.2f} s CPU, "
          f"{len(r.json()['changes'])} 台区 would change; over-capacity grids after: {after['over_capacity']}")
    n_st = int((session.context.station == "S01").sum())
    print(f"自动平衡 station S01 of the sample ({n_st} 台区): median {statistics.median(times):.2f} s "
          f"wall (min {min(times):.2f}, max {max(times):.2f}), {statistics.median(cpu):.2f} s CPU; "
          f"{changes} 台区 would change")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (this process, ru_maxrss): {peak:.0f} MB; load average at the end "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
