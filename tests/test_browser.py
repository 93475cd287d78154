"""map.html in a real browser: headless Debian Chromium driven by Playwright, with no network.

Every request that is not ``file://`` or ``data:`` is aborted and counted. Screenshots go to
``test-artifacts/`` (gitignored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gridplan.render import assets

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLE = Path(__file__).resolve().parents[1] / "geodata" / "sample"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
LAYERS = ["服务网格", "乡镇", "10kV线路", "开关", "台区", "供电所"]  # drawing order

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover
    sync_playwright = None

if sync_playwright is None or not CHROMIUM.exists():
    pytest.skip("needs playwright and /usr/bin/chromium (apt-get install chromium; the test "
                "command installs both)", allow_module_level=True)
if assets.missing_assets():
    pytest.skip("offline map assets not installed: run scripts/fetch_assets.sh",
                allow_module_level=True)

#: Runs before any page script: records alert/confirm/prompt calls instead of showing them.
INIT = """
window.__alerts = [];
window.alert = function (m) { window.__alerts.push(String(m)); };
window.confirm = function (m) { window.__alerts.push(String(m)); return false; };
window.prompt = function (m) { window.__prompts = (window.__prompts || 0) + 1; return "M9"; };
"""

#: The folium map object (its variable is named map_<uuid>).
JS_MAP = "Object.keys(window).filter(k => k.startsWith('map_')).map(k => window[k])" \
         ".find(v => v && v._leaflet_id !== undefined)"


class Browser:
    """One Chromium for the module; each ``open`` gets a fresh offline page."""

    def __init__(self) -> None:
        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)

    def open(self, html_file: Path, *, width: int = 1200, height: int = 800) -> dict[str, Any]:
        ctx = self.browser.new_context(viewport={"width": width, "height": height})
        page = ctx.new_page()
        state: dict[str, Any] = {"page": page, "ctx": ctx, "external": [], "errors": []}

        def route(r) -> None:
            url = r.request.url
            if url.startswith(("file:", "data:", "blob:", "about:")):
                r.continue_()
            else:
                state["external"].append(url)
                r.abort()

        page.route("**/*", route)
        page.on("pageerror", lambda e: state["errors"].append(f"pageerror: {e}"))
        page.on("console", lambda m: m.type == "error" and state["errors"].append(f"console: {m.text}"))
        page.add_init_script(INIT)
        page.goto(html_file.resolve().as_uri(), wait_until="load")
        page.wait_for_function(f"(() => {{ const m = {JS_MAP}; return m && m._loaded; }})()",
                               timeout=15_000)
        page.wait_for_timeout(300)  # canvas redraw after fitBounds
        return state

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


@pytest.fixture(scope="module")
def tiny_map(tmp_path_factory) -> Path:
    from test_map import tiny_plan

    from gridplan.render import save_map

    return save_map(tiny_plan(n_extra=40), tmp_path_factory.mktemp("map") / "map.html",
                    basemap="none")


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(400)  # let popups finish fading in
    page.screenshot(path=str(ARTIFACTS / name), full_page=False)


def _to_screen(page, lon: float, lat: float) -> list[float]:
    """Page pixel coordinates of (lon, lat) on the map."""
    return page.evaluate(
        "([lat, lon]) => { const m = " + JS_MAP + "; const p = m.latLngToContainerPoint([lat, lon]);"
        " const r = m.getContainer().getBoundingClientRect(); return [p.x + r.left, p.y + r.top]; }",
        [lat, lon])


def _layer_control_names(page) -> list[str]:
    return [t.strip() for t in page.locator(".leaflet-control-layers-overlays label").all_inner_texts()]


def test_offline_map_renders_with_no_request_and_no_error(browser, tiny_map) -> None:
    st = browser.open(tiny_map)
    page = st["page"]
    try:
        assert st["external"] == [], "offline page asked the network for: " + ", ".join(st["external"][:5])
        assert st["errors"] == []
        assert page.evaluate("typeof L") == "object" and page.evaluate("L.version") == "1.9.4"
        assert page.locator(".leaflet-pane.leaflet-map-pane").count() == 1
        assert page.locator(".leaflet-overlay-pane canvas").count() >= 1  # prefer_canvas
        assert _layer_control_names(page) == LAYERS
        assert page.locator(".leaflet-control-search").count() == 2  # 台区 and 网格
        for ctl in (".leaflet-control-zoom-fullscreen", ".leaflet-control-measure", ".leaflet-draw",
                    "#gp-legend", "#gp-export"):
            assert page.locator(ctl).count() == 1, ctl
        # the canvas really has the grid colours painted on it (not a blank map)
        painted = page.evaluate("""() => {
            const c = document.querySelector('.leaflet-overlay-pane canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return n / (c.width * c.height); }""")
        assert painted > 0.2
        _shot(page, "map-offline.png")
    finally:
        st["ctx"].close()


def test_clicking_a_grid_opens_its_manager_popup(browser, tiny_map) -> None:
    from test_map import grid_click_point

    st = browser.open(tiny_map)
    page = st["page"]
    try:
        lon, lat = grid_click_point("T1-02")
        xy = _to_screen(page, lon, lat)
        page.mouse.click(xy[0], xy[1])
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5_000)
        text = popup.inner_text()
        assert "李四" in text and "T1-02" in text and "138-0000-0002" in text and "台区经理" in text
        _shot(page, "map-grid-popup.png")
        assert st["errors"] == []
    finally:
        st["ctx"].close()


def test_xss_name_is_text_and_runs_nothing(browser, tiny_map) -> None:
    from test_map import XSS, grid_click_point

    st = browser.open(tiny_map)
    page = st["page"]
    try:
        lon, lat = grid_click_point("T1-01")  # its manager is named like an <img onerror> attack
        xy = _to_screen(page, lon, lat)
        page.mouse.click(xy[0], xy[1])
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5_000)
        assert XSS in popup.inner_text()  # shown as text
        assert page.locator(".leaflet-popup-content img").count() == 0
        # the search list shows the names as text too
        page.locator(".leaflet-control-search .search-button").first.click()
        page.locator(".leaflet-control-search input.search-input").first.press_sequentially("img", delay=50)
        page.wait_for_timeout(500)
        tips = page.locator(".leaflet-control-search .search-tip").all_inner_texts()
        assert any(XSS in t for t in tips), tips
        assert page.locator(".search-tooltip img").count() == 0
        assert "测试县" + XSS in page.locator("#gp-legend").inner_text()
        page.wait_for_timeout(300)
        assert page.evaluate("window.__alerts") == []
        assert page.locator("img[src='x']").count() == 0
        assert st["errors"] == []
        _shot(page, "map-xss-search.png")
    finally:
        st["ctx"].close()


def test_drawn_polygon_exports_as_pin_file(browser, tiny_map) -> None:
    import json
    from urllib.parse import unquote

    st = browser.open(tiny_map)
    page = st["page"]
    try:
        # what leaflet-draw fires when the user finishes a polygon
        page.evaluate("(() => { const m = " + JS_MAP + "; const c = m.getCenter();"
                      " const poly = L.polygon([[c.lat, c.lng], [c.lat + 0.01, c.lng],"
                      " [c.lat, c.lng + 0.01]]);"
                      " m.fire(L.Draw.Event.CREATED, {layer: poly, layerType: 'polygon'}); })()")
        assert page.evaluate("window.__prompts") == 1  # asked for the manager_id
        page.locator("#gp-export").click()
        href = page.locator("#gp-export").get_attribute("href")
        assert href.startswith("data:application/geo+json")
        pins = json.loads(unquote(href.split(",", 1)[1]))
        assert pins["type"] == "FeatureCollection" and len(pins["features"]) == 1
        feat = pins["features"][0]
        assert feat["properties"] == {"manager_id": "M9"}
        assert feat["geometry"]["type"] == "Polygon"
        assert page.locator("#gp-export").get_attribute("download") == "pins.geojson"
        assert st["errors"] == [] and st["external"] == []
    finally:
        st["ctx"].close()


@pytest.mark.slow
def test_osm_basemap_only_asks_for_tiles_and_still_renders(browser, tmp_path) -> None:
    from test_map import tiny_plan

    from gridplan.render import save_map

    path = save_map(tiny_plan(), tmp_path / "map.html", basemap="osm")
    st = browser.open(path)
    try:
        assert st["external"], "the OSM basemap should have asked for tiles"
        assert all("tile.openstreetmap.org" in u for u in st["external"]), st["external"][:5]
        # tile failures are network errors, not script errors
        assert not [e for e in st["errors"] if e.startswith("pageerror")]
        assert _layer_control_names(st["page"]) == LAYERS
        _shot(st["page"], "map-osm-offline.png")
    finally:
        st["ctx"].close()


def _sample_plan():
    import gridplan

    try:
        county = gridplan.load_county(SAMPLE)
        return gridplan.plan(county)
    except (ImportError, AttributeError, NotImplementedError) as exc:  # pipeline still being wired
        pytest.skip(f"gridplan.plan does not run end to end yet: {exc!r}")


@pytest.mark.slow
@pytest.mark.skipif(not SAMPLE.exists(), reason="geodata/sample not present")
def test_sample_plan_map(browser, tmp_path) -> None:
    from gridplan.render import save_map

    plan = _sample_plan()
    path = save_map(plan, tmp_path / "map.html", basemap="none")
    st = browser.open(path)
    page = st["page"]
    try:
        assert st["external"] == []
        assert st["errors"] == []
        names = _layer_control_names(page)
        assert {"服务网格", "乡镇", "台区", "供电所"} <= set(names)
        # click the first grid at a point inside it and find its manager in the popup
        g = plan.grids.sort_values("grid_id").iloc[0]
        pt = g.geometry.buffer(-30).representative_point() if not g.geometry.buffer(-30).is_empty \
            else g.geometry.representative_point()
        import geopandas as gpd

        ll = gpd.GeoSeries([pt], crs=plan.crs).to_crs(4326).iloc[0]
        page.evaluate(f"(() => {{ const m = {JS_MAP}; m.setView([{ll.y}, {ll.x}], 15, {{animate: false}}); }})()")
        page.wait_for_timeout(400)
        box = page.locator(".leaflet-container").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5_000)
        text = popup.inner_text()
        assert "台区经理" in text or "名称" in text  # a grid, or a 台区 sitting right there
        _shot(page, "map-sample.png")
    finally:
        st["ctx"].close()
