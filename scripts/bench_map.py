"""Benchmark the interactive map: a synthetic N-台区 county -> map.html size and browser load time.

    .venv/bin/python scripts/bench_map.py --transformers 10000 [--runs 3] [--out bench-out/map]

Steps: generate the county (scripts/make_sample_county.py), load and plan it, write map.html
(offline assets embedded, no basemap), then open it in headless Debian Chromium with every
non-file request aborted, and time navigation start -> the Leaflet map is loaded and every layer
has been drawn (two animation frames after ``load``). Targets (issue 6): <= 15 MB, <= 3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
JS_MAP = "Object.keys(window).filter(k => k.startsWith('map_')).map(k => window[k])" \
         ".find(v => v && v._leaflet_id !== undefined)"
#: Resolves when the map is loaded and two frames have been painted after it; returns ms since
#: navigation start.
JS_READY = """() => new Promise(resolve => {
  const check = () => { const m = """ + JS_MAP + """;
    if (m && m._loaded) requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now())));
    else setTimeout(check, 10); };
  check(); })"""


def browser_times(html: Path, runs: int) -> list[dict[str, float]]:
    """Open ``html`` ``runs`` times in fresh pages; return timings in seconds."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for _ in range(runs):
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            page = ctx.new_page()
            external: list[str] = []
            errors: list[str] = []

            def route(r, external=external) -> None:
                if r.request.url.startswith(("file:", "data:", "blob:", "about:")):
                    r.continue_()
                else:
                    external.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            t0 = time.perf_counter()
            page.goto(html.resolve().as_uri(), wait_until="load", timeout=120_000)
            ready_ms = page.evaluate(JS_READY)
            wall = time.perf_counter() - t0
            nav = page.evaluate("(() => { const n = performance.getEntriesByType('navigation')[0];"
                                " return [n.domContentLoadedEventEnd, n.loadEventEnd]; })()")
            out.append({"ready_s": ready_ms / 1000, "wall_s": wall, "dcl_s": nav[0] / 1000,
                        "load_s": nav[1] / 1000, "external": len(external), "errors": len(errors)})
            if errors:
                print("page errors:", errors[:3], file=sys.stderr)
            ctx.close()
        browser.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transformers", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out" / "map")
    ap.add_argument("--basemap", default="none")
    args = ap.parse_args()

    import gridplan
    from gridplan.render import save_map

    county_dir = args.out / f"county{args.transformers}"
    if not (county_dir / "transformers.csv").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_county.py"), "--out",
                        str(county_dir), "--transformers", str(args.transformers), "--seed",
                        str(args.seed), "-q"], check=True)
    county = gridplan.load_county(county_dir)
    t = time.perf_counter()
    plan = gridplan.plan(county)
    t_plan = time.perf_counter() - t
    html = args.out / "map.html"
    t = time.perf_counter()
    save_map(plan, html, basemap=args.basemap)
    t_write = time.perf_counter() - t
    size = html.stat().st_size
    runs = browser_times(html, args.runs)
    ready = [r["ready_s"] for r in runs]
    print(f"county: {len(plan.transformers)} 台区, {len(plan.grids)} grids, "
          f"{0 if plan.segments is None else len(plan.segments)} segments; plan {t_plan:.1f} s")
    print(f"map.html: {size / 1e6:.2f} MB, written in {t_write:.2f} s (basemap={args.basemap})")
    for i, r in enumerate(runs, 1):
        print(f"run {i}: ready {r['ready_s']:.2f} s (DOMContentLoaded {r['dcl_s']:.2f}, load "
              f"{r['load_s']:.2f}, wall {r['wall_s']:.2f}); external requests {r['external']}, "
              f"page errors {r['errors']}")
    print(f"median ready: {statistics.median(ready):.2f} s (target <= 3 s); size target <= 15 MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
