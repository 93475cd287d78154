"""Tests for gridplan.coords: GCJ-02/BD-09, parse_system, GK forms, metric CRS, tile shift."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import LineString, Point, Polygon

from gridplan import coords
from gridplan.errors import InputError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CHINA_OSM = SHARED / "china_osm"
GEOD = Geod(ellps="WGS84")


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Geodesic distance in metres (never compare degrees)."""
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


@pytest.fixture(scope="module")
def china_grid() -> tuple[np.ndarray, np.ndarray]:
    """Points every 0.5 degrees over China's extent (lon 73.5-135.5, lat 18-53.5)."""
    lon, lat = np.meshgrid(np.arange(73.5, 135.51, 0.5), np.arange(18.0, 53.51, 0.5))
    return lon.ravel(), lat.ravel()


# --- published reference values -------------------------------------------------------------------

# (wgs lon, wgs lat, gcj lon, gcj lat) from googollee/eviltransform, python/test.py (TESTS:
# shanghai, shenzhen, beijing; commit 3416646abc64972e899118271bd98030224d9d6c).
EVILTRANSFORM = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),
]
# wandergis/coordtransform, README.md "result" block: wgs84togcj02(116.404, 39.915) and
# gcj02tobd09(116.404, 39.915) (both closed form), bd09togcj02(116.404, 39.915) (their one-step
# approximate inverse).
CT_WGS_TO_GCJ = (116.41024449916938, 39.91640428150164)
CT_GCJ_TO_BD = (116.41036949371029, 39.92133699351021)
CT_BD_TO_GCJ = (116.39762729119315, 39.90865673957631)


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), EVILTRANSFORM)
def test_wgs84_to_gcj02_matches_published_vectors(wlon, wlat, glon, glat):
    lon, lat = coords.wgs84_to_gcj02(wlon, wlat)
    assert metres(lon, lat, glon, glat) < 0.01


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), EVILTRANSFORM)
def test_gcj02_to_wgs84_recovers_published_vectors(wlon, wlat, glon, glat):
    lon, lat = coords.gcj02_to_wgs84(glon, glat)
    assert metres(lon, lat, wlon, wlat) < 0.01


def test_coordtransform_readme_values():
    assert metres(*coords.wgs84_to_gcj02(116.404, 39.915), *CT_WGS_TO_GCJ) < 0.001
    assert metres(*coords.gcj02_to_bd09(116.404, 39.915), *CT_GCJ_TO_BD) < 0.001
    # Their BD inverse is a one-step approximation; ours is iterated, so only centimetres apart.
    assert metres(*coords.bd09_to_gcj02(116.404, 39.915), *CT_BD_TO_GCJ) < 0.1


def test_offset_is_a_few_hundred_metres_inside_china(china_grid):
    lon, lat = china_grid
    d = metres(lon, lat, *coords.wgs84_to_gcj02(lon, lat))
    assert 50 < np.median(d) < 800
    assert d.max() < 1000


def test_outside_china_unchanged():
    lon, lat = np.array([2.35, -74.0, 139.69]), np.array([48.85, 40.7, 35.69])  # Paris, NYC, Tokyo
    for fwd in (coords.wgs84_to_gcj02, coords.gcj02_to_wgs84, coords.wgs84_to_bd09,
                coords.bd09_to_wgs84):
        out = fwd(lon, lat)
        np.testing.assert_array_equal(out[0], lon)
        np.testing.assert_array_equal(out[1], lat)


def test_nan_passes_through():
    lon, lat = coords.gcj02_to_wgs84([np.nan, 114.0], [np.nan, 34.0])
    assert np.isnan(lon[0]) and np.isnan(lat[0])
    assert np.isfinite(lon[1]) and np.isfinite(lat[1])


# --- round trips (< 0.01 m, measured in metres) ---------------------------------------------------

def test_gcj02_round_trips_across_china(china_grid):
    lon, lat = china_grid
    back = coords.gcj02_to_wgs84(*coords.wgs84_to_gcj02(lon, lat))
    assert metres(lon, lat, *back).max() < 0.01
    # and the other way: a GCJ-02 point, to WGS84 and forward again
    again = coords.wgs84_to_gcj02(*coords.gcj02_to_wgs84(lon, lat))
    assert metres(lon, lat, *again).max() < 0.01


def test_bd09_round_trips_across_china(china_grid):
    lon, lat = china_grid
    assert metres(lon, lat, *coords.bd09_to_gcj02(*coords.gcj02_to_bd09(lon, lat))).max() < 0.01
    assert metres(lon, lat, *coords.gcj02_to_bd09(*coords.bd09_to_gcj02(lon, lat))).max() < 0.01
    assert metres(lon, lat, *coords.bd09_to_wgs84(*coords.wgs84_to_bd09(lon, lat))).max() < 0.01


@pytest.mark.parametrize("system", ["wgs84", "cgcs2000", "gcj02", "bd09", "gk3", "gk3:38",
                                    "EPSG:3857", "EPSG:4526", "EPSG:4547", "EPSG:32650"])
def test_to_from_wgs84_round_trip(system):
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(112.6, 115.4, 50), rng.uniform(22.0, 40.0, 50)
    back = coords.to_wgs84(*coords.from_wgs84(lon, lat, system), system)
    assert metres(lon, lat, *back).max() < 0.01


def test_vectorised_shape_preserved():
    lon, lat = np.full((3, 4), 114.0), np.full((3, 4), 34.0)
    out = coords.gcj02_to_wgs84(lon, lat)
    assert out[0].shape == (3, 4) and out[1].shape == (3, 4)


# --- parse_system ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "kind", "zone"), [
    ("wgs84", "wgs84", None), ("WGS-84", "wgs84", None), ("GPS", "wgs84", None),
    ("EPSG:4326", "wgs84", None), ("cgcs2000", "cgcs2000", None), ("CGCS2000", "cgcs2000", None),
    ("2000国家大地坐标系", "cgcs2000", None), ("epsg:4490", "cgcs2000", None),
    ("gcj02", "gcj02", None), ("GCJ-02", "gcj02", None), ("国测局", "gcj02", None),
    ("火星坐标", "gcj02", None), ("高德", "gcj02", None), ("ＧＣＪ０２", "gcj02", None),
    ("bd09", "bd09", None), ("BD-09", "bd09", None), ("百度", "bd09", None),
    ("gk3", "gk3", None), ("GK3:38", "gk3", 38), ("gk3:114", "gk3", 38), ("gk3：39", "gk3", 39),
    ("高斯克吕格:38", "gk3", 38), ("EPSG:4526", "gk3", 38), ("EPSG:4547", "gk3", 38),
    (" epsg:3857 ", "epsg", None),
])
def test_parse_system_aliases(text, kind, zone):
    system = coords.parse_system(text)
    assert system.kind == kind
    assert system.zone == zone


def test_parse_system_str_and_crs():
    assert str(coords.parse_system("gk3:114")) == "gk3:38"
    assert str(coords.parse_system("EPSG:3857")) == "EPSG:3857"
    assert coords.parse_system("gk3:38").crs.to_epsg() == 4547
    assert coords.parse_system("gcj02").crs is None


@pytest.mark.parametrize("text", ["utm", "bd09mc", "gk3:100", "gk3:46", "EPSG:999999", "gk3:20",
                                  ""])
def test_parse_system_unknown_names_value_and_accepted(text):
    with pytest.raises(InputError) as info:
        coords.parse_system(text, source="gridplan.toml")
    message = str(info.value)
    assert repr(text) in message
    assert "gridplan.toml" in message
    for accepted in ("wgs84", "cgcs2000", "gcj02", "bd09", "gk3", "EPSG:"):
        assert accepted in message


# --- Gauss-Krüger forms against pyproj ------------------------------------------------------------

@pytest.fixture(scope="module")
def gk_points() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.uniform(112.6, 115.4, 40), rng.uniform(20.0, 45.0, 40)


def _pyproj_en(epsg: int, lon, lat):
    return Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)


@pytest.mark.parametrize(("system", "epsg"), [("gk3", 4526), ("gk3:38", 4526), ("gk3:38", 4547),
                                              ("gk3:114", 4547), ("EPSG:4547", 4547),
                                              ("EPSG:4526", 4526)])
@pytest.mark.parametrize("swap", [False, True])
def test_gk_forms_to_wgs84(gk_points, system, epsg, swap):
    lon, lat = gk_points
    east, north = _pyproj_en(epsg, lon, lat)
    x, y = (north, east) if swap else (east, north)
    assert metres(lon, lat, *coords.to_wgs84(x, y, system)).max() < 0.01


def test_gk_mixed_prefix_and_axis_order_in_one_array(gk_points):
    lon, lat = gk_points
    e1, n1 = _pyproj_en(4526, lon, lat)   # prefixed
    e2, n2 = _pyproj_en(4547, lon, lat)   # plain
    half = len(lon) // 2
    x = np.concatenate([e1[:half], n2[half:]])
    y = np.concatenate([n1[:half], e2[half:]])
    assert metres(lon, lat, *coords.to_wgs84(x, y, "gk3:38")).max() < 0.01


def test_gk_prefixed_zones_differ_per_point():
    lon, lat = np.array([111.0, 117.0, 120.0]), np.array([30.0, 31.0, 32.0])   # zones 37, 39, 40
    x, y = coords.from_wgs84(lon, lat, "gk3")
    assert list((x // 1e6).astype(int)) == [37, 39, 40]
    for epsg, xi, yi, lo, la in zip((4525, 4527, 4528), x, y, lon, lat, strict=True):
        ex, ny = _pyproj_en(epsg, lo, la)
        assert abs(ex - xi) < 0.001 and abs(ny - yi) < 0.001


def test_gk_plain_without_zone_asks_for_zone(gk_points):
    lon, lat = gk_points
    east, north = _pyproj_en(4547, lon, lat)
    with pytest.raises(InputError, match="zone") as info:
        coords.to_wgs84(east, north, "gk3", source="台区.xlsx")
    assert "gk3:38" in str(info.value) and "台区.xlsx" in str(info.value)


def test_gk_nonsense_values_name_the_rows():
    x = np.array([38_500_000.0, 12.0, 500_000.0, np.nan])
    y = np.array([3_800_000.0, 34.0, 99.0, np.nan])
    with pytest.raises(InputError) as info:
        coords.to_wgs84(x, y, "gk3:38", source="台区.csv")
    problems = info.value.problems
    assert len(problems) == 1
    assert problems[0].rows == ("2", "3")   # 1-based; the NaN row is the validator's business


# --- detect_swapped_lonlat ------------------------------------------------------------------------

def test_detect_swapped_lonlat():
    lon = np.array([114.0, 34.0, 34.0, 10.0, np.nan, 120.0])
    lat = np.array([34.0, 114.0, 20.0, 50.0, 34.0, 50.0])
    assert list(coords.detect_swapped_lonlat(lon, lat)) == [False, True, False, False, False, False]


# --- metric_crs_for -------------------------------------------------------------------------------

@pytest.mark.parametrize(("lon", "epsg"), [(75.2, 4534), (113.7, 4547), (114.0, 4547),
                                           (114.3, 4547), (116.0, 4548), (120.9, 4549),
                                           (134.9, 4554)])
def test_metric_crs_for_picks_gk_zone(lon, epsg):
    crs = coords.metric_crs_for([lon - 0.2, lon + 0.2], [34.0, 34.5])
    assert crs.to_epsg() == epsg
    assert crs.axis_info[0].unit_name == "metre"


def test_metric_crs_for_zone_38_is_cm_114():
    crs = coords.metric_crs_for(np.array([113.6, 114.4]), np.array([34.6, 34.9]))
    assert crs.to_epsg() == 4547
    params = {p.name: p.value for p in crs.coordinate_operation.params}
    assert params["Longitude of natural origin"] == 114


def test_metric_crs_for_uses_bbox_centre_not_mean():
    # 99 points at 112.0 and one at 118.0: bbox centre 115.0 -> CM 114 (EPSG:4547); the mean
    # (112.06) would give CM 111 (EPSG:4546).
    lon = np.r_[np.full(99, 112.0), 118.0]
    assert coords.metric_crs_for(lon, np.full(100, 30.0)).to_epsg() == 4547


@pytest.mark.parametrize(("lon", "lat", "epsg"), [(10.0, 50.0, 32632), (-70.0, -33.0, 32719),
                                                  (140.0, 36.0, 32654)])
def test_metric_crs_for_falls_back_to_utm(lon, lat, epsg):
    assert coords.metric_crs_for([lon], [lat]).to_epsg() == epsg


# --- shift_for_tiles ------------------------------------------------------------------------------

@pytest.fixture
def layer() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": ["p", "l", "a"]},
        geometry=[Point(114.0, 34.0), LineString([(114.0, 34.0), (114.1, 34.1)]),
                  Polygon([(114.0, 34.0), (114.1, 34.0), (114.1, 34.1)])],
        crs=4326)


@pytest.mark.parametrize("provider", ["amap", "Gaode", "高德", "tencent"])
def test_shift_for_tiles_gcj_providers(layer, provider):
    out = coords.shift_for_tiles(layer, provider)
    assert out is not layer and layer.geometry[0].x == 114.0   # input untouched
    for before, after in zip(layer.geometry, out.geometry, strict=True):
        b = np.asarray(before.exterior.coords if before.geom_type == "Polygon" else before.coords)
        a = np.asarray(after.exterior.coords if after.geom_type == "Polygon" else after.coords)
        expect = np.column_stack(coords.wgs84_to_gcj02(b[:, 0], b[:, 1]))
        np.testing.assert_allclose(a, expect, rtol=0, atol=1e-12)
        assert metres(b[0, 0], b[0, 1], a[0, 0], a[0, 1]) > 100
    assert list(out["name"]) == ["p", "l", "a"]


@pytest.mark.parametrize("provider", ["osm", "tianditu", "none", None])
def test_shift_for_tiles_wgs_providers_unchanged(layer, provider):
    out = coords.shift_for_tiles(layer, provider)
    assert out.geometry.equals(layer.geometry)


def test_shift_for_tiles_unknown_provider(layer):
    with pytest.raises(InputError, match="basemap"):
        coords.shift_for_tiles(layer, "bing")


# --- real data: a GCJ-02 county outline against WGS84 OpenStreetMap substations -------------------

@pytest.mark.skipif(not CHINA_OSM.exists(),
                    reason="../shared/data not present (only in the dev workspace)")
@pytest.mark.parametrize("county", ["410122_中牟县", "411525_固始县"])
def test_real_outline_gcj02_to_wgs84(county):
    outline = gpd.read_file(CHINA_OSM / f"{county}_county_boundary_amap_gcj02.geojson")
    subs = gpd.read_file(CHINA_OSM / f"{county}_osm_substations_wgs84.geojson")

    def unshift(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(coords.to_wgs84(xy[:, 0], xy[:, 1], "gcj02"))

    fixed = outline.set_geometry(shapely.transform(outline.geometry.values, unshift), crs=4326)
    lon, lat = subs.geometry.x.to_numpy(), subs.geometry.y.to_numpy()
    crs = coords.metric_crs_for(lon, lat)
    assert crs.to_epsg() in range(4534, 4555)

    def share_inside(poly: gpd.GeoDataFrame) -> float:
        area = poly.to_crs(crs).buffer(50.0).union_all()   # 50 m: OSM nodes on the border
        return float(subs.to_crs(crs).within(area).mean())

    # On these two counties every substation lies >= 240 m inside the outline either way (share 1.0
    # before and after), so this guards against gross errors (swapped axes, offset applied twice)
    # only; the checks below measure the move itself.
    assert share_inside(fixed) >= share_inside(outline)
    before = outline.to_crs(crs).centroid.iloc[0]
    after = fixed.to_crs(crs).centroid.iloc[0]
    shift = before.distance(after)
    assert 100.0 < shift < 1000.0   # GCJ-02 moves Henan by a few hundred metres (measured: ~560 m)
    # The outline moved as a whole by the GCJ-02 offset at its centre: the GCJ-02 image of the new
    # centroid is the old centroid, up to the offset's variation across a county (measured <= 8 m)
    clon, clat = coords.to_wgs84(after.x, after.y, crs.to_epsg())
    glon, glat = coords.wgs84_to_gcj02(clon, clat)
    gx, gy = Transformer.from_crs(4326, crs, always_xy=True).transform(glon, glat)
    assert np.hypot(before.x - gx, before.y - gy) < 20.0
    # ... and converting it forward again gives the published outline back (< 0.01 m per vertex).
    def shift(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(coords.wgs84_to_gcj02(xy[:, 0], xy[:, 1]))

    again = fixed.set_geometry(shapely.transform(fixed.geometry.values, shift))
    gap = again.to_crs(crs).geometry.iloc[0].hausdorff_distance(
        outline.to_crs(crs).geometry.iloc[0])
    assert gap < 0.01
