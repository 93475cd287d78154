"""The interactive map: offline assets, escaping, layers, basemaps (HTML checks; no browser).

The plan is built by hand here (no loader, no optimizer), so these tests depend only on the
render package, its vendored assets and gridplan.coords.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from pyproj import CRS

from gridplan import InputError
from gridplan.model import County
from gridplan.pipeline import Plan
from gridplan.render import assets
from gridplan.settings import Params

CRS_M = CRS.from_epsg(4547)  # CGCS2000 3-degree GK, CM 114E, metres
X0, Y0 = 500_000.0, 3_700_000.0
XSS = "<img src=x onerror=alert(1)>"
XSS_JS = "`${alert(2)}`\\u"  # breaks out of a JS template literal if not escaped

needs_assets = pytest.mark.skipif(
    bool(assets.missing_assets()),
    reason="offline map assets not installed: run scripts/fetch_assets.sh")

#: Four grid boxes (2 per township), 5 km x 5 km, in a 2 x 2 layout.
GRID_BOXES = {"T1-01": (0, 0), "T1-02": (5_000, 0), "T2-01": (0, 5_000), "T2-02": (5_000, 5_000)}
MANAGERS = {"T1-01": ("M1", XSS), "T1-02": ("M2", "李四"), "T2-01": ("M3", "王五"),
            "T2-02": ("M4", XSS_JS)}


def box(x: float, y: float, w: float, h: float) -> shapely.Polygon:
    return shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)


def tiny_plan(*, n_extra: int = 0, with_segments: bool = True, params: Params | None = None) -> Plan:
    """A hand-made plan: 2 townships, 4 grids, 8 (+n_extra) 台区, 2 feeder segments, 2 switches."""
    towns = gpd.GeoDataFrame(
        {"township_id": ["T1", "T2"], "name": ["东镇", "西乡" + XSS], "station_id": ["S1", "S1"],
         "area_class": "农村"}, geometry=[box(0, 0, 10_000, 5_000), box(0, 5_000, 10_000, 5_000)],
        crs=CRS_M)
    stations = gpd.GeoDataFrame(
        {"station_id": ["S1", "S2"], "name": ["东镇供电所", "西乡服务站" + XSS],
         "kind": ["供电所", "供电服务站"], "parent_id": [None, "S1"]},
        geometry=shapely.points([(X0 + 4_000, Y0 + 4_000), (X0 + 6_000, Y0 + 6_000)]), crs=CRS_M)
    rows = []
    for g, (x, y) in GRID_BOXES.items():
        for j, (dx, dy) in enumerate([(1_000, 1_000), (4_000, 1_000)]):
            rows.append({"grid_id": g, "x": X0 + x + dx, "y": Y0 + y + dy, "j": j})
    for i in range(n_extra):  # spread over the whole 10 km square, away from grid centres
        rows.append({"grid_id": None, "x": X0 + 50 + (i * 7919) % 9_900, "y": Y0 + 50 + (i * 104_729) % 9_900,
                     "j": 2})
    tr = pd.DataFrame(rows)
    tr["transformer_id"] = [f"TQ{i:05d}" for i in range(len(tr))]
    tr["grid_id"] = [g or _grid_at(x - X0, y - Y0) for g, x, y in zip(tr["grid_id"], tr["x"], tr["y"])]
    tr["name"] = [f"台区{i}" for i in range(len(tr))]
    tr.loc[0, "name"] = XSS
    tr["customers"] = [(37 * i) % 400 + 10 for i in range(len(tr))]
    tr["capacity_kva"] = 200.0
    tr["feeder_id"] = "F1"
    tr["status"] = "运行"
    tr["township_id"] = tr["grid_id"].str[:2]
    tr["station_id"] = "S1"
    tr["village"] = None
    tr["manager_id"] = tr["grid_id"].map({g: m[0] for g, m in MANAGERS.items()})
    tr["workload"] = tr["customers"].astype(float)
    tr = gpd.GeoDataFrame(tr.drop(columns=["x", "y", "j"]),
                          geometry=shapely.points(tr[["x", "y"]].to_numpy()), crs=CRS_M)
    grids = gpd.GeoDataFrame({
        "grid_id": list(GRID_BOXES), "township_id": [g[:2] for g in GRID_BOXES], "station_id": "S1",
        "manager_id": [MANAGERS[g][0] for g in GRID_BOXES],
        "manager_name": [MANAGERS[g][1] for g in GRID_BOXES],
        "phone": ["138-0000-0001", "138-0000-0002", "138-0000-0003", "138-0000-0004"],
        "placeholder": [False, False, False, True],
        "workload": 500.0, "customers": [500, 510, 490, 505], "n_transformers": 2, "hv_km": 3.2,
        "balance": [1.0, 1.02, 0.98, 1.01], "townships": ["东镇", "东镇", "西乡", "西乡"],
        "villages": "", "flags": ""},
        geometry=[box(x, y, 5_000, 5_000) for x, y in GRID_BOXES.values()], crs=CRS_M)
    feeders = gpd.GeoDataFrame({"feeder_id": ["F1"], "name": ["10kV东线"], "substation_id": ["B1"]},
                               geometry=[shapely.LineString([(X0 + 500, Y0 + 2_500), (X0 + 9_500, Y0 + 2_500)])],
                               crs=CRS_M)
    segments = None
    if with_segments:
        segments = gpd.GeoDataFrame({
            "segment_id": ["F1-1", "F1-2"], "feeder_id": ["F1", "F1"], "length_km": [4.5, 4.5],
            "transformers": [4, 4], "grid_id": ["T1-01", "T1-02"], "manager_id": ["M1", "M2"],
            "share_in_grid": [1.0, 1.0]},
            geometry=[shapely.LineString([(X0 + 500, Y0 + 2_500), (X0 + 5_000, Y0 + 2_500)]),
                      shapely.LineString([(X0 + 5_000, Y0 + 2_500), (X0 + 9_500, Y0 + 2_500)])],
            crs=CRS_M)
    switches = gpd.GeoDataFrame({"switch_id": ["K1", "K2"], "normally_open": [True, False]},
                                geometry=shapely.points([(X0 + 5_000, Y0 + 2_500), (X0 + 2_000, Y0 + 2_500)]),
                                crs=CRS_M)
    county = County(name="测试县" + XSS, crs=CRS_M, townships=towns, stations=stations,
                    transformers=tr.drop(columns=["grid_id", "manager_id", "workload"]),
                    params=params or Params(), feeders=feeders, switches=switches)
    managers = pd.DataFrame({"manager_id": [m[0] for m in MANAGERS.values()],
                             "name": [m[1] for m in MANAGERS.values()]})
    return Plan(county=county, params=county.params, transformers=tr, grids=grids,
                managers=managers, segments=segments)


def _grid_at(x: float, y: float) -> str:
    for g, (gx, gy) in GRID_BOXES.items():
        if gx <= x < gx + 5_000 and gy <= y < gy + 5_000:
            return g
    raise AssertionError((x, y))


def grid_click_point(grid_id: str) -> tuple[float, float]:
    """(lon, lat) of a point inside ``grid_id`` away from its 台区, feeders and stations."""
    x, y = GRID_BOXES[grid_id]
    pt = gpd.GeoSeries([shapely.Point(X0 + x + 2_500, Y0 + y + 4_000)], crs=CRS_M).to_crs(4326)
    return float(pt.x.iloc[0]), float(pt.y.iloc[0])


def external_urls(html: str) -> list[str]:
    """Every http(s) URL a script/link/img tag or a CSS url() would fetch."""
    tags = re.findall(r'<(?:script|link|img|iframe)[^>]*(?:src|href)="((?:https?:)?//[^"]+)"', html)
    css = re.findall(r'url\(\s*[\'"]?((?:https?:)?//[^)\'"]+)', html)
    return tags + css


# ----------------------------------------------------------------------------- tests

@needs_assets
def test_offline_map_has_no_cdn_link_and_all_layers(tmp_path: Path) -> None:
    from gridplan.render import save_map

    out = save_map(tiny_plan(), tmp_path / "map.html", basemap="none")
    html = out.read_text(encoding="utf-8")
    assert external_urls(html) == []
    for host in ("cdn.jsdelivr.net", "cdnjs.cloudflare.com", "code.jquery.com", "netdna.bootstrapcdn"):
        assert host not in html
    assert "L.map(" in html and "gp-search" in html  # one search box over managers, grids, 台区
    # layer names are in the layer control's overlay list
    overlays = re.search(r"overlays\s*:\s*\{(.*?)\}", html, re.DOTALL)
    assert overlays is not None
    for name in ("乡镇", "服务网格", "台区", "10kV线路", "开关", "供电所"):
        assert json.dumps(name) in overlays.group(1)
    assert not list(tmp_path.glob(".map.html.*")), "temporary file left behind"


@needs_assets
def test_every_ledger_string_is_escaped(tmp_path: Path) -> None:
    from gridplan.render import map_html
    from gridplan.render.map import make_map

    html = map_html(make_map(tiny_plan(), basemap="none"))
    assert XSS not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "${alert(2)}" not in html
    # GeoJSON properties are JSON-encoded by folium ("&" as \u0026); the entities are there
    assert "\\u0026#96;\\u0026#36;{alert(2)}\\u0026#96;\\u0026#92;u" in html
    # the legend (county name) and the station tooltip (a JS template literal) are escaped
    assert "测试县&lt;img src=x onerror=alert(1)&gt;" in html
    assert "西乡服务站&lt;img src=x onerror=alert(1)&gt;" in html


@needs_assets
def test_grid_properties_escaped_and_neighbours_coloured_apart() -> None:
    from gridplan.render.map import make_map

    m = make_map(tiny_plan(), basemap="none")
    gj = next(c for c in _walk(m) if type(c).__name__ == "GeoJson" and c.layer_name == "服务网格")
    feats = {f["properties"]["grid_id"]: f["properties"] for f in gj.data["features"]}
    assert feats["T1-01"]["manager"] == "&lt;img src=x onerror=alert(1)&gt;"
    assert feats["T2-02"]["manager"].endswith("（占位，待指定）")
    fills = {g: p["style"]["fillColor"] for g, p in feats.items()}
    # 2 x 2 boxes: every pair touches (edge or corner), so all four colours differ
    assert len(set(fills.values())) == 4


def _walk(el):
    stack = [el]
    while stack:
        e = stack.pop()
        yield e
        stack.extend(e._children.values())


@needs_assets
def test_missing_assets_raise_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    from gridplan.render.map import make_map

    monkeypatch.setenv("GRIDPLAN_VENDOR_DIR", str(tmp_path / "empty"))
    with pytest.raises(assets.AssetsMissingError, match="scripts/fetch_assets.sh"):
        make_map(tiny_plan(), basemap="none")
    m = make_map(tiny_plan(), basemap="none", cdn=True)  # on purpose: CDNs, no vendor needed
    assert "cdn.jsdelivr.net/npm/leaflet" in m.get_root().render()


def test_fetch_is_idempotent_when_files_are_present(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "vendor"
    for name, (ver, _) in assets.PACKAGES.items():
        d = root / f"{name}@{ver}"
        d.mkdir(parents=True)
        (d / ".complete").write_text(assets._signature(name))

    def no_npm(*a, **k):
        raise AssertionError("npm must not run when everything is present")

    monkeypatch.setattr(assets, "_npm_pack", no_npm)
    assert assets.missing_assets(root) == []
    assert assets.fetch_assets(root, cache=tmp_path / "cache") == []
    # a stamp from an older file list counts as missing
    first = next(iter(assets.PACKAGES))
    (root / f"{first}@{assets.PACKAGES[first][0]}" / ".complete").write_text("old")
    assert assets.missing_assets(root) == [f"{first}@{assets.PACKAGES[first][0]}"]


@needs_assets
def test_inline_css_urls_become_data_uris() -> None:
    css = assets._inline_css(assets.ASSETS["leaflet_draw_css"].file())
    assert "url(images/" not in css and "data:image/" in css
    fa = assets._inline_css(assets.ASSETS["awesome_markers_font_css"].file())
    assert "../webfonts" not in fa and "data:font/woff2;base64," in fa


@needs_assets
def test_unknown_plugin_asset_is_reported() -> None:
    html = '<script src="https://example.org/x.js"></script>'
    with pytest.raises(assets.AssetsMissingError, match="does not vendor: mystery"):
        assets.inline_assets(html, {"https://example.org/x.js": "mystery"})


@needs_assets
def test_basemaps(tmp_path: Path) -> None:
    from gridplan.render.map import make_map

    plan = tiny_plan()
    osm = make_map(plan, basemap="osm").get_root().render()
    assert "tile.openstreetmap.org" in osm
    none = make_map(plan, basemap="none").get_root().render()
    assert "L.tileLayer" not in none
    with pytest.raises(InputError, match="tianditu_key"):
        make_map(plan, basemap="tianditu")
    keyed = tiny_plan(params=Params(tianditu_key="abc123"))
    assert "tk=abc123" in make_map(keyed, basemap="tianditu").get_root().render()
    with pytest.raises(InputError, match="unknown basemap"):
        make_map(plan, basemap="bing")


@needs_assets
def test_amap_shifts_data_to_gcj02() -> None:
    from gridplan.render.map import make_map

    def first_grid_coord(m):
        gj = next(c for c in _walk(m) if type(c).__name__ == "GeoJson" and c.layer_name == "服务网格")
        return gj.data["features"][0]["geometry"]["coordinates"][0][0]

    plan = tiny_plan()
    wgs = first_grid_coord(make_map(plan, basemap="osm"))
    gcj = first_grid_coord(make_map(plan, basemap="amap"))
    assert "autonavi.com" in make_map(plan, basemap="gaode").get_root().render()
    # GCJ-02 is a few hundred metres off WGS84 in China: > 1e-3 degrees, < 1e-2
    assert 1e-3 < abs(gcj[0] - wgs[0]) + abs(gcj[1] - wgs[1]) < 2e-2


@needs_assets
def test_without_segments_feeders_are_plain(tmp_path: Path) -> None:
    from gridplan.render.map import make_map

    m = make_map(tiny_plan(with_segments=False), basemap="none")
    gj = next(c for c in _walk(m) if type(c).__name__ == "GeoJson" and c.layer_name == "10kV线路")
    props = [f["properties"] for f in gj.data["features"]]
    assert [p["name"] for p in props] == ["10kV东线"] and "segment" not in props[0]
    seg = make_map(tiny_plan(), basemap="none")
    gj = next(c for c in _walk(seg) if type(c).__name__ == "GeoJson" and c.layer_name == "10kV线路")
    colours = [f["properties"]["style"]["color"] for f in gj.data["features"]]
    assert len(colours) == 2 and colours[0] != colours[1]  # touching segments differ


@needs_assets
def test_same_plan_gives_same_html() -> None:
    from gridplan.render.map import make_map

    def strip_ids(h: str) -> str:  # folium names elements with random uuids
        return re.sub(r"_[0-9a-f]{32}", "_", h)

    a = make_map(tiny_plan(), basemap="none").get_root().render()
    b = make_map(tiny_plan(), basemap="none").get_root().render()
    assert strip_ids(a) == strip_ids(b)


@needs_assets
def test_transformer_popup_fields_and_sizes() -> None:
    from gridplan.render.map import make_map

    m = make_map(tiny_plan(n_extra=20), basemap="none")
    gj = next(c for c in _walk(m) if type(c).__name__ == "GeoJson" and c.layer_name == "台区")
    props = [f["properties"] for f in gj.data["features"]]
    assert len(props) == 28
    assert props[0]["name"] == "&lt;img src=x onerror=alert(1)&gt;"
    assert props[0]["manager"] == "&lt;img src=x onerror=alert(1)&gt;"
    assert {"name", "capacity", "customers", "feeder", "manager"} <= set(props[0])
    by_c = sorted((p["customers"], p["style"]["radius"]) for p in props)
    radii = [r for _, r in by_c]
    assert radii == sorted(radii) and radii[0] < radii[-1]
    json.dumps(gj.data)  # serialisable


def test_pin_export_says_gcj02_over_a_gcj02_basemap():
    from gridplan.render.map import make_map

    p = tiny_plan()
    amap = make_map(p, basemap="amap").get_root().render()
    osm = make_map(p, basemap="osm").get_root().render()
    assert 'data.coords = "gcj02"' in amap
    assert "data.coords" not in osm
