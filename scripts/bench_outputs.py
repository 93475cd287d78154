"""Time what the never-destroy output writer costs, and record it in docs/benchmarks.md.

Plans a county once, then writes its four outputs (plan.gpkg, roster.xlsx, kpi.json, map.html)
``--repeat`` times each way, in this one process:

* bare: ``Plan.write_into`` straight into a fresh folder (no manifest, no checks);
* new: through ``open_output`` into a new folder (check, lock, staging, sha256 manifest, swap);
* replace: the same over the previous gridplan output, with a user's file in it (plus the sha256
  check of the earlier files, the backup of the replaced ones and their removal).

The three are interleaved (so they share the machine's load) and the writer's own time (open +
commit, without the files) is reported separately.

Peak memory is the process's own ``getrusage(RUSAGE_SELF)``. Writes the "## Writing outputs"
section of docs/benchmarks.md (that section only) unless ``--no-write``.

    .venv/bin/python scripts/bench_outputs.py                          # geodata/sample
    .venv/bin/python scripts/bench_outputs.py --transformers 10000      # a generated county too
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
SECTION = "## Writing outputs (manifest, lock, staged swap)"


def staged_write(p, out: Path) -> tuple[float, float]:
    """Write ``p`` through the output writer; return (total s, writer's own s: open + commit)."""
    from gridplan.files import open_output
    from gridplan.pipeline import PLAN_FILES

    t0 = time.perf_counter()
    target = open_output(out, command="gridplan plan", expect=PLAN_FILES)
    t1 = time.perf_counter()
    p.write_into(target.staging)
    t2 = time.perf_counter()
    target.commit()
    target.close()
    t3 = time.perf_counter()
    return t3 - t0, (t1 - t0) + (t3 - t2)


def bench(folder: Path, label: str, tmp: Path, repeat: int) -> dict[str, object]:
    """Plan ``folder`` once; write its outputs ``repeat`` times each way (interleaved)."""
    import gridplan

    county = gridplan.load_county(folder)
    p = gridplan.plan(county)
    work = tmp / label.replace(" ", "_").replace("/", "_").replace(",", "")
    work.mkdir()
    out = work / "replace"
    p.to_file(out)
    (out / "notes.txt").write_text("the user's", encoding="utf-8")
    t: dict[str, list[float]] = {k: [] for k in ("bare", "new", "new_own", "replace", "replace_own")}
    for i in range(repeat):  # interleaved, so that the three ways share the machine's load
        t0 = time.perf_counter()
        p.write_into(work / f"bare{i}")
        t["bare"].append(time.perf_counter() - t0)
        total, own = staged_write(p, work / f"new{i}")
        t["new"].append(total)
        t["new_own"].append(own)
        total, own = staged_write(p, out)
        t["replace"].append(total)
        t["replace_own"].append(own)
    assert (out / "notes.txt").read_text(encoding="utf-8") == "the user's"
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file()) / 1e6
    shutil.rmtree(work)
    return {"county": label, "台区": len(county.transformers), "MB": size,
            **{k: statistics.median(v) for k, v in t.items()}}


def write_section(text: str, path: Path) -> None:
    """Replace (or append) this script's section of ``path``."""
    old = path.read_text(encoding="utf-8")
    start = old.find(SECTION + "\n")
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        nxt = old.find("\n## ", start + len(SECTION))
        new = old[:start] + text + (old[nxt + 1:] if nxt >= 0 else "")
    path.write_text(new, encoding="utf-8")


def _argv() -> list[str]:
    """The command line as typed, with the (long) ``--note`` text shortened."""
    out, skip = [], False
    for a in sys.argv[1:]:
        out.append('"…"' if skip else a)
        skip = a == "--note"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--county", default=None, help="County folder (default geodata/sample).")
    ap.add_argument("--transformers", type=int, nargs="*", default=[],
                    help="Also generated counties of these sizes (scripts/make_sample_county.py).")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="Print only; leave docs/benchmarks.md.")
    ap.add_argument("--note", default="", help="Load note recorded with the numbers.")
    args = ap.parse_args()
    from _machine import describe

    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        rows = [bench(Path(args.county) if args.county else ROOT / "geodata" / "sample",
                      "geodata/sample" if not args.county else Path(args.county).name, tmp,
                      args.repeat)]
        for n in args.transformers:
            f = tmp / f"gen{n}"
            subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_county.py"),
                            "--out", str(f), "--transformers", str(n), "--seed", "1", "-q"],
                           check=True)
            rows.append(bench(f, f"generated, {n} 台区", tmp, args.repeat))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [SECTION, "",
             (f"Command: `{' '.join(['.venv/bin/python scripts/bench_outputs.py', *_argv()])}` "
              f"(median of {args.repeat} writes each, one process). Machine: {describe()}. "
              f"{args.note}").rstrip(),
             "",
             ("| county | 台区 | outputs MB | bare files (`write_into`) s | new folder s "
              "(writer's own) | over the previous output s (writer's own) | writer's own / bare |"),
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['county']} | {r['台区']} | {r['MB']:.1f} | {r['bare']:.2f} | "
                     f"{r['new']:.2f} ({r['new_own']:.3f}) | {r['replace']:.2f} "
                     f"({r['replace_own']:.3f}) | {r['new_own'] / r['bare']:.1%} / "
                     f"{r['replace_own'] / r['bare']:.1%} |")
    lines += ["", (f"Peak memory of the process (getrusage RUSAGE_SELF): {peak:.0f} MB. \"Writer's "
                   'own" is the time in `open_output` (checks, lock, leftover clean-up, staging '
                   "folder) and `commit` (sha256 of every file for the manifest, renames; on replace "
                   "also the sha256 check that the earlier files are unchanged, and removing the "
                   "replaced ones): the price of never destroying, next to the files themselves."), ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(text, ROOT / "docs" / "benchmarks.md")


if __name__ == "__main__":
    main()
