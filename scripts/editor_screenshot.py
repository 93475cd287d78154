"""The README picture of the editor (docs/img/editor.png), taken with headless Debian Chromium.

    .venv/bin/python scripts/editor_screenshot.py [--out docs/img/editor.png]

Plans geodata/sample, starts ``gridplan edit`` on it (network blocked except the editor itself),
zooms to 城关镇, lassoes a ring of 台区 and gives them to a neighbouring manager, so the picture
shows the panel, the KPIs, a warning and the highlighted split of a grid.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_edit_browser import ARGS, open_page, start_server, stop_server

#: The on-screen 台区 with the most 台区 of its township within R pixels (at most 25), and the manager
#: of that township nearest to it who does not hold it.
JS_PICK = """(R) => { const E = window.gridplanEditor, S = E.state, sx = E.points.sx, sy = E.points.sy;
  const r = E.map.getContainer().getBoundingClientRect();
  const on = [...Array(S.n).keys()].filter(i => sx[i] > 150 && sy[i] > 150 && sx[i] < r.width - 150 && sy[i] < r.height - 150);
  let best = -1, bn = -1;
  for (const i of on) {
    let k = 0;
    for (const j of on) if (S.tx.township_id[j] === S.tx.township_id[i] && (sx[i] - sx[j]) ** 2 + (sy[i] - sy[j]) ** 2 < R * R) k++;
    if (k > bn && k <= 25) { bn = k; best = i; }
  }
  const tw = S.tx.township_id[best], own = S.tx.manager_id[best];
  const d2 = (i) => (sx[i] - sx[best]) ** 2 + (sy[i] - sy[best]) ** 2;
  const other = [...Array(S.n).keys()].filter(i => S.tx.township_id[i] === tw && S.tx.manager_id[i] !== own)
    .sort((a, b) => d2(a) - d2(b))[0];
  return {x: sx[best] + r.left, y: sy[best] + r.top, manager: S.tx.manager_id[other]}; }"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "editor.png")
    ap.add_argument("--radius", type=float, default=38.0, help="lasso radius in pixels")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    import gridplan

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        plan = Path(tmp) / "plan"
        gridplan.plan(gridplan.load_county(ROOT / "geodata" / "sample")).to_file(plan)
        proc, url, origin = start_server(plan, Path(tmp) / "plans.gpkg", Path(tmp) / "server.log")
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            ctx, page, stats = open_page(browser, url, origin)
            tw = page.evaluate("() => window.gridplanEditor.state.townships[0]")
            page.select_option("#gp-filter-station", tw["station_id"])
            page.select_option("#gp-filter-township", tw["township_id"])
            page.evaluate("() => { window.gridplanEditor.map.setZoom(13.5, {animate: false}); }")
            page.wait_for_timeout(400)
            pick = page.evaluate(JS_PICK, args.radius)
            page.click("[data-tool=lasso]")
            r = args.radius
            page.mouse.move(pick["x"] + r, pick["y"])
            page.mouse.down()
            for k in range(1, 49):
                a = 2 * math.pi * k / 48
                page.mouse.move(pick["x"] + r * math.cos(a), pick["y"] + r * math.sin(a))
            page.mouse.up()
            page.fill("#gp-picker-input", pick["manager"])
            page.keyboard.press("Enter")
            page.click("#gp-assign")
            page.wait_for_function("() => document.body.dataset.busy !== '1' && window.gridplanEditor.perf.length > 0")
            page.click("[data-tool=pan]")
            page.evaluate("([x, y]) => { const m = window.gridplanEditor.map, r = m.getContainer().getBoundingClientRect();"
                          " m.panBy([x - r.left - r.width / 2, y - r.top - r.height / 2], {animate: false}); }",
                          [pick["x"], pick["y"]])
            page.mouse.move(5, 200)
            page.wait_for_timeout(1200)  # let the KPI highlight fade
            args.out.parent.mkdir(parents=True, exist_ok=True)
            tmp_png = Path(tmp) / "editor.png"
            page.screenshot(path=str(tmp_png))
            shutil.copyfile(tmp_png, args.out)
            print(f"{args.out}: external requests {stats['external']}, console errors {len(stats['errors'])}; "
                  + page.locator("#gp-message").inner_text())
            ctx.close()
        finally:
            browser.close()
            stop_server(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
