"""Time the grid-polygon task of one township (``territory._territory_task``), as a worker runs it.

Issue #16 part 4: the territory stage's worker CPU. A county is generated as
``scripts/bench_million.py`` makes it (default: 50,000 台区 in 20 townships of ≈ 2,500, the
township size of its 1,000,000-台区 county), planned once serially for its grid ids (not timed),
its cells drawn (``territory.all_cells``, not timed) and sent as WKB, as ``pooled_graph`` returns
them; then every township's task runs in this process and its CPU time (user + system,
``time.process_time``) is summed, best of ``--reps``. The main process's decoding of the returned
pieces (``from_wkb`` + ``set_precision`` in ``_pooled_pieces``) is timed too. ``--save`` /
``--compare`` pickle the tasks' results / check them byte for byte against a saved run (so the
code of two branches can be compared on the same county: run with each on PYTHONPATH).
``--against FILE`` loads another checkout's ``gridplan/lv/territory.py`` beside this one and runs
both tasks township by township, alternating (a loaded machine then slows both alike), timing each
and checking that their results are identical.

Usage::

    PYTHONPATH=. .venv/bin/python scripts/bench_territory.py --save /tmp/pieces_main.pkl
    PYTHONPATH=. .venv/bin/python scripts/bench_territory.py --compare /tmp/pieces_main.pkl
    PYTHONPATH=. .venv/bin/python scripts/bench_territory.py --against ../main/gridplan/lv/territory.py
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pickle
import resource
import sys
import time
from pathlib import Path

import numpy as np
import shapely

import gridplan  # before bench_million, which puts this script's checkout first on sys.path
from gridplan.lv import territory
from gridplan.lv.graph import group_members, label_codes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_million import make_county


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000, help="number of 台区")
    ap.add_argument("--townships", type=int, default=20)
    ap.add_argument("--side-km", type=float, default=33.5)
    ap.add_argument("--reps", type=int, default=3, help="timed runs of all the tasks (the best is kept)")
    ap.add_argument("--save", help="pickle the tasks' results here")
    ap.add_argument("--compare", help="check the tasks' results against this pickle (from --save)")
    ap.add_argument("--against", help="another checkout's gridplan/lv/territory.py, run alternately")
    args = ap.parse_args(argv)
    county = make_county(args.n, townships=args.townships, side_km=args.side_km)
    tr = gridplan.plan(county, workers=1).transformers
    cells = territory.all_cells(county, tr)
    _, tids = label_codes(tr["township_id"].astype(str).to_numpy())
    g_code = label_codes(tr["grid_id"].to_numpy())[1]
    xy = shapely.get_coordinates(tr.geometry.values)
    tasks = [(xy[rows], g_code[rows], shapely.to_wkb(cells[rows])) for rows in group_members(tids)]
    del cells
    other = None if args.against is None else _load_beside(Path(args.against))
    best, best_other = float("inf"), float("inf")
    for _ in range(args.reps):
        spent, spent_other, out = 0.0, 0.0, []
        for pts, grid, wkb in tasks:
            t0 = time.process_time()
            out.append(territory._territory_task(pts, grid, wkb, None))
            t1 = time.process_time()
            spent += t1 - t0
            if other is not None:
                theirs = other._territory_task(pts, grid, wkb, None)
                spent_other += time.process_time() - t1
                if not (np.array_equal(theirs[0], out[-1][0]) and list(theirs[1]) == list(out[-1][1])):
                    raise SystemExit(f"results differ from {args.against}'s")
        best, best_other = min(best, spent), min(best_other, spent_other)
    t0 = time.process_time()
    for _, wkb in out:  # as _pooled_pieces decodes them in the main process
        shapely.set_precision(shapely.from_wkb(wkb), territory._GRID_SIZE_M, mode="pointwise")
    decode = time.process_time() - t0
    print(f"gridplan from {Path(gridplan.__file__).parent}")
    print(f"county: {args.n:,} 台区, {len(tasks)} townships, {sum(len(o[0]) for o in out):,} grids")
    print(f"territory tasks: {best:.3f} CPU s (best of {args.reps}; {best / args.n * 1e6:.1f} µs per 台区)")
    if other is not None:
        print(f"territory tasks of {args.against}: {best_other:.3f} CPU s (best of {args.reps}, "
              f"alternating with these); results identical; these take {best / best_other:.2f} × its CPU")
    print(f"main-process decoding of their pieces: {decode:.3f} CPU s")
    print(f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (this process); "
          f"load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.save:
        with open(args.save, "wb") as f:
            pickle.dump(out, f)
    if args.compare:
        with open(args.compare, "rb") as f:
            ref = pickle.load(f)
        same = len(ref) == len(out) and all(np.array_equal(a[0], b[0]) and list(a[1]) == list(b[1])
                                            for a, b in zip(out, ref))
        print(f"results: {'identical to' if same else 'DIFFERENT from'} {args.compare}")
        if not same:
            raise SystemExit(1)


def _load_beside(path: Path) -> object:
    """``path`` (a territory.py) as a module of gridplan.lv beside the imported one."""
    spec = importlib.util.spec_from_file_location("gridplan.lv._territory_against", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "gridplan.lv"
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    main()
