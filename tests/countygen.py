"""A small, valid county folder for tests: ``make_county_dir(tmp_path, **variations)``.

The county: 4 square townships (2 x 2, 0.1° each) between 114.0-114.2°E and 30.0-30.2°N, two
stations (S1 serves T1, T2; S2 serves T3, T4), 24 台区 on a 6 x 4 grid well inside the townships
(none on a border), 4 managers, 2 feeders from 1 substation, 2 switches, 4 villages (one per
township). Everything is deterministic.

Usage::

    from countygen import make_county_dir
    folder = make_county_dir(tmp_path)                       # the good county
    folder = make_county_dir(tmp_path, ledger_format="xlsx", chinese_headers=True)
    folder = make_county_dir(tmp_path, edit_ledger=lambda df: df.iloc[:3])

Variations (all keyword, all optional):

``ledger_format``
    ``"csv"`` (default), ``"xlsx"`` or ``"geojson"`` (points, no lon/lat columns).
``encoding``
    CSV encoding: ``"utf-8"`` (default), ``"utf-8-sig"`` or ``"gbk"``.
``chinese_headers``
    Write the ledger and roster with Chinese headers (台区编号, 经度, 容量(kVA), 工号, 姓名…).
``edit_ledger``, ``edit_townships``, ``edit_stations``, ``edit_managers``
    ``f(frame) -> frame`` applied before writing (canonical English column names; the ledger has
    ``lon``/``lat`` columns, the layers a WGS84 geometry).
``coords``
    Write every coordinate in this system (``"gcj02"``, ``"bd09"``, …; default ``"wgs84"``),
    converted with :func:`gridplan.coords.from_wgs84`; GeoJSON files then carry no ``crs`` member.
``toml``
    Text of ``gridplan.toml`` (none by default).
``optional``
    Write feeders, switches, substations and villages (default True).
``managers``
    Write ``managers.csv`` (default True).
``name``
    Folder name under ``tmp_path`` (default ``"county"``).

Returns the folder (a :class:`pathlib.Path`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString, Point, box

__all__ = ["LEDGER_ZH", "MANAGERS_ZH", "X0", "Y0", "good_layers", "make_county_dir"]

X0, Y0, STEP = 114.0, 30.0, 0.1
LEDGER_ZH = {"transformer_id": "台区编号", "name": "台区名称", "lon": "经度", "lat": "纬度",
             "customers": "用户数", "capacity_kva": "容量(kVA)", "feeder_id": "所属线路",
             "status": "运行状态", "village": "行政村"}
MANAGERS_ZH = {"manager_id": "工号", "name": "姓名", "phone": "联系电话", "station_id": "所属供电所",
               "max_workload": "最大工作量"}

Edit = Callable[[pd.DataFrame], pd.DataFrame] | None


def good_layers(seed: int = 0) -> dict[str, pd.DataFrame]:
    """The layers of the good county, in WGS84, with canonical column names."""
    rng = np.random.default_rng(seed)
    towns, villages = [], []
    for k, (i, j) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)], start=1):
        cell = box(X0 + i * STEP, Y0 + j * STEP, X0 + (i + 1) * STEP, Y0 + (j + 1) * STEP)
        towns.append({"township_id": f"T{k}", "name": f"乡镇{k}", "station_id": "S1" if k <= 2 else "S2",
                      "area_class": "农村", "geometry": cell})
        villages.append({"village_id": f"V{k}", "name": f"村{k}", "township_id": f"T{k}",
                         "geometry": cell.buffer(-0.001)})
    stations = [{"station_id": "S1", "name": "城关供电所", "kind": "供电所", "geometry": Point(114.05, 30.05)},
                {"station_id": "S2", "name": "河口供电所", "kind": "供电所", "geometry": Point(114.05, 30.15)}]
    rows = []
    n = 0
    for j in range(4):
        for i in range(6):
            n += 1
            lon = X0 + (i + 0.5) * 2 * STEP / 6
            lat = Y0 + (j + 0.5) * 2 * STEP / 4
            rows.append({"transformer_id": f"TQ{n:03d}", "name": f"{n}号台区",
                         "lon": round(lon, 6), "lat": round(lat, 6),
                         "customers": int(rng.integers(20, 200)),
                         "capacity_kva": float(rng.choice([100, 200, 315, 400])),
                         "feeder_id": "F1" if lat < Y0 + STEP else "F2", "status": "运行",
                         "village": f"村{1 + (lon > X0 + STEP) + 2 * (lat > Y0 + STEP)}"})
    managers = pd.DataFrame({"manager_id": ["M1", "M2", "M3", "M4"], "name": ["张三", "李四", "王五", "赵六"],
                             "phone": ["13800000001", "13800000002", "13800000003", "13800000004"],
                             "station_id": ["S1", "S1", "S2", "S2"], "max_workload": [2000, 2000, "", ""]})
    feeders = [{"feeder_id": "F1", "name": "10kV一线", "substation_id": "B1",
                "geometry": LineString([(114.0, 29.99), (114.02, 30.05), (114.18, 30.05)])},
               {"feeder_id": "F2", "name": "10kV二线", "substation_id": "B1",
                "geometry": LineString([(114.0, 29.99), (114.02, 30.15), (114.18, 30.15)])}]
    return {
        "townships": gpd.GeoDataFrame(towns, crs=4326),
        "stations": gpd.GeoDataFrame(stations, crs=4326),
        "transformers": pd.DataFrame(rows),
        "managers": managers,
        "villages": gpd.GeoDataFrame(villages, crs=4326),
        "feeders": gpd.GeoDataFrame(feeders, crs=4326),
        "substations": gpd.GeoDataFrame([{"substation_id": "B1", "name": "110kV城南站",
                                          "geometry": Point(114.0, 29.99)}], crs=4326),
        "switches": gpd.GeoDataFrame([{"switch_id": "K1", "normally_open": "否", "feeder_id": "F1",
                                       "geometry": Point(114.1, 30.05)},
                                      {"switch_id": "K2", "normally_open": "是", "feeder_id": "F2",
                                       "geometry": Point(114.1, 30.15)}], crs=4326),
    }


def _shift(gdf: gpd.GeoDataFrame, system: str) -> gpd.GeoDataFrame:
    from gridplan import coords

    out = gdf.copy()

    def move(xy: np.ndarray) -> np.ndarray:
        x, y = coords.from_wgs84(xy[:, 0], xy[:, 1], system)
        return np.column_stack([x, y])

    out.geometry.values[:] = shapely.transform(out.geometry.to_numpy(), move)
    return out


def _write_geojson(gdf: gpd.GeoDataFrame, path: Path, *, with_crs: bool) -> None:
    data = json.loads(gdf.to_json(drop_id=True))
    if with_crs:
        data["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def make_county_dir(tmp_path: Path, *, ledger_format: str = "csv", encoding: str = "utf-8",
                    chinese_headers: bool = False, edit_ledger: Edit = None,
                    edit_townships: Edit = None, edit_stations: Edit = None,
                    edit_managers: Edit = None, coords: str = "wgs84", toml: str | None = None,
                    optional: bool = True, managers: bool = True, seed: int = 0,
                    name: str = "county") -> Path:
    """Write the good county (with ``variations``) to ``tmp_path / name``; see the module docstring."""
    folder = Path(tmp_path) / name
    folder.mkdir(parents=True, exist_ok=True)
    layers = good_layers(seed)
    for key, edit in (("townships", edit_townships), ("stations", edit_stations)):
        if edit is not None:
            layers[key] = edit(layers[key])
    ledger = layers["transformers"]
    if edit_ledger is not None:
        ledger = edit_ledger(ledger.copy())
    shifted = coords not in ("wgs84", "cgcs2000")
    if shifted:
        from gridplan import coords as C

        ok = pd.to_numeric(ledger["lon"], errors="coerce").notna()
        x, y = C.from_wgs84(ledger.loc[ok, "lon"].astype(float), ledger.loc[ok, "lat"].astype(float), coords)
        ledger.loc[ok, "lon"], ledger.loc[ok, "lat"] = np.round(x, 7), np.round(y, 7)
    names = list(layers) if optional else ["townships", "stations"]
    for key in names:
        if key in ("transformers", "managers"):
            continue
        gdf = _shift(layers[key], coords) if shifted else layers[key]
        _write_geojson(gdf, folder / f"{key}.geojson", with_crs=not shifted)
    if ledger_format == "geojson":
        pts = gpd.GeoDataFrame(ledger.drop(columns=["lon", "lat"]),
                               geometry=gpd.points_from_xy(ledger["lon"], ledger["lat"]), crs=4326)
        _write_geojson(pts, folder / "transformers.geojson", with_crs=not shifted)
    else:
        out = ledger.rename(columns=LEDGER_ZH) if chinese_headers else ledger
        if ledger_format == "xlsx":
            out.to_excel(folder / "transformers.xlsx", index=False)
        else:
            out.to_csv(folder / "transformers.csv", index=False, encoding=encoding)
    if managers:
        man = layers["managers"]
        if edit_managers is not None:
            man = edit_managers(man.copy())
        man = man.rename(columns=MANAGERS_ZH) if chinese_headers else man
        man.to_csv(folder / "managers.csv", index=False, encoding=encoding)
    if toml is not None:
        (folder / "gridplan.toml").write_text(toml, encoding="utf-8")
    return folder
