"""GCJ-02 and BD-09: the closed-form offsets of Chinese consumer maps and their iterated inverses.

Split out of :mod:`gridplan.coords`, which re-exports every public name here; import them from
there. GCJ-02 (国测局/火星坐标: Amap/高德, Tencent) is the well-known closed-form offset of WGS84
(a few hundred metres), applied only inside a rough bounding box of China; BD-09 (Baidu) is a
second closed-form offset on top of GCJ-02. Neither inverse has a closed form: both are iterated
until the round trip is below 0.1 mm. All functions take and return (lon, lat) in degrees and are
vectorised over numpy arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

__all__ = [
    "bd09_to_gcj02", "bd09_to_wgs84", "gcj02_to_bd09", "gcj02_to_wgs84", "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

log = logging.getLogger(__name__)

#: Krasovsky 1940 semi-major axis and eccentricity squared, as in the published GCJ-02 formula.
_A = 6378245.0
_EE = 0.00669342162296594323
#: Baidu's angular constant.
_X_PI = np.pi * 3000.0 / 180.0
#: The rough bounding box of China used by every published GCJ-02 implementation.
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)
#: Inverse iterations stop when the forward image is this close to the target (degrees, ~0.01 mm).
_INVERSE_TOL_DEG = 1e-10
_INVERSE_MAX_ITER = 50


def _as_float(a: object) -> np.ndarray:
    return np.asarray(a, dtype=float)


def _out(a: np.ndarray) -> np.ndarray:
    """Return 0-d arrays as numpy scalars, everything else unchanged."""
    return a[()] if a.ndim == 0 else a


def _in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return ((lon >= _CHINA_LON[0]) & (lon <= _CHINA_LON[1])
            & (lat >= _CHINA_LAT[0]) & (lat <= _CHINA_LAT[1]))


def _gcj_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the GCJ-02 offset (degrees) at a WGS84 point, ignoring the China box."""
    x, y = lon - 105.0, lat - 35.0
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + common
            + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + common
            + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: object, lat: object) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS84 to GCJ-02 (closed form; points outside China are returned unchanged).

    Parameters
    ----------
    lon, lat
        WGS84 longitude and latitude in degrees (scalars or arrays of one shape).

    Returns
    -------
    lon, lat
        GCJ-02 longitude and latitude.
    """
    lon, lat = np.broadcast_arrays(_as_float(lon), _as_float(lat))
    inside = _in_china(lon, lat)
    dlon, dlat = _gcj_offset(lon, lat)
    return _out(np.where(inside, lon + dlon, lon)), _out(np.where(inside, lat + dlat, lat))


def _gcj_to_bd_raw(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def gcj02_to_bd09(lon: object, lat: object) -> tuple[np.ndarray, np.ndarray]:
    """Convert GCJ-02 to BD-09 (closed form; points outside China are returned unchanged).

    Parameters
    ----------
    lon, lat
        GCJ-02 longitude and latitude in degrees.

    Returns
    -------
    lon, lat
        BD-09 longitude and latitude.
    """
    lon, lat = np.broadcast_arrays(_as_float(lon), _as_float(lat))
    inside = _in_china(lon, lat)
    blon, blat = _gcj_to_bd_raw(lon, lat)
    return _out(np.where(inside, blon, lon)), _out(np.where(inside, blat, lat))


def _invert(forward: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
            lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``forward(p) == (lon, lat)`` for p by fixed-point iteration, elementwise.

    Both offsets change by far less than a metre per metre, so the iteration
    ``p <- p - (forward(p) - target)`` contracts quickly (3-5 steps to 1e-10 degrees).
    """
    plon, plat = lon.copy(), lat.copy()
    for _ in range(_INVERSE_MAX_ITER):
        flon, flat = forward(plon, plat)
        elon, elat = flon - lon, flat - lat
        plon, plat = plon - elon, plat - elat
        err = np.nanmax(np.abs(np.concatenate([elon.ravel(), elat.ravel()])), initial=0.0)
        if err < _INVERSE_TOL_DEG:
            break
    else:  # pragma: no cover - the offsets are contractions; this only guards against surprises
        log.warning("coordinate inverse stopped after %d iterations (error %.2e degrees)",
                    _INVERSE_MAX_ITER, err)
    return plon, plat


def gcj02_to_wgs84(lon: object, lat: object) -> tuple[np.ndarray, np.ndarray]:
    """Convert GCJ-02 to WGS84 by iterating the forward offset (round trip below 0.1 mm).

    Points outside China's bounding box are returned unchanged.

    Parameters
    ----------
    lon, lat
        GCJ-02 longitude and latitude in degrees.

    Returns
    -------
    lon, lat
        WGS84 longitude and latitude.
    """
    lon, lat = np.broadcast_arrays(_as_float(lon), _as_float(lat))
    inside = _in_china(lon, lat)
    wlon, wlat = _invert(wgs84_to_gcj02, lon, lat)
    return _out(np.where(inside, wlon, lon)), _out(np.where(inside, wlat, lat))


def bd09_to_gcj02(lon: object, lat: object) -> tuple[np.ndarray, np.ndarray]:
    """Convert BD-09 to GCJ-02 by iterating the forward offset (round trip below 0.1 mm).

    Points outside China's bounding box are returned unchanged.

    Parameters
    ----------
    lon, lat
        BD-09 longitude and latitude in degrees.

    Returns
    -------
    lon, lat
        GCJ-02 longitude and latitude.
    """
    lon, lat = np.broadcast_arrays(_as_float(lon), _as_float(lat))
    inside = _in_china(lon, lat)
    glon, glat = _invert(_gcj_to_bd_raw, lon, lat)
    return _out(np.where(inside, glon, lon)), _out(np.where(inside, glat, lat))


def wgs84_to_bd09(lon: object, lat: object) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS84 to BD-09 (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: object, lat: object) -> tuple[np.ndarray, np.ndarray]:
    """Convert BD-09 to WGS84 (through GCJ-02; both inverses iterated)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))
