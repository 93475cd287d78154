"""Coordinate systems met in Chinese utility data, and conversions between them and WGS84.

Systems (see :func:`parse_system` for the accepted spellings):

``wgs84``
    GPS longitude/latitude (EPSG:4326).
``cgcs2000``
    China Geodetic Coordinate System 2000 (EPSG:4490). Its EPSG definition lists latitude first, but
    gridplan always reads and writes **longitude, latitude** (x, y) values, as ledgers store them.
    CGCS2000 and WGS84 differ by a few centimetres, so the values are used unchanged.
``gcj02``
    The obfuscated "Mars" system of consumer maps (国测局/火星坐标: Amap/高德, Tencent).
    Forward is the well-known closed-form offset (a few hundred metres), applied only inside a
    rough bounding box of China; the inverse has no closed form and is iterated until the round
    trip is below 0.1 mm (measured: below 0.002 mm over a 0.5-degree grid of China).
``bd09``
    Baidu's system, a second closed-form offset on top of GCJ-02; its inverse is iterated as well.
``gk3`` / ``gk3:<zone>``
    CGCS2000 3-degree Gauss-Krüger, in metres. Eastings carry the zone number in front
    (``38500000``; EPSG:4513-4533) or not (``500000``; EPSG:4534-4554, which needs the zone, written
    ``gk3:38`` or by its central meridian ``gk3:114``). (easting, northing) and the swapped
    (northing, easting) order both occur; :func:`to_wgs84` tells them apart by magnitude.
``EPSG:nnnn``
    Any geographic or projected CRS pyproj knows, always in (x=easting/longitude,
    y=northing/latitude) order.

All arrays are in (lon, lat) / (x, y) order; functions are vectorised over numpy arrays.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, NoReturn

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from ..errors import InputError, Problems
from .gcj import (
    _as_float,
    _out,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = [
    "CoordSystem", "bd09_to_gcj02", "bd09_to_wgs84", "detect_swapped_lonlat", "from_wgs84",
    "gcj02_to_bd09", "gcj02_to_wgs84", "metric_crs_for", "parse_system", "shift_for_tiles",
    "tiles_are_gcj02",
    "to_wgs84", "wgs84_to_bd09", "wgs84_to_gcj02",
]

log = logging.getLogger(__name__)

# The GCJ-02 / BD-09 offsets and their inverses live in gridplan.coords.gcj and are re-exported above.

# --- coordinate systems ---------------------------------------------------------------------------

#: CGCS2000 3-degree Gauss-Krüger zones used in China: zone n has central meridian 3n degrees east.
GK_ZONES = range(25, 46)
_GK_PREFIXED_EPSG0 = 4513   # zone 25, easting with the zone number in front (25500000)
_GK_PLAIN_EPSG0 = 4534      # CM 75E, easting without the zone number (500000)

_ALIASES: dict[str, tuple[str, ...]] = {
    "wgs84": ("wgs84", "wgs 84", "gps", "crs84", "epsg:4326", "4326", "地球坐标", "地球坐标系",
              "gps坐标", "wgs84坐标系", "wgs84经纬度", "世界大地坐标系"),
    "cgcs2000": ("cgcs2000", "cgcs 2000", "epsg:4490", "4490", "2000国家大地坐标系",
                 "国家2000坐标系", "国家2000", "2000坐标系", "cgcs2000坐标系", "cgcs2000经纬度",
                 "国家大地坐标系2000"),
    "gcj02": ("gcj02", "gcj", "mars", "国测局", "国测局坐标", "国测局坐标系", "火星坐标",
              "火星坐标系", "高德", "高德坐标", "腾讯", "腾讯坐标", "amap", "gaode", "tencent"),
    "bd09": ("bd09", "bd09ll", "baidu", "百度", "百度坐标", "百度坐标系", "百度经纬度"),
    "gk3": ("gk3", "gk", "gauss-kruger", "gauss-krüger", "gausskruger", "cgcs2000gk3", "3度带",
            "三度带", "高斯克吕格", "高斯-克吕格", "高斯投影", "高斯3度带", "cgcs2000 3度带",
            "2000国家大地坐标系3度带"),
}

ACCEPTED = ("wgs84", "cgcs2000", "gcj02", "bd09", "gk3", "gk3:<zone 25-45 or central meridian>",
            "EPSG:<code>")


def _norm(text: str) -> str:
    """Normalise a spelling: NFKC (full-width to ASCII), lower case, no spaces, '-', '_' or '.'."""
    text = unicodedata.normalize("NFKC", str(text)).strip().lower()
    return re.sub(r"[\s\-_.]", "", text)


_ALIAS_INDEX = {_norm(a): kind for kind, names in _ALIASES.items() for a in names}


@dataclass(frozen=True)
class CoordSystem:
    """A parsed coordinate system.

    Attributes
    ----------
    kind
        ``"wgs84"``, ``"cgcs2000"``, ``"gcj02"``, ``"bd09"``, ``"gk3"`` or ``"epsg"``.
    zone
        For ``gk3``: the 3-degree zone (25-45; central meridian 3*zone degrees), or None when the
        eastings must carry it (zone prefix).
    epsg
        For ``epsg``: the EPSG code; for ``gk3`` parsed from an EPSG code, that code.
    """

    kind: str
    zone: int | None = None
    epsg: int | None = None

    def __str__(self) -> str:
        """Return the spelling :func:`parse_coords` reads back (``"gk3:38"``, ``"EPSG:4547"``)."""
        if self.kind == "gk3":
            return f"gk3:{self.zone}" if self.zone else "gk3"
        if self.kind == "epsg":
            return f"EPSG:{self.epsg}"
        return self.kind

    @property
    def crs(self) -> CRS | None:
        """The pyproj CRS of the system, or None for GCJ-02/BD-09 (no CRS describes them)."""
        if self.kind in ("wgs84", "cgcs2000"):
            return CRS.from_epsg(4326 if self.kind == "wgs84" else 4490)
        if self.kind == "gk3":
            return _gk_crs(self.zone) if self.zone else None
        if self.kind == "epsg" and self.epsg is not None:
            return CRS.from_epsg(self.epsg)
        return None


def _zone_from_number(n: int) -> int | None:
    """Accept a zone number (25-45) or a central meridian (75-135, step 3)."""
    if n in GK_ZONES:
        return n
    if n % 3 == 0 and n // 3 in GK_ZONES:
        return n // 3
    return None


def _bad_system(text: object, source: str, why: str) -> NoReturn:
    problems = Problems()
    problems.add(source, f"unknown coordinate system {text!r}{why}",
                 fix="use one of: " + ", ".join(ACCEPTED) + " (中文: 国测局/火星坐标, 百度, "
                     "2000国家大地坐标系, 高斯克吕格3度带)")
    raise InputError(problems.items)


def _from_epsg(code: int, text: object, source: str) -> CoordSystem:
    if code == 4326:
        return CoordSystem("wgs84")
    if code == 4490:
        return CoordSystem("cgcs2000")
    if _GK_PREFIXED_EPSG0 <= code < _GK_PREFIXED_EPSG0 + len(GK_ZONES):
        return CoordSystem("gk3", zone=25 + code - _GK_PREFIXED_EPSG0, epsg=code)
    if _GK_PLAIN_EPSG0 <= code < _GK_PLAIN_EPSG0 + len(GK_ZONES):
        return CoordSystem("gk3", zone=25 + code - _GK_PLAIN_EPSG0, epsg=code)
    try:
        crs = CRS.from_epsg(code)
    except CRSError:
        _bad_system(text, source, ": pyproj does not know this EPSG code")
    if not (crs.is_geographic or crs.is_projected):
        _bad_system(text, source, ": it is neither a geographic nor a projected CRS")
    return CoordSystem("epsg", epsg=code)


def parse_system(text: str | CoordSystem, *, source: str = "coordinate system") -> CoordSystem:
    """Parse a coordinate-system name, case-insensitively, English or Chinese.

    Parameters
    ----------
    text
        ``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09``, ``gk3``, ``gk3:<zone>`` (zone 25-45 or its
        central meridian 75-135), ``EPSG:<code>``, or an alias such as ``国测局``, ``火星坐标``,
        ``百度``, ``2000国家大地坐标系``, ``高斯克吕格:38``. A :class:`CoordSystem` is returned
        as is.
    source
        Where the text came from (a file or option name), for the error message.

    Returns
    -------
    CoordSystem

    Raises
    ------
    gridplan.InputError
        The text names no known system; the message lists the accepted ones.
    """
    if isinstance(text, CoordSystem):
        return text
    norm = _norm(text) if text is not None else ""
    m = re.fullmatch(r"(?:epsg:?)?(\d{4,6})", norm)
    if m:
        return _from_epsg(int(m.group(1)), text, source)
    if norm in _ALIAS_INDEX:
        return CoordSystem(_ALIAS_INDEX[norm])
    m = re.fullmatch(r"(.+?):?(\d{2,3})", norm)
    if m and _ALIAS_INDEX.get(m.group(1)) == "gk3":
        zone = _zone_from_number(int(m.group(2)))
        if zone is None:
            _bad_system(text, source, ": the zone must be 25-45 or a central meridian 75-135 "
                                      "divisible by 3")
        return CoordSystem("gk3", zone=zone)
    _bad_system(text, source, "")


# --- conversions to and from WGS84 ----------------------------------------------------------------

@lru_cache(maxsize=64)
def _gk_crs(zone: int) -> CRS:
    """Return the CGCS2000 3-degree GK CRS of a zone, eastings without the zone prefix."""
    return CRS.from_epsg(_GK_PLAIN_EPSG0 + zone - 25)


@lru_cache(maxsize=64)
def _transformer(src: int | str, dst: int | str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst),
                                always_xy=True)


def _zone_prefix(v: np.ndarray) -> np.ndarray:
    """Zone number of prefixed eastings (e.g. 38 for 38,512,345.6), 0 where v is not one."""
    with np.errstate(invalid="ignore"):
        zone = np.floor(v / 1e6)
        rest = v - zone * 1e6
        ok = (zone >= GK_ZONES.start) & (zone < GK_ZONES.stop) & (rest >= 1e5) & (rest < 9e5)
    return np.where(ok, zone, 0).astype(int)


def _is_plain_easting(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (v >= 1e5) & (v < 9e5)


def _is_northing(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (v >= 1e6) & (v < 7e6)


def _gk_to_wgs84(x: np.ndarray, y: np.ndarray, system: CoordSystem,
                 source: str) -> tuple[np.ndarray, np.ndarray]:
    """GK (easting, northing) or (northing, easting), with or without zone prefix, to WGS84."""
    swapped = _is_northing(x) & (_is_plain_easting(y) | (_zone_prefix(y) > 0))
    east = np.where(swapped, y, x)
    north = np.where(swapped, x, y)
    zone = _zone_prefix(east)
    plain = _is_plain_easting(east)
    good = _is_northing(north) & ((zone > 0) | plain)
    missing = np.isnan(x) | np.isnan(y)
    problems = Problems()
    bad = np.flatnonzero(~good & ~missing)
    if bad.size:
        problems.add(source, f"{bad.size} Gauss-Krüger coordinate pair(s) are neither "
                     "(easting, northing) nor (northing, easting): eastings are 100000-900000 m "
                     "(or 25000000-45999999 m with the zone in front), northings 1000000-7000000 m",
                     fix="check the coordinate columns and the coordinate system", rows=bad + 1)
    needs_zone = np.flatnonzero(good & (zone == 0))
    if needs_zone.size and system.zone is None:
        problems.add(source, "Gauss-Krüger eastings without the zone number in front (e.g. 512345 "
                     "instead of 38512345) need the zone",
                     fix='name the zone or central meridian, e.g. coords = "gk3:38" (114°E), '
                         "or use EPSG:4534-4554", rows=needs_zone + 1)
    problems.raise_if_any()
    if system.zone is not None:
        other = np.unique(zone[(zone > 0) & (zone != system.zone)])
        if other.size:
            log.warning("eastings carry zone(s) %s, not %s: using the zone in the easting",
                        other.tolist(), system.zone)
    zone = np.where(zone > 0, zone, system.zone or 0)
    east = east - np.where(plain, 0.0, zone * 1e6)
    lon = np.full(x.shape, np.nan)
    lat = np.full(x.shape, np.nan)
    for z in np.unique(zone[good]):
        sel = good & (zone == z)
        lon[sel], lat[sel] = _transformer(_GK_PLAIN_EPSG0 + int(z) - 25, 4326).transform(
            east[sel], north[sel])
    if swapped.any():
        log.info("%d Gauss-Krüger pair(s) read as (northing, easting)", int(swapped.sum()))
    return lon, lat


def to_wgs84(x: object, y: object, system: str | CoordSystem, *,
             source: str = "coordinates") -> tuple[np.ndarray, np.ndarray]:
    """Convert coordinates in ``system`` to WGS84 longitude/latitude.

    Parameters
    ----------
    x, y
        Longitude/latitude for geographic systems (also CGCS2000, whatever EPSG's axis order), or
        easting/northing in metres. For ``gk3`` the pair may also be (northing, easting), and the
        easting may carry the zone number in front; each pair is recognised by magnitude.
        NaN stays NaN.
    system
        Anything :func:`parse_system` accepts.
    source
        File or layer name for error messages.

    Returns
    -------
    lon, lat
        WGS84 degrees, arrays of the input's shape.

    Raises
    ------
    gridplan.InputError
        Unknown system; Gauss-Krüger values that fit neither axis order; plain eastings without
        a zone.
    """
    system = parse_system(system, source=source)
    x, y = (np.array(a, dtype=float) for a in np.broadcast_arrays(_as_float(x), _as_float(y)))
    if system.kind in ("wgs84", "cgcs2000"):
        lon, lat = x, y
    elif system.kind == "gcj02":
        lon, lat = gcj02_to_wgs84(x, y)
    elif system.kind == "bd09":
        lon, lat = bd09_to_wgs84(x, y)
    elif system.kind == "gk3":
        lon, lat = _gk_to_wgs84(x, y, system, source)
    else:
        lon, lat = _transformer(system.epsg, 4326).transform(x, y)
    return _out(np.asarray(lon, dtype=float)), _out(np.asarray(lat, dtype=float))


def gk_zone_of(lon: object) -> np.ndarray:
    """Return the CGCS2000 3-degree zone (25-45) of each longitude, clipped to China's zones.

    NaN longitudes give zone 0.
    """
    lon = _as_float(lon)
    zone = np.clip(np.floor(lon / 3.0 + 0.5), GK_ZONES.start, GK_ZONES.stop - 1)
    return np.where(np.isfinite(lon), zone, 0).astype(int)


def from_wgs84(lon: object, lat: object,
               system: str | CoordSystem) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS84 longitude/latitude to ``system``.

    Parameters
    ----------
    lon, lat
        WGS84 degrees.
    system
        Anything :func:`parse_system` accepts. ``gk3:<zone>`` (and EPSG:4534-4554) give
        (easting, northing) in that zone without prefix; plain ``gk3`` and EPSG:4513-4533 give
        eastings with the zone number in front (each point in its own zone for plain ``gk3``,
        the named zone for an EPSG code).

    Returns
    -------
    x, y
        Longitude/latitude or easting/northing (metres).
    """
    system = parse_system(system)
    lon, lat = (np.array(a, dtype=float)
                for a in np.broadcast_arrays(_as_float(lon), _as_float(lat)))
    if system.kind in ("wgs84", "cgcs2000"):
        return _out(lon), _out(lat)
    if system.kind == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if system.kind == "bd09":
        return wgs84_to_bd09(lon, lat)
    if system.kind == "epsg":
        x, y = _transformer(4326, system.epsg).transform(lon, lat)
        return _out(np.asarray(x)), _out(np.asarray(y))
    prefixed = system.zone is None or (system.epsg is not None and system.epsg < _GK_PLAIN_EPSG0)
    zone = np.full(lon.shape, system.zone) if system.zone else gk_zone_of(lon)
    x = np.full(lon.shape, np.nan)
    y = np.full(lon.shape, np.nan)
    for z in np.unique(zone[zone > 0]):
        sel = zone == z
        x[sel], y[sel] = _transformer(4326, _GK_PLAIN_EPSG0 + int(z) - 25).transform(lon[sel],
                                                                                      lat[sel])
    if prefixed:
        x = x + zone * 1e6
    return _out(x), _out(y)


# --- helpers for validation, projection and display -----------------------------------------------

#: Rough longitude / latitude ranges of China used to spot swapped columns.
CHINA_LON_RANGE = (73.0, 136.0)
CHINA_LAT_RANGE = (3.0, 54.0)


def detect_swapped_lonlat(lon: object, lat: object) -> np.ndarray:
    """Mask of points that lie in China only when longitude and latitude are swapped.

    Parameters
    ----------
    lon, lat
        The values as given (longitude column, latitude column).

    Returns
    -------
    numpy.ndarray of bool
        True where (lat, lon) is inside China's ranges (lon 73-136, lat 3-54) but (lon, lat) is not.
        NaN gives False.
    """
    lon, lat = np.broadcast_arrays(_as_float(lon), _as_float(lat))
    with np.errstate(invalid="ignore"):
        def inside(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return ((a >= CHINA_LON_RANGE[0]) & (a <= CHINA_LON_RANGE[1])
                    & (b >= CHINA_LAT_RANGE[0]) & (b <= CHINA_LAT_RANGE[1]))
        return _out(inside(lat, lon) & ~inside(lon, lat))


def metric_crs_for(lon: object, lat: object) -> CRS:
    """Choose a metric CRS for points given in WGS84: distances computed there are metres.

    The CGCS2000 3-degree Gauss-Krüger zone (eastings without zone prefix, EPSG:4534-4554, central
    meridians 75°E-135°E) of the centre of the points' bounding box; when the centre lies outside
    China's zones (73.5°E-136.5°E), the WGS84 UTM zone of the centre.

    Parameters
    ----------
    lon, lat
        WGS84 degrees (NaN ignored).

    Returns
    -------
    pyproj.CRS
    """
    lon, lat = _as_float(lon).ravel(), _as_float(lat).ravel()
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        raise ValueError("metric_crs_for needs at least one finite point")
    clon = (lon[ok].min() + lon[ok].max()) / 2.0
    clat = (lat[ok].min() + lat[ok].max()) / 2.0
    zone = int(np.floor(clon / 3.0 + 0.5))
    if zone in GK_ZONES:
        return _gk_crs(zone)
    utm = int(np.floor((clon + 180.0) / 6.0)) % 60 + 1
    return CRS.from_epsg((32600 if clat >= 0 else 32700) + utm)


_GCJ_TILES = {_norm(a) for a in ("amap", "gaode", "autonavi", "高德", "高德地图", "tencent", "qq",
                                 "腾讯", "腾讯地图")}
_WGS_TILES = {_norm(a) for a in ("osm", "openstreetmap", "tianditu", "天地图", "none", "无", "")}


def tiles_are_gcj02(provider: str | None) -> bool:
    """Whether a basemap provider's tiles are drawn in GCJ-02 (高德/Amap, 腾讯/Tencent)."""
    return _norm(provider or "") in _GCJ_TILES


def shift_for_tiles(gdf: gpd.GeoDataFrame, provider: str | None) -> gpd.GeoDataFrame:
    """Return a copy of a WGS84 layer shifted to match a basemap provider's tiles.

    Amap/高德 and Tencent tiles are drawn in GCJ-02, so data is shifted there; OSM,
    天地图 (tianditu, CGCS2000 = WGS84 at map scale) and "none" leave it unchanged.
    Points, lines and polygons.

    Parameters
    ----------
    gdf
        A layer in EPSG:4326 (a layer in another CRS is reprojected first; no CRS means WGS84).
    provider
        Basemap name: ``amap``/``gaode``/``高德``, ``tencent``/``腾讯``, ``osm``, ``tianditu``,
        ``none``.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy in EPSG:4326 (coordinates in GCJ-02 for Chinese providers).

    Raises
    ------
    gridplan.InputError
        Unknown provider.
    """
    name = _norm(provider or "")
    if name not in _GCJ_TILES and name not in _WGS_TILES:
        problems = Problems()
        problems.add("basemap", f"unknown basemap provider {provider!r}",
                     fix="use amap (高德), tencent (腾讯), osm, tianditu (天地图) or none")
        problems.raise_if_any()
    out = gdf.copy()
    if out.crs is not None and not out.crs.equals(CRS.from_epsg(4326)):
        out = out.to_crs(4326)
    if name in _GCJ_TILES:
        def shift(xy: np.ndarray) -> np.ndarray:
            return np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1])) if len(xy) else xy
        out = out.set_geometry(shapely.transform(out.geometry.values, shift), crs=out.crs or 4326)
    return out
