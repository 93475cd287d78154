"""Benchmark the real ``gridplan edit`` server (uvicorn, over HTTP): the 200-台区 edit and its undo.

    .venv/bin/python scripts/bench_edit_server.py [--out bench-out/edit] [--transformers 10000]
        [--size 200] [--edits 8] [--rounds 2] [--tree DIR ...]

Starts ``gridplan edit PLAN --port 0 --no-browser`` on a copy of the plan that
``scripts/bench_edit_browser.py`` caches in ``--out`` (made here the same way when missing: seed 0),
then drives it as the page does, without a browser: ``GET /api/state``, the edit the browser bench
picks (``--size`` 台区 of the largest township, not yet with the manager of its first 台区, nearest
to that 台区; the same rule as ``JS_PICK``), then ``--edits`` times ``POST /api/reassign`` and
``POST /api/undo`` over one keep-alive connection.

For every request it records the client's wall round trip, the server process's CPU time (all its
threads: the scheduler's run time in /proc/PID/task/*/schedstat, in ns) and the phases the
server reports in its ``Server-Timing`` header (parse, queue, edit, journal, delta, json: wall and
CPU of the thread that ran them; handler: the whole handler's wall and the process's CPU meanwhile,
at full resolution). Medians are printed for the phases.
With several ``--tree`` folders (gridplan source trees, e.g. ``/work/main`` and a branch) the server
is started from each in turn, ``--rounds`` times alternating, so a before/after comparison is made
in one run on one machine load. The load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from _machine import describe
from bench_edit_browser import start_server, stop_server


def pick(state: dict, size: int) -> tuple[list[str], str]:
    """The browser bench's edit (``JS_PICK``): ``size`` 台区 and the manager they go to."""
    tx = state["transformers"]
    by: dict[str, list[int]] = {}
    for i, t in enumerate(tx["township_id"]):
        by.setdefault(t, []).append(i)
    tws = sorted(((t, rows) for t, rows in by.items() if len(rows) > size + 20), key=lambda x: -len(x[1]))
    _, rows = tws[0]
    first = rows[0]
    mgr = tx["manager_id"][first]
    x0, y0 = tx["lon"][first], tx["lat"][first]
    cand = [i for i in rows if tx["manager_id"][i] != mgr]
    cand.sort(key=lambda i: (tx["lon"][i] - x0) ** 2 + (tx["lat"][i] - y0) ** 2)
    return [tx["transformer_id"][i] for i in cand[:size]], mgr


def server_timing(value: str | None) -> dict[str, tuple[float, float]]:
    """``{phase: (wall ms, cpu ms)}`` of a ``Server-Timing`` header (empty when absent)."""
    out: dict[str, tuple[float, float]] = {}
    for part in (value or "").split(","):
        m = re.match(r'\s*([\w-]+);dur=([\d.]+)(?:;desc="cpu ([\d.]+)")?', part)
        if m:
            out[m.group(1)] = (float(m.group(2)), float(m.group(3) or 0.0))
    return out


class Client:
    """One keep-alive connection to the editor, as the page makes its requests."""

    def __init__(self, host: str, port: int, token: str, pid: int):
        import psutil

        self.conn = http.client.HTTPConnection(host, port, timeout=120)
        self.conn.connect()  # as browsers do: no Nagle delay on the request's body (sent after its headers)
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.headers = {"X-Gridplan-Token": token, "Host": f"{host}:{port}", "Origin": f"http://{host}:{port}"}
        self.proc = psutil.Process(pid)

    def cpu(self) -> float:
        """CPU seconds of the server process so far: the sum over its threads of the scheduler's
        run time (ns, /proc/PID/task/*/schedstat); psutil's tick-counted figure where unreadable.
        """
        try:
            total = 0
            for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])
            return total / 1e9
        except (OSError, ValueError, IndexError):
            t = self.proc.cpu_times()
            return t.user + t.system

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        """One request: status, JSON answer, wall ms, server CPU ms, Server-Timing phases, bytes."""
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        c0 = self.cpu()
        t0 = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        raw = r.read()
        wall = (time.perf_counter() - t0) * 1000
        time.sleep(0.02)  # let the server's threads finish what they do after answering
        cpu = (self.cpu() - c0) * 1000
        if r.status != 200:
            raise SystemExit(f"{method} {path}: {r.status} {raw[:300]!r}")
        return {"json": json.loads(raw), "wall_ms": wall, "cpu_ms": cpu, "bytes": len(raw),
                "phases": server_timing(r.getheader("Server-Timing"))}


def run_tree(tree: Path, plan: Path, size: int, edits: int) -> dict[str, list[dict]]:
    """Start the server from ``tree`` on a copy of ``plan``; time ``edits`` reassign + undo pairs."""
    with tempfile.TemporaryDirectory(dir=ROOT / "bench-out") as tmp:
        work = Path(tmp) / "plan"
        shutil.copytree(plan, work)
        proc, url, _ = start_server(work, Path(tmp) / "plans.gpkg", Path(tmp) / "server.log", tree=tree,
                                    cwd=Path(tmp))
        try:
            m = re.fullmatch(r"http://(127\.0\.0\.1):(\d+)/\?token=([A-Za-z0-9_\-]+)", url)
            assert m, url
            cl = Client(m.group(1), int(m.group(2)), m.group(3), proc.pid)
            state = cl.request("GET", "/api/state")
            ids, mgr = pick(state["json"], size)
            out: dict[str, list[dict]] = {"reassign": [], "undo": []}
            for k in range(edits + 1):  # the first pair warms up
                a = cl.request("POST", "/api/reassign", {"transformer_ids": ids, "manager_id": mgr})
                u = cl.request("POST", "/api/undo", {})
                if k:
                    out["reassign"].append(a)
                    out["undo"].append(u)
            d = a["json"]
            print(f"  {tree}: state {state['bytes'] / 1e6:.1f} MB in {state['wall_ms']:.0f} ms; reassign of "
                  f"{len(ids)} 台区 to {mgr}: {len(d['transformers'])} changed, {len(d['grids']['features'])} "
                  f"grids in the delta, {a['bytes'] / 1e3:.0f} KB")
            cl.conn.close()
        finally:
            stop_server(proc)
    return out


def summary(recs: list[dict]) -> str:
    med = statistics.median
    text = (f"wall median {med(r['wall_ms'] for r in recs):.1f} ms (min {min(r['wall_ms'] for r in recs):.1f}), "
            f"server process CPU median {med(r['cpu_ms'] for r in recs):.1f} ms "
            f"(mean {statistics.mean(r['cpu_ms'] for r in recs):.1f})")
    names = list(dict.fromkeys(n for r in recs for n in r["phases"]))
    if names:
        text += "; phases wall/cpu ms: " + ", ".join(
            f"{n} {med(r['phases'].get(n, (0, 0))[0] for r in recs):.1f}/"
            f"{med(r['phases'].get(n, (0, 0))[1] for r in recs):.1f}" for n in names)
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out" / "edit",
                    help="where scripts/bench_edit_browser.py caches the county and its plan")
    ap.add_argument("--transformers", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=200, help="台区 per edit")
    ap.add_argument("--edits", type=int, default=8, help="timed reassign + undo pairs per server start")
    ap.add_argument("--rounds", type=int, default=1, help="server starts per tree (alternating)")
    ap.add_argument("--tree", type=Path, action="append", default=None,
                    help="gridplan source tree to run the server from (repeat to compare; default: this one)")
    a = ap.parse_args()
    trees = [t.resolve() for t in (a.tree or [ROOT])]
    (ROOT / "bench-out").mkdir(exist_ok=True)
    county, plan = a.out / f"county{a.transformers}", a.out / f"plan{a.transformers}"
    if not (plan / "plan.gpkg").exists():
        sys.path.insert(0, str(ROOT))
        import gridplan

        if not (county / "transformers.csv").exists():
            subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_county.py"), "--out", str(county),
                            "--transformers", str(a.transformers), "--seed", str(a.seed), "-q"], check=True)
        gridplan.plan(gridplan.load_county(county)).to_file(plan)
    print(f"machine: {describe()}; load average {os.getloadavg()[0]:.2f} at the start")
    results: dict[Path, dict[str, list[dict]]] = {t: {"reassign": [], "undo": []} for t in trees}
    for _ in range(a.rounds):
        for t in trees:
            got = run_tree(t, plan, a.size, a.edits)
            for op in got:
                results[t][op] += got[op]
    for t in trees:
        for op in ("reassign", "undo"):
            print(f"{t} {op} ({len(results[t][op])}): {summary(results[t][op])}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
