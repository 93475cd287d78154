"""map.html in a real browser: headless Debian Chromium driven by Playwright, with no network.

Every request that is not ``file://`` or ``data:`` is aborted and counted. Screenshots go to
``test-artifacts/`` (gitignored).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gridplan.render import assets

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLE = Path(__file__).resolve().parents[1] / "geodata" / "sample"
LAYERS = ["服务网格", "乡镇", "10kV线路", "开关", "台区", "供电所"]  # drawing order

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
    """One Chromium for the module (the ``chromium`` fixture); each ``open`` gets a fresh offline page."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser

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


@pytest.fixture(scope="module")
def browser(chromium: Any) -> Browser:
    return Browser(chromium)


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
        assert page.locator(".gp-search input").count() == 1  # one box: managers, grids, 台区
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
        page.locator(".gp-search input").press_sequentially("img", delay=50)
        page.wait_for_timeout(500)
        tips = page.locator(".gp-search li").all_inner_texts()
        assert any(XSS in t for t in tips), tips
        assert page.locator(".gp-search img").count() == 0
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
def test_osm_basemap_asks_for_tiles_only_once_picked(browser, tmp_path) -> None:
    from test_map import tiny_plan

    from gridplan.render import save_map

    path = save_map(tiny_plan(), tmp_path / "map.html", basemap="osm")
    st = browser.open(path)
    page = st["page"]
    try:
        # the default map requests nothing: no tile until a basemap is picked
        assert st["external"] == [] and st["errors"] == []
        assert _layer_control_names(page) == LAYERS
        bases = [t.strip() for t in page.locator(".leaflet-control-layers-base label").all_inner_texts()]
        assert bases == ["无底图（离线）", "OpenStreetMap"]
        page.locator(".leaflet-control-layers-base label", has_text="OpenStreetMap").click()
        page.wait_for_timeout(800)
        assert st["external"], "picking OpenStreetMap should ask for tiles"
        assert all("tile.openstreetmap.org" in u for u in st["external"]), st["external"][:5]
        # tile failures are network errors, not script errors
        assert not [e for e in st["errors"] if e.startswith("pageerror")]
        _shot(page, "map-osm-offline.png")
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


# ------------------------------------------------------------- issue 14: maps people read

def _boxes_overlap(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def _set_view(page, lon: float, lat: float, zoom: int) -> None:
    page.evaluate(f"(() => {{ const m = {JS_MAP}; m.setView([{lat}, {lon}], {zoom}, {{animate: false}}); }})()")
    page.wait_for_timeout(300)


@pytest.fixture(scope="module")
def sample_plan():
    if not SAMPLE.exists():
        pytest.skip("geodata/sample not present")
    return _sample_plan()


@pytest.fixture(scope="module")
def sample_map(sample_plan, tmp_path_factory) -> Path:
    from gridplan.render import save_map

    # the default basemap of the sample's parameters (OpenStreetMap): offered, not loaded
    return save_map(sample_plan, tmp_path_factory.mktemp("sample") / "map.html")


def test_default_sample_map_zero_errors_zero_requests(browser, sample_map) -> None:
    st = browser.open(sample_map)
    page = st["page"]
    try:
        page.wait_for_timeout(500)
        assert st["external"] == [], st["external"][:5]
        assert st["errors"] == []
        names = _layer_control_names(page)
        assert {"服务网格", "村", "乡镇", "10kV线路", "台区", "供电所"} <= set(names)
        # context without tiles: township names are labels, village outlines are drawn
        towns = page.locator(".gp-lbl-town").all_inner_texts()
        assert "城关镇" in towns
        # village outlines are drawn; their names come from village zoom in (not at load)
        assert page.evaluate("(() => { let n = 0; " + JS_MAP + ".eachLayer(l => { if (l.feature "
                             "&& l.feature.geometry && /LineString/.test(l.feature.geometry.type)) n++; });"
                             " return n; })()") > 10
        # at county zoom the 台区 circles are not drawn (they would bury the grids)
        assert page.evaluate(f"(() => {{ const m = {JS_MAP}; return m.getZoom(); }})()") < 12
        n_tr = page.evaluate("(() => { let n = 0; " + JS_MAP.replace("find", "find") +
                             ".eachLayer(l => { if (l.feature && l.feature.properties && "
                             "l.feature.properties.capacity !== undefined) n++; }); return n; })()")
        assert n_tr == 0
        _shot(page, "map-sample-county.png")
    finally:
        st["ctx"].close()


def test_labels_show_manager_name_and_phone_at_station_zoom(browser, sample_map, sample_plan) -> None:
    import geopandas as gpd

    g = sample_plan.grids.sort_values("customers", ascending=False)
    g = g[g["station_id"] == "S01"].iloc[0]
    st = browser.open(sample_map)
    page = st["page"]
    try:
        c = gpd.GeoSeries([g.geometry.centroid], crs=sample_plan.crs).to_crs(4326).iloc[0]
        _set_view(page, c.x, c.y, 14)
        labels = page.locator(".gp-lbl-grid")
        visible = [t for t in labels.all_inner_texts() if t.strip()]
        assert any(str(g["manager_name"]) in t and str(g["phone"]) in t for t in visible), visible[:5]
        assert page.locator(".gp-lbl-vil").count() > 10  # village names from zoom 13 in
        # 台区 are drawn from station zoom in
        n_tr = page.evaluate("(() => { let n = 0; " + JS_MAP +
                             ".eachLayer(l => { if (l.feature && l.feature.properties && "
                             "l.feature.properties.capacity !== undefined) n++; }); return n; })()")
        assert n_tr > 0
        assert st["errors"] == [] and st["external"] == []
        _shot(page, "map-station-zoom.png")
    finally:
        st["ctx"].close()


@pytest.mark.parametrize("query_of", ["name_middle", "phone", "grid", "tr_name", "tr_id"])
def test_search_finds_by_substring_and_opens_the_popup(browser, sample_map, sample_plan, query_of) -> None:
    g = sample_plan.grids.sort_values("grid_id").iloc[7]
    tr = sample_plan.transformers.sort_values("transformer_id").iloc[11]
    query, expect = {
        "name_middle": (str(g["manager_name"])[1:], str(g["manager_name"])),  # not a prefix
        "phone": (str(g["phone"])[-6:], str(g["phone"])),
        "grid": (str(g["grid_id"]), str(g["manager_name"])),
        "tr_name": (str(tr["name"])[1:], str(tr["transformer_id"])),
        "tr_id": (str(tr["transformer_id"])[2:], str(tr["name"])),
    }[query_of]
    st = browser.open(sample_map)
    page = st["page"]
    try:
        page.locator(".gp-search input").fill(query)  # one input event: the list renders once
        hit = page.locator(".gp-search li", has_text=expect if query_of != "tr_id" else query).first
        hit.wait_for(timeout=5_000)
        hit.click()
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5_000)
        assert expect in popup.inner_text()
        assert st["errors"] == [] and st["external"] == []
    finally:
        st["ctx"].close()


def test_popups_have_no_empty_rows(browser, tiny_map) -> None:
    from test_map import grid_click_point

    st = browser.open(tiny_map)
    page = st["page"]
    try:
        lon, lat = grid_click_point("T1-02")  # its villages and flags are empty
        xy = _to_screen(page, lon, lat)
        page.mouse.click(xy[0], xy[1])
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5_000)
        heads = page.locator(".gp-pop th").all_inner_texts()
        cells = page.locator(".gp-pop td").all_inner_texts()
        assert "网格" in heads and "电话" in heads and "村" not in heads and "提示" not in heads
        assert all(c.strip() for c in cells), list(zip(heads, cells))
    finally:
        st["ctx"].close()


def test_segment_tooltip_names_the_owner_and_phone(browser, tiny_map) -> None:
    import geopandas as gpd
    import shapely
    from test_map import CRS_M, X0, Y0

    st = browser.open(tiny_map)
    page = st["page"]
    try:
        pt = gpd.GeoSeries([shapely.Point(X0 + 7_000, Y0 + 2_500)], crs=CRS_M).to_crs(4326).iloc[0]
        xy = _to_screen(page, pt.x, pt.y)
        page.mouse.move(xy[0] - 3, xy[1])
        page.mouse.move(xy[0], xy[1])
        tip = page.locator(".leaflet-tooltip")
        tip.first.wait_for(timeout=5_000)
        text = " ".join(tip.all_inner_texts())
        assert "李四" in text and "138-0000-0002" in text and "F1-2" in text, text
        # segments are dark lines on a white casing, not the grids' fill colours
        from gridplan.render._layers import GRID_PALETTE, SEGMENT_LINE
        assert not set(SEGMENT_LINE) & set(GRID_PALETTE)
        assert st["errors"] == []
    finally:
        st["ctx"].close()


def test_measure_tool_runs_without_errors(browser, tiny_map) -> None:
    st = browser.open(tiny_map)
    page = st["page"]
    try:
        page.locator(".leaflet-control-measure").hover()
        page.locator(".leaflet-control-measure .js-start").click()
        box = page.locator(".leaflet-container").bounding_box()
        for fx, fy in ((0.4, 0.4), (0.6, 0.45), (0.6, 0.65)):
            page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
            page.wait_for_timeout(150)
        text = page.locator(".leaflet-control-measure").inner_text()
        assert "米" in text or "公里" in text, text
        page.locator(".leaflet-control-measure .js-finish").click()
        page.wait_for_timeout(300)
        assert st["errors"] == [], st["errors"]
    finally:
        st["ctx"].close()


def test_draw_tool_speaks_chinese(browser, tiny_map) -> None:
    st = browser.open(tiny_map)
    page = st["page"]
    try:
        titles = [page.locator(".leaflet-draw a").nth(i).get_attribute("title") or ""
                  for i in range(page.locator(".leaflet-draw a").count())]
        assert "画固定范围（多边形）" in titles and "画固定范围（矩形）" in titles, titles
        assert not [t for t in titles if re.search(r"[A-Za-z]{4,}", t)], titles
        page.locator(".leaflet-draw-draw-polygon").click()
        assert "点击开始画范围" in page.locator(".leaflet-draw-tooltip").inner_text()
        assert st["errors"] == []
    finally:
        st["ctx"].close()


@pytest.mark.parametrize("viewport", [(1200, 800), (390, 844)])
def test_legend_collapses_and_never_covers_a_popup(browser, tiny_map, viewport) -> None:
    from test_map import grid_click_point

    st = browser.open(tiny_map, width=viewport[0], height=viewport[1])
    page = st["page"]
    try:
        legend = page.locator("#gp-legend")
        narrow = viewport[0] < 600
        assert page.evaluate("document.querySelector('#gp-legend details').open") is (not narrow)
        # every control inside the screen, none on top of another
        ctl = page.locator(".leaflet-control:visible")
        boxes = [b for b in (ctl.nth(i).bounding_box() for i in range(ctl.count())) if b]
        for b in boxes:
            assert b["x"] >= 0 and b["y"] >= 0 and b["x"] + b["width"] <= viewport[0] + 1 \
                and b["y"] + b["height"] <= viewport[1] + 1, b
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                assert not _boxes_overlap(boxes[i], boxes[j]), (boxes[i], boxes[j])
        # a grid at the bottom left (next to the legend), clicked where the legend is not
        lb = legend.bounding_box()
        for gid in ("T1-01", "T1-02", "T2-01"):
            xy = _to_screen(page, *grid_click_point(gid))
            if not (lb["x"] <= xy[0] <= lb["x"] + lb["width"] and lb["y"] <= xy[1] <= lb["y"] + lb["height"]):
                break
        page.mouse.click(xy[0], xy[1])
        popup = page.locator(".leaflet-popup")
        popup.wait_for(timeout=5_000)
        page.wait_for_timeout(400)
        assert not _boxes_overlap(popup.bounding_box(), legend.bounding_box())
        assert page.evaluate("document.querySelector('#gp-legend details').open") is False
        # opening the legend again closes the popup instead of covering it
        page.locator("#gp-legend summary").click()
        # `toggle` fires after a task and Leaflet fades the popup out over 200 ms: wait for it to
        # leave the page (a timeout here means it stayed)
        page.locator(".leaflet-popup").wait_for(state="detached", timeout=5_000)
        assert page.locator(".leaflet-popup").count() == 0
        assert st["errors"] == [] and st["external"] == []
        _shot(page, f"map-legend-{viewport[0]}x{viewport[1]}.png")
    finally:
        st["ctx"].close()
